-- Whether a variant's stock is at or below its reorder level, for the
-- low-stock index (the same column as on PostgreSQL, where it keeps stock
-- updates out of every index; see the PostgreSQL migration 0010). The
-- PostgreSQL functions of that migration have no SQLite counterpart: order
-- placement on SQLite is several statements in one transaction.
ALTER TABLE variants ADD COLUMN low INTEGER GENERATED ALWAYS AS (stock <= reorder_level) VIRTUAL;
DROP INDEX variants_low_stock;
CREATE INDEX variants_low_stock ON variants (tenant_id, created_at DESC, id DESC)
    WHERE low AND deleted_at IS NULL;
