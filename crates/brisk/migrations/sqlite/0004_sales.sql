-- Sales: per-tenant document numbers, wallets, orders, quotations,
-- idempotency keys and the transactional outbox.

-- Human-readable sequential numbers (Q-000123, SO-000123) per tenant.
CREATE TABLE tenant_counters (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE wallets (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    balance     INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

CREATE TABLE wallet_transactions (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    type          TEXT NOT NULL CHECK (type IN ('credit', 'debit', 'refund')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    reference     TEXT,
    order_id      TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX wallet_transactions_customer ON wallet_transactions (tenant_id, customer_id, created_at DESC, id DESC);

CREATE TABLE orders (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    number         TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
    payment_method TEXT NOT NULL CHECK (payment_method IN ('wallet', 'invoice')),
    subtotal       INTEGER NOT NULL,
    discount_total INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    notes          TEXT,
    quotation_id   TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE UNIQUE INDEX orders_number ON orders (tenant_id, number);
CREATE INDEX orders_tenant_created ON orders (tenant_id, created_at DESC, id DESC);
CREATE INDEX orders_status ON orders (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX orders_customer ON orders (tenant_id, customer_id, created_at DESC, id DESC);

CREATE TABLE order_items (
    tenant_id    TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    position     INTEGER NOT NULL,
    variant_id   TEXT NOT NULL,
    product_id   TEXT NOT NULL,
    product_name TEXT NOT NULL,
    sku          TEXT NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity > 0),
    unit_price   INTEGER NOT NULL,
    unit_cost    INTEGER NOT NULL,
    discount     INTEGER NOT NULL,
    line_total   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id, position),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);

CREATE TABLE order_status_history (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    status     TEXT NOT NULL,
    note       TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);
CREATE INDEX order_status_history_order ON order_status_history (tenant_id, order_id, created_at DESC, id DESC);

CREATE TABLE quotations (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    number         TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'accepted', 'rejected', 'converted')),
    valid_until    TEXT NOT NULL,   -- YYYY-MM-DD, valid through that day (UTC)
    notes          TEXT,
    subtotal       INTEGER NOT NULL,
    discount_total INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    order_id       TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE UNIQUE INDEX quotations_number ON quotations (tenant_id, number);
CREATE INDEX quotations_tenant_created ON quotations (tenant_id, created_at DESC, id DESC);
CREATE INDEX quotations_status ON quotations (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX quotations_customer ON quotations (tenant_id, customer_id, created_at DESC, id DESC);

CREATE TABLE quotation_items (
    tenant_id      TEXT NOT NULL,
    quotation_id   TEXT NOT NULL,
    position       INTEGER NOT NULL,
    variant_id     TEXT NOT NULL,
    sku            TEXT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    unit_price     INTEGER NOT NULL,
    explicit_price INTEGER NOT NULL,
    discount       INTEGER NOT NULL,
    line_total     INTEGER NOT NULL,
    margin_bp      INTEGER NOT NULL,
    margin_ok      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quotation_id, position),
    FOREIGN KEY (tenant_id, quotation_id) REFERENCES quotations (tenant_id, id)
);

-- Idempotency-Key memory: the first response to (tenant, route, key),
-- written in the same transaction as the business fact it answers.
-- status IS NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    tenant_id  TEXT NOT NULL,
    route      TEXT NOT NULL,
    key        TEXT NOT NULL,
    request    TEXT NOT NULL,   -- canonical JSON of the body
    status     INTEGER,
    response   TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, route, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Transactional outbox: every business fact's event, written in the fact's
-- own transaction; consumers (dashboard, webhooks, cache invalidation) read
-- the unprocessed ones in order.
CREATE TABLE outbox (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    processed_at INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_pending ON outbox (created_at, id) WHERE processed_at IS NULL;
