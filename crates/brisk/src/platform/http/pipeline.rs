//! The middleware every route runs through, outermost first:
//! observe (request id, statement count, metrics, one log line) →
//! Accept-Encoding loses identity exclusions → compression → problem+json
//! for bare and plain-text errors → ETag/304 → panic → 500 → timeout →
//! NUL in the URL → 400 → the route.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::timeout::TimeoutLayer;

use super::error::{ApiError, ErrorCode};
use super::extract::MAX_BODY_BYTES;
use crate::platform::db::{SqlLog, counting_statements};

pub const REQUEST_ID: &str = "x-request-id";
pub const STATEMENTS_HEADER: &str = "x-brisk-statements";

/// What the pipeline needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    pub request_timeout: Duration,
    pub statement_count_header: bool,
    /// Tests only: record every statement every request runs.
    pub sql_log: Option<SqlLog>,
}

/// Wraps `router` in the full request pipeline.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    options: PipelineOptions,
) -> Router<S> {
    let compression = CompressionLayer::new()
        .gzip(true)
        .br(true)
        .zstd(true)
        .compress_when(
            SizeAbove::new(1024)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE),
        );
    router
        .layer(middleware::from_fn(refuse_nul_in_url))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            options.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(etag))
        .layer(middleware::map_response(problem_for_bare_errors))
        .layer(compression)
        .layer(middleware::map_request(identity_always_acceptable))
        .layer(middleware::from_fn_with_state(options, observe))
}

/// No id, filter or search text Brisk stores can hold a NUL character
/// (PostgreSQL's text cannot), so a URL carrying one (`%00`) is a bad
/// request, refused before it reaches a handler or the database.
async fn refuse_nul_in_url(req: Request, next: Next) -> Response {
    let has_nul = |text: &str| text.contains("%00");
    let uri = req.uri();
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::bad_request("the URL contains a NUL character (%00)").into_response();
    }
    next.run(req).await
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked");
    ApiError::internal().into_response()
}

async fn observe(State(options): State<PipelineOptions>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(crate::platform::clock::new_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID, value);
    }
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());

    let (mut response, statements) =
        counting_statements(next.run(req), options.sql_log.clone()).await;

    let status = response.status().as_u16();
    let took = start.elapsed();
    let labels = [
        ("route", route.clone()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("brisk_http_requests_total", &labels).increment(1);
    metrics::histogram!("brisk_http_request_duration_seconds", &labels).record(took.as_secs_f64());
    tracing::info!(
        target: "brisk::request",
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        statements,
        "request"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    if options.statement_count_header {
        headers.insert(STATEMENTS_HEADER, HeaderValue::from(statements));
    }
    response
}

/// Errors produced outside Brisk's handlers (axum's 405, the timeout's 503)
/// come without a body: give them the problem+json every client expects.
async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    // Anything with a body of its own (a problem, the readiness report) is
    // left alone; a plain-text error is one of axum's own rejections (say,
    // a path segment that is not UTF-8) and becomes a problem too.
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let plain_text = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error())
        || (content_type.is_some() && !plain_text)
    {
        return response;
    }
    if plain_text {
        let (_, body) = response.into_parts();
        let text = match axum::body::to_bytes(body, 1024).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            Err(_) => String::new(),
        };
        let detail = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text
        };
        return match status {
            s if s.is_server_error() => ApiError::internal(),
            // A framework rejection keeps its own 4xx status.
            s => ApiError::new(ErrorCode::BadRequest, detail).with_status(s),
        }
        .into_response();
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        ),
        StatusCode::NOT_FOUND => ApiError::not_found("no such route"),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => {
            ApiError::unavailable("the request took too long")
        }
        s if s.is_server_error() => ApiError::internal(),
        s => ApiError::new(
            ErrorCode::BadRequest,
            s.canonical_reason().unwrap_or("error"),
        )
        .with_status(s),
    };
    let mut out = error.into_response();
    // Keep headers such as Allow on a 405.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Compression may change how a body is encoded, never whether there is an
/// answer: a client that excludes `identity` (`identity;q=0`, `*;q=0`)
/// would otherwise get a 406 in place of the handler's real status, even
/// after a write committed. Such exclusions are dropped, so a response the
/// client's codings cannot carry is sent as it is.
async fn identity_always_acceptable(mut req: Request) -> Request {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return req;
    };
    let excludes_identity = |part: &str| {
        let mut pieces = part.split(';').map(str::trim);
        let coding = pieces.next().unwrap_or("");
        let q_zero = pieces.any(|p| {
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
        });
        q_zero && (coding == "*" || coding.eq_ignore_ascii_case("identity"))
    };
    if !accept.split(',').any(excludes_identity) {
        return req;
    }
    let kept: Vec<&str> = accept
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !excludes_identity(p))
        .collect();
    let kept = kept.join(", ");
    match HeaderValue::from_str(&kept) {
        Ok(value) if !kept.is_empty() => {
            req.headers_mut().insert(header::ACCEPT_ENCODING, value);
        }
        _ => {
            req.headers_mut().remove(header::ACCEPT_ENCODING);
        }
    }
    req
}

/// Weak ETag on successful GETs and a 304 when `If-None-Match` matches.
/// The tag hashes the uncompressed body, so it stays the same whichever
/// encoding the client gets (hence weak).
async fn etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    if response.status() != StatusCode::OK || response.headers().contains_key(header::ETAG) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError::internal().into_response(),
    };
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let tag = format!("W/\"{:016x}-{:x}\"", hasher.finish(), bytes.len());
    let Ok(tag_value) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if if_none_match.is_some_and(|v| matches_etag(&v, &tag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        not_modified.headers_mut().insert(header::ETAG, tag_value);
        return not_modified;
    }
    parts.headers.insert(header::ETAG, tag_value);
    Response::from_parts(parts, Body::from(bytes))
}

fn matches_etag(header: &HeaderValue, tag: &str) -> bool {
    let Ok(text) = header.to_str() else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag);
    text.split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let tag = "W/\"abc-1\"";
        assert!(matches_etag(&HeaderValue::from_static("W/\"abc-1\""), tag));
        assert!(matches_etag(
            &HeaderValue::from_static("\"x\", \"abc-1\""),
            tag
        ));
        assert!(matches_etag(&HeaderValue::from_static("*"), tag));
        assert!(!matches_etag(&HeaderValue::from_static("\"abc-2\""), tag));
    }
}
