//! Health, metrics, the OpenAPI document and its browsable page.

use super::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(openapi_json)).routes(routes!(docs))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// `ok`, or why the store is not ready.
    pub store: String,
    pub backend: String,
    pub version: String,
    /// This node's name and roles (`gateway+processor+api` on a single server).
    pub node: String,
    pub roles: String,
}

/// Liveness and store readiness: 200 when the store answers, 503 when not.
#[utoipa::path(get, path = "/api/health", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let (status, store) = match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "health: store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_string())
        }
    };
    let backend = format!("{:?}", state.store.backend()).to_lowercase();
    (
        status,
        axum::Json(Health {
            status: if status == StatusCode::OK { "ok".into() } else { "degraded".into() },
            store,
            backend,
            version: env!("CARGO_PKG_VERSION").into(),
            node: state.config.node.clone(),
            roles: state.config.roles.to_string(),
        }),
    )
}

/// The OpenAPI 3.1 document of every route.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 JSON")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    let body = state.openapi.get().cloned().unwrap_or_else(|| "{}".into());
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Browsable API documentation, rendered from the OpenAPI document with no external assets (the
/// platform runs on networks without internet).
#[utoipa::path(get, path = "/api/docs", tag = "system", responses((status = 200, description = "HTML")))]
async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// Prometheus metrics.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}
