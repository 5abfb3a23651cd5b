//! The simulator's IO against a minimal gateway over real sockets: a scenario's offline window
//! (nothing sent in it, the gap uploaded afterwards as 0x0704 batches) and `hold` (connections
//! that only heartbeat and answer commands, from a chosen source address).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jt808::framing::{FrameSplitter, Split};
use jt808::message::{GeneralResponse, RegisterResponse};
use jt808::{Decoder, Encoder, Header, Message};
use sim::scenario::{Plan, Window};
use sim::{Behaviour, Driver, HoldConfig, HoldStats, SimTerminal, Stats, roads::ROADS};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// What the gateway saw.
#[derive(Debug, Clone)]
enum Seen {
    Open { conn: usize, at: f64, peer: SocketAddr },
    Frame { conn: usize, at: f64, msg_id: u16, kind: Option<u8>, times: Vec<i64> },
    Closed { conn: usize, at: f64 },
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A gateway that registers and authenticates anyone, acknowledges everything (0x8001), and
/// sends one text command (0x8300) to each connection after its authentication.
async fn gateway() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        for conn in 0.. {
            let Ok((sock, peer)) = listener.accept().await else { return };
            l.lock().unwrap().push(Seen::Open { conn, at: now(), peer });
            tokio::spawn(serve(sock, conn, l.clone()));
        }
    });
    (addr, log)
}

async fn serve(mut sock: TcpStream, conn: usize, log: Log) {
    let (mut split, mut dec, mut enc) = (FrameSplitter::new(4096), Decoder::default(), Encoder::default());
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            log.lock().unwrap().push(Seen::Closed { conn, at: now() });
            return;
        }
        split.extend(&buf[..n]);
        let mut out = vec![];
        while let Some(s) = split.next_frame() {
            let Split::Frame(f) = s else { continue };
            let p = dec.packet(f).unwrap();
            let h = p.header;
            let (kind, times) = match &p.message {
                Message::Location(l) => (None, vec![l.fix.time.unwrap().0]),
                Message::LocationBatch(b) => {
                    (Some(b.kind), b.locations.iter().map(|l| l.fix.time.unwrap().0).collect())
                }
                _ => (None, vec![]),
            };
            log.lock().unwrap().push(Seen::Frame { conn, at: now(), msg_id: h.msg_id, kind, times });
            let mut rh = Header::new(0, h.phone, h.serial);
            rh.version = h.version;
            rh.protocol_version = h.protocol_version;
            let m = match p.message {
                Message::Register(_) => Message::RegisterResponse(RegisterResponse {
                    reply_serial: h.serial,
                    result: 0,
                    auth_code: "code".into(),
                }),
                Message::TerminalResponse(_) => continue,
                _ => {
                    Message::PlatformResponse(GeneralResponse { reply_serial: h.serial, reply_id: h.msg_id, result: 0 })
                }
            };
            enc.encode(&rh, &m, &mut out).unwrap();
            if matches!(p.message, Message::Authenticate(_)) {
                let text = jt808::message::TextMessage { flags: 0x04, text_type: None, text: "hello".into() };
                rh.serial = 1;
                enc.encode(&rh, &Message::TextMessage(text), &mut out).unwrap();
            }
        }
        // A terminal that logs out and closes at once may have reset the connection before
        // the answer to its logout goes out: that is its close too.
        if sock.write_all(&out).await.is_err() {
            log.lock().unwrap().push(Seen::Closed { conn, at: now() });
            return;
        }
    }
}

#[tokio::test]
async fn an_offline_window_sends_nothing_then_uploads_the_gap_as_0704_batches() {
    let (addr, log) = gateway().await;
    let plan = Plan { offline: Some(Window { after_s: 1.0, for_s: 2.0 }), ..Default::default() };
    let term = SimTerminal {
        phone: "13800000003".into(),
        v2019: false,
        driver: Driver::new(&ROADS[0], 0.1, Behaviour::default()).with_plan(plan),
        interval: Duration::from_millis(50),
        plate: String::new(),
        card: None,
    };
    let (stats, stop) = (Arc::new(Stats::default()), CancellationToken::new());
    let t0 = now();
    let task = tokio::spawn(sim::run(addr, term, stats.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(4500)).await;
    stop.cancel();
    task.await.unwrap();
    let seen = log.lock().unwrap().clone();

    let closed0 = seen.iter().find_map(|s| match s {
        Seen::Closed { conn: 0, at } => Some(*at),
        _ => None,
    });
    let closed0 = closed0.expect("the first connection closed");
    let open1 = seen.iter().find_map(|s| match s {
        Seen::Open { conn: 1, at, .. } => Some(*at),
        _ => None,
    });
    let open1 = open1.expect("reconnected after the window");
    // Silent at 1 s, back at 3 s of the terminal's clock, which started just after t0.
    assert!((t0 + 0.9..t0 + 1.6).contains(&closed0), "closed at {}", closed0 - t0);
    assert!((t0 + 2.95..t0 + 3.8).contains(&open1), "reconnected at {}", open1 - t0);
    let frames: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Frame { conn, at, msg_id, kind, times } => Some((*conn, *at, *msg_id, *kind, times.clone())),
            _ => None,
        })
        .collect();
    // Nothing at all between going silent and coming back.
    assert!(frames.iter().all(|f| f.1 <= closed0 || f.1 >= open1), "{frames:?}");
    assert!(frames.iter().any(|f| f.0 == 0 && f.2 == 0x0200), "reports before the window");
    // The gap, as blind-area batches right after authentication on the new connection.
    let second: Vec<_> = frames.iter().filter(|f| f.0 == 1).collect();
    let ids: Vec<u16> = second.iter().map(|f| f.2).collect();
    let first_report = ids.iter().position(|&id| id == 0x0200).unwrap_or(ids.len());
    let batches: Vec<_> = second[..first_report].iter().filter(|f| f.2 == 0x0704).collect();
    assert!(batches.len() >= 2, "two seconds of 50 ms fixes need more than one packet: {ids:x?}");
    assert!(batches.iter().all(|b| b.3 == Some(1)), "blind-area kind");
    let times: Vec<i64> = batches.iter().flat_map(|b| b.4.iter().copied()).collect();
    assert!(times.len() >= 30, "{} fixes in the gap", times.len());
    let (lo, hi) = ((t0 + 1.0).floor() as i64 - 1, (t0 + 3.8).floor() as i64);
    assert!(times.iter().all(|t| (lo..=hi).contains(t)), "{times:?} outside {lo}..={hi}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert!(stats.batches.load(Relaxed) >= 2);
}

#[tokio::test]
async fn hold_keeps_connections_from_the_source_address_heartbeats_and_answers_commands() {
    let (addr, log) = gateway().await;
    let stats = Arc::new(HoldStats::default());
    let stop = CancellationToken::new();
    let cfg = HoldConfig {
        gateway: addr,
        source_ip: Some("127.0.0.2".parse().unwrap()),
        heartbeat: Duration::from_secs(1),
        connects_per_sec: 200,
        handshakes: 8,
    };
    let phones: Vec<String> = (13_700_000_000u64..13_700_000_050).map(|n| n.to_string()).collect();
    let task = tokio::spawn(sim::hold_all(cfg, phones, stats.clone(), stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stats.established.load(Relaxed) < 50 || stats.heartbeats.load(Relaxed) < 100 {
        assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    // Each logged out, and the gateway saw its connection close.
    while log.lock().unwrap().iter().filter(|s| matches!(s, Seen::Closed { .. })).count() < 50 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.established.load(Relaxed), 0);
    assert_eq!(stats.connects.load(Relaxed), 50);
    assert_eq!(stats.failures.load(Relaxed) + stats.drops.load(Relaxed), 0, "{stats:?}");
    assert_eq!(stats.commands.load(Relaxed), 50);
    let seen = log.lock().unwrap().clone();
    let peers: Vec<_> =
        seen.iter().filter_map(|s| if let Seen::Open { peer, .. } = s { Some(*peer) } else { None }).collect();
    assert_eq!(peers.len(), 50);
    assert!(peers.iter().all(|p| p.ip().to_string() == "127.0.0.2"), "{peers:?}");
    let count = |id: u16| seen.iter().filter(|s| matches!(s, Seen::Frame { msg_id, .. } if *msg_id == id)).count();
    assert_eq!(count(0x0100), 50, "each registers once");
    assert_eq!(count(0x0102), 50);
    assert_eq!(count(0x0001), 50, "each answers its command");
    assert_eq!(count(0x0003), 50, "each logs out");
    assert!(count(0x0002) >= 100);
    assert_eq!(count(0x0200), 0, "no positions");
}

#[tokio::test]
async fn a_backlog_goes_up_first_as_0704_batches_one_fix_a_second_each_acknowledged() {
    let (addr, log) = gateway().await;
    let term = SimTerminal {
        phone: "13800000009".into(),
        v2019: true,
        driver: Driver::new(&ROADS[1], 0.3, Behaviour::default()),
        interval: Duration::from_secs(10),
        plate: String::new(),
        card: None,
    };
    let (stats, stop) = (Arc::new(Stats::default()), CancellationToken::new());
    let t0 = now().floor() as i64;
    let task = tokio::spawn(sim::run_with_backlog(addr, term, stats.clone(), stop.clone(), 300));
    for _ in 0..100 {
        if stats.acked.load(Relaxed) >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    let times: Vec<i64> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Frame { msg_id: 0x0704, kind: Some(1), times, .. } => Some(times.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(stats.connects.load(Relaxed), 1);
    assert_eq!(times.len(), 300, "every fix of the backlog, once: {times:?}");
    assert!(times.windows(2).all(|w| w[1] == w[0] + 1), "one a second, oldest first");
    assert!((t0 - 301..=t0 - 299).contains(&times[0]), "the backlog ends now: {} vs {t0}", times[0]);
    // The backlog and the live report sent at once beside it.
    assert!(stats.acked.load(Relaxed) >= 300);
    assert!(stats.batches.load(Relaxed) >= 300 / 28, "batches that fit one packet each");
}

/// A gateway that, on the first connection, sets the heartbeat interval (0x8103) and closes the
/// connection once the terminal has acknowledged it; on the next, asks for every parameter
/// (0x8104) and hands the terminal's answer (0x0104) back.
async fn parameter_gateway() -> (SocketAddr, tokio::sync::mpsc::Receiver<Vec<jt808::message::Parameter>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (answers, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for conn in 0.. {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let answers = answers.clone();
            tokio::spawn(async move {
                let (mut split, mut dec, mut enc) = (FrameSplitter::new(4096), Decoder::default(), Encoder::default());
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    split.extend(&buf[..n]);
                    let mut out = vec![];
                    while let Some(s) = split.next_frame() {
                        let Split::Frame(f) = s else { continue };
                        let p = dec.packet(f).unwrap();
                        let h = p.header;
                        let mut rh = Header::new(0, h.phone, h.serial);
                        rh.version = h.version;
                        rh.protocol_version = h.protocol_version;
                        let reply = match &p.message {
                            Message::Register(_) => Message::RegisterResponse(RegisterResponse {
                                reply_serial: h.serial,
                                result: 0,
                                auth_code: "code".into(),
                            }),
                            Message::TerminalResponse(_) if conn == 0 => return, // set: drop the link
                            Message::TerminalResponse(_) => continue,
                            Message::ParametersResponse { parameters, .. } => {
                                answers.send(parameters.clone()).await.unwrap();
                                continue;
                            }
                            _ => Message::PlatformResponse(GeneralResponse {
                                reply_serial: h.serial,
                                reply_id: h.msg_id,
                                result: 0,
                            }),
                        };
                        enc.encode(&rh, &reply, &mut out).unwrap();
                        if matches!(p.message, Message::Authenticate(_)) {
                            rh.serial = 1;
                            let command = if conn == 0 {
                                let value = 30u32.to_be_bytes().to_vec();
                                Message::SetParameters(vec![jt808::message::Parameter { id: 0x0001, value }])
                            } else {
                                Message::QueryAllParameters
                            };
                            enc.encode(&rh, &command, &mut out).unwrap();
                        }
                    }
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn parameters_set_before_a_reconnection_are_still_there_after_it() {
    let (addr, mut answers) = parameter_gateway().await;
    let term = SimTerminal {
        phone: "13800000010".into(),
        v2019: false,
        driver: Driver::new(&ROADS[0], 0.3, Behaviour::default()),
        interval: Duration::from_secs(10),
        plate: String::new(),
        card: None,
    };
    let (stats, stop) = (Arc::new(Stats::default()), CancellationToken::new());
    let task = tokio::spawn(sim::run_with_backlog(addr, term, stats.clone(), stop.clone(), 0));
    let got = tokio::time::timeout(Duration::from_secs(20), answers.recv()).await.expect("no 0x0104 in 20 s");
    stop.cancel();
    task.await.unwrap();
    let got = got.unwrap();
    let heartbeat = got.iter().find(|p| p.id == 0x0001).expect("the heartbeat interval is answered");
    assert_eq!(heartbeat.value, 30u32.to_be_bytes().to_vec(), "the value set on the first connection");
    assert!(got.iter().any(|p| p.id == 0x0029), "and the report interval: {got:?}");
    assert_eq!(stats.connects.load(Relaxed), 2);
}
