-- Sales aggregates for the dashboard and the sales report, kept by the
-- outbox dispatcher (the `dashboard` module's consumer of `order.created`
-- and `order.status_changed`), never by order placement itself: placing an
-- order writes no shared per-tenant row, so orders never queue behind each
-- other for the dashboard's sake.
--
-- Days and months are UTC, as text (`YYYY-MM-DD`, `YYYY-MM`), so a range is
-- an index range on the primary key. Figures count orders that are not
-- cancelled; `order_status_counts` counts every order by current status.

CREATE TABLE sales_daily (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    day       TEXT NOT NULL,                 -- YYYY-MM-DD, UTC
    orders    INTEGER NOT NULL DEFAULT 0,
    revenue   INTEGER NOT NULL DEFAULT 0,    -- Σ orders.total
    cost      INTEGER NOT NULL DEFAULT 0,    -- Σ order_items.unit_cost × quantity
    PRIMARY KEY (tenant_id, day)
);

CREATE TABLE product_sales_monthly (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    month      TEXT NOT NULL,                -- YYYY-MM, UTC
    product_id TEXT NOT NULL,
    name       TEXT NOT NULL,                -- as its latest order line named it
    quantity   INTEGER NOT NULL DEFAULT 0,
    revenue    INTEGER NOT NULL DEFAULT 0,   -- Σ order_items.line_total
    PRIMARY KEY (tenant_id, month, product_id)
);
-- The month's top products by revenue, ties by product id.
CREATE INDEX product_sales_monthly_top ON product_sales_monthly (tenant_id, month, revenue DESC, product_id);

CREATE TABLE order_status_counts (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    status    TEXT NOT NULL,
    count     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, status)
);

-- The dashboard's customer counts (crm::customer_counts): live customers
-- of a tenant, and those created since an instant, from the index alone.
CREATE INDEX customers_live_count ON customers (tenant_id, deleted_at, created_at);

-- Order events that were still waiting in the outbox when the backfill
-- below ran. The backfill already counts their effects (it reads the orders
-- as they are now), so the consumer drops each of them once, when the
-- dispatcher hands it over. Events dispatched before this migration are
-- never handed over again, and later ones are not listed: each order event
-- is counted exactly once.
CREATE TABLE sales_backfilled_events (
    tenant_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- The backfill. SQLite runs this migration in one write transaction on the
-- one writer, so the orders it reads and the outbox it reads are the same
-- state: nothing commits in between.
INSERT INTO sales_backfilled_events (tenant_id, seq)
    SELECT tenant_id, seq FROM outbox
    WHERE processed_at IS NULL AND topic IN ('order.created', 'order.status_changed');

INSERT INTO sales_daily (tenant_id, day, orders, revenue, cost)
    SELECT o.tenant_id, strftime('%Y-%m-%d', o.created_at / 1000000, 'unixepoch'),
           COUNT(*), SUM(o.total), SUM(c.cost)
    FROM orders o
    JOIN (SELECT tenant_id, order_id, SUM(unit_cost * quantity) AS cost
          FROM order_items GROUP BY tenant_id, order_id) c
      ON c.tenant_id = o.tenant_id AND c.order_id = o.id
    WHERE o.status <> 'cancelled'
    GROUP BY o.tenant_id, strftime('%Y-%m-%d', o.created_at / 1000000, 'unixepoch');

-- The name is the one of the product's latest line in the month (SQLite
-- takes the bare column from the row that gives MAX).
INSERT INTO product_sales_monthly (tenant_id, month, product_id, name, quantity, revenue)
    SELECT tenant_id, month, product_id, name, quantity, revenue FROM (
        SELECT i.tenant_id AS tenant_id,
               strftime('%Y-%m', o.created_at / 1000000, 'unixepoch') AS month,
               i.product_id AS product_id,
               i.product_name AS name,
               MAX(o.created_at) AS latest,
               SUM(i.quantity) AS quantity,
               SUM(i.line_total) AS revenue
        FROM order_items i
        JOIN orders o ON o.tenant_id = i.tenant_id AND o.id = i.order_id
        WHERE o.status <> 'cancelled'
        GROUP BY i.tenant_id, strftime('%Y-%m', o.created_at / 1000000, 'unixepoch'), i.product_id
    );

INSERT INTO order_status_counts (tenant_id, status, count)
    SELECT tenant_id, status, COUNT(*) FROM orders GROUP BY tenant_id, status;
