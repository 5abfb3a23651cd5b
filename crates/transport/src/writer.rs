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

/// The group-commit writer of positions, shared by every connection: to the store, or (scaled
/// out) to the JetStream stream the processors consume.
#[derive(Clone)]
pub struct PositionWriter {
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    Store(mpsc::Sender<Job>),
    Stream(Arc<kernel::cluster::Cluster>, StorageHealth),
}

/// The kind of the JetStream stream of positions (`bus.url` set): stream `<NAMESPACE>_POSITIONS`,
/// subjects `<namespace>.js.positions.<partition>.<vehicle>` (`kernel::cluster`).
pub const STREAM: &str = "positions";

impl PositionWriter {
    /// Starts the writer; it ends when every handle is dropped. Scaled out (the state has a
    /// cluster), positions go to the stream and "written" means stored by JetStream.
    pub fn start(state: AppState, live: LiveMap, health: StorageHealth) -> Self {
        if let Some(cluster) = state.cluster.clone() {
            return Self { sink: Sink::Stream(Arc::new(cluster), health) };
        }
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
        Self { sink: Sink::Store(tx) }
    }

    /// Stores positions; returns once they are committed (or, scaled out, once JetStream has
    /// stored them: the processor of their partition commits them).
    pub async fn write(&self, positions: Vec<Position>) -> StoreResult<u64> {
        let tx = match &self.sink {
            Sink::Store(tx) => tx,
            Sink::Stream(cluster, health) => {
                let r = publish(cluster, &positions).await;
                match &r {
                    Ok(_) => health.committed(),
                    Err(e) => health.failed(e),
                }
                return r;
            }
        };
        let (reply, rx) = oneshot::channel();
        tx.send((positions, reply)).await.map_err(|_| StoreError::Unavailable("position writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("position writer stopped".into()))?
    }
}

/// A position as it travels on the stream: the fields the store keeps, the vehicle and the
/// additional items (hex) that `Position`'s own JSON leaves out.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct OnStream {
    pub vehicle_id: String,
    pub position: Position,
    #[serde(default)]
    pub extras: String,
}

impl OnStream {
    pub fn of(p: &Position) -> Self {
        let extras = p.extras.iter().map(|b| format!("{b:02x}")).collect();
        Self { vehicle_id: p.vehicle_id.clone(), position: p.clone(), extras }
    }

    /// The position, or why the message is not one.
    pub fn into_position(self) -> Result<Position, String> {
        let mut p = self.position;
        if self.extras.len() % 2 != 0 || self.vehicle_id.is_empty() {
            return Err("no vehicle, or additional items of odd length".into());
        }
        p.extras = (0..self.extras.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&self.extras[i..i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        p.vehicle_id = self.vehicle_id;
        Ok(p)
    }
}

/// Publishes positions to their partitions' subjects, each with its message id (vehicle and
/// device time: JetStream drops a copy within its duplicate window), and waits for every
/// acknowledgement of the stream.
async fn publish(cluster: &kernel::cluster::Cluster, positions: &[Position]) -> StoreResult<u64> {
    let mut items = Vec::with_capacity(positions.len());
    for p in positions {
        let body = serde_json::to_vec(&OnStream::of(p)).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        items.push((p.vehicle_id.clone(), format!("{}:{}", p.vehicle_id, p.device_ms), body));
    }
    let new =
        cluster.publish_all(STREAM, items).await.map_err(|e| StoreError::Unavailable(format!("jetstream: {e}")))?;
    metrics::histogram!("wuqing_jt808_commit_positions").record(positions.len() as f64);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_crosses_the_stream_whole() {
        let p = Position {
            vehicle_id: "0193a0f2-7c1e-7aaa-8bbb-0123456789ab".into(),
            device_ms: 1_764_000_000_000,
            received_ms: 1_764_000_000_500,
            lat: 39.384_512,
            lon: 117.057_301,
            altitude_m: 12,
            speed_kmh: 61.3,
            heading: 271,
            alarm: 0x0000_0002,
            status: 0x0000_0003,
            mileage_km: Some(12_345.6),
            extras: vec![0x01, 0x04, 0x00, 0x00, 0x30, 0x39, 0xe1, 0x02, 0xff, 0x00],
        };
        let wire = serde_json::to_vec(&OnStream::of(&p)).expect("encode");
        let back = serde_json::from_slice::<OnStream>(&wire).expect("decode").into_position().expect("position");
        assert_eq!(back, p);
        // A message that names no vehicle, or whose items are not hex, is refused, not guessed.
        let bad: OnStream = serde_json::from_str(r#"{"vehicle_id":"","position":{"device_ms":1,"received_ms":1,"lat":0,"lon":0,"altitude_m":0,"speed_kmh":0,"heading":0,"alarm":0,"status":0,"mileage_km":null}}"#).expect("shape");
        assert!(bad.into_position().is_err());
        let odd = OnStream { extras: "0g".into(), ..OnStream::of(&p) };
        assert!(odd.into_position().is_err());
    }
}
