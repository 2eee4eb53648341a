//! `brisk worker` processes beside `brisk serve` nodes on one PostgreSQL:
//! a worker killed while it holds a job, many orders across nodes handled
//! by one worker process, and a graceful stop in the middle of a job (of a
//! worker, and of a serving node that runs jobs).
//! PostgreSQL only: several processes sharing one database is a PostgreSQL
//! deployment (SQLite is one embedded file for one process).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::mail::*;
use crate::process::{brisk, terminate, wait_exit};

/// A running `brisk worker` child process.
struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Starts `brisk worker` on `database_url`, sending e-mail through
/// `smtp_url`, and waits until it says it runs.
fn worker(database_url: &str, smtp_url: &str, settings: &[(&str, &str)]) -> Worker {
    let mut cmd = brisk();
    cmd.arg("worker")
        .env("BRISK_DATABASE_URL", database_url)
        .env("BRISK_DATABASE_POOL_SIZE", "4")
        .env("BRISK_SMTP_URL", smtp_url)
        .env("BRISK_RETRY_BASE_MS", "50")
        .env("BRISK_WORKER_POLL_MS", "100");
    for (k, v) in settings {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let collected = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "brisk worker running"
            {
                let _ = up_tx.send(());
            }
            collected.lock().unwrap().push(line);
        }
    });
    let mut worker = Worker {
        child,
        lines,
        reader: Some(reader),
    };
    if up_rx.recv_timeout(PATIENCE).is_err() {
        let _ = worker.child.kill();
        panic!(
            "brisk worker did not start: {:?}",
            worker.lines.lock().unwrap()
        );
    }
    worker
}

impl Worker {
    /// SIGKILL: the process dies holding whatever it holds.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then its exit status and every line it printed.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        terminate(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(30));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failed test must not leave a process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until the gate has taken at least one connection.
async fn wait_for_connection(gate: &SmtpGate) {
    let deadline = Instant::now() + PATIENCE;
    while gate.accepted().is_empty() {
        assert!(Instant::now() < deadline, "nobody connected to the relay");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_worker_killed_holding_a_job_leaves_it_to_another_after_the_lease_and_the_mail_arrives_once()
 {
    if !is_postgres() {
        // Worker processes share a PostgreSQL; see the module doc.
        return;
    }
    let sink = sink();
    // The first worker's relay takes the connection and never answers.
    let silent = SmtpGate::new(sink.addr(), vec![], Gate::Hold).await;
    let node = start_with(|c| c.workers = 0).await;
    let shop = shop(&node, "USD", 1234, 10).await;
    let token = shop.owner.token.clone();
    let address = unique_email("killed");
    let customer = shop.customer(&node, "Kim", Some(&address)).await;
    let lease = [("BRISK_JOB_LEASE_MS", "3000")];
    let first = worker(&node.database_url, &silent.url(), &lease);

    let order = shop.order(&node, &customer, 1).await;
    let held = wait_for_jobs(&node, &token, "", "the first worker's claim", |j| {
        j.len() == 1 && j[0]["status"] == "running"
    })
    .await;
    wait_for_connection(&silent).await;
    assert_eq!(held[0]["attempts"], 1);
    first.kill9();
    let orphaned = jobs(&node, &token, "").await;
    assert_eq!(orphaned[0]["status"], "running", "held by a dead worker");
    assert_eq!(orphaned[0]["attempts"], 1);

    // A second worker, with a working relay, takes it once the lease ends.
    let second = worker(&node.database_url, &sink.url, &lease);
    let done = wait_for_jobs(&node, &token, "", "the job run again", |j| {
        j[0]["status"] == "done"
    })
    .await;
    assert_eq!(
        done[0]["attempts"], 2,
        "the killed attempt counts: {}",
        done[0]
    );
    let mail = sink.wait_for(&address, 1).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].subject.contains(order["number"].as_str().unwrap()));
    assert!(
        mail[0].body.contains("Total: 12.34 USD"),
        "{}",
        mail[0].body
    );

    let (status, _) = second.stop();
    assert_eq!(status.code(), Some(0));
    node.stop().await;
}

/// Places an invoice order through `base`; returns its number.
async fn place(client: reqwest::Client, base: String, token: String, body: Value) -> String {
    let r = TestServer::read(
        client
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["number"].as_str().unwrap().to_owned()
}

/// A loopback webhook receiver that answers 204 and keeps every body.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                kept.lock().unwrap().push(v);
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://127.0.0.1:{port}/hook"), bodies)
}

#[tokio::test]
async fn five_hundred_orders_across_two_nodes_get_exactly_one_confirmation_each_from_a_worker_process()
 {
    if !is_postgres() {
        return;
    }
    let sink = sink();
    let a = start_with(|c| {
        c.workers = 0;
        c.webhook_allow_private = true;
    })
    .await;
    let b = start_beside(&a, |c| c.workers = 0).await;
    let w = worker(
        &a.database_url,
        &sink.url,
        &[
            ("BRISK_WORKERS", "4"),
            ("BRISK_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
    );
    let shop = shop(&a, "USD", 100, 1000).await;
    // The same orders also reach a webhook: every order.created exactly once.
    let (hook_url, hook_bodies) = webhook_receiver().await;
    let hook = a
        .post(
            "/api/v1/webhooks",
            &shop.owner.token,
            json!({"url": hook_url, "events": ["order.created"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let address = unique_email("bulk");
    let customer = shop.customer(&a, "Bulk Buyer", Some(&address)).await;
    let body = json!({"customer_id": customer, "payment_method": "invoice",
                      "items": [{"variant_id": shop.variant, "quantity": 1}]});

    // 500 orders, ten in flight at a time, alternating between the nodes.
    let mut placed = Vec::new();
    for round in 0..50 {
        let mut batch = tokio::task::JoinSet::new();
        for i in 0..10 {
            let node = if (round * 10 + i) % 2 == 0 { &a } else { &b };
            batch.spawn(place(
                node.client.clone(),
                node.base.clone(),
                shop.owner.token.clone(),
                body.clone(),
            ));
        }
        while let Some(number) = batch.join_next().await {
            placed.push(number.unwrap());
        }
    }
    placed.sort();
    placed.dedup();
    assert_eq!(placed.len(), 500);

    sink.wait_for(&address, 500).await;
    // Every job finished, so nothing more is on its way.
    let query = format!("type={CONFIRMATION}");
    let done = wait_for_jobs(&a, &shop.owner.token, &query, "500 done jobs", |j| {
        j.len() == 500 && j.iter().all(|j| j["status"] == "done")
    })
    .await;
    assert!(done.iter().all(|j| j["type"] == CONFIRMATION));
    wait_for_jobs(
        &a,
        &shop.owner.token,
        "type=webhook.delivery",
        "500 delivered webhooks",
        |j| j.len() == 500 && j.iter().all(|j| j["status"] == "done"),
    )
    .await;
    let mut hooked: BTreeMap<String, usize> = BTreeMap::new();
    for body in hook_bodies.lock().unwrap().iter() {
        assert_eq!(body["type"], "order.created");
        let number = body["data"]["number"].as_str().unwrap().to_owned();
        *hooked.entry(number).or_default() += 1;
    }
    assert!(
        hooked.values().all(|n| *n == 1),
        "an order.created delivered twice: {hooked:?}"
    );
    assert_eq!(
        hooked.keys().cloned().collect::<Vec<_>>(),
        placed,
        "every order.created delivered"
    );
    let mut per_number: BTreeMap<String, usize> = BTreeMap::new();
    for m in sink.messages_to(&address) {
        let number = m
            .subject
            .strip_prefix("Order ")
            .and_then(|s| s.strip_suffix(" confirmed"))
            .unwrap_or_else(|| panic!("subject {:?}", m.subject))
            .to_owned();
        *per_number.entry(number).or_default() += 1;
    }
    let twice: Vec<_> = per_number.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        per_number.keys().cloned().collect::<Vec<_>>(),
        placed,
        "one confirmation per order"
    );

    let (status, _) = w.stop();
    assert_eq!(status.code(), Some(0));
    b.stop().await;
    a.stop().await;
}

/// What the hand-back tests start from: a serving node without workers,
/// a shop, and a customer whose order confirmation goes to `silent`, an
/// SMTP server that takes the connection and never answers (so the job
/// stays running until its runner stops).
struct HandBack {
    sink: Sink,
    silent: SmtpGate,
    node: TestServer,
    shop: Shop,
    token: String,
    address: String,
    customer: String,
}

async fn hand_back(name: &str) -> HandBack {
    let sink = sink();
    let silent = SmtpGate::new(sink.addr(), vec![], Gate::Hold).await;
    let node = start_with(|c| c.workers = 0).await;
    let shop = shop(&node, "USD", 700, 10).await;
    let token = shop.owner.token.clone();
    let address = unique_email(name);
    let customer = shop.customer(&node, "Hana", Some(&address)).await;
    HandBack {
        sink,
        silent,
        node,
        shop,
        token,
        address,
        customer,
    }
}

/// Waits until `node`'s job list shows the one job running and its runner
/// connected to the silent SMTP server.
async fn claimed(node: &TestServer, token: &str, silent: &SmtpGate, by: &str) {
    wait_for_jobs(node, token, "", by, |j| {
        j.len() == 1 && j[0]["status"] == "running"
    })
    .await;
    wait_for_connection(silent).await;
}

/// Waits until `node`'s job list shows the job queued again, its cut-short
/// attempt not counted. Other nodes hear of a change within a second: the
/// list is polled for it.
async fn handed_back(node: &TestServer, token: &str) {
    let back = wait_for_jobs(node, token, "", "the job handed back", |j| {
        j[0]["status"] != "running"
    })
    .await;
    assert_eq!(back[0]["status"], "queued", "{}", back[0]);
    assert_eq!(
        back[0]["attempts"], 0,
        "the cut-short attempt is not counted"
    );
}

#[tokio::test]
async fn sigterm_makes_a_worker_hand_back_the_job_it_cannot_finish_and_exit_0() {
    if !is_postgres() {
        return;
    }
    let h = hand_back("handed-back").await;
    let (node, token) = (&h.node, &h.token);
    // A lease far longer than the test: only the hand-back can free the job.
    let first = worker(
        &node.database_url,
        &h.silent.url(),
        &[
            ("BRISK_SHUTDOWN_GRACE_SECS", "1"),
            ("BRISK_JOB_LEASE_MS", "3600000"),
        ],
    );
    h.shop.order(node, &h.customer, 1).await;
    claimed(node, token, &h.silent, "the worker's claim").await;

    let (status, lines) = first.stop();
    assert_eq!(status.code(), Some(0), "{lines:?}");
    handed_back(node, token).await;

    // Another worker takes it at once.
    let second = worker(&node.database_url, &h.sink.url, &[]);
    let done = wait_for_jobs(node, token, "", "the job run by the next worker", |j| {
        j[0]["status"] == "done"
    })
    .await;
    assert_eq!(done[0]["attempts"], 1);
    assert_eq!(h.sink.wait_for(&h.address, 1).await.len(), 1);
    let (status, _) = second.stop();
    assert_eq!(status.code(), Some(0));
    h.node.stop().await;
}

/// The same graceful stop on a serving node that runs jobs: `brisk serve`
/// stops its job runners before its cache fan-out, so the hand-back's
/// news reaches the other nodes, whose cached job list shows the job
/// queued again.
#[tokio::test]
async fn a_serving_node_stopped_mid_job_hands_it_back_and_the_other_nodes_hear_of_it() {
    if !is_postgres() {
        return;
    }
    let HandBack {
        silent,
        node,
        shop,
        token,
        customer,
        ..
    } = hand_back("served-back").await;
    let runner = start_beside(&node, |c| {
        c.workers = 1;
        c.smtp_url = Some(silent.url());
        // A lease far longer than the test: only the hand-back frees the job.
        c.job_lease_ms = 3_600_000;
        c.shutdown_grace_secs = 1;
    })
    .await;
    // The other node's job list is cached before the claim and after it.
    wait_for_jobs(&node, &token, "", "an empty list", |j| j.is_empty()).await;
    shop.order(&node, &customer, 1).await;
    claimed(&node, &token, &silent, "the serving node's claim").await;

    runner.stop().await;
    handed_back(&node, &token).await;
    node.stop().await;
}
