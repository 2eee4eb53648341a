//! The flusher's bookkeeping on a real (in-memory SQLite) database: counts
//! are written as increments, and a flush that fails keeps them.

use std::time::Duration;

use super::flush;
use crate::platform::db::{Db, DbSettings, sql};
use crate::platform::tally::Tally;
use crate::platform::tenant::TenantId;

async fn db_with_a_link() -> Db {
    let db = Db::connect(&DbSettings {
        url: "sqlite::memory:".into(),
        replica_urls: Vec::new(),
        pool_size: 1,
        acquire_timeout: Duration::from_secs(60),
        statement_timeout_ms: 0,
        group_commit: true,
    })
    .await
    .expect("in-memory SQLite opens");
    db.migrate().await.expect("migrations apply");
    for statement in [
        "INSERT INTO tenants (id, name, currency, created_at) VALUES ('t1', 'T', 'USD', 0)",
        "INSERT INTO products (tenant_id, id, name, created_at, updated_at) VALUES ('t1', 'p1', 'P', 0, 0)",
        "INSERT INTO share_links (tenant_id, id, code, product_id, created_at, updated_at) \
         VALUES ('t1', 'l1', 'code1', 'p1', 0, 0), ('t1', 'l2', 'code2', 'p1', 0, 0)",
    ] {
        sql(statement)
            .execute(db.writer())
            .await
            .expect("setup row");
    }
    db
}

async fn clicks_of(db: &Db, id: &str) -> i64 {
    let row = sql("SELECT clicks FROM share_links WHERE id = $1")
        .bind(id)
        .fetch_one(db.writer())
        .await
        .expect("link");
    sqlx::Row::get(&row, "clicks")
}

fn key(id: &str) -> (TenantId, String) {
    (TenantId::new("t1"), id.to_owned())
}

#[tokio::test]
async fn a_flush_adds_each_links_count_to_what_is_stored() {
    let db = db_with_a_link().await;
    let tally = Tally::new();
    tally.add(key("l1"), 3);
    tally.add(key("l2"), 1);
    flush(&db, &tally).await;
    tally.add(key("l1"), 2);
    flush(&db, &tally).await;
    assert!(tally.is_empty());
    assert_eq!(clicks_of(&db, "l1").await, 5);
    assert_eq!(clicks_of(&db, "l2").await, 1);
}

#[tokio::test]
async fn a_flush_that_fails_keeps_its_counts_for_the_next_one() {
    let db = db_with_a_link().await;
    let tally = Tally::new();
    tally.add(key("l1"), 4);
    sql("ALTER TABLE share_links RENAME TO share_links_away")
        .execute(db.writer())
        .await
        .expect("hide the table");
    flush(&db, &tally).await;
    assert!(!tally.is_empty(), "the failed batch was dropped");
    tally.add(key("l1"), 1);
    sql("ALTER TABLE share_links_away RENAME TO share_links")
        .execute(db.writer())
        .await
        .expect("bring the table back");
    flush(&db, &tally).await;
    assert!(tally.is_empty());
    assert_eq!(clicks_of(&db, "l1").await, 5);
}
