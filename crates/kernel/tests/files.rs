//! The file store on both backends (PostgreSQL when `WUQING_TEST_PG` names a server; each test
//! gets a fresh database): upload and download, content addressing, type and size checks, who
//! may read, the audit records, hostile names, and the Rust API other modules use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kernel::access::Classification;
use kernel::audit::{self, Actor};
use kernel::error::Code;
use kernel::files::{self, Upload};
use kernel::testing::{Backend, TestApp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// Small, so that the over-size test sends little.
const MAX: usize = 64 * 1024;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::spawn(super::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::spawn(super::Backend::Postgres).await { super::$name(app).await } } )*
        }
    };
}

both_backends!(
    upload_and_download_round_trip,
    same_content_twice_is_stored_once,
    a_pdf_claimed_as_png_is_refused,
    an_empty_file_is_refused,
    over_size_is_refused_and_leaves_nothing,
    another_enterprise_gets_404_and_the_bureau_reads,
    clearance_bounds_reading_and_uploading,
    every_upload_and_read_is_audited,
    a_hostile_name_is_sanitised,
    administrators_residents_and_read_tokens_do_not_upload,
    the_rust_api_stores_opens_and_checks,
);

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, vec![], |raw| raw.files.max_bytes = MAX as u64).await
}

fn pdf(extra: &str) -> Vec<u8> {
    format!("%PDF-1.4\n%\u{e2}\u{e3}\n1 0 obj <<>> endobj\n% {extra}\ntrailer <<>>\n%%EOF\n").into_bytes()
}

fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend_from_slice(&[7u8; 64]);
    v
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

struct Sent {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Sent {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(app: &TestApp, req: Request<Body>) -> Sent {
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{status}");
    }
    Sent { status, headers, body }
}

/// `POST /api/files` with the file name header as given (already encoded) and `query`.
async fn upload_with(
    app: &TestApp,
    token: &str,
    query: &str,
    name: Option<&str>,
    content_type: Option<&str>,
    bytes: Vec<u8>,
    content_length: bool,
) -> Sent {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/files{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(n) = name {
        b = b.header("X-File-Name", n);
    }
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    if content_length {
        b = b.header(header::CONTENT_LENGTH, bytes.len());
    }
    send(app, b.body(Body::from(bytes)).unwrap()).await
}

async fn upload(app: &TestApp, token: &str, name: &str, content_type: &str, bytes: Vec<u8>) -> Sent {
    upload_with(app, token, "", Some(name), Some(content_type), bytes, true).await
}

async fn get(app: &TestApp, token: &str, uri: &str) -> Sent {
    let req = Request::builder()
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

/// Regular files under the store's directory (blobs and any temporary file).
fn files_on_disk(app: &TestApp) -> usize {
    fn walk(d: &std::path::Path) -> usize {
        let Ok(rd) = std::fs::read_dir(d) else { return 0 };
        rd.flatten()
            .map(|e| {
                let t = e.file_type().unwrap();
                if t.is_dir() { walk(&e.path()) } else { 1 }
            })
            .sum()
    }
    walk(&app.platform.state.config.files_dir())
}

async fn rows(app: &TestApp) -> i64 {
    let st = &app.platform.state;
    let r = sqlx::query("SELECT COUNT(*) AS n FROM files").fetch_one(st.store.reader()).await.unwrap();
    kernel::store::col(&r, "n").unwrap()
}

async fn audit_count(app: &TestApp, action: &str, outcome: Option<&str>) -> i64 {
    let f = audit::Filter {
        action: Some(action.into()),
        outcome: outcome.map(str::to_string),
        limit: 100,
        ..Default::default()
    };
    audit::query(&app.platform.state.store, &f).await.unwrap().1
}

async fn upload_and_download_round_trip(app: TestApp) {
    let t = app.login("shunda.zhao").await;
    let bytes = pdf("道路运输证");
    // 2024年3月 报告.pdf
    let name = "2024%E5%B9%B43%E6%9C%88%20%E6%8A%A5%E5%91%8A.pdf";
    let up = upload(&app, &t, name, "application/pdf", bytes.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.json());
    let meta = up.json();
    let id = meta["id"].as_str().unwrap().to_string();
    assert_eq!(up.headers[header::LOCATION], format!("/api/files/{id}"));
    assert_eq!(meta["name"], "2024年3月 报告.pdf");
    assert_eq!(meta["media_type"], "application/pdf");
    assert_eq!(meta["size"], bytes.len());
    assert_eq!(meta["sha256"], sha256_hex(&bytes));
    assert_eq!(meta["org_id"], app.org_id("shunda").await);
    assert_eq!(meta["uploaded_by"], app.user_id("shunda.zhao").await);
    assert_eq!(meta["classification"], "internal");
    assert!(meta["created_at"].as_str().unwrap().ends_with('Z'), "{meta}");

    let m = get(&app, &t, &format!("/api/files/{id}")).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.json(), meta);

    let d = get(&app, &t, &format!("/api/files/{id}/content")).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body, bytes, "the bytes come back unchanged");
    assert_eq!(d.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(d.headers[header::CONTENT_LENGTH], bytes.len().to_string().as_str());
    assert_eq!(
        d.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"2024_3_ __.pdf\"; \
         filename*=UTF-8''2024%E5%B9%B43%E6%9C%88%20%E6%8A%A5%E5%91%8A.pdf"
    );
    assert_eq!(d.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(d.headers[header::CONTENT_SECURITY_POLICY], "sandbox");
    assert_eq!(d.headers[header::CACHE_CONTROL], "private, no-store");

    // The blob sits at its content address.
    let sha = sha256_hex(&bytes);
    let path = app.platform.state.config.files_dir().join(&sha[..2]).join(&sha[2..4]).join(&sha);
    assert_eq!(std::fs::read(path).unwrap(), bytes);

    // The routes are in the OpenAPI document (and so in the bad-input sweep).
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    let upload_doc = &doc["paths"]["/api/files"]["post"];
    assert!(upload_doc["requestBody"]["content"]["application/octet-stream"].is_object(), "{upload_doc}");
    assert!(doc["paths"]["/api/files/{id}/content"]["get"].is_object());

    // Ids that are not files, or not ids at all, are 404s.
    for bad in ["00000000-0000-0000-0000-000000000000", "x", "%00", "..%2F..%2Fetc%2Fpasswd"] {
        assert_eq!(get(&app, &t, &format!("/api/files/{bad}")).await.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(get(&app, &t, &format!("/api/files/{bad}/content")).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

async fn same_content_twice_is_stored_once(app: TestApp) {
    let op = app.login("shunda.zhao").await;
    let other = app.login("bus.sun").await;
    let bytes = pdf("same");
    let a = upload(&app, &op, "a.pdf", "application/pdf", bytes.clone()).await;
    let b = upload(&app, &op, "b.pdf", "application/pdf", bytes.clone()).await;
    let c = upload(&app, &other, "c.pdf", "application/pdf", bytes.clone()).await;
    for s in [&a, &b, &c] {
        assert_eq!(s.status, StatusCode::CREATED, "{:?}", s.json());
    }
    let ids: Vec<String> = [&a, &b, &c].iter().map(|s| s.json()["id"].as_str().unwrap().to_string()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "one record per upload: {ids:?}");
    assert!([&a, &b, &c].iter().all(|s| s.json()["sha256"] == sha256_hex(&bytes)));
    assert_eq!(files_on_disk(&app), 1, "one blob for the same bytes");
    assert_eq!(rows(&app).await, 3);
    // Each record keeps its own name; each reads back the same bytes.
    assert_eq!(get(&app, &op, &format!("/api/files/{}", ids[1])).await.json()["name"], "b.pdf");
    assert_eq!(get(&app, &other, &format!("/api/files/{}/content", ids[2])).await.body, bytes);

    let d = upload(&app, &op, "d.pdf", "application/pdf", pdf("different")).await;
    assert_eq!(d.status, StatusCode::CREATED);
    assert_eq!(files_on_disk(&app), 2);
}

async fn a_pdf_claimed_as_png_is_refused(app: TestApp) {
    let t = app.login("shunda.zhao").await;
    let code = |s: &Sent| s.json()["code"].as_str().unwrap_or_default().to_string();
    // Content that is not the declared type.
    let s = upload(&app, &t, "photo.png", "image/png", pdf("x")).await;
    assert_eq!((s.status, code(&s)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into()), "{:?}", s.json());
    assert_eq!(s.json()["field"], "file");
    let s = upload(&app, &t, "scan.pdf", "application/pdf", png()).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = upload(&app, &t, "notes.txt", "text/plain", pdf("x")).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "a binary signature is not text");
    let s = upload(&app, &t, "table.xlsx", "application/vnd.ms-excel", pdf("x")).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", s.json());
    // An extension that is not the declared type's.
    let s = upload(&app, &t, "scan.png", "application/pdf", pdf("x")).await;
    assert_eq!((s.status, s.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, "name".into()));
    let s = upload(&app, &t, "scan", "application/pdf", pdf("x")).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Types that are not accepted, or none at all.
    for ct in ["text/html", "image/svg+xml", "application/json", "application/x-msdownload", "nonsense"] {
        let s = upload(&app, &t, "x.pdf", ct, pdf("x")).await;
        assert_eq!((s.status, code(&s)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into()), "{ct}");
    }
    let s = upload_with(&app, &t, "", Some("x.pdf"), None, pdf("x"), true).await;
    assert_eq!(s.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let s = upload(&app, &t, "x.exe", "application/octet-stream", b"MZ\x90\0".to_vec()).await;
    assert_eq!(s.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(files_on_disk(&app), 0, "nothing refused is kept");
    assert_eq!(rows(&app).await, 0);

    // Parameters and case of the declared type do not matter; octet-stream takes the extension's
    // type, still checked against the content.
    let s = upload(&app, &t, "a.csv", "Text/CSV; charset=utf-8", "车牌,里程\n津A12345,12\n".as_bytes().to_vec()).await;
    assert_eq!((s.status, s.json()["media_type"].clone()), (StatusCode::CREATED, "text/csv".into()));
    let s = upload(&app, &t, "b.PDF", "application/octet-stream", pdf("x")).await;
    assert_eq!((s.status, s.json()["media_type"].clone()), (StatusCode::CREATED, "application/pdf".into()));
    let s = upload(&app, &t, "c.pdf", "application/octet-stream", png()).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = upload(&app, &t, "d.jpeg", "image/jpeg", b"\xff\xd8\xff\xe0\0\x10JFIF".to_vec()).await;
    assert_eq!(s.status, StatusCode::CREATED);
}

async fn an_empty_file_is_refused(app: TestApp) {
    let t = app.login("shunda.zhao").await;
    let s = upload(&app, &t, "empty.txt", "text/plain", vec![]).await;
    assert_eq!((s.status, s.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, "file".into()));
    let s = upload_with(&app, &t, "", None, Some("text/plain"), b"hello".to_vec(), true).await;
    assert_eq!((s.status, s.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, "name".into()));
    let s = upload(&app, &t, "bad%zz.txt", "text/plain", b"hello".to_vec()).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    let s = upload(&app, &t, "%FF%FE.txt", "text/plain", b"hello".to_vec()).await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "not UTF-8");
    assert_eq!(files_on_disk(&app), 0);
    assert_eq!(rows(&app).await, 0);
    // A raw UTF-8 name (not percent-encoded) is taken as it is.
    let raw = axum::http::HeaderValue::from_bytes("说明.txt".as_bytes()).unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/files")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .header("X-File-Name", raw)
        .body(Body::from("hello"))
        .unwrap();
    let s = send(&app, req).await;
    assert_eq!((s.status, s.json()["name"].clone()), (StatusCode::CREATED, "说明.txt".into()));
    assert_eq!(rows(&app).await, 1);
    assert_eq!(files_on_disk(&app), 1);
}

async fn over_size_is_refused_and_leaves_nothing(app: TestApp) {
    let t = app.login("shunda.zhao").await;
    let mut big = pdf("big");
    big.resize(MAX + 1, b' ');
    // Refused from its Content-Length before a byte is read…
    let s = upload_with(&app, &t, "", Some("big.pdf"), Some("application/pdf"), big.clone(), true).await;
    assert_eq!((s.status, s.json()["code"].clone()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    // …and, without one, while it streams in.
    let s = upload_with(&app, &t, "", Some("big.pdf"), Some("application/pdf"), big.clone(), false).await;
    assert_eq!(s.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A Content-Length that understates the body does not get it through either.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/files")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .header(header::CONTENT_TYPE, "application/pdf")
        .header("X-File-Name", "big.pdf")
        .header(header::CONTENT_LENGTH, "10")
        .body(Body::from(big.clone()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(files_on_disk(&app), 0, "no blob and no temporary file left");
    assert_eq!(rows(&app).await, 0);
    assert_eq!(audit_count(&app, "file.upload", None).await, 0);

    // Exactly the limit is accepted.
    big.truncate(MAX);
    let s = upload_with(&app, &t, "", Some("max.pdf"), Some("application/pdf"), big.clone(), false).await;
    assert_eq!(s.status, StatusCode::CREATED, "{:?}", s.json());
    assert_eq!(s.json()["size"], MAX);
    assert_eq!(files_on_disk(&app), 1);
    assert_eq!(rows(&app).await, 1);
}

async fn another_enterprise_gets_404_and_the_bureau_reads(app: TestApp) {
    let owner = app.login("shunda.zhao").await;
    let s = upload(&app, &owner, "evidence.pdf", "application/pdf", pdf("evidence")).await;
    assert_eq!(s.status, StatusCode::CREATED);
    let id = s.json()["id"].as_str().unwrap().to_string();
    let (meta_uri, content_uri) = (format!("/api/files/{id}"), format!("/api/files/{id}/content"));

    // The transport bureau's regulator: the enterprise is in its scope.
    let reg = app.login("jt.liu").await;
    assert_eq!(get(&app, &reg, &meta_uri).await.status, StatusCode::OK);
    let d = get(&app, &reg, &content_uri).await;
    assert_eq!((d.status, d.body), (StatusCode::OK, pdf("evidence")));

    // Another enterprise, another bureau's regulator, the administrators: a 404, as if there
    // were no such file.
    for user in ["bus.sun", "coach.zhou", "wjw.chen", "dr.yang", "sysadmin", "secadmin", "auditor", "resident.huang"] {
        let t = app.login(user).await;
        let m = get(&app, &t, &meta_uri).await;
        assert_eq!((m.status, m.json()["code"].clone()), (StatusCode::NOT_FOUND, "not_found".into()), "{user}");
        let c = get(&app, &t, &content_uri).await;
        assert_eq!(c.status, StatusCode::NOT_FOUND, "{user}");
        assert!(!String::from_utf8_lossy(&c.body).contains("%PDF"), "{user}");
    }
    // Unauthenticated: 401.
    let req = Request::builder().uri(&content_uri).body(Body::empty()).unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::UNAUTHORIZED);
}

async fn clearance_bounds_reading_and_uploading(app: TestApp) {
    // An operator cleared for internal cannot file a sensitive document…
    let op = app.login("shunda.zhao").await;
    let s = upload_with(&app, &op, "?classification=sensitive", Some("a.pdf"), Some("application/pdf"), pdf("s"), true)
        .await;
    assert_eq!(s.status, StatusCode::FORBIDDEN, "{:?}", s.json());
    let s =
        upload_with(&app, &op, "?classification=secret", Some("a.pdf"), Some("application/pdf"), pdf("s"), true).await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST);
    let s =
        upload_with(&app, &op, "?classification=public", Some("p.pdf"), Some("application/pdf"), pdf("p"), true).await;
    assert_eq!((s.status, s.json()["classification"].clone()), (StatusCode::CREATED, "public".into()));

    // …nor read one filed for its enterprise by the bureau; the bureau's regulator can.
    let st = &app.platform.state;
    let reg_caller_actor =
        Actor { user_id: Some(app.user_id("jt.liu").await), name: "jt.liu".into(), ..Default::default() };
    let shunda = app.org_id("shunda").await;
    let up = Upload {
        org_id: &shunda,
        name: "约谈记录.pdf",
        declared_type: "application/pdf",
        classification: Classification::Sensitive,
    };
    let meta = files::store_bytes(st, reg_caller_actor, &up, &pdf("sensitive")).await.unwrap();
    assert_eq!(get(&app, &op, &format!("/api/files/{}", meta.id)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &op, &format!("/api/files/{}/content", meta.id)).await.status, StatusCode::NOT_FOUND);
    let reg = app.login("jt.liu").await;
    let d = get(&app, &reg, &format!("/api/files/{}/content", meta.id)).await;
    assert_eq!((d.status, d.body), (StatusCode::OK, pdf("sensitive")));
}

async fn every_upload_and_read_is_audited(app: TestApp) {
    let op = app.login("shunda.zhao").await;
    let s = upload(&app, &op, "%E8%AF%81%E6%8D%AE.pdf", "application/pdf", pdf("audit")).await;
    let id = s.json()["id"].as_str().unwrap().to_string();
    assert_eq!(audit_count(&app, "file.upload", None).await, 1);
    let f = audit::Filter { action: Some("file.upload".into()), limit: 10, ..Default::default() };
    let (recs, _) = audit::query(&app.platform.state.store, &f).await.unwrap();
    assert_eq!(recs[0].target_id.as_deref(), Some(id.as_str()));
    assert_eq!(recs[0].actor, "shunda.zhao");
    assert_eq!(recs[0].outcome, "success");
    assert_eq!(recs[0].detail["sha256"], sha256_hex(&pdf("audit")));
    assert_eq!(recs[0].detail["name"], "证据.pdf", "an internal file's name is recorded");

    let reg = app.login("jt.liu").await;
    for t in [&op, &reg, &op] {
        assert_eq!(get(&app, t, &format!("/api/files/{id}/content")).await.status, StatusCode::OK);
    }
    // Metadata reads are not content reads.
    assert_eq!(get(&app, &op, &format!("/api/files/{id}")).await.status, StatusCode::OK);
    assert_eq!(audit_count(&app, "file.read", Some("success")).await, 3);
    // A refused read is recorded once, as a refused file read.
    let other = app.login("bus.sun").await;
    assert_eq!(get(&app, &other, &format!("/api/files/{id}/content")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, "file.read", Some("denied")).await, 1);
    let f = audit::Filter { target_id: Some(format!("GET /api/files/{id}/content")), limit: 10, ..Default::default() };
    assert_eq!(audit::query(&app.platform.state.store, &f).await.unwrap().1, 0, "not recorded twice");

    // A sensitive file's name stays out of the log.
    let st = &app.platform.state;
    let up = Upload {
        org_id: &app.org_id("shunda").await,
        name: "张三 病历.pdf",
        declared_type: "application/pdf",
        classification: Classification::Sensitive,
    };
    let m = files::store_bytes(st, Actor::cli("test"), &up, &pdf("medical")).await.unwrap();
    assert_eq!(m.uploaded_by, None);
    let (recs, total) = audit::query(&st.store, &audit::Filter { limit: 1000, ..Default::default() }).await.unwrap();
    assert!(total > 0);
    assert!(recs.iter().all(|r| !r.detail.to_string().contains("病历")), "a sensitive name in the audit log");
    assert!(audit::verify(&st.store).await.unwrap().ok());
}

async fn a_hostile_name_is_sanitised(app: TestApp) {
    let t = app.login("shunda.zhao").await;
    let s = upload(&app, &t, "../../etc/passwd%00.pdf", "application/pdf", pdf("hostile")).await;
    assert_eq!(s.status, StatusCode::CREATED, "{:?}", s.json());
    let id = s.json()["id"].as_str().unwrap().to_string();
    assert_eq!(s.json()["name"], "passwd.pdf");
    let d = get(&app, &t, &format!("/api/files/{id}/content")).await;
    assert_eq!(
        d.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"passwd.pdf\"; filename*=UTF-8''passwd.pdf"
    );
    for (raw, want) in [
        ("..%5C..%5Cwindows%5Csystem.ini%0D%0A.txt", "system.ini.txt"),
        ("%E2%80%AEtxt.exe.txt", "txt.exe.txt"),
        ("a%22%3E%3Cscript%3E.txt", "a___script_.txt"),
    ] {
        let s = upload(&app, &t, raw, "text/plain", b"plain text".to_vec()).await;
        assert_eq!((s.status, s.json()["name"].clone()), (StatusCode::CREATED, want.into()), "{raw}");
    }
    for raw in ["..%2F..%2F", "%00%01", "...", "%2F"] {
        let s = upload(&app, &t, raw, "text/plain", b"plain text".to_vec()).await;
        assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "{raw}");
    }
    // Nothing was written outside the store's directory.
    let root = app.platform.state.config.files_dir();
    assert!(!root.join("..").join("etc").exists());
    assert!(!app.dir.path().join("etc").exists());
}

async fn administrators_residents_and_read_tokens_do_not_upload(app: TestApp) {
    for user in ["sysadmin", "secadmin", "auditor", "resident.huang"] {
        let t = app.login(user).await;
        let s = upload(&app, &t, "a.pdf", "application/pdf", pdf("x")).await;
        assert_eq!(s.status, StatusCode::FORBIDDEN, "{user}");
    }
    let reg = app.login("jt.liu").await;
    let (s, v) = app.post("/api/tokens", &reg, serde_json::json!({"name": "ro", "scope": "read"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ro = v["token"].as_str().unwrap();
    let s = upload(&app, ro, "a.pdf", "application/pdf", pdf("x")).await;
    assert_eq!((s.status, s.json()["code"].clone()), (StatusCode::FORBIDDEN, "token_scope".into()));
    // A regulator files for its own bureau.
    let s = upload(&app, &reg, "a.pdf", "application/pdf", pdf("x")).await;
    assert_eq!(s.status, StatusCode::CREATED);
    assert_eq!(s.json()["org_id"], app.org_id("transport_bureau").await);
    assert_eq!(files_on_disk(&app), 1);
}

async fn the_rust_api_stores_opens_and_checks(app: TestApp) {
    use tokio::io::AsyncReadExt;
    let st = &app.platform.state;
    let shunda = app.org_id("shunda").await;
    let sh: &str = &shunda;
    let up = move |name: &'static str, ty: &'static str| Upload {
        org_id: sh,
        name,
        declared_type: ty,
        classification: Classification::Internal,
    };
    let bytes = pdf("archive");
    let meta = files::store_bytes(st, Actor::cli("archive"), &up("2024-03 月报.pdf", "application/pdf"), &bytes)
        .await
        .unwrap();
    assert_eq!(meta.name, "2024-03 月报.pdf");
    assert_eq!(meta.size, bytes.len() as i64);
    assert_eq!(files::get(&st.store, &meta.id).await.unwrap().as_ref(), Some(&meta));

    // The same checks as over HTTP.
    let e = files::store_bytes(st, Actor::cli("t"), &up("x.png", "image/png"), &bytes).await.unwrap_err();
    assert_eq!(e.code, Code::InvalidField);
    let e = files::store_bytes(st, Actor::cli("t"), &up("x.html", "text/html"), b"<html>").await.unwrap_err();
    assert_eq!(e.code, Code::UnsupportedMediaType);
    let e = files::store_bytes(st, Actor::cli("t"), &up("x.pdf", "application/pdf"), &vec![b'%'; MAX + 1])
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::PayloadTooLarge);
    let no_org = Upload { org_id: "nope", ..up("x.pdf", "application/pdf") };
    let e = files::store_bytes(st, Actor::cli("t"), &no_org, &bytes).await.unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (Code::InvalidField, Some("org_id")));

    // Reading as a caller: scope and clearance, audited.
    let reg = kernel::auth::authenticate(&st.store, &st.orgs, &st.auth.get(), &app.login("jt.liu").await, None)
        .await
        .unwrap();
    let other = kernel::auth::authenticate(&st.store, &st.orgs, &st.auth.get(), &app.login("bus.sun").await, None)
        .await
        .unwrap();
    assert_eq!(files::require_readable(st, &reg, &meta.id).await.unwrap(), meta);
    assert_eq!(files::require_readable(st, &other, &meta.id).await.unwrap_err().code, Code::NotFound);
    assert_eq!(files::require_readable(st, &reg, "not-an-id").await.unwrap_err().code, Code::NotFound);
    let (m, mut f) = files::open(st, &reg, &meta.id).await.unwrap();
    assert_eq!(m, meta);
    let mut read = vec![];
    f.read_to_end(&mut read).await.unwrap();
    assert_eq!(read, bytes);
    let e = files::open(st, &other, &meta.id).await.unwrap_err();
    assert!(e.code == Code::NotFound && e.audited);
    assert_eq!(audit_count(&app, "file.read", Some("success")).await, 1);
    assert_eq!(audit_count(&app, "file.read", Some("denied")).await, 1);
}
