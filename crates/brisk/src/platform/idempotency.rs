//! `Idempotency-Key` for writes that clients retry (order placement, wallet
//! credits), per docs/api.md.
//!
//! Invariants: one response per (tenant, route, key). The first request
//! claims the key with an autocommitted row (status NULL = in flight); its
//! success response is written in the same transaction as the business
//! fact, so a fact without its remembered response (or the reverse) cannot
//! exist. A retry with the same body replays the stored response, waiting
//! while the first is in flight; a different body is a 422. A 4xx is
//! remembered; a 5xx releases the key so a retry runs again. A request
//! dropped mid-way (timeout, client gone) releases its claim at once, at
//! whatever await it was dropped: the claim itself is written by a task the
//! request cannot cancel (see `write_claim`). A claim left by a node that
//! died is taken over once it is older than the longest a request may run,
//! and swept with the keys past retention.
//!
//! A retry that finds the key in flight waits on an in-process `Notify`
//! that the first request fires when it finishes on this node; it reads the
//! row again only then, or on a slow backoff (20 ms doubling to 1 s) in case
//! the first request runs on another node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::Notify;

use crate::platform::clock::now_micros;
use crate::platform::db::{Db, Tx, sql};
use crate::platform::http::error::{ApiError, ApiResult, ErrorCode, PROBLEM_JSON};
use crate::platform::tenant::TenantId;

pub const HEADER: &str = "idempotency-key";
/// Keys are remembered at least this long (the API promises 24 hours).
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);
/// First re-read of an in-flight key held by another node; doubles to
/// [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_secs(1);

/// The idempotency store of one node: the database rows, and the retries
/// of this node waiting for a first request of this node to finish.
#[derive(Clone)]
pub struct IdempotencyKeys {
    db: Db,
    request_timeout: Duration,
    /// How long a waiter sleeps before its first re-read of a key in flight
    /// on another node, and at most between later ones.
    first_poll: Duration,
    max_poll: Duration,
    waiters: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl IdempotencyKeys {
    /// `request_timeout` bounds how long a first request may run: waiters
    /// give up after it, and a claim twice as old is taken over as stale.
    pub fn new(db: Db, request_timeout: Duration) -> Self {
        IdempotencyKeys {
            db,
            request_timeout,
            first_poll: FIRST_POLL,
            max_poll: MAX_POLL,
            waiters: Arc::default(),
        }
    }

    fn waiter_key(tenant_id: &str, route: &str, key: &str) -> String {
        format!("{tenant_id}\u{0}{route}\u{0}{key}")
    }

    /// The notifier of a key, made on first use.
    fn notifier(&self, waiter_key: &str) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters
            .entry(waiter_key.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes every retry of this node waiting on the key.
    fn wake(&self, waiter_key: &str) {
        let notify = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            waiters.remove(waiter_key)
        };
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Drops a notifier nobody waits on any more (its first request ran on
    /// another node, so nothing here would remove it).
    fn forget_notifier(&self, waiter_key: &str, mine: Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // Ours plus the map's: nobody else holds it.
        if Arc::strong_count(&mine) <= 2 {
            waiters.remove(waiter_key);
        }
    }

    #[cfg(test)]
    fn waiting_keys(&self) -> usize {
        self.waiters.lock().map(|w| w.len()).unwrap_or(0)
    }
}

/// The right to run a keyed request once.
#[derive(Debug, Clone)]
pub struct Claim {
    tenant_id: String,
    route: String,
    key: String,
    /// The status the route answers when it succeeds (recorded with the body).
    success: StatusCode,
    /// When this request claimed the key: recording checks it, so a request
    /// whose claim was taken over as stale can never record (and commit) too.
    claimed_at: i64,
}

enum Begin {
    /// This request holds the key; the guard is already armed.
    Fresh(Box<AbandonGuard>),
    Replay(u16, String),
}

/// Reads the `Idempotency-Key` header: absent is fine, malformed is a 400.
pub fn key_from(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// Why a claim could not record its answer.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A retry took the key over as stale: this request must not commit.
    #[error("the idempotency key was taken over by a retry")]
    TakenOver,
}

impl From<RecordError> for ApiError {
    fn from(err: RecordError) -> Self {
        match err {
            RecordError::Database(e) => ApiError::from(e),
            RecordError::TakenOver => ApiError::unavailable(
                "this Idempotency-Key was taken over by a retry; retry again to get its answer",
            ),
        }
    }
}

impl Claim {
    /// Remembers the success answer inside the business transaction.
    pub async fn record(
        &self,
        tx: &mut Tx,
        body: &impl serde::Serialize,
    ) -> Result<(), RecordError> {
        // An answer that cannot be encoded fails like a value the database
        // could not be handed (a 500).
        let body = serde_json::to_string(body).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        self.record_with(&mut **tx, self.success, &body).await
    }

    async fn record_with<'c, E>(
        &self,
        ex: E,
        status: StatusCode,
        body: &str,
    ) -> Result<(), RecordError>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let recorded = sql("UPDATE idempotency_keys SET status = $4, response = $5 \
                            WHERE tenant_id = $1 AND route = $2 AND key = $3 AND status IS NULL AND created_at = $6")
            .bind(self.tenant_id.as_str())
            .bind(self.route.as_str())
            .bind(self.key.as_str())
            .bind(i64::from(status.as_u16()))
            .bind(body)
            .bind(self.claimed_at)
            .execute(ex)
            .await?;
        if recorded == 1 {
            Ok(())
        } else {
            // Another request took the key over: this one must not commit.
            Err(RecordError::TakenOver)
        }
    }

    /// Deletes this request's unrecorded claim. A release that fails (the
    /// pool exhausted by requests cut off at the same moment, or the row
    /// still locked by a dropped transaction whose rollback has not reached
    /// the server) is tried again with backoff for up to a minute, since a
    /// claim left behind blocks its key until it goes stale.
    async fn release(&self, keys: &IdempotencyKeys) {
        let mut pause = Duration::from_millis(50);
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let released = sql("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND route = $2 AND key = $3 AND status IS NULL AND created_at = $4")
                .bind(self.tenant_id.as_str())
                .bind(self.route.as_str())
                .bind(self.key.as_str())
                .bind(self.claimed_at)
                .execute(keys.db.writer())
                .await;
            match released {
                Ok(_) => break,
                Err(err) if Instant::now() < give_up => {
                    tracing::debug!(error = %err, "releasing an idempotency key failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not release an idempotency key; it frees itself when stale");
                    break;
                }
            }
        }
        keys.wake(&self.waiter_key());
    }

    fn waiter_key(&self) -> String {
        IdempotencyKeys::waiter_key(&self.tenant_id, &self.route, &self.key)
    }
}

async fn begin(
    keys: &IdempotencyKeys,
    tenant_id: &str,
    route: &str,
    key: &str,
    request: &str,
    success: StatusCode,
) -> ApiResult<Begin> {
    let stale_after = i64::try_from(keys.request_timeout.as_micros())
        .unwrap_or(i64::MAX)
        .saturating_mul(2);
    let deadline = Instant::now() + keys.request_timeout;
    let claim = |claimed_at| Claim {
        tenant_id: tenant_id.to_owned(),
        route: route.to_owned(),
        key: key.to_owned(),
        success,
        claimed_at,
    };
    let waiter_key = IdempotencyKeys::waiter_key(tenant_id, route, key);
    let notify = keys.notifier(&waiter_key);
    let outcome = wait_for_key(
        keys,
        tenant_id,
        route,
        key,
        request,
        &notify,
        stale_after,
        deadline,
        claim,
    )
    .await;
    keys.forget_notifier(&waiter_key, notify);
    outcome
}

/// The loop of [`begin`]: claim the key, replay its answer, or wait.
#[allow(clippy::too_many_arguments)]
async fn wait_for_key(
    keys: &IdempotencyKeys,
    tenant_id: &str,
    route: &str,
    key: &str,
    request: &str,
    notify: &Notify,
    stale_after: i64,
    deadline: Instant,
    claim: impl Fn(i64) -> Claim,
) -> ApiResult<Begin> {
    let mut poll = keys.first_poll;
    loop {
        // Registered before the read, so a finish between the read and the
        // wait below still wakes it.
        let finished = notify.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        let row = sql("SELECT request, status, response, created_at FROM idempotency_keys WHERE tenant_id = $1 AND route = $2 AND key = $3")
            .bind(tenant_id)
            .bind(route)
            .bind(key)
            .fetch_optional(keys.db.writer())
            .await?;
        let now = now_micros();
        let Some(row) = row else {
            let fresh = claim(now);
            let insert = {
                let (db, fresh, request) = (keys.db.clone(), fresh.clone(), request.to_owned());
                async move {
                    sql("INSERT INTO idempotency_keys (tenant_id, route, key, request, created_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (tenant_id, route, key) DO NOTHING")
                    .bind(fresh.tenant_id.as_str())
                    .bind(fresh.route.as_str())
                    .bind(fresh.key.as_str())
                    .bind(request)
                    .bind(fresh.claimed_at)
                    .execute(db.writer())
                    .await
                }
            };
            if let Some(guard) = write_claim(keys, fresh, insert).await? {
                return Ok(Begin::Fresh(Box::new(guard)));
            }
            continue; // another request claimed it first: read its row
        };
        let stored_request: String = sqlx::Row::try_get(&row, "request")?;
        if stored_request != request {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request body",
            ));
        }
        let status: Option<i64> = sqlx::Row::try_get(&row, "status")?;
        if let Some(status) = status {
            let response: Option<String> = sqlx::Row::try_get(&row, "response")?;
            return Ok(Begin::Replay(
                u16::try_from(status).unwrap_or(500),
                response.unwrap_or_default(),
            ));
        }
        // In flight. A claim older than any request may run belongs to a
        // node that died: take it over.
        let created_at: i64 = sqlx::Row::try_get(&row, "created_at")?;
        if now.saturating_sub(created_at) > stale_after {
            let fresh = claim(now);
            let take_over = {
                let (db, fresh) = (keys.db.clone(), fresh.clone());
                async move {
                    sql("UPDATE idempotency_keys SET created_at = $5 WHERE tenant_id = $1 AND route = $2 AND key = $3 \
                         AND status IS NULL AND created_at = $4")
                    .bind(fresh.tenant_id.as_str())
                    .bind(fresh.route.as_str())
                    .bind(fresh.key.as_str())
                    .bind(created_at)
                    .bind(fresh.claimed_at)
                    .execute(db.writer())
                    .await
                }
            };
            if let Some(guard) = write_claim(keys, fresh, take_over).await? {
                return Ok(Begin::Fresh(Box::new(guard)));
            }
        }
        if Instant::now() > deadline {
            return Err(ApiError::unavailable(
                "the first request with this Idempotency-Key is still running; retry shortly",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            () = finished => {}
            () = tokio::time::sleep(poll.min(left)) => {
                poll = (poll * 2).min(keys.max_poll);
            }
        }
    }
}

/// Runs the statement that claims a key (`write`, which reports the rows
/// it changed) in a task of its own, and hands back the armed guard when
/// the key was won.
///
/// A request can be dropped at any await (request timeout, client gone).
/// Dropped while its claim statement runs, the statement may still land
/// after anything the dropped request could do to undo it, leaving the key
/// in flight until it goes stale. Run detached, the statement always
/// finishes; the guard is armed only then, and travels through the channel:
/// if the request is gone by the time it arrives, the guard is dropped
/// unreceived and releases the claim.
async fn write_claim<W>(
    keys: &IdempotencyKeys,
    claim: Claim,
    write: W,
) -> ApiResult<Option<AbandonGuard>>
where
    W: Future<Output = Result<u64, sqlx::Error>> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let keys = keys.clone();
    tokio::spawn(async move {
        let won = match write.await {
            Ok(1) => Ok(Some(AbandonGuard::arm(&keys, claim))),
            Ok(_) => Ok(None),
            Err(err) => Err(ApiError::from(err)),
        };
        let _ = sender.send(won);
    });
    receiver.await.map_err(|_| ApiError::internal())?
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

impl IdempotencyKeys {
    /// Runs `op` at most once per key. `op` gets the claim (when a key was
    /// given) and must `record` its answer inside its transaction; its
    /// answer is sent with status `success`.
    pub async fn once<F, Fut, T>(
        &self,
        tenant_id: &TenantId,
        route: &str,
        key: Option<String>,
        request: &Value,
        success: StatusCode,
        op: F,
    ) -> ApiResult<Response>
    where
        F: FnOnce(Option<Claim>) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
        T: serde::Serialize,
    {
        once(self, tenant_id.as_str(), route, key, request, success, op).await
    }
}

async fn once<F, Fut, T>(
    keys: &IdempotencyKeys,
    tenant_id: &str,
    route: &str,
    key: Option<String>,
    request: &Value,
    success: StatusCode,
    op: F,
) -> ApiResult<Response>
where
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: Future<Output = ApiResult<T>>,
    T: serde::Serialize,
{
    let Some(key) = key else {
        let body = op(None).await?;
        return Ok((success, axum::Json(body)).into_response());
    };
    // serde_json's maps are ordered by key, so equal JSON values serialize
    // to equal strings.
    let canonical = request.to_string();
    // If the request is abandoned mid-way (client gone, timeout), its
    // transaction rolls back; the guard then frees the key at once, so a
    // retry runs instead of waiting for the claim to go stale.
    let guard = match begin(keys, tenant_id, route, &key, &canonical, success).await? {
        Begin::Replay(status, body) => return Ok(replay(status, body)),
        Begin::Fresh(guard) => *guard,
    };
    let claim = guard.claim.clone();
    let outcome = op(Some(claim.clone())).await;
    // The guard stays armed while a refusal is remembered or a failure
    // released: a request dropped there still frees its key.
    let answer = match outcome {
        Ok(body) => Ok((success, axum::Json(body)).into_response()),
        Err(err) if err.status.is_server_error() => {
            claim.release(keys).await;
            Err(err)
        }
        Err(err) => {
            let problem = serde_json::to_string(&err.to_problem()).unwrap_or_default();
            if let Err(store) = claim
                .record_with(keys.db.writer(), err.status, &problem)
                .await
            {
                tracing::warn!(error = %store, "could not remember a refused idempotent request");
                claim.release(keys).await;
            }
            Err(err)
        }
    };
    guard.disarm();
    // Retries of this node waiting on the key read the answer now.
    keys.wake(&claim.waiter_key());
    answer
}

/// Releases a claim whose request was dropped before it finished.
struct AbandonGuard {
    keys: Option<IdempotencyKeys>,
    claim: Claim,
}

impl AbandonGuard {
    fn arm(keys: &IdempotencyKeys, claim: Claim) -> Self {
        AbandonGuard {
            keys: Some(keys.clone()),
            claim,
        }
    }

    /// The request finished (or never got the key): nothing to release.
    fn disarm(mut self) {
        self.keys = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(keys) = self.keys.take() {
            let claim = self.claim.clone();
            // Only an unrecorded claim of this very request is deleted, so a
            // release racing a commit cannot undo it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { claim.release(&keys).await });
            }
        }
    }
}

/// Forgets keys older than the retention period; run periodically. A claim
/// still in flight after that long belongs to a request that died with its
/// node (requests are bounded by the request timeout), so it goes too.
pub async fn forget_expired(db: &Db) -> ApiResult<u64> {
    let cutoff = now_micros() - i64::try_from(RETENTION.as_micros()).unwrap_or(i64::MAX);
    Ok(sql("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff)
        .execute(db.writer())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::db::{DbSettings, commit};
    use serde_json::json;

    async fn memory_db() -> Db {
        let db = Db::connect(&DbSettings {
            url: "sqlite::memory:".into(),
            replica_urls: Vec::new(),
            pool_size: 1,
            acquire_timeout: Duration::from_secs(60),
            statement_timeout_ms: 0,
            group_commit: true,
        })
        .await
        .expect("in-memory SQLite opens");
        db.migrate().await.expect("migrations apply");
        db
    }

    /// With re-reads an hour apart, only the in-process wake can answer the
    /// retry within the test's bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_waiting_on_a_key_in_flight_is_woken_when_the_first_finishes() {
        let db = memory_db().await;
        let mut keys = IdempotencyKeys::new(db.clone(), Duration::from_secs(3 * 3600));
        keys.first_poll = Duration::from_secs(3600);
        keys.max_poll = Duration::from_secs(3600);
        let tenant = TenantId::new("t1");
        let request = json!({"amount": 5});
        let (started, first_started) = tokio::sync::oneshot::channel::<()>();
        let (finish, may_finish) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let (keys, tenant, request, db) =
                (keys.clone(), tenant.clone(), request.clone(), db.clone());
            async move {
                keys.once(
                    &tenant,
                    "credits",
                    Some("k1".into()),
                    &request,
                    StatusCode::CREATED,
                    |claim| async move {
                        let _ = started.send(());
                        let _ = may_finish.await;
                        let answer = json!({"credited": 5});
                        let mut tx = db.begin().await?;
                        if let Some(claim) = claim {
                            claim.record(&mut tx, &answer).await?;
                        }
                        commit(tx).await?;
                        Ok(answer)
                    },
                )
                .await
                .map(|r| r.status())
            }
        });
        first_started.await.expect("the first request runs");
        let retry = tokio::spawn({
            let (keys, tenant, request) = (keys.clone(), tenant.clone(), request.clone());
            async move {
                keys.once(
                    &tenant,
                    "credits",
                    Some("k1".into()),
                    &request,
                    StatusCode::CREATED,
                    |_| async { Err::<Value, _>(ApiError::internal()) },
                )
                .await
            }
        });
        // The retry has read the row and waits on the key.
        for _ in 0..6000 {
            if keys.waiting_keys() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(keys.waiting_keys(), 1, "the retry waits on the key");
        let _ = finish.send(());
        assert_eq!(
            first.await.expect("joins").expect("answers"),
            StatusCode::CREATED
        );
        let replayed = tokio::time::timeout(Duration::from_secs(120), retry)
            .await
            .expect("woken in-process, not by a re-read an hour later")
            .expect("joins")
            .expect("answers");
        assert_eq!(replayed.status(), StatusCode::CREATED);
        assert_eq!(replayed.headers()["idempotent-replayed"], "true");
        assert_eq!(keys.waiting_keys(), 0, "no notifier is left behind");
    }
}
