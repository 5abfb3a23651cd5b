//! `/api/alarms/webhooks`: an organisation's webhooks, their secrets (shown once), a test
//! event and the deliveries.

use super::Sinks;
use super::webhooks::{self, Delivery, DeliveryStatus, NewWebhook, Webhook, WebhookPatch, WebhookSecret};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(test))
        .routes(routes!(deliveries))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// Only this organisation's (it must be in your scope).
    pub org_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Webhooks in the caller's scope: an enterprise's own, a bureau's own and its domain's.
#[utoipa::path(get, path = "/api/alarms/webhooks", tag = "alarms", params(WebhookQuery),
    responses((status = 200, body = Paged<Webhook>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<WebhookQuery>,
) -> ApiResult<axum::Json<Paged<Webhook>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let (items, total) = webhooks::list(&st.store, &c, q.org_id.as_deref(), limit, offset).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Registers a webhook for the caller's organisation. The answer holds its signing secret: the
/// only time it is shown.
#[utoipa::path(post, path = "/api/alarms/webhooks", tag = "alarms", request_body = NewWebhook,
    responses((status = 201, body = WebhookSecret), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<NewWebhook>,
) -> ApiResult<(StatusCode, axum::Json<WebhookSecret>)> {
    Ok((StatusCode::CREATED, axum::Json(webhooks::create(&st, &c, b).await?)))
}

/// One webhook (without its secret), if in the caller's scope.
#[utoipa::path(get, path = "/api/alarms/webhooks/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get(State(st): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<axum::Json<Webhook>> {
    Ok(axum::Json(webhooks::get(&st.store, &c, &id).await?))
}

/// Changes a webhook's URL, description, filter or enabled flag (its own organisation only).
#[utoipa::path(patch, path = "/api/alarms/webhooks/{id}", tag = "alarms", params(("id" = String, Path)),
    request_body = WebhookPatch,
    responses((status = 200, body = Webhook), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<WebhookPatch>,
) -> ApiResult<axum::Json<Webhook>> {
    Ok(axum::Json(webhooks::update(&st, &c, &id, b).await?))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(delete, path = "/api/alarms/webhooks/{id}", tag = "alarms", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn delete(State(st): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    webhooks::delete(&st, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a webhook's signing secret; the answer holds the new one (the only time it is shown).
#[utoipa::path(post, path = "/api/alarms/webhooks/{id}/rotate-secret", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = WebhookSecret), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn rotate_secret(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<WebhookSecret>> {
    Ok(axum::Json(webhooks::rotate_secret(&st, &c, &id).await?))
}

/// Sends a `webhook.test` event now, once, signed like every delivery; answers with its
/// delivery (delivered, or failed with the reason).
#[utoipa::path(post, path = "/api/alarms/webhooks/{id}/test", tag = "alarms", params(("id" = String, Path)),
    responses((status = 200, body = Delivery), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn test(
    State(st): State<AppState>,
    Extension(sinks): Extension<Sinks>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Delivery>> {
    Ok(axum::Json(webhooks::test(&st, &sinks, &c, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`; default any.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A webhook's deliveries, newest first, with their attempts and last error.
#[utoipa::path(get, path = "/api/alarms/webhooks/{id}/deliveries", tag = "alarms",
    params(("id" = String, Path), DeliveryQuery),
    responses((status = 200, body = Paged<Delivery>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn deliveries(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<Paged<Delivery>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::field(Code::InvalidQuery, "status", "pending, delivered or failed"))
        })
        .transpose()?;
    let (items, total) = webhooks::deliveries(&st.store, &c, &id, status, limit, offset).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}
