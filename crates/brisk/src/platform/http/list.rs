//! What every list endpoint shares: keyset pagination over
//! `(created_at, id)` newest first, and `fields=` selection.

use axum::Json;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult, ErrorCode, FieldError};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

pub use crate::platform::keyset::Cursor;

/// How a cursor travels: base64url of its compact JSON.
impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> ApiResult<Cursor> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
            // Ids are UUIDs: a forged one carrying NUL (which PostgreSQL
            // text cannot hold) or of absurd length never decodes.
            .filter(|c| c.id.len() <= 64 && !c.id.contains('\0'))
            .ok_or_else(|| {
                ApiError::bad_request("cursor is not one this server issued").with_errors(vec![
                    FieldError {
                        field: "cursor".into(),
                        message: "does not decode".into(),
                    },
                ])
            })
    }
}

/// The query string of a plain list route: `limit`, `cursor`, `fields`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–100 (larger is treated as 100); 20 by default.
    pub limit: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Comma-separated top-level fields to return (plus `id`).
    pub fields: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> ApiResult<Page> {
        Page::from_params(self.limit.as_deref(), self.cursor.as_deref())
    }

    pub fn fields(&self, known: &[&str]) -> ApiResult<Fields> {
        Fields::parse(self.fields.as_deref(), known)
    }
}

/// The query string of a single-object GET: `fields`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsQuery {
    /// Comma-separated top-level fields to return (plus `id`).
    pub fields: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: i64,
    pub after: Option<Cursor>,
}

/// Digits only (an optional leading `+`), too many for i64.
fn is_large_whole_number(text: &str) -> bool {
    let digits = text.strip_prefix('+').unwrap_or(text);
    digits.len() > 18 && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Page {
    pub fn from_params(limit: Option<&str>, cursor: Option<&str>) -> ApiResult<Page> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(n) if n >= 1 => n.min(MAX_LIMIT),
                // A whole number beyond i64 is still "larger than 100".
                Err(_) if is_large_whole_number(text.trim()) => MAX_LIMIT,
                _ => {
                    return Err(ApiError::bad_request(
                        "limit must be a whole number of at least 1",
                    )
                    .with_errors(vec![FieldError {
                        field: "limit".into(),
                        message: "must be a whole number of at least 1".into(),
                    }]));
                }
            },
        };
        let after = match cursor {
            None => None,
            Some("") => None,
            Some(c) => Some(Cursor::decode(c)?),
        };
        Ok(Page { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another
    /// page follows without a COUNT.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the cursor of the next page, if any.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|last| key(last).encode())
        } else {
            None
        };
        (rows, next)
    }
}

/// A validated `fields=` selection: `None` keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Fields(Option<Vec<String>>);

impl Fields {
    /// Checks every requested name against `known` (400 `unknown_field`).
    pub fn parse(param: Option<&str>, known: &[&str]) -> ApiResult<Fields> {
        Self::parse_among(param, &[known])
    }

    /// As [`Fields::parse`], for a route whose fields are a shared set plus
    /// its own (a detail: the list item's fields and what only it embeds).
    pub fn parse_among(param: Option<&str>, known: &[&[&str]]) -> ApiResult<Fields> {
        let Some(param) = param else {
            return Ok(Fields(None));
        };
        let known: Vec<&str> = known.iter().flat_map(|set| set.iter().copied()).collect();
        let mut names = Vec::new();
        let mut unknown = Vec::new();
        for name in param.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if known.contains(&name) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            } else {
                unknown.push(FieldError {
                    field: "fields".into(),
                    message: format!("unknown field {name:?}"),
                });
            }
        }
        if !unknown.is_empty() {
            let detail = format!("fields names unknown fields; known: {}", known.join(", "));
            return Err(ApiError::new(ErrorCode::UnknownField, detail).with_errors(unknown));
        }
        Ok(Fields(Some(names)))
    }

    pub fn wants(&self, name: &str) -> bool {
        match &self.0 {
            None => true,
            Some(names) => names.iter().any(|n| n == name),
        }
    }

    /// Keeps only the selected top-level fields of `object` (plus `id`).
    pub fn apply(&self, object: Value) -> Value {
        let (Some(names), Value::Object(map)) = (&self.0, &object) else {
            return object;
        };
        let mut out = Map::new();
        for (k, v) in map {
            if k == "id" || names.iter().any(|n| n == k) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }
}

#[derive(Serialize)]
struct ListBody<'a, T> {
    items: &'a [T],
    next_cursor: Option<String>,
}

/// A list response: `{"items": [...], "next_cursor": ...}` with `fields=`
/// applied to each item. Without a selection the items serialize straight
/// to the body; only a selection goes through `serde_json::Value` (which
/// costs an allocation per field).
pub fn list_response<T: Serialize>(
    items: &[T],
    next_cursor: Option<String>,
    fields: &Fields,
) -> Response {
    if fields.0.is_none() {
        return Json(ListBody { items, next_cursor }).into_response();
    }
    let items: Vec<Value> = items
        .iter()
        .map(|item| fields.apply(serde_json::to_value(item).unwrap_or(Value::Null)))
        .collect();
    Json(serde_json::json!({ "items": items, "next_cursor": next_cursor })).into_response()
}

/// The bytes of [`list_response`]'s body (for the cache).
pub fn list_body<T: Serialize>(
    items: &[T],
    next_cursor: Option<String>,
    fields: &Fields,
) -> ApiResult<Bytes> {
    let bytes = if fields.0.is_none() {
        serde_json::to_vec(&ListBody { items, next_cursor })
    } else {
        let items: Vec<Value> = items
            .iter()
            .map(|item| fields.apply(serde_json::to_value(item).unwrap_or(Value::Null)))
            .collect();
        serde_json::to_vec(&serde_json::json!({ "items": items, "next_cursor": next_cursor }))
    };
    bytes.map(Bytes::from).map_err(|err| {
        tracing::error!(error = %err, "a list did not serialize");
        ApiError::internal()
    })
}

/// The bytes of [`object_response`]'s body (for the cache).
pub fn object_body<T: Serialize>(object: &T, fields: &Fields) -> ApiResult<Bytes> {
    let bytes = if fields.0.is_none() {
        serde_json::to_vec(object)
    } else {
        serde_json::to_vec(&fields.apply(serde_json::to_value(object).unwrap_or(Value::Null)))
    };
    bytes.map(Bytes::from).map_err(|err| {
        tracing::error!(error = %err, "an object did not serialize");
        ApiError::internal()
    })
}

/// One object, with `fields=` applied.
pub fn object_response<T: Serialize>(object: &T, fields: &Fields) -> Response {
    if fields.0.is_none() {
        return Json(object).into_response();
    }
    Json(fields.apply(serde_json::to_value(object).unwrap_or(Value::Null))).into_response()
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
