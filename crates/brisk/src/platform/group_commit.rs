//! Group commit on PostgreSQL: single statements that are each a whole
//! transaction (an order's writes, see the `orders` module) and arrive
//! while others run share one transaction and one commit.
//!
//! Why: every order of a tenant locks the tenant's order counter until its
//! commit, so a tenant's orders run one after another, each paying its own
//! commit and the wake-up of the next waiter. Run back to back on one
//! connection, a batch pays one commit, and no statement of the batch
//! waits for a lock another holds.
//!
//! Invariants: a statement's keys (its tenant) pick its shard, and a shard
//! runs one batch at a time, in arrival order, so the statements of one
//! tenant never wait on each other's locks across batches. Each statement
//! succeeds or fails on its own: statements refuse by answering (and
//! writing nothing), not by failing; a statement that fails all the same
//! gets its error, and the batch runs again without it. An answer is sent
//! only once the commit that makes it durable returned; a failed commit
//! fails the whole batch, none of which is then written. A lone statement
//! runs as its own transaction, with no `BEGIN` around it.

use std::hash::{Hash, Hasher};

use sqlx::AnyPool;
use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};

use super::db::{Sql, note_commit};

/// Statements per batch at most: a batch holds its rows' locks until its
/// commit, and every statement of it waits for that commit.
const MOST_PER_BATCH: usize = 32;

/// Statements a shard holds while it is busy, beyond which callers wait.
const QUEUE: usize = 1024;

struct Job {
    statement: Sql,
    answer: oneshot::Sender<Result<AnyRow, sqlx::Error>>,
}

/// Runs statements in shared transactions: one batch runner per shard.
pub struct GroupCommit {
    shards: Vec<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts `shards` batch runners on `pool` (at least one). Each holds a
    /// connection only while it runs a batch.
    pub fn start(pool: &AnyPool, shards: usize) -> GroupCommit {
        let shards = (0..shards.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(run_batches(pool.clone(), receiver));
                sender
            })
            .collect();
        GroupCommit { shards }
    }

    /// Runs `statement` (one that returns one row) in the next batch of the
    /// shard of `key`, and answers with its row once it is committed.
    pub async fn fetch_one(&self, key: &str, statement: Sql) -> Result<AnyRow, sqlx::Error> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = (hasher.finish() % self.shards.len() as u64) as usize;
        let (answer, answered) = oneshot::channel();
        self.shards[shard]
            .send(Job { statement, answer })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Runs `statement` as a transaction of its own (no `BEGIN`: one statement
/// commits on its own), telling the waiters of `db::committed`.
pub async fn run_alone(pool: &AnyPool, statement: Sql) -> Result<AnyRow, sqlx::Error> {
    let row = statement.fetch_one(pool).await?;
    note_commit();
    Ok(row)
}

async fn run_batches(pool: AnyPool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_PER_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Their ratio is the mean batch: how many statements share a commit.
        metrics::counter!("brisk_group_commit_batches_total").increment(1);
        metrics::counter!("brisk_group_commit_statements_total").increment(batch.len() as u64);
        if batch.len() == 1 {
            let Some(job) = batch.pop() else { continue };
            let _ = job.answer.send(run_alone(&pool, job.statement).await);
            continue;
        }
        run_batch(&pool, batch).await;
    }
}

/// One transaction for the whole batch. The statements refuse without
/// failing (an order that is out of stock answers so and writes nothing),
/// so a failure is rare: the batch is rolled back, the failed statement
/// answered with its error, and the others run again without it. A
/// savepoint per statement would cost every statement a round trip.
async fn run_batch(pool: &AnyPool, mut batch: Vec<Job>) {
    loop {
        match run_once(pool, &batch).await {
            Ok(rows) => {
                for (job, row) in batch.into_iter().zip(rows) {
                    let _ = job.answer.send(Ok(row));
                }
                return;
            }
            Err(Failed::Statement(i, err)) => {
                let job = batch.remove(i);
                let _ = job.answer.send(Err(err));
                if batch.is_empty() {
                    return;
                }
            }
            Err(Failed::Transaction(err)) => {
                return fail_all(batch.into_iter().map(|j| j.answer), &err);
            }
        }
    }
}

enum Failed {
    /// The statement at this place in the batch failed; the batch was
    /// rolled back.
    Statement(usize, sqlx::Error),
    /// `BEGIN` or `COMMIT` failed: nothing of the batch was written.
    Transaction(sqlx::Error),
}

async fn run_once(pool: &AnyPool, batch: &[Job]) -> Result<Vec<AnyRow>, Failed> {
    let mut tx = pool.begin().await.map_err(Failed::Transaction)?;
    let mut rows = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        match job.statement.clone().fetch_one(&mut *tx).await {
            Ok(row) => rows.push(row),
            // Dropping the transaction rolls it back.
            Err(err) => return Err(Failed::Statement(i, err)),
        }
    }
    super::db::commit(tx).await.map_err(Failed::Transaction)?;
    Ok(rows)
}

/// Answers every statement of a batch that was not written with `err`.
fn fail_all(
    answers: impl Iterator<Item = oneshot::Sender<Result<AnyRow, sqlx::Error>>>,
    err: &sqlx::Error,
) {
    for answer in answers {
        let _ = answer.send(Err(same_error(err)));
    }
}

/// An error like `err`, for each of the statements it failed (sqlx's
/// errors are not `Clone`): the kinds the API tells apart (busy, gone)
/// stay what they were.
fn same_error(err: &sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(e) => sqlx::Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        other => sqlx::Error::Protocol(other.to_string()),
    }
}
