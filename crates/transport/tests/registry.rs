//! The vehicle and terminal registry through the HTTP API: scoping, validation, binding, audit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, vec![Arc::new(transport::TransportModule::new())], |_| {}).await
}

fn plates(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|x| x["plate"].as_str().unwrap().to_string()).collect()
}

async fn scoping_and_binding(app: TestApp) {
    let shunda = app.login("shunda.zhao").await;
    let bus = app.login("bus.sun").await;
    let reg = app.login("jt.liu").await;

    // The demo fleets: an operator sees its own, the regulator all of the transport domain.
    let (s, v) = app.get("/api/transport/vehicles?limit=500", &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 40);
    assert!(v["items"].as_array().unwrap().iter().all(|x| x["class"] == "dangerous_goods"));
    let (_, v) = app.get("/api/transport/vehicles?limit=500", &reg).await;
    assert_eq!(v["total"], 200);
    let (_, v) = app.get("/api/transport/terminals?phone=1390000000&limit=500", &reg).await;
    assert_eq!(v["total"], 9, "13900000001..09 match the substring: {v}");

    // Registering: plate validated, duplicates refused, the owner is the caller's enterprise.
    let (s, v) = app
        .post(
            "/api/transport/vehicles",
            &shunda,
            json!({"plate": "津X1234", "plate_colour": "yellow", "class": "dangerous_goods"}),
        )
        .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("plate")), "{v}");
    let (s, v) = app.post("/api/transport/vehicles", &shunda, json!({"plate": "津C99999", "plate_colour": "yellow", "class": "dangerous_goods", "vin": "LGAX2A136D1002345"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vid = v["id"].as_str().unwrap().to_string();
    // On the live map at once, offline until its terminal speaks.
    let (_, live) = app.get("/api/transport/live", &shunda).await;
    let entry = live.as_array().unwrap().iter().find(|x| x["vehicle_id"] == vid.as_str()).cloned();
    assert_eq!(entry.map(|e| (e["plate"].clone(), e["online"].clone())), Some((json!("津C99999"), json!(false))));
    let (s, _) = app
        .post(
            "/api/transport/vehicles",
            &shunda,
            json!({"plate": "津c99999", "plate_colour": "yellow", "class": "heavy_goods"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Another enterprise's operator can neither see it nor register into that enterprise.
    let (s, _) = app.get(&format!("/api/transport/vehicles/{vid}"), &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let shunda_org = app.org_id("shunda").await;
    let (s, _) = app
        .post(
            "/api/transport/vehicles",
            &bus,
            json!({"org_id": shunda_org, "plate": "津C77777", "plate_colour": "yellow", "class": "city_bus"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get(&format!("/api/transport/vehicles?org_id={shunda_org}"), &bus).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = app.get("/api/transport/vehicles?plate=C99999", &bus).await;
    assert!(plates(&v).is_empty());
    // Regulators read but do not register.
    let (s, _) = app
        .post("/api/transport/vehicles", &reg, json!({"plate": "津C66666", "plate_colour": "yellow", "class": "coach"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Other roles do not see transport records at all.
    let doc = app.login("dr.yang").await;
    let (s, _) = app.get("/api/transport/vehicles", &doc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Terminals: register, bind to its vehicle, one terminal per vehicle.
    let (s, v) = app
        .post(
            "/api/transport/terminals",
            &shunda,
            json!({"phone": "013912345678", "terminal_id": "T000001", "maker": "70111", "model": "WQ-808"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["phone"], "13912345678", "header padding dropped");
    let tid = v["id"].as_str().unwrap().to_string();
    let (s, v) = app.post(&format!("/api/transport/terminals/{tid}/bind"), &shunda, json!({"vehicle_id": vid})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.get(&format!("/api/transport/vehicles/{vid}"), &shunda).await;
    assert_eq!(v["terminal_phone"], "13912345678");
    let (_, bound) = app.get("/api/transport/vehicles?bound=true&limit=500", &shunda).await;
    let (_, unbound) = app.get("/api/transport/vehicles?bound=false&limit=500", &shunda).await;
    let (_, all) = app.get("/api/transport/vehicles?limit=1", &shunda).await;
    assert!(plates(&bound).contains(&"津C99999".to_string()) && !plates(&unbound).contains(&"津C99999".to_string()));
    assert_eq!(bound["total"].as_i64().unwrap() + unbound["total"].as_i64().unwrap(), all["total"].as_i64().unwrap());
    let (s, v) = app.post("/api/transport/terminals", &shunda, json!({"phone": "13912345679"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let t2 = v["id"].as_str().unwrap().to_string();
    let (s, v) = app.post(&format!("/api/transport/terminals/{t2}/bind"), &shunda, json!({"vehicle_id": vid})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // A vehicle of another enterprise cannot be bound.
    let (_, v) = app.get("/api/transport/vehicles?limit=1", &bus).await;
    let bus_vehicle = v["items"][0]["id"].as_str().unwrap().to_string();
    let (s, _) =
        app.post(&format!("/api/transport/terminals/{t2}/bind"), &shunda, json!({"vehicle_id": bus_vehicle})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = app.post(&format!("/api/transport/terminals/{tid}/unbind"), &shunda, json!({})).await;
    assert_eq!((s, &v["vehicle_id"]), (StatusCode::OK, &Value::Null));
    let (_, v) = app.get("/api/transport/terminals?bound=false", &shunda).await;
    assert_eq!(v["total"], 2);

    // Every write is in the audit log.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?actor=shunda.zhao&target_kind=terminal", &aud).await;
    let actions: Vec<&str> = v["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["terminal.unbind", "terminal.create", "terminal.bind", "terminal.create"]);
    // And so is every refusal: the other enterprise's look-up, its registration attempt, its filter.
    let (_, v) = app.get("/api/audit?actor=bus.sun&outcome=denied", &aud).await;
    let routes: Vec<&str> = v["items"].as_array().unwrap().iter().map(|r| r["target_id"].as_str().unwrap()).collect();
    assert!(routes.contains(&format!("GET /api/transport/vehicles/{vid}").as_str()), "{routes:?}");
    assert!(routes.contains(&"POST /api/transport/vehicles"), "{routes:?}");
    assert_eq!(v["total"], 3, "{routes:?}");
}

#[tokio::test]
async fn sqlite_scoping_and_binding() {
    scoping_and_binding(app(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_scoping_and_binding() {
    if let Some(a) = app(Backend::Postgres).await {
        scoping_and_binding(a).await;
    }
}

#[tokio::test]
async fn no_transport_route_answers_bad_input_with_a_server_error() {
    sweep(Backend::Sqlite).await;
}

/// PostgreSQL refuses text that SQLite stores (a NUL character): the same sweep there.
#[tokio::test]
async fn postgres_no_transport_route_answers_bad_input_with_a_server_error() {
    sweep(Backend::Postgres).await;
}

async fn sweep(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let tokens = vec![
        None,
        Some(app.login("shunda.zhao").await),
        Some(app.login("jt.liu").await),
        Some(app.login("sysadmin").await),
    ];
    let n = app.sweep_bad_input(&tokens).await;
    assert!(n > 1000, "{n}");
}
