//! What every business module uses: configuration, the database, auth,
//! rate limits, metrics, clocks and ids, and the HTTP edge. Nothing here
//! knows about customers, products or orders.

pub mod auth;
pub mod cache;
pub mod clock;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod group_commit;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod keyset;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod ratelimit;
pub mod search;
pub mod state;
pub mod tally;
pub mod tenant;
pub mod validation;
