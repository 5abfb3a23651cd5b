//! `GET /api/transport/stream`: a WebSocket of live vehicle changes for the monitoring map,
//! scoped to the caller and filtered by enterprise, class and map bounds.
//!
//! The stream reads the live state on a tick and sends what changed since the last tick, so a
//! slow browser only delays itself: it never holds up the gateway or another client.
//!
//! Protocol: the server sends `{"type":"snapshot","vehicles":[…]}` first and after every filter
//! change, then `{"type":"changes","vehicles":[…]}` when anything changed. The client may send
//! `{"bbox":[min_lon,min_lat,max_lon,max_lat]}` (or `"bbox":null`) to move the map.

use crate::live::{LiveFilter, LiveMap, LiveVehicle};
use crate::model::VehicleClass;
use crate::registry;
use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use kernel::access::Caller;
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{Auth, Query};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    /// Map bounds `min_lon,min_lat,max_lon,max_lat`.
    pub bbox: Option<String>,
    /// Milliseconds between change batches, 200 to 5000 (default 1000).
    pub interval_ms: Option<u64>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Snapshot { vehicles: &'a [LiveVehicle] },
    Changes { vehicles: &'a [LiveVehicle] },
    Error { detail: &'a str },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    bbox: Option<[f64; 4]>,
}

/// Live vehicle changes over a WebSocket (upgrade with the session cookie or a bearer token).
#[utoipa::path(get, path = "/api/transport/stream", tag = "transport", params(StreamQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
pub async fn stream(
    Extension(live): Extension<LiveMap>,
    Auth(c): Auth,
    Query(q): Query<StreamQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    registry::require_read(&c)?;
    if let Some(o) = &q.org_id {
        c.require_org(o)?;
    }
    let bbox = q.bbox.as_deref().map(crate::api::parse_bbox).transpose()?;
    let interval = q.interval_ms.unwrap_or(1000);
    if !(200..=5000).contains(&interval) {
        return Err(ApiError::field(Code::InvalidQuery, "interval_ms", "between 200 and 5000"));
    }
    let Ok(ws) = ws else {
        return Err(ApiError::bad_request("this route speaks WebSocket: send an upgrade request"));
    };
    let filter = LiveFilter { org_id: q.org_id, class: q.class, online: None, bbox };
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| run(socket, live, c, filter, Duration::from_millis(interval))))
}

async fn send(socket: &mut WebSocket, msg: &Out<'_>) -> bool {
    match serde_json::to_string(msg) {
        Ok(s) => socket.send(Message::Text(s.into())).await.is_ok(),
        Err(_) => false,
    }
}

fn valid_bbox(b: &[f64; 4]) -> bool {
    b.iter().all(|x| x.is_finite())
        && b[0] <= b[2]
        && b[1] <= b[3]
        && b[0] >= -180.0
        && b[2] <= 180.0
        && b[1] >= -90.0
        && b[3] <= 90.0
}

async fn run(mut socket: WebSocket, live: LiveMap, caller: Caller, mut filter: LiveFilter, every: Duration) {
    metrics::gauge!("wuqing_transport_streams").increment(1.0);
    let mut seen = live.version();
    let mut ok = send(&mut socket, &Out::Snapshot { vehicles: &live.list(&caller.scope, &filter) }).await;
    let mut tick = tokio::time::interval(every);
    while ok {
        tokio::select! {
            _ = tick.tick() => {
                let now = live.version();
                if now != seen {
                    let changed = live.changed_since(&caller.scope, &filter, seen);
                    seen = now;
                    if !changed.is_empty() {
                        ok = send(&mut socket, &Out::Changes { vehicles: &changed }).await;
                    }
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<In>(&t) {
                    Ok(m) if m.bbox.as_ref().is_none_or(valid_bbox) => {
                        filter.bbox = m.bbox;
                        seen = live.version();
                        ok = send(&mut socket, &Out::Snapshot { vehicles: &live.list(&caller.scope, &filter) }).await;
                    }
                    _ => ok = send(&mut socket, &Out::Error { detail: "send {\"bbox\": [min_lon, min_lat, max_lon, max_lat]} or {\"bbox\": null}" }).await,
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    metrics::gauge!("wuqing_transport_streams").decrement(1.0);
}
