//! Issue #8, security across the whole platform: every module the binary mounts, the demo
//! district seeded, then
//! - an operator of enterprise A (and A's API token, and staff of other domains) sent to every
//!   route of the OpenAPI document that takes an id, with the ids of enterprise B's records, by
//!   every method: each refused exactly as a record that does not exist is (404, or 403 where
//!   the role may not act at all), never 2xx or 5xx, each refusal audited as `denied` naming the
//!   actor and the target, and none of B's data changed;
//! - list routes filtered by B refused with 403; unfiltered lists holding none of B's records;
//! - API tokens: a read token writes nowhere, no token mints a token, a revoked token is refused;
//! - brute force: the lock-out over HTTP, audited, and an unknown username answered exactly as a
//!   known one (same status, code and text, before and after the lock-out threshold).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::too_many_lines)]

use axum::http::{Method, StatusCode};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Runs each named test on SQLite and on PostgreSQL (when `WUQING_TEST_PG` names a server; else
/// the PostgreSQL run prints why it skips).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::app(super::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::app(super::Backend::Postgres).await { super::$name(app).await } } )*
        }
    };
}

both_backends!(
    no_route_reaches_another_enterprises_records,
    filters_naming_another_enterprise_are_refused_and_lists_hold_none_of_its_records,
    tokens_cannot_exceed_their_scope,
    brute_force_locks_out_and_unknown_users_look_like_known_ones,
    bodies_naming_another_enterprises_records_are_refused,
);

/// The platform as the binary mounts it (every module), the demo district seeded. Background
/// tasks do not run: nothing changes the data but the requests of the test.
async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, wuqing::modules(None, None, false), |c| c.security.lockout_threshold = 5).await
}

/// Enterprise A's operator and enterprise B's.
const A_OP: &str = "shunda.zhao";
const B_OP: &str = "bus.sun";
const REGULATOR: &str = "jt.liu";

fn today() -> String {
    supervision::dates::date_of(supervision::dates::today_days())
}

fn in_days(n: i64) -> String {
    supervision::dates::date_of(supervision::dates::today_days() + n)
}

fn first_id(v: &Value, what: &str) -> String {
    let items = v["items"].as_array().or_else(|| v.as_array()).unwrap_or_else(|| panic!("{what}: no list in {v}"));
    let first = items.first().unwrap_or_else(|| panic!("{what}: B has none"));
    first["id"].as_str().unwrap_or_else(|| panic!("{what}: no id in {first}")).to_string()
}

/// Enterprise B's records of every kind a route takes an id of, found by reading as B (or made
/// by B, or by the bureau for B, when the demo has none).
struct BRecords {
    org: String,
    user: String,
    token_id: String,
    /// B's token itself, to check it still works afterwards.
    token: String,
    file: String,
    vehicle: String,
    terminal: String,
    practitioner: String,
    hazard: String,
    /// A document sent to B alone.
    document: String,
    /// A document sent to both A and B: A may open it, not B's part of it.
    shared_document: String,
    penalty: String,
    incident: String,
    archive: String,
    alarm: String,
    webhook: String,
    device: String,
    /// Health: the People's Hospital's patient, referral, family-doctor team and contract
    /// (another institution's than dr.wu's, whom the attack also sends).
    patient: String,
    referral: String,
    team: String,
    contract: String,
    /// An item of the hospital's family-doctor worklist (an urgent home reading).
    work_item: String,
    /// The hospital's schedule, and an appointment in it for its patient.
    schedule: String,
    appointment: String,
    /// The hospital's request for a remote opinion from the TCM hospital.
    remote: String,
}

impl BRecords {
    /// Every id, for the checks that no list shows any of them.
    fn all(&self) -> Vec<&str> {
        vec![
            &self.user,
            &self.token_id,
            &self.file,
            &self.vehicle,
            &self.terminal,
            &self.practitioner,
            &self.hazard,
            &self.document,
            &self.penalty,
            &self.incident,
            &self.archive,
            &self.alarm,
            &self.webhook,
            &self.device,
            &self.patient,
            &self.referral,
            &self.team,
            &self.contract,
            &self.work_item,
            // (The schedule is not among them: the booking directory is public.)
            &self.appointment,
            &self.remote,
        ]
    }
}

async fn b_records(app: &TestApp) -> BRecords {
    let b = app.login(B_OP).await;
    let reg = app.login(REGULATOR).await;
    let org = app.org_id("wuqing_bus").await;
    let a_org = app.org_id("shunda").await;
    let get = |uri: &'static str| {
        let b = b.clone();
        async move {
            let (s, v) = app.get(uri, &b).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
            v
        }
    };
    let (s, t) = app.post("/api/tokens", &b, json!({"name": "B's script", "scope": "read_write"})).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let (s, f) = app.upload(&b, "B's record.pdf", "application/pdf", &supervision::demo::demo_pdf("B")).await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let (s, w) = app
        .post("/api/alarms/webhooks", &b, json!({"url": "http://127.0.0.1:9/b", "description": "B's dispatch"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let (s, d) = app
        .post(
            "/api/iot/devices",
            &b,
            json!({"code": "B-CABIN-1", "kind": "cabin_probe", "name": "B's probe", "subject_type": "other"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let doc = |org_ids: Vec<String>, title: &str| {
        json!({"title": title, "body": "请于期限内报送。", "target": {"org_ids": org_ids},
               "requires_report": true, "deadline": in_days(10)})
    };
    let (s, only_b) = app.post("/api/supervision/documents", &reg, doc(vec![org.clone()], "致公交公司")).await;
    assert_eq!(s, StatusCode::CREATED, "{only_b}");
    let (s, shared) =
        app.post("/api/supervision/documents", &reg, doc(vec![org.clone(), a_org], "致顺达与公交公司")).await;
    assert_eq!(s, StatusCode::CREATED, "{shared}");
    // The bureau's rule set with an override for B (an operator of A must not see it).
    let (s, rules) = app.get("/api/transport/rules", &reg).await;
    assert_eq!(s, StatusCode::OK, "{rules}");
    let mut set = rules["rules"].clone();
    set["by_enterprise"] = json!({org.clone(): {"speed_limit_kmh": 50.0}});
    let (s, v) = app
        .call(
            Method::PUT,
            "/api/transport/rules",
            Some(&reg),
            Some(json!({"base_version": rules["version"], "rules": set})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A fine decided against B (the demo's are against other enterprises).
    let vehicle = first_id(&get("/api/transport/vehicles?limit=1").await, "vehicle");
    let (s, penalty) = app
        .post(
            "/api/supervision/penalties",
            &reg,
            json!({"decision_no": "津武交罚〔2026〕B-1号", "org_id": org, "subject_type": "vehicle", "subject_id": vehicle,
                   "kind": "fine", "facts": "车辆未按规定安装使用卫星定位装置。",
                   "legal_basis": "《道路运输车辆动态监督管理办法》第三十七条", "amount_fen": 300_000, "decided_on": today()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{penalty}");
    // An alarm of B's, raised as a rule engine raises one (open, so that every step applies).
    let now = kernel::store::now_ms();
    let raised = alarms::model::NewAlarm {
        domain: "transport".into(),
        kind: "overspeed".into(),
        severity: alarms::model::Severity::Major,
        subject_type: "vehicle".into(),
        subject_id: vehicle.clone(),
        subject_label: "津C5·B".into(),
        org_id: org.clone(),
        started_ms: now - 60_000,
        at_ms: now,
        rule_version: 1,
        details: json!({"speed_kmh": 96.0, "limit_kmh": 60}),
        evidence: json!([]),
    };
    let (alarm, _) = alarms::service::raise(&app.platform.state.store, &app.platform.state.bus, &raised).await.unwrap();
    let alarm = alarm.id;
    let (patient, referral, team, contract) = hospital_records(app).await;
    let work_item = hospital_work_item(app, &patient).await;
    let (schedule, appointment) = hospital_appointment(app, &patient).await;
    let remote = {
        let yang = app.login("dr.yang").await;
        let tcm = app.org_id("tcm_hospital").await;
        let (s, r) = app
            .post(
                "/api/health/remote",
                &yang,
                json!({"kind": "consultation", "patient_id": patient, "to_org_id": tcm, "question": "中医会诊意见"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        r["id"].as_str().unwrap().to_string()
    };
    BRecords {
        remote,
        work_item,
        schedule,
        appointment,
        patient,
        referral,
        team,
        contract,
        user: app.user_id(B_OP).await,
        token_id: t["info"]["id"].as_str().unwrap().to_string(),
        token: t["token"].as_str().unwrap().to_string(),
        file: f["id"].as_str().unwrap().to_string(),
        vehicle,
        terminal: first_id(&get("/api/transport/terminals?bound=true&limit=1").await, "terminal"),
        practitioner: first_id(&get("/api/supervision/practitioners?limit=1").await, "practitioner"),
        hazard: first_id(&get("/api/supervision/hazards?limit=1").await, "hazard"),
        document: only_b["id"].as_str().unwrap().to_string(),
        shared_document: shared["id"].as_str().unwrap().to_string(),
        penalty: penalty["id"].as_str().unwrap().to_string(),
        incident: first_id(&get("/api/supervision/incidents?limit=1").await, "incident"),
        archive: first_id(&get("/api/supervision/archives?limit=1").await, "archive"),
        alarm,
        webhook: w["webhook"]["id"].as_str().unwrap().to_string(),
        device: d["device"]["id"].as_str().unwrap().to_string(),
        org,
    }
}

/// The People's Hospital's records (dr.yang's): a patient in care there, referred up to the TCM
/// hospital, signed with a family-doctor team of the hospital's.
async fn hospital_records(app: &TestApp) -> (String, String, String, String) {
    let yang = app.login("dr.yang").await;
    let people = app.org_id("people_hospital").await;
    let tcm = app.org_id("tcm_hospital").await;
    let created = |v: (StatusCode, Value), what: &str| {
        assert_eq!(v.0, StatusCode::CREATED, "{what}: {}", v.1);
        v.1["id"].as_str().unwrap().to_string()
    };
    let patient = created(
        app.post(
            "/fhir/Patient",
            &yang,
            json!({"resourceType": "Patient", "name": [{"text": "钱多多"}], "gender": "male"}),
        )
        .await,
        "patient",
    );
    created(
        app.post(
            "/fhir/Encounter",
            &yang,
            json!({"resourceType": "Encounter", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": {"reference": format!("Patient/{patient}")},
                   "serviceProvider": {"reference": format!("Organization/{people}")},
                   "period": {"start": "2026-11-20T09:00:00+08:00", "end": "2026-11-20T10:00:00+08:00"}}),
        )
        .await,
        "encounter",
    );
    let referral = created(
        app.post(
            "/api/health/referrals",
            &yang,
            json!({"patient_id": patient, "direction": "up", "to_org_id": tcm, "reason": "中医会诊"}),
        )
        .await,
        "referral",
    );
    let yang_id = app.user_id("dr.yang").await;
    let team = created(
        app.post(
            "/api/health/teams",
            &yang,
            json!({"name": "人民医院家医团队", "township": "杨村街道", "members": [{"user_id": yang_id, "role": "doctor"}]}),
        )
        .await,
        "team",
    );
    let contract = created(
        app.post("/api/health/contracts", &yang, json!({"patient_id": patient, "team_id": team, "months": 1})).await,
        "contract",
    );
    (patient, referral, team, contract)
}

/// An urgent home blood pressure of the hospital's patient, on the hospital's worklist.
async fn hospital_work_item(app: &TestApp, patient: &str) -> String {
    let st = &app.platform.state;
    let records = health::records::Records::new(st.store.clone(), st.cipher.clone());
    let h = health::monitoring::HomeReading {
        device: "RMYY-HOME-1".into(),
        device_org: app.org_id("people_hospital").await,
        patient_id: patient.to_string(),
        at_ms: kernel::store::now_ms() - 60_000,
        reading: rules::clinical::Reading::BloodPressure { systolic: 190.0, diastolic: 120.0 },
        heart_rate: None,
    };
    let rules = rules::clinical::ClinicalRules::default();
    let taken = health::monitoring::take(st, &records, &rules, &h).await.unwrap();
    assert_eq!(taken, health::monitoring::Taken::Taken { alerts: 2 });
    let row = sqlx::query(&st.store.sql("SELECT id FROM health_worklist WHERE patient_id = $1 AND action = 'urgent'"))
        .bind(patient.to_string())
        .fetch_one(st.store.reader())
        .await
        .unwrap();
    kernel::store::col(&row, "id").unwrap()
}

/// The hospital's schedule with tomorrow's slots, and one booked by dr.yang for the patient.
async fn hospital_appointment(app: &TestApp, patient: &str) -> (String, String) {
    let yang = app.login("dr.yang").await;
    let (s, sched) =
        app.post("/api/health/schedules", &yang, json!({"department": "心血管内科", "name": "普通门诊"})).await;
    assert_eq!(s, StatusCode::CREATED, "{sched}");
    let sid = sched["id"].as_str().unwrap().to_string();
    let tomorrow = in_days(1);
    let (s, v) = app
        .post(
            &format!("/api/health/schedules/{sid}/slots"),
            &yang,
            json!({"from": tomorrow, "days": 1, "start": "09:00", "end": "10:00", "minutes": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, slots) = app.get(&format!("/api/health/slots?schedule_id={sid}"), &yang).await;
    let slot = slots["items"][0]["id"].as_str().unwrap().to_string();
    let (s, a) = app.post("/api/health/appointments", &yang, json!({"slot_id": slot, "patient_id": patient})).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    (sid, a["id"].as_str().unwrap().to_string())
}

/// For a route that takes ids, the substitutions (parameter → B's id) to try; `None` for a route
/// this table does not know, which fails the test: a new route with an id must be added here.
fn substitutions(route: &str, b: &BRecords) -> Option<Vec<Vec<(&'static str, String)>>> {
    let one = |p: &'static str, id: &String| Some(vec![vec![(p, id.clone())]]);
    match route {
        "/api/orgs/{id}" => one("id", &b.org),
        "/api/users/{id}"
        | "/api/users/{id}/grant"
        | "/api/users/{id}/lock"
        | "/api/users/{id}/unlock"
        | "/api/users/{id}/reset-password" => one("id", &b.user),
        "/api/tokens/{id}" => one("id", &b.token_id),
        "/api/files/{id}" | "/api/files/{id}/content" => one("id", &b.file),
        "/api/transport/vehicles/{id}"
        | "/api/transport/vehicles/{id}/track"
        | "/api/transport/vehicles/{id}/commands" => one("id", &b.vehicle),
        "/api/transport/terminals/{id}"
        | "/api/transport/terminals/{id}/bind"
        | "/api/transport/terminals/{id}/unbind" => one("id", &b.terminal),
        "/api/alarms/{id}"
        | "/api/alarms/{id}/acknowledge"
        | "/api/alarms/{id}/handle"
        | "/api/alarms/{id}/close"
        | "/api/alarms/{id}/supervise" => one("id", &b.alarm),
        "/api/alarms/webhooks/{id}"
        | "/api/alarms/webhooks/{id}/deliveries"
        | "/api/alarms/webhooks/{id}/rotate-secret"
        | "/api/alarms/webhooks/{id}/test" => one("id", &b.webhook),
        "/api/iot/devices/{id}" | "/api/iot/devices/{id}/readings" | "/api/iot/devices/{id}/secret" => {
            one("id", &b.device)
        }
        "/api/supervision/enterprises/{org_id}" | "/api/supervision/credit/enterprises/{org_id}" => {
            one("org_id", &b.org)
        }
        "/api/supervision/vehicles/{vehicle_id}" => one("vehicle_id", &b.vehicle),
        "/api/supervision/practitioners/{id}" | "/api/supervision/practitioners/{id}/vehicles" => {
            one("id", &b.practitioner)
        }
        "/api/supervision/hazards/{id}"
        | "/api/supervision/hazards/{id}/notify"
        | "/api/supervision/hazards/{id}/report"
        | "/api/supervision/hazards/{id}/review"
        | "/api/supervision/hazards/{id}/withdraw" => one("id", &b.hazard),
        "/api/supervision/documents/{id}"
        | "/api/supervision/documents/{id}/read"
        | "/api/supervision/documents/{id}/reply" => one("id", &b.document),
        "/api/supervision/documents/{id}/recipients/{org_id}"
        | "/api/supervision/documents/{id}/recipients/{org_id}/review" => Some(vec![
            vec![("id", b.document.clone()), ("org_id", b.org.clone())],
            // A's own document, B's part of it.
            vec![("id", b.shared_document.clone()), ("org_id", b.org.clone())],
        ]),
        "/api/supervision/penalties/{id}"
        | "/api/supervision/penalties/{id}/execute"
        | "/api/supervision/penalties/{id}/revoke" => one("id", &b.penalty),
        "/api/supervision/incidents/{id}" | "/api/supervision/incidents/{id}/decide" => one("id", &b.incident),
        "/api/supervision/archives/{id}" => one("id", &b.archive),
        "/api/health/referrals/{id}" | "/api/health/referrals/{id}/fhir" | "/api/health/referrals/{id}/steps" => {
            one("id", &b.referral)
        }
        "/api/health/contracts/{id}/renew" | "/api/health/contracts/{id}/terminate" => one("id", &b.contract),
        "/api/health/worklist/{id}/close" => one("id", &b.work_item),
        "/api/health/schedules/{id}/slots" => one("id", &b.schedule),
        "/api/health/appointments/{id}"
        | "/api/health/appointments/{id}/fhir"
        | "/api/health/appointments/{id}/steps" => one("id", &b.appointment),
        "/api/health/remote/{id}" | "/api/health/remote/{id}/steps" => one("id", &b.remote),
        _ => None,
    }
}

/// Routes with a path parameter that names no organisation's record: shared configuration,
/// checked on their own below.
const NOT_ORGANISATION_OWNED: &[&str] = &[
    "/api/transport/rules/versions/{version}",
    "/api/iot/rules/versions/{version}",
    "/api/supervision/archives/kinds/{code}",
    // The district's master patient index, kept by the health commission's staff, nobody's
    // organisation's: `crates/health/tests/mpi.rs` refuses everyone else.
    "/api/health/mpi/events/{id}/undo",
    "/api/health/mpi/patients/{id}/person",
    "/api/health/mpi/reviews/{id}/decision",
    // Break-glass accesses, the security administrator's review across the district.
    "/api/health/break-glass/{id}/review",
    // The district's townships and their population, kept by the health commission.
    "/api/health/townships/{name}",
];

/// A request a caller who may act would plausibly send (so that a refusal is the scope's, not a
/// malformed body's). Fails for a write route not listed.
fn body(method: &Method, route: &str, b: &BRecords) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    let v = match route {
        "/api/orgs/{id}" => json!({"name": "被篡改的企业名称"}),
        "/api/users/{id}" => json!({"display_name": "被篡改"}),
        "/api/users/{id}/grant" => json!({"clearance": "public"}),
        "/api/users/{id}/lock" | "/api/users/{id}/unlock" | "/api/users/{id}/reset-password" => json!({}),
        "/api/transport/vehicles/{id}" => json!({"vin": "LGWEF4A59NF000001"}),
        "/api/transport/vehicles/{id}/commands" => json!({"kind": "text", "text": "请靠边停车", "tts": true}),
        "/api/transport/terminals/{id}/bind" => json!({"vehicle_id": b.vehicle}),
        "/api/transport/terminals/{id}/unbind" => json!({}),
        "/api/alarms/{id}/acknowledge" | "/api/alarms/{id}/close" => json!({"note": "已处理"}),
        "/api/alarms/{id}/handle" => json!({"action": "phoned_driver", "note": "已电话提醒"}),
        "/api/alarms/{id}/supervise" => json!({"note": "限期整改"}),
        "/api/alarms/webhooks/{id}" => json!({"url": "http://127.0.0.1:9/stolen", "enabled": true}),
        "/api/alarms/webhooks/{id}/rotate-secret" | "/api/alarms/webhooks/{id}/test" => json!({}),
        "/api/iot/devices/{id}" => json!({"name": "被篡改", "enabled": false}),
        "/api/iot/devices/{id}/secret" => json!({}),
        "/api/supervision/enterprises/{org_id}" => json!({
            "uscc": "91120222MA05K1WX0T", "business_scope": "城市公共汽车客运", "licence_no": "津交运管许可武字120222000001号",
            "licence_valid_until": in_days(365), "safety_officer": "冒名", "monitoring_staff": 3}),
        "/api/supervision/vehicles/{vehicle_id}" => json!({
            "road_transport_certificate_no": "津交运管武字120222000001", "road_transport_certificate_valid_until": in_days(300),
            "annual_inspection_valid_until": in_days(200), "compulsory_insurance_valid_until": in_days(100), "seats": 40}),
        "/api/supervision/practitioners/{id}" => json!({
            "name": "冒名", "role": "driver", "qualification_type": "城市公共汽车驾驶员",
            "qualification_valid_until": in_days(300), "licence_class": "A3", "licence_valid_until": in_days(300)}),
        "/api/supervision/practitioners/{id}/vehicles" => json!({"vehicle_ids": []}),
        "/api/supervision/hazards/{id}/notify" => json!({"deadline": in_days(10), "note": "限期整改"}),
        "/api/supervision/hazards/{id}/report" => json!({"note": "已整改"}),
        "/api/supervision/hazards/{id}/review" => json!({"decision": "pass"}),
        "/api/supervision/hazards/{id}/withdraw" => json!({"note": "撤销"}),
        "/api/supervision/documents/{id}/read" => json!({}),
        "/api/supervision/documents/{id}/reply" => json!({"note": "已落实"}),
        "/api/supervision/documents/{id}/recipients/{org_id}/review" => json!({"decision": "accept"}),
        "/api/supervision/penalties/{id}/execute" => json!({"executed_on": today()}),
        "/api/supervision/penalties/{id}/revoke" => json!({"reason": "撤销"}),
        "/api/supervision/incidents/{id}/decide" => json!({"substantiated": false}),
        "/api/health/referrals/{id}/steps" => json!({"action": "accept"}),
        "/api/health/contracts/{id}/renew" => json!({}),
        "/api/health/contracts/{id}/terminate" => json!({"reason": "冒名解约"}),
        "/api/health/worklist/{id}/close" => json!({"outcome": "handled"}),
        "/api/health/schedules/{id}/slots" => {
            json!({"from": in_days(2), "days": 1, "start": "09:00", "end": "10:00", "minutes": 30})
        }
        "/api/health/appointments/{id}/steps" => json!({"action": "cancel"}),
        "/api/health/remote/{id}/steps" => json!({"action": "accept"}),
        _ => return None,
    };
    Some(v)
}

/// Query parameters a route needs to be answered at all.
fn query(route: &str) -> String {
    match route {
        "/api/transport/vehicles/{id}/track" | "/api/iot/devices/{id}/readings" => {
            "?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z".into()
        }
        _ => String::new(),
    }
}

fn fill(route: &str, subs: &[(&str, String)]) -> String {
    let mut p = route.to_string();
    for (k, v) in subs {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    assert!(!p.contains('{'), "{route}: a parameter left unfilled in {p}");
    p
}

/// The routes of the OpenAPI document: (template, methods).
async fn routes(app: &TestApp) -> Vec<(String, Vec<Method>)> {
    let (s, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|m| Method::from_bytes(m.to_uppercase().as_bytes()).ok())
                .filter(|m| [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(m))
                .collect();
            (p.clone(), methods)
        })
        .collect()
}

/// The newest audit sequence number.
async fn audit_head(app: &TestApp) -> i64 {
    let store = &app.platform.state.store;
    sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetch_one(store.reader()).await.unwrap()
}

/// Audit records after `seq`: (actor, action, target_kind, target_id, outcome, detail).
async fn audit_since(app: &TestApp, seq: i64) -> Vec<(String, String, String, String, String, String)> {
    let store = &app.platform.state.store;
    let rows = sqlx::query(&store.sql(
        "SELECT actor, action, target_kind, COALESCE(target_id, '') AS target_id, outcome, detail FROM audit_log \
         WHERE seq > $1 ORDER BY seq",
    ))
    .bind(seq)
    .fetch_all(store.reader())
    .await
    .unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            (
                r.get::<String, _>("actor"),
                r.get::<String, _>("action"),
                r.get::<String, _>("target_kind"),
                r.get::<String, _>("target_id"),
                r.get::<String, _>("outcome"),
                r.get::<String, _>("detail"),
            )
        })
        .collect()
}

/// A digest of every row of every table but the audit log and the credentials (which each
/// request touches by design): what must not change while B's records are attacked.
async fn tables_digest(app: &TestApp) -> BTreeMap<String, String> {
    let store = &app.platform.state.store;
    let pg = store.pg().is_some();
    let names: Vec<String> = if pg {
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")
            .fetch_all(store.reader())
            .await
            .unwrap()
    } else {
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .fetch_all(store.reader())
            .await
            .unwrap()
    };
    let mut out = BTreeMap::new();
    for t in names {
        if ["audit_log", "audit_head", "credentials"].contains(&t.as_str()) {
            continue;
        }
        let sql = if pg {
            format!("SELECT COALESCE(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM \"{t}\" x")
        } else {
            let cols: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .fetch_all(store.reader())
                .await
                .unwrap();
            let row = cols.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || ',' || ");
            format!("SELECT COALESCE(group_concat(r, char(10)), '') FROM (SELECT {row} AS r FROM \"{t}\" ORDER BY r)")
        };
        let v: String = sqlx::query_scalar(&sql).fetch_one(store.reader()).await.unwrap();
        out.insert(t, v);
    }
    out
}

/// What B reads of its own records through every id route (GET).
async fn b_view(app: &TestApp, b_token: &str, routes: &[(String, Vec<Method>)], b: &BRecords) -> Vec<String> {
    let mut out = vec![];
    for (route, methods) in routes {
        if !methods.contains(&Method::GET) {
            continue;
        }
        let Some(subs) = substitutions(route, b) else { continue };
        for s in subs {
            let uri = format!("{}{}", fill(route, &s), query(route));
            let (status, v) = app.get(&uri, b_token).await;
            out.push(format!("{uri} {status} {v}"));
        }
    }
    out
}

/// Sends every method of every id route, with B's ids, as `attacker`; checks each answer and
/// its audit record. Returns how many requests were sent.
async fn attack(app: &TestApp, attacker: &str, token: &str, b: &BRecords, routes: &[(String, Vec<Method>)]) -> usize {
    let mut sent = 0;
    let mut uncovered = vec![];
    for (route, methods) in routes {
        if !route.contains('{') || NOT_ORGANISATION_OWNED.contains(&route.as_str()) {
            continue;
        }
        let Some(subs) = substitutions(route, b) else {
            uncovered.push(route.clone());
            continue;
        };
        for m in methods {
            let body = body(m, route, b);
            if *m != Method::GET && *m != Method::DELETE && body.is_none() {
                uncovered.push(format!("{m} {route} (no body in the table)"));
                continue;
            }
            for s in &subs {
                let uri = format!("{}{}", fill(route, s), query(route));
                // The same request for a record that does not exist: B's must look the same.
                let ghost: Vec<(&str, String)> = s
                    .iter()
                    .map(|(k, v)| (*k, if *v == b.shared_document { v.clone() } else { uuid_like_of(v) }))
                    .collect();
                let ghost_uri = format!("{}{}", fill(route, &ghost), query(route));
                let before = audit_head(app).await;
                let (status, v) = app.call(m.clone(), &uri, Some(token), body.clone()).await;
                sent += 1;
                assert!(
                    status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
                    "{attacker}: {m} {uri} → {status} (B's record must be refused): {v}"
                );
                // Audited: denied, the actor named, the target (B's id) named.
                let records = audit_since(app, before).await;
                let ids: Vec<&String> = s.iter().map(|(_, v)| v).collect();
                let found = records.iter().any(|(actor, _, _, target, outcome, detail)| {
                    actor == attacker
                        && outcome == "denied"
                        && ids.iter().any(|id| target.contains(id.as_str()) || detail.contains(id.as_str()))
                });
                assert!(found, "{attacker}: {m} {uri} → {status} was not audited as denied: {records:?}");
                let (gs, gv) = app.call(m.clone(), &ghost_uri, Some(token), body.clone()).await;
                assert_eq!(
                    (status, v["code"].as_str()),
                    (gs, gv["code"].as_str()),
                    "{attacker}: {m} {uri} answers otherwise than for a record that does not exist ({ghost_uri}): \
                     {v} vs {gv}"
                );
            }
        }
    }
    assert!(uncovered.is_empty(), "routes with ids the cross-organisation table does not cover: {uncovered:#?}");
    sent
}

/// A fresh id of the same shape as `like` (a UUID for UUIDs).
fn uuid_like_of(like: &str) -> String {
    if uuid::Uuid::parse_str(like).is_ok() { uuid_like() } else { format!("{like}x") }
}

fn uuid_like() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn no_route_reaches_another_enterprises_records(app: TestApp) {
    let b = b_records(&app).await;
    let routes = routes(&app).await;
    let b_token = app.login(B_OP).await;
    let b_before = b_view(&app, &b_token, &routes, &b).await;
    let digest_before = tables_digest(&app).await;

    // A's operator, by session and by a read-write token of theirs; staff of other domains.
    let a = app.login(A_OP).await;
    let (s, t) = app.post("/api/tokens", &a, json!({"name": "A's script", "scope": "read_write"})).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let a_token = t["token"].as_str().unwrap().to_string();
    let mut attackers = vec![(A_OP, a.clone()), (A_OP, a_token)];
    for other in ["coach.zhou", "dr.wu", "wjw.chen"] {
        attackers.push((other, app.login(other).await));
    }
    // The logins and the token above changed rows of their own: take the digest again.
    let digest_before = {
        let mut d = tables_digest(&app).await;
        d.retain(|k, _| digest_before.contains_key(k));
        d
    };
    let mut sent = 0;
    for (name, token) in &attackers {
        sent += attack(&app, name, token, &b, &routes).await;
    }
    assert!(sent > 100, "sent {sent}");

    // B's records read the same as before, and nothing else changed either.
    assert_eq!(b_view(&app, &b_token, &routes, &b).await, b_before, "B's records changed");
    let digest_after = tables_digest(&app).await;
    for (t, d) in &digest_before {
        assert_eq!(Some(d), digest_after.get(t), "table {t} changed while B's records were attacked");
    }
    // B's token still works (nobody revoked it).
    let (s, _) = app.get("/api/transport/vehicles", &b.token).await;
    assert_eq!(s, StatusCode::OK);

    // Shared configuration: an operator reads the rule sets' versions without B's overrides.
    for route in NOT_ORGANISATION_OWNED {
        assert!(routes.iter().any(|(r, _)| r == route), "{route} is gone: update the list");
    }
    for uri in ["/api/transport/rules/versions/1", "/api/transport/rules/versions/2", "/api/iot/rules/versions/1"] {
        let (s, v) = app.get(uri, &a).await;
        assert!(s == StatusCode::OK || s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND, "{uri} {s} {v}");
        assert!(!v.to_string().contains(&b.org), "{uri} shows B: {v}");
    }
    let (s, v) = app
        .call(
            Method::PUT,
            "/api/supervision/archives/kinds/driver_safety_education",
            Some(&a),
            Some(json!({"name": "改", "name_en": "x", "active": false})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an enterprise keeps no archive kinds: {v}");
}

/// What a list filtered by one of B's ids must answer to A.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// An organisation outside the caller's scope: refused (403), audited.
    Forbidden,
    /// Another organisation's record: the answer for a record that does not exist (refusing it
    /// would confirm that it exists), holding none of B's records.
    AsIfAbsent,
}

/// Query parameters that name an organisation or another organisation's record, by list route,
/// with B's id to fill in.
fn b_filters(route: &str, param: &str, b: &BRecords) -> Option<(String, Expect)> {
    match param {
        // The booking directory is public: naming an institution filters it, and B, a bus
        // company, publishes no schedule.
        "org_id" if route == "/api/health/schedules" || route == "/api/health/slots" => {
            Some((b.org.clone(), Expect::AsIfAbsent))
        }
        "org_id" | "enterprise" | "parent_id" => Some((b.org.clone(), Expect::Forbidden)),
        "user_id" => Some((b.user.clone(), Expect::Forbidden)),
        "vehicle_id" => Some((b.vehicle.clone(), Expect::AsIfAbsent)),
        "subject_id" if route.starts_with("/api/alarms") => Some((b.vehicle.clone(), Expect::AsIfAbsent)),
        "subject_id" if route.starts_with("/api/supervision/penalties") => {
            Some((b.vehicle.clone(), Expect::AsIfAbsent))
        }
        "patient_id" if route.starts_with("/api/health/") => Some((b.patient.clone(), Expect::AsIfAbsent)),
        "team_id" if route.starts_with("/api/health/") => Some((b.team.clone(), Expect::AsIfAbsent)),
        _ => None,
    }
}

/// Query parameters that are no organisation's id.
const PLAIN_PARAMS: &[&str] = &[
    "limit",
    "box",
    "since",
    "on",
    "township",
    "offset",
    "q",
    "class",
    "plate",
    "bound",
    "phone",
    "online",
    "bbox",
    "status",
    "min_severity",
    "domain",
    "kind",
    "supervised",
    "from",
    "to",
    "format",
    "month",
    "year",
    "state",
    "condition",
    // The booking directory's (public) schedules and their slots.
    "schedule_id",
    "department",
    "day",
    "free",
    // A test's LOINC code (result mutual recognition).
    "code",
    "level",
    "overdue",
    "inbox",
    "pending",
    "within_days",
    "expired",
    "expiring_within_days",
    "role",
    "subject_type",
    "open",
    "locked",
    "reveal",
    "action",
    "actor",
    "outcome",
    "target_kind",
    "target_id",
    "date",
    "period",
    "metric",
    "max_points",
    "stop_minutes",
    "all",
    "mode",
    "dry_run",
];

/// Values for required query parameters.
fn required_value(param: &str) -> &'static str {
    match param {
        "from" => "2026-01-01T00:00:00Z",
        "to" => "2026-01-02T00:00:00Z",
        "month" => "2026-01",
        "date" => "2026-01-01",
        _ => "x",
    }
}

async fn filters_naming_another_enterprise_are_refused_and_lists_hold_none_of_its_records(app: TestApp) {
    let b = b_records(&app).await;
    let a = app.login(A_OP).await;
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    let mut refused = 0;
    let mut unknown = BTreeSet::new();
    for (route, item) in doc["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        if route.contains('{') || route.ends_with("/stream") || route == "/api/openapi.json" {
            // Id routes are the other test's; WebSockets need a real socket (transport's and
            // alarms' own tests check their scope).
            continue;
        }
        let params: Vec<(String, bool)> = get["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| (p["name"].as_str().unwrap().to_string(), p["required"].as_bool().unwrap_or(false)))
                    .collect()
            })
            .unwrap_or_default();
        let mut required: String =
            params.iter().filter(|(_, r)| *r).map(|(n, _)| format!("&{n}={}", required_value(n))).collect();
        if route == "/api/supervision/archives/board" {
            // Required, though the document does not say so.
            required.push_str(&format!("&month={}", &today()[..7]));
        }
        // Unfiltered: none of B's records.
        let uri = format!("{route}?{}", required.trim_start_matches('&'));
        let (s, v) = app.get(&uri, &a).await;
        assert!(!s.is_server_error(), "{uri} {s} {v}");
        if s == StatusCode::OK {
            let text = v.to_string();
            for id in b.all() {
                assert!(!text.contains(id), "{uri} shows B's record {id}: {v}");
            }
            assert!(!text.contains(&b.org), "{uri} shows B's organisation: {v}");
        }
        // Filtered by B: refused.
        for (p, _) in &params {
            match b_filters(route, p, &b) {
                Some((id, Expect::Forbidden)) => {
                    let before = audit_head(&app).await;
                    let uri = format!("{route}?{p}={id}{required}");
                    let (s, v) = app.get(&uri, &a).await;
                    assert_eq!(s, StatusCode::FORBIDDEN, "{uri}: {v}");
                    let recs = audit_since(&app, before).await;
                    assert!(
                        recs.iter().any(|r| r.0 == A_OP && r.4 == "denied"),
                        "{uri} refused but not audited: {recs:?}"
                    );
                    refused += 1;
                }
                Some((id, Expect::AsIfAbsent)) => {
                    let uri = format!("{route}?{p}={id}{required}");
                    let (s, v) = app.get(&uri, &a).await;
                    let (gs, gv) = app.get(&format!("{route}?{p}={}{required}", uuid_like()), &a).await;
                    assert_eq!(
                        (s, &v["total"], v["code"].as_str()),
                        (gs, &gv["total"], gv["code"].as_str()),
                        "{uri}: {v}"
                    );
                    for id in b.all() {
                        assert!(!v.to_string().contains(id), "{uri} shows B's record {id}: {v}");
                    }
                }
                None if PLAIN_PARAMS.contains(&p.as_str()) => {}
                None => {
                    unknown.insert(format!("{route} ?{p}"));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "query parameters neither known as plain nor mapped to B's ids: {unknown:#?}");
    assert!(refused >= 10, "only {refused} filters tried");
}

async fn tokens_cannot_exceed_their_scope(app: TestApp) {
    let b = b_records(&app).await;
    let a = app.login(A_OP).await;
    let (s, v) = app.post("/api/tokens", &a, json!({"name": "A reads", "scope": "read"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let read = v["token"].as_str().unwrap().to_string();
    let read_id = v["info"]["id"].as_str().unwrap().to_string();
    let (_, v) = app.post("/api/tokens", &a, json!({"name": "A writes", "scope": "read_write"})).await;
    let rw = v["token"].as_str().unwrap().to_string();

    // The read token reads A's records through every module.
    for uri in [
        "/api/transport/vehicles",
        "/api/alarms",
        "/api/iot/devices",
        "/api/supervision/practitioners",
        "/api/supervision/hazards",
    ] {
        let (s, v) = app.get(uri, &read).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    }
    // …and writes nowhere: every write route of the document refuses it, audited.
    let digest = tables_digest(&app).await;
    let mut n = 0;
    for (route, methods) in routes(&app).await {
        for m in methods {
            if m == Method::GET || route == "/api/auth/login" || route == "/api/iot/ingest" {
                // Login takes no credential; ingest takes the device's (HTTP Basic).
                continue;
            }
            let uri =
                route.replace("{id}", &uuid_like()).replace("{org_id}", &b.org).replace("{vehicle_id}", &b.vehicle);
            let uri = uri.replace("{code}", "driver_safety_education").replace("{version}", "1");
            let before = audit_head(&app).await;
            let (s, v) = app.call(m.clone(), &uri, Some(&read), Some(json!({}))).await;
            assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("token_scope")), "{m} {uri}: {v}");
            let recs = audit_since(&app, before).await;
            assert!(recs.iter().any(|r| r.0 == A_OP && r.4 == "denied"), "{m} {uri} not audited: {recs:?}");
            n += 1;
        }
    }
    assert!(n > 40, "{n} write routes");
    let mut after = tables_digest(&app).await;
    after.retain(|k, _| digest.contains_key(k));
    assert_eq!(after, digest, "a read token changed data");

    // No token mints a token, neither wider nor equal.
    for (t, code) in [(&read, "token_scope"), (&rw, "forbidden")] {
        let (s, v) = app.post("/api/tokens", t, json!({"name": "wider", "scope": "read_write"})).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some(code)), "{v}");
    }
    // A token of A's operator reads none of B's records, even with a write scope.
    for uri in [
        format!("/api/transport/vehicles/{}", b.vehicle),
        format!("/api/supervision/practitioners/{}", b.practitioner),
        format!("/api/iot/devices/{}", b.device),
        format!("/api/alarms/{}", b.alarm),
    ] {
        for t in [&read, &rw] {
            assert_eq!(app.get(&uri, t).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
    }
    // A token cannot revoke another user's token; its owner's session can revoke it, and then
    // it is refused everywhere.
    let (s, _) = app.call(Method::DELETE, &format!("/api/tokens/{}", b.token_id), Some(&rw), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::DELETE, &format!("/api/tokens/{read_id}"), Some(&a), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for uri in ["/api/transport/vehicles", "/api/alarms", "/api/iot/devices", "/api/supervision/hazards"] {
        let (s, v) = app.get(uri, &read).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")), "{uri}: {v}");
    }
    // A token dies with its user's lock: the security administrator locks A's operator.
    let sec = app.login("secadmin").await;
    let (s, _) = app.post(&format!("/api/users/{}/lock", app.user_id(A_OP).await), &sec, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get("/api/transport/vehicles", &rw).await;
    assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN, "{s}");
}

async fn brute_force_locks_out_and_unknown_users_look_like_known_ones(app: TestApp) {
    let login = |user: &'static str, pw: &'static str| {
        let app = &app;
        async move {
            let (s, v) =
                app.call(Method::POST, "/api/auth/login", None, Some(json!({"username": user, "password": pw}))).await;
            (s, v["code"].as_str().unwrap_or("").to_string(), v["detail"].as_str().unwrap_or("").to_string())
        }
    };
    // Below the threshold (5), a known user and an unknown one get the same answer.
    for i in 0..4 {
        let known = login(B_OP, "Wrong-Password-1").await;
        let unknown = login("no.such.user", "Wrong-Password-1").await;
        assert_eq!(known.0, StatusCode::UNAUTHORIZED, "attempt {i}: {known:?}");
        assert_eq!(known, unknown, "attempt {i}: a known user's refusal differs from an unknown one's");
    }
    // The fifth locks the account out; an unknown name answers alike.
    let known = login(B_OP, "Wrong-Password-1").await;
    let unknown = login("no.such.user", "Wrong-Password-1").await;
    assert_eq!((known.0, known.1.as_str()), (StatusCode::FORBIDDEN, "account_locked"), "{known:?}");
    assert_eq!(known, unknown, "the lock-out tells a known user from an unknown one");
    // While locked out: even the right password is refused, and the two still look alike.
    let pw: &'static str = Box::leak(app.password(B_OP).into_boxed_str());
    let (s, code, _) = login(B_OP, pw).await;
    assert_eq!((s, code.as_str()), (StatusCode::FORBIDDEN, "account_locked"));
    let known = login(B_OP, "Wrong-Password-1").await;
    let unknown = login("no.such.user", "Wrong-Password-1").await;
    assert_eq!(known.1, unknown.1, "{known:?} vs {unknown:?}");
    assert_eq!(known.0, unknown.0);

    // An account locked by an administrator is not told from an unknown one without its
    // password either.
    let sec = app.login("secadmin").await;
    let (s, _) = app.post(&format!("/api/users/{}/lock", app.user_id("coach.zhou").await), &sec, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let known = login("coach.zhou", "Wrong-Password-1").await;
    let unknown = login("no.such.user.2", "Wrong-Password-1").await;
    assert_eq!(known, unknown, "an administrator's lock shows without the password");

    // The failures and the lock-out are in the audit log, with the attempted name for unknown
    // users.
    let aud = app.login("auditor").await;
    let (_, v) = app.get(&format!("/api/audit?action=login&actor={B_OP}&limit=100"), &aud).await;
    let recs = v["items"].as_array().unwrap();
    assert!(recs.iter().filter(|r| r["outcome"] == "failure").count() >= 5, "{v}");
    assert!(recs.iter().any(|r| r["detail"]["locked"] == true), "the lock-out is not audited: {v}");
    assert!(recs.iter().any(|r| r["outcome"] == "denied"), "refusals while locked out are not audited: {v}");
    let (_, v) = app.get("/api/audit?action=login&actor=no.such.user&limit=100", &aud).await;
    assert!(v["total"].as_i64().unwrap() >= 6, "{v}");
}

async fn bodies_naming_another_enterprises_records_are_refused(app: TestApp) {
    let b = b_records(&app).await;
    let a = app.login(A_OP).await;
    let own = |uri: &'static str| {
        let a = a.clone();
        let app = &app;
        async move {
            let (s, v) = app.get(uri, &a).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
            first_id(&v, uri)
        }
    };
    let terminal = own("/api/transport/terminals?limit=1").await;
    let practitioner = own("/api/supervision/practitioners?limit=1").await;
    let digest = tables_digest(&app).await;
    let cases = [
        (
            Method::POST,
            format!("/api/transport/terminals/{terminal}/bind"),
            json!({"vehicle_id": b.vehicle}),
            Some("vehicle_id"),
        ),
        (
            Method::PUT,
            format!("/api/supervision/practitioners/{practitioner}/vehicles"),
            json!({"vehicle_ids": [b.vehicle]}),
            Some("vehicle_ids"),
        ),
        (
            Method::POST,
            "/api/supervision/archives".into(),
            json!({"month": &today()[..7], "kind": "driver_safety_education", "file_id": b.file}),
            Some("file_id"),
        ),
        (
            Method::POST,
            format!("/api/supervision/documents/{}/reply", b.shared_document),
            json!({"note": "见附件", "files": [b.file]}),
            Some("files[0]"),
        ),
        (
            Method::POST,
            "/api/iot/devices".into(),
            json!({"org_id": b.org, "code": "A-INTO-B", "kind": "probe", "name": "n", "subject_type": "other"}),
            Some("org_id"),
        ),
        (
            Method::POST,
            "/api/transport/vehicles".into(),
            json!({"org_id": b.org, "plate": "津C9X001", "plate_colour": "yellow", "class": "city_bus"}),
            Some("org_id"),
        ),
        (Method::PATCH, format!("/api/users/{}", app.user_id(A_OP).await), json!({"org_id": b.org}), None),
    ];
    // Each refused for the field that names B's record (the operator's own user: for the role).
    for (m, uri, body, field) in cases {
        let (s, v) = app.call(m.clone(), &uri, Some(&a), Some(body)).await;
        assert!(s.is_client_error(), "{m} {uri} with B's record in the body → {s}: {v}");
        assert_eq!(v["field"].as_str(), field, "{m} {uri}: {v}");
    }
    let mut after = tables_digest(&app).await;
    after.retain(|k, _| digest.contains_key(k));
    assert_eq!(after, digest, "a request naming B's records changed data");
    // B's file is not A's now by way of an attachment.
    assert_eq!(app.get(&format!("/api/files/{}", b.file), &a).await.0, StatusCode::NOT_FOUND);
}
