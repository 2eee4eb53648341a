-- CRM: customers and their tags, with a trigram index for `q` search.
-- Customers are soft-deleted (deleted_at): orders will reference them.

CREATE TABLE customers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    status      TEXT NOT NULL CHECK (status IN ('lead', 'active', 'inactive')),
    discount_bp INTEGER NOT NULL DEFAULT 0 CHECK (discount_bp BETWEEN 0 AND 10000),
    tags        TEXT NOT NULL DEFAULT '[]',  -- JSON array, in the client's order
    notes       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX customers_tenant_created ON customers (tenant_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_tenant_status_created ON customers (tenant_id, status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

-- One row per (customer, tag) of a live customer, for `tag=`. created_at is
-- the customer's (it never changes), so a tag's customers come newest first
-- straight from the index.
CREATE TABLE customer_tags (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    tag         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX customer_tags_tag ON customer_tags (tenant_id, tag, created_at DESC, customer_id DESC);

-- `q` search: an FTS5 trigram index over "name \n email" of live customers.
-- FTS5 rows need a stable integer rowid; customers' implicit rowid may
-- change on VACUUM, so customer_search hands out one per customer.
CREATE TABLE customer_search (
    rid         INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    UNIQUE (tenant_id, customer_id)
);
CREATE VIRTUAL TABLE customers_fts USING fts5 (search, tokenize = 'trigram');

-- Kept in sync with customers in the writing transaction itself.
CREATE TRIGGER customers_search_insert AFTER INSERT ON customers
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO customer_search (tenant_id, customer_id) VALUES (new.tenant_id, new.id);
    INSERT INTO customers_fts (rowid, search) VALUES (
        (SELECT rid FROM customer_search WHERE tenant_id = new.tenant_id AND customer_id = new.id),
        new.name || char(10) || coalesce(new.email, ''));
END;

CREATE TRIGGER customers_search_update AFTER UPDATE OF name, email ON customers
WHEN new.deleted_at IS NULL
BEGIN
    UPDATE customers_fts SET search = new.name || char(10) || coalesce(new.email, '')
    WHERE rowid = (SELECT rid FROM customer_search WHERE tenant_id = new.tenant_id AND customer_id = new.id);
END;

CREATE TRIGGER customers_search_soft_delete AFTER UPDATE OF deleted_at ON customers
WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL
BEGIN
    DELETE FROM customers_fts
    WHERE rowid = (SELECT rid FROM customer_search WHERE tenant_id = old.tenant_id AND customer_id = old.id);
    DELETE FROM customer_search WHERE tenant_id = old.tenant_id AND customer_id = old.id;
END;

CREATE TRIGGER customers_search_delete AFTER DELETE ON customers
BEGIN
    DELETE FROM customers_fts
    WHERE rowid = (SELECT rid FROM customer_search WHERE tenant_id = old.tenant_id AND customer_id = old.id);
    DELETE FROM customer_search WHERE tenant_id = old.tenant_id AND customer_id = old.id;
END;
