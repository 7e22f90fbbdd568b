CREATE TABLE IF NOT EXISTS orders (
    id                BIGINT PRIMARY KEY,
    customer          TEXT   NOT NULL,
    recipient_name    TEXT   NOT NULL,
    recipient_phone   TEXT   NOT NULL,
    recipient_address TEXT   NOT NULL,
    last_item_id      BIGINT NOT NULL,
    total             BIGINT NOT NULL CHECK (total >= 0),
    status            TEXT   NOT NULL CHECK (status IN ('placed', 'shipped', 'cancelled')),
    version           BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS order_items (
    order_id   BIGINT  NOT NULL REFERENCES orders (id),
    id         BIGINT  NOT NULL,
    product    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price BIGINT  NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, id),
    UNIQUE (order_id, product)
);

-- The discounts of an item; the database gives their identities.
CREATE TABLE IF NOT EXISTS item_discounts (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   BIGINT  NOT NULL,
    item_id    BIGINT  NOT NULL,
    code       TEXT    NOT NULL,
    percent    INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
    FOREIGN KEY (order_id, item_id) REFERENCES order_items (order_id, id),
    UNIQUE (order_id, item_id, code)
);

-- The customer's orders, paged by identity.
CREATE INDEX IF NOT EXISTS orders_customer_id ON orders (customer, id);
