//! `GET /api/alarms/stream`: the desk's WebSocket. Every alarm change (raised, updated, ended,
//! a handling step) the caller may see is pushed as it happens.
//!
//! One task per platform reads the bus (`alarms.>`) and hands each change to a broadcast
//! channel; each socket takes from it what is in its caller's scope. A socket that falls behind
//! (a slow browser) loses the oldest changes, never holds up the bus, and is told to reload
//! (`{"type":"resync"}`).
//!
//! Protocol: `{"type":"alarm","alarm":{…}}` per change, `{"type":"resync"}` after a loss.

use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use kernel::access::Caller;
use kernel::bus::Bus;
use kernel::error::{ApiError, ApiResult, Problem};
use kernel::http::Auth;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Changes kept for sockets that fall behind, before they are told to reload.
const BACKLOG: usize = 1024;

/// One alarm change: its organisation (for scoping) and its JSON.
#[derive(Clone, Debug)]
pub struct Change {
    org_id: String,
    json: Arc<str>,
}

/// The fan-out of alarm changes to the desk's sockets.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Change>,
}

impl Default for Hub {
    fn default() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl Hub {
    /// Reads alarm changes from the bus until `shutdown`.
    pub async fn run(self, bus: Arc<dyn Bus>, shutdown: kernel::platform::CancellationToken) {
        let mut sub = match bus.subscribe("alarms.>") {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "alarm stream not started: no bus subscription");
                return;
            }
        };
        loop {
            let m = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = sub.next() => match m { Some(m) => m, None => break },
            };
            #[derive(serde::Deserialize)]
            struct Head {
                org_id: String,
            }
            match serde_json::from_slice::<Head>(&m.payload) {
                Ok(h) => {
                    let json: Arc<str> = String::from_utf8_lossy(&m.payload).into();
                    // No socket listening is not an error.
                    let _ = self.tx.send(Change { org_id: h.org_id, json });
                }
                Err(e) => tracing::warn!(error = %e, subject = %m.subject, "alarm change not understood"),
            }
        }
    }
}

/// Alarm changes over a WebSocket (upgrade with the session cookie or a bearer token).
#[utoipa::path(get, path = "/api/alarms/stream", tag = "alarms",
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
pub async fn stream(
    Extension(hub): Extension<Hub>,
    Auth(c): Auth,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    crate::service::require_read(&c)?;
    let Ok(ws) = ws else {
        return Err(ApiError::bad_request("this route speaks WebSocket: send an upgrade request"));
    };
    let rx = hub.tx.subscribe();
    Ok(ws.max_message_size(1024).on_upgrade(move |socket| run(socket, rx, c)))
}

async fn run(mut socket: WebSocket, mut rx: broadcast::Receiver<Change>, caller: Caller) {
    metrics::gauge!("wuqing_alarm_streams").increment(1.0);
    loop {
        let out = tokio::select! {
            change = rx.recv() => match change {
                Ok(c) if caller.scope.contains(&c.org_id) => format!("{{\"type\":\"alarm\",\"alarm\":{}}}", c.json),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(lost = n, user = %caller.username, "alarm stream fell behind");
                    "{\"type\":\"resync\"}".to_string()
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(Message::Text(out.into())).await.is_err() {
            break;
        }
    }
    metrics::gauge!("wuqing_alarm_streams").decrement(1.0);
}
