//! `brisk load` as a library call against a real server: a seconds-long run
//! of a scenario file writes sane reports, and a broken threshold fails the
//! run (exit 1) naming itself.

use std::path::PathBuf;

use crate::common::*;
use serde_json::json;

fn scenario(name: &str) -> PathBuf {
    crate_dir()
        .join("../../scenarios")
        .join(format!("{name}.toml"))
}

fn out_dir() -> PathBuf {
    std::env::temp_dir().join(format!("brisk_load_{}", uuid::Uuid::now_v7().simple()))
}

#[tokio::test]
async fn a_short_run_writes_reports_and_a_broken_threshold_fails_it() {
    let server = start().await;
    let owner = server.signup("Load Co").await;
    let mut products = Vec::new();
    for i in 0..4 {
        let r = server
            .post(
                "/api/v1/products",
                &owner.token,
                json!({"name": format!("Load product {i}"), "variants": [
                    {"sku": format!("LOAD-{i}-A"), "price": 1500, "cost": 700, "stock": 100000},
                    {"sku": format!("LOAD-{i}-B"), "price": 1700, "cost": 700, "stock": 100000}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        products.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for i in 0..3 {
        let r = server
            .post(
                "/api/v1/customers",
                &owner.token,
                json!({"name": format!("Load customer {i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = server
        .post(
            "/api/v1/share-links",
            &owner.token,
            json!({"product_id": products[0]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Closed model, place-order (a write with captures of nothing, checks
    // on the answer), 2 seconds.
    let out = out_dir();
    let outcome = brisk_load::run(brisk_load::LoadArgs {
        scenario: scenario("place-order"),
        url: server.base.clone(),
        out: out.clone(),
        users: Some(2),
        duration: Some("2s".into()),
        think: Some("0ms".into()),
        token: Some(owner.token.clone()),
        // The file's own p95 target is for a release build on a quiet
        // machine; a test on a slow one overrides it.
        thresholds: vec![
            "error_rate<5%".into(),
            "p95<30s".into(),
            "place order:p99<30s".into(),
        ],
        quiet: true,
        ..Default::default()
    })
    .await;
    assert_eq!(outcome.exit_code, 0, "{:?}", outcome.messages);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let orders = report["totals"]["count"].as_u64().unwrap();
    assert!(orders > 0, "{report}");
    assert_eq!(report["requests"][0]["name"], "place order");
    assert_eq!(report["settings"]["model"], "closed");
    assert!(report["requests"][0]["p95_ms"].as_f64().unwrap() > 0.0);
    assert!(report["timeline"].as_array().unwrap().len() >= 2);
    assert!(
        report["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true)
    );
    // The orders are real: the server lists them.
    let listed = server.get("/api/v1/orders?limit=5", &owner.token).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        5.min(orders as usize)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("place order"));
    assert!(
        !html.contains("<script") && !html.contains("http://cdn") && !html.contains("https://")
    );

    // Open model on the public share links, and a threshold that cannot
    // hold: exit 1, named.
    let out2 = out_dir();
    let outcome = brisk_load::run(brisk_load::LoadArgs {
        scenario: scenario("share-link-hits"),
        url: server.base.clone(),
        out: out2.clone(),
        rate: Some("40/s".into()),
        duration: Some("1s".into()),
        token: Some(owner.token.clone()),
        thresholds: vec!["p50<0.001ms".into()],
        quiet: true,
        ..Default::default()
    })
    .await;
    assert_eq!(outcome.exit_code, 1, "{:?}", outcome.messages);
    assert!(
        outcome
            .messages
            .iter()
            .any(|m| m.starts_with("p50<0.001ms")),
        "{:?}",
        outcome.messages
    );
    let report = outcome.report.expect("a report");
    assert_eq!(report.settings.model, "open");
    assert!(!report.passed);
    assert!(report.totals.count >= 30, "{:?}", report.totals);
    assert!(out2.join("report.html").exists());

    // A usage error (a threshold that does not parse) is exit 2, and so is
    // a server that is not there.
    let bad = brisk_load::run(brisk_load::LoadArgs {
        scenario: scenario("product-detail"),
        url: server.base.clone(),
        out: out_dir(),
        token: Some(owner.token.clone()),
        thresholds: vec!["p95<fast".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(bad.exit_code, 2);
    let gone = brisk_load::run(brisk_load::LoadArgs {
        scenario: scenario("product-detail"),
        url: "http://127.0.0.1:9".into(),
        out: out_dir(),
        token: Some(owner.token.clone()),
        duration: Some("1s".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(gone.exit_code, 2, "{:?}", gone.messages);
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(out2);
    server.stop().await;
}
