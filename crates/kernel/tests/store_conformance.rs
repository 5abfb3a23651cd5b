//! One store conformance suite, instantiated for SQLite and PostgreSQL (the latter when
//! `WUQING_TEST_PG` names a server; each test gets a fresh database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kernel::testing as common;

use axum::http::StatusCode;
use common::{Backend, TestApp};
use kernel::access::Scope;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::telemetry::{self, Observation, Value};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::TestApp::spawn(super::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::TestApp::spawn(super::Backend::Postgres).await { super::$name(app).await } } )*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_edits_refused,
    audit_chain_holds_under_concurrent_appends,
    audit_log_is_append_only,
    users_unique_scoped_and_paged,
    telemetry_range_and_retention,
    demo_seed_is_idempotent,
    operator_scope_over_http,
    integrity_check_passes_on_a_seeded_store,
);

async fn migrations_are_idempotent_and_edits_refused(app: TestApp) {
    let store = &app.platform.state.store;
    let ms: Vec<_> = app.platform.modules.iter().flat_map(|m| m.migrations()).collect();
    let r = store.migrate(&ms).await.unwrap();
    assert!(r.applied.is_empty(), "{:?}", r.applied);
    let mut edited = ms.clone();
    edited[0].sql = "CREATE TABLE something_else (x BIGINT)";
    let e = store.migrate(&edited).await.expect_err("edited migration");
    assert!(e.to_string().contains("edited"), "{e}");
}

async fn audit_chain_holds_under_concurrent_appends(app: TestApp) {
    let store = app.platform.state.store.clone();
    let before = audit::verify(&store).await.unwrap();
    assert!(before.ok(), "{before:?}");
    let mut handles = vec![];
    for i in 0..40 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            audit::record(
                &s,
                Event::new(Actor::cli("test"), "test.append", "thing", Some(&i.to_string()), Outcome::Success),
            )
            .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let after = audit::verify(&store).await.unwrap();
    assert!(after.ok(), "{after:?}");
    assert_eq!(after.checked, before.checked + 40);
    let (recs, total) =
        audit::query(&store, &audit::Filter { action: Some("test.append".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
    assert_eq!((recs.len(), total), (40, 40));
}

async fn audit_log_is_append_only(app: TestApp) {
    let store = &app.platform.state.store;
    let mut tx = store.begin().await.unwrap();
    let r = sqlx::query("DELETE FROM audit_log").execute(&mut *tx).await;
    assert!(r.is_err(), "delete must fail");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let r = sqlx::query("UPDATE audit_log SET outcome = 'success'").execute(&mut *tx).await;
    assert!(r.is_err(), "update must fail");
}

async fn users_unique_scoped_and_paged(app: TestApp) {
    let st = &app.platform.state;
    let org = app.org_id("shunda").await;
    let new = |u: &str| kernel::users::NewUser {
        username: u.into(),
        display_name: "测试".into(),
        org_id: org.clone(),
        role: kernel::access::Role::Operator,
        clearance: kernel::access::Classification::Internal,
        password: None,
        phone: None,
        citizen_id: Some("11010519491231002X".into()),
    };
    for i in 0..7 {
        kernel::users::create(&st.store, &st.cipher, 10, Actor::cli("t"), new(&format!("op{i}")), Default::default())
            .await
            .unwrap();
    }
    let e = kernel::users::create(&st.store, &st.cipher, 10, Actor::cli("t"), new("op3"), Default::default())
        .await
        .expect_err("dup");
    assert_eq!(e.code, kernel::error::Code::Conflict);
    let scope = Scope::Orgs(vec![org.clone()]);
    let f = kernel::users::ListFilter { q: Some("op".into()), limit: 3, offset: 3, ..Default::default() };
    let (page, total) = kernel::users::list(&st.store, &scope, &f).await.unwrap();
    assert_eq!(total, 7);
    assert_eq!(page.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), vec!["op3", "op4", "op5"]);
    // A LIKE wildcard in the search is taken literally.
    let f = kernel::users::ListFilter { q: Some("o_".into()), limit: 50, ..Default::default() };
    assert_eq!(kernel::users::list(&st.store, &scope, &f).await.unwrap().1, 0);
    let (none, n) = kernel::users::list(
        &st.store,
        &Scope::Orgs(vec![]),
        &kernel::users::ListFilter { limit: 50, ..Default::default() },
    )
    .await
    .unwrap();
    assert!(none.is_empty() && n == 0);
    // The blind index finds a user by citizen ID without decrypting anything.
    let idx = st.cipher.blind_index("11010519491231002x");
    let n: i64 = sqlx::query_scalar(&st.store.sql("SELECT COUNT(*) FROM users WHERE citizen_id_bidx = $1"))
        .bind(idx)
        .fetch_one(st.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 7);
}

async fn telemetry_range_and_retention(app: TestApp) {
    let store = &app.platform.state.store;
    let now = kernel::store::now_ms();
    let mut batch = vec![];
    for i in 0..250i64 {
        batch.push(Observation {
            source: "13900000001".into(),
            kind: if i % 2 == 0 { "position".into() } else { "temperature".into() },
            device_ms: now - 1_000_000 + i * 1000,
            received_ms: now,
            value: if i % 2 == 0 {
                Value::Position { lat: 39.38 + i as f64 * 1e-4, lon: 117.04 }
            } else {
                Value::Number { value: i as f64 }
            },
        });
    }
    // An old one, beyond any retention.
    batch.push(Observation {
        source: "13900000001".into(),
        kind: "temperature".into(),
        device_ms: now - 400 * 86_400_000,
        received_ms: now,
        value: Value::Number { value: -1.0 },
    });
    for o in &batch {
        o.validate().unwrap();
    }
    telemetry::insert_batch(store, &batch).await.unwrap();
    let all = telemetry::range(store, "13900000001", None, now - 2_000_000, now, 1000).await.unwrap();
    assert_eq!(all.len(), 250);
    assert!(all.windows(2).all(|w| w[0].device_ms <= w[1].device_ms));
    let temps =
        telemetry::range(store, "13900000001", Some("temperature"), now - 1_000_000, now - 1_000_000 + 10_000, 1000)
            .await
            .unwrap();
    assert_eq!(
        temps.iter().map(|o| o.device_ms - (now - 1_000_000)).collect::<Vec<_>>(),
        vec![1000, 3000, 5000, 7000, 9000]
    );
    assert_eq!(temps[0].value, Value::Number { value: 1.0 });
    let first = &all[0];
    assert_eq!(first.value, Value::Position { lat: 39.38, lon: 117.04 });
    assert_eq!(telemetry::range(store, "13900000001", None, 0, now, 10).await.unwrap().len(), 10);
    // Delivered again (a retransmission, a stream's redelivery): stored once, the first kept.
    let mut again = batch.clone();
    again[1].value = Value::Number { value: 99.0 };
    telemetry::insert_batch(store, &again).await.unwrap();
    let twice = telemetry::range(store, "13900000001", None, 0, now, 1000).await.unwrap();
    assert_eq!(twice.len(), 251);
    assert_eq!(twice[2].value, Value::Number { value: 1.0 });
    // On PostgreSQL the old one's day has its own partition, which the retention drops whole;
    // on SQLite it is deleted by row.
    let old_day = (now - 400 * 86_400_000).div_euclid(86_400_000);
    let pg = store.backend() == kernel::store::Backend::Postgres;
    if pg {
        sqlx::query("DELETE FROM observations WHERE device_ms < $1")
            .bind(now - 300 * 86_400_000)
            .execute(store.reader())
            .await
            .unwrap();
        kernel::store::days::create(store, "observations", old_day..=old_day).await;
        assert!(kernel::store::days::exists(store, "observations", old_day).await.unwrap());
        telemetry::insert_batch(store, &batch[250..]).await.unwrap();
    }
    assert_eq!(telemetry::purge(store, 183).await.unwrap(), if pg { 0 } else { 1 });
    assert_eq!(telemetry::range(store, "13900000001", None, 0, now, 1000).await.unwrap().len(), 250);
    if pg {
        assert!(!kernel::store::days::exists(store, "observations", old_day).await.unwrap());
        let today = now.div_euclid(86_400_000);
        assert!(kernel::store::days::exists(store, "observations", today + 2).await.unwrap(), "days ahead created");
    }
}

async fn demo_seed_is_idempotent(app: TestApp) {
    let again = app.platform.seed_demo().await.unwrap();
    assert!(again.is_empty(), "a second seed creates nothing");
    let (orgs, n) = kernel::orgs::list(&app.platform.state.store, &Scope::All, None, None, 500, 0).await.unwrap();
    assert_eq!(orgs.len() as i64, n);
    let mut names: Vec<_> = orgs.iter().map(|o| o.name.clone()).collect();
    names.dedup();
    assert_eq!(names.len(), orgs.len());
}

async fn operator_scope_over_http(app: TestApp) {
    let op = app.login("bus.sun").await;
    let (s, v) = app.get("/api/users", &op).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["total"], 1, "{v}");
    let other = app.user_id("shunda.zhao").await;
    let (s, _) = app.get(&format!("/api/users/{other}"), &op).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// `wuqing check` after a crash: SQLite's `integrity_check`, PostgreSQL's `amcheck` over every
/// B-tree index (the test role is a superuser, so the extension is created).
async fn integrity_check_passes_on_a_seeded_store(app: TestApp) {
    assert_eq!(app.platform.state.store.integrity_check().await.unwrap(), "ok");
}

/// `store.read_url`: history reads go to the replica (here another database, read-only, so that
/// where a read went shows), writes and every other read to the primary.
#[tokio::test]
async fn postgres_history_reads_go_to_the_read_replica() {
    let Some(base) = common::pg_url() else { return };
    let replica_db = common::fresh_pg_database(&base).await;
    // Migrated like a standby of the same schema would be.
    let replica = kernel::store::Store::open(&replica_db, 2).await.unwrap();
    let migrations: Vec<_> = kernel::module::Module::migrations(&kernel::platform::KernelModule);
    replica.migrate(&migrations).await.unwrap();
    let obs = |value: f64| Observation {
        source: "RMYY-CS-09".into(),
        kind: "temperature".into(),
        device_ms: 1_764_000_000_000,
        received_ms: 1_764_000_000_000,
        value: Value::Number { value },
    };
    telemetry::insert_batch(&replica, &[obs(4.5)]).await.unwrap();
    // A hot standby refuses writes: so does this session.
    let sep = if replica_db.contains('?') { '&' } else { '?' };
    let read_url = format!("{replica_db}{sep}options=-c%20default_transaction_read_only%3Don");
    let Some(app) = TestApp::spawn_with(Backend::Postgres, vec![], |raw| raw.store.read_url = read_url).await else {
        return;
    };
    let store = &app.platform.state.store;
    assert!(store.has_replica());
    telemetry::insert_batch(store, &[obs(6.0)]).await.unwrap();
    let primary = telemetry::range(store, "RMYY-CS-09", None, 0, i64::MAX, 10).await.unwrap();
    assert_eq!(primary.iter().map(|o| o.value.clone()).collect::<Vec<_>>(), vec![Value::Number { value: 6.0 }]);
    let history = telemetry::range(&store.history(), "RMYY-CS-09", None, 0, i64::MAX, 10).await.unwrap();
    assert_eq!(history.iter().map(|o| o.value.clone()).collect::<Vec<_>>(), vec![Value::Number { value: 4.5 }]);
    // The history view writes to the primary still; its reader is the read-only replica.
    telemetry::insert_batch(&store.history(), &[Observation { device_ms: 1_764_000_001_000, ..obs(7.0) }])
        .await
        .unwrap();
    assert_eq!(telemetry::range(store, "RMYY-CS-09", None, 0, i64::MAX, 10).await.unwrap().len(), 2);
    let refused = sqlx::query("DELETE FROM observations").execute(store.history().reader()).await;
    assert!(refused.unwrap_err().to_string().contains("read-only"));
    // The configuration shown to operators masks the replica's password.
    let mut cfg = (*app.platform.state.config).clone();
    cfg.raw.store.read_url = "postgres://wuqing:s3cret@replica.example/wuqing".into();
    let shown = cfg.print_masked();
    assert!(shown.contains("replica.example") && !shown.contains("s3cret"), "{shown}");
}
