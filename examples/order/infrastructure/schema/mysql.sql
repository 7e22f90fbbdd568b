CREATE TABLE IF NOT EXISTS orders (
    id                BIGINT       NOT NULL PRIMARY KEY,
    customer          VARCHAR(255) NOT NULL,
    recipient_name    TEXT         NOT NULL,
    recipient_phone   TEXT         NOT NULL,
    recipient_address TEXT         NOT NULL,
    last_item_id      BIGINT       NOT NULL,
    total             BIGINT       NOT NULL CHECK (total >= 0),
    status            VARCHAR(16)  NOT NULL CHECK (status IN ('placed', 'shipped', 'cancelled')),
    version           BIGINT       NOT NULL,
    -- The customer's orders, paged by identity.
    INDEX orders_customer_id (customer, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_items (
    order_id   BIGINT       NOT NULL,
    id         BIGINT       NOT NULL,
    product    VARCHAR(255) NOT NULL,
    quantity   INTEGER      NOT NULL CHECK (quantity > 0),
    unit_price BIGINT       NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, id),
    UNIQUE (order_id, product),
    FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The discounts of an item; the database gives their identities.
CREATE TABLE IF NOT EXISTS item_discounts (
    id       BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id BIGINT       NOT NULL,
    item_id  BIGINT       NOT NULL,
    code     VARCHAR(255) NOT NULL,
    percent  INTEGER      NOT NULL CHECK (percent BETWEEN 1 AND 100),
    FOREIGN KEY (order_id, item_id) REFERENCES order_items (order_id, id),
    UNIQUE (order_id, item_id, code)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
