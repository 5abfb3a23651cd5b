//! Vehicle supervision details and the expiry watch through the HTTP API on both backends
//! (PostgreSQL when `WUQING_TEST_PG` names a server): issue 7's vehicles (certificate, annual
//! inspection, insurances, seats or tonnage, dangerous goods class, bound terminal) and its expiry
//! watch with notices on the alarm desk; who sees and keeps them, the checks by field, audit, and
//! the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::app;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{date_of, today_days};

both_backends!(
    issue_7_vehicle_details_are_scoped_checked_and_audited,
    issue_7_expiry_watch_lists_sorts_and_counts,
    issue_7_expiry_notices_are_raised_once,
);

async fn put(app: &TestApp, token: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    app.call(Method::PUT, &format!("/api/supervision/vehicles/{id}"), Some(token), Some(body.clone())).await
}

/// The first vehicle of a class in a list page.
fn first_of<'a>(list: &'a Value, class: &str) -> &'a Value {
    list["items"].as_array().unwrap().iter().find(|v| v["class"] == class).unwrap()
}

fn in_days(n: i64) -> String {
    date_of(today_days() + n)
}

async fn issue_7_vehicle_details_are_scoped_checked_and_audited(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let shunda = app.login("shunda.zhao").await;
    let bus_org = app.org_id("wuqing_bus").await;

    // The bureau reads the whole demo fleet, every vehicle with details and its bound terminal.
    let (s, all) = app.get("/api/supervision/vehicles?limit=500", &reg).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 200, "{}", all["total"]);
    for v in all["items"].as_array().unwrap() {
        assert!(v["details"].is_object() && v["terminal_phone"].is_string(), "{v}");
        let seats = v["details"]["seats"].as_i64();
        match v["class"].as_str().unwrap() {
            "dangerous_goods" => {
                assert!(seats.is_none() && v["details"]["tonnage_kg"].as_i64().unwrap() > 0, "{v}");
                assert!(["2.1", "3"].contains(&v["details"]["dangerous_goods_class"].as_str().unwrap()), "{v}");
            }
            "taxi" => assert_eq!(seats, Some(5)),
            _ => assert!(seats.unwrap() >= 30 && v["details"]["tonnage_kg"].is_null(), "{v}"),
        }
    }
    let (_, dg) = app.get("/api/supervision/vehicles?class=dangerous_goods", &reg).await;
    assert_eq!(dg["total"], 40);
    let (_, exp) = app.get("/api/supervision/vehicles?expired=true", &reg).await;
    assert_eq!(exp["total"], 6, "{exp}");
    let (_, soon) = app.get("/api/supervision/vehicles?expiring_within_days=30&limit=500", &reg).await;
    assert_eq!(soon["total"], 6 + 8, "{soon}");
    let (_, fine) = app.get("/api/supervision/vehicles?expired=false", &reg).await;
    assert_eq!(fine["total"], 200 - 6);
    let (s, v) = app.get("/api/supervision/vehicles?class=tram", &reg).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("class")), "{v}");

    // An operator sees its own fleet; another enterprise's vehicle is not found, read or written.
    let (_, own) = app.get("/api/supervision/vehicles?limit=500", &bus).await;
    assert_eq!(own["total"], 80);
    assert!(own["items"].as_array().unwrap().iter().all(|v| v["org_id"] == bus_org.as_str()));
    let truck = first_of(&all, "dangerous_goods").clone();
    let truck_id = truck["vehicle_id"].as_str().unwrap();
    let (s, _) = app.get(&format!("/api/supervision/vehicles/{truck_id}"), &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put(&app, &bus, truck_id, &truck["details"]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Other roles and other domains' regulators are refused.
    for who in ["dr.wu", "wjw.chen"] {
        let t = app.login(who).await;
        let (s, _) = app.get("/api/supervision/vehicles", &t).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
        let (s, _) = app.get("/api/supervision/expiry", &t).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }

    // The dangerous goods company keeps its truck: each fault names its field.
    let good = json!({
        "road_transport_certificate_no": "津交运管货字120114009999号",
        "road_transport_certificate_valid_until": in_days(400),
        "annual_inspection_valid_until": in_days(200),
        "compulsory_insurance_valid_until": in_days(300),
        "commercial_insurance_valid_until": null,
        "tonnage_kg": 18000,
        "dangerous_goods_class": "6.1",
    });
    let faults = [
        ("road_transport_certificate_no", json!("")),
        ("road_transport_certificate_no", json!("x".repeat(51))),
        ("road_transport_certificate_no", json!("津A\u{7}1")),
        ("road_transport_certificate_valid_until", json!("2030-02-30")),
        ("annual_inspection_valid_until", json!("next year")),
        ("compulsory_insurance_valid_until", json!("1970-01-01")),
        ("commercial_insurance_valid_until", json!("2030/01/01")),
        ("seats", json!(45)),
        ("tonnage_kg", json!(0)),
        ("tonnage_kg", json!(null)),
        ("dangerous_goods_class", json!("2")),
        ("dangerous_goods_class", json!("10")),
        ("dangerous_goods_class", json!(null)),
    ];
    for (field, value) in faults {
        let mut b = good.clone();
        b[field] = value.clone();
        let (s, v) = put(&app, &shunda, truck_id, &b).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{field}={value}: {v}");
    }
    let mut b = good.clone();
    b["colour"] = json!("red");
    let (s, _) = put(&app, &shunda, truck_id, &b).await;
    assert!(s.is_client_error(), "unknown fields are refused");
    let (s, v) = put(&app, &shunda, truck_id, &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["details"]["dangerous_goods_class"], "6.1");
    assert_eq!((v["annual_inspection_days_left"].as_i64(), v["updated_by"].as_str()), (Some(200), Some("shunda.zhao")));

    // A bus: seats 1–100 and neither tonnage nor dangerous goods class; the bureau corrects it.
    let bus_v = first_of(&own, "city_bus").clone();
    let bus_id = bus_v["vehicle_id"].as_str().unwrap();
    let mut b = bus_v["details"].clone();
    for (field, value) in
        [("seats", json!(0)), ("seats", json!(101)), ("seats", json!(null)), ("tonnage_kg", json!(9000))]
    {
        let mut x = b.clone();
        x[field] = value;
        let (s, v) = put(&app, &bus, bus_id, &x).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{v}");
    }
    let mut x = b.clone();
    x["dangerous_goods_class"] = json!("3");
    let (_, v) = put(&app, &bus, bus_id, &x).await;
    assert_eq!(v["field"], "dangerous_goods_class");
    b["seats"] = json!(32);
    b["commercial_insurance_valid_until"] = json!(in_days(-2));
    let (s, v) = put(&app, &reg, bus_id, &b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["commercial_insurance_days_left"].as_i64(), v["updated_by"].as_str()), (Some(-2), Some("jt.liu")));
    let (_, v) = app.get(&format!("/api/supervision/vehicles/{bus_id}"), &bus).await;
    assert_eq!(v["details"]["seats"], 32);

    // Writes are audited with who wrote them.
    let aud = app.login("auditor").await;
    for who in ["shunda.zhao", "jt.liu"] {
        let (_, v) = app.get(&format!("/api/audit?action=vehicle.details&actor={who}"), &aud).await;
        assert_eq!(v["total"], 1, "{who}: {v}");
    }
    let (_, v) = app.get("/api/audit?action=vehicle.details&actor=bus.sun", &aud).await;
    assert_eq!(v["total"], 0, "refused writes leave nothing: {v}");

    let tokens = [None, Some(reg), Some(bus)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

fn sorted(items: &[Value]) -> bool {
    items.windows(2).all(|w| w[0]["days_left"].as_i64() <= w[1]["days_left"].as_i64())
}

async fn issue_7_expiry_watch_lists_sorts_and_counts(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let (coach_org, taxi_org, bus_org) =
        (app.org_id("jingjin_coach").await, app.org_id("yangcun_taxi").await, app.org_id("wuqing_bus").await);

    // The demo: 6 vehicle items and the taxi company's licence expired; 8 certificates and the
    // coach company's licence within 30 days; 7 inspections more within 60, 6 insurances within 90;
    // and four of the dangerous goods carrier's people: a qualification expired 5 days ago, two
    // ending in 12 and 25 days, a driving licence in 18.
    let (s, r) = app.get("/api/supervision/expiry?limit=500", &reg).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["within_days"].as_i64(), r["today"].as_str()), (Some(90), Some(date_of(today_days()).as_str())));
    let items = r["items"].as_array().unwrap();
    assert_eq!(r["total"], 33, "{r}");
    let people: Vec<(&str, i64)> = items
        .iter()
        .filter(|i| i["subject_type"] == "practitioner")
        .map(|i| (i["kind"].as_str().unwrap(), i["days_left"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        people,
        [
            ("qualification_certificate", -5),
            ("qualification_certificate", 12),
            ("driving_licence", 18),
            ("qualification_certificate", 25)
        ]
    );
    assert!(sorted(items), "{r}");
    assert!(items.iter().all(|i| i["days_left"].as_i64().unwrap() <= 90));
    let licence = |org: &str| items.iter().find(|i| i["kind"] == "enterprise_licence" && i["org_id"] == org).unwrap();
    assert_eq!(
        (licence(&coach_org)["days_left"].as_i64(), licence(&coach_org)["subject_type"].as_str()),
        (Some(20), Some("enterprise"))
    );
    assert_eq!(licence(&taxi_org)["days_left"], -10);
    assert_eq!(
        items.iter().filter(|i| i["kind"] == "annual_inspection" && i["days_left"].as_i64() < Some(0)).count(),
        5
    );
    let v = items.iter().find(|i| i["kind"] == "road_transport_certificate").unwrap();
    assert!(v["subject_label"].as_str().unwrap().starts_with("津C") && v["reference"].is_string(), "{v}");
    let sum = |k: &str| r["summary"].as_array().unwrap().iter().map(|s| s[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(r["summary"].as_array().unwrap().len(), 4);
    assert_eq!((sum("expired"), sum("within_30"), sum("within_60"), sum("within_90")), (8, 12, 19, 25));
    for s in r["summary"].as_array().unwrap() {
        let mine = items.iter().filter(|i| i["org_id"] == s["org_id"]);
        assert_eq!(
            s["expired"].as_i64().unwrap(),
            mine.clone().filter(|i| i["days_left"].as_i64() < Some(0)).count() as i64
        );
        assert_eq!(
            s["within_90"].as_i64().unwrap(),
            mine.filter(|i| i["days_left"].as_i64() >= Some(0)).count() as i64
        );
    }
    for (within, total) in [(30, 20), (60, 27)] {
        let (_, r) = app.get(&format!("/api/supervision/expiry?within_days={within}&limit=500"), &reg).await;
        assert_eq!(r["total"], total, "{within}: {r}");
        assert!(sorted(r["items"].as_array().unwrap()));
    }
    let (_, page) = app.get("/api/supervision/expiry?limit=5&offset=5", &reg).await;
    assert_eq!(page["items"].as_array().unwrap().as_slice(), &items[5..10]);
    let (s, v) = app.get("/api/supervision/expiry?within_days=45", &reg).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("within_days")), "{v}");
    // One kind: only its items, in the same order; an unknown kind is refused.
    let (_, insp) = app.get("/api/supervision/expiry?kind=annual_inspection&limit=500", &reg).await;
    let want: Vec<_> = items.iter().filter(|i| i["kind"] == "annual_inspection").cloned().collect();
    assert!(!want.is_empty());
    assert_eq!((insp["items"].as_array().unwrap(), insp["total"].as_i64()), (&want, Some(want.len() as i64)));
    let (s, v) = app.get("/api/supervision/expiry?kind=passport", &reg).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("kind")), "{v}");

    // An operator: its own items and counts; another enterprise is not found.
    let (_, own) = app.get("/api/supervision/expiry?limit=500", &bus).await;
    assert!(own["items"].as_array().unwrap().iter().all(|i| i["org_id"] == bus_org.as_str()), "{own}");
    assert_eq!(own["summary"].as_array().unwrap().len(), 1);
    assert_eq!(
        own["total"],
        own["summary"][0]["expired"].as_i64().unwrap() + own["summary"][0]["within_90"].as_i64().unwrap()
    );
    let (s, _) = app.get(&format!("/api/supervision/expiry?org_id={coach_org}"), &bus).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, one) = app.get(&format!("/api/supervision/expiry?org_id={coach_org}&limit=500"), &reg).await;
    assert!(one["items"].as_array().unwrap().iter().all(|i| i["org_id"] == coach_org.as_str()));
    assert_eq!(one["summary"].as_array().unwrap().len(), 1);

    // A date set: a bus whose inspection falls due in 45 days is in the 60-day watch, not the 30.
    let (_, list) = app.get("/api/supervision/vehicles?expiring_within_days=90&limit=500", &bus).await;
    let due: Vec<&str> = list["items"].as_array().unwrap().iter().map(|v| v["vehicle_id"].as_str().unwrap()).collect();
    let (_, all) = app.get("/api/supervision/vehicles?limit=500", &bus).await;
    let v =
        all["items"].as_array().unwrap().iter().find(|v| !due.contains(&v["vehicle_id"].as_str().unwrap())).unwrap();
    let id = v["vehicle_id"].as_str().unwrap();
    let mut d = v["details"].clone();
    d["annual_inspection_valid_until"] = json!(in_days(45));
    let (s, _) = put(&app, &bus, id, &d).await;
    assert_eq!(s, StatusCode::OK);
    let (_, r60) = app.get("/api/supervision/expiry?within_days=60&limit=500", &bus).await;
    let hit: Vec<&Value> = r60["items"].as_array().unwrap().iter().filter(|i| i["subject_id"] == id).collect();
    assert_eq!(hit.len(), 1, "{r60}");
    assert_eq!((hit[0]["kind"].as_str(), hit[0]["days_left"].as_i64()), (Some("annual_inspection"), Some(45)));
    assert_eq!(hit[0]["valid_until"], in_days(45));
    assert!(sorted(r60["items"].as_array().unwrap()));
    let (_, r30) = app.get("/api/supervision/expiry?within_days=30&limit=500", &bus).await;
    assert!(r30["items"].as_array().unwrap().iter().all(|i| i["subject_id"] != id));
    assert_eq!(r60["summary"][0]["within_60"].as_i64(), own["summary"][0]["within_60"].as_i64().map(|n| n + 1));
}

async fn issue_7_expiry_notices_are_raised_once(app: TestApp) {
    let state = app.platform.state.clone();
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let today = today_days();

    // Today: the 8 expired and the 12 within 30 days, once.
    assert_eq!(supervision::expiry::notify(&state, today).await.unwrap(), 20);
    assert_eq!(supervision::expiry::notify(&state, today).await.unwrap(), 0);
    // (The desk also holds the demo's overdue hazards: count the expiry notices.)
    let (_, desk) = app.get("/api/alarms?domain=supervision&limit=500", &reg).await;
    let kinds = |v: &Value, k: &str| v["items"].as_array().unwrap().iter().filter(|a| a["kind"] == k).count();
    assert_eq!(kinds(&desk, "expired") + kinds(&desk, "expiry_30d"), 20, "{desk}");
    assert_eq!((kinds(&desk, "expired"), kinds(&desk, "expiry_30d")), (8, 12));
    // The enterprise sees its own on its desk: the bus company's 3 expired and 3 certificates.
    let (_, own) = app.get("/api/alarms?domain=supervision&limit=500", &bus).await;
    assert_eq!(kinds(&own, "expired") + kinds(&own, "expiry_30d"), 6, "{own}");
    assert!(own["items"].as_array().unwrap().iter().all(|a| a["org_id"] == bus_org.as_str()));
    let a = own["items"].as_array().unwrap().iter().find(|a| a["kind"] == "expired").unwrap();
    assert!(a["subject"]["label"].as_str().unwrap().contains('（') && a["details"]["valid_until"].is_string(), "{a}");

    // A bus insured until 31 days from now enters the window tomorrow, and expires a month on:
    // then its 30-day notice ends and an expired one is raised.
    let (_, list) = app.get("/api/supervision/vehicles?expiring_within_days=90&limit=500", &bus).await;
    let busy: Vec<String> =
        list["items"].as_array().unwrap().iter().map(|v| v["vehicle_id"].as_str().unwrap().to_string()).collect();
    let (_, all) = app.get("/api/supervision/vehicles?limit=500", &bus).await;
    let v =
        all["items"].as_array().unwrap().iter().find(|v| !busy.iter().any(|b| v["vehicle_id"] == b.as_str())).unwrap();
    let id = v["vehicle_id"].as_str().unwrap();
    let (_, before) = app.get(&format!("/api/alarms?domain=supervision&subject_id={id}"), &reg).await;
    let mut d = v["details"].clone();
    d["compulsory_insurance_valid_until"] = json!(in_days(31));
    assert_eq!(put(&app, &bus, id, &d).await.0, StatusCode::OK);
    assert_eq!(supervision::expiry::notify(&state, today).await.unwrap(), 0);
    supervision::expiry::notify(&state, today + 1).await.unwrap();
    let (_, after) = app.get(&format!("/api/alarms?domain=supervision&subject_id={id}&kind=expiry_30d"), &reg).await;
    assert_eq!(after["total"].as_i64().unwrap(), before["total"].as_i64().unwrap() + 1, "{after}");
    assert_eq!(after["items"][0]["details"]["item"], "compulsory_insurance");
    assert!(after["items"][0]["ended_at"].is_null());
    assert_eq!(after["items"][0]["severity"], "notice");
    supervision::expiry::notify(&state, today + 32).await.unwrap();
    let (_, ended) = app.get(&format!("/api/alarms/{}", after["items"][0]["id"].as_str().unwrap()), &reg).await;
    assert!(ended["ended_at"].is_string(), "{ended}");
    let (_, exp) = app.get(&format!("/api/alarms?domain=supervision&subject_id={id}&kind=expired"), &bus).await;
    let insurance: Vec<&Value> =
        exp["items"].as_array().unwrap().iter().filter(|a| a["details"]["item"] == "compulsory_insurance").collect();
    assert_eq!(insurance.len(), 1, "{exp}");
    assert_eq!(insurance[0]["severity"], "major");
    let again = supervision::expiry::notify(&state, today + 32).await.unwrap();
    assert_eq!(again, 0);
}
