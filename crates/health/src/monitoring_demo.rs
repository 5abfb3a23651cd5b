//! The demo district's home monitoring: a blood-pressure monitor or glucose meter for each of
//! the Yangcun centre's managed hypertension and diabetes patients (up to [`DEVICES`]), their
//! readings over the past month taken through the same path as a live device's, the family
//! doctor's follow-ups on most of the tasks they raised (some late, some not yet), and a feed
//! that keeps the devices reporting while the demo runs, so that the worklist fills and the
//! indicators move. Idempotent (its own marker).
//!
//! Each patient has a profile by its number: five in ten controlled, one in ten borderline
//! (crossing the threshold now and then), three in ten not, one in ten with an urgent reading
//! now and then.

use crate::monitoring::{self, HomeReading};
use crate::records::{Keys, Records};
use crate::worklist_api::{self, Closing};
use iot::ingest::{self, Via};
use iot::payload::Sample;
use iot::registry::{self, NewDevice, SubjectType};
use kernel::audit::Actor;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::store::{col, now_ms};
use rules::clinical::{ClinicalRules, DAY_MS};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MARKER: &str = "health_monitoring";
/// At most this many demo home devices.
pub const DEVICES: usize = 36;
/// Days of history seeded.
const HISTORY_DAYS: i64 = 30;

/// The samples of demo patient `i`'s device of `kind` at `ms` (pure, for the tests).
pub fn samples(i: usize, kind: &str, ms: i64) -> Vec<Sample> {
    let wave = ((ms / 3_600_000) as f64 * 0.37 + i as f64 * 1.7).sin();
    let profile = i % 10;
    // The urgent profile's bad reading: every fifth day, in the morning.
    let day = ms.div_euclid(DAY_MS);
    let local_hour = ((ms + 8 * 3_600_000).rem_euclid(DAY_MS)) / 3_600_000;
    let urgent = profile == 9 && (day + i as i64) % 5 == 0 && (6..12).contains(&local_hour);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let s = |metric: &str, value: f64| Sample { metric: metric.into(), device_ms: ms, value: round(value) };
    if kind == "bp_monitor" {
        let (sys, dia) = match profile {
            _ if urgent => (184.0, 112.0),
            0..=4 => (126.0 + 7.0 * wave, 79.0 + 5.0 * wave),
            // Borderline: crosses 140/90 now and then, so the control rate moves.
            5 => (136.0 + 7.0 * wave, 85.0 + 5.0 * wave),
            _ => (151.0 + 6.0 * wave, 94.0 + 4.0 * wave),
        };
        vec![
            s("bp_systolic", sys.round()),
            s("bp_diastolic", dia.round()),
            s("heart_rate", (72.0 + 6.0 * wave).round()),
        ]
    } else {
        let g = match profile {
            _ if urgent => 17.4,
            0..=4 => 6.1 + 0.5 * wave,
            5 => 6.7 + 0.5 * wave,
            _ => 8.2 + 0.7 * wave,
        };
        vec![s("glucose_fasting", g)]
    }
}

/// The demo's home devices: (index, code).
async fn demo_devices(state: &AppState) -> anyhow::Result<Vec<(usize, registry::Device)>> {
    let rows = sqlx::query(&state.store.sql("SELECT code FROM iot_devices WHERE code LIKE 'YC-HM-%' ORDER BY code"))
        .fetch_all(state.store.reader())
        .await?;
    let mut out = vec![];
    for r in &rows {
        let code: String = col(r, "code")?;
        let Some(i) = code.rsplit('-').next().and_then(|n| n.parse::<usize>().ok()) else { continue };
        if let Some((d, _)) = registry::device_by_code(&state.store, &code).await? {
            out.push((i, d));
        }
    }
    Ok(out)
}

pub async fn seed(state: &AppState, demo: &DemoContext, records: &Records, keys: &Keys) -> anyhow::Result<()> {
    if kernel::demo::is_seeded(state, MARKER).await? {
        return Ok(());
    }
    let Some(yangcun) = demo.orgs.get("yangcun_chc").cloned() else {
        anyhow::bail!("demo organisation yangcun_chc missing")
    };
    let wu = kernel::demo::act_as(state, "dr.wu").await?;
    let today = crate::contract::today();
    let rows = sqlx::query(&state.store.sql(
        "SELECT patient_id, packages FROM health_contracts WHERE org_id = $1 AND state <> 'terminated' \
         AND start_day <= $2 AND end_day >= $2 ORDER BY patient_id",
    ))
    .bind(yangcun.clone())
    .bind(today)
    .fetch_all(state.store.reader())
    .await?;
    let mut devices = vec![];
    for r in &rows {
        let patient: String = col(r, "patient_id")?;
        let packages: String = col(r, "packages")?;
        let kind = if packages.contains("hypertension") {
            "bp_monitor"
        } else if packages.contains("diabetes") {
            "glucose_meter"
        } else {
            continue;
        };
        // The demo resident wears the monitor the IoT demo registered.
        if patient == iot::demo::DEMO_PATIENT || devices.len() >= DEVICES {
            continue;
        }
        let i = devices.len();
        let name =
            if kind == "bp_monitor" { "家用血压计 Home BP monitor" } else { "家用血糖仪 Home glucose meter" };
        let new = NewDevice {
            org_id: Some(yangcun.clone()),
            code: format!("YC-HM-{i:03}"),
            kind: kind.into(),
            name: name.into(),
            format: None,
            subject_type: SubjectType::Patient,
            subject_id: patient.clone(),
            subject_label: "家庭医生签约居民 Contracted resident".into(),
        };
        let d = registry::insert_device(&state.store, Actor::cli("demo seed"), &yangcun, new, None)
            .await
            .map_err(|e| anyhow::anyhow!("seeding a home device: {}", e.problem().detail))?;
        devices.push((i, d.device));
    }
    // A month of readings, one every other day at 07:30 Beijing, taken as the live path takes them.
    let rules = ClinicalRules::default();
    let now = now_ms();
    let first_day = (now - HISTORY_DAYS * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    for (i, d) in &devices {
        let mut day = first_day + (*i as i64 % 2) * DAY_MS;
        while day < now - DAY_MS {
            let at = day - 30 * 60_000; // 07:30 Beijing is 23:30 UTC the day before
            let s = samples(*i, &d.kind, at);
            ingest::accept(state, d, s.clone(), Via::Demo).await?;
            for (at_ms, reading, heart_rate) in monitoring::readings_of(&d.kind, &s) {
                let h = HomeReading {
                    device: d.code.clone(),
                    device_org: d.org_id.clone(),
                    patient_id: d.subject_id.clone(),
                    at_ms,
                    reading,
                    heart_rate,
                };
                monitoring::take(state, records, &rules, &h).await?;
            }
            day += 2 * DAY_MS;
        }
    }
    // The family doctor followed most tasks up: two in three within days, some late.
    let open = sqlx::query(&state.store.sql(
        "SELECT id, condition, action, at_ms FROM health_worklist WHERE org_id = $1 AND state = 'open' \
         AND action IN ('follow_up', 'urgent') AND at_ms < $2 ORDER BY at_ms",
    ))
    .bind(yangcun.clone())
    .bind(now - 3 * DAY_MS)
    .fetch_all(state.store.reader())
    .await?;
    for (n, r) in open.iter().enumerate() {
        let id: String = col(r, "id")?;
        let at: i64 = col(r, "at_ms")?;
        let condition: String = col(r, "condition")?;
        let is_urgent = col::<String>(r, "action")? == "urgent";
        let (after, outcome, closing) = if is_urgent {
            (
                ((n % 5) as i64 + 1) * 20 * 60_000,
                "handled",
                "电话随访, 已嘱立即就医 Called, advised to see a doctor at once",
            )
        } else if n % 3 == 2 {
            continue;
        } else {
            let late = n % 7 == 0;
            let after = if late { 16 * DAY_MS } else { ((n % 9) as i64 + 2) * DAY_MS };
            (after, if n % 4 == 0 { "controlled" } else { "uncontrolled" }, "入户随访 Home visit")
        };
        let when = at + after;
        if when >= now {
            continue;
        }
        let (systolic, diastolic, glucose) = match (is_urgent, condition.as_str(), outcome) {
            (true, ..) => (None, None, None),
            (_, "hypertension", "controlled") => (Some(132.0), Some(84.0), None),
            (_, "hypertension", _) => (Some(148.0), Some(93.0), None),
            (_, _, "controlled") => (None, None, Some(6.4)),
            _ => (None, None, Some(7.9)),
        };
        let b = Closing {
            outcome: outcome.into(),
            note: Some(closing.into()),
            systolic,
            diastolic,
            glucose_mmol_l: glucose,
            referral_id: None,
        };
        worklist_api::close_item(state, keys, &wu, &id, b, when)
            .await
            .map_err(|e| anyhow::anyhow!("closing a demo worklist item: {}", e.message))?;
    }
    monitoring::tick(state, &rules, now).await?;
    tracing::info!(devices = devices.len(), "demo home monitoring seeded");
    kernel::demo::mark_seeded(state, MARKER, "1").await?;
    Ok(())
}

/// Feeds the demo's home devices until `shutdown`: each reports every quarter of an hour (the
/// devices spread over the minutes), through the IoT ingest path like a real device.
pub async fn feed(state: AppState, shutdown: CancellationToken) {
    let mut devices = vec![];
    loop {
        let now = now_ms();
        let next = (now / 60_000 + 1) * 60_000;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis((next - now).max(0) as u64)) => {}
        }
        if devices.is_empty() {
            match demo_devices(&state).await {
                Ok(d) => devices = d,
                Err(e) => tracing::warn!(error = %e, "demo home devices not read"),
            }
        }
        let minute = (next / 60_000) as usize;
        for (i, d) in &devices {
            if (minute + i) % 15 != 0 || !d.enabled {
                continue;
            }
            if let Err(e) = ingest::accept(&state, d, samples(*i, &d.kind, next), Via::Demo).await {
                tracing::warn!(error = %e, "demo home reading not stored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_controlled_uncontrolled_and_urgent() {
        let r = ClinicalRules::default();
        let judge = |i: usize, kind: &str, ms: i64| {
            let s = samples(i, kind, ms);
            monitoring::readings_of(kind, &s).first().and_then(|x| monitoring::controlled(&r, &x.1))
        };
        let t = 1_780_000_000_000;
        for h in 0..48 {
            let ms = t + h * 3_600_000;
            assert_eq!(judge(0, "bp_monitor", ms), Some(true));
            assert_eq!(judge(7, "bp_monitor", ms), Some(false));
            assert_eq!(judge(4, "glucose_meter", ms), Some(true));
            assert_eq!(judge(3, "glucose_meter", ms), Some(true));
            assert_eq!(judge(8, "glucose_meter", ms), Some(false));
        }
        let urgent =
            (0..10 * 24).map(|h| samples(9, "bp_monitor", t + h * 3_600_000)).filter(|s| s[0].value >= 180.0).count();
        assert!(urgent > 0 && urgent < 30, "{urgent}");
    }
}
