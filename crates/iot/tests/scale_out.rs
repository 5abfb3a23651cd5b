//! Sensor readings scaled out (against the local NATS and PostgreSQL; skipped, with the reason
//! printed, where `WUQING_TEST_NATS` or `WUQING_TEST_PG` is not set): an upload is acknowledged
//! once JetStream holds it, a processor stores it and runs the sensor rules of the device's
//! partition; when that processor leaves, the other takes the partition with its rules state,
//! so the excursion it had begun still raises one alarm, and a retransmitted message is stored
//! once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use iot::IotModule;
use kernel::module::Module;
use kernel::platform::{CancellationToken, Platform};
use kernel::store::now_ms;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn upload(app: &TestApp, code: &str, secret: &str, body: &Value) -> StatusCode {
    use axum::body::Body;
    use tower::ServiceExt;
    let auth = format!("Basic {}", data_encoding::BASE64.encode(format!("{code}:{secret}").as_bytes()));
    let req = axum::http::Request::post("/api/iot/ingest")
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.router.clone().oneshot(req).await.unwrap().status()
}

async fn stored(app: &TestApp, code: &str) -> i64 {
    let store = &app.platform.state.store;
    sqlx::query_scalar(&store.sql("SELECT COUNT(*) FROM observations WHERE source = $1"))
        .bind(code)
        .fetch_one(store.reader())
        .await
        .unwrap()
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn postgres_readings_through_jetstream_and_partitioned_rules() {
    let Some(nats) = kernel::testing::nats_url() else { return };
    let namespace = format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let module = IotModule { save_every: Duration::from_millis(200), ..IotModule::default() };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let ns = namespace.clone();
    let Some(app) = TestApp::spawn_with(Backend::Postgres, modules.clone(), |raw| {
        raw.bus.url = nats.clone();
        raw.bus.namespace = ns;
        raw.bus.partitions = 1;
    })
    .await
    else {
        return;
    };
    let shunda = app.login("shunda.zhao").await;
    let (s, v) = app
        .post(
            "/api/iot/devices",
            &shunda,
            json!({"code": "SD-REEFER-31", "kind": "reefer_probe", "name": "冷藏车厢探头 Reefer probe",
                   "subject_type": "cold_store", "subject_label": "津C·D1234 冷藏车厢"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (id, secret) = (v["device"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string());

    // A processor-only node ("b") starts first and takes the one partition.
    let mut cfg_b = (*app.platform.state.config).clone();
    cfg_b.node = "b".into();
    cfg_b.roles = kernel::config::Roles { gateway: false, processor: true, api: false };
    let b = Platform::open(cfg_b, modules.clone()).await.unwrap();
    let stop_b = CancellationToken::new();
    let tasks_b = module.start(&b.state, stop_b.clone()).await.unwrap();
    let store = app.platform.state.store.clone();
    until("b holding the partition", || async {
        kernel::cluster::members(&store, iot::processor::GROUP).await.unwrap().iter().any(|(n, p)| n == "b" && *p == 1)
    })
    .await;

    // The excursion begins while b holds the partition: 5.0, then above 8 °C.
    let t0 = now_ms() - 3_600_000;
    let reading = |dt: i64, v: f64| json!({"ts": t0 + dt * 1000, "readings": {"temperature": v}});
    for (dt, v) in [(0, 5.0), (60, 9.0), (180, 9.4)] {
        assert_eq!(upload(&app, "SD-REEFER-31", &secret, &reading(dt, v)).await, StatusCode::OK);
    }
    until("b storing the first readings", || async { stored(&app, "SD-REEFER-31").await == 3 }).await;
    // b leaves (its state saved at release); the gateway-and-API node ("a") becomes a processor
    // too and claims the partition.
    stop_b.cancel();
    for t in tasks_b {
        t.await.unwrap();
    }
    let stop_a = CancellationToken::new();
    let tasks_a = module.start(&app.platform.state, stop_a.clone()).await.unwrap();
    let mut alarm_tasks = alarms::AlarmsModule::default().start(&app.platform.state, stop_a.clone()).await.unwrap();
    for (dt, v) in [(300, 8.6), (360, 9.8)] {
        assert_eq!(upload(&app, "SD-REEFER-31", &secret, &reading(dt, v)).await, StatusCode::OK);
    }
    // A retransmission of a message already on the stream, and one already stored.
    assert_eq!(upload(&app, "SD-REEFER-31", &secret, &reading(360, 9.8)).await, StatusCode::OK);
    assert_eq!(upload(&app, "SD-REEFER-31", &secret, &reading(60, 9.0)).await, StatusCode::OK);
    assert_eq!(upload(&app, "SD-REEFER-31", &secret, &reading(420, 7.2)).await, StatusCode::OK);
    until("the episode raised and ended", || async {
        let (_, v) = app.get(&format!("/api/alarms?subject_id={id}&kind=reefer_temp_high"), &shunda).await;
        v["items"][0]["ended_at"].is_string()
    })
    .await;
    let (_, v) = app.get(&format!("/api/alarms?subject_id={id}&kind=reefer_temp_high"), &shunda).await;
    assert_eq!(v["total"], 1, "one alarm for one episode: {v}");
    // Begun under b, at the first reading above 8 °C, five minutes before a saw the one that
    // raised it.
    assert_eq!(v["items"][0]["started_at"], kernel::store::ms_to_rfc3339(t0 + 60_000));
    assert_eq!(v["items"][0]["ended_at"], kernel::store::ms_to_rfc3339(t0 + 420_000));
    assert_eq!(stored(&app, "SD-REEFER-31").await, 6, "every reading stored once");
    stop_a.cancel();
    for t in tasks_a {
        t.await.unwrap();
    }
    for t in alarm_tasks.drain(..) {
        t.await.unwrap();
    }
    let js = app.platform.state.cluster.clone().unwrap().js;
    let _ = js.delete_stream(format!("{namespace}_readings").to_uppercase()).await;
    let _ = js.delete_stream(format!("{namespace}_positions").to_uppercase()).await;
}
