//! `/api/iot`: the device registry, readings, HTTP ingestion and the endpoint's status.

use crate::ingest::{self, Via};
use crate::registry::{self, Device, DevicePatch, DeviceWithSecret, NewDevice, SubjectType};
use crate::{IotShared, payload};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::telemetry::{self, Value};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, update_device))
        .routes(routes!(rotate_secret))
        .routes(routes!(readings))
        .routes(routes!(ingest_http))
        .routes(routes!(status))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    pub org_id: Option<String>,
    pub kind: Option<String>,
    pub subject_type: Option<SubjectType>,
    /// Substring of the code or name.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Devices in the caller's scope.
#[utoipa::path(get, path = "/api/iot/devices", tag = "iot", params(DeviceQuery),
    responses((status = 200, body = Paged<Device>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn list_devices(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<DeviceQuery>,
) -> ApiResult<axum::Json<Paged<Device>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let f =
        registry::DeviceFilter { org_id: q.org_id, kind: q.kind, subject_type: q.subject_type, q: q.q, limit, offset };
    let (items, total) = registry::list_devices(&st.store, &c, &f).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Registers a device of the caller's organisation; the answer holds its secret, shown once.
#[utoipa::path(post, path = "/api/iot/devices", tag = "iot", request_body = NewDevice,
    responses((status = 201, body = DeviceWithSecret), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_device(
    State(st): State<AppState>,
    Auth(c): Auth,
    Extension(shared): Extension<IotShared>,
    Json(new): Json<NewDevice>,
) -> ApiResult<(StatusCode, axum::Json<DeviceWithSecret>)> {
    let d = registry::create_device(&st.store, &c, new).await?;
    shared.devices.forget(&d.device.code);
    Ok((StatusCode::CREATED, axum::Json(d)))
}

/// One device, if in the caller's scope.
#[utoipa::path(get, path = "/api/iot/devices/{id}", tag = "iot", params(("id" = String, Path)),
    responses((status = 200, body = Device), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_device(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Device>> {
    registry::get_device(&st.store, &c, &id).await.map(axum::Json)
}

/// Changes a device (kind, name, format, subject, enabled). Disabling refuses its next
/// connection and upload.
#[utoipa::path(patch, path = "/api/iot/devices/{id}", tag = "iot", params(("id" = String, Path)), request_body = DevicePatch,
    responses((status = 200, body = Device), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update_device(
    State(st): State<AppState>,
    Auth(c): Auth,
    Extension(shared): Extension<IotShared>,
    Path(id): Path<String>,
    Json(p): Json<DevicePatch>,
) -> ApiResult<axum::Json<Device>> {
    let d = registry::update_device(&st.store, &c, &id, p).await?;
    shared.devices.forget(&d.code);
    Ok(axum::Json(d))
}

/// Issues a new secret (shown once); the old one stops working.
#[utoipa::path(post, path = "/api/iot/devices/{id}/secret", tag = "iot", params(("id" = String, Path)),
    responses((status = 200, body = DeviceWithSecret), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn rotate_secret(
    State(st): State<AppState>,
    Auth(c): Auth,
    Extension(shared): Extension<IotShared>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeviceWithSecret>> {
    let d = registry::rotate_secret(&st.store, &c, &id).await?;
    shared.devices.forget(&d.device.code);
    Ok(axum::Json(d))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadingQuery {
    /// RFC 3339 start (inclusive).
    pub from: String,
    /// RFC 3339 end (exclusive); at most 31 days after `from`.
    pub to: String,
    /// Only this metric.
    pub metric: Option<String>,
    /// At most this many (default 1000, at most 10 000), oldest first.
    pub limit: Option<i64>,
}

/// One stored reading.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingOut {
    pub metric: String,
    pub at: String,
    pub device_ms: i64,
    pub value: f64,
}

/// A device's readings in a time range. Readings of a patient's device are sensitive: the
/// caller needs that clearance, and every read is audited.
#[utoipa::path(get, path = "/api/iot/devices/{id}/readings", tag = "iot", params(("id" = String, Path), ReadingQuery),
    responses((status = 200, body = Vec<ReadingOut>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn readings(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Query(q): Query<ReadingQuery>,
) -> ApiResult<axum::Json<Vec<ReadingOut>>> {
    let d = registry::get_device(&st.store, &c, &id).await?;
    let time = |name: &str, s: &str| {
        kernel::store::rfc3339_to_ms(s)
            .ok_or_else(|| ApiError::field(Code::InvalidQuery, name, format!("{name} must be an RFC 3339 time")))
    };
    let (from, to) = (time("from", &q.from)?, time("to", &q.to)?);
    if to <= from || to - from > 31 * 86_400_000 {
        return Err(ApiError::field(Code::InvalidQuery, "to", "to must be after from, by at most 31 days"));
    }
    if let Some(m) = &q.metric {
        if !payload::valid_metric(m) {
            return Err(ApiError::field(Code::InvalidQuery, "metric", "1 to 64 of a-z, 0-9, '_', '.'"));
        }
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::field(Code::InvalidQuery, "limit", "1 to 10000"));
    }
    let class = d.subject_type.classification();
    c.require_clearance(class, "a patient's readings")?;
    let rows = telemetry::range(&st.store.history(), &d.code, q.metric.as_deref(), from, to, limit).await?;
    if d.subject_type == SubjectType::Patient {
        audit::record(
            &st.store,
            Event::new(Actor::of(&c), "device.readings.read", "device", Some(&d.id), Outcome::Success)
                .detail(serde_json::json!({"subject_type": "patient", "rows": rows.len()})),
        )
        .await?;
    }
    Ok(axum::Json(
        rows.into_iter()
            .filter_map(|o| match o.value {
                Value::Number { value } => Some(ReadingOut {
                    metric: o.kind,
                    at: kernel::store::ms_to_rfc3339(o.device_ms),
                    device_ms: o.device_ms,
                    value,
                }),
                _ => None,
            })
            .collect(),
    ))
}

/// What an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    /// Samples stored (durable when this answer is sent).
    pub stored: usize,
}

fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = data_encoding::BASE64.decode(b64.trim().as_bytes()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// HTTP ingestion for devices that cannot speak MQTT: the device's code and secret as HTTP
/// Basic credentials, the body in the device's format (`wuqing-json`: `{"ts": ms, "readings":
/// {"temperature": 4.2}}` or an array of such). `200` means stored.
#[utoipa::path(post, path = "/api/iot/ingest", tag = "iot", request_body(content = String, content_type = "application/json"),
    responses((status = 200, body = Stored), (status = 400, body = Problem), (status = 401, body = Problem), (status = 413, body = Problem)))]
async fn ingest_http(
    State(st): State<AppState>,
    Extension(shared): Extension<IotShared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<Stored>> {
    let unauth = || ApiError::new(Code::InvalidCredentials, "device code or secret not accepted");
    let Some((code, secret)) = basic_credentials(&headers) else {
        return Err(ApiError::new(
            Code::Unauthenticated,
            "send the device's code and secret as HTTP Basic credentials",
        ));
    };
    let device = match shared.devices.authenticate(&st.store, &code, &secret).await? {
        Ok(d) => d,
        Err(_) => {
            ingest::refused(Via::Http, &code.chars().take(64).collect::<String>(), "credentials");
            return Err(unauth());
        }
    };
    if body.len() > payload::MAX_PAYLOAD {
        ingest::refused(Via::Http, &device.code, "too large");
        return Err(ApiError::new(Code::PayloadTooLarge, format!("at most {} bytes", payload::MAX_PAYLOAD)));
    }
    let samples = match ingest::decode(&device, &body) {
        Ok(s) => s,
        Err(e) => {
            ingest::refused(Via::Http, &device.code, &e.to_string());
            return Err(ApiError::new(Code::BadRequest, e.to_string()));
        }
    };
    let n = samples.len();
    ingest::accept(&st, &device, samples, Via::Http).await?;
    Ok(axum::Json(Stored { stored: n }))
}

/// The device endpoints' state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IotStatus)]
pub struct Status {
    /// The platform's own MQTT endpoint, if it is listening.
    pub mqtt_listen: Option<String>,
    /// The external broker, if configured.
    pub broker: Option<String>,
    pub broker_connected: bool,
    /// Devices publish to `<prefix>/<code>/telemetry`.
    pub topic_prefix: String,
    /// Payload formats devices may be registered with.
    pub formats: Vec<&'static str>,
}

/// Where devices connect, and whether the external broker is reachable.
#[utoipa::path(get, path = "/api/iot/status", tag = "iot",
    responses((status = 200, body = Status), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn status(
    State(st): State<AppState>,
    Auth(c): Auth,
    Extension(shared): Extension<IotShared>,
) -> ApiResult<axum::Json<Status>> {
    registry::require_read(&c)?;
    let cfg = &st.config.raw.mqtt;
    let listen = shared.listen.lock().ok().and_then(|g| g.map(|a| a.to_string()));
    Ok(axum::Json(Status {
        mqtt_listen: listen,
        broker: (!cfg.broker.is_empty()).then(|| cfg.broker.clone()),
        broker_connected: shared.broker.connected.load(Ordering::Relaxed),
        topic_prefix: cfg.topic_prefix.clone(),
        formats: payload::formats(),
    }))
}
