//! `/api/transport`: vehicles, terminals, binding.

use crate::model::VehicleClass;
use crate::registry::{self, NewTerminal, NewVehicle, Terminal, Vehicle, VehiclePatch};
use axum::extract::State;
use axum::http::StatusCode;
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
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VehicleQuery {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    /// Substring of the plate number.
    pub plate: Option<String>,
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
    let f = registry::VehicleFilter { org_id: q.org_id, class: q.class, plate: q.plate, limit, offset };
    let (items, total) = registry::list_vehicles(&st.store, &c, &f).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Registers a vehicle of the caller's enterprise.
#[utoipa::path(post, path = "/api/transport/vehicles", tag = "transport", request_body = NewVehicle,
    responses((status = 201, body = Vehicle), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_vehicle(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(new): Json<NewVehicle>,
) -> ApiResult<(StatusCode, axum::Json<Vehicle>)> {
    Ok((StatusCode::CREATED, axum::Json(registry::create_vehicle(&st.store, &c, new).await?)))
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
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(p): Json<VehiclePatch>,
) -> ApiResult<axum::Json<Vehicle>> {
    registry::update_vehicle(&st.store, &c, &id, p).await.map(axum::Json)
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
