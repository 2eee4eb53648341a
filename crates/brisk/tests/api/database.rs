//! The database layer under cancellation: a request can be dropped at any
//! await (request timeout, client gone), including while its transaction
//! is being opened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brisk::platform::db::{Db, DbSettings, sql};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::common::*;

/// A TCP proxy in front of PostgreSQL that, once armed, holds back every
/// answer of the server from the moment a client sends `BEGIN`, until the
/// test lets them through: a transaction can be dropped while it waits for
/// the answer to its `BEGIN`, every time.
struct HoldingProxy {
    addr: SocketAddr,
    armed: Arc<AtomicBool>,
    /// `true` while answers are held back.
    hold: watch::Sender<bool>,
    begin_sent: Arc<Notify>,
}

impl HoldingProxy {
    async fn start(upstream: String) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("address");
        let armed = Arc::new(AtomicBool::new(false));
        let (hold, _) = watch::channel(false);
        let begin_sent = Arc::new(Notify::new());
        let proxy = HoldingProxy {
            addr,
            armed: armed.clone(),
            hold: hold.clone(),
            begin_sent: begin_sent.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.expect("upstream");
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let mut released = hold.subscribe();
                let (armed, hold, begin_sent) = (armed.clone(), hold.clone(), begin_sent.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        let chunk = &buf[..n];
                        // A simple-protocol `BEGIN` (`Q`, length, text, NUL),
                        // held back from before it reaches the server.
                        if chunk.windows(6).any(|w| w == b"BEGIN\0")
                            && armed.swap(false, Ordering::SeqCst)
                        {
                            hold.send_replace(true);
                            begin_sent.notify_one();
                        }
                        if server_write.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                        if released.wait_for(|held| !held).await.is_err()
                            || client_write.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        proxy
    }
}

/// A `begin` dropped after the server got its `BEGIN` but before the answer
/// must not hand its connection back to the pool inside a transaction:
/// every later autocommitted write on that connection (an idempotency
/// claim, its release) would stay uncommitted, invisible to other
/// connections and holding its row locks, until a later transaction on
/// that connection committed or rolled it all back. One pooled connection,
/// so the write below runs on the connection the dropped `begin` used.
#[tokio::test]
async fn a_transaction_dropped_while_it_begins_leaves_its_connection_out_of_any_transaction() {
    if !is_postgres() {
        return; // the proxy stands between the pool and a server: PostgreSQL only
    }
    let (url, _) = fresh_database_url().await;
    let settings = |url: String| DbSettings {
        url,
        replica_urls: Vec::new(),
        pool_size: 1,
        acquire_timeout: Duration::from_secs(30),
        statement_timeout_ms: 0,
        group_commit: true,
    };
    let observer = Db::connect(&settings(url.clone())).await.expect("connects");
    observer.migrate().await.expect("migrates");
    // postgres://user@host:port/database
    let (head, rest) = url.split_once('@').expect("user@host");
    let (upstream, database) = rest.split_once('/').expect("host/database");
    let proxy = HoldingProxy::start(upstream.to_owned()).await;
    let db = Db::connect(&settings(format!("{head}@{}/{database}", proxy.addr)))
        .await
        .expect("connects through the proxy");

    proxy.armed.store(true, Ordering::SeqCst);
    tokio::select! {
        _ = db.begin() => panic!("the answer to BEGIN was held back"),
        () = proxy.begin_sent.notified() => {}
    }
    // The begin is dropped (above) while it waits for its answer.
    proxy.hold.send_replace(false);

    sql("INSERT INTO settings (key, value) VALUES ('after-a-dropped-begin', 'written')")
        .execute(db.writer())
        .await
        .expect("inserts");
    let seen = sql("SELECT value FROM settings WHERE key = 'after-a-dropped-begin'")
        .fetch_optional(observer.writer())
        .await
        .expect("reads");
    assert!(
        seen.is_some(),
        "an autocommitted write after a dropped begin is committed, seen by another connection"
    );
}

/// Group commit (PostgreSQL): statements that arrive while a batch runs
/// share the next transaction; one that fails gets its own error and the
/// others are committed without it. A slow statement holds the shard so
/// that the rest arrive together (if the machine is slower than that, the
/// batches are smaller, and the answers must be the same).
#[tokio::test]
async fn group_commit_answers_each_statement_alone_and_commits_the_rest() {
    use brisk::platform::group_commit::GroupCommit;
    if !is_postgres() {
        return;
    }
    sqlx::any::install_default_drivers();
    let (url, _) = fresh_database_url().await;
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("pool");
    sqlx::raw_sql("CREATE TABLE grouped (n BIGINT PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("table");
    let group = Arc::new(GroupCommit::start(&pool, 1));
    let slow = {
        let group = group.clone();
        tokio::spawn(async move {
            group
                .fetch_one("t", sql("SELECT CAST(pg_sleep(0.5) AS TEXT) AS slept"))
                .await
        })
    };
    let mut answers = Vec::new();
    for n in 0..40_i64 {
        let group = group.clone();
        // Every 7th divides by zero: an error, not a refusal.
        let statement = if n % 7 == 3 {
            sql("INSERT INTO grouped (n) SELECT $1 / 0 RETURNING n")
        } else {
            sql("INSERT INTO grouped (n) VALUES ($1) RETURNING n")
        };
        answers.push(tokio::spawn(async move {
            group.fetch_one("t", statement.bind(n)).await
        }));
    }
    slow.await.expect("task").expect("the slow statement");
    let mut written = Vec::new();
    for (n, answer) in answers.into_iter().enumerate() {
        let n = n as i64;
        match answer.await.expect("task") {
            Ok(row) => {
                assert_ne!(n % 7, 3, "{n} should have failed");
                assert_eq!(sqlx::Row::try_get::<i64, _>(&row, "n").expect("n"), n);
                written.push(n);
            }
            Err(sqlx::Error::Database(e)) => {
                assert_eq!(n % 7, 3, "{n} failed: {e}");
                assert_eq!(e.code().as_deref(), Some("22012"), "division by zero");
            }
            Err(other) => panic!("{n}: {other}"),
        }
    }
    let stored: Vec<(i64,)> = sqlx::query_as("SELECT n FROM grouped ORDER BY n")
        .fetch_all(&pool)
        .await
        .expect("rows");
    let expected: Vec<i64> = (0..40).filter(|n| n % 7 != 3).collect();
    assert_eq!(written, expected);
    assert_eq!(
        stored.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
        expected
    );
}

/// Taking stock must stay a HOT update on PostgreSQL (no new index entry,
/// no uniqueness check against the row's older versions): no index of
/// `variants`, key or predicate, reads the columns an order writes.
#[tokio::test]
async fn no_index_of_variants_reads_what_an_order_writes() {
    if !is_postgres() {
        return;
    }
    let s = start().await;
    let pool = s.raw_database().await;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(indexname AS TEXT), indexdef FROM pg_indexes WHERE tablename = 'variants'",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    assert!(indexes.len() >= 4, "{indexes:?}");
    for (name, definition) in &indexes {
        for written in ["stock", "updated_at", "last_movement_at"] {
            let reads = definition
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == written);
            assert!(!reads, "{name} reads {written}: {definition}");
        }
    }
}
