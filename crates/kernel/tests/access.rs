//! Access control through the HTTP API: scoping, separation of the three administrators,
//! lock-out, forced password change, tokens, TOTP, masking and the audit trail of refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kernel::testing as common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp};
use serde_json::json;

async fn app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.expect("sqlite always runs")
}

fn usernames(v: &serde_json::Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn operator_cannot_read_another_organisations_records_by_list_id_or_filter() {
    let app = app().await;
    let op = app.login("shunda.zhao").await;
    let other_user = app.user_id("bus.sun").await;
    let other_org = app.org_id("wuqing_bus").await;

    // By list: only its own organisation's users.
    let (s, v) = app.get("/api/users", &op).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(usernames(&v), vec!["shunda.zhao"]);
    assert_eq!(v["total"], 1);

    // By ID: not found, as if it did not exist.
    let (s, v) = app.get(&format!("/api/users/{other_user}"), &op).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["code"], "not_found");

    // By filter: refused.
    let (s, v) = app.get(&format!("/api/users?org_id={other_org}"), &op).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // By text search across organisations: still only its own.
    let (s, v) = app.get("/api/users?q=bus", &op).await;
    assert_eq!(s, StatusCode::OK);
    assert!(usernames(&v).is_empty(), "{v}");

    // Organisations: its own only.
    let (_, v) = app.get("/api/orgs", &op).await;
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|o| o["name_en"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let (s, _) = app.get(&format!("/api/orgs/{other_org}"), &op).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The refusals are in the audit log.
    let auditor = app.login("auditor").await;
    let (s, v) = app.get("/api/audit?outcome=denied&actor=shunda.zhao", &auditor).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let actions: Vec<&str> = v["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"user.read") && actions.contains(&"user.list"), "{actions:?}");
}

#[tokio::test]
async fn regulator_sees_its_domain_not_another_bureaus() {
    let app = app().await;
    let reg = app.login("jt.liu").await;
    let (_, v) = app.get("/api/orgs?limit=500", &reg).await;
    let kinds: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name_en"].as_str().unwrap().to_string(), o["domain"].as_str().unwrap().to_string()))
        .collect();
    assert!(kinds.iter().all(|(_, d)| d == "transport"), "{kinds:?}");
    assert!(kinds.iter().any(|(n, _)| n.contains("Shunda")));
    let (_, v) = app.get("/api/users?limit=500", &reg).await;
    let names = usernames(&v);
    assert!(names.contains(&"shunda.zhao".to_string()) && !names.contains(&"dr.yang".to_string()), "{names:?}");
}

#[tokio::test]
async fn three_administrators_are_separated() {
    let app = app().await;
    let sys = app.login("sysadmin").await;
    let sec = app.login("secadmin").await;
    let aud = app.login("auditor").await;
    let target = app.user_id("bus.sun").await;

    // The system administrator cannot read the audit log, nor grant roles.
    let (s, v) = app.get("/api/audit", &sys).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = app.get("/api/audit/verify", &sys).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post(&format!("/api/users/{target}/grant"), &sys, json!({"role": "regulator"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The security administrator cannot create accounts nor read the audit log, but grants.
    let org = app.org_id("wuqing_bus").await;
    let (s, _) = app
        .post(
            "/api/users",
            &sec,
            json!({"username": "new.one", "display_name": "N", "org_id": org, "role": "operator"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get("/api/audit", &sec).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.post(&format!("/api/users/{target}/grant"), &sec, json!({"clearance": "sensitive"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["clearance"], "sensitive");

    // The audit administrator reads the log and nothing else.
    let (s, v) = app.get("/api/audit?action=user.grant", &aud).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["actor"], "secadmin");
    let (s, _) = app.get("/api/users", &aud).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post(&format!("/api/users/{target}/lock"), &aud, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Nobody raises an account to an administrator through the API.
    let (s, v) = app.post(&format!("/api/users/{target}/grant"), &sec, json!({"role": "audit_admin"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn locked_out_user_stays_out_until_unlocked() {
    let app = TestApp::spawn_with(Backend::Sqlite, vec![], |c| c.security.lockout_threshold = 5).await.unwrap();
    let login = |pw: String| {
        let app = &app;
        async move {
            app.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "bus.sun", "password": pw}))).await
        }
    };
    for i in 0..4 {
        let (s, v) = login("Wrong-Password-1".into()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}: {v}");
        assert_eq!(v["code"], "invalid_credentials");
    }
    let (s, v) = login("Wrong-Password-1".into()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "account_locked");
    // The right password does not help while locked out, and says why.
    let (s, v) = login(app.password("bus.sun")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "account_locked");
    assert!(v["detail"].as_str().unwrap().contains("locked until"), "{v}");

    // The security administrator finds the locked account by the filter and unlocks it; then
    // the right password works.
    let sec = app.login("secadmin").await;
    let id = app.user_id("bus.sun").await;
    let (_, v) = app.get("/api/users?locked=true", &sec).await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["items"][0]["username"], "bus.sun");
    let (_, v) = app.get("/api/users?locked=false&q=bus.sun", &sec).await;
    assert_eq!(v["total"], 0, "{v}");
    let (s, _) = app.post(&format!("/api/users/{id}/unlock"), &sec, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = login(app.password("bus.sun")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = app.get("/api/users?locked=true", &sec).await;
    assert_eq!(v["total"], 0, "{v}");

    // Failed logins and the lock-out are audited.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=login&outcome=failure&actor=bus.sun", &aud).await;
    assert_eq!(v["total"], 5, "{v}");
}

#[tokio::test]
async fn administrator_lock_ends_sessions() {
    let app = app().await;
    let op = app.login("coach.zhou").await;
    let sec = app.login("secadmin").await;
    let id = app.user_id("coach.zhou").await;
    let (s, _) = app.post(&format!("/api/users/{id}/lock"), &sec, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/api/auth/me", &op).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "coach.zhou", "password": app.password("coach.zhou")})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v["detail"].as_str().unwrap().contains("administrator"));
}

#[tokio::test]
async fn new_accounts_must_change_their_initial_password() {
    let app = app().await;
    let sys = app.login("sysadmin").await;
    let org = app.org_id("shunda").await;
    let (s, v) = app
        .post(
            "/api/users",
            &sys,
            json!({"username": "shunda.qian", "display_name": "钱监控员", "org_id": org, "role": "operator", "phone": "13912345678"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["phone"], "139****5678");
    let initial = v["initial_password"].as_str().unwrap().to_string();
    let (s, v) = app
        .call(Method::POST, "/api/auth/login", None, Some(json!({"username": "shunda.qian", "password": initial})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["next"], "password_change");
    let t = v["token"].as_str().unwrap().to_string();
    let (s, v) = app.get("/api/users", &t).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "password_change_required");
    let (s, v) = app.post("/api/auth/password", &t, json!({"old_password": initial, "new_password": "short"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "weak_password");
    let (s, _) =
        app.post("/api/auth/password", &t, json!({"old_password": initial, "new_password": "Qian-Monitor-2026"})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/api/users", &t).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn administrators_need_a_second_factor() {
    let app = app().await;
    let pw = app.password("secadmin");
    let (s, v) =
        app.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "secadmin", "password": pw}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["next"], "totp_setup");
    let t = v["token"].as_str().unwrap().to_string();
    let (s, v) = app.get("/api/users", &t).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("totp_setup_required")));
    // Enrol (the harness does it), then a login without the code is refused, with it accepted.
    let _ = app.login("secadmin").await;
    let (s, v) =
        app.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "secadmin", "password": pw}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("totp_required")));
    let secret = app.totp_secrets().lock().unwrap()["secadmin"].clone();
    let code = kernel::access::totp::code_at(&secret, common::now_secs()).unwrap();
    let (s, v) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "secadmin", "password": pw, "totp": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["next"].is_null());
    let (s, _) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "secadmin", "password": pw, "totp": "000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_scoped_and_revocable() {
    let app = app().await;
    let session = app.login("jt.liu").await;
    let (s, v) = app.post("/api/tokens", &session, json!({"name": "reporting script", "scope": "read"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let read = v["token"].as_str().unwrap().to_string();
    let id = v["info"]["id"].as_str().unwrap().to_string();
    let (s, _) = app.get("/api/users", &read).await;
    assert_eq!(s, StatusCode::OK);
    // A read token cannot write, nor mint tokens.
    let (s, v) = app.post("/api/tokens", &read, json!({"name": "x", "scope": "read_write"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("token_scope")));
    // The list never shows the secret; the database holds only its hash.
    let (_, v) = app.get("/api/tokens", &session).await;
    assert!(!v.to_string().contains(&read));
    // Another user cannot revoke it.
    let other = app.login("shunda.zhao").await;
    let (s, _) = app.call(Method::DELETE, &format!("/api/tokens/{id}"), Some(&other), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::DELETE, &format!("/api/tokens/{id}"), Some(&session), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/api/users", &read).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn me_names_the_organisations_domain() {
    let app = app().await;
    for (user, domain) in [("bus.sun", json!("transport")), ("wjw.chen", json!("health")), ("dr.yang", json!("health"))]
    {
        let t = app.login(user).await;
        let (s, v) = app.get("/api/auth/me", &t).await;
        assert_eq!((s, &v["domain"]), (StatusCode::OK, &domain), "{user}: {v}");
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = app().await;
    let t = app.login("dr.yang").await;
    let (s, _) = app.post("/api/auth/logout", &t, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get("/api/auth/me", &t).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
}

#[tokio::test]
async fn session_cookie_is_http_only_and_strict() {
    let app = app().await;
    use axum::body::Body;
    use tower::ServiceExt;
    let body = json!({"username": "dr.wu", "password": app.password("dr.wu")}).to_string();
    let req = axum::http::Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let token = cookie.split(';').next().unwrap().to_string();
    let req = axum::http::Request::get("/api/auth/me").header("cookie", token).body(Body::empty()).unwrap();
    assert_eq!(app.router.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn identifiers_are_masked_and_revealing_them_is_audited() {
    let app = app().await;
    let sys = app.login("sysadmin").await;
    let id = app.user_id("dr.yang").await;
    let (_, v) = app.get(&format!("/api/users/{id}"), &sys).await;
    let masked = v["citizen_id"].as_str().unwrap().to_string();
    assert!(masked.starts_with("120114********"), "{masked}");
    assert_eq!(v["phone"], "139****0009");
    let (s, v) = app.get(&format!("/api/users/{id}?reveal=true"), &sys).await;
    assert_eq!(s, StatusCode::OK);
    let full = v["citizen_id"].as_str().unwrap().to_string();
    assert!(kernel::crypto::CitizenId::parse(&full).is_ok());
    // An operator may not reveal even its own colleagues.
    let op = app.login("shunda.zhao").await;
    let me = app.user_id("shunda.zhao").await;
    let (s, _) = app.get(&format!("/api/users/{me}?reveal=true"), &op).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "internal clearance cannot reveal");
    let aud = app.login("auditor").await;
    let (_, v) = app.get(&format!("/api/audit?action=user.reveal&target_id={id}"), &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    // The audit log holds neither the number nor its masked form's hidden digits.
    let (_, all) = app.get("/api/audit?limit=500", &aud).await;
    assert!(!all.to_string().contains(&full));
}

#[tokio::test]
async fn the_database_file_holds_ciphertext_not_id_numbers() {
    let app = app().await;
    let sys = app.login("sysadmin").await;
    let id = app.user_id("resident.huang").await;
    let (_, v) = app.get(&format!("/api/users/{id}?reveal=true"), &sys).await;
    let full = v["citizen_id"].as_str().unwrap().to_string();
    let phone = v["phone"].as_str().unwrap().to_string();
    // Fold the WAL into the main file so that every committed byte is in it.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(app.platform.state.store.reader()).await.unwrap();
    let mut bytes = std::fs::read(app.dir.path().join("wuqing.db")).unwrap();
    if let Ok(wal) = std::fs::read(app.dir.path().join("wuqing.db-wal")) {
        bytes.extend(wal);
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(!hay.contains(&full), "citizen ID in clear in the database file");
    assert!(!hay.contains(&phone), "phone in clear in the database file");
    assert!(hay.contains("resident.huang"), "sanity: the file does hold the user row");
}

#[tokio::test]
async fn tampered_audit_row_is_found() {
    let app = app().await;
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit/verify", &aud).await;
    assert_eq!(v["first_broken"], serde_json::Value::Null, "{v}");
    let store = &app.platform.state.store;
    // The application cannot change the log.
    let r = sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = 5").execute(store.reader()).await;
    assert!(r.is_err(), "append-only trigger");
    // Someone with the file drops the trigger and edits a record.
    sqlx::query("DROP TRIGGER audit_no_update").execute(store.reader()).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = 5").execute(store.reader()).await.unwrap();
    let v = kernel::audit::verify(store).await.unwrap();
    assert_eq!(v.first_broken, Some(5), "{v:?}");
    let (_, v) = app.get("/api/audit/verify", &aud).await;
    assert_eq!(v["first_broken"], 5);
}

#[tokio::test]
async fn deleted_audit_tail_is_found() {
    let app = app().await;
    let store = &app.platform.state.store;
    sqlx::query("DROP TRIGGER audit_no_delete").execute(store.reader()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(store.reader()).await.unwrap();
    sqlx::query(&format!("DELETE FROM audit_log WHERE seq = {n}")).execute(store.reader()).await.unwrap();
    let v = kernel::audit::verify(store).await.unwrap();
    assert_eq!(v.first_broken, Some(n), "{v:?}");
}

#[tokio::test]
async fn idle_sessions_time_out_and_lockouts_expire() {
    let app = app().await;
    let store = &app.platform.state.store;
    let t = app.login("dr.yang").await;
    let (s, _) = app.get("/api/auth/me", &t).await;
    assert_eq!(s, StatusCode::OK);
    // 31 minutes without a request (the default idle time-out is 30).
    let past = kernel::store::now_ms() - 31 * 60_000;
    sqlx::query(&store.sql("UPDATE credentials SET last_seen_ms = $1"))
        .bind(past)
        .execute(store.reader())
        .await
        .unwrap();
    let (s, v) = app.get("/api/auth/me", &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("timed out"), "{v}");
    // Once timed out, it stays ended even if it were touched again.
    sqlx::query(&store.sql("UPDATE credentials SET last_seen_ms = $1"))
        .bind(kernel::store::now_ms())
        .execute(store.reader())
        .await
        .unwrap();
    let (s, _) = app.get("/api/auth/me", &t).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A lock-out that has run its course no longer refuses the right password.
    sqlx::query(&store.sql("UPDATE users SET locked_until_ms = $1 WHERE username = 'dr.yang'"))
        .bind(kernel::store::now_ms() - 1000)
        .execute(store.reader())
        .await
        .unwrap();
    let _ = app.login("dr.yang").await;
}

#[tokio::test]
async fn clearance_bounds_what_a_role_may_read() {
    let app = app().await;
    let sec = app.login("secadmin").await;
    let id = app.user_id("coach.zhou").await;
    let (s, v) = app.post(&format!("/api/users/{id}/grant"), &sec, json!({"clearance": "public"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let op = app.login("coach.zhou").await;
    // The role allows reading users; the clearance (public) does not reach their class (internal).
    let (s, v) = app.get("/api/users", &op).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("classified internal"), "{v}");
    // Their own record stays readable.
    let (s, _) = app.get(&format!("/api/users/{id}"), &op).await;
    assert_eq!(s, StatusCode::OK);
}
