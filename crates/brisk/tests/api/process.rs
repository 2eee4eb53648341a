//! The `brisk` binary as an operator runs it: help, configuration
//! precedence, migrations, JSON request logs and graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_brisk");

pub(crate) fn brisk() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("BRISK_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("BRISK_JWT_SECRET", "process-test-secret");
    cmd
}

/// A running `brisk serve`, started on port 0: its address comes from its
/// own "brisk listening" log line, so parallel tests never race for ports.
struct Served {
    child: Child,
    addr: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn serve(mut cmd: Command) -> Served {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let collected = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "brisk listening"
            {
                let _ = addr_tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
            collected.lock().unwrap().push(line);
        }
    });
    let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => addr,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "brisk did not report its address: {:?}",
                lines.lock().unwrap()
            );
        }
    };
    Served {
        child,
        addr,
        lines,
        reader: Some(reader),
    }
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then the exit status and every line the server printed.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        terminate(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(20));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
}

pub(crate) fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

pub(crate) fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("brisk did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn help_explains_every_setting() {
    let top = brisk().arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.contains("serve") && top.contains("worker") && top.contains("migrate"),
        "{top}"
    );
    let serve = brisk().args(["serve", "--help"]).output().unwrap();
    let serve = String::from_utf8_lossy(&serve.stdout);
    for setting in [
        "BRISK_ADDR",
        "BRISK_DATABASE_URL",
        "BRISK_DATABASE_REPLICA_URLS",
        "BRISK_JWT_SECRET",
        "BRISK_RATE_LIMIT_PER_MINUTE",
        "BRISK_LOGIN_RATE_LIMIT_PER_MINUTE",
        "BRISK_LOG",
        "BRISK_DATABASE_POOL_SIZE",
        "BRISK_DATABASE_ACQUIRE_TIMEOUT_MS",
        "BRISK_DATABASE_STATEMENT_TIMEOUT_MS",
        "BRISK_WORKERS",
        "BRISK_SMTP_URL",
        "BRISK_SMTP_FROM",
        "BRISK_RETRY_BASE_MS",
        "BRISK_JOB_LEASE_MS",
        "BRISK_WORKER_POLL_MS",
        "--addr",
        "--database-url",
        "--demo",
    ] {
        assert!(
            serve.contains(setting),
            "{setting} missing from serve --help:\n{serve}"
        );
    }
}

#[tokio::test]
async fn bad_smtp_settings_stop_serve_and_worker_at_start_without_printing_the_url() {
    let (url, _dir) = fresh_database_url().await;
    for (smtp_url, from, setting) in [
        (
            "http://mailer:hunter2@relay.example",
            "Brisk <brisk@localhost>",
            "BRISK_SMTP_URL",
        ),
        (
            "smtp://mailer:hunter2@relay.example:25",
            "not an address",
            "BRISK_SMTP_FROM",
        ),
    ] {
        for command in [["serve", "--addr=127.0.0.1:0"].as_slice(), &["worker"]] {
            let out = brisk()
                .args(command)
                .env("BRISK_DATABASE_URL", &url)
                .env("BRISK_SMTP_URL", smtp_url)
                .env("BRISK_SMTP_FROM", from)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{command:?} started: {text}");
            assert!(text.contains(setting), "{command:?}: {text}");
            assert!(!text.contains("hunter2"), "the password leaked: {text}");
        }
    }
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let (url, _dir) = fresh_database_url().await;
    for _ in 0..2 {
        let out = brisk()
            .args(["migrate", "--database-url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test]
async fn flags_override_environment_which_overrides_defaults() {
    let (url, _dir) = fresh_database_url().await;
    // Two loopback addresses tell the sources apart: 127.0.0.2 from the
    // environment, 127.0.0.1 from the flag.
    let mut cmd = brisk();
    cmd.env("BRISK_ADDR", "127.0.0.2:0")
        .env("BRISK_DATABASE_URL", &url)
        .args(["serve", "--addr", "127.0.0.1:0"]);
    let served = serve(cmd);
    assert!(served.addr.starts_with("127.0.0.1:"), "{}", served.addr);
    assert_eq!(
        http_client()
            .get(served.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(served.stop().0.success());

    // The environment alone is honoured, over the default.
    let mut cmd = brisk();
    cmd.env("BRISK_ADDR", "127.0.0.2:0")
        .env("BRISK_DATABASE_URL", &url)
        .arg("serve");
    let served = serve(cmd);
    assert!(served.addr.starts_with("127.0.0.2:"), "{}", served.addr);
    assert_eq!(
        http_client()
            .get(served.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(served.stop().0.success());
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_exits_0_and_logs_json_lines() {
    let (url, _dir) = fresh_database_url().await;
    let mut cmd = brisk();
    cmd.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &url,
        "--demo",
    ]);
    let served = serve(cmd);

    // The demo login works.
    let client = http_client();
    let login = client
        .post(served.url("/api/v1/auth/login"))
        .json(&json!({"email": "owner@demo.brisk.local", "password": "brisk-demo-2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    // …and the back office's address is printed with it.
    assert!(
        served
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Back office: http://")
                && l.contains("/admin")
                && l.contains("brisk-demo-2026")),
        "the demo login names the back office"
    );

    // Signups hash passwords (tens of ms each, two at a time): a queue of
    // them is in flight when SIGTERM arrives. SIGTERM goes out once the
    // first has been answered, so the server has surely accepted them all.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut in_flight = Vec::new();
    for i in 0..12 {
        let client = client.clone();
        let done = done_tx.clone();
        let url = served.url("/api/v1/auth/signup");
        in_flight.push(tokio::spawn(async move {
            let status = client
                .post(url)
                .json(&json!({"company_name": "C", "name": "N", "email": format!("s{i}@example.com"), "password": "12345678"}))
                .send()
                .await
                .map(|r| r.status().as_u16());
            let _ = done.send(());
            status
        }));
    }
    done_rx.recv().await;
    let stopping = std::thread::spawn(move || served.stop());
    let mut answered = 0;
    for h in in_flight {
        assert_eq!(h.await.unwrap().expect("request answered"), 201);
        answered += 1;
    }
    assert_eq!(answered, 12);
    let (status, lines) = stopping.join().unwrap();
    assert_eq!(status.code(), Some(0));
    let request_logs: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect();
    let signup = request_logs
        .iter()
        .find(|v| v["route"] == "/api/v1/auth/signup")
        .expect("a log line per request");
    for key in ["request_id", "route", "status", "duration_ms", "method"] {
        assert!(!signup[key].is_null(), "{key} missing in {signup}");
    }
    assert_eq!(
        request_logs
            .iter()
            .filter(|v| v["route"] == "/api/v1/auth/signup")
            .count(),
        12
    );
}

/// `serve` runs itself again in place (same process id) with the
/// allocator's purge delay at 0, so freed memory leaves the resident set
/// at once; an operator's own setting is kept.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_returns_freed_memory_promptly_unless_the_operator_says_otherwise() {
    let (url, _dir) = fresh_database_url().await;
    let purge_delay = |served: &Served| -> Option<String> {
        let environ = std::fs::read(format!("/proc/{}/environ", served.child.id())).unwrap();
        environ
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("MIMALLOC_PURGE_DELAY=").map(str::to_owned))
    };
    for (set, expected) in [(None, "0"), (Some("250"), "250")] {
        let mut cmd = brisk();
        cmd.env_remove("MIMALLOC_PURGE_DELAY")
            .env("BRISK_DATABASE_URL", &url)
            .args(["serve", "--addr", "127.0.0.1:0"]);
        if let Some(value) = set {
            cmd.env("MIMALLOC_PURGE_DELAY", value);
        }
        let served = serve(cmd);
        assert_eq!(
            purge_delay(&served).as_deref(),
            Some(expected),
            "set: {set:?}"
        );
        let live = http_client()
            .get(served.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status().as_u16(), 200);
        assert!(served.stop().0.success(), "the same process stops cleanly");
    }
}
