//! One simulated terminal over real TCP: registers, authenticates, reports its driver's position
//! every interval, retransmits what was not acknowledged, reconnects after a drop and then
//! uploads what it could not send as 0x0704 batches, answers downlink commands. A scenario's
//! offline window closes the connection; the fixes recorded meanwhile go up the same way.

use crate::drive::Driver;
use jt808::framing::{FrameSplitter, Split};
use jt808::location::{DeciKmh, Heading, MicroDegrees};
use jt808::message::{
    AuthExtension, Authenticate, DriverCard, DriverIdentity, GeneralResponse, LocationBatch, Parameter, Register,
};
use jt808::{
    AdditionalItem, AlarmFlags, Decoder, Encoder, Header, Location, LocationFix, Message, Phone, StatusFlags, UtcTime,
};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// Counters over a fleet.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub refused: AtomicU64,
    pub connects: AtomicU64,
    /// Sessions that completed registration and authentication (`connects` counts a connection
    /// before its handshake).
    pub authenticated: AtomicU64,
    pub batches: AtomicU64,
    /// When non-zero, every terminal's report interval in milliseconds instead of its own, read
    /// at each report: a fleet whose rate changes mid-run (the ingest ladder's steps).
    pub pace_ms: AtomicU64,
    /// When set, every acknowledged report as (phone, device time in seconds): what a crash test
    /// checks against the store afterwards.
    pub ack_log: Option<std::sync::Mutex<Vec<(String, i64)>>>,
    /// From sending a live report (0x0200) to its acknowledgement (0x8001).
    pub ack_latency: Latency,
}

/// A latency histogram that any task may add to: buckets of a quarter power of two of
/// microseconds (each about 19 % wide), from 1 µs to about 70 minutes.
#[derive(Debug)]
pub struct Latency {
    buckets: [AtomicU64; Latency::BUCKETS],
}

impl Default for Latency {
    fn default() -> Self {
        Self { buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl Latency {
    const BUCKETS: usize = 128;

    fn bucket(us: u64) -> usize {
        let us = us.max(1);
        let log2 = 63 - u64::from(us.leading_zeros());
        // The two bits below the leading one pick the quarter.
        let frac = if log2 >= 2 { (us >> (log2 - 2)) & 3 } else { (us << (2 - log2)) & 3 };
        ((log2 * 4 + frac) as usize).min(Self::BUCKETS - 1)
    }

    /// The upper bound of a bucket, in microseconds.
    fn upper_us(b: usize) -> f64 {
        let (log2, frac) = (b / 4, b % 4);
        2f64.powi(log2 as i32) * (1.0 + (frac as f64 + 1.0) / 4.0)
    }

    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call, and resets them (one interval of a report).
    pub fn take(&self) -> LatencyCounts {
        LatencyCounts(self.buckets.iter().map(|b| b.swap(0, Ordering::Relaxed)).collect())
    }
}

/// Counts taken from a [`Latency`]; add several to cover a longer span.
#[derive(Debug, Clone, Default)]
pub struct LatencyCounts(Vec<u64>);

impl LatencyCounts {
    pub fn add(&mut self, other: &LatencyCounts) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0..=1) as the upper bound of its bucket (at most 19 % above the true
    /// value); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_secs_f64(Latency::upper_us(b) / 1e6));
            }
        }
        None
    }
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
    /// The driver's IC card, inserted (0x0702) after each authentication.
    pub card: Option<DriverCard>,
}

/// Why a simulated terminal's exchange with the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(#[from] jt808::Error),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("no reply in time")]
    Timeout,
    #[error("offline (scenario)")]
    Offline,
}

/// Seconds since the Unix epoch, with fractions: drivers are stepped by the time that passed.
fn now_secs_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
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

/// One connection to the gateway.
pub(crate) struct Link {
    sock: TcpStream,
    split: FrameSplitter,
    dec: Decoder,
    enc: Encoder,
    phone: Phone,
    serial: u16,
    buf: Vec<u8>,
}

/// What a terminal keeps across connections: its authentication code and its parameters.
struct Kept {
    auth_code: Option<String>,
    params: Parameters,
}

/// The terminal's parameters (JT/T 808-2019 table 12): what 0x8103 set, what 0x8104 and 0x8106
/// read back (as 0x0104). Values are kept as the platform sent them.
struct Parameters(std::collections::BTreeMap<u32, Vec<u8>>);

impl Parameters {
    /// A heartbeat interval of 60 s (0x0001) and the report interval (0x0029), whole seconds.
    fn new(report_interval: Duration) -> Self {
        let report = u32::try_from(report_interval.as_secs()).unwrap_or(u32::MAX).max(1);
        Self([(0x0001, 60u32.to_be_bytes().to_vec()), (0x0029, report.to_be_bytes().to_vec())].into())
    }

    fn set(&mut self, ps: Vec<Parameter>) {
        self.0.extend(ps.into_iter().map(|p| (p.id, p.value)));
    }

    /// The given parameters the terminal has, or all of them for no IDs.
    fn get(&self, ids: &[u32]) -> Vec<Parameter> {
        let all = self.0.iter().map(|(id, v)| Parameter { id: *id, value: v.clone() });
        if ids.is_empty() { all.collect() } else { all.filter(|p| ids.contains(&p.id)).collect() }
    }
}

/// Connects to `addr`, from `source` (with an ephemeral port) when given.
async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else { return TcpStream::connect(addr).await };
    let sock = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.connect(addr).await
}

impl Link {
    /// Opens a connection for terminal `phone`, reading at most `read_buf` bytes at a time.
    pub(crate) async fn open(
        addr: SocketAddr,
        source: Option<IpAddr>,
        phone: &str,
        v2019: bool,
        read_buf: usize,
    ) -> Result<Link, SimError> {
        let phone = Phone::from_digits(phone, if v2019 { 10 } else { 6 })?;
        let sock = connect_from(addr, source).await?;
        let _ = sock.set_nodelay(true);
        Ok(Link {
            sock,
            split: FrameSplitter::new(8192),
            dec: Decoder::default(),
            enc: Encoder::default(),
            phone,
            serial: 0,
            buf: vec![0; read_buf.max(64)],
        })
    }

    /// Registers when there is no authentication code (or the platform refused it), then
    /// authenticates; `auth_code` is kept across connections, as a terminal keeps it.
    pub(crate) async fn handshake(
        &mut self,
        phone: &str,
        v2019: bool,
        plate: &str,
        auth_code: &mut Option<String>,
    ) -> Result<(), SimError> {
        let wait = Duration::from_secs(10);
        for _attempt in 0..2 {
            if auth_code.is_none() {
                let reg = Register {
                    province: 12,
                    city: 114,
                    maker: "70111".into(),
                    model: "WQ-SIM".into(),
                    terminal_id: phone.chars().rev().take(7).collect(),
                    plate_color: 2,
                    plate: plate.to_string(),
                };
                self.send(&Message::Register(reg)).await?;
                loop {
                    match self.recv(wait).await? {
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
            let s = self
                .send(&Message::Authenticate(Authenticate {
                    auth_code: code,
                    v2019: v2019
                        .then(|| AuthExtension { imei: format!("86{phone:0>13}"), software_version: "sim-1".into() }),
                }))
                .await?;
            let ok = loop {
                match self.recv(wait).await? {
                    (_, Message::PlatformResponse(r)) if r.reply_serial == s => break r.result == 0,
                    _ => {}
                }
            };
            if ok {
                return Ok(());
            }
            *auth_code = None;
        }
        Err(SimError::Refused("authentication"))
    }

    /// The socket (with whatever the platform sent that is not read yet dropped), the phone and
    /// the last serial: for connections that go on to misbehave (`abuse`).
    pub(crate) fn into_parts(self) -> (TcpStream, Phone, u16) {
        (self.sock, self.phone, self.serial)
    }

    pub(crate) async fn send(&mut self, m: &Message) -> Result<u16, SimError> {
        self.serial = self.serial.wrapping_add(1);
        let h = Header::new(0, self.phone, self.serial);
        let mut out = Vec::with_capacity(64);
        self.enc.encode(&h, m, &mut out)?;
        self.sock.write_all(&out).await?;
        Ok(self.serial)
    }

    /// The next message from the platform.
    pub(crate) async fn recv(&mut self, wait: Duration) -> Result<(Header, Message), SimError> {
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
pub async fn run(addr: SocketAddr, t: SimTerminal, stats: Arc<Stats>, shutdown: CancellationToken) {
    run_with_backlog(addr, t, stats, shutdown, 0).await
}

/// Most fixes a terminal keeps unacknowledged (a terminal's blind-area memory).
pub const MAX_PENDING: usize = 10_000;

/// As [`run`], but the terminal starts with `backlog_s` fixes (one a second, ending now, at most
/// [`MAX_PENDING`]) not yet uploaded, as after a long blind area: it uploads them as 0x0704
/// batches as soon as it is authenticated. The ingest benchmark's heaviest load.
/// A session at least this long resets the reconnection back-off.
const STABLE_SESSION: Duration = Duration::from_secs(60);

pub async fn run_with_backlog(
    addr: SocketAddr,
    t: SimTerminal,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    backlog_s: usize,
) {
    run_across(&[addr], 0, t, stats, shutdown, backlog_s).await
}

/// As [`run_with_backlog`], with several gateways: the terminal connects to `gateways[first]`
/// and, when a session fails (the gateway went away, stopped answering), to the next one, as a
/// field terminal falls back to its backup server (JT/T 808 parameter 0x0017).
pub async fn run_across(
    gateways: &[SocketAddr],
    first: usize,
    mut t: SimTerminal,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    backlog_s: usize,
) {
    let Some(mut addr) = gateways.get(first % gateways.len().max(1)).copied() else { return };
    let mut which = first;
    // Reports not yet acknowledged, oldest first (bounded: a terminal keeps a day or so).
    let mut pending: VecDeque<(i64, Location)> = VecDeque::new();
    let now = now_secs_f64().floor() as i64;
    for k in (1..=backlog_s.min(MAX_PENDING) as i64).rev() {
        t.driver.step(1.0, rand::random::<f64>() * 2.0 - 1.0);
        pending.push_back((now - k, report(&t.driver, now - k)));
    }
    let mut backoff = Duration::from_secs(1);
    let mut last_step = now_secs_f64();
    let mut kept = Kept { auth_code: None, params: Parameters::new(t.interval) };
    while !shutdown.is_cancelled() {
        if t.driver.offline() {
            stay_offline(&mut t, &mut pending, &mut last_step, &shutdown).await;
            continue;
        }
        let began = tokio::time::Instant::now();
        let r = session(addr, &mut t, &mut kept, &mut pending, &mut last_step, &stats, &shutdown).await;
        if shutdown.is_cancelled() {
            break;
        }
        // A session that lasted is a recovered link: the next drop starts from a short wait
        // again instead of the longest one reached during an earlier outage.
        if began.elapsed() >= STABLE_SESSION {
            backoff = Duration::from_secs(1);
        }
        match r {
            Err(SimError::Offline) => continue,
            Err(e) => {
                tracing::debug!(phone = %t.phone, error = %e, "simulated terminal disconnected");
                which += 1;
                addr = gateways[which % gateways.len()];
            }
            Ok(()) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// A scenario's offline window: no connection, and no reconnection until the window ends; the
/// driver drives on and its fixes are kept for the blind-area upload.
async fn stay_offline(
    t: &mut SimTerminal,
    pending: &mut VecDeque<(i64, Location)>,
    last_step: &mut f64,
    shutdown: &CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + t.interval, t.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while t.driver.offline() {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                advance(t, last_step, pending);
            }
        }
    }
}

/// Steps the driver to now and records its fix as pending; returns (device time, report).
fn advance(t: &mut SimTerminal, last_step: &mut f64, pending: &mut VecDeque<(i64, Location)>) -> (i64, Location) {
    let now = now_secs_f64();
    let dt = (now - *last_step).clamp(0.0, 3600.0);
    *last_step = now;
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    t.driver.step(dt, jitter);
    let secs = now.floor() as i64;
    let l = report(&t.driver, secs);
    pending.push_back((secs, l.clone()));
    while pending.len() > MAX_PENDING {
        pending.pop_front();
    }
    (secs, l)
}

/// Largest body of one packet (JT/T 808-2019 §4.4.3: 10-bit length).
const MAX_BODY: usize = 1023;

/// `pending` in 0x0704 batches (kind 1, blind-area) whose bodies fit one packet, oldest first:
/// (device times, locations) of each.
fn blind_area_batches(pending: &VecDeque<(i64, Location)>) -> Vec<(Vec<i64>, Vec<Location>)> {
    let mut out: Vec<(Vec<i64>, Vec<Location>)> = vec![];
    // Count (2) and kind (1), then per location its length (2), fix (28) and items.
    let mut size = MAX_BODY;
    for (t, l) in pending {
        let cost = 2 + 28 + l.view().extras().len();
        if out.is_empty() || size + cost > MAX_BODY {
            out.push((vec![], vec![]));
            size = 3;
        }
        size += cost;
        if let Some((times, locs)) = out.last_mut() {
            times.push(*t);
            locs.push(l.clone());
        }
    }
    out
}

/// JT/T 808's retransmission: a message not answered within the TCP response time-out
/// (parameter 0x0002) is sent again with a growing time-out, at most parameter 0x0003 times. Ours,
/// simplified: after 10, 20 and 30 s; then the reports wait for the 30 s rule below to reconnect
/// and upload them as a blind-area batch.
const RETRANSMIT_AFTER: Duration = Duration::from_secs(10);
const RETRANSMISSIONS: u32 = 3;

/// A report (or batch) sent and not yet answered.
struct InFlight {
    serial: u16,
    times: Vec<i64>,
    sent: std::time::Instant,
    attempts: u32,
    /// A live report (0x0200), whose acknowledgement latency is measured.
    live: bool,
}

impl InFlight {
    fn new(serial: u16, times: Vec<i64>) -> Self {
        Self { serial, times, sent: std::time::Instant::now(), attempts: 0, live: false }
    }

    fn live(serial: u16, times: Vec<i64>) -> Self {
        Self { live: true, ..Self::new(serial, times) }
    }
}

/// Sends again the single reports that waited too long for their answer (a new serial: the
/// answer to either clears it). Blind-area batches are not: they were all sent at once after a
/// reconnection, and a slow platform working through them should not get them twice; they go
/// up again after the next reconnection if need be.
async fn retransmit(
    link: &mut Link,
    in_flight: &mut [InFlight],
    pending: &VecDeque<(i64, Location)>,
) -> Result<(), SimError> {
    for f in in_flight.iter_mut() {
        if f.times.len() != 1 || f.attempts >= RETRANSMISSIONS || f.sent.elapsed() < RETRANSMIT_AFTER * (f.attempts + 1)
        {
            continue;
        }
        // Recent reports are at the back.
        let Some((_, l)) = pending.iter().rev().find(|(t, _)| *t == f.times[0]) else { continue };
        f.serial = link.send(&Message::Location(l.clone())).await?;
        f.sent = std::time::Instant::now();
        f.attempts += 1;
    }
    Ok(())
}

async fn session(
    addr: SocketAddr,
    t: &mut SimTerminal,
    kept: &mut Kept,
    pending: &mut VecDeque<(i64, Location)>,
    last_step: &mut f64,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<(), SimError> {
    let mut link = Link::open(addr, None, &t.phone, t.v2019, 4096).await?;
    stats.connects.fetch_add(1, Ordering::Relaxed);
    link.handshake(&t.phone, t.v2019, &t.plate, &mut kept.auth_code).await?;
    stats.authenticated.fetch_add(1, Ordering::Relaxed);
    if let Some(card) = &t.card {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        link.send(&Message::DriverIdentity(DriverIdentity {
            status: 1,
            time: Some(jt808::time::UtcTime(now)),
            read_result: Some(0),
            card: Some(card.clone()),
        }))
        .await?;
    }
    // What piled up while disconnected goes up as blind-area batches (0x0704, kind 1).
    let mut in_flight: Vec<InFlight> = vec![];
    for (times, locations) in blind_area_batches(pending) {
        let s = link.send(&Message::LocationBatch(LocationBatch { kind: 1, locations })).await?;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        in_flight.push(InFlight::new(s, times));
    }
    let mut last_ack = std::time::Instant::now();
    // The first report at once, then one per interval (the fleet's pace when set, read each
    // time); a late tick delays the next rather than bunching them.
    let mut next_report = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = link.send(&Message::Logout).await;
                return Ok(());
            }
            _ = tokio::time::sleep_until(next_report) => {
                let interval = match stats.pace_ms.load(Ordering::Relaxed) {
                    0 => t.interval,
                    ms => Duration::from_millis(ms),
                };
                let now = tokio::time::Instant::now();
                next_report = if next_report + interval < now { now + interval } else { next_report + interval };
                let (now, l) = advance(t, last_step, pending);
                if t.driver.offline() {
                    // Silent from here, as a terminal that lost its signal: no logout.
                    return Err(SimError::Offline);
                }
                let s = link.send(&Message::Location(l)).await?;
                stats.sent.fetch_add(1, Ordering::Relaxed);
                in_flight.push(InFlight::live(s, vec![now]));
                retransmit(&mut link, &mut in_flight, pending).await?;
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
                        if let Some(i) = in_flight.iter().position(|f| f.serial == r.reply_serial) {
                            last_ack = std::time::Instant::now();
                            let f = in_flight.remove(i);
                            if f.live && f.attempts == 0 && r.result == 0 {
                                stats.ack_latency.record(f.sent.elapsed());
                            }
                            let times = f.times;
                            if r.result == 0 {
                                stats.acked.fetch_add(times.len() as u64, Ordering::Relaxed);
                                if let Some(log) = &stats.ack_log {
                                    if let Ok(mut l) = log.lock() {
                                        l.extend(times.iter().map(|t| (t_phone(&link), *t)));
                                    }
                                }
                                let done: std::collections::HashSet<i64> = times.iter().copied().collect();
                                // Pending is oldest first and acknowledgements mostly come in
                                // order: pop the front; scan the rest only when needed.
                                while pending.front().is_some_and(|(t, _)| done.contains(t)) {
                                    pending.pop_front();
                                }
                                let newest_done = times.iter().copied().max().unwrap_or(i64::MIN);
                                if pending.front().is_some_and(|(t, _)| *t <= newest_done) {
                                    pending.retain(|(t, _)| !done.contains(t));
                                }
                            } else {
                                stats.refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    // Parameter queries are answered with the parameters (0x0104).
                    Message::QueryAllParameters | Message::QueryParameters(_) => {
                        let ids = if let Message::QueryParameters(ids) = &m { ids.as_slice() } else { &[] };
                        let parameters = kept.params.get(ids);
                        match link.send(&Message::ParametersResponse { reply_serial: h.serial, parameters }).await {
                            // More than one packet holds: refuse rather than drop the connection.
                            Err(SimError::Protocol(_)) => {
                                let r = GeneralResponse { reply_serial: h.serial, reply_id: h.msg_id, result: 1 };
                                link.send(&Message::TerminalResponse(r)).await?;
                            }
                            r => {
                                r?;
                            }
                        }
                    }
                    // Any other command from the platform (text, tracking, areas and routes, …) is
                    // acknowledged (0x0001); parameters are remembered first.
                    other if h.msg_id >= 0x8000 => {
                        if let Message::SetParameters(ps) = other {
                            kept.params.set(ps);
                        }
                        let reply = Message::TerminalResponse(GeneralResponse { reply_serial: h.serial, reply_id: h.msg_id, result: 0 });
                        link.send(&reply).await?;
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::Behaviour;
    use crate::roads::ROADS;

    #[test]
    fn latency_quantiles_are_within_a_bucket_of_the_truth() {
        let l = Latency::default();
        // 1 ms … 100 ms, one each: the median is 50 ms, the 99th percentile 99 ms.
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        let c = l.take();
        assert_eq!(c.count(), 100);
        for (q, truth) in [(0.5, 50.0), (0.99, 99.0), (1.0, 100.0), (0.01, 1.0)] {
            let got = c.quantile(q).unwrap().as_secs_f64() * 1000.0;
            assert!(got >= truth && got <= truth * 1.25, "q{q}: {got} ms for {truth} ms");
        }
        assert_eq!(l.take().count(), 0, "taken means reset");
        assert!(LatencyCounts::default().quantile(0.5).is_none());
        // Every bucket's bound is above what falls in it, and buckets grow.
        for us in [1u64, 2, 3, 5, 7, 100, 1_000, 65_535, 10_000_000] {
            assert!(Latency::upper_us(Latency::bucket(us)) >= us as f64, "{us}");
        }
    }

    /// Before, the whole gap went up as one 0x0704 of up to 200 fixes; past 28 fixes its body
    /// exceeds one packet's 1023 bytes, the encoder refuses it, and the terminal reconnected for
    /// ever without sending anything.
    #[test]
    fn blind_area_batches_fit_one_packet_each_regression_gap_over_28_fixes() {
        let d = Driver::new(&ROADS[0], 0.5, Behaviour::default());
        let t0 = 1_800_000_000;
        let pending: VecDeque<(i64, Location)> = (t0..t0 + 1000).map(|t| (t, report(&d, t))).collect();
        let batches = blind_area_batches(&pending);
        assert!(batches.len() >= 1000 / 28, "{}", batches.len());
        let mut enc = Encoder::default();
        let phone = Phone::from_digits("13800000001", 6).unwrap();
        let mut all = vec![];
        for (times, locations) in batches {
            assert_eq!(times.len(), locations.len());
            all.extend(times);
            let mut out = vec![];
            let m = Message::LocationBatch(LocationBatch { kind: 1, locations });
            enc.encode(&Header::new(0, phone, 1), &m, &mut out).unwrap();
        }
        assert_eq!(all, (t0..t0 + 1000).collect::<Vec<i64>>(), "every fix once, oldest first");
        assert!(blind_area_batches(&VecDeque::new()).is_empty());
    }
}
