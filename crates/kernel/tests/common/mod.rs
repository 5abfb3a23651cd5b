//! Shared test harness: a platform on a fresh SQLite file or a fresh PostgreSQL database, the
//! demo district seeded, and helpers to call the HTTP API without a socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kernel::config::{Config, Overrides, RawConfig};
use kernel::demo::DemoAccount;
use kernel::platform::Platform;
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
    if let Some(u) = store_url {
        raw.store.url = u;
    }
    tweak(&mut raw);
    raw.check(&Overrides::default()).expect("config")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut RawConfig)) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_pg_database(&pg_url()?).await),
        };
        let cfg = config(dir.path(), url, tweak);
        let platform = Platform::open(cfg, vec![]).await.expect("open platform");
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
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                ct,
                "application/problem+json",
                "{status} without a problem document: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
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
            let code = kernel::access::totp::code_at(secret, now_secs()).unwrap();
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
        kernel::demo::org_ids(&self.platform.state).await.unwrap()[key].clone()
    }

    pub async fn user_id(&self, username: &str) -> String {
        kernel::users::by_username(&self.platform.state.store, username).await.unwrap().unwrap().id
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
