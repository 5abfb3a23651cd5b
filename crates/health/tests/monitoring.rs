//! Chronic-disease remote monitoring end to end: a home blood-pressure monitor bound to a
//! contracted patient reports over HTTP, the platform's own MQTT endpoint and the local
//! Mosquitto; each reading becomes an Observation in the patient's record and, through the
//! national rules, an item on the family doctor's worklist with its evidence; the doctor's
//! follow-ups close tasks and, twice uncontrolled, suggest a referral; the clock (injected)
//! raises overdue follow-ups and silences; the indicators count it all. Refusals throughout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use health::HealthModule;
use http_body_util::BodyExt;
use iot::IotModule;
use kernel::module::Module;
use kernel::platform::CancellationToken;
use kernel::store::now_ms;
use kernel::testing::{Backend, TestApp};
use rules::clinical::{ClinicalRules, DAY_MS, Reading};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if body.is_some() {
        let ct = if uri.starts_with("/fhir") { "application/fhir+json" } else { "application/json" };
        b = b.header("content-type", ct);
    }
    let req = b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn get(app: &TestApp, uri: &str, token: &str) -> (StatusCode, Value) {
    send(app, Method::GET, uri, Some(token), None, None).await
}

async fn post(app: &TestApp, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::POST, uri, Some(token), None, Some(body)).await
}

fn entries(bundle: &Value) -> usize {
    bundle["entry"].as_array().map_or(0, Vec::len)
}

fn basic(code: &str, secret: &str) -> String {
    format!("Basic {}", data_encoding::BASE64.encode(format!("{code}:{secret}").as_bytes()))
}

/// A valid citizen ID for a birth date and sequence (GB 11643 check character).
fn cid(birth: &str, seq: u32) -> String {
    let body = format!("120114{birth}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

struct World {
    app: TestApp,
    health: HealthModule,
    iot: IotModule,
    wu: String,
    patient: String,
    contract: String,
    device: String,
    secret: String,
}

/// The centre's team, a contracted hypertension patient, a home monitor bound to them.
async fn world(backend: Backend, iot: IotModule, tweak: impl FnOnce(&mut kernel::config::RawConfig)) -> Option<World> {
    let health = HealthModule { demo_records: false, ..HealthModule::default() };
    let modules: Vec<Arc<dyn Module>> =
        vec![Arc::new(iot.clone()), Arc::new(alarms::AlarmsModule::default()), Arc::new(health.clone())];
    let app = TestApp::spawn_with(backend, modules, tweak).await?;
    let wu = app.login("dr.wu").await;
    let wu_id = app.user_id("dr.wu").await;
    let yangcun = app.org_id("yangcun_chc").await;
    let (s, p) = post(
        &app,
        "/fhir/Patient",
        &wu,
        json!({ "resourceType": "Patient", "identifier": [{ "system": "urn:wuqing:sid:citizen-id", "value": cid("19520303", 21) }],
            "name": [{ "text": "赵桂兰", "family": "赵", "given": ["桂兰"] }], "gender": "female", "birthDate": "1952-03-03",
            "address": [{ "text": "天津市武清区杨村街道" }] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let patient = p["id"].as_str().unwrap().to_string();
    let (s, t) = post(
        &app,
        "/api/health/teams",
        &wu,
        json!({ "name": "一队", "township": "杨村街道", "members": [{ "user_id": wu_id, "role": "doctor" }] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, k) = post(
        &app,
        "/api/health/contracts",
        &wu,
        json!({ "patient_id": patient, "team_id": t["id"], "packages": ["hypertension"] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let new = iot::registry::NewDevice {
        org_id: Some(yangcun.clone()),
        code: "YC-TEST-BP1".into(),
        kind: "bp_monitor".into(),
        name: "家用血压计".into(),
        format: None,
        subject_type: iot::registry::SubjectType::Patient,
        subject_id: patient.clone(),
        subject_label: "赵桂兰".into(),
    };
    let d =
        iot::registry::insert_device(&app.platform.state.store, kernel::audit::Actor::cli("test"), &yangcun, new, None)
            .await
            .unwrap();
    Some(World {
        app,
        health,
        iot,
        wu,
        patient,
        contract: k["id"].as_str().unwrap().to_string(),
        device: d.device.code,
        secret: d.secret,
    })
}

/// The open worklist of dr.wu once it holds `n` items (or fails after 10 s).
async fn worklist(app: &TestApp, token: &str, query: &str, n: usize) -> Vec<Value> {
    let mut items = vec![];
    for _ in 0..100 {
        let (s, v) = get(app, &format!("/api/health/worklist?{query}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        items = v["items"].as_array().unwrap().clone();
        if items.len() >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the worklist ({query}) has {} items, not {n}: {items:?}", items.len());
}

fn bp_body(t: i64, s: f64, d: f64) -> Value {
    json!({ "ts": t, "readings": { "bp_systolic": s, "bp_diastolic": d, "heart_rate": 76 } })
}

async fn readings_to_worklist(backend: Backend) {
    let Some(w) = world(backend, IotModule::default(), |_| {}).await else { return };
    let app = &w.app;
    let (wu, patient) = (&w.wu, &w.patient);
    let yang = app.login("dr.yang").await;
    let chen = app.login("wjw.chen").await;
    let huang = app.login("resident.huang").await;
    let auth = basic(&w.device, &w.secret);
    let t0 = now_ms() - 3 * 3_600_000;

    // The contract's managed condition has its CarePlan.
    let (_, b) = get(app, &format!("/fhir/CarePlan?patient={patient}"), wu).await;
    assert_eq!(entries(&b), 1, "{b}");
    assert_eq!(b["entry"][0]["resource"]["status"], "active");
    assert_eq!(b["entry"][0]["resource"]["category"][0]["coding"][0]["code"], "hypertension");

    // A reading stored before the monitoring runs is caught up when it starts.
    let (s, v) = send(app, Method::POST, "/api/iot/ingest", None, Some(&auth), Some(bp_body(t0, 150.0, 95.0))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stop = CancellationToken::new();
    let _tasks = w.health.start(&app.platform.state, stop.clone()).await.unwrap();
    let items = worklist(app, wu, "", 1).await;
    let f = &items[0];
    assert_eq!((f["action"].as_str(), f["condition"].as_str()), (Some("follow_up"), Some("hypertension")), "{f}");
    assert_eq!(f["patient_name"], "赵桂兰");
    assert_eq!(f["evidence"]["reading"]["systolic"], 150.0);
    assert_eq!(f["evidence"]["device"], w.device.as_str());
    assert!(f["evidence"]["rule"].as_str().unwrap().contains("140/90"), "{f}");
    assert_eq!(f["due"], kernel::store::ms_to_rfc3339(t0 + 14 * DAY_MS));
    // The evidence's Observation is in the record: LOINC 85354-9 with its two components.
    let obs = f["evidence"]["observation"].as_str().unwrap().to_string();
    let (s, o) = get(app, &format!("/fhir/{obs}"), wu).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["code"]["coding"][0]["code"], "85354-9");
    assert_eq!(o["component"][0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(o["component"][1]["valueQuantity"]["value"], 95.0);
    assert_eq!(o["subject"]["reference"], format!("Patient/{patient}"));

    // Live: an urgent reading (the follow-up is open already: the urgent alert alone).
    let (s, _) =
        send(app, Method::POST, "/api/iot/ingest", None, Some(&auth), Some(bp_body(t0 + 3_600_000, 186.0, 114.0)))
            .await;
    assert_eq!(s, StatusCode::OK);
    let items = worklist(app, wu, "", 2).await;
    assert_eq!(items[0]["action"], "urgent", "urgent first: {items:?}");
    let urgent = items[0]["id"].as_str().unwrap().to_string();
    let follow = items[1]["id"].as_str().unwrap().to_string();
    // The same reading again (a device resending): one Observation, no new item.
    send(app, Method::POST, "/api/iot/ingest", None, Some(&auth), Some(bp_body(t0 + 3_600_000, 186.0, 114.0))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, b) = get(app, &format!("/fhir/Observation?patient={patient}&code=85354-9"), wu).await;
    assert_eq!(entries(&b), 2, "{b}");
    assert_eq!(get(app, "/api/health/worklist", wu).await.1["total"], 2);

    // Who sees the worklist: the centre's doctors; not the hospital's, a regulator, a resident.
    assert_eq!(get(app, "/api/health/worklist", &yang).await.1["total"], 0);
    assert_eq!(get(app, "/api/health/worklist", &chen).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(app, "/api/health/worklist", &huang).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(app, "/api/health/worklist?state=maybe", wu).await.0, StatusCode::BAD_REQUEST);
    let close = |id: &str| format!("/api/health/worklist/{id}/close");
    assert_eq!(post(app, &close(&urgent), &yang, json!({ "outcome": "handled" })).await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(app, &close("nope"), wu, json!({ "outcome": "handled" })).await.0, StatusCode::NOT_FOUND);
    let (s, b) = post(app, &close(&urgent), wu, json!({ "outcome": "controlled" })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("outcome")), "{b}");
    let (s, b) =
        post(app, &close(&follow), wu, json!({ "outcome": "uncontrolled", "systolic": 80, "diastolic": 90 })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("diastolic")), "{b}");
    let (s, b) = post(app, &close(&follow), wu, json!({ "outcome": "uncontrolled", "glucose_mmol_l": 7 })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = post(app, &close(&follow), wu, json!({ "outcome": "uncontrolled", "surprise": 1 })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    // Indicators before the doctor acts.
    let (s, ind) = get(app, "/api/health/indicators", &chen).await;
    assert_eq!(s, StatusCode::OK, "{ind}");
    let yangcun = app.org_id("yangcun_chc").await;
    let inst =
        ind["institutions"].as_array().unwrap().iter().find(|i| i["org_id"] == yangcun.as_str()).unwrap().clone();
    assert_eq!(inst["hypertension"]["managed"], 1, "{inst}");
    assert_eq!(inst["hypertension"]["measured_3m"], 1);
    assert_eq!(inst["hypertension"]["controlled"], 0);
    assert_eq!(inst["hypertension"]["no_visit_3m"], 1);
    assert_eq!((inst["urgent_alerts"].as_i64(), inst["urgent_open"].as_i64()), (Some(1), Some(1)));
    assert_eq!(ind["townships"][0]["township"], "杨村街道");
    assert_eq!(get(app, "/api/health/indicators", &yang).await.1["institutions"].as_array().unwrap().len(), 0);
    assert_eq!(get(app, "/api/health/indicators", &huang).await.0, StatusCode::FORBIDDEN);

    // The doctor handles the urgent alert, then follows up: uncontrolled, measured 152/96.
    let (s, b) = post(app, &close(&urgent), wu, json!({ "outcome": "handled", "note": "电话随访, 嘱立即就诊" })).await;
    assert_eq!(
        (s, b["state"].as_str(), b["outcome"].as_str()),
        (StatusCode::OK, Some("closed"), Some("handled")),
        "{b}"
    );
    assert!(b["response_minutes"].as_i64().unwrap() >= 100, "{b}");
    assert_eq!(post(app, &close(&urgent), wu, json!({ "outcome": "handled" })).await.0, StatusCode::CONFLICT);
    let (s, b) = post(
        app,
        &close(&follow),
        wu,
        json!({ "outcome": "uncontrolled", "systolic": 152, "diastolic": 96, "note": "加量" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, enc) = get(app, &format!("/fhir/Encounter?patient={patient}"), wu).await;
    assert_eq!(entries(&enc), 1, "the follow-up visit is in the record: {enc}");
    let (_, b) = get(app, &format!("/fhir/Observation?patient={patient}&code=85354-9"), wu).await;
    assert_eq!(entries(&b), 3, "with what was measured");
    assert_eq!(get(app, "/api/health/worklist", wu).await.1["total"], 0, "nothing open");
    // A new high reading opens the next task; a second uncontrolled follow-up suggests a referral.
    send(app, Method::POST, "/api/iot/ingest", None, Some(&auth), Some(bp_body(now_ms() - 60_000, 158.0, 97.0))).await;
    let items = worklist(app, wu, "action=follow_up", 1).await;
    let (s, b) = post(app, &close(items[0]["id"].as_str().unwrap()), wu, json!({ "outcome": "uncontrolled" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = worklist(app, wu, "", 1).await;
    assert_eq!(items[0]["action"], "suggest_referral", "{items:?}");
    assert!(items[0]["evidence"]["rule"].as_str().unwrap().contains("2 次"), "{items:?}");

    let (_, ind) = get(app, "/api/health/indicators", wu).await;
    let inst = &ind["institutions"][0];
    assert_eq!(inst["hypertension"]["no_visit_3m"], 0, "{inst}");
    assert_eq!((inst["urgent_open"].as_i64(), inst["hypertension"]["follow_ups_due"].as_i64()), (Some(0), Some(0)));
    assert!(inst["urgent_response_median_minutes"].as_i64().unwrap() >= 100);
    // The closed list, and every listed patient's read in the audit log.
    assert_eq!(get(app, "/api/health/worklist?state=closed", wu).await.1["total"], 3);
    let st = &app.platform.state;
    let n = sqlx::query(
        &st.store.sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'health.worklist.read' AND target_id = $1"),
    )
    .bind(patient.clone())
    .fetch_one(st.store.reader())
    .await
    .unwrap();
    assert!(kernel::store::col::<i64>(&n, "n").unwrap() > 0);

    // The contract ends: the monitoring stops, the CarePlan is revoked.
    let (s, b) =
        post(app, &format!("/api/health/contracts/{}/terminate", w.contract), wu, json!({ "reason": "迁出本区" }))
            .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = get(app, &format!("/fhir/CarePlan?patient={patient}"), wu).await;
    assert_eq!(b["entry"][0]["resource"]["status"], "revoked", "{b}");
    let n = sqlx::query(&st.store.sql("SELECT COUNT(*) AS n FROM health_monitor_watches WHERE patient_id = $1"))
        .bind(patient.clone())
        .fetch_one(st.store.reader())
        .await
        .unwrap();
    assert_eq!(kernel::store::col::<i64>(&n, "n").unwrap(), 0);
    stop.cancel();
}

#[tokio::test]
async fn home_readings_reach_the_family_doctors_worklist_on_sqlite() {
    readings_to_worklist(Backend::Sqlite).await;
}

#[tokio::test]
async fn home_readings_reach_the_family_doctors_worklist_on_postgres() {
    readings_to_worklist(Backend::Postgres).await;
}

/// The clock, injected: a follow-up not done within 2 weeks is overdue once; a week without
/// readings reminds once; glucose limits on the same patient's meter.
#[tokio::test]
async fn the_clock_raises_overdue_follow_ups_and_silences_once() {
    let Some(w) = world(Backend::Sqlite, IotModule::default(), |_| {}).await else { return };
    let (app, st) = (&w.app, &w.app.platform.state);
    let keys = health::records::Keys::default();
    let records = health::records::Records { store: st.store.clone(), cipher: st.cipher.clone(), keys };
    let rules = ClinicalRules::default();
    let yangcun = app.org_id("yangcun_chc").await;
    let t0 = now_ms() - 40 * DAY_MS;
    let reading = |at_ms: i64, reading: Reading| health::monitoring::HomeReading {
        device: "YC-TEST-GLU".into(),
        device_org: yangcun.clone(),
        patient_id: w.patient.clone(),
        at_ms,
        reading,
        heart_rate: None,
    };
    use health::monitoring::{Taken, take, tick};
    let r = take(st, &records, &rules, &reading(t0, Reading::FastingGlucose { mmol_l: 7.4 })).await.unwrap();
    assert_eq!(r, Taken::Taken { alerts: 1 });
    assert_eq!(
        take(st, &records, &rules, &reading(t0, Reading::FastingGlucose { mmol_l: 7.4 })).await.unwrap(),
        Taken::Again
    );
    let r = take(st, &records, &rules, &reading(t0 + DAY_MS, Reading::Glucose { mmol_l: 3.6 })).await.unwrap();
    assert_eq!(r, Taken::Taken { alerts: 1 }, "urgent (low); the follow-up stands");
    // Day 8: silent for a week (the hypertension watch, enrolled today, is not yet silent).
    assert_eq!(tick(st, &rules, t0 + 8 * DAY_MS).await.unwrap(), 1);
    assert_eq!(tick(st, &rules, t0 + 8 * DAY_MS + 1).await.unwrap(), 0, "once");
    assert_eq!(tick(st, &rules, t0 + 14 * DAY_MS).await.unwrap(), 0, "the deadline is the end of day 14");
    assert_eq!(tick(st, &rules, t0 + 15 * DAY_MS).await.unwrap(), 1, "overdue");
    assert_eq!(tick(st, &rules, t0 + 16 * DAY_MS).await.unwrap(), 0);
    let items = worklist(app, &w.wu, "condition=diabetes", 4).await;
    let mut actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    actions.sort_unstable();
    assert_eq!(actions, ["follow_up", "follow_up_overdue", "reminder", "urgent"]);
    // A patient the records do not know is no one's alert.
    let mut stranger = reading(t0, Reading::FastingGlucose { mmol_l: 20.0 });
    stranger.patient_id = "nobody".into();
    stranger.device = "YC-TEST-X".into();
    assert_eq!(take(st, &records, &rules, &stranger).await.unwrap(), Taken::NoPatient);
    // Closing the follow-up closes its overdue notice with it.
    let f = items.iter().find(|i| i["action"] == "follow_up").unwrap();
    let (s, b) = post(
        app,
        &format!("/api/health/worklist/{}/close", f["id"].as_str().unwrap()),
        &w.wu,
        json!({ "outcome": "controlled", "glucose_mmol_l": 6.3 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, v) = get(app, "/api/health/worklist?condition=diabetes", &w.wu).await;
    let open: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert!(!open.contains(&"follow_up_overdue") && !open.contains(&"follow_up"), "{open:?}");
}

/// The platform's own MQTT endpoint: a PUBACK once stored, then the reading on the worklist.
#[tokio::test]
async fn mqtt_readings_reach_the_worklist() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let iot = IotModule { listen: Some("127.0.0.1:0".into()), ..IotModule::default() };
    let Some(w) = world(Backend::Sqlite, iot, |_| {}).await else { return };
    let stop = CancellationToken::new();
    let _t1 = w.iot.start(&w.app.platform.state, stop.clone()).await.unwrap();
    let _t2 = w.health.start(&w.app.platform.state, stop.clone()).await.unwrap();
    let addr = w.iot.shared.mqtt_addr().expect("endpoint listening");
    let mut o = MqttOptions::new("bp-test", "127.0.0.1", addr.port());
    o.set_credentials(w.device.clone(), w.secret.clone());
    o.set_keep_alive(Duration::from_secs(5));
    let (c, mut ev) = AsyncClient::new(o, 16);
    let body = bp_body(now_ms() - 60_000, 182.0, 100.0).to_string();
    c.publish(format!("wuqing/{}/telemetry", w.device), QoS::AtLeastOnce, false, body).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout_at(deadline, ev.poll()).await.expect("PUBACK in time").unwrap();
        if matches!(e, Event::Incoming(Packet::PubAck(_))) {
            break;
        }
    }
    let items = worklist(&w.app, &w.wu, "", 2).await;
    assert_eq!(items[0]["action"], "urgent");
    assert_eq!(items[0]["evidence"]["heart_rate"], 76.0);
    stop.cancel();
}

/// The local Mosquitto as the district's broker: the platform subscribes, stores, acknowledges,
/// and the reading reaches the worklist.
#[tokio::test]
async fn mosquitto_readings_reach_the_worklist() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let Ok(broker) = std::env::var("WUQING_TEST_MQTT") else {
        eprintln!("skipped: WUQING_TEST_MQTT is not set (e.g. 127.0.0.1:1883, a local Mosquitto)");
        return;
    };
    let (host, port) = broker.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let prefix = format!("wqhealth/{}", &run[20..]);
    let (prefix2, broker2, cid) = (prefix.clone(), format!("mqtt://{broker}"), format!("wqh-{}", &run[16..]));
    let Some(w) = world(Backend::Sqlite, IotModule::default(), move |raw| {
        raw.mqtt.broker = broker2;
        raw.mqtt.topic_prefix = prefix2;
        raw.mqtt.client_id = cid;
    })
    .await
    else {
        return;
    };
    let stop = CancellationToken::new();
    let _t1 = w.iot.start(&w.app.platform.state, stop.clone()).await.unwrap();
    let _t2 = w.health.start(&w.app.platform.state, stop.clone()).await.unwrap();
    for _ in 0..100 {
        if w.iot.shared.broker.connected.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the SUBACK
    let mut o = MqttOptions::new(format!("dev-{}", &run[16..]), host, port);
    o.set_keep_alive(Duration::from_secs(5));
    let (c, mut ev) = AsyncClient::new(o, 16);
    let body = bp_body(now_ms() - 60_000, 146.0, 88.0).to_string();
    c.publish(format!("{prefix}/{}/telemetry", w.device), QoS::AtLeastOnce, false, body).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout_at(deadline, ev.poll()).await.expect("PUBACK in time").unwrap();
        if matches!(e, Event::Incoming(Packet::PubAck(_))) {
            break;
        }
    }
    let items = worklist(&w.app, &w.wu, "", 1).await;
    assert_eq!(
        (items[0]["action"].as_str(), items[0]["evidence"]["reading"]["systolic"].as_f64()),
        (Some("follow_up"), Some(146.0))
    );
    stop.cancel();
}
