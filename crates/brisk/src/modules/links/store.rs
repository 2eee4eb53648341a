//! SQL for share links: create, read, list, change, the public lookup by
//! code, and the batched click increments.

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::error::LinkError;
use crate::platform::clock::{self, now_micros};
use crate::platform::db::{Db, SqlBuilder, is_unique_violation, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::tenant::TenantId;

/// Characters in a new code: alphanumerics are URL-safe, and 12 of them
/// (~71 bits) cannot be guessed.
pub const CODE_LEN: usize = 12;
/// Codes are never longer than this; a longer path segment is not one.
pub const MAX_CODE_LEN: usize = 64;

/// A share link as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShareLink {
    pub id: String,
    pub code: String,
    /// `/s/{code}`.
    pub url: String,
    pub product_id: String,
    pub active: bool,
    #[serde(serialize_with = "optional_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
    pub clicks: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

fn optional_rfc3339<S: serde::Serializer>(micros: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match micros {
        Some(m) => s.serialize_str(&clock::rfc3339(*m)),
        None => s.serialize_none(),
    }
}

#[derive(FromRow)]
struct LinkRow {
    id: String,
    code: String,
    product_id: String,
    active: i64,
    expires_at: Option<i64>,
    clicks: i64,
    created_at: i64,
    updated_at: i64,
}

impl LinkRow {
    fn into_link(self) -> ShareLink {
        ShareLink {
            url: format!("/s/{}", self.code),
            id: self.id,
            code: self.code,
            product_id: self.product_id,
            active: self.active != 0,
            expires_at: self.expires_at,
            clicks: self.clicks,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, code, product_id, active, expires_at, clicks, created_at, updated_at";

/// What the public route needs to know about a code, cached per code: who
/// owns it, what it shows, and whether it may be shown. Expiry is compared
/// with the clock at each request, never cached as a verdict.
#[derive(Debug, Clone, Serialize, Deserialize, FromRow)]
pub struct LinkState {
    pub tenant_id: TenantId,
    pub id: String,
    pub product_id: String,
    pub active: i64,
    pub expires_at: Option<i64>,
}

/// A validated new link.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub product_id: String,
    pub expires_at: Option<i64>,
}

/// A validated PATCH: `None` leaves a field alone; `expires_at:
/// Some(None)` removes the expiry.
#[derive(Debug, Clone, Default)]
pub struct LinkChanges {
    pub active: Option<bool>,
    pub expires_at: Option<Option<i64>>,
}

fn new_code() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(CODE_LEN)
        .map(char::from)
        .collect()
}

/// Whether `code` could be one this server issued (cheap to refuse
/// anything else without touching the database or the cache).
pub fn plausible_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Inserts a link with a fresh code; the product was checked by the
/// caller. A code collision (about never) draws again.
pub async fn create(db: &Db, tenant_id: &TenantId, new: NewLink) -> Result<ShareLink, LinkError> {
    let now = now_micros();
    let id = clock::new_id();
    for _ in 0..3 {
        let code = new_code();
        let inserted = sql("INSERT INTO share_links \
             (tenant_id, id, code, product_id, active, expires_at, clicks, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, 0, $6, $7)")
        .bind(tenant_id)
        .bind(id.as_str())
        .bind(code.as_str())
        .bind(new.product_id.as_str())
        .bind(new.expires_at)
        .bind(now)
        .bind(now)
        .execute(db.writer())
        .await;
        match inserted {
            Ok(_) => {
                return Ok(ShareLink {
                    url: format!("/s/{code}"),
                    id,
                    code,
                    product_id: new.product_id,
                    active: true,
                    expires_at: new.expires_at,
                    clicks: 0,
                    created_at: now,
                    updated_at: now,
                });
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LinkError::NoFreeCode)
}

/// One link of the tenant, read where every commit is seen (a replica
/// could lag behind `clicks` or a change just made).
pub async fn get(db: &Db, tenant_id: &TenantId, id: &str) -> Result<ShareLink, LinkError> {
    Ok(sql(
        "SELECT id, code, product_id, active, expires_at, clicks, created_at, updated_at \
            FROM share_links WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, LinkRow>(db.current_reader())
    .await?
    .ok_or(LinkError::LinkNotFound)?
    .into_link())
}

/// Whether the tenant has a link with this id (decides 404 over 422), on
/// the primary.
pub async fn exists(db: &Db, tenant_id: &TenantId, id: &str) -> Result<bool, LinkError> {
    Ok(
        sql("SELECT 1 FROM share_links WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(db.writer())
            .await?
            .is_some(),
    )
}

/// A page of the tenant's links, newest first, optionally of one product:
/// one statement (`share_links_product` or `share_links_tenant_created`).
pub async fn list(
    db: &Db,
    tenant_id: &TenantId,
    product_id: Option<&str>,
    page: &Page,
) -> Result<(Vec<ShareLink>, Option<String>), LinkError> {
    let mut q = SqlBuilder::new(&format!(
        "SELECT {COLUMNS} FROM share_links WHERE tenant_id = "
    ));
    q.bind(tenant_id);
    if let Some(product_id) = product_id {
        q.push(" AND product_id = ").bind(product_id);
    }
    q.after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, LinkRow>(db.current_reader())
        .await?;
    let links: Vec<ShareLink> = rows.into_iter().map(LinkRow::into_link).collect();
    Ok(page.finish(links, |l| Cursor {
        created_at: l.created_at,
        id: l.id.clone(),
    }))
}

/// Applies `changes`; one statement.
pub async fn update(
    db: &Db,
    tenant_id: &TenantId,
    id: &str,
    changes: LinkChanges,
) -> Result<ShareLink, LinkError> {
    let mut q = SqlBuilder::new("UPDATE share_links SET updated_at = ");
    q.bind(now_micros());
    if let Some(active) = changes.active {
        q.push(", active = ").bind(active);
    }
    if let Some(expires_at) = changes.expires_at {
        q.push(", expires_at = ").bind(expires_at);
    }
    q.push(" WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND id = ")
        .bind(id)
        .push(" RETURNING ")
        .push(COLUMNS);
    let row = q
        .build()
        .fetch_optional_as::<_, LinkRow>(db.writer())
        .await?
        .ok_or(LinkError::LinkNotFound)?;
    Ok(row.into_link())
}

/// The state of the link with this code, across tenants (the public route
/// knows only the code). Read where every commit is seen: the answer is
/// cached until the link's next change.
pub async fn state_by_code(db: &Db, code: &str) -> Result<Option<LinkState>, LinkError> {
    Ok(
        sql(
            "SELECT tenant_id, id, product_id, active, expires_at FROM share_links WHERE code = $1",
        )
        .bind(code)
        .fetch_optional_as::<_, LinkState>(db.current_reader())
        .await?,
    )
}

/// Links per increment statement: 3 binds each stays far below either
/// database's limit on parameters.
const CLICK_ROWS_PER_STATEMENT: usize = 500;

/// Adds `n` clicks to each `(tenant, link)`: one statement per
/// [`CLICK_ROWS_PER_STATEMENT`] links, each `clicks = clicks + n` (so
/// several nodes add theirs without reading). Returns the batches that
/// could not be written, for the caller to keep.
pub async fn add_clicks(
    db: &Db,
    clicks: Vec<((TenantId, String), u64)>,
) -> (u64, Vec<((TenantId, String), u64)>) {
    let mut written = 0u64;
    let mut failed = Vec::new();
    let mut chunks = clicks.chunks(CLICK_ROWS_PER_STATEMENT);
    for chunk in chunks.by_ref() {
        let mut q =
            SqlBuilder::new("UPDATE share_links SET clicks = share_links.clicks + v.n FROM (");
        for (i, ((tenant_id, id), n)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(" UNION ALL ");
            }
            q.push("SELECT ")
                .bind(tenant_id)
                .push(" AS tenant_id, ")
                .bind(id.as_str())
                .push(" AS id, CAST(")
                .bind(i64::try_from(*n).unwrap_or(i64::MAX))
                .push(" AS BIGINT) AS n");
        }
        q.push(") AS v WHERE share_links.tenant_id = v.tenant_id AND share_links.id = v.id");
        q.one_shot();
        match q.build().execute(db.writer()).await {
            Ok(_) => written += chunk.iter().map(|(_, n)| *n).sum::<u64>(),
            Err(e) => {
                tracing::warn!(error = %e, links = chunk.len(), "could not write share-link clicks; kept for the next flush");
                failed.extend_from_slice(chunk);
                break;
            }
        }
    }
    for chunk in chunks {
        failed.extend_from_slice(chunk);
    }
    (written, failed)
}
