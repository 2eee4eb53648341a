//! The API's routes called in-process: a page asks exactly what a client
//! would, and gets exactly the API's answer (status and JSON, or the
//! problem with its field errors).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

/// The largest answer read: a list page of 100 items with their variants
/// is far below it.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// An answer of the API.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The problem's `detail`, the sentence the API explains a refusal with.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .unwrap_or("the request failed")
            .to_owned()
    }

    /// The problem's `code` (`validation_failed`, `out_of_stock`, …).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The problem's field errors, `(field, message)`, in the API's order.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or("").to_owned(),
                            e["message"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A list's `items` (empty when the answer is not a list).
    pub fn items(&self) -> &[Value] {
        self.body["items"].as_array().map_or(&[], Vec::as_slice)
    }

    /// A list's `next_cursor`, when another page follows.
    pub fn next_cursor(&self) -> Option<&str> {
        self.body["next_cursor"].as_str()
    }

    fn broken() -> Reply {
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: serde_json::json!({"code": "internal", "detail": "the request could not be made"}),
        }
    }
}

impl Api {
    pub fn new(router: Router) -> Self {
        Api { router }
    }

    /// Calls `method uri` as the client at `peer` (login limits count per
    /// address) with `token` as its bearer token and `body` as JSON.
    pub async fn call(
        &self,
        peer: SocketAddr,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            // Cached bodies are kept compressed; ask for them plain.
            .header(header::ACCEPT_ENCODING, "identity");
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                match serde_json::to_vec(value) {
                    Ok(bytes) => Body::from(bytes),
                    Err(_) => return Reply::broken(),
                }
            }
            None => Body::empty(),
        };
        let Ok(mut request) = builder.body(body) else {
            return Reply::broken();
        };
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let Ok(bytes) = axum::body::to_bytes(response.into_body(), MAX_REPLY_BYTES).await else {
            return Reply::broken();
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply { status, body }
    }
}

/// `path?name=value&…` with the values percent-encoded and the empty ones
/// left out.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in pairs {
        if !value.is_empty() {
            query.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

/// An id from a URL path, safe to put back into one: ids are UUIDs, so
/// anything else cannot name a record and becomes one that names none
/// (the API's 404).
pub fn id_segment(id: &str) -> &str {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        id
    } else {
        "not-an-id"
    }
}
