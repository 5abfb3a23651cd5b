//! Misbehaving connections, for the storm benchmark (`wuqing sim abuse`, `bench/storm.sh`): the
//! gateway must close each of them alone and stay fair to the well-behaved terminals.
//!
//! - `silent`: TCP connect, then nothing (a half-open connection; closed by the idle time-out);
//! - `partial`: the start of a frame, then nothing (the same, with bytes held in the splitter);
//! - `huge`: 1 MiB without a delimiter, or one 1 MiB frame between delimiters (alternately);
//! - `flood`: an authenticated terminal that sends reports back to back, without waiting for
//!   their acknowledgements (closed by the frame-rate limit), or at `rate` frames per second.

use crate::terminal::{Link, SimError};
use jt808::location::{AlarmFlags, DeciKmh, Heading, Location, LocationFix, MicroDegrees, StatusFlags};
use jt808::time::UtcTime;
use jt808::{Encoder, Header, Message};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// What the connections do wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abuse {
    Silent,
    Partial,
    Huge,
    Flood,
}

impl std::str::FromStr for Abuse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "silent" => Ok(Abuse::Silent),
            "partial" => Ok(Abuse::Partial),
            "huge" => Ok(Abuse::Huge),
            "flood" => Ok(Abuse::Flood),
            _ => Err(format!("{s:?}: one of silent, partial, huge, flood")),
        }
    }
}

/// Counters over the misbehaving connections.
#[derive(Debug, Default)]
pub struct AbuseStats {
    /// Connections opened (and, for `flood`, authenticated).
    pub opened: AtomicU64,
    /// Connections that could not be opened or authenticated.
    pub failed: AtomicU64,
    /// Connections the gateway closed (end of stream or reset).
    pub closed: AtomicU64,
    /// Frames (`flood`) or bytes (`huge`, `partial`) sent.
    pub sent: AtomicU64,
}

/// Opens one misbehaving connection per phone (phones matter only for `flood`, which must
/// authenticate; the others use the count) and keeps each until the gateway closes it or
/// `shutdown`.
pub async fn abuse_all(
    gateway: SocketAddr,
    source: Option<IpAddr>,
    kind: Abuse,
    phones: Vec<String>,
    rate: u32,
    stats: Arc<AbuseStats>,
    shutdown: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, phone) in phones.into_iter().enumerate() {
        let (stats, stop) = (stats.clone(), shutdown.clone());
        tasks.spawn(async move {
            let r = tokio::select! {
                _ = stop.cancelled() => return,
                r = one(gateway, source, kind, &phone, i, rate, &stats) => r,
            };
            match r {
                Ok(true) => {
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%phone, error = %e, "abusive connection not opened");
                }
            }
        });
        // Open them at a bounded pace: this is about what they do once open, not a connect storm.
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn connect(gateway: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else { return TcpStream::connect(gateway).await };
    let sock = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(gateway).await
}

/// Runs one connection; `Ok(true)` when the gateway closed it.
async fn one(
    gateway: SocketAddr,
    source: Option<IpAddr>,
    kind: Abuse,
    phone: &str,
    i: usize,
    rate: u32,
    stats: &AbuseStats,
) -> Result<bool, SimError> {
    let mut sock = match kind {
        Abuse::Flood => {
            let mut link = Link::open(gateway, source, phone, false, 512).await?;
            let mut code = None;
            link.handshake(phone, false, "", &mut code).await?;
            stats.opened.fetch_add(1, Ordering::Relaxed);
            let (sock, phone, serial) = link.into_parts();
            return flood(sock, phone, serial, rate, stats).await;
        }
        _ => connect(gateway, source).await?,
    };
    stats.opened.fetch_add(1, Ordering::Relaxed);
    let bytes: Vec<u8> = match kind {
        Abuse::Silent | Abuse::Flood => vec![],
        // A frame's start: the delimiter and the first bytes of a header, never finished.
        Abuse::Partial => vec![0x7e, 0x02, 0x00, 0x00, 0x1c, 0x01, 0x38],
        Abuse::Huge if i % 2 == 0 => vec![0x55; 1 << 20],
        Abuse::Huge => {
            let mut v = vec![0x7e];
            v.extend(std::iter::repeat_n(0x55, 1 << 20));
            v.push(0x7e);
            v
        }
    };
    if !bytes.is_empty() {
        match sock.write_all(&bytes).await {
            Ok(()) => {
                stats.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            // Closed while we wrote: that is the gateway refusing it.
            Err(_) => return Ok(true),
        }
    }
    let mut buf = [0u8; 512];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(true),
            Ok(_) => {}
        }
    }
}

/// Reports back to back (or at `rate` a second), acknowledgements read and ignored; returns
/// `Ok(true)` when the gateway closes the connection.
async fn flood(
    sock: TcpStream,
    phone: jt808::Phone,
    serial: u16,
    rate: u32,
    stats: &AbuseStats,
) -> Result<bool, SimError> {
    let (mut rd, mut wr) = sock.into_split();
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let send = async {
        let mut enc = Encoder::default();
        let mut serial = serial;
        let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let gap = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
        let mut out = Vec::with_capacity(64);
        for k in 0i64.. {
            serial = serial.wrapping_add(1);
            let loc = Location::new(LocationFix {
                alarm: AlarmFlags::empty(),
                status: StatusFlags::POSITIONED | StatusFlags::ACC_ON,
                latitude: MicroDegrees(39_380_000 + (k % 1000) as i32),
                longitude: MicroDegrees(117_040_000),
                altitude_m: 5,
                speed: DeciKmh(400),
                heading: Heading(90),
                // A new device second each report: distinct rows, not deduplicated retransmissions.
                time: Some(UtcTime(t0 - 86_400 + k)),
            });
            out.clear();
            if enc.encode(&Header::new(0, phone, serial), &Message::Location(loc), &mut out).is_err() {
                return;
            }
            if wr.write_all(&out).await.is_err() {
                return;
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
            if let Some(g) = gap {
                tokio::time::sleep(g).await;
            }
        }
    };
    // Whichever ends first: the gateway closed the connection.
    tokio::select! {
        _ = drain => {}
        _ = send => {}
    }
    Ok(true)
}
