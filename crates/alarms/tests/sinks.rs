//! The notification sinks end to end: webhooks registered over the API receive the alarm changes
//! of their organisation's scope, signed (the signature checked here with an HMAC computed
//! independently), filtered, retried after a failure and resumed after a restart; the secret is
//! shown once and rotation changes the signature; scoping, bad URLs and hostile input. MQTT: a
//! raised alarm reaches a subscriber of the local broker (`WUQING_TEST_MQTT`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alarms::AlarmsModule;
use alarms::model::{NewAlarm, Severity};
use alarms::service;
use alarms::sinks::SinkSettings;
use axum::http::{HeaderMap, Method, StatusCode};
use hmac::{Hmac, Mac};
use kernel::module::Module;
use kernel::platform::CancellationToken;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn alarm(org_id: &str, vehicle: &str, severity: Severity, started_ms: i64) -> NewAlarm {
    NewAlarm {
        domain: "transport".into(),
        kind: "overspeed".into(),
        severity,
        subject_type: "vehicle".into(),
        subject_id: vehicle.into(),
        subject_label: "津A·D1234".into(),
        org_id: org_id.into(),
        started_ms,
        at_ms: started_ms,
        rule_version: 1,
        details: json!({"speed_kmh": 95.0, "limit_kmh": 80}),
        evidence: json!([]),
    }
}

// ------------------------------------------------------------ a receiver over a real socket

#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Records every request; answers each path from its script of statuses, then 200.
#[derive(Clone, Default)]
struct Receiver {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver { base: format!("http://{}", listener.local_addr().unwrap()), ..Receiver::default() };
        let state = r.clone();
        let app = axum::Router::new().fallback(
            |axum::extract::State(r): axum::extract::State<Receiver>,
             uri: axum::http::Uri,
             headers: HeaderMap,
             body: axum::body::Bytes| async move {
                let path = uri.path().to_string();
                let code = r.script.lock().unwrap().get_mut(&path).and_then(VecDeque::pop_front).unwrap_or(200);
                let body = String::from_utf8(body.to_vec()).unwrap();
                r.hits.lock().unwrap().push(Hit { path, headers, body });
                StatusCode::from_u16(code).unwrap()
            },
        );
        tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn script(&self, path: &str, codes: &[u16]) {
        self.script.lock().unwrap().insert(path.to_string(), codes.iter().copied().collect());
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits.lock().unwrap().iter().filter(|h| h.path == path).cloned().collect()
    }

    /// Waits until `path` has received `n` requests; returns them all.
    async fn wait(&self, path: &str, n: usize) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hits = self.hits(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path}: {} of {n} requests in time", hits.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The receiver's side of the signature, computed here without the platform's code.
fn verify(hit: &Hit, secret: &str) -> bool {
    let ts = hit.header("x-wuqing-timestamp");
    let Some(hex) = hit.header("x-wuqing-signature").strip_prefix("sha256=") else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", hit.body).as_bytes());
    let Ok(sig) = data_encoding::HEXLOWER.decode(hex.as_bytes()) else { return false };
    // Constant-time comparison, as a receiver should.
    let fresh = ts.parse::<i64>().is_ok_and(|t| (t - kernel::testing::now_secs() as i64).abs() <= 300);
    fresh && mac.verify_slice(&sig).is_ok()
}

async fn patch(app: &TestApp, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PATCH, uri, Some(token), Some(body)).await
}

async fn org_of(app: &TestApp, token: &str) -> String {
    let (_, me) = app.get("/api/auth/me", token).await;
    me["user"]["org_id"].as_str().unwrap().to_string()
}

async fn create(app: &TestApp, token: &str, body: Value) -> (String, String) {
    let (s, v) = app.post("/api/alarms/webhooks", token, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (v["webhook"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

/// Polls a webhook's deliveries until `pred` holds for the newest of them.
async fn wait_delivery(app: &TestApp, token: &str, hook: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if let Some(d) = v["items"].as_array().and_then(|a| a.first()).filter(|d| pred(d)) {
            return d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery not as expected in time: {v}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn quick() -> SinkSettings {
    SinkSettings {
        max_attempts: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        poll: Duration::from_millis(50),
        ..SinkSettings::default()
    }
}

async fn scenario(backend: Backend) {
    let module = AlarmsModule::with_sink_settings(quick());
    let Some(app) = TestApp::spawn_with(backend, vec![Arc::new(module.clone())], |_| {}).await else { return };
    let st = app.platform.state.clone();
    let stop = CancellationToken::new();
    let _tasks = module.start(&st, stop.clone()).await.unwrap();
    let rx = Receiver::start().await;

    let shunda = app.login("shunda.zhao").await;
    let shunda_org = org_of(&app, &shunda).await;
    let bus = app.login("bus.sun").await;
    let bus_org = org_of(&app, &bus).await;
    let regulator = app.login("jt.liu").await;
    let health = app.login("wjw.chen").await;

    // Registration: the secret is shown once, never again.
    let (s, v) = app
        .post(
            "/api/alarms/webhooks",
            &shunda,
            json!({"url": rx.url("/shunda"), "description": "调度中心", "min_severity": "minor"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let hook = v["webhook"]["id"].as_str().unwrap().to_string();
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
    assert_eq!((v["webhook"]["org_id"].as_str(), v["webhook"]["enabled"].as_bool()), (Some(&*shunda_org), Some(true)));
    let (s, v) = app.get(&format!("/api/alarms/webhooks/{hook}"), &shunda).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.get("secret").is_none() && !v.to_string().contains(&secret), "{v}");
    let (_, v) = app.get("/api/alarms/webhooks", &shunda).await;
    assert!(!v.to_string().contains(&secret));
    let (major_hook, _) = create(&app, &shunda, json!({"url": rx.url("/shunda-major"), "min_severity": "major"})).await;
    let (bus_hook, bus_secret) = create(&app, &bus, json!({"url": rx.url("/bus")})).await;
    let (reg_hook, reg_secret) =
        create(&app, &regulator, json!({"url": rx.url("/regulator"), "domains": ["transport"]})).await;
    let (flaky_hook, _) = create(&app, &bus, json!({"url": rx.url("/flaky"), "kinds": ["overspeed"]})).await;
    rx.script("/flaky", &[500]);
    let (dead_hook, _) = create(&app, &bus, json!({"url": rx.url("/dead"), "kinds": ["fatigue"]})).await;
    rx.script("/dead", &[503, 503, 503, 503]);

    // A raised alarm reaches its enterprise's webhook and the regulator's, signed.
    let t0 = 1_795_000_000_000i64;
    let (a, _) = service::raise(&st.store, &st.bus, &alarm(&shunda_org, "v1", Severity::Minor, t0)).await.unwrap();
    let hit = rx.wait("/shunda", 1).await.remove(0);
    assert!(verify(&hit, &secret), "signature: {:?}", hit.headers);
    assert!(!verify(&hit, &bus_secret), "another secret does not verify");
    assert_eq!(hit.header("x-wuqing-event"), "alarm.raised");
    assert_eq!(hit.header("content-type"), "application/json");
    let body = hit.json();
    assert_eq!((body["event"].as_str(), body["alarm"]["id"].as_str()), (Some("alarm.raised"), Some(a.id.as_str())));
    assert_eq!(
        (body["alarm"]["severity"].as_str(), body["alarm"]["org_id"].as_str()),
        (Some("minor"), Some(&*shunda_org))
    );
    let first_delivery = hit.header("x-wuqing-delivery").to_string();
    let reg = rx.wait("/regulator", 1).await.remove(0);
    assert!(verify(&reg, &reg_secret));
    assert_eq!(reg.json()["alarm"]["id"], a.id.as_str());

    // Another enterprise's alarm: its own webhooks and the regulator's, not shunda's.
    let (b, _) = service::raise(&st.store, &st.bus, &alarm(&bus_org, "v2", Severity::Notice, t0)).await.unwrap();
    let got = rx.wait("/bus", 1).await.remove(0);
    assert!(verify(&got, &bus_secret));
    assert_eq!(got.json()["alarm"]["id"], b.id.as_str());
    rx.wait("/regulator", 2).await;
    // The flaky receiver answers 500 first: the same delivery comes again and is delivered.
    let flaky = rx.wait("/flaky", 2).await;
    assert_eq!(flaky[0].header("x-wuqing-delivery"), flaky[1].header("x-wuqing-delivery"));
    assert_eq!(flaky[1].json()["alarm"]["id"], b.id.as_str());
    let d = wait_delivery(&app, &bus, &flaky_hook, |d| d["status"] == "delivered").await;
    assert_eq!((d["attempts"].as_i64(), d["last_status_code"].as_i64()), (Some(2), Some(200)), "{d}");
    assert_eq!((d["alarm_id"].as_str(), d["event"].as_str()), (Some(b.id.as_str()), Some("alarm.raised")));

    // A receiver that keeps failing: given up after the last attempt, with its last answer.
    let (c, _) = service::raise(
        &st.store,
        &st.bus,
        &NewAlarm { kind: "fatigue".into(), ..alarm(&bus_org, "v3", Severity::Major, t0) },
    )
    .await
    .unwrap();
    let d = wait_delivery(&app, &bus, &dead_hook, |d| d["status"] == "failed").await;
    assert_eq!((d["attempts"].as_i64(), d["last_status_code"].as_i64()), (Some(3), Some(503)), "{d}");
    assert_eq!(d["last_error"], "answered 503");
    assert_eq!(d["alarm_id"], c.id.as_str());
    assert_eq!(rx.hits("/dead").len(), 3);

    // A handling step is an event of its own.
    let (s, _) = app.post(&format!("/api/alarms/{}/acknowledge", a.id), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let hits = rx.wait("/shunda", 2).await;
    assert!(verify(&hits[1], &secret));
    assert_eq!(
        (hits[1].header("x-wuqing-event"), hits[1].json()["alarm"]["status"].as_str()),
        ("alarm.acknowledged", Some("acknowledged"))
    );
    assert_ne!(hits[1].header("x-wuqing-delivery"), first_delivery);
    rx.wait("/regulator", 4).await;

    // The severity filter: the major-only webhook got none of these; the enterprise's webhooks
    // only their own alarms.
    assert!(rx.hits("/shunda-major").is_empty());
    let (_, v) = app.get(&format!("/api/alarms/webhooks/{major_hook}/deliveries"), &shunda).await;
    assert_eq!(v["total"], 0);
    for h in rx.hits("/shunda") {
        assert_eq!(h.json()["alarm"]["id"], a.id.as_str(), "shunda hears only its own alarm");
    }
    let (_, v) = app.get(&format!("/api/alarms/webhooks/{bus_hook}/deliveries"), &bus).await;
    let mut heard: Vec<&str> = v["items"].as_array().unwrap().iter().map(|d| d["alarm_id"].as_str().unwrap()).collect();
    heard.sort();
    let mut want = vec![b.id.as_str(), c.id.as_str()];
    want.sort();
    assert_eq!(heard, want, "bus's own alarms, nothing else");
    for h in rx.hits("/bus") {
        assert_ne!(h.json()["alarm"]["id"], a.id.as_str(), "bus does not hear shunda's alarm");
    }
    let regulator_heard: Vec<Value> = rx.hits("/regulator").iter().map(|h| h.json()["alarm"]["id"].clone()).collect();
    assert!(regulator_heard.contains(&json!(b.id)) && regulator_heard.contains(&json!(c.id)));

    // Rotation: a new secret, shown once; the test event is signed with it, not the old one.
    let (s, v) = app.post(&format!("/api/alarms/webhooks/{hook}/rotate-secret"), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rotated = v["secret"].as_str().unwrap().to_string();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let (s, v) = app.post(&format!("/api/alarms/webhooks/{hook}/test"), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["event"].as_str(), v["attempts"].as_i64()),
        (Some("delivered"), Some("webhook.test"), Some(1)),
        "{v}"
    );
    let hits = rx.wait("/shunda", 3).await;
    let test_hit = &hits[2];
    assert_eq!(test_hit.json(), json!({"event": "webhook.test", "alarm": null}));
    assert!(verify(test_hit, &rotated) && !verify(test_hit, &secret));
    // A test to a receiver that fails is failed at once, with the reason.
    let (s, v) = patch(
        &app,
        &format!("/api/alarms/webhooks/{major_hook}"),
        &shunda,
        json!({"url": "http://127.0.0.1:9/closed"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.post(&format!("/api/alarms/webhooks/{major_hook}/test"), &shunda, json!({})).await;
    assert_eq!((v["status"].as_str(), v["last_status_code"].as_i64()), (Some("failed"), None), "{v}");
    assert!(v["last_error"].as_str().unwrap().starts_with("connection failed"), "{v}");
    assert!(!v["last_error"].as_str().unwrap().contains("127.0.0.1"), "no URL in errors: {v}");

    // The deliveries, newest first, filtered by status.
    let (s, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries"), &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 3);
    let events: Vec<&str> = v["items"].as_array().unwrap().iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["webhook.test", "alarm.acknowledged", "alarm.raised"]);
    assert!(v["items"].as_array().unwrap().iter().all(|d| d["status"] == "delivered" && d["delivered_at"].is_string()));
    let (_, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries?status=pending"), &shunda).await;
    assert_eq!(v["total"], 0);
    let (s, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries?status=lost"), &shunda).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("status")));

    // Scope: another enterprise's webhook does not exist; the regulator reads its domain's but
    // manages only its own; another domain's regulator sees none.
    let url = format!("/api/alarms/webhooks/{hook}");
    for (m, u) in [
        (Method::GET, url.clone()),
        (Method::PATCH, url.clone()),
        (Method::DELETE, url.clone()),
        (Method::POST, format!("{url}/rotate-secret")),
        (Method::POST, format!("{url}/test")),
        (Method::GET, format!("{url}/deliveries")),
    ] {
        let (s, v) = app.call(m.clone(), &u, Some(&bus), Some(json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {u}: {v}");
        let (s, _) = app.call(m.clone(), &u, Some(&health), Some(json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {u}");
    }
    let (s, _) = app.get(&url, &regulator).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = patch(&app, &url, &regulator, json!({"enabled": false})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post(&format!("{url}/rotate-secret"), &regulator, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = app.get("/api/alarms/webhooks", &bus).await;
    assert_eq!(v["total"], 3, "its own three: {v}");
    let (_, v) = app.get("/api/alarms/webhooks", &regulator).await;
    assert_eq!(v["total"], 6, "its own and its domain's: {v}");
    let (_, v) = app.get("/api/alarms/webhooks", &health).await;
    assert_eq!(v["total"], 0);
    let (s, _) = app.get(&format!("/api/alarms/webhooks?org_id={shunda_org}"), &bus).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.get(&format!("/api/alarms/webhooks/{reg_hook}"), &shunda).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the bureau's webhook is not an enterprise's business: {v}");
    let clinician = app.login("dr.yang").await;
    let (s, _) = app.post("/api/alarms/webhooks", &clinician, json!({"url": rx.url("/x")})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Bad URLs and filters are refused by name.
    for bad in [
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "https://user@example.com/hook",
        "",
        "not a url",
        "javascript:alert(1)",
        "https://example.com/a b",
        "https://example.com/#x",
    ] {
        let (s, v) = app.post("/api/alarms/webhooks", &shunda, json!({"url": bad})).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("url")), "{bad:?}: {v}");
    }
    let long = format!("https://example.com/{}", "a".repeat(2100));
    let (s, _) = app.post("/api/alarms/webhooks", &shunda, json!({"url": long})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = patch(&app, &url, &shunda, json!({"url": "gopher://example.com/"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("url")));
    let (s, v) = app.post("/api/alarms/webhooks", &shunda, json!({"url": rx.url("/x"), "domains": ["atlantis"]})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("domains")));
    let (s, _) =
        app.post("/api/alarms/webhooks", &shunda, json!({"url": rx.url("/x"), "min_severity": "apocalyptic"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Updates and deletion; every write is audited, never with the secret.
    let (s, v) = patch(&app, &url, &shunda, json!({"enabled": false, "kinds": ["overspeed", "fatigue"]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["enabled"].as_bool(), v["kinds"].clone()), (Some(false), json!(["fatigue", "overspeed"])));
    let (s, _) = app.call(Method::DELETE, &format!("/api/alarms/webhooks/{flaky_hook}"), Some(&bus), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/api/alarms/webhooks/{flaky_hook}"), &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT action, detail FROM audit_log WHERE action LIKE 'alarm.webhook.%' ORDER BY seq")
            .fetch_all(st.store.reader())
            .await
            .unwrap();
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    for want in [
        "alarm.webhook.create",
        "alarm.webhook.rotate_secret",
        "alarm.webhook.test",
        "alarm.webhook.update",
        "alarm.webhook.delete",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| **a == "alarm.webhook.create").count(), 6);
    assert!(rows.iter().all(|(_, d)| !d.contains("whsec_")), "no secret in the audit log");
    let stored: i64 = sqlx::query_scalar(
        &st.store.sql("SELECT COUNT(*) FROM alarm_webhooks WHERE url LIKE '%whsec_%' OR description LIKE '%whsec_%'"),
    )
    .fetch_one(st.store.reader())
    .await
    .unwrap();
    assert_eq!(stored, 0);

    // A disabled webhook is not queued for (the regulator's delivery of the same change is
    // committed with any other).
    service::raise(&st.store, &st.bus, &alarm(&shunda_org, "v4", Severity::Critical, t0)).await.unwrap();
    rx.wait("/regulator", 5).await;
    let (_, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries"), &shunda).await;
    assert_eq!(v["total"], 3, "{v}");

    // Scaled out, every processor hears each alarm change: with a second processor's intake and
    // sender running beside the first, a change is still queued, and posted, once per webhook.
    let _second = module.start(&st, stop.clone()).await.unwrap();
    let (_, before) = app.get(&format!("/api/alarms/webhooks/{reg_hook}/deliveries"), &regulator).await;
    service::raise(&st.store, &st.bus, &alarm(&shunda_org, "v5", Severity::Critical, t0)).await.unwrap();
    rx.wait("/regulator", 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let (_, after) = app.get(&format!("/api/alarms/webhooks/{reg_hook}/deliveries"), &regulator).await;
    assert_eq!(after["total"].as_i64(), before["total"].as_i64().map(|n| n + 1), "one delivery: {after}");
    assert_eq!(rx.hits("/regulator").len(), 6);

    // Hostile input on every route, as every role: never a server error.
    let tokens = vec![None, Some(shunda), Some(regulator), Some(health)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
    stop.cancel();
}

#[tokio::test]
async fn sqlite_webhooks() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_webhooks() {
    scenario(Backend::Postgres).await;
}

/// A delivery pending when the platform stops is sent when it starts again.
async fn restart(backend: Backend) {
    let settings = SinkSettings {
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(1),
        poll: Duration::from_millis(50),
        ..SinkSettings::default()
    };
    let module = AlarmsModule::with_sink_settings(settings.clone());
    let Some(app) = TestApp::spawn_with(backend, vec![Arc::new(module.clone())], |_| {}).await else { return };
    let st = app.platform.state.clone();
    let rx = Receiver::start().await;
    let shunda = app.login("shunda.zhao").await;
    let org = org_of(&app, &shunda).await;
    let (hook, secret) = create(&app, &shunda, json!({"url": rx.url("/down")})).await;
    rx.script("/down", &[502; 50]);

    let stop = CancellationToken::new();
    let tasks = module.start(&st, stop.clone()).await.unwrap();
    let (a, _) =
        service::raise(&st.store, &st.bus, &alarm(&org, "v1", Severity::Minor, 1_795_000_000_000)).await.unwrap();
    let first = rx.wait("/down", 1).await.remove(0);
    wait_delivery(&app, &shunda, &hook, |d| d["status"] == "pending" && d["attempts"].as_i64() >= Some(1)).await;
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    let (_, v) = app.get(&format!("/api/alarms/webhooks/{hook}/deliveries"), &shunda).await;
    assert_eq!(v["items"][0]["status"], "pending", "{v}");
    let attempts = v["items"][0]["attempts"].as_i64().unwrap();

    // The receiver recovers; a new start (same store) sends the pending delivery.
    rx.script("/down", &[]);
    let again = AlarmsModule::with_sink_settings(settings);
    let stop = CancellationToken::new();
    let _tasks = again.start(&st, stop.clone()).await.unwrap();
    let d = wait_delivery(&app, &shunda, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(d["attempts"].as_i64(), Some(attempts + 1), "{d}");
    let hits = rx.hits("/down");
    let last = hits.last().unwrap();
    assert_eq!(last.header("x-wuqing-delivery"), first.header("x-wuqing-delivery"));
    assert!(verify(last, &secret));
    assert_eq!(last.json()["alarm"]["id"], a.id.as_str());
    stop.cancel();
}

#[tokio::test]
async fn sqlite_pending_deliveries_survive_a_restart() {
    restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_pending_deliveries_survive_a_restart() {
    restart(Backend::Postgres).await;
}

/// A raised alarm reaches a subscriber of the configured broker.
#[tokio::test]
async fn mqtt_publishes_alarm_changes() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let broker = match std::env::var("WUQING_TEST_MQTT") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            eprintln!("skipped: WUQING_TEST_MQTT is not set (e.g. 127.0.0.1:1883, the local Mosquitto)");
            return;
        }
    };
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let port: u16 = port.parse().expect("port");
    let run = uuid::Uuid::now_v7().simple().to_string();
    let tail = &run[run.len() - 10..];
    let prefix = format!("wqtest/{tail}");

    // The subscriber first, so that nothing is missed.
    let (sub, mut events) = AsyncClient::new(MqttOptions::new(format!("wqsub-{tail}"), host, port), 16);
    sub.subscribe(format!("{prefix}/alarms/#"), QoS::AtLeastOnce).await.unwrap();
    let (tx, mut got) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(None);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(Some((p.topic.clone(), p.payload.to_vec())));
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("subscriber: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    let suback = tokio::time::timeout(WAIT, got.recv()).await.expect("subscribed in time");
    assert_eq!(suback, Some(None));

    let module = AlarmsModule::default();
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(module.clone())], |raw| {
        raw.mqtt.listen = "off".into();
        raw.mqtt.broker = format!("mqtt://{broker}");
        raw.mqtt.client_id = format!("wq-{tail}");
        raw.mqtt.topic_prefix = prefix.clone();
    })
    .await
    .unwrap();
    let st = app.platform.state.clone();
    let stop = CancellationToken::new();
    let tasks = module.start(&st, stop.clone()).await.unwrap();
    assert_eq!(tasks.len(), 5, "hub, webhook intake and sender, MQTT publisher and its event loop");
    let shunda = app.login("shunda.zhao").await;
    let org = org_of(&app, &shunda).await;
    let (a, _) =
        service::raise(&st.store, &st.bus, &alarm(&org, "v1", Severity::Major, 1_795_000_000_000)).await.unwrap();
    let (topic, payload) = tokio::time::timeout(WAIT, got.recv()).await.expect("published in time").unwrap().unwrap();
    assert_eq!(topic, format!("{prefix}/alarms/transport/overspeed"));
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!((v["event"].as_str(), v["alarm"]["id"].as_str()), (Some("alarm.raised"), Some(a.id.as_str())));
    assert_eq!(v["alarm"]["severity"], "major");
    stop.cancel();
}

/// Without a broker, no MQTT task starts.
#[tokio::test]
async fn no_broker_no_mqtt_task() {
    let module = AlarmsModule::default();
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(module.clone())], |_| {}).await.unwrap();
    let stop = CancellationToken::new();
    let tasks = module.start(&app.platform.state, stop.clone()).await.unwrap();
    assert_eq!(tasks.len(), 3);
    stop.cancel();
}
