-- Ledgers are listed newest first by created_at: a variant's stock
-- movements, a wallet's transactions, a tenant's numbered orders and
-- quotations, an order's status history. An entry's running figure
-- (stock_after, balance_after, number) follows the order in which the
-- transactions took the row lock, so its time must too: it is taken under
-- that lock as max(now, previous + 1 µs) from the column below (wallets
-- and orders use their updated_at), never from a clock read before waiting
-- for the lock. Nodes with skewed clocks then still agree.
ALTER TABLE variants ADD COLUMN last_movement_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_counters ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;

UPDATE variants SET last_movement_at = COALESCE(
    (SELECT MAX(m.created_at) FROM stock_movements m
     WHERE m.tenant_id = variants.tenant_id AND m.variant_id = variants.id), 0);
UPDATE tenant_counters SET last_at = COALESCE(
    (SELECT MAX(o.created_at) FROM orders o WHERE o.tenant_id = tenant_counters.tenant_id), 0)
WHERE name = 'orders';
UPDATE tenant_counters SET last_at = COALESCE(
    (SELECT MAX(q.created_at) FROM quotations q WHERE q.tenant_id = tenant_counters.tenant_id), 0)
WHERE name = 'quotations';
