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

fn bytes_of(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn within_the_grace_readers_get_recent_bytes_while_one_refresh_runs() {
    let cache = Cache::local(1 << 20);
    let grace = Duration::from_secs(3600);
    let first = cache
        .get_or_refresh("d", &tags(&["t"]), grace, || async {
            Ok::<_, String>(bytes_of("1"))
        })
        .await
        .unwrap();
    assert_eq!(first.body().as_ref(), b"1");
    cache.invalidate(&tags(&["t"]));

    // The refresh waits on a gate, so every reader below arrives while it
    // runs: each gets the recent bytes at once, and only one computes.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let (gate, runs) = (gate.clone(), runs.clone());
        let served = cache
            .get_or_refresh("d", &tags(&["t"]), grace, move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let _open = gate.acquire().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(bytes_of("2"))
            })
            .await
            .unwrap();
        assert_eq!(served.body().as_ref(), b"1");
    }
    gate.add_permits(1);
    // The refreshed bytes replace the recent ones; a reader meanwhile
    // would compute "3" only if it had to compute at all.
    assert_eq!(served_once_refreshed(&cache, grace, "3", b"2").await, b"2");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Reads "d" (computing `otherwise` if it must) until it is `want`, for at
/// most 5 s; returns what it last read.
async fn served_once_refreshed(
    cache: &Cache,
    grace: Duration,
    otherwise: &'static str,
    want: &[u8],
) -> Vec<u8> {
    let mut current = Vec::new();
    for _ in 0..500 {
        current = cache
            .get_or_refresh("d", &tags(&["t"]), grace, move || async move {
                Ok::<_, String>(bytes_of(otherwise))
            })
            .await
            .unwrap()
            .body()
            .to_vec();
        if current == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    current
}

#[tokio::test]
async fn past_the_grace_a_reader_waits_for_the_current_bytes() {
    let cache = Cache::local(1 << 20);
    let read = |value: &'static str| {
        let cache = cache.clone();
        async move {
            cache
                .get_or_refresh("d", &tags(&["t"]), Duration::ZERO, move || async move {
                    Ok::<_, String>(bytes_of(value))
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(read("1").await.body().as_ref(), b"1");
    // Not invalidated: the current entry is served, nothing recomputed.
    assert_eq!(read("2").await.body().as_ref(), b"1");
    cache.invalidate(&tags(&["t"]));
    assert_eq!(read("3").await.body().as_ref(), b"3");
}

#[tokio::test]
async fn a_failed_refresh_is_not_kept_and_the_next_reader_tries_again() {
    let cache = Cache::local(1 << 20);
    let grace = Duration::from_secs(3600);
    let ok = |v: &'static str| move || async move { Ok::<_, String>(bytes_of(v)) };
    cache
        .get_or_refresh("d", &tags(&["t"]), grace, ok("1"))
        .await
        .unwrap();
    cache.invalidate(&tags(&["t"]));
    let served = cache
        .get_or_refresh("d", &tags(&["t"]), grace, || async {
            Err::<Bytes, _>("database away".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(served.body().as_ref(), b"1");
    // Once the failed refresh has ended, a reader starts another one.
    assert_eq!(served_once_refreshed(&cache, grace, "2", b"2").await, b"2");
}

#[tokio::test]
async fn recomputing_after_an_invalidation_drops_the_unreadable_entry() {
    let cache = Cache::local(1 << 20);
    for _ in 0..20 {
        cache
            .get_or_compute("page", &tags(&["catalog"]), || async {
                Ok::<_, String>(Bytes::from(vec![b'x'; 1000]))
            })
            .await
            .unwrap();
        cache.invalidate(&tags(&["catalog"]));
    }
    cache.housekeeping().await;
    // Each round filed the page under a new version and dropped the one
    // before: only the last round's entry is held.
    assert_eq!(cache.l1_size().1, 1);
}
