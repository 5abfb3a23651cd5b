//! Sweeps every route of the OpenAPI document with malformed bodies, wrong types, unknown fields,
//! oversized bodies, hostile IDs and bad query parameters, authenticated and not: never a 5xx,
//! and every error is a problem document (the harness checks that on every response).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp};

const BAD_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "x",
    "%27%20OR%201%3D1--",
    "..%2F..%2Fetc%2Fpasswd",
    "%E6%AD%A6%E6%B8%85",
    "%00",
    "99999999999999999999999999",
];

fn bodies() -> Vec<(Option<Vec<u8>>, Option<&'static str>)> {
    vec![
        (Some(b"{".to_vec()), Some("application/json")),
        (Some(b"not json at all".to_vec()), Some("application/json")),
        (Some(b"[]".to_vec()), Some("application/json")),
        (Some(b"\"string\"".to_vec()), Some("application/json")),
        (Some(b"null".to_vec()), Some("application/json")),
        (Some(b"{\"unknown_field\": 1}".to_vec()), Some("application/json")),
        (
            Some(br#"{"username": 5, "password": [], "name": {}, "role": "king", "scope": 3, "kind": "x"}"#.to_vec()),
            Some("application/json"),
        ),
        (
            Some(br#"{"username": "a\u0000b", "password": "\ud800", "display_name": "x"}"#.to_vec()),
            Some("application/json"),
        ),
        (Some(vec![b'{'; 3 * 1024 * 1024]), Some("application/json")),
        (Some(b"{}".to_vec()), Some("text/plain")),
        (Some(b"{}".to_vec()), None),
        (None, None),
    ]
}

const BAD_QUERIES: &[&str] = &[
    "?limit=-1",
    "?limit=abc",
    "?limit=100000",
    "?offset=-5",
    "?offset=99999999999999999999",
    "?unknown=1",
    "?q=%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85%E6%AD%A6%E6%B8%85",
    "?q=%25%5F%5C",
    "?from=yesterday&to=2026-13-01T00:00:00Z",
    "?reveal=maybe",
    "?role=king&kind=castle&outcome=meh",
    "?org_id=%00",
    "?user_id=../../x",
    "?limit=1&limit=2",
];

async fn sweep(app: &TestApp, tokens: &[Option<String>]) -> usize {
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    let paths = doc["paths"].as_object().expect("paths");
    let mut n = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete: Vec<String> = if path.contains('{') {
                BAD_IDS.iter().map(|id| regex_lite_replace(path, id)).collect()
            } else {
                vec![path.clone()]
            };
            for p in &concrete {
                for t in tokens {
                    for (body, ct) in bodies() {
                        let (s, v) = app.call_raw(m.clone(), p, t.as_deref(), body, ct).await;
                        assert!(!s.is_server_error(), "{m} {p} → {s}: {v}");
                        n += 1;
                    }
                    for q in BAD_QUERIES {
                        let uri = format!("{p}{q}");
                        let (s, v) = app.call_raw(m.clone(), &uri, t.as_deref(), None, None).await;
                        assert!(!s.is_server_error(), "{m} {uri} → {s}: {v}");
                        n += 1;
                    }
                }
            }
        }
    }
    n
}

/// Replaces every `{param}` of an OpenAPI path with `id`.
fn regex_lite_replace(path: &str, id: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str(id);
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

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
    let n = sweep(&app, &tokens).await;
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
