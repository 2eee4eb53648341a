use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;

use super::*;

fn tags(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_misses_on_one_key_compute_once() {
    let cache = Cache::local(1 << 20);
    let runs = Arc::new(AtomicUsize::new(0));
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (cache, runs) = (cache.clone(), runs.clone());
        waiters.spawn(async move {
            cache
                .get_or_compute("k", &tags(&["a"]), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Long enough that every caller arrives while it runs.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, String>(Bytes::from_static(b"{\"v\":1}"))
                })
                .await
        });
    }
    while let Some(done) = waiters.join_next().await {
        assert_eq!(done.unwrap().unwrap().body().as_ref(), b"{\"v\":1}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_invalidated_tag_makes_its_entries_unreachable_and_others_stay() {
    let cache = Cache::local(1 << 20);
    let value =
        |v: &'static str| move || async move { Ok::<_, String>(Bytes::from_static(v.as_bytes())) };
    let a = cache
        .get_or_compute("a", &tags(&["x"]), value("1"))
        .await
        .unwrap();
    let b = cache
        .get_or_compute("b", &tags(&["y"]), value("1"))
        .await
        .unwrap();
    assert_eq!(a.body().as_ref(), b"1");
    assert_eq!(b.body().as_ref(), b"1");
    cache.invalidate(&tags(&["x"]));
    let a = cache
        .get_or_compute("a", &tags(&["x"]), value("2"))
        .await
        .unwrap();
    let b = cache
        .get_or_compute("b", &tags(&["y"]), value("2"))
        .await
        .unwrap();
    assert_eq!(a.body().as_ref(), b"2", "x was invalidated");
    assert_eq!(b.body().as_ref(), b"1", "y was not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computation_that_straddles_an_invalidation_is_never_served_after_it() {
    let cache = Cache::local(1 << 20);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", &tags(&["x"]), || async move {
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, String>(Bytes::from_static(b"old"))
                })
                .await
        })
    };
    started_rx.await.unwrap();
    // The write commits while the old read is still computing.
    cache.invalidate(&tags(&["x"]));
    release_tx.send(()).unwrap();
    assert_eq!(slow.await.unwrap().unwrap().body().as_ref(), b"old");
    let after = cache
        .get_or_compute("k", &tags(&["x"]), || async {
            Ok::<_, String>(Bytes::from_static(b"new"))
        })
        .await
        .unwrap();
    assert_eq!(after.body().as_ref(), b"new");
}

#[tokio::test]
async fn an_error_reaches_the_caller_and_is_not_kept() {
    let cache = Cache::local(1 << 20);
    let failed = cache
        .get_or_compute("k", &[], || async { Err::<Bytes, _>("db down".to_owned()) })
        .await;
    assert_eq!(failed.err().as_deref(), Some("db down"));
    let ok = cache
        .get_or_compute("k", &[], || async {
            Ok::<_, String>(Bytes::from_static(b"v"))
        })
        .await
        .unwrap();
    assert_eq!(ok.body().as_ref(), b"v");
}

#[tokio::test]
async fn clearing_drops_everything_and_forgetting_old_tags_keeps_entries_correct() {
    let cache = Cache::local(1 << 20);
    let n = Arc::new(AtomicUsize::new(0));
    let compute = |n: Arc<AtomicUsize>| {
        move || async move { Ok::<_, String>(Bytes::from(n.fetch_add(1, Ordering::SeqCst).to_string())) }
    };
    let first = cache
        .get_or_compute("k", &tags(&["x"]), compute(n.clone()))
        .await
        .unwrap();
    cache.clear_here();
    let second = cache
        .get_or_compute("k", &tags(&["x"]), compute(n.clone()))
        .await
        .unwrap();
    assert_ne!(first.body(), second.body());
    cache.housekeeping().await;
    let third = cache
        .get_or_compute("k", &tags(&["x"]), compute(n.clone()))
        .await
        .unwrap();
    assert_eq!(
        second.body(),
        third.body(),
        "housekeeping forgets nothing recent"
    );
}

#[tokio::test]
async fn l1_stays_within_its_byte_bound() {
    let cache = Cache::local(256 * 1024);
    for i in 0..200 {
        let body = Bytes::from(vec![b'x'; 8 * 1024]);
        cache
            .get_or_compute(
                &format!("k{i}"),
                &[],
                || async move { Ok::<_, String>(body) },
            )
            .await
            .unwrap();
    }
    cache.housekeeping().await;
    let (bytes, _) = cache.l1_size();
    assert!(bytes <= 256 * 1024, "{bytes}");
}
