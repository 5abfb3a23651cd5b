//! The security policy over HTTP: who reads and publishes it, its bounds and concurrency, and
//! that a published lock-out threshold is what login applies next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};

async fn put(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, "/api/security/policy", Some(token), Some(body)).await
}

#[tokio::test]
async fn the_security_administrator_publishes_and_login_applies_it() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let sec = app.login("secadmin").await;
    let sys = app.login("sysadmin").await;

    // Version 1 is the configuration file's.
    let (s, v) = app.get("/api/security/policy", &sec).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(1), Some(false)));
    let mut policy = v["policy"].clone();
    assert_eq!(policy["lockout_threshold"], 5);

    // The system administrator reads but does not publish; an operator does neither.
    let (s, _) = app.get("/api/security/policy", &sys).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = put(&app, &sys, json!({"base_version": 1, "policy": policy})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let op = app.login("bus.sun").await;
    let (s, _) = app.get("/api/security/policy", &op).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Out of bounds: a 422 naming the field; nothing published.
    policy["lockout_threshold"] = json!(1);
    let (s, v) = put(&app, &sec, json!({"base_version": 1, "policy": policy})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "policy.lockout_threshold");
    policy["lockout_threshold"] = json!(3);
    policy["admin_totp"] = json!(false);
    let (s, v) = put(&app, &sec, json!({"base_version": 1, "policy": policy})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("policy.admin_totp")));
    policy["admin_totp"] = json!(true);
    let (s, v) = put(&app, &sec, json!({"base_version": 1, "policy": {"lockout_threshold": 3}})).await;
    assert!(s.is_client_error(), "a partial policy is refused: {v}");

    // Published: version 2, kept with its note.
    let (s, v) = put(&app, &sec, json!({"base_version": 1, "policy": policy, "note": "三次失败即锁定"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["version"].as_i64(), v["stored"].as_bool()), (Some(2), Some(true)));
    assert_eq!(v["published_by"], "secadmin");
    // A second editor who started from version 1 is told to reload.
    let (s, _) = put(&app, &sec, json!({"base_version": 1, "policy": policy})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, v) = app.get("/api/security/policy/versions", &sec).await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["note"], "三次失败即锁定");

    // The third failure now locks the account.
    for i in 0..3 {
        let (s, v) = app
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"username": "coach.zhou", "password": "Wrong-Password-1"})),
            )
            .await;
        let expect = if i < 2 { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
        assert_eq!(s, expect, "attempt {i}: {v}");
    }

    // The publication and the refusals are audited.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=config.published", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get("/api/audit?action=security.policy.publish&outcome=denied", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
}
