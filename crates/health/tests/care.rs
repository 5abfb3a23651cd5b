//! Tiered care through HTTP: two-way referrals (every step, every refusal, deadlines and the
//! two-week follow-up found from the primary-care encounter) and family-doctor teams and
//! contracts (signing, one team at a time, renewal, termination, coverage), and how both put a
//! patient in care at an institution, so that its clinicians read the shared record.
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

/// A request as the given account; the future owns the URI and token, so closures may build them.
fn send<'a>(
    app: &'a TestApp,
    method: Method,
    uri: impl Into<String>,
    token: impl Into<String>,
    body: Option<Value>,
) -> impl std::future::Future<Output = (StatusCode, Value)> + 'a {
    let (uri, token) = (uri.into(), token.into());
    async move { send_owned(app, method, &uri, &token, body).await }
}

async fn send_owned(app: &TestApp, method: Method, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        let ct = if uri.starts_with("/fhir") { "application/fhir+json" } else { "application/json" };
        b = b.header("content-type", ct);
    }
    let req = b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn patient(cid: &str, family: &str, given: &str) -> Value {
    json!({ "resourceType": "Patient", "identifier": [{ "system": CID, "value": cid }],
        "name": [{ "family": family, "given": [given], "text": format!("{family}{given}") }],
        "gender": "female", "birthDate": "1955-02-26" })
}

fn encounter(patient: &str, org: &str, start: &str) -> Value {
    json!({ "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": format!("Patient/{patient}") },
        "serviceProvider": { "reference": format!("Organization/{org}") },
        "period": { "start": start, "end": start } })
}

fn bp(patient: &str) -> Value {
    json!({ "resourceType": "Observation", "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9" }] },
        "subject": { "reference": format!("Patient/{patient}") }, "effectiveDateTime": "2026-11-20T09:00:00+08:00",
        "component": [
            { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] }, "valueQuantity": { "value": 182, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
            { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] }, "valueQuantity": { "value": 112, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } }
        ] })
}

async fn create(app: &TestApp, token: &str, v: Value) -> String {
    let rt = v["resourceType"].as_str().unwrap().to_string();
    let (s, b) = send(app, Method::POST, format!("/fhir/{rt}"), token, Some(v)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Whether the caller reads the patient's record (a Patient alone is shown masked to any
/// clinician: finding a patient is not reading the record).
async fn reads(app: &TestApp, token: &str, pid: &str) -> StatusCode {
    send(app, Method::GET, format!("/fhir/Observation?patient={pid}"), token.to_string(), None).await.0
}

/// A valid citizen ID for a birth date and sequence (GB 11643 check character).
fn cid(birth: &str, seq: u32) -> String {
    let body = format!("120114{birth}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn now_rfc3339() -> String {
    kernel::store::ms_to_rfc3339(kernel::store::now_ms())
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    TestApp::spawn_with(backend, modules, |_| {}).await
}

async fn referrals(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let wu = app.login("dr.wu").await; // 杨村社区卫生服务中心: primary care
    let yang = app.login("dr.yang").await; // 人民医院
    let chen = app.login("wjw.chen").await; // 卫健委
    let sun = app.login("bus.sun").await; // a bus company's operator
    let huang = app.login("resident.huang").await;
    let people = app.org_id("people_hospital").await;
    let yangcun = app.org_id("yangcun_chc").await;
    let transport = app.org_id("transport_bureau").await;

    // The demo resident, in care at the community centre.
    let huang_cid = {
        let st = &app.platform.state;
        let u = kernel::users::by_username(&st.store, "resident.huang").await.unwrap().unwrap();
        st.cipher.decrypt(&u.citizen_id_enc.unwrap()).unwrap()
    };
    let a = create(&app, &wu, patient(&huang_cid, "黄", "秀英")).await;
    create(&app, &wu, encounter(&a, &yangcun, "2026-11-20T09:00:00+08:00")).await;
    let obs = create(&app, &wu, bp(&a)).await;
    // A patient of the hospital's only.
    let other = create(&app, &yang, patient(&cid("19600101", 11), "王", "芳")).await;
    let other_obs = create(&app, &yang, bp(&other)).await;
    assert_eq!(reads(&app, &yang, &a).await, StatusCode::FORBIDDEN, "not in care at the hospital yet");

    // --- refusals on request.
    let req = |patient: &str, to: &str| {
        json!({ "patient_id": patient, "direction": "up", "to_org_id": to, "department": "心血管内科",
            "diagnosis": "I10", "reason": "血压控制不佳, 182/112 mmHg", "summary": "高血压 10 年, 三药联合",
            "attachments": [format!("Observation/{obs}")] })
    };
    let post = |t: &str, v: Value| send(&app, Method::POST, "/api/health/referrals", t.to_string(), Some(v));
    assert_eq!(post(&sun, req(&a, &people)).await.0, StatusCode::FORBIDDEN, "not a clinician");
    assert_eq!(post(&huang, req(&a, &people)).await.0, StatusCode::FORBIDDEN, "a resident refers nobody");
    let (s, b) = post(&wu, req(&other, &people)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the patient is not in care at the referring institution: {b}");
    let (s, b) = post(&wu, req(&a, &yangcun)).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")), "{b}");
    let (s, b) = post(&wu, req(&a, &transport)).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to_org_id")),
        "not a health institution: {b}"
    );
    let mut v = req(&a, &people);
    v["diagnosis"] = json!("hypertension");
    assert_eq!(post(&wu, v).await.1["field"], "diagnosis");
    let mut v = req(&a, &people);
    v["attachments"] = json!([format!("Observation/{other_obs}")]);
    assert_eq!(post(&wu, v).await.1["field"], "attachments[0]", "another patient's record is not attached");
    let mut v = req(&a, &people);
    v["reason"] = json!("  ");
    assert_eq!(post(&wu, v).await.1["field"], "reason");
    let mut v = req(&a, &people);
    v["slot"] = json!("2020-01-01T09:00:00+08:00");
    assert_eq!(post(&wu, v).await.1["field"], "slot", "a slot in the past");
    let mut v = req(&a, &people);
    v["urgency"] = json!("high");
    assert_eq!(post(&wu, v).await.0, StatusCode::UNPROCESSABLE_ENTITY, "unknown field");
    assert_eq!(post(&wu, req("no-such-patient", &people)).await.0, StatusCode::NOT_FOUND);

    // --- the referral, and the hospital's clinician reads the shared record under it.
    let (s, r) = post(&wu, req(&a, &people)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "requested");
    assert_eq!(r["due"], "answer");
    assert_eq!(r["overdue"], false);
    assert_eq!(r["patient_name"], "黄秀英");
    assert_eq!(r["reason"], "血压控制不佳, 182/112 mmHg");
    assert_eq!(reads(&app, &yang, &a).await, StatusCode::OK, "in care at the receiving institution");
    assert_eq!(
        send(&app, Method::GET, format!("/fhir/Observation/{obs}"), &yang, None).await.0,
        StatusCode::OK,
        "the attachment is readable"
    );
    // The reason is encrypted at rest.
    let raw = {
        let st = &app.platform.state;
        let row = sqlx::query(&st.store.sql("SELECT reason_enc FROM health_referrals WHERE id = $1"))
            .bind(id.clone())
            .fetch_one(st.store.reader())
            .await
            .unwrap();
        kernel::store::col::<Vec<u8>>(&row, "reason_enc").unwrap()
    };
    assert!(!String::from_utf8_lossy(&raw).contains("血压"));

    let (s, inbox) = send(&app, Method::GET, "/api/health/referrals?box=incoming", &yang, None).await;
    assert_eq!(s, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["total"], 1);
    assert_eq!(inbox["items"][0]["id"], id.as_str());
    let (_, out) = send(&app, Method::GET, "/api/health/referrals?box=incoming", &wu, None).await;
    assert_eq!(out["total"], 0, "nothing comes in at the centre");
    let (_, out) = send(&app, Method::GET, "/api/health/referrals?box=outgoing&state=requested", &wu, None).await;
    assert_eq!(out["total"], 1);
    assert_eq!(
        send(&app, Method::GET, "/api/health/referrals?box=sideways", &wu, None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(send(&app, Method::GET, "/api/health/referrals", &chen, None).await.0, StatusCode::FORBIDDEN);

    // --- the steps, each from the right side and state only.
    let step = |t: &str, v: Value| {
        send(&app, Method::POST, format!("/api/health/referrals/{id}/steps"), t.to_string(), Some(v))
    };
    assert_eq!(step(&wu, json!({ "action": "accept" })).await.0, StatusCode::FORBIDDEN, "the referrer does not accept");
    assert_eq!(
        step(&yang, json!({ "action": "cancel", "note": "不需要" })).await.0,
        StatusCode::FORBIDDEN,
        "the receiver does not cancel"
    );
    assert_eq!(step(&yang, json!({ "action": "arrive" })).await.0, StatusCode::CONFLICT, "not accepted yet");
    assert_eq!(step(&yang, json!({ "action": "accept", "version": 7 })).await.0, StatusCode::CONFLICT, "stale");
    assert_eq!(step(&yang, json!({ "action": "dance" })).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(step(&chen, json!({ "action": "accept" })).await.0, StatusCode::FORBIDDEN);
    let slot = kernel::store::ms_to_rfc3339(kernel::store::now_ms() + 3 * 24 * 3_600_000);
    let (s, r) = step(&yang, json!({ "action": "accept", "slot": slot, "version": 1 })).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["state"].as_str(), r["due"].as_str()), (Some("accepted"), Some("arrival")));
    assert!(r["slot"].is_string());
    assert_eq!(step(&yang, json!({ "action": "accept" })).await.0, StatusCode::CONFLICT, "accepted once");
    assert_eq!(step(&yang, json!({ "action": "arrive", "slot": slot })).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(step(&yang, json!({ "action": "arrive" })).await.1["state"], "arrived");
    assert_eq!(
        step(&wu, json!({ "action": "cancel", "note": "患者改变主意" })).await.0,
        StatusCode::CONFLICT,
        "no cancelling once arrived"
    );
    assert_eq!(step(&yang, json!({ "action": "complete", "note": "调整用药" })).await.1["state"], "completed");
    let (s, b) = step(&yang, json!({ "action": "return" })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "a return has its summary");
    let (s, r) = step(&yang, json!({ "action": "return", "note": "血压已控制, 回社区随访: 氨氯地平 5 mg qd" })).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "returned");
    assert_eq!(r["follow_up"], "due", "the centre sees the patient within two weeks");
    let steps: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["request", "accept", "arrive", "complete", "return"]);
    assert_eq!(r["steps"][4]["note"], "血压已控制, 回社区随访: 氨氯地平 5 mg qd");

    // The follow-up visit at the centre is found.
    create(&app, &wu, encounter(&a, &yangcun, &now_rfc3339())).await;
    let (s, r) = send(&app, Method::GET, format!("/api/health/referrals/{id}"), &wu, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["follow_up"], "done");
    assert_eq!(
        send(&app, Method::GET, format!("/api/health/referrals/{id}"), &sun, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&app, Method::GET, "/api/health/referrals/nope", &wu, None).await.0, StatusCode::NOT_FOUND);
    // The same referral as FHIR: the ServiceRequest and the Task that carries its state.
    let (s, fb) = send(&app, Method::GET, format!("/api/health/referrals/{id}/fhir"), yang.clone(), None).await;
    assert_eq!(s, StatusCode::OK, "{fb}");
    let sr = &fb["entry"][0]["resource"];
    assert_eq!((sr["resourceType"].as_str(), sr["status"].as_str()), (Some("ServiceRequest"), Some("completed")));
    assert_eq!(sr["reasonCode"][0]["coding"][0]["code"], "I10");
    assert_eq!(sr["performer"][0]["reference"], format!("Organization/{people}"));
    assert_eq!(sr["supportingInfo"][0]["reference"], format!("Observation/{obs}"));
    let task = &fb["entry"][1]["resource"];
    assert_eq!(
        (task["status"].as_str(), task["businessStatus"]["text"].as_str()),
        (Some("completed"), Some("returned"))
    );
    assert_eq!(task["focus"]["reference"], format!("ServiceRequest/{id}"));
    assert!(task["restriction"]["period"]["start"].is_string(), "the reserved slot");
    assert_eq!(
        send(&app, Method::GET, format!("/api/health/referrals/{id}/fhir"), sun.clone(), None).await.0,
        StatusCode::FORBIDDEN
    );

    // --- a rejection: the receiving side reads the record while it decides, not after.
    let b_pid = create(&app, &wu, patient(&cid("19700315", 21), "李", "强")).await;
    create(&app, &wu, encounter(&b_pid, &yangcun, "2026-11-25T09:00:00+08:00")).await;
    let mut v = req(&b_pid, &people);
    v["attachments"] = json!([]);
    v["priority"] = json!("urgent");
    let (s, r) = post(&wu, v).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id_b = r["id"].as_str().unwrap().to_string();
    assert_eq!(reads(&app, &yang, &b_pid).await, StatusCode::OK);
    let step_b = |v: Value| send(&app, Method::POST, format!("/api/health/referrals/{id_b}/steps"), &yang, Some(v));
    assert_eq!(step_b(json!({ "action": "reject" })).await.0, StatusCode::UNPROCESSABLE_ENTITY, "a rejection says why");
    assert_eq!(
        step_b(json!({ "action": "reject", "note": "本院床位已满, 建议转中医医院" })).await.1["state"],
        "rejected"
    );
    assert_eq!(reads(&app, &yang, &b_pid).await, StatusCode::FORBIDDEN, "rejected: no longer in care there");
    assert_eq!(step_b(json!({ "action": "accept" })).await.0, StatusCode::CONFLICT, "rejection is final");

    // --- a down-referral and its cancellation by the hospital.
    create(&app, &yang, encounter(&other, &people, "2026-11-26T09:00:00+08:00")).await;
    let (s, r) = post(
        &yang,
        json!({ "patient_id": other, "direction": "down", "to_org_id": yangcun, "reason": "术后康复, 社区随访" }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id_c = r["id"].as_str().unwrap().to_string();
    assert_eq!(reads(&app, &wu, &other).await, StatusCode::OK, "the centre reads its incoming patient");
    let (s, r) = send(
        &app,
        Method::POST,
        format!("/api/health/referrals/{id_c}/steps"),
        &yang,
        Some(json!({ "action": "cancel", "note": "患者选择居家康复" })),
    )
    .await;
    assert_eq!((s, r["state"].as_str()), (StatusCode::OK, Some("cancelled")), "{r}");
    assert_eq!(reads(&app, &wu, &other).await, StatusCode::FORBIDDEN);

    // --- figures: counts per institution, for the commission and each institution's own.
    let (s, f) = send(&app, Method::GET, "/api/health/referrals/statistics", &chen, None).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let of = |org: &str| f.as_array().unwrap().iter().find(|x| x["org_id"] == org).cloned().unwrap();
    assert_eq!(of(&yangcun)["sent_up"], 2);
    assert_eq!(of(&yangcun)["follow_up_done"], 1);
    assert_eq!(of(&yangcun)["follow_up_rate"], 1.0);
    assert_eq!(of(&people)["received"], 2);
    assert_eq!(of(&people)["rejected"], 1);
    assert_eq!(of(&people)["sent_down"], 1);
    let (_, own) = send(&app, Method::GET, "/api/health/referrals/statistics", &wu, None).await;
    assert_eq!(own.as_array().unwrap().len(), 1, "a clinician sees their institution's figures: {own}");
    assert_eq!(
        send(&app, Method::GET, "/api/health/referrals/statistics", &huang, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, Method::GET, "/api/health/referrals/statistics?since=yesterday", &chen, None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // --- the resident sees the referral's readers in "who looked at my record".
    let (s, log) = send(&app, Method::GET, format!("/fhir/AuditEvent?patient={a}"), &huang, None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert!(
        log["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["subtype"][0]["code"].as_str().is_some_and(|a| a.starts_with("health.referral.")))
            .all(|e| e["resource"]["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"),
        "the referral's entries say why: treatment"
    );
    let actions: Vec<(String, String)> = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["resource"];
            (
                r["agent"][0]["who"]["identifier"]["value"].as_str().unwrap_or_default().to_string(),
                r["subtype"][0]["code"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in [
        ("dr.wu", "health.referral.create"),
        ("dr.yang", "health.referral.read"),
        ("dr.yang", "health.referral.return"),
    ] {
        assert!(actions.iter().any(|(u, x)| u == want.0 && x == want.1), "{want:?} in {actions:?}");
    }
}

async fn contracts(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let wu = app.login("dr.wu").await;
    let yang = app.login("dr.yang").await;
    let chen = app.login("wjw.chen").await;
    let huang = app.login("resident.huang").await;
    let people = app.org_id("people_hospital").await;
    let wu_id = app.user_id("dr.wu").await;
    let yang_id = app.user_id("dr.yang").await;

    // --- teams.
    let team = |name: &str, members: Value| json!({ "name": name, "township": "杨村街道", "members": members });
    let post = |t: &str, uri: &str, v: Value| send(&app, Method::POST, uri.to_string(), t.to_string(), Some(v));
    let (s, b) =
        post(&wu, "/api/health/teams", team("吴医生团队", json!([{ "user_id": yang_id, "role": "doctor" }]))).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("members[0].user_id")), "{b}");
    let (s, b) =
        post(&wu, "/api/health/teams", team("吴医生团队", json!([{ "user_id": wu_id, "role": "nurse" }]))).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("members")), "no doctor: {b}");
    let mut bad = team("吴医生团队", json!([{ "user_id": wu_id, "role": "doctor" }]));
    bad["township"] = json!("海淀区");
    assert_eq!(post(&wu, "/api/health/teams", bad).await.1["field"], "township");
    assert_eq!(
        post(&huang, "/api/health/teams", team("x", json!([{ "user_id": wu_id, "role": "doctor" }]))).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, t) =
        post(&wu, "/api/health/teams", team("吴医生团队", json!([{ "user_id": wu_id, "role": "doctor" }]))).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let team_id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["members"][0]["display_name"], "杨村社区 吴医生 (家庭医生)");
    let (s, _) =
        post(&wu, "/api/health/teams", team("吴医生团队", json!([{ "user_id": wu_id, "role": "doctor" }]))).await;
    assert_eq!(s, StatusCode::CONFLICT, "one name per institution");
    let (s, t2) =
        post(&wu, "/api/health/teams", team("第二团队", json!([{ "user_id": wu_id, "role": "doctor" }]))).await;
    assert_eq!(s, StatusCode::CREATED);
    let team2 = t2["id"].as_str().unwrap().to_string();
    let (s, y) = post(
        &yang,
        "/api/health/teams",
        team(
            "医院团队",
            json!([{ "user_id": yang_id, "role": "specialist" }, { "user_id": yang_id, "role": "doctor" }]),
        ),
    )
    .await;
    assert_eq!((s, y["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("members[1].user_id")), "{y}");
    assert_eq!(send(&app, Method::GET, "/api/health/teams", &wu, None).await.1.as_array().unwrap().len(), 2);
    assert_eq!(send(&app, Method::GET, "/api/health/teams", &yang, None).await.1.as_array().unwrap().len(), 0);
    assert_eq!(send(&app, Method::GET, "/api/health/teams", &chen, None).await.1.as_array().unwrap().len(), 2);

    // --- a hospital's patient comes into the centre's care by contract.
    let huang_cid = {
        let st = &app.platform.state;
        let u = kernel::users::by_username(&st.store, "resident.huang").await.unwrap().unwrap();
        st.cipher.decrypt(&u.citizen_id_enc.unwrap()).unwrap()
    };
    let a = create(&app, &yang, patient(&huang_cid, "黄", "秀英")).await;
    create(&app, &yang, encounter(&a, &people, "2026-11-20T09:00:00+08:00")).await;
    assert_eq!(reads(&app, &wu, &a).await, StatusCode::FORBIDDEN);
    let sign = |t: &str, v: Value| send(&app, Method::POST, "/api/health/contracts", t.to_string(), Some(v));
    let (s, b) = sign(&yang, json!({ "patient_id": a, "team_id": team_id })).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another institution's team: {b}");
    let (s, b) = sign(&wu, json!({ "patient_id": a, "team_id": team_id, "packages": ["vip"] })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("packages")), "{b}");
    let (s, b) = sign(&wu, json!({ "patient_id": a, "team_id": team_id, "months": 0 })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("months")), "{b}");
    let (s, b) = sign(&wu, json!({ "patient_id": a, "team_id": team_id, "start": "2020-01-01" })).await;
    assert_eq!((s, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("start")), "{b}");
    assert_eq!(sign(&wu, json!({ "patient_id": "nobody", "team_id": team_id })).await.0, StatusCode::NOT_FOUND);
    let (s, k) =
        sign(&wu, json!({ "patient_id": a, "team_id": team_id, "packages": ["hypertension", "elderly"], "months": 1 }))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let ka = k["id"].as_str().unwrap().to_string();
    assert_eq!(k["status"], "in_force");
    assert_eq!(k["packages"], json!(["basic", "elderly", "hypertension"]));
    assert_eq!(reads(&app, &wu, &a).await, StatusCode::OK, "in care at the team's institution");
    let (s, b) = sign(&wu, json!({ "patient_id": a, "team_id": team2 })).await;
    assert_eq!(s, StatusCode::CONFLICT, "one team at a time: {b}");
    assert!(b["detail"].as_str().unwrap_or_default().contains("吴医生团队"), "{b}");

    // --- renewal: within 60 days of the end, once; the new term follows the old.
    let (s, r) = post(&wu, &format!("/api/health/contracts/{ka}/renew"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["renewed_from"], ka.as_str());
    assert_eq!(r["packages"], json!(["basic", "elderly", "hypertension"]));
    let kr = r["id"].as_str().unwrap().to_string();
    assert_eq!(post(&wu, &format!("/api/health/contracts/{ka}/renew"), json!({})).await.0, StatusCode::CONFLICT);
    let (s, b) = post(&wu, &format!("/api/health/contracts/{kr}/renew"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a year away from its end: {b}");
    assert_eq!(post(&yang, &format!("/api/health/contracts/{ka}/renew"), json!({})).await.0, StatusCode::NOT_FOUND);

    // --- lists: the centre's, the ones to renew, the resident's own.
    let (s, l) = send(&app, Method::GET, "/api/health/contracts", &wu, None).await;
    assert_eq!((s, l["total"].as_i64()), (StatusCode::OK, Some(2)), "{l}");
    assert_eq!(l["items"][0]["renewed_by"], kr.as_str());
    let (_, due) = send(&app, Method::GET, "/api/health/contracts?expiring_within_days=60", &wu, None).await;
    assert_eq!(due["total"], 0, "the renewed contract is not listed for renewal: {due}");
    let (_, mine) = send(&app, Method::GET, "/api/health/contracts", &huang, None).await;
    assert_eq!(mine["total"], 2, "{mine}");
    assert_eq!(send(&app, Method::GET, "/api/health/contracts", &yang, None).await.1["total"], 0);
    assert_eq!(send(&app, Method::GET, "/api/health/contracts", &chen, None).await.0, StatusCode::FORBIDDEN);

    // --- a second resident, to renew and to terminate.
    let b_pid = create(&app, &wu, patient(&cid("19800505", 31), "赵", "敏")).await;
    let (s, k) =
        sign(&wu, json!({ "patient_id": b_pid, "team_id": team2, "months": 2, "packages": ["diabetes"] })).await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let kb = k["id"].as_str().unwrap().to_string();
    let (_, due) = send(&app, Method::GET, "/api/health/contracts?expiring_within_days=90", &wu, None).await;
    assert_eq!(due["total"], 1);
    assert_eq!(due["items"][0]["id"], kb.as_str());
    let term =
        |id: &str, v: Value| send(&app, Method::POST, format!("/api/health/contracts/{id}/terminate"), &wu, Some(v));
    assert_eq!(term(&kb, json!({ "reason": "" })).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, t) = term(&kb, json!({ "reason": "居民迁出本区" })).await;
    assert_eq!((s, t["status"].as_str()), (StatusCode::OK, Some("terminated")), "{t}");
    assert_eq!(t["termination_reason"], "居民迁出本区");
    assert_eq!(term(&kb, json!({ "reason": "again" })).await.0, StatusCode::CONFLICT);
    assert_eq!(post(&wu, &format!("/api/health/contracts/{kb}/renew"), json!({})).await.0, StatusCode::CONFLICT);
    // Terminating the hospital patient's contract ends the centre's care.
    assert_eq!(term(&ka, json!({ "reason": "居民改签其他团队" })).await.0, StatusCode::OK);
    assert_eq!(term(&kr, json!({ "reason": "居民改签其他团队" })).await.0, StatusCode::OK);
    // The centre keeps its own record of the contract (the CarePlan, now revoked), and no more.
    let (s, b) = send(&app, Method::GET, format!("/fhir/Encounter?patient={a}"), &wu, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["entry"].as_array().is_none_or(Vec::is_empty), "no contract, no care: {b}");
    let (_, b) = send(&app, Method::GET, format!("/fhir/CarePlan?patient={a}"), &wu, None).await;
    assert_eq!(b["entry"][0]["resource"]["status"], "revoked", "{b}");
    let (s, k) = sign(&wu, json!({ "patient_id": a, "team_id": team2 })).await;
    assert_eq!(s, StatusCode::CREATED, "signs with another team once the old contract ended: {k}");

    // --- coverage per township.
    let app = &app;
    let put = |t: &str, name: &str, v: Value| {
        let uri = format!("/api/health/townships/{}", percent_encode(name));
        send(app, Method::PUT, uri, t.to_string(), Some(v))
    };
    assert_eq!(put(&wu, "杨村街道", json!({ "population": 1000 })).await.0, StatusCode::FORBIDDEN);
    assert_eq!(put(&chen, "海淀", json!({ "population": 1000 })).await.0, StatusCode::NOT_FOUND);
    assert_eq!(put(&chen, "杨村街道", json!({ "population": -1 })).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = put(&chen, "杨村街道", json!({ "population": 1000 })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, cov) = send(app, Method::GET, "/api/health/contracts/coverage", &chen, None).await;
    assert_eq!(s, StatusCode::OK, "{cov}");
    let yc = cov.as_array().unwrap().iter().find(|x| x["township"] == "杨村街道").unwrap();
    assert_eq!(yc["contracted"], 1, "{yc}");
    assert_eq!(yc["population"], 1000);
    assert_eq!(yc["rate"], 0.001);
    assert_eq!(yc["teams"], 2);
    assert_eq!(yc["by_package"]["basic"], 1);
    let (_, past) = send(app, Method::GET, "/api/health/contracts/coverage?on=2025-01-01", &chen, None).await;
    assert_eq!(past.as_array().unwrap().iter().map(|x| x["contracted"].as_i64().unwrap()).sum::<i64>(), 0);
    assert_eq!(
        send(app, Method::GET, "/api/health/contracts/coverage?on=soon", &chen, None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(send(app, Method::GET, "/api/health/contracts/coverage", &huang, None).await.0, StatusCode::FORBIDDEN);
    let (_, ts) = send(app, Method::GET, "/api/health/townships", &huang, None).await;
    assert_eq!(ts.as_array().unwrap().len(), 30);
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn referrals_on_sqlite() {
    referrals(Backend::Sqlite).await;
}

#[tokio::test]
async fn referrals_on_postgres() {
    referrals(Backend::Postgres).await;
}

#[tokio::test]
async fn contracts_on_sqlite() {
    contracts(Backend::Sqlite).await;
}

#[tokio::test]
async fn contracts_on_postgres() {
    contracts(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_input_never_fails_the_server() {
    let Some(app) = spawn(Backend::Sqlite).await else { return };
    let tokens = vec![None, Some(app.login("dr.wu").await), Some(app.login("wjw.chen").await)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}
