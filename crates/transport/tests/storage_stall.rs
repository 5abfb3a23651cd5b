//! The gateway while its store fails or stalls, over real sockets: another process holding
//! SQLite's write lock (`BEGIN EXCLUSIVE`), another PostgreSQL session holding
//! `LOCK TABLE transport_positions IN ACCESS EXCLUSIVE MODE`, a SQLite file on a full tmpfs.
//! In each: no 0x8001 while the reports are not committed (not even a failure result: the
//! terminal is left to send again), the connections stay open, and once storage is back every
//! report is acknowledged and stored once, without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jt808::framing::{FrameSplitter, Split};
use jt808::location::{DeciKmh, Heading, MicroDegrees};
use jt808::message::{Authenticate, LocationBatch, Register};
use jt808::{AlarmFlags, Decoder, Encoder, Header, Location, LocationFix, Message, Phone, StatusFlags, UtcTime};
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use transport::TransportModule;

/// A terminal over a real socket that records every 0x8001 it hears.
struct Term {
    sock: TcpStream,
    phone: Phone,
    serial: u16,
    split: FrameSplitter,
    /// (our serial, result) of every 0x8001 heard for a report.
    answers: Vec<(u16, u8)>,
}

impl Term {
    async fn login(addr: SocketAddr, phone: &str) -> Term {
        let sock = TcpStream::connect(addr).await.unwrap();
        let phone = Phone::from_digits(phone, 6).unwrap();
        let mut t = Term { sock, phone, serial: 0, split: FrameSplitter::new(8192), answers: vec![] };
        let reg = Register {
            province: 12,
            city: 114,
            maker: "70111".into(),
            model: "WQ-808".into(),
            terminal_id: "T1".into(),
            plate_color: 2,
            plate: String::new(),
        };
        t.send(&Message::Register(reg)).await;
        let code = match t.recv(Duration::from_secs(10)).await.expect("0x8100").message {
            Message::RegisterResponse(r) if r.result == 0 => r.auth_code,
            other => panic!("expected a registration, got {other:?}"),
        };
        let s = t.send(&Message::Authenticate(Authenticate { auth_code: code, v2019: None })).await;
        match t.recv(Duration::from_secs(10)).await.expect("0x8001").message {
            Message::PlatformResponse(r) => assert_eq!((r.reply_serial, r.result), (s, 0), "authenticated"),
            other => panic!("expected 0x8001, got {other:?}"),
        }
        t
    }

    async fn send(&mut self, m: &Message) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        let mut out = vec![];
        Encoder::default().encode(&Header::new(0, self.phone, self.serial), m, &mut out).unwrap();
        self.sock.write_all(&out).await.unwrap();
        self.serial
    }

    /// The next message within `wait`, `None` if there is none by then; panics if the gateway
    /// closed the connection.
    async fn recv(&mut self, wait: Duration) -> Option<jt808::Packet> {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(Split::Frame(f)) = self.split.next_frame() {
                return Some(Decoder::default().packet(f).unwrap());
            }
            let n = tokio::time::timeout_at(deadline, self.sock.read(&mut buf)).await.ok()?.unwrap();
            assert!(n > 0, "the gateway closed a well-behaved terminal's connection");
            self.split.extend(&buf[..n]);
        }
    }

    /// Reads what arrives within `wait`, recording the 0x8001s.
    async fn listen(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(p) = self.recv(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            if let Message::PlatformResponse(r) = p.message {
                self.answers.push((r.reply_serial, r.result));
            }
        }
    }

    fn acknowledged(&self) -> bool {
        self.answers.iter().any(|(_, r)| *r == 0)
    }
}

fn loc(t: i64, k: usize) -> Location {
    Location::new(LocationFix {
        alarm: AlarmFlags::empty(),
        status: StatusFlags::ACC_ON | StatusFlags::POSITIONED,
        latitude: MicroDegrees(39_380_000 + k as i32 * 100),
        longitude: MicroDegrees(117_040_000),
        altitude_m: 6,
        speed: DeciKmh(400),
        heading: Heading(90),
        time: Some(UtcTime(t)),
    })
}

const PHONES: [&str; 5] = ["13900000001", "13900000002", "13900000003", "13900000004", "13900000005"];

/// The gateway with a short storage wait, so that a stall is given up on quickly.
async fn start(backend: Backend, store_url: Option<String>) -> Option<(TestApp, TransportModule, SocketAddr)> {
    let mut module = TransportModule::with_gateway("127.0.0.1:0".parse().unwrap());
    module.gateway.idle_timeout = Duration::from_secs(60);
    module.gateway.storage_wait = Duration::from_millis(300);
    let app = TestApp::spawn_with(backend, vec![Arc::new(module.clone())], |raw| {
        if let Some(u) = store_url {
            raw.store.url = u;
        }
    })
    .await?;
    let _ = module.start(&app.platform.state, kernel::platform::CancellationToken::new()).await.unwrap();
    let addr = *module.bound.get().expect("gateway bound");
    Some((app, module, addr))
}

async fn stored(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap()
}

/// Every terminal reports (device time `t`) and sends the same report again every 300 ms, as a
/// terminal retransmits what is not answered, until `done` says the stall has been seen; nothing
/// may be answered meanwhile.
async fn report_through_the_stall(terms: &mut [Term], t: i64, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut rounds = 0;
    while rounds < 3 || !done() {
        assert!(tokio::time::Instant::now() < deadline, "the stall was never seen by the writer");
        for (k, term) in terms.iter_mut().enumerate() {
            term.send(&Message::Location(loc(t, k))).await;
        }
        for term in terms.iter_mut() {
            term.listen(Duration::from_millis(60)).await;
            assert!(term.answers.is_empty(), "answered while storage was away: {:?}", term.answers);
        }
        rounds += 1;
    }
}

/// Storage is back: each terminal sends its report again until it hears it acknowledged.
async fn retransmit_until_acknowledged(terms: &mut [Term], t: i64) {
    for (k, term) in terms.iter_mut().enumerate() {
        for attempt in 0.. {
            assert!(attempt < 50, "terminal {k} never acknowledged after storage returned: {:?}", term.answers);
            if term.acknowledged() {
                break;
            }
            term.send(&Message::Location(loc(t, k))).await;
            term.listen(Duration::from_millis(500)).await;
        }
        assert!(term.answers.iter().all(|(_, r)| *r == 0), "only success results: {:?}", term.answers);
    }
}

#[tokio::test]
async fn sqlite_write_locked_by_another_process_nothing_answered_then_all_acknowledged_once_released() {
    let (app, module, addr) = start(Backend::Sqlite, None).await.unwrap();
    let mut terms = vec![];
    for p in PHONES {
        terms.push(Term::login(addr, p).await);
    }
    let before = stored(&app).await;
    // Another process takes the write lock (as a `sqlite3` shell or a backup tool would).
    let db = app.dir.path().join("wuqing.db");
    let locker = kernel::store::rusqlite::Connection::open(&db).unwrap();
    locker.busy_timeout(Duration::from_secs(30)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let t = kernel::store::now_ms() / 1000;
    // Until the writer's commit has failed (SQLite gives up after its 5 s busy time-out).
    let health = module.storage.clone();
    report_through_the_stall(&mut terms, t, || health.failed_commits() > 0).await;
    assert!(module.storage.degraded());
    assert_eq!(module.storage.episodes(), 1, "one episode, however many reports it refused");
    assert_eq!(stored(&app).await, before, "nothing committed while locked");
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    retransmit_until_acknowledged(&mut terms, t).await;
    assert_eq!(stored(&app).await, before + PHONES.len() as i64, "each report stored once");
    assert!(!module.storage.degraded(), "the episode ended with the first commit");
    assert_eq!(module.storage.episodes(), 1);
    // And the service goes on as before.
    let s = terms[0].send(&Message::Location(loc(t + 1, 0))).await;
    terms[0].answers.clear();
    terms[0].listen(Duration::from_millis(200)).await;
    while terms[0].answers.is_empty() {
        terms[0].listen(Duration::from_secs(1)).await;
    }
    assert_eq!(terms[0].answers, vec![(s, 0)]);
    assert_eq!(module.connections.list().len(), PHONES.len(), "no well-behaved terminal was dropped");
}

#[tokio::test]
async fn postgres_positions_table_locked_by_another_session_nothing_answered_then_all_acknowledged() {
    let Some((app, module, addr)) = start(Backend::Postgres, None).await else { return };
    let mut terms = vec![];
    for p in PHONES {
        terms.push(Term::login(addr, p).await);
    }
    let before = stored(&app).await;
    let url = app.platform.state.store.url().to_string();
    let mut locker = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE transport_positions IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let t = kernel::store::now_ms() / 1000;
    // The insert waits on the lock without an error: until the writer calls it a stall (5 s).
    let health = module.storage.clone();
    report_through_the_stall(&mut terms, t, || health.degraded()).await;
    assert_eq!(module.storage.failed_commits(), 0, "a wait, not a failure");
    assert_eq!(module.storage.episodes(), 1);
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    retransmit_until_acknowledged(&mut terms, t).await;
    assert_eq!(stored(&app).await, before + PHONES.len() as i64, "each report stored once");
    assert!(!module.storage.degraded());
    assert_eq!(module.connections.list().len(), PHONES.len(), "no well-behaved terminal was dropped");
}

/// The SQLite file on a small tmpfs that fills up: commits that need new space fail (SQLITE_FULL)
/// and are not answered, those that fit are acknowledged; once space is freed, everything sent
/// again is acknowledged, and the store holds each report once. Needs root (mount); skips
/// otherwise.
#[tokio::test]
async fn sqlite_on_a_full_disk_only_committed_reports_are_acknowledged_and_the_rest_once_space_is_freed() {
    let mnt = std::env::temp_dir().join(format!("wq-disk-full-{}", uuid_like()));
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        let _ = std::fs::remove_dir(&mnt);
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unmount = Unmount(mnt.clone());
    let url = format!("sqlite://{}", mnt.join("wuqing.db").display());
    let (app, module, addr) = start(Backend::Sqlite, Some(url)).await.unwrap();
    let mut terms = vec![];
    for p in PHONES {
        terms.push(Term::login(addr, p).await);
    }
    // Fill the file system to the last byte.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..512]).is_ok() {}
        while f.write_all(&chunk[..1]).is_ok() {}
        let _ = f.sync_all();
    }
    // New batches until a commit has failed, and a few more: the WAL reuses the space it had,
    // so some commits still succeed on the full disk (and are acknowledged: they are stored);
    // those that need new space fail and go unanswered.
    let health = module.storage.clone();
    let t0 = kernel::store::now_ms() / 1000 - 86_400;
    let batch = |k: i64| -> Message {
        Message::LocationBatch(LocationBatch { kind: 1, locations: (0..28).map(|i| loc(t0 + 28 * k + i, 0)).collect() })
    };
    let term = &mut terms[0];
    // Our serial → batch.
    let mut serials = std::collections::HashMap::new();
    let mut after_failure = 0;
    let mut batches = 0i64;
    while after_failure < 5 {
        assert!(batches < 5000, "the disk never filled up");
        serials.insert(term.send(&batch(batches)).await, batches);
        batches += 1;
        term.listen(Duration::from_millis(100)).await;
        if health.failed_commits() > 0 {
            after_failure += 1;
        }
    }
    term.listen(Duration::from_millis(500)).await;
    assert!(term.answers.iter().all(|(_, r)| *r == 0), "only success is ever answered: {:?}", term.answers);
    assert_eq!(module.storage.episodes(), 1);
    let acked = |answers: &[(u16, u8)], serials: &std::collections::HashMap<u16, i64>| {
        answers.iter().filter_map(|(s, _)| serials.get(s).copied()).collect::<std::collections::HashSet<i64>>()
    };
    assert!(acked(&term.answers, &serials).len() < batches as usize, "some batch went unanswered");
    std::fs::remove_file(&filler).unwrap();
    // Space is back: each batch not yet acknowledged is sent again until it is.
    for k in 0..batches {
        for attempt in 0.. {
            assert!(attempt < 50, "batch {k} never acknowledged after space was freed");
            if acked(&term.answers, &serials).contains(&k) {
                break;
            }
            serials.insert(term.send(&batch(k)).await, k);
            term.listen(Duration::from_millis(500)).await;
        }
    }
    assert!(term.answers.iter().all(|(_, r)| *r == 0), "only success is ever answered: {:?}", term.answers);
    let vid: String = sqlx::query_scalar(
        &app.platform.state.store.sql("SELECT vehicle_id FROM transport_terminals WHERE phone = $1"),
    )
    .bind(PHONES[0])
    .fetch_one(app.platform.state.store.reader())
    .await
    .unwrap();
    let n: i64 =
        sqlx::query_scalar(&app.platform.state.store.sql(
            "SELECT COUNT(*) FROM transport_positions WHERE vehicle_id = $1 AND device_ms >= $2 AND device_ms < $3",
        ))
        .bind(vid)
        .bind(t0 * 1000)
        .bind((t0 + 28 * batches) * 1000)
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 28 * batches, "every acknowledged position is stored, once");
    assert!(!module.storage.degraded());
    assert_eq!(module.connections.list().len(), PHONES.len(), "no well-behaved terminal was dropped");
    app.platform.state.store.close().await;
}

/// A name no other test run uses at the same time.
fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), kernel::store::now_ms())
}
