//! Documents and reporting (下发文件 / 报送) through the HTTP API on both backends: the bureau
//! issues to chosen enterprises, to a vehicle class or to all, the enterprises sign and answer
//! with files, the bureau returns and accepts; who read, who answered, who is late; refusals by
//! role, organisation, state and deadline; history and audit; the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::{PDF, app};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{date_of, today_days};

both_backends!(
    issue_7_a_document_is_read_answered_returned_and_accepted,
    issue_7_targets_and_lateness,
    issue_8_answers_are_as_the_openapi_document_says
);

const URL: &str = "/api/supervision/documents";

async fn post(app: &TestApp, token: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, uri, Some(token), Some(body)).await
}

fn recipient<'a>(doc: &'a Value, org: &str) -> &'a Value {
    doc["recipients"].as_array().unwrap().iter().find(|r| r["org_id"] == org).unwrap()
}

async fn issue_7_a_document_is_read_answered_returned_and_accepted(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let shunda = app.login("shunda.zhao").await;
    let (bus_org, shunda_org) = (app.org_id("wuqing_bus").await, app.org_id("shunda").await);
    let (s, att) = app.upload(&reg, "关于开展安全生产大检查的通知.pdf", "application/pdf", PDF).await;
    assert_eq!(s, StatusCode::CREATED, "{att}");
    let att = att["id"].as_str().unwrap().to_string();
    let deadline = date_of(today_days() + 3);
    let doc = json!({"number": "武交运〔2026〕12号", "title": "关于开展安全生产大检查的通知",
        "body": "各运输企业：\n请于期限内报送自查报告。", "files": [att],
        "target": {"org_ids": [bus_org, shunda_org]}, "requires_report": true, "deadline": deadline});

    // Only the bureau issues.
    let (s, _) = post(&app, &bus, URL, doc.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.get(URL, &app.login("dr.wu").await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, d) = post(&app, &reg, URL, doc).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    let url = format!("{URL}/{id}");
    assert_eq!(d["counts"], json!({"recipients": 2, "read": 0, "replied": 0, "accepted": 0, "late": 0}));
    assert_eq!(d["files"][0]["name"], "关于开展安全生产大检查的通知.pdf");

    // The bus company finds it unread, and opening it signs for it; the attachment is shared
    // with it. An enterprise it was not sent to sees nothing.
    // (The demo bureau has documents of its own: look for this one.)
    let find = |list: &Value| list["items"].as_array().unwrap().iter().find(|d| d["id"] == id.as_str()).cloned();
    let (_, list) = app.get(&format!("{URL}?pending=true"), &bus).await;
    assert_eq!(find(&list).expect("pending for the bus company")["mine"]["status"], "unread", "{list}");
    let (s, mine) = app.get(&url, &bus).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    assert_eq!((mine["mine"]["status"].as_str(), mine["mine"]["read_by"].as_str()), (Some("read"), Some("bus.sun")));
    assert!(mine.get("recipients").is_none(), "an enterprise sees its own part only: {mine}");
    let (s, _) = app.call_raw(Method::GET, &format!("/api/files/{att}/content"), Some(&bus), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let coach = app.login("coach.zhou").await;
    let (s, _) = app.get(&url, &coach).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call_raw(Method::GET, &format!("/api/files/{att}/content"), Some(&coach), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = post(&app, &coach, &format!("{url}/reply"), json!({"note": "x"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Signing again changes nothing; the bureau does not sign.
    let (s, again) = post(&app, &bus, &format!("{url}/read"), json!({})).await;
    assert_eq!((s, again["mine"]["read_at"].clone()), (StatusCode::OK, mine["mine"]["read_at"].clone()));
    let (s, _) = post(&app, &reg, &format!("{url}/read"), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The answer: a note is needed, files must be the enterprise's own.
    let (s, v) = post(&app, &bus, &format!("{url}/reply"), json!({"note": " "})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) = post(&app, &bus, &format!("{url}/reply"), json!({"note": "见附件", "files": [att]})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("files[0]")), "{v}");
    let (_, report) = app.upload(&bus, "自查报告.pdf", "application/pdf", PDF).await;
    let report = report["id"].as_str().unwrap().to_string();
    let (s, v) = post(&app, &bus, &format!("{url}/reply"), json!({"note": "自查报告见附件", "files": [report]})).await;
    assert_eq!((s, v["mine"]["status"].as_str()), (StatusCode::OK, Some("replied")), "{v}");
    assert_eq!(v["mine"]["late"], false);
    let (s, _) = post(&app, &bus, &format!("{url}/reply"), json!({"note": "again"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "answered twice before review");

    // The bureau sees who read and who answered, reads the answer's file, returns it.
    let (_, d) = app.get(&url, &reg).await;
    assert_eq!(d["counts"], json!({"recipients": 2, "read": 1, "replied": 1, "accepted": 0, "late": 0}), "{d}");
    assert_eq!(recipient(&d, &shunda_org)["status"], "unread");
    assert_eq!(recipient(&d, &bus_org)["reply_files"][0]["id"], report.as_str());
    let (s, _) = app.call_raw(Method::GET, &format!("/api/files/{report}/content"), Some(&reg), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let review = format!("{url}/recipients/{bus_org}/review");
    let (s, _) = post(&app, &bus, &review, json!({"decision": "accept"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&app, &reg, &review, json!({"decision": "return"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")), "{v}");
    let (s, v) =
        post(&app, &reg, &format!("{url}/recipients/{shunda_org}/review"), json!({"decision": "accept"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "nothing to review yet: {v}");
    let (s, v) = post(&app, &reg, &review, json!({"decision": "return", "note": "缺少车辆检查台账"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("returned")), "{v}");
    let (_, list) = app.get(&format!("{URL}?pending=true"), &bus).await;
    assert!(find(&list).is_some(), "returned: to answer again: {list}");
    let (s, _) = post(&app, &bus, &format!("{url}/reply"), json!({"note": "已补充台账", "files": [report]})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, pending) = app.get(&format!("{URL}?pending=true"), &reg).await;
    assert!(find(&pending).is_some(), "an answer to review: {pending}");
    let (s, v) = post(&app, &reg, &review, json!({"decision": "accept", "note": "同意"})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("accepted")), "{v}");
    let steps: Vec<&str> = v["history"].as_array().unwrap().iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["read", "reply", "return", "reply", "accept"], "{v}");
    let (s, _) = post(&app, &reg, &review, json!({"decision": "accept"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, list) = app.get(&format!("{URL}?pending=true"), &bus).await;
    assert!(find(&list).is_none(), "accepted: nothing more to do: {list}");
    let (s, r) = app.get(&format!("{url}/recipients/{bus_org}"), &reg).await;
    assert_eq!((s, r["history"].as_array().map(Vec::len)), (StatusCode::OK, Some(5)), "{r}");
    let (s, _) = app.get(&format!("{url}/recipients/{bus_org}"), &shunda).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Audit: every step with who took it.
    let aud = app.login("auditor").await;
    for (action, actor, n) in [
        ("document.issue", "jt.liu", 1),
        ("document.sign", "bus.sun", 1),
        ("document.reply", "bus.sun", 2),
        ("document.return", "jt.liu", 1),
        ("document.accept", "jt.liu", 1),
        ("document.reply.read", "jt.liu", 1),
    ] {
        let (_, v) = app.get(&format!("/api/audit?action={action}&actor={actor}&target_id={id}"), &aud).await;
        assert_eq!(v["total"], n, "{action}: {v}");
    }
    let tokens = [None, Some(reg), Some(bus)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

async fn issue_7_targets_and_lateness(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let coach = app.login("coach.zhou").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let taxi_org = app.org_id("yangcun_taxi").await;
    let st = &app.platform.state;
    let base =
        json!({"title": "测试通知甲", "body": "正文", "requires_report": true, "deadline": date_of(today_days() + 1)});
    let with = |patch: Value| {
        let mut d = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };

    // Target and deadline checks name the field.
    for (patch, field) in [
        (json!({"target": {}}), "target"),
        (json!({"target": {"all": true, "vehicle_class": "taxi"}}), "target"),
        (json!({"target": {"org_ids": [app.org_id("transport_bureau").await]}}), "target.org_ids[0]"),
        (json!({"target": {"org_ids": []}}), "target.org_ids"),
        (json!({"target": {"vehicle_class": "spaceship"}}), "target.vehicle_class"),
        (json!({"target": {"all": true}, "deadline": null}), "deadline"),
        (json!({"target": {"all": true}, "deadline": date_of(today_days() - 1)}), "deadline"),
        (json!({"target": {"all": true}, "requires_report": false}), "deadline"),
        (json!({"target": {"all": true}, "title": ""}), "title"),
    ] {
        let (s, v) = post(&app, &reg, URL, with(patch.clone())).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{patch}: {v}");
    }

    // A class reaches the enterprises running it; all reaches the four.
    let (s, d) = post(&app, &reg, URL, with(json!({"target": {"vehicle_class": "taxi"}}))).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let names: Vec<&str> = d["recipients"].as_array().unwrap().iter().map(|r| r["org_id"].as_str().unwrap()).collect();
    assert_eq!(names, [taxi_org.as_str()], "{d}");
    let (s, all) = post(&app, &reg, URL, with(json!({"target": {"all": true}}))).await;
    assert_eq!((s, all["counts"]["recipients"].as_i64()), (StatusCode::CREATED, Some(4)), "{all}");
    let all_id = all["id"].as_str().unwrap().to_string();

    // A notice without a report takes no answer.
    let (_, info) =
        post(&app, &reg, URL, json!({"title": "节假日安全提示", "body": "注意安全", "target": {"all": true}})).await;
    let (s, v) =
        post(&app, &coach, &format!("{URL}/{}/reply", info["id"].as_str().unwrap()), json!({"note": "收到"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The deadline passes (moved to yesterday): everyone without an answer is late; an answer
    // now is taken and stays marked late.
    let mut tx = st.store.begin().await.unwrap();
    sqlx::query(&st.store.sql("UPDATE supervision_documents SET deadline = $1 WHERE id = $2"))
        .bind(date_of(today_days() - 1))
        .bind(all_id.clone())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (_, d) = app.get(&format!("{URL}/{all_id}"), &reg).await;
    assert_eq!(d["counts"]["late"], 4, "{d}");
    let (s, v) = post(&app, &coach, &format!("{URL}/{all_id}/reply"), json!({"note": "迟报"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["mine"]["status"].as_str(), v["mine"]["late"].as_bool()), (Some("replied"), Some(true)), "{v}");
    let (_, d) = app.get(&format!("{URL}/{all_id}"), &reg).await;
    assert_eq!((d["counts"]["late"].as_i64(), d["counts"]["replied"].as_i64()), (Some(4), Some(1)), "{d}");
    assert_eq!(recipient(&d, &bus_org)["late"], true);
    let (_, pending) = app.get(&format!("{URL}?pending=true"), &reg).await;
    assert!(pending["items"].as_array().unwrap().iter().any(|x| x["id"] == all_id.as_str()), "{pending}");
    let (_, mine) = app.get(&format!("{URL}?q=测试通知甲"), &coach).await;
    assert_eq!(mine["total"], 1, "the coach company runs no taxis: {mine}");
}

/// Issue #8 (schemathesis): schemas named alike in different modules (a recipient's `Status` and
/// an alarm's, a case's `Step` and an alarm's, an incident's `Kind` and a penalty's, the credit's
/// `Assessment` and the transport one) overwrote each other in the OpenAPI document, so the
/// demo's own answers contradicted it. Each read of the supervision desk, as the bureau and as an
/// enterprise, must match its documented schema.
async fn issue_8_answers_are_as_the_openapi_document_says(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let bus_org = app.org_id("wuqing_bus").await;
    let ok = |s: StatusCode, v: &Value| assert_eq!(s, StatusCode::OK, "{v}");
    let first_id = |v: &Value| v["items"][0]["id"].as_str().unwrap().to_string();
    let today = date_of(today_days());
    let (year, month) = (&today[..4], &today[..7]);
    for (token, who) in [(&reg, "regulator"), (&bus, "operator")] {
        let t = Some(token.as_str());
        for (route, uri) in [
            (URL.to_string(), URL.to_string()),
            ("/api/supervision/hazards".into(), "/api/supervision/hazards".into()),
            ("/api/supervision/incidents".into(), "/api/supervision/incidents".into()),
            ("/api/supervision/penalties".into(), "/api/supervision/penalties".into()),
            ("/api/supervision/credit".into(), format!("/api/supervision/credit?year={year}")),
            ("/api/supervision/archives/board".into(), format!("/api/supervision/archives/board?month={month}")),
            ("/api/alarms".into(), "/api/alarms".into()),
        ] {
            let (s, v) = app.call_documented(Method::GET, &route, &uri, t, None).await;
            assert_eq!(s, StatusCode::OK, "{who} {uri}: {v}");
        }
        for (list, item) in [
            (URL, "/api/supervision/documents/{id}"),
            ("/api/supervision/hazards", "/api/supervision/hazards/{id}"),
            ("/api/supervision/incidents", "/api/supervision/incidents/{id}"),
            ("/api/supervision/penalties", "/api/supervision/penalties/{id}"),
            ("/api/alarms", "/api/alarms/{id}"),
        ] {
            let (s, v) = app.get(list, token).await;
            ok(s, &v);
            if v["items"].as_array().unwrap().is_empty() {
                // The bureau sees every demo record; an enterprise only its own.
                assert_eq!(who, "operator", "the demo has {list}");
                continue;
            }
            let uri = item.replace("{id}", &first_id(&v));
            let (s, v) = app.call_documented(Method::GET, item, &uri, t, None).await;
            assert_eq!(s, StatusCode::OK, "{who} {uri}: {v}");
        }
    }
    // The bureau's view of one recipient, with its steps (a document the bus company received).
    let (_, v) = app.get(URL, &bus).await;
    let doc_id = first_id(&v);
    let route = "/api/supervision/documents/{id}/recipients/{org_id}";
    let uri = format!("{URL}/{doc_id}/recipients/{bus_org}");
    let (s, v) = app.call_documented(Method::GET, route, &uri, Some(&reg), None).await;
    ok(s, &v);
    let (s, v) = app
        .call_documented(
            Method::GET,
            "/api/supervision/credit/enterprises/{org_id}",
            &format!("/api/supervision/credit/enterprises/{bus_org}?year={year}"),
            Some(&reg),
            None,
        )
        .await;
    ok(s, &v);
    // An empty file to an import: the 422 carries the (empty) report, as documented.
    let (s, v) = app
        .call_raw(Method::POST, "/api/supervision/practitioners/import", Some(&bus), Some(Vec::new()), Some("text/csv"))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!((v["field"].as_str(), v["total_rows"].as_u64()), (Some("file"), Some(0)), "{v}");
    let doc = app.openapi().await;
    kernel::testing::check_documented(
        &doc,
        &Method::POST,
        "/api/supervision/practitioners/import",
        s,
        "application/problem+json",
        &v,
    )
    .unwrap();
}
