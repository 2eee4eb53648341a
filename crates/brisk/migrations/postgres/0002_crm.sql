-- CRM: customers and their tags, with a trigram index for `q` search.
-- Customers are soft-deleted (deleted_at): orders will reference them.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- Lets the trigram GIN index lead with tenant_id like every other index.
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE customers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    email       TEXT,
    phone       TEXT,
    status      TEXT NOT NULL CHECK (status IN ('lead', 'active', 'inactive')),
    discount_bp BIGINT NOT NULL DEFAULT 0 CHECK (discount_bp BETWEEN 0 AND 10000),
    tags        TEXT NOT NULL DEFAULT '[]',  -- JSON array, in the client's order
    notes       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX customers_tenant_created ON customers (tenant_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_tenant_status_created ON customers (tenant_id, status, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
-- `q` search: case-insensitive substring of name or e-mail.
CREATE INDEX customers_search ON customers
    USING gin (tenant_id, lower(name) gin_trgm_ops, lower(email) gin_trgm_ops)
    WHERE deleted_at IS NULL;
-- Statistics on the searched expressions, so the planner can tell a rare
-- pattern (use customers_search) from a common one (walk newest first and
-- stop at a full page); without them it guesses from the pattern's length.
CREATE STATISTICS customers_search_lower (ndistinct) ON lower(name), lower(email) FROM customers;

-- One row per (customer, tag) of a live customer, for `tag=`. created_at is
-- the customer's (it never changes), so a tag's customers come newest first
-- straight from the index.
CREATE TABLE customer_tags (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    tag         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX customer_tags_tag ON customer_tags (tenant_id, tag, created_at DESC, customer_id DESC);
