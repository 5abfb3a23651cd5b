//! Notification sinks: every alarm change leaves the platform as a signed webhook (per
//! organisation) and, when a broker is configured, as an MQTT message.
//!
//! Both read the alarm changes the service publishes on the bus (`alarms.>`) and send the same
//! JSON body:
//!
//! ```json
//! { "event": "alarm.raised", "alarm": { "id": "…", "domain": "transport", "kind": "overspeed", … } }
//! ```
//!
//! `event` is one of `alarm.raised`, `alarm.updated` (a repeated report: figures, severity),
//! `alarm.ended` (the condition ended), `alarm.acknowledged`, `alarm.handled`, `alarm.closed`,
//! `alarm.supervised`; `webhook.test` (with `"alarm": null`) is what `POST …/{id}/test` sends.
//! `alarm` is the alarm as `GET /api/alarms/{id}` shows it (after a handling step, with its
//! steps).
//!
//! # Webhooks
//! An organisation's operators (an enterprise: its own alarms) or regulators (a bureau: every
//! alarm its scope covers, its domain's enterprises included) register URLs under
//! `/api/alarms/webhooks`, with a filter (least severity; optionally domains and kinds). Each
//! matching change becomes a row of `alarm_webhook_deliveries` (committed before any attempt, so
//! pending deliveries survive a restart) that a sender posts with these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Wuqing-Event` | the event, as in the body |
//! | `X-Wuqing-Delivery` | the delivery's id (the same on every retry: deduplicate by it) |
//! | `X-Wuqing-Timestamp` | Unix seconds at this attempt |
//! | `X-Wuqing-Signature` | `sha256=` and the lowercase hex HMAC-SHA256, keyed with the webhook's secret (the whole `whsec_…` string as UTF-8), of `"<timestamp>.<body>"` |
//!
//! **Verifying a delivery** (the receiver): take the raw body bytes as received (before any JSON
//! parsing), compute `HMAC-SHA256(secret, timestamp + "." + body)`, compare its hex with the
//! signature header in constant time, and reject the request if they differ or if the
//! timestamp is more than five minutes from the receiver's clock (a replayed old request). Then
//! deduplicate by `X-Wuqing-Delivery`: a delivery whose answer was lost is sent again.
//!
//! The secret (256 random bits) is shown once, when the webhook is created or its secret
//! rotated; it is stored encrypted with the field cipher (SM4-GCM) and never logged or audited.
//!
//! **Retries**: any answer but 2xx (redirects are not followed), a time-out (10 s) or a
//! connection failure is retried with exponential back-off (30 s, 1 min, 2 min, … at most 1 h)
//! up to 8 attempts, then the delivery is marked failed. A few are in flight at once
//! ([`SinkSettings::concurrency`]). Delivered and failed rows are purged after 30 days.
//!
//! # MQTT
//! With `mqtt.broker` configured, every change is published at QoS 1 to
//! `<topic_prefix>/alarms/<domain>/<kind>` as client `<client_id>-alarms` (its own session: the
//! device subscriber keeps `client_id`). A broker that is down never holds up the bus: changes
//! wait in a small bounded queue while the client reconnects with back-off; beyond it they are
//! dropped, counted and warned about (at most once a minute).

pub mod api;
pub mod delivery;
pub mod mqtt;
pub mod webhooks;

use crate::model::{Severity, Status};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How the sinks behave; tests shorten the back-off and the polling.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Attempts of a delivery before it is marked failed.
    pub max_attempts: i64,
    /// Wait after the first failed attempt; doubled after each further one.
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// Time-out of one attempt (connect, send, answer).
    pub timeout: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How often the sender looks for due deliveries when nothing woke it.
    pub poll: Duration,
    /// How long delivered and failed deliveries are kept.
    pub retention: Duration,
    /// How often old deliveries are purged.
    pub purge_every: Duration,
    /// Changes waiting for the MQTT broker before newer ones are dropped.
    pub mqtt_queue: usize,
}

impl Default for SinkSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            poll: Duration::from_secs(2),
            retention: Duration::from_secs(30 * 86_400),
            purge_every: Duration::from_secs(3600),
            mqtt_queue: 256,
        }
    }
}

impl SinkSettings {
    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.backoff_base.saturating_mul(2u32.saturating_pow(exp)).min(self.backoff_max)
    }
}

/// The sinks' shared parts: settings, the HTTP client, the sender's wake-up.
#[derive(Clone, Default)]
pub struct Sinks {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    settings: SinkSettings,
    wake: Notify,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Sinks {
    pub fn new(settings: SinkSettings) -> Self {
        Self { inner: Arc::new(Inner { settings, ..Default::default() }) }
    }

    pub fn settings(&self) -> &SinkSettings {
        &self.inner.settings
    }

    /// Tells the sender that deliveries were queued.
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// The HTTP client of deliveries, built once: no redirects followed (a redirect is not a
    /// delivery, and following one would send the signed body where the owner did not say).
    pub(crate) fn client(&self) -> Result<&reqwest::Client, &str> {
        let timeout = self.inner.settings.timeout;
        self.inner
            .client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .user_agent(concat!("wuqing-alarms/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// What a sink needs of an alarm change on the bus; the rest of the alarm is passed on as is.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Head {
    pub id: String,
    pub org_id: String,
    pub domain: String,
    pub kind: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(default)]
    pub supervised: bool,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub triggers: i64,
    #[serde(default)]
    pub steps: Option<Vec<StepHead>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct StepHead {
    pub step: String,
}

/// The alarm changes both sinks read from the bus (`alarms.>`), each with its event name.
pub(crate) struct Changes {
    sub: kernel::bus::Subscription,
    classifier: Classifier,
}

impl Changes {
    pub(crate) fn new(sub: kernel::bus::Subscription) -> Self {
        Self { sub, classifier: Classifier::default() }
    }

    /// The next change that reads (others are logged and skipped); `None` at shutdown or when
    /// the bus closes.
    pub(crate) async fn next(
        &mut self,
        shutdown: &kernel::platform::CancellationToken,
    ) -> Option<(Change, &'static str)> {
        loop {
            let m = tokio::select! {
                _ = shutdown.cancelled() => return None,
                m = self.sub.next() => m?,
            };
            match Change::parse(&m.payload) {
                Ok(c) => {
                    let event = self.classifier.classify(&c.head);
                    return Some((c, event));
                }
                Err(e) => tracing::warn!(error = %e, subject = %m.subject, "alarm change not understood"),
            }
        }
    }
}

/// One alarm change as read from the bus.
#[derive(Debug, Clone)]
pub struct Change {
    pub head: Head,
    /// The alarm's JSON as published (checked to be a JSON object).
    pub json: Arc<str>,
}

impl Change {
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let json = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let head: Head = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Self { head, json: json.into() })
    }

    /// The body both sinks send.
    pub fn body(&self, event: &str) -> String {
        body(event, &self.json)
    }
}

/// `{"event":…,"alarm":…}`; `alarm_json` is already JSON (an object or `null`).
pub(crate) fn body(event: &str, alarm_json: &str) -> String {
    let event = serde_json::Value::from(event);
    format!("{{\"event\":{event},\"alarm\":{alarm_json}}}")
}

/// The steps that name an event of their own.
fn step_event(step: &str) -> Option<&'static str> {
    Some(match step {
        "raised" => "alarm.raised",
        "acknowledged" => "alarm.acknowledged",
        "handled" => "alarm.handled",
        "closed" => "alarm.closed",
        "supervised" => "alarm.supervised",
        _ => return None,
    })
}

fn status_event(s: Status) -> &'static str {
    match s {
        Status::Raised => "alarm.raised",
        Status::Acknowledged => "alarm.acknowledged",
        Status::Handled => "alarm.handled",
        Status::Closed => "alarm.closed",
    }
}

/// Alarms remembered by a classifier before it forgets them all.
const REMEMBERED: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Seen {
    status: Status,
    supervised: bool,
    ended: bool,
}

/// Names the event of each change. The bus carries the alarm after the change, not the change:
/// a handling step publishes the alarm with its steps (the newest names the event); a raise or
/// an end publishes it without, and the difference from the alarm as last seen tells which
/// (after a restart, a first sight with one trigger is a raise).
#[derive(Debug, Default)]
pub struct Classifier {
    seen: HashMap<String, Seen>,
}

impl Classifier {
    pub fn classify(&mut self, h: &Head) -> &'static str {
        if self.seen.len() >= REMEMBERED && !self.seen.contains_key(&h.id) {
            self.seen.clear();
        }
        let now = Seen { status: h.status, supervised: h.supervised, ended: h.ended_at.is_some() };
        let prev = self.seen.insert(h.id.clone(), now);
        if let Some(ev) = h.steps.as_ref().and_then(|s| s.last()).and_then(|s| step_event(&s.step)) {
            return ev;
        }
        match prev {
            Some(p) if p.status != now.status => status_event(now.status),
            Some(p) if !p.supervised && now.supervised => "alarm.supervised",
            Some(p) if !p.ended && now.ended => "alarm.ended",
            Some(_) => "alarm.updated",
            None if now.ended => "alarm.ended",
            None if h.triggers <= 1 && now.status == Status::Raised => "alarm.raised",
            None => "alarm.updated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: Status, triggers: i64, ended: bool, supervised: bool, steps: Option<&[&str]>) -> Head {
        Head {
            id: "a1".into(),
            org_id: "o".into(),
            domain: "transport".into(),
            kind: "overspeed".into(),
            severity: Severity::Minor,
            status,
            supervised,
            ended_at: ended.then(|| "2026-01-01T00:00:00Z".into()),
            triggers,
            steps: steps.map(|s| s.iter().map(|s| StepHead { step: s.to_string() }).collect()),
        }
    }

    #[test]
    fn events_follow_the_alarm_through_its_life() {
        let mut c = Classifier::default();
        assert_eq!(c.classify(&head(Status::Raised, 1, false, false, None)), "alarm.raised");
        assert_eq!(c.classify(&head(Status::Raised, 2, false, false, None)), "alarm.updated");
        assert_eq!(
            c.classify(&head(Status::Raised, 2, false, true, Some(&["raised", "supervised"]))),
            "alarm.supervised"
        );
        assert_eq!(c.classify(&head(Status::Raised, 2, true, true, None)), "alarm.ended");
        assert_eq!(
            c.classify(&head(Status::Acknowledged, 2, true, true, Some(&["raised", "supervised", "acknowledged"]))),
            "alarm.acknowledged"
        );
        // Without steps, a status change still names itself.
        assert_eq!(c.classify(&head(Status::Handled, 2, true, true, None)), "alarm.handled");
        // A platform step last (a message sent) falls back to the difference.
        assert_eq!(c.classify(&head(Status::Closed, 2, true, true, Some(&["closed", "tts_sent"]))), "alarm.closed");
        // First sight after a restart.
        let mut fresh = Classifier::default();
        assert_eq!(fresh.classify(&head(Status::Raised, 3, false, false, None)), "alarm.updated");
        let mut fresh = Classifier::default();
        assert_eq!(fresh.classify(&head(Status::Raised, 3, true, false, None)), "alarm.ended");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = SinkSettings::default();
        assert_eq!(s.backoff(1), Duration::from_secs(30));
        assert_eq!(s.backoff(2), Duration::from_secs(60));
        assert_eq!(s.backoff(4), Duration::from_secs(240));
        assert_eq!(s.backoff(20), Duration::from_secs(3600));
        assert_eq!(s.backoff(i64::MAX), Duration::from_secs(3600));
        assert_eq!(s.backoff(0), Duration::from_secs(30));
    }

    #[test]
    fn the_body_wraps_the_alarm() {
        let b = body("alarm.raised", r#"{"id":"a"}"#);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_default();
        assert_eq!(v["event"], "alarm.raised");
        assert_eq!(v["alarm"]["id"], "a");
    }
}
