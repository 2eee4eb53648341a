//! The Prometheus recorder. Installed once per process (tests start many
//! servers in one process and share it).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::db::Db;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Renders the exposition text, refreshing the pool gauges first.
pub fn render(handle: Option<&PrometheusHandle>, db: &Db) -> String {
    for (name, pool) in db.pools() {
        let size = f64::from(pool.size());
        let idle = pool.num_idle() as f64;
        let max = f64::from(pool.options().get_max_connections());
        metrics::gauge!("brisk_db_pool_connections", "pool" => name.clone(), "state" => "open")
            .set(size);
        metrics::gauge!("brisk_db_pool_connections", "pool" => name.clone(), "state" => "idle")
            .set(idle);
        metrics::gauge!("brisk_db_pool_connections", "pool" => name.clone(), "state" => "in_use")
            .set((size - idle).max(0.0));
        metrics::gauge!("brisk_db_pool_max_connections", "pool" => name).set(max);
    }
    handle.map(PrometheusHandle::render).unwrap_or_default()
}
