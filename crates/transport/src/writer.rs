//! The group-commit writer of positions, shared by every connection of the gateway: one
//! transaction carries every report that arrived while the previous one was being written, and
//! each caller hears back only once its positions are committed.
//!
//! When storage fails or stalls (a locked database, a paused or restarting server, a full disk)
//! the writer keeps going: a failed group is answered with the error (the gateway then answers
//! nothing, and the terminal sends the reports again), the next attempt waits a short back-off so
//! that a store that fails at once is not hammered, and the first commit that succeeds ends the
//! episode. Each episode is logged twice, when it starts and when it ends, however many reports
//! it refused. Memory stays bounded while storage is away: the queue holds at most
//! [`QUEUE`] jobs, each connection has at most one job in it (the reports of one read of its
//! socket, at most 8 KiB of frames), and a connection gives up waiting
//! after its `storage_wait` (see `GatewayConfig`), which drops its job if it was still queued.

use crate::ingest;
use crate::live::LiveMap;
use crate::positions::Position;
use kernel::http::AppState;
use kernel::store::{StoreError, StoreResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Job = (Vec<Position>, oneshot::Sender<StoreResult<u64>>);

/// Jobs queued at most; a connection that finds the queue full waits (back-pressure).
pub const QUEUE: usize = 4096;
/// Positions in one group commit at most (the first job is taken whatever its size).
const MAX_GROUP: usize = 8192;
/// A commit running this long starts a stall episode (logged once), though it may still succeed.
const SLOW_COMMIT: Duration = Duration::from_secs(5);
/// Back-off between failed commits: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// A spell of trouble with the store (failing or stalled), logged when it starts and when it
/// ends rather than once per refused report. Cheap to clone.
#[derive(Clone)]
pub struct Episode {
    /// What is in trouble, for the two log lines (`position storage`, `terminal registry`).
    what: &'static str,
    /// What it means meanwhile.
    meaning: &'static str,
    inner: Arc<EpisodeInner>,
}

#[derive(Default)]
struct EpisodeInner {
    count: AtomicU64,
    /// The ongoing episode: when it began and how many failures it saw.
    on: Mutex<Option<(Instant, u64)>>,
}

impl Episode {
    pub fn new(what: &'static str, meaning: &'static str) -> Self {
        Self { what, meaning, inner: Arc::default() }
    }

    /// Episodes so far, the ongoing one included.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Whether an episode is on.
    pub fn on(&self) -> bool {
        self.inner.on.lock().map(|e| e.is_some()).unwrap_or(false)
    }

    /// A failure: starts an episode unless one is on, and logs only then.
    pub fn failure(&self, error: &dyn std::fmt::Display) {
        self.trouble(Some(error));
    }

    /// A stall (an operation that takes too long): as a failure.
    pub fn stall(&self) {
        self.trouble(None);
    }

    fn trouble(&self, error: Option<&dyn std::fmt::Display>) {
        let Ok(mut e) = self.inner.on.lock() else { return };
        match e.as_mut() {
            Some((_, failures)) => *failures += u64::from(error.is_some()),
            None => {
                *e = Some((Instant::now(), u64::from(error.is_some())));
                self.inner.count.fetch_add(1, Ordering::Relaxed);
                let (what, meaning) = (self.what, self.meaning);
                match error {
                    Some(err) => tracing::warn!(error = %err, "{what} failing: {meaning}"),
                    None => tracing::warn!("{what} stalled: {meaning}"),
                }
            }
        }
    }

    /// A success: ends the episode, if one is on, with one log line.
    pub fn ok(&self) {
        let Ok(mut e) = self.inner.on.lock() else { return };
        if let Some((since, failures)) = e.take() {
            tracing::warn!(after_s = since.elapsed().as_secs_f64(), failures, "{} recovered", self.what);
        }
    }
}

/// The state of position storage as the writer sees it, shared with whoever watches it (the
/// module, tests, metrics). Cheap to clone.
#[derive(Clone)]
pub struct StorageHealth {
    commits: Arc<AtomicU64>,
    failed_commits: Arc<AtomicU64>,
    episode: Episode,
}

impl Default for StorageHealth {
    fn default() -> Self {
        Self {
            commits: Arc::default(),
            failed_commits: Arc::default(),
            episode: Episode::new("position storage", "positions are not acknowledged until it recovers"),
        }
    }
}

impl StorageHealth {
    /// Groups committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Groups whose commit failed (each answered with the error, nothing acknowledged).
    pub fn failed_commits(&self) -> u64 {
        self.failed_commits.load(Ordering::Relaxed)
    }

    /// Episodes of failing or stalled storage so far, the ongoing one included.
    pub fn episodes(&self) -> u64 {
        self.episode.count()
    }

    /// Whether storage is failing or stalled now.
    pub fn degraded(&self) -> bool {
        self.episode.on()
    }

    fn stalled(&self) {
        metrics::gauge!("wuqing_jt808_storage_degraded").set(1.0);
        self.episode.stall();
    }

    fn failed(&self, error: &StoreError) {
        self.failed_commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("wuqing_jt808_commit_failures_total").increment(1);
        metrics::gauge!("wuqing_jt808_storage_degraded").set(1.0);
        self.episode.failure(error);
    }

    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        if self.episode.on() {
            metrics::gauge!("wuqing_jt808_storage_degraded").set(0.0);
            self.episode.ok();
        }
    }
}

/// The group-commit writer of positions, shared by every connection.
#[derive(Clone)]
pub struct PositionWriter {
    tx: mpsc::Sender<Job>,
}

impl PositionWriter {
    /// Starts the writer; it ends when every handle is dropped.
    pub fn start(state: AppState, live: LiveMap, health: StorageHealth) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(512);
            let mut backoff = BACKOFF.0;
            while rx.recv_many(&mut jobs, 64).await > 0 {
                // Then whatever else is queued, up to a group's bound in positions (a job holds
                // one connection's reports of one read: one position, or a thousand).
                let mut n: usize = jobs.iter().map(|(p, _)| p.len()).sum();
                while n < MAX_GROUP && jobs.len() < QUEUE {
                    let Ok(job) = rx.try_recv() else { break };
                    n += job.0.len();
                    jobs.push(job);
                }
                // A caller that gave up waiting (storage was away) answers nothing either way: its
                // terminal sends the reports again, so they need not be written now.
                jobs.retain(|(_, reply)| !reply.is_closed());
                if jobs.is_empty() {
                    continue;
                }
                let all: Vec<&Position> = jobs.iter().flat_map(|(p, _)| p.iter()).collect();
                let result = {
                    let commit = ingest::ingest(&state, &live, &all);
                    tokio::pin!(commit);
                    tokio::select! {
                        r = &mut commit => r,
                        _ = tokio::time::sleep(SLOW_COMMIT) => {
                            health.stalled();
                            commit.await
                        }
                    }
                };
                metrics::histogram!("wuqing_jt808_commit_positions").record(all.len() as f64);
                drop(all);
                match &result {
                    Ok(_) => {
                        health.committed();
                        backoff = BACKOFF.0;
                    }
                    Err(e) => health.failed(e),
                }
                for (_, reply) in jobs.drain(..) {
                    let r = match &result {
                        Ok(n) => Ok(*n),
                        Err(e) => Err(StoreError::Unavailable(e.to_string())),
                    };
                    let _ = reply.send(r);
                }
                if result.is_err() {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        });
        Self { tx }
    }

    /// Stores positions; returns once they are committed.
    pub async fn write(&self, positions: Vec<Position>) -> StoreResult<u64> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((positions, reply))
            .await
            .map_err(|_| StoreError::Unavailable("position writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("position writer stopped".into()))?
    }
}
