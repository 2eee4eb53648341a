//! The job queue: work that may fail and must be retried (a webhook
//! delivery, an e-mail), stored in the business database beside the facts
//! that cause it.
//!
//! Invariants:
//! - A job is enqueued with [`enqueue`] inside the caller's transaction, so
//!   it exists exactly when the fact that caused it committed.
//! - A runner claims a job by leasing it (`status = running`,
//!   `locked_until`): on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so any
//!   number of `brisk serve` and `brisk worker` processes share the queue
//!   and each job runs on one of them at a time; on SQLite the single writer
//!   connection serializes claims. A job whose runner died is claimed again
//!   once its lease has expired.
//! - Every claim counts an attempt. A failed attempt is retried after an
//!   exponential backoff with jitter scaled from `BRISK_RETRY_BASE_MS`
//!   (×1, ×4, ×20, ×120, then ×720: about 30 s, 2 min, 10 min, 1 h, 6 h at
//!   the default); after `max_attempts` the job is `dead` with its last
//!   error until an admin retries it. A handler may also defer a job
//!   (a closed circuit, an inactive endpoint): that is not an attempt.
//! - A runner finishes only jobs it still holds (`locked_by` and
//!   `attempts` match), so a runner that lost its lease cannot overwrite
//!   the outcome of the one that took the job over.
//! - On stop, a runner claims nothing more, lets running jobs finish for a
//!   grace period, and hands back the ones that did not (status `queued`,
//!   the attempt not counted), so another process takes them at once.
//!
//! Why not a queue crate: apalis 1.0 (apalis-sqlite, apalis-postgres) was
//! evaluated. It takes a typed `SqlitePool` or `PgPool` and keeps its own
//! schema, while Brisk runs one code path through sqlx's `Any` driver and
//! must enqueue inside a business transaction on that driver; its storage
//! has no per-tenant listing, no admin retry of a dead job, and no notion of
//! a deferral that is not an attempt. The PostgreSQL-only queues (graphile,
//! pgmq and the like) leave SQLite, the default, without a queue. What Brisk
//! needs is one table, one claim statement and a runner loop, written here.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use sqlx::Row;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::platform::cache::{Cache, tags};
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{self, Backend, Db, Tx, sql};
use crate::platform::tenant::TenantId;

/// Attempts before a job is dead, unless its type says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 8;

/// Backoff multipliers of the retry base, by failed attempt (the last one
/// repeats).
const BACKOFF: [i64; 5] = [1, 4, 20, 120, 720];

/// A job as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub tenant_id: TenantId,
    pub id: String,
    pub kind: String,
    /// JSON, as enqueued.
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub max_attempts: i64,
}

/// What a handler says of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The attempt failed: retried after the backoff, or dead when it was
    /// the last.
    Failed(String),
    /// Not now, and not an attempt: run again at this instant (micros).
    Defer {
        until: i64,
        why: String,
    },
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs the jobs of one type.
pub trait JobHandler: Send + Sync + 'static {
    /// The job type this handler runs.
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome>;
}

/// Enqueues a job in the caller's transaction, to run at once.
pub async fn enqueue(
    tx: &mut Tx,
    tenant_id: &TenantId,
    kind: &str,
    payload: &impl Serialize,
    now: i64,
) -> Result<String, sqlx::Error> {
    let payload = serde_json::to_string(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let id = new_id();
    sql("INSERT INTO jobs (tenant_id, id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $6, $6)")
        .bind(tenant_id)
        .bind(id.as_str())
        .bind(kind)
        .bind(payload)
        .bind(DEFAULT_MAX_ATTEMPTS)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// The delay before the attempt after failed attempt `attempt` (from 1),
/// with ±20 % jitter so failures that happened together do not retry
/// together.
pub fn backoff(retry_base: Duration, attempt: i64) -> Duration {
    let index = usize::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(BACKOFF.len() - 1);
    let factor = u32::try_from(BACKOFF[index]).unwrap_or(720);
    let delay = retry_base.saturating_mul(factor);
    let jitter = rand::rng().random_range(0.8..1.2);
    delay.mul_f64(jitter)
}

/// How the runners of one process behave.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Jobs run at once by this process.
    pub workers: usize,
    pub retry_base: Duration,
    /// How long a claimed job is this runner's before another may take it.
    pub lease: Duration,
    /// Longest sleep between looks at the queue when nothing wakes it.
    pub idle_poll: Duration,
    /// On stop, how long running jobs may take to finish.
    pub grace: Duration,
}

/// Runs queued jobs with the registered handlers until stopped.
#[derive(Clone)]
pub struct JobRunner {
    db: Db,
    /// Told after every state change of a job (its tenant's job list).
    cache: Cache,
    handlers: Arc<HashMap<&'static str, Arc<dyn JobHandler>>>,
    settings: RunnerSettings,
    /// Names this process in `locked_by`.
    node: String,
}

/// A claimed job and the lease it holds.
struct Claimed {
    job: Job,
}

impl JobRunner {
    pub fn new(
        db: Db,
        cache: Cache,
        handlers: Vec<Arc<dyn JobHandler>>,
        settings: RunnerSettings,
    ) -> Self {
        let handlers = handlers.into_iter().map(|h| (h.kind(), h)).collect();
        JobRunner {
            db,
            cache,
            handlers: Arc::new(handlers),
            settings,
            node: new_id(),
        }
    }

    /// The loop: claim what is due (as many as there are free workers), run
    /// each on its own task, sleep until `wake` (fired by the dispatcher
    /// after it enqueued jobs, by an admin retry, or by another node's
    /// notification), the next due job or the idle poll, whichever is
    /// first. Business commits do not wake it: they enqueue nothing
    /// directly, and waking on each would cost the writer two statements
    /// per order.
    pub async fn run(self, mut stop: watch::Receiver<bool>, wake: Arc<Notify>) {
        let slots = Arc::new(Semaphore::new(self.settings.workers.max(1)));
        let mut running: JoinSet<()> = JoinSet::new();
        // The jobs this runner holds, to hand back the unfinished on stop.
        let holding: Arc<std::sync::Mutex<HashMap<String, Job>>> = Arc::default();
        loop {
            if *stop.borrow() {
                break;
            }
            // Registered before looking, so a commit during the look wakes us.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut next_due = None;
            if free > 0 {
                match self.claim(free).await {
                    Ok(jobs) if !jobs.is_empty() => {
                        for claimed in jobs {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let runner = self.clone();
                            let holding = holding.clone();
                            let key = format!("{}/{}", claimed.job.tenant_id, claimed.job.id);
                            if let Ok(mut h) = holding.lock() {
                                h.insert(key.clone(), claimed.job.clone());
                            }
                            running.spawn(async move {
                                runner.run_one(claimed).await;
                                if let Ok(mut h) = holding.lock() {
                                    h.remove(&key);
                                }
                                drop(permit);
                            });
                        }
                        continue;
                    }
                    Ok(_) => match self.next_due().await {
                        Ok(due) => next_due = due,
                        Err(err) => {
                            tracing::warn!(error = %err, "jobs: cannot read the next due time")
                        }
                    },
                    Err(err) => tracing::warn!(error = %err, "jobs: claim failed; retrying"),
                }
            }
            let now = now_micros();
            let mut sleep = self.settings.idle_poll;
            if let Some(due) = next_due {
                let until_due =
                    Duration::from_micros(u64::try_from(due.saturating_sub(now)).unwrap_or(0));
                sleep = sleep.min(until_due);
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(sleep) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = stop.changed() => {}
            }
        }
        self.finish_or_hand_back(&mut running, &holding).await;
    }

    /// Stop: running jobs get the grace period; the ones still running after
    /// it are aborted and handed back for another process to run at once.
    async fn finish_or_hand_back(
        &self,
        running: &mut JoinSet<()>,
        holding: &std::sync::Mutex<HashMap<String, Job>>,
    ) {
        let deadline = Instant::now() + self.settings.grace;
        while !running.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, running.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let unfinished: Vec<Job> = holding
            .lock()
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default();
        for job in unfinished {
            if let Err(err) = self.hand_back(&job).await {
                tracing::warn!(error = %err, job = %job.id, "jobs: could not hand back a job; it runs again when its lease expires");
            }
        }
    }

    async fn run_one(&self, claimed: Claimed) {
        let job = claimed.job;
        let started = Instant::now();
        let outcome = match self.handlers.get(job.kind.as_str()) {
            Some(handler) => handler.run(&job).await,
            None => Outcome::Failed(format!("no handler for job type {}", job.kind)),
        };
        let took = started.elapsed();
        let label = match &outcome {
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Defer { .. } => "deferred",
        };
        metrics::histogram!("brisk_job_run_duration_seconds", "type" => job.kind.clone(), "outcome" => label)
            .record(took.as_secs_f64());
        if let Err(err) = self.settle(&job, outcome).await {
            tracing::warn!(error = %err, job = %job.id, "jobs: could not record an outcome; the job runs again when its lease expires");
        }
    }

    /// Leases up to `n` due jobs (runnable, or running on an expired lease).
    async fn claim(&self, n: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        let now = now_micros();
        let lease_end = now.saturating_add(micros(self.settings.lease));
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let skip_locked = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut q = db::SqlBuilder::new(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = ",
        );
        q.bind(lease_end)
            .push(", locked_by = ")
            .bind(self.node.as_str())
            .push(", updated_at = ")
            .bind(now)
            .push(
                " WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM jobs WHERE \
                 ((status IN ('queued', 'failed') AND run_at <= ",
            )
            .bind(now)
            .push(") OR (status = 'running' AND locked_until < ")
            .bind(now)
            .push(")) AND kind IN ")
            .bind_in(kinds.iter().copied())
            .push(" ORDER BY run_at LIMIT ")
            .bind(i64::try_from(n).unwrap_or(1))
            .push(skip_locked)
            .push(") RETURNING tenant_id, id, kind, payload, attempts, max_attempts");
        let rows = q.build().fetch_all(self.db.writer()).await?;
        let mut claimed: Vec<Claimed> = Vec::with_capacity(rows.len());
        for row in rows {
            claimed.push(Claimed {
                job: Job {
                    tenant_id: row.try_get("tenant_id")?,
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    attempt: row.try_get("attempts")?,
                    max_attempts: row.try_get("max_attempts")?,
                },
            });
        }
        self.cache
            .invalidate(&tags::jobs_of(claimed.iter().map(|c| &c.job.tenant_id)));
        Ok(claimed)
    }

    /// When the next job becomes due (a retry or a deferral, or a lease
    /// that expires), so an idle runner wakes for it and not later.
    async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        let row = sql(
            "SELECT (SELECT MIN(run_at) FROM jobs WHERE status IN ('queued', 'failed')) AS runnable, \
             (SELECT MIN(locked_until) FROM jobs WHERE status = 'running') AS leased",
        )
        .fetch_one(self.db.writer())
        .await?;
        let runnable: Option<i64> = row.try_get("runnable")?;
        let leased: Option<i64> = row.try_get("leased")?;
        Ok(match (runnable, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Records the outcome of an attempt this runner still holds.
    async fn settle(&self, job: &Job, outcome: Outcome) -> Result<(), sqlx::Error> {
        let now = now_micros();
        // (status, run_at, last_error, attempts); a deferral is no attempt
        // and keeps the last error, a success clears it.
        let (status, run_at, error, attempts) = match outcome {
            Outcome::Done => ("done", now, None, job.attempt),
            Outcome::Failed(error) if job.attempt >= job.max_attempts => {
                ("dead", now, Some(error), job.attempt)
            }
            Outcome::Failed(error) => {
                let delay = backoff(self.settings.retry_base, job.attempt);
                let run_at = now.saturating_add(micros(delay));
                ("failed", run_at, Some(error), job.attempt)
            }
            Outcome::Defer { until, why } => {
                tracing::debug!(job = %job.id, why, "jobs: deferred");
                ("queued", until, None, job.attempt.saturating_sub(1))
            }
        };
        let settled = sql(
            "UPDATE jobs SET status = $5, run_at = $6, \
             last_error = CASE WHEN $5 = 'queued' THEN last_error ELSE $7 END, \
             attempts = $8, locked_until = NULL, updated_at = $9 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND locked_by = $3 AND attempts = $4",
        )
        .bind(&job.tenant_id)
        .bind(job.id.as_str())
        .bind(self.node.as_str())
        .bind(job.attempt)
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(attempts)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.cache.invalidate(&[tags::jobs(&job.tenant_id)]);
        if settled == 0 {
            tracing::warn!(job = %job.id, "jobs: the lease was lost before the outcome was recorded");
        }
        Ok(())
    }

    /// Gives a claimed job back unrun: queued now, the attempt not counted.
    async fn hand_back(&self, job: &Job) -> Result<(), sqlx::Error> {
        sql("UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $5, locked_until = NULL, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND locked_by = $3 AND attempts = $4")
            .bind(&job.tenant_id)
            .bind(job.id.as_str())
            .bind(self.node.as_str())
            .bind(job.attempt)
            .bind(now_micros())
            .execute(self.db.writer())
            .await?;
        self.cache.invalidate(&[tags::jobs(&job.tenant_id)]);
        Ok(())
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Deletes done jobs last changed before `cutoff` (micros) and tells the
/// cache whose job lists lost them; returns how many. The tenants are read
/// first, distinct, in the same transaction: a prune can delete millions
/// of rows, and returning each row's tenant would carry them all here.
pub async fn prune_done(db: &Db, cache: &Cache, cutoff: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let tenants: Vec<TenantId> =
        sql("SELECT DISTINCT tenant_id FROM jobs WHERE status = 'done' AND updated_at < $1")
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("tenant_id"))
            .collect::<Result<_, _>>()?;
    if tenants.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    // A job that is done now was updated now, after `cutoff`: the set of
    // rows this deletes is the one just read.
    let deleted = sql("DELETE FROM jobs WHERE status = 'done' AND updated_at < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    db::commit(tx).await?;
    cache.invalidate(&tags::jobs_of(&tenants));
    Ok(deleted)
}

/// Jobs not done, by status and type, for the `/metrics` gauges. Done
/// jobs (kept 7 days, the bulk of the table) are left out so a scrape reads
/// only the small `jobs_active` index.
pub async fn counts(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let rows = sql(
        "SELECT status, kind, COUNT(*) AS n FROM jobs WHERE status <> 'done' GROUP BY status, kind",
    )
    .fetch_all(db.reader())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("kind")?, r.try_get("n")?)))
        .collect()
}

/// The statuses a job can have, as stored and as the admin API shows them.
pub const STATUSES: [&str; 5] = ["queued", "running", "done", "failed", "dead"];

/// One job as the admin API lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When it runs next (or ran last), micros.
    pub run_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const RECORD_COLUMNS: &str =
    "id, kind, status, attempts, max_attempts, run_at, last_error, created_at, updated_at";

/// What a list of jobs may be narrowed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobFilter<'a> {
    /// One of [`STATUSES`] (the caller checks it).
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
}

/// A job to enqueue with [`enqueue_many`].
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant_id: TenantId,
    /// The job's id: new, or one the caller ties to a row of its own (a
    /// webhook delivery's job has the delivery's id).
    pub id: String,
    pub kind: &'static str,
    /// JSON.
    pub payload: String,
    /// When it may run first (micros).
    pub run_at: i64,
}

impl NewJob {
    /// A job with a new id, to run at `now`.
    pub fn new(tenant_id: TenantId, kind: &'static str, payload: String, now: i64) -> Self {
        NewJob {
            tenant_id,
            id: new_id(),
            kind,
            payload,
            run_at: now,
        }
    }
}

/// Rows per multi-row insert: 8 values each stays far below either
/// backend's limit on bound parameters.
const INSERT_CHUNK: usize = 1000;

/// Enqueues many jobs in the caller's transaction with one statement per
/// thousand jobs (a dispatch batch is one statement), to run at once.
pub async fn enqueue_many(tx: &mut Tx, jobs: &[NewJob], now: i64) -> Result<(), sqlx::Error> {
    for chunk in jobs.chunks(INSERT_CHUNK) {
        let mut q = db::SqlBuilder::new(
            "INSERT INTO jobs (tenant_id, id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at) VALUES ",
        );
        for (i, job) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(&job.tenant_id)
                .push(", ")
                .bind(job.id.as_str())
                .push(", ")
                .bind(job.kind)
                .push(", ")
                .bind(job.payload.as_str())
                .push(", 'queued', 0, ")
                .bind(DEFAULT_MAX_ATTEMPTS)
                .push(", ")
                .bind(job.run_at)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(")");
        }
        q.one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A tenant's jobs, newest first (by creation, then id), after `after`.
/// Fetches `limit` rows: the caller asks for one more than a page.
pub async fn list(
    db: &Db,
    tenant_id: &TenantId,
    filter: JobFilter<'_>,
    limit: i64,
    after: Option<&crate::platform::keyset::Cursor>,
) -> Result<Vec<JobRecord>, sqlx::Error> {
    let mut q = db::SqlBuilder::new(&format!(
        "SELECT {RECORD_COLUMNS} FROM jobs WHERE tenant_id = "
    ));
    q.bind(tenant_id);
    if let Some(status) = filter.status {
        q.push(" AND status = ").bind(status);
    }
    if let Some(kind) = filter.kind {
        q.push(" AND kind = ").bind(kind);
    }
    q.after_cursor("", after)
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(limit);
    // The primary on PostgreSQL: the admin list is cached until a job's
    // next change, so a replica's lag would stay in it.
    q.build().fetch_all_as(db.current_reader()).await
}

/// One of a tenant's jobs, read from the primary.
pub async fn get(
    db: &Db,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<JobRecord>, sqlx::Error> {
    db::sql_owned(format!(
        "SELECT {RECORD_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as(db.writer())
    .await
}

/// What an admin retry did.
#[derive(Debug, Clone)]
pub enum Retried {
    /// The job was dead and is queued again, as it now is.
    Queued(JobRecord),
    /// The job is not dead: nothing changed.
    NotDead(JobRecord),
    NotFound,
}

/// Puts a dead job back in the queue: `queued`, no attempts, due now. Its
/// last error stays until an attempt succeeds, so the admin still sees why
/// it died. Wakes runners on other PostgreSQL nodes; the caller wakes this
/// node's.
pub async fn retry_dead(
    db: &Db,
    tenant_id: &TenantId,
    id: &str,
    now: i64,
) -> Result<Retried, sqlx::Error> {
    let queued: Option<JobRecord> = db::sql_owned(format!(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $3, locked_until = NULL, locked_by = NULL, updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'dead' RETURNING {RECORD_COLUMNS}"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .fetch_optional_as(db.writer())
    .await?;
    if let Some(job) = queued {
        announce(db).await;
        return Ok(Retried::Queued(job));
    }
    Ok(match get(db, tenant_id, id).await? {
        Some(job) => Retried::NotDead(job),
        None => Retried::NotFound,
    })
}

/// Brings queued jobs of `kind` with these ids that wait for a later time
/// forward to `now` (a deferral whose reason is gone); jobs in a retry
/// backoff (`failed`) keep their time. Returns how many moved.
pub async fn bring_forward(
    tx: &mut Tx,
    tenant_id: &TenantId,
    kind: &str,
    ids: &[String],
    now: i64,
) -> Result<u64, sqlx::Error> {
    let mut moved = 0;
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut q = db::SqlBuilder::new("UPDATE jobs SET run_at = ");
        q.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant_id)
            .push(" AND kind = ")
            .bind(kind)
            .push(" AND status = 'queued' AND run_at > ")
            .bind(now)
            .push(" AND id IN ")
            .bind_in(chunk.iter().map(String::as_str))
            .one_shot();
        moved += q.build().execute(&mut **tx).await?;
    }
    Ok(moved)
}

/// Wakes the job runners after jobs were queued or brought forward outside
/// a dispatch: this node's at once (`local`), other PostgreSQL nodes'
/// through `NOTIFY brisk_jobs`.
pub async fn wake_runners(db: &Db, local: &Notify) {
    local.notify_waiters();
    announce(db).await;
}

/// Tells the job runners of other PostgreSQL nodes to look at the queue now
/// (`NOTIFY brisk_jobs`, which they listen to); their slow poll covers a
/// lost notification, so a failure is only logged.
async fn announce(db: &Db) {
    if db.backend() != Backend::Postgres {
        return;
    }
    if let Err(err) = sql("SELECT pg_notify('brisk_jobs', '')")
        .execute(db.writer())
        .await
    {
        tracing::debug!(error = %err, "jobs: could not wake other nodes");
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
