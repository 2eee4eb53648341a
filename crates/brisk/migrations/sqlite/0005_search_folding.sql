-- Search compares text folded by Brisk itself (platform::search::fold), not
-- by the database's lower(), which folds ASCII only on SQLite. Rows that
-- exist before this migration get their folded text from the backfill that
-- runs right after migrations (modules::backfill), in Rust.
ALTER TABLE customers ADD COLUMN search_name TEXT;
ALTER TABLE customers ADD COLUMN search_email TEXT;
ALTER TABLE products ADD COLUMN search_name TEXT;

-- The trigram index holds the folded text too: its LIKE folds ASCII only,
-- so it must see what the exact filter sees. The backfill's UPDATE of
-- search_name re-indexes rows that exist before this migration.
DROP TRIGGER customers_search_insert;
CREATE TRIGGER customers_search_insert AFTER INSERT ON customers
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO customer_search (tenant_id, customer_id) VALUES (new.tenant_id, new.id);
    INSERT INTO customers_fts (rowid, search) VALUES (
        (SELECT rid FROM customer_search WHERE tenant_id = new.tenant_id AND customer_id = new.id),
        coalesce(new.search_name, '') || char(10) || coalesce(new.search_email, ''));
END;

DROP TRIGGER customers_search_update;
CREATE TRIGGER customers_search_update AFTER UPDATE OF search_name, search_email ON customers
WHEN new.deleted_at IS NULL
BEGIN
    UPDATE customers_fts SET search = coalesce(new.search_name, '') || char(10) || coalesce(new.search_email, '')
    WHERE rowid = (SELECT rid FROM customer_search WHERE tenant_id = new.tenant_id AND customer_id = new.id);
END;

-- Products likewise: FTS5's own case folding differs from Rust's for some
-- letters (İ, Georgian Mtavruli), so a candidate the exact check would
-- accept could be dropped before it; the index now holds the folded name.
DROP TRIGGER products_search_insert;
CREATE TRIGGER products_search_insert AFTER INSERT ON products
WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO product_search (tenant_id, product_id) VALUES (new.tenant_id, new.id);
    INSERT INTO products_fts (rowid, name) VALUES (
        (SELECT rid FROM product_search WHERE tenant_id = new.tenant_id AND product_id = new.id),
        coalesce(new.search_name, ''));
END;

DROP TRIGGER products_search_update;
CREATE TRIGGER products_search_update AFTER UPDATE OF search_name ON products
WHEN new.deleted_at IS NULL
BEGIN
    UPDATE products_fts SET name = coalesce(new.search_name, '')
    WHERE rowid = (SELECT rid FROM product_search WHERE tenant_id = new.tenant_id AND product_id = new.id);
END;
