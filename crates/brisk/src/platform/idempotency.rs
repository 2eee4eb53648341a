//! `Idempotency-Key` for writes that clients retry (order placement, wallet
//! credits), per API.md.
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

use std::future::Future;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::app::AppState;
use crate::platform::clock::now_micros;
use crate::platform::db::{Tx, sql};
use crate::platform::http::error::{ApiError, ApiResult, PROBLEM_JSON};

pub const HEADER: &str = "idempotency-key";
/// Keys are remembered at least this long (API.md: 24 hours).
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);
const POLL: Duration = Duration::from_millis(20);

/// The right to run a keyed request once.
#[derive(Debug, Clone)]
pub struct Claim {
    tenant_id: String,
    route: String,
    key: String,
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

impl Claim {
    /// Remembers the response inside the business transaction.
    pub async fn record(&self, tx: &mut Tx, status: StatusCode, body: &Value) -> ApiResult<()> {
        self.record_with(&mut **tx, status, &body.to_string()).await
    }

    async fn record_with<'c, E>(&self, ex: E, status: StatusCode, body: &str) -> ApiResult<()>
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
            Err(ApiError::unavailable(
                "this Idempotency-Key was taken over by a retry; retry again to get its answer",
            ))
        }
    }

    async fn release(&self, state: &AppState) {
        let released = sql("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND route = $2 AND key = $3 AND status IS NULL AND created_at = $4")
            .bind(self.tenant_id.as_str())
            .bind(self.route.as_str())
            .bind(self.key.as_str())
            .bind(self.claimed_at)
            .execute(state.db.writer())
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release an idempotency key; it frees itself when stale");
        }
    }
}

async fn begin(
    state: &AppState,
    tenant_id: &str,
    route: &str,
    key: &str,
    request: &str,
) -> ApiResult<Begin> {
    let stale_after = i64::try_from(state.config.request_timeout().as_micros())
        .unwrap_or(i64::MAX)
        .saturating_mul(2);
    let deadline = Instant::now() + state.config.request_timeout();
    let claim = |claimed_at| Claim {
        tenant_id: tenant_id.to_owned(),
        route: route.to_owned(),
        key: key.to_owned(),
        claimed_at,
    };
    loop {
        let row = sql("SELECT request, status, response, created_at FROM idempotency_keys WHERE tenant_id = $1 AND route = $2 AND key = $3")
            .bind(tenant_id)
            .bind(route)
            .bind(key)
            .fetch_optional(state.db.writer())
            .await?;
        let now = now_micros();
        let Some(row) = row else {
            let fresh = claim(now);
            let insert = {
                let (state, fresh, request) = (state.clone(), fresh.clone(), request.to_owned());
                async move {
                    sql("INSERT INTO idempotency_keys (tenant_id, route, key, request, created_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (tenant_id, route, key) DO NOTHING")
                    .bind(fresh.tenant_id.as_str())
                    .bind(fresh.route.as_str())
                    .bind(fresh.key.as_str())
                    .bind(request)
                    .bind(fresh.claimed_at)
                    .execute(state.db.writer())
                    .await
                }
            };
            if let Some(guard) = write_claim(state, fresh, insert).await? {
                return Ok(Begin::Fresh(Box::new(guard)));
            }
            continue; // another request claimed it first: read its row
        };
        let stored_request: String = sqlx::Row::try_get(&row, "request")?;
        if stored_request != request {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
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
                let (state, fresh) = (state.clone(), fresh.clone());
                async move {
                    sql("UPDATE idempotency_keys SET created_at = $5 WHERE tenant_id = $1 AND route = $2 AND key = $3 \
                         AND status IS NULL AND created_at = $4")
                    .bind(fresh.tenant_id.as_str())
                    .bind(fresh.route.as_str())
                    .bind(fresh.key.as_str())
                    .bind(created_at)
                    .bind(fresh.claimed_at)
                    .execute(state.db.writer())
                    .await
                }
            };
            if let Some(guard) = write_claim(state, fresh, take_over).await? {
                return Ok(Begin::Fresh(Box::new(guard)));
            }
        }
        if Instant::now() > deadline {
            return Err(ApiError::unavailable(
                "the first request with this Idempotency-Key is still running; retry shortly",
            ));
        }
        tokio::time::sleep(POLL).await;
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
async fn write_claim<W>(state: &AppState, claim: Claim, write: W) -> ApiResult<Option<AbandonGuard>>
where
    W: Future<Output = Result<u64, sqlx::Error>> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let state = state.clone();
    tokio::spawn(async move {
        let won = match write.await {
            Ok(1) => Ok(Some(AbandonGuard::arm(&state, claim))),
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

/// Runs `op` at most once per key. `op` gets the claim (when a key was
/// given) and must `record` its success response inside its transaction.
pub async fn once<F, Fut>(
    state: &AppState,
    tenant_id: &str,
    route: &str,
    key: Option<String>,
    request: &Value,
    op: F,
) -> ApiResult<Response>
where
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, Value)>>,
{
    let Some(key) = key else {
        let (status, body) = op(None).await?;
        return Ok((status, axum::Json(body)).into_response());
    };
    // serde_json's maps are ordered by key, so equal JSON values serialize
    // to equal strings.
    let canonical = request.to_string();
    // If the request is abandoned mid-way (client gone, timeout), its
    // transaction rolls back; the guard then frees the key at once, so a
    // retry runs instead of waiting for the claim to go stale.
    let guard = match begin(state, tenant_id, route, &key, &canonical).await? {
        Begin::Replay(status, body) => return Ok(replay(status, body)),
        Begin::Fresh(guard) => *guard,
    };
    let claim = guard.claim.clone();
    let outcome = op(Some(claim.clone())).await;
    // The guard stays armed while a refusal is remembered or a failure
    // released: a request dropped there still frees its key.
    let answer = match outcome {
        Ok((status, body)) => Ok((status, axum::Json(body)).into_response()),
        Err(err) if err.status.is_server_error() => {
            claim.release(state).await;
            Err(err)
        }
        Err(err) => {
            let problem = serde_json::to_string(&err.to_problem()).unwrap_or_default();
            if let Err(store) = claim
                .record_with(state.db.writer(), err.status, &problem)
                .await
            {
                tracing::warn!(error = %store.detail, "could not remember a refused idempotent request");
                claim.release(state).await;
            }
            Err(err)
        }
    };
    guard.disarm();
    answer
}

/// Releases a claim whose request was dropped before it finished.
struct AbandonGuard {
    state: Option<AppState>,
    claim: Claim,
}

impl AbandonGuard {
    fn arm(state: &AppState, claim: Claim) -> Self {
        AbandonGuard {
            state: Some(state.clone()),
            claim,
        }
    }

    /// The request finished (or never got the key): nothing to release.
    fn disarm(mut self) {
        self.state = None;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let claim = self.claim.clone();
            // Only an unrecorded claim of this very request is deleted, so a
            // release racing a commit cannot undo it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { claim.release(&state).await });
            }
        }
    }
}

/// Forgets keys older than the retention period; run periodically. A claim
/// still in flight after that long belongs to a request that died with its
/// node (requests are bounded by the request timeout), so it goes too.
pub async fn forget_expired(state: &AppState) -> ApiResult<u64> {
    let cutoff = now_micros() - i64::try_from(RETENTION.as_micros()).unwrap_or(i64::MAX);
    Ok(sql("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff)
        .execute(state.db.writer())
        .await?)
}
