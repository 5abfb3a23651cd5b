//! Transport rules at work (运输监管报警): every stored position goes through the alarm engine
//! (crate `rules`) in device-time order; its events become alarms on the desk (crate `alarms`),
//! and a fatigue pre-warning is also read aloud to the driver (0x8300 with the TTS flag), its
//! delivery recorded in the alarm's steps.
//!
//! The task reads positions from the bus (`transport.position.>`), which the ingest path
//! publishes after the commit, so the engine sees only stored positions and the gateway's
//! acknowledgements never wait for rules. The engine's state is saved every minute and at
//! shutdown (`transport_rules_state`) and restored at start, so a restart keeps the driving
//! clocks; then the positions stored after the snapshot are replayed ([`catch_up`]), so a crash
//! loses no alarm that acknowledged positions imply.
//!
//! The rule set is the newest stored version of `transport.rules` ([`crate::rules_api`]), or the
//! built-in set while none is stored. A publication is heard on the bus
//! (`config.transport.rules`) and applied at once (`Engine::set_rules`: open episodes keep the
//! version that raised them, new ones carry the new version into their alarms); the stored
//! version is also re-checked at every save, in case a message was missed. A stored version this
//! release cannot use (an older format) is logged once and the rules in force are kept.

use crate::gateway::Connections;
use crate::positions::{Position, STATUS_ACC, STATUS_FIXED};
use crate::registry;
use crate::rules_api::{self, DOCUMENT};
use alarms::engines;
use alarms::model::NewAlarm;
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::{Store, StoreError, StoreResult, now_ms};
use kernel::versioned;
use rules::{Engine, Event, Fix, Phase, Profile, RuleSet};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// The domain name under which transport alarms are raised.
pub const DOMAIN: &str = "transport";
/// Where the engine's state is saved.
pub(crate) const STATE_TABLE: &str = "transport_rules_state";
/// How often the task evaluates time-outs, and saves the engine's state and re-reads the
/// vehicles' profiles.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// Time-outs (offline): 30 s.
    pub tick: Duration,
    /// State saved and profiles re-read (a vehicle's class or enterprise changed): 60 s.
    pub save: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self { tick: Duration::from_secs(30), save: Duration::from_secs(60) }
    }
}
/// How long a TTS message waits for the terminal's 0x0001.
const TTS_WAIT: Duration = Duration::from_secs(15);

/// What the ingest path publishes for each stored position.
#[derive(Deserialize)]
struct Published {
    vehicle_id: String,
    position: Position,
}

/// What the alarms need to know of a vehicle, and the class its profile was set with.
#[derive(Clone)]
pub(crate) struct VehicleInfo {
    org_id: String,
    plate: String,
    class: &'static str,
}

impl VehicleInfo {
    fn of(v: &registry::Vehicle) -> Self {
        Self { org_id: v.org_id.clone(), plate: v.plate.clone(), class: v.class.as_str() }
    }
}

/// Re-reads the registry: a vehicle the engine knows whose class, enterprise or plate changed
/// gets its new profile (its driving clocks stay).
pub(crate) async fn refresh(
    store: &Store,
    engine: &mut Engine,
    vehicles: &mut HashMap<String, Option<VehicleInfo>>,
) -> StoreResult<()> {
    let mut offset = 0;
    loop {
        let (page, _) = registry::all_vehicles(store, 500, offset).await?;
        if page.is_empty() {
            return Ok(());
        }
        offset += page.len() as i64;
        for v in &page {
            if let Some(Some(known)) = vehicles.get_mut(&v.id) {
                let now = VehicleInfo::of(v);
                if known.class != now.class || known.org_id != now.org_id {
                    engine.set_profile(&v.id, Profile::new(now.class, &now.org_id));
                }
                *known = now;
            }
        }
    }
}

/// How far back a vehicle the restored state does not know is replayed after a start (its
/// first fixes may have come in after the snapshot, or there is no snapshot at all).
const CATCH_UP_UNKNOWN: Duration = Duration::from_secs(15 * 60);
/// Most fixes replayed per vehicle after a start.
const CATCH_UP_MAX: i64 = 20_000;

/// After a start, replays what was stored but may not have been seen by the engine: positions
/// are acknowledged once committed and reach the rules from the bus afterwards, and the state is
/// saved only every minute, so a crash (SIGKILL, power loss) between the two would otherwise lose
/// the alarms those positions imply. For each registered vehicle: its fixes newer than the newest
/// the restored state saw, or, for a vehicle it does not know, those of the last
/// [`CATCH_UP_UNKNOWN`] before the snapshot (or before now without one). Fixes seen twice are
/// harmless: the engine counts a repeated device time as a duplicate, and an alarm is raised once
/// per episode. Returns the events, with how many vehicles and fixes were replayed.
pub(crate) async fn catch_up(
    store: &Store,
    engine: &mut Engine,
    vehicles: &mut HashMap<String, Option<VehicleInfo>>,
    saved_ms: Option<i64>,
    mine: impl Fn(&str) -> bool,
) -> StoreResult<(Vec<Event>, usize, usize)> {
    let unknown_from = saved_ms.unwrap_or_else(now_ms) - CATCH_UP_UNKNOWN.as_millis() as i64;
    let to = now_ms() + engine.rules().engine.future_tolerance_s.saturating_mul(1000);
    let (mut events, mut replayed_vehicles, mut replayed_fixes) = (Vec::new(), 0, 0);
    let mut offset = 0;
    loop {
        let (page, _) = registry::all_vehicles(store, 500, offset).await?;
        if page.is_empty() {
            return Ok((events, replayed_vehicles, replayed_fixes));
        }
        offset += page.len() as i64;
        for v in page.iter().filter(|v| mine(&v.id)) {
            let from = engine.newest_ms(&v.id).map_or(unknown_from, |n| n + 1);
            let stored = crate::positions::range(store, &v.id, from, to, CATCH_UP_MAX).await?;
            if stored.is_empty() {
                continue;
            }
            let info = VehicleInfo::of(v);
            engine.set_profile(&v.id, Profile::new(info.class, &info.org_id));
            vehicles.insert(v.id.clone(), Some(info));
            let fixes: Vec<Fix> = stored.iter().map(fix_of).collect();
            events.extend(engine.observe_batch(&v.id, &fixes));
            replayed_vehicles += 1;
            replayed_fixes += fixes.len();
        }
    }
}

/// The alarm episodes (kind code, start) that a vehicle's stored positions imply under the rules
/// in force, as a fresh engine replaying all of them in device-time order raises them: the
/// oracle of the crash test (`wuqing sim verify --alarms`). Offline episodes are left out: they
/// depend on when the engine's clock ticks, not on the positions alone.
pub async fn implied_episodes(store: &Store, vehicle_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let Some(v) = registry::vehicle_by_id(store, vehicle_id).await? else { return Ok(vec![]) };
    let rules = newer_rules(store, &mut None).await.unwrap_or_default();
    let mut engine = Engine::new(rules);
    engine.set_profile(&v.id, Profile::new(v.class.as_str(), &v.org_id));
    let stored = crate::positions::range(store, &v.id, 0, i64::MAX, 10_000_000).await?;
    let fixes: Vec<Fix> = stored.iter().map(fix_of).collect();
    Ok(engine
        .observe_batch(&v.id, &fixes)
        .iter()
        .filter(|e| matches!(e.phase, Phase::Raised | Phase::PreWarning))
        .filter(|e| !matches!(e.kind, rules::AlarmKind::Offline | rules::AlarmKind::OfflineLong))
        .map(|e| (kind_code(e), e.start_ms))
        .collect())
}

/// A JT/T 808 position as the engine takes it.
pub fn fix_of(p: &Position) -> Fix {
    Fix {
        device_ms: p.device_ms,
        lat: p.lat,
        lon: p.lon,
        speed_kmh: p.speed_kmh,
        heading: p.heading,
        acc_on: p.status & STATUS_ACC != 0,
        valid: p.status & STATUS_FIXED != 0,
        alarm_bits: p.alarm,
    }
}

/// The alarm kind's code on the desk: the engine's name; a pre-warning is its own kind.
fn kind_code(e: &Event) -> String {
    let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    if e.phase == Phase::PreWarning { format!("{kind}_pre_warning") } else { kind }
}

/// The driver's message of a fatigue pre-warning, if the event carries one.
fn driver_message(e: &Event) -> Option<String> {
    match &e.details {
        rules::Details::Fatigue { message, .. } => message.clone(),
        _ => None,
    }
}

/// The stored rule set, when its newest version is not `seen` (the version last taken or
/// refused, which it becomes); `None`: nothing new to apply. A version that cannot be used is
/// reported here once, and the caller keeps the rules in force.
pub(crate) async fn newer_rules(store: &Store, seen: &mut Option<i64>) -> Option<RuleSet> {
    match versioned::current_version(store, DOCUMENT).await {
        Ok(Some(v)) if Some(v) != *seen => {}
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "stored rules version not read");
            return None;
        }
    }
    let doc = match versioned::current(store, DOCUMENT).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return None,
        Err(StoreError::Corrupt(e)) => {
            // Not JSON at all: no retry will help; the newer version will.
            *seen = versioned::current_version(store, DOCUMENT).await.ok().flatten();
            tracing::error!(error = %e, "stored rules not applied: keeping the rules in force");
            metrics::counter!("wuqing_transport_rules_loaded_total", "outcome" => "refused").increment(1);
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "stored rules not read");
            return None;
        }
    };
    *seen = Some(doc.info.version);
    match rules_api::rules_of(&doc) {
        Ok(rules) => {
            tracing::info!(version = doc.info.version, "transport rules version in force");
            metrics::counter!("wuqing_transport_rules_loaded_total", "outcome" => "applied").increment(1);
            Some(rules)
        }
        Err(e) => {
            tracing::error!(error = %e, "stored rules not applied: keeping the rules in force");
            metrics::counter!("wuqing_transport_rules_loaded_total", "outcome" => "refused").increment(1);
            None
        }
    }
}

/// The rules task: runs until `shutdown`, then saves the engine's state.
pub async fn run(state: AppState, connections: Connections, every: Intervals, shutdown: CancellationToken) {
    let mut sub = match state.bus.subscribe("transport.position.>") {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "transport rules not started: no bus subscription");
            return;
        }
    };
    // Subscribed before the first read: a publication in between is heard, not lost.
    let mut published = match state.bus.subscribe(&versioned::subject(DOCUMENT)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "rules publications not heard: re-read at every save only");
            None
        }
    };
    let mut seen = None;
    let rules = newer_rules(&state.store, &mut seen).await.unwrap_or_default();
    let (mut engine, saved_ms) = match engines::load_snapshot(&state.store, STATE_TABLE).await {
        Ok(Some((s, saved_ms))) => (Engine::restore(rules, s), Some(saved_ms)),
        Ok(None) => (Engine::new(rules), None),
        Err(e) => {
            tracing::warn!(error = %e, "rules state not read: starting with empty state");
            (Engine::new(rules), None)
        }
    };
    let mut vehicles: HashMap<String, Option<VehicleInfo>> = HashMap::new();
    // Subscribed above, before this read: a position stored meanwhile is seen twice at worst.
    match catch_up(&state.store, &mut engine, &mut vehicles, saved_ms, |_| true).await {
        Ok((events, n_vehicles, n_fixes)) => {
            if n_fixes > 0 {
                tracing::info!(
                    vehicles = n_vehicles,
                    fixes = n_fixes,
                    events = events.len(),
                    "rules caught up with stored positions"
                );
            }
            record(&state, &connections, &vehicles, events).await;
        }
        Err(e) => tracing::warn!(error = %e, "rules did not catch up with stored positions"),
    }
    let mut tick = tokio::time::interval(every.tick);
    let mut save = tokio::time::interval(every.save);
    save.tick().await;
    loop {
        let events = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = sub.next() => {
                let Some(m) = m else { break };
                let p: Published = match serde_json::from_slice(&m.payload) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "position on the bus not understood");
                        continue;
                    }
                };
                if !know(&state.store, &mut engine, &mut vehicles, &p.vehicle_id).await {
                    continue;
                }
                engine.observe_fix(&p.vehicle_id, fix_of(&p.position))
            }
            _ = tick.tick() => engine.tick(now_ms()),
            m = engines::next_or_never(&mut published) => {
                if m.is_none() {
                    tracing::warn!("rules publications no longer heard: re-read at every save only");
                    published = None;
                }
                if let Some(rules) = newer_rules(&state.store, &mut seen).await {
                    engine.set_rules(rules);
                }
                continue;
            }
            _ = save.tick() => {
                if let Some(rules) = newer_rules(&state.store, &mut seen).await {
                    engine.set_rules(rules);
                }
                if let Err(e) = engines::save_snapshot(&state.store, STATE_TABLE, &engine).await {
                    tracing::warn!(error = %e, "rules state not saved");
                }
                if let Err(e) = refresh(&state.store, &mut engine, &mut vehicles).await {
                    tracing::warn!(error = %e, "vehicle profiles not re-read");
                }
                continue;
            }
        };
        record(&state, &connections, &vehicles, events).await;
    }
    if let Err(e) = engines::save_snapshot(&state.store, STATE_TABLE, &engine).await {
        tracing::warn!(error = %e, "rules state not saved at shutdown");
    }
}

/// Makes sure the engine has the vehicle's profile (read from the registry the first time it
/// is seen); `false` when the registry could not be read (the fix is not observed: it is
/// replayed by the next start's catch-up).
pub(crate) async fn know(
    store: &Store,
    engine: &mut Engine,
    vehicles: &mut HashMap<String, Option<VehicleInfo>>,
    vehicle_id: &str,
) -> bool {
    if vehicles.contains_key(vehicle_id) {
        return true;
    }
    let info = match registry::vehicle_by_id(store, vehicle_id).await {
        Ok(v) => v.map(|v| {
            engine.set_profile(&v.id, Profile::new(v.class.as_str(), &v.org_id));
            VehicleInfo::of(&v)
        }),
        Err(e) => {
            tracing::warn!(error = %e, "vehicle not read for the rules");
            return false;
        }
    };
    vehicles.insert(vehicle_id.to_string(), info);
    true
}

/// Turns the engine's events into alarms.
pub(crate) async fn record(
    state: &AppState,
    connections: &Connections,
    vehicles: &HashMap<String, Option<VehicleInfo>>,
    events: Vec<Event>,
) {
    for e in events {
        let vehicle = e.key.subject.clone();
        tracing::debug!(%vehicle, kind = ?e.kind, phase = ?e.phase, start_ms = e.start_ms, "rule event");
        let Some(Some(info)) = vehicles.get(&vehicle).cloned() else {
            tracing::debug!(%vehicle, "rule event of an unregistered vehicle dropped");
            continue;
        };
        if let Err(err) = handle(state, connections, &vehicle, &info, e).await {
            tracing::warn!(error = %err, "alarm not recorded");
        }
    }
}

async fn handle(
    state: &AppState,
    connections: &Connections,
    vehicle: &str,
    info: &VehicleInfo,
    e: Event,
) -> anyhow::Result<()> {
    let kind = kind_code(&e);
    metrics::counter!("wuqing_transport_rule_events_total", "kind" => kind.clone()).increment(1);
    if e.phase == Phase::Ended {
        alarms::service::end(&state.store, &state.bus, DOMAIN, &kind, vehicle, e.start_ms, e.at_ms).await?;
        return Ok(());
    }
    let message = (e.phase == Phase::PreWarning).then(|| driver_message(&e)).flatten();
    let new = NewAlarm {
        domain: DOMAIN.into(),
        kind,
        severity: engines::severity(e.severity),
        subject_type: "vehicle".into(),
        subject_id: vehicle.into(),
        subject_label: info.plate.clone(),
        org_id: info.org_id.clone(),
        started_ms: e.start_ms,
        at_ms: e.at_ms,
        rule_version: i64::from(e.rule_version),
        details: serde_json::to_value(&e.details)?,
        evidence: serde_json::to_value(&e.evidence)?,
    };
    let (alarm, how) = alarms::service::raise(&state.store, &state.bus, &new).await?;
    if let (Some(text), alarms::service::Raised::New) = (message, how) {
        // Read aloud to the driver, without holding up the rules; the outcome joins the alarm.
        let (store, connections, vehicle) = (state.store.clone(), connections.clone(), vehicle.to_string());
        tokio::spawn(async move {
            let note =
                match crate::command::prepare(crate::command::Command::Text { text, tts: true, emergency: false }) {
                    Ok(cmd) => {
                        let d = connections.command(&vehicle, cmd, TTS_WAIT).await;
                        if d.delivered {
                            format!("TTS delivered: {}", d.detail)
                        } else {
                            format!("TTS not delivered: {}", d.detail)
                        }
                    }
                    Err(e) => format!("TTS not sent: {}", e.problem().detail),
                };
            if let Err(e) = alarms::service::system_step(&store, &alarm.id, "notified", &note).await {
                tracing::warn!(error = %e, "notification not recorded");
            }
        });
    }
    Ok(())
}
