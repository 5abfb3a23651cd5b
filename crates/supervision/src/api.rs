//! `/api/supervision/…`: the transport bureau's supervision records.

use crate::enterprises::{self, EnterpriseView, Profile};
use axum::extract::State;
use kernel::error::{ApiResult, Problem};
use kernel::http::{AppState, Auth, Json, Path};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_enterprises)).routes(routes!(get_enterprise, put_enterprise))
}

/// The transport enterprises the caller may see (a regulator: the domain's; an operator: its
/// own), each with its profile, vehicle count and whether its monitoring staff fall short.
#[utoipa::path(get, path = "/api/supervision/enterprises", tag = "supervision",
    responses((status = 200, body = Vec<EnterpriseView>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_enterprises(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<Vec<EnterpriseView>>> {
    Ok(axum::Json(enterprises::list(&st, &c).await?))
}

/// One transport enterprise with its profile.
#[utoipa::path(get, path = "/api/supervision/enterprises/{org_id}", tag = "supervision", params(("org_id" = String, Path)),
    responses((status = 200, body = EnterpriseView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_enterprise(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(org_id): Path<String>,
) -> ApiResult<axum::Json<EnterpriseView>> {
    Ok(axum::Json(enterprises::get(&st, &c, &org_id).await?))
}

/// Keeps an enterprise's profile (its operators, or a transport regulator): every field checked,
/// the unified social credit code by its check characters (422 naming the field), unique (409).
#[utoipa::path(put, path = "/api/supervision/enterprises/{org_id}", tag = "supervision", params(("org_id" = String, Path)),
    request_body = Profile,
    responses((status = 200, body = EnterpriseView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_enterprise(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(org_id): Path<String>,
    Json(p): Json<Profile>,
) -> ApiResult<axum::Json<EnterpriseView>> {
    Ok(axum::Json(enterprises::put(&st, &c, &org_id, &p).await?))
}
