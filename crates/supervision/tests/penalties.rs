//! Administrative penalties, accidents and complaints through the HTTP API on both backends
//! (PostgreSQL when `WUQING_TEST_PG` names a server): the decision's workflow (decided →
//! executed or revoked) with its history and shared scan, who records and who reads, the checks
//! by field, 409s for steps the state does not allow, audit, the credit's yearly records, and
//! the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::StatusCode;
use common::{app, upload_pdf};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{date_of, today_days};

both_backends!(
    penalties_are_decided_executed_revoked_scoped_and_audited,
    incidents_are_recorded_decided_once_and_counted_for_credit,
);

const URL: &str = "/api/supervision/penalties";
const INCIDENTS: &str = "/api/supervision/incidents";

fn in_days(n: i64) -> String {
    date_of(today_days() + n)
}

/// A vehicle of the enterprise.
async fn a_vehicle(app: &TestApp, token: &str, org: &str) -> String {
    let (s, v) = app.get(&format!("/api/supervision/vehicles?org_id={org}&limit=1"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"][0]["vehicle_id"].as_str().unwrap().to_string()
}

fn fine(org: &str, vehicle: &str, no: &str) -> Value {
    json!({
        "decision_no": no, "org_id": org, "subject_type": "vehicle", "subject_id": vehicle, "kind": "fine",
        "facts": "车辆未按规定安装使用卫星定位装置。", "legal_basis": "《道路运输车辆动态监督管理办法》第三十七条",
        "amount_fen": 300_000, "decided_on": in_days(0),
    })
}

/// Audit records of an action by an actor, read by the audit administrator (`aud`: logged in
/// once, as a second login would need the second factor).
async fn audit_count(app: &TestApp, aud: &str, action: &str, actor: &str) -> i64 {
    let (s, v) = app.get(&format!("/api/audit?action={action}&actor={actor}"), aud).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}

async fn penalties_are_decided_executed_revoked_scoped_and_audited(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let coach = app.login("coach.zhou").await;
    let bus = app.login("bus.sun").await;
    let (coach_org, taxi_org) = (app.org_id("jingjin_coach").await, app.org_id("yangcun_taxi").await);
    let vehicle = a_vehicle(&app, &reg, &coach_org).await;

    // The demo: an executed (paid) fine of the taxi company's, a warning of the coach company's.
    let (s, v) = app.get(URL, &reg).await;
    assert_eq!((s, v["total"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    let (_, paid) = app.get(&format!("{URL}?org_id={taxi_org}&kind=fine&state=executed"), &reg).await;
    assert_eq!(paid["total"], 1, "{paid}");
    assert_eq!(
        (paid["items"][0]["paid"].as_bool(), paid["items"][0]["amount_fen"].as_i64()),
        (Some(true), Some(200_000))
    );
    assert_eq!(paid["items"][0]["subject_type"], "vehicle");

    // Refusals by role: a clinician is refused everything; an operator records nothing.
    let doc = app.login("dr.wu").await;
    assert_eq!(app.get(URL, &doc).await.0, StatusCode::FORBIDDEN);
    let (s, v) = app.post(URL, &doc, fine(&coach_org, &vehicle, "T-1")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = app.post(URL, &coach, fine(&coach_org, &vehicle, "T-1")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Bad input names the field.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("kind", json!("warning"), "amount_fen"),
        ("amount_fen", Value::Null, "amount_fen"),
        ("amount_fen", json!(0), "amount_fen"),
        ("amount_fen", json!(10_000_000_001_i64), "amount_fen"),
        ("decided_on", json!(in_days(1)), "decided_on"),
        ("decided_on", json!("2026-02-30"), "decided_on"),
        ("kind", json!("caning"), "kind"),
        ("subject_type", json!("driver"), "subject_type"),
        ("subject_id", json!("00000000-0000-0000-0000-000000000000"), "subject_id"),
        ("org_id", json!(app.org_id("people_hospital").await), "org_id"),
        ("decision_no", json!(" "), "decision_no"),
        ("facts", json!(""), "facts"),
        ("legal_basis", json!("a\u{0007}b"), "legal_basis"),
    ];
    for (field, value, named) in cases {
        let mut p = fine(&coach_org, &vehicle, "T-BAD");
        p[field] = value.clone();
        let (s, v) = app.post(URL, &reg, p).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(named)), "{field}={value}: {v}");
    }
    // Another enterprise's vehicle is not this one's.
    let taxi_vehicle = a_vehicle(&app, &reg, &taxi_org).await;
    let (s, v) = app.post(URL, &reg, fine(&coach_org, &taxi_vehicle, "T-BAD")).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("subject_id")), "{v}");
    let mut p = fine(&coach_org, &vehicle, "T-BAD");
    p["colour"] = json!("red");
    assert!(app.post(URL, &reg, p).await.0.is_client_error(), "unknown fields are refused");

    // A fine with the decision's scan: 201, history with the file; the number is unique.
    let scan = upload_pdf(&app, &reg, "decision.pdf").await;
    let mut p = fine(&coach_org, &vehicle, "津武交罚〔2026〕T-0001号");
    p["files"] = json!([scan]);
    let (s, v) = app.post(URL, &reg, p.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["paid"].as_bool(), v["created_by"].as_str()),
        (Some("decided"), Some(false), Some("jt.liu"))
    );
    assert!(!v["subject_label"].as_str().unwrap().is_empty(), "the plate: {v}");
    assert_eq!(v["history"][0]["action"], "decide");
    assert_eq!(v["history"][0]["files"][0]["id"], scan.as_str());
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = app.post(URL, &reg, p).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("decision_no")), "{v}");

    // The coach company reads it, with the scan it was served; others do not find it.
    let (s, v) = app.get(&format!("{URL}/{id}"), &coach).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["history"][0]["files"][0]["id"], scan.as_str(), "the scan is shared with the enterprise: {v}");
    let (_, own) = app.get(URL, &coach).await;
    assert!(own["items"].as_array().unwrap().iter().all(|p| p["org_id"] == coach_org.as_str()), "{own}");
    assert_eq!(own["total"], 2, "{own}");
    assert_eq!(app.get(&format!("{URL}/{id}"), &bus).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{URL}?org_id={coach_org}"), &bus).await.0, StatusCode::FORBIDDEN);
    let (s, _) = app.post(&format!("{URL}/{id}/execute"), &bus, json!({"executed_on": in_days(0)})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The enterprise itself does not record its own execution.
    let (s, _) = app.post(&format!("{URL}/{id}/execute"), &coach, json!({"executed_on": in_days(0)})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Execution: not before the decision, not in the future; then paid.
    let (s, v) = app.post(&format!("{URL}/{id}/execute"), &reg, json!({"executed_on": in_days(-1)})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("executed_on")), "{v}");
    let (s, v) = app.post(&format!("{URL}/{id}/execute"), &reg, json!({"executed_on": in_days(1)})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("executed_on")), "{v}");
    let (s, v) =
        app.post(&format!("{URL}/{id}/execute"), &reg, json!({"executed_on": in_days(0), "note": "已缴清"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["state"].as_str(), v["paid"].as_bool()), (Some("executed"), Some(true)));
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    let (s, _) = app.post(&format!("{URL}/{id}/execute"), &reg, json!({"executed_on": in_days(0)})).await;
    assert_eq!(s, StatusCode::CONFLICT, "executed once");

    // Revoked after reconsideration: a reason is required; then it is final.
    let (s, v) = app.post(&format!("{URL}/{id}/revoke"), &reg, json!({"reason": " "})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{v}");
    let (s, v) = app.post(&format!("{URL}/{id}/revoke"), &reg, json!({"reason": "经行政复议撤销"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["state"].as_str(), v["revoke_reason"].as_str()), (Some("revoked"), Some("经行政复议撤销")));
    let (s, v) = app.post(&format!("{URL}/{id}/execute"), &reg, json!({"executed_on": in_days(0)})).await;
    assert_eq!(s, StatusCode::CONFLICT, "executing a revoked decision: {v}");
    let (s, _) = app.post(&format!("{URL}/{id}/revoke"), &reg, json!({"reason": "again"})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A warning on the enterprise itself: no amount; filters by subject, kind, state and year.
    let warning = json!({
        "decision_no": "津武交罚〔2026〕T-0002号", "org_id": coach_org, "subject_type": "enterprise", "kind": "warning",
        "facts": "监控人员配备不足。", "legal_basis": "《道路运输车辆动态监督管理办法》第三十六条", "decided_on": in_days(0),
    });
    let (s, v) = app.post(URL, &reg, warning).await;
    assert_eq!((s, v["subject_id"].as_str()), (StatusCode::CREATED, Some(coach_org.as_str())), "{v}");
    let (_, v) = app.get(&format!("{URL}?subject_id={vehicle}"), &reg).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get(&format!("{URL}?org_id={coach_org}&state=revoked"), &reg).await;
    assert_eq!(v["total"], 1, "{v}");
    let year: i32 = in_days(0)[..4].parse().unwrap();
    let (_, v) = app.get(&format!("{URL}?year={}", year + 1), &reg).await;
    assert_eq!(v["total"], 0, "{v}");
    let (s, v) = app.get(&format!("{URL}?year=20260"), &reg).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("year")), "{v}");

    // The credit's view of the year: the revoked fine is there, marked revoked.
    let st = app.platform.state.clone();
    let recs = supervision::penalties::for_year(&st, std::slice::from_ref(&coach_org), year).await.unwrap();
    let revoked = recs.iter().find(|r| r.id == id).expect("the revoked fine is listed");
    assert_eq!((revoked.state, revoked.amount_fen), (supervision::penalties::State::Revoked, Some(300_000)));
    assert!(recs.iter().all(|r| r.org_id == coach_org));
    assert!(supervision::penalties::for_year(&st, &[], year).await.unwrap().is_empty());

    // Every write and the read are in the audit log, with the actor.
    let aud = app.login("auditor").await;
    assert_eq!(audit_count(&app, &aud, "penalty.create", "jt.liu").await, 2);
    assert_eq!(audit_count(&app, &aud, "penalty.execute", "jt.liu").await, 1);
    assert_eq!(audit_count(&app, &aud, "penalty.revoke", "jt.liu").await, 1);
    assert_eq!(audit_count(&app, &aud, "penalty.read", "coach.zhou").await, 1);

    let tokens = [None, Some(reg), Some(coach)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

async fn incidents_are_recorded_decided_once_and_counted_for_credit(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let shunda = app.login("shunda.zhao").await;
    let (bus_org, taxi_org) = (app.org_id("wuqing_bus").await, app.org_id("yangcun_taxi").await);
    let vehicle = a_vehicle(&app, &reg, &bus_org).await;

    // The demo: the taxi's at-fault minor accident and the bus company's substantiated complaint.
    let (_, v) = app.get(&format!("{INCIDENTS}?kind=accident"), &reg).await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(
        (v["items"][0]["org_id"].as_str(), v["items"][0]["at_fault"].as_bool()),
        (Some(taxi_org.as_str()), Some(true))
    );
    assert_eq!(v["items"][0]["severity"], "minor");

    let accident = json!({
        "kind": "accident", "org_id": bus_org, "vehicle_id": vehicle, "occurred_on": in_days(-2),
        "description": "公交车进站时与非机动车剐蹭。", "severity": "major", "deaths": 0, "injuries": 2, "at_fault": false,
    });
    // Refusals: clinician, operator; bad input by field.
    let doc = app.login("dr.wu").await;
    assert_eq!(app.post(INCIDENTS, &doc, accident.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post(INCIDENTS, &bus, accident.clone()).await.0, StatusCode::FORBIDDEN);
    for (field, value, named) in [
        ("severity", Value::Null, "severity"),
        ("severity", json!("apocalyptic"), "severity"),
        ("at_fault", Value::Null, "at_fault"),
        ("deaths", json!(-1), "deaths"),
        ("occurred_on", json!(in_days(1)), "occurred_on"),
        ("kind", json!("rumour"), "kind"),
        ("description", json!(" "), "description"),
    ] {
        let mut p = accident.clone();
        p[field] = value.clone();
        let (s, v) = app.post(INCIDENTS, &reg, p).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(named)), "{field}={value}: {v}");
    }
    let (s, v) = app.post(INCIDENTS, &reg, accident.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!((v["injuries"].as_i64(), v["at_fault"].as_bool(), v["plate"].is_string()), (Some(2), Some(false), true));
    let accident_id = v["id"].as_str().unwrap().to_string();

    // A complaint carries no accident figures; it is decided once.
    let complaint = json!({
        "kind": "complaint", "org_id": bus_org, "occurred_on": in_days(-1), "description": "司机服务态度差。",
    });
    let mut p = complaint.clone();
    p["severity"] = json!("minor");
    let (s, v) = app.post(INCIDENTS, &reg, p).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("severity")), "{v}");
    let (s, v) = app.post(INCIDENTS, &reg, complaint).await;
    assert_eq!((s, v["substantiated"].clone()), (StatusCode::CREATED, Value::Null), "{v}");
    let cid = v["id"].as_str().unwrap().to_string();
    let (_, open) = app.get(&format!("{INCIDENTS}?open=true"), &reg).await;
    assert_eq!(open["total"], 1, "{open}");
    // The enterprise reads it but does not decide; another enterprise does not find it.
    assert_eq!(app.get(&format!("{INCIDENTS}/{cid}"), &bus).await.0, StatusCode::OK);
    let (s, _) = app.post(&format!("{INCIDENTS}/{cid}/decide"), &bus, json!({"substantiated": false})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("{INCIDENTS}/{cid}"), &shunda).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app.post(&format!("{INCIDENTS}/{cid}/decide"), &shunda, json!({"substantiated": true})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) =
        app.post(&format!("{INCIDENTS}/{cid}/decide"), &reg, json!({"substantiated": false, "note": "无证据"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["substantiated"].as_bool(), v["history"].as_array().unwrap().len()), (Some(false), 2));
    let (s, v) = app.post(&format!("{INCIDENTS}/{cid}/decide"), &reg, json!({"substantiated": true})).await;
    assert_eq!(s, StatusCode::CONFLICT, "decided twice: {v}");
    let (s, _) = app.post(&format!("{INCIDENTS}/{accident_id}/decide"), &reg, json!({"substantiated": true})).await;
    assert_eq!(s, StatusCode::CONFLICT, "an accident is not decided");

    // The credit's year: the demo's substantiated complaint, the new accident and the
    // unsubstantiated complaint, told apart.
    let st = app.platform.state.clone();
    let year: i32 = in_days(-2)[..4].parse().unwrap();
    let recs = supervision::incidents::for_year(&st, std::slice::from_ref(&bus_org), year).await.unwrap();
    let this_year = |d: &str| d.starts_with(&year.to_string());
    let expected = [in_days(-15), in_days(-2), in_days(-1)].iter().filter(|d| this_year(d)).count();
    assert_eq!(recs.len(), expected, "{recs:?}");
    let c = recs.iter().find(|r| r.id == cid).unwrap();
    assert_eq!(c.substantiated, Some(false));
    let a = recs.iter().find(|r| r.id == accident_id).unwrap();
    assert_eq!(
        (a.severity, a.at_fault, a.deaths),
        (Some(supervision::incidents::Severity::Major), Some(false), Some(0))
    );

    let aud = app.login("auditor").await;
    assert_eq!(audit_count(&app, &aud, "incident.create", "jt.liu").await, 2);
    assert_eq!(audit_count(&app, &aud, "incident.decide", "jt.liu").await, 1);

    let tokens = [None, Some(reg), Some(bus)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}
