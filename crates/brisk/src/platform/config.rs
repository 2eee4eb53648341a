//! Server settings: defaults, then `BRISK_*` environment variables, then
//! command-line flags (clap applies exactly that precedence).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Every setting of `brisk serve` and `brisk migrate`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BRISK_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Database URL: `sqlite://path` (embedded, created and migrated on
    /// start) or `postgres://user@host:port/db`.
    #[arg(long, env = "BRISK_DATABASE_URL", default_value = "sqlite://brisk.db")]
    pub database_url: String,

    /// PostgreSQL read replicas, comma-separated; reads that tolerate
    /// replication lag go there, round-robin.
    #[arg(long, env = "BRISK_DATABASE_REPLICA_URLS", value_delimiter = ',')]
    pub database_replica_urls: Vec<String>,

    /// Connections in the PostgreSQL pool (per node). SQLite uses one writer
    /// connection and this many readers, at most 4 per core.
    #[arg(long, env = "BRISK_DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: u32,

    /// How long a request waits for a free database connection before it
    /// answers 503, in milliseconds.
    #[arg(
        long,
        env = "BRISK_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub database_acquire_timeout_ms: u64,

    /// PostgreSQL `statement_timeout` for every connection, in milliseconds
    /// (0 = none).
    #[arg(
        long,
        env = "BRISK_DATABASE_STATEMENT_TIMEOUT_MS",
        default_value_t = 10000
    )]
    pub database_statement_timeout_ms: u64,

    /// PostgreSQL: orders of one tenant that arrive while others are being
    /// written share their transaction and commit (group commit). `false`
    /// writes each order in its own transaction.
    #[arg(
        long,
        env = "BRISK_DATABASE_GROUP_COMMIT",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub database_group_commit: bool,

    /// Token signing secret. When unset, one is generated once and stored in
    /// the database, so every node of a deployment shares it.
    #[arg(long, env = "BRISK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Requests per minute per tenant (0 = no limit).
    #[arg(long, env = "BRISK_RATE_LIMIT_PER_MINUTE", default_value_t = 60000)]
    pub rate_limit_per_minute: u32,

    /// Login attempts per minute per e-mail and per client IP (0 = no limit).
    #[arg(long, env = "BRISK_LOGIN_RATE_LIMIT_PER_MINUTE", default_value_t = 10)]
    pub login_rate_limit_per_minute: u32,

    /// Log filter, in `tracing` EnvFilter syntax (`info`, `brisk=debug`, ...).
    #[arg(long, env = "BRISK_LOG", default_value = "info")]
    pub log: String,

    /// A request still running after this many milliseconds is answered
    /// 503 `unavailable`.
    #[arg(long, env = "BRISK_REQUEST_TIMEOUT_MS", default_value_t = 30000)]
    pub request_timeout_ms: u64,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish
    /// before the process exits anyway, in seconds.
    #[arg(long, env = "BRISK_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Add an `x-brisk-statements` header (SQL statements the request ran)
    /// to every response. Meant for tests and profiling.
    #[arg(long, env = "BRISK_STATEMENT_COUNT_HEADER", default_value_t = false)]
    pub statement_count_header: bool,

    /// Background workers of `brisk serve`: jobs run at once, and whether
    /// this node dispatches the outbox at all (0 = none; run `brisk worker`
    /// elsewhere).
    #[arg(long, env = "BRISK_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Outgoing e-mail: `smtp://host:port` (plain, for a local relay) or
    /// `smtps://user:pass@host:465`. Unset: no e-mail is sent or queued.
    #[arg(long, env = "BRISK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The From address of outgoing e-mail.
    #[arg(
        long,
        env = "BRISK_SMTP_FROM",
        default_value = "Brisk <brisk@localhost>"
    )]
    pub smtp_from: String,

    /// First retry delay of jobs and webhook deliveries, in milliseconds;
    /// later ones scale from it (×4, ×20, ×120, ×720).
    #[arg(long, env = "BRISK_RETRY_BASE_MS", default_value_t = 30000)]
    pub retry_base_ms: u64,

    /// How long a webhook's circuit stays open after 5 failures in a row,
    /// in milliseconds; doubles while it keeps failing, at most an hour.
    #[arg(long, env = "BRISK_CIRCUIT_COOLDOWN_MS", default_value_t = 60000)]
    pub circuit_cooldown_ms: u64,

    /// Allow webhook URLs on loopback, private, link-local and metadata
    /// addresses (for a receiver on the same network; never on the open
    /// internet).
    #[arg(long, env = "BRISK_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,

    /// How long a claimed job is its worker's before another worker may run
    /// it (a worker that died), in milliseconds.
    #[arg(long, env = "BRISK_JOB_LEASE_MS", default_value_t = 60000)]
    pub job_lease_ms: u64,

    /// The slowest the outbox and the job queue are looked at when nothing
    /// wakes the workers, in milliseconds.
    #[arg(long, env = "BRISK_WORKER_POLL_MS", default_value_t = 1000)]
    pub worker_poll_ms: u64,

    /// Redis (`redis://host:port/db`): the shared L2 cache, the fast
    /// invalidation fan-out between nodes and rate limits shared by every
    /// node. Unset: each node caches and limits in process.
    #[arg(long, env = "BRISK_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The in-process (L1) cache's bound, in MiB of response bytes.
    #[arg(long, env = "BRISK_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,

    /// Share-link hits (`/s/{code}`) per minute per client IP (0 = no limit).
    #[arg(
        long,
        env = "BRISK_PUBLIC_RATE_LIMIT_PER_MINUTE",
        default_value_t = 600
    )]
    pub public_rate_limit_per_minute: u32,

    /// Tests only: record every SQL statement (to check query plans).
    #[arg(skip)]
    pub sql_log: Option<crate::platform::db::SqlLog>,
}

impl Config {
    /// The database part of the configuration.
    pub fn database(&self) -> crate::platform::db::DbSettings {
        crate::platform::db::DbSettings {
            url: self.database_url.clone(),
            replica_urls: self.database_replica_urls.clone(),
            pool_size: self.database_pool_size,
            acquire_timeout: self.acquire_timeout(),
            statement_timeout_ms: self.database_statement_timeout_ms,
            group_commit: self.database_group_commit,
        }
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The configuration `brisk serve` would use with no flags: defaults
    /// overridden by `BRISK_*` environment variables. Tests and embedders
    /// start from this and set what they need.
    pub fn from_env() -> Result<Self, clap::Error> {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        Wrapper::try_parse_from(["brisk"]).map(|w| w.config)
    }
}
