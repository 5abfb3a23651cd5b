//! Vehicle import from xlsx and CSV (issue 7): 10 000 vehicles with 37 bad rows of varied faults
//! are reported row by row and column by column and nothing is imported until they are fixed, or
//! the valid ones are when asked; CSV in UTF-8 with BOM and in GBK; who may; the template; and
//! garbage refused with a 4xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kernel::testing::{Backend, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const IMPORT: &str = "/api/transport/vehicles/import";
const N: usize = 10_000;

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, vec![Arc::new(transport::TransportModule::new())], |_| {}).await
}

/// The plates registered before the import, so that rows repeating them are refused.
const REGISTERED: [&str; 6] = ["津E00001", "津E00002", "津E00003", "津E00004", "津E00005", "津E00006"];

#[derive(Clone, Copy, Debug)]
enum Fault {
    BadPlate,
    UnknownClass,
    BadVin,
    DuplicateInFile,
    AlreadyRegistered,
    EmptyRequired,
    BadColour,
}

const FAULTS: [Fault; 7] = [
    Fault::BadPlate,
    Fault::UnknownClass,
    Fault::BadVin,
    Fault::DuplicateInFile,
    Fault::AlreadyRegistered,
    Fault::EmptyRequired,
    Fault::BadColour,
];

/// 37 faults at known data rows (0-based; Excel row = index + 2), spread over the file, and the
/// column each one's error must name.
fn faults() -> Vec<(usize, Fault, &'static str)> {
    (0..37)
        .map(|k| {
            let f = FAULTS[k % FAULTS.len()];
            let column = match f {
                Fault::BadPlate | Fault::DuplicateInFile | Fault::AlreadyRegistered => "车牌号",
                Fault::UnknownClass => "车辆类型",
                Fault::BadVin => "VIN",
                Fault::EmptyRequired | Fault::BadColour => "车牌颜色",
            };
            (50 + k * 263, f, column)
        })
        .collect()
}

/// The rows of a fleet whose plates start with `prefix` (e.g. 津B): plate, colour, class, VIN
/// cells; with the faults when `bad`. Colours and classes as Chinese names and as codes.
fn rows(prefix: &str, bad: bool) -> Vec<[String; 4]> {
    let colours = ["黄色", "蓝色", "2", "yellow"];
    let classes = ["危险货物运输车", "重型货车", "taxi", "班线客车", "公交车"];
    let mut rows: Vec<[String; 4]> = (0..N)
        .map(|i| {
            let vin = if i % 3 == 0 { format!("LGAX2A136D{:07}", i) } else { String::new() };
            [format!("{prefix}{i:05}"), colours[i % 4].into(), classes[i % 5].into(), vin]
        })
        .collect();
    if bad {
        for (n, (i, f, _)) in faults().into_iter().enumerate() {
            let r = &mut rows[i];
            match f {
                Fault::BadPlate => r[0] = format!("{prefix}{:04}", i % 10_000),
                Fault::UnknownClass => r[2] = "坦克".into(),
                Fault::BadVin => r[3] = "LGAX2A136D100234I".into(),
                Fault::DuplicateInFile => {
                    // The first row's plate and colour.
                    r[0] = format!("{prefix}00000");
                    r[1] = "黄色".into();
                }
                Fault::AlreadyRegistered => {
                    r[0] = REGISTERED[n / FAULTS.len()].into();
                    r[1] = "黄色".into();
                }
                Fault::EmptyRequired => r[1] = String::new(),
                Fault::BadColour => r[1] = "紫色".into(),
            }
        }
    }
    rows
}

fn xlsx(rows: &[[String; 4]]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["车牌号", "车牌颜色", "车辆类型", "VIN"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (i, r) in rows.iter().enumerate() {
        for (c, v) in r.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            // A code typed into Excel is a number cell.
            match v.parse::<f64>() {
                Ok(x) if c == 1 => ws.write_number(i as u32 + 1, c as u16, x).unwrap(),
                _ => ws.write_string(i as u32 + 1, c as u16, v).unwrap(),
            };
        }
    }
    wb.save_to_buffer().unwrap()
}

async fn upload(app: &TestApp, query: &str, token: &str, body: Vec<u8>, ct: &str) -> (StatusCode, Value) {
    app.call_raw(Method::POST, &format!("{IMPORT}{query}"), Some(token), Some(body), Some(ct)).await
}

async fn count(app: &TestApp, token: &str) -> i64 {
    let (s, v) = app.get("/api/transport/vehicles?limit=1", token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    let store = &app.platform.state.store;
    sqlx::query_scalar::<_, i64>(&store.sql("SELECT COUNT(*) FROM audit_log WHERE action = $1"))
        .bind(action.to_string())
        .fetch_one(store.reader())
        .await
        .unwrap()
}

async fn ten_thousand_with_37_bad_rows(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let op = app.login("shunda.zhao").await;
    for p in REGISTERED {
        let (s, v) = app
            .post("/api/transport/vehicles", &op, json!({"plate": p, "plate_colour": "yellow", "class": "heavy_goods"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let before = count(&app, &op).await;
    let creates = audit_count(&app, "vehicle.create").await;

    // All or nothing: 422, exactly the 37 rows and their columns, nothing written.
    let bad = xlsx(&rows("津B", true));
    let (s, v) = upload(&app, "", &op, bad.clone(), XLSX).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "invalid_field");
    let want: Vec<(u64, String)> = faults().iter().map(|(i, _, c)| (*i as u64 + 2, c.to_string())).collect();
    let got: Vec<(u64, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["column"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, want, "{:#}", v["errors"]);
    assert_eq!(v["invalid_rows"].as_array().unwrap().len(), 37);
    assert_eq!(
        (v["total_rows"].as_u64(), v["valid_rows"].as_u64(), v["imported"].as_u64()),
        (Some(10_000), Some(9_963), Some(0))
    );
    assert_eq!((v["error_count"].as_u64(), v["mode"].as_str()), (Some(37), Some("all_or_nothing")));
    let reason = |row: u64| {
        v["errors"].as_array().unwrap().iter().find(|e| e["row"] == row).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(reason(50 + 3 * 263 + 2).contains("row 2"), "a repeated plate names its first row");
    assert!(reason(50 + 4 * 263 + 2).contains("registered"));
    assert!(reason(50 + 5 * 263 + 2).contains("required"));
    assert_eq!(count(&app, &op).await, before, "nothing imported");
    assert_eq!(audit_count(&app, "vehicle.import").await, 0);

    // A dry run of valid_only says what would be imported, and writes nothing.
    let (s, v) = upload(&app, "?mode=valid_only&dry_run=true", &op, bad.clone(), XLSX).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["valid_rows"].as_u64(), v["imported"].as_u64(), v["dry_run"].as_bool()),
        (Some(9_963), Some(0), Some(true))
    );
    assert_eq!(count(&app, &op).await, before);

    // Fixed, the whole file goes in: one transaction, one audit record, on the live map.
    let fixed = xlsx(&rows("津B", false));
    let t = std::time::Instant::now();
    let (s, v) = upload(&app, "", &op, fixed, XLSX).await;
    let took = t.elapsed();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["imported"].as_u64(), v["error_count"].as_u64()), (Some(10_000), Some(0)));
    eprintln!("{backend:?}: 10000-row xlsx import (all_or_nothing) took {took:?}");
    assert_eq!(count(&app, &op).await, before + 10_000);
    assert_eq!(audit_count(&app, "vehicle.import").await, 1);
    assert_eq!(audit_count(&app, "vehicle.create").await, creates, "no record per row");
    let (_, live) = app.get("/api/transport/live", &op).await;
    let on_map = live.as_array().unwrap().iter().filter(|x| x["plate"].as_str().unwrap().starts_with("津B")).count();
    assert_eq!(on_map, 10_000);
    // Row 8: colour code 2 typed as a number, class by Chinese name, a VIN.
    let (_, one) = app.get("/api/transport/vehicles?plate=B00006", &op).await;
    assert_eq!(one["items"][0]["vin"], "LGAX2A136D0000006");
    assert_eq!(
        (one["items"][0]["plate_colour"].as_str(), one["items"][0]["class"].as_str()),
        (Some("yellow"), Some("heavy_goods"))
    );
    // Importing the same file again: every row is now registered.
    let (s, v) = upload(&app, "", &op, xlsx(&rows("津B", false)[..10]), XLSX).await;
    assert_eq!((s, v["error_count"].as_u64()), (StatusCode::UNPROCESSABLE_ENTITY, Some(10)), "{v}");

    // valid_only imports the 9 963 good rows of another fleet and reports the 37 others.
    let t = std::time::Instant::now();
    let (s, v) = upload(&app, "?mode=valid_only", &op, xlsx(&rows("津D", true)), XLSX).await;
    let took = t.elapsed();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["imported"].as_u64(), v["error_count"].as_u64()), (Some(9_963), Some(37)));
    let skipped: Vec<u64> = v["invalid_rows"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
    assert_eq!(skipped, want.iter().map(|(r, _)| *r).collect::<Vec<_>>());
    eprintln!("{backend:?}: 10000-row xlsx import (valid_only, 37 skipped) took {took:?}");
    assert_eq!(count(&app, &op).await, before + 10_000 + 9_963);
    assert_eq!(audit_count(&app, "vehicle.import").await, 2);
}

#[tokio::test]
async fn sqlite_ten_thousand_vehicles_with_37_bad_rows_issue_7() {
    ten_thousand_with_37_bad_rows(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_ten_thousand_vehicles_with_37_bad_rows_issue_7() {
    ten_thousand_with_37_bad_rows(Backend::Postgres).await;
}

/// `车牌号,车牌颜色,车辆类型,车辆识别代号` and two vehicles, as Chinese Excel saves CSV (GBK).
const GBK_CSV: &[u8] = b"\xb3\xb5\xc5\xc6\xba\xc5,\xb3\xb5\xc5\xc6\xd1\xd5\xc9\xab,\xb3\xb5\xc1\xbe\xc0\xe0\xd0\xcd,\xb3\xb5\xc1\xbe\xca\xb6\xb1\xf0\xb4\xfa\xba\xc5\r\n\
\xbd\xf2G00001,\xbb\xc6\xc9\xab,\xce\xa3\xcf\xd5\xbb\xf5\xce\xef\xd4\xcb\xca\xe4\xb3\xb5,\r\n\
\xbd\xf2G00002,\xc0\xb6,\xb3\xf6\xd7\xe2\xb3\xb5,LGAX2A136D1002345\r\n";

async fn get_bytes(app: &TestApp, uri: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let req = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let status = resp.status();
    (status, ct, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn csv_template_roles_and_garbage(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let op = app.login("shunda.zhao").await;
    let before = count(&app, &op).await;

    // CSV: UTF-8 with a BOM (English keys, quotes), and GBK.
    let utf8 = "\u{feff}plate,plate_colour,class,vin\r\n津F00001,黄色,危险货物运输车,\r\n\"津F00002\",1,\"taxi\",LGAX2A136D1002346\r\n";
    let (s, v) = upload(&app, "", &op, utf8.as_bytes().to_vec(), "text/csv").await;
    assert_eq!((s, v["imported"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
    let (s, v) = upload(&app, "", &op, GBK_CSV.to_vec(), "text/csv; charset=gbk").await;
    assert_eq!((s, v["imported"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
    let (_, one) = app.get("/api/transport/vehicles?plate=G00002", &op).await;
    assert_eq!(
        (one["items"][0]["plate_colour"].as_str(), one["items"][0]["class"].as_str()),
        (Some("blue"), Some("taxi"))
    );
    assert_eq!(count(&app, &op).await, before + 4);

    // The header: unknown and missing columns, reported on row 1, nothing imported.
    let (s, v) =
        upload(&app, "", &op, "车牌号,颜色,车辆类型\n津F00009,黄色,校车\n".as_bytes().to_vec(), "text/csv").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let cols: Vec<(u64, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["column"].as_str().unwrap()))
        .collect();
    assert_eq!(cols, vec![(1, "颜色"), (1, "车牌颜色")]);

    // The template downloads and its example row imports as it is.
    let (s, ct, bytes) = get_bytes(&app, &format!("{IMPORT}/template.xlsx"), &op).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, XLSX));
    let (s, v) = upload(&app, "", &op, bytes, XLSX).await;
    assert_eq!((s, v["imported"].as_u64(), v["total_rows"].as_u64()), (StatusCode::OK, Some(1), Some(1)), "{v}");
    assert_eq!(count(&app, &op).await, before + 5);

    // Documented, and so swept by the bad-input sweep of tests/registry.rs.
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert!(
        doc["paths"][IMPORT]["post"].is_object() && doc["paths"][format!("{IMPORT}/template.xlsx")]["get"].is_object()
    );

    // Who may: an enterprise's operator for its own enterprise only.
    let reg = app.login("jt.liu").await;
    let doc = app.login("dr.yang").await;
    let bus = app.login("bus.sun").await;
    let shunda = app.org_id("shunda").await;
    let csv = "车牌号,车牌颜色,车辆类型\n津F00010,黄色,校车\n".as_bytes().to_vec();
    for t in [&reg, &doc] {
        let (s, v) = upload(&app, "", t, csv.clone(), "text/csv").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, _) = upload(&app, &format!("?org_id={shunda}"), &bus, csv.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.call_raw(Method::POST, IMPORT, None, Some(csv.clone()), Some("text/csv")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = get_bytes(&app, &format!("{IMPORT}/template.xlsx"), &doc).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Garbage: a clear 4xx, never a 5xx, nothing imported.
    let mut noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (body, ct, want) in [
        (noise.clone(), "application/octet-stream", StatusCode::BAD_REQUEST),
        ([b"PK\x03\x04".as_slice(), &noise].concat(), XLSX, StatusCode::BAD_REQUEST),
        (b"{\"plate\": 1}".to_vec(), "application/json", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Vec::new(), "text/csv", StatusCode::UNPROCESSABLE_ENTITY),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0".to_vec(), XLSX, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (b"plate,plate_colour,class\n\"unclosed".to_vec(), "text/csv", StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = upload(&app, "", &op, body, ct).await;
        assert_eq!(s, want, "{v}");
        assert!(!v["detail"].as_str().unwrap_or("").is_empty(), "{v}");
    }
    // Larger than the API's 1 MiB for JSON bodies, inside the import's 20 MiB: read (a dry run).
    let big: String = std::iter::once("车牌号,车牌颜色,车辆类型,VIN\r\n".to_string())
        .chain((0..30_000).map(|i| format!("津H{i:05},黄色,危险货物运输车,LGAX2A136D{i:07}\r\n")))
        .collect();
    assert!(big.len() > 1024 * 1024);
    let (s, v) = upload(&app, "?dry_run=true", &op, big.into_bytes(), "text/csv").await;
    assert_eq!((s, v["valid_rows"].as_u64(), v["imported"].as_u64()), (StatusCode::OK, Some(30_000), Some(0)), "{v}");
    // Larger than the import's limit: refused before it is read.
    noise.resize(21 * 1024 * 1024, b'x');
    let (s, _) = upload(&app, "", &op, noise, "text/csv").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = upload(&app, "?mode=some", &op, csv.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(count(&app, &op).await, before + 5);
}

#[tokio::test]
async fn sqlite_csv_template_roles_and_garbage() {
    csv_template_roles_and_garbage(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_csv_template_roles_and_garbage() {
    csv_template_roles_and_garbage(Backend::Postgres).await;
}

async fn terminal_count(app: &TestApp, token: &str) -> i64 {
    let (_, v) = app.get("/api/transport/terminals?limit=1", token).await;
    v["total"].as_i64().unwrap()
}

/// Terminals from a CSV, bound by plate: phones and plates checked by row and column (a bad
/// phone, a phone registered or repeated, a vehicle with a terminal already or bound twice in
/// the file, a plate not of the enterprise), nothing written until fixed, then the good rows.
async fn terminals_by_plate(backend: Backend) {
    let Some(app) = app(backend).await else { return };
    let op = app.login("bus.sun").await;
    // Two new buses without terminals (the demo's fleet has one in every vehicle).
    let free = ["津C9T001", "津C9T002"].map(String::from);
    for plate in &free {
        let (s, v) = app
            .call(
                Method::POST,
                "/api/transport/vehicles",
                Some(&op),
                Some(json!({"plate": plate, "plate_colour": "yellow", "class": "city_bus"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, taken) = app.get("/api/transport/vehicles?bound=true&limit=1", &op).await;
    let taken = taken["items"][0]["plate"].as_str().unwrap().to_string();
    let (_, registered) = app.get("/api/transport/terminals?limit=1", &op).await;
    let registered = registered["items"][0]["phone"].as_str().unwrap().to_string();
    let shunda = app.login("shunda.zhao").await;
    let (_, theirs) = app.get("/api/transport/vehicles?limit=1", &shunda).await;
    let theirs = theirs["items"][0]["plate"].as_str().unwrap().to_string();
    let (f0, f1) = (&free[0], &free[1]);
    let csv = format!(
        "\u{feff}终端手机号,终端ID,制造商ID,终端型号,绑定车牌号\n\
         13911110001,T1,70111,JT-900,{f0}\n\
         13911110002,T2,70111,JT-900,\n\
         1391111000X,T3,70111,JT-900,\n\
         {registered},T4,70111,JT-900,\n\
         13911110001,T5,70111,JT-900,\n\
         13911110006,T6,70111,JT-900,{taken}\n\
         13911110007,T7,70111,JT-900,{f0}\n\
         13911110008,T8,70111,JT-900,{theirs}\n\
         13911110009,T9,70111,JT-900,{f1}\n"
    );
    let uri = "/api/transport/terminals/import";
    let before = terminal_count(&app, &op).await;
    let (s, v) = app.call_raw(Method::POST, uri, Some(&op), Some(csv.clone().into_bytes()), Some("text/csv")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let faults: Vec<(i64, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["column"].as_str().unwrap()))
        .collect();
    assert_eq!(
        faults,
        [
            (4, "终端手机号"),
            (5, "终端手机号"),
            (6, "终端手机号"),
            (7, "绑定车牌号"),
            (8, "绑定车牌号"),
            (9, "绑定车牌号")
        ],
        "{v}"
    );
    assert_eq!(terminal_count(&app, &op).await, before, "nothing written");
    let (s, v) = app
        .call_raw(Method::POST, &format!("{uri}?mode=valid_only"), Some(&op), Some(csv.into_bytes()), Some("text/csv"))
        .await;
    assert_eq!((s, v["imported"].as_i64()), (StatusCode::OK, Some(3)), "{v}");
    assert_eq!(terminal_count(&app, &op).await, before + 3);
    let (_, bound) = app.get("/api/transport/vehicles?bound=true&limit=500", &op).await;
    let phone_of = |plate: &str| {
        bound["items"].as_array().unwrap().iter().find(|v| v["plate"] == plate).map(|v| v["terminal_phone"].clone())
    };
    assert_eq!(phone_of(f0), Some(json!("13911110001")), "{bound}");
    assert_eq!(phone_of(f1), Some(json!("13911110009")));
    assert_eq!(audit_count(&app, "terminal.import").await, 1);
    // The bureau does not register terminals; the template is for anyone who reads them.
    let reg = app.login("jt.liu").await;
    let (s, _) = app.call_raw(Method::POST, uri, Some(&reg), Some(b"x".to_vec()), Some("text/csv")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = get_bytes(&app, "/api/transport/terminals/import/template.xlsx", &reg).await;
    assert_eq!((s, &body[..2]), (StatusCode::OK, &b"PK"[..]));
}

#[tokio::test]
async fn sqlite_terminals_by_plate_issue_7() {
    terminals_by_plate(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_terminals_by_plate_issue_7() {
    terminals_by_plate(Backend::Postgres).await;
}
