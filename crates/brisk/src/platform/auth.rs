//! Authentication: argon2id password hashes, short-lived signed access
//! tokens (JWT, HS256), opaque refresh tokens stored only as hashes, roles,
//! and the `AuthUser` extractor that every `/api/v1` route takes.
//!
//! Invariants: the tenant of a request is the verified token's and nothing
//! else's; a password is never hashed on an async worker thread; refresh
//! tokens are never stored in the clear.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::platform::http::error::ApiError;
use crate::platform::ratelimit::Limits;
use crate::platform::tenant::TenantId;

/// Access tokens live this long (docs/api.md: at most 15 minutes).
pub const ACCESS_TOKEN_SECS: i64 = 15 * 60;
/// Refresh tokens live this long unless rotated or revoked first.
pub const REFRESH_TOKEN_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Sales,
    Warehouse,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Sales => "sales",
            Role::Warehouse => "warehouse",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "sales" => Role::Sales,
            "warehouse" => Role::Warehouse,
            "viewer" => Role::Viewer,
            _ => return None,
        })
    }

    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Owner | Role::Admin => true,
            Role::Sales => matches!(action, WriteCustomers | WriteSales | ReadReports),
            Role::Warehouse => matches!(action, WriteCatalog | ShipOrders),
            Role::Viewer => false,
        }
    }
}

/// What a write needs permission for (reads are open to every role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ManageUsers,
    WriteCustomers,
    /// Quotations, orders, wallet credits.
    WriteSales,
    /// Catalog and stock.
    WriteCatalog,
    /// Moving orders to shipped and delivered.
    ShipOrders,
    ManageWebhooks,
    /// Listing and retrying background jobs.
    ManageJobs,
    /// Reading reports (sales, costs and margins).
    ReadReports,
}

/// The caller, from a verified access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub tenant_id: TenantId,
    pub role: Role,
}

impl AuthUser {
    /// 403 unless the role may do `action`.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.role.may(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tid: String,
    role: Role,
    iat: i64,
    exp: i64,
}

/// Signs and verifies access tokens. Cheap to clone (every authenticated
/// request takes a copy).
#[derive(Clone)]
pub struct TokenKeys(Arc<Keys>);

struct Keys {
    /// The same secret, keying HMACs of other things than tokens (the back
    /// office's CSRF tokens), each under its own purpose.
    mac: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys(Arc::new(Keys {
            mac: secret.to_vec(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }))
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        tenant_id: &TenantId,
        role: Role,
    ) -> Result<String, ApiError> {
        let now = unix_now();
        let claims = Claims {
            sub: user_id.to_owned(),
            tid: tenant_id.as_str().to_owned(),
            role,
            iat: now,
            exp: now + ACCESS_TOKEN_SECS,
        };
        jsonwebtoken::encode(&Header::default(), &claims, &self.0.encoding).map_err(|err| {
            tracing::error!(error = %err, "signing an access token failed");
            ApiError::internal()
        })
    }

    /// A tag only this server can make: the HMAC-SHA256 of `data` under the
    /// server's secret and a `purpose` (so a tag for one use is never valid
    /// for another), base64url.
    pub fn sign(&self, purpose: &str, data: &str) -> String {
        match self.mac(purpose, data) {
            Some(mac) => URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
            None => String::new(),
        }
    }

    /// Whether `tag` is [`TokenKeys::sign`] of the same purpose and data,
    /// compared in constant time.
    pub fn verify_signature(&self, purpose: &str, data: &str, tag: &str) -> bool {
        match (URL_SAFE_NO_PAD.decode(tag), self.mac(purpose, data)) {
            (Ok(bytes), Some(mac)) => mac.verify_slice(&bytes).is_ok(),
            _ => false,
        }
    }

    fn mac(&self, purpose: &str, data: &str) -> Option<Hmac<Sha256>> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0.mac).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        Some(mac)
    }

    pub fn verify_access(&self, token: &str) -> Result<AuthUser, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(|err| {
                let why = match err.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the access token has expired"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        "the access token's signature is invalid"
                    }
                    _ => "the access token is malformed",
                };
                ApiError::unauthorized(why)
            })?;
        Ok(AuthUser {
            user_id: data.claims.sub,
            tenant_id: TenantId::new(data.claims.tid),
            role: data.claims.role,
        })
    }
}

pub fn unix_now() -> i64 {
    crate::platform::clock::now_micros() / 1_000_000
}

/// A new random secret (for the JWT key when none is configured).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new refresh token: `<tenant id>.<256 random bits>`. The tenant prefix
/// lets the token's row live under its tenant's key like every other row.
pub fn new_refresh_token(tenant_id: &TenantId) -> String {
    format!("{tenant_id}.{}", random_secret())
}

/// The tenant a refresh token claims to belong to (unverified until its hash
/// is found).
pub fn refresh_token_tenant(token: &str) -> Option<&str> {
    token.split_once('.').map(|(tenant, _)| tenant)
}

/// How refresh tokens are stored: SHA-256, hex. They carry 256 random bits,
/// so a fast hash is enough (unlike passwords).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// argon2id at one of OWASP's recommended configurations (m = 7 MiB,
/// t = 5, p = 1), run on the blocking pool. Concurrent hashes are capped,
/// since each one takes its memory and a core: a login burst queues
/// instead of exhausting memory or starving the async workers.
///
/// Why m = 7 MiB, t = 5 and not m = 19 MiB, t = 2: OWASP lists the five
/// configurations m = 46/19/12/9/7 MiB with t = 1/2/3/4/5 as an equal
/// defence that trades memory for passes, and they cost the same CPU
/// (m × t). What differs for a server is memory: the allocator keeps a
/// hash's freed block for reuse, so with two hashes at once on two cores
/// 19 MiB blocks held the resident set 38 MiB above its working set after
/// logins (measured: 73.8 MiB after 1.4 million requests with 0.05 %
/// logins; see BENCHMARKS.md). Hashes made with other parameters still
/// verify (a hash names its own) and are re-made at the next login
/// ([`is_current`]).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

/// Verified against when the e-mail is unknown, so a miss costs as much as
/// a hit and does not reveal which e-mails exist. The hash of a random
/// password nobody kept, at the same parameters as [`argon2`] (a unit test
/// holds them equal). A constant, not hashed at start: hashing takes memory
/// that would stay in the process's RSS.
const DUMMY_HASH: &str = "$argon2id$v=19$m=7168,t=5,p=1$q/2+Y8XVeOXp3L7ayN0wiA$ciQbpfCxPdJMl6VkYHMuwGlgKLfiu1mZgfQZ7tAaVAI";

/// Memory (KiB), passes and lanes of every hash made now.
const M_KIB: u32 = 7 * 1024;
const T_PASSES: u32 = 5;
const P_LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_KIB, T_PASSES, P_LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Whether a stored hash was made with today's algorithm and parameters;
/// a login re-hashes one that was not, so old hashes do not keep costing
/// their larger memory at every login.
pub fn is_current(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && params.m_cost() == M_KIB
        && params.t_cost() == T_PASSES
        && params.p_cost() == P_LANES
}

impl Passwords {
    pub fn new() -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            permits: Arc::new(Semaphore::new(parallel)),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal())?;
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            ApiError::internal()
        })
    }

    /// Whether `password` matches `stored`; with `None`, burns the same time
    /// and answers false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal())?;
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        Ok(known && ok)
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes only what it needs from the state (the token keys and the limits),
/// so any state that provides them can authenticate.
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    TokenKeys: FromRef<S>,
    Limits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                // The scheme is case-insensitive (RFC 9110 §11.1).
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        let user = TokenKeys::from_ref(state).verify_access(token)?;
        Limits::from_ref(state)
            .tenant_requests
            .check(user.tenant_id.as_str())
            .await
            .map_err(ApiError::rate_limited)?;
        Ok(user)
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
