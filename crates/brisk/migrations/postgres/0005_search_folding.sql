-- Search compares text folded by Brisk itself (platform::search::fold), not
-- by lower(), whose result depends on the cluster's locale (the C locale
-- folds ASCII only). Rows that exist before this migration get their folded
-- text from the backfill that runs right after migrations
-- (modules::backfill), in Rust.
ALTER TABLE customers ADD COLUMN search_name TEXT;
ALTER TABLE customers ADD COLUMN search_email TEXT;
ALTER TABLE products ADD COLUMN search_name TEXT;

DROP STATISTICS customers_search_lower;
DROP INDEX customers_search;
CREATE INDEX customers_search ON customers
    USING gin (tenant_id, search_name gin_trgm_ops, search_email gin_trgm_ops)
    WHERE deleted_at IS NULL;

DROP INDEX products_name_trgm;
CREATE INDEX products_name_trgm ON products USING gin (tenant_id, search_name gin_trgm_ops)
    WHERE deleted_at IS NULL;
