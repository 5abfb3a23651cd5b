//! The subscription to an external broker (Mosquitto, EMQX), for districts whose devices already
//! publish there. The platform subscribes to `<prefix>/+/telemetry` at QoS 1 with a persistent
//! session and **manual acknowledgements**: the broker's message is acknowledged only after the
//! readings are stored, so the broker keeps (and redelivers) whatever the platform has not
//! stored, including across a restart of the platform.
//!
//! Authentication of devices is the broker's job there (its ACL must tie each topic to its
//! device's user name); the platform checks that the topic's device is registered and enabled,
//! and drops (counted, logged, acknowledged) what is not.

use crate::ingest::{self, Via};
use crate::registry::DeviceCache;
use kernel::http::AppState;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Whether the subscription is up, for `/api/iot/status`.
#[derive(Clone, Default)]
pub struct BrokerState {
    pub connected: Arc<AtomicBool>,
}

/// Splits `mqtt://host:port` (checked by the kernel's configuration).
fn host_port(url: &str) -> Option<(String, u16)> {
    let hp = url.strip_prefix("mqtt://")?;
    let (h, p) = hp.rsplit_once(':')?;
    Some((h.to_string(), p.parse().ok()?))
}

/// Runs the subscription until `shutdown`, reconnecting with back-off.
pub async fn run(state: AppState, devices: DeviceCache, status: BrokerState, shutdown: CancellationToken) {
    let cfg = state.config.raw.mqtt.clone();
    let Some((host, port)) = host_port(&cfg.broker) else {
        tracing::warn!("MQTT broker address not understood; subscription not started");
        return;
    };
    let mut opts = MqttOptions::new(cfg.client_id.clone(), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(false);
    opts.set_manual_acks(true);
    opts.set_max_packet_size(crate::endpoint::MAX_PACKET, crate::endpoint::MAX_PACKET);
    if !cfg.broker_username.is_empty() {
        opts.set_credentials(cfg.broker_username.clone(), cfg.broker_password.clone());
    }
    let filter = format!("{}/+/telemetry", cfg.topic_prefix);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut backoff = Duration::from_millis(500);
    let mut warned = false;
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(500);
                warned = false;
                status.connected.store(true, Ordering::Relaxed);
                tracing::info!(broker = %cfg.broker, session_present = ack.session_present, "MQTT broker connected");
                // Subscribing again on a kept session is harmless; it is needed on a new one.
                if let Err(e) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await {
                    tracing::warn!(error = %e, "MQTT subscription not requested");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if !handle(&state, &devices, &cfg.topic_prefix, &p, &shutdown).await {
                    // Not stored: leave it unacknowledged and reconnect, so the broker sends it again.
                    status.connected.store(false, Ordering::Relaxed);
                    let _ = client.disconnect().await;
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                if let Err(e) = client.ack(&p).await {
                    tracing::warn!(error = %e, "MQTT acknowledgement not queued");
                }
            }
            Ok(_) => {}
            Err(e) => {
                status.connected.store(false, Ordering::Relaxed);
                if !warned {
                    tracing::warn!(broker = %cfg.broker, error = %e, "MQTT broker unreachable; retrying");
                    warned = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    status.connected.store(false, Ordering::Relaxed);
    let _ = client.try_disconnect();
}

/// One message: `true` when it is settled (stored, or refused for good) and may be acknowledged.
async fn handle(
    state: &AppState,
    devices: &DeviceCache,
    prefix: &str,
    p: &rumqttc::Publish,
    shutdown: &CancellationToken,
) -> bool {
    let code = p
        .topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix('/'))
        .and_then(|t| t.strip_suffix("/telemetry"))
        .unwrap_or("");
    let device = match devices.get(&state.store, code).await {
        Ok(Some(d)) if d.enabled => d,
        Ok(_) => {
            ingest::refused(Via::Broker, &code.chars().take(64).collect::<String>(), "unknown or disabled device");
            return true;
        }
        Err(e) => {
            tracing::warn!(error = %e, "device not read");
            return false;
        }
    };
    let samples = match ingest::decode(&device, &p.payload) {
        Ok(s) => s,
        Err(e) => {
            ingest::refused(Via::Broker, &device.code, &e.to_string());
            return true;
        }
    };
    // A store that is briefly busy is retried here; a longer outage hands the message back.
    for attempt in 0..3u32 {
        match ingest::accept(state, &device, samples.clone(), Via::Broker).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "sensor readings not stored");
                if shutdown.is_cancelled() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    false
}
