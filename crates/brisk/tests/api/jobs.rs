//! The job queue through the admin API: listing and filtering, who may see
//! it, a job that fails until it is dead, an admin's retry, and a job that
//! fails twice before it succeeds — with e-mail jobs against a gate in
//! front of the real SMTP sink that refuses connections until told not to.
//! (Exact backoff delays, lost leases and hand-back on stop are unit tests
//! of `platform::jobs`; runner processes that die are in `workers`.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::mail::*;

/// A server whose e-mail goes through `gate`, retrying after `base_ms`.
async fn server(gate: &SmtpGate, base_ms: u64) -> TestServer {
    let url = gate.url();
    start_with(|c| {
        c.smtp_url = Some(url);
        c.retry_base_ms = base_ms;
        c.worker_poll_ms = 50;
    })
    .await
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

#[tokio::test]
async fn jobs_list_newest_first_filter_by_status_and_type_and_only_owners_and_admins_see_them() {
    let sink = sink();
    let gate = SmtpGate::new(sink.addr(), vec![], Gate::Refuse).await;
    // A 1 ms base: eight failed attempts take a few seconds.
    let s = server(&gate, 1).await;
    let shop = shop(&s, "USD", 100, 100).await;
    let customer = shop.customer(&s, "Ada", Some(&unique_email("dead"))).await;
    shop.order(&s, &customer, 1).await;
    shop.order(&s, &customer, 1).await;
    let token = shop.owner.token.clone();
    let dead = wait_for_jobs(&s, &token, "", "two dead jobs", |j| {
        j.len() == 2 && j.iter().all(|j| j["status"] == "dead")
    })
    .await;

    for job in &dead {
        let keys: Vec<&str> = job
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "id",
            "type",
            "status",
            "attempts",
            "max_attempts",
            "run_at",
            "last_error",
            "created_at",
            "updated_at",
        ] {
            assert!(keys.contains(&key), "{key} missing from {job}");
        }
        assert_eq!(job["type"], CONFIRMATION);
        assert_eq!(job["attempts"], 8, "{job}");
        assert_eq!(job["max_attempts"], 8);
        assert!(
            job["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("SMTP:")),
            "the last error is kept: {job}"
        );
        for t in ["run_at", "created_at", "updated_at"] {
            assert!(is_rfc3339(&job[t]), "{t}: {job}");
        }
    }
    // Newest first: by creation, then id.
    let key = |j: &Value| {
        (
            j["created_at"].as_str().unwrap().to_owned(),
            j["id"].as_str().unwrap().to_owned(),
        )
    };
    assert!(key(&dead[0]) > key(&dead[1]), "{dead:?}");

    // Filters.
    let count = |q: &'static str| {
        let s = &s;
        let token = &token;
        async move { jobs(s, token, q).await.len() }
    };
    assert_eq!(count("status=dead").await, 2);
    assert_eq!(count("status=done").await, 0);
    assert_eq!(count("status=queued").await, 0);
    assert_eq!(count("type=email.order_confirmation&status=dead").await, 2);
    assert_eq!(count("type=webhook.delivery").await, 0);
    // Pages and fields.
    let first = s.get("/api/v1/admin/jobs?limit=1", &token).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["items"][0]["id"], dead[0]["id"]);
    let cursor = first.body["next_cursor"].as_str().expect("a second page");
    let second = s
        .get(
            &format!("/api/v1/admin/jobs?limit=1&cursor={cursor}"),
            &token,
        )
        .await;
    assert_eq!(second.body["items"][0]["id"], dead[1]["id"]);
    assert_eq!(second.body["next_cursor"], Value::Null);
    let slim = s.get("/api/v1/admin/jobs?fields=status", &token).await;
    assert_eq!(
        slim.body["items"][0],
        json!({"id": dead[0]["id"], "status": "dead"})
    );

    // Bad queries are 400s, before the role is looked at.
    let viewer = s.user_with_role(&shop.owner, "viewer").await;
    for who in [&token, &viewer.token] {
        s.get("/api/v1/admin/jobs?status=stuck", who)
            .await
            .assert_problem(400, "bad_request");
    }
    s.get("/api/v1/admin/jobs?cursor=nope", &token)
        .await
        .assert_problem(400, "bad_request");
    s.get("/api/v1/admin/jobs?fields=payload", &token)
        .await
        .assert_problem(400, "unknown_field");

    // Roles: owner and admin only.
    let job_id = dead[0]["id"].as_str().unwrap();
    for role in ["sales", "warehouse", "viewer"] {
        let user = s.user_with_role(&shop.owner, role).await;
        s.get("/api/v1/admin/jobs", &user.token)
            .await
            .assert_problem(403, "forbidden");
        s.post(
            &format!("/api/v1/admin/jobs/{job_id}/retry"),
            &user.token,
            json!({}),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    let admin = s.user_with_role(&shop.owner, "admin").await;
    assert_eq!(jobs(&s, &admin.token, "").await.len(), 2);
    s.get("/api/v1/admin/jobs", "not-a-token")
        .await
        .assert_problem(401, "unauthorized");

    // Another tenant sees none of them and cannot retry them.
    let other = s.signup("Other").await;
    assert!(jobs(&s, &other.token, "").await.is_empty());
    s.post(
        &format!("/api/v1/admin/jobs/{job_id}/retry"),
        &other.token,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    s.post("/api/v1/admin/jobs/no-such-job/retry", &token, json!({}))
        .await
        .assert_problem(404, "not_found");
    // Still dead: the refusals changed nothing.
    assert_eq!(count("status=dead").await, 2);
    s.stop().await;
}

#[tokio::test]
async fn a_dead_job_retried_by_an_admin_runs_again_and_only_a_dead_job_can_be_retried() {
    let sink = sink();
    let gate = SmtpGate::new(sink.addr(), vec![], Gate::Refuse).await;
    let s = server(&gate, 1).await;
    let shop = shop(&s, "USD", 250, 100).await;
    let address = unique_email("lazarus");
    let customer = shop.customer(&s, "Lazarus", Some(&address)).await;
    let order = shop.order(&s, &customer, 2).await;
    let token = shop.owner.token.clone();
    let dead = wait_for_jobs(&s, &token, "", "a dead job", |j| {
        j.len() == 1 && j[0]["status"] == "dead"
    })
    .await;
    let id = dead[0]["id"].as_str().unwrap().to_owned();
    assert!(sink.messages_to(&address).is_empty());

    // The relay is back; an admin retries.
    gate.set(Gate::Forward);
    let admin = s.user_with_role(&shop.owner, "admin").await;
    let retried = s
        .post(
            &format!("/api/v1/admin/jobs/{id}/retry"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["id"], id.as_str());
    assert_eq!(retried.body["status"], "queued");
    assert_eq!(retried.body["attempts"], 0);
    assert_eq!(retried.body["max_attempts"], 8);
    assert!(is_rfc3339(&retried.body["run_at"]));
    // The (cached) list shows the retry at once: no longer dead.
    let listed = jobs(&s, &token, "").await;
    assert_ne!(listed[0]["status"], "dead", "{}", listed[0]);

    let done = wait_for_jobs(&s, &token, "", "the retried job done", |j| {
        j[0]["status"] == "done"
    })
    .await;
    assert_eq!(done[0]["attempts"], 1, "counted afresh: {}", done[0]);
    assert_eq!(done[0]["last_error"], Value::Null);
    let mail = sink.wait_for(&address, 1).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].subject.contains(order["number"].as_str().unwrap()));
    assert!(mail[0].body.contains("Total: 5.00 USD"), "{}", mail[0].body);

    // A job that is not dead: 409, and nothing changes.
    let again = s
        .post(&format!("/api/v1/admin/jobs/{id}/retry"), &token, json!({}))
        .await;
    again.assert_problem(409, "invalid_transition");
    let after = jobs(&s, &token, "").await;
    assert_eq!(after, done, "unchanged");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.messages_to(&address).len(), 1, "not sent again");
    s.stop().await;
}

#[tokio::test]
async fn a_job_that_fails_twice_then_succeeds_is_retried_after_growing_delays() {
    let sink = sink();
    let gate = SmtpGate::new(sink.addr(), vec![Gate::Refuse, Gate::Refuse], Gate::Forward).await;
    let s = server(&gate, 50).await;
    let shop = shop(&s, "USD", 100, 100).await;
    let address = unique_email("third-time");
    let customer = shop.customer(&s, "Lucky", Some(&address)).await;
    shop.order(&s, &customer, 1).await;
    let token = shop.owner.token.clone();
    let done = wait_for_jobs(&s, &token, "", "the job done", |j| {
        j.len() == 1 && j[0]["status"] == "done"
    })
    .await;
    assert_eq!(done[0]["attempts"], 3, "{}", done[0]);
    assert_eq!(done[0]["last_error"], Value::Null, "success clears it");
    assert_eq!(sink.wait_for(&address, 1).await.len(), 1);

    // Three connections: refused, refused, delivered. The runner waited
    // at least the backoff before each retry (×1, then ×4 the 50 ms base,
    // less the 20 % jitter); exact delays are a unit test of platform::jobs.
    let at = gate.accepted();
    assert_eq!(at.len(), 3, "one connection per attempt");
    let first_wait = at[1].duration_since(at[0]);
    let second_wait = at[2].duration_since(at[1]);
    assert!(first_wait >= Duration::from_millis(40), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(160), "{second_wait:?}");
    s.stop().await;
}
