//! Chronic-disease remote monitoring (慢病远程监测, 智能医疗 三(七)): home blood-pressure
//! monitors and glucose meters bound to a patient, their readings taken into the patient's
//! record as Observations and run through the national basic public health service's rules
//! (`rules::clinical`), the alerts and follow-up tasks put on the responsible family doctor's
//! worklist with their evidence.
//!
//! The path of a reading: the device publishes (MQTT, HTTP) → the IoT module stores it and
//! acknowledges (`iot::ingest`) → the bus (`iot.reading.<code>`) → [`run`] → [`take`]:
//! 1. the Observation (LOINC 85354-9 with 8480-6/8462-4, or glucose 14771-0 / 14743-9 in
//!    mmol/L) with an id derived from the device and its time, written once;
//! 2. in one transaction: the reading marked as taken (`health_monitor_readings`, so that a
//!    reading heard twice counts once), the patient's watch for the condition updated
//!    (`health_monitor_watches`, one row per patient and condition), the alerts it raised put
//!    on the worklist (`health_worklist`, unique per patient, condition, action and time).
//!
//! The bus does not keep messages, so at start [`catch_up`] reads the stored readings of every
//! patient-bound device since the last it took (up to 90 days back) and takes those it had not.
//! The clock ([`tick`], every minute) asks only the watches whose `next_tick_ms` has come.
//!
//! The worklist belongs to the institution of the patient's family-doctor team while a
//! contract is in force, else to the institution that registered the device.

use crate::records::{Author, Change, Records, instant};
use iot::payload::Sample;
use kernel::audit::{Actor, Event, Outcome};
use kernel::http::AppState;
use kernel::store::{StoreError, col, now_ms};
use rules::clinical::{Alert, ClinicalRules, Condition, DAY_MS, Reading, Watch};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The device kinds whose readings are taken into the record.
pub const DEVICE_KINDS: &[&str] = &["bp_monitor", "glucose_meter"];
/// How far back the catch-up at start looks for a device it never heard.
const CATCH_UP_MS: i64 = 90 * DAY_MS;

/// One reading of a patient's home device.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeReading {
    pub device: String,
    /// The institution that registered the device.
    pub device_org: String,
    pub patient_id: String,
    pub at_ms: i64,
    pub reading: Reading,
    pub heart_rate: Option<f64>,
}

/// The readings in one message of a device of `kind`: blood pressure when systolic and
/// diastolic share a device time; `glucose_fasting` and `glucose` in mmol/L. Other metrics
/// (and a lone half of a blood pressure) are not clinical readings here.
pub fn readings_of(kind: &str, samples: &[Sample]) -> Vec<(i64, Reading, Option<f64>)> {
    let mut times: Vec<i64> = samples.iter().map(|s| s.device_ms).collect();
    times.sort_unstable();
    times.dedup();
    let mut out = vec![];
    for t in times {
        let at: Vec<&Sample> = samples.iter().filter(|s| s.device_ms == t).collect();
        let v = |m: &str| at.iter().find(|s| s.metric == m).map(|s| s.value);
        match kind {
            "bp_monitor" => {
                if let (Some(systolic), Some(diastolic)) = (v("bp_systolic"), v("bp_diastolic")) {
                    out.push((t, Reading::BloodPressure { systolic, diastolic }, v("heart_rate")));
                }
            }
            "glucose_meter" => {
                if let Some(mmol_l) = v("glucose_fasting") {
                    out.push((t, Reading::FastingGlucose { mmol_l }, None));
                } else if let Some(mmol_l) = v("glucose") {
                    out.push((t, Reading::Glucose { mmol_l }, None));
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether a reading shows its condition controlled (`None`: a random glucose says nothing of
/// control): blood pressure < 140/90, fasting glucose < 7.0 (and above the low limit).
pub fn controlled(r: &ClinicalRules, reading: &Reading) -> Option<bool> {
    match *reading {
        Reading::BloodPressure { systolic, diastolic } => Some(systolic < r.bp_systolic && diastolic < r.bp_diastolic),
        Reading::FastingGlucose { mmol_l } => Some(mmol_l < r.glucose_fasting && mmol_l > r.glucose_urgent_low),
        Reading::Glucose { .. } => None,
    }
}

pub fn condition_str(c: Condition) -> &'static str {
    match c {
        Condition::Hypertension => "hypertension",
        Condition::Diabetes => "diabetes",
    }
}

pub fn parse_condition(s: &str) -> Option<Condition> {
    match s {
        "hypertension" => Some(Condition::Hypertension),
        "diabetes" => Some(Condition::Diabetes),
        _ => None,
    }
}

/// The id of the Observation made of a device's reading: the same reading, the same id.
pub fn observation_id(device: &str, at_ms: i64) -> String {
    use sm3::{Digest, Sm3};
    let d = Sm3::digest(format!("{device}\n{at_ms}").as_bytes());
    format!("hm-{}", &crate::records::encode_hex(&d)[..32])
}

fn quantity(value: f64, unit: &str, ucum: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum })
}

fn loinc(code: &str, display: &str, text: &str) -> Value {
    json!({ "coding": [{ "system": "http://loinc.org", "code": code, "display": display }], "text": text })
}

/// The FHIR Observation of a reading. `device`: the home device's code (a measurement at a
/// follow-up has none).
pub fn observation(
    id: &str,
    patient: &str,
    at_ms: i64,
    reading: &Reading,
    heart_rate: Option<f64>,
    device: Option<&str>,
) -> Value {
    let category = |c: &str, d: &str| json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": c, "display": d }] }]);
    let mut o = match *reading {
        Reading::BloodPressure { systolic, diastolic } => {
            let mut components = vec![
                json!({ "code": loinc("8480-6", "Systolic blood pressure", "收缩压"), "valueQuantity": quantity(systolic, "mmHg", "mm[Hg]") }),
                json!({ "code": loinc("8462-4", "Diastolic blood pressure", "舒张压"), "valueQuantity": quantity(diastolic, "mmHg", "mm[Hg]") }),
            ];
            if let Some(hr) = heart_rate {
                components.push(json!({ "code": loinc("8867-4", "Heart rate", "心率"), "valueQuantity": quantity(hr, "/min", "/min") }));
            }
            json!({
                "category": category("vital-signs", "Vital Signs"),
                "code": loinc("85354-9", "Blood pressure panel with all children optional", "血压 Blood pressure"),
                "component": components,
            })
        }
        Reading::FastingGlucose { mmol_l } => json!({
            "category": category("laboratory", "Laboratory"),
            "code": loinc("14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", "空腹血糖 Fasting glucose"),
            "valueQuantity": quantity(mmol_l, "mmol/L", "mmol/L"),
        }),
        Reading::Glucose { mmol_l } => json!({
            "category": category("laboratory", "Laboratory"),
            "code": loinc("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer", "血糖 Glucose"),
            "valueQuantity": quantity(mmol_l, "mmol/L", "mmol/L"),
        }),
    };
    o["resourceType"] = json!("Observation");
    o["id"] = json!(id);
    o["status"] = json!("final");
    o["subject"] = json!({ "reference": format!("Patient/{patient}") });
    o["effectiveDateTime"] = json!(instant(at_ms));
    if let Some(code) = device {
        o["identifier"] = json!([{ "system": "urn:wuqing:iot-reading", "value": format!("{code}/{at_ms}") }]);
        o["device"] = json!({ "identifier": { "system": "urn:wuqing:iot-device", "value": code }, "display": code });
        o["method"] = json!({ "text": "家庭自测 Home measurement" });
    }
    o
}

/// The rule that raised an alert, in words, with its source: the evidence's heading.
pub fn rule_text(r: &ClinicalRules, a: &Alert) -> String {
    use rules::clinical::Action::*;
    const SOURCE: &str = "国家基本公共卫生服务规范（第三版）";
    match (a.action, a.condition) {
        (FollowUp, Condition::Hypertension) => format!(
            "血压 ≥ {}/{} mmHg, 控制不满意: {} 天内随访 Not controlled: follow up within {} days ({SOURCE})",
            r.bp_systolic, r.bp_diastolic, r.follow_up_days, r.follow_up_days
        ),
        (FollowUp, Condition::Diabetes) => format!(
            "空腹血糖 ≥ {} mmol/L 或危急值: {} 天内随访 Not controlled: follow up within {} days ({SOURCE})",
            r.glucose_fasting, r.follow_up_days, r.follow_up_days
        ),
        (Urgent, Condition::Hypertension) => format!(
            "血压 ≥ {}/{} mmHg: 紧急处理后转诊 Urgent: treat and refer ({SOURCE})",
            r.bp_urgent_systolic, r.bp_urgent_diastolic
        ),
        (Urgent, Condition::Diabetes) => format!(
            "血糖 ≥ {} 或 ≤ {} mmol/L: 紧急处理后转诊 Urgent: treat and refer ({SOURCE})",
            r.glucose_urgent_high, r.glucose_urgent_low
        ),
        (SuggestReferral, _) => format!(
            "连续 {} 次随访控制不满意: 建议转诊 {} uncontrolled follow-ups in a row: refer ({SOURCE})",
            r.uncontrolled_for_referral, r.uncontrolled_for_referral
        ),
        (FollowUpOverdue, _) => {
            format!(
                "随访逾期: {} 天内未随访 Follow-up overdue: not done within {} days",
                r.follow_up_days, r.follow_up_days
            )
        }
        (Reminder, _) => format!(
            "{} 天无家庭监测数据: 提醒患者测量 No home reading for {} days: remind the patient",
            r.missing_days, r.missing_days
        ),
    }
}

pub fn action_str(a: rules::clinical::Action) -> &'static str {
    use rules::clinical::Action::*;
    match a {
        FollowUp => "follow_up",
        Urgent => "urgent",
        SuggestReferral => "suggest_referral",
        FollowUpOverdue => "follow_up_overdue",
        Reminder => "reminder",
    }
}

/// The institution (and team) responsible for a patient's monitoring: the family-doctor team's
/// while a contract is in force, else `fallback` (the device's).
pub async fn responsible(st: &AppState, patient: &str, fallback: &str) -> Result<(String, Option<String>), StoreError> {
    let today = crate::contract::today();
    let row = sqlx::query(&st.store.sql(
        "SELECT org_id, team_id FROM health_contracts WHERE patient_id = $1 AND state <> 'terminated' \
         AND start_day <= $2 AND end_day >= $2 ORDER BY start_day DESC LIMIT 1",
    ))
    .bind(patient.to_string())
    .bind(today)
    .fetch_optional(st.store.reader())
    .await?;
    Ok(match row {
        Some(r) => (col(&r, "org_id")?, Some(col(&r, "team_id")?)),
        None => (fallback.to_string(), None),
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The watch of a patient's condition, locked for this transaction (`None`: not watched).
async fn watch_for_update(
    st: &AppState,
    tx: &mut Tx,
    patient: &str,
    c: Condition,
) -> Result<Option<Watch>, StoreError> {
    let sql = format!(
        "SELECT state FROM health_monitor_watches WHERE patient_id = $1 AND condition = $2{}",
        st.store.for_update()
    );
    let row = sqlx::query(&st.store.sql(&sql))
        .bind(patient.to_string())
        .bind(condition_str(c))
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(r) => serde_json::from_str(&col::<String>(&r, "state")?)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("a monitoring watch: {e}"))),
        None => Ok(None),
    }
}

/// Writes a watch (inserted or replaced). `measured`: the time and verdict of a reading that
/// classifies control, kept when it is the newest.
#[allow(clippy::too_many_arguments)]
async fn save_watch(
    st: &AppState,
    tx: &mut Tx,
    rules: &ClinicalRules,
    patient: &str,
    c: Condition,
    org: &str,
    w: &Watch,
    measured: Option<(i64, bool)>,
) -> Result<(), StoreError> {
    let state = serde_json::to_string(w).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let now = now_ms();
    let (m_ms, m_ok) = match measured {
        Some((t, ok)) => (Some(t), Some(i64::from(ok))),
        None => (None, None),
    };
    sqlx::query(&st.store.sql(
        "INSERT INTO health_monitor_watches (patient_id, condition, org_id, state, next_tick_ms, enrolled_ms, \
         last_reading_ms, last_controlled, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6) \
         ON CONFLICT (patient_id, condition) DO UPDATE SET org_id = excluded.org_id, state = excluded.state, \
         next_tick_ms = excluded.next_tick_ms, updated_ms = excluded.updated_ms, \
         last_reading_ms = CASE WHEN excluded.last_reading_ms IS NOT NULL AND (health_monitor_watches.last_reading_ms IS NULL \
           OR excluded.last_reading_ms >= health_monitor_watches.last_reading_ms) THEN excluded.last_reading_ms \
           ELSE health_monitor_watches.last_reading_ms END, \
         last_controlled = CASE WHEN excluded.last_reading_ms IS NOT NULL AND (health_monitor_watches.last_reading_ms IS NULL \
           OR excluded.last_reading_ms >= health_monitor_watches.last_reading_ms) THEN excluded.last_controlled \
           ELSE health_monitor_watches.last_controlled END",
    ))
    .bind(patient.to_string())
    .bind(condition_str(c))
    .bind(org.to_string())
    .bind(state)
    .bind(w.next_tick_ms(rules))
    .bind(now)
    .bind(m_ms)
    .bind(m_ok)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What an alert's worklist item carries besides the alert.
pub struct Origin<'a> {
    pub org: &'a str,
    pub team: Option<&'a str>,
    pub device: Option<&'a str>,
    pub observation: Option<&'a str>,
    pub heart_rate: Option<f64>,
}

/// Puts alerts on the worklist (an alert already there is not put twice).
pub async fn put_alerts(
    st: &AppState,
    tx: &mut Tx,
    rules: &ClinicalRules,
    patient: &str,
    alerts: &[Alert],
    o: &Origin<'_>,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for a in alerts {
        let evidence = json!({
            "rule": rule_text(rules, a),
            "reading": a.reading,
            "heart_rate": o.heart_rate.filter(|_| a.reading.is_some()),
            "device": o.device.filter(|_| a.reading.is_some()),
            "observation": o.observation.filter(|_| a.reading.is_some()).map(|id| format!("Observation/{id}")),
        });
        let done = sqlx::query(&st.store.sql(
            "INSERT INTO health_worklist (id, org_id, team_id, patient_id, condition, action, at_ms, due_ms, rules_version, \
             evidence_enc, state, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11) ON CONFLICT DO NOTHING",
        ))
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(o.org.to_string())
        .bind(o.team.map(str::to_string))
        .bind(patient.to_string())
        .bind(condition_str(a.condition))
        .bind(action_str(a.action))
        .bind(a.at_ms)
        .bind(a.due_ms)
        .bind(i64::from(a.rules_version))
        .bind(st.cipher.encrypt(&evidence.to_string()))
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        n += done.rows_affected() as usize;
        metrics::counter!("wuqing_health_monitor_alerts_total", "action" => action_str(a.action)).increment(1);
    }
    Ok(n)
}

/// What became of a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Taken into the record; this many alerts put on the worklist.
    Taken { alerts: usize },
    /// Taken before.
    Again,
    /// The device names no patient the records know.
    NoPatient,
}

/// Takes one reading: its Observation, the watch, the alerts (see the module's documentation).
pub async fn take(st: &AppState, records: &Records, rules: &ClinicalRules, h: &HomeReading) -> anyhow::Result<Taken> {
    let seen = sqlx::query(
        &st.store.sql("SELECT 1 AS one FROM health_monitor_readings WHERE device_code = $1 AND device_ms = $2"),
    )
    .bind(h.device.clone())
    .bind(h.at_ms)
    .fetch_optional(st.store.reader())
    .await?;
    if seen.is_some() {
        return Ok(Taken::Again);
    }
    if !records.exists("Patient", &h.patient_id).await? {
        return Ok(Taken::NoPatient);
    }
    let obs_id = observation_id(&h.device, h.at_ms);
    if !records.exists("Observation", &obs_id).await? {
        let body = observation(&obs_id, &h.patient_id, h.at_ms, &h.reading, h.heart_rate, Some(&h.device));
        let author =
            Author { user_id: format!("device:{}", h.device), name: h.device.clone(), org_id: h.device_org.clone() };
        let actor =
            Actor { name: format!("device:{}", h.device), org_id: Some(h.device_org.clone()), ..Default::default() };
        let ev = Event::new(actor, "health.monitor.reading", "Patient", Some(&h.patient_id), Outcome::Success)
            .detail(json!({ "observation": obs_id, "device": h.device }));
        let change = Change { rtype: "Observation".into(), id: obs_id.clone(), resource: Some(body), if_match: None };
        records.commit(&author, "monitor", vec![change], vec![ev]).await?;
    }
    let (org, team) = responsible(st, &h.patient_id, &h.device_org).await?;
    let condition = h.reading.condition();
    let mut tx = st.store.begin().await?;
    let gate = sqlx::query(&st.store.sql(
        "INSERT INTO health_monitor_readings (device_code, device_ms, patient_id, observation_id, processed_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    ))
    .bind(h.device.clone())
    .bind(h.at_ms)
    .bind(h.patient_id.clone())
    .bind(obs_id.clone())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if gate.rows_affected() == 0 {
        return Ok(Taken::Again);
    }
    let mut w = watch_for_update(st, &mut tx, &h.patient_id, condition).await?.unwrap_or_default();
    let alerts = w.observe(rules, h.at_ms, h.reading);
    let measured = controlled(rules, &h.reading).map(|ok| (h.at_ms, ok));
    save_watch(st, &mut tx, rules, &h.patient_id, condition, &org, &w, measured).await?;
    let origin = Origin {
        org: &org,
        team: team.as_deref(),
        device: Some(&h.device),
        observation: Some(&obs_id),
        heart_rate: h.heart_rate,
    };
    let n = put_alerts(st, &mut tx, rules, &h.patient_id, &alerts, &origin).await?;
    tx.commit().await?;
    Ok(Taken::Taken { alerts: n })
}

/// A follow-up of a patient's condition at `at_ms` (the family doctor's, see the worklist),
/// inside the caller's transaction: the watch's open task closed, and a referral suggested
/// after consecutive uncontrolled follow-ups. A measured reading, if any, counts as one.
#[allow(clippy::too_many_arguments)]
pub async fn followed_up(
    st: &AppState,
    tx: &mut Tx,
    rules: &ClinicalRules,
    patient: &str,
    condition: Condition,
    org: &str,
    at_ms: i64,
    controlled_now: bool,
    measured: Option<Reading>,
) -> Result<usize, StoreError> {
    let (_, team) = responsible(st, patient, org).await?;
    let mut w = watch_for_update(st, tx, patient, condition).await?.unwrap_or_else(|| Watch::enrolled(at_ms));
    let mut alerts = vec![];
    let mut m = None;
    if let Some(r) = measured {
        // The measurement joins the history but opens no new task: this is the follow-up.
        w.observe(rules, at_ms, r);
        m = controlled(rules, &r).map(|ok| (at_ms, ok));
    }
    alerts.extend(w.followed_up(rules, condition, at_ms, controlled_now));
    save_watch(st, tx, rules, patient, condition, org, &w, m).await?;
    let origin = Origin { org, team: team.as_deref(), device: None, observation: None, heart_rate: None };
    put_alerts(st, tx, rules, patient, &alerts, &origin).await
}

/// Starts watching a patient's condition for an institution (a contract with its package), in
/// the caller's transaction; a watch already there moves to the institution and keeps its state.
pub async fn enrol(
    st: &AppState,
    tx: &mut Tx,
    patient: &str,
    c: Condition,
    org: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(&st.store.sql(
        "INSERT INTO health_monitor_watches (patient_id, condition, org_id, state, next_tick_ms, enrolled_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (patient_id, condition) DO UPDATE SET org_id = excluded.org_id, \
         updated_ms = excluded.updated_ms",
    ))
    .bind(patient.to_string())
    .bind(condition_str(c))
    .bind(org.to_string())
    .bind(serde_json::to_string(&Watch::enrolled(now)).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(Watch::enrolled(now).next_tick_ms(&ClinicalRules::default()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stops watching a patient for an institution (the contract ended).
pub async fn leave(st: &AppState, tx: &mut Tx, patient: &str, org: &str) -> Result<(), StoreError> {
    sqlx::query(&st.store.sql("DELETE FROM health_monitor_watches WHERE patient_id = $1 AND org_id = $2"))
        .bind(patient.to_string())
        .bind(org.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The clock at `now`: every watch due raises its overdue follow-up or silence reminder, once.
/// Returns the alerts put on worklists.
pub async fn tick(st: &AppState, rules: &ClinicalRules, now: i64) -> Result<usize, StoreError> {
    let mut n = 0;
    loop {
        let due = sqlx::query(&st.store.sql(
            "SELECT patient_id, condition FROM health_monitor_watches WHERE next_tick_ms IS NOT NULL \
             AND next_tick_ms <= $1 ORDER BY next_tick_ms LIMIT 500",
        ))
        .bind(now)
        .fetch_all(st.store.reader())
        .await?;
        let batch = due.len();
        for row in &due {
            let patient: String = col(row, "patient_id")?;
            let Some(c) = parse_condition(&col::<String>(row, "condition")?) else { continue };
            let mut tx = st.store.begin().await?;
            let Some(mut w) = watch_for_update(st, &mut tx, &patient, c).await? else { continue };
            let alerts = w.tick(rules, c, now);
            let org: String = {
                let r = sqlx::query(
                    &st.store.sql("SELECT org_id FROM health_monitor_watches WHERE patient_id = $1 AND condition = $2"),
                )
                .bind(patient.clone())
                .bind(condition_str(c))
                .fetch_one(&mut *tx)
                .await?;
                col(&r, "org_id")?
            };
            let (org, team) = responsible(st, &patient, &org).await?;
            // A watch whose clock stays due (rules changed under it) is moved on a day, so
            // that the loop ends.
            let mut next = w.next_tick_ms(rules);
            if next.is_some_and(|t| t <= now) {
                next = Some(now + DAY_MS);
            }
            sqlx::query(&st.store.sql(
                "UPDATE health_monitor_watches SET state = $1, next_tick_ms = $2, org_id = $3, updated_ms = $4 \
                 WHERE patient_id = $5 AND condition = $6",
            ))
            .bind(serde_json::to_string(&w).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(next)
            .bind(org.clone())
            .bind(now_ms())
            .bind(patient.clone())
            .bind(condition_str(c))
            .execute(&mut *tx)
            .await?;
            let origin = Origin { org: &org, team: team.as_deref(), device: None, observation: None, heart_rate: None };
            n += put_alerts(st, &mut tx, rules, &patient, &alerts, &origin).await?;
            tx.commit().await?;
        }
        if batch < 500 {
            return Ok(n);
        }
    }
}

/// A patient-bound home device as the catch-up needs it.
struct BoundDevice {
    code: String,
    org_id: String,
    kind: String,
    patient: String,
}

async fn bound_devices(st: &AppState) -> Result<Vec<BoundDevice>, StoreError> {
    let kinds = DEVICE_KINDS.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    let rows = sqlx::query(&st.store.sql(&format!(
        "SELECT code, org_id, kind, subject_id FROM iot_devices WHERE subject_type = 'patient' AND subject_id <> '' \
         AND kind IN ({kinds}) ORDER BY code"
    )))
    .fetch_all(st.store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(BoundDevice {
                code: col(r, "code")?,
                org_id: col(r, "org_id")?,
                kind: col(r, "kind")?,
                patient: col(r, "subject_id")?,
            })
        })
        .collect()
}

/// Takes the stored readings of every patient-bound device that were not taken yet: since a
/// day before the newest it took, or 90 days back for a device never heard. Returns how many.
pub async fn catch_up(st: &AppState, records: &Records, rules: &ClinicalRules) -> anyhow::Result<usize> {
    let now = now_ms();
    let mut n = 0;
    for d in bound_devices(st).await? {
        let newest = sqlx::query(
            &st.store.sql("SELECT MAX(device_ms) AS m FROM health_monitor_readings WHERE device_code = $1"),
        )
        .bind(d.code.clone())
        .fetch_one(st.store.reader())
        .await?;
        let since = col::<Option<i64>>(&newest, "m")?.map_or(now - CATCH_UP_MS, |m| m - DAY_MS);
        let mut from = since;
        loop {
            let page = kernel::telemetry::range(&st.store, &d.code, None, from, i64::MAX, 5000).await?;
            let Some(last) = page.last().map(|o| o.device_ms) else { break };
            let samples: Vec<Sample> = page
                .iter()
                .filter_map(|o| match o.value {
                    kernel::telemetry::Value::Number { value } => {
                        Some(Sample { metric: o.kind.clone(), device_ms: o.device_ms, value })
                    }
                    _ => None,
                })
                .collect();
            for (at_ms, reading, heart_rate) in readings_of(&d.kind, &samples) {
                let h = HomeReading {
                    device: d.code.clone(),
                    device_org: d.org_id.clone(),
                    patient_id: d.patient.clone(),
                    at_ms,
                    reading,
                    heart_rate,
                };
                if let Taken::Taken { .. } = take(st, records, rules, &h).await? {
                    n += 1;
                }
            }
            if page.len() < 5000 {
                break;
            }
            // The last device time may continue into the next page: start there again (taken
            // readings are skipped).
            from = if last > from { last } else { last + 1 };
        }
    }
    Ok(n)
}

/// The monitoring task: catches up, then takes readings from the bus and runs the clock every
/// `every` until `shutdown`.
pub async fn run(state: AppState, records: Records, every: Duration, shutdown: CancellationToken) {
    let rules = ClinicalRules::default();
    let mut sub = match state.bus.subscribe("iot.reading.>") {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "chronic-disease monitoring not started: no bus subscription");
            return;
        }
    };
    match catch_up(&state, &records, &rules).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(readings = n, "home-device readings taken on catching up"),
        Err(e) => tracing::warn!(error = %e, "home-device readings not caught up"),
    }
    let mut clock = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = clock.tick() => {
                if let Err(e) = tick(&state, &rules, now_ms()).await {
                    tracing::warn!(error = %e, "monitoring clock not run");
                }
            }
            m = sub.next() => {
                let Some(m) = m else { break };
                let p: iot::ingest::Published = match serde_json::from_slice(&m.payload) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading on the bus not understood");
                        continue;
                    }
                };
                if p.subject_type != "patient" || p.subject_id.is_empty() || !DEVICE_KINDS.contains(&p.kind.as_str()) {
                    continue;
                }
                for (at_ms, reading, heart_rate) in readings_of(&p.kind, &p.samples) {
                    let h = HomeReading {
                        device: p.code.clone(),
                        device_org: p.org_id.clone(),
                        patient_id: p.subject_id.clone(),
                        at_ms,
                        reading,
                        heart_rate,
                    };
                    match take(&state, &records, &rules, &h).await {
                        Ok(Taken::NoPatient) => {
                            tracing::warn!(device = %p.code, "home device bound to a patient the records do not know")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(device = %p.code, error = %e, "home-device reading not taken"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(metric: &str, t: i64, v: f64) -> Sample {
        Sample { metric: metric.into(), device_ms: t, value: v }
    }

    #[test]
    fn readings_pair_blood_pressure_by_time() {
        let r = readings_of(
            "bp_monitor",
            &[
                s("bp_systolic", 2, 150.0),
                s("bp_diastolic", 2, 95.0),
                s("heart_rate", 2, 70.0),
                s("bp_systolic", 1, 120.0),
            ],
        );
        assert_eq!(r, vec![(2, Reading::BloodPressure { systolic: 150.0, diastolic: 95.0 }, Some(70.0))]);
        let g = readings_of("glucose_meter", &[s("glucose_fasting", 1, 7.2), s("glucose", 2, 9.0), s("other", 3, 1.0)]);
        assert_eq!(
            g,
            vec![(1, Reading::FastingGlucose { mmol_l: 7.2 }, None), (2, Reading::Glucose { mmol_l: 9.0 }, None)]
        );
        assert!(readings_of("cold_store_probe", &[s("temperature", 1, 5.0)]).is_empty());
    }

    #[test]
    fn observations_are_valid_fhir_and_named_by_the_reading() {
        let id = observation_id("YC-BP-0001", 1_780_000_000_000);
        assert_eq!(id, observation_id("YC-BP-0001", 1_780_000_000_000));
        assert_ne!(id, observation_id("YC-BP-0001", 1_780_000_000_001));
        assert!(id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        for r in [
            Reading::BloodPressure { systolic: 150.0, diastolic: 95.0 },
            Reading::FastingGlucose { mmol_l: 7.2 },
            Reading::Glucose { mmol_l: 3.1 },
        ] {
            let o = observation(&id, "p1", 1_780_000_000_000, &r, Some(72.0), Some("YC-BP-0001"));
            let issues = crate::fhir::validate::validate(&o, Some("Observation"));
            assert!(issues.is_empty(), "{issues:?}");
            assert_eq!(crate::records::patient_of(&o).as_deref(), Some("p1"));
        }
        let o = observation(&id, "p1", 0, &Reading::BloodPressure { systolic: 150.0, diastolic: 95.0 }, None, None);
        assert!(o.get("device").is_none() && o["component"].as_array().map(Vec::len) == Some(2));
    }

    #[test]
    fn control_is_judged_by_the_rules() {
        let r = ClinicalRules::default();
        assert_eq!(controlled(&r, &Reading::BloodPressure { systolic: 139.0, diastolic: 89.0 }), Some(true));
        assert_eq!(controlled(&r, &Reading::BloodPressure { systolic: 139.0, diastolic: 90.0 }), Some(false));
        assert_eq!(controlled(&r, &Reading::FastingGlucose { mmol_l: 6.9 }), Some(true));
        assert_eq!(controlled(&r, &Reading::FastingGlucose { mmol_l: 3.5 }), Some(false));
        assert_eq!(controlled(&r, &Reading::Glucose { mmol_l: 6.0 }), None);
    }
}
