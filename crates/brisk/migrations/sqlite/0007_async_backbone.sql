-- What follows a committed business fact: the outbox gets a commit-ordered
-- sequence and an aggregate (events of one aggregate are delivered in
-- order), a job queue lives beside the business tables (so enqueueing is
-- part of the business transaction), and webhooks with their deliveries.
--
-- SQLite cannot add an auto-incrementing column, so the outbox is rebuilt
-- with `seq` as its rowid (one writer: rowid order is commit order).
CREATE TABLE outbox_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    topic        TEXT NOT NULL,
    aggregate    TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    processed_at INTEGER,
    UNIQUE (tenant_id, id)
);
INSERT INTO outbox_new (tenant_id, id, topic, payload, created_at, processed_at)
    SELECT tenant_id, id, topic, payload, created_at, processed_at FROM outbox ORDER BY created_at, id;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (seq) WHERE processed_at IS NULL;
CREATE INDEX outbox_dispatched ON outbox (processed_at) WHERE processed_at IS NOT NULL;

-- status: queued (never run), running (leased until locked_until), failed
-- (an attempt failed; runs again at run_at), done, dead (gave up).
CREATE TABLE jobs (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    locked_by    TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_runnable ON jobs (run_at) WHERE status IN ('queued', 'failed');
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE status = 'running';
CREATE INDEX jobs_list ON jobs (tenant_id, created_at, id);
-- The admin list filtered by status (dead jobs among millions done) or type.
CREATE INDEX jobs_list_status ON jobs (tenant_id, status, created_at, id);
CREATE INDEX jobs_list_kind ON jobs (tenant_id, kind, created_at, id);
CREATE INDEX jobs_done ON jobs (updated_at) WHERE status = 'done';
-- The /metrics gauge counts the jobs that are not done, by status and type.
CREATE INDEX jobs_active ON jobs (status, kind) WHERE status <> 'done';

CREATE TABLE webhooks (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,              -- JSON array of event names, or ["*"]
    secret      TEXT NOT NULL,
    active      INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0, -- consecutive failed attempts
    cooldown_ms INTEGER NOT NULL DEFAULT 0, -- the circuit's current cool-down
    open_until  INTEGER,                    -- circuit open until (micros)
    probe_until INTEGER,                    -- a half-open probe runs until
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhooks_list ON webhooks (tenant_id, created_at, id) WHERE deleted_at IS NULL;
-- Circuits that are not closed, counted on every /metrics scrape.
CREATE INDEX webhooks_tripped ON webhooks (open_until) WHERE failures >= 5 AND deleted_at IS NULL;

-- A delivery's job has the delivery's id: the job's run_at is its next
-- attempt, so no copy of it is kept here.
CREATE TABLE webhook_deliveries (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    aggregate       TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,          -- pending, delivered, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_status INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, webhook_id, event_id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id)
);
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, webhook_id, created_at, id);
CREATE INDEX webhook_deliveries_in_order ON webhook_deliveries (tenant_id, webhook_id, aggregate, seq)
    WHERE status = 'pending';
