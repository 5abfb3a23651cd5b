//! The alarm desk end to end: alarms raised by a rule engine (the service call), seen in scope,
//! acknowledged, handled and closed by the owning enterprise, supervised by the regulator, every
//! step recorded and audited; repeated reports fold into one alarm; bad input never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alarms::AlarmsModule;
use alarms::model::{NewAlarm, Severity};
use alarms::service::{self, Raised};
use axum::http::StatusCode;
use kernel::testing::{Backend, TestApp};
use serde_json::json;
use std::sync::Arc;

fn overspeed(org_id: &str, vehicle: &str, started_ms: i64, at_ms: i64, severity: Severity, speed: f64) -> NewAlarm {
    NewAlarm {
        domain: "transport".into(),
        kind: "overspeed".into(),
        severity,
        subject_type: "vehicle".into(),
        subject_id: vehicle.into(),
        subject_label: "津A·D1234".into(),
        org_id: org_id.into(),
        started_ms,
        at_ms,
        rule_version: 1,
        details: json!({"speed_kmh": speed, "limit_kmh": 80}),
        evidence: json!([{"device_ms": at_ms, "speed_kmh": speed}]),
    }
}

async fn scenario(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, vec![Arc::new(AlarmsModule::default())], |_| {}).await else { return };
    let st = &app.platform.state;
    let shunda = app.login("shunda.zhao").await;
    let (_, me) = app.get("/api/auth/me", &shunda).await;
    let shunda_org = me["user"]["org_id"].as_str().unwrap().to_string();
    let bus_op = app.login("bus.sun").await;
    let (_, me) = app.get("/api/auth/me", &bus_op).await;
    let bus_org = me["user"]["org_id"].as_str().unwrap().to_string();
    let regulator = app.login("jt.liu").await;
    let health = app.login("wjw.chen").await;

    // The engine raises an overspeed episode, then reports it again more severe: one alarm.
    let mut changes = st.bus.subscribe("alarms.transport.>").unwrap();
    let t0 = 1_795_000_000_000i64;
    let (a, how) =
        service::raise(&st.store, &st.bus, &overspeed(&shunda_org, "v1", t0, t0 + 60_000, Severity::Minor, 88.0))
            .await
            .unwrap();
    assert_eq!(how, Raised::New);
    let (again, how) =
        service::raise(&st.store, &st.bus, &overspeed(&shunda_org, "v1", t0, t0 + 120_000, Severity::Major, 100.0))
            .await
            .unwrap();
    assert_eq!((how, again.id.as_str()), (Raised::Updated, a.id.as_str()));
    assert_eq!((again.triggers, again.severity), (2, Severity::Major));
    assert_eq!(again.details["speed_kmh"], 100.0);
    // A later report less severe does not lower it.
    let (again, _) =
        service::raise(&st.store, &st.bus, &overspeed(&shunda_org, "v1", t0, t0 + 180_000, Severity::Minor, 86.0))
            .await
            .unwrap();
    assert_eq!((again.triggers, again.severity), (3, Severity::Major));
    let first = changes.next().await.unwrap();
    assert_eq!(first.subject, "alarms.transport.overspeed");
    // Another vehicle of another enterprise, and a notice.
    let (other, _) =
        service::raise(&st.store, &st.bus, &overspeed(&bus_org, "v2", t0, t0, Severity::Notice, 81.0)).await.unwrap();

    // Scope: each enterprise its own, the transport regulator both, the health regulator none.
    let (s, v) = app.get("/api/alarms?status=open", &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["id"], a.id.as_str());
    let (_, v) = app.get("/api/alarms", &regulator).await;
    assert_eq!(v["total"], 2);
    assert_eq!(v["items"][0]["severity"], "major", "most severe first");
    let (_, v) = app.get("/api/alarms?min_severity=major", &regulator).await;
    assert_eq!(v["total"], 1);
    let (_, v) = app.get("/api/alarms", &health).await;
    assert_eq!(v["total"], 0);
    let (s, _) = app.get(&format!("/api/alarms/{}", a.id), &bus_op).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another enterprise's alarm does not exist for it");

    // Handling: only the owner's operators; in order; the regulator supervises.
    let url = |step: &str| format!("/api/alarms/{}/{step}", a.id);
    let (s, v) = app.post(&url("close"), &shunda, json!({})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{v}");
    let (s, _) = app.post(&url("acknowledge"), &regulator, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.post(&url("supervise"), &regulator, json!({"note": ""})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")));
    let (s, v) = app.post(&url("supervise"), &regulator, json!({"note": "立即联系驾驶员减速"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["supervised"], true);
    let (s, v) = app.post(&url("acknowledge"), &shunda, json!({"note": "已看到"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("acknowledged")), "{v}");
    let (s, _) = app.post(&url("acknowledge"), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "twice");
    let (s, v) = app.post(&url("handle"), &shunda, json!({"action": "shouted"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let long = "长".repeat(501);
    let (s, v) = app.post(&url("handle"), &shunda, json!({"action": "phoned_driver", "note": long})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")));
    let (s, v) =
        app.post(&url("handle"), &shunda, json!({"action": "phoned_driver", "note": "已电话提醒驾驶员减速"})).await;
    assert_eq!(
        (s, v["status"].as_str(), v["action"].as_str()),
        (StatusCode::OK, Some("handled"), Some("phoned_driver"))
    );
    let (s, v) = app.post(&url("close"), &shunda, json!({})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("closed")));
    let (s, _) = app.post(&url("supervise"), &regulator, json!({"note": "again"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a closed alarm is not supervised");

    // The steps, with who and when; the audit log has the human ones.
    let (_, v) = app.get(&format!("/api/alarms/{}", a.id), &regulator).await;
    let steps: Vec<(&str, &str)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("raised", "rules"),
            ("supervised", "jt.liu"),
            ("acknowledged", "shunda.zhao"),
            ("handled", "shunda.zhao"),
            ("closed", "shunda.zhao")
        ]
    );
    let audited: i64 = sqlx::query_scalar(&st.store.sql(
        "SELECT COUNT(*) FROM audit_log WHERE target_kind = 'alarm' AND target_id = $1 AND action LIKE 'alarm.%'",
    ))
    .bind(a.id.clone())
    .fetch_one(st.store.reader())
    .await
    .unwrap();
    assert_eq!(audited, 4);
    let (_, v) = app.get("/api/alarms?status=open", &regulator).await;
    assert_eq!((v["total"].as_i64(), v["items"][0]["id"].as_str()), (Some(1), Some(other.id.as_str())));

    // The end of an episode is recorded, the handling goes on.
    let ended = service::end(&st.store, &st.bus, "transport", "overspeed", "v2", t0, t0 + 30_000).await.unwrap();
    assert!(ended.unwrap().ended_at.is_some());
    assert!(service::end(&st.store, &st.bus, "transport", "overspeed", "v9", t0, t0).await.unwrap().is_none());

    // Daily statistics per organisation, local day and kind.
    let (s, v) =
        app.get("/api/alarms/stats?from=2026-11-18T00:00:00%2B08:00&to=2026-11-19T00:00:00%2B08:00", &regulator).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mine = v.as_array().unwrap().iter().find(|r| r["org_id"] == shunda_org.as_str()).unwrap();
    assert_eq!(
        (mine["day"].as_str(), mine["raised"].as_i64(), mine["handled"].as_i64()),
        (Some("2026-11-18"), Some(1), Some(1))
    );
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = app.get("/api/alarms/stats?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z", &shunda).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "an enterprise counts its own: {v}");
    let (s, _) = app.get("/api/alarms/stats?from=2026-01-01T00:00:00Z&to=2027-06-01T00:00:00Z", &regulator).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = app.get("/api/alarms?status=lost", &regulator).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("status")));

    // Hostile input on every route, as every role: never a server error.
    let tokens = vec![None, Some(shunda), Some(regulator), Some(health)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

#[tokio::test]
async fn sqlite_alarm_desk() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_alarm_desk() {
    scenario(Backend::Postgres).await;
}

/// The desk's page (severity, then oldest first) is read in index order and stops after the
/// page, instead of sorting every alarm in scope (migration 3).
#[tokio::test]
async fn the_desk_page_is_read_in_index_order() {
    use sqlx::Row;
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(AlarmsModule::default())], |_| {}).await.unwrap();
    let rows = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT id, severity, started_ms FROM alarms WHERE 1 = 1 \
         ORDER BY severity DESC, started_ms, id LIMIT 50 OFFSET 0",
    )
    .fetch_all(app.platform.state.store.reader())
    .await
    .unwrap();
    let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
    let plan = plan.join("\n");
    assert!(plan.contains("alarms_desk_order") && !plan.contains("TEMP B-TREE"), "{plan}");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/api/alarms/stream").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("upgrade").0
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures::StreamExt;
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// The desk's WebSocket over a real socket: each caller hears the changes of its own scope.
#[tokio::test]
async fn the_stream_pushes_each_change_to_those_who_may_see_it() {
    use kernel::module::Module;
    let module = AlarmsModule::default();
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(module.clone())], |_| {}).await.unwrap();
    let st = app.platform.state.clone();
    let stop = kernel::platform::CancellationToken::new();
    let _tasks = module.start(&st, stop.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let shunda = app.login("shunda.zhao").await;
    let (_, me) = app.get("/api/auth/me", &shunda).await;
    let shunda_org = me["user"]["org_id"].as_str().unwrap().to_string();
    let bus_op = app.login("bus.sun").await;
    let (_, me) = app.get("/api/auth/me", &bus_op).await;
    let bus_org = me["user"]["org_id"].as_str().unwrap().to_string();
    let mut mine = connect(addr, &shunda).await;
    let mut theirs = connect(addr, &bus_op).await;
    let mut regulator = connect(addr, &app.login("jt.liu").await).await;
    // A plain GET is told to upgrade; a clinician may not listen.
    let (s, _) = app.get("/api/alarms/stream", &shunda).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let t0 = 1_795_000_000_000i64;
    let (a, _) =
        service::raise(&st.store, &st.bus, &overspeed(&shunda_org, "v1", t0, t0, Severity::Minor, 88.0)).await.unwrap();
    let (b, _) =
        service::raise(&st.store, &st.bus, &overspeed(&bus_org, "v2", t0, t0, Severity::Minor, 85.0)).await.unwrap();
    let got = next_json(&mut mine).await;
    assert_eq!((got["type"].as_str(), got["alarm"]["id"].as_str()), (Some("alarm"), Some(a.id.as_str())));
    // The other enterprise hears only its own: its first message is its own alarm.
    let got = next_json(&mut theirs).await;
    assert_eq!(got["alarm"]["id"], b.id.as_str());
    // The regulator hears both, in order.
    assert_eq!(next_json(&mut regulator).await["alarm"]["id"], a.id.as_str());
    assert_eq!(next_json(&mut regulator).await["alarm"]["id"], b.id.as_str());
    // A handling step is a change too.
    let (s, _) = app.post(&format!("/api/alarms/{}/acknowledge", a.id), &shunda, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let got = next_json(&mut mine).await;
    assert_eq!(
        (got["alarm"]["id"].as_str(), got["alarm"]["status"].as_str()),
        (Some(a.id.as_str()), Some("acknowledged"))
    );
    stop.cancel();
}

/// Issue #8 (schemathesis): an alarm's evidence (a list of observations) was documented as an
/// object, and its status and steps under names other modules reused; the desk's answers must
/// match the OpenAPI document.
#[tokio::test]
async fn issue_8_the_desk_answers_as_documented() {
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(AlarmsModule::default())], |_| {}).await.unwrap();
    let st = &app.platform.state;
    let shunda = app.login("shunda.zhao").await;
    let (_, me) = app.get("/api/auth/me", &shunda).await;
    let org = me["user"]["org_id"].as_str().unwrap().to_string();
    let t0 = 1_795_000_000_000i64;
    let (a, _) = service::raise(&st.store, &st.bus, &overspeed(&org, "v1", t0, t0 + 60_000, Severity::Minor, 88.0))
        .await
        .unwrap();
    let mut quiet = overspeed(&org, "v2", t0, t0 + 60_000, Severity::Minor, 88.0);
    quiet.evidence = json!([]);
    service::raise(&st.store, &st.bus, &quiet).await.unwrap();
    let (s, v) = app
        .call(axum::http::Method::POST, &format!("/api/alarms/{}/acknowledge", a.id), Some(&shunda), Some(json!({})))
        .await;
    assert!(s.is_success(), "{v}");
    let get = axum::http::Method::GET;
    let (s, v) = app.call_documented(get.clone(), "/api/alarms", "/api/alarms", Some(&shunda), None).await;
    assert_eq!((s, v["total"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    let uri = format!("/api/alarms/{}", a.id);
    let (s, v) = app.call_documented(get, "/api/alarms/{id}", &uri, Some(&shunda), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["evidence"].is_array(), "{v}");
}
