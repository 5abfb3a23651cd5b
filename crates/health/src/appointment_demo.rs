//! The demo district's appointments: the People's Hospital's cardiology expert clinic (dr.yang),
//! its endocrinology clinic and ECG room, the Yangcun centre's general practice (dr.wu), each
//! with slots for the booking window; the demo resident's own booking, the family doctor's
//! bookings at the hospital for the centre's patients, and yesterday's visits (seen, arrived,
//! one no-show) moved back in time. Made through the services as the demo's accounts;
//! idempotent (its own marker).

use crate::appointment::{Action, DAY_MS};
use crate::appointment_api::{self, NewAppointment, NewSchedule, NewSlots, StepBody};
use crate::records::Keys;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::store::{col, now_ms};

const MARKER: &str = "health_appointments";

pub async fn seed(state: &AppState, _demo: &DemoContext, keys: &Keys) -> anyhow::Result<()> {
    if kernel::demo::is_seeded(state, MARKER).await? {
        return Ok(());
    }
    let api = |e: kernel::error::ApiError| anyhow::anyhow!("{}", e.message);
    let yang = kernel::demo::act_as(state, "dr.yang").await?;
    let wu = kernel::demo::act_as(state, "dr.wu").await?;
    let today = crate::contract::today_date();
    let from = crate::contract::day(today);
    // (who, department, name, service, practitioner, start, end, minutes, capacity)
    let plans = [
        (
            &yang,
            "心血管内科",
            "杨医生专家门诊",
            "专家门诊 Expert clinic",
            Some(yang.user_id.clone()),
            "08:00",
            "11:30",
            15,
            1,
        ),
        (&yang, "内分泌科", "内分泌普通门诊", "普通门诊 General clinic", None, "08:00", "11:30", 10, 2),
        (&yang, "心电图室", "心电图检查", "检查 ECG", None, "08:00", "11:00", 30, 3),
        (&wu, "全科", "吴医生全科门诊", "普通门诊 General practice", Some(wu.user_id.clone()), "08:00", "11:30", 15, 1),
    ];
    let mut schedules = vec![];
    for (who, department, name, service, practitioner, start, end, minutes, capacity) in plans {
        let s = appointment_api::publish_schedule(
            state,
            who,
            NewSchedule {
                department: department.into(),
                name: name.into(),
                service: Some(service.into()),
                practitioner_id: practitioner,
            },
        )
        .await
        .map_err(api)?;
        appointment_api::cut_slots(
            state,
            who,
            &s.id,
            NewSlots {
                from: from.clone(),
                days: 14,
                start: start.into(),
                end: end.into(),
                minutes,
                capacity: Some(capacity),
            },
        )
        .await
        .map_err(api)?;
        schedules.push(s.id);
    }
    let now = now_ms();
    // The free slots of a schedule from `days` ahead.
    let slots_of = |schedule: String, days: i64| async move {
        let rows = sqlx::query(&state.store.sql(
            "SELECT id FROM health_slots WHERE schedule_id = $1 AND start_ms >= $2 AND booked < capacity ORDER BY start_ms",
        ))
        .bind(schedule)
        .bind(now + days * DAY_MS)
        .fetch_all(state.store.reader())
        .await?;
        rows.iter().map(|r| col::<String>(r, "id")).collect::<Result<Vec<_>, _>>()
    };
    // The demo resident books the cardiology clinic herself, three days ahead.
    if let Ok(huang) = kernel::demo::act_as(state, "resident.huang").await {
        if let Some(slot) = slots_of(schedules[0].clone(), 3).await?.into_iter().nth(2) {
            let b = NewAppointment {
                slot_id: slot,
                patient_id: None,
                reason: Some("复查血压，调整用药".into()),
                referral_id: None,
            };
            if let Err(e) = appointment_api::book_slot(state, keys, &huang, b, now).await {
                tracing::warn!(error = %e.message, "the demo resident's appointment not booked");
            }
        }
    }
    // The family doctor books the hospital for the centre's contracted patients: tomorrow's
    // and the day after's cardiology and ECG, and yesterday's (moved back below).
    let patients = sqlx::query(&state.store.sql(
        "SELECT patient_id FROM health_contracts WHERE org_id = $1 AND packages LIKE '%hypertension%' \
         AND patient_id <> 'huang-xiuying' ORDER BY patient_id LIMIT 10",
    ))
    .bind(wu.org_id.clone())
    .fetch_all(state.store.reader())
    .await?;
    let patients: Vec<String> = patients.iter().map(|r| col(r, "patient_id")).collect::<Result<_, _>>()?;
    let cardio = slots_of(schedules[0].clone(), 1).await?;
    let ecg = slots_of(schedules[2].clone(), 1).await?;
    let mut booked = vec![];
    for (i, p) in patients.iter().enumerate() {
        let slot = if i % 2 == 0 { cardio.get(i * 3) } else { ecg.get(i) };
        let Some(slot) = slot else { continue };
        let reason = if i % 2 == 0 { "血压控制不佳，专科调整方案" } else { "心悸，查心电图" };
        let b = NewAppointment {
            slot_id: slot.clone(),
            patient_id: Some(p.clone()),
            reason: Some(reason.into()),
            referral_id: None,
        };
        match appointment_api::book_slot(state, keys, &wu, b, now).await {
            Ok(a) => booked.push(a.id),
            Err(e) => tracing::warn!(error = %e.message, "a demo appointment not booked"),
        }
    }
    // The first four happened yesterday: two seen, one arrived and seen, one no-show.
    for (n, id) in booked.iter().take(4).enumerate() {
        let row =
            sqlx::query(&state.store.sql("SELECT start_ms, end_ms, slot_id FROM health_appointments WHERE id = $1"))
                .bind(id.clone())
                .fetch_one(state.store.reader())
                .await?;
        let (start, end): (i64, i64) = (col(&row, "start_ms")?, col(&row, "end_ms")?);
        let shift = ((start - now).div_euclid(DAY_MS) + 2) * DAY_MS;
        // The slot goes back with it (no slot is cut in the past, so none is in the way).
        let slot: String = col(&row, "slot_id")?;
        let mut tx = state.store.begin().await?;
        sqlx::query(&state.store.sql(
            "UPDATE health_appointments SET start_ms = start_ms - $1, end_ms = end_ms - $1, booked_ms = booked_ms - $2 WHERE id = $3",
        ))
        .bind(shift)
        .bind(3 * DAY_MS)
        .bind(id.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            &state.store.sql("UPDATE health_slots SET start_ms = start_ms - $1, end_ms = end_ms - $1 WHERE id = $2"),
        )
        .bind(shift)
        .bind(slot)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let action = if n == 3 { Action::Noshow } else { Action::Fulfil };
        let at = if n == 3 { end - shift } else { start - shift + 5 * 60_000 };
        appointment_api::step(state, keys, &yang, id, StepBody { action, slot_id: None, version: None }, at)
            .await
            .map_err(api)?;
    }
    tracing::info!(schedules = schedules.len(), appointments = booked.len(), "demo appointments seeded");
    kernel::demo::mark_seeded(state, MARKER, "1").await?;
    Ok(())
}

/// The demo's remote readings and consultations between the Yangcun centre and the People's
/// Hospital: an urgent ECG waiting, a consultation accepted, an ECG reported (its
/// DiagnosticReport in the record), one declined. Its own marker.
pub async fn seed_remote(state: &AppState, records: &crate::records::Records, keys: &Keys) -> anyhow::Result<()> {
    use crate::remote::Kind;
    use crate::remote_api::{self, NewRequest, Report, StepBody};
    const REMOTE_MARKER: &str = "health_remote";
    if kernel::demo::is_seeded(state, REMOTE_MARKER).await? {
        return Ok(());
    }
    let api = |e: kernel::error::ApiError| anyhow::anyhow!("{}", e.message);
    let yang = kernel::demo::act_as(state, "dr.yang").await?;
    let wu = kernel::demo::act_as(state, "dr.wu").await?;
    let people = yang.org_id.clone();
    let patients = sqlx::query(&state.store.sql(
        "SELECT patient_id FROM health_contracts WHERE org_id = $1 AND patient_id <> 'huang-xiuying' \
         ORDER BY patient_id DESC LIMIT 4",
    ))
    .bind(wu.org_id.clone())
    .fetch_all(state.store.reader())
    .await?;
    let patients: Vec<String> = patients.iter().map(|r| col(r, "patient_id")).collect::<Result<_, _>>()?;
    let author =
        crate::records::Author { user_id: wu.user_id.clone(), name: wu.username.clone(), org_id: wu.org_id.clone() };
    let ecg = |p: &str, text: &str| {
        let id = uuid::Uuid::now_v7().to_string();
        let body = serde_json::json!({ "resourceType": "Observation", "id": id, "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "11524-6", "display": "EKG study" }], "text": "十二导联心电图" },
            "subject": { "reference": format!("Patient/{p}") },
            "effectiveDateTime": crate::records::instant(now_ms() - 20 * 60_000), "valueString": text });
        (id, body)
    };
    let plans: [(Kind, bool, &str, Option<&str>); 4] = [
        (Kind::Ecg, true, "胸闷伴心悸 1 小时，心电图 ST 段改变？请急读", None),
        (Kind::Consultation, false, "糖尿病肾病 3 期，请会诊调整降糖方案", Some("accept")),
        (Kind::Ecg, false, "体检心电图异常，请判读", Some("report")),
        (Kind::Consultation, false, "慢性咳嗽 2 月，请呼吸科会诊", Some("reject")),
    ];
    for ((kind, urgent, question, then), p) in plans.into_iter().zip(patients.iter()) {
        let mut attachments = vec![];
        if kind == Kind::Ecg {
            let (id, body) = ecg(p, "社区心电图，待上级判读");
            let change = crate::records::Change {
                rtype: "Observation".into(),
                id: id.clone(),
                resource: Some(body),
                if_match: None,
            };
            records.commit(&author, "create", vec![change], vec![]).await?;
            attachments.push(format!("Observation/{id}"));
        }
        let r = remote_api::ask(
            state,
            keys,
            &wu,
            NewRequest {
                kind,
                patient_id: p.clone(),
                to_org_id: people.clone(),
                department: Some(if kind == Kind::Ecg { "心电图室" } else { "内科" }.into()),
                urgent: Some(urgent),
                question: question.into(),
                attachments: Some(attachments),
            },
        )
        .await
        .map_err(api)?;
        let step = |action, reason: Option<&str>, report: Option<Report>| StepBody {
            action,
            reason: reason.map(str::to_string),
            report,
            version: None,
        };
        use crate::remote::Action;
        match then {
            Some("accept") => {
                remote_api::advance(state, keys, &yang, &r.id, step(Action::Accept, None, None)).await.map_err(api)?;
            }
            Some("report") => {
                let rep = Report {
                    conclusion: "窦性心律，一度房室传导阻滞，建议定期复查。".into(),
                    codes: Some(vec!["I44.0".into()]),
                };
                remote_api::advance(state, keys, &yang, &r.id, step(Action::Report, None, Some(rep)))
                    .await
                    .map_err(api)?;
            }
            Some(_) => {
                remote_api::advance(
                    state,
                    keys,
                    &yang,
                    &r.id,
                    step(Action::Reject, Some("本院暂无呼吸科专家出诊，建议转中医医院"), None),
                )
                .await
                .map_err(api)?;
            }
            None => {}
        }
    }
    kernel::demo::mark_seeded(state, REMOTE_MARKER, "1").await?;
    Ok(())
}
