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
