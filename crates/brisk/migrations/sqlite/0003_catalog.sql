-- Catalog and inventory: categories, products, variants, images, stock movements.

CREATE TABLE categories (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    parent_id  TEXT,
    created_at INTEGER NOT NULL,
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
    active        INTEGER NOT NULL DEFAULT 1,
    min_margin_bp INTEGER NOT NULL DEFAULT 0,
    options       TEXT NOT NULL DEFAULT '[]',   -- JSON [{name, values: [..]}]
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES categories (tenant_id, id)
);
CREATE INDEX products_tenant_created ON products (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX products_category ON products (tenant_id, category_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX products_active ON products (tenant_id, active, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Substring search on product names: an FTS5 trigram index over the names
-- of live products. FTS5 rows need a stable integer rowid and a product's
-- implicit rowid may change on VACUUM, so product_search hands out one per
-- product. Triggers keep both in step inside the writing transaction.
CREATE TABLE product_search (
    rid        INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    product_id TEXT NOT NULL,
    UNIQUE (tenant_id, product_id)
);
CREATE VIRTUAL TABLE products_fts USING fts5 (name, tokenize = 'trigram');

CREATE TRIGGER products_search_insert AFTER INSERT ON products
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO product_search (tenant_id, product_id) VALUES (new.tenant_id, new.id);
    INSERT INTO products_fts (rowid, name) VALUES (
        (SELECT rid FROM product_search WHERE tenant_id = new.tenant_id AND product_id = new.id), new.name);
END;

CREATE TRIGGER products_search_update AFTER UPDATE OF name ON products
WHEN new.deleted_at IS NULL
BEGIN
    UPDATE products_fts SET name = new.name
    WHERE rowid = (SELECT rid FROM product_search WHERE tenant_id = new.tenant_id AND product_id = new.id);
END;

CREATE TRIGGER products_search_soft_delete AFTER UPDATE OF deleted_at ON products
WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL
BEGIN
    DELETE FROM products_fts
    WHERE rowid = (SELECT rid FROM product_search WHERE tenant_id = old.tenant_id AND product_id = old.id);
    DELETE FROM product_search WHERE tenant_id = old.tenant_id AND product_id = old.id;
END;

CREATE TABLE variants (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    sku           TEXT NOT NULL,
    price         INTEGER NOT NULL CHECK (price >= 0),
    cost          INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0),
    stock         INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    reorder_level INTEGER NOT NULL DEFAULT 5 CHECK (reorder_level >= 0),
    active        INTEGER NOT NULL DEFAULT 1,
    option_values TEXT NOT NULL DEFAULT '{}',  -- JSON {"Size": "M"}
    tiers         TEXT NOT NULL DEFAULT '[]',  -- JSON [{min_quantity, price}]
    position      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,                     -- set with its product's
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
    position   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX product_images_product ON product_images (tenant_id, product_id, position);

CREATE TABLE stock_movements (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    stock_after INTEGER NOT NULL,
    order_id    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, variant_id) REFERENCES variants (tenant_id, id)
);
CREATE INDEX stock_movements_variant ON stock_movements (tenant_id, variant_id, created_at DESC, id DESC);
