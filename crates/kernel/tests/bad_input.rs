//! Sweeps every route of the OpenAPI document with malformed bodies, wrong types, unknown fields,
//! oversized bodies, hostile IDs and bad query parameters, authenticated and not: never a 5xx,
//! and every error is a problem document (the harness checks that on every response).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use kernel::testing as common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp};

#[tokio::test]
async fn no_route_answers_bad_input_with_a_server_error() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // Unauthenticated, a read-only token, an operator, and each administrator.
    let reg = app.login("jt.liu").await;
    let (_, v) = app.post("/api/tokens", &reg, serde_json::json!({"name": "ro", "scope": "read"})).await;
    let ro = v["token"].as_str().unwrap().to_string();
    let tokens = vec![
        None,
        Some("wqs_forged".to_string()),
        Some(ro),
        Some(app.login("shunda.zhao").await),
        Some(app.login("sysadmin").await),
        Some(app.login("secadmin").await),
        Some(app.login("auditor").await),
    ];
    let n = app.sweep_bad_input(&tokens).await;
    assert!(n > 1000, "swept {n} requests");
    // Routes that do not exist, and methods a route does not take.
    for (m, p) in [
        (Method::GET, "/nope"),
        (Method::PUT, "/api/users"),
        (Method::DELETE, "/api/auth/login"),
        (Method::GET, "/api/users/a/b/c"),
    ] {
        let (s, _) = app.call(m, p, None, None).await;
        assert!(s.is_client_error(), "{p} {s}");
    }
    // The platform is still fine afterwards.
    let (s, v) = app.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn each_kind_of_bad_input_gets_its_own_code() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let t = app.login("sysadmin").await;
    let cases: Vec<(Option<Vec<u8>>, Option<&str>, StatusCode, &str)> = vec![
        (Some(b"{".to_vec()), Some("application/json"), StatusCode::BAD_REQUEST, "malformed_json"),
        (
            Some(b"{\"name\": 1, \"kind\": \"bureau\"}".to_vec()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            Some(b"{\"name\": \"x\", \"kind\": \"bureau\", \"colour\": 1}".to_vec()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (Some(b"{}".to_vec()), Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (
            Some(vec![b' '; 2 * 1024 * 1024]),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Some(b"{\"name\": \"  \", \"kind\": \"bureau\", \"parent_id\": \"x\"}".to_vec()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ];
    for (body, ct, status, code) in cases {
        let (s, v) = app.call_raw(Method::POST, "/api/orgs", Some(&t), body, ct).await;
        assert_eq!((s, v["code"].as_str().unwrap_or("")), (status, code), "{v}");
    }
    let (s, v) = app.get("/api/users?limit=0", &t).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")));
    let (s, v) = app.get("/api/users?colour=red", &t).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let (s, v) = app.call(Method::GET, "/api/users", None, None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
}
