//! Versioned configuration documents on both backends (PostgreSQL when `WUQING_TEST_PG` names a
//! server; each test gets a fresh database): numbering, optimistic concurrency, listing, the
//! audit record and the bus announcement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kernel::audit::{self, Actor};
use kernel::error::Code;
use kernel::testing::{Backend, TestApp};
use kernel::versioned::{self, Draft};
use serde_json::json;
use std::time::Duration;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::TestApp::spawn(super::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::TestApp::spawn(super::Backend::Postgres).await { super::$name(app).await } } )*
        }
    };
}

both_backends!(
    publish_numbers_versions_and_keeps_them,
    a_stale_base_version_is_a_conflict,
    the_first_stored_version_follows_the_builtin,
    concurrent_publications_from_one_base_let_one_through,
    bad_names_and_notes_are_refused,
    domain_of_names_an_organisations_domain,
);

fn draft<'a>(name: &'a str, base: Option<i64>, body: &'a serde_json::Value, note: &'a str) -> Draft<'a> {
    Draft { name, base_version: base, builtin_version: 0, body, note }
}

async fn publish_numbers_versions_and_keeps_them(app: TestApp) {
    let st = &app.platform.state;
    let name = "test.doc";
    assert_eq!(versioned::current_version(&st.store, name).await.unwrap(), None);
    assert!(versioned::current(&st.store, name).await.unwrap().is_none());
    let (s, _) = versioned::list(&st.store, name, 10, 0).await.unwrap();
    assert!(s.is_empty());

    let mut sub = st.bus.subscribe("config.test.doc").unwrap();
    let v1 = json!({"limit": 80, "areas": ["a"]});
    let n = versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft(name, Some(0), &v1, "first"))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
    let announced: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(announced, json!({"name": name, "version": 1}));

    let v2 = json!({"limit": 60});
    let n = versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft(name, Some(1), &v2, " second "))
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Without a base version it goes over whatever is current.
    let v3 = json!({"limit": 50});
    let n =
        versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft(name, None, &v3, "")).await.unwrap();
    assert_eq!(n, 3);

    assert_eq!(versioned::current_version(&st.store, name).await.unwrap(), Some(3));
    let cur = versioned::current(&st.store, name).await.unwrap().unwrap();
    assert_eq!((cur.info.version, &cur.body), (3, &v3));
    let first = versioned::get(&st.store, name, 1).await.unwrap().unwrap();
    assert_eq!(first.body, v1);
    assert_eq!(first.info.note, "first");
    assert!(first.info.author.starts_with("cli:"), "{:?}", first.info);
    assert!(first.info.created_at.ends_with('Z'), "{:?}", first.info);
    assert!(versioned::get(&st.store, name, 4).await.unwrap().is_none());
    assert!(versioned::get(&st.store, "other.doc", 1).await.unwrap().is_none());

    // Newest first, paged, without bodies.
    let (page, total) = versioned::list(&st.store, name, 2, 0).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(page.iter().map(|v| v.version).collect::<Vec<_>>(), vec![3, 2]);
    assert_eq!(page[1].note, "second");
    let (page, _) = versioned::list(&st.store, name, 2, 2).await.unwrap();
    assert_eq!(page.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1]);
    let listed = serde_json::to_value(&page[0]).unwrap();
    assert!(listed.get("body").is_none(), "{listed}");

    // Each publication is audited with the name and the version, never the body.
    let f = audit::Filter { action: Some("config.published".into()), limit: 10, ..Default::default() };
    let (records, total) = audit::query(&st.store, &f).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(records[0].target_id.as_deref(), Some(name));
    assert_eq!(records[0].detail["version"], 3);
    assert_eq!(records[0].detail["name"], name);
    assert!(!records[0].detail.to_string().contains("limit"), "{}", records[0].detail);
    assert!(audit::verify(&st.store).await.unwrap().ok());
}

async fn a_stale_base_version_is_a_conflict(app: TestApp) {
    let st = &app.platform.state;
    let body = json!({"x": 1});
    let publish =
        |base| versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft("test.doc", base, &body, ""));
    assert_eq!(publish(Some(0)).await.unwrap(), 1);
    assert_eq!(publish(Some(1)).await.unwrap(), 2);
    for stale in [Some(1), Some(0), Some(3), Some(-1)] {
        let e = publish(stale).await.expect_err("stale base");
        assert_eq!(e.code, Code::Conflict, "{e:?}");
        assert_eq!(e.field.as_deref(), Some("base_version"));
        assert_eq!(e.code.status().as_u16(), 409);
    }
    // Nothing was written by the refusals.
    assert_eq!(versioned::current_version(&st.store, "test.doc").await.unwrap(), Some(2));
    let f = audit::Filter { action: Some("config.published".into()), limit: 10, ..Default::default() };
    assert_eq!(audit::query(&st.store, &f).await.unwrap().1, 2);
}

async fn the_first_stored_version_follows_the_builtin(app: TestApp) {
    let st = &app.platform.state;
    let body = json!({"x": 1});
    let publish = |base| {
        let d = Draft { name: "test.rules", base_version: base, builtin_version: 1, body: &body, note: "" };
        versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), d)
    };
    // While nothing is stored the built-in version 1 is current.
    assert_eq!(publish(Some(0)).await.expect_err("stale").code, Code::Conflict);
    assert_eq!(publish(Some(1)).await.unwrap(), 2);
    assert_eq!(publish(Some(2)).await.unwrap(), 3);
    assert_eq!(publish(Some(1)).await.expect_err("stale").code, Code::Conflict);
}

async fn concurrent_publications_from_one_base_let_one_through(app: TestApp) {
    let st = app.platform.state.clone();
    let body = json!({"x": 1});
    versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft("test.doc", Some(0), &body, ""))
        .await
        .unwrap();
    let mut handles = vec![];
    for i in 0..8 {
        let st = st.clone();
        handles.push(tokio::spawn(async move {
            let body = json!({"writer": i});
            versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft("test.doc", Some(1), &body, ""))
                .await
        }));
    }
    let mut won = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, 2);
                won += 1;
            }
            Err(e) => assert_eq!(e.code, Code::Conflict, "{e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(versioned::current_version(&st.store, "test.doc").await.unwrap(), Some(2));
    assert!(audit::verify(&st.store).await.unwrap().ok());
}

async fn bad_names_and_notes_are_refused(app: TestApp) {
    let st = &app.platform.state;
    let body = json!({});
    for name in ["", "a..b", "a.>", "A.b", "a b", "config.*"] {
        let e = versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft(name, None, &body, ""))
            .await
            .expect_err(name);
        assert_eq!((e.code, e.field.as_deref()), (Code::InvalidField, Some("name")), "{name}");
    }
    let long = "x".repeat(versioned::MAX_NOTE_CHARS + 1);
    for note in ["nul\u{0}", long.as_str()] {
        let e =
            versioned::publish(&st.store, st.bus.as_ref(), Actor::cli("test"), draft("test.doc", None, &body, note))
                .await
                .expect_err("note");
        assert_eq!((e.code, e.field.as_deref()), (Code::InvalidField, Some("note")));
    }
    assert_eq!(versioned::current_version(&st.store, "test.doc").await.unwrap(), None);
}

async fn domain_of_names_an_organisations_domain(app: TestApp) {
    let st = &app.platform.state;
    let bureau = app.org_id("transport_bureau").await;
    let taxi = app.org_id("yangcun_taxi").await;
    let residents = app.org_id("residents").await;
    assert_eq!(st.orgs.domain_of(&st.store, &bureau).await.unwrap().as_deref(), Some("transport"));
    assert_eq!(st.orgs.domain_of(&st.store, &taxi).await.unwrap().as_deref(), Some("transport"));
    assert_eq!(st.orgs.domain_of(&st.store, &residents).await.unwrap().as_deref(), Some(""));
    assert_eq!(st.orgs.domain_of(&st.store, "no-such-org").await.unwrap(), None);
}
