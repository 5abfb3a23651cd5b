//! The transport rule set as a stored, versioned document at the HTTP boundary: reading the
//! built-in set, publishing (who may, optimistic concurrency, validation naming the field),
//! what an operator sees, the versions, and the running rules taking a publication up. Both
//! backends (PostgreSQL when `WUQING_TEST_PG` names a server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use transport::TransportModule;
use transport::positions::{Position, STATUS_ACC, STATUS_FIXED};

const RULES: &str = "/api/transport/rules";

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

both_backends!(
    builtin_set_then_a_published_version,
    a_stale_base_version_is_a_conflict,
    only_transport_regulators_publish,
    bad_documents_are_refused_naming_the_field,
    an_operator_sees_only_its_own_enterprise,
    versions_are_listed_and_read,
    a_lowered_limit_reaches_the_running_rules,
    an_unusable_stored_version_keeps_the_rules_in_force,
    no_rules_route_answers_bad_input_with_a_server_error,
);

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, vec![Arc::new(TransportModule::new())], |_| {}).await
}

async fn put(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, RULES, Some(token), Some(body)).await
}

/// The current rules as `GET` shows them, with `edit` applied to the rule set.
async fn edited(app: &TestApp, token: &str, edit: impl FnOnce(&mut Value)) -> (i64, Value) {
    let (s, v) = app.get(RULES, token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut rules = v["rules"].clone();
    edit(&mut rules);
    (v["version"].as_i64().unwrap(), rules)
}

async fn builtin_set_then_a_published_version(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let (s, v) = app.get(RULES, &reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(1), Some(false)), "{v}");
    assert_eq!(v["rules"]["version"], 1);
    assert_eq!(v["rules"]["by_class"]["taxi"]["speed_limit_kmh"], 80.0);
    assert!(v["author"].is_null() && v["created_at"].is_null(), "{v}");

    let (base, rules) = edited(&app, &reg, |r| r["by_class"]["taxi"]["speed_limit_kmh"] = json!(70.0)).await;
    let (s, v) = put(&app, &reg, json!({"base_version": base, "rules": rules, "note": "taxis 70 in town"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(2), Some(true)), "{v}");
    assert_eq!(v["rules"]["version"], 2, "the publication numbers the set");
    assert_eq!(v["author"], "jt.liu");
    assert_eq!(v["note"], "taxis 70 in town");

    let (s, v) = app.get(RULES, &reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(2), Some(true)), "{v}");
    assert_eq!(v["rules"]["by_class"]["taxi"]["speed_limit_kmh"], 70.0);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'), "{v}");

    // Audited with the name and the version, not the body.
    let st = &app.platform.state;
    let f = kernel::audit::Filter { action: Some("config.published".into()), limit: 5, ..Default::default() };
    let (records, total) = kernel::audit::query(&st.store, &f).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(records[0].actor, "jt.liu");
    assert_eq!(records[0].detail["name"], "transport.rules");
    assert_eq!(records[0].detail["version"], 2);
    assert!(!records[0].detail.to_string().contains("speed_limit_kmh"), "{}", records[0].detail);
}

async fn a_stale_base_version_is_a_conflict(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let (_, rules) = edited(&app, &reg, |_| {}).await;
    // Nothing stored: the built-in version 1 is current, not 0.
    let (s, v) = put(&app, &reg, json!({"base_version": 0, "rules": rules})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{v}");
    let (s, v) = put(&app, &reg, json!({"base_version": 1, "rules": rules})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A second regulator edited version 1 too: refused, not overwritten.
    for stale in [1, 3, -1, i64::MAX] {
        let (s, v) = put(&app, &reg, json!({"base_version": stale, "rules": rules})).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("base_version")), "{stale}: {v}");
    }
    let (s, v) = put(&app, &reg, json!({"base_version": 2, "rules": rules})).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(3)), "{v}");
    let (_, v) = app.get(&format!("{RULES}/versions"), &reg).await;
    assert_eq!(v["total"], 2, "{v}");
}

async fn only_transport_regulators_publish(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let (base, rules) = edited(&app, &reg, |_| {}).await;
    let body = json!({"base_version": base, "rules": rules});
    let mut tokens = std::collections::HashMap::new();
    for who in ["shunda.zhao", "wjw.chen", "sysadmin", "dr.yang", "resident.huang"] {
        tokens.insert(who, app.login(who).await);
    }
    for who in ["shunda.zhao", "wjw.chen", "sysadmin"] {
        let (s, v) = put(&app, &tokens[who], body.clone()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{who}: {v}");
    }
    // Reading is for the transport domain: its regulators and its enterprises' operators.
    for who in ["wjw.chen", "dr.yang", "sysadmin", "resident.huang"] {
        let t = &tokens[who];
        for path in [RULES.to_string(), format!("{RULES}/versions"), format!("{RULES}/versions/1")] {
            let (s, v) = app.get(&path, t).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{who} {path}: {v}");
        }
    }
    let (s, _) = app.call(Method::GET, RULES, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for who in ["shunda.zhao", "bus.sun"] {
        let t = app.login(who).await;
        let (s, v) = app.get(RULES, &t).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
    }
    // Nothing was published by the refusals, and they are in the audit log.
    let (_, v) = app.get(RULES, &reg).await;
    assert_eq!(v["stored"], false);
    let st = &app.platform.state;
    let f = kernel::audit::Filter {
        action: Some("access.denied".into()),
        actor: Some("wjw.chen".into()),
        limit: 50,
        ..Default::default()
    };
    let (_, denied) = kernel::audit::query(&st.store, &f).await.unwrap();
    assert!(denied >= 4, "{denied}");
}

async fn bad_documents_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let (base, rules) = edited(&app, &reg, |_| {}).await;
    let hospital = app.org_id("people_hospital").await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut r = rules.clone();
        edit(&mut r);
        json!({"base_version": base, "rules": r})
    };
    let cases: Vec<(Value, String)> = vec![
        // deny_unknown_fields, at any depth
        (with(&|r| r["by_class"]["taxi"]["speed"] = json!(40)), "rules.by_class.taxi.speed".into()),
        (with(&|r| r["colour"] = json!("red")), "rules.colour".into()),
        (json!({"base_version": base, "rules": rules, "force": true}), "force".into()),
        (json!({"rules": rules}), "base_version".into()),
        (with(&|r| r["defaults"]["speed_limit_kmh"] = json!("fast")), "rules.defaults.speed_limit_kmh".into()),
        // RuleSet::check
        (
            with(&|r| r["by_class"]["taxi"]["speed_limit_kmh"] = json!(-40.0)),
            "rules.by_class.taxi.speed_limit_kmh".into(),
        ),
        (
            with(&|r| r["by_class"]["coach"]["fatigue_rest_min"] = json!(-1)),
            "rules.by_class.coach.fatigue_rest_min".into(),
        ),
        (with(&|r| r["engine"]["night_start_min"] = json!(1440)), "rules.engine.night_start_min".into()),
        // enterprises: unknown, and existing but outside the regulator's scope
        (
            with(&|r| r["by_enterprise"] = json!({"no-such-enterprise": {"speed_limit_kmh": 40.0}})),
            "rules.by_enterprise.no-such-enterprise".into(),
        ),
        (
            with(&|r| r["by_enterprise"] = json!({hospital.clone(): {"speed_limit_kmh": 40.0}})),
            format!("rules.by_enterprise.{hospital}"),
        ),
        (
            with(&|r| {
                r["areas"] = json!([{"id": "z", "shape": {"type": "circle", "lat": 39.38, "lon": 117.04, "radius_m": 500.0},
                    "enterprises": ["no-such-enterprise"]}])
            }),
            "rules.areas[0].enterprises".into(),
        ),
        // class names
        (with(&|r| r["by_class"]["hovercraft"] = json!({"speed_limit_kmh": 40.0})), "rules.by_class.hovercraft".into()),
    ];
    for (body, field) in cases {
        let (s, v) = put(&app, &reg, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
        assert_eq!(v["field"].as_str(), Some(field.as_str()), "{v}");
        assert_eq!(v["code"], "invalid_field");
    }
    let (s, v) = put(&app, &reg, json!({"base_version": base, "rules": rules, "note": "bell\u{7}"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) = put(&app, &reg, json!([1, 2])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // None of it was published.
    let (_, v) = app.get(RULES, &reg).await;
    assert_eq!(v["stored"], false, "{v}");
}

async fn an_operator_sees_only_its_own_enterprise(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let shunda = app.org_id("shunda").await;
    let bus = app.org_id("wuqing_bus").await;
    let circle = json!({"type": "circle", "lat": 39.38, "lon": 117.04, "radius_m": 500.0});
    let (base, rules) = edited(&app, &reg, |r| {
        r["by_enterprise"] = json!({
            shunda.clone(): {"speed_limit_kmh": 70.0},
            bus.clone(): {"speed_limit_kmh": 50.0},
        });
        r["areas"] = json!([
            {"id": "everyone", "shape": circle, "speed_limit_kmh": 40.0},
            {"id": "bus-depot", "shape": circle, "enterprises": [bus.clone()]},
            {"id": "shared-yard", "shape": circle, "enterprises": [bus.clone(), shunda.clone()]},
        ]);
    })
    .await;
    let (s, v) = put(&app, &reg, json!({"base_version": base, "rules": rules})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rules"]["by_enterprise"].as_object().unwrap().len(), 2, "the regulator sees all: {v}");

    let op = app.login("shunda.zhao").await;
    for path in [RULES.to_string(), format!("{RULES}/versions/2")] {
        let (s, v) = app.get(&path, &op).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let overrides = v["rules"]["by_enterprise"].as_object().unwrap();
        assert_eq!(overrides.keys().collect::<Vec<_>>(), vec![&shunda], "{path}: {v}");
        let areas = v["rules"]["areas"].as_array().unwrap();
        let ids: Vec<&str> = areas.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["everyone", "shared-yard"], "{path}");
        assert_eq!(areas[1]["enterprises"], json!([shunda.clone()]), "another enterprise's id stays hidden");
        assert!(!v.to_string().contains(&bus), "{v}");
    }
}

async fn versions_are_listed_and_read(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let reg = app.login("jt.liu").await;
    let (_, v) = app.get(&format!("{RULES}/versions"), &reg).await;
    assert_eq!(v["total"], 0, "{v}");
    for (base, limit) in [(1, 70.0), (2, 60.0), (3, 50.0)] {
        let (_, rules) = edited(&app, &reg, |r| r["by_class"]["taxi"]["speed_limit_kmh"] = json!(limit)).await;
        let (s, v) =
            put(&app, &reg, json!({"base_version": base, "rules": rules, "note": format!("taxi {limit}")})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let op = app.login("bus.sun").await;
    for t in [&reg, &op] {
        let (s, v) = app.get(&format!("{RULES}/versions?limit=2"), t).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((v["total"].as_i64(), v["limit"].as_i64()), (Some(3), Some(2)));
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.iter().map(|i| i["version"].as_i64().unwrap()).collect::<Vec<_>>(), vec![4, 3]);
        assert_eq!(items[0]["note"], "taxi 50");
        assert_eq!(items[0]["author"], "jt.liu");
        assert!(items[0].get("body").is_none() && items[0].get("rules").is_none(), "{v}");
    }
    let (_, v) = app.get(&format!("{RULES}/versions?limit=2&offset=2"), &reg).await;
    assert_eq!(v["items"][0]["version"], 2);

    let (s, v) = app.get(&format!("{RULES}/versions/3"), &reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(3), Some(true)));
    assert_eq!(v["rules"]["by_class"]["taxi"]["speed_limit_kmh"], 60.0);
    assert_eq!(v["rules"]["version"], 3);
    let (s, v) = app.get(&format!("{RULES}/versions/1"), &reg).await;
    assert_eq!((s, v["stored"].as_bool()), (StatusCode::OK, Some(false)), "version 1 is the built-in set: {v}");
    assert_eq!(v["rules"]["by_class"]["taxi"]["speed_limit_kmh"], 80.0);
    for missing in ["5", "0", "-3"] {
        let (s, v) = app.get(&format!("{RULES}/versions/{missing}"), &reg).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{missing}: {v}");
    }
    let (s, _) = app.get(&format!("{RULES}/versions/two"), &reg).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.get(&format!("{RULES}/versions?limit=0"), &reg).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

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

/// The saved engine state, once it satisfies `ok` (the rules task saves every 200 ms here).
async fn saved_state(app: &TestApp, ok: impl Fn(&Value) -> bool) -> Value {
    let store = &app.platform.state.store;
    for _ in 0..200 {
        let text: Option<String> = sqlx::query_scalar("SELECT snapshot FROM transport_rules_state WHERE id = 1")
            .fetch_optional(store.reader())
            .await
            .unwrap();
        if let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            if ok(&v) {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the rules task never saved the expected state");
}

async fn overspeed_alarms(app: &TestApp, token: &str, vehicle: &str) -> Value {
    let (s, v) = app.get(&format!("/api/alarms?subject_id={vehicle}&kind=overspeed"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Taxis' limit is 80 km/h; the bureau lowers it to 40 for one taxi company. A taxi at 60 km/h
/// raised nothing before; after the publication the running rules raise an overspeed alarm that
/// carries version 2.
async fn a_lowered_limit_reaches_the_running_rules(backend: Backend) {
    let module = TransportModule {
        alerting: true,
        alerting_intervals: transport::alerting::Intervals {
            tick: Duration::from_secs(30),
            save: Duration::from_millis(200),
        },
        ..TransportModule::new()
    };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let token = kernel::platform::CancellationToken::new();
    let tasks = module.start(st, token.clone()).await.unwrap();
    let reg = app.login("jt.liu").await;
    let (_, v) = app.get("/api/transport/vehicles?class=taxi&limit=1", &reg).await;
    let taxi = v["items"][0]["id"].as_str().unwrap().to_string();
    let company = v["items"][0]["org_id"].as_str().unwrap().to_string();
    assert_eq!(company, app.org_id("yangcun_taxi").await);

    // By day: 02:00 UTC is 10:00 in Wuqing (night rules would lower the limit otherwise).
    let latest = kernel::store::now_ms() - 3_600_000;
    let mut t0 = latest - latest.rem_euclid(86_400_000) + 2 * 3_600_000;
    if t0 > latest {
        t0 -= 86_400_000;
    }
    // Two minutes at 60 km/h under the built-in rules: no alarm.
    let batch: Vec<Position> = (0..13).map(|k| at(&taxi, t0 + k * 10_000, 117.0 + k as f64 * 0.002, 60.0)).collect();
    transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    saved_state(&app, |s| s["rule_version"] == 1 && s.to_string().contains(&taxi)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(overspeed_alarms(&app, &reg, &taxi).await["total"], 0);

    let (base, rules) =
        edited(&app, &reg, |r| r["by_enterprise"] = json!({company.clone(): {"speed_limit_kmh": 40.0}})).await;
    let (s, v) = put(&app, &reg, json!({"base_version": base, "rules": rules, "note": "Yangcun taxis 40"})).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    saved_state(&app, |s| s["rule_version"] == 2).await;

    // Two more minutes at the same 60 km/h: now over the company's 40.
    let batch: Vec<Position> = (13..26).map(|k| at(&taxi, t0 + k * 10_000, 117.0 + k as f64 * 0.002, 60.0)).collect();
    transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    let mut alarm = Value::Null;
    for _ in 0..200 {
        let v = overspeed_alarms(&app, &reg, &taxi).await;
        if v["total"].as_i64().unwrap_or(0) > 0 {
            alarm = v["items"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alarm["rule_version"], 2, "{alarm}");
    assert_eq!(alarm["details"]["limit_kmh"], 40.0, "{alarm}");
    assert_eq!(alarm["org_id"], company.as_str());

    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

/// A stored version this release cannot read (an older format) is reported and the rules in
/// force are kept, at start and when it is published while running; the next good version is
/// taken up. The API still shows what is stored.
async fn an_unusable_stored_version_keeps_the_rules_in_force(backend: Backend) {
    let module = TransportModule {
        alerting: true,
        alerting_intervals: transport::alerting::Intervals {
            tick: Duration::from_secs(30),
            save: Duration::from_millis(200),
        },
        ..TransportModule::new()
    };
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let publish_raw = |body: Value| async move {
        let draft = kernel::versioned::Draft {
            name: transport::rules_api::DOCUMENT,
            base_version: None,
            builtin_version: transport::rules_api::BUILTIN_VERSION,
            body: &body,
            note: "written by an older release",
        };
        kernel::versioned::publish(&st.store, st.bus.as_ref(), kernel::audit::Actor::cli("test"), draft).await.unwrap()
    };
    let old_format = json!({"version": 2, "speed_limits": {"taxi": 60}});
    assert_eq!(publish_raw(old_format.clone()).await, 2);

    let token = kernel::platform::CancellationToken::new();
    let tasks = module.start(st, token.clone()).await.unwrap();
    saved_state(&app, |s| s["rule_version"] == 1).await;
    let reg = app.login("jt.liu").await;
    let (s, v) = app.get(RULES, &reg).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    assert_eq!(v["rules"]["speed_limits"]["taxi"], 60, "{v}");

    // A good version is taken up; a bad one published while running is refused, the good kept.
    let rules = serde_json::to_value(rules::RuleSet::default()).unwrap();
    let (s, v) = put(&app, &reg, json!({"base_version": 2, "rules": rules})).await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(3)), "{v}");
    saved_state(&app, |s| s["rule_version"] == 3).await;
    assert_eq!(publish_raw(old_format).await, 4);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let state = saved_state(&app, |_| true).await;
    assert_eq!(state["rule_version"], 3, "the rules in force are kept");

    token.cancel();
    for t in tasks {
        let _ = t.await;
    }
}

async fn no_rules_route_answers_bad_input_with_a_server_error(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let tokens = vec![
        None,
        Some(app.login("jt.liu").await),
        Some(app.login("shunda.zhao").await),
        Some(app.login("wjw.chen").await),
    ];
    let n = app.sweep_bad_input(&tokens).await;
    assert!(n > 1000, "{n}");
    // The sweep's bodies never made a version (it also signed its callers out).
    let reg = app.login("jt.liu").await;
    let (_, v) = app.get(RULES, &reg).await;
    assert_eq!(v["stored"], false, "{v}");
}
