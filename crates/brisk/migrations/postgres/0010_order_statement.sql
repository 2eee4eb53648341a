-- What order placement needs to be one statement on PostgreSQL (see the
-- `orders` module): the stock, the wallet, the number, the order, its
-- items, its history, the movements, the ledger entry and the events are
-- written by a single data-modifying statement, so the contended rows are
-- locked for that statement and its commit alone.

-- Fails the statement with Brisk's own SQLSTATE and `reason`, so nothing
-- of it is written: for what a statement finds that must never happen
-- (an order whose checks passed under its locks, yet whose stock update
-- missed a line). Ordinary refusals (out of stock, insufficient funds)
-- are answers of the statement, not failures.
CREATE FUNCTION brisk_refuse(reason TEXT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'BRK01', MESSAGE = reason;
END
$$;

-- Microseconds since the epoch as Brisk shows instants (`clock::rfc3339`):
-- UTC, `Z`, the fraction without trailing zeros and none when it is zero,
-- e.g. `2026-11-25T13:54:32.12Z`. For instants at or after 1970.
CREATE FUNCTION brisk_rfc3339(micros BIGINT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_char(to_timestamp(div(micros, 1000000)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(micros, 1000000) = 0 THEN ''
                ELSE '.' || rtrim(lpad(CAST(mod(micros, 1000000) AS TEXT), 6, '0'), '0') END
        || 'Z'
$$;

-- Whether a variant's stock is at or below its reorder level, kept by the
-- database, for the low-stock index. An index whose predicate read `stock`
-- itself made every stock change a non-HOT update: a new entry in every
-- index of `variants`, and a uniqueness check of its SKU against every
-- older version of the row, on the row each order of a flash sale
-- updates. `low` changes only when the stock crosses the level, so taking
-- stock touches no index. Pages keep a tenth free for those updates.
ALTER TABLE variants SET (fillfactor = 90);
ALTER TABLE variants ADD COLUMN low BOOLEAN GENERATED ALWAYS AS (stock <= reorder_level) STORED;
DROP INDEX variants_low_stock;
CREATE INDEX variants_low_stock ON variants (tenant_id, created_at DESC, id DESC)
    WHERE low AND deleted_at IS NULL;
