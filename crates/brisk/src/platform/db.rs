//! The database: one code path for SQLite and PostgreSQL.
//!
//! Brisk speaks to both backends through sqlx's `Any` driver with SQL that
//! both accept (`$1` placeholders, `RETURNING`, `ON CONFLICT`). Where the
//! dialects differ, callers branch on [`Backend`]. The `Any` driver knows
//! only integers, floats, text and blobs, so the schema keeps to those:
//! ids are text (UUIDv7), instants are `BIGINT` microseconds since the Unix
//! epoch, flags are integers 0/1, money is `BIGINT` minor units.
//!
//! Invariants:
//! - Every statement runs through [`Sql`], which counts it (per request, for
//!   tests that assert bounded work) and times it (for `/metrics`).
//! - On SQLite all writes go through a single writer connection, so
//!   concurrent writers queue in-process instead of failing with
//!   `database is locked`; reads use a separate pool of read-only
//!   connections (WAL lets them run beside the writer).
//! - On PostgreSQL the pool is explicitly sized, has an acquire timeout and a
//!   per-connection `statement_timeout`; reads may go to replicas.
//! - A transaction may be dropped at any await, even while it is opened
//!   ([`Db::begin`]): it rolls back, and its connection goes back to the
//!   pool outside any transaction.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, FromRow};

use crate::platform::tenant::TenantId;

/// What the pools are opened with (from the server's configuration).
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// PostgreSQL read replicas.
    pub replica_urls: Vec<String>,
    /// PostgreSQL pool size per node; SQLite's reader pool size.
    pub pool_size: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` in milliseconds (0 = none).
    pub statement_timeout_ms: u64,
    /// PostgreSQL: [`Db::fetch_one_grouped`] shares transactions; `false`
    /// runs each statement as its own.
    pub group_commit: bool,
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A write transaction. Open one with [`Db::begin`].
pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Not the database's, but found while connecting the node's stores.
    #[error("BRISK_REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Handle to the database pools; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    writer: AnyPool,
    readers: Vec<AnyPool>,
    next_reader: AtomicUsize,
    /// Started on first use, on the writer (see [`Db::fetch_one_grouped`]);
    /// `None` when group commit is off.
    group_commit: Option<std::sync::OnceLock<super::group_commit::GroupCommit>>,
}

/// How many reader connections SQLite gets: the pool size, at most 4 per
/// core (see [`Db::connect_sqlite`]).
fn sqlite_readers(pool_size: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let most = u32::try_from(cores.saturating_mul(4)).unwrap_or(u32::MAX);
    pool_size.clamp(1, most.max(1))
}

impl Db {
    /// Opens the pools described by `config`. Does not migrate: call
    /// [`Db::migrate`].
    pub async fn connect(config: &DbSettings) -> Result<Db, ConnectError> {
        sqlx::any::install_default_drivers();
        let url = config.url.trim();
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, config).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, config).await
        } else {
            Err(ConnectError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// A SQLite reader is a thread running the query on a core (the file
    /// cache answers its reads), so readers beyond 4 per core only add
    /// threads, page caches and prepared statements (7 MiB of RSS measured
    /// between 16 and 8 readers on 2 cores), not throughput.
    ///
    /// SQLite's page caches are sized on purpose: each connection keeps its
    /// own (2 MiB by default), and 16 readers at the default would hold
    /// 32 MiB of mostly the same pages, most of a small node's memory. The
    /// writer keeps 4 MiB (the pages every write touches: counters, hot
    /// indexes); each reader 512 KiB, since a reader's miss is a read from
    /// the operating system's file cache, not the disk.
    async fn connect_sqlite(url: &str, config: &DbSettings) -> Result<Db, ConnectError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(config.acquire_timeout)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                         PRAGMA cache_size = -4096;",
                    ))
                    .await?;
                    Ok(())
                })
            })
            .connect(&with_sqlite_mode(url, "rwc"))
            .await?;
        let readers = if in_memory {
            // Each in-memory connection is its own database: share the writer.
            vec![writer.clone()]
        } else {
            vec![
                AnyPoolOptions::new()
                    .max_connections(sqlite_readers(config.pool_size))
                    .acquire_timeout(config.acquire_timeout)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(sqlx::raw_sql(
                                "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                                 PRAGMA cache_size = -512;",
                            ))
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_lazy(&with_sqlite_mode(url, "ro"))?,
            ]
        };
        Ok(Db::from_pools(Backend::Sqlite, writer, readers, false))
    }

    async fn connect_postgres(url: &str, config: &DbSettings) -> Result<Db, ConnectError> {
        let timeout_ms = config.statement_timeout_ms;
        let options = || {
            AnyPoolOptions::new()
                .max_connections(config.pool_size.max(1))
                .acquire_timeout(config.acquire_timeout)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        // A literal, not a bind: SET takes no parameters.
                        // Plans stay cached (`plan_cache_mode = auto`):
                        // forcing a custom plan on every run re-plans every
                        // foreign-key check PostgreSQL runs inside each
                        // insert, with the rows still locked. Lookups whose
                        // generic plan is bad are planned per run instead
                        // (`Sql::planned_per_run`).
                        let set = format!("SET statement_timeout = {timeout_ms}");
                        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(set)))
                            .await?;
                        Ok(())
                    })
                })
        };
        let writer = options().connect(url).await?;
        let mut readers = Vec::new();
        for replica in &config.replica_urls {
            let replica = replica.trim();
            if !replica.is_empty() {
                readers.push(options().connect_lazy(replica)?);
            }
        }
        if readers.is_empty() {
            readers.push(writer.clone());
        }
        Ok(Db::from_pools(
            Backend::Postgres,
            writer,
            readers,
            config.group_commit,
        ))
    }

    fn from_pools(backend: Backend, writer: AnyPool, readers: Vec<AnyPool>, group: bool) -> Db {
        Db {
            inner: Arc::new(Inner {
                backend,
                writer,
                readers,
                next_reader: AtomicUsize::new(0),
                group_commit: group.then(std::sync::OnceLock::new),
            }),
        }
    }

    /// Applies every pending migration; idempotent, and safe to run from
    /// several nodes at once (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        let migrator = match self.backend() {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.inner.writer).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Runs `statement`, a whole transaction in one statement returning one
    /// row, on the primary, in one transaction with the statements of the
    /// same `key` (a tenant) that arrive meanwhile: one commit for all of
    /// them, each still succeeding or failing on its own (see
    /// `group_commit`). Answers once the row is committed. With group
    /// commit off, the statement is a transaction of its own.
    pub async fn fetch_one_grouped(
        &self,
        key: &str,
        statement: Sql,
    ) -> Result<AnyRow, sqlx::Error> {
        let Some(group_commit) = &self.inner.group_commit else {
            return super::group_commit::run_alone(&self.inner.writer, statement).await;
        };
        group_commit
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                super::group_commit::GroupCommit::start(&self.inner.writer, cores.max(2))
            })
            .fetch_one(key, statement)
            .await
    }

    /// The primary: writes, and reads that must see the latest write.
    pub fn writer(&self) -> &AnyPool {
        &self.inner.writer
    }

    /// A pool for reads that tolerate replica lag (round-robin over replicas
    /// when configured).
    pub fn reader(&self) -> &AnyPool {
        let readers = &self.inner.readers;
        let i = self.inner.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        &readers[i]
    }

    /// A pool for reads whose answer is cached until an invalidation: they
    /// must see every committed write, since a replica's lag would stay in
    /// the cache until the next write. SQLite's readers see every commit;
    /// on PostgreSQL this is the primary.
    pub fn current_reader(&self) -> &AnyPool {
        match self.inner.backend {
            Backend::Sqlite => self.reader(),
            Backend::Postgres => self.writer(),
        }
    }

    /// Starts a write transaction on the primary.
    ///
    /// Safe to drop at any point (a request cut by its timeout): the
    /// `BEGIN` runs in a task of its own, and a transaction whose caller is
    /// gone is dropped there once it is open, so it rolls back. Awaited in
    /// place, sqlx 0.9's PostgreSQL driver cannot be cancelled while it
    /// waits for the answer to `BEGIN`: it counts the transaction only once
    /// that answer arrives, so a drop then queues no `ROLLBACK` and the
    /// connection goes back to the pool still inside the transaction. Every
    /// later autocommitted statement on it (an idempotency claim or its
    /// release) would then stay uncommitted, holding its row locks, until a
    /// later transaction on that connection happened to commit or roll it
    /// all back.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        count_statement("begin", Duration::ZERO);
        let writer = self.inner.writer.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // Unreceived (the caller was dropped), the open transaction is
            // dropped here and rolls back.
            let _ = sender.send(writer.begin().await);
        });
        // Only a panic in sqlx ends the task without an answer.
        receiver.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    /// Checks that the primary answers, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, sql("SELECT 1").execute(self.writer())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    /// `(name, pool)` for every pool, for the pool gauges on `/metrics`.
    pub fn pools(&self) -> Vec<(String, AnyPool)> {
        let mut pools = vec![("primary".to_owned(), self.inner.writer.clone())];
        for (i, p) in self.inner.readers.iter().enumerate() {
            if !same_pool(p, &self.inner.writer) {
                pools.push((format!("reader{i}"), p.clone()));
            }
        }
        pools
    }

    pub async fn close(&self) {
        for reader in &self.inner.readers {
            reader.close().await;
        }
        self.inner.writer.close().await;
    }
}

fn same_pool(a: &AnyPool, b: &AnyPool) -> bool {
    // Pools are Arc-backed; clones of one pool share their options object.
    std::ptr::eq(a.connect_options().as_ref(), b.connect_options().as_ref())
}

fn with_sqlite_mode(url: &str, mode: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode={mode}")
    } else {
        format!("{url}?mode={mode}")
    }
}

// ---------------------------------------------------------------------------
// Statements: counting, timing and (in tests) capture

/// A bound value. Statements keep their values until they run, so a test
/// can capture a statement and replay it under `EXPLAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<&TenantId> for Arg {
    fn from(id: &TenantId) -> Self {
        Arg::Text(id.as_str().to_owned())
    }
}

impl From<crate::platform::money::Money> for Arg {
    fn from(amount: crate::platform::money::Money) -> Self {
        Arg::Int(amount.minor_units())
    }
}

impl From<TenantId> for Arg {
    fn from(id: TenantId) -> Self {
        Arg::Text(id.as_str().to_owned())
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::NullText, Arg::Text)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Arg::NullText, |s| Arg::Text(s.to_owned()))
    }
}

/// A statement as it ran: text and values.
#[derive(Debug, Clone)]
pub struct CapturedStatement {
    pub text: String,
    pub args: Vec<Arg>,
}

impl CapturedStatement {
    /// The same statement under `EXPLAIN QUERY PLAN` (SQLite) or `EXPLAIN`
    /// (PostgreSQL).
    pub fn explain(&self, backend: Backend) -> Sql {
        let prefix = match backend {
            Backend::Sqlite => "EXPLAIN QUERY PLAN ",
            Backend::Postgres => "EXPLAIN ",
        };
        let mut q = sql_owned(format!("{prefix}{}", self.text));
        q.args = self.args.clone();
        q
    }
}

/// Where statements are captured when a test asks for it.
#[derive(Debug, Clone, Default)]
pub struct SqlLog(Arc<std::sync::Mutex<Vec<CapturedStatement>>>);

impl SqlLog {
    pub fn take(&self) -> Vec<CapturedStatement> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
    fn push(&self, statement: CapturedStatement) {
        if let Ok(mut v) = self.0.lock() {
            v.push(statement);
        }
    }
}

struct RequestStatements {
    count: AtomicU64,
    log: Option<SqlLog>,
}

tokio::task_local! {
    static REQUEST_STATEMENTS: Arc<RequestStatements>;
}

/// Runs `fut`, returning its output and the number of SQL statements it ran
/// (transaction begin/commit included); with a log, records each one.
pub async fn counting_statements<F: Future>(fut: F, log: Option<SqlLog>) -> (F::Output, u64) {
    let stats = Arc::new(RequestStatements {
        count: AtomicU64::new(0),
        log,
    });
    let out = REQUEST_STATEMENTS.scope(stats.clone(), fut).await;
    (out, stats.count.load(Ordering::Relaxed))
}

fn count_statement(kind: &'static str, took: Duration) {
    let _ = REQUEST_STATEMENTS.try_with(|c| c.count.fetch_add(1, Ordering::Relaxed));
    metrics::counter!("brisk_db_statements_total", "kind" => kind).increment(1);
    metrics::histogram!("brisk_db_statement_duration_seconds", "kind" => kind)
        .record(took.as_secs_f64());
}

fn capture(text: &str, args: &[Arg]) {
    let _ = REQUEST_STATEMENTS.try_with(|c| {
        if let Some(log) = &c.log {
            log.push(CapturedStatement {
                text: text.to_owned(),
                args: args.to_vec(),
            });
        }
    });
}

/// Fired after every commit through [`commit`] in this process: a wake-up
/// hint for the outbox dispatcher and the job runners, which re-read the
/// database when it fires (and poll slowly without it). Never a guarantee:
/// correctness does not depend on it, only latency.
static COMMITTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// See [`COMMITTED`].
pub fn committed() -> &'static tokio::sync::Notify {
    &COMMITTED
}

/// Tells the waiters of [`committed`] that a statement run outside any
/// transaction (its own transaction) committed.
pub fn note_commit() {
    COMMITTED.notify_waiters();
}

/// Commits a transaction, counting the COMMIT like any statement.
pub async fn commit(tx: Tx) -> Result<(), sqlx::Error> {
    let start = Instant::now();
    let r = tx.commit().await;
    count_statement("commit", start.elapsed());
    if r.is_ok() {
        note_commit();
    }
    r
}

/// One SQL statement with its bound values. Build with [`sql`].
#[derive(Debug, Clone)]
pub struct Sql {
    text: std::borrow::Cow<'static, str>,
    args: Vec<Arg>,
    kind: &'static str,
    /// Whether the server may cache and reuse the statement's plan.
    persistent: bool,
}

/// A statement from static text (the usual case).
pub fn sql(text: &'static str) -> Sql {
    Sql {
        kind: statement_kind(text),
        text: std::borrow::Cow::Borrowed(text),
        args: Vec::new(),
        persistent: true,
    }
}

/// A statement assembled at run time (optional filters). Only ever from
/// Brisk's own fragments: values are always bound, never spliced in.
pub fn sql_owned(text: String) -> Sql {
    Sql {
        kind: statement_kind(&text),
        text: std::borrow::Cow::Owned(text),
        args: Vec::new(),
        persistent: true,
    }
}

fn statement_kind(text: &str) -> &'static str {
    let head = text.trim_start();
    let first = head.split_whitespace().next().unwrap_or("");
    match first.to_ascii_lowercase().as_str() {
        "select" | "with" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        "explain" => "explain",
        _ => "other",
    }
}

impl Sql {
    pub fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Plans the statement afresh for its values on every run instead of
    /// reusing a prepared plan. For statements whose best plan depends on
    /// the values (a search pattern that one index serves well when it is
    /// selective and another when it is not): PostgreSQL switches a cached
    /// statement to one generic, value-blind plan after five runs.
    pub fn planned_per_run(mut self) -> Self {
        self.persistent = false;
        self
    }

    fn into_query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        capture(&self.text, &self.args);
        let mut q = match self.text {
            std::borrow::Cow::Borrowed(text) => sqlx::query(text),
            std::borrow::Cow::Owned(text) => sqlx::query(sqlx::AssertSqlSafe(text)),
        }
        .persistent(self.persistent);
        for arg in self.args {
            q = match arg {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::NullInt => q.bind(None::<i64>),
                Arg::NullText => q.bind(None::<String>),
            };
        }
        q
    }

    pub async fn fetch_all<'e, 'c: 'e, E>(self, ex: E) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
    {
        let kind = self.kind;
        let start = Instant::now();
        let r = self.into_query().fetch_all(ex).await;
        count_statement(kind, start.elapsed());
        r
    }

    pub async fn fetch_optional<'e, 'c: 'e, E>(self, ex: E) -> Result<Option<AnyRow>, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
    {
        let kind = self.kind;
        let start = Instant::now();
        let r = self.into_query().fetch_optional(ex).await;
        count_statement(kind, start.elapsed());
        r
    }

    pub async fn fetch_one<'e, 'c: 'e, E>(self, ex: E) -> Result<AnyRow, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
    {
        let kind = self.kind;
        let start = Instant::now();
        let r = self.into_query().fetch_one(ex).await;
        count_statement(kind, start.elapsed());
        r
    }

    /// Runs the statement; returns the number of rows it affected.
    pub async fn execute<'e, 'c: 'e, E>(self, ex: E) -> Result<u64, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
    {
        let kind = self.kind;
        let start = Instant::now();
        let r = self
            .into_query()
            .execute(ex)
            .await
            .map(|r| r.rows_affected());
        count_statement(kind, start.elapsed());
        r
    }

    pub async fn fetch_all_as<'e, 'c: 'e, E, T>(self, ex: E) -> Result<Vec<T>, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
        T: for<'r> FromRow<'r, AnyRow>,
    {
        let rows = self.fetch_all(ex).await?;
        rows.iter().map(T::from_row).collect()
    }

    pub async fn fetch_optional_as<'e, 'c: 'e, E, T>(self, ex: E) -> Result<Option<T>, sqlx::Error>
    where
        E: 'e + Executor<'c, Database = Any>,
        T: for<'r> FromRow<'r, AnyRow>,
    {
        self.fetch_optional(ex)
            .await?
            .map(|row| T::from_row(&row))
            .transpose()
    }
}

/// Whether `err` is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Stores `value` under `key` unless a value is already there, and returns
/// the stored value: the first node to start decides, every node agrees.
pub async fn setting_or_insert(db: &Db, key: &str, value: &str) -> Result<String, sqlx::Error> {
    sql("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key.to_owned())
        .bind(value.to_owned())
        .execute(db.writer())
        .await?;
    let row = sql("SELECT value FROM settings WHERE key = $1")
        .bind(key.to_owned())
        .fetch_one(db.writer())
        .await?;
    sqlx::Row::try_get(&row, 0)
}

/// Statements of varying text with at most this many bound values stay in
/// the per-connection statement cache (see [`SqlBuilder::build`]).
const KEPT_SHAPE_MAX_BINDS: usize = 100;

/// Assembles a statement with optional parts (list filters), numbering the
/// placeholders as it goes. Values are always bound, never spliced in.
#[derive(Debug, Default)]
pub struct SqlBuilder {
    text: String,
    args: Vec<Arg>,
    one_shot: bool,
}

impl SqlBuilder {
    pub fn new(text: &str) -> Self {
        SqlBuilder {
            text: text.to_owned(),
            args: Vec::new(),
            one_shot: false,
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Keyset condition for newest-first lists ordered by
    /// `(created_at DESC, id DESC)`, for columns with the given prefix.
    pub fn after_cursor(
        &mut self,
        prefix: &str,
        after: Option<&crate::platform::keyset::Cursor>,
    ) -> &mut Self {
        if let Some(c) = after {
            self.push(&format!(" AND ({prefix}created_at, {prefix}id) < ("));
            self.bind(c.created_at)
                .push(", ")
                .bind(c.id.clone())
                .push(")");
        }
        self
    }

    /// Appends `($a, $b, …)` bound to `values`, for `x IN (…)`. Such
    /// statements vary with the list's length, so a long one is not kept
    /// in the per-connection statement cache, where its many shapes would
    /// push out the statements that run all the time (see [`Self::build`]).
    pub fn bind_in<'v>(&mut self, values: impl IntoIterator<Item = &'v str>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.one_shot = true;
        self.push(")")
    }

    /// Marks the statement as one whose text varies with its values (a
    /// `VALUES` list): kept in the statement cache only while short.
    pub fn one_shot(&mut self) -> &mut Self {
        self.one_shot = true;
        self
    }

    /// Keeps the statement in the connection's statement cache whatever
    /// the number of values it binds, though a list made its text vary
    /// ([`Self::bind_in`], [`Self::one_shot`]): for a statement whose
    /// shapes are few and recur (an order's, one per line count).
    pub fn few_shapes(&mut self) -> &mut Self {
        self.one_shot = false;
        self
    }

    pub fn build(self) -> Sql {
        let mut q = sql_owned(self.text);
        // A statement whose text varies with a list is still kept when the
        // list is short: its few shapes (a batch of a few ids) recur all
        // the time, and a kept statement is parsed and planned once per
        // connection instead of on every run. Longer ones would crowd the
        // connection's statement cache (100 statements) with shapes that
        // rarely come back. A statement whose shapes are few whatever its
        // size (an order's) says so with `few_shapes`.
        q.persistent = !self.one_shot || self.args.len() <= KEPT_SHAPE_MAX_BINDS;
        q.args = self.args;
        q
    }
}

/// The next number of a per-tenant sequence (`orders`, `quotations`), in
/// the caller's transaction, with the time the numbered document is created
/// at. Numbers are unique and increase in commit order, because the counter
/// row stays locked until the commit; the time is taken under that lock as
/// `max(now, previous + 1 µs)`, so newest-first by time is highest number
/// first, even when a transaction waited for the lock or nodes' clocks
/// disagree. Call it late, to hold the lock briefly.
pub async fn next_number(
    tx: &mut Tx,
    tenant_id: &TenantId,
    sequence: &str,
    now: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sql(
        "INSERT INTO tenant_counters (tenant_id, name, value, last_at) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = tenant_counters.value + 1, \
             last_at = CASE WHEN tenant_counters.last_at + 1 > excluded.last_at \
                       THEN tenant_counters.last_at + 1 ELSE excluded.last_at END \
         RETURNING value, last_at",
    )
    .bind(tenant_id)
    .bind(sequence)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok((
        sqlx::Row::try_get(&row, "value")?,
        sqlx::Row::try_get(&row, "last_at")?,
    ))
}

/// A tenant's counter as [`next_number`] left it: `(value, last_at)`, or
/// `(0, 0)` before its first number. For a replay of back-dated history
/// that numbers documents in memory (`brisk seed`).
pub async fn counter(
    tx: &mut Tx,
    tenant_id: &TenantId,
    sequence: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sql("SELECT value, last_at FROM tenant_counters WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(sequence)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(r) => (
            sqlx::Row::try_get(&r, "value")?,
            sqlx::Row::try_get(&r, "last_at")?,
        ),
        None => (0, 0),
    })
}

/// [`next_number`] in memory: the next `(value, last_at)` after `counter`.
pub fn advance_counter(counter: (i64, i64), now: i64) -> Option<(i64, i64)> {
    Some((
        counter.0.checked_add(1)?,
        counter.1.saturating_add(1).max(now),
    ))
}

/// Rows per [`insert_json_rows`] statement in bulk writers: a few MiB of
/// JSON, one parse and one plan.
pub const JSON_ROWS_PER_STATEMENT: usize = 5_000;

/// Inserts `rows` (serialized as a JSON array of objects keyed by column
/// name) into `table`'s `columns` (comma-separated, as the module's own
/// `INSERT` lists them) in one statement, whatever their number: PostgreSQL
/// reads them with `json_populate_recordset` (the table's own column
/// types), SQLite with `json_each`. For bulk writers (`brisk seed`'s
/// replayed history): a multi-row `VALUES` list costs PostgreSQL a parse
/// and a plan that grow with the row count, this does not. `columns` and
/// `table` are Brisk's own names, never input.
pub async fn insert_json_rows<R: serde::Serialize>(
    tx: &mut Tx,
    backend: Backend,
    table: &str,
    columns: &str,
    rows: &[R],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let text = match backend {
        Backend::Postgres => format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, CAST($1 AS json))"
        ),
        Backend::Sqlite => format!(
            "INSERT INTO {table} ({columns}) SELECT {} FROM json_each($1)",
            columns
                .split(',')
                .map(str::trim)
                .map(|c| format!("value ->> '{c}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    sql_owned(text).bind(json).execute(&mut **tx).await?;
    Ok(())
}

/// Stores a replayed counter (see [`counter`]).
pub async fn set_counter(
    tx: &mut Tx,
    tenant_id: &TenantId,
    sequence: &str,
    (value, last_at): (i64, i64),
) -> Result<(), sqlx::Error> {
    sql("INSERT INTO tenant_counters (tenant_id, name, value, last_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value, last_at = excluded.last_at")
    .bind(tenant_id)
    .bind(sequence)
    .bind(value)
    .bind(last_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(binds: usize, one_shot: bool) -> Sql {
        let mut q = SqlBuilder::new("SELECT 1 WHERE 1 IN (");
        for i in 0..binds {
            if i > 0 {
                q.push(", ");
            }
            q.bind(i64::try_from(i).unwrap_or(0));
        }
        q.push(")");
        if one_shot {
            q.one_shot();
        }
        q.build()
    }

    #[test]
    fn only_long_one_shot_statements_skip_the_statement_cache() {
        assert!(built(3, false).persistent);
        assert!(built(3, true).persistent, "a short list's shapes recur");
        assert!(built(KEPT_SHAPE_MAX_BINDS, true).persistent);
        assert!(!built(KEPT_SHAPE_MAX_BINDS + 1, true).persistent);
        // A statement not marked one-shot is kept at any size, and so is
        // one whose caller knows its shapes are few (an order's 102 values
        // with a wallet), though a list made it one-shot.
        assert!(built(KEPT_SHAPE_MAX_BINDS * 3, false).persistent);
        let many: Vec<String> = (0..=KEPT_SHAPE_MAX_BINDS).map(|i| i.to_string()).collect();
        let listed = || {
            let mut q = SqlBuilder::new("SELECT 1 WHERE '' IN ");
            q.bind_in(many.iter().map(String::as_str));
            q
        };
        assert!(!listed().build().persistent);
        let mut q = listed();
        q.few_shapes();
        assert!(q.build().persistent);
        assert!(!built(3, false).planned_per_run().persistent);
    }
}
