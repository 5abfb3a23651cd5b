//! Practitioners (issue 7) through the HTTP API on both backends (PostgreSQL when
//! `WUQING_TEST_PG` names a server): citizen ID checks and masking, duplicates by blind index,
//! who sees and keeps which, the expiring filter, vehicle links of the same enterprise only,
//! audit without the ID, and the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::app;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};

both_backends!(practitioners_are_checked_masked_and_unique, practitioners_are_scoped_filtered_linked_and_audited);

const URL: &str = "/api/supervision/practitioners";
/// An invented citizen ID of Wuqing (120114) with a correct check character.
const ID: &str = "12011419850315101X";
/// The same with the check character wrong.
const BAD_ID: &str = "120114198503151011";

fn driver(citizen_id: &str, days: i64) -> Value {
    json!({
        "name": "测试 司机", "role": "driver", "citizen_id": citizen_id,
        "qualification_type": "道路危险货物运输驾驶员", "qualification_valid_until": in_days(days),
        "licence_class": "a2", "licence_valid_until": "2031-05-01",
    })
}

/// A date `days` from today (Beijing), `YYYY-MM-DD`.
fn in_days(days: i64) -> String {
    let today = (kernel::store::now_ms() + 8 * 3_600_000).div_euclid(86_400_000);
    kernel::store::ms_to_rfc3339((today + days) * 86_400_000)[..10].to_string()
}

async fn practitioners_are_checked_masked_and_unique(app: TestApp) {
    let op = app.login("shunda.zhao").await;

    // A wrong check character names the field; so do a missing ID, a qualification of another
    // role, a driver without licence, a bad date and an impossible licence class.
    let (s, v) = app.post(URL, &op, driver(BAD_ID, 100)).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("citizen_id")), "{v}");
    assert!(!v.to_string().contains(BAD_ID), "the refusal does not echo the ID: {v}");
    let mut p = driver(ID, 100);
    p.as_object_mut().unwrap().remove("citizen_id");
    let (s, v) = app.post(URL, &op, p).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("citizen_id")), "{v}");
    for (field, value, named) in [
        ("qualification_type", json!("道路危险货物运输押运人员"), "qualification_type"),
        ("qualification_type", json!("宇航员"), "qualification_type"),
        ("licence_class", Value::Null, "licence_class"),
        ("licence_class", json!("B3"), "licence_class"),
        ("qualification_valid_until", json!("2030-02-30"), "qualification_valid_until"),
        ("qualification_no", json!("110101199003071233"), "qualification_no"),
        ("name", json!(" "), "name"),
    ] {
        let mut p = driver(ID, 100);
        p[field] = value;
        let (s, v) = app.post(URL, &op, p).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(named)), "{field}: {v}");
    }
    let mut p = driver(ID, 100);
    p["colour"] = json!("red");
    let (s, _) = app.post(URL, &op, p).await;
    assert!(s.is_client_error(), "unknown fields are refused");

    // A valid one: 201, the ID masked everywhere, days left computed, the licence class tidied.
    let mut p = driver(&ID.to_lowercase(), 100);
    p["qualification_no"] = json!(ID);
    let (s, v) = app.post(URL, &op, p).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["citizen_id"], "120114********101X", "{v}");
    assert_eq!(v["qualification_no"], "120114********101X", "the certificate number is the ID: {v}");
    assert_eq!(v["qualification_days_left"], 100);
    assert_eq!(v["licence_class"], "A2");
    assert!(v["licence_days_left"].as_i64().unwrap() > 1000);
    assert_eq!(v["org_id"], app.org_id("shunda").await);
    assert!(!v.to_string().contains(ID));
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(&id[14..15], "7", "a UUIDv7: {id}");

    // The same person again in the same enterprise: 409 on the ID, whatever the spelling.
    let (s, v) = app.post(URL, &op, driver(&ID.to_lowercase(), 10)).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("citizen_id")), "{v}");
    // The same person at another enterprise is another employment.
    let bus = app.login("bus.sun").await;
    let mut p = driver(ID, 100);
    p["qualification_type"] = json!("城市公共汽车驾驶员");
    p["licence_class"] = json!("A3");
    let (s, v) = app.post(URL, &bus, p).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // An update keeps the stored ID when none is sent; a changed ID that collides is a 409.
    let mut p = driver(ID, 40);
    p.as_object_mut().unwrap().remove("citizen_id");
    p["name"] = json!("测试 司机二");
    let (s, v) = app.call(Method::PUT, &format!("{URL}/{id}"), Some(&op), Some(p)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["name"].as_str(), v["citizen_id"].as_str()), (Some("测试 司机二"), Some("120114********101X")));
    assert_eq!((v["qualification_days_left"].as_i64(), v["updated_by"].as_str()), (Some(40), Some("shunda.zhao")));
    let (_, list) = app.get(&format!("{URL}?limit=500"), &op).await;
    let other = list["items"].as_array().unwrap().iter().find(|p| p["id"] != id.as_str()).unwrap().clone();
    let (s, v) = app
        .call(Method::PUT, &format!("{URL}/{}", other["id"].as_str().unwrap()), Some(&op), Some(driver(ID, 40)))
        .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("citizen_id")), "{v}");

    // Deleted for good: gone from reads, a second delete is not found.
    let (s, _) = app.call(Method::DELETE, &format!("{URL}/{id}"), Some(&op), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("{URL}/{id}"), &op).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::DELETE, &format!("{URL}/{id}"), Some(&op), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Registered again after leaving: no conflict with the deleted record.
    let (s, v) = app.post(URL, &op, driver(ID, 100)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

async fn practitioners_are_scoped_filtered_linked_and_audited(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let op = app.login("shunda.zhao").await;
    let coach = app.login("coach.zhou").await;
    let (shunda, coach_org) = (app.org_id("shunda").await, app.org_id("jingjin_coach").await);

    // The bureau sees the demo's twenty practitioners of four enterprises, IDs masked.
    let (s, all) = app.get(&format!("{URL}?limit=500"), &reg).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 20, "{all}");
    let items = all["items"].as_array().unwrap();
    let mut orgs: Vec<&str> = items.iter().map(|p| p["org_id"].as_str().unwrap()).collect();
    orgs.dedup();
    assert_eq!(orgs.len(), 4, "{orgs:?}");
    for p in items {
        let cid = p["citizen_id"].as_str().unwrap();
        assert!(cid.starts_with("120114********") && cid.len() == 18, "{p}");
        if p["role"] != "loader" {
            assert!(!p["vehicles"].as_array().unwrap().is_empty(), "{p}");
        }
    }
    // Filters: enterprise, role, name, paging.
    let (_, v) = app.get(&format!("{URL}?org_id={shunda}&role=escort"), &reg).await;
    assert_eq!(v["total"], 3, "{v}");
    let (_, v) = app.get(&format!("{URL}?q=%E7%8E%8B%E6%B5%B7"), &reg).await; // 王海
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get(&format!("{URL}?limit=5&offset=5"), &reg).await;
    assert_eq!((v["items"].as_array().unwrap().len(), v["total"].as_i64()), (5, Some(20)));
    // Expiring within 30 days (the expired one included): three soon, one expired.
    let (_, v) = app.get(&format!("{URL}?expiring_within_days=30&limit=500"), &reg).await;
    assert_eq!(v["total"], 4, "{v}");
    for p in v["items"].as_array().unwrap() {
        let q = p["qualification_days_left"].as_i64().unwrap();
        let l = p["licence_days_left"].as_i64().unwrap_or(i64::MAX);
        assert!(q.min(l) <= 30, "{p}");
    }
    assert!(v["items"].as_array().unwrap().iter().any(|p| p["qualification_days_left"].as_i64().unwrap() < 0));
    let (s, _) = app.get(&format!("{URL}?expiring_within_days=-1"), &reg).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // An operator sees its own enterprise only, whatever it asks for.
    let (_, own) = app.get(&format!("{URL}?limit=500"), &op).await;
    assert_eq!(own["total"], 9, "{own}");
    assert!(own["items"].as_array().unwrap().iter().all(|p| p["org_id"] == shunda.as_str()));
    // Asking for another enterprise's is refused (issue 8: an out-of-scope filter is a 403).
    let (s, v) = app.get(&format!("{URL}?org_id={coach_org}"), &op).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Another enterprise's operator: not found, for reads and writes alike.
    let (s, mine) = app.post(URL, &op, driver(ID, 10)).await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let id = mine["id"].as_str().unwrap();
    let one = format!("{URL}/{id}");
    let (s, _) = app.get(&one, &coach).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::PUT, &one, Some(&coach), Some(driver(ID, 10))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::DELETE, &one, Some(&coach), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) =
        app.call(Method::PUT, &format!("{one}/vehicles"), Some(&coach), Some(json!({"vehicle_ids": []}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The bureau reads it and may correct it, but registering and removing is the enterprise's.
    let (s, v) = app.get(&one, &reg).await;
    assert_eq!((s, v["citizen_id"].as_str()), (StatusCode::OK, Some("120114********101X")), "{v}");
    let (s, _) = app.post(URL, &reg, driver("120114199001011230", 10)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.call(Method::DELETE, &one, Some(&reg), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app.call(Method::PUT, &one, Some(&reg), Some(driver(ID, 20))).await;
    assert_eq!((s, v["updated_by"].as_str()), (StatusCode::OK, Some("jt.liu")), "{v}");
    // Other roles are refused.
    let doc = app.login("dr.wu").await;
    let (s, _) = app.get(URL, &doc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Vehicles: the enterprise's own are linked; another enterprise's is refused.
    let (_, own_vs) = app.get(&format!("/api/transport/vehicles?org_id={shunda}&limit=1"), &reg).await;
    let (_, coach_vs) = app.get(&format!("/api/transport/vehicles?org_id={coach_org}&limit=1"), &reg).await;
    let own_vehicle = own_vs["items"][0]["id"].as_str().unwrap();
    let coach_vehicle = coach_vs["items"][0]["id"].as_str().unwrap();
    let links = format!("{one}/vehicles");
    let (s, v) =
        app.call(Method::PUT, &links, Some(&op), Some(json!({"vehicle_ids": [own_vehicle, coach_vehicle]}))).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("vehicle_ids")), "{v}");
    let (s, v) = app.call(Method::PUT, &links, Some(&op), Some(json!({"vehicle_ids": ["no-such-vehicle"]}))).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("vehicle_ids")), "{v}");
    let (s, v) =
        app.call(Method::PUT, &links, Some(&op), Some(json!({"vehicle_ids": [own_vehicle, own_vehicle]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["vehicles"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["vehicles"][0]["id"], own_vehicle);
    assert!(v["vehicles"][0]["plate"].as_str().unwrap().starts_with("津C8"), "{v}");
    // A loading manager has no vehicles.
    let (_, loaders) = app.get(&format!("{URL}?role=loader"), &op).await;
    let loader = loaders["items"][0]["id"].as_str().unwrap();
    let (s, v) = app
        .call(Method::PUT, &format!("{URL}/{loader}/vehicles"), Some(&op), Some(json!({"vehicle_ids": [own_vehicle]})))
        .await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("vehicle_ids")), "{v}");

    // Lists, reads and writes are audited, once per list request, never with the ID.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=practitioner.create&actor=shunda.zhao", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get("/api/audit?action=practitioner.list&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 5, "{v}");
    let (_, v) = app.get("/api/audit?action=practitioner.read&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    for action in ["practitioner.update", "practitioner.vehicles"] {
        let (_, v) = app.get(&format!("/api/audit?action={action}&target_id={id}"), &aud).await;
        assert!(v["total"].as_i64().unwrap() >= 1, "{action}: {v}");
    }
    let (_, v) = app.get("/api/audit?limit=500", &aud).await;
    let text = v.to_string();
    assert!(text.contains("practitioner."), "{text}");
    assert!(!text.contains(ID) && !text.contains(&ID.to_lowercase()), "the citizen ID stays out of the audit log");

    let tokens = [None, Some(reg), Some(op)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}
