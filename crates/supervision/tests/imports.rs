//! Spreadsheet imports of the supervision registry through the HTTP API on both backends:
//! practitioners and vehicles' supervision details from CSV, bad rows reported by row and column
//! with nothing written, `valid_only` writing the good ones, people and vehicles the file repeats
//! or the store already has, who may import what, the audit record and the templates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::app;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::demo::demo_citizen_id;

both_backends!(
    issue_7_practitioners_import_by_row_and_column,
    issue_7_vehicle_details_import_by_plate,
    issue_7_enterprise_profiles_import_by_name
);

async fn import(app: &TestApp, token: &str, uri: &str, csv: &str) -> (StatusCode, Value) {
    app.call_raw(Method::POST, uri, Some(token), Some(csv.as_bytes().to_vec()), Some("text/csv")).await
}

/// (row, column) of each error.
fn faults(v: &Value) -> Vec<(i64, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["column"].as_str().unwrap().into()))
        .collect()
}

async fn count(app: &TestApp, token: &str, uri: &str) -> i64 {
    let (s, v) = app.get(uri, token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}

async fn issue_7_practitioners_import_by_row_and_column(app: TestApp) {
    let bus = app.login("bus.sun").await;
    let reg = app.login("jt.liu").await;
    const URL: &str = "/api/supervision/practitioners/import";
    let list = "/api/supervision/practitioners?limit=1";
    let before = count(&app, &bus, list).await;
    let (a, b) = (demo_citizen_id("19800101", 901), demo_citizen_id("19820202", 903));
    let mut bad_id = demo_citizen_id("19830303", 905);
    bad_id.replace_range(17.., if bad_id.ends_with('1') { "2" } else { "1" });
    let csv = format!(
        "姓名,岗位,公民身份号码,从业资格类别,从业资格证号,从业资格证有效期至,准驾车型,驾驶证有效期至\n\
         李四,驾驶员,{a},城市公共汽车驾驶员,,2029-06-30,A3,2031-01-31\n\
         王五,驾驶员,{b},城市公共汽车驾驶员,,2028-12-31,A3,2030-05-01\n\
         赵六,驾驶员,{bad_id},城市公共汽车驾驶员,,2028-12-31,A3,2030-05-01\n\
         王五,驾驶员,{b},城市公共汽车驾驶员,,2028-12-31,A3,2030-05-01\n\
         钱七,司机,{a},城市公共汽车驾驶员,,2028-12-31,A3,2030-05-01\n\
         孙八,驾驶员,{c},城市公共汽车驾驶员,,2028-13-01,A3,2030-05-01\n",
        c = demo_citizen_id("19840404", 907)
    );

    // Only an enterprise registers its people.
    let (s, _) = import(&app, &reg, URL, &csv).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad rows by row and column; nothing written.
    let (s, v) = import(&app, &bus, URL, &csv).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        faults(&v),
        [
            (4, "公民身份号码".to_string()),
            (5, "公民身份号码".to_string()),
            (6, "岗位".to_string()),
            (7, "从业资格证有效期至".to_string())
        ],
        "{v}"
    );
    assert!(v["errors"][1]["reason"].as_str().unwrap().contains("row 3"), "{v}");
    assert!(!v.to_string().contains(&bad_id), "a citizen ID is never echoed: {v}");
    assert_eq!(count(&app, &bus, list).await, before);
    // A check writes nothing; valid_only writes the two good rows.
    let (s, v) = import(&app, &bus, &format!("{URL}?mode=valid_only&dry_run=true"), &csv).await;
    assert_eq!((s, v["valid_rows"].as_i64(), v["imported"].as_i64()), (StatusCode::OK, Some(2), Some(0)), "{v}");
    assert_eq!(count(&app, &bus, list).await, before);
    let (s, v) = import(&app, &bus, &format!("{URL}?mode=valid_only"), &csv).await;
    assert_eq!((s, v["imported"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    assert_eq!(count(&app, &bus, list).await, before + 2);
    let (_, found) = app.get("/api/supervision/practitioners?q=王五", &bus).await;
    assert_eq!(found["items"][0]["licence_class"], "A3", "{found}");
    // Again: both people are registered now.
    let (s, v) = import(&app, &bus, &format!("{URL}?mode=valid_only"), &csv).await;
    assert_eq!((s, v["imported"].as_i64()), (StatusCode::OK, Some(0)), "{v}");
    assert!(faults(&v).contains(&(2, "公民身份号码".into())), "{v}");
    // A header that is not the template's.
    let (s, v) = import(&app, &bus, URL, "name,foo\n张三,1\n").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=practitioner.import&actor=bus.sun", &aud).await;
    assert_eq!(v["total"], 1, "one record for one import (the second wrote nothing): {v}");
    assert!(!v.to_string().contains(&a), "{v}");
    let (s, _) =
        app.call_raw(Method::GET, "/api/supervision/practitioners/import/template.xlsx", Some(&bus), None, None).await;
    assert_eq!(s, StatusCode::OK);
}

async fn issue_7_vehicle_details_import_by_plate(app: TestApp) {
    let bus = app.login("bus.sun").await;
    let reg = app.login("jt.liu").await;
    const URL: &str = "/api/supervision/vehicles/import";
    let (_, own) = app.get("/api/supervision/vehicles?limit=3", &bus).await;
    let plates: Vec<String> =
        own["items"].as_array().unwrap().iter().map(|v| v["plate"].as_str().unwrap().into()).collect();
    let shunda = app.org_id("shunda").await;
    let (_, theirs) = app.get(&format!("/api/supervision/vehicles?org_id={shunda}&limit=1"), &reg).await;
    let tanker = theirs["items"][0]["plate"].as_str().unwrap().to_string();
    let header = "车牌号,车牌颜色,道路运输证号,道路运输证有效期至,检验有效期至,交强险有效期至,商业险有效期至,核定载客人数,核定载质量(kg),危险货物类别\n";
    let csv = format!(
        "{header}\
         {p0},,T-001,2029-01-31,2027-06-30,2027-03-01,,40,,\n\
         {p1},,T-002,2029-01-31,2027-06-30,2027-03-01,2027-03-01,40,,3\n\
         {tanker},,T-003,2029-01-31,2027-06-30,2027-03-01,,,30000,2.1\n\
         {p0},,T-004,2029-01-31,2027-06-30,2027-03-01,,40,,\n\
         {p2},,T-005,2029-01-31,2027-06-30,2027-03-01,,四十,,\n",
        p0 = plates[0],
        p1 = plates[1],
        p2 = plates[2],
    );
    let (s, v) = import(&app, &bus, URL, &csv).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        faults(&v),
        [
            (3, "危险货物类别".to_string()),
            (4, "车牌号".to_string()),
            (5, "车牌号".to_string()),
            (6, "核定载客人数".to_string())
        ],
        "{v}"
    );
    let (_, one) = app.get("/api/supervision/vehicles?limit=1", &bus).await;
    assert_ne!(one["items"][0]["details"]["road_transport_certificate_no"], "T-001", "nothing written");
    let (s, v) = import(&app, &bus, &format!("{URL}?mode=valid_only"), &csv).await;
    assert_eq!((s, v["imported"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
    let (_, list) = app.get("/api/supervision/vehicles?limit=500", &bus).await;
    let v0 = list["items"].as_array().unwrap().iter().find(|v| v["plate"] == plates[0].as_str()).unwrap();
    assert_eq!(
        (v0["details"]["road_transport_certificate_no"].as_str(), v0["details"]["seats"].as_i64()),
        (Some("T-001"), Some(40))
    );
    // The bureau imports for any enterprise in its reach, the tanker included.
    let csv = format!("{header}{tanker},黄色,T-003,2029-01-31,2027-06-30,2027-03-01,,,30000,2.1\n");
    let (s, v) = import(&app, &reg, URL, &csv).await;
    assert_eq!((s, v["imported"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=vehicle.details.import", &aud).await;
    assert_eq!(v["total"], 2, "{v}");
    let (s, _) = import(&app, &app.login("dr.wu").await, URL, &csv).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn issue_7_enterprise_profiles_import_by_name(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    const URL: &str = "/api/supervision/enterprises/import";
    let (_, list) = app.get("/api/supervision/enterprises", &reg).await;
    let by_key = |key: &str, list: &Value| -> Value {
        list.as_array().unwrap().iter().find(|e| e["name"].as_str().unwrap().contains(key)).unwrap().clone()
    };
    let (b, c, s) = (by_key("公共交通", &list), by_key("京津", &list), by_key("顺达", &list));
    let taxi_code = by_key("出租", &list)["profile"]["uscc"].as_str().unwrap().to_string();
    let code = |e: &Value| e["profile"]["uscc"].as_str().unwrap().to_string();
    let mistyped = {
        let good = code(&c);
        format!("{}{}", &good[..17], if good.ends_with('7') { '8' } else { '7' })
    };
    let line = |name: &Value, uscc: &str, staff: &str| {
        format!(
            "{},{uscc},城市公共汽车客运,津交运管许可公字120114000007号,2030-12-31,孙丽,{staff}\n",
            name.as_str().unwrap()
        )
    };
    let csv = format!(
        "企业名称,统一社会信用代码,经营范围,经营许可证号,许可证有效期至,安全负责人,动态监控人员数\n{}{}{}{}{}{}",
        line(&b["name"], &code(&b), "3"),
        line(&json!("不存在的运输公司"), &code(&b), "3"),
        line(&c["name"], &mistyped, "2"),
        line(&s["name"], &taxi_code, "3"),
        line(&b["name"], &code(&b), "4"),
        line(&c["name"], &code(&c), "两"),
    );
    let (s_, _) = import(&app, &bus, URL, &csv).await;
    assert_eq!(s_, StatusCode::FORBIDDEN, "an enterprise keeps its own profile in the form");
    let (st, v) = import(&app, &reg, URL, &csv).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        faults(&v),
        [
            (3, "企业名称".to_string()),
            (4, "统一社会信用代码".to_string()),
            (5, "统一社会信用代码".to_string()),
            (6, "企业名称".to_string()),
            (7, "动态监控人员数".to_string())
        ],
        "{v}"
    );
    assert_eq!(b["monitoring_short"], true, "the demo's bus company is a monitor short");
    let (st, v) = import(&app, &reg, &format!("{URL}?mode=valid_only"), &csv).await;
    assert_eq!((st, v["imported"].as_i64()), (StatusCode::OK, Some(1)), "{v}");
    let (_, after) = app.get("/api/supervision/enterprises", &reg).await;
    let b2 = by_key("公共交通", &after);
    assert_eq!((b2["profile"]["monitoring_staff"].as_i64(), b2["monitoring_short"].as_bool()), (Some(3), Some(false)));
    assert_eq!(by_key("顺达", &after)["profile"], s["profile"], "the refused row changed nothing");
    let aud = app.login("auditor").await;
    let (_, a) = app.get("/api/audit?action=enterprise.profile.import&actor=jt.liu", &aud).await;
    assert_eq!(a["total"], 1, "{a}");
}
