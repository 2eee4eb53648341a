//! What the e-mail and job tests share: the SMTP sink of the test services
//! (a real SMTP server writing a Maildir, see scripts/services.sh), a gate
//! in front of it that refuses, holds or forwards each connection, a shop
//! to place orders in, and waiting on the job list.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

pub const CONFIRMATION: &str = "email.order_confirmation";

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The sink every message ends up in.
pub struct Sink {
    /// `smtp://127.0.0.1:PORT`
    pub url: String,
    pub maildir: PathBuf,
}

pub fn sink() -> Sink {
    let (Ok(url), Ok(maildir)) = (
        std::env::var("BRISK_TEST_SMTP_URL"),
        std::env::var("BRISK_TEST_MAILDIR"),
    ) else {
        panic!(
            "BRISK_TEST_SMTP_URL and BRISK_TEST_MAILDIR must name the test SMTP sink: \
             run scripts/test, or `source scripts/services.sh && services_start` first"
        );
    };
    Sink {
        url,
        maildir: PathBuf::from(maildir),
    }
}

/// One message as the sink stored it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope's recipients (`X-RcptTo`) and the `To` header.
    pub rcpt_to: String,
    pub to: String,
    pub from: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

fn parse(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    // Unfold continuation lines.
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Mail {
        rcpt_to: header("x-rcptto"),
        to: header("to"),
        from: header("from"),
        subject: header("subject"),
        message_id: header("message-id"),
        body: body.to_owned(),
    }
}

impl Sink {
    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("smtp://").to_owned()
    }

    /// Every message delivered to `address` (envelope recipient), in no
    /// particular order.
    pub fn messages_to(&self, address: &str) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let address = address.to_ascii_lowercase();
        entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .map(|bytes| parse(&String::from_utf8_lossy(&bytes)))
            .filter(|m| m.rcpt_to.to_ascii_lowercase().contains(&address))
            .collect()
    }

    /// Waits until at least `n` messages reached `address`; returns them all.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.messages_to(address);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages reached {address} within {PATIENCE:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the gate does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Accept and close at once: the client's attempt fails.
    Refuse,
    /// Accept and never answer: the client waits.
    Hold,
    /// Pass everything to the sink.
    Forward,
}

/// A loopback TCP front for the sink whose behaviour the test scripts:
/// the n-th connection follows `plan[n]`, later ones the current mode.
pub struct SmtpGate {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Gate>>,
    accepted: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpGate {
    pub async fn new(upstream: String, plan: Vec<Gate>, then: Gate) -> SmtpGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(then));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (mode2, accepted2) = (mode.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let n = {
                    let mut a = accepted2.lock().unwrap();
                    a.push(Instant::now());
                    a.len() - 1
                };
                let what = plan
                    .get(n)
                    .copied()
                    .unwrap_or_else(|| *mode2.lock().unwrap());
                match what {
                    Gate::Refuse => drop(client),
                    Gate::Hold => held.push(client),
                    Gate::Forward => {
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(upstream).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                }
            }
        });
        SmtpGate {
            addr,
            mode,
            accepted,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn set(&self, mode: Gate) {
        *self.mode.lock().unwrap() = mode;
    }

    /// When each connection arrived.
    pub fn accepted(&self) -> Vec<Instant> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for SmtpGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A unique address, so tests sharing the sink never see each other's mail.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@customers.example", uuid::Uuid::now_v7().simple())
}

/// A tenant with one product variant in stock.
pub struct Shop {
    pub owner: Session,
    pub variant: String,
    pub sku: String,
}

pub async fn shop(s: &TestServer, currency: &str, price: i64, stock: i64) -> Shop {
    let email = unique_email("owner");
    let r = s
        .post_anon(
            "/api/v1/auth/signup",
            json!({"company_name": "Mail Shop", "name": "Owner", "email": email, "password": "correct horse", "currency": currency}),
        )
        .await;
    assert_eq!(r.status, 201, "signup: {}", r.body);
    let owner = Session {
        token: r.body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
        tenant_id: r.body["tenant"]["id"].as_str().unwrap().to_owned(),
        user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
        email,
    };
    let sku = format!("TEE-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let p = s
        .post(
            "/api/v1/products",
            &owner.token,
            json!({"name": "Tee", "variants": [{"sku": sku, "price": price, "cost": price / 2, "stock": stock}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    Shop {
        variant: p.body["variants"][0]["id"].as_str().unwrap().to_owned(),
        sku,
        owner,
    }
}

impl Shop {
    pub async fn customer(&self, s: &TestServer, name: &str, email: Option<&str>) -> String {
        let mut body = json!({"name": name});
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let r = s.post("/api/v1/customers", &self.owner.token, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Places an invoice order; returns it.
    pub async fn order(&self, s: &TestServer, customer: &str, quantity: i64) -> Value {
        let r = s
            .post(
                "/api/v1/orders",
                &self.owner.token,
                json!({"customer_id": customer, "payment_method": "invoice",
                       "items": [{"variant_id": self.variant, "quantity": quantity}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }
}

/// The tenant's jobs matching `query` (`type=…&status=…`), every page.
pub async fn jobs(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/admin/jobs?limit=100&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.get(&path, token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// Polls the job list until `done` holds for it; returns it.
pub async fn wait_for_jobs(
    s: &TestServer,
    token: &str,
    query: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let items = jobs(s, token, query).await;
        if done(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every event in the outbox has been dispatched (and there
/// is at least one).
pub async fn wait_until_dispatched(s: &TestServer) {
    use sqlx::Row;
    let db = s.raw_database().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             SUM(CASE WHEN processed_at IS NULL THEN 1 ELSE 0 END) AS pending FROM outbox",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        let total: i64 = row.try_get("total").unwrap();
        let pending: Option<i64> = row.try_get("pending").unwrap();
        if total > 0 && pending.unwrap_or(0) == 0 {
            db.close().await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox was not dispatched: {pending:?} of {total} pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
