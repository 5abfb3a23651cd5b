//! `/api/transport`: vehicles, terminals, binding.

use crate::command::{self as cmds, Command};
use crate::gateway::{Connection, Connections, Delivery};
use crate::live::{LiveFilter, LiveMap, LiveVehicle};
use crate::model::VehicleClass;
use crate::positions::{self, Position, TrackSummary};
use crate::registry::{self, NewTerminal, NewVehicle, Terminal, Vehicle, VehiclePatch};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kernel::error::{ApiError, Code};
use kernel::error::{ApiResult, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vehicles, create_vehicle))
        .routes(routes!(get_vehicle, update_vehicle))
        .routes(routes!(list_terminals, create_terminal))
        .routes(routes!(get_terminal))
        .routes(routes!(bind_terminal))
        .routes(routes!(unbind_terminal))
        .routes(routes!(live))
        .routes(routes!(track))
        .routes(routes!(crate::stream::stream))
        .routes(routes!(connections))
        .routes(routes!(command))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VehicleQuery {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    /// Substring of the plate number.
    pub plate: Option<String>,
    /// Only vehicles with (true) or without (false) a bound terminal.
    pub bound: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Vehicles in the caller's scope (a regulator's domain, an operator's enterprise).
#[utoipa::path(get, path = "/api/transport/vehicles", tag = "transport", params(VehicleQuery),
    responses((status = 200, body = Paged<Vehicle>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn list_vehicles(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<VehicleQuery>,
) -> ApiResult<axum::Json<Paged<Vehicle>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let f = registry::VehicleFilter { org_id: q.org_id, class: q.class, plate: q.plate, bound: q.bound, limit, offset };
    let (items, total) = registry::list_vehicles(&st.store, &c, &f).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Registers a vehicle of the caller's enterprise.
#[utoipa::path(post, path = "/api/transport/vehicles", tag = "transport", request_body = NewVehicle,
    responses((status = 201, body = Vehicle), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_vehicle(
    State(st): State<AppState>,
    Extension(live): Extension<LiveMap>,
    Auth(c): Auth,
    Json(new): Json<NewVehicle>,
) -> ApiResult<(StatusCode, axum::Json<Vehicle>)> {
    let v = registry::create_vehicle(&st.store, &c, new).await?;
    live.register(&v);
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// One vehicle, if in the caller's scope.
#[utoipa::path(get, path = "/api/transport/vehicles/{id}", tag = "transport", params(("id" = String, Path)),
    responses((status = 200, body = Vehicle), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_vehicle(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vehicle>> {
    registry::get_vehicle(&st.store, &c, &id).await.map(axum::Json)
}

/// Changes a vehicle's class or VIN.
#[utoipa::path(patch, path = "/api/transport/vehicles/{id}", tag = "transport", params(("id" = String, Path)), request_body = VehiclePatch,
    responses((status = 200, body = Vehicle), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update_vehicle(
    State(st): State<AppState>,
    Extension(live): Extension<LiveMap>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(p): Json<VehiclePatch>,
) -> ApiResult<axum::Json<Vehicle>> {
    let v = registry::update_vehicle(&st.store, &c, &id, p).await?;
    live.register(&v);
    Ok(axum::Json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TerminalQuery {
    pub org_id: Option<String>,
    /// Substring of the phone number.
    pub phone: Option<String>,
    /// Only bound (true) or unbound (false) terminals.
    pub bound: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Terminals in the caller's scope.
#[utoipa::path(get, path = "/api/transport/terminals", tag = "transport", params(TerminalQuery),
    responses((status = 200, body = Paged<Terminal>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn list_terminals(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<TerminalQuery>,
) -> ApiResult<axum::Json<Paged<Terminal>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let f = registry::TerminalFilter { org_id: q.org_id, phone: q.phone, bound: q.bound, limit, offset };
    let (items, total) = registry::list_terminals(&st.store, &c, &f).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Registers a terminal of the caller's enterprise.
#[utoipa::path(post, path = "/api/transport/terminals", tag = "transport", request_body = NewTerminal,
    responses((status = 201, body = Terminal), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_terminal(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(new): Json<NewTerminal>,
) -> ApiResult<(StatusCode, axum::Json<Terminal>)> {
    Ok((StatusCode::CREATED, axum::Json(registry::create_terminal(&st.store, &c, new).await?)))
}

/// One terminal, if in the caller's scope.
#[utoipa::path(get, path = "/api/transport/terminals/{id}", tag = "transport", params(("id" = String, Path)),
    responses((status = 200, body = Terminal), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_terminal(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Terminal>> {
    registry::get_terminal(&st.store, &c, &id).await.map(axum::Json)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    pub vehicle_id: String,
}

/// Binds a terminal to a vehicle of the same enterprise.
#[utoipa::path(post, path = "/api/transport/terminals/{id}/bind", tag = "transport", params(("id" = String, Path)), request_body = BindRequest,
    responses((status = 200, body = Terminal), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn bind_terminal(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<BindRequest>,
) -> ApiResult<axum::Json<Terminal>> {
    registry::bind(&st.store, &c, &id, Some(&b.vehicle_id)).await.map(axum::Json)
}

/// Unbinds a terminal from its vehicle.
#[utoipa::path(post, path = "/api/transport/terminals/{id}/unbind", tag = "transport", params(("id" = String, Path)),
    responses((status = 200, body = Terminal), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn unbind_terminal(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Terminal>> {
    registry::bind(&st.store, &c, &id, None).await.map(axum::Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    pub online: Option<bool>,
    /// Map bounds `min_lon,min_lat,max_lon,max_lat` (WGS-84).
    pub bbox: Option<String>,
}

pub(crate) fn parse_bbox(s: &str) -> ApiResult<[f64; 4]> {
    let v: Vec<f64> =
        s.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad_bbox())?;
    let b: [f64; 4] = v.try_into().map_err(|_| bad_bbox())?;
    let ok = b.iter().all(|x| x.is_finite())
        && (-180.0..=180.0).contains(&b[0])
        && (-180.0..=180.0).contains(&b[2])
        && (-90.0..=90.0).contains(&b[1])
        && (-90.0..=90.0).contains(&b[3])
        && b[0] <= b[2]
        && b[1] <= b[3];
    if ok { Ok(b) } else { Err(bad_bbox()) }
}

fn bad_bbox() -> ApiError {
    ApiError::field(Code::InvalidQuery, "bbox", "bbox is min_lon,min_lat,max_lon,max_lat in degrees")
}

/// The live state of the vehicles in the caller's scope (from memory): newest position, online.
#[utoipa::path(get, path = "/api/transport/live", tag = "transport", params(LiveQuery),
    responses((status = 200, body = Vec<LiveVehicle>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn live(
    Extension(live_map): Extension<LiveMap>,
    Auth(c): Auth,
    Query(q): Query<LiveQuery>,
) -> ApiResult<axum::Json<Vec<LiveVehicle>>> {
    registry::require_read(&c)?;
    if let Some(o) = &q.org_id {
        c.require_org(o)?;
    }
    let bbox = q.bbox.as_deref().map(parse_bbox).transpose()?;
    let f = LiveFilter { org_id: q.org_id, class: q.class, online: q.online, bbox };
    Ok(axum::Json(live_map.list(&c.scope, &f)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    /// RFC 3339 start (inclusive).
    pub from: String,
    /// RFC 3339 end (exclusive); at most 31 days after `from`.
    pub to: String,
    /// Downsample to at most this many points (keeps ends, alarms and speed peaks).
    pub max_points: Option<usize>,
    /// Minimum stop length in minutes (default 5).
    pub stop_minutes: Option<f64>,
    /// `json` (default), `csv` or `gpx`.
    pub format: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Track {
    pub vehicle_id: String,
    pub plate: String,
    pub from: String,
    pub to: String,
    pub summary: TrackSummary,
    /// Whether `points` was downsampled from `summary.points`.
    pub downsampled: bool,
    pub points: Vec<Position>,
}

/// Most points one track query reads; a longer range must be narrowed.
const TRACK_LIMIT: i64 = 200_000;

/// Track playback (轨迹回放): the positions of a vehicle in a time range with distance, stops and
/// maximum speed; as JSON, CSV or GPX.
#[utoipa::path(get, path = "/api/transport/vehicles/{id}/track", tag = "transport", params(("id" = String, Path), TrackQuery),
    responses((status = 200, body = Track), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn track(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Query(q): Query<TrackQuery>,
) -> ApiResult<Response> {
    let v = registry::get_vehicle(&st.store, &c, &id).await?;
    let time = |name: &str, s: &str| {
        kernel::store::rfc3339_to_ms(s).ok_or_else(|| {
            ApiError::field(Code::InvalidQuery, name, "an RFC 3339 time, e.g. 2026-11-28T08:00:00+08:00")
        })
    };
    let (from, to) = (time("from", &q.from)?, time("to", &q.to)?);
    if to <= from || to - from > 31 * 86_400_000 {
        return Err(ApiError::field(Code::InvalidQuery, "to", "to must be after from, by at most 31 days"));
    }
    let stop_minutes = q.stop_minutes.unwrap_or(5.0);
    if !(0.5..=1440.0).contains(&stop_minutes) {
        return Err(ApiError::field(Code::InvalidQuery, "stop_minutes", "between 0.5 and 1440"));
    }
    let points = positions::range(&st.store.history(), &v.id, from, to, TRACK_LIMIT).await?;
    if points.len() as i64 >= TRACK_LIMIT {
        return Err(ApiError::field(Code::InvalidQuery, "to", "more than 200000 positions: narrow the range"));
    }
    let attachment = |ct: &'static str, ext: &str, body: String| -> Response {
        let mut r = body.into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        let name = format!("attachment; filename=\"track-{}.{ext}\"", &v.id);
        if let Ok(h) = HeaderValue::from_str(&name) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
        }
        r
    };
    match q.format.as_deref().unwrap_or("json") {
        "csv" => Ok(attachment("text/csv; charset=utf-8", "csv", positions::to_csv(&v.plate, &points))),
        "gpx" => Ok(attachment("application/gpx+xml", "gpx", positions::to_gpx(&v.plate, &points))),
        "json" => {
            let summary = positions::summarise(&points, stop_minutes);
            let (points, downsampled) = match q.max_points {
                Some(m) if m < 2 => return Err(ApiError::field(Code::InvalidQuery, "max_points", "at least 2")),
                Some(m) if points.len() > m => (positions::downsample(&points, m), true),
                _ => (points, false),
            };
            let t = Track {
                vehicle_id: v.id.clone(),
                plate: v.plate.clone(),
                from: kernel::store::ms_to_rfc3339(from),
                to: kernel::store::ms_to_rfc3339(to),
                summary,
                downsampled,
                points,
            };
            Ok(axum::Json(t).into_response())
        }
        _ => Err(ApiError::field(Code::InvalidQuery, "format", "json, csv or gpx")),
    }
}

/// The terminals online now (连接状态), in the caller's scope; scaled out, at every gateway.
#[utoipa::path(get, path = "/api/transport/connections", tag = "transport",
    responses((status = 200, body = Vec<Connection>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn connections(
    Extension(conns): Extension<Connections>,
    Auth(c): Auth,
) -> ApiResult<axum::Json<Vec<Connection>>> {
    registry::require_read(&c)?;
    Ok(axum::Json(conns.all().await.into_iter().filter(|x| c.scope.contains(&x.org_id)).collect()))
}

/// Sends a command to a vehicle's terminal (下发指令): text/TTS, position query, temporary
/// tracking, terminal parameters (set, query), areas and routes (set, delete); reports whether the
/// terminal answered and, for a parameter query, what it reported. The command is checked before
/// anything is sent: a bad one is a 422 and never reaches the terminal. Audited.
#[utoipa::path(post, path = "/api/transport/vehicles/{id}/commands", tag = "transport", params(("id" = String, Path)), request_body = Command,
    responses((status = 200, body = Delivery), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn command(
    State(st): State<AppState>,
    Extension(conns): Extension<Connections>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(cmd): Json<Command>,
) -> ApiResult<axum::Json<Delivery>> {
    let v = registry::get_vehicle(&st.store, &c, &id).await?;
    // A regulator may message a driver or locate a vehicle; reconfiguring a terminal (its server
    // address, its speed limits, its fences) is for the enterprise that runs it.
    if cmd.configures() {
        registry::require_write(&c, &v.org_id)?;
    }
    let cmd = cmds::prepare(cmd)?;
    let mut detail = cmd.summary().clone();
    let d = conns.command(&v.id, cmd, std::time::Duration::from_secs(15)).await;
    if let Some(o) = detail.as_object_mut() {
        o.insert("delivered".into(), d.delivered.into());
        o.insert("result".into(), d.result.into());
    }
    let outcome = if d.delivered { kernel::audit::Outcome::Success } else { kernel::audit::Outcome::Failure };
    kernel::audit::record(
        &st.store,
        kernel::audit::Event::new(kernel::audit::Actor::of(&c), "vehicle.command", "vehicle", Some(&v.id), outcome)
            .detail(detail),
    )
    .await?;
    Ok(axum::Json(d))
}
