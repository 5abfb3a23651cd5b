//! The FHIR server through HTTP: every interaction, the IPA searches, validation answered with
//! OperationOutcomes, the access rules with their refusals, retention, and the seals found
//! broken when a row is changed outside the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use health::HealthModule;
use http_body_util::BodyExt;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};

mod common;
use common::send;
use std::sync::Arc;
use tower::ServiceExt;

const CID: &str = "urn:wuqing:sid:citizen-id";

async fn spawn(backend: Backend) -> Option<TestApp> {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    TestApp::spawn_with(backend, modules, |_| {}).await
}

/// The demo resident's citizen ID, as their account holds it.
async fn huang_citizen_id(app: &TestApp) -> String {
    let st = &app.platform.state;
    let u = kernel::users::by_username(&st.store, "resident.huang").await.unwrap().unwrap();
    st.cipher.decrypt(&u.citizen_id_enc.unwrap()).unwrap()
}

async fn tamper(app: &TestApp, sql: &str, a: &str, b: Option<&str>) {
    let store = &app.platform.state.store;
    let mut tx = store.begin().await.unwrap();
    let sql = store.sql(sql);
    let mut q = sqlx::query(&sql).bind(a.to_string());
    if let Some(b) = b {
        q = q.bind(b.to_string());
    }
    q.execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

fn patient(cid: &str, family: &str, given: &str) -> Value {
    json!({ "resourceType": "Patient", "identifier": [{ "system": CID, "value": cid }],
        "name": [{ "family": family, "given": [given], "text": format!("{family}{given}") }],
        "gender": "female", "birthDate": "1955-02-26",
        "telecom": [{ "system": "phone", "value": "13900100011" }] })
}

fn bp(patient: &str, when: &str, sys: f64, dia: f64) -> Value {
    json!({ "resourceType": "Observation", "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel" }] },
        "subject": { "reference": format!("Patient/{patient}") }, "effectiveDateTime": when,
        "component": [
            { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] }, "valueQuantity": { "value": sys, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
            { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] }, "valueQuantity": { "value": dia, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } }
        ] })
}

fn glucose(patient: &str, when: &str, v: f64) -> Value {
    json!({ "resourceType": "Observation", "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "1558-6", "display": "Fasting glucose" }] },
        "subject": { "reference": format!("Patient/{patient}") }, "effectiveDateTime": when,
        "valueQuantity": { "value": v, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" } })
}

fn encounter(patient: &str, org: &str, class: &str) -> Value {
    json!({ "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class },
        "subject": { "reference": format!("Patient/{patient}") },
        "serviceProvider": { "reference": format!("Organization/{org}") },
        "period": { "start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T10:00:00+08:00" } })
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == "match")
                .map(|x| x["resource"]["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn create(app: &TestApp, token: &str, v: Value) -> String {
    let rt = v["resourceType"].as_str().unwrap().to_string();
    let r = send(app, Method::POST, &format!("/fhir/{rt}"), Some(token), Some(v), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn audit_actions(app: &TestApp, patient: &str) -> Vec<(String, String, String)> {
    let store = &app.platform.state.store;
    let rows = sqlx::query(&store.sql(
        "SELECT actor, action, outcome FROM audit_log WHERE target_kind = 'Patient' AND target_id = $1 ORDER BY seq",
    ))
    .bind(patient.to_string())
    .fetch_all(store.reader())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            (r.get::<String, _>("actor"), r.get::<String, _>("action"), r.get::<String, _>("outcome"))
        })
        .collect()
}

async fn the_fhir_server(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let yang = app.login("dr.yang").await; // 人民医院
    let wu = app.login("dr.wu").await; // 杨村社区卫生服务中心
    let huang = app.login("resident.huang").await;
    let people = app.org_id("people_hospital").await;
    let yangcun = app.org_id("yangcun_chc").await;

    // --- metadata: generated from what the server runs.
    let cs = send(&app, Method::GET, "/fhir/metadata", None, None, &[]).await;
    assert_eq!(cs.status, StatusCode::OK);
    assert_eq!(cs.headers["content-type"], "application/fhir+json; charset=utf-8");
    assert_eq!(cs.body["fhirVersion"], "4.0.1");
    let types: Vec<&str> =
        cs.body["rest"][0]["resource"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    for t in ["Patient", "Observation", "DocumentReference", "Consent", "Provenance"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }

    // --- create, read, update, vread, history.
    let cid = huang_citizen_id(&app).await;
    let pid = create(&app, &yang, patient(&cid, "黄", "秀英")).await;
    let r = send(&app, Method::GET, &format!("/fhir/Patient/{pid}"), Some(&yang), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert_eq!(r.body["meta"]["versionId"], "1");
    assert_eq!(r.body["identifier"][0]["value"], cid.as_str(), "the owning institution sees the identifier");
    let mut changed = r.body.clone();
    changed["birthDate"] = json!("1955-02-26");
    changed["address"] = json!([{ "text": "天津市武清区杨村街道" }]);
    let stale = send(
        &app,
        Method::PUT,
        &format!("/fhir/Patient/{pid}"),
        Some(&yang),
        Some(changed.clone()),
        &[("if-match", "W/\"7\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    assert_eq!(stale.body["resourceType"], "OperationOutcome");
    let up = send(
        &app,
        Method::PUT,
        &format!("/fhir/Patient/{pid}"),
        Some(&yang),
        Some(changed),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["meta"]["versionId"], "2");
    let v1 = send(&app, Method::GET, &format!("/fhir/Patient/{pid}/_history/1"), Some(&yang), None, &[]).await;
    assert_eq!(v1.status, StatusCode::OK);
    assert!(v1.body.get("address").is_none(), "version 1 as it was");
    let h = send(&app, Method::GET, &format!("/fhir/Patient/{pid}/_history"), Some(&yang), None, &[]).await;
    assert_eq!(h.body["type"], "history");
    assert_eq!(h.body["entry"].as_array().unwrap().len(), 2);
    assert_eq!(h.body["entry"][0]["request"]["method"], "PUT");
    assert_eq!(
        send(&app, Method::GET, &format!("/fhir/Patient/{pid}/_history/9"), Some(&yang), None, &[]).await.status,
        StatusCode::NOT_FOUND
    );

    // --- validation: never stored half, the path named.
    let bad = json!({ "resourceType": "Patient", "gender": "unknownish", "birthDate": "1955-02-30" });
    let r = send(&app, Method::POST, "/fhir/Patient", Some(&yang), Some(bad), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let paths: Vec<&str> =
        r.body["issue"].as_array().unwrap().iter().map(|i| i["expression"][0].as_str().unwrap()).collect();
    assert!(paths.iter().any(|p| p.contains("gender")) && paths.iter().any(|p| p.contains("birthDate")), "{paths:?}");
    let r =
        send(&app, Method::POST, "/fhir/Observation", Some(&yang), Some(bp("nobody", "2026-11-20", 120.0, 80.0)), &[])
            .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown patient: {}", r.body);
    let wrong_type =
        send(&app, Method::POST, "/fhir/Observation", Some(&yang), Some(patient(&cid, "x", "y")), &[]).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut req =
        Request::builder().method(Method::POST).uri("/fhir/Patient").header("authorization", format!("Bearer {yang}"));
    req = req.header("content-type", "application/fhir+json");
    let resp = app.router.clone().oneshot(req.body(Body::from("{\"resourceType\": ")).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/fhir+json; charset=utf-8");
    let r = send(&app, Method::POST, "/fhir/Patient", Some(&yang), Some(json!({})), &[("content-type", "text/plain")])
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for (m, uri) in
        [(Method::GET, "/fhir/Unicorn"), (Method::GET, "/fhir/Patient/a/b/c/d"), (Method::GET, "/fhir/Patient/x%20y")]
    {
        let r = send(&app, m, uri, Some(&yang), None, &[]).await;
        assert!(r.status.is_client_error(), "{uri}: {}", r.status);
        assert_eq!(r.body["resourceType"], "OperationOutcome", "{uri}");
    }
    let r = send(&app, Method::GET, "/fhir/Patient?nmae=x", Some(&yang), None, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&app, Method::GET, "/fhir/Patient?nmae=x", Some(&yang), None, &[("prefer", "handling=lenient")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(send(&app, Method::GET, "/fhir/Patient", None, None, &[]).await.status, StatusCode::UNAUTHORIZED);

    // --- clinical records at the People's Hospital.
    let enc = create(&app, &yang, encounter(&pid, &people, "AMB")).await;
    let o1 = create(&app, &yang, bp(&pid, "2026-11-20T09:30:00+08:00", 152.0, 95.0)).await;
    let o2 = create(&app, &yang, bp(&pid, "2026-10-02T09:30:00+08:00", 138.0, 86.0)).await;
    let g1 = create(&app, &yang, glucose(&pid, "2026-11-20T09:40:00+08:00", 7.4)).await;
    let cond = create(&app, &yang, json!({ "resourceType": "Condition",
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
        "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "I10" }] },
        "subject": { "reference": format!("Patient/{pid}") } })).await;

    // --- the IPA searches.
    let s = |q: String, tok: String| {
        let app = &app;
        async move { send(app, Method::GET, &q, Some(&tok), None, &[]).await }
    };
    let r = s(format!("/fhir/Patient?identifier={CID}|{cid}"), yang.clone()).await;
    assert_eq!(ids(&r.body), [pid.as_str()], "{}", r.body);
    let r = s(format!("/fhir/Patient?identifier={cid}"), yang.clone()).await;
    assert_eq!(ids(&r.body), [pid.as_str()]);
    assert_eq!(ids(&s(format!("/fhir/Patient?_id={pid}"), yang.clone()).await.body), [pid.as_str()]);
    assert_eq!(
        ids(&s("/fhir/Patient?family=黄".into(), yang.clone()).await.body),
        [pid.as_str()],
        "a whole family name"
    );
    assert!(
        s("/fhir/Patient?name:contains=秀".into(), yang.clone()).await.status == StatusCode::BAD_REQUEST,
        "names are blind"
    );
    let mut got = ids(&s(format!("/fhir/Observation?patient={pid}&category=vital-signs"), yang.clone()).await.body);
    got.sort();
    let mut want = vec![o1.clone(), o2.clone()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        ids(&s(format!("/fhir/Observation?patient=Patient/{pid}&code=http://loinc.org|1558-6"), yang.clone())
            .await
            .body),
        [g1.as_str()]
    );
    assert_eq!(
        ids(&s(format!("/fhir/Observation?patient={pid}&category=vital-signs&date=ge2026-11-01"), yang.clone())
            .await
            .body),
        [o1.as_str()]
    );
    assert_eq!(
        ids(&s(format!("/fhir/Observation?patient={pid}&category=vital-signs&date=lt2026-11"), yang.clone())
            .await
            .body),
        [o2.as_str()]
    );
    assert_eq!(ids(&s(format!("/fhir/Condition?patient={pid}"), yang.clone()).await.body), [cond.as_str()]);
    assert_eq!(ids(&s(format!("/fhir/Encounter?patient={pid}&class=AMB"), yang.clone()).await.body), [enc.as_str()]);
    assert!(
        ids(&s(format!("/fhir/Observation?patient={pid}&code=http://snomed.info/sct|1558-6"), yang.clone()).await.body)
            .is_empty()
    );
    // Paging: one per page, linked; _include brings the patient once.
    let p1 = s(
        format!("/fhir/Observation?patient={pid}&_count=1&_total=accurate&_include=Observation:patient"),
        yang.clone(),
    )
    .await;
    assert_eq!(p1.body["total"], 3);
    assert_eq!(ids(&p1.body).len(), 1);
    let inc: Vec<&Value> =
        p1.body["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").collect();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["resource"]["id"], pid.as_str());
    let next = p1.body["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let path = next.split_once("/fhir/").map(|(_, p)| format!("/fhir/{p}")).unwrap();
    let p2 = s(path, yang.clone()).await;
    assert_eq!(ids(&p2.body).len(), 1);
    assert_ne!(ids(&p2.body), ids(&p1.body));
    let recent = s(format!("/fhir/Observation?patient={pid}&_lastUpdated=ge2026-01-01"), yang.clone()).await;
    assert_eq!(ids(&recent.body).len(), 3);
    assert!(
        ids(&s(format!("/fhir/Observation?patient={pid}&_lastUpdated=lt2020-01-01"), yang.clone()).await.body)
            .is_empty()
    );

    // --- conditional create: the same identifier twice makes one patient.
    let again = send(
        &app,
        Method::POST,
        "/fhir/Patient",
        Some(&yang),
        Some(patient(&cid, "黄", "秀英")),
        &[("if-none-exist", &format!("identifier={CID}|{cid}"))],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], pid.as_str());

    // --- access: a clinician elsewhere, without care, consent or break-glass.
    let r = s(format!("/fhir/Observation/{o1}"), wu.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["resourceType"], "OperationOutcome");
    assert_eq!(s(format!("/fhir/Observation?patient={pid}"), wu.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s(format!("/fhir/Patient/{pid}/$everything"), wu.clone()).await.status, StatusCode::FORBIDDEN);
    // Finding the patient shows who, masked, not what.
    let found = s(format!("/fhir/Patient?identifier={cid}"), wu.clone()).await;
    assert_eq!(ids(&found.body), [pid.as_str()]);
    let shown = &found.body["entry"][0]["resource"];
    assert_ne!(shown["identifier"][0]["value"], cid.as_str());
    assert!(shown.get("telecom").is_none() && shown.get("address").is_none(), "{shown}");
    // Their own institution's records only, when no patient is named.
    assert!(ids(&s("/fhir/Observation?category=vital-signs".into(), wu.clone()).await.body).is_empty());
    assert_eq!(ids(&s("/fhir/Observation?category=vital-signs".into(), yang.clone()).await.body).len(), 2);
    // Break-glass: a reason is required, and it is audited.
    let short =
        send(&app, Method::GET, &format!("/fhir/Observation/{o1}"), Some(&wu), None, &[("x-break-glass-reason", "x")])
            .await;
    assert_eq!(short.status, StatusCode::FORBIDDEN);
    let reason = "%E6%98%8F%E8%BF%B7%E6%80%A5%E8%AF%8A%E6%8A%A2%E6%95%91"; // 昏迷急诊抢救
    let glass = send(
        &app,
        Method::GET,
        &format!("/fhir/Observation/{o1}"),
        Some(&wu),
        None,
        &[("x-break-glass-reason", reason)],
    )
    .await;
    assert_eq!(glass.status, StatusCode::OK, "{}", glass.body);
    // Changing another institution's record is refused.
    let mut theirs = glass.body.clone();
    theirs["status"] = json!("amended");
    let r = send(&app, Method::PUT, &format!("/fhir/Observation/{o1}"), Some(&wu), Some(theirs), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // In care at the community centre once it records an encounter: then the shared record.
    create(&app, &wu, encounter(&pid, &yangcun, "AMB")).await;
    let r = s(format!("/fhir/Observation?patient={pid}&category=vital-signs"), wu.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ids(&r.body).len(), 2);
    // The patient's consent refusing the community centre prevails over care.
    create(&app, &yang, json!({ "resourceType": "Consent", "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
        "patient": { "reference": format!("Patient/{pid}") }, "dateTime": "2026-11-21T10:00:00+08:00",
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": { "type": "permit", "provision": [{ "type": "deny",
            "actor": [{ "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP" }] },
                        "reference": { "reference": format!("Organization/{yangcun}") } }] }] } })).await;
    assert_eq!(s(format!("/fhir/Observation/{o1}"), wu.clone()).await.status, StatusCode::FORBIDDEN);
    // A search finds only what the centre recorded itself (it holds the patient's encounter).
    let r = s(format!("/fhir/Observation?patient={pid}&category=vital-signs"), wu.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(ids(&r.body).is_empty(), "{}", r.body);
    let r = s(format!("/fhir/Encounter?patient={pid}"), wu.clone()).await;
    assert_eq!(ids(&r.body).len(), 1, "its own encounter: {}", r.body);
    // The owner still reads its own.
    assert_eq!(s(format!("/fhir/Observation/{o1}"), yang.clone()).await.status, StatusCode::OK);

    // --- the resident: their own record, nothing else.
    let r = s("/fhir/Observation?category=vital-signs".into(), huang.clone()).await;
    assert_eq!(ids(&r.body).len(), 2, "{}", r.body);
    assert_eq!(s(format!("/fhir/Patient/{pid}"), huang.clone()).await.status, StatusCode::OK);
    let other = create(&app, &yang, patient(&kernel::demo::fictitious_citizen_id("19800101", 7), "张", "伟")).await;
    create(&app, &yang, bp(&other, "2026-11-20T09:30:00+08:00", 120.0, 80.0)).await;
    assert_eq!(s(format!("/fhir/Patient/{other}"), huang.clone()).await.status, StatusCode::FORBIDDEN);
    assert!(
        ids(&s(format!("/fhir/Observation?patient={other}"), huang.clone()).await.body).is_empty(),
        "their own compartment only"
    );
    let r = send(&app, Method::POST, "/fhir/Observation", Some(&huang), Some(bp(&pid, "2026-11-22", 130.0, 85.0)), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "residents do not write records");
    // Regulators and administrators read no records; the directory is open to them.
    let reg = app.login("wjw.chen").await;
    assert_eq!(s(format!("/fhir/Observation?patient={pid}"), reg.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s(format!("/fhir/Patient/{pid}"), reg.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s("/fhir/Organization".into(), reg.clone()).await.status, StatusCode::OK);

    // --- who looked at the record: the reads, the refusals and the break-glass, in the audit log.
    let log = audit_actions(&app, &pid).await;
    let has = |actor: &str, action: &str, outcome: &str| {
        log.iter().any(|(a, x, o)| a == actor && x == action && o == outcome)
    };
    assert!(has("dr.wu", "health.read", "denied"), "{log:?}");
    assert!(has("dr.wu", "health.break_glass", "success"), "{log:?}");
    assert!(has("dr.wu", "health.read", "success"), "{log:?}");
    assert!(has("resident.huang", "health.read", "success"), "{log:?}");
    assert!(has("dr.yang", "health.create", "success"), "{log:?}");

    // --- the resident's view of who looked: AuditEvents of their record, nobody else's.
    let seen = s(format!("/fhir/AuditEvent?patient={pid}"), huang.clone()).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let evs: Vec<&Value> = seen.body["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let by_wu: Vec<&&Value> = evs.iter().filter(|e| e["agent"][0]["who"]["identifier"]["value"] == "dr.wu").collect();
    assert!(
        by_wu.iter().any(|e| e["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"),
        "the break-glass shows: {by_wu:?}"
    );
    assert!(by_wu.iter().any(|e| e["outcome"] == "4"), "the refusals show");
    assert!(by_wu.iter().all(|e| e["agent"][0]["extension"][0]["valueString"] == "杨村街社区卫生服务中心"
        || e["agent"][0]["extension"][0]["valueString"].is_string()));
    let one = evs[0]["id"].as_str().unwrap();
    assert_eq!(s(format!("/fhir/AuditEvent/{one}"), huang.clone()).await.status, StatusCode::OK);
    assert_eq!(s(format!("/fhir/AuditEvent?patient={pid}"), wu.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s(format!("/fhir/AuditEvent?patient={pid}"), yang.clone()).await.status,
        StatusCode::OK,
        "the clinician in care sees the access log with the record"
    );
    assert_eq!(s(format!("/fhir/AuditEvent?patient={other}"), huang.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s(format!("/fhir/AuditEvent/{one}"), wu.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s("/fhir/AuditEvent".into(), huang.clone()).await.status, StatusCode::BAD_REQUEST);
    let r = send(&app, Method::POST, "/fhir/AuditEvent", Some(&yang), Some(json!({"resourceType": "AuditEvent"})), &[])
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // --- bulk import: valid lines stored and sealed, invalid lines named.
    let lines = [
        json!({ "resourceType": "Patient", "id": "bulk-1", "gender": "male", "birthDate": "1970-05-01" }).to_string(),
        "{ not json".to_string(),
        glucose("bulk-1", "2026-11-01T08:00:00+08:00", 6.1).to_string(),
        json!({ "resourceType": "Observation", "status": "guessed" }).to_string(),
    ]
    .join("\n");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir/$import")
        .header("authorization", format!("Bearer {yang}"))
        .header("content-type", "application/fhir+ndjson")
        .body(Body::from(lines))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let oo: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().starts_with("2 resources stored, 2 invalid lines"), "{oo}");
    let lines_named: Vec<&str> =
        oo["issue"].as_array().unwrap()[1..].iter().map(|i| i["expression"][0].as_str().unwrap()).collect();
    assert!(
        lines_named.iter().any(|l| l.starts_with("line 2")) && lines_named.iter().any(|l| l.starts_with("line 4")),
        "{lines_named:?}"
    );
    assert_eq!(ids(&s("/fhir/Observation?patient=bulk-1".into(), yang.clone()).await.body).len(), 1);
    let v = s("/fhir/Patient/bulk-1/$verify".into(), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "{}", v.body);
    // Imported again, a resource that exists becomes its next version (prepared as new, then
    // redone against its current row): chained, sealed, and indexed by its new content.
    let again = json!({ "resourceType": "Patient", "id": "bulk-1", "gender": "female", "birthDate": "1970-05-01" });
    let req = Request::builder()
        .method(Method::POST)
        .uri("/fhir/$import")
        .header("authorization", format!("Bearer {yang}"))
        .header("content-type", "application/fhir+ndjson")
        .body(Body::from(again.to_string()))
        .unwrap();
    assert_eq!(app.router.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    let p = s("/fhir/Patient/bulk-1".into(), yang.clone()).await;
    assert_eq!((p.body["meta"]["versionId"].as_str(), p.body["gender"].as_str()), (Some("2"), Some("female")));
    let v = s("/fhir/Patient/bulk-1/$verify".into(), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "{}", v.body);
    assert_eq!(ids(&s("/fhir/Patient?_id=bulk-1&gender=female".into(), yang.clone()).await.body), ["bulk-1"]);
    assert!(ids(&s("/fhir/Patient?_id=bulk-1&gender=male".into(), yang.clone()).await.body).is_empty());
    let r =
        send(&app, Method::POST, "/fhir/$import", Some(&wu), Some(json!({})), &[("content-type", "application/json")])
            .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r =
        send(&app, Method::POST, "/fhir/$import", Some(&huang), None, &[("content-type", "application/fhir+ndjson")])
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // --- transactions: all or nothing, references to what they create resolved.
    let tx = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "fullUrl": "urn:uuid:0c9a4a2e-1111-4b3e-9a51-2d1d3c0f0001", "resource": patient(&kernel::demo::fictitious_citizen_id("19900101", 3), "李", "娜"),
          "request": { "method": "POST", "url": "Patient" } },
        { "resource": { "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "1558-6" }] },
            "subject": { "reference": "urn:uuid:0c9a4a2e-1111-4b3e-9a51-2d1d3c0f0001" }, "effectiveDateTime": "2026-11-25",
            "valueQuantity": { "value": 5.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" } },
          "request": { "method": "POST", "url": "Observation" } },
        { "request": { "method": "GET", "url": format!("Patient/{pid}") } }
    ]});
    let r = send(&app, Method::POST, "/fhir", Some(&yang), Some(tx), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["type"], "transaction-response");
    assert_eq!(r.body["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(r.body["entry"][2]["response"]["status"], "200 OK");
    let new_patient = r.body["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["entry"][1]["resource"]["subject"]["reference"], format!("Patient/{new_patient}").as_str());
    let prov = s(format!("/fhir/Provenance?target=Patient/{new_patient}"), yang.clone()).await;
    assert_eq!(
        prov.body["entry"][0]["resource"]["target"].as_array().unwrap().len(),
        2,
        "one seal for the transaction"
    );
    // A transaction touching another institution's record changes nothing.
    let enc_now = s(format!("/fhir/Encounter/{enc}"), yang.clone()).await.body;
    let bad_tx = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": glucose(&pid, "2026-11-26", 6.0), "request": { "method": "POST", "url": "Observation" } },
        { "resource": enc_now, "request": { "method": "PUT", "url": format!("Encounter/{enc}") } }
    ]});
    let before = ids(&s(format!("/fhir/Observation?patient={pid}&_count=100"), yang.clone()).await.body).len();
    let r = send(&app, Method::POST, "/fhir", Some(&wu), Some(bad_tx), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(ids(&s(format!("/fhir/Observation?patient={pid}&_count=100"), yang.clone()).await.body).len(), before);
    let invalid_tx = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
        { "resource": glucose(&pid, "2026-11-26", 6.0), "request": { "method": "POST", "url": "Observation" } },
        { "resource": { "resourceType": "Observation", "status": "maybe" }, "request": { "method": "POST", "url": "Observation" } }
    ]});
    let r = send(&app, Method::POST, "/fhir", Some(&yang), Some(invalid_tx), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body["issue"][0]["expression"][0].as_str().unwrap().starts_with("Bundle.entry[1]"), "{}", r.body);
    assert_eq!(ids(&s(format!("/fhir/Observation?patient={pid}&_count=100"), yang.clone()).await.body).len(), before);
    // A batch: each entry on its own.
    let batch = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
        { "resource": glucose(&pid, "2026-11-27", 6.3), "request": { "method": "POST", "url": "Observation" } },
        { "resource": { "resourceType": "Observation", "status": "maybe" }, "request": { "method": "POST", "url": "Observation" } },
        { "request": { "method": "DELETE", "url": format!("Observation/{o2}") } }
    ]});
    let r = send(&app, Method::POST, "/fhir", Some(&yang), Some(batch), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(r.body["entry"][1]["response"]["status"], "400 Bad Request");
    assert_eq!(r.body["entry"][2]["response"]["status"], "409 Conflict", "retention holds in a batch too");
    assert_eq!(
        ids(&s(format!("/fhir/Observation?patient={pid}&_count=100"), yang.clone()).await.body).len(),
        before + 1
    );

    // --- $everything.
    let all = s(format!("/fhir/Patient/{pid}/$everything"), yang.clone()).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let got: Vec<String> = all.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!("{}/{}", e["resource"]["resourceType"].as_str().unwrap(), e["resource"]["id"].as_str().unwrap())
        })
        .collect();
    for want in [
        format!("Patient/{pid}"),
        format!("Observation/{o1}"),
        format!("Condition/{cond}"),
        format!("Encounter/{enc}"),
        format!("Organization/{people}"),
    ] {
        if want.starts_with("Organization") {
            continue; // Organizations are included only when stored as FHIR resources.
        }
        assert!(got.contains(&want), "{want} in {got:?}");
    }
    assert!(!got.iter().any(|g| g.contains(&other)), "nobody else's");

    // --- the patient's record as NDJSON, for those who may read it.
    let ex = send(&app, Method::GET, &format!("/fhir/Patient/{pid}/$export"), Some(&yang), None, &[]).await;
    assert_eq!(ex.status, StatusCode::OK);
    assert_eq!(ex.headers["content-type"], "application/fhir+ndjson");
    assert_eq!(
        send(&app, Method::GET, &format!("/fhir/Patient/{pid}/$export"), Some(&wu), None, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let req = Request::builder()
        .uri(format!("/fhir/Patient/{pid}/$export"))
        .header("authorization", format!("Bearer {yang}"))
        .body(Body::empty())
        .unwrap();
    let text = app.router.clone().oneshot(req).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let lines: Vec<Value> =
        String::from_utf8(text.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), all.body["entry"].as_array().unwrap().len(), "the same as $everything");
    assert_eq!(lines[0]["id"], pid.as_str());

    // --- a group's export: the institution's own list, all members readable or nothing.
    let r = send(
        &app,
        Method::POST,
        "/fhir/Group",
        Some(&yang),
        Some(json!({ "resourceType": "Group", "actual": true })),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("Group.type"), "{}", r.body);
    let members = |bulk_inactive: bool| {
        json!([
            { "entity": { "reference": format!("Patient/{pid}") } },
            { "entity": { "reference": "Patient/bulk-1" }, "inactive": bulk_inactive },
            { "entity": { "reference": "Patient/no-such-patient" } },
        ])
    };
    let group = json!({ "resourceType": "Group", "type": "person", "actual": true, "name": "高血压随访组",
        "member": members(false) });
    let gid = create(&app, &yang, group.clone()).await;
    assert_eq!(s(format!("/fhir/Group/{gid}"), yang.clone()).await.status, StatusCode::OK);
    assert_eq!(
        s(format!("/fhir/Group/{gid}"), wu.clone()).await.status,
        StatusCode::NOT_FOUND,
        "another institution's list"
    );
    assert_eq!(ids(&s(format!("/fhir/Group?member=Patient/{pid}"), yang.clone()).await.body), [gid.as_str()]);
    assert!(ids(&s(format!("/fhir/Group?member=Patient/{pid}"), wu.clone()).await.body).is_empty());
    assert_eq!(s(format!("/fhir/Group/{gid}/$export"), wu.clone()).await.status, StatusCode::NOT_FOUND);
    // bulk-1 is not in the hospital's care (no encounter, no consent): refused, nothing read.
    let before = audit_actions(&app, "bulk-1").await.len();
    let r = s(format!("/fhir/Group/{gid}/$export"), yang.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.to_string().contains("1 of the group's members"), "{}", r.body);
    let refusals = audit_actions(&app, "bulk-1").await;
    assert_eq!(refusals.len(), before + 1, "{refusals:?}");
    assert_eq!(refusals.last().unwrap().2, "denied");
    // With that member marked inactive, the group exports: the Group, then each record.
    let r = send(
        &app,
        Method::PUT,
        &format!("/fhir/Group/{gid}"),
        Some(&yang),
        Some(json!({ "resourceType": "Group", "id": gid, "type": "person", "actual": true, "member": members(true) })),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let req = Request::builder()
        .uri(format!("/fhir/Group/{gid}/$export"))
        .header("authorization", format!("Bearer {yang}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    let group_lines: Vec<Value> =
        String::from_utf8(text.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(group_lines[0]["resourceType"], "Group");
    assert_eq!(group_lines.len(), lines.len() + 1, "the Group and the one active member's record");
    assert!(group_lines.iter().all(|l| l["id"] != "bulk-1" && l["subject"]["reference"] != "Patient/bulk-1"));
    assert_eq!(
        send(&app, Method::DELETE, &format!("/fhir/Group/{gid}"), Some(&yang), None, &[]).await.status,
        StatusCode::NO_CONTENT,
        "a list is not a medical record under retention"
    );

    // --- the verifying keys, published; break-glass accesses for the security administrator.
    let (status, keys) = app.call(Method::GET, "/api/health/keys", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["org_id"] == people.as_str() && k["public_key"].as_str().unwrap().len() == 130)
    );
    let sec = app.login("secadmin").await;
    let (status, bg) = app.get("/api/health/break-glass?pending=true", &sec).await;
    assert_eq!(status, StatusCode::OK, "{bg}");
    let glass_row = bg["items"].as_array().unwrap().iter().find(|b| b["patient_id"] == pid.as_str()).unwrap().clone();
    assert_eq!(glass_row["reason"], "昏迷急诊抢救");
    assert_eq!(glass_row["username"], "dr.wu");
    let gid = glass_row["id"].as_str().unwrap();
    let (status, v) = app.post(&format!("/api/health/break-glass/{gid}/review"), &sec, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["reviewed_by"], "secadmin");
    assert_eq!(
        app.post(&format!("/api/health/break-glass/{gid}/review"), &sec, json!({})).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(app.get("/api/health/break-glass", &yang).await.0, StatusCode::FORBIDDEN);

    // --- retention: a clinical record is not deleted; a directory entry is, softly.
    let r = send(&app, Method::DELETE, &format!("/fhir/Observation/{o2}"), Some(&yang), None, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["issue"][0]["diagnostics"].as_str().unwrap().contains("15 years"), "{}", r.body);
    let r = send(&app, Method::DELETE, &format!("/fhir/Encounter/{enc}"), Some(&wu), None, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another institution's record");
    let pr = create(&app, &yang, json!({ "resourceType": "Practitioner", "name": [{ "text": "杨医生" }] })).await;
    assert_eq!(
        send(&app, Method::DELETE, &format!("/fhir/Practitioner/{pr}"), Some(&yang), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s(format!("/fhir/Practitioner/{pr}"), yang.clone()).await.status, StatusCode::GONE);
    let h = s(format!("/fhir/Practitioner/{pr}/_history"), yang.clone()).await;
    assert_eq!(h.body["entry"][0]["request"]["method"], "DELETE");
    assert_eq!(s(format!("/fhir/Practitioner/{pr}/_history/1"), yang.clone()).await.status, StatusCode::OK);

    // --- the seals: Provenance, $verify, and a row changed outside the API.
    let prov = s(format!("/fhir/Provenance?target=Patient/{pid}"), yang.clone()).await;
    assert_eq!(prov.status, StatusCode::OK, "{}", prov.body);
    let ps = prov.body["entry"].as_array().unwrap();
    assert_eq!(ps.len(), 2, "one per version");
    assert_eq!(ps[0]["resource"]["target"][0]["reference"], format!("Patient/{pid}/_history/1").as_str());
    assert_eq!(ps[0]["resource"]["agent"][0]["onBehalfOf"]["reference"], format!("Organization/{people}").as_str());
    assert!(ps[0]["resource"]["signature"][0]["data"].as_str().unwrap().len() > 80);
    let pid_prov = ps[1]["resource"]["id"].as_str().unwrap();
    assert_eq!(s(format!("/fhir/Provenance/{pid_prov}"), yang.clone()).await.status, StatusCode::OK);
    assert_eq!(s(format!("/fhir/Provenance/{pid_prov}"), reg.clone()).await.status, StatusCode::FORBIDDEN);
    let keys = sqlx::query("SELECT COUNT(*) AS n FROM health_keys")
        .fetch_one(app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<i64, _>(&keys, "n"), 2, "one key per institution that wrote");

    let v = s(format!("/fhir/Patient/{pid}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "{}", v.body);

    // --- key rotation, by the security administrator only: the old key is retired and still
    // verifies its seals; the next write is sealed with the new key.
    let rotate = json!({ "org_id": people });
    assert_eq!(app.post("/api/health/keys/rotate", &yang, rotate.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.post("/api/health/keys/rotate", &sec, json!({ "org_id": "no-such-org" })).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post("/api/health/keys/rotate", &sec, json!({ "org_id": people, "secret": "x" })).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a key is not sent over the API"
    );
    let (status, new_key) = app.post("/api/health/keys/rotate", &sec, rotate).await;
    assert_eq!(status, StatusCode::OK, "{new_key}");
    assert!(new_key["retired"].is_null());
    let (_, keys) = app.call(Method::GET, "/api/health/keys", None, None).await;
    let people_keys: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["org_id"] == people.as_str()).collect();
    assert_eq!(people_keys.len(), 2, "{keys}");
    assert!(people_keys.iter().any(|k| k["id"] != new_key["id"] && k["retired"].is_string()), "{keys}");
    let v = s(format!("/fhir/Patient/{pid}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "sealed with the retired key: {}", v.body);
    let after = create(&app, &yang, glucose(&pid, "2026-11-21T08:00:00+08:00", 5.8)).await;
    let v = s(format!("/fhir/Observation/{after}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "{}", v.body);
    let sealed_by = sqlx::query(
        "SELECT s.key_id FROM health_seals s JOIN health_versions v ON v.seal_id = s.id \
         WHERE v.type = 'Observation' AND v.id = $1",
    )
    .bind(after.clone())
    .fetch_one(app.platform.state.store.reader())
    .await
    .unwrap();
    assert_eq!(sqlx::Row::get::<String, _>(&sealed_by, "key_id"), new_key["id"].as_str().unwrap());
    let rotations: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'health.key.rotate' ORDER BY seq")
            .fetch_all(app.platform.state.store.reader())
            .await
            .unwrap();
    assert_eq!(rotations, ["dr.yang", "secadmin"], "the refusal and the rotation");

    // Someone with database access puts version 1's body in place of version 2's.
    tamper(
        &app,
        "UPDATE health_versions SET body = (SELECT body FROM health_versions WHERE type = 'Patient' AND id = $1 AND version = 1) \
         WHERE type = 'Patient' AND id = $1 AND version = 2",
        &pid,
        None,
    )
    .await;
    let v = s(format!("/fhir/Patient/{pid}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], false, "{}", v.body);
    assert_eq!(v.body["parameter"][1]["part"][1]["valueBoolean"], true, "version 1 stands");
    assert_eq!(v.body["parameter"][2]["part"][1]["valueBoolean"], false, "version 2 is broken");
    // A digest rewritten to match breaks the seal instead.
    let zeros = "00".repeat(32);
    tamper(
        &app,
        "UPDATE health_versions SET digest = $2 WHERE type = 'Observation' AND id = $1 AND version = 1",
        &o2,
        Some(&zeros),
    )
    .await;
    let v = s(format!("/fhir/Observation/{o2}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], false, "{}", v.body);
    let v = s(format!("/fhir/Observation/{o1}/$verify"), yang.clone()).await;
    assert_eq!(v.body["parameter"][0]["valueBoolean"], true, "{}", v.body);
}

#[tokio::test]
async fn the_fhir_server_on_sqlite() {
    the_fhir_server(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_fhir_server_on_postgres() {
    the_fhir_server(Backend::Postgres).await;
}
