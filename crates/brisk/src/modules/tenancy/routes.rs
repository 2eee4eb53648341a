//! HTTP routes of the tenancy module: parse, authorize, call the store.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::TenancyError;
use super::store::{self, NewTenant, Tenant, Tokens, User};
use crate::platform::auth::{Action, AuthUser, Role};
use crate::platform::cache::tags;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery};
use crate::platform::http::list::{
    Fields, FieldsQuery, ListQuery, Page, list_body, object_response,
};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(create_user, list_users))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupRequest {
    company_name: String,
    name: String,
    email: String,
    password: String,
    currency: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignupResponse {
    tenant: Tenant,
    user: User,
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    user: User,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    user: User,
    tenant: Tenant,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    email: String,
    name: String,
    password: String,
    role: String,
}

const USER_FIELDS: &[&str] = &["id", "email", "name", "role", "created_at"];
const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 1024;

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn check_password(v: &mut Validator, password: &str) {
    let n = password.chars().count();
    v.check(
        n >= MIN_PASSWORD_CHARS,
        "password",
        format!("must be at least {MIN_PASSWORD_CHARS} characters"),
    );
    v.check(
        n <= MAX_PASSWORD_CHARS,
        "password",
        format!("must be at most {MAX_PASSWORD_CHARS} characters"),
    );
}

/// Create a tenant and its owner.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 409, body = Problem, description = "email_taken"), (status = 422, body = Problem)))]
async fn signup(
    State(state): State<AppState>,
    body: ApiJson<SignupRequest>,
) -> ApiResult<impl IntoResponse> {
    let req = body.parse()?;
    let email = normalize_email(&req.email);
    let currency = req.currency.as_deref().unwrap_or("USD").trim().to_owned();
    let mut v = Validator::new();
    v.text("company_name", &req.company_name, 200);
    v.text("name", &req.name, 200);
    v.email("email", &email);
    check_password(&mut v, &req.password);
    v.check(
        currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()),
        "currency",
        "must be a three-letter ISO 4217 code such as USD",
    );
    v.finish()?;
    let password_hash = state.passwords.hash(req.password).await?;
    let signed_up = store::create_tenant(
        &state,
        NewTenant {
            company_name: req.company_name.trim().to_owned(),
            currency,
            owner_name: req.name.trim().to_owned(),
            owner_email: email,
            password_hash,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            tenant: signed_up.tenant,
            user: signed_up.user,
            access_token: signed_up.tokens.access_token,
            refresh_token: signed_up.tokens.refresh_token,
            expires_in: signed_up.tokens.expires_in,
        }),
    ))
}

/// Log in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem, description = "invalid_credentials"), (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let req = body.parse()?;
    let email = normalize_email(&req.email);
    // Both limits count every attempt, successful or not.
    let by_ip = state.limits.login_by_ip.check(&peer.ip().to_string()).await;
    let by_email = state.limits.login_by_email.check(&email).await;
    if let Err(wait) = by_ip.and(by_email) {
        return Err(ApiError::rate_limited(wait));
    }
    if req.password.chars().count() > MAX_PASSWORD_CHARS {
        // No stored password is that long: refuse it without hashing it.
        return Err(TenancyError::InvalidCredentials.into());
    }
    let logged_in = store::login(&state, &email, req.password).await?;
    Ok(Json(LoginResponse {
        access_token: logged_in.tokens.access_token,
        refresh_token: logged_in.tokens.refresh_token,
        expires_in: logged_in.tokens.expires_in,
        user: logged_in.user,
    }))
}

/// Exchange a refresh token for new tokens (the old one stops working).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Tokens), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    let req = body.parse()?;
    let tokens = store::refresh(&state, req.refresh_token.trim()).await?;
    Ok(Json(tokens))
}

/// End the login a refresh token belongs to.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let req = body.parse()?;
    store::logout(
        &state,
        &auth.tenant_id,
        &auth.user_id,
        req.refresh_token.trim(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller and their tenant.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 400, body = Problem, description = "unknown_field"), (status = 401, body = Problem)))]
async fn me(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(params): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(params.fields.as_deref(), &["user", "tenant"])?;
    let caller = store::me(&state, &auth.tenant_id, &auth.user_id).await?;
    let me = MeResponse {
        user: caller.user,
        tenant: caller.tenant,
    };
    Ok(object_response(&me, &fields))
}

/// Add a user to the caller's tenant (owner and admin only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest, security(("bearer" = [])),
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<CreateUserRequest>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::ManageUsers)?;
    let req = body.parse()?;
    let role = Role::parse(req.role.trim());
    if role == Some(Role::Owner) && auth.role != Role::Owner {
        return Err(ApiError::forbidden(
            "only an owner may create another owner",
        ));
    }
    let email = normalize_email(&req.email);
    let mut v = Validator::new();
    v.email("email", &email);
    v.text("name", &req.name, 200);
    check_password(&mut v, &req.password);
    v.check(
        role.is_some(),
        "role",
        "must be one of owner, admin, sales, warehouse, viewer",
    );
    v.finish()?;
    let role = role.ok_or_else(ApiError::internal)?;
    let password_hash = state.passwords.hash(req.password).await?;
    let user = store::create_user(
        &state,
        &auth.tenant_id,
        email,
        req.name.trim().to_owned(),
        role,
        password_hash,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The tenant's users, newest first (owner and admin only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "{items: [User], next_cursor}"), (status = 403, body = Problem)))]
async fn list_users(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), USER_FIELDS)?;
    auth.require(Action::ManageUsers)?;
    let tenant = &auth.tenant_id;
    let key = format!("users:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (users, next) = store::list_users(&state, tenant, &page).await?;
        list_body(&users, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::users(tenant)], compute)
        .await
}
