-- Share links: a public code that shows one product to anyone holding it,
-- and how often it was opened. `code` is unique across tenants (the public
-- route knows no tenant); `clicks` only grows, by batched increments.

CREATE TABLE share_links (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    id         TEXT NOT NULL,
    code       TEXT NOT NULL,
    product_id TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    expires_at INTEGER,           -- micros; NULL = never
    clicks     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE UNIQUE INDEX share_links_code ON share_links (code);
CREATE INDEX share_links_tenant_created ON share_links (tenant_id, created_at DESC, id DESC);
CREATE INDEX share_links_product ON share_links (tenant_id, product_id, created_at DESC, id DESC);
