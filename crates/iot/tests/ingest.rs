//! Sensor ingestion end to end: the registry and its scope, HTTP uploads with device
//! credentials, the platform's own MQTT endpoint (a PUBACK only after the readings are stored),
//! an external broker (the local Mosquitto, when `WUQING_TEST_MQTT` is set), and a threshold
//! crossed → an alarm on the desk, ended when the value comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{Method, StatusCode};
use iot::IotModule;
use kernel::module::Module;
use kernel::platform::CancellationToken;
use kernel::store::now_ms;
use kernel::testing::{Backend, TestApp};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn basic(code: &str, secret: &str) -> String {
    format!("Basic {}", data_encoding::BASE64.encode(format!("{code}:{secret}").as_bytes()))
}

async fn upload(app: &TestApp, auth: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut b = axum::http::Request::builder().method(Method::POST).uri("/api/iot/ingest");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let req = b.header("content-type", "application/json").body(Body::from(body.to_vec())).unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The demo's device secrets, from the file the seed wrote.
fn demo_secret(app: &TestApp, code: &str) -> String {
    let text = std::fs::read_to_string(app.dir.path().join("demo-devices.txt")).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{code} "))).unwrap();
    line.split_once(' ').unwrap().1.to_string()
}

async fn spawn(
    backend: Backend,
    module: &IotModule,
    tweak: impl FnOnce(&mut kernel::config::RawConfig),
) -> Option<TestApp> {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    TestApp::spawn_with(backend, modules, tweak).await
}

/// Registers a refrigerated body's probe for Shunda; returns (device id, code, secret).
async fn register(app: &TestApp, token: &str, code: &str) -> (String, String) {
    let (s, v) = app
        .post(
            "/api/iot/devices",
            token,
            json!({"code": code, "kind": "reefer_probe", "name": "冷藏车厢探头 Reefer probe",
                   "subject_type": "cold_store", "subject_label": "津C·D1234 冷藏车厢"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (v["device"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

async fn wait_alarm(app: &TestApp, token: &str, device: &str, kind: &str, ended: bool) -> Value {
    for _ in 0..200 {
        let (_, v) = app.get(&format!("/api/alarms?subject_id={device}&kind={kind}"), token).await;
        if let Some(a) = v["items"].as_array().and_then(|a| a.first()) {
            if !ended || !a["ended_at"].is_null() {
                return a.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} alarm (ended: {ended}) for {device}");
}

async fn registry_and_http(backend: Backend) {
    let module = IotModule::default();
    let Some(app) = spawn(backend, &module, |_| {}).await else { return };
    let shunda = app.login("shunda.zhao").await;
    let bus = app.login("bus.sun").await;
    let regulator = app.login("jt.liu").await;
    let (id, secret) = register(&app, &shunda, "SD-REEFER-01").await;

    // The registry's scope: the owner and its regulator see it, another enterprise does not.
    let (s, v) = app.get(&format!("/api/iot/devices/{id}"), &shunda).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::OK, Some("SD-REEFER-01")));
    assert!(v.get("secret").is_none() && !v.to_string().contains(&secret), "the secret is shown once only");
    assert_eq!(app.get(&format!("/api/iot/devices/{id}"), &bus).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/iot/devices/{id}"), &regulator).await.0, StatusCode::OK);
    let (_, v) = app.get("/api/iot/devices?kind=reefer_probe", &bus).await;
    assert_eq!(v["total"], 0);
    // The regulator reads but does not register.
    let (s, _) = app
        .post(
            "/api/iot/devices",
            &regulator,
            json!({"code": "X-1-2", "kind": "k", "name": "n", "subject_type": "other"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Codes are unique and checked.
    let (s, v) = app
        .post(
            "/api/iot/devices",
            &shunda,
            json!({"code": "SD-REEFER-01", "kind": "k", "name": "n", "subject_type": "other"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = app
        .post("/api/iot/devices", &shunda, json!({"code": "a/b+#", "kind": "k", "name": "n", "subject_type": "other"}))
        .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")), "{v}");

    // Uploads: stored only with the device's credentials.
    let t = now_ms() - 60_000;
    let body = json!({"ts": t, "readings": {"temperature": 4.5, "humidity": 80}}).to_string();
    let auth = basic("SD-REEFER-01", &secret);
    let (s, v) = upload(&app, Some(&auth), body.as_bytes()).await;
    assert_eq!((s, v["stored"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    assert_eq!(upload(&app, None, body.as_bytes()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(upload(&app, Some(&basic("SD-REEFER-01", "wrong")), body.as_bytes()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        upload(&app, Some(&basic("NO-SUCH-DEVICE", &secret)), body.as_bytes()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(upload(&app, Some("Basic !!!"), body.as_bytes()).await.0, StatusCode::UNAUTHORIZED);
    let (s, v) = upload(&app, Some(&auth), br#"{"readings": {"temperature": "cold"}}"#).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["detail"].as_str().unwrap().contains("readings.temperature"), "{v}");
    let big = vec![b'['; 70_000];
    assert_eq!(upload(&app, Some(&auth), &big).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // What was stored reads back; bad ranges are refused.
    let from = kernel::store::ms_to_rfc3339(t - 1000);
    let to = kernel::store::ms_to_rfc3339(t + 1000);
    let (s, v) =
        app.get(&format!("/api/iot/devices/{id}/readings?from={from}&to={to}&metric=temperature"), &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["value"], 4.5);
    let (s, _) = app.get(&format!("/api/iot/devices/{id}/readings?from={to}&to={from}"), &shunda).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A rotated secret replaces the old one; a disabled device is refused.
    let (s, v) = app.post(&format!("/api/iot/devices/{id}/secret"), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new_secret = v["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(upload(&app, Some(&auth), body.as_bytes()).await.0, StatusCode::UNAUTHORIZED);
    let auth2 = basic("SD-REEFER-01", &new_secret);
    assert_eq!(upload(&app, Some(&auth2), body.as_bytes()).await.0, StatusCode::OK);
    let (s, _) = app
        .call(Method::PATCH, &format!("/api/iot/devices/{id}"), Some(&shunda), Some(json!({"enabled": false})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(upload(&app, Some(&auth2), body.as_bytes()).await.0, StatusCode::UNAUTHORIZED);

    // A patient's monitor: the family doctor reads it (audited); a transport operator never sees it.
    let dr = app.login("dr.wu").await;
    let (_, v) = app.get("/api/iot/devices?kind=bp_monitor", &dr).await;
    let bp = v["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/iot/devices/{bp}"), &shunda).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app.get(&format!("/api/iot/devices/{bp}/readings?from={from}&to={to}"), &dr).await;
    assert_eq!(s, StatusCode::OK);
    let f = kernel::audit::Filter {
        action: Some("device.readings.read".into()),
        target_id: Some(bp.clone()),
        limit: 10,
        ..Default::default()
    };
    let (rows, _) = kernel::audit::query(&app.platform.state.store, &f).await.unwrap();
    assert_eq!(rows.len(), 1, "reading a patient's monitor is audited");

    // Every route survives hostile input.
    let n = app.sweep_bad_input(&[None, Some(shunda.clone()), Some(regulator.clone())]).await;
    assert!(n > 100);
}

#[tokio::test]
async fn registry_and_http_ingest_sqlite() {
    registry_and_http(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_registry_and_http_ingest() {
    registry_and_http(Backend::Postgres).await;
}

async fn threshold_alarm(backend: Backend) {
    let module = IotModule { save_every: Duration::from_millis(300), ..IotModule::default() };
    let Some(app) = spawn(backend, &module, |_| {}).await else { return };
    let stop = CancellationToken::new();
    let tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let shunda = app.login("shunda.zhao").await;
    let (id, secret) = register(&app, &shunda, "SD-REEFER-02").await;
    let auth = basic("SD-REEFER-02", &secret);
    // 10:00 local an hour ago… a 6-minute excursion above 8 °C (rule: 5 minutes), then back.
    let t0 = now_ms() - 3_600_000;
    let series = [(0, 5.0), (60, 9.0), (180, 9.4), (300, 8.6), (360, 9.8), (420, 7.2)];
    for (i, (dt, v)) in series.iter().enumerate() {
        let body = json!({"ts": t0 + dt * 1000, "readings": {"temperature": v}}).to_string();
        let (s, r) = upload(&app, Some(&auth), body.as_bytes()).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        if i == 4 {
            // Raised at the reading five minutes after the first one beyond the threshold.
            let a = wait_alarm(&app, &shunda, &id, "reefer_temp_high", false).await;
            assert_eq!(a["domain"], "iot");
            assert_eq!(a["severity"], "major");
            assert_eq!(a["started_at"], kernel::store::ms_to_rfc3339(t0 + 60_000));
            assert_eq!(a["details"]["peak"], 9.8);
            assert_eq!(a["subject"]["type"], "device");
        }
    }
    // 7.2 °C is past the 0.5 °C hysteresis: the episode ends.
    let a = wait_alarm(&app, &shunda, &id, "reefer_temp_high", true).await;
    assert_eq!(a["ended_at"], kernel::store::ms_to_rfc3339(t0 + 420_000));
    // Another enterprise's operator does not see it.
    let bus = app.login("bus.sun").await;
    let (_, v) = app.get(&format!("/api/alarms?subject_id={id}"), &bus).await;
    assert_eq!(v["total"], 0);
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn threshold_over_http_raises_and_ends_an_alarm_sqlite() {
    threshold_alarm(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_threshold_over_http_raises_and_ends_an_alarm() {
    threshold_alarm(Backend::Postgres).await;
}

fn client(addr: &str, port: u16, id: &str, user: &str, pass: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(id, addr, port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_credentials(user, pass);
    AsyncClient::new(o, 16)
}

/// Polls until `want` matches an event, or fails after 10 s.
async fn until(
    ev: &mut rumqttc::EventLoop,
    mut want: impl FnMut(&Event) -> bool,
) -> Result<(), rumqttc::ConnectionError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout_at(deadline, ev.poll()).await.expect("MQTT event in time")?;
        if want(&e) {
            return Ok(());
        }
    }
}

/// The platform's own endpoint: credentials checked at CONNECT, a PUBACK only once the
/// readings are in the store, a wrong topic or garbage closes that connection alone, and a
/// threshold crossed over MQTT raises an alarm.
#[tokio::test]
async fn mqtt_endpoint_acknowledges_after_storing() {
    let module = IotModule { listen: Some("127.0.0.1:0".into()), ..IotModule::default() };
    let app = spawn(Backend::Sqlite, &module, |_| {}).await.unwrap();
    let stop = CancellationToken::new();
    let _tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let addr = module.shared.mqtt_addr().expect("endpoint listening");
    let shunda = app.login("shunda.zhao").await;
    let (id, secret) = register(&app, &shunda, "SD-REEFER-03").await;

    // Bad credentials: CONNACK 4 (bad user name or password).
    let (_c, mut ev) = client("127.0.0.1", addr.port(), "bad", "SD-REEFER-03", "wrong");
    let e = until(&mut ev, |_| true).await.unwrap_err();
    assert!(format!("{e:?}").contains("BadUserNamePassword"), "{e:?}");

    // Garbage on a raw connection closes it, and nobody else notices.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, &[0xff; 64]).await.unwrap();
    let mut sink = vec![0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut raw, &mut sink)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "closed: {n:?}");

    let (c, mut ev) = client("127.0.0.1", addr.port(), "reefer-3", "SD-REEFER-03", &secret);
    until(&mut ev, |e| matches!(e, Event::Incoming(Packet::ConnAck(_)))).await.unwrap();
    let topic = "wuqing/SD-REEFER-03/telemetry";
    let t0 = now_ms() - 3_600_000;
    let series = [(0, 5.0), (60, 9.0), (200, 9.4), (360, 9.9), (420, 7.0)];
    for (dt, v) in series {
        let body = json!({"ts": t0 + dt * 1000, "readings": {"temperature": v}}).to_string();
        c.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
        until(&mut ev, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await.unwrap();
        // Acknowledged means stored: the reading is there the moment the PUBACK arrives.
        let rows = kernel::telemetry::range(
            &app.platform.state.store,
            "SD-REEFER-03",
            None,
            t0 + dt * 1000,
            t0 + dt * 1000 + 1,
            10,
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "stored before the PUBACK");
    }
    let a = wait_alarm(&app, &shunda, &id, "reefer_temp_high", true).await;
    assert_eq!(a["started_at"], kernel::store::ms_to_rfc3339(t0 + 60_000));

    // A malformed payload is dropped but acknowledged (resending would not mend it).
    c.publish(topic, QoS::AtLeastOnce, false, "not json").await.unwrap();
    until(&mut ev, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await.unwrap();
    // Subscriptions are refused.
    c.subscribe("wuqing/#", QoS::AtLeastOnce).await.unwrap();
    until(&mut ev, |e| match e {
        Event::Incoming(Packet::SubAck(s)) => s.return_codes == vec![rumqttc::SubscribeReasonCode::Failure],
        _ => false,
    })
    .await
    .unwrap();
    // Publishing as another device closes the connection.
    c.publish("wuqing/RMYY-CS-01/telemetry", QoS::AtLeastOnce, false, r#"{"readings":{"temperature":30}}"#)
        .await
        .unwrap();
    assert!(until(&mut ev, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await.is_err());
    let rows = kernel::telemetry::range(&app.platform.state.store, "RMYY-CS-01", None, 0, i64::MAX, 10).await.unwrap();
    assert!(rows.iter().all(|o| o.value != kernel::telemetry::Value::Number { value: 30.0 }));

    // The demo's devices connect with the secrets the seed wrote.
    let (c2, mut ev2) = client("127.0.0.1", addr.port(), "cold-room", "RMYY-CS-01", &demo_secret(&app, "RMYY-CS-01"));
    until(&mut ev2, |e| matches!(e, Event::Incoming(Packet::ConnAck(_)))).await.unwrap();
    c2.publish("wuqing/RMYY-CS-01/telemetry", QoS::ExactlyOnce, false, r#"{"readings":{"temperature":4.8}}"#)
        .await
        .unwrap();
    until(&mut ev2, |e| matches!(e, Event::Incoming(Packet::PubComp(_)))).await.unwrap();
    stop.cancel();
}

/// An external broker (the local Mosquitto): the platform subscribes, stores, then
/// acknowledges; a threshold crossed there raises an alarm. Unknown devices are dropped.
#[tokio::test]
async fn external_broker_readings_raise_an_alarm() {
    let Ok(broker) = std::env::var("WUQING_TEST_MQTT") else {
        eprintln!("skipped: WUQING_TEST_MQTT is not set (e.g. 127.0.0.1:1883, a local Mosquitto)");
        return;
    };
    let (host, port) = broker.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    // A topic prefix and client id of this run only, so that runs never see each other's messages.
    let run = uuid::Uuid::now_v7().simple().to_string();
    let prefix = format!("wqtest/{}", &run[20..]);
    let module = IotModule::default();
    let (prefix2, broker2, cid) = (prefix.clone(), format!("mqtt://{broker}"), format!("wq-{}", &run[16..]));
    let app = spawn(Backend::Sqlite, &module, move |raw| {
        raw.mqtt.broker = broker2;
        raw.mqtt.topic_prefix = prefix2;
        raw.mqtt.client_id = cid;
    })
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let _tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let shunda = app.login("shunda.zhao").await;
    let (id, _secret) = register(&app, &shunda, "SD-REEFER-04").await;
    for _ in 0..100 {
        if module.shared.broker.connected.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(module.shared.broker.connected.load(std::sync::atomic::Ordering::Relaxed), "subscribed to {broker}");
    tokio::time::sleep(Duration::from_millis(300)).await; // the SUBACK

    let (c, mut ev) = {
        let mut o = MqttOptions::new(format!("dev-{}", &run[16..]), host, port);
        o.set_keep_alive(Duration::from_secs(5));
        AsyncClient::new(o, 16)
    };
    until(&mut ev, |e| matches!(e, Event::Incoming(Packet::ConnAck(_)))).await.unwrap();
    let t0 = now_ms() - 3_600_000;
    c.publish(format!("{prefix}/NOT-REGISTERED/telemetry"), QoS::AtLeastOnce, false, r#"{"readings":{"t":1}}"#)
        .await
        .unwrap();
    until(&mut ev, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await.unwrap();
    for (dt, v) in [(0, 5.0), (60, 9.0), (400, 9.6), (460, 6.5)] {
        let body = json!({"ts": t0 + dt * 1000, "readings": {"temperature": v}}).to_string();
        c.publish(format!("{prefix}/SD-REEFER-04/telemetry"), QoS::AtLeastOnce, false, body).await.unwrap();
        until(&mut ev, |e| matches!(e, Event::Incoming(Packet::PubAck(_)))).await.unwrap();
    }
    let mut rows = vec![];
    for _ in 0..100 {
        rows =
            kernel::telemetry::range(&app.platform.state.store, "SD-REEFER-04", None, 0, i64::MAX, 10).await.unwrap();
        if rows.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows.len(),
        4,
        "all four readings stored from the broker: {:?}",
        rows.iter().map(|o| (o.device_ms - t0, o.value.clone())).collect::<Vec<_>>()
    );
    let a = wait_alarm(&app, &shunda, &id, "reefer_temp_high", true).await;
    assert_eq!(a["started_at"], kernel::store::ms_to_rfc3339(t0 + 60_000));
    let rows =
        kernel::telemetry::range(&app.platform.state.store, "NOT-REGISTERED", None, 0, i64::MAX, 10).await.unwrap();
    assert!(rows.is_empty());
    let (_, st) = app.get("/api/iot/status", &shunda).await;
    assert_eq!(st["broker_connected"], true, "{st}");
    stop.cancel();
}

/// The sensor rules as a versioned document: the built-in set, a regulator's publication
/// (checked, numbered, 409 when stale), taken up by the running rules at once.
async fn sensor_rules(backend: Backend) {
    let module = IotModule::default();
    let Some(app) = spawn(backend, &module, |_| {}).await else { return };
    let stop = CancellationToken::new();
    let tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let shunda = app.login("shunda.zhao").await;
    let regulator = app.login("jt.liu").await;
    let (_, v) = app.get("/api/iot/rules", &shunda).await;
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(1), Some(false)), "{v}");
    let mut sensors = v["sensors"].clone();
    let high = sensors.as_array_mut().unwrap().iter_mut().find(|r| r["id"] == "reefer_temp_high").unwrap();
    high["threshold"] = json!(6.0);
    let put = |token: String, body: Value| {
        let app = &app;
        async move { app.call(Method::PUT, "/api/iot/rules", Some(&token), Some(body)).await }
    };
    let (s, _) = put(shunda.clone(), json!({"base_version": 1, "sensors": sensors})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "operators read, regulators publish");
    let mut bad = sensors.clone();
    bad[0]["id"] = json!("Bad Id");
    let (s, v) = put(regulator.clone(), json!({"base_version": 1, "sensors": bad})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("sensors[0].id")), "{v}");
    let (s, v) = put(regulator.clone(), json!({"base_version": 1, "sensors": sensors, "note": "冷藏车 6 °C"})).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    let (s, _) = put(regulator.clone(), json!({"base_version": 1, "sensors": sensors})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, v) = app.get("/api/iot/rules/versions", &shunda).await;
    assert_eq!(v["total"], 1);
    assert_eq!(app.get("/api/iot/rules/versions/1", &shunda).await.1["stored"], false);

    // 7 °C for six minutes: below the built-in 8 °C, above the published 6 °C.
    let (id, secret) = register(&app, &shunda, "SD-REEFER-05").await;
    let auth = basic("SD-REEFER-05", &secret);
    let t0 = now_ms() - 3_600_000;
    for dt in [0, 60, 200, 360] {
        let body = json!({"ts": t0 + dt * 1000, "readings": {"temperature": 7.0}}).to_string();
        assert_eq!(upload(&app, Some(&auth), body.as_bytes()).await.0, StatusCode::OK);
    }
    let a = wait_alarm(&app, &shunda, &id, "reefer_temp_high", false).await;
    assert_eq!(a["rule_version"], 2, "{a}");
    assert_eq!(a["details"]["threshold"], 6.0);
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn sensor_rules_are_published_and_applied_sqlite() {
    sensor_rules(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_sensor_rules_are_published_and_applied() {
    sensor_rules(Backend::Postgres).await;
}

/// MQTT over TLS with the server's certificate: the same login and the same stored-before-PUBACK
/// rule, with secrets and readings encrypted on the wire.
#[tokio::test]
async fn mqtt_over_tls_with_the_servers_certificate() {
    use rumqttc::mqttbytes::v4;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let have_openssl = std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !have_openssl {
        eprintln!("skipped: needs the openssl command to make a certificate");
        return;
    }
    let certs = tempfile_dir();
    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    let o = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let module = IotModule { tls_listen: Some("127.0.0.1:0".into()), ..IotModule::default() };
    let (c2, k2) = (cert.clone(), key.clone());
    let app = spawn(Backend::Sqlite, &module, move |raw| {
        raw.server.tls_cert = Some(c2);
        raw.server.tls_key = Some(k2);
    })
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let _tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let addr = module.shared.mqtts_addr().expect("MQTT over TLS listening");
    assert!(module.shared.mqtt_addr().is_none(), "the plain endpoint is off here");
    let shunda = app.login("shunda.zhao").await;
    let (_id, secret) = register(&app, &shunda, "SD-REEFER-06").await;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(&cert).unwrap()).unwrap();
    let cfg = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS handshake");

    let mut out = bytes::BytesMut::new();
    let mut connect = v4::Connect::new("reefer-6");
    connect.set_login("SD-REEFER-06", secret);
    connect.write(&mut out).unwrap();
    let t = now_ms() - 60_000;
    let mut p = v4::Publish::new(
        "wuqing/SD-REEFER-06/telemetry",
        QoS::AtLeastOnce,
        json!({"ts": t, "readings": {"temperature": 3.9}}).to_string(),
    );
    p.pkid = 7;
    p.write(&mut out).unwrap();
    tls.write_all(&out).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut got = vec![];
    while got.len() < 2 {
        match v4::read(&mut buf, 4096) {
            Ok(pk) => got.push(pk),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                let n = tokio::time::timeout(Duration::from_secs(10), tls.read_buf(&mut buf)).await.unwrap().unwrap();
                assert!(n > 0, "closed early: {got:?}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(&got[0], v4::Packet::ConnAck(a) if a.code == v4::ConnectReturnCode::Success), "{got:?}");
    assert!(matches!(&got[1], v4::Packet::PubAck(a) if a.pkid == 7), "{got:?}");
    let rows = kernel::telemetry::range(&app.platform.state.store, "SD-REEFER-06", None, t, t + 1, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "stored before the PUBACK");
    stop.cancel();
}

/// A directory that lives as long as the test process (certificates for the TLS test).
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wq-iot-tls-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A patient's blood pressure monitor: an urgent reading raises a critical alarm at once, named
/// by the device alone (never by whom it is bound to); the family doctor of the health centre
/// sees and handles it; a transport operator never sees it.
#[tokio::test]
async fn a_patients_monitor_alarm_reaches_the_family_doctor_without_the_patients_label() {
    let module = IotModule::default();
    let app = spawn(Backend::Sqlite, &module, |_| {}).await.unwrap();
    let stop = CancellationToken::new();
    let _tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    let auth = basic("YC-BP-0001", &demo_secret(&app, "YC-BP-0001"));
    let body = json!({"readings": {"bp_systolic": 192, "bp_diastolic": 104}}).to_string();
    assert_eq!(upload(&app, Some(&auth), body.as_bytes()).await.0, StatusCode::OK);
    let dr = app.login("dr.wu").await;
    let (_, v) = app.get("/api/iot/devices?kind=bp_monitor", &dr).await;
    let device = v["items"][0]["id"].as_str().unwrap().to_string();
    let label = v["items"][0]["subject_label"].as_str().unwrap().to_string();
    let a = wait_alarm(&app, &dr, &device, "bp_systolic_urgent", false).await;
    assert_eq!(a["severity"], "critical");
    let shown = a["subject"]["label"].as_str().unwrap();
    assert!(!label.is_empty() && !shown.contains(&label), "{shown}");
    let id = a["id"].as_str().unwrap();
    let (s, v) = app
        .post(&format!("/api/alarms/{id}/handle"), &dr, json!({"action": "other", "note": "已电话随访，建议就诊"}))
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("handled")), "{v}");
    let shunda = app.login("shunda.zhao").await;
    assert_eq!(app.get(&format!("/api/alarms/{id}"), &shunda).await.0, StatusCode::NOT_FOUND);
    // Clinicians read and handle alarms but do not manage webhooks.
    let (s, _) = app.post("/api/alarms/webhooks", &dr, json!({"url": "https://example.invalid/x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    stop.cancel();
}

/// Issue #8 (schemathesis): the endpoints' state was documented as an alarm's status (two
/// schemas named `Status`); it must answer as the OpenAPI document says, devices too.
#[tokio::test]
async fn issue_8_status_and_devices_answer_as_documented() {
    let Some(app) = spawn(Backend::Sqlite, &IotModule::default(), |_| {}).await else { return };
    let shunda = app.login("shunda.zhao").await;
    let get = axum::http::Method::GET;
    let (s, v) = app.call_documented(get.clone(), "/api/iot/status", "/api/iot/status", Some(&shunda), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.call_documented(get, "/api/iot/devices", "/api/iot/devices", Some(&shunda), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
