//! `/admin/settings` (owner and admin): users and a new-user form;
//! webhooks with their circuit and deliveries, and a new-webhook form;
//! background jobs by status, with retry for the dead ones.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{id_segment, with_query};
use super::session::{Form, Posted, Signed, see_other};
use super::view::{self, Errors, Nav};

const ROLES: [(&str, &str); 5] = [
    ("viewer", "Viewer"),
    ("sales", "Sales"),
    ("warehouse", "Warehouse"),
    ("admin", "Admin"),
    ("owner", "Owner"),
];
const JOB_STATUSES: [(&str, &str); 6] = [
    ("", "Any status"),
    ("queued", "queued"),
    ("running", "running"),
    ("done", "done"),
    ("failed", "failed"),
    ("dead", "dead"),
];

#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    /// The webhook whose deliveries are shown.
    #[serde(default)]
    webhook: String,
    #[serde(default)]
    job_status: String,
    #[serde(default)]
    jobs_cursor: String,
    #[serde(default)]
    users_cursor: String,
    #[serde(default)]
    webhooks_cursor: String,
    #[serde(default)]
    deliveries_cursor: String,
}

/// What a form posted to the page left: a refusal with the fields as
/// typed, or the new webhook's secret (shown once).
#[derive(Default)]
struct Outcome {
    user: Option<(Form, Errors)>,
    webhook: Option<(Form, Errors)>,
    job: Option<Errors>,
    secret: Option<String>,
}

/// `GET /admin/settings`.
pub async fn page(signed: Signed, Query(q): Query<SettingsQuery>) -> Response {
    settings_page(&signed, &q, Outcome::default(), StatusCode::OK).await
}

async fn settings_page(
    signed: &Signed,
    q: &SettingsQuery,
    outcome: Outcome,
    status: StatusCode,
) -> Response {
    // Four independent reads: asked together, the page waits for the
    // slowest rather than for their sum.
    let users_uri = with_query("/api/v1/users", &[("cursor", q.users_cursor.as_str())]);
    let webhooks_uri = with_query(
        "/api/v1/webhooks",
        &[("cursor", q.webhooks_cursor.as_str())],
    );
    let jobs_uri = with_query(
        "/api/v1/admin/jobs",
        &[
            ("status", q.job_status.as_str()),
            ("cursor", q.jobs_cursor.as_str()),
        ],
    );
    let deliveries = async {
        if q.webhook.is_empty() {
            None
        } else {
            Some(
                signed
                    .get(&with_query(
                        &format!("/api/v1/webhooks/{}/deliveries", id_segment(&q.webhook)),
                        &[("cursor", q.deliveries_cursor.as_str())],
                    ))
                    .await,
            )
        }
    };
    let (users, webhooks, deliveries, jobs) = tokio::join!(
        signed.get(&users_uri),
        signed.get(&webhooks_uri),
        deliveries,
        signed.get(&jobs_uri),
    );
    if !users.ok() {
        return signed.problem(&users);
    }
    let empty = Form::parse(b"");
    let no_errors = Errors::default();
    let (user_form, user_errors) = outcome
        .user
        .as_ref()
        .map_or((&empty, &no_errors), |(f, e)| (f, e));
    let (hook_form, hook_errors) = outcome
        .webhook
        .as_ref()
        .map_or((&empty, &no_errors), |(f, e)| (f, e));
    let body = html! {
        section aria-labelledby="users-heading" {
            h2 #users-heading { "Users" }
            table #users {
                thead { tr { th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Role" } th scope="col" { "Since" } } }
                tbody {
                    @for u in users.items() {
                        tr { td { (view::text(&u["name"])) } td { (view::text(&u["email"])) } td { (view::text(&u["role"])) } td { (view::when(&u["created_at"])) } }
                    }
                }
            }
            (view::pager_as("/admin/settings", &[], "users_cursor", &q.users_cursor, &users))
            form.card method="post" action="/admin/settings/users" {
                (view::csrf(signed))
                (user_errors.summary())
                div.row {
                    (view::input("Name", "name", user_form.get("name"), "text", user_errors))
                    (view::input("E-mail", "email", user_form.get("email"), "email", user_errors))
                    (view::input("Password", "password", "", "password", user_errors))
                    (view::select("Role", "role", &ROLES, if user_form.get("role").is_empty() { "viewer" } else { user_form.get("role") }, user_errors))
                }
                button type="submit" { "Add user" }
            }
        }
        section aria-labelledby="webhooks-heading" {
            h2 #webhooks-heading { "Webhooks" }
            @if let Some(secret) = &outcome.secret {
                p.notice role="status" { "Webhook created. Its signing secret, shown only now: " code #webhook-secret { (secret) } }
            }
            @if webhooks.items().is_empty() {
                (view::empty("webhooks"))
            } @else {
                table #webhooks {
                    thead { tr { th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Active" } th scope="col" { "Circuit" } th scope="col" { "Deliveries" } } }
                    tbody {
                        @for w in webhooks.items() {
                            tr {
                                td { (view::text(&w["url"])) }
                                td { (w["events"].as_array().map(|e| e.iter().map(view::text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                td { (if w["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                                td { (view::badge(w["circuit"].as_str().unwrap_or(""))) }
                                td { a href=(format!("/admin/settings?webhook={}#deliveries-heading", view::text(&w["id"]))) { "Deliveries" } }
                            }
                        }
                    }
                }
                (view::pager_as("/admin/settings", &[], "webhooks_cursor", &q.webhooks_cursor, &webhooks))
            }
            @if let Some(deliveries) = &deliveries {
                h3 #deliveries-heading { "Deliveries" }
                @if !deliveries.ok() {
                    p.error role="alert" { (deliveries.detail()) }
                } @else if deliveries.items().is_empty() {
                    (view::empty("deliveries"))
                } @else {
                    table #deliveries {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "Status" } th.num scope="col" { "Attempts" } th.num scope="col" { "Answer" } th scope="col" { "Last error" } th scope="col" { "Created" } } }
                        tbody {
                            @for d in deliveries.items() {
                                tr {
                                    td { (view::text(&d["event_type"])) }
                                    td { (view::badge(d["status"].as_str().unwrap_or(""))) }
                                    td.num { (view::text(&d["attempts"])) }
                                    td.num { (view::text(&d["response_status"])) }
                                    td { (view::text(&d["last_error"])) }
                                    td { (view::when(&d["created_at"])) }
                                }
                            }
                        }
                    }
                    (view::pager_as("/admin/settings", &[("webhook", q.webhook.as_str())], "deliveries_cursor", &q.deliveries_cursor, deliveries))
                }
            }
            form.card method="post" action="/admin/settings/webhooks" {
                (view::csrf(signed))
                (hook_errors.summary())
                div.row {
                    (view::input("URL", "url", hook_form.get("url"), "url", hook_errors))
                    (view::input("Events (comma-separated, * for all)", "events", hook_form.get("events"), "text", hook_errors))
                }
                button type="submit" { "Add webhook" }
            }
        }
        section aria-labelledby="jobs-heading" {
            h2 #jobs-heading { "Background jobs" }
            @if let Some(errors) = &outcome.job { (errors.summary()) }
            form.filters method="get" action="/admin/settings" {
                (view::select("Status", "job_status", &JOB_STATUSES, &q.job_status, &Errors::default()))
                button type="submit" { "Filter" }
            }
            (jobs_table(signed, jobs.items()))
            (view::pager_as("/admin/settings", &[("job_status", q.job_status.as_str())], "jobs_cursor", &q.jobs_cursor, &jobs))
        }
    };
    signed.page(status, view::page(signed, "Settings", Nav::Settings, body))
}

fn jobs_table(signed: &Signed, jobs: &[Value]) -> Markup {
    html! {
        @if jobs.is_empty() {
            (view::empty("jobs match"))
        } @else {
            table #jobs {
                thead { tr { th scope="col" { "Type" } th scope="col" { "Status" } th.num scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { "Next run" } th scope="col" { "Action" } } }
                tbody {
                    @for j in jobs {
                        tr {
                            td { (view::text(&j["type"])) }
                            td { (view::badge(j["status"].as_str().unwrap_or(""))) }
                            td.num { (view::text(&j["attempts"])) " of " (view::text(&j["max_attempts"])) }
                            td { (view::text(&j["last_error"])) }
                            td { (view::when(&j["run_at"])) }
                            td {
                                @if j["status"].as_str() == Some("dead") {
                                    form method="post" action=(format!("/admin/settings/jobs/{}/retry", view::text(&j["id"]))) {
                                        (view::csrf(signed))
                                        button type="submit" { "Retry" }
                                    }
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /admin/settings/users`: `POST /api/v1/users`.
pub async fn create_user(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let body = json!({
        "name": form.get("name"), "email": form.get("email"),
        "password": form.raw("password"), "role": form.get("role"),
    });
    let reply = signed.post("/api/v1/users", &body).await;
    if reply.ok() {
        return signed.finish(see_other("/admin/settings"));
    }
    let outcome = Outcome {
        user: Some((form, Errors::from_reply(&reply))),
        ..Outcome::default()
    };
    settings_page(&signed, &SettingsQuery::default(), outcome, reply.status).await
}

/// `POST /admin/settings/webhooks`: `POST /api/v1/webhooks`; the answer
/// shows the secret, which the API returns only this once.
pub async fn create_webhook(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let events: Vec<&str> = form
        .get("events")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let reply = signed
        .post(
            "/api/v1/webhooks",
            &json!({"url": form.get("url"), "events": events}),
        )
        .await;
    let outcome = if reply.ok() {
        Outcome {
            secret: reply.body["secret"].as_str().map(str::to_owned),
            ..Outcome::default()
        }
    } else {
        Outcome {
            webhook: Some((form, Errors::from_reply(&reply))),
            ..Outcome::default()
        }
    };
    let status = if reply.ok() {
        StatusCode::CREATED
    } else {
        reply.status
    };
    settings_page(&signed, &SettingsQuery::default(), outcome, status).await
}

/// `POST /admin/settings/jobs/{id}/retry`: `POST /api/v1/admin/jobs/{id}/retry`.
pub async fn retry_job(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { signed, .. } = posted;
    let reply = signed
        .post(
            &format!("/api/v1/admin/jobs/{}/retry", id_segment(&id)),
            &json!({}),
        )
        .await;
    if reply.ok() {
        return signed.finish(see_other("/admin/settings?job_status=dead#jobs-heading"));
    }
    let outcome = Outcome {
        job: Some(Errors::from_reply(&reply)),
        ..Outcome::default()
    };
    settings_page(&signed, &SettingsQuery::default(), outcome, reply.status).await
}
