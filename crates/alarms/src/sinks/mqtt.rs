//! The MQTT sink: every alarm change published at QoS 1 to
//! `<topic_prefix>/alarms/<domain>/<kind>` at the configured external broker.
//!
//! Two tasks: one reads the bus and hands each change to the client's bounded request queue
//! without waiting (a full queue drops the change, counted, with a warning at most once a
//! minute: the bus is never held up by the broker); the other polls the client's event loop,
//! which is what makes it send and reconnect, backing off from 1 s to 30 s while the broker is
//! unreachable.

use super::{Changes, Sinks};
use kernel::bus::{Bus, Subscription};
use kernel::config::MqttConfig;
use kernel::platform::CancellationToken;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The largest alarm message sent (an alarm's evidence is bounded to 16 KiB; its steps add a
/// little).
const MAX_OUTGOING: usize = 1024 * 1024;

/// `mqtt://host:port` → host and port (the config check already refused anything else).
pub fn parse_broker(url: &str) -> Option<(String, u16)> {
    let hp = url.strip_prefix("mqtt://")?;
    let (h, p) = hp.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    let p: u16 = p.parse().ok().filter(|p| *p > 0)?;
    (!h.is_empty()).then(|| (h.to_string(), p))
}

/// The publisher's own client id: the configured one is the device subscriber's, and a broker
/// disconnects the older of two connections with the same id. Kept within MQTT 3.1's 23 bytes.
pub fn client_id(configured: &str) -> String {
    let base: String = configured.chars().take(16).collect();
    format!("{base}-alarms")
}

/// One topic level from a domain or kind: MQTT's separators and wildcards cannot leak in.
fn level(s: &str) -> String {
    let t: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(64).collect();
    if t.is_empty() { "_".into() } else { t }
}

pub fn topic(prefix: &str, domain: &str, kind: &str) -> String {
    format!("{prefix}/alarms/{}/{}", level(domain), level(kind))
}

/// Starts the sink's tasks, or none when no broker is configured.
pub fn spawn(cfg: &MqttConfig, bus: Arc<dyn Bus>, sinks: &Sinks, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    if cfg.broker.is_empty() {
        return vec![];
    }
    let Some((host, port)) = parse_broker(&cfg.broker) else {
        tracing::warn!("alarm MQTT sink not started: mqtt.broker is not mqtt://host:port");
        return vec![];
    };
    let mut opts = MqttOptions::new(client_id(&cfg.client_id), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(true);
    opts.set_max_packet_size(64 * 1024, MAX_OUTGOING);
    if !cfg.broker_username.is_empty() {
        opts.set_credentials(cfg.broker_username.clone(), cfg.broker_password.clone());
    }
    let sub = match bus.subscribe("alarms.>") {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "alarm MQTT sink not started: no bus subscription");
            return vec![];
        }
    };
    let (client, eventloop) = AsyncClient::new(opts, sinks.settings().mqtt_queue.max(1));
    tracing::info!(broker = %cfg.broker, "alarm MQTT sink started");
    vec![
        tokio::spawn(drive(eventloop, shutdown.clone())),
        tokio::spawn(publish(sub, client, cfg.topic_prefix.clone(), shutdown)),
    ]
}

/// Polls the event loop: sends, receives acknowledgements, reconnects with back-off.
async fn drive(mut eventloop: EventLoop, shutdown: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    let mut last_warn: Option<Instant> = None;
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("alarm MQTT sink connected to the broker");
                backoff = BACKOFF_MIN;
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                metrics::counter!("wuqing_alarm_mqtt_published_total").increment(1);
            }
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("wuqing_alarm_mqtt_connection_errors_total").increment(1);
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warn = Some(Instant::now());
                    tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "alarm MQTT sink: broker unreachable");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Reads alarm changes from the bus and queues them for the broker without ever waiting.
async fn publish(sub: Subscription, client: AsyncClient, prefix: String, shutdown: CancellationToken) {
    let mut changes = Changes::new(sub);
    let mut last_warn: Option<Instant> = None;
    let mut dropped: u64 = 0;
    while let Some((change, event)) = changes.next(&shutdown).await {
        let topic = topic(&prefix, &change.head.domain, &change.head.kind);
        match client.try_publish(topic, QoS::AtLeastOnce, false, change.body(event).into_bytes()) {
            Ok(()) => metrics::counter!("wuqing_alarm_mqtt_queued_total").increment(1),
            Err(_) => {
                dropped += 1;
                metrics::counter!("wuqing_alarm_mqtt_dropped_total").increment(1);
                if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    last_warn = Some(Instant::now());
                    tracing::warn!(dropped, "alarm MQTT sink: broker queue full, alarm changes dropped");
                    dropped = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_topics_and_ids() {
        assert_eq!(parse_broker("mqtt://127.0.0.1:1883"), Some(("127.0.0.1".into(), 1883)));
        assert_eq!(parse_broker("mqtt://[::1]:1884"), Some(("::1".into(), 1884)));
        assert_eq!(parse_broker("mqtt://host"), None);
        assert_eq!(parse_broker("tcp://host:1883"), None);
        assert_eq!(topic("wuqing", "transport", "overspeed"), "wuqing/alarms/transport/overspeed");
        assert_eq!(topic("a/b", "x/#", "+"), "a/b/alarms/x__/_");
        assert_eq!(client_id("wuqing-platform"), "wuqing-platform-alarms");
        assert!(client_id("a-very-long-client-id-x").len() <= 23);
    }
}
