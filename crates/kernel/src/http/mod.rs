//! HTTP scaffolding: the application state, extractors that turn every rejection into a
//! problem document, the caller extractor (session cookie or bearer token), pagination, and the
//! router with its layers (body limit, time-out, panic catcher, metrics).

mod admin_api;
mod auth_api;
mod doc_errors;
mod files_api;
mod policy_api;
mod system_api;

use crate::access::{Caller, Restriction, TokenScope};
use crate::auth;
use crate::bus::Bus;
use crate::config::Config;
use crate::crypto::FieldCipher;
use crate::error::{ApiError, Code};
use crate::orgs::OrgTree;
use crate::store::Store;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub const SESSION_COOKIE: &str = "wuqing_session";

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cipher: FieldCipher,
    pub config: Arc<Config>,
    /// The security policy in force (`crate::policy`).
    pub auth: crate::policy::Policy,
    pub orgs: OrgTree,
    pub bus: Arc<dyn Bus>,
    /// JetStream and partition ownership when the platform is scaled out (`bus.url` set).
    pub cluster: Option<crate::cluster::Cluster>,
    pub metrics: PrometheusHandle,
    pub openapi: Arc<std::sync::OnceLock<String>>,
}

/// JSON body extractor whose rejections are problem documents.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field and what was wrong with it.
            let msg = e.body_text();
            let field = msg.split('`').nth(1).map(str::to_string);
            ApiError { field, ..ApiError::new(Code::InvalidField, msg) }
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::new(Code::MalformedJson, e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(Code::UnsupportedMediaType, "send the body as application/json")
        }
        JsonRejection::BytesRejection(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(Code::PayloadTooLarge, "the request body is too large")
            } else {
                ApiError::bad_request(e.body_text())
            }
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string extractor whose rejections are problem documents.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::new(Code::InvalidQuery, e.body_text()))
    }
}

/// Path extractor whose rejections are problem documents.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::new(Code::InvalidPath, e.body_text()))
    }
}

/// Pagination, the same on every list: `?limit=` (1–500, default 50) and `?offset=`.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 500.
    pub limit: Option<i64>,
    /// Items to skip.
    pub offset: Option<i64>,
}

impl Page {
    pub fn resolve(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
        let l = limit.unwrap_or(50);
        let o = offset.unwrap_or(0);
        if !(1..=500).contains(&l) {
            return Err(ApiError::field(Code::InvalidQuery, "limit", "limit must be between 1 and 500"));
        }
        if !(0..=10_000_000).contains(&o) {
            return Err(ApiError::field(Code::InvalidQuery, "offset", "offset must be between 0 and 10000000"));
        }
        Ok((l, o))
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// How many match the filter in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The peer address of the request, when served over a socket.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

fn credential_of(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(t.trim().to_string());
        }
    }
    for v in parts.headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for kv in s.split(';') {
            if let Some((k, val)) = kv.trim().split_once('=') {
                if k == SESSION_COOKIE {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// Where the caller extractor leaves the caller for [`audit_refusals`].
#[derive(Clone, Default)]
struct CallerSlot(Arc<std::sync::Mutex<Option<Caller>>>);

async fn resolve_caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(token) = credential_of(parts) else {
        return Err(ApiError::new(Code::Unauthenticated, "sign in first (请先登录)"));
    };
    let caller = auth::authenticate(&state.store, &state.orgs, &state.auth.get(), &token, client_ip(parts)).await?;
    if let Some(slot) = parts.extensions.get::<CallerSlot>() {
        if let Ok(mut g) = slot.0.lock() {
            *g = Some(caller.clone());
        }
    }
    if caller.token_scope == TokenScope::Read && !matches!(parts.method, Method::GET | Method::HEAD) {
        return Err(ApiError::new(Code::TokenScope, "this token may only read"));
    }
    Ok(caller)
}

/// The authenticated caller, with no pending restriction (password change, TOTP enrolment).
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = resolve_caller(parts, state).await?;
        match c.restriction {
            Some(Restriction::PasswordChange) => Err(ApiError::new(
                Code::PasswordChangeRequired,
                "change your initial password first (请先修改初始密码)",
            )),
            Some(Restriction::TotpSetup) => Err(ApiError::new(
                Code::TotpSetupRequired,
                "administrators enrol a second factor first (管理员须先绑定动态口令)",
            )),
            None => Ok(Auth(c)),
        }
    }
}

/// The authenticated caller even while restricted: for me, logout, password and TOTP routes.
pub struct AuthAny(pub Caller);

impl FromRequestParts<AppState> for AuthAny {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        resolve_caller(parts, state).await.map(AuthAny)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Wuqing Smart District Platform API (智慧武清平台)", description = "Every route of the platform. Errors are application/problem+json with a stable `code`. Lists take `limit` and `offset` and answer `{items, total, limit, offset}`."),
    components(schemas(crate::error::Problem)),
    modifiers(&SecurityAddon)
)]
struct ApiDoc;

struct SecurityAddon;
impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))));
    }
}

/// The kernel's own routes.
pub fn kernel_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth_api::routes())
        .merge(admin_api::routes())
        .merge(files_api::routes())
        .merge(policy_api::routes())
        .merge(system_api::routes())
}

/// A file of the web console.
#[derive(Debug, Clone)]
pub struct ConsoleFile {
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Content-addressed (a hashed asset name): cacheable for a year.
    pub immutable: bool,
}

/// The web console's files, served for every path outside `/api` that is not a route; a path
/// without a file of its own is a page of the single-page application (its `index.html`).
pub trait Console: Send + Sync + 'static {
    /// The file at `path` (without the leading `/`; `""` is the index).
    fn file(&self, path: &str) -> Option<ConsoleFile>;
}

/// Serves the console, or the API's 404 problem for unknown API paths.
async fn console_or_not_found(console: Option<Arc<dyn Console>>, csp: Arc<str>, req: Request) -> Response {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/") || path == "/metrics";
    let readable = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    let (Some(console), false, true) = (console, is_api, readable) else {
        return not_found().await.into_response();
    };
    let rel = path.trim_start_matches('/');
    let file = console.file(rel).or_else(|| {
        // A page of the single-page application; a missing asset stays a 404.
        (!rel.starts_with("assets/")).then(|| console.file("")).flatten()
    });
    let Some(f) = file else { return not_found().await.into_response() };
    let cache = if f.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    (
        [
            (header::CONTENT_TYPE, f.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        [(header::CONTENT_SECURITY_POLICY, &*csp)],
        f.body,
    )
        .into_response()
}

/// The console's Content-Security-Policy: its own origin only, plus the map tile service's
/// origin when one is configured (map libraries fetch tiles, so it must be in `connect-src`).
pub fn console_csp(config: &crate::config::ConsoleConfig) -> String {
    let tiles = config.tile_origin().map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; img-src 'self' data: blob:{tiles}; style-src 'self' 'unsafe-inline'; \
         connect-src 'self' ws: wss:{tiles}; worker-src 'self' blob:; frame-ancestors 'none'"
    )
}

/// Builds the whole application: every module's routes, the OpenAPI document, the layers.
pub fn app(state: AppState, modules: &[Arc<dyn crate::module::Module>]) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    for m in modules {
        api = api.merge(m.routes());
    }
    let console = modules.iter().find_map(|m| m.console());
    let (mut router, mut doc) = api.split_for_parts();
    for m in modules {
        for (prefix, r) in m.mounts() {
            router = router.nest(prefix, r);
        }
    }
    doc_errors::document(&mut doc);
    let json = doc.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let _ = state.openapi.set(json);
    let limit = state.config.raw.server.body_limit_bytes;
    let timeout = std::time::Duration::from_secs(state.config.raw.server.request_timeout_secs);
    let csp: Arc<str> = console_csp(&state.config.raw.console).into();
    router
        .route("/metrics", axum::routing::get(system_api::metrics))
        .fallback(move |req: Request| console_or_not_found(console.clone(), csp.clone(), req))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(problem_for_bare_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit_refusals))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn(count_requests))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            ApiError::new(Code::Internal, "internal error").into_response()
        }))
        .with_state(state)
}

/// A node without the `api` role (a gateway, a processor): its health and metrics only, for the
/// load balancer's and Prometheus's checks; anything else is 404.
pub fn node_app(state: AppState) -> Router {
    Router::new()
        .route("/api/health", axum::routing::get(system_api::health))
        .route("/metrics", axum::routing::get(system_api::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(problem_for_bare_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "this route does not take that method")
}

/// Turns the few responses axum and tower produce on their own (408, 413, 415 without a body)
/// into problem documents, so that every error a client sees has the same shape. A mount's own
/// error format (FHIR's OperationOutcome, `application/fhir+json`) is left as it is.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let s = resp.status();
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let formatted = ct == "application/problem+json" || ct.starts_with("application/fhir+json");
    if (s.is_client_error() || s.is_server_error()) && !formatted {
        let code = match s {
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            s if s.is_server_error() => Code::Internal,
            _ => Code::BadRequest,
        };
        let mut p = ApiError::new(code, s.canonical_reason().unwrap_or("error")).into_response();
        *p.status_mut() = s;
        return p;
    }
    resp
}

/// Every refusal of a signed-in caller (403, and 404 on an id outside their scope) lands in the
/// audit log, whichever module refused it: handlers that record a more specific action mark
/// their response, and are not recorded twice.
async fn audit_refusals(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path: String = req.uri().path().chars().take(200).collect();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_string());
    let resp = next.run(req).await;
    let status = resp.status();
    if (status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND)
        && resp.extensions().get::<crate::error::AlreadyAudited>().is_none()
    {
        let caller = slot.0.lock().ok().and_then(|g| g.clone());
        if let Some(c) = caller {
            let ev = crate::audit::Event::new(
                crate::audit::Actor::of(&c),
                "access.denied",
                "route",
                Some(&format!("{method} {path}")),
                crate::audit::Outcome::Denied,
            )
            .detail(serde_json::json!({"status": status.as_u16(), "route": route}));
            if let Err(e) = crate::audit::record(&state.store, ev).await {
                tracing::error!(error = %e, "could not audit a refusal");
                return ApiError::from(e).into_response();
            }
        }
    }
    resp
}

async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("wuqing_http_requests_total", "method" => method.to_string(), "status" => status).increment(1);
    metrics::histogram!("wuqing_http_request_seconds").record(start.elapsed().as_secs_f64());
    resp
}
