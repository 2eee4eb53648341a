//! HTTP routes of the dashboard and the sales report: parse, authorize,
//! then serve the cached bytes or compute and cache them.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::periods::{self, GroupBy};
use super::reads::{self, DASHBOARD_FIELDS, Dashboard, REPORT_FIELDS, SalesReport};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::{self, tags};
use crate::platform::clock;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::ApiQuery;
use crate::platform::http::list::{Fields, FieldsQuery};
use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dashboard))
        .routes(routes!(sales_report))
}

/// The response body: the whole object, or the fields asked for.
fn body_of<T: serde::Serialize>(object: &T, fields: &Fields) -> Result<Bytes, ApiError> {
    let value = serde_json::to_value(object).map_err(|err| {
        tracing::error!(error = %err, "could not encode a response");
        ApiError::internal()
    })?;
    let bytes = serde_json::to_vec(&fields.apply(value)).map_err(|err| {
        tracing::error!(error = %err, "could not encode a response");
        ApiError::internal()
    })?;
    Ok(Bytes::from(bytes))
}

/// Today's and this month's sales, orders by status, customers, low
/// stock, this month's top products and open quotations. Served from the
/// cache, which order events, customer, quotation and stock writes
/// invalidate.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 304, description = "If-None-Match named the current ETag"),
              (status = 400, body = Problem)))]
async fn get_dashboard(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(p.fields.as_deref(), DASHBOARD_FIELDS)?;
    let today = clock::today();
    let tenant_id = &auth.tenant_id;
    // The date is part of the key: a new day (or month) starts a new entry,
    // and quotations that expired overnight are counted again.
    let key = format!(
        "dashboard:{}:{}:{}",
        tenant_id.as_str(),
        clock::format_date(today),
        p.fields.as_deref().unwrap_or("")
    );
    // Every dispatched batch of orders invalidates the dashboard, many
    // times a second under load: rather than have every reader wait for
    // each recomputation, one runs in the background while the others get
    // bytes whose computation began less than REFRESH_GRACE ago.
    let (reader, tenant) = (state.clone(), tenant_id.clone());
    let cached = state
        .cache
        .get_or_refresh(
            &key,
            &[tags::dashboard(tenant_id)],
            REFRESH_GRACE,
            move || async move {
                let dashboard = reads::dashboard(&reader, &tenant, today).await?;
                body_of(&dashboard, &fields)
            },
        )
        .await?;
    Ok(cache::respond(&cached, &headers))
}

/// The most a dashboard may lag a committed change because of the
/// background refresh: well inside the 1 s freshness the API promises,
/// which also has to cover the dispatcher folding the change in.
const REFRESH_GRACE: Duration = Duration::from_millis(250);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// First day (YYYY-MM-DD, UTC), inclusive; the first of this month by default.
    from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC), inclusive; today by default.
    to: Option<String>,
    /// `day` (default) or `month`.
    group_by: Option<String>,
    fields: Option<String>,
}

fn date_param(name: &str, value: Option<&str>) -> ApiResult<Option<time::Date>> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => clock::parse_date(text)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a date, YYYY-MM-DD"))),
    }
}

/// Sales by day or month: orders, revenue, cost and margin of the orders
/// created in the range and not cancelled, every period listed. Owner,
/// admin and sales only.
#[utoipa::path(get, path = "/api/v1/reports/sales", tag = "reports", params(ReportParams), security(("bearer" = [])),
    responses((status = 200, body = SalesReport), (status = 304, description = "If-None-Match named the current ETag"),
              (status = 400, body = Problem, description = "a malformed date or group_by"),
              (status = 403, body = Problem),
              (status = 422, body = Problem, description = "from after to, or a range too long")))]
async fn sales_report(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    // Malformed input (400) ranks before the role (403), which ranks
    // before a well-formed but invalid range (422).
    let fields = Fields::parse(p.fields.as_deref(), REPORT_FIELDS)?;
    let from = date_param("from", p.from.as_deref())?;
    let to = date_param("to", p.to.as_deref())?;
    let group_by = match p.group_by.as_deref().filter(|g| !g.is_empty()) {
        None => GroupBy::Day,
        Some(text) => GroupBy::parse(text.trim())
            .ok_or_else(|| ApiError::bad_request("group_by must be day or month"))?,
    };
    auth.require(Action::ReadReports)?;
    let today = clock::today();
    let from = from.unwrap_or_else(|| periods::first_of_month(today));
    let to = to.unwrap_or(today);
    periods::check_range(from, to, group_by).map_err(|e| ApiError::field(e.field, e.message))?;
    let tenant_id = &auth.tenant_id;
    let key = format!(
        "report:sales:{}:{}:{}:{}:{}",
        tenant_id.as_str(),
        clock::format_date(from),
        clock::format_date(to),
        group_by.as_str(),
        p.fields.as_deref().unwrap_or("")
    );
    let tags: Vec<String> = periods::months(from, to)
        .iter()
        .map(|m| tags::sales_month(tenant_id, m))
        .collect();
    let cached = state
        .cache
        .get_or_compute(&key, &tags, || async {
            let report: SalesReport =
                reads::sales_report(&state, tenant_id, from, to, group_by).await?;
            body_of(&report, &fields)
        })
        .await?;
    Ok(cache::respond(&cached, &headers))
}
