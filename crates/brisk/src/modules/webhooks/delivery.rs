//! The `webhook.delivery` job: one attempt to POST one event to one
//! endpoint, and what follows from its answer (the delivery's state, the
//! endpoint's circuit).
//!
//! Before an attempt, in this order: a deleted webhook ends the job; an
//! inactive one defers it (activation brings it forward); an earlier event
//! of the same aggregate still pending for this webhook defers it (events
//! of one order arrive in order); an open circuit defers it until the
//! cool-down ends; a half-open one lets exactly one delivery probe it,
//! claimed with a conditional UPDATE of `probe_until`.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;
use tokio::sync::Notify;

use super::ssrf::{self, Host};
use super::store::{self, DELIVERY_JOB, FAILURES_TO_OPEN, MAX_COOLDOWN_MS};
use crate::platform::cache::{Cache, tags};
use crate::platform::clock::now_micros;
use crate::platform::db::{Db, commit, sql};
use crate::platform::jobs::{BoxFuture, Job, JobHandler, Outcome};
use crate::platform::state::AppState;

/// A delivery that gets no 2xx within this long has failed.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed probe is its own before another delivery may probe
/// (a prober that died): the timeout and some slack.
const PROBE_LEASE_MICROS: i64 = 15_000_000;
/// An inactive webhook's deliveries look again this often. Activation
/// brings them forward at once; this only covers an activation that raced
/// with a deferral.
const INACTIVE_RECHECK_MICROS: i64 = 600_000_000;
/// How soon a delivery held back by an earlier one of its aggregate, or by
/// someone else's probe, looks again at the soonest.
const SHORT_WAIT_MICROS: i64 = 250_000;
/// Answer bytes read (then dropped) so the connection can be reused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct DeliveryHandler {
    db: Db,
    /// Built once and shared: its pool keeps connections to endpoints
    /// alive between deliveries. `Err` keeps the reason it could not be
    /// built, reported by every attempt.
    client: Result<reqwest::Client, String>,
    allow_private: bool,
    /// The first cool-down of an opened circuit.
    cooldown_ms: i64,
    jobs_wake: Arc<Notify>,
    /// Told when an outcome moved a circuit or brought jobs forward.
    cache: Cache,
}

impl DeliveryHandler {
    pub fn new(state: &AppState) -> Self {
        let allow_private = state.config.webhook_allow_private;
        let cooldown_ms = state.config.circuit_cooldown_ms;
        let client = build_client(allow_private).map_err(|e| {
            tracing::error!(error = %e, "webhooks: the delivery client cannot be built; every delivery will fail");
            e
        });
        DeliveryHandler {
            db: state.db.clone(),
            client,
            allow_private,
            cooldown_ms: i64::try_from(cooldown_ms)
                .unwrap_or(MAX_COOLDOWN_MS)
                .clamp(1, MAX_COOLDOWN_MS),
            jobs_wake: state.jobs_wake.clone(),
            cache: state.cache.clone(),
        }
    }
}

/// The shared client: rustls with ring (the one provider the binary
/// carries), no redirects (a 3xx is an answer, and following it would
/// leave the vetted host), no proxy, and a resolver that applies the
/// address rule to every name it resolves.
fn build_client(allow_private: bool) -> Result<reqwest::Client, String> {
    // The node installed it at start (app::install_tls_provider); again
    // here so that building this client can never panic, whoever builds
    // it. A second install only reports "already installed".
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("Brisk-Webhooks/", env!("CARGO_PKG_VERSION")))
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .dns_resolver(VettedResolver { allow_private })
        .build()
        .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))
}

/// Resolves a host and refuses it when any of its addresses is refused:
/// the client then connects only to addresses this returned.
struct VettedResolver {
    allow_private: bool,
}

/// A host that resolves to an address the rule refuses.
#[derive(Debug, thiserror::Error)]
#[error("refused: {host} resolves to {ip}, a {why} address (BRISK_WEBHOOK_ALLOW_PRIVATE is off)")]
struct Refused {
    host: String,
    ip: std::net::IpAddr,
    why: &'static str,
}

impl reqwest::dns::Resolve for VettedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some((ip, why)) = ssrf::first_refused(&addrs) {
                return Err(Box::new(Refused { host, ip, why }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What the job needs of its delivery and webhook, read in one statement.
struct Loaded {
    webhook_id: String,
    event_id: String,
    status: String,
    body: String,
    url: String,
    secret: String,
    active: bool,
    deleted: bool,
    failures: i64,
    open_until: Option<i64>,
    probe_until: Option<i64>,
    /// Some when an earlier delivery of the same aggregate to this webhook
    /// is still pending: the soonest any of them runs next.
    blocked_until: Option<i64>,
}

/// How one POST went.
enum Attempt {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String },
}

impl JobHandler for DeliveryHandler {
    fn kind(&self) -> &'static str {
        DELIVERY_JOB
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.run_job(job).await {
                Ok(outcome) => outcome,
                Err(err) => Outcome::Failed(format!("database: {err}")),
            }
        })
    }
}

impl DeliveryHandler {
    async fn run_job(&self, job: &Job) -> Result<Outcome, sqlx::Error> {
        // The job has its delivery's id.
        let Some(d) = self.load(job).await? else {
            return Ok(Outcome::Done);
        };
        let now = now_micros();
        if d.deleted {
            self.give_up(job, "webhook deleted").await?;
            return Ok(Outcome::Done);
        }
        // A failed one runs again only when an admin retried its dead job.
        if d.status == "delivered" {
            return Ok(Outcome::Done);
        }
        if !d.active {
            return Ok(Outcome::Defer {
                until: now.saturating_add(INACTIVE_RECHECK_MICROS),
                why: "webhook inactive".to_owned(),
            });
        }
        if let Some(blocked_until) = d.blocked_until {
            return Ok(Outcome::Defer {
                until: blocked_until.max(now.saturating_add(SHORT_WAIT_MICROS)),
                why: "an earlier event of the same aggregate is still pending".to_owned(),
            });
        }
        let mut probe = false;
        if d.failures >= FAILURES_TO_OPEN {
            if let Some(until) = d.open_until.filter(|&until| until > now) {
                return Ok(Outcome::Defer {
                    until,
                    why: "circuit open".to_owned(),
                });
            }
            if !self.claim_probe(job, &d.webhook_id, now).await? {
                let until = d
                    .probe_until
                    .filter(|&until| until > now)
                    .unwrap_or(now.saturating_add(SHORT_WAIT_MICROS));
                return Ok(Outcome::Defer {
                    until,
                    why: "circuit half-open; another delivery is probing".to_owned(),
                });
            }
            probe = true;
        }
        let attempt = self.post(&d).await;
        let last = job.attempt >= job.max_attempts;
        let outcome = self.record(job, &d, &attempt, probe, last).await?;
        Ok(outcome)
    }

    async fn load(&self, job: &Job) -> Result<Option<Loaded>, sqlx::Error> {
        let row = sql(
            "SELECT d.webhook_id, d.event_id, d.status, d.body, \
             w.url, w.secret, w.active, w.deleted_at, w.failures, w.open_until, w.probe_until, \
             (SELECT MIN(COALESCE(j.run_at, 0)) FROM webhook_deliveries e \
              LEFT JOIN jobs j ON j.tenant_id = e.tenant_id AND j.id = e.id \
              WHERE e.tenant_id = d.tenant_id AND e.webhook_id = d.webhook_id AND e.aggregate = d.aggregate \
              AND e.status = 'pending' AND e.seq < d.seq AND d.aggregate <> '') AS blocked_until \
             FROM webhook_deliveries d JOIN webhooks w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id \
             WHERE d.tenant_id = $1 AND d.id = $2",
        )
        .bind(&job.tenant_id)
        .bind(job.id.as_str())
        .fetch_optional(self.db.writer())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Loaded {
            webhook_id: row.try_get("webhook_id")?,
            event_id: row.try_get("event_id")?,
            status: row.try_get("status")?,
            body: row.try_get("body")?,
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            active: row.try_get::<i64, _>("active")? != 0,
            deleted: row.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
            failures: row.try_get("failures")?,
            open_until: row.try_get("open_until")?,
            probe_until: row.try_get("probe_until")?,
            blocked_until: row.try_get("blocked_until")?,
        }))
    }

    /// Takes the half-open circuit's one probe, if nobody holds it: of any
    /// number of deliveries (on any node) that try at once, one wins.
    async fn claim_probe(
        &self,
        job: &Job,
        webhook_id: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let claimed = sql(
            "UPDATE webhooks SET probe_until = $3 \
             WHERE tenant_id = $1 AND id = $2 AND failures >= 5 \
             AND (open_until IS NULL OR open_until <= $4) AND (probe_until IS NULL OR probe_until <= $4)",
        )
        .bind(&job.tenant_id)
        .bind(webhook_id)
        .bind(now.saturating_add(PROBE_LEASE_MICROS))
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(claimed == 1)
    }

    /// One signed POST, to a vetted address only.
    async fn post(&self, d: &Loaded) -> Attempt {
        let failed = |error: String| Attempt::Failed {
            status: None,
            error,
        };
        let client = match &self.client {
            Ok(client) => client,
            Err(why) => return failed(why.clone()),
        };
        let url = match reqwest::Url::parse(&d.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("the webhook's URL does not parse: {e}")),
        };
        // The resolver vets names; an IP literal never reaches it.
        if !self.allow_private
            && let Some(Host::Ip(ip)) = ssrf::host_of(&url)
            && let Some(why) = ssrf::refused_because(ip)
        {
            return failed(format!(
                "refused: {ip} is a {why} address (BRISK_WEBHOOK_ALLOW_PRIVATE is off)"
            ));
        }
        let t = crate::platform::auth::unix_now();
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Brisk-Event-Id", d.event_id.as_str())
            .header("Brisk-Signature", signature(&d.secret, t, &d.body))
            .body(d.body.clone())
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            Err(err) => return failed(describe(&err)),
        };
        let status = answer.status();
        // Read a bounded part of the answer so the connection goes back to
        // the pool; what it says does not matter.
        let mut read = 0usize;
        while read < MAX_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            Attempt::Delivered {
                status: status.as_u16(),
            }
        } else {
            Attempt::Failed {
                status: Some(status.as_u16()),
                error: format!("answered {status}"),
            }
        }
    }

    /// Writes the attempt's result: the delivery's state and the webhook's
    /// circuit, in one transaction; returns the job's outcome.
    async fn record(
        &self,
        job: &Job,
        d: &Loaded,
        attempt: &Attempt,
        probe: bool,
        last: bool,
    ) -> Result<Outcome, sqlx::Error> {
        let now = now_micros();
        let mut tx = self.db.begin().await?;
        let outcome = match attempt {
            Attempt::Delivered { status } => {
                sql(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, \
                     response_status = $3, last_error = NULL, delivered_at = $4 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&job.tenant_id)
                .bind(job.id.as_str())
                .bind(i64::from(*status))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let reset = sql("UPDATE webhooks SET failures = 0, cooldown_ms = 0, open_until = NULL, probe_until = NULL \
                     WHERE tenant_id = $1 AND id = $2 \
                     AND (failures <> 0 OR open_until IS NOT NULL OR probe_until IS NOT NULL)")
                .bind(&job.tenant_id)
                .bind(d.webhook_id.as_str())
                .execute(&mut *tx)
                .await?;
                // The circuit just closed: what waited for it goes now.
                let requeued = if d.failures >= FAILURES_TO_OPEN {
                    store::requeue_deferred(&mut tx, &job.tenant_id, &d.webhook_id, now).await?
                } else {
                    0
                };
                commit(tx).await?;
                // Most deliveries change no circuit: only a reset is news.
                if reset > 0 {
                    self.cache.invalidate(&[tags::webhooks(&job.tenant_id)]);
                }
                if requeued > 0 {
                    self.cache.invalidate(&[tags::jobs(&job.tenant_id)]);
                    crate::platform::jobs::wake_runners(&self.db, &self.jobs_wake).await;
                }
                metrics::counter!("brisk_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                return Ok(Outcome::Done);
            }
            Attempt::Failed { status, error } => {
                sql(
                    "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
                     response_status = $4, last_error = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND status <> 'delivered'",
                )
                .bind(&job.tenant_id)
                .bind(job.id.as_str())
                .bind(if last { "failed" } else { "pending" })
                .bind(status.map(i64::from))
                .bind(error.as_str())
                .execute(&mut *tx)
                .await?;
                // Values on the right are the row's before the update. The
                // 5th failure in a row opens the circuit for the base
                // cool-down; a failed probe reopens it for twice the last
                // (at most an hour); a failure of a delivery that was
                // already in flight when the circuit opened changes only
                // the count.
                sql("UPDATE webhooks SET failures = failures + 1, \
                     cooldown_ms = CASE WHEN failures + 1 < 5 THEN cooldown_ms \
                                        WHEN failures < 5 THEN $3 \
                                        WHEN $4 = 1 THEN CASE WHEN cooldown_ms * 2 > $5 THEN $5 ELSE cooldown_ms * 2 END \
                                        ELSE cooldown_ms END, \
                     open_until = CASE WHEN failures + 1 < 5 THEN open_until \
                                       WHEN failures < 5 THEN $6 + $3 * 1000 \
                                       WHEN $4 = 1 THEN $6 + (CASE WHEN cooldown_ms * 2 > $5 THEN $5 ELSE cooldown_ms * 2 END) * 1000 \
                                       ELSE open_until END, \
                     probe_until = CASE WHEN $4 = 1 THEN NULL ELSE probe_until END \
                     WHERE tenant_id = $1 AND id = $2")
                .bind(&job.tenant_id)
                .bind(d.webhook_id.as_str())
                .bind(self.cooldown_ms)
                .bind(probe)
                .bind(MAX_COOLDOWN_MS)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let label = if last { "gave_up" } else { "failed" };
                metrics::counter!("brisk_webhook_deliveries_total", "outcome" => label)
                    .increment(1);
                Outcome::Failed(error.clone())
            }
        };
        commit(tx).await?;
        if matches!(attempt, Attempt::Failed { .. }) {
            // Every failure counts towards (or reopens) the circuit.
            self.cache.invalidate(&[tags::webhooks(&job.tenant_id)]);
        }
        Ok(outcome)
    }

    /// Marks a delivery that will never be sent as failed.
    async fn give_up(&self, job: &Job, why: &str) -> Result<(), sqlx::Error> {
        sql(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(&job.tenant_id)
        .bind(job.id.as_str())
        .bind(why)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}

/// A failed send in words an operator can act on, without the URL (it may
/// carry credentials): a refusal by the address rule as it is, a timeout as
/// one, anything else as its chain of causes.
fn describe(err: &reqwest::Error) -> String {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return format!("timed out after {} s", TIMEOUT.as_secs());
    }
    let mut text = String::from(if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    });
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_the_hmac_of_time_dot_body() {
        // Reference value from `printf '1700000000.{"a":1}' | openssl dgst
        // -sha256 -hmac whsec_test_secret_123`.
        assert_eq!(
            super::signature("whsec_test_secret_123", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=e89dcbfdce3392fb275033fb083d8c81e095a63bf687d9a2cd50e7d5f55e21f6"
        );
    }
}
