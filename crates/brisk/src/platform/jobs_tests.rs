//! Unit tests of `jobs`: a real [`JobRunner`] on a real (in-memory SQLite)
//! database, with handlers scripted to fail, hang or succeed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::platform::db::{DbSettings, commit};

const KIND: &str = "test.scripted";

async fn memory_db() -> Db {
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
    sql("INSERT INTO tenants (id, name, currency, created_at) VALUES ('t1', 'T', 'USD', 0)")
        .execute(db.writer())
        .await
        .expect("tenant");
    db
}

fn tenant() -> TenantId {
    TenantId::new("t1")
}

async fn enqueue_one(db: &Db) -> String {
    let mut tx = db.begin().await.unwrap();
    let id = enqueue(
        &mut tx,
        &tenant(),
        KIND,
        &serde_json::json!({}),
        now_micros(),
    )
    .await
    .unwrap();
    commit(tx).await.unwrap();
    id
}

fn settings(retry_base: Duration, lease: Duration, idle_poll: Duration) -> RunnerSettings {
    RunnerSettings {
        workers: 2,
        retry_base,
        lease,
        idle_poll,
        grace: Duration::from_millis(100),
    }
}

/// What a scripted handler answers to an attempt.
type Script = Box<dyn Fn(&Job) -> Outcome + Send + Sync>;

/// Runs each attempt through its script and remembers when every attempt
/// started.
struct Scripted {
    script: Script,
    calls: Mutex<Vec<(i64, Instant)>>,
}

impl Scripted {
    fn new(script: impl Fn(&Job) -> Outcome + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Scripted {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<(i64, Instant)> {
        self.calls.lock().unwrap().clone()
    }
}

impl JobHandler for Scripted {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push((job.attempt, Instant::now()));
            (self.script)(job)
        })
    }
}

/// Never finishes; says when it started.
struct Hanging {
    started: Arc<Notify>,
}

impl JobHandler for Hanging {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn run<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            self.started.notify_one();
            std::future::pending::<Outcome>().await
        })
    }
}

/// A runner on its own task, and the means to stop it.
struct Running {
    stop: watch::Sender<bool>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

fn spawn(runner: JobRunner) -> Running {
    let (stop, stopped) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let task = tokio::spawn(runner.run(stopped, wake.clone()));
    Running { stop, wake, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the runner stops")
            .expect("the runner does not panic");
    }
}

async fn job(db: &Db, id: &str) -> JobRecord {
    get(db, &tenant(), id)
        .await
        .unwrap()
        .expect("the job exists")
}

/// Polls the job until `done` holds (at most a minute).
async fn wait_for(db: &Db, id: &str, what: &str, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = job(db, id).await;
        if done(&row) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_twice_is_retried_after_growing_delays_then_succeeds() {
    let db = memory_db().await;
    // Every failure the runner records, with the delay it scheduled
    // (run_at − the failure's own time): read exactly, not timed.
    sqlx::raw_sql(
        "CREATE TABLE failures (attempt INTEGER, delay INTEGER); \
         CREATE TRIGGER log_failures AFTER UPDATE ON jobs WHEN NEW.status = 'failed' \
         BEGIN INSERT INTO failures VALUES (NEW.attempts, NEW.run_at - NEW.updated_at); END;",
    )
    .execute(db.writer())
    .await
    .unwrap();
    let handler = Scripted::new(|job| {
        if job.attempt <= 2 {
            Outcome::Failed(format!("refused {}", job.attempt))
        } else {
            Outcome::Done
        }
    });
    let base = Duration::from_millis(50);
    let runner = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![handler.clone()],
        settings(base, Duration::from_secs(60), Duration::from_millis(20)),
    );
    let id = enqueue_one(&db).await;
    let running = spawn(runner);
    running.wake.notify_waiters();
    let done = wait_for(&db, &id, "done", |j| j.status == "done").await;
    running.stop().await;

    assert_eq!(done.attempts, 3);
    assert_eq!(done.last_error, None, "success clears the last error");
    let calls = handler.calls();
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "each attempt numbered, none twice"
    );

    let rows = sql("SELECT attempt, delay FROM failures ORDER BY attempt")
        .fetch_all(db.writer())
        .await
        .unwrap();
    let delays: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.try_get("attempt").unwrap(), r.try_get("delay").unwrap()))
        .collect();
    assert_eq!(delays.len(), 2, "{delays:?}");
    let base_us = micros(base);
    // ×1 then ×4 the base, each within the ±20 % jitter: the second delay
    // is longer than the first could ever be.
    assert_eq!(delays[0].0, 1);
    assert!(
        (base_us * 8 / 10..=base_us * 12 / 10).contains(&delays[0].1),
        "{delays:?}"
    );
    assert_eq!(delays[1].0, 2);
    assert!(
        (base_us * 32 / 10..=base_us * 48 / 10).contains(&delays[1].1),
        "{delays:?}"
    );
    // And the runner honoured them: no attempt ran before it was due.
    let gap = |a: usize, b: usize| micros(calls[b].1.duration_since(calls[a].1));
    assert!(gap(0, 1) >= delays[0].1, "{:?}", gap(0, 1));
    assert!(gap(1, 2) >= delays[1].1, "{:?}", gap(1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_always_fails_ends_dead_with_its_error_and_a_retry_runs_it_again() {
    let db = memory_db().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let handler = Scripted::new({
        let healthy = healthy.clone();
        move |job| {
            if healthy.load(Ordering::SeqCst) {
                Outcome::Done
            } else {
                Outcome::Failed(format!("boom {}", job.attempt))
            }
        }
    });
    // A 1 ms base: eight attempts take ×(1+4+20+120+720·3) ≈ 2.3 s.
    let runner = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![handler.clone()],
        settings(
            Duration::from_millis(1),
            Duration::from_secs(60),
            Duration::from_millis(20),
        ),
    );
    let id = enqueue_one(&db).await;
    let running = spawn(runner);
    let dead = wait_for(&db, &id, "dead", |j| j.status == "dead").await;
    assert_eq!(dead.attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(dead.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(dead.last_error.as_deref(), Some("boom 8"));
    assert_eq!(handler.calls().len(), 8, "dead means no more attempts");

    // Nothing retries a dead job by itself.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handler.calls().len(), 8);

    healthy.store(true, Ordering::SeqCst);
    let Retried::Queued(queued) = retry_dead(&db, &tenant(), &id, now_micros()).await.unwrap()
    else {
        panic!("a dead job is retried");
    };
    assert_eq!((queued.status.as_str(), queued.attempts), ("queued", 0));
    assert_eq!(
        queued.last_error.as_deref(),
        Some("boom 8"),
        "kept until a success"
    );
    running.wake.notify_waiters();
    let done = wait_for(&db, &id, "done after the retry", |j| j.status == "done").await;
    running.stop().await;
    assert_eq!(done.attempts, 1, "counted afresh from the retry");
    assert_eq!(done.last_error, None);
    assert_eq!(handler.calls().len(), 9);

    // Only a dead job can be retried; an unknown one is not found.
    assert!(matches!(
        retry_dead(&db, &tenant(), &id, now_micros()).await.unwrap(),
        Retried::NotDead(j) if j.status == "done" && j.attempts == 1
    ));
    assert!(matches!(
        retry_dead(&db, &tenant(), "no-such-job", now_micros())
            .await
            .unwrap(),
        Retried::NotFound
    ));
    assert!(matches!(
        retry_dead(&db, &TenantId::new("t2"), &id, now_micros())
            .await
            .unwrap(),
        Retried::NotFound
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_runner_died_runs_again_once_its_lease_expires_and_only_then() {
    let db = memory_db().await;
    let hanging = Arc::new(Hanging {
        started: Arc::new(Notify::new()),
    });
    // Runner A claims and then "dies": it never settles.
    let gone = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![hanging.clone()],
        settings(
            Duration::from_millis(50),
            Duration::from_millis(300),
            Duration::from_secs(3600),
        ),
    );
    let held = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![hanging],
        settings(
            Duration::from_millis(50),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        ),
    );
    let handler = Scripted::new(|_| Outcome::Done);
    // Runner B polls only once an hour: only the lease's expiry (its next
    // due time) can wake it in time.
    let other = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![handler.clone()],
        settings(
            Duration::from_millis(50),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        ),
    );

    // A lease that has not expired keeps the job from everyone else.
    let first = enqueue_one(&db).await;
    let claimed = held.claim(5).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        other.claim(5).await.unwrap().is_empty(),
        "a held job is nobody else's"
    );
    assert_eq!(job(&db, &first).await.status, "running");

    // Runner A takes the other job on a short lease and is gone.
    sql("UPDATE jobs SET status = 'done' WHERE id = $1")
        .bind(first.as_str())
        .execute(db.writer())
        .await
        .unwrap();
    let second = enqueue_one(&db).await;
    let mut lost = gone.claim(5).await.unwrap();
    assert_eq!(lost.len(), 1);
    let lost = lost.remove(0).job;
    assert_eq!(lost.attempt, 1);

    let running = spawn(other);
    let done = wait_for(&db, &second, "run again by B", |j| j.status == "done").await;
    running.stop().await;
    assert_eq!(done.attempts, 2, "the lost attempt counts");
    assert_eq!(
        handler.calls().iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![2]
    );

    // A comes back from the dead: its outcome no longer counts.
    gone.settle(&lost, Outcome::Failed("late".into()))
        .await
        .unwrap();
    let after = job(&db, &second).await;
    assert_eq!((after.status.as_str(), after.attempts), ("done", 2));
    assert_eq!(after.last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_still_running_when_the_runner_stops_is_handed_back_unrun() {
    let db = memory_db().await;
    let started = Arc::new(Notify::new());
    let runner = JobRunner::new(
        db.clone(),
        Cache::local(1 << 20),
        vec![Arc::new(Hanging {
            started: started.clone(),
        })],
        settings(
            Duration::from_millis(50),
            Duration::from_secs(3600),
            Duration::from_millis(20),
        ),
    );
    let id = enqueue_one(&db).await;
    let begun = started.notified();
    let running = spawn(runner);
    tokio::time::timeout(Duration::from_secs(60), begun)
        .await
        .expect("the job starts");
    assert_eq!(job(&db, &id).await.attempts, 1);
    running.stop().await;
    let back = job(&db, &id).await;
    assert_eq!(back.status, "queued", "{back:?}");
    assert_eq!(
        back.attempts, 0,
        "an attempt cut short by a stop is not counted"
    );
    assert!(
        back.run_at <= now_micros(),
        "due at once, for another runner"
    );
}

#[tokio::test]
async fn jobs_list_newest_first_filtered_by_status_and_type_in_pages() {
    let db = memory_db().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(enqueue_one(&db).await);
    }
    let mut tx = db.begin().await.unwrap();
    enqueue_many(
        &mut tx,
        &[NewJob::new(
            tenant(),
            "other.kind",
            "{}".into(),
            now_micros(),
        )],
        now_micros(),
    )
    .await
    .unwrap();
    commit(tx).await.unwrap();
    sql("UPDATE jobs SET status = 'dead' WHERE id = $1")
        .bind(ids[1].as_str())
        .execute(db.writer())
        .await
        .unwrap();

    let all = list(&db, &tenant(), JobFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].kind, "other.kind", "newest first");
    let scripted = list(
        &db,
        &tenant(),
        JobFilter {
            status: None,
            kind: Some(KIND),
        },
        10,
        None,
    )
    .await
    .unwrap();
    let listed: Vec<&str> = scripted.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(listed, vec![&ids[2], &ids[1], &ids[0]]);
    let dead = list(
        &db,
        &tenant(),
        JobFilter {
            status: Some("dead"),
            kind: Some(KIND),
        },
        10,
        None,
    )
    .await
    .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, ids[1]);
    let after = crate::platform::keyset::Cursor {
        created_at: scripted[0].created_at,
        id: scripted[0].id.clone(),
    };
    let page = list(
        &db,
        &tenant(),
        JobFilter {
            status: None,
            kind: Some(KIND),
        },
        1,
        Some(&after),
    )
    .await
    .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, ids[1]);
    assert!(
        list(&db, &TenantId::new("t2"), JobFilter::default(), 10, None)
            .await
            .unwrap()
            .is_empty(),
        "another tenant sees none"
    );
}
