//! Enterprise profiles through the HTTP API on both backends (PostgreSQL when `WUQING_TEST_PG`
//! names a server): who sees and keeps them, the credit code's checks, monitoring staff against
//! the fleet, licence days left, audit, and the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::app;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};

both_backends!(profiles_are_scoped_checked_and_audited);

fn by_org<'a>(list: &'a Value, org: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|e| e["org_id"] == org).unwrap()
}

async fn put(app: &TestApp, token: &str, org: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, &format!("/api/supervision/enterprises/{org}"), Some(token), Some(body)).await
}

async fn profiles_are_scoped_checked_and_audited(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let (bus_org, shunda_org, coach_org, taxi_org) = (
        app.org_id("wuqing_bus").await,
        app.org_id("shunda").await,
        app.org_id("jingjin_coach").await,
        app.org_id("yangcun_taxi").await,
    );

    // The bureau sees the four demo enterprises; the bus company is one monitor short for its
    // 80 buses (two required); the coach licence runs out in 20 days, the taxi one expired.
    let (s, list) = app.get("/api/supervision/enterprises", &reg).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    let b = by_org(&list, &bus_org);
    assert_eq!((b["vehicles"].as_i64(), b["monitoring_required"].as_i64()), (Some(80), Some(2)));
    assert_eq!(b["monitoring_short"], true);
    assert_eq!(by_org(&list, &shunda_org)["monitoring_short"], false);
    assert_eq!(by_org(&list, &coach_org)["licence_days_left"], 20);
    assert_eq!(by_org(&list, &taxi_org)["licence_days_left"], -10);

    // An operator sees its own enterprise only; another's is not found.
    let (_, own) = app.get("/api/supervision/enterprises", &bus).await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    let (s, _) = app.get(&format!("/api/supervision/enterprises/{shunda_org}"), &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put(&app, &bus, &shunda_org, json!({})).await;
    assert!(s == StatusCode::NOT_FOUND || s.is_client_error());
    // Other roles are refused; a bureau is not an enterprise.
    let doc = app.login("dr.wu").await;
    let (s, _) = app.get("/api/supervision/enterprises", &doc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let bureau = app.org_id("transport_bureau").await;
    let (s, _) = app.get(&format!("/api/supervision/enterprises/{bureau}"), &reg).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The bus company corrects its profile: a mistyped credit code names the field and the
    // fault; another enterprise's code is a conflict; then two monitors end the shortfall.
    let mut p = b["profile"].clone();
    p["uscc"] = json!("9112011440151263XM");
    let (s, v) = put(&app, &bus, &bus_org, p.clone()).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("uscc")), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("check character"), "{v}");
    p["uscc"] = by_org(&list, &shunda_org)["profile"]["uscc"].clone();
    let (s, v) = put(&app, &bus, &bus_org, p.clone()).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("uscc")), "{v}");
    p["uscc"] = json!("9112011440151263xn");
    p["licence_valid_until"] = json!("2030-02-30");
    let (s, v) = put(&app, &bus, &bus_org, p.clone()).await;
    assert_eq!(v["field"], "licence_valid_until", "{s} {v}");
    p["licence_valid_until"] = json!("2030-12-31");
    p["monitoring_staff"] = json!(2);
    let (s, v) = put(&app, &bus, &bus_org, p.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["monitoring_short"].as_bool(), v["profile"]["uscc"].as_str()),
        (Some(false), Some("9112011440151263XN"))
    );
    assert_eq!(v["updated_by"], "bus.sun");
    p["colour"] = json!("red");
    let (s, _) = put(&app, &bus, &bus_org, p).await;
    assert!(s.is_client_error(), "unknown fields are refused");

    // Writes and reads are in the audit log.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=enterprise.profile&actor=bus.sun", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get("/api/audit?action=enterprise.list&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 1, "{v}");

    let tokens = [None, Some(reg), Some(bus)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}
