//! The transport rules at work: stored positions go through the alarm engine, its alarms reach
//! the desk scoped to the owning enterprise, a fatigue pre-warning is sent to the driver's
//! terminal with its delivery recorded, and the engine's state is saved at shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use transport::TransportModule;
use transport::positions::{Position, STATUS_ACC, STATUS_FIXED};

fn at(vehicle: &str, t_ms: i64, lon: f64, speed: f64) -> Position {
    Position {
        vehicle_id: vehicle.into(),
        device_ms: t_ms,
        received_ms: t_ms + 500,
        lat: 39.38,
        lon,
        altitude_m: 8,
        speed_kmh: speed,
        heading: 90,
        alarm: 0,
        status: STATUS_FIXED | STATUS_ACC,
        mileage_km: None,
        extras: vec![],
    }
}

/// Waits (at most 20 s) until the desk lists an alarm of `kind` for `vehicle`.
async fn alarm_of(app: &TestApp, token: &str, vehicle: &str, kind: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = app.get(&format!("/api/alarms?subject_id={vehicle}&kind={kind}"), token).await;
        if v["total"].as_i64().unwrap_or(0) > 0 {
            return v["items"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} alarm for {vehicle}");
}

async fn scenario(backend: Backend) {
    let module = TransportModule { alerting: true, ..TransportModule::new() };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let token = kernel::platform::CancellationToken::new();
    let tasks = module.start(st, token.clone()).await.unwrap();

    let shunda = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=2", &shunda).await;
    let speeder = v["items"][0]["id"].as_str().unwrap().to_string();
    let plate = v["items"][0]["plate"].as_str().unwrap().to_string();
    let tired = v["items"][1]["id"].as_str().unwrap().to_string();

    // Three minutes at 120 km/h, a report every 10 s, then slowing down: one overspeed alarm.
    // The day starts at 08:00 local (00:00 UTC) at least 5 h ago, so the drive below stays in
    // daytime, whose 4 h continuous-driving limit differs from the night's 2 h.
    let latest = kernel::store::now_ms() - 5 * 3_600_000;
    let t0 = latest - latest.rem_euclid(86_400_000);
    let mut batch = vec![];
    for k in 0..18 {
        batch.push(at(&speeder, t0 + k * 10_000, 117.0 + k as f64 * 0.004, 120.0));
    }
    for k in 18..30 {
        batch.push(at(&speeder, t0 + k * 10_000, 117.072 + (k - 18) as f64 * 0.002, 50.0));
    }
    transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    let a = alarm_of(&app, &shunda, &speeder, "overspeed").await;
    assert_eq!(a["subject"]["label"], plate.as_str());
    assert_eq!(a["status"], "raised");
    assert_eq!(a["details"]["limit_kmh"], 80.0, "{a}");
    // Its end is recorded once the speed is back under the limit.
    for _ in 0..100 {
        let (_, v) = app.get(&format!("/api/alarms/{}", a["id"].as_str().unwrap()), &shunda).await;
        if !v["ended_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, v) = app.get(&format!("/api/alarms/{}", a["id"].as_str().unwrap()), &shunda).await;
    assert!(!v["ended_at"].is_null(), "{v}");
    // Another enterprise does not see it.
    let bus = app.login("bus.sun").await;
    let (_, v) = app.get(&format!("/api/alarms?subject_id={speeder}"), &bus).await;
    assert_eq!(v["total"], 0);

    // 3 h 40 min of driving without rest, a report a minute: the pre-warning at 3 h 30 is sent
    // to the terminal (offline here), and the attempt is recorded in the alarm's steps.
    let batch: Vec<Position> = (0..220).map(|m| at(&tired, t0 + m * 60_000, 117.0 + m as f64 * 0.01, 60.0)).collect();
    transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    let pre = alarm_of(&app, &shunda, &tired, "fatigue_continuous_pre_warning").await;
    assert_eq!(pre["severity"], "notice");
    let id = pre["id"].as_str().unwrap().to_string();
    let mut steps = Value::Null;
    for _ in 0..200 {
        let (_, v) = app.get(&format!("/api/alarms/{id}"), &shunda).await;
        steps = v["steps"].clone();
        if steps.as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(steps[1]["step"], "notified", "{steps}");
    assert!(steps[1]["note"].as_str().unwrap().contains("not delivered"), "{steps}");

    // Shutdown saves the engine's state.
    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let saved: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transport_rules_state").fetch_one(st.store.reader()).await.unwrap();
    assert_eq!(saved, 1);
}

#[tokio::test]
async fn sqlite_positions_raise_alarms() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_positions_raise_alarms() {
    scenario(Backend::Postgres).await;
}

/// A vehicle whose class changes gets the new class's limits without a restart: a dangerous-goods
/// truck (80 km/h) re-registered as a school bus (60 km/h) is over the limit at 70 km/h.
#[tokio::test]
async fn a_changed_class_reaches_the_running_rules() {
    let module = TransportModule {
        alerting: true,
        alerting_intervals: transport::alerting::Intervals {
            tick: Duration::from_secs(30),
            save: Duration::from_millis(200),
        },
        ..TransportModule::new()
    };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let app = TestApp::spawn_with(Backend::Sqlite, modules, |_| {}).await.unwrap();
    let st = &app.platform.state;
    let token = kernel::platform::CancellationToken::new();
    let _tasks = module.start(st, token.clone()).await.unwrap();
    let shunda = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=1", &shunda).await;
    let vid = v["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(v["items"][0]["class"], "dangerous_goods");

    // The engine learns the vehicle as a dangerous-goods truck. By day (10:00 local), where a
    // school bus's limit is 60 km/h (at night it is 80 % of that).
    let latest = kernel::store::now_ms() - 3_600_000;
    let mut t0 = latest - latest.rem_euclid(86_400_000) + 2 * 3_600_000;
    if t0 > latest {
        t0 -= 86_400_000;
    }
    transport::ingest::ingest(st, &module.live, &[at(&vid, t0, 117.0, 30.0)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/transport/vehicles/{vid}"),
            Some(&shunda),
            Some(serde_json::json!({"class": "school_bus"})),
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::OK, "{v}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Two minutes at 70 km/h: over a school bus's 60, under a dangerous-goods truck's 80.
    let batch: Vec<Position> = (1..=13).map(|k| at(&vid, t0 + k * 10_000, 117.0 + k as f64 * 0.002, 70.0)).collect();
    transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    let a = alarm_of(&app, &shunda, &vid, "overspeed").await;
    assert_eq!(a["details"]["limit_kmh"], 60.0, "{a}");
    token.cancel();
}

/// Positions are acknowledged once committed and reach the rules afterwards: a crash in between
/// (here: the rules task not running while they are stored) must not lose their alarms. Each
/// start replays what was stored after the saved state, once.
async fn overspeed_count(app: &TestApp, token: &str, vehicle: &str) -> i64 {
    let (_, v) = app.get(&format!("/api/alarms?subject_id={vehicle}&kind=overspeed"), token).await;
    v["total"].as_i64().unwrap()
}

async fn caught_up_after_a_crash(backend: Backend) {
    let module = TransportModule { alerting: true, ..TransportModule::new() };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let shunda = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=1", &shunda).await;
    let speeder = v["items"][0]["id"].as_str().unwrap().to_string();
    let episode = |t0: i64| -> Vec<Position> {
        let mut b: Vec<Position> =
            (0..18).map(|k| at(&speeder, t0 + k * 10_000, 117.0 + k as f64 * 0.004, 120.0)).collect();
        b.extend((18..24).map(|k| at(&speeder, t0 + k * 10_000, 117.072 + (k - 18) as f64 * 0.002, 50.0)));
        b
    };
    // Stored before the rules ever ran, with no saved state: an episode ten minutes ago.
    let t0 = kernel::store::now_ms() - 10 * 60_000;
    transport::ingest::ingest(st, &module.live, &episode(t0)).await.unwrap();
    let token = kernel::platform::CancellationToken::new();
    let tasks = module.start(st, token.clone()).await.unwrap();
    let a = alarm_of(&app, &shunda, &speeder, "overspeed").await;
    let within = |started: &str, t: i64| {
        started >= kernel::store::ms_to_rfc3339(t).as_str()
            && started <= kernel::store::ms_to_rfc3339(t + 180_000).as_str()
    };
    assert!(within(a["started_at"].as_str().unwrap(), t0), "{a}");
    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
    // Stored after the state was saved at shutdown, while nothing ran: a second episode.
    let t1 = t0 + 5 * 60_000;
    transport::ingest::ingest(st, &module.live, &episode(t1)).await.unwrap();
    let token = kernel::platform::CancellationToken::new();
    let tasks = module.start(st, token.clone()).await.unwrap();
    for _ in 0..200 {
        if overspeed_count(&app, &shunda, &speeder).await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(overspeed_count(&app, &shunda, &speeder).await, 2, "the second episode, and the first not raised again");
    let (_, v) = app.get(&format!("/api/alarms?subject_id={speeder}&kind=overspeed"), &shunda).await;
    let starts: Vec<&str> = v["items"].as_array().unwrap().iter().map(|a| a["started_at"].as_str().unwrap()).collect();
    assert!(starts.iter().any(|s| within(s, t1)), "{starts:?}");
    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test]
async fn sqlite_alarms_of_positions_stored_before_a_crash_are_raised_at_start() {
    caught_up_after_a_crash(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_alarms_of_positions_stored_before_a_crash_are_raised_at_start() {
    caught_up_after_a_crash(Backend::Postgres).await;
}
