-- Catalog and inventory: categories, products, variants, images, stock movements.

CREATE TABLE categories (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    parent_id  TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES categories (tenant_id, id)
);
CREATE INDEX categories_tenant_created ON categories (tenant_id, created_at DESC, id DESC);

CREATE TABLE products (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    category_id   TEXT,
    active        BIGINT NOT NULL DEFAULT 1,
    min_margin_bp BIGINT NOT NULL DEFAULT 0,
    options       TEXT NOT NULL DEFAULT '[]',   -- JSON [{name, values: [..]}]
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES categories (tenant_id, id)
);
CREATE INDEX products_tenant_created ON products (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX products_category ON products (tenant_id, category_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX products_active ON products (tenant_id, active, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Substring search on product names: a trigram index on the lower-cased
-- name serves `lower(name) LIKE '%q%'`.
-- btree_gin lets the index lead with tenant_id.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX products_name_trgm ON products USING gin (tenant_id, lower(name) gin_trgm_ops) WHERE deleted_at IS NULL;

CREATE TABLE variants (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    sku           TEXT NOT NULL,
    price         BIGINT NOT NULL CHECK (price >= 0),
    cost          BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),
    stock         BIGINT NOT NULL DEFAULT 0 CHECK (stock >= 0),
    reorder_level BIGINT NOT NULL DEFAULT 5 CHECK (reorder_level >= 0),
    active        BIGINT NOT NULL DEFAULT 1,
    option_values TEXT NOT NULL DEFAULT '{}',  -- JSON {"Size": "M"}
    tiers         TEXT NOT NULL DEFAULT '[]',  -- JSON [{min_quantity, price}]
    position      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,                      -- set with its product's
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
-- A deleted product's SKUs are free again.
CREATE UNIQUE INDEX variants_sku ON variants (tenant_id, sku) WHERE deleted_at IS NULL;
CREATE INDEX variants_product ON variants (tenant_id, product_id, position);
CREATE INDEX variants_tenant_created ON variants (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX variants_low_stock ON variants (tenant_id, created_at DESC, id DESC)
    WHERE stock <= reorder_level AND deleted_at IS NULL;

CREATE TABLE product_images (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    product_id TEXT NOT NULL,
    url        TEXT NOT NULL,
    alt        TEXT,
    position   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX product_images_product ON product_images (tenant_id, product_id, position);

CREATE TABLE stock_movements (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    delta       BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    stock_after BIGINT NOT NULL,
    order_id    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, variant_id) REFERENCES variants (tenant_id, id)
);
CREATE INDEX stock_movements_variant ON stock_movements (tenant_id, variant_id, created_at DESC, id DESC);
