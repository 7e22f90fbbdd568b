CREATE TABLE IF NOT EXISTS orders (
    id                INTEGER PRIMARY KEY,
    customer          TEXT    NOT NULL,
    recipient_name    TEXT    NOT NULL,
    recipient_phone   TEXT    NOT NULL,
    recipient_address TEXT    NOT NULL,
    total             INTEGER NOT NULL CHECK (total >= 0),
    status            TEXT    NOT NULL,
    version           INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS order_items (
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    id         INTEGER NOT NULL,
    product    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, id),
    UNIQUE (order_id, product)
);
