//! The `brisk` binary as an operator runs it: help, configuration
//! precedence, migrations, JSON request logs and graceful shutdown.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_brisk");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn brisk() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("BRISK_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("BRISK_JWT_SECRET", "process-test-secret");
    cmd
}

async fn wait_live(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/health/live")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("brisk did not come up on port {port}");
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
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
    assert!(top.contains("serve") && top.contains("migrate"), "{top}");
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
    let env_port = free_port();
    let flag_port = free_port();
    let mut child = brisk()
        .env("BRISK_ADDR", format!("127.0.0.1:{env_port}"))
        .env("BRISK_DATABASE_URL", &url)
        .args(["serve", "--addr", &format!("127.0.0.1:{flag_port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_live(flag_port).await;
    assert!(
        reqwest::get(format!("http://127.0.0.1:{env_port}/health/live"))
            .await
            .is_err()
    );
    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());

    // Environment alone is honoured.
    let mut child = brisk()
        .env("BRISK_ADDR", format!("127.0.0.1:{env_port}"))
        .env("BRISK_DATABASE_URL", &url)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_live(env_port).await;
    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_exits_0_and_logs_json_lines() {
    let (url, _dir) = fresh_database_url().await;
    let port = free_port();
    let mut child = brisk()
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &url,
            "--demo",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    wait_live(port).await;

    // The demo login works.
    let client = reqwest::Client::new();
    let login = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&json!({"email": "owner@demo.brisk.local", "password": "brisk-demo-2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);

    // Signups hash passwords (tens of ms each, two at a time): a queue of
    // them is in flight when SIGTERM arrives. SIGTERM goes out once the
    // first has been answered, so the server has surely accepted them all.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut in_flight = Vec::new();
    for i in 0..12 {
        let client = client.clone();
        let done = done_tx.clone();
        in_flight.push(tokio::spawn(async move {
            let status = client
                .post(format!("http://127.0.0.1:{port}/api/v1/auth/signup"))
                .json(&json!({"company_name": "C", "name": "N", "email": format!("s{i}@example.com"), "password": "12345678"}))
                .send()
                .await
                .map(|r| r.status().as_u16());
            let _ = done.send(());
            status
        }));
    }
    done_rx.recv().await;
    terminate(&child);
    let mut answered = 0;
    for h in in_flight {
        assert_eq!(h.await.unwrap().expect("request answered"), 201);
        answered += 1;
    }
    assert_eq!(answered, 12);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let lines = lines.join().unwrap();
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
