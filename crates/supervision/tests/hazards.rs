//! Hazard rectification (隐患整改) through the HTTP API on both backends (PostgreSQL when
//! `WUQING_TEST_PG` names a server): the bureau records and notifies, the enterprise reports
//! with evidence, the bureau returns and passes; refusals by role, organisation, state and
//! deadline; the history and the audit records; overdue escalation with an injected day; a
//! hazard found from an alarm; and the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::{PDF, app};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{date_of, today_days};

both_backends!(
    issue_7_a_hazard_goes_from_notice_to_rectification_to_review,
    issue_7_overdue_hazards_escalate_once_per_deadline,
    issue_7_a_hazard_found_from_an_alarm_takes_its_enterprise_and_vehicle,
);

const URL: &str = "/api/supervision/hazards";

async fn post(app: &TestApp, token: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, uri, Some(token), Some(body)).await
}

async fn first_vehicle(app: &TestApp, token: &str) -> String {
    let (s, v) = app.get("/api/transport/vehicles?limit=1", token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"][0]["id"].as_str().unwrap().to_string()
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().unwrap()
}

fn find(list: &Value, id: &str) -> Option<Value> {
    items(list).iter().find(|h| h["id"] == id).cloned()
}

fn actions(h: &Value) -> Vec<&str> {
    h["history"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect()
}

async fn issue_7_a_hazard_goes_from_notice_to_rectification_to_review(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let other = app.login("shunda.zhao").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let vehicle = first_vehicle(&app, &bus).await;
    let tomorrow = date_of(today_days() + 1);
    let in_a_week = date_of(today_days() + 7);

    // The inspector's photo, the bureau's own file.
    let (s, photo) = app.upload(&reg, "现场检查照片.pdf", "application/pdf", PDF).await;
    assert_eq!(s, StatusCode::CREATED, "{photo}");
    let photo = photo["id"].as_str().unwrap().to_string();

    // Only the bureau records hazards, for its own enterprises, with its checks.
    let new = json!({"org_id": bus_org, "vehicle_id": vehicle, "title": "灭火器过期", "level": "general",
        "description": "车内灭火器超过有效期。", "files": [photo]});
    let (s, v) = post(&app, &bus, URL, new.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = post(&app, &app.login("dr.wu").await, URL, new.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut bad = new.clone();
    bad["vehicle_id"] = json!(first_vehicle(&app, &other).await);
    let (s, v) = post(&app, &reg, URL, bad).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("vehicle_id")), "{v}");
    let mut bad = new.clone();
    bad["org_id"] = json!(app.org_id("transport_bureau").await);
    let (s, v) = post(&app, &reg, URL, bad).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("org_id")), "{v}");
    let mut bad = new.clone();
    bad["found_on"] = json!(tomorrow);
    let (s, v) = post(&app, &reg, URL, bad).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("found_on")), "{v}");

    let (s, h) = post(&app, &reg, URL, new).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let id = h["id"].as_str().unwrap().to_string();
    assert_eq!(h["state"], "found");
    assert!(h["number"].as_str().unwrap().starts_with("YH-"), "{h}");
    assert_eq!(h["awaits_you"], true, "the bureau has to notify it");
    let url = format!("{URL}/{id}");

    // Found, the enterprise has nothing to do yet and does not even see it (the bureau's working
    // record until the notice); the notice needs a deadline ahead.
    let (s, _) = app.get(&url, &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not before the notice");
    let (_, all) = app.get(URL, &bus).await;
    assert!(find(&all, &id).is_none() && items(&all).iter().all(|h| h["deadline"].is_string()), "{all}");
    // (The demo bureau has hazards of its own: look for this one.)
    let (_, inbox) = app.get(&format!("{URL}?inbox=true"), &bus).await;
    assert!(find(&inbox, &id).is_none(), "{inbox}");
    let (s, v) = post(&app, &reg, &format!("{url}/notify"), json!({})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deadline")), "{v}");
    let (s, v) = post(&app, &reg, &format!("{url}/notify"), json!({"deadline": date_of(today_days() - 1)})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deadline")), "past: {v}");
    let (s, v) = post(&app, &bus, &format!("{url}/notify"), json!({"deadline": in_a_week})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not the enterprise's to see yet: {v}");
    let (s, h) =
        post(&app, &reg, &format!("{url}/notify"), json!({"deadline": in_a_week, "note": "请于期限内整改"})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(
        (h["state"].as_str(), h["days_left"].as_i64(), h["overdue"].as_bool()),
        (Some("notified"), Some(7), Some(false))
    );
    let (s, v) = post(&app, &reg, &format!("{url}/notify"), json!({"deadline": in_a_week})).await;
    assert_eq!(s, StatusCode::CONFLICT, "notified twice: {v}");
    let (s, v) = post(&app, &bus, &format!("{url}/notify"), json!({"deadline": in_a_week})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the bureau notifies: {v}");

    // The enterprise sees it in its inbox and reads the inspector's photo, shared with it;
    // another enterprise sees nothing of it.
    let (_, inbox) = app.get(&format!("{URL}?inbox=true"), &bus).await;
    assert!(find(&inbox, &id).is_some(), "{inbox}");
    let (s, _) = app.call_raw(Method::GET, &format!("/api/files/{photo}/content"), Some(&bus), None, None).await;
    assert_eq!(s, StatusCode::OK, "the notice's evidence is shared with the enterprise");
    let (s, _) = app.call_raw(Method::GET, &format!("/api/files/{photo}/content"), Some(&other), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "and with no one else");
    let (s, _) = app.get(&url, &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = app.get(URL, &other).await;
    assert!(find(&list, &id).is_none() && items(&list).iter().all(|h| h["org_id"] != bus_org.as_str()), "{list}");
    let (s, _) = post(&app, &other, &format!("{url}/report"), json!({"note": "已整改"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The rectification report: a note is required, files must be the enterprise's own.
    let (s, v) = post(&app, &bus, &format!("{url}/report"), json!({"files": []})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) = post(&app, &bus, &format!("{url}/report"), json!({"note": "已更换", "files": [photo]})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("files")), "the bureau's file: {v}");
    let (_, theirs) = app.upload(&other, "别家.pdf", "application/pdf", PDF).await;
    let (s, v) =
        post(&app, &bus, &format!("{url}/report"), json!({"note": "已更换", "files": [theirs["id"].clone()]})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("files[0]")), "{v}");
    let (_, evidence) = app.upload(&bus, "整改照片.pdf", "application/pdf", PDF).await;
    let evidence = evidence["id"].as_str().unwrap().to_string();
    let (s, v) = post(&app, &reg, &format!("{url}/report"), json!({"note": "已更换"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the bureau does not report for the enterprise: {v}");
    let (s, h) =
        post(&app, &bus, &format!("{url}/report"), json!({"note": "已更换全部灭火器", "files": [evidence]})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!((h["state"].as_str(), h["reported_late"].as_bool()), (Some("reported"), Some(false)));
    let (s, _) = post(&app, &bus, &format!("{url}/report"), json!({"note": "再报一次"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "reported twice");

    // The bureau reviews: a return needs its reason; the enterprise cannot review.
    let (s, _) = post(&app, &bus, &format!("{url}/review"), json!({"decision": "pass"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&app, &reg, &format!("{url}/review"), json!({"decision": "return"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) = post(&app, &reg, &format!("{url}/review"), json!({"decision": "maybe"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, h) =
        post(&app, &reg, &format!("{url}/review"), json!({"decision": "return", "note": "照片看不清有效期"})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!((h["state"].as_str(), h["deadline"].as_str()), (Some("returned"), Some(in_a_week.as_str())));
    let (_, inbox) = app.get(&format!("{URL}?inbox=true"), &bus).await;
    assert!(find(&inbox, &id).is_some(), "back in the enterprise's inbox: {inbox}");
    let (s, _) = post(&app, &bus, &format!("{url}/report"), json!({"note": "补充清晰照片", "files": [evidence]})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, h) = post(&app, &reg, &format!("{url}/review"), json!({"decision": "pass", "note": "同意销号"})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["state"], "closed");
    assert!(h["closed_at"].is_string(), "{h}");
    let (s, _) = post(&app, &reg, &format!("{url}/withdraw"), json!({"note": "误录"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a closed hazard is not withdrawn");

    // The history tells the whole story to both sides, with the files each may open.
    let (s, h) = app.get(&url, &bus).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(actions(&h), ["record", "notify", "report", "return", "report", "pass"], "{h}");
    let steps = h["history"].as_array().unwrap();
    assert_eq!(steps[0]["files"][0]["name"], "现场检查照片.pdf");
    assert_eq!(steps[2]["files"][0]["id"], evidence.as_str());
    assert_eq!(steps[2]["actor"], "bus.sun");
    assert_eq!(steps[3]["note"], "照片看不清有效期");
    assert_eq!(steps[1]["state"], "notified");

    // Withdrawal of a found hazard, with its reason.
    let (_, h2) = post(
        &app,
        &reg,
        URL,
        json!({"org_id": bus_org, "title": "误报", "description": "重复录入", "level": "general"}),
    )
    .await;
    let url2 = format!("{URL}/{}", h2["id"].as_str().unwrap());
    let (s, v) = post(&app, &reg, &format!("{url2}/withdraw"), json!({})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) = post(&app, &reg, &format!("{url2}/withdraw"), json!({"note": "重复录入"})).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("withdrawn")), "{v}");
    let aud = app.login("auditor").await;
    let (_, a) =
        app.get(&format!("/api/audit?action=hazard.withdraw&target_id={}", v["id"].as_str().unwrap()), &aud).await;
    assert_eq!(a["total"], 1, "{a}");

    // Filters.
    let (_, v) = app.get(&format!("{URL}?state=closed"), &reg).await;
    assert!(find(&v, &id).is_some() && items(&v).iter().all(|h| h["state"] == "closed"), "{v}");
    let (_, v) = app.get(&format!("{URL}?q=灭火器&org_id={bus_org}"), &reg).await;
    assert!(find(&v, &id).is_some(), "{v}");
    assert!(
        items(&v).iter().all(|h| h["title"].as_str().unwrap().contains("灭火器") && h["org_id"] == bus_org.as_str())
    );
    let (_, v) = app.get(&format!("{URL}?q=灭火器&org_id={}", app.org_id("shunda").await), &reg).await;
    assert!(find(&v, &id).is_none(), "{v}");
    let (s, v) = app.get(&format!("{URL}?state=lost"), &reg).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Every step is audited with who took it.
    for (action, actor, n) in [
        ("hazard.create", "jt.liu", 1),
        ("hazard.notify", "jt.liu", 1),
        ("hazard.report", "bus.sun", 2),
        ("hazard.return", "jt.liu", 1),
        ("hazard.pass", "jt.liu", 1),
        ("hazard.read", "bus.sun", 1),
    ] {
        let (_, v) = app.get(&format!("/api/audit?action={action}&actor={actor}&target_id={id}"), &aud).await;
        assert_eq!(v["total"], n, "{action}: {v}");
    }

    let tokens = [None, Some(reg), Some(bus)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

async fn issue_7_overdue_hazards_escalate_once_per_deadline(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let st = &app.platform.state;
    let today = today_days();
    let (s, h) = post(
        &app,
        &reg,
        URL,
        json!({"org_id": bus_org, "title": "动态监控人员不足", "description": "仅1名监控员。", "level": "major",
            "deadline": date_of(today)}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!(h["state"], "notified", "a deadline notifies at once");
    let id = h["id"].as_str().unwrap().to_string();

    // On the deadline itself nothing is overdue; the day after, it escalates once.
    assert_eq!(supervision::hazards::escalate(st, today).await.unwrap(), 0);
    assert_eq!(supervision::hazards::escalate(st, today + 1).await.unwrap(), 1);
    assert_eq!(supervision::hazards::escalate(st, today + 2).await.unwrap(), 0, "once per deadline");
    let (_, alarms) = app.get("/api/alarms?domain=supervision&kind=hazard_overdue&limit=200", &bus).await;
    let ours: Vec<&Value> = items(&alarms).iter().filter(|a| a["subject"]["id"] == id.as_str()).collect();
    assert_eq!(ours.len(), 1, "on the enterprise's desk, once: {alarms}");
    assert_eq!(ours[0]["severity"], "major", "a major hazard's escalation is major");
    let (_, h) = app.get(&format!("{URL}/{id}"), &reg).await;
    assert_eq!(h["escalations"], 1, "{h}");
    assert_eq!(actions(&h), ["record", "notify", "escalate"], "{h}");

    // Make the deadline yesterday (as if a day had passed): the hazard shows overdue, a report
    // is taken, marked late, and ends the alarm's condition.
    let mut tx = st.store.begin().await.unwrap();
    sqlx::query(&st.store.sql("UPDATE supervision_hazards SET deadline = $1, escalated_deadline = $1 WHERE id = $2"))
        .bind(date_of(today - 1))
        .bind(id.clone())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (_, overdue) = app.get(&format!("{URL}?overdue=true"), &reg).await;
    assert_eq!(find(&overdue, &id).expect("overdue")["days_left"], -1, "{overdue}");
    assert!(items(&overdue).iter().all(|h| h["overdue"] == true), "{overdue}");
    let (s, h) = post(&app, &bus, &format!("{URL}/{id}/report"), json!({"note": "已增配1名监控员"})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["reported_late"], true, "{h}");
    // A return must set a new deadline: the old one has passed.
    let (s, v) =
        post(&app, &reg, &format!("{URL}/{id}/review"), json!({"decision": "return", "note": "未见劳动合同"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("deadline")), "{v}");
    let (s, h) = post(
        &app,
        &reg,
        &format!("{URL}/{id}/review"),
        json!({"decision": "return", "note": "未见劳动合同", "deadline": date_of(today + 3)}),
    )
    .await;
    assert_eq!((s, h["days_left"].as_i64()), (StatusCode::OK, Some(3)), "{h}");
    // The new deadline is escalated afresh when it passes.
    assert_eq!(supervision::hazards::escalate(st, today + 4).await.unwrap(), 1);
    let (_, h) = app.get(&format!("{URL}/{id}"), &reg).await;
    assert_eq!(h["escalations"], 2, "{h}");
    let aud = app.login("auditor").await;
    let (_, v) = app.get(&format!("/api/audit?action=hazard.escalate&target_id={id}"), &aud).await;
    assert_eq!(v["total"], 2, "{v}");
}

async fn issue_7_a_hazard_found_from_an_alarm_takes_its_enterprise_and_vehicle(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let vehicle = first_vehicle(&app, &bus).await;
    let st = &app.platform.state;
    let now = kernel::store::now_ms();
    let (alarm, _) = alarms::service::raise(
        &st.store,
        &st.bus,
        &alarms::model::NewAlarm {
            domain: "transport".into(),
            kind: "overspeed".into(),
            severity: alarms::model::Severity::Major,
            subject_type: "vehicle".into(),
            subject_id: vehicle.clone(),
            subject_label: "津A".into(),
            org_id: bus_org.clone(),
            started_ms: now - 60_000,
            at_ms: now,
            rule_version: 1,
            details: json!({}),
            evidence: json!([]),
        },
    )
    .await
    .unwrap();
    let (s, h) = post(
        &app,
        &reg,
        URL,
        json!({"alarm_id": alarm.id, "title": "多次超速", "description": "一周内超速5次。", "level": "general",
            "deadline": date_of(today_days() + 10)}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_eq!((h["source"].as_str(), h["org_id"].as_str()), (Some("alarm"), Some(bus_org.as_str())));
    assert_eq!(h["vehicle_id"], vehicle.as_str());
    assert!(h["plate"].is_string(), "{h}");
    // The alarm's handling shows the hazard.
    let (_, a) = app.get(&format!("/api/alarms/{}", alarm.id), &reg).await;
    assert!(a.to_string().contains(h["number"].as_str().unwrap()), "{a}");
    // An alarm the caller cannot see is refused by field; a contradicting enterprise too.
    let (s, v) = post(
        &app,
        &reg,
        URL,
        json!({"alarm_id": "00000000-0000-7000-8000-000000000000", "title": "x", "description": "x", "level": "general"}),
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("alarm_id")), "{v}");
    let (s, v) = post(
        &app,
        &reg,
        URL,
        json!({"alarm_id": alarm.id, "org_id": app.org_id("shunda").await, "title": "x", "description": "x",
            "level": "general"}),
    )
    .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("org_id")), "{v}");
}
