//! What every supervision test file shares: the platform they run against (transport, alarms
//! and supervision over the kernel, the demo seeded) on both backends, and a small PDF.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use kernel::testing::{Backend, TestApp};
use std::sync::Arc;

/// Runs each named test on SQLite and on PostgreSQL (when `WUQING_TEST_PG` names a server; else
/// the PostgreSQL run prints why it skips). The test file has `app` and `Backend` in scope.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::app(super::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { if let Some(app) = super::app(super::Backend::Postgres).await { super::$name(app).await } } )*
        }
    };
}

/// The platform with the modules supervision runs beside, demo seeded.
pub async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        vec![
            Arc::new(transport::TransportModule::new()),
            Arc::new(alarms::AlarmsModule::default()),
            Arc::new(supervision::SupervisionModule),
        ],
        |_| {},
    )
    .await
}

/// A minimal PDF (the file store checks the signature).
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// Uploads a small PDF named `name` through `POST /api/files`; its id.
pub async fn upload_pdf(app: &TestApp, token: &str, name: &str) -> String {
    let (s, v) = app.upload(token, name, "application/pdf", &supervision::demo::demo_pdf(name)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}
