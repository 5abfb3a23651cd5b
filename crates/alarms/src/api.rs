//! `/api/alarms`: the alarm desk (报警处置台): the list, one alarm with its steps, the handling
//! steps and the daily statistics.

use crate::model::{Action, Alarm, Severity, Status};
use crate::service::{self, DayStat, Filter, StatusFilter, StepRequest};
use axum::extract::State;
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(get))
        .routes(routes!(acknowledge))
        .routes(routes!(handle))
        .routes(routes!(close))
        .routes(routes!(supervise))
        .routes(routes!(crate::stream::stream))
}

fn time(name: &str, s: &str) -> ApiResult<i64> {
    kernel::store::rfc3339_to_ms(s)
        .ok_or_else(|| ApiError::field(Code::InvalidQuery, name, "an RFC 3339 time, e.g. 2026-11-28T08:00:00+08:00"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// `open` (not closed), `raised`, `acknowledged`, `handled` or `closed`; default any.
    pub status: Option<String>,
    /// The least severity shown.
    pub min_severity: Option<Severity>,
    pub domain: Option<String>,
    pub kind: Option<String>,
    pub org_id: Option<String>,
    /// The vehicle's or device's id.
    pub subject_id: Option<String>,
    /// Only those a regulator supervises (督办).
    pub supervised: Option<bool>,
    /// RFC 3339: started at or after.
    pub from: Option<String>,
    /// RFC 3339: started before.
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Alarms in the caller's scope, most severe first, then those waiting longest.
#[utoipa::path(get, path = "/api/alarms", tag = "alarms", params(AlarmQuery),
    responses((status = 200, body = Paged<Alarm>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<AlarmQuery>,
) -> ApiResult<axum::Json<Paged<Alarm>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let status = match q.status.as_deref() {
        None => None,
        Some("open") => Some(StatusFilter::Open),
        Some(s) => Some(StatusFilter::Is(Status::parse(s).ok_or_else(|| {
            ApiError::field(Code::InvalidQuery, "status", "open, raised, acknowledged, handled or closed")
        })?)),
    };
    let f = Filter {
        status,
        min_severity: q.min_severity,
        domain: q.domain,
        kind: q.kind,
        org_id: q.org_id,
        subject_id: q.subject_id,
        supervised: q.supervised,
        from_ms: q.from.as_deref().map(|s| time("from", s)).transpose()?,
        to_ms: q.to.as_deref().map(|s| time("to", s)).transpose()?,
        limit,
        offset,
    };
    let (items, total) = service::list(&st.store, &c, &f).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// One alarm with its handling steps, if in the caller's scope.
#[utoipa::path(get, path = "/api/alarms/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Alarm), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get(State(st): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<axum::Json<Alarm>> {
    Ok(axum::Json(service::get(&st.store, &c, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// At most 500 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleBody {
    pub action: Action,
    #[serde(default)]
    pub note: String,
}

/// Acknowledges an alarm (确认): an operator of the owning enterprise has seen it.
#[utoipa::path(post, path = "/api/alarms/{id}/acknowledge", tag = "alarms", params(("id" = String, Path)), request_body = NoteBody,
    responses((status = 200, body = Alarm), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn acknowledge(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<NoteBody>,
) -> ApiResult<axum::Json<Alarm>> {
    Ok(axum::Json(service::step(&st.store, &st.bus, &c, &id, StepRequest::Acknowledge { note: b.note }).await?))
}

/// Records how an alarm was handled (处置): the action taken and a note.
#[utoipa::path(post, path = "/api/alarms/{id}/handle", tag = "alarms", params(("id" = String, Path)), request_body = HandleBody,
    responses((status = 200, body = Alarm), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn handle(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<HandleBody>,
) -> ApiResult<axum::Json<Alarm>> {
    let req = StepRequest::Handle { action: b.action, note: b.note };
    Ok(axum::Json(service::step(&st.store, &st.bus, &c, &id, req).await?))
}

/// Closes a handled alarm (关闭).
#[utoipa::path(post, path = "/api/alarms/{id}/close", tag = "alarms", params(("id" = String, Path)), request_body = NoteBody,
    responses((status = 200, body = Alarm), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn close(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<NoteBody>,
) -> ApiResult<axum::Json<Alarm>> {
    Ok(axum::Json(service::step(&st.store, &st.bus, &c, &id, StepRequest::Close { note: b.note }).await?))
}

/// A regulator supervises the handling of an alarm (督办): the note says what the enterprise is
/// to do.
#[utoipa::path(post, path = "/api/alarms/{id}/supervise", tag = "alarms", params(("id" = String, Path)), request_body = NoteBody,
    responses((status = 200, body = Alarm), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn supervise(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<NoteBody>,
) -> ApiResult<axum::Json<Alarm>> {
    Ok(axum::Json(service::step(&st.store, &st.bus, &c, &id, StepRequest::Supervise { note: b.note }).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// RFC 3339 start (inclusive).
    pub from: String,
    /// RFC 3339 end (exclusive); at most 366 days after `from`.
    pub to: String,
}

/// Alarms per organisation, local day (Asia/Shanghai) and kind, with how many were handled,
/// closed and supervised and the mean time to handle.
#[utoipa::path(get, path = "/api/alarms/stats", tag = "alarms", params(StatsQuery),
    responses((status = 200, body = Vec<DayStat>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn stats(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<StatsQuery>,
) -> ApiResult<axum::Json<Vec<DayStat>>> {
    let (from, to) = (time("from", &q.from)?, time("to", &q.to)?);
    Ok(axum::Json(service::stats(&st.store, &c, from, to).await?))
}
