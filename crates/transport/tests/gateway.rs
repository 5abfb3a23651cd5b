//! The JT/T 808 gateway over real sockets: register → authenticate → positions → 0x8001 →
//! visible through the API; refusals; sub-packaged batches; a garbage terminal among 100 good ones;
//! a 1 MiB frame, a flooding terminal and half-open connections, each closed alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jt808::framing::{FrameSplitter, Split};
use jt808::location::{DeciKmh, Heading, MicroDegrees};
use jt808::message::{Authenticate, LocationBatch, Register};
use jt808::{
    AlarmFlags, Decoder, Encoder, Header, Location, LocationFix, Message, Packet, Phone, StatusFlags, UtcTime,
};
use kernel::audit::Actor;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use transport::TransportModule;

struct Term {
    sock: TcpStream,
    phone: Phone,
    serial: u16,
    enc: Encoder,
    split: FrameSplitter,
    v2019: bool,
}

impl Term {
    async fn connect(addr: SocketAddr, phone: &str, v2019: bool) -> Term {
        let sock = TcpStream::connect(addr).await.unwrap();
        let phone = Phone::from_digits(phone, if v2019 { 10 } else { 6 }).unwrap();
        Term { sock, phone, serial: 0, enc: Encoder::default(), split: FrameSplitter::new(8192), v2019 }
    }

    fn header(&mut self) -> Header {
        self.serial = self.serial.wrapping_add(1);
        Header::new(0, self.phone, self.serial)
    }

    async fn send(&mut self, m: &Message) -> u16 {
        let h = self.header();
        let mut out = vec![];
        self.enc.encode(&h, m, &mut out).unwrap();
        self.sock.write_all(&out).await.unwrap();
        h.serial
    }

    async fn recv(&mut self) -> Packet {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(Split::Frame(f)) = self.split.next_frame() {
                return Decoder::default().packet(f).unwrap();
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.sock.read(&mut buf))
                .await
                .expect("a reply in time")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.split.extend(&buf[..n]);
        }
    }

    /// The result of the 0x8001 answering `serial`.
    async fn ack(&mut self, serial: u16) -> u8 {
        match self.recv().await.message {
            Message::PlatformResponse(r) => {
                assert_eq!(r.reply_serial, serial);
                r.result
            }
            other => panic!("expected 0x8001, got {other:?}"),
        }
    }

    async fn register(&mut self, plate: &str) -> (u8, String) {
        let reg = Register {
            province: 12,
            city: 114,
            maker: "70111".into(),
            model: "WQ-808".into(),
            terminal_id: "T1".into(),
            plate_color: 2,
            plate: plate.into(),
        };
        self.send(&Message::Register(reg)).await;
        match self.recv().await.message {
            Message::RegisterResponse(r) => (r.result, r.auth_code),
            other => panic!("expected 0x8100, got {other:?}"),
        }
    }

    async fn login(&mut self) {
        let (result, code) = self.register("").await;
        assert_eq!(result, 0);
        let s = self
            .send(&Message::Authenticate(Authenticate {
                auth_code: code,
                v2019: self.v2019.then(|| jt808::message::AuthExtension {
                    imei: "860000000000001".into(),
                    software_version: "1.0".into(),
                }),
            }))
            .await;
        assert_eq!(self.ack(s).await, 0, "authenticated");
    }
}

fn loc(t: i64, lat: f64, lon: f64, kmh: f64) -> Location {
    Location::new(LocationFix {
        alarm: AlarmFlags::empty(),
        status: StatusFlags::ACC_ON | StatusFlags::POSITIONED,
        latitude: MicroDegrees((lat * 1e6).round() as i32),
        longitude: MicroDegrees((lon * 1e6).round() as i32),
        altitude_m: 6,
        speed: DeciKmh((kmh * 10.0).round() as u16),
        heading: Heading(90),
        time: Some(UtcTime(t)),
    })
}

async fn start() -> (TestApp, TransportModule, SocketAddr) {
    start_with(|_| {}).await
}

/// The gateway with its limits adjusted by `tweak`.
async fn start_with(
    tweak: impl FnOnce(&mut transport::gateway::GatewayConfig),
) -> (TestApp, TransportModule, SocketAddr) {
    let mut module = TransportModule::with_gateway("127.0.0.1:0".parse().unwrap());
    module.gateway.idle_timeout = Duration::from_secs(30);
    tweak(&mut module.gateway);
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(module.clone())], |_| {}).await.unwrap();
    let _ = module.start(&app.platform.state, kernel::platform::CancellationToken::new()).await.unwrap();
    let addr = *module.bound.get().expect("gateway bound");
    (app, module, addr)
}

#[tokio::test]
async fn register_authenticate_report_and_see_it_through_the_api() {
    let (app, module, addr) = start().await;
    let now = kernel::store::now_ms() / 1000;
    let mut terms = vec![];
    for (phone, v2019) in [("13900000001", false), ("13900000002", true)] {
        let mut t = Term::connect(addr, phone, v2019).await;
        t.login().await;
        let s = t.send(&Message::Heartbeat).await;
        assert_eq!(t.ack(s).await, 0);
        let s = t.send(&Message::Location(loc(now, 39.381234, 117.041234, 56.7))).await;
        assert_eq!(t.ack(s).await, 0, "acknowledged after commit");
        // A retransmission (same report) is acknowledged and stored once.
        let s = t.send(&Message::Location(loc(now, 39.381234, 117.041234, 56.7))).await;
        assert_eq!(t.ack(s).await, 0);
        terms.push(t);
    }
    assert_eq!(module.connections.list().len(), 2);

    let op = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=500", &op).await;
    let vid = v["items"].as_array().unwrap().iter().find(|x| x["terminal_phone"] == "13900000001").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, live) = app.get("/api/transport/live?online=true", &op).await;
    let me = live.as_array().unwrap().iter().find(|x| x["vehicle_id"] == vid.as_str()).expect("online and live");
    assert_eq!(me["position"]["lat"], 39.381234);
    assert_eq!(me["position"]["speed_kmh"], 56.7);
    let from = kernel::store::ms_to_rfc3339((now - 60) * 1000);
    let to = kernel::store::ms_to_rfc3339((now + 60) * 1000);
    let (_, track) = app.get(&format!("/api/transport/vehicles/{vid}/track?from={from}&to={to}"), &op).await;
    assert_eq!(track["summary"]["points"], 1, "{track}");
    // Hanging up takes the vehicle offline.
    drop(terms);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(module.connections.list().is_empty());
    let (_, live) = app.get("/api/transport/live?online=true", &op).await;
    assert!(live.as_array().unwrap().is_empty(), "{live}");
}

#[tokio::test]
async fn refusals_unbound_unknown_wrong_code_and_unauthenticated_data() {
    let (app, _module, addr) = start().await;
    // A terminal registered but not bound to a vehicle: "no such vehicle".
    let op = app.login("shunda.zhao").await;
    let (s, _) = app.post("/api/transport/terminals", &op, serde_json::json!({"phone": "13911110000"})).await;
    assert_eq!(s, axum::http::StatusCode::CREATED);
    let mut t = Term::connect(addr, "13911110000", false).await;
    assert_eq!(t.register("").await.0, 2);
    // An unknown terminal: "no such terminal".
    let mut t = Term::connect(addr, "13922220000", false).await;
    assert_eq!(t.register("").await.0, 4);
    // A bound terminal claiming another plate.
    let mut t = Term::connect(addr, "13900000003", false).await;
    assert_eq!(t.register("津A00000").await.0, 1);
    // A wrong authentication code.
    let mut t = Term::connect(addr, "13900000004", false).await;
    let s = t.send(&Message::Authenticate(Authenticate { auth_code: "guess".into(), v2019: None })).await;
    assert_eq!(t.ack(s).await, 1);
    // Data before authentication is refused and not stored.
    let now = kernel::store::now_ms() / 1000;
    let s = t.send(&Message::Location(loc(now, 39.4, 117.0, 10.0))).await;
    assert_eq!(t.ack(s).await, 1);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The failed registrations and authentication are audited.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?outcome=failure&target_kind=terminal", &aud).await;
    assert_eq!(v["total"], 4, "{v}");
}

#[tokio::test]
async fn a_sub_packaged_batch_is_reassembled_and_stored() {
    let (app, _module, addr) = start().await;
    let mut t = Term::connect(addr, "13900000005", false).await;
    t.login().await;
    let base = kernel::store::now_ms() / 1000 - 3600;
    let locations: Vec<Location> = (0..40).map(|i| loc(base + i * 30, 39.38 + i as f64 * 1e-3, 117.04, 30.0)).collect();
    let batch = Message::LocationBatch(LocationBatch { kind: 1, locations });
    let h = t.header();
    let mut frames = vec![];
    t.enc.encode_split(&h, &batch, 400, &mut frames).unwrap();
    assert!(frames.len() >= 3, "{} packets", frames.len());
    t.serial = t.serial.wrapping_add(frames.len() as u16);
    let last_serial = h.serial.wrapping_add(frames.len() as u16 - 1);
    for f in &frames {
        t.sock.write_all(f).await.unwrap();
    }
    // One 0x8001 per packet; the last one answers for the stored message.
    let mut last = None;
    for _ in 0..frames.len() {
        if let Message::PlatformResponse(r) = t.recv().await.message {
            last = Some(r);
        }
    }
    let last = last.unwrap();
    assert_eq!((last.reply_serial, last.result), (last_serial, 0));
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 40);
}

#[tokio::test]
async fn a_garbage_terminal_is_dropped_while_a_hundred_others_keep_reporting() {
    let (app, _module, addr) = start().await;
    let st = &app.platform.state;
    let org = app.org_id("shunda").await;
    for i in 0..100 {
        let v = transport::registry::insert_vehicle(
            &st.store,
            Actor::cli("test"),
            &org,
            transport::registry::NewVehicle {
                org_id: None,
                plate: format!("津D{:05}", i),
                plate_colour: transport::model::PlateColour::Yellow,
                class: transport::model::VehicleClass::HeavyGoods,
                vin: None,
            },
        )
        .await
        .unwrap();
        let t = transport::registry::insert_terminal(
            &st.store,
            Actor::cli("test"),
            &org,
            transport::registry::NewTerminal {
                org_id: None,
                phone: format!("1370000{i:04}"),
                terminal_id: String::new(),
                maker: String::new(),
                model: String::new(),
            },
        )
        .await
        .unwrap();
        transport::registry::set_binding(&st.store, Actor::cli("test"), &t, Some(&v.id)).await.unwrap();
    }
    let mut good = vec![];
    for i in 0..100 {
        let mut t = Term::connect(addr, &format!("1370000{i:04}"), i % 2 == 0).await;
        t.login().await;
        good.push(t);
    }
    let mut bad = TcpStream::connect(addr).await.unwrap();
    let garbage: Vec<u8> = (0..200u32).flat_map(|i| [0x7e, (i % 251) as u8, 0x55, 0x7e]).collect();
    let spammer = tokio::spawn(async move {
        let _ = bad.write_all(&garbage).await;
        let mut buf = [0u8; 64];
        // The gateway closes the connection: read sees the end.
        loop {
            match tokio::time::timeout(Duration::from_secs(10), bad.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    });
    let now = kernel::store::now_ms() / 1000;
    for round in 0..3 {
        for (i, t) in good.iter_mut().enumerate() {
            let s = t.send(&Message::Location(loc(now + round, 39.3 + i as f64 * 1e-3, 117.0, 40.0))).await;
            assert_eq!(t.ack(s).await, 0, "terminal {i} round {round}");
        }
    }
    assert!(spammer.await.unwrap(), "the garbage terminal was disconnected");
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions").fetch_one(st.store.reader()).await.unwrap();
    assert_eq!(n, 300);
}

#[tokio::test]
async fn simulated_terminals_drive_and_are_acknowledged() {
    let (app, module, addr) = start().await;
    let stats = Arc::new(sim::Stats::default());
    let stop = kernel::platform::CancellationToken::new();
    let mut tasks = vec![];
    for (i, phone) in ["13900000011", "13900000012", "13900000013"].iter().enumerate() {
        let term = sim::SimTerminal {
            phone: phone.to_string(),
            v2019: i == 1,
            driver: sim::Driver::new(&sim::roads::ROADS[i], 0.3, sim::Behaviour::default()),
            interval: Duration::from_millis(200),
            plate: String::new(),
            card: None,
        };
        tasks.push(tokio::spawn(sim::run(addr, term, stats.clone(), stop.clone())));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stats.acked.load(std::sync::atomic::Ordering::Relaxed) < 15 {
        assert!(tokio::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(module.connections.list().len(), 3);
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT vehicle_id) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(stats.refused.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn commands_reach_the_terminal_and_their_answers_come_back() {
    let (app, _module, addr) = start().await;
    let mut t = Term::connect(addr, "13900000006", true).await;
    t.login().await;
    let op = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=500", &op).await;
    let vid = v["items"].as_array().unwrap().iter().find(|x| x["terminal_phone"] == "13900000006").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let offline = v["items"].as_array().unwrap().iter().find(|x| x["terminal_phone"] == "13900000007").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let call = |router: axum::Router, uri: String, token: String, body: serde_json::Value| async move {
        use tower::ServiceExt;
        let req = axum::http::Request::post(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    // Text with TTS: the terminal sees it and answers; the API reports delivery.
    let pending = tokio::spawn(call(
        app.router.clone(),
        format!("/api/transport/vehicles/{vid}/commands"),
        op.clone(),
        serde_json::json!({"kind": "text", "text": "您已连续驾驶3小时30分钟，请尽快休息", "tts": true}),
    ));
    let (h, m) = {
        let p = t.recv().await;
        (p.header, p.message)
    };
    match m {
        Message::TextMessage(tm) => {
            assert_eq!(tm.text, "您已连续驾驶3小时30分钟，请尽快休息");
            assert_eq!(tm.flags & 0x0c, 0x0c, "display and TTS");
        }
        other => panic!("expected 0x8300, got {other:?}"),
    }
    t.send(&Message::TerminalResponse(jt808::message::GeneralResponse {
        reply_serial: h.serial,
        reply_id: h.msg_id,
        result: 0,
    }))
    .await;
    let d = pending.await.unwrap();
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(0)), "{d}");

    // A position query is answered with a position, which is stored.
    let pending = tokio::spawn(call(
        app.router.clone(),
        format!("/api/transport/vehicles/{vid}/commands"),
        op.clone(),
        serde_json::json!({"kind": "query_location"}),
    ));
    let p = t.recv().await;
    assert_eq!(p.message, Message::QueryLocation);
    let now = kernel::store::now_ms() / 1000;
    t.send(&Message::LocationResponse { reply_serial: p.header.serial, location: loc(now, 39.39, 117.05, 0.0) }).await;
    let d = pending.await.unwrap();
    assert_eq!(d["delivered"], true, "{d}");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 1);

    // An offline vehicle: not delivered, said so. Another enterprise: not found.
    let d = call(
        app.router.clone(),
        format!("/api/transport/vehicles/{offline}/commands"),
        op.clone(),
        serde_json::json!({"kind": "text", "text": "hi"}),
    )
    .await;
    assert_eq!(d["delivered"], false);
    let bus = app.login("bus.sun").await;
    let (s, _) = app
        .post(&format!("/api/transport/vehicles/{vid}/commands"), &bus, serde_json::json!({"kind": "query_location"}))
        .await;
    assert_eq!(s, axum::http::StatusCode::NOT_FOUND);
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=vehicle.command", &aud).await;
    assert_eq!(v["total"], 3, "{v}");
}

impl Term {
    /// The next downlink command, skipping the platform's 0x8001s.
    async fn command(&mut self) -> Packet {
        loop {
            let p = self.recv().await;
            if !matches!(p.message, Message::PlatformResponse(_)) {
                return p;
            }
        }
    }

    /// Answers a command with 0x0001.
    async fn answer(&mut self, to: &Packet, result: u8) {
        let r = jt808::message::GeneralResponse { reply_serial: to.header.serial, reply_id: to.header.msg_id, result };
        self.send(&Message::TerminalResponse(r)).await;
    }

    /// Whatever the platform sends within `wait`, other than 0x8001s.
    async fn silence(&mut self, wait: Duration) -> Option<Packet> {
        tokio::time::timeout(wait, self.command()).await.ok()
    }
}

async fn vehicle_of(app: &TestApp, token: &str, phone: &str) -> String {
    let (_, v) = app.get("/api/transport/vehicles?limit=500", token).await;
    v["items"].as_array().unwrap().iter().find(|x| x["terminal_phone"] == phone).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A command through the API, in a task of its own so that the test can play the terminal.
fn command(
    app: &TestApp,
    token: &str,
    vid: &str,
    body: serde_json::Value,
) -> tokio::task::JoinHandle<serde_json::Value> {
    use tower::ServiceExt;
    let req = axum::http::Request::post(format!("/api/transport/vehicles/{vid}/commands"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        let resp = router.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), axum::http::StatusCode::OK);
        let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    })
}

async fn online(module: &TransportModule, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while module.connections.list().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "terminals online in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn parameters_set_through_the_api_are_read_back_from_a_simulated_terminal() {
    let (app, module, addr) = start().await;
    let stop = kernel::platform::CancellationToken::new();
    let term = sim::SimTerminal {
        phone: "13900000010".into(),
        v2019: true,
        driver: sim::Driver::new(&sim::roads::ROADS[0], 0.3, sim::Behaviour::default()),
        interval: Duration::from_secs(5),
        plate: String::new(),
        card: None,
    };
    let task = tokio::spawn(sim::run(addr, term, Arc::new(sim::Stats::default()), stop.clone()));
    online(&module, 1).await;
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000010").await;
    let uri = format!("/api/transport/vehicles/{vid}/commands");

    let (s, d) = app
        .post(
            &uri,
            &op,
            serde_json::json!({"kind": "set_parameters", "parameters": [
                {"id": 0x0001, "value": 30},
                {"id": 0x0055, "value": 80},
                {"id": 0x0031, "value": 500},
                {"id": 0x0084, "value": 2},
                {"id": 0x0013, "value": "jt808.wuqing.example:6808"},
                {"id": 0x0012, "value": "dial-secret"},
                {"id": 0xF001, "value": 7, "type": "word"},
            ]}),
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::OK);
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(0)), "{d}");
    assert!(d.get("parameters").is_none(), "only a query reports parameters: {d}");

    // All of them (0x8104): what was set, with the terminal's own report interval.
    let (_, d) = app.post(&uri, &op, serde_json::json!({"kind": "query_parameters"})).await;
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(0)), "{d}");
    let got: std::collections::HashMap<u64, serde_json::Value> =
        d["parameters"].as_array().unwrap().iter().map(|p| (p["id"].as_u64().unwrap(), p.clone())).collect();
    assert_eq!(got[&0x0001]["value"], 30, "{d}");
    assert_eq!(got[&0x0001]["name"], "heartbeat_interval_s");
    assert_eq!(got[&0x0001]["type"], "dword");
    assert_eq!(got[&0x0029]["value"], 5, "the simulator's report interval: {d}");
    assert_eq!(got[&0x0055]["value"], 80);
    assert_eq!((got[&0x0031]["value"].clone(), got[&0x0031]["type"].clone()), (500.into(), "word".into()));
    assert_eq!((got[&0x0084]["value"].clone(), got[&0x0084]["type"].clone()), (2.into(), "byte".into()));
    assert_eq!(got[&0x0013]["value"], "jt808.wuqing.example:6808");
    // Outside table 12: reported as the bytes it is.
    assert_eq!((got[&0xF001]["value"].clone(), got[&0xF001]["type"].clone()), ("0007".into(), "bytes".into()));

    // Some of them (0x8106).
    let (_, d) = app.post(&uri, &op, serde_json::json!({"kind": "query_parameters", "ids": [0x0055, 0x0056]})).await;
    assert_eq!(
        d["parameters"],
        serde_json::json!([{"id": 0x0055, "name": "max_speed_kmh", "type": "dword", "value": 80}]),
        "{d}"
    );

    // Areas and routes are acknowledged by the simulator.
    let (_, d) = app
        .post(
            &uri,
            &op,
            serde_json::json!({"kind": "set_circle_areas", "areas": [
                {"id": 1, "center": {"lat": 39.381, "lon": 117.041}, "radius_m": 300, "name": "杨村站"}]}),
        )
        .await;
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(0)), "{d}");

    // The audit log has the command, without the dial password.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=vehicle.command", &aud).await;
    assert_eq!(v["total"], 4, "{v}");
    let text = v.to_string();
    assert!(text.contains("jt808.wuqing.example:6808") && !text.contains("dial-secret"), "{v}");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn areas_and_routes_reach_the_terminal_in_its_edition_and_a_refusal_is_reported() {
    let (app, _module, addr) = start().await;
    let mut t19 = Term::connect(addr, "13900000008", true).await;
    t19.login().await;
    let mut t13 = Term::connect(addr, "13900000009", false).await;
    t13.login().await;
    let op = app.login("shunda.zhao").await;
    let (v19, v13) = (vehicle_of(&app, &op, "13900000008").await, vehicle_of(&app, &op, "13900000009").await);
    let circle = serde_json::json!({"kind": "set_circle_areas", "mode": "replace", "areas": [{
        "id": 11, "center": {"lat": 39.381234, "lon": 117.041234}, "radius_m": 250, "name": "危化品停车场",
        "start": "2026-12-01T08:00:00+08:00", "end": "2026-12-31T18:00:00+08:00",
        "speed_limit": {"max_kmh": 30, "overspeed_duration_s": 10, "night_max_kmh": 20},
        "flags": ["enter_alarm_to_platform", "exit_alarm_to_platform"]}]});

    // 2019: the name and the night limit go out.
    let pending = command(&app, &op, &v19, circle.clone());
    let p = t19.command().await;
    let Message::SetCircleAreas(s) = &p.message else { panic!("expected 0x8600, got {:?}", p.message) };
    assert_eq!(s.mode, 0);
    let a = &s.areas[0];
    assert_eq!((a.id, a.center.lat, a.center.lon, a.radius_m), (11, 39_381_234, 117_041_234, 250));
    assert_eq!(a.attributes, 0b11 | 1 << 3 | 1 << 5, "time, speed, enter and exit alarms to the platform");
    assert_eq!(a.name.as_deref(), Some("危化品停车场"));
    assert_eq!(a.speed.unwrap().night_max_kmh, Some(20));
    assert_eq!(a.window.unwrap().start.0, [0x26, 0x12, 0x01, 0x08, 0x00, 0x00], "GMT+8");
    t19.answer(&p, 0).await;
    let d = pending.await.unwrap();
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(0)), "{d}");

    // 2013: the same command in the 2013 layout.
    let pending = command(&app, &op, &v13, circle);
    let p = t13.command().await;
    let Message::SetCircleAreas(s) = &p.message else { panic!("expected 0x8600, got {:?}", p.message) };
    assert_eq!((s.areas[0].center.lat, s.areas[0].name.clone()), (39_381_234, None));
    assert_eq!(s.areas[0].speed.unwrap().night_max_kmh, None);
    t13.answer(&p, 0).await;
    assert_eq!(pending.await.unwrap()["result"], 0);

    // A route the terminal does not support: reported as such.
    let route = serde_json::json!({"kind": "set_route", "id": 3, "name": "G103", "points": [
        {"lat": 39.38, "lon": 117.04, "width_m": 30, "speed_limit": {"max_kmh": 60, "overspeed_duration_s": 5}},
        {"lat": 39.40, "lon": 117.06, "width_m": 30, "drive_time": {"too_long_s": 600, "too_short_s": 60}},
        {"lat": 39.42, "lon": 117.06, "width_m": 30}]});
    let pending = command(&app, &op, &v19, route);
    let p = t19.command().await;
    let Message::SetRoute(r) = &p.message else { panic!("expected 0x8606, got {:?}", p.message) };
    assert_eq!((r.id, r.points.len(), r.name.as_deref()), (3, 3, Some("G103")));
    assert_eq!((r.points[1].point_id, r.points[1].segment_id, r.points[1].drive_time), (2, 2, Some((600, 60))));
    assert_eq!(r.points[0].point.lon, 117_040_000);
    t19.answer(&p, 3).await;
    let d = pending.await.unwrap();
    assert_eq!((d["delivered"].as_bool(), d["result"].as_u64()), (Some(true), Some(3)), "{d}");
    assert_eq!(d["detail"], "the terminal does not support it");

    // Polygons, rectangles and deletes map to their messages.
    let cases = [
        (
            serde_json::json!({"kind": "set_polygon_area", "id": 4, "vertices": [
                {"lat": 39.3, "lon": 117.0}, {"lat": 39.4, "lon": 117.0}, {"lat": 39.4, "lon": 117.1}]}),
            jt808::message::ids::SET_POLYGON_AREA,
        ),
        (
            serde_json::json!({"kind": "set_rectangle_areas", "areas": [
                {"id": 5, "top_left": {"lat": 39.4, "lon": 117.0}, "bottom_right": {"lat": 39.3, "lon": 117.1}}]}),
            jt808::message::ids::SET_RECTANGLE_AREAS,
        ),
        (serde_json::json!({"kind": "delete_areas", "shape": "circle", "ids": [11]}), 0x8601),
        (serde_json::json!({"kind": "delete_areas", "shape": "rectangle", "all": true}), 0x8603),
        (serde_json::json!({"kind": "delete_areas", "shape": "polygon", "ids": [4]}), 0x8605),
        (serde_json::json!({"kind": "delete_routes", "ids": [3]}), 0x8607),
    ];
    for (body, id) in cases {
        let pending = command(&app, &op, &v19, body.clone());
        let p = t19.command().await;
        assert_eq!(p.header.msg_id, id, "{body}");
        t19.answer(&p, 0).await;
        assert_eq!(pending.await.unwrap()["result"], 0, "{body}");
    }
    let pending =
        command(&app, &op, &v19, serde_json::json!({"kind": "delete_areas", "shape": "rectangle", "all": true}));
    let p = t19.command().await;
    assert_eq!(p.message, Message::DeleteRectangleAreas(vec![]), "0 ids: all");
    t19.answer(&p, 0).await;
    pending.await.unwrap();

    // A parameter query answered by a hand-driven terminal's 0x0104.
    let pending = command(&app, &op, &v19, serde_json::json!({"kind": "query_parameters", "ids": [1, 0x0083]}));
    let p = t19.command().await;
    assert_eq!(p.message, Message::QueryParameters(vec![1, 0x0083]));
    let parameters = vec![
        jt808::message::Parameter { id: 1, value: vec![0, 0, 0, 45] },
        jt808::message::Parameter::text(0x0083, "津C80008").unwrap(),
    ];
    t19.send(&Message::ParametersResponse { reply_serial: p.header.serial, parameters }).await;
    let d = pending.await.unwrap();
    assert_eq!(d["parameters"][0]["value"], 45, "{d}");
    assert_eq!(d["parameters"][1]["value"], "津C80008", "{d}");
}

#[tokio::test]
async fn bad_commands_are_refused_before_anything_is_sent() {
    let (app, _module, addr) = start().await;
    let mut t = Term::connect(addr, "13900000008", true).await;
    t.login().await;
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000008").await;
    let uri = format!("/api/transport/vehicles/{vid}/commands");
    let many = |n: u32| (0..n).collect::<Vec<u32>>();
    let circle = |c: serde_json::Value| serde_json::json!({"kind": "set_circle_areas", "areas": [c]});
    let bad = [
        serde_json::json!({"kind": "set_parameters", "parameters": []}),
        serde_json::json!({"kind": "set_parameters"}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 0x0031, "value": 70000}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 0xF001, "value": 5}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 1, "value": -5}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 1, "value": 2.5}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 1, "value": "30"}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 1, "value": 30, "unit": "s"}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 1, "value": 30}, {"id": 1, "value": 31}]}),
        serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 0x55, "value": 80, "type": "word"}]}),
        serde_json::json!({"kind": "query_parameters", "ids": "all"}),
        serde_json::json!({"kind": "query_parameters", "ids": many(256)}),
        serde_json::json!({"kind": "query_parameters", "ids": [-1]}),
        circle(serde_json::json!({"id": 1, "center": {"lat": 91.0, "lon": 117.0}, "radius_m": 100})),
        circle(serde_json::json!({"id": 1, "center": {"lat": 39.0, "lon": 117.0}, "radius_m": 0})),
        circle(serde_json::json!({"id": 1, "center": {"lat": 39.0}, "radius_m": 10})),
        circle(serde_json::json!({"id": 1, "center": {"lat": 39.0, "lon": 117.0}, "radius_m": 10,
                "start": "tomorrow", "end": "later"})),
        circle(
            serde_json::json!({"id": 1, "center": {"lat": 39.0, "lon": 117.0}, "radius_m": 10, "flags": ["explode"]}),
        ),
        serde_json::json!({"kind": "set_circle_areas", "areas": []}),
        serde_json::json!({"kind": "set_rectangle_areas", "areas": [
            {"id": 1, "top_left": {"lat": 39.3, "lon": 117.0}, "bottom_right": {"lat": 39.4, "lon": 117.1}}]}),
        serde_json::json!({"kind": "set_polygon_area", "id": 1,
            "vertices": [{"lat": 39.3, "lon": 117.0}, {"lat": 39.4, "lon": 117.0}]}),
        serde_json::json!({"kind": "set_route", "id": 1, "points": [{"lat": 39.3, "lon": 117.0, "width_m": 20}]}),
        serde_json::json!({"kind": "set_route", "id": 1, "points": [
            {"lat": 39.3, "lon": 117.0, "width_m": 0}, {"lat": 39.4, "lon": 117.0, "width_m": 20}]}),
        serde_json::json!({"kind": "set_route", "id": 1, "points": [
            {"lat": 39.3, "lon": 117.0, "width_m": 300}, {"lat": 39.4, "lon": 117.0, "width_m": 20}]}),
        serde_json::json!({"kind": "delete_areas", "shape": "triangle", "ids": [1]}),
        serde_json::json!({"kind": "delete_areas", "shape": "circle"}),
        serde_json::json!({"kind": "delete_routes", "ids": many(126)}),
        serde_json::json!({"kind": "delete_routes", "ids": [1], "all": true}),
    ];
    for body in &bad {
        let (s, p) = app.post(&uri, &op, body.clone()).await;
        assert_eq!(s, axum::http::StatusCode::UNPROCESSABLE_ENTITY, "{body} → {p}");
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body} → {p}");
    }
    // Not even JSON.
    let (s, _) = app
        .call_raw(
            axum::http::Method::POST,
            &uri,
            Some(&op),
            Some(br#"{"kind": "set_route", "#.to_vec()),
            Some("application/json"),
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::BAD_REQUEST);
    // A clear problem names the field.
    let (s, p) = app
        .post(&uri, &op, serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 49, "value": 70000}]}))
        .await;
    assert_eq!(s, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "parameters[0].value", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("WORD: 0 to 65535, not 70000"), "{p}");
    // The terminal heard none of it.
    assert_eq!(t.silence(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn new_commands_to_an_offline_or_foreign_vehicle() {
    let (app, _module, _addr) = start().await;
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000008").await;
    let uri = format!("/api/transport/vehicles/{vid}/commands");
    let set = serde_json::json!({"kind": "set_parameters", "parameters": [{"id": 0x0029, "value": 10}]});
    let (s, d) = app.post(&uri, &op, set.clone()).await;
    assert_eq!(s, axum::http::StatusCode::OK);
    assert_eq!((d["delivered"].as_bool(), d["detail"].as_str()), (Some(false), Some("the terminal is offline")), "{d}");
    // Another enterprise's operator: the vehicle does not exist for them.
    let bus = app.login("bus.sun").await;
    for body in [
        set.clone(),
        serde_json::json!({"kind": "query_parameters"}),
        serde_json::json!({"kind": "delete_routes", "all": true}),
    ] {
        let (s, _) = app.post(&uri, &bus, body).await;
        assert_eq!(s, axum::http::StatusCode::NOT_FOUND);
    }
    // The transport bureau's regulator may message the driver and ask, but not reconfigure the
    // terminal (its server address, limits and fences belong to the enterprise that runs it).
    let reg = app.login("jt.liu").await;
    let (s, d) = app.post(&uri, &reg, serde_json::json!({"kind": "text", "text": "请靠边停车"})).await;
    assert_eq!((s, d["delivered"].as_bool()), (axum::http::StatusCode::OK, Some(false)), "{d}");
    let (s, _) = app.post(&uri, &reg, serde_json::json!({"kind": "query_parameters"})).await;
    assert_eq!(s, axum::http::StatusCode::OK);
    for body in [set, serde_json::json!({"kind": "delete_routes", "all": true})] {
        let (s, p) = app.post(&uri, &reg, body).await;
        assert_eq!(s, axum::http::StatusCode::FORBIDDEN, "{p}");
    }
}

/// The issue's end-to-end path for fatigue: a terminal uploads 4 h 10 min of driving without a
/// rest (blind-area batches), the rules raise a pre-warning at 3 h 30 min that the terminal
/// receives as TTS text and acknowledges (its delivery joins the alarm), then the fatigue alarm
/// at 4 h that the enterprise's operator acknowledges, handles and closes on the desk.
#[tokio::test]
async fn driving_without_rest_reaches_the_driver_as_tts_and_the_desk_as_an_alarm() {
    let mut module = TransportModule::with_gateway("127.0.0.1:0".parse().unwrap());
    module.alerting = true;
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let app = TestApp::spawn_with(Backend::Sqlite, modules.clone(), |_| {}).await.unwrap();
    let stop = kernel::platform::CancellationToken::new();
    for m in &modules {
        let _ = m.start(&app.platform.state, stop.clone()).await.unwrap();
    }
    let addr = *module.bound.get().expect("gateway bound");
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000001").await;

    let mut t = Term::connect(addr, "13900000001", true).await;
    t.login().await;
    // By day (10:00 local, 02:00 UTC), so that the 4 h limit applies whenever the test runs.
    let latest = kernel::store::now_ms() / 1000 - 5 * 3600;
    let mut start = latest - latest.rem_euclid(86_400) + 2 * 3600;
    if start > latest {
        start -= 86_400;
    }
    let fixes: Vec<Location> = (0..250).map(|m| loc(start + m * 60, 39.38, 117.0 + m as f64 * 0.01, 60.0)).collect();
    let mut downlinks = std::collections::VecDeque::new();
    for chunk in fixes.chunks(25) {
        let s = t.send(&Message::LocationBatch(LocationBatch { kind: 1, locations: chunk.to_vec() })).await;
        // Commands may come between the acknowledgements: keep them for later.
        loop {
            let p = t.recv().await;
            match p.message {
                Message::PlatformResponse(r) if r.reply_serial == s => {
                    assert_eq!(r.result, 0);
                    break;
                }
                _ => downlinks.push_back(p),
            }
        }
    }
    // The pre-warning, read aloud.
    let p = match downlinks.pop_front() {
        Some(p) => p,
        None => t.command().await,
    };
    let Message::TextMessage(text) = &p.message else { panic!("expected 0x8300, got {:?}", p.message) };
    assert!(text.flags & 0x08 != 0, "the TTS flag: {:#04x}", text.flags);
    // At the first report past 3 h 30 min (one a minute here).
    assert!(text.text.starts_with("您已连续驾驶3小时3"), "{}", text.text);
    assert!(text.text.contains("休息"), "{}", text.text);
    t.answer(&p, 0).await;

    // On the desk: the pre-warning with its delivery, and the fatigue alarm.
    let find = |kind: &'static str| {
        let (app, op, vid) = (&app, &op, &vid);
        async move {
            for _ in 0..100 {
                let (_, v) = app.get(&format!("/api/alarms?subject_id={vid}&kind={kind}"), op).await;
                if v["total"] == 1 {
                    return v["items"][0]["id"].as_str().unwrap().to_string();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no {kind} alarm");
        }
    };
    let pre = find("fatigue_continuous_pre_warning").await;
    let mut note = String::new();
    for _ in 0..100 {
        let (_, v) = app.get(&format!("/api/alarms/{pre}"), &op).await;
        if let Some(n) = v["steps"].as_array().unwrap().iter().find(|s| s["step"] == "notified") {
            note = n["note"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(note.starts_with("TTS delivered"), "{note:?}");
    let fatigue = find("fatigue_continuous").await;
    for (step, body) in [
        ("acknowledge", serde_json::json!({})),
        ("handle", serde_json::json!({"action": "phoned_driver", "note": "已电话要求驾驶员就近休息"})),
        ("close", serde_json::json!({})),
    ] {
        let (s, v) = app.post(&format!("/api/alarms/{fatigue}/{step}"), &op, body).await;
        assert_eq!(s, axum::http::StatusCode::OK, "{step}: {v}");
    }
    let (_, v) = app.get(&format!("/api/alarms/{fatigue}"), &op).await;
    assert_eq!(v["status"], "closed");
    stop.cancel();
}

/// The demo scenario file end to end: its speeders (13900000001 at 1.4 × the road speed from
/// the start, 13900000005 with a 1.5 × episode after 30 s) drive ten minutes that they upload as
/// blind-area batches; the rules raise an overspeed alarm for each vehicle, and the owning
/// enterprise's operator acknowledges, handles and closes one on the desk.
#[tokio::test]
async fn the_demo_scenario_files_speeders_raise_overspeed_alarms_handled_on_the_desk() {
    let mut module = TransportModule::with_gateway("127.0.0.1:0".parse().unwrap());
    module.alerting = true;
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let app = TestApp::spawn_with(Backend::Sqlite, modules.clone(), |_| {}).await.unwrap();
    let stop = kernel::platform::CancellationToken::new();
    for m in &modules {
        let _ = m.start(&app.platform.state, stop.clone()).await.unwrap();
    }
    let addr = *module.bound.get().expect("gateway bound");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios/demo.toml");
    let phones: Vec<String> = (1..=20).map(|i| format!("139000000{i:02}")).collect();
    let plans = sim::Scenario::load(&path).unwrap().plans(&phones).unwrap();
    let stats = Arc::new(sim::Stats::default());
    let sims = kernel::platform::CancellationToken::new();
    for (i, phone) in ["13900000001", "13900000005"].iter().enumerate() {
        let driver = sim::Driver::new(&sim::roads::ROADS[i], 0.2, sim::Behaviour::default()).with_plan(plans[*phone]);
        let term = sim::SimTerminal {
            phone: phone.to_string(),
            v2019: i == 1,
            driver,
            interval: Duration::from_secs(5),
            plate: String::new(),
            card: None,
        };
        tokio::spawn(sim::run_with_backlog(addr, term, stats.clone(), sims.clone(), 600));
    }
    let mut tokens = std::collections::HashMap::new();
    for phone in ["13900000001", "13900000005"] {
        // Whoever owns the vehicle handles its alarms: find the enterprise's operator.
        let regulator = app.login("jt.liu").await;
        let vid = vehicle_of(&app, &regulator, phone).await;
        let mut alarm = serde_json::Value::Null;
        for _ in 0..300 {
            let (_, v) = app.get(&format!("/api/alarms?subject_id={vid}"), &regulator).await;
            if let Some(a) = v["items"].as_array().and_then(|a| a.iter().find(|a| a["kind"] == "overspeed")) {
                alarm = a.clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(alarm.is_object(), "no overspeed alarm for {phone} ({vid}); sim {stats:?}");
        assert!(
            alarm["details"]["max_speed_kmh"].as_f64().unwrap_or(0.0) > alarm["details"]["limit_kmh"].as_f64().unwrap(),
            "{alarm}"
        );
        tokens.insert(
            phone,
            (vid, alarm["id"].as_str().unwrap().to_string(), alarm["org_id"].as_str().unwrap().to_string()),
        );
    }
    sims.cancel();
    // The owning enterprise's operator works the first one through the desk.
    let (_, id, org) = &tokens["13900000001"];
    let mut operator = None;
    for (user, key) in [("shunda.zhao", "shunda"), ("bus.sun", "wuqing_bus"), ("coach.zhou", "jingjin_coach")] {
        if app.org_id(key).await == *org {
            operator = Some(user);
        }
    }
    let operator = operator.expect("an operator of the owning enterprise");
    let op = app.login(operator).await;
    let (s, v) = app.post(&format!("/api/alarms/{id}/acknowledge"), &op, serde_json::json!({})).await;
    assert_eq!(s, axum::http::StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            &format!("/api/alarms/{id}/handle"),
            &op,
            serde_json::json!({"action": "phoned_driver", "note": "已电话提醒驾驶员减速"}),
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::OK, "{v}");
    let (s, v) = app.post(&format!("/api/alarms/{id}/close"), &op, serde_json::json!({})).await;
    assert_eq!((s, v["status"].as_str()), (axum::http::StatusCode::OK, Some("closed")), "{v}");
    stop.cancel();
}

#[tokio::test]
async fn a_drivers_card_shows_who_drives_with_the_certificate_masked() {
    let (app, module, addr) = start().await;
    let stop = kernel::platform::CancellationToken::new();
    let card = jt808::message::DriverCard {
        name: "王建国".into(),
        certificate: "120114198001011234".into(),
        issuer: "天津市交通运输委员会".into(),
        valid_until: [0x20, 0x29, 0x12, 0x31],
        id_card: None,
    };
    let term = sim::SimTerminal {
        phone: "13900000011".into(),
        v2019: false,
        driver: sim::Driver::new(&sim::roads::ROADS[0], 0.5, sim::Behaviour::default()),
        interval: Duration::from_secs(5),
        plate: String::new(),
        card: Some(card),
    };
    let task = tokio::spawn(sim::run(addr, term, Arc::new(sim::Stats::default()), stop.clone()));
    online(&module, 1).await;
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000011").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let driver = loop {
        let (_, live) = app.get("/api/transport/live", &op).await;
        let v = live.as_array().unwrap().iter().find(|v| v["vehicle_id"] == vid.as_str()).cloned().unwrap();
        if !v["driver"].is_null() {
            break v["driver"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the driver appears: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(driver, serde_json::json!({"name": "王建国", "certificate": "120114********1234"}));
    stop.cancel();
    let _ = task.await;
}

/// Reads until the gateway closes the connection (end of stream or reset); false if it is still
/// open after `wait`.
async fn closed_by_gateway(sock: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Neighbours report `rounds` times each and every report is acknowledged.
async fn neighbours_report(terms: &mut [Term], t0: i64, rounds: i64) {
    for round in 0..rounds {
        for (i, t) in terms.iter_mut().enumerate() {
            let s = t.send(&Message::Location(loc(t0 + round, 39.3 + i as f64 * 1e-3, 117.0, 40.0))).await;
            assert_eq!(t.ack(s).await, 0, "neighbour {i} round {round}");
        }
    }
}

#[tokio::test]
async fn a_one_mebibyte_frame_is_refused_alone_while_the_neighbours_are_acknowledged() {
    let (app, _module, addr) = start().await;
    let mut good = vec![];
    for (i, p) in ["13900000001", "13900000002", "13900000003"].into_iter().enumerate() {
        let mut t = Term::connect(addr, p, i == 1).await;
        t.login().await;
        good.push(t);
    }
    // 1 MiB without a delimiter, and one 1 MiB frame between delimiters.
    let mut spammers = vec![];
    for delimited in [false, true] {
        let mut bytes = vec![0x55u8; 1 << 20];
        if delimited {
            bytes.insert(0, 0x7e);
            bytes.push(0x7e);
        }
        let mut sock = TcpStream::connect(addr).await.unwrap();
        spammers.push(tokio::spawn(async move {
            // The gateway may close the connection before it has all: a failed write is fine.
            let _ = sock.write_all(&bytes).await;
            closed_by_gateway(&mut sock, Duration::from_secs(20)).await
        }));
    }
    let now = kernel::store::now_ms() / 1000;
    neighbours_report(&mut good, now, 5).await;
    for s in spammers {
        assert!(s.await.unwrap(), "the 1 MiB sender was disconnected");
    }
    neighbours_report(&mut good, now + 5, 2).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 21);
}

/// A terminal that reports far above its rate (here 600 reports back to back against a limit of
/// 5 frames a second over 10 s, i.e. 50) is closed by the frame-rate limit; the others are not.
#[tokio::test]
async fn a_terminal_flooding_reports_is_closed_by_the_frame_rate_limit_while_the_neighbours_are_acknowledged() {
    let (app, module, addr) = start_with(|g| g.max_frames_per_sec = 5).await;
    let mut good = vec![];
    for (i, p) in ["13900000001", "13900000002"].into_iter().enumerate() {
        let mut t = Term::connect(addr, p, i == 1).await;
        t.login().await;
        good.push(t);
    }
    let mut flood = Term::connect(addr, "13900000003", false).await;
    flood.login().await;
    let now = kernel::store::now_ms() / 1000;
    let mut frames = vec![];
    for k in 0..600i64 {
        let h = flood.header();
        Encoder::default().encode(&h, &Message::Location(loc(now - 3600 + k, 39.4, 117.1, 30.0)), &mut frames).unwrap();
    }
    let mut sock = flood.sock;
    let flooder = tokio::spawn(async move {
        let _ = sock.write_all(&frames).await;
        closed_by_gateway(&mut sock, Duration::from_secs(20)).await
    });
    // The neighbours send far less than the limit (5 + 2 logins and reports in 10 s at most).
    neighbours_report(&mut good, now, 2).await;
    assert!(flooder.await.unwrap(), "the flooding terminal was disconnected");
    let online: Vec<String> = module.connections.list().into_iter().map(|c| c.phone).collect();
    assert_eq!(online, vec!["13900000001".to_string(), "13900000002".to_string()]);
    // The flooder got no further than the limit: at most 50 frames in the window (its login
    // counted), so at most 49 reports stored.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert!(stored <= 4 + 49, "{stored}");
}

/// Half-open connections: one that never speaks, one that stops in the middle of a frame, and an
/// authenticated terminal that goes silent are all closed by the idle time-out (short here) and
/// leave the registry of who is online; a terminal that keeps its heartbeats is kept.
#[tokio::test]
async fn half_open_connections_are_closed_by_the_idle_timeout_and_leave_nothing_behind() {
    let (_app, module, addr) = start_with(|g| g.idle_timeout = Duration::from_millis(1500)).await;
    let mut alive = Term::connect(addr, "13900000001", false).await;
    alive.login().await;
    let mut silent_terminal = Term::connect(addr, "13900000002", true).await;
    silent_terminal.login().await;
    assert_eq!(module.connections.list().len(), 2);
    let mute = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    // A frame's start: the delimiter and half a header.
    partial.write_all(&[0x7e, 0x02, 0x00, 0x00, 0x1c, 0x01, 0x38]).await.unwrap();
    let watch =
        |mut s: TcpStream| tokio::spawn(async move { closed_by_gateway(&mut s, Duration::from_secs(30)).await });
    let (mute, partial) = (watch(mute), watch(partial));
    let silent =
        tokio::spawn(async move { closed_by_gateway(&mut silent_terminal.sock, Duration::from_secs(30)).await });
    // Meanwhile the live terminal beats every 200 ms, well inside the time-out.
    while !(mute.is_finished() && partial.is_finished() && silent.is_finished()) {
        let s = alive.send(&Message::Heartbeat).await;
        assert_eq!(alive.ack(s).await, 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(mute.await.unwrap(), "a connection that never spoke was closed");
    assert!(partial.await.unwrap(), "a connection stalled mid-frame was closed");
    assert!(silent.await.unwrap(), "a silent terminal was closed");
    let online: Vec<String> = module.connections.list().into_iter().map(|c| c.phone).collect();
    assert_eq!(online, vec!["13900000001".to_string()], "the silent terminal left the registry");
    let s = alive.send(&Message::Heartbeat).await;
    assert_eq!(alive.ack(s).await, 0, "the live terminal was kept");
}

/// Reports that arrive together (a terminal catching up after the platform was slow, or one that
/// sent a report again before its answer came) are stored in one job: before, each report waited
/// for a commit of its own, so a connection drained its backlog one commit at a time and a
/// fleet under overload fell further behind the more it retransmitted.
#[tokio::test]
async fn reports_that_arrive_together_are_stored_together_and_each_is_answered() {
    let (app, module, addr) = start().await;
    let mut t = Term::connect(addr, "13900000001", false).await;
    t.login().await;
    let t0 = kernel::store::now_ms() / 1000 - 100;
    // Twenty reports and a retransmission of the fifth, in one write.
    let mut wire = vec![];
    let mut serials = vec![];
    for k in (0..20).chain([4]) {
        let h = t.header();
        serials.push(h.serial);
        t.enc.encode(&h, &Message::Location(loc(t0 + k, 39.38 + k as f64 * 1e-4, 117.04, 40.0)), &mut wire).unwrap();
    }
    let commits = module.storage.commits();
    t.sock.write_all(&wire).await.unwrap();
    let mut answered = vec![];
    for _ in &serials {
        match t.recv().await.message {
            Message::PlatformResponse(r) => {
                assert_eq!(r.result, 0);
                answered.push(r.reply_serial);
            }
            other => panic!("expected 0x8001, got {other:?}"),
        }
    }
    assert_eq!(answered, serials, "every report answered, in order");
    let used = module.storage.commits() - commits;
    assert!(used < 21, "{used} commits for 21 reports sent together");
    let op = app.login("shunda.zhao").await;
    let vid = vehicle_of(&app, &op, "13900000001").await;
    let (from, to) = (kernel::store::ms_to_rfc3339(t0 * 1000), kernel::store::ms_to_rfc3339((t0 + 60) * 1000));
    let (_, track) = app.get(&format!("/api/transport/vehicles/{vid}/track?from={from}&to={to}"), &op).await;
    assert_eq!(track["summary"]["points"], 20, "the retransmission stored once: {track}");

    // A report without a time among them is refused alone; the others are stored and answered.
    let mut wire = vec![];
    let mut expect = vec![];
    for k in 0..3 {
        let mut l = loc(t0 + 30 + k, 39.39, 117.04, 40.0);
        if k == 1 {
            l.fix.time = None;
        }
        let h = t.header();
        expect.push((h.serial, if k == 1 { 2 } else { 0 }));
        t.enc.encode(&h, &Message::Location(l), &mut wire).unwrap();
    }
    t.sock.write_all(&wire).await.unwrap();
    let mut got = vec![];
    for _ in 0..3 {
        match t.recv().await.message {
            Message::PlatformResponse(r) => got.push((r.reply_serial, r.result)),
            other => panic!("expected 0x8001, got {other:?}"),
        }
    }
    got.sort();
    assert_eq!(got, expect);
    let (_, track) = app.get(&format!("/api/transport/vehicles/{vid}/track?from={from}&to={to}"), &op).await;
    assert_eq!(track["summary"]["points"], 22, "{track}");
}
