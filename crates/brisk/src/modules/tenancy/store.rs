//! SQL for tenants, users and refresh tokens.

use serde::Serialize;
use sqlx::FromRow;

use super::error::TenancyError;
use crate::platform::auth::{self, Role};
use crate::platform::clock::{self, now_micros};
use crate::platform::db::{SqlBuilder, Tx, commit, is_unique_violation, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Tenant {
    #[schema(value_type = String)]
    pub id: TenantId,
    pub name: String,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(FromRow)]
struct Credentials {
    tenant_id: TenantId,
    id: String,
    email: String,
    name: String,
    role: String,
    password_hash: String,
    created_at: i64,
}

/// The tokens handed out at signup, login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

pub struct NewTenant {
    pub company_name: String,
    pub currency: String,
    pub owner_name: String,
    pub owner_email: String,
    pub password_hash: String,
}

/// A new tenant, its owner and the owner's first login.
pub struct SignedUp {
    pub tenant: Tenant,
    pub user: User,
    pub tokens: Tokens,
}

/// A user who logged in, with the login's tokens.
pub struct LoggedIn {
    pub user: User,
    pub tokens: Tokens,
}

/// The user an access token names, and their tenant.
pub struct Caller {
    pub user: User,
    pub tenant: Tenant,
}

const USER_COLUMNS: &str = "id, email, name, role, created_at";

/// Creates a tenant with its owner and a first login, in one transaction.
pub async fn create_tenant(state: &AppState, new: NewTenant) -> Result<SignedUp, TenancyError> {
    let now = now_micros();
    let tenant = Tenant {
        id: TenantId::new(clock::new_id()),
        name: new.company_name,
        currency: new.currency,
    };
    let user = User {
        id: clock::new_id(),
        email: new.owner_email,
        name: new.owner_name,
        role: Role::Owner.as_str().to_owned(),
        created_at: now,
    };
    let mut tx = state.db.begin().await?;
    sql("INSERT INTO tenants (id, name, currency, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant.id.clone())
        .bind(tenant.name.clone())
        .bind(tenant.currency.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    insert_user(&mut tx, &tenant.id, &user, &new.password_hash).await?;
    let tokens = start_login(state, &mut tx, &tenant.id, &user.id, Role::Owner).await?;
    commit(tx).await?;
    Ok(SignedUp {
        tenant,
        user,
        tokens,
    })
}

async fn insert_user(
    tx: &mut Tx,
    tenant_id: &TenantId,
    user: &User,
    password_hash: &str,
) -> Result<(), TenancyError> {
    sql(
        "INSERT INTO users (tenant_id, id, email, name, role, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant_id)
    .bind(user.id.clone())
    .bind(user.email.clone())
    .bind(user.name.clone())
    .bind(user.role.clone())
    .bind(password_hash.to_owned())
    .bind(user.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            TenancyError::EmailTaken
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// A new refresh-token family (one login) plus its access token.
async fn start_login(
    state: &AppState,
    tx: &mut Tx,
    tenant_id: &TenantId,
    user_id: &str,
    role: Role,
) -> Result<Tokens, TenancyError> {
    let family = clock::new_id();
    issue_tokens(state, tx, tenant_id, user_id, role, &family).await
}

async fn issue_tokens(
    state: &AppState,
    tx: &mut Tx,
    tenant_id: &TenantId,
    user_id: &str,
    role: Role,
    family_id: &str,
) -> Result<Tokens, TenancyError> {
    let refresh = auth::new_refresh_token(tenant_id);
    let now = now_micros();
    sql("INSERT INTO refresh_tokens (tenant_id, token_hash, user_id, family_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)")
    .bind(tenant_id)
    .bind(auth::token_hash(&refresh))
    .bind(user_id.to_owned())
    .bind(family_id.to_owned())
    .bind(now + auth::REFRESH_TOKEN_SECS * 1_000_000)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(Tokens {
        access_token: state
            .tokens
            .issue_access(user_id, tenant_id, role)
            .map_err(|_| TenancyError::TokenSigning)?,
        refresh_token: refresh,
        expires_in: auth::ACCESS_TOKEN_SECS,
    })
}

/// The role a stored user row names.
fn stored_role(user_id: &str, role: &str) -> Result<Role, TenancyError> {
    Role::parse(role).ok_or_else(|| TenancyError::CorruptRole {
        user_id: user_id.to_owned(),
        role: role.to_owned(),
    })
}

/// Checks e-mail and password; on success starts a login.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
) -> Result<LoggedIn, TenancyError> {
    let found = sql("SELECT tenant_id, id, email, name, role, password_hash, created_at FROM users WHERE email = $1")
        .bind(email.to_owned())
        .fetch_optional_as::<_, Credentials>(state.db.writer())
        .await?;
    // A hash made with older parameters is re-made from the password
    // that just matched it (the only time the password is at hand).
    let outdated = found
        .as_ref()
        .filter(|c| !auth::is_current(&c.password_hash))
        .map(|_| password.clone());
    let ok = state
        .passwords
        .verify(password, found.as_ref().map(|c| c.password_hash.clone()))
        .await
        .map_err(|_| TenancyError::PasswordHashing)?;
    let (true, Some(c)) = (ok, found) else {
        return Err(TenancyError::InvalidCredentials);
    };
    let role = stored_role(&c.id, &c.role)?;
    let rehashed = match outdated {
        Some(password) => Some(
            state
                .passwords
                .hash(password)
                .await
                .map_err(|_| TenancyError::PasswordHashing)?,
        ),
        None => None,
    };
    let mut tx = state.db.begin().await?;
    if let Some(hash) = rehashed {
        // Only if the hash is still the one that matched: a password
        // changed meanwhile wins.
        sql("UPDATE users SET password_hash = $1 WHERE tenant_id = $2 AND id = $3 AND password_hash = $4")
            .bind(hash)
            .bind(&c.tenant_id)
            .bind(c.id.as_str())
            .bind(c.password_hash.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let tokens = start_login(state, &mut tx, &c.tenant_id, &c.id, role).await?;
    commit(tx).await?;
    let user = User {
        id: c.id,
        email: c.email,
        name: c.name,
        role: c.role,
        created_at: c.created_at,
    };
    Ok(LoggedIn { user, tokens })
}

/// Rotates a refresh token. A token presented a second time means it leaked
/// (or a client raced itself): the whole family is revoked.
pub async fn refresh(state: &AppState, token: &str) -> Result<Tokens, TenancyError> {
    let tenant_id = auth::refresh_token_tenant(token).ok_or(TenancyError::RefreshRejected)?;
    // Trusted only because the token's hash is found under it below.
    let tenant_id = TenantId::new(tenant_id);
    let hash = auth::token_hash(token);
    let now = now_micros();
    let mut tx = state.db.begin().await?;
    // Claim the token atomically: of two concurrent presentations only one
    // sees used = 0.
    let claimed = sql("UPDATE refresh_tokens SET used = 1 \
                       WHERE tenant_id = $1 AND token_hash = $2 AND used = 0 AND revoked = 0 AND expires_at > $3 \
                       RETURNING user_id, family_id")
    .bind(tenant_id.clone())
    .bind(hash.clone())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = claimed else {
        let reused = sql("UPDATE refresh_tokens SET revoked = 1 WHERE tenant_id = $1 AND family_id = \
                          (SELECT family_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2 AND used = 1)")
        .bind(tenant_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        commit(tx).await?;
        if reused > 0 {
            tracing::warn!("refresh token reuse detected; its family was revoked");
        }
        return Err(TenancyError::RefreshRejected);
    };
    let user_id: String = sqlx::Row::try_get(&row, "user_id")?;
    let family_id: String = sqlx::Row::try_get(&row, "family_id")?;
    let role_row = sql("SELECT role FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id.clone())
        .bind(user_id.clone())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(TenancyError::RefreshRejected)?;
    let role: String = sqlx::Row::try_get(&role_row, "role")?;
    let role = stored_role(&user_id, &role)?;
    let tokens = issue_tokens(state, &mut tx, &tenant_id, &user_id, role, &family_id).await?;
    commit(tx).await?;
    Ok(tokens)
}

/// Revokes the login a refresh token belongs to; unknown tokens are ignored.
/// Ends the login `token` belongs to, if it is one of the caller's own:
/// anyone else's token (or an unknown one) is left alone, with the same 204.
pub async fn logout(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &str,
    token: &str,
) -> Result<(), TenancyError> {
    if auth::refresh_token_tenant(token) != Some(tenant_id.as_str()) {
        return Ok(());
    }
    sql(
        "UPDATE refresh_tokens SET revoked = 1 WHERE tenant_id = $1 AND family_id = \
         (SELECT family_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2 AND user_id = $3)",
    )
    .bind(tenant_id)
    .bind(auth::token_hash(token))
    .bind(user_id.to_owned())
    .execute(state.db.writer())
    .await?;
    Ok(())
}

pub async fn me(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &str,
) -> Result<Caller, TenancyError> {
    let user =
        sql("SELECT id, email, name, role, created_at FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(user_id.to_owned())
            .fetch_optional_as::<_, User>(state.db.reader())
            .await?
            .ok_or(TenancyError::UserGone)?;
    let tenant = tenant(state, tenant_id).await?;
    Ok(Caller { user, tenant })
}

/// The tenant's currency. It never changes, so each node keeps it once read.
pub async fn currency(state: &AppState, tenant_id: &TenantId) -> Result<String, TenancyError> {
    if let Some(c) = state.currencies.get(tenant_id) {
        return Ok(c);
    }
    let currency = tenant(state, tenant_id).await?.currency;
    state
        .currencies
        .insert(tenant_id.to_owned(), currency.clone());
    Ok(currency)
}

pub async fn tenant(state: &AppState, tenant_id: &TenantId) -> Result<Tenant, TenancyError> {
    sql("SELECT id, name, currency FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_optional_as::<_, Tenant>(state.db.reader())
        .await?
        .ok_or(TenancyError::TenantGone)
}

pub async fn create_user(
    state: &AppState,
    tenant_id: &TenantId,
    email: String,
    name: String,
    role: Role,
    password_hash: String,
) -> Result<User, TenancyError> {
    let user = User {
        id: clock::new_id(),
        email,
        name,
        role: role.as_str().to_owned(),
        created_at: now_micros(),
    };
    let mut tx = state.db.begin().await?;
    insert_user(&mut tx, tenant_id, &user, &password_hash).await?;
    commit(tx).await?;
    state
        .cache
        .invalidate(&[crate::platform::cache::tags::users(tenant_id)]);
    Ok(user)
}

pub async fn list_users(
    state: &AppState,
    tenant_id: &TenantId,
    page: &Page,
) -> Result<(Vec<User>, Option<String>), TenancyError> {
    let mut q = SqlBuilder::new(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = "
    ));
    q.bind(tenant_id)
        .after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, User>(state.db.current_reader())
        .await?;
    Ok(page.finish(rows, |u| Cursor {
        created_at: u.created_at,
        id: u.id.clone(),
    }))
}

/// The login `brisk serve --demo` prints.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
    pub created: bool,
}

/// Creates the demo tenant unless its owner's e-mail already exists.
pub async fn create_demo_tenant(state: &AppState) -> Result<DemoLogin, TenancyError> {
    let email = "owner@demo.brisk.local".to_owned();
    let password = "brisk-demo-2026".to_owned();
    let exists = sql("SELECT 1 FROM users WHERE email = $1")
        .bind(email.clone())
        .fetch_optional(state.db.writer())
        .await?
        .is_some();
    if !exists {
        let password_hash = state
            .passwords
            .hash(password.clone())
            .await
            .map_err(|_| TenancyError::PasswordHashing)?;
        create_tenant(
            state,
            NewTenant {
                company_name: "Demo Company".into(),
                currency: "USD".into(),
                owner_name: "Demo Owner".into(),
                owner_email: email.clone(),
                password_hash,
            },
        )
        .await?;
    }
    Ok(DemoLogin {
        email,
        password,
        created: !exists,
    })
}
