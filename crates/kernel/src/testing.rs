//! Test harness for the kernel and every domain crate (feature `testing`): a platform on a fresh
//! SQLite file or a fresh PostgreSQL database (from `WUQING_TEST_PG`), the demo district seeded,
//! and helpers to call the HTTP API without a socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::config::{Config, Overrides, RawConfig};
use crate::demo::DemoAccount;
use crate::platform::Platform;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use tower::ServiceExt;

pub struct TestApp {
    pub platform: Platform,
    pub router: axum::Router,
    pub accounts: HashMap<String, String>,
    pub dir: tempfile::TempDir,
    pub totp: std::sync::Mutex<HashMap<String, String>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server for tests, from `WUQING_TEST_PG`; `None` prints why the test skips.
pub fn pg_url() -> Option<String> {
    match std::env::var("WUQING_TEST_PG") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: WUQING_TEST_PG is not set (e.g. postgres://root@127.0.0.1/test)");
            None
        }
    }
}

/// The NATS server (with JetStream) for the scale-out tests, from `WUQING_TEST_NATS`; `None`
/// prints why the test skips.
pub fn nats_url() -> Option<String> {
    match std::env::var("WUQING_TEST_NATS") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: WUQING_TEST_NATS is not set (e.g. nats://127.0.0.1:4222)");
            None
        }
    }
}

/// A fresh database on the test server: one per test, so tests run in parallel.
pub async fn fresh_pg_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("wq_t_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(base).await.expect("connect to WUQING_TEST_PG");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("url has a database");
    format!("{prefix}/{name}")
}

pub fn config(dir: &std::path::Path, store_url: Option<String>, tweak: impl FnOnce(&mut RawConfig)) -> Config {
    let mut raw = RawConfig { data_dir: dir.to_path_buf(), ..RawConfig::default() };
    // No device endpoint on the standard ports: tests that want one bind port 0.
    raw.mqtt.listen = "off".into();
    raw.mqtt.tls_listen = "off".into();
    if let Some(u) = store_url {
        raw.store.url = u;
    }
    tweak(&mut raw);
    raw.check(&Overrides::default()).expect("config")
}

impl TestApp {
    /// The kernel alone.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, vec![], |_| {}).await
    }

    /// The kernel with `modules`, the configuration adjusted by `tweak`; `None` when the backend
    /// is PostgreSQL and no server is configured (the reason is printed).
    pub async fn spawn_with(
        backend: Backend,
        modules: Vec<std::sync::Arc<dyn crate::module::Module>>,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_pg_database(&pg_url()?).await),
        };
        let cfg = config(dir.path(), url, tweak);
        let platform = Platform::open(cfg, modules).await.expect("open platform");
        let created: Vec<DemoAccount> = platform.seed_demo().await.expect("seed demo");
        let accounts = created.into_iter().map(|a| (a.username, a.password)).collect();
        let router = platform.router();
        Some(TestApp { platform, router, accounts, dir, totp: Default::default() })
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.call_raw(method, uri, token, bytes, Some("application/json")).await
    }

    pub async fn call_raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> (StatusCode, Value) {
        let (status, _, v) = self.send(method, uri, token, body, content_type).await;
        (status, v)
    }

    /// Like [`TestApp::call`], and the answer must be as the OpenAPI document says for the
    /// operation `route` (its path template, e.g. `/api/alarms/{id}`): a documented status, a
    /// documented media type, and a body that matches the documented schema. Panics if not.
    pub async fn call_documented(
        &self,
        method: Method,
        route: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let (status, ct, v) = self.send(method.clone(), uri, token, bytes, Some("application/json")).await;
        let doc = self.openapi().await;
        if let Err(e) = check_documented(&doc, &method, route, status, &ct, &v) {
            panic!("{method} {uri} answered {status} ({ct}) not as documented: {e}\n{v}");
        }
        (status, v)
    }

    /// The OpenAPI document the app serves.
    pub async fn openapi(&self) -> Value {
        self.send(Method::GET, "/api/openapi.json", None, None, None).await.2
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(bytes) => {
                if let Some(ct) = content_type {
                    b = b.header(header::CONTENT_TYPE, ct);
                }
                b.body(Body::from(bytes)).unwrap()
            }
            None => b.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        // FHIR answers its errors as OperationOutcomes (`application/fhir+json`).
        if (status.is_client_error() || status.is_server_error()) && !uri.starts_with("/fhir") {
            assert_eq!(
                ct,
                "application/problem+json",
                "{status} without a problem document: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, ct, v)
    }

    /// Stores a file through `POST /api/files` (`name` sent percent-encoded, as the console
    /// does); the file's metadata, or the problem.
    pub async fn upload(&self, token: &str, name: &str, content_type: &str, bytes: &[u8]) -> (StatusCode, Value) {
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/files")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, bytes.len())
            .header("X-File-Name", encoded)
            .body(Body::from(bytes.to_vec()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    pub fn password(&self, username: &str) -> String {
        self.accounts.get(username).cloned().unwrap_or_else(|| panic!("no demo account {username}"))
    }

    /// Logs in a demo user; administrators enrol TOTP first when they have not yet.
    pub async fn login(&self, username: &str) -> String {
        let pw = self.password(username);
        let (s, v) = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(serde_json::json!({"username": username, "password": pw})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "login {username}: {v}");
        let token = v["token"].as_str().unwrap().to_string();
        if v["next"] == "totp_setup" {
            let (s, setup) = self.post("/api/auth/totp/setup", &token, serde_json::json!({})).await;
            assert_eq!(s, StatusCode::OK, "{setup}");
            let secret = setup["secret"].as_str().unwrap();
            let code = crate::access::totp::code_at(secret, now_secs()).unwrap();
            let (s, v) = self.post("/api/auth/totp/enable", &token, serde_json::json!({"code": code})).await;
            assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
            self.totp_secrets().lock().unwrap().insert(username.to_string(), secret.to_string());
        }
        token
    }

    pub fn totp_secrets(&self) -> &std::sync::Mutex<HashMap<String, String>> {
        &self.totp
    }

    pub async fn org_id(&self, key: &str) -> String {
        crate::demo::org_ids(&self.platform.state).await.unwrap()[key].clone()
    }

    pub async fn user_id(&self, username: &str) -> String {
        crate::users::by_username(&self.platform.state.store, username).await.unwrap().unwrap().id
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

// ------------------------------------------------------------ the bad-input sweep

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

impl TestApp {
    /// Sends every route of the OpenAPI document malformed bodies, wrong types, unknown fields,
    /// an oversized body, hostile ids and bad query parameters, once per credential in `tokens`;
    /// panics on any 5xx. Returns the number of requests sent.
    pub async fn sweep_bad_input(&self, tokens: &[Option<String>]) -> usize {
        sweep(self, tokens).await
    }
}

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

/// Whether an answer of `method route` with `status`, media type `content_type` and JSON body
/// `body` is as the OpenAPI document `doc` says; why not, if it is not.
pub fn check_documented(
    doc: &Value,
    method: &Method,
    route: &str,
    status: StatusCode,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    let op = &doc["paths"][route][method.as_str().to_lowercase()];
    if op.is_null() {
        return Err(format!("no operation {method} {route} in the document"));
    }
    let responses = &op["responses"];
    let documented = responses.get(status.as_str()).or_else(|| responses.get("default"));
    let Some(resp) = documented else {
        let listed: Vec<&String> = responses.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        return Err(format!("status {status} is not documented (documented: {listed:?})"));
    };
    let Some(content) = resp.get("content").and_then(Value::as_object) else {
        return if body.is_null() || body.as_str() == Some("") {
            Ok(())
        } else {
            Err("a body where none is documented".into())
        };
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some(c) = content.get(media) else {
        return Err(format!("media type {media:?} is not documented (documented: {:?})", content.keys()));
    };
    match c.get("schema") {
        Some(schema) if media.ends_with("json") => check_schema(doc, schema, body, "$"),
        _ => Ok(()),
    }
}

/// Checks `value` against a JSON Schema of an OpenAPI 3.1 document: the keywords utoipa writes
/// (`$ref`, `type`, `enum`, `const`, `required`, `properties`, `additionalProperties`, `items`,
/// `allOf`, `anyOf`, `oneOf`); formats and numeric bounds are not checked.
pub fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").ok_or_else(|| format!("{at}: unknown $ref {r}"))?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: $ref {r} names no schema"));
        }
        check_schema(doc, target, value, at)?;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check_schema(doc, s, value, at)?;
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let errors: Vec<String> = any.iter().filter_map(|s| check_schema(doc, s, value, at).err()).collect();
        if errors.len() == any.len() {
            return Err(format!("{at}: matches none of anyOf: {errors:?}"));
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let errors: Vec<String> = one.iter().filter_map(|s| check_schema(doc, s, value, at).err()).collect();
        match one.len() - errors.len() {
            1 => {}
            0 => return Err(format!("{at}: matches none of oneOf: {errors:?}")),
            n => return Err(format!("{at}: matches {n} of oneOf, not exactly one")),
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |ty: &str| match ty {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
            _ => true,
        };
        if !types.iter().any(|ty| is(ty)) {
            return Err(format!("{at}: {} is not of type {t}", short(value)));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            return Err(format!("{at}: {} is not one of {}", short(value), Value::Array(e.clone())));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return Err(format!("{at}: {} is not {c}", short(value)));
        }
    }
    if let Some(obj) = value.as_object() {
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(k) = key.as_str() {
                if !obj.contains_key(k) {
                    return Err(format!("{at}: the required member {k:?} is missing"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match (props.and_then(|p| p.get(k)), schema.get("additionalProperties")) {
                (Some(s), _) => check_schema(doc, s, v, &format!("{at}.{k}"))?,
                (None, Some(Value::Bool(false))) => return Err(format!("{at}: the member {k:?} is not documented")),
                (None, Some(s)) if s.is_object() => check_schema(doc, s, v, &format!("{at}.{k}"))?,
                _ => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), value.as_array()) {
        for (i, v) in a.iter().enumerate() {
            check_schema(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s }
}
