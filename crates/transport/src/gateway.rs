//! The JT/T 808 gateway (车载终端接入): terminals connect over TCP, register (0x0100 → 0x8100),
//! authenticate (0x0102), then report positions, singly (0x0200) or in batches (0x0704).
//!
//! **Invariant**: a position is acknowledged (0x8001 success) only after it is committed. The
//! terminal retransmits whatever it did not hear acknowledged, and retransmissions are stored
//! once, so an acknowledged position is never lost and a lost acknowledgement costs nothing.
//! Positions of all connections are group-committed by one writer: one transaction carries
//! every report that arrived while the previous one was being written. A connection hands the
//! writer every report of one read as one job, and reads no more until they are answered: a
//! terminal that fell behind catches up in one commit, and a slow store slows its terminals
//! through TCP rather than filling our memory.
//!
//! A misbehaving terminal (garbage, oversize frames, floods, silence) is disconnected with a
//! logged reason; nothing it does reaches another connection's task.
//!
//! Downlink commands, checked by [`crate::command::prepare`], go out on the terminal's own
//! connection in its edition's layout; its answer (0x0001, or 0x0104 to a parameter query, 0x0201
//! to a position query) is matched to the command by our serial.

use crate::command::{Answer, ParameterReading, Prepared, read_parameter};
use crate::live::LiveMap;
use crate::model::TerminalPhone;
use crate::positions::Position;
use crate::registry::{self, Terminal};
use crate::writer::{Episode, PositionWriter, StorageHealth};
use jt808::framing::{FrameSplitter, Split};
use jt808::message::{GeneralResponse, RegisterResponse};
use jt808::reassembly::{Outcome, Reassembler, ReassemblyConfig};
use jt808::{ChecksumPolicy, Decoder, Encoder, Header, Location, Message, Packet};
use kernel::audit::{Actor, Event, Outcome as AuditOutcome};
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::now_ms;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

thread_local! {
    /// The read buffer of the connections this worker thread runs (see `Gateway::connection`).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 8192]);
}

/// Limits and policy of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// A connection silent this long is closed (terminals send heartbeats, 0x0002).
    pub idle_timeout: Duration,
    /// Longest escaped frame accepted; a 1023-byte body escapes to about 2 100 bytes.
    pub max_frame: usize,
    /// Frames per second a terminal may send, averaged over 10 s, before it is disconnected.
    pub max_frames_per_sec: u32,
    /// Frames in a row that fail to decode before the connection is closed.
    pub max_bad_frames: u32,
    pub checksum: ChecksumPolicy,
    /// How long a connection waits for the store (a commit of its positions, a registry read
    /// while registering or authenticating) before it gives up and answers nothing: the terminal
    /// sends the message again (JT/T 808 retransmits what is not answered). Meanwhile the
    /// connection reads nothing more from its socket, so a terminal that keeps sending fills its
    /// own TCP window rather than the gateway's memory; past this wait it reads on, so that a
    /// terminal gone during the stall is noticed and its socket closed.
    pub storage_wait: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(180),
            max_frame: 4096,
            max_frames_per_sec: 100,
            max_bad_frames: 20,
            checksum: ChecksumPolicy::Strict,
            storage_wait: Duration::from_secs(10),
        }
    }
}

/// JT/T 808 general-response results (table 5).
const OK: u8 = 0;
const FAILURE: u8 = 1;
const MALFORMED: u8 = 2;
const UNSUPPORTED: u8 = 3;

/// 0x8100 results (table 8).
const REG_OK: u8 = 0;
const REG_VEHICLE_TAKEN: u8 = 1;
const REG_NO_VEHICLE: u8 = 2;
const REG_NO_TERMINAL: u8 = 4;

/// One online terminal, as the connection registry shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Connection {
    pub phone: String,
    pub vehicle_id: String,
    pub org_id: String,
    pub peer: String,
    /// RFC 3339.
    pub since: String,
    pub last_message: String,
    /// `2011`, `2013` or `2019`.
    pub protocol: String,
}

/// What became of a command.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The terminal answered.
    pub delivered: bool,
    /// The terminal's result (0 success, 1 failure, 2 malformed, 3 unsupported), when it answered.
    pub result: Option<u8>,
    pub detail: String,
    /// The parameters the terminal reported (0x0104), for `query_parameters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<ParameterReading>>,
}

impl Delivery {
    fn undelivered(detail: &str) -> Self {
        Self { delivered: false, result: None, detail: detail.into(), parameters: None }
    }
}

struct Downlink {
    cmd: Prepared,
    reply: oneshot::Sender<Delivery>,
}

/// An online terminal's entry: the connection and the time of its last message (ms).
type Online = (Connection, Arc<AtomicI64>);

/// Who is online: shared by the gateway's connections and the API.
#[derive(Clone, Default)]
pub struct Connections {
    /// By phone: the connection and the time of its last message (ms), which its task updates
    /// without taking this lock.
    inner: Arc<Mutex<HashMap<String, Online>>>,
    /// Boxed: a channel allocates a block of 32 slots up front, so a slot should be small.
    senders: Arc<Mutex<HashMap<String, mpsc::Sender<Box<Downlink>>>>>,
    /// Scaled out: commands for terminals connected elsewhere go over NATS to the gateway that
    /// holds the connection (`downlink_subject`); set at the module's start.
    cluster: Arc<std::sync::OnceLock<kernel::cluster::Cluster>>,
}

/// A command sent over NATS to the gateway holding a terminal's connection.
#[derive(serde::Serialize, serde::Deserialize)]
struct RemoteCommand {
    command: crate::command::Command,
    wait_ms: u64,
}

/// Where the gateway holding a vehicle's terminal listens for its commands:
/// `<namespace>.downlink.<vehicle>`.
fn downlink_subject(cluster: &kernel::cluster::Cluster, vehicle_id: &str) -> String {
    format!("{}.downlink.{vehicle_id}", cluster.namespace)
}

impl Connections {
    pub fn list(&self) -> Vec<Connection> {
        let mut v: Vec<Connection> = self
            .inner
            .lock()
            .map(|m| {
                m.values()
                    .map(|(c, last)| Connection {
                        last_message: kernel::store::ms_to_rfc3339(last.load(Ordering::Relaxed)),
                        ..c.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.phone.cmp(&b.phone));
        v
    }
    /// The terminals online at every gateway: this node's own on a single server; scaled out,
    /// each gateway's answer to a request on `<namespace>.connections` (gathered until the
    /// answers stop coming, two seconds at most), a terminal listed once.
    pub async fn all(&self) -> Vec<Connection> {
        let Some(cluster) = self.cluster.get() else { return self.list() };
        let mut by_phone: HashMap<String, Connection> = HashMap::new();
        match gather_connections(cluster).await {
            Ok(lists) => {
                for c in lists {
                    match by_phone.get(&c.phone) {
                        Some(old) if old.last_message >= c.last_message => {}
                        _ => {
                            by_phone.insert(c.phone.clone(), c);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "gateways' connections not gathered: this node's only");
                return self.list();
            }
        }
        let mut v: Vec<Connection> = by_phone.into_values().collect();
        v.sort_by(|a, b| a.phone.cmp(&b.phone));
        v
    }

    /// Registers a connection; returns the clock of its last message.
    fn put(&self, c: Connection, now: i64) -> Arc<AtomicI64> {
        let last = Arc::new(AtomicI64::new(now));
        if let Ok(mut m) = self.inner.lock() {
            m.insert(c.phone.clone(), (c, last.clone()));
        }
        last
    }
    /// The phone of the vehicle's online terminal, without copying the registry.
    fn phone_of(&self, vehicle_id: &str) -> Option<String> {
        self.inner.lock().ok()?.values().find(|(c, _)| c.vehicle_id == vehicle_id).map(|(c, _)| c.phone.clone())
    }

    fn remove(&self, phone: &str, peer: &str) {
        if let Ok(mut m) = self.inner.lock() {
            // A terminal that reconnected already replaced this entry: keep the new one.
            if m.get(phone).is_some_and(|(c, _)| c.peer == peer) {
                m.remove(phone);
                if let Ok(mut s) = self.senders.lock() {
                    s.remove(phone);
                }
            }
        }
    }

    /// Scaled out: commands for terminals this node does not hold go over NATS.
    pub fn set_cluster(&self, cluster: kernel::cluster::Cluster) {
        let _ = self.cluster.set(cluster);
    }

    /// Sends a checked command to the vehicle's online terminal and waits (at most `wait`) for
    /// its answer. Scaled out, a terminal connected to another gateway is reached through it.
    pub async fn command(&self, vehicle_id: &str, cmd: Prepared, wait: Duration) -> Delivery {
        let phone = self.phone_of(vehicle_id);
        let sender = phone.and_then(|p| self.senders.lock().ok().and_then(|s| s.get(&p).cloned()));
        let Some(sender) = sender else {
            return match self.cluster.get() {
                Some(cluster) => remote_command(cluster, vehicle_id, cmd, wait).await,
                None => Delivery::undelivered("the terminal is offline"),
            };
        };
        let (reply, rx) = oneshot::channel();
        if sender.send(Box::new(Downlink { cmd, reply })).await.is_err() {
            return Delivery::undelivered("the terminal went offline");
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(d)) => d,
            Ok(Err(_)) => Delivery::undelivered("the terminal went offline"),
            Err(_) => Delivery::undelivered("the terminal did not answer in time"),
        }
    }
}

/// Asks the gateway holding the vehicle's terminal to send `cmd` and waits for its answer.
async fn remote_command(
    cluster: &kernel::cluster::Cluster,
    vehicle_id: &str,
    cmd: Prepared,
    wait: Duration,
) -> Delivery {
    let body = RemoteCommand { command: cmd.source().clone(), wait_ms: wait.as_millis() as u64 };
    let Ok(body) = serde_json::to_vec(&body) else { return Delivery::undelivered("the command could not be sent") };
    // The gateway waits `wait` for the terminal; the answer needs a moment more to come back.
    let request = async_nats::Request::new().payload(body.into()).timeout(Some(wait + Duration::from_secs(2)));
    match cluster.client.send_request(downlink_subject(cluster, vehicle_id), request).await {
        Ok(m) => serde_json::from_slice(&m.payload)
            .unwrap_or_else(|_| Delivery::undelivered("the gateway's answer was not understood")),
        Err(e) => match e.kind() {
            async_nats::client::RequestErrorKind::NoResponders => Delivery::undelivered("the terminal is offline"),
            async_nats::client::RequestErrorKind::TimedOut => {
                Delivery::undelivered("the terminal did not answer in time")
            }
            _ => {
                tracing::warn!(error = %e, "command not passed to the terminal's gateway");
                Delivery::undelivered("the terminal's gateway could not be reached")
            }
        },
    }
}

/// Where gateways answer for their connections: `<namespace>.connections`.
fn connections_subject(cluster: &kernel::cluster::Cluster) -> String {
    format!("{}.connections", cluster.namespace)
}

/// Connections in one answer at most (NATS messages are bounded, 1 MB by default).
const CONNECTIONS_PER_MESSAGE: usize = 2000;

/// Asks every gateway for its connections and gathers the answers: until none has come for
/// 200 ms after the first, one second if none comes, two seconds at most.
async fn gather_connections(cluster: &kernel::cluster::Cluster) -> anyhow::Result<Vec<Connection>> {
    use futures::StreamExt;
    let inbox = cluster.client.new_inbox();
    let mut sub = cluster.client.subscribe(inbox.clone()).await?;
    cluster.client.publish_with_reply(connections_subject(cluster), inbox, Vec::<u8>::new().into()).await?;
    cluster.client.flush().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut quiet = Duration::from_secs(1);
    let mut out = Vec::new();
    loop {
        let wait = quiet.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, sub.next()).await {
            Ok(Some(m)) => {
                match serde_json::from_slice::<Vec<Connection>>(&m.payload) {
                    Ok(list) => out.extend(list),
                    Err(e) => tracing::debug!(error = %e, "a gateway's connections not understood"),
                }
                quiet = Duration::from_millis(200);
            }
            Ok(None) | Err(_) => break,
        }
    }
    Ok(out)
}

/// Scaled out, on gateways: answers requests for this node's connections (in messages of
/// [`CONNECTIONS_PER_MESSAGE`]) until `shutdown`.
pub async fn serve_connection_lists(
    cluster: kernel::cluster::Cluster,
    connections: Connections,
    shutdown: kernel::platform::CancellationToken,
) {
    use futures::StreamExt;
    let mut sub = match cluster.client.subscribe(connections_subject(&cluster)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "this gateway's connections not listed to other nodes");
            return;
        }
    };
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = sub.next() => match m { Some(m) => m, None => break },
        };
        let Some(reply) = m.reply.clone() else { continue };
        let list = connections.list();
        for chunk in list.chunks(CONNECTIONS_PER_MESSAGE) {
            if let Ok(body) = serde_json::to_vec(chunk) {
                let _ = cluster.client.publish(reply.clone(), body.into()).await;
            }
        }
    }
}

/// Scaled out: while a terminal is connected here, the commands other nodes send it over NATS
/// are checked again, sent on its connection and answered with what became of them. Ends when
/// the connection's sender is gone (the task is aborted at disconnection).
async fn serve_remote_commands(
    cluster: kernel::cluster::Cluster,
    vehicle_id: String,
    sender: mpsc::Sender<Box<Downlink>>,
) {
    use futures::StreamExt;
    let mut sub = match cluster.client.subscribe(downlink_subject(&cluster, &vehicle_id)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "commands from other nodes not taken for this terminal");
            return;
        }
    };
    while let Some(m) = sub.next().await {
        let Some(reply) = m.reply.clone() else { continue };
        let delivery = match serde_json::from_slice::<RemoteCommand>(&m.payload) {
            Err(e) => Delivery::undelivered(&format!("the command was not understood: {e}")),
            Ok(rc) => match crate::command::prepare(rc.command) {
                Err(e) => Delivery::undelivered(&format!("refused: {}", e.problem().detail)),
                Ok(cmd) => {
                    let (tx, rx) = oneshot::channel();
                    if sender.send(Box::new(Downlink { cmd, reply: tx })).await.is_err() {
                        Delivery::undelivered("the terminal went offline")
                    } else {
                        match tokio::time::timeout(Duration::from_millis(rc.wait_ms.min(60_000)), rx).await {
                            Ok(Ok(d)) => d,
                            Ok(Err(_)) => Delivery::undelivered("the terminal went offline"),
                            Err(_) => Delivery::undelivered("the terminal did not answer in time"),
                        }
                    }
                }
            },
        };
        if let Ok(body) = serde_json::to_vec(&delivery) {
            let _ = cluster.client.publish(reply, body.into()).await;
        }
    }
}

async fn next_command(rx: &mut Option<mpsc::Receiver<Box<Downlink>>>) -> Option<Box<Downlink>> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Everything a connection needs.
#[derive(Clone)]
pub struct Gateway {
    pub state: AppState,
    pub live: LiveMap,
    pub connections: Connections,
    pub writer: PositionWriter,
    pub config: GatewayConfig,
    /// Registry reads failing while terminals register or authenticate (logged per episode).
    registry: Episode,
    /// `accept` failing (out of file descriptors: logged per episode).
    accepting: Episode,
}

impl Gateway {
    pub fn new(
        state: AppState,
        live: LiveMap,
        connections: Connections,
        config: GatewayConfig,
        health: StorageHealth,
    ) -> Self {
        let writer = PositionWriter::start(state.clone(), live.clone(), health);
        Self {
            state,
            live,
            connections,
            writer,
            config,
            registry: Episode::new("terminal registry", "registrations and authentications are not answered"),
            accepting: Episode::new("jt808 accept", "new connections wait in the listen backlog"),
        }
    }

    /// Waits for a store operation at most `storage_wait`; `None` if it failed or took longer
    /// (the episode logged), and the caller answers nothing.
    async fn registry_read<T>(
        &self,
        op: impl std::future::Future<Output = kernel::store::StoreResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(self.config.storage_wait, op).await {
            Ok(Ok(v)) => {
                if self.registry.on() {
                    self.registry.ok();
                }
                Some(v)
            }
            Ok(Err(e)) => {
                self.registry.failure(&e);
                None
            }
            Err(_) => {
                self.registry.stall();
                None
            }
        }
    }

    /// Accepts connections until `shutdown`; each connection runs in its own task.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        if self.accepting.on() {
                            self.accepting.ok();
                        }
                        let gw = self.clone();
                        let stop = shutdown.clone();
                        tokio::spawn(async move {
                            metrics::gauge!("wuqing_jt808_connections").increment(1.0);
                            let reason = gw.connection(socket, peer, stop).await;
                            metrics::gauge!("wuqing_jt808_connections").decrement(1.0);
                            tracing::debug!(%peer, reason, "jt808 connection closed");
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors (EMFILE) most likely: the pending connections
                        // wait in the backlog until some close; retry shortly, log once.
                        metrics::counter!("wuqing_jt808_accept_failures_total").increment(1);
                        self.accepting.failure(&e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Runs one connection; returns why it ended.
    async fn connection(&self, mut socket: TcpStream, peer: SocketAddr, shutdown: CancellationToken) -> &'static str {
        let _ = socket.set_nodelay(true);
        let mut conn = Conn::new(self, peer);
        let mut out = Vec::new();
        let mut window = (Instant::now(), 0u32);
        // Only while a sub-packaged message is incomplete: asks for missing packets, expires
        // stale ones. An idle connection has no timer but its idle time-out.
        let mut housekeeping = tokio::time::interval(Duration::from_secs(5));
        let reason = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break "shutdown",
                Some(d) = next_command(&mut conn.commands) => {
                    out.clear();
                    conn.downlink(*d, &mut out);
                    if !out.is_empty() && !write_within(&mut socket, &out, self.config.idle_timeout).await {
                        break "write failed";
                    }
                    continue;
                }
                _ = housekeeping.tick(), if conn.reassembler.buffered_bytes() > 0 => {
                    out.clear();
                    conn.resend_requests(&mut out);
                    if !out.is_empty() && !write_within(&mut socket, &out, self.config.idle_timeout).await {
                        break "write failed";
                    }
                    continue;
                }
                r = tokio::time::timeout(self.config.idle_timeout, socket.readable()) => match r {
                    Err(_) => break "idle timeout",
                    Ok(Err(_)) => break "read failed",
                    // Read through this worker thread's buffer: a connection keeps no read buffer
                    // of its own while it waits, which is most of its life.
                    Ok(Ok(())) => match READ_BUF.with_borrow_mut(|buf| {
                        let n = socket.try_read(buf)?;
                        conn.splitter.extend(&buf[..n]);
                        Ok::<_, std::io::Error>(n)
                    }) {
                        Ok(0) => break "closed by terminal",
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => break "read failed",
                    },
                },
            }
            out.clear();
            let mut verdict = None;
            loop {
                let frame = match conn.splitter.next_frame() {
                    None => break,
                    Some(Split::Dropped(e)) => {
                        tracing::debug!(%peer, error = %e, "jt808 bytes dropped");
                        conn.bad += 1;
                        if conn.bad > self.config.max_bad_frames {
                            verdict = Some("too many bad frames");
                            break;
                        }
                        continue;
                    }
                    Some(Split::Frame(f)) => f,
                };
                window.1 += 1;
                let elapsed = window.0.elapsed();
                if elapsed >= Duration::from_secs(10) {
                    window = (Instant::now(), 1);
                } else if window.1 > self.config.max_frames_per_sec * 10 {
                    verdict = Some("frame rate limit exceeded");
                    break;
                }
                let mut ack_to = None;
                let packet = match conn.decoder.frame(frame).and_then(|raw| {
                    let header = raw.header;
                    if header.package.is_some() { Ok(Err((header, raw.body.to_vec()))) } else { raw.decode().map(Ok) }
                }) {
                    Ok(Ok(p)) => p,
                    Ok(Err((header, body))) => match conn.reassemble(&header, &body) {
                        // The packet that completed the message is the one answered, after storage.
                        Some(p) => {
                            ack_to = Some(header);
                            p
                        }
                        None => {
                            // An intermediate packet: acknowledged as received; the message
                            // is acknowledged as stored when it is complete.
                            reply(&mut conn.encoder, &header, header.msg_id, OK, &mut out);
                            continue;
                        }
                    },
                    Err(e) => {
                        metrics::counter!("wuqing_jt808_bad_frames_total").increment(1);
                        tracing::debug!(%peer, error = %e, "jt808 frame rejected");
                        conn.bad += 1;
                        if conn.bad > self.config.max_bad_frames {
                            verdict = Some("too many bad frames");
                            break;
                        }
                        continue;
                    }
                };
                conn.bad = 0;
                let ack_to = ack_to.unwrap_or(packet.header);
                // Boxed: registration, authentication and storage are large futures that would
                // otherwise sit inline in every connection's task for its whole life.
                match Box::pin(conn.handle(packet, ack_to, &mut out)).await {
                    Ok(()) => {}
                    Err(why) => {
                        verdict = Some(why);
                        break;
                    }
                }
            }
            // What was read is stored and answered before the next read, whatever ends the
            // connection after.
            conn.flush(&mut out).await;
            if !out.is_empty() && !write_within(&mut socket, &out, self.config.idle_timeout).await {
                break "write failed";
            }
            if let Some(v) = verdict {
                break v;
            }
        };
        if !matches!(reason, "closed by terminal" | "shutdown" | "terminal logged out") {
            tracing::info!(%peer, phone = conn.phone.as_deref().unwrap_or("-"), reason, "jt808 connection dropped");
        }
        conn.offline();
        reason
    }
}

/// Writes `out` unless the terminal has not read for `wait`: a peer that sends but never reads
/// (or vanished with our data unacknowledged) would otherwise hold its connection's task and
/// socket for good once the socket's buffers are full, beyond the reach of the idle time-out.
async fn write_within(socket: &mut TcpStream, out: &[u8], wait: Duration) -> bool {
    matches!(tokio::time::timeout(wait, socket.write_all(out)).await, Ok(Ok(())))
}

fn reply(enc: &mut Encoder, to: &Header, msg_id: u16, result: u8, out: &mut Vec<u8>) {
    let mut h = Header::new(0x8001, to.phone, to.serial);
    h.version = to.version;
    h.protocol_version = to.protocol_version;
    let m = Message::PlatformResponse(GeneralResponse { reply_serial: to.serial, reply_id: msg_id, result });
    if let Err(e) = enc.encode(&h, &m, out) {
        tracing::warn!(error = %e, "could not encode 0x8001");
    }
}

/// The state of one connection.
struct Conn<'g> {
    gw: &'g Gateway,
    peer: SocketAddr,
    splitter: FrameSplitter,
    decoder: Decoder,
    encoder: Encoder,
    reassembler: Reassembler,
    started: Instant,
    bad: u32,
    /// Set once the terminal authenticated.
    phone: Option<String>,
    terminal: Option<Terminal>,
    /// When this connection last heard from its terminal (shown by the registry), once authenticated.
    last_message: Option<Arc<AtomicI64>>,
    /// Commands for this terminal, once it authenticated.
    commands: Option<mpsc::Receiver<Box<Downlink>>>,
    /// Commands sent and not yet answered, by our serial, with the answer each expects.
    awaiting: HashMap<u16, (oneshot::Sender<Delivery>, Answer)>,
    serial: u16,
    /// The header of the terminal's last message (edition, phone) for our downlink.
    last_header: Option<Header>,
    /// Reports read and not yet stored: those that arrived together.
    batch: Batch,
    /// Scaled out: the task answering other nodes' commands for this terminal.
    remote: Option<tokio::task::JoinHandle<()>>,
}

/// Reports of one connection waiting to be stored together.
#[derive(Default)]
struct Batch {
    positions: Vec<Position>,
    /// Each report's header (to answer it) and its number of positions.
    reports: Vec<(Header, usize)>,
}

/// Positions a connection stores in one job at most (a read holds at most 8 KiB of frames:
/// about 150 single reports, or a few blind-area batches).
const MAX_CONNECTION_BATCH: usize = 1024;

impl<'g> Conn<'g> {
    fn new(gw: &'g Gateway, peer: SocketAddr) -> Self {
        Conn {
            gw,
            peer,
            splitter: FrameSplitter::new(gw.config.max_frame),
            decoder: Decoder::new(gw.config.checksum),
            encoder: Encoder::default(),
            reassembler: Reassembler::new(ReassemblyConfig {
                max_bytes_per_terminal: 256 * 1024,
                max_pending_per_terminal: 4,
                max_terminals: 1,
                timeout: Duration::from_secs(60),
            }),
            started: Instant::now(),
            bad: 0,
            phone: None,
            terminal: None,
            last_message: None,
            commands: None,
            awaiting: HashMap::new(),
            serial: 0,
            last_header: None,
            batch: Batch::default(),
            remote: None,
        }
    }

    fn downlink(&mut self, d: Downlink, out: &mut Vec<u8>) {
        let Some(last) = self.last_header else {
            let _ = d.reply.send(Delivery::undelivered("the terminal has not spoken yet"));
            return;
        };
        // The body in the layout of the terminal's edition (2019 adds names and night limits).
        let m = d.cmd.message(last.version);
        self.serial = self.serial.wrapping_add(1);
        let mut h = Header::new(0, last.phone, self.serial);
        h.version = last.version;
        h.protocol_version = last.protocol_version;
        match self.encoder.encode(&h, &m, out) {
            Ok(()) => {
                // Callers that gave up waiting leave their entry behind: drop those first.
                self.awaiting.retain(|_, (reply, _)| !reply.is_closed());
                self.awaiting.insert(self.serial, (d.reply, d.cmd.answer()));
            }
            Err(e) => {
                let _ = d.reply.send(Delivery::undelivered(&format!("cannot encode: {e}")));
            }
        }
    }

    /// A 0x0001 answering one of our commands.
    fn answered(&mut self, serial: u16, result: u8) {
        if let Some((reply, answer)) = self.awaiting.remove(&serial) {
            let detail = match (result, answer) {
                (0, Answer::Parameters) => "acknowledged without reporting parameters",
                (0, _) => "done",
                (1, _) => "the terminal reports failure",
                (2, _) => "the terminal found the message malformed",
                (3, _) => "the terminal does not support it",
                _ => "answered",
            };
            let _ =
                reply.send(Delivery { delivered: true, result: Some(result), detail: detail.into(), parameters: None });
        }
    }

    /// A 0x0104 answering one of our parameter queries.
    fn parameters_reported(&mut self, serial: u16, parameters: &[jt808::message::Parameter]) {
        if let Some((reply, _)) = self.awaiting.remove(&serial) {
            let _ = reply.send(Delivery {
                delivered: true,
                result: Some(OK),
                detail: "done".into(),
                parameters: Some(parameters.iter().map(read_parameter).collect()),
            });
        }
    }

    fn reassemble(&mut self, header: &Header, body: &[u8]) -> Option<Packet> {
        match self.reassembler.push(header, body, self.started.elapsed()) {
            Ok(Outcome::Complete(r)) => match r.decode() {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "reassembled message rejected");
                    None
                }
            },
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "sub-package refused");
                None
            }
        }
    }

    /// 0x8003 for sub-packaged messages that stalled for 10 s; gives up after the time-out.
    fn resend_requests(&mut self, out: &mut Vec<u8>) {
        let now = self.started.elapsed();
        self.reassembler.expire(now);
        for inc in self.reassembler.missing(now, Duration::from_secs(10)) {
            let h = Header::new(0x8003, inc.phone, 0);
            if let Err(e) = self.encoder.encode(&h, &inc.resend_request(), out) {
                tracing::warn!(error = %e, "could not encode 0x8003");
            }
        }
    }

    /// Handles a message; replies answer `h` (for a sub-packaged message, its last packet).
    async fn handle(&mut self, p: Packet, h: Header, out: &mut Vec<u8>) -> Result<(), &'static str> {
        // Reports that arrived before this message are stored and answered before it is handled.
        if !matches!(p.message, Message::Location(_) | Message::LocationBatch(_) | Message::LocationResponse { .. }) {
            self.flush(out).await;
        }
        self.last_header = Some(h);
        let phone = TerminalPhone::parse(&h.phone.to_string()).map(|t| t.as_str().to_string()).unwrap_or_default();
        if let Some(me) = &self.phone {
            if *me != phone {
                reply(&mut self.encoder, &h, h.msg_id, FAILURE, out);
                return Err("phone number changed mid-connection");
            }
            if let Some(last) = &self.last_message {
                last.store(now_ms(), Ordering::Relaxed);
            }
        }
        match p.message {
            Message::Register(r) => self.register(&h, &phone, r, out).await,
            Message::Authenticate(a) => self.authenticate(&h, &phone, &a.auth_code, out).await,
            _ if self.terminal.is_none() => {
                metrics::counter!("wuqing_jt808_unauthenticated_total").increment(1);
                reply(&mut self.encoder, &h, h.msg_id, FAILURE, out);
                Ok(())
            }
            Message::Heartbeat => {
                reply(&mut self.encoder, &h, h.msg_id, OK, out);
                Ok(())
            }
            Message::Location(loc) => {
                self.queue(&h, vec![loc], out).await;
                Ok(())
            }
            Message::LocationBatch(b) => {
                self.queue(&h, b.locations, out).await;
                Ok(())
            }
            Message::Logout => {
                reply(&mut self.encoder, &h, h.msg_id, OK, out);
                Err("terminal logged out")
            }
            // Replies to our downlink commands.
            Message::TerminalResponse(r) => {
                self.answered(r.reply_serial, r.result);
                Ok(())
            }
            Message::LocationResponse { reply_serial, location } => {
                self.answered(reply_serial, OK);
                self.queue(&h, vec![location], out).await;
                Ok(())
            }
            Message::ParametersResponse { reply_serial, parameters } => {
                self.parameters_reported(reply_serial, &parameters);
                reply(&mut self.encoder, &h, h.msg_id, OK, out);
                Ok(())
            }
            Message::DriverIdentity(d) => {
                self.driver_identity(&d);
                reply(&mut self.encoder, &h, h.msg_id, OK, out);
                Ok(())
            }
            Message::Raw { .. } => {
                reply(&mut self.encoder, &h, h.msg_id, UNSUPPORTED, out);
                Ok(())
            }
            _ => {
                reply(&mut self.encoder, &h, h.msg_id, OK, out);
                Ok(())
            }
        }
    }

    async fn register(
        &mut self,
        h: &Header,
        phone: &str,
        r: jt808::message::Register,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let gw = self.gw;
        let store = &gw.state.store;
        // A store that fails or stalls gets no answer from us (not a refusal, which a terminal
        // may take as final): the terminal registers again after its time-out.
        let (result, code) = match TerminalPhone::parse(phone) {
            Err(_) => (REG_NO_TERMINAL, String::new()),
            Ok(tp) => match gw.registry_read(registry::terminal_by_phone(store, &tp)).await {
                None => return Ok(()),
                Some(None) => (REG_NO_TERMINAL, String::new()),
                Some(Some(t)) => match &t.vehicle_id {
                    None => (REG_NO_VEHICLE, String::new()),
                    Some(vid) => match gw.registry_read(registry::vehicle_by_id(store, vid)).await {
                        None => return Ok(()),
                        Some(Some(v)) if r.plate.trim().is_empty() || r.plate.trim().eq_ignore_ascii_case(&v.plate) => {
                            match gw.registry_read(registry::issue_auth_code(store, &t)).await {
                                Some(code) => (REG_OK, code),
                                None => return Ok(()),
                            }
                        }
                        // The terminal claims another vehicle than the one it is bound to.
                        Some(Some(_)) => (REG_VEHICLE_TAKEN, String::new()),
                        Some(None) => (REG_NO_VEHICLE, String::new()),
                    },
                },
            },
        };
        let outcome = if result == REG_OK { AuditOutcome::Success } else { AuditOutcome::Failure };
        let ev = Event::new(device_actor(phone, self.peer), "terminal.register", "terminal", Some(phone), outcome)
            .detail(serde_json::json!({"result": result, "plate": r.plate, "maker": r.maker, "model": r.model}));
        // The record stays queued if the store is slow; the answer does not wait past the bound.
        gw.registry_read(kernel::audit::record(store, ev)).await;
        let mut rh = Header::new(0x8100, h.phone, h.serial);
        rh.version = h.version;
        rh.protocol_version = h.protocol_version;
        let m = Message::RegisterResponse(RegisterResponse { reply_serial: h.serial, result, auth_code: code });
        if let Err(e) = self.encoder.encode(&rh, &m, out) {
            tracing::warn!(error = %e, "could not encode 0x8100");
        }
        Ok(())
    }

    async fn authenticate(
        &mut self,
        h: &Header,
        phone: &str,
        code: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let gw = self.gw;
        let store = &gw.state.store;
        // A store that fails or stalls gets no answer (see `register`).
        let t = match TerminalPhone::parse(phone) {
            Ok(tp) => match gw.registry_read(registry::terminal_by_phone(store, &tp)).await {
                Some(t) => t,
                None => return Ok(()),
            },
            Err(_) => None,
        };
        let ok = match &t {
            Some(t) if t.vehicle_id.is_some() => {
                match gw.registry_read(registry::check_auth_code(store, &t.id, code)).await {
                    Some(ok) => ok,
                    None => return Ok(()),
                }
            }
            _ => false,
        };
        if !ok {
            metrics::counter!("wuqing_jt808_auth_failures_total").increment(1);
            let ev = Event::new(
                device_actor(phone, self.peer),
                "terminal.authenticate",
                "terminal",
                Some(phone),
                AuditOutcome::Failure,
            );
            gw.registry_read(kernel::audit::record(store, ev)).await;
            reply(&mut self.encoder, h, h.msg_id, FAILURE, out);
            return Ok(());
        }
        let Some(t) = t else { return Ok(()) };
        let Some(vid) = t.vehicle_id.clone() else { return Ok(()) };
        let now = now_ms();
        let last = self.gw.connections.put(
            Connection {
                phone: phone.to_string(),
                vehicle_id: vid.clone(),
                org_id: t.org_id.clone(),
                peer: self.peer.to_string(),
                since: kernel::store::ms_to_rfc3339(now),
                last_message: kernel::store::ms_to_rfc3339(now),
                protocol: match h.version {
                    jt808::Version::V2011 => "2011",
                    jt808::Version::V2013 => "2013",
                    jt808::Version::V2019 => "2019",
                }
                .into(),
            },
            now,
        );
        self.last_message = Some(last);
        self.gw.live.set_online(&vid, true, now);
        publish_presence(&self.gw.state, &vid, phone, true).await;
        self.phone = Some(phone.to_string());
        self.terminal = Some(t);
        let (tx, rx) = mpsc::channel(16);
        if let Some(cluster) = self.gw.connections.cluster.get() {
            if let Some(old) = self.remote.take() {
                old.abort();
            }
            self.remote = Some(tokio::spawn(serve_remote_commands(cluster.clone(), vid.clone(), tx.clone())));
        }
        if let Ok(mut s) = self.gw.connections.senders.lock() {
            s.insert(phone.to_string(), tx);
        }
        self.commands = Some(rx);
        reply(&mut self.encoder, h, h.msg_id, OK, out);
        Ok(())
    }

    /// 0x0702: a driver's IC card inserted (and read) or removed; the live state shows who drives.
    fn driver_identity(&self, d: &jt808::message::DriverIdentity) {
        let Some(vid) = self.terminal.as_ref().and_then(|t| t.vehicle_id.as_deref()) else { return };
        let driver = match (d.status, d.read_result, &d.card) {
            (1, Some(0), Some(c)) => Some(crate::live::DriverOnDuty::new(&c.name, &c.certificate)),
            (1, ..) => return, // a card that could not be read changes nothing
            _ => None,
        };
        self.gw.live.set_driver(vid, driver.clone());
        // For the API nodes of a scaled-out deployment (`live::follow`).
        let (state, subject) = (self.gw.state.clone(), format!("transport.driver.{vid}"));
        let body = serde_json::json!({"vehicle_id": vid, "driver": driver});
        tokio::spawn(async move {
            if let Err(e) = state.bus.publish(&subject, Arc::from(body.to_string().into_bytes())).await {
                tracing::warn!(error = %e, "driver on duty not published");
            }
        });
    }

    /// Takes the positions of a report (0x0200, 0x0704, 0x0201) into the connection's batch; it
    /// is stored and answered with the reports that arrived with it (`flush`), or at once when
    /// the batch is full.
    async fn queue(&mut self, h: &Header, locs: Vec<Location>, out: &mut Vec<u8>) {
        let Some(vid) = self.terminal.as_ref().and_then(|t| t.vehicle_id.clone()) else { return };
        let received = now_ms();
        let mut positions = Vec::with_capacity(locs.len());
        for l in &locs {
            match to_position(&vid, l, received) {
                Some(p) => positions.push(p),
                None => {
                    // A report without a time cannot be placed in a track: refuse the message so
                    // that nothing of it is acknowledged.
                    reply(&mut self.encoder, h, h.msg_id, MALFORMED, out);
                    return;
                }
            }
        }
        self.batch.positions.extend(positions);
        self.batch.reports.push((*h, locs.len()));
        if self.batch.positions.len() >= MAX_CONNECTION_BATCH {
            self.flush(out).await;
        }
    }

    /// Stores the batch in one job of the writer and answers each of its reports once it is
    /// committed. A terminal that fell behind (its reports queued in the socket while storage
    /// was slow) catches up in one commit instead of one commit per report, and a report sent
    /// again before its answer came is stored once and both copies answered.
    async fn flush(&mut self, out: &mut Vec<u8>) {
        if self.batch.reports.is_empty() {
            return;
        }
        let Batch { mut positions, reports } = std::mem::take(&mut self.batch);
        let count: usize = reports.iter().map(|(_, n)| n).sum();
        let mut seen = std::collections::HashSet::with_capacity(positions.len());
        positions.retain(|p| seen.insert(p.device_ms));
        // Not stored (the store failed) or not yet (it stalls past `storage_wait`): no answer at
        // all. JT/T 808 terminals send again what is not answered (and keep it for a blind-area
        // upload after reconnecting), while a failure result (1) says the report was received
        // and refused, which a terminal may take as final. The writer logs the episode once;
        // a job still queued when we give up is dropped with our receiver.
        match tokio::time::timeout(self.gw.config.storage_wait, self.gw.writer.write(positions)).await {
            Ok(Ok(_)) => {
                metrics::counter!("wuqing_jt808_positions_acked_total").increment(count as u64);
                for (h, _) in &reports {
                    reply(&mut self.encoder, h, h.msg_id, OK, out);
                }
            }
            Ok(Err(e)) => {
                metrics::counter!("wuqing_jt808_positions_unanswered_total").increment(count as u64);
                tracing::debug!(peer = %self.peer, error = %e, "positions not stored: not answered");
            }
            Err(_) => {
                metrics::counter!("wuqing_jt808_positions_unanswered_total").increment(count as u64);
                tracing::debug!(peer = %self.peer, "positions not committed in time: not answered");
            }
        }
    }

    fn offline(&mut self) {
        if let Some(remote) = self.remote.take() {
            remote.abort();
        }
        if let (Some(phone), Some(t)) = (self.phone.take(), self.terminal.take()) {
            self.gw.connections.remove(&phone, &self.peer.to_string());
            if let Some(vid) = t.vehicle_id {
                if self.gw.connections.phone_of(&vid).is_none() {
                    self.gw.live.set_online(&vid, false, now_ms());
                    let st = self.gw.state.clone();
                    tokio::spawn(async move { publish_presence(&st, &vid, &phone, false).await });
                }
            }
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        // Whatever ended the connection, other nodes' commands stop coming to it.
        if let Some(remote) = self.remote.take() {
            remote.abort();
        }
    }
}

fn device_actor(phone: &str, peer: SocketAddr) -> Actor {
    Actor { name: format!("terminal:{phone}"), source_ip: Some(peer.ip().to_string()), ..Default::default() }
}

async fn publish_presence(state: &AppState, vehicle_id: &str, phone: &str, online: bool) {
    let body = serde_json::json!({"vehicle_id": vehicle_id, "phone": phone, "online": online, "at": now_ms()});
    let subject = format!("transport.presence.{vehicle_id}");
    if let Err(e) = state.bus.publish(&subject, Arc::from(body.to_string().into_bytes())).await {
        tracing::warn!(error = %e, "presence not published");
    }
}

/// A decoded 0x0200 as a stored position; `None` without a fix time.
pub fn to_position(vehicle_id: &str, l: &Location, received_ms: i64) -> Option<Position> {
    let f = l.fix;
    let t = f.time?;
    let mut mileage = None;
    for item in l.items().flatten() {
        if let jt808::AdditionalItem::Mileage(m) = item {
            mileage = Some(f64::from(m) / 10.0);
        }
    }
    Some(Position {
        vehicle_id: vehicle_id.to_string(),
        device_ms: t.0 * 1000,
        received_ms,
        lat: f.latitude.degrees(),
        lon: f.longitude.degrees(),
        altitude_m: i32::from(f.altitude_m),
        speed_kmh: f64::from(f.speed.0) / 10.0,
        heading: f.heading.0,
        alarm: f.alarm.bits(),
        status: f.status.bits(),
        mileage_km: mileage,
        extras: l.view().extras().to_vec(),
    })
}
