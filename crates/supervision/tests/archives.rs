//! Monthly archives through the HTTP API on both backends (PostgreSQL when `WUQING_TEST_PG` names
//! a server): filing an uploaded file under a month and kind, the checks by field, whose files
//! may be filed, who sees what, the board's `uploaded`/`late`/`missing`/`pending`, the bureau's
//! kinds, audit, the daily flag of missing archives with an injected day (once per enterprise
//! and month), and the bad-input sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use axum::http::{Method, StatusCode};
use common::{app, upload_pdf};
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use supervision::dates::{Month, date_of, midnight_ms, today_days};

both_backends!(archives_are_filed_checked_scoped_and_boarded, missing_archives_are_flagged_once_per_enterprise_month);

const URL: &str = "/api/supervision/archives";
const DUTY: &str = "monitoring_duty_log";
const MEETING: &str = "safety_meeting_minutes";
const EDUCATION: &str = "driver_safety_education";

fn filing(month: Month, kind: &str, file: &str) -> Value {
    json!({"month": month.to_string(), "kind": kind, "file_id": file})
}

/// One enterprise's row of a board.
fn row<'a>(board: &'a Value, org: &str) -> &'a Value {
    board["enterprises"].as_array().unwrap().iter().find(|r| r["org_id"] == org).unwrap_or_else(|| panic!("{board}"))
}

/// The status of one kind in an enterprise's row.
fn status<'a>(board: &'a Value, org: &str, kind: &str) -> &'a str {
    let r = row(board, org);
    r["kinds"].as_array().unwrap().iter().find(|c| c["kind"] == kind).unwrap()["status"].as_str().unwrap()
}

async fn board(app: &TestApp, token: &str, month: Month) -> Value {
    let (s, v) = app.get(&format!("{URL}/board?month={month}"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn archives_are_filed_checked_scoped_and_boarded(app: TestApp) {
    let reg = app.login("jt.liu").await;
    let coach = app.login("coach.zhou").await;
    let bus = app.login("bus.sun").await;
    let doc = app.login("dr.wu").await;
    let (coach_org, bus_org, shunda_org, taxi_org) = (
        app.org_id("jingjin_coach").await,
        app.org_id("wuqing_bus").await,
        app.org_id("shunda").await,
        app.org_id("yangcun_taxi").await,
    );
    let today = today_days();
    let this = Month::of_day(today);
    let (last, before) = (this.prev(), this.prev().prev());

    // The bureau's three kinds, seeded with the schema.
    let (s, kinds) = app.get(&format!("{URL}/kinds"), &coach).await;
    assert_eq!(s, StatusCode::OK, "{kinds}");
    let codes: Vec<&str> = kinds.as_array().unwrap().iter().map(|k| k["code"].as_str().unwrap()).collect();
    assert_eq!(codes, [DUTY, MEETING, EDUCATION]);
    assert_eq!(kinds[0]["name"], "动态监控值班记录");

    // The coach company files this month's duty log: in time.
    let file = upload_pdf(&app, &coach, "值班记录.pdf").await;
    let (s, v) = app.post(URL, &coach, filing(this, DUTY, &file)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["late"].as_bool(), v["name"].as_str(), v["uploaded_by"].as_str()),
        (Some(false), Some("值班记录.pdf"), Some("coach.zhou"))
    );
    let id = v["id"].as_str().unwrap().to_string();
    // The same file again in the same place is a conflict; in another kind it is filed.
    let (s, v) = app.post(URL, &coach, filing(this, DUTY, &file)).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("file_id")), "{v}");

    // Bad input names the field.
    let bus_file = upload_pdf(&app, &bus, "bus.pdf").await;
    for (body, named) in [
        (filing(this.next(), DUTY, &file), "month"),
        (json!({"month": "2019-12", "kind": DUTY, "file_id": file}), "month"),
        (json!({"month": "2026-13", "kind": DUTY, "file_id": file}), "month"),
        (json!({"month": "2026-1", "kind": DUTY, "file_id": file}), "month"),
        (filing(this, "tea_breaks", &file), "kind"),
        (filing(this, MEETING, &bus_file), "file_id"),
        (filing(this, MEETING, "00000000-0000-0000-0000-000000000000"), "file_id"),
        (json!({"month": this.to_string(), "kind": MEETING, "file_id": file, "note": "a\u{0001}"}), "note"),
    ] {
        let (s, v) = app.post(URL, &coach, body.clone()).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(named)), "{body}: {v}");
    }
    // The bureau and other roles file nothing.
    assert_eq!(app.post(URL, &reg, filing(this, MEETING, &file)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post(URL, &doc, filing(this, MEETING, &file)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("{URL}/board?month={this}"), &doc).await.0, StatusCode::FORBIDDEN);

    // Filed for the month before last: after its 5th, so late.
    let old = upload_pdf(&app, &coach, "minutes.pdf").await;
    let (s, v) = app
        .post(URL, &coach, json!({"month": before.to_string(), "kind": MEETING, "file_id": old, "note": "补交"}))
        .await;
    assert_eq!((s, v["late"].as_bool()), (StatusCode::CREATED, Some(true)), "{v}");

    // Another enterprise's operator finds none of it.
    assert_eq!(app.get(&format!("{URL}/{id}"), &bus).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{URL}?org_id={coach_org}"), &bus).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("{URL}/board?month={this}&org_id={coach_org}"), &bus).await.0, StatusCode::FORBIDDEN);
    let (s, v) = app.get(&format!("{URL}/{id}"), &reg).await;
    assert_eq!((s, v["org_id"].as_str()), (StatusCode::OK, Some(coach_org.as_str())), "{v}");
    let (_, mine) = app.get(URL, &coach).await;
    assert_eq!(mine["total"], 2, "{mine}");
    let (_, v) = app.get(&format!("{URL}?org_id={shunda_org}&month={before}"), &reg).await;
    assert_eq!(v["total"], 3, "shunda filed every kind: {v}");

    // The board this month: the duty log is in, the rest pending (the 5th of next month is ahead).
    let b = board(&app, &reg, this).await;
    assert_eq!(b["enterprises"].as_array().unwrap().len(), 4, "{b}");
    assert_eq!(b["due"], date_of(this.next().day(5)));
    assert_eq!(status(&b, &coach_org, DUTY), "uploaded");
    assert_eq!(status(&b, &coach_org, MEETING), "pending");
    assert_eq!(row(&b, &coach_org)["kinds"][0]["files"][0]["file_id"], file.as_str());
    // The month before last, long due: shunda's in, the taxi company's late, the coach company's
    // minutes late and the rest missing.
    let b = board(&app, &reg, before).await;
    for k in [DUTY, MEETING, EDUCATION] {
        assert_eq!(status(&b, &shunda_org, k), "uploaded", "{b}");
        assert_eq!(status(&b, &taxi_org, k), "late", "{b}");
        assert_eq!(status(&b, &bus_org, k), "uploaded", "{b}");
    }
    assert_eq!((status(&b, &coach_org, MEETING), status(&b, &coach_org, DUTY)), ("late", "missing"));
    assert_eq!((row(&b, &coach_org)["missing"].as_i64(), row(&b, &coach_org)["late"].as_i64()), (Some(2), Some(1)));
    // Last month: the bus company's education record is missing from the 5th of this month on,
    // pending before.
    let b = board(&app, &reg, last).await;
    let expected = if today >= this.day(5) { "missing" } else { "pending" };
    assert_eq!(status(&b, &bus_org, EDUCATION), expected, "{b}");
    assert_eq!(status(&b, &bus_org, DUTY), "uploaded");
    // An enterprise sees its own row only.
    let own = board(&app, &bus, last).await;
    assert_eq!(own["enterprises"].as_array().unwrap().len(), 1);
    assert_eq!(own["enterprises"][0]["org_id"], bus_org.as_str());
    for (q, field) in [("month=2026-13", "month"), ("month=2019-12", "month"), ("", "month")] {
        let (s, v) = app.get(&format!("{URL}/board?{q}"), &reg).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{q}: {v}");
    }
    let (s, _) = app.get(&format!("{URL}/board?month={}", this.next()), &reg).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The bureau adds a kind (the board asks for it) and retires it again (it leaves the board
    // and takes no files); enterprises do not keep the list.
    let new = json!({"code": "vehicle_maintenance", "name": "车辆维护记录", "name_en": "Vehicle maintenance record"});
    assert_eq!(app.post(&format!("{URL}/kinds"), &coach, new.clone()).await.0, StatusCode::FORBIDDEN);
    let (s, v) = app.post(&format!("{URL}/kinds"), &reg, new.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app.post(&format!("{URL}/kinds"), &reg, new).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::CONFLICT, Some("code")), "{v}");
    let (s, v) =
        app.post(&format!("{URL}/kinds"), &reg, json!({"code": "Bad Code", "name": "x", "name_en": "x"})).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")), "{v}");
    assert_eq!(board(&app, &reg, this).await["kinds"].as_array().unwrap().len(), 4);
    let retire = json!({"name": "车辆维护记录", "name_en": "Vehicle maintenance record", "active": false});
    let (s, v) =
        app.call(Method::PUT, &format!("{URL}/kinds/vehicle_maintenance"), Some(&reg), Some(retire.clone())).await;
    assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    let (s, _) = app.call(Method::PUT, &format!("{URL}/kinds/no_such_kind"), Some(&reg), Some(retire)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(board(&app, &reg, this).await["kinds"].as_array().unwrap().len(), 3);
    let (s, v) = app.post(URL, &coach, filing(this, "vehicle_maintenance", &old)).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("kind")), "{v}");
    let (_, all) = app.get(&format!("{URL}/kinds?all=true"), &reg).await;
    assert_eq!(all.as_array().unwrap().len(), 4);

    // Audit: each filing and each change of the kinds.
    let aud = app.login("auditor").await;
    let (_, v) = app.get("/api/audit?action=archive.attach&actor=coach.zhou", &aud).await;
    assert_eq!(v["total"], 2, "{v}");
    let (_, v) = app.get("/api/audit?action=archive_kind.create&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = app.get("/api/audit?action=archive_kind.update&actor=jt.liu", &aud).await;
    assert_eq!(v["total"], 1, "{v}");

    let tokens = [None, Some(reg), Some(coach)];
    assert!(app.sweep_bad_input(&tokens).await > 0);
}

async fn missing_archives_are_flagged_once_per_enterprise_month(app: TestApp) {
    let st = app.platform.state.clone();
    let reg = app.login("jt.liu").await;
    let bus = app.login("bus.sun").await;
    let (coach_org, bus_org) = (app.org_id("jingjin_coach").await, app.org_id("wuqing_bus").await);
    let this = Month::of_day(today_days());
    let last = this.prev();

    // On the 5th: last month is flagged. The demo's bus company misses one kind, the coach
    // company everything; shunda and the taxi company (late, but complete) are not flagged.
    let fifth = this.day(5);
    assert_eq!(supervision::archives::flag_missing(&st, fifth).await.unwrap(), 2);
    assert_eq!(supervision::archives::flag_missing(&st, fifth).await.unwrap(), 0, "once");
    assert_eq!(supervision::archives::flag_missing(&st, fifth + 10).await.unwrap(), 0, "still once");
    let (_, desk) = app.get("/api/alarms?domain=supervision&kind=archive_missing&limit=500", &reg).await;
    assert_eq!(desk["total"], 2, "{desk}");
    let of = |org: &str| desk["items"].as_array().unwrap().iter().find(|a| a["org_id"] == org).unwrap().clone();
    let a = of(&bus_org);
    assert_eq!(
        (a["subject"]["type"].as_str(), a["subject"]["id"].as_str()),
        (Some("organisation"), Some(bus_org.as_str())),
        "{a}"
    );
    assert_eq!(a["details"]["missing"], json!(["driver_safety_education"]));
    assert_eq!(a["details"]["month"], last.to_string());
    assert!(a["subject"]["label"].as_str().unwrap().contains(&last.to_string()), "{a}");
    assert_eq!(a["started_at"], kernel::store::ms_to_rfc3339(midnight_ms(fifth)));
    assert_eq!(of(&coach_org)["details"]["missing"].as_array().unwrap().len(), 3);

    // The day before the 5th looks at the month before: only the coach company is missing there.
    assert_eq!(supervision::archives::flag_missing(&st, fifth - 1).await.unwrap(), 1);
    let (_, desk) = app.get("/api/alarms?domain=supervision&kind=archive_missing&limit=500", &reg).await;
    assert_eq!(desk["total"], 3, "{desk}");
    // The enterprise sees its own alarm.
    let (_, own) = app.get("/api/alarms?domain=supervision&kind=archive_missing", &bus).await;
    assert_eq!(own["total"], 1, "{own}");

    // Filing the missing kind late completes the month and ends the alarm's episode.
    let file = upload_pdf(&app, &bus, "education.pdf").await;
    let (s, v) = app.post(URL, &bus, filing(last, EDUCATION, &file)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, ended) = app.get(&format!("/api/alarms/{}", a["id"].as_str().unwrap()), &reg).await;
    assert!(ended["ended_at"].is_string(), "{ended}");
    assert_eq!(supervision::archives::flag_missing(&st, fifth).await.unwrap(), 0);
}
