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

-- `q` plans per pattern: the trigram index for a rare one, the newest-first
-- walk for a common one. With the default 100-entry histogram a pattern
-- found in none of its entries is still estimated at ~1 % of the rows (the
-- walk then looks cheap and reads a whole tenant for one match); 1,000
-- entries bring that down to ~0.01 %.
ALTER TABLE customers ALTER COLUMN search_name SET STATISTICS 1000;
ALTER TABLE customers ALTER COLUMN search_email SET STATISTICS 1000;
ALTER TABLE products ALTER COLUMN search_name SET STATISTICS 1000;
