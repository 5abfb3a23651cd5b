//! The JT/T 808 gateway over real sockets: register → authenticate → positions → 0x8001 →
//! visible through the API; refusals; sub-packaged batches; a garbage terminal among 100 good ones.
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
    let mut module = TransportModule::with_gateway("127.0.0.1:0".parse().unwrap());
    module.gateway.idle_timeout = Duration::from_secs(30);
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
