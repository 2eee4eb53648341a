//! HTTP routes of the CRM module: parse, authorize, validate, call the store.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::CrmError;
use super::store::{self, Customer, CustomerChanges, CustomerFilter, CustomerStatus, NewCustomer};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::http::error::{ApiError, ApiResult, FieldError, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery, refusal_unless_missing};
use crate::platform::http::list::{Fields, FieldsQuery, Page, list_body, object_body};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(get_customer, update_customer, delete_customer))
}

const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "name",
    "email",
    "phone",
    "status",
    "discount_bp",
    "tags",
    "notes",
    "created_at",
    "updated_at",
];
const MAX_NAME_CHARS: usize = 200;
const MAX_PHONE_CHARS: usize = 50;
const MAX_NOTES_CHARS: usize = 10_000;
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 50;
const MAX_DISCOUNT_BP: i64 = 10_000;
/// Longer than any name or e-mail, so it could match nothing.
const MAX_QUERY_CHARS: usize = 256;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateCustomerRequest {
    /// Required; validated here rather than by serde so a missing name is a
    /// 422 that names `name`.
    #[serde(default)]
    #[schema(value_type = String)]
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// `lead`, `active` (default) or `inactive`.
    status: Option<String>,
    /// 0–10000 (default 0).
    discount_bp: Option<i64>,
    tags: Option<Vec<String>>,
    notes: Option<String>,
}

/// Any subset of the create fields; `null` clears `email`, `phone`, `notes`
/// and `tags`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateCustomerRequest {
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    status: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<i64>)]
    discount_bp: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<Vec<String>>)]
    tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `lead`, `active` or `inactive`.
    status: Option<String>,
    /// Case-insensitive substring of the name or the e-mail.
    q: Option<String>,
    /// Customers having this tag.
    tag: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// A page of customers (documentation shape of the list response).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerPage {
    items: Vec<Customer>,
    next_cursor: Option<String>,
}

fn check_status(v: &mut Validator, text: &str) -> Option<CustomerStatus> {
    let status = CustomerStatus::parse(text);
    v.check(
        status.is_some(),
        "status",
        format!("must be one of {}", CustomerStatus::NAMES),
    );
    status
}

fn check_discount(v: &mut Validator, discount_bp: i64) {
    v.check(
        (0..=MAX_DISCOUNT_BP).contains(&discount_bp),
        "discount_bp",
        format!("must be a whole number from 0 to {MAX_DISCOUNT_BP}"),
    );
}

fn check_name(v: &mut Validator, name: &str) -> String {
    v.text("name", name, MAX_NAME_CHARS);
    name.trim().to_owned()
}

/// Trimmed e-mail; must look like one.
fn check_email(v: &mut Validator, email: &str) -> String {
    let email = email.trim();
    v.email("email", email);
    email.to_owned()
}

/// Optional free text: trimmed, blank means none.
fn check_optional(v: &mut Validator, field: &str, text: &str, max: usize) -> Option<String> {
    v.optional_text(field, text, max);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Trimmed, distinct (first occurrence kept, order kept), each a non-empty
/// single token of text.
fn check_tags(v: &mut Validator, tags: &[String]) -> Vec<String> {
    if tags.len() > MAX_TAGS {
        v.error("tags", format!("must have at most {MAX_TAGS} tags"));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        let tag = tag.trim();
        if tag.is_empty() {
            v.error(field, "must not be empty");
        } else if tag.chars().count() > MAX_TAG_CHARS {
            v.error(field, format!("must be at most {MAX_TAG_CHARS} characters"));
        } else if tag.chars().any(char::is_control) {
            v.error(field, "must not contain control characters");
        } else if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    out
}

fn validate_new(req: CreateCustomerRequest) -> ApiResult<NewCustomer> {
    let mut v = Validator::new();
    let name = match req.name.as_deref() {
        Some(name) => check_name(&mut v, name),
        None => {
            v.error("name", "is required");
            String::new()
        }
    };
    let email = req.email.as_deref().map(|e| check_email(&mut v, e));
    let phone = req
        .phone
        .as_deref()
        .and_then(|p| check_optional(&mut v, "phone", p, MAX_PHONE_CHARS));
    let status = match req.status.as_deref() {
        Some(s) => check_status(&mut v, s),
        None => Some(CustomerStatus::Active),
    };
    let discount_bp = req.discount_bp.unwrap_or(0);
    check_discount(&mut v, discount_bp);
    let tags = req
        .tags
        .as_deref()
        .map(|t| check_tags(&mut v, t))
        .unwrap_or_default();
    let notes = req
        .notes
        .as_deref()
        .and_then(|n| check_optional(&mut v, "notes", n, MAX_NOTES_CHARS));
    v.finish()?;
    Ok(NewCustomer {
        name,
        email,
        phone,
        status: status.ok_or_else(ApiError::internal)?,
        discount_bp,
        tags,
        notes,
    })
}

fn validate_changes(req: UpdateCustomerRequest) -> ApiResult<CustomerChanges> {
    let mut v = Validator::new();
    let mut changes = CustomerChanges::default();
    match req.name {
        None => {}
        Some(None) => v.error("name", "must not be null"),
        Some(Some(name)) => changes.name = Some(check_name(&mut v, &name)),
    }
    if let Some(email) = req.email {
        changes.email = Some(email.map(|e| check_email(&mut v, &e)));
    }
    if let Some(phone) = req.phone {
        changes.phone =
            Some(phone.and_then(|p| check_optional(&mut v, "phone", &p, MAX_PHONE_CHARS)));
    }
    match req.status {
        None => {}
        Some(None) => v.error(
            "status",
            format!("must be one of {}", CustomerStatus::NAMES),
        ),
        Some(Some(s)) => changes.status = check_status(&mut v, &s),
    }
    match req.discount_bp {
        None => {}
        Some(None) => v.error(
            "discount_bp",
            format!("must be a whole number from 0 to {MAX_DISCOUNT_BP}"),
        ),
        Some(Some(d)) => {
            check_discount(&mut v, d);
            changes.discount_bp = Some(d);
        }
    }
    if let Some(tags) = req.tags {
        changes.tags = Some(
            tags.as_deref()
                .map(|t| check_tags(&mut v, t))
                .unwrap_or_default(),
        );
    }
    if let Some(notes) = req.notes {
        changes.notes =
            Some(notes.and_then(|n| check_optional(&mut v, "notes", &n, MAX_NOTES_CHARS)));
    }
    v.finish()?;
    Ok(changes)
}

fn bad_query(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::bad_request(format!("bad query parameter {field}: {message}")).with_errors(vec![
        FieldError {
            field: field.to_owned(),
            message,
        },
    ])
}

fn filter_from(params: &ListParams) -> ApiResult<CustomerFilter> {
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(CustomerStatus::parse(s).ok_or_else(|| {
            bad_query(
                "status",
                format!("must be one of {}", CustomerStatus::NAMES),
            )
        })?),
    };
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        return Err(bad_query(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let tag = params
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Ok(CustomerFilter {
        status,
        q: q.map(str::to_owned),
        tag: tag.map(str::to_owned),
    })
}

/// Create a customer.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CreateCustomerRequest, security(("bearer" = [])),
    responses((status = 201, body = Customer), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_customer(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<CreateCustomerRequest>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteCustomers)?;
    let new = validate_new(body.parse()?)?;
    let customer = store::create(&state.db, &auth.tenant_id, new).await?;
    state
        .cache
        .invalidate(&tags::customer_changed(&auth.tenant_id));
    Ok((StatusCode::CREATED, Json(customer)))
}

/// List customers, newest first.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = CustomerPage), (status = 400, body = Problem, description = "bad_request, unknown_field")))]
async fn list_customers(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), CUSTOMER_FIELDS)?;
    let filter = filter_from(&params)?;
    let tenant = &auth.tenant_id;
    let key = format!("customers:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (items, next) = store::list(&state.db, tenant, &filter, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::customers(tenant)], compute)
        .await
}

/// One customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path), FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 400, body = Problem, description = "unknown_field"), (status = 404, body = Problem)))]
async fn get_customer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(params.fields.as_deref(), CUSTOMER_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!("customer:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        let customer = store::get(&state.db, tenant, &id).await?;
        object_body(&customer, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::customers(tenant)], compute)
        .await
}

/// Change some of a customer's fields.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)), request_body = UpdateCustomerRequest, security(("bearer" = [])),
    responses((status = 200, body = Customer), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_customer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<UpdateCustomerRequest>,
) -> ApiResult<Json<Customer>> {
    auth.require(Action::WriteCustomers)?;
    let changes = refusal_unless_missing(
        body.parse().and_then(validate_changes),
        store::exists(&state.db, &auth.tenant_id, &id),
        CrmError::CustomerNotFound,
    )
    .await?;
    let customer = store::update(&state.db, &auth.tenant_id, &id, changes).await?;
    state
        .cache
        .invalidate(&tags::customer_changed(&auth.tenant_id));
    Ok(Json(customer))
}

/// Delete a customer (it disappears from lists and lookups).
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_customer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Action::WriteCustomers)?;
    store::delete(&state.db, &auth.tenant_id, &id).await?;
    state
        .cache
        .invalidate(&tags::customer_changed(&auth.tenant_id));
    Ok(StatusCode::NO_CONTENT)
}
