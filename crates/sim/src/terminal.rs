//! One simulated terminal over real TCP: registers, authenticates, reports its driver's position
//! every interval, retransmits what was not acknowledged, reconnects after a drop and then
//! uploads what it could not send as a 0x0704 batch, answers downlink commands.

use crate::drive::Driver;
use jt808::framing::{FrameSplitter, Split};
use jt808::location::{DeciKmh, Heading, MicroDegrees};
use jt808::message::{AuthExtension, Authenticate, GeneralResponse, LocationBatch, Register};
use jt808::{
    AdditionalItem, AlarmFlags, Decoder, Encoder, Header, Location, LocationFix, Message, Phone, StatusFlags, UtcTime,
};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Counters over a fleet.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub refused: AtomicU64,
    pub connects: AtomicU64,
    pub batches: AtomicU64,
    /// When set, every acknowledged report as (phone, device time in seconds): what a crash test
    /// checks against the store afterwards.
    pub ack_log: Option<std::sync::Mutex<Vec<(String, i64)>>>,
}

impl Stats {
    /// Counters that also log every acknowledged report.
    pub fn with_ack_log() -> Self {
        Self { ack_log: Some(std::sync::Mutex::new(Vec::new())), ..Self::default() }
    }
}

/// A simulated terminal.
pub struct SimTerminal {
    pub phone: String,
    /// 2019 headers (`BCD[10]`) instead of 2013 (`BCD[6]`).
    pub v2019: bool,
    pub driver: Driver,
    pub interval: Duration,
    /// Plate for registration (empty: the platform uses its binding).
    pub plate: String,
}

#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(#[from] jt808::Error),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("no reply in time")]
    Timeout,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A position report from the driver's state at `t`.
pub fn report(d: &Driver, t: i64) -> Location {
    let (lat, lon) = d.position();
    let mut status = StatusFlags::POSITIONED;
    if d.speed_kmh > 0.0 || d.behaviour.no_rest {
        status |= StatusFlags::ACC_ON;
    }
    let mut l = Location::new(LocationFix {
        alarm: AlarmFlags::empty(),
        status,
        latitude: MicroDegrees((lat * 1e6).round() as i32),
        longitude: MicroDegrees((lon * 1e6).round() as i32),
        altitude_m: 5,
        speed: DeciKmh((d.speed_kmh * 10.0).round() as u16),
        heading: Heading(d.heading),
        time: Some(UtcTime(t)),
    });
    let _ = l.push_item(&AdditionalItem::Mileage((d.odometer_km * 10.0) as u32));
    l
}

fn t_phone(link: &Link) -> String {
    link.phone.to_string().trim_start_matches('0').to_string()
}

struct Link {
    sock: TcpStream,
    split: FrameSplitter,
    dec: Decoder,
    enc: Encoder,
    phone: Phone,
    serial: u16,
    buf: Vec<u8>,
}

impl Link {
    async fn send(&mut self, m: &Message) -> Result<u16, SimError> {
        self.serial = self.serial.wrapping_add(1);
        let h = Header::new(0, self.phone, self.serial);
        let mut out = Vec::with_capacity(64);
        self.enc.encode(&h, m, &mut out)?;
        self.sock.write_all(&out).await?;
        Ok(self.serial)
    }

    /// The next message from the platform.
    async fn recv(&mut self, wait: Duration) -> Result<(Header, Message), SimError> {
        loop {
            if let Some(split) = self.split.next_frame() {
                if let Split::Frame(f) = split {
                    let p = self.dec.packet(f)?;
                    return Ok((p.header, p.message));
                }
                continue;
            }
            let n =
                tokio::time::timeout(wait, self.sock.read(&mut self.buf)).await.map_err(|_| SimError::Timeout)??;
            if n == 0 {
                return Err(SimError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.split.extend(&self.buf[..n]);
        }
    }
}

/// Runs until `shutdown`, reconnecting as needed.
pub async fn run(addr: SocketAddr, mut t: SimTerminal, stats: Arc<Stats>, shutdown: CancellationToken) {
    let mut auth_code: Option<String> = None;
    // Reports not yet acknowledged, oldest first (bounded: a terminal keeps a day or so).
    let mut pending: VecDeque<(i64, Location)> = VecDeque::new();
    let mut backoff = Duration::from_secs(1);
    let mut last_step = now_secs();
    while !shutdown.is_cancelled() {
        let r = session(addr, &mut t, &mut auth_code, &mut pending, &mut last_step, &stats, &shutdown).await;
        if shutdown.is_cancelled() {
            break;
        }
        if let Err(e) = r {
            tracing::debug!(phone = %t.phone, error = %e, "simulated terminal disconnected");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn session(
    addr: SocketAddr,
    t: &mut SimTerminal,
    auth_code: &mut Option<String>,
    pending: &mut VecDeque<(i64, Location)>,
    last_step: &mut i64,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<(), SimError> {
    let sock = TcpStream::connect(addr).await?;
    let _ = sock.set_nodelay(true);
    stats.connects.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::from_digits(&t.phone, if t.v2019 { 10 } else { 6 })?;
    let mut link = Link {
        sock,
        split: FrameSplitter::new(8192),
        dec: Decoder::default(),
        enc: Encoder::default(),
        phone,
        serial: 0,
        buf: vec![0; 4096],
    };
    let wait = Duration::from_secs(10);
    // Register once, authenticate on every connection; a refused code means register again.
    for _attempt in 0..2 {
        if auth_code.is_none() {
            let reg = Register {
                province: 12,
                city: 114,
                maker: "70111".into(),
                model: "WQ-SIM".into(),
                terminal_id: t.phone.chars().rev().take(7).collect(),
                plate_color: 2,
                plate: t.plate.clone(),
            };
            link.send(&Message::Register(reg)).await?;
            loop {
                match link.recv(wait).await? {
                    (_, Message::RegisterResponse(r)) if r.result == 0 => {
                        *auth_code = Some(r.auth_code);
                        break;
                    }
                    (_, Message::RegisterResponse(_)) => return Err(SimError::Refused("registration")),
                    _ => {}
                }
            }
        }
        let code = auth_code.clone().unwrap_or_default();
        let s = link
            .send(&Message::Authenticate(Authenticate {
                auth_code: code,
                v2019: t
                    .v2019
                    .then(|| AuthExtension { imei: format!("86{:0>13}", t.phone), software_version: "sim-1".into() }),
            }))
            .await?;
        let ok = loop {
            match link.recv(wait).await? {
                (_, Message::PlatformResponse(r)) if r.reply_serial == s => break r.result == 0,
                _ => {}
            }
        };
        if ok {
            break;
        }
        *auth_code = None;
    }
    if auth_code.is_none() {
        return Err(SimError::Refused("authentication"));
    }
    // What piled up while disconnected goes up as one blind-area batch (0x0704, kind 1).
    let mut in_flight: Vec<(u16, Vec<i64>)> = vec![];
    if !pending.is_empty() {
        let locs: Vec<Location> = pending.iter().take(200).map(|(_, l)| l.clone()).collect();
        let times: Vec<i64> = pending.iter().take(200).map(|(t, _)| *t).collect();
        let s = link.send(&Message::LocationBatch(LocationBatch { kind: 1, locations: locs })).await?;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        in_flight.push((s, times));
    }
    let mut last_ack = std::time::Instant::now();
    let mut tick = tokio::time::interval(t.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = link.send(&Message::Logout).await;
                return Ok(());
            }
            _ = tick.tick() => {
                let now = now_secs();
                let dt = (now - *last_step).clamp(0, 3600) as f64;
                *last_step = now;
                let jitter = rand::random::<f64>() * 2.0 - 1.0;
                t.driver.step(dt.max(1.0), jitter);
                let l = report(&t.driver, now);
                pending.push_back((now, l.clone()));
                while pending.len() > 10_000 {
                    pending.pop_front();
                }
                let s = link.send(&Message::Location(l)).await?;
                stats.sent.fetch_add(1, Ordering::Relaxed);
                in_flight.push((s, vec![now]));
                // Nothing acknowledged for 30 s: the link is dead, whatever TCP thinks. (A busy
                // platform is slow, not dead: dropping sooner only adds a reconnection storm.)
                if !in_flight.is_empty() && last_ack.elapsed() > Duration::from_secs(30) {
                    return Err(SimError::Timeout);
                }
            }
            r = link.recv(Duration::from_secs(3600)) => {
                let (h, m) = r?;
                match m {
                    Message::PlatformResponse(r) => {
                        if let Some(i) = in_flight.iter().position(|(s, _)| *s == r.reply_serial) {
                            last_ack = std::time::Instant::now();
                            let (_, times) = in_flight.remove(i);
                            if r.result == 0 {
                                stats.acked.fetch_add(times.len() as u64, Ordering::Relaxed);
                                if let Some(log) = &stats.ack_log {
                                    if let Ok(mut l) = log.lock() {
                                        l.extend(times.iter().map(|t| (t_phone(&link), *t)));
                                    }
                                }
                                let done: std::collections::HashSet<i64> = times.iter().copied().collect();
                                pending.retain(|(t, _)| !done.contains(t));
                            } else {
                                stats.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    // Any command from the platform: acknowledge it (0x0001).
                    other if h.msg_id >= 0x8000 => {
                        let _ = other;
                        let reply = Message::TerminalResponse(GeneralResponse { reply_serial: h.serial, reply_id: h.msg_id, result: 0 });
                        link.send(&reply).await?;
                    }
                    _ => {}
                }
            }
        }
    }
}
