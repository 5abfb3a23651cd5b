//! The demo district's sensors: a vaccine cold room at the People's Hospital, a resident's blood
//! pressure monitor followed by the Yangcun community health centre, and an air quality station
//! of the environment bureau. Their secrets are generated at the first seed and written to
//! `DATA_DIR/demo-devices.txt` (readable by the owner only), so that `mosquitto_pub` or `curl`
//! can play a device. The in-process feed sends their readings through the same ingest path as
//! a real device, with an excursion now and then so that alarms appear on the desk.

use crate::ingest::{self, Via};
use crate::payload::Sample;
use crate::registry::{self, NewDevice, SubjectType};
use kernel::audit::Actor;
use kernel::demo::{DemoContext, is_seeded, mark_seeded};
use kernel::http::AppState;
use kernel::store::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The demo resident (the health module's demo records) who wears the blood pressure monitor.
pub const DEMO_PATIENT: &str = "huang-xiuying";

/// (code, org key, kind, name, subject type, subject label)
const DEVICES: &[(&str, &str, &str, &str, SubjectType, &str)] = &[
    (
        "RMYY-CS-01",
        "people_hospital",
        "cold_store_probe",
        "疫苗冷库温度探头 Vaccine cold room probe",
        SubjectType::ColdStore,
        "人民医院药库疫苗冷库 Vaccine cold room",
    ),
    (
        "YC-BP-0001",
        "yangcun_chc",
        "bp_monitor",
        "家用血压计 Home BP monitor",
        SubjectType::Patient,
        "高血压随访对象 Hypertension follow-up patient",
    ),
    (
        "HJ-AQ-YC01",
        "environment_bureau",
        "pm_monitor",
        "杨村空气质量监测站 Yangcun air quality station",
        SubjectType::Other,
        "杨村街道 Yangcun subdistrict",
    ),
];

/// Seeds the demo devices once.
pub async fn seed(state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
    if is_seeded(state, "iot").await? {
        return Ok(());
    }
    let mut lines =
        vec!["# Demo devices: code secret (MQTT user name and password; HTTP Basic for /api/iot/ingest)".to_string()];
    for (code, org, kind, name, st, label) in DEVICES {
        let Some(org_id) = demo.orgs.get(*org).cloned() else {
            anyhow::bail!("demo organisation {org} missing");
        };
        let new = NewDevice {
            org_id: Some(org_id.clone()),
            code: (*code).into(),
            kind: (*kind).into(),
            name: (*name).into(),
            format: None,
            subject_type: *st,
            subject_id: if *st == SubjectType::Patient { DEMO_PATIENT.into() } else { String::new() },
            subject_label: (*label).into(),
        };
        let d = registry::insert_device(&state.store, Actor::cli("demo seed"), &org_id, new, None)
            .await
            .map_err(|e| anyhow::anyhow!("seeding device {code}: {}", e.problem().detail))?;
        lines.push(format!("{} {}", d.device.code, d.secret));
    }
    let path = state.config.data_dir.join("demo-devices.txt");
    kernel::crypto::write_private(&path, (lines.join("\n") + "\n").as_bytes())?;
    mark_seeded(state, "iot", "1").await?;
    Ok(())
}

/// The readings of the demo devices at `ms` (pure, for the tests).
///
/// - Cold room: 5 °C ± 0.8; from minute 0 to 12 of every second hour (local) it warms to
///   9.5 °C (a door left open), which raises `cold_store_temp_high` after 5 minutes.
/// - Blood pressure: a reading every 10 minutes, around 138/86; at 08:00 local a 186/114
///   reading (an urgent referral alarm), normal again at 08:10.
/// - PM2.5: 35–65 µg/m³ over the day.
pub fn readings_at(code: &str, ms: i64) -> Vec<Sample> {
    let local_min = ((ms + 8 * 3_600_000).rem_euclid(86_400_000)) / 60_000;
    let phase = (ms as f64 / 1_200_000.0).sin();
    let s = |metric: &str, value: f64| Sample {
        metric: metric.into(),
        device_ms: ms,
        value: (value * 10.0).round() / 10.0,
    };
    match code {
        "RMYY-CS-01" => {
            let excursion = (local_min / 60) % 2 == 0 && local_min % 60 < 12;
            vec![s("temperature", if excursion { 9.5 } else { 5.0 + 0.8 * phase })]
        }
        "YC-BP-0001" if local_min % 10 == 0 => {
            if local_min == 8 * 60 {
                vec![s("bp_systolic", 186.0), s("bp_diastolic", 114.0), s("heart_rate", 92.0)]
            } else {
                vec![
                    s("bp_systolic", 138.0 + 6.0 * phase),
                    s("bp_diastolic", 86.0 + 3.0 * phase),
                    s("heart_rate", 74.0),
                ]
            }
        }
        "HJ-AQ-YC01" => {
            let day = (local_min as f64 / 1440.0 * std::f64::consts::TAU).cos();
            vec![s("pm25", 50.0 + 15.0 * day), s("pm10", 80.0 + 20.0 * day)]
        }
        _ => vec![],
    }
}

/// Feeds the demo devices every minute (on the minute) until `shutdown`.
pub async fn feed(state: AppState, shutdown: CancellationToken) {
    loop {
        let now = now_ms();
        let next = (now / 60_000 + 1) * 60_000;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis((next - now).max(0) as u64)) => {}
        }
        for (code, ..) in DEVICES {
            let samples = readings_at(code, next);
            if samples.is_empty() {
                continue;
            }
            match registry::device_by_code(&state.store, code).await {
                Ok(Some((d, _))) if d.enabled => {
                    if let Err(e) = ingest::accept(&state, &d, samples, Via::Demo).await {
                        tracing::warn!(error = %e, "demo readings not stored");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "demo device not read"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cold_room_warms_on_even_hours_only() {
        // 1_764_432_000_000 = 2025-11-29T16:00:00Z = 2025-11-30T00:00:00+08:00 (local midnight).
        let at = |h: i64, m: i64| 1_764_432_000_000 + (h * 60 + m) * 60_000;
        let t = |ms| readings_at("RMYY-CS-01", ms)[0].value;
        assert_eq!(t(at(0, 5)), 9.5);
        assert!(t(at(0, 12)) < 6.0);
        assert!(t(at(1, 5)) < 6.0);
        assert_eq!(t(at(2, 0)), 9.5);
        assert!(readings_at("YC-BP-0001", at(8, 0)).iter().any(|s| s.metric == "bp_systolic" && s.value >= 180.0));
        assert!(readings_at("YC-BP-0001", at(8, 5)).is_empty());
        assert!(readings_at("nope", at(8, 0)).is_empty());
    }
}
