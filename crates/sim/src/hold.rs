//! Holding connections: one authenticated connection per terminal that then only sends
//! heartbeats (0x0002) and answers commands, to measure how many connections a gateway holds and
//! its memory per connection (`wuqing sim hold`, `bench/connections.sh`).
//!
//! Connections open at a bounded rate with a bounded number of handshakes in flight, so that the
//! registrations (a store write each) queue here rather than time out at the gateway. Each
//! connection keeps no driver and reads with a small buffer: a few kilobytes per terminal.

use crate::terminal::{Link, SimError};
use jt808::Message;
use jt808::message::GeneralResponse;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How to hold connections.
#[derive(Debug, Clone)]
pub struct HoldConfig {
    pub gateway: SocketAddr,
    /// Local address to connect from (ports are ephemeral), e.g. 127.0.0.2 to spread many
    /// clients over the loopback range.
    pub source_ip: Option<IpAddr>,
    /// Seconds between heartbeats of one terminal (the gateway drops a connection silent for 180 s).
    pub heartbeat: Duration,
    /// New connections per second at most.
    pub connects_per_sec: u32,
    /// Registrations and authentications in flight at most.
    pub handshakes: usize,
}

/// Counters over the held connections.
#[derive(Debug, Default)]
pub struct HoldStats {
    /// Connections authenticated and open now.
    pub established: AtomicU64,
    /// Authenticated connections made, reconnections included.
    pub connects: AtomicU64,
    /// Connections that failed before or during authentication.
    pub failures: AtomicU64,
    /// Connections that dropped after authenticating.
    pub drops: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Commands from the platform answered.
    pub commands: AtomicU64,
}

/// Holds one connection per phone until `shutdown`, reconnecting as needed; returns when all
/// have logged out. Odd-numbered terminals speak the 2019 edition, as in `sim run`.
pub async fn hold_all(cfg: HoldConfig, phones: Vec<String>, stats: Arc<HoldStats>, shutdown: CancellationToken) {
    let gate = Arc::new(Semaphore::new(cfg.handshakes.max(1)));
    let cfg = Arc::new(cfg);
    let rate = f64::from(cfg.connects_per_sec.max(1));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, phone) in phones.into_iter().enumerate() {
        let at = started + Duration::from_secs_f64(i as f64 / rate);
        let (cfg, gate, stats, stop) = (cfg.clone(), gate.clone(), stats.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
            hold(&cfg, &gate, phone, i % 2 == 1, &stats, &stop).await
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Counts an established connection while it lives.
struct Established<'a>(&'a HoldStats);

impl Drop for Established<'_> {
    fn drop(&mut self) {
        self.0.established.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn hold(
    cfg: &HoldConfig,
    gate: &Semaphore,
    phone: String,
    v2019: bool,
    stats: &HoldStats,
    shutdown: &CancellationToken,
) {
    let mut auth_code: Option<String> = None;
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = open(cfg, gate, &phone, v2019, &mut auth_code) => r,
        };
        match opened {
            Ok(mut link) => {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                stats.established.fetch_add(1, Ordering::Relaxed);
                let guard = Established(stats);
                backoff = Duration::from_secs(1);
                let r = keep(&mut link, cfg.heartbeat, stats, shutdown).await;
                drop(guard);
                if let Err(e) = r {
                    stats.drops.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%phone, error = %e, "held connection dropped");
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%phone, error = %e, "connection not established");
            }
        }
        // Reconnections spread out, so that a restarted gateway is not met by all at once.
        let wait = backoff.mul_f64(1.0 + rand::random::<f64>());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// Connects and authenticates, with at most `cfg.handshakes` doing so at once.
async fn open(
    cfg: &HoldConfig,
    gate: &Semaphore,
    phone: &str,
    v2019: bool,
    auth_code: &mut Option<String>,
) -> Result<Link, SimError> {
    let _permit = gate.acquire().await.map_err(|_| SimError::Refused("shutting down"))?;
    let mut link = Link::open(cfg.gateway, cfg.source_ip, phone, v2019, 512).await?;
    link.handshake(phone, v2019, "", auth_code).await?;
    Ok(link)
}

/// Heartbeats and answers until `shutdown` (then logs out) or the link fails.
async fn keep(
    link: &mut Link,
    heartbeat: Duration,
    stats: &HoldStats,
    shutdown: &CancellationToken,
) -> Result<(), SimError> {
    let heartbeat = heartbeat.max(Duration::from_secs(1));
    // The first heartbeat somewhere in the first period, so that terminals do not beat in step.
    let mut next = Instant::now() + heartbeat.mul_f64(rand::random::<f64>());
    let mut answered = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = link.send(&Message::Logout).await;
                return Ok(());
            }
            _ = tokio::time::sleep_until(next) => {
                // Three heartbeats unanswered: the link is dead, whatever TCP thinks.
                if answered.elapsed() > heartbeat * 3 + Duration::from_secs(10) {
                    return Err(SimError::Timeout);
                }
                link.send(&Message::Heartbeat).await?;
                stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                next += heartbeat;
            }
            r = link.recv(Duration::from_secs(3600)) => {
                let (h, m) = r?;
                if let Message::PlatformResponse(_) = m {
                    answered = Instant::now();
                } else if h.msg_id >= 0x8000 {
                    // Any command: acknowledged (0x0001), as `sim run` does.
                    let reply = GeneralResponse { reply_serial: h.serial, reply_id: h.msg_id, result: 0 };
                    link.send(&Message::TerminalResponse(reply)).await?;
                    stats.commands.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
