//! The black-box harness: each test starts the real server (router,
//! pipeline, listener) on a random loopback port against a fresh database,
//! and talks HTTP to it.
//!
//! Backend: `BRISK_TEST_BACKEND=sqlite` (default) or `postgres`, with
//! `BRISK_TEST_POSTGRES_URL` naming a server where each test creates its own
//! database.

#![allow(dead_code)]

use std::path::PathBuf;

use brisk::app::{self, RunningServer};
use brisk::platform::config::Config;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::Connection;

/// This crate's directory as cargo runs the tests, not as they were built:
/// a shared target directory may hold a test binary built from another
/// checkout of the same sources.
pub fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

pub fn backend() -> String {
    std::env::var("BRISK_TEST_BACKEND").unwrap_or_else(|_| "sqlite".to_owned())
}

pub fn is_postgres() -> bool {
    backend() == "postgres"
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database_url() -> (String, Option<PathBuf>) {
    let name = format!("brisk_test_{}", uuid::Uuid::now_v7().simple());
    if is_postgres() {
        let admin = std::env::var("BRISK_TEST_POSTGRES_URL")
            .expect("BRISK_TEST_POSTGRES_URL must be set when BRISK_TEST_BACKEND=postgres");
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        (format!("{base}/{name}"), None)
    } else {
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        (format!("sqlite://{}/brisk.db", dir.display()), Some(dir))
    }
}

/// The configuration tests start from: fresh database, random port, login
/// limits off (tests log in many times from one IP), statement header on.
pub async fn test_config() -> (Config, Option<PathBuf>) {
    let (url, dir) = fresh_database_url().await;
    let mut config = Config::from_env().expect("default config");
    config.addr = "127.0.0.1:0".parse().expect("addr");
    config.database_url = url;
    config.database_replica_urls = Vec::new();
    config.jwt_secret = Some("test-secret-for-brisk".to_owned());
    config.login_rate_limit_per_minute = 0;
    config.rate_limit_per_minute = 0;
    // Tests share 127.0.0.1; the ones about this limit set it.
    config.public_rate_limit_per_minute = 0;
    // Redis only where a test asks for it (see `RedisServer`).
    config.redis_url = None;
    config.statement_count_header = true;
    config.database_pool_size = 8;
    // Race tests queue hundreds of writers behind SQLite's one writer while
    // other tests run beside them: give them room before a 503.
    config.database_acquire_timeout_ms = 10_000;
    (config, dir)
}

/// An HTTP client for tests. reqwest brings no TLS crypto provider of its
/// own (the server installs ring at start), so a test that builds a client
/// without starting a server in-process must install it first: this does.
pub fn http_client() -> reqwest::Client {
    app::install_tls_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub server: Option<RunningServer>,
    pub database_url: String,
    dir: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn statements(&self) -> u64 {
        self.header("x-brisk-statements")
            .and_then(|v| v.parse().ok())
            .expect("x-brisk-statements header")
    }
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem responses are application/problem+json"
        );
    }
    /// The `field`s named in a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A logged-in user of one tenant.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let (config, dir) = test_config().await;
    start_config(config, dir, adjust).await
}

/// A second server on the database of `other` (a second node).
pub async fn start_beside(other: &TestServer, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let (mut config, dir) = test_config().await;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    config.database_url = other.database_url.clone();
    start_config(config, None, adjust).await
}

async fn start_config(
    mut config: Config,
    dir: Option<PathBuf>,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let server = app::start(config).await.expect("server starts");
    TestServer {
        base: format!("http://{}", server.addr),
        client: http_client(),
        server: Some(server),
        database_url,
        dir,
    }
}

impl TestServer {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        Self::read(resp).await
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.request(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.request(Method::POST, path, Some(token), Some(&body))
            .await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.request(Method::PATCH, path, Some(token), Some(&body))
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.request(Method::DELETE, path, Some(token), None).await
    }
    pub async fn post_anon(&self, path: &str, body: Value) -> Resp {
        self.request(Method::POST, path, None, Some(&body)).await
    }
    pub async fn get_anon(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None, None).await
    }

    /// Signs up a new tenant; returns its owner's session.
    /// One connection to the server's database behind its back: for what
    /// a test must set up or inspect that no route offers (aged rows, held
    /// locks, plans).
    pub async fn raw_database(&self) -> sqlx::AnyPool {
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.database_url)
            .await
            .expect("a raw connection to the test database")
    }

    /// The payloads of a tenant's outbox events on `topic`, oldest first.
    pub async fn outbox(&self, tenant_id: &str, topic: &str) -> Vec<Value> {
        let pool = self.raw_database().await;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT payload FROM outbox WHERE tenant_id = $1 AND topic = $2 ORDER BY seq",
        )
        .bind(tenant_id)
        .bind(topic)
        .fetch_all(&pool)
        .await
        .expect("outbox rows");
        rows.iter()
            .map(|(payload,)| serde_json::from_str(payload).expect("a JSON payload"))
            .collect()
    }

    /// Every event of a tenant in commit order, as `(topic, aggregate)`.
    pub async fn outbox_aggregates(&self, tenant_id: &str) -> Vec<(String, String)> {
        let pool = self.raw_database().await;
        sqlx::query_as("SELECT topic, aggregate FROM outbox WHERE tenant_id = $1 ORDER BY seq")
            .bind(tenant_id)
            .fetch_all(&pool)
            .await
            .expect("outbox rows")
    }

    pub async fn signup(&self, company: &str) -> Session {
        let email = format!(
            "owner-{}@{}.example",
            uuid::Uuid::now_v7().simple(),
            company.to_lowercase().replace(' ', "-")
        );
        let r = self
            .post_anon(
                "/api/v1/auth/signup",
                json!({"company_name": company, "name": "Owner", "email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, 201, "signup: {}", r.body);
        Session {
            token: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
            tenant_id: r.body["tenant"]["id"].as_str().unwrap().to_owned(),
            user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    /// Creates a user with `role` in the owner's tenant and logs them in.
    pub async fn user_with_role(&self, owner: &Session, role: &str) -> Session {
        let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7().simple());
        let r = self
            .post(
                "/api/v1/users",
                &owner.token,
                json!({"email": email, "name": role, "password": "password-123", "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "create user: {}", r.body);
        let user_id = r.body["id"].as_str().unwrap().to_owned();
        let r = self
            .post_anon(
                "/api/v1/auth/login",
                json!({"email": email, "password": "password-123"}),
            )
            .await;
        assert_eq!(r.status, 200, "login: {}", r.body);
        Session {
            token: r.body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
            tenant_id: owner.tenant_id.clone(),
            user_id,
            email,
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestServer {
    /// Sends `n` copies of one POST at once (each on its own task) and
    /// returns every answer, for race tests.
    pub async fn post_concurrently(
        &self,
        n: usize,
        path: &str,
        token: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Vec<Resp> {
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let mut req = self
                .client
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(&body);
            if let Some(key) = idempotency_key {
                req = req.header("idempotency-key", key);
            }
            handles.push(tokio::spawn(async move {
                TestServer::read(req.send().await.expect("request sent")).await
            }));
        }
        let mut answers = Vec::with_capacity(n);
        for h in handles {
            answers.push(h.await.expect("request task"));
        }
        answers
    }
}

/// A private Redis on a free loopback port, for tests that stop and restart
/// it or must not share keys with other tests. Needs `redis-server` on the
/// PATH (`scripts/test` installs it). Stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("brisk_redis_{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, empty, and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills it (as a crash would), and waits until the port is closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
