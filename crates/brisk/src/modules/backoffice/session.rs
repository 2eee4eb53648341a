//! Signing in and out of the back office, the session cookie, the CSRF
//! token, and the extractors that give every page its caller.
//!
//! The cookie holds the session's id, the refresh token and the access
//! token of one API login. The access token is checked locally (no
//! statement); when it has expired the refresh token is rotated through the
//! API and the cookie renewed. The CSRF token is an HMAC of the session's
//! id, so it survives rotations and needs no storage.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::json;

use super::api::{Api, Reply};
use super::view;
use crate::modules::tenancy;
use crate::platform::auth::{self, AuthUser};
use crate::platform::state::AppState;

pub const COOKIE: &str = "brisk_admin";
/// The cookie that carries a login form's CSRF nonce before any session.
const LOGIN_COOKIE: &str = "brisk_admin_login";
const CSRF_PURPOSE: &str = "admin-csrf";
const LOGIN_CSRF_PURPOSE: &str = "admin-login-csrf";
/// The form field every POST carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// The back office's state: the node's, the API it calls, and the
/// renewals of the last minute.
#[derive(Clone)]
pub struct Office {
    pub state: AppState,
    pub api: Api,
    /// New `(access, refresh)` tokens by the hash of the refresh token they
    /// replaced. A browser whose access token expired may send several
    /// requests at once (the dashboard's refresh and a click): the first
    /// rotates the refresh token, the others wait for it and take its
    /// answer. Presenting the old token a second time would be reuse, and
    /// the API would end the login.
    renewals: moka::future::Cache<String, Arc<(String, String)>>,
}

impl Office {
    pub fn new(state: AppState, api: Api) -> Office {
        Office {
            state,
            api,
            renewals: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
        }
    }

    /// The tokens that replace `refresh_token`: rotated through the API
    /// once, shared by every request that presents it within a minute.
    async fn renew(&self, peer: SocketAddr, refresh_token: &str) -> Option<Arc<(String, String)>> {
        let rotate = async {
            let reply = self
                .api
                .call(
                    peer,
                    Method::POST,
                    "/api/v1/auth/refresh",
                    None,
                    Some(&json!({"refresh_token": refresh_token})),
                )
                .await;
            match (
                reply.body["access_token"].as_str(),
                reply.body["refresh_token"].as_str(),
            ) {
                (Some(access), Some(refresh)) => {
                    Ok(Arc::new((access.to_owned(), refresh.to_owned())))
                }
                _ => Err(reply.status),
            }
        };
        self.renewals
            .try_get_with(auth::token_hash(refresh_token), rotate)
            .await
            .ok()
    }
}

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    id: String,
    refresh_token: String,
    access_token: String,
}

impl Session {
    fn new(refresh_token: String, access_token: String) -> Session {
        Session {
            id: auth::random_secret(),
            refresh_token,
            access_token,
        }
    }

    /// The session the request's cookie names, if it is well formed.
    fn from_headers(headers: &HeaderMap) -> Option<Session> {
        let value = cookie(headers, COOKIE)?;
        let mut parts = value.splitn(3, '~');
        let (id, refresh_token, access_token) = (parts.next()?, parts.next()?, parts.next()?);
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        (plain(id) && plain(refresh_token) && plain(access_token)).then(|| Session {
            id: id.to_owned(),
            refresh_token: refresh_token.to_owned(),
            access_token: access_token.to_owned(),
        })
    }

    fn set_cookie(&self, secure: bool) -> Option<HeaderValue> {
        let value = format!("{}~{}~{}", self.id, self.refresh_token, self.access_token);
        cookie_header(COOKIE, &value, auth::REFRESH_TOKEN_SECS, secure)
    }
}

/// The value of cookie `name` in the request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn cookie_header(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

/// Whether the browser reached us over https: Brisk itself serves plain
/// HTTP, so only a proxy in front can say so.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn peer_of(parts: &Parts) -> SocketAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)), |c| c.0)
}

/// A redirect after a POST (or to the login page): 303, so the browser
/// follows with a GET.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The caller of a page: who they are, their session and their tenant's
/// currency.
pub struct Signed {
    pub user: AuthUser,
    pub peer: SocketAddr,
    pub currency: String,
    /// The token every form of the page carries.
    pub csrf: String,
    session: Session,
    /// Set when the access token was renewed for this request: the answer
    /// carries the new cookie.
    renewed: Option<HeaderValue>,
    office: Office,
}

impl Signed {
    /// Calls the API as this user.
    pub async fn call(&self, method: Method, uri: &str, body: Option<&serde_json::Value>) -> Reply {
        self.office
            .api
            .call(
                self.peer,
                method,
                uri,
                Some(&self.session.access_token),
                body,
            )
            .await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: &serde_json::Value) -> Reply {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub fn may(&self, action: auth::Action) -> bool {
        self.user.role.may(action)
    }

    /// Money in the tenant's currency, for a person: `$19.99`.
    pub fn money(&self, minor: &serde_json::Value) -> String {
        crate::platform::money::display_money(minor.as_i64().unwrap_or(0), &self.currency)
    }

    /// The answer, with the renewed cookie when the session was rotated.
    pub fn finish(&self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        if let Some(cookie) = &self.renewed {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        response
    }

    /// The page, as an HTML answer with `status`.
    pub fn page(&self, status: StatusCode, markup: Markup) -> Response {
        self.finish(view::html(status, markup))
    }

    /// A page for an API refusal on a read (another tenant's id is a 404).
    pub fn problem(&self, reply: &Reply) -> Response {
        self.page(reply.status, view::problem(self, reply))
    }

    async fn resolve(office: &Office, parts: &Parts, session: Session) -> Result<Signed, Response> {
        let peer = peer_of(parts);
        let secure = over_https(&parts.headers);
        let (user, session, renewed) =
            match office.state.tokens.verify_access(&session.access_token) {
                Ok(user) => (user, session, None),
                Err(_) => {
                    // Expired (or signed with an older key): rotate the refresh
                    // token, as a client would.
                    let Some(tokens) = office.renew(peer, &session.refresh_token).await else {
                        return Err(signed_out(secure));
                    };
                    let renewed = Session {
                        id: session.id,
                        access_token: tokens.0.clone(),
                        refresh_token: tokens.1.clone(),
                    };
                    let user = office
                        .state
                        .tokens
                        .verify_access(&renewed.access_token)
                        .map_err(|_| signed_out(secure))?;
                    let cookie = renewed.set_cookie(secure);
                    (user, renewed, cookie)
                }
            };
        let currency = tenancy::currency(&office.state, &user.tenant_id)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "back office: the tenant's currency could not be read");
                view::html(StatusCode::INTERNAL_SERVER_ERROR, view::bare("Something went wrong", html! {
                    p { "The page could not be prepared. Try again in a moment." }
                }))
            })?;
        Ok(Signed {
            csrf: office.state.tokens.sign(CSRF_PURPOSE, &session.id),
            user,
            peer,
            currency,
            session,
            renewed,
            office: office.clone(),
        })
    }
}

/// To the login page, forgetting the session.
fn signed_out(secure: bool) -> Response {
    let mut response = see_other("/admin/login");
    if let Some(cookie) = cookie_header(COOKIE, "", 0, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

impl FromRequestParts<Office> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, office: &Office) -> Result<Self, Response> {
        let Some(session) = Session::from_headers(&parts.headers) else {
            return Err(see_other("/admin/login"));
        };
        Signed::resolve(office, parts, session).await
    }
}

/// A form posted by a signed-in caller, its CSRF token checked before
/// anything else (before the session is even renewed).
pub struct Posted {
    pub signed: Signed,
    pub form: Form,
}

/// A form's fields, in order (a name may repeat).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's value, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The field's value exactly as typed (a password: its spaces are
    /// part of it); empty when absent.
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// The answer to a POST without a valid CSRF token.
fn forbidden() -> Response {
    view::html(
        StatusCode::FORBIDDEN,
        view::bare(
            "Refused",
            html! {
                p { "This form was not sent from a page of this back office (its security token is missing or wrong), so nothing was changed." }
                p { a href="/admin" { "Back to the dashboard" } }
            },
        ),
    )
}

impl FromRequest<Office> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, office: &Office) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let Some(session) = Session::from_headers(&parts.headers) else {
            // No session: nothing this form could change; sign in first.
            return Err(forbidden());
        };
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), office)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&bytes);
        if !office
            .state
            .tokens
            .verify_signature(CSRF_PURPOSE, &session.id, form.get(CSRF_FIELD))
        {
            return Err(forbidden());
        }
        let signed = Signed::resolve(office, &parts, session).await?;
        Ok(Posted { signed, form })
    }
}

// ---- signing in and out ----

fn login_form(token: &str, email: &str, message: Option<&str>) -> Markup {
    view::bare(
        "Sign in",
        html! {
            form.card method="post" action="/admin/login" {
                input type="hidden" name=(CSRF_FIELD) value=(token);
                @if let Some(message) = message {
                    p.error role="alert" id="login-error" { (message) }
                }
                p {
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                }
                p {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

/// A fresh login nonce in its cookie, and the form token made from it.
fn login_nonce(office: &Office, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let nonce = auth::random_secret();
    let token = office.state.tokens.sign(LOGIN_CSRF_PURPOSE, &nonce);
    (
        token,
        cookie_header(LOGIN_COOKIE, &nonce, 3600, over_https(headers)),
    )
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /admin/login`: the form (or the dashboard, when already signed in).
pub async fn login_page(State(office): State<Office>, headers: HeaderMap) -> Response {
    if let Some(session) = Session::from_headers(&headers)
        && office
            .state
            .tokens
            .verify_access(&session.access_token)
            .is_ok()
    {
        return see_other("/admin");
    }
    let (token, cookie) = login_nonce(&office, &headers);
    with_cookie(
        view::html(StatusCode::OK, login_form(&token, "", None)),
        cookie,
    )
}

/// `POST /admin/login`: the API's login (its limits, its answers); on
/// success the session cookie and the dashboard.
pub async fn login(
    State(office): State<Office>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let nonce_ok = cookie(&headers, LOGIN_COOKIE).is_some_and(|nonce| {
        office
            .state
            .tokens
            .verify_signature(LOGIN_CSRF_PURPOSE, nonce, form.get(CSRF_FIELD))
    });
    if !nonce_ok {
        return forbidden();
    }
    let secure = over_https(&headers);
    let email = form.get("email");
    let reply = office
        .api
        .call(
            peer,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": email, "password": form.raw("password")})),
        )
        .await;
    match (
        reply.body["access_token"].as_str(),
        reply.body["refresh_token"].as_str(),
    ) {
        (Some(access), Some(refresh)) if reply.ok() => {
            let session = Session::new(refresh.to_owned(), access.to_owned());
            let mut response = see_other("/admin");
            if let Some(cookie) = session.set_cookie(secure) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            // The nonce has served its one form.
            with_cookie(response, cookie_header(LOGIN_COOKIE, "", 0, secure))
        }
        _ => {
            let message = match reply.status {
                StatusCode::UNAUTHORIZED => "The e-mail or the password is wrong.".to_owned(),
                StatusCode::TOO_MANY_REQUESTS => {
                    "Too many sign-in attempts. Wait a minute and try again.".to_owned()
                }
                _ => reply.detail(),
            };
            let (token, cookie) = login_nonce(&office, &headers);
            let status = if reply.status.is_client_error() {
                reply.status
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            let response = view::html(status, login_form(&token, email, Some(&message)));
            with_cookie(response, cookie)
        }
    }
}

/// `GET /admin/logout`: a page with the sign-out button (a GET changes
/// nothing).
pub async fn logout_page(signed: Signed) -> Response {
    let page = view::page(
        &signed,
        "Sign out",
        view::Nav::None,
        html! {
            form method="post" action="/admin/logout" {
                input type="hidden" name=(CSRF_FIELD) value=(signed.csrf);
                p { "Sign out of the back office on this browser?" }
                button type="submit" { "Sign out" }
            }
        },
    );
    signed.page(StatusCode::OK, page)
}

/// `POST /admin/logout`: ends the API login (every refresh token of it) and
/// forgets the cookie.
pub async fn logout(headers: HeaderMap, posted: Posted) -> Response {
    let signed = &posted.signed;
    let reply = signed
        .post(
            "/api/v1/auth/logout",
            &json!({"refresh_token": signed.session.refresh_token}),
        )
        .await;
    if !reply.ok() {
        tracing::warn!(status = %reply.status, "back office: the API refused a logout");
    }
    signed_out(over_https(&headers))
}
