//! Remote consultation and reading through HTTP: the community centre asks the People's
//! Hospital to read an ECG; the hospital reads the shared record while the request is open,
//! accepts and reports; the report comes back as a DiagnosticReport in the patient's record;
//! declining needs a reason and ends the hospital's reading; the refusals on every side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use health::HealthModule;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;

async fn spawn(backend: Backend) -> Option<TestApp> {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    TestApp::spawn_with(backend, modules, |_| {}).await
}

fn id_of(v: (StatusCode, Value), what: &str) -> String {
    assert_eq!(v.0, StatusCode::CREATED, "{what}: {}", v.1);
    v.1["id"].as_str().unwrap().to_string()
}

fn entries(b: &Value) -> usize {
    b["entry"].as_array().map_or(0, Vec::len)
}

async fn remote(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let wu = app.login("dr.wu").await;
    let yang = app.login("dr.yang").await;
    let chen = app.login("wjw.chen").await;
    let huang = app.login("resident.huang").await;
    let yangcun = app.org_id("yangcun_chc").await;
    let people = app.org_id("people_hospital").await;
    let transport = app.org_id("transport_bureau").await;

    let patient = id_of(
        app.post("/fhir/Patient", &wu, json!({"resourceType": "Patient", "name": [{"text": "孙立平"}]})).await,
        "patient",
    );
    let encounter = json!({ "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": format!("Patient/{patient}") },
        "serviceProvider": { "reference": format!("Organization/{yangcun}") },
        "period": { "start": "2026-11-28T09:00:00+08:00", "end": "2026-11-28T09:20:00+08:00" } });
    id_of(app.post("/fhir/Encounter", &wu, encounter).await, "encounter");
    let ecg = id_of(
        app.post(
            "/fhir/Observation",
            &wu,
            json!({ "resourceType": "Observation", "status": "final",
                "code": { "coding": [{ "system": "http://loinc.org", "code": "11524-6", "display": "EKG study" }], "text": "十二导联心电图" },
                "subject": { "reference": format!("Patient/{patient}") },
                "effectiveDateTime": "2026-11-28T09:10:00+08:00", "valueString": "心律不齐，待上级医院判读" }),
        )
        .await,
        "ecg",
    );
    // A patient of the hospital's only.
    let theirs = id_of(
        app.post("/fhir/Patient", &yang, json!({"resourceType": "Patient", "name": [{"text": "周敏"}]})).await,
        "p2",
    );
    let reads = |token: String| {
        let (app, patient) = (&app, patient.clone());
        async move { app.get(&format!("/fhir/Observation?patient={patient}"), &token).await }
    };
    assert_eq!(reads(yang.clone()).await.0, StatusCode::FORBIDDEN, "not the hospital's patient yet");

    // --- refusals on asking.
    let ask = |kind: &str, to: &str, p: &str, attachments: Value| {
        json!({ "kind": kind, "patient_id": p, "to_org_id": to, "department": "心电图室", "urgent": true,
            "question": "阵发心悸 2 天，请判读心电图", "attachments": attachments })
    };
    let post = |t: &str, v: Value| {
        let (app, t) = (&app, t.to_string());
        async move { app.post("/api/health/remote", &t, v).await }
    };
    let att = json!([format!("Observation/{ecg}")]);
    assert_eq!(post(&huang, ask("ecg", &people, &patient, att.clone())).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&wu, ask("ecg", &yangcun, &patient, att.clone())).await.1["field"], "to_org_id");
    assert_eq!(post(&wu, ask("ecg", &transport, &patient, att.clone())).await.1["field"], "to_org_id");
    assert_eq!(post(&wu, ask("ecg", &people, &patient, json!([]))).await.1["field"], "attachments");
    let (s, b) = post(&wu, ask("ecg", &people, &patient, json!([format!("Patient/{patient}")]))).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("attachments[0]")), "{b}");
    assert_eq!(
        post(&wu, ask("ecg", &people, &theirs, json!([]))).await.0,
        StatusCode::FORBIDDEN,
        "not in care comes first"
    );
    assert_eq!(
        post(&wu, ask("consultation", &people, &theirs, json!([]))).await.0,
        StatusCode::FORBIDDEN,
        "not in care"
    );
    assert_eq!(post(&wu, ask("scan", &people, &patient, att.clone())).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let mut q = ask("consultation", &people, &patient, json!([]));
    q["question"] = json!("");
    assert_eq!(post(&wu, q).await.1["field"], "question");

    // --- the ECG reading.
    let (s, r) = post(&wu, ask("ecg", &people, &patient, att.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!((r["state"].as_str(), r["overdue"].as_bool()), (Some("requested"), Some(false)));
    let rid = r["id"].as_str().unwrap().to_string();
    let requested = kernel::store::rfc3339_to_ms(r["requested"].as_str().unwrap()).unwrap();
    let answer_by = kernel::store::rfc3339_to_ms(r["answer_by"].as_str().unwrap()).unwrap();
    assert_eq!(answer_by - requested, 30 * 60_000, "urgent: an answer within 30 minutes");
    let (_, inbox) = app.get("/api/health/remote?box=incoming", &yang).await;
    assert_eq!(inbox["total"], 1);
    assert_eq!(inbox["items"][0]["question"], "阵发心悸 2 天，请判读心电图");
    assert_eq!(app.get("/api/health/remote?box=incoming", &wu).await.1["total"], 0);
    assert_eq!(app.get("/api/health/remote?box=sideways", &wu).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/health/remote", &chen).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/health/remote/{rid}"), &chen).await.0, StatusCode::NOT_FOUND);
    // While it is open, the hospital reads the shared record.
    let (s, b) = reads(yang.clone()).await;
    assert_eq!((s, entries(&b)), (StatusCode::OK, 1), "{b}");

    let steps = format!("/api/health/remote/{rid}/steps");
    assert_eq!(
        app.post(&steps, &wu, json!({ "action": "accept" })).await.0,
        StatusCode::CONFLICT,
        "the reader accepts"
    );
    assert_eq!(app.post(&steps, &huang, json!({ "action": "accept" })).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&steps, &yang, json!({ "action": "report" })).await.1["field"], "report");
    let (s, b) = app.post(&steps, &yang, json!({ "action": "accept", "version": 1 })).await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("accepted")), "{b}");
    let (s, b) = app
        .post(&steps, &yang, json!({ "action": "report", "report": { "conclusion": "心房颤动", "codes": ["X"] } }))
        .await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("report.codes[0]")), "{b}");
    let (s, b) = app
        .post(&steps, &yang, json!({ "action": "report", "version": 2,
            "report": { "conclusion": "心房颤动，心室率约 110 次/分。建议抗凝评估 (CHA2DS2-VASc)。", "codes": ["I48.9"] } }))
        .await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("reported")), "{b}");
    let report = b["report"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(&steps, &yang, json!({ "action": "report", "report": { "conclusion": "x" } })).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(app.post(&steps, &wu, json!({ "action": "cancel" })).await.0, StatusCode::CONFLICT);

    // The report is in the record, the hospital's, and the centre reads it.
    let (s, dr) = app.get(&format!("/fhir/{report}"), &wu).await;
    assert_eq!(s, StatusCode::OK, "{dr}");
    assert_eq!(dr["code"]["coding"][0]["code"], "11524-6");
    assert_eq!(dr["conclusionCode"][0]["coding"][0]["code"], "I48.9");
    assert_eq!(dr["basedOn"][0]["reference"], format!("ServiceRequest/{rid}"));
    assert_eq!(dr["result"][0]["reference"], format!("Observation/{ecg}"));
    assert_eq!(dr["performer"][0]["reference"], format!("Organization/{people}"));
    let (_, b) = app.get(&format!("/fhir/DiagnosticReport?patient={patient}"), &wu).await;
    assert_eq!(entries(&b), 1);
    // Reported: the hospital keeps its own report and reads no more of the record.
    let (s, b) = reads(yang.clone()).await;
    assert!(s == StatusCode::FORBIDDEN || entries(&b) == 0, "{s} {b}");

    // --- a consultation declined (with a reason), one withdrawn.
    let c2 = post(&wu, ask("consultation", &people, &patient, json!([]))).await.1["id"].as_str().unwrap().to_string();
    let steps2 = format!("/api/health/remote/{c2}/steps");
    assert_eq!(app.post(&steps2, &yang, json!({ "action": "reject" })).await.1["field"], "reason");
    let (s, b) = app.post(&steps2, &yang, json!({ "action": "reject", "reason": "本院心内科专家本周外出" })).await;
    assert_eq!(
        (s, b["state"].as_str(), b["decline_reason"].as_str()),
        (StatusCode::OK, Some("rejected"), Some("本院心内科专家本周外出"))
    );
    let (s, b) = reads(yang.clone()).await;
    assert!(s == StatusCode::FORBIDDEN || entries(&b) == 0, "declined: no reading: {s} {b}");
    let c3 = post(&wu, ask("consultation", &people, &patient, json!([]))).await.1["id"].as_str().unwrap().to_string();
    let (s, b) = app.post(&format!("/api/health/remote/{c3}/steps"), &wu, json!({ "action": "cancel" })).await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("cancelled")));
    let (_, out) = app.get("/api/health/remote?box=outgoing&limit=10", &wu).await;
    assert_eq!(out["total"], 3);
    assert_eq!(app.get("/api/health/remote?box=outgoing&overdue=true", &wu).await.1["total"], 0);

    // Every step is in the patient's access log.
    let st = &app.platform.state;
    let n = sqlx::query(
        &st.store.sql("SELECT COUNT(*) AS n FROM audit_log WHERE target_id = $1 AND action LIKE 'health.remote.%'"),
    )
    .bind(patient.clone())
    .fetch_one(st.store.reader())
    .await
    .unwrap();
    assert!(kernel::store::col::<i64>(&n, "n").unwrap() >= 8);
}

#[tokio::test]
async fn remote_reading_on_sqlite() {
    remote(Backend::Sqlite).await;
}

#[tokio::test]
async fn remote_reading_on_postgres() {
    remote(Backend::Postgres).await;
}

/// Result mutual recognition: before ordering, the centre sees the hospital's recent
/// equivalent results inside each item's window, not older ones, not its own.
async fn recognition(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let wu = app.login("dr.wu").await;
    let yang = app.login("dr.yang").await;
    let chen = app.login("wjw.chen").await;
    let huang = app.login("resident.huang").await;
    let yangcun = app.org_id("yangcun_chc").await;
    let people = app.org_id("people_hospital").await;
    let patient = id_of(
        app.post("/fhir/Patient", &yang, json!({"resourceType": "Patient", "name": [{"text": "钱芳"}]})).await,
        "patient",
    );
    let day = |n: i64| kernel::store::ms_to_rfc3339(kernel::store::now_ms() - n * 86_400_000);
    let encounter = |org: &str, at: String| {
        json!({ "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": format!("Patient/{patient}") },
        "serviceProvider": { "reference": format!("Organization/{org}") }, "period": { "start": at, "end": at } })
    };
    id_of(app.post("/fhir/Encounter", &yang, encounter(&people, day(30))).await, "hospital visit");
    let obs = |code: &str, at: String, value: Value| {
        let mut o = json!({ "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": code }] },
            "subject": { "reference": format!("Patient/{patient}") }, "effectiveDateTime": at });
        for (k, v) in value.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    id_of(
        app.post(
            "/fhir/Observation",
            &yang,
            obs("4548-4", day(30), json!({ "valueQuantity": { "value": 7.2, "unit": "%" } })),
        )
        .await,
        "hba1c",
    );
    id_of(
        app.post(
            "/fhir/Observation",
            &yang,
            obs("1558-6", day(10), json!({ "valueQuantity": { "value": 126, "unit": "mg/dL" } })),
        )
        .await,
        "glucose",
    );
    id_of(
        app.post("/fhir/Observation", &yang, obs("11524-6", day(1), json!({ "valueString": "窦性心律" }))).await,
        "ecg",
    );
    let q = |code: &str| format!("/api/health/recognition?patient_id={patient}&code={code}");
    // Not yet in care at the centre.
    assert_eq!(app.get(&q("4548-4"), &wu).await.0, StatusCode::FORBIDDEN);
    id_of(app.post("/fhir/Encounter", &wu, encounter(&yangcun, day(0))).await, "centre visit");
    id_of(
        app.post("/fhir/Observation", &wu, obs("11524-6", day(0), json!({ "valueString": "本院心电图" }))).await,
        "own ecg",
    );
    let (s, b) = app.get(&q("4548-4"), &wu).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["item"]["id"], "hba1c");
    assert_eq!(b["results"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["results"][0]["value"], "7.2 %");
    assert_eq!(b["results"][0]["org_id"], people.as_str());
    let (_, b) = app.get(&q("14771-0"), &wu).await;
    assert_eq!(
        (b["item"]["id"].as_str(), b["results"].as_array().unwrap().len()),
        (Some("glucose-fasting"), 0),
        "10 days is outside 7: {b}"
    );
    let (_, b) = app.get(&q("ecg"), &wu).await;
    let r = b["results"].as_array().unwrap();
    assert_eq!((r.len(), r[0]["value"].as_str()), (1, Some("窦性心律")), "the hospital's, not the centre's own: {b}");
    let (_, b) = app.get(&q("9999-9"), &wu).await;
    assert!(b["item"].is_null() && b["results"].as_array().unwrap().is_empty(), "{b}");
    assert_eq!(app.get(&q("4548-4"), &chen).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&q("4548-4"), &huang).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/health/recognition?patient_id=nobody&code=ecg", &wu).await.0, StatusCode::NOT_FOUND);
    let (s, items) = app.get("/api/health/recognition/items", &wu).await;
    assert_eq!((s, items["version"].as_str()), (StatusCode::OK, Some("2026.12-starter")));
}

#[tokio::test]
async fn recognised_results_on_sqlite() {
    recognition(Backend::Sqlite).await;
}

#[tokio::test]
async fn recognised_results_on_postgres() {
    recognition(Backend::Postgres).await;
}
