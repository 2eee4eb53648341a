//! What `GET /s/{code}` answers, through the cache. Two entries per code:
//! the link's state (owner, product, active, expiry) under
//! `share_link(code)`, and the 200 body under `share_link(code)` and the
//! product's tag. A hit on both runs no SQL. Expiry is compared with the
//! clock here, at every request, so an entry never outlives it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::error::LinkError;
use super::store::{self, LinkState};
use crate::modules::catalog::{self, PublicProduct};
use crate::platform::cache::{self, Cached, tags};
use crate::platform::clock::now_micros;
use crate::platform::http::error::ApiError;
use crate::platform::state::AppState;

/// The body of a 200 from `/s/{code}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SharedProduct {
    pub product: PublicProduct,
}

/// The link's state, from the cache or (on a miss) one statement. A code
/// nobody holds is not cached: there is nothing to invalidate it by.
async fn state_of(state: &AppState, code: &str) -> Result<LinkState, ApiError> {
    let key = format!("share-link:{code}:state");
    let db = state.db.clone();
    let cached = state
        .cache
        .get_or_compute(&key, &[tags::share_link(code)], || async move {
            let link = store::state_by_code(&db, code)
                .await?
                .ok_or(LinkError::LinkNotFound)?;
            let bytes = serde_json::to_vec(&link).map_err(LinkError::CorruptState)?;
            Ok::<Bytes, ApiError>(Bytes::from(bytes))
        })
        .await?;
    Ok(serde_json::from_slice(cached.body()).map_err(LinkError::CorruptState)?)
}

/// The 200 body, from the cache or (on a miss) the catalog. An empty body
/// stands for "the product cannot be shown" (deleted or inactive): cached
/// too, until the product's next change.
async fn body_of(state: &AppState, code: &str, link: &LinkState) -> Result<Arc<Cached>, ApiError> {
    let key = format!("share-link:{code}:body");
    let filed_under = [
        tags::share_link(code),
        tags::product(&link.tenant_id, &link.product_id),
    ];
    let db = state.db.clone();
    state
        .cache
        .get_or_compute(&key, &filed_under, || async move {
            let shown = catalog::public_product(&db, &link.tenant_id, &link.product_id).await?;
            let Some(product) = shown else {
                return Ok(Bytes::new());
            };
            let body = serde_json::to_vec(&SharedProduct { product }).map_err(|e| {
                tracing::error!(error = %e, "a shared product does not serialize");
                ApiError::internal()
            })?;
            Ok::<Bytes, ApiError>(Bytes::from(body))
        })
        .await
}

/// The answer to `GET /s/{code}` (after the rate limit), and whether it is
/// a click: only a 200 to a GET counts (a HEAD only looks).
pub async fn open(
    state: &AppState,
    code: &str,
    request: &HeaderMap,
    is_click: bool,
) -> Result<Response, ApiError> {
    if !store::plausible_code(code) {
        return Err(LinkError::LinkNotFound.into());
    }
    let link = state_of(state, code).await?;
    if link.active == 0 {
        return Err(LinkError::NothingToShow.into());
    }
    if link.expires_at.is_some_and(|at| at <= now_micros()) {
        return Err(LinkError::Expired.into());
    }
    let body = body_of(state, code, &link).await?;
    if body.body().is_empty() {
        return Err(LinkError::NothingToShow.into());
    }
    let response = cache::respond(&body, request);
    if is_click && response.status() == StatusCode::OK {
        state.share_link_clicks.add((link.tenant_id, link.id), 1);
    }
    Ok(response)
}
