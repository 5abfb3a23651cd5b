//! Assessment figures (考核指标) at the HTTP boundary, with figures computed by hand: rates per
//! enterprise for a day and a month, the local day boundary, scoping, the xlsx export, the
//! closed-day job's idempotence and the bad-input sweep; on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alarms::model::{NewAlarm, Severity};
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use transport::TransportModule;
use transport::assessment::{self, day_label, day_start_ms, local_day_of};
use transport::positions::{Position, STATUS_ACC, STATUS_FIXED};

/// 0.01° of latitude on the mean sphere (R = 6 371 008.8 m), metres: the unit of every track here.
const STEP_M: f64 = 1_111.950_8;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn pos(vehicle: &str, t_ms: i64, lat: f64) -> Position {
    Position {
        vehicle_id: vehicle.into(),
        device_ms: t_ms,
        received_ms: t_ms + 500,
        lat,
        lon: 117.0,
        altitude_m: 8,
        speed_kmh: 60.0,
        heading: 0,
        alarm: 0,
        status: STATUS_FIXED | STATUS_ACC,
        mileage_km: None,
        extras: vec![],
    }
}

struct Fixture {
    app: TestApp,
    module: TransportModule,
    /// Three of 顺达's 40 vehicles: A, B and C (C never reports).
    a: String,
    b: String,
    c: String,
    plate_a: String,
    shunda: String,
    reg: String,
    op: String,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let module = TransportModule::new();
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(module.clone()), Arc::new(alarms::AlarmsModule::default())];
    let app = TestApp::spawn_with(backend, modules, |_| {}).await?;
    let op = app.login("shunda.zhao").await;
    let reg = app.login("jt.liu").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=3", &op).await;
    let id = |i: usize| v["items"][i]["id"].as_str().unwrap().to_string();
    let shunda = app.org_id("shunda").await;
    Some(Fixture {
        a: id(0),
        b: id(1),
        c: id(2),
        plate_a: v["items"][0]["plate"].as_str().unwrap().to_string(),
        shunda,
        reg,
        op,
        module,
        app,
    })
}

impl Fixture {
    async fn ingest(&self, batch: &[Position]) {
        transport::ingest::ingest(&self.app.platform.state, &self.module.live, batch).await.unwrap();
    }

    async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.app.get(uri, token).await
    }

    /// The row of `org` in an assessment.
    async fn row(&self, query: &str, token: &str, org: &str) -> Value {
        let (s, v) = self.get(&format!("/api/transport/assessment?{query}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["rows"].as_array().unwrap().iter().find(|r| r["org_id"] == org).cloned().unwrap_or(Value::Null)
    }

    async fn alarm(&self, kind: &str, vehicle: &str, started_ms: i64, handled_after: Option<i64>) {
        let st = &self.app.platform.state;
        let new = NewAlarm {
            domain: "transport".into(),
            kind: kind.into(),
            severity: Severity::Moderate,
            subject_type: "vehicle".into(),
            subject_id: vehicle.into(),
            subject_label: self.plate_a.clone(),
            org_id: self.shunda.clone(),
            started_ms,
            at_ms: started_ms,
            rule_version: 1,
            details: json!({}),
            evidence: json!({}),
        };
        let (a, _) = alarms::service::raise(&st.store, &st.bus, &new).await.unwrap();
        if let Some(after) = handled_after {
            // The desk's handling at a chosen time (the API stamps the present).
            let mut tx = st.store.begin().await.unwrap();
            sqlx::query(&st.store.sql("UPDATE alarms SET status = 'handled', handled_ms = $1 WHERE id = $2"))
                .bind(started_ms + after)
                .bind(a.id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }
}

fn at(day: i64, h: i64, m: i64) -> i64 {
    day_start_ms(day) + h * HOUR + m * MINUTE
}

fn today() -> i64 {
    local_day_of(kernel::store::now_ms())
}

fn close(v: &Value, expected: f64, tolerance: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() <= tolerance)
}

/// A: 16 points, 10 steps of 0.01°, then 15 km after 20 minutes (a hole: incomplete), then 4 steps.
fn vehicle_a(a: &str, day: i64) -> Vec<Position> {
    let mut v: Vec<Position> = (0..=10).map(|k| pos(a, at(day, 10, k), 39.0 + k as f64 * 0.01)).collect();
    for k in 0..=4 {
        v.push(pos(a, at(day, 10, 30 + k), 39.235 + k as f64 * 0.01));
    }
    v
}

/// B: 10 records: 5 steps, an invalid record (no fix, zeros), a drift point (61 km in 2 min),
/// then 2 steps from where it was.
fn vehicle_b(b: &str, day: i64) -> Vec<Position> {
    let mut v: Vec<Position> = (0..=5).map(|k| pos(b, at(day, 12, k), 39.5 + k as f64 * 0.01)).collect();
    v.push(Position { lat: 0.0, lon: 0.0, status: STATUS_ACC, ..pos(b, at(day, 12, 6), 0.0) });
    v.push(pos(b, at(day, 12, 7), 40.10));
    v.push(pos(b, at(day, 12, 8), 39.56));
    v.push(pos(b, at(day, 12, 9), 39.57));
    v
}

async fn day_figures_scope_and_export(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    let d = today() - 3;
    let date = day_label(d);
    f.ingest(&vehicle_a(&f.a, d)).await;
    f.ingest(&vehicle_b(&f.b, d)).await;
    // Alarms: three overspeed (one at night), one fatigue, a pre-warning (not an alarm of the
    // assessment) and one overspeed of the day before. Handled in the day: 30 min, 90 min, and
    // the one of the day before, 30 min after its start, just after midnight.
    f.alarm("overspeed", &f.a, at(d, 10, 5), Some(30 * MINUTE)).await;
    f.alarm("night_overspeed", &f.a, at(d, 23, 0), None).await;
    f.alarm("overspeed", &f.b, at(d, 12, 3), None).await;
    f.alarm("fatigue_continuous", &f.a, at(d, 14, 0), Some(90 * MINUTE)).await;
    f.alarm("fatigue_continuous_pre_warning", &f.a, at(d, 13, 30), None).await;
    f.alarm("overspeed", &f.a, at(d - 1, 23, 50), Some(30 * MINUTE)).await;

    let (s, v) = f.get(&format!("/api/transport/assessment?period=day&date={date}"), &f.reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["period"], "day");
    assert_eq!(v["date"], date.as_str());
    assert_eq!(v["from"], kernel::store::ms_to_rfc3339(day_start_ms(d)).as_str());
    assert!(v["from"].as_str().unwrap().ends_with("T16:00:00Z"), "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 4, "the four enterprises of the transport domain: {v}");
    let r = f.row(&format!("period=day&date={date}"), &f.reg, &f.shunda).await;
    assert_eq!(r["org_name"], "天津武清顺达危险货物运输有限公司");
    assert_eq!((r["vehicles"].as_i64(), r["entered"].as_i64(), r["online"].as_i64()), (Some(40), Some(2), Some(2)));
    assert_eq!(r["network_entry_rate"], 0.05, "2 of 40: {r}");
    assert_eq!(r["online_rate"], 1.0);
    // Mileage: A 27.5 steps of which 13.5 in the hole, B 7 steps: 21 complete of 34.5.
    assert!(close(&r["mileage_km"], 34.5 * STEP_M / 1000.0, 0.002), "{r}");
    assert!(close(&r["complete_mileage_km"], 21.0 * STEP_M / 1000.0, 0.002), "{r}");
    assert_eq!(r["track_completeness_rate"], 0.6087, "21/34.5: {r}");
    assert_eq!((r["records"].as_i64(), r["qualified_records"].as_i64()), (Some(26), Some(25)));
    assert_eq!(r["data_qualified_rate"], 0.9615, "25/26: {r}");
    assert_eq!(r["drift_vehicles"], 1);
    assert_eq!(r["drift_rate"], 0.5);
    assert_eq!((r["overspeed_alarms"].as_i64(), r["fatigue_alarms"].as_i64()), (Some(3), Some(1)), "{r}");
    assert_eq!(r["overspeed_per_100"], 150.0, "3 per 2 online vehicles");
    assert_eq!(r["fatigue_per_100"], 50.0);
    assert_eq!(r["handled_alarms"], 3);
    assert_eq!(r["mean_handling_minutes"], 50.0, "(30 + 90 + 30) / 3: {r}");
    // An enterprise whose vehicles never reported: rates without a denominator are null.
    let bus_org = f.app.org_id("wuqing_bus").await;
    let other = f.row(&format!("period=day&date={date}"), &f.reg, &bus_org).await;
    assert_eq!((other["vehicles"].as_i64(), other["entered"].as_i64()), (Some(80), Some(0)), "{other}");
    assert_eq!(other["network_entry_rate"], 0.0);
    assert!(other["online_rate"].is_null() && other["track_completeness_rate"].is_null(), "{other}");
    // The day is stored now (computed on its first request): only the vehicles that reported.
    let stored: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM transport_assessment_days WHERE day = {d}"))
        .fetch_one(f.app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(stored, 2);

    // Scoping: the operator sees their own enterprise only; another enterprise's operator sees
    // nothing of it and is refused its org_id; other roles are refused.
    let (_, v) = f.get(&format!("/api/transport/assessment?date={date}"), &f.op).await;
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["org_id"], f.shunda.as_str());
    assert_eq!(rows[0]["online"], 2);
    let bus = f.app.login("bus.sun").await;
    let (_, v) = f.get(&format!("/api/transport/assessment?date={date}"), &bus).await;
    assert!(v["rows"].as_array().unwrap().iter().all(|r| r["org_id"] == bus_org.as_str()), "{v}");
    let (s, v) = f.get(&format!("/api/transport/assessment?date={date}&org_id={}", f.shunda), &bus).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::FORBIDDEN, Some("org_id")), "{v}");
    let (s, _) = f.get(&format!("/api/transport/assessment.xlsx?date={date}&org_id={}", f.shunda), &bus).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let doc = f.app.login("dr.yang").await;
    let (s, _) = f.get(&format!("/api/transport/assessment?date={date}"), &doc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f.app.call(Method::GET, &format!("/api/transport/assessment?date={date}"), None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = f.get(&format!("/api/transport/assessment?date={date}&org_id={}", f.shunda), &f.reg).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);

    // Bad periods are 400 problems naming the parameter.
    let tomorrow = day_label(today() + 1);
    for (q, field) in [
        ("period=week&date=2026-11-01", "period"),
        ("date=2026-13-01", "date"),
        ("period=month&date=2026-11-01", "date"),
        ("period=day&date=2026-11", "date"),
        ("period=day", "date"),
        (&format!("date={tomorrow}") as &str, "date"),
        ("date=1999-12-31", "date"),
    ] {
        let (s, v) = f.get(&format!("/api/transport/assessment?{q}"), &f.reg).await;
        assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{q}: {v}");
    }

    // Today is computed from the positions on request, not stored.
    let t = today();
    f.ingest(&[pos(&f.c, day_start_ms(t) + 1000, 39.9), pos(&f.c, day_start_ms(t) + 2000, 39.9)]).await;
    let r = f.row(&format!("date={}", day_label(t)), &f.op, &f.shunda).await;
    assert_eq!(
        (r["online"].as_i64(), r["records"].as_i64(), r["entered"].as_i64()),
        (Some(1), Some(2), Some(3)),
        "{r}"
    );
    let stored: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM transport_assessment_days WHERE day = {t}"))
        .fetch_one(f.app.platform.state.store.reader())
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // C reported only after day d: it had not entered the network by its end.
    let r = f.row(&format!("date={date}"), &f.op, &f.shunda).await;
    assert_eq!(r["entered"], 2);

    // The workbook: a title with the period, Chinese headers with the English beside them, the
    // same figures.
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/transport/assessment.xlsx?period=day&date={date}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.reg))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = f.app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = resp.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_string();
    assert_eq!(disposition, format!("attachment; filename=\"assessment-{date}.xlsx\""));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    use calamine::{Data, Reader};
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let sheet = wb.worksheet_range("考核指标").unwrap();
    let text = |r: u32, c: u32| match sheet.get_value((r, c)) {
        Some(Data::String(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    let number = |r: u32, c: u32| match sheet.get_value((r, c)) {
        Some(Data::Float(x)) => *x,
        Some(Data::Int(x)) => *x as f64,
        other => panic!("({r}, {c}) is {other:?}"),
    };
    assert!(text(0, 0).contains(&date) && text(0, 0).contains("考核指标"), "{}", text(0, 0));
    assert_eq!(text(2, 0), "企业 Enterprise");
    assert_eq!(text(2, 3), "入网率 Network-entry rate");
    assert_eq!(text(2, 5), "上线率 Online rate");
    assert_eq!(text(2, 8), "轨迹完整率 Track completeness rate");
    let row = (3..7).find(|r| text(*r, 0) == "天津武清顺达危险货物运输有限公司").expect("the enterprise's row");
    assert_eq!(number(row, 1), 40.0);
    assert_eq!(number(row, 3), 0.05);
    assert_eq!(number(row, 5), 1.0);
    assert_eq!(number(row, 8), 0.6087);
    assert_eq!(number(row, 11), 0.9615);
    let bus_row = (3..7).find(|r| text(*r, 0) == "武清区公共交通有限公司").expect("the bus company's row");
    assert!(
        matches!(sheet.get_value((bus_row, 5)), None | Some(Data::Empty)),
        "no online rate without entered vehicles"
    );
}

#[tokio::test]
async fn sqlite_day_figures_scope_and_export() {
    day_figures_scope_and_export(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_day_figures_scope_and_export() {
    day_figures_scope_and_export(Backend::Postgres).await;
}

/// The previous month's label and the local day numbers of its 10th and 11th.
fn previous_month() -> (String, i64, i64) {
    let now = kernel::store::now_ms();
    let label = day_label(today());
    let (y, m): (i32, u32) = (label[..4].parse().unwrap(), label[5..7].parse().unwrap());
    let (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    let month = format!("{y:04}-{m:02}");
    let d10 = assessment::parse_span(Some("day"), Some(&format!("{month}-10")), now).unwrap().first_day;
    (month, d10, d10 + 1)
}

async fn month_aggregates_vehicles(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    let (month, d10, d11) = previous_month();
    // A reports on both days, B (with its drift point and invalid record) on the 10th, C on the 11th.
    f.ingest(&vehicle_a(&f.a, d10)).await;
    f.ingest(&vehicle_a(&f.a, d11)).await;
    f.ingest(&vehicle_b(&f.b, d10)).await;
    f.ingest(&(0..=2).map(|k| pos(&f.c, at(d11, 9, k), 39.3 + k as f64 * 0.01)).collect::<Vec<_>>()).await;
    f.alarm("overspeed", &f.a, at(d10, 10, 5), None).await;
    f.alarm("fatigue_daily", &f.a, at(d11, 20, 0), None).await;

    let r = f.row(&format!("period=day&date={}", day_label(d10)), &f.reg, &f.shunda).await;
    assert_eq!((r["entered"].as_i64(), r["online"].as_i64()), (Some(2), Some(2)), "{r}");
    let r = f.row(&format!("period=day&date={}", day_label(d11)), &f.reg, &f.shunda).await;
    assert_eq!(
        (r["entered"].as_i64(), r["online"].as_i64(), r["drift_vehicles"].as_i64()),
        (Some(3), Some(2), Some(0))
    );

    let (s, v) = f.get(&format!("/api/transport/assessment?period=month&date={month}"), &f.reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["period"], "month");
    assert_eq!(v["date"], month.as_str());
    let r = v["rows"].as_array().unwrap().iter().find(|r| r["org_id"] == f.shunda.as_str()).unwrap().clone();
    // Vehicles counted once for the month: A online on two days is one online vehicle.
    assert_eq!(
        (r["entered"].as_i64(), r["online"].as_i64(), r["drift_vehicles"].as_i64()),
        (Some(3), Some(3), Some(1)),
        "{r}"
    );
    assert_eq!(r["network_entry_rate"], 0.075, "3 of 40");
    assert_eq!(r["online_rate"], 1.0);
    assert!((r["drift_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-4, "{r}");
    // Records and mileage are summed: A 16 + 16, B 10 (one invalid), C 3.
    assert_eq!((r["records"].as_i64(), r["qualified_records"].as_i64()), (Some(45), Some(44)));
    // Mileage: A 2 × 27.5 steps (27 of them in holes), B 7, C 2: 64 steps, 37 complete.
    assert!(close(&r["mileage_km"], 64.0 * STEP_M / 1000.0, 0.002), "{r}");
    assert_eq!(r["track_completeness_rate"], 0.5781, "37/64: {r}");
    assert_eq!((r["overspeed_alarms"].as_i64(), r["fatigue_alarms"].as_i64()), (Some(1), Some(1)));
    assert!(close(&r["overspeed_per_100"], 33.33, 1e-9), "{r}");
    // The month's closed days are all stored now, and once each.
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM transport_assessment_computed WHERE day >= {} AND day <= {}",
        d10 - 9,
        d10 + 18
    ))
    .fetch_one(f.app.platform.state.store.reader())
    .await
    .unwrap();
    assert_eq!(n, 28, "days 1 to 28 of the month");
}

#[tokio::test]
async fn sqlite_month_aggregates_vehicles() {
    month_aggregates_vehicles(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_month_aggregates_vehicles() {
    month_aggregates_vehicles(Backend::Postgres).await;
}

/// Local midnight (16:00 UTC) divides the days: 23:59 belongs to the day, 00:00:00.000 to the
/// next, and the step across midnight to neither.
async fn local_midnight_divides_days(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    let d = today() - 5;
    let midnight = day_start_ms(d + 1);
    assert!(kernel::store::ms_to_rfc3339(midnight).ends_with("T16:00:00Z"));
    f.ingest(&[pos(&f.a, midnight - MINUTE, 39.0), pos(&f.a, midnight, 39.01), pos(&f.a, midnight + MINUTE, 39.02)])
        .await;
    let r = f.row(&format!("date={}", day_label(d)), &f.op, &f.shunda).await;
    assert_eq!(
        (r["records"].as_i64(), r["online"].as_i64(), r["mileage_km"].as_f64()),
        (Some(1), Some(1), Some(0.0)),
        "{r}"
    );
    let r = f.row(&format!("date={}", day_label(d + 1)), &f.op, &f.shunda).await;
    assert_eq!(r["records"], 2, "{r}");
    assert!(close(&r["mileage_km"], STEP_M / 1000.0, 0.001), "{r}");
    let r = f.row(&format!("date={}", day_label(d - 1)), &f.op, &f.shunda).await;
    assert_eq!((r["records"].as_i64(), r["online"].as_i64()), (Some(0), Some(0)), "{r}");
}

#[tokio::test]
async fn sqlite_local_midnight_divides_days() {
    local_midnight_divides_days(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_local_midnight_divides_days() {
    local_midnight_divides_days(Backend::Postgres).await;
}

async fn stored_days(f: &Fixture, day: i64) -> Vec<(String, i64, i64, i64, f64, f64, i64, i64)> {
    let store = &f.app.platform.state.store;
    let rows = sqlx::query(&format!(
        "SELECT vehicle_id, points, qualified, drift, mileage_m, incomplete_m, first_ms, last_ms \
         FROM transport_assessment_days WHERE day = {day} ORDER BY vehicle_id"
    ))
    .fetch_all(store.reader())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            use kernel::store::col;
            (
                col(r, "vehicle_id").unwrap(),
                col(r, "points").unwrap(),
                col(r, "qualified").unwrap(),
                col(r, "drift").unwrap(),
                col(r, "mileage_m").unwrap(),
                col(r, "incomplete_m").unwrap(),
                col(r, "first_ms").unwrap(),
                col(r, "last_ms").unwrap(),
            )
        })
        .collect()
}

/// The hourly job computes the closed days of its look-back once; running it, or one day's
/// computation, again changes nothing; a late upload is taken in by computing the day again.
async fn closed_day_job_is_idempotent(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    let store = &f.app.platform.state.store;
    let d = today() - 3;
    f.ingest(&vehicle_a(&f.a, d)).await;
    f.ingest(&vehicle_b(&f.b, d)).await;
    let now = kernel::store::now_ms();
    let done = assessment::catch_up(store, now).await.unwrap();
    assert_eq!(done.len() as i64, assessment::LOOK_BACK_DAYS, "{done:?}");
    assert!(done.contains(&d) && !done.contains(&today()));
    let first = stored_days(&f, d).await;
    assert_eq!(first.len(), 2);
    let a = first.iter().find(|r| r.0 == f.a).unwrap();
    assert_eq!((a.1, a.2, a.3), (16, 16, 0));
    assert!((a.4 - 27.5 * STEP_M).abs() < 1.0 && (a.5 - 13.5 * STEP_M).abs() < 1.0, "{a:?}");
    assert_eq!((a.6, a.7), (at(d, 10, 0), at(d, 10, 34)));
    let b = first.iter().find(|r| r.0 == f.b).unwrap();
    assert_eq!((b.1, b.2, b.3), (10, 9, 1));

    assert!(assessment::catch_up(store, now).await.unwrap().is_empty(), "nothing left to compute");
    assert_eq!(assessment::compute_day(store, d).await.unwrap(), 2);
    assert_eq!(stored_days(&f, d).await, first);
    let marks: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM transport_assessment_computed WHERE day = {d}"))
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(marks, 1);
    let (_, v) = f.get(&format!("/api/transport/assessment?date={}", day_label(d)), &f.op).await;
    assert_eq!(v["rows"][0]["track_completeness_rate"], 0.6087, "{v}");

    // A blind-area upload for C arrives late: the stored day has it once computed again.
    f.ingest(&[pos(&f.c, at(d, 8, 0), 39.2)]).await;
    assert_eq!(assessment::compute_day(store, d).await.unwrap(), 3);
    assert_eq!(stored_days(&f, d).await.len(), 3);
    let (_, v) = f.get(&format!("/api/transport/assessment?date={}", day_label(d)), &f.op).await;
    assert_eq!((v["rows"][0]["online"].as_i64(), v["rows"][0]["records"].as_i64()), (Some(3), Some(27)), "{v}");
}

#[tokio::test]
async fn sqlite_closed_day_job_is_idempotent() {
    closed_day_job_is_idempotent(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_closed_day_job_is_idempotent() {
    closed_day_job_is_idempotent(Backend::Postgres).await;
}

async fn bad_input(backend: Backend) {
    let Some(f) = fixture(backend).await else { return };
    let tokens = vec![None, Some(f.reg.clone()), Some(f.op.clone())];
    assert!(f.app.sweep_bad_input(&tokens).await > 0);
    // The sweep signs its callers out (it calls the logout route too).
    let reg = f.app.login("jt.liu").await;
    for q in ["", "?date=%00", "?date=2026-11-28&period=%E6%AD%A6", "?date=9999-99", "?period=month&date=2026-1"] {
        for path in ["/api/transport/assessment", "/api/transport/assessment.xlsx"] {
            let (s, v) = f.get(&format!("{path}{q}"), &reg).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}{q}: {v}");
        }
    }
}

#[tokio::test]
async fn sqlite_assessment_bad_input() {
    bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_assessment_bad_input() {
    bad_input(Backend::Postgres).await;
}
