//! Request extractors that answer bad input with the problem+json codes of docs/api.md
//! instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode, FieldError};

/// The largest request body Brisk reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body. Extracting it answers 413 over 1 MiB (from
/// `Content-Length`, before reading), 415 when not JSON and 400 when
/// malformed. A well-formed body of the wrong shape is a 422 naming the
/// field, but the API ranks 422 below 403 and 404, so that answer waits until
/// the handler calls [`ApiJson::parse`] after authorizing and finding the
/// object.
pub struct ApiJson<T>(Result<T, ApiError>);

impl<T> ApiJson<T> {
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

/// A body for action routes (`/send`, `/accept`, …): an empty body, or JSON.
pub struct ActionJson<T>(Result<T, ApiError>);

impl<T> ActionJson<T> {
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state, false).await?;
        parse_json_deferred(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ActionJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state, true).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ActionJson(Ok(T::default())));
        }
        parse_json_deferred(&bytes).map(ActionJson)
    }
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    empty_allowed: bool,
) -> Result<Bytes, ApiError> {
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(payload_too_large());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_json = content_type.as_deref().is_some_and(is_json_content_type);
    let not_json = || {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be JSON (Content-Type: application/json)",
        )
    };
    if !(is_json || empty_allowed) {
        return Err(not_json());
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request(format!("could not read the request body: {rejection}"))
        }
    })?;
    if is_json {
        return Ok(bytes);
    }
    // An action route takes no input: an empty body or `{}` is fine
    // whatever its declared type (`curl -d '{}'` declares a form).
    let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("-");
    let empty_object = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .is_some_and(|inside| inside.trim().is_empty());
    if text.is_empty() || empty_object {
        Ok(Bytes::new())
    } else {
        Err(not_json())
    }
}

fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5 && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Syntax errors now (outer `Err`); shape errors later (inner `Err`).
fn parse_json_deferred<T: DeserializeOwned>(bytes: &[u8]) -> Result<Result<T, ApiError>, ApiError> {
    match parse_json::<T>(bytes) {
        Ok(value) => Ok(Ok(value)),
        Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => Err(e),
        Err(shape) => {
            // A shape error stops the parser early: make sure the rest is
            // well-formed, since malformed JSON outranks it.
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
            Ok(Err(shape))
        }
    }
}

/// Parses a JSON body; syntax errors are 400, shape errors 422 with the
/// path of the offending field (`items[0].quantity`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if result.is_ok() {
        // Trailing bytes after the value make the body malformed.
        de.end()
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        refuse_nul_strings(bytes)?;
    }
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let first = shape_error(&path, &inner.to_string());
                let all = (bytes.len() <= SHAPE_SEARCH_MAX_BYTES)
                    .then(|| serde_json::from_slice(bytes).ok())
                    .flatten()
                    .map(every_shape_error::<T>);
                ApiError::validation(all.filter(|a| !a.is_empty()).unwrap_or(vec![first]))
            }
            _ => {
                let mut e = ApiError::bad_request(format!("malformed JSON: {inner}"));
                if path != "." {
                    e.errors.push(FieldError {
                        field: path,
                        message: strip_position(&inner.to_string()),
                    });
                }
                e
            }
        }
    })
}

/// JSON can smuggle a NUL character into a string as `\u0000`; no text
/// Brisk stores can hold one (PostgreSQL's text cannot), so each string (or
/// key) carrying one is a 422 naming its field. Only bodies containing the
/// escape are walked.
fn refuse_nul_strings(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let mut errors = Vec::new();
    nul_fields(&value, &mut String::new(), &mut errors);
    if errors.is_empty() {
        Ok(()) // an escaped backslash before "u0000": plain text
    } else {
        Err(ApiError::validation(errors))
    }
}

fn nul_fields(value: &serde_json::Value, path: &mut String, errors: &mut Vec<FieldError>) {
    let here = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => errors.push(FieldError {
            field: here(path),
            message: "must not contain NUL characters".into(),
        }),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                nul_fields(item, path, errors);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if key.contains('\0') {
                    errors.push(FieldError {
                        field: here(path),
                        message: "names must not contain NUL characters".into(),
                    });
                } else {
                    nul_fields(item, path, errors);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Bodies up to this size get every shape error listed; larger ones (which
/// would cost many re-reads) get the first.
const SHAPE_SEARCH_MAX_BYTES: usize = 64 * 1024;
/// At most this many re-reads of one body while listing its errors.
const SHAPE_SEARCH_MAX_READS: usize = 64;

/// One step into a JSON value.
#[derive(Clone, PartialEq)]
enum Step {
    Index(usize),
    Key(String),
}

/// Every shape error of `value` read as `T`, where serde stops at the
/// first (docs/api.md: `errors` lists each field). After each error the
/// offending field gets a stand-in of another JSON type, the first that
/// moves the error elsewhere, and the value is read again. Errors inside a
/// field already reported (a stand-in `{}` for a missing object) are
/// patched without being reported.
fn every_shape_error<T: DeserializeOwned>(mut value: serde_json::Value) -> Vec<FieldError> {
    use serde_json::json;
    let stand_ins = [
        json!(0),
        json!(""),
        json!(false),
        json!([]),
        json!({}),
        serde_json::Value::Null,
    ];
    let mut reported: Vec<FieldError> = Vec::new();
    // The field being patched, and the next stand-in to try there.
    let mut patching: Option<(String, usize)> = None;
    for _ in 0..SHAPE_SEARCH_MAX_READS {
        let Err(err) = serde_path_to_error::deserialize::<_, T>(&value) else {
            break;
        };
        let Some((steps, error)) = locate(&err) else {
            break;
        };
        let next = match &patching {
            Some((field, tried)) if *field == error.field => *tried,
            _ => {
                let inside_reported = reported.iter().any(|r| {
                    error.field == r.field
                        || error
                            .field
                            .strip_prefix(r.field.as_str())
                            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
                });
                if !inside_reported {
                    reported.push(error.clone());
                }
                0
            }
        };
        let Some(stand_in) = stand_ins.get(next) else {
            break; // no stand-in gets past this field
        };
        if !set_at(&mut value, &steps, stand_in.clone()) {
            break;
        }
        patching = Some((error.field, next + 1));
    }
    reported
}

/// Where a shape error is, as steps into the value, and its field error.
fn locate(err: &serde_path_to_error::Error<serde_json::Error>) -> Option<(Vec<Step>, FieldError)> {
    let mut steps = Vec::new();
    for segment in err.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => steps.push(Step::Index(*index)),
            serde_path_to_error::Segment::Map { key } => steps.push(Step::Key(key.clone())),
            _ => return None,
        }
    }
    let error = shape_error(&err.path().to_string(), &err.inner().to_string());
    if let Some(name) = error
        .message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        steps.push(Step::Key(name.to_owned()));
    }
    Some((steps, error))
}

/// Puts `new` at `steps` (adding the last key to its object if absent);
/// false when the path does not lead into the value.
fn set_at(value: &mut serde_json::Value, steps: &[Step], new: serde_json::Value) -> bool {
    let Some((last, parents)) = steps.split_last() else {
        *value = new;
        return true;
    };
    let mut here = value;
    for step in parents {
        let next = match (step, here) {
            (Step::Index(i), serde_json::Value::Array(items)) => items.get_mut(*i),
            (Step::Key(k), serde_json::Value::Object(fields)) => fields.get_mut(k),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        here = next;
    }
    match (last, here) {
        (Step::Index(i), serde_json::Value::Array(items)) => match items.get_mut(*i) {
            Some(slot) => {
                *slot = new;
                true
            }
            None => false,
        },
        (Step::Key(k), serde_json::Value::Object(fields)) => {
            fields.insert(k.clone(), new);
            true
        }
        _ => false,
    }
}

/// The field a shape error is about. serde reports a missing field at the
/// object that lacks it ("missing field `price`" at `variants[0]`); the
/// client needs the field itself (`variants[0].price`).
fn shape_error(path: &str, message: &str) -> FieldError {
    let message = strip_position(message);
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    let field = match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (".", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    };
    FieldError { field, message }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query-string parameters; anything that does not parse is a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                ApiError::bad_request(format!("bad query parameter {field}: {}", err.inner()))
                    .with_errors(vec![FieldError {
                        field,
                        message: err.inner().to_string(),
                    }])
            })
    }
}

fn bad_param(name: &str, message: &str) -> ApiError {
    ApiError::bad_request(format!("{name} {message}")).with_errors(vec![FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }])
}

/// A `true`/`false` query parameter (400 otherwise).
/// A body's refusal, unless what the path addresses is missing: the 404
/// outranks the 422. `exists` runs only for a refused body, so a good
/// request costs no extra statement (its write finds a missing target by
/// itself).
pub async fn refusal_unless_missing<T, E: Into<ApiError>>(
    parsed: Result<T, ApiError>,
    exists: impl Future<Output = Result<bool, E>>,
    missing: E,
) -> Result<T, ApiError> {
    match parsed {
        Ok(body) => Ok(body),
        Err(refusal) if exists.await.map_err(Into::into)? => Err(refusal),
        Err(_) => Err(missing.into()),
    }
}

pub fn parse_bool(name: &str, value: Option<&str>) -> Result<Option<bool>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(bad_param(name, "must be true or false")),
    }
}

/// A whole-number query parameter (400 otherwise).
pub fn parse_i64(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => text
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad_param(name, "must be a whole number")),
    }
}

/// Converts an already-parsed JSON value into `T`: shape errors are a 422
/// naming the field, as for [`ApiJson`].
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(&value).map_err(|err| {
        let path = err.path().to_string();
        let first = shape_error(&path, &err.inner().to_string());
        let small = value.to_string().len() <= SHAPE_SEARCH_MAX_BYTES;
        let all = if small {
            every_shape_error::<T>(value.clone())
        } else {
            Vec::new()
        };
        ApiError::validation(if all.is_empty() { vec![first] } else { all })
    })
}

/// For PATCH bodies: tells a field given as `null` (`Some(None)`) from one
/// left out (`None`). Use with `#[serde(default, deserialize_with = …)]`.
pub fn present<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(de).map(Some)
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
