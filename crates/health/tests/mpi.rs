//! The master patient index through HTTP: a registration with the same citizen ID linked
//! automatically, a likely one queued for review, `Patient/$match`, the reviewer's decisions and
//! taking a link back; the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use health::HealthModule;
use http_body_util::BodyExt;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const CID: &str = "urn:wuqing:sid:citizen-id";

async fn fhir(app: &TestApp, method: Method, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        b = b.header("content-type", "application/fhir+json");
    }
    let req = b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn patient(cid: Option<&str>, family: &str, given: &str, birth: &str, phone: &str) -> Value {
    let mut p = json!({ "resourceType": "Patient",
        "name": [{ "family": family, "given": [given], "text": format!("{family}{given}") }],
        "gender": "female", "birthDate": birth,
        "telecom": [{ "system": "phone", "value": phone }],
        "address": [{ "text": "天津市武清区杨村街道光明路12号" }] });
    if let Some(c) = cid {
        p["identifier"] = json!([{ "system": CID, "value": c }]);
    }
    p
}

async fn create(app: &TestApp, token: &str, v: Value) -> String {
    let (s, b) = fhir(app, Method::POST, "/fhir/Patient", token, Some(v)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

async fn the_index(backend: Backend) {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let yang = app.login("dr.yang").await;
    let wu = app.login("dr.wu").await;
    let chen = app.login("wjw.chen").await; // 卫健委
    let cid = kernel::demo::fictitious_citizen_id("19800101", 41);

    let a = create(&app, &yang, patient(Some(&cid), "王", "芳", "1980-01-01", "13812345678")).await;
    // Another desk registers her again, with her ID: the same person, linked by the index.
    let b = create(&app, &wu, patient(Some(&cid), "王", "芳", "1980-01-01", "13812345678")).await;
    // A third registration without an ID, with another phone and address: perhaps her, for a
    // person to judge.
    let mut third = patient(None, "王", "芳", "1980-01-01", "13900001111");
    third["address"] = json!([{ "text": "天津市武清区大良镇田水铺村5号" }]);
    let c = create(&app, &wu, third).await;
    // Somebody else entirely.
    let d = create(&app, &wu, patient(None, "赵", "建国", "1952-07-19", "13700002222")).await;

    // $match: candidates graded, best first; the clinician sees the other institution's
    // registration masked.
    let params = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "resource", "resource": patient(Some(&cid), "王", "芳", "1980-01-01", "13812345678") },
        { "name": "count", "valueInteger": 5 } ] });
    let (s, m) = fhir(&app, Method::POST, "/fhir/Patient/$match", &yang, Some(params.clone())).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let got: Vec<(&str, &str)> = m["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["resource"]["id"].as_str().unwrap(), e["search"]["extension"][0]["valueCode"].as_str().unwrap()))
        .collect();
    assert!(got.contains(&(a.as_str(), "certain")) && got.contains(&(b.as_str(), "certain")), "{got:?}");
    assert!(!got.iter().any(|(id, _)| *id == d), "{got:?}");
    let theirs = m["entry"].as_array().unwrap().iter().find(|e| e["resource"]["id"] == b.as_str()).unwrap();
    assert_ne!(theirs["resource"]["identifier"][0]["value"], cid.as_str(), "masked: {theirs}");
    let mine = m["entry"].as_array().unwrap().iter().find(|e| e["resource"]["id"] == a.as_str()).unwrap();
    assert_eq!(mine["resource"]["identifier"][0]["value"], cid.as_str(), "its own registration in full");
    let only = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "resource", "resource": patient(None, "王", "芳", "1980-01-01", "13900001111") },
        { "name": "onlyCertainMatches", "valueBoolean": true } ] });
    let (_, m) = fhir(&app, Method::POST, "/fhir/Patient/$match", &yang, Some(only)).await;
    for e in m["entry"].as_array().unwrap() {
        assert_eq!(e["search"]["extension"][0]["valueCode"], "certain");
    }
    let (s, _) = fhir(&app, Method::POST, "/fhir/Patient/$match", &chen, Some(params.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "regulators do not search patients");
    let (s, _) =
        fhir(&app, Method::POST, "/fhir/Patient/$match", &yang, Some(json!({ "resourceType": "Parameters" }))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = fhir(&app, Method::POST, "/fhir/Observation/$match", &yang, Some(params)).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

    // The automatic link: a and b are one person.
    let (s, p) = app.get(&format!("/api/health/mpi/patients/{a}/person"), &chen).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let mut regs: Vec<&str> = p["registrations"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    regs.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(regs, want);
    let auto = p["events"].as_array().unwrap().iter().find(|e| e["source"] == "automatic").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The queue: c against the earlier registrations, masked.
    let (s, q) = app.get("/api/health/mpi/reviews", &chen).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let items = q["items"].as_array().unwrap();
    let mine: Vec<&Value> = items.iter().filter(|r| r["a"]["id"] == c.as_str()).collect();
    assert!(!mine.is_empty(), "{q}");
    let review = mine[0];
    assert_eq!(review["status"], "open");
    assert_eq!(review["a"]["name"], "王芳");
    let shown = review["b"]["citizen_id"].as_str().unwrap();
    assert!(shown.contains('*') && shown != cid, "{shown}");
    let rid = review["id"].as_str().unwrap().to_string();
    // Separate them: two people; a second decision is refused.
    let (s, v) =
        app.post(&format!("/api/health/mpi/reviews/{rid}/decision"), &chen, json!({ "decision": "separate" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "separated");
    let (s, _) =
        app.post(&format!("/api/health/mpi/reviews/{rid}/decision"), &chen, json!({ "decision": "link" })).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) =
        app.post(&format!("/api/health/mpi/reviews/{rid}/decision"), &chen, json!({ "decision": "perhaps" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app.post("/api/health/mpi/reviews/nope/decision", &chen, json!({ "decision": "link" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Take the automatic link back: a is a person of its own again; twice is refused.
    let (s, u) = app.post(&format!("/api/health/mpi/events/{auto}/undo"), &chen, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["kind"], "unlink");
    let (_, p) = app.get(&format!("/api/health/mpi/patients/{a}/person"), &chen).await;
    assert_eq!(p["registrations"].as_array().unwrap().len(), 1, "{p}");
    let (s, _) = app.post(&format!("/api/health/mpi/events/{auto}/undo"), &chen, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Only the health commission's staff keep the index.
    for tok in [&yang, &wu] {
        let (s, _) = app.get("/api/health/mpi/reviews", tok).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let transport = app.login("jt.liu").await;
    let (s, _) = app.get("/api/health/mpi/reviews", &transport).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Each decision is in the audit log.
    let store = &app.platform.state.store;
    let rows = sqlx::query("SELECT action FROM audit_log WHERE action LIKE 'health.mpi.%'")
        .fetch_all(store.reader())
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| sqlx::Row::get::<String, _>(r, "action")).collect();
    for a in ["health.mpi.link", "health.mpi.separate", "health.mpi.unlink", "health.mpi.review"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn the_index_on_sqlite() {
    the_index(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_index_on_postgres() {
    the_index(Backend::Postgres).await;
}
