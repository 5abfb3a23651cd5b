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

/// Issue #8 (schemathesis): every error is documented as the problem document it is
/// (`application/problem+json`, not `application/json`), and the answers of the shared
/// extractors are documented on the operations that use them.
#[tokio::test]
async fn issue_8_error_answers_are_as_documented() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = app.login("sysadmin").await;
    let regulator = app.login("jt.liu").await;
    let cases: Vec<(Method, &str, String, Option<&str>, Option<serde_json::Value>, StatusCode)> = vec![
        (Method::GET, "/api/users", "/api/users".into(), None, None, StatusCode::UNAUTHORIZED),
        (Method::GET, "/api/users", "/api/users?limit=0".into(), Some(&admin), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/users/{id}", "/api/users/nobody".into(), Some(&admin), None, StatusCode::NOT_FOUND),
        (Method::GET, "/api/audit", "/api/audit".into(), Some(&regulator), None, StatusCode::FORBIDDEN),
        (
            Method::POST,
            "/api/orgs",
            "/api/orgs".into(),
            Some(&admin),
            Some(serde_json::json!({"name": 1, "kind": "bureau"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/auth/totp/enable",
            "/api/auth/totp/enable".into(),
            Some(&regulator),
            Some(serde_json::json!({"code": "123456"})),
            StatusCode::CONFLICT,
        ),
        (Method::GET, "/api/auth/me", "/api/auth/me".into(), Some(&regulator), None, StatusCode::OK),
    ];
    for (m, route, uri, token, body, want) in cases {
        let (s, v) = app.call_documented(m, route, &uri, token, body).await;
        assert_eq!(s, want, "{uri}: {v}");
    }
    // A malformed body, sent raw.
    let doc = app.openapi().await;
    let (s, v) =
        app.call_raw(Method::POST, "/api/orgs", Some(&admin), Some(b"{".to_vec()), Some("application/json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    kernel::testing::check_documented(&doc, &Method::POST, "/api/orgs", s, "application/problem+json", &v).unwrap();
    // The checker itself refuses what is not documented.
    assert!(
        kernel::testing::check_documented(&doc, &Method::POST, "/api/orgs", s, "application/json", &v).is_err(),
        "a problem is never documented as application/json"
    );
    assert!(
        kernel::testing::check_documented(&doc, &Method::GET, "/api/health", StatusCode::IM_A_TEAPOT, "", &v).is_err()
    );
}
