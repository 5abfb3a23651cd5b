//! Sensor rules at work: every stored reading goes through the alarm engine (crate `rules`,
//! its generic sensor thresholds with hysteresis and minimum duration), the profile being the
//! device's kind and organisation; its events become alarms on the desk (crate `alarms`,
//! domain `iot`, kind = the rule's id, subject = the device).
//!
//! Like the transport rules, the task reads from the bus (`iot.reading.>`, published after the
//! commit) so acknowledgements never wait for rules, and the engine's state is saved every
//! minute and at shutdown (`iot_rules_state`) so a restart keeps an episode in progress.

use crate::ingest::Published;
use alarms::engines;
use alarms::model::NewAlarm;
use kernel::http::AppState;
use kernel::store::Store;
use kernel::versioned;
use rules::{Direction, Engine, Event, Phase, Profile, Reading, RuleSet, SensorRule};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The domain of sensor alarms on the desk.
pub const DOMAIN: &str = "iot";
/// Where the engine's state is saved.
pub(crate) const STATE_TABLE: &str = "iot_rules_state";

/// The built-in sensor rules, by device kind. Thresholds with their sources:
/// - `cold_store_probe` / `reefer_probe` (冷藏): above 8 °C for 5 min. Chilled storage and
///   transport of vaccines and medicines is 2–8 °C (疫苗储存和运输管理规范 2017, art. 10); the
///   same band is common for chilled food (GB 31605-2020 leaves the range to the product).
///   Below 2 °C for 5 min: freezing damages vaccines and chilled produce.
/// - `freezer_probe` (冷冻): above −18 °C for 10 min (GB 31605-2020 §3: frozen food at or below
///   −18 °C).
/// - `bp_monitor` (血压): systolic ≥ 180 or diastolic ≥ 110 mmHg, at once (national basic public
///   health service: urgent referral at ≥ 180/110).
/// - `pm_monitor` (颗粒物): PM2.5 above 75 µg/m³ for 1 h (GB 3095-2012 grade II, 24-hour mean
///   limit; a point threshold is stricter than the mean and is meant as an early warning).
/// - `water_level_gauge` (水位): above 5.0 m for 10 min: a placeholder warning level, to be set
///   per station by the water authority.
pub fn builtin_rules() -> RuleSet {
    let rule = |id: &str, kind: &str, metric: &str, dir: Direction, th: f64, hyst: f64, min_s: i64, sev| SensorRule {
        id: id.into(),
        metric: metric.into(),
        direction: dir,
        threshold: th,
        hysteresis: hyst,
        min_duration_s: min_s,
        severity: sev,
        classes: vec![kind.into()],
    };
    use rules::Severity::*;
    let sensors = vec![
        rule("cold_store_temp_high", "cold_store_probe", "temperature", Direction::Above, 8.0, 0.5, 300, High),
        rule("cold_store_temp_low", "cold_store_probe", "temperature", Direction::Below, 2.0, 0.5, 300, Medium),
        rule("reefer_temp_high", "reefer_probe", "temperature", Direction::Above, 8.0, 0.5, 300, High),
        rule("reefer_temp_low", "reefer_probe", "temperature", Direction::Below, 2.0, 0.5, 300, Medium),
        rule("freezer_temp_high", "freezer_probe", "temperature", Direction::Above, -18.0, 1.0, 600, High),
        rule("bp_systolic_urgent", "bp_monitor", "bp_systolic", Direction::Above, 179.5, 10.0, 0, Critical),
        rule("bp_diastolic_urgent", "bp_monitor", "bp_diastolic", Direction::Above, 109.5, 10.0, 0, Critical),
        rule("pm25_high", "pm_monitor", "pm25", Direction::Above, 75.0, 5.0, 3600, Medium),
        rule("water_level_high", "water_level_gauge", "water_level", Direction::Above, 5.0, 0.1, 600, High),
    ];
    RuleSet { sensors, ..RuleSet::default() }
}

/// What the alarms need of a device.
#[derive(Clone)]
pub(crate) struct DeviceInfo {
    org_id: String,
    kind: String,
    label: String,
}

/// The devices an engine has heard, by id.
pub(crate) type Devices = HashMap<String, DeviceInfo>;

/// The newest stored sensor rules, when their version is not `seen` (which it becomes); a
/// version that cannot be used is logged once and the rules in force are kept.
pub(crate) async fn newer_rules(store: &Store, seen: &mut Option<i64>) -> Option<RuleSet> {
    let doc = match versioned::current(store, crate::rules_api::DOCUMENT).await {
        Ok(Some(doc)) if Some(doc.info.version) != *seen => doc,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "stored sensor rules not read");
            return None;
        }
    };
    *seen = Some(doc.info.version);
    match crate::rules_api::rules_of(&doc) {
        Ok(r) => {
            tracing::info!(version = doc.info.version, "sensor rules version in force");
            Some(r)
        }
        Err(e) => {
            tracing::error!(error = %e, "stored sensor rules not applied: keeping the rules in force");
            None
        }
    }
}

/// The sensor rules task: runs until `shutdown`, then saves the engine's state. `rules` apply
/// until a version is published (`iot.rules`).
pub async fn run(state: AppState, rules: RuleSet, save_every: Duration, shutdown: CancellationToken) {
    let mut sub = match state.bus.subscribe("iot.reading.>") {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "sensor rules not started: no bus subscription");
            return;
        }
    };
    // Subscribed before the first read, so that a publication in between is heard.
    let mut published = match state.bus.subscribe(&versioned::subject(crate::rules_api::DOCUMENT)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "sensor rules publications not heard: re-read at every save only");
            None
        }
    };
    let mut seen = None;
    let rules = newer_rules(&state.store, &mut seen).await.unwrap_or(rules);
    let mut engine = match engines::load_snapshot(&state.store, STATE_TABLE).await {
        Ok(Some((s, _))) => Engine::restore(rules, s),
        Ok(None) => Engine::new(rules),
        Err(e) => {
            tracing::warn!(error = %e, "sensor rules state not read: starting with empty state");
            Engine::new(rules)
        }
    };
    let mut devices = Devices::new();
    let mut save = tokio::time::interval(save_every);
    save.tick().await;
    loop {
        let (device_id, events) = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = save.tick() => {
                if let Err(e) = engines::save_snapshot(&state.store, STATE_TABLE, &engine).await {
                    tracing::warn!(error = %e, "sensor rules state not saved");
                }
                if let Some(r) = newer_rules(&state.store, &mut seen).await {
                    engine.set_rules(r);
                }
                continue;
            }
            Some(_) = engines::next_or_never(&mut published) => {
                if let Some(r) = newer_rules(&state.store, &mut seen).await {
                    engine.set_rules(r);
                }
                continue;
            }
            m = sub.next() => {
                let Some(m) = m else { break };
                match serde_json::from_slice::<Published>(&m.payload) {
                    Ok(p) => observe(&mut engine, &mut devices, p),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading on the bus not understood");
                        continue;
                    }
                }
            }
        };
        record(&state, &devices, &device_id, events).await;
    }
    if let Err(e) = engines::save_snapshot(&state.store, STATE_TABLE, &engine).await {
        tracing::warn!(error = %e, "sensor rules state not saved at shutdown");
    }
}

/// Runs one stored message's samples through `engine` (the device's profile set or updated
/// from the message); returns the device and the events.
pub(crate) fn observe(engine: &mut Engine, devices: &mut Devices, p: Published) -> (String, Vec<Event>) {
    // A patient's monitor is named by the device alone: the desk is no place for whom it is
    // bound to (its label may hold a name).
    let label = if p.subject_label.is_empty() || p.subject_type == "patient" {
        p.name.clone()
    } else {
        format!("{} ({})", p.name, p.subject_label)
    };
    let info = DeviceInfo { org_id: p.org_id.clone(), kind: p.kind.clone(), label };
    let changed = devices.get(&p.device_id).is_none_or(|d| d.kind != info.kind || d.org_id != info.org_id);
    if changed {
        engine.set_profile(&p.device_id, Profile::new(&info.kind, &info.org_id));
    }
    devices.insert(p.device_id.clone(), info);
    let mut samples = p.samples;
    samples.sort_by_key(|s| s.device_ms);
    let mut events = Vec::new();
    for s in samples {
        let r = Reading { device_ms: s.device_ms, metric: s.metric, value: s.value };
        events.extend(engine.observe_reading(&p.device_id, &r));
    }
    (p.device_id, events)
}

/// Records a device's events as alarms (raised once per episode, ended).
pub(crate) async fn record(state: &AppState, devices: &Devices, device_id: &str, events: Vec<Event>) {
    let Some(info) = devices.get(device_id) else { return };
    for e in events {
        if let Err(err) = handle(state, device_id, info, e).await {
            tracing::warn!(error = %err, "sensor alarm not recorded");
        }
    }
}

async fn handle(state: &AppState, device_id: &str, info: &DeviceInfo, e: Event) -> anyhow::Result<()> {
    let kind = e.key.scope.clone();
    metrics::counter!("wuqing_iot_rule_events_total", "rule" => kind.clone()).increment(1);
    if e.phase == Phase::Ended {
        alarms::service::end(&state.store, &state.bus, DOMAIN, &kind, device_id, e.start_ms, e.at_ms).await?;
        return Ok(());
    }
    let mut details = serde_json::to_value(&e.details)?;
    if let Some(o) = details.as_object_mut() {
        o.insert("device_kind".into(), serde_json::Value::from(info.kind.clone()));
    }
    let new = NewAlarm {
        domain: DOMAIN.into(),
        kind,
        severity: engines::severity(e.severity),
        subject_type: "device".into(),
        subject_id: device_id.into(),
        subject_label: info.label.clone(),
        org_id: info.org_id.clone(),
        started_ms: e.start_ms,
        at_ms: e.at_ms,
        rule_version: i64::from(e.rule_version),
        details,
        evidence: serde_json::to_value(&e.evidence)?,
    };
    alarms::service::raise(&state.store, &state.bus, &new).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_are_valid() {
        let r = builtin_rules();
        assert_eq!(r.check(), Ok(()));
        assert!(
            r.sensors.iter().all(|s| s.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()))
        );
    }
}
