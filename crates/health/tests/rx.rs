//! Prescription checks through the FHIR server: each kind of finding against what the platform
//! holds of the patient, a high finding refused (audited) unless overridden with a reason
//! (audited), every finding kept as a DetectedIssue beside the MedicationRequest it implicates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{Method, StatusCode};
use health::HealthModule;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};

mod common;
use common::send;
use std::sync::Arc;

async fn create(app: &TestApp, token: &str, v: Value) -> String {
    let rt = v["resourceType"].as_str().unwrap().to_string();
    let r = send(app, Method::POST, &format!("/fhir/{rt}"), Some(token), Some(v), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn order(patient: &str, medication: Value, mg: f64, per_day: u32) -> Value {
    json!({ "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": { "reference": format!("Patient/{patient}") },
        "dosageInstruction": [{ "timing": { "repeat": { "frequency": per_day, "period": 1, "periodUnit": "d" } },
            "doseAndRate": [{ "doseQuantity": { "value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }] }] })
}

fn atc(code: &str, text: &str) -> Value {
    json!({ "coding": [{ "system": "http://www.whocc.no/atc", "code": code }], "text": text })
}

async fn audited(app: &TestApp, action: &str) -> Vec<(String, String)> {
    let store = &app.platform.state.store;
    let rows = sqlx::query(&store.sql("SELECT outcome, detail FROM audit_log WHERE action = $1 ORDER BY seq"))
        .bind(action.to_string())
        .fetch_all(store.reader())
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            (r.get::<String, _>("outcome"), r.get::<String, _>("detail"))
        })
        .collect()
}

async fn prescription_checks(backend: Backend) {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let wu = app.login("dr.wu").await;
    let yangcun = app.org_id("yangcun_chc").await;
    // A woman of 70 with severe CKD, allergic to penicillin, taking amlodipine.
    let pid = create(&app, &wu, json!({ "resourceType": "Patient", "name": [{ "text": "孙桂兰" }], "gender": "female", "birthDate": "1956-03-01" })).await;
    create(&app, &wu, json!({ "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": format!("Patient/{pid}") }, "serviceProvider": { "reference": format!("Organization/{yangcun}") },
        "period": { "start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T10:00:00+08:00" } })).await;
    create(&app, &wu, json!({ "resourceType": "Condition",
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
        "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "N18.5" }] },
        "subject": { "reference": format!("Patient/{pid}") } })).await;
    create(&app, &wu, json!({ "resourceType": "AllergyIntolerance",
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
        "code": { "text": "青霉素过敏" }, "patient": { "reference": format!("Patient/{pid}") } })).await;
    create(&app, &wu, json!({ "resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": { "text": "苯磺酸氨氯地平片 5 mg" }, "subject": { "reference": format!("Patient/{pid}") } })).await;

    // --- a high finding refuses the prescription, naming the rule and its source.
    let amoxicillin = order(&pid, atc("J01CA04", "阿莫西林胶囊"), 500.0, 3);
    let r = send(&app, Method::POST, "/fhir/MedicationRequest", Some(&wu), Some(amoxicillin.clone()), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["resourceType"], "OperationOutcome");
    let text = r.body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(text.contains("penicillin-allergy") && text.contains("来源"), "{text}");
    assert_eq!(r.body["issue"][0]["code"], "business-rule");
    let blocked = audited(&app, "health.rx.blocked").await;
    assert_eq!(blocked.len(), 1);
    assert!(blocked[0].1.contains("penicillin-allergy") && !blocked[0].1.contains("青霉素"), "{blocked:?}");
    // Nothing of it was stored.
    let none = send(&app, Method::GET, &format!("/fhir/MedicationRequest?patient={pid}"), Some(&wu), None, &[]).await;
    assert!(none.body["entry"].as_array().is_none_or(|e| e.is_empty()), "{}", none.body);
    // An override needs a reason of substance.
    let short = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(amoxicillin.clone()),
        &[("x-override-reason", "ok")],
    )
    .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body["issue"][0]["diagnostics"].as_str().unwrap().contains("reason"));

    // --- overridden with a reason: accepted, the finding kept with the override, audited.
    let reason =
        percent_encoding::utf8_percent_encode("皮试阴性，已备抢救药品", percent_encoding::NON_ALPHANUMERIC).to_string();
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(amoxicillin),
        &[("x-override-reason", &reason)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["x-detected-issues"], "1");
    let amox_id = r.body["id"].as_str().unwrap().to_string();
    let issues = send(
        &app,
        Method::GET,
        &format!("/fhir/DetectedIssue?implicated=MedicationRequest/{amox_id}"),
        Some(&wu),
        None,
        &[],
    )
    .await;
    assert_eq!(issues.status, StatusCode::OK, "{}", issues.body);
    let di = &issues.body["entry"][0]["resource"];
    assert_eq!(di["severity"], "high");
    assert_eq!(di["code"]["coding"][0]["code"], "ALGY");
    assert_eq!(di["identifier"][0]["value"], "penicillin-allergy");
    assert_eq!(di["mitigation"][0]["action"]["text"], "皮试阴性，已备抢救药品");
    assert_eq!(di["patient"]["reference"], format!("Patient/{pid}"));
    assert!(health::fhir::validate::validate(di, None).is_empty(), "a valid R4 DetectedIssue: {di}");
    let overrides = audited(&app, "health.rx.override").await;
    assert_eq!(overrides.len(), 1);
    assert!(!overrides[0].1.contains("皮试"), "the reason stays out of the audit detail: {overrides:?}");

    // --- a moderate finding: accepted and recorded (simvastatin with the amlodipine taken).
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(order(&pid, atc("C10AA01", "辛伐他汀片"), 20.0, 1)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["x-detected-issues"], "1");
    let sim_id = r.body["id"].as_str().unwrap().to_string();
    let found = send(
        &app,
        Method::GET,
        &format!("/fhir/DetectedIssue?implicated=MedicationRequest/{sim_id}"),
        Some(&wu),
        None,
        &[],
    )
    .await;
    assert_eq!(found.body["entry"][0]["resource"]["identifier"][0]["value"], "simvastatin-amlodipine");
    assert!(found.body["entry"][0]["resource"].get("mitigation").is_none());

    // --- a dose above the maximum, a contraindicated condition: refused.
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(order(&pid, json!({ "text": "苯磺酸氨氯地平片" }), 10.0, 2)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "20 mg a day: {}", r.body);
    assert!(r.body["issue"][0]["diagnostics"].as_str().unwrap().contains("max-dose:amlodipine"));
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(order(&pid, atc("A10BA02", "二甲双胍"), 500.0, 2)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["issue"][0]["diagnostics"].as_str().unwrap().contains("metformin-severe-ckd"));
    // An update is checked too: the simvastatin raised to a dose above its maximum.
    let mut sim = order(&pid, atc("C10AA01", "辛伐他汀片"), 80.0, 1);
    sim["id"] = json!(sim_id);
    let r = send(&app, Method::PUT, &format!("/fhir/MedicationRequest/{sim_id}"), Some(&wu), Some(sim), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // --- not checked: a medicine the knowledge base does not know, a completed request.
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(order(&pid, json!({ "text": "维生素C片" }), 100.0, 3)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.headers.get("x-detected-issues").is_none());
    let mut done = order(&pid, atc("J01CA04", "阿莫西林胶囊"), 500.0, 3);
    done["status"] = json!("completed");
    assert_eq!(
        send(&app, Method::POST, "/fhir/MedicationRequest", Some(&wu), Some(done), &[]).await.status,
        StatusCode::CREATED
    );

    // --- Bundles are checked as single requests are: a transaction refused whole, a batch's
    // entry alone.
    let entry = |v: Value| json!({ "resource": v, "request": { "method": "POST", "url": "MedicationRequest" } });
    let tx = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        entry(order(&pid, json!({ "text": "维生素C片" }), 100.0, 1)),
        entry(order(&pid, atc("J01CA04", "阿莫西林胶囊"), 500.0, 3)) ] });
    let r = send(&app, Method::POST, "/fhir", Some(&wu), Some(tx), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        entry(order(&pid, atc("J01CA04", "阿莫西林胶囊"), 500.0, 3)),
        entry(order(&pid, atc("C10AA05", "阿托伐他汀钙片"), 20.0, 1)) ] });
    let r = send(&app, Method::POST, "/fhir", Some(&wu), Some(batch), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["entry"][0]["response"]["status"].as_str().unwrap().starts_with("422"), "{}", r.body);
    assert!(r.body["entry"][1]["response"]["status"].as_str().unwrap().starts_with("201"), "{}", r.body);
    let statin = r.body["entry"][1]["resource"]["id"].as_str().unwrap().to_string();
    let found = send(
        &app,
        Method::GET,
        &format!("/fhir/DetectedIssue?implicated=MedicationRequest/{statin}"),
        Some(&wu),
        None,
        &[],
    )
    .await;
    assert_eq!(
        found.body["entry"][0]["resource"]["identifier"][0]["value"], "duplicate:statin",
        "with the simvastatin taken: {}",
        found.body
    );

    // --- the patient's record holds the findings.
    let all = send(&app, Method::GET, &format!("/fhir/DetectedIssue?patient={pid}"), Some(&wu), None, &[]).await;
    assert_eq!(all.body["entry"].as_array().unwrap().len(), 3, "{}", all.body);

    // --- the supervision figures: counts per institution, the interactions found.
    let chen = app.login("wjw.chen").await;
    let (s, f) = app.get("/api/health/rx/statistics", &chen).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let mine = f["institutions"].as_array().unwrap().iter().find(|x| x["org_id"] == yangcun.as_str()).unwrap().clone();
    assert_eq!(mine["prescriptions"], 5, "four alone and the batch's statin: {mine}");
    assert_eq!(
        (mine["alerts"].as_i64(), mine["high"].as_i64(), mine["moderate"].as_i64()),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(mine["overrides"], 1);
    assert_eq!(mine["alerts_per_1000"], 600.0);
    assert_eq!(f["top_interactions"], json!([{ "rule": "simvastatin-amlodipine", "count": 1 }]));
    let (s, own) = app.get("/api/health/rx/statistics", &wu).await;
    assert_eq!((s, own["institutions"].as_array().unwrap().len()), (StatusCode::OK, 1));
    let yang = app.login("dr.yang").await;
    let (_, other) = app.get("/api/health/rx/statistics", &yang).await;
    assert!(other["institutions"].as_array().unwrap().is_empty(), "another institution's figures: {other}");
    let huang = app.login("resident.huang").await;
    assert_eq!(app.get("/api/health/rx/statistics", &huang).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/health/rx/statistics?since=soon", &chen).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, kb) = app.get("/api/health/rx/knowledge-base", &huang).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (kb["version"].as_str(), kb["document_version"].as_i64(), kb["stored"].as_bool()),
        (Some("2026.12-starter"), Some(1), Some(false))
    );
    assert!(kb["counts"]["drugs"].as_i64().unwrap() >= 40);

    // --- the commission extends the knowledge base: a new version, used at once.
    let file = send(&app, Method::GET, "/api/health/rx/knowledge-base/file", Some(&chen), None, &[]).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["content-type"], "application/toml; charset=utf-8");
    let starter = health::rx::STARTER;
    let extended = format!(
        "{starter}\n[[drug]]\nid = \"vitamin_c\"\nname = \"维生素C\"\nnames = [\"维生素C\"]\nmax_daily_mg = 1000\nsource = \"维生素C片说明书\"\n"
    );
    let put = |t: &str, body: Value| {
        let (app, t) = (&app, t.to_string());
        async move { app.call(Method::PUT, "/api/health/rx/knowledge-base", Some(&t), Some(body)).await }
    };
    assert_eq!(put(&wu, json!({ "base_version": 1, "toml": extended })).await.0, StatusCode::FORBIDDEN);
    let (s, b) =
        put(&chen, json!({ "base_version": 1, "toml": format!("{starter}\n[[drug]]\nid = \"x\"\nname = \"x药\"\n") }))
            .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("toml")),
        "a drug without its source: {b}"
    );
    let (s, b) = put(&chen, json!({ "base_version": 1, "toml": extended, "note": "加入维生素C最大日剂量" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["document_version"].as_i64(), b["stored"].as_bool()), (Some(2), Some(true)));
    assert_eq!(put(&chen, json!({ "base_version": 1, "toml": extended })).await.0, StatusCode::CONFLICT, "stale");
    let r = send(
        &app,
        Method::POST,
        "/fhir/MedicationRequest",
        Some(&wu),
        Some(order(&pid, json!({ "text": "维生素C片" }), 1000.0, 3)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the new rule applies: {}", r.body);
    assert!(r.body["issue"][0]["diagnostics"].as_str().unwrap().contains("max-dose:vitamin_c"));
    let (_, vs) = app.get("/api/health/rx/knowledge-base/versions", &wu).await;
    assert_eq!(vs["total"], 1);
    assert_eq!(vs["items"][0]["note"], "加入维生素C最大日剂量");
}

#[tokio::test]
async fn prescription_checks_on_sqlite() {
    prescription_checks(Backend::Sqlite).await;
}

#[tokio::test]
async fn prescription_checks_on_postgres() {
    prescription_checks(Backend::Postgres).await;
}
