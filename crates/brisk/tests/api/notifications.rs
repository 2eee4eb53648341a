//! E-mail notifications: an order confirmation reaches a real SMTP server
//! when e-mail is on, and nothing is queued for a customer without an
//! address or when e-mail is off.

use serde_json::json;

use crate::common::*;
use crate::mail::*;

#[tokio::test]
async fn every_new_order_sends_its_customer_a_confirmation_with_number_lines_and_total() {
    let sink = sink();
    let s = start_with(|c| {
        c.smtp_url = Some(sink.url.clone());
        c.worker_poll_ms = 50;
    })
    .await;
    let shop = shop(&s, "EUR", 1999, 100).await;
    let address = unique_email("ada");
    let customer = shop.customer(&s, "Ada Lovelace", Some(&address)).await;

    let placed = shop.order(&s, &customer, 2).await;
    let number = placed["number"].as_str().unwrap().to_owned();
    let mail = sink.wait_for(&address, 1).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    assert!(m.to.contains(&address), "addressed to the customer: {m:?}");
    assert!(m.to.contains("Ada Lovelace"), "{m:?}");
    assert!(
        m.from.contains("brisk@localhost"),
        "the default From: {m:?}"
    );
    assert_eq!(m.subject, format!("Order {number} confirmed"));
    for needle in [
        format!("thank you for your order {number}."),
        format!("- {}: 2 x 19.99 EUR, line total 39.98 EUR", shop.sku),
        "Total: 39.98 EUR".to_owned(),
    ] {
        assert!(
            m.body.contains(&needle),
            "{needle:?} missing from\n{}",
            m.body
        );
    }

    // Paid from the wallet: confirmed as well.
    let credit = s
        .post(
            &format!("/api/v1/customers/{customer}/wallet/credits"),
            &shop.owner.token,
            json!({"amount": 10_000}),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.body);
    let paid = s
        .post(
            "/api/v1/orders",
            &shop.owner.token,
            json!({"customer_id": customer, "payment_method": "wallet",
                   "items": [{"variant_id": shop.variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let paid_number = paid.body["number"].as_str().unwrap();
    let mail = sink.wait_for(&address, 2).await;
    assert_eq!(mail.len(), 2);
    let second = mail
        .iter()
        .find(|m| m.subject.contains(paid_number))
        .expect("the wallet order's confirmation");
    assert!(second.body.contains("Total: 19.99 EUR"), "{}", second.body);

    // Each one was a job that ran once.
    let done = wait_for_jobs(
        &s,
        &shop.owner.token,
        &format!("type={CONFIRMATION}"),
        "two done jobs",
        |j| j.len() == 2 && j.iter().all(|j| j["status"] == "done"),
    )
    .await;
    for job in &done {
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(job["last_error"], serde_json::Value::Null);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_customer_without_an_email_gets_no_confirmation_job() {
    let sink = sink();
    let s = start_with(|c| {
        c.smtp_url = Some(sink.url.clone());
        c.worker_poll_ms = 50;
    })
    .await;
    let shop = shop(&s, "USD", 500, 100).await;
    let silent = shop.customer(&s, "No Mail", None).await;
    let address = unique_email("grace");
    let reachable = shop.customer(&s, "Grace", Some(&address)).await;

    shop.order(&s, &silent, 1).await;
    let second = shop.order(&s, &reachable, 3).await;
    // Events are dispatched in order: once the second order's job exists,
    // the first order's event has been handled too.
    let queued = wait_for_jobs(
        &s,
        &shop.owner.token,
        &format!("type={CONFIRMATION}"),
        "the reachable customer's job",
        |j| !j.is_empty(),
    )
    .await;
    assert_eq!(
        queued.len(),
        1,
        "only the customer with an e-mail: {queued:?}"
    );
    let mail = sink.wait_for(&address, 1).await;
    assert!(mail[0].subject.contains(second["number"].as_str().unwrap()));
    assert!(
        mail[0].body.contains("Total: 15.00 USD"),
        "{}",
        mail[0].body
    );
    s.stop().await;
}

#[tokio::test]
async fn without_an_smtp_url_no_confirmation_is_queued() {
    let s = start_with(|c| {
        c.smtp_url = None;
        c.worker_poll_ms = 50;
    })
    .await;
    let shop = shop(&s, "USD", 500, 100).await;
    let customer = shop
        .customer(&s, "Ada", Some(&unique_email("nobody")))
        .await;
    shop.order(&s, &customer, 1).await;
    wait_until_dispatched(&s).await;
    let listed = jobs(&s, &shop.owner.token, &format!("type={CONFIRMATION}")).await;
    assert!(listed.is_empty(), "{listed:?}");
    s.stop().await;
}
