//! The demo district's tiered care: the townships' populations (the demo residents living in
//! each), a family-doctor team at the Yangcun centre with contracts signed over the past year
//! (the demo resident's due for renewal), and referrals in flight between the centre and the
//! People's Hospital in every state: waiting for an answer (an urgent one overdue), accepted
//! with a slot, arrived, returned with the follow-up due, done and overdue, rejected, and two
//! down-referrals. Everything is made through the services as the demo's doctors and then moved
//! back in time. Idempotent (its own marker, so an older demo data directory gains it too).

use crate::contract::{self, DEFAULT_MONTHS};
use crate::contract_api::{self, Member, NewContract, NewTeam, Population};
use crate::records::{Author, Change, Keys, Records};
use crate::referral::{Action, DAY_MS, Direction, HOUR_MS, Priority};
use crate::referral_api::{self, NewReferral, StepBody};
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const MARKER: &str = "health_care";

pub async fn seed(state: &AppState, demo: &DemoContext, records: &Records, keys: &Keys) -> anyhow::Result<()> {
    if kernel::demo::is_seeded(state, MARKER).await? {
        return Ok(());
    }
    let org = |k: &str| demo.orgs.get(k).cloned().ok_or_else(|| anyhow::anyhow!("demo organisation {k} missing"));
    let (people, yangcun) = (org("people_hospital")?, org("yangcun_chc")?);
    let wu = kernel::demo::act_as(state, "dr.wu").await?;
    let yang = kernel::demo::act_as(state, "dr.yang").await?;
    let chen = kernel::demo::act_as(state, "wjw.chen").await?;
    let api = |e: kernel::error::ApiError| anyhow::anyhow!("{}", e.message);

    // The townships' populations: the demo residents living in each.
    let mut living: BTreeMap<&str, i64> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let page = records.patients_after(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for p in &page {
            let address = p.body["address"].to_string();
            if let Some(l) = crate::synth::LOCALITIES.iter().find(|l| address.contains(**l)) {
                *living.entry(l).or_default() += 1;
            }
        }
    }
    for l in crate::synth::LOCALITIES {
        let population = living.get(l).copied().unwrap_or(0);
        contract_api::set_population(state, &chen, l.to_string(), Population { population }).await.map_err(api)?;
    }

    // The centre's team, and contracts with the residents it cares for.
    let team = contract_api::form_team(
        state,
        &wu,
        NewTeam {
            name: "杨村街道家庭医生一队".into(),
            township: "杨村街道".into(),
            members: vec![Member { user_id: wu.user_id.clone(), role: "doctor".into(), display_name: None }],
        },
    )
    .await
    .map_err(api)?;
    let in_care_at = |org: String| async move { patients_with_encounters(&state.store, &org).await };
    let conditions = conditions(&state.store).await?;
    let centre = in_care_at(yangcun.clone()).await?;
    let mut signed = 0;
    for (i, pid) in centre.iter().enumerate() {
        let has = |code: &str| conditions.get(pid).is_some_and(|c| c.contains(code));
        let mut packages = vec![];
        if has("I10") {
            packages.push("hypertension".to_string());
        }
        if has("E11") {
            packages.push("diabetes".to_string());
        }
        // The managed conditions' patients sign; of the others, one in three.
        if packages.is_empty() && i % 3 != 0 {
            continue;
        }
        let k = contract_api::sign_contract(
            state,
            keys,
            &wu,
            NewContract {
                patient_id: pid.clone(),
                team_id: team.id.clone(),
                packages: Some(packages),
                start: None,
                months: None,
            },
        )
        .await
        .map_err(api)?;
        // Signed over the past year, spread out.
        backdate_contract(&state.store, &k.id, ((i * 37) % 330) as i64).await?;
        signed += 1;
    }
    // The demo resident's contract ends within two months: on the renewal list.
    if records.exists("Patient", "huang-xiuying").await? {
        let k = contract_api::sign_contract(
            state,
            keys,
            &wu,
            NewContract {
                patient_id: "huang-xiuying".into(),
                team_id: team.id.clone(),
                packages: Some(vec!["elderly".into(), "hypertension".into()]),
                start: None,
                months: None,
            },
        )
        .await
        .map_err(api)?;
        backdate_contract(&state.store, &k.id, 320).await?;
    }

    // Referrals in flight. Up from the centre to the hospital, each as (hours ago of each step,
    // the steps after the request, priority, reason).
    let now = now_ms();
    let h = |n: i64| now - n * HOUR_MS;
    let d = |n: i64| now - n * DAY_MS;
    let accept = || StepBody { action: Action::Accept, note: None, slot: None, version: None };
    let with_note =
        |action: Action, note: &str| StepBody { action, note: Some(note.into()), slot: None, version: None };
    let slot_tomorrow = ms_to_rfc3339(now - now.rem_euclid(DAY_MS) + DAY_MS + HOUR_MS); // 09:00 Beijing
    type Plan = (Vec<i64>, Vec<StepBody>, Priority, &'static str);
    let up: Vec<Plan> = vec![
        (vec![h(20)], vec![], Priority::Routine, "血压控制不佳, 近三次随访均 ≥ 160/100 mmHg, 请调整降压方案"),
        (vec![h(3)], vec![], Priority::Urgent, "血压 186/118 mmHg, 伴头痛、视物模糊, 疑高血压急症"),
        (
            vec![d(2), h(30)],
            vec![StepBody { slot: Some(slot_tomorrow), ..accept() }],
            Priority::Routine,
            "空腹血糖 11.2 mmol/L, 口服药控制不佳, 请评估胰岛素治疗",
        ),
        (
            vec![d(4), d(3), h(20)],
            vec![accept(), with_note(Action::Arrive, "已到诊, 心内科门诊")],
            Priority::Routine,
            "心悸、胸闷, 心电图示房颤, 请专科诊治",
        ),
        (
            vec![d(16), d(15), d(14), d(9), d(6)],
            vec![
                accept(),
                with_note(Action::Arrive, "入院"),
                with_note(Action::Complete, "住院 5 天, 调整为氨氯地平 + 缬沙坦"),
                with_note(
                    Action::Return,
                    "血压控制达标, 回社区随访: 氨氯地平 5 mg qd, 缬沙坦 80 mg qd; 两周内复查血压",
                ),
            ],
            Priority::Routine,
            "难治性高血压, 三种降压药联合仍未达标",
        ),
        (
            vec![d(32), d(31), d(30), d(24), d(20)],
            vec![
                accept(),
                with_note(Action::Arrive, "入院"),
                with_note(Action::Complete, "胰岛素方案已确定"),
                with_note(Action::Return, "血糖平稳, 回社区: 甘精胰岛素 12 U qn, 两周内随访"),
            ],
            Priority::Routine,
            "糖尿病酮症倾向, 尿酮体 (+)",
        ),
        (
            vec![d(25), d(24), d(23), d(15), d(12)],
            vec![
                accept(),
                with_note(Action::Arrive, "入院"),
                with_note(Action::Complete, "冠脉造影未见明显狭窄"),
                with_note(Action::Return, "排除冠心病, 回社区继续控制血压血脂"),
            ],
            Priority::Routine,
            "活动后胸痛, 请排除冠心病",
        ),
        (
            vec![d(5), d(3)],
            vec![with_note(Action::Reject, "本院心内科床位已满, 建议转中医医院")],
            Priority::Routine,
            "高血压合并心功能不全, 请住院治疗",
        ),
    ];
    let (mut centre_pts, mut hospital_pts) = (centre.iter(), in_care_at(people.clone()).await?.into_iter());
    let mut followed_up = None;
    for (i, (times, steps, priority, reason)) in up.into_iter().enumerate() {
        let Some(pid) = centre_pts.next() else { break };
        let r = referral_api::request(
            state,
            keys,
            &wu,
            NewReferral {
                patient_id: pid.clone(),
                direction: Direction::Up,
                priority: Some(priority),
                to_org_id: people.clone(),
                department: Some(
                    if reason.contains("血糖") || reason.contains("糖尿病") {
                        "内分泌科"
                    } else {
                        "心血管内科"
                    }
                    .into(),
                ),
                diagnosis: Some(
                    if reason.contains("血糖") || reason.contains("糖尿病") { "E11.9" } else { "I10" }.into(),
                ),
                reason: reason.into(),
                summary: Some("社区随访记录及近三个月血压、血糖见附件。".into()),
                attachments: None,
                slot: None,
            },
        )
        .await
        .map_err(api)?;
        for s in steps {
            referral_api::advance(state, keys, &yang, &r.id, s).await.map_err(api)?;
        }
        backdate_referral(&state.store, &r.id, &times).await?;
        if i == 6 {
            followed_up = Some((pid.clone(), d(8)));
        }
    }
    // The follow-up visit at the centre for the referral returned 12 days ago.
    if let Some((pid, at)) = followed_up {
        let when = ms_to_rfc3339(at);
        let e = json!({ "resourceType": "Encounter", "id": format!("followup-{pid}"), "status": "finished",
            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "门诊 ambulatory" },
            "type": [{ "text": "转诊后随访 follow-up after referral" }],
            "subject": { "reference": format!("Patient/{pid}") },
            "serviceProvider": { "reference": format!("Organization/{yangcun}") },
            "period": { "start": when, "end": when } });
        let author = Author { user_id: wu.user_id.clone(), name: wu.username.clone(), org_id: yangcun.clone() };
        let change =
            Change { rtype: "Encounter".into(), id: format!("followup-{pid}"), resource: Some(e), if_match: None };
        records.commit(&author, "create", vec![change], vec![]).await?;
    }
    // Down from the hospital to the centre: one waiting, one accepted (follow-up due).
    let down: Vec<(Vec<i64>, Vec<StepBody>, &str)> = vec![
        (vec![h(5)], vec![], "脑梗死恢复期, 转社区继续康复治疗与随访"),
        (vec![d(4), d(3)], vec![accept()], "股骨颈骨折术后, 伤口愈合良好, 转社区康复"),
    ];
    for (times, steps, reason) in down {
        let Some(pid) = hospital_pts.find(|p| !centre.contains(p)) else { break };
        let r = referral_api::request(
            state,
            keys,
            &yang,
            NewReferral {
                patient_id: pid,
                direction: Direction::Down,
                priority: None,
                to_org_id: yangcun.clone(),
                department: Some("全科".into()),
                diagnosis: None,
                reason: reason.into(),
                summary: Some("出院小结见附件, 请按康复计划随访。".into()),
                attachments: None,
                slot: None,
            },
        )
        .await
        .map_err(api)?;
        for s in steps {
            referral_api::advance(state, keys, &wu, &r.id, s).await.map_err(api)?;
        }
        backdate_referral(&state.store, &r.id, &times).await?;
    }
    let prescribed = prescriptions(records, &wu, &yangcun, &centre, &conditions).await?;
    tracing::info!(contracts = signed, prescriptions = prescribed, "demo tiered care seeded");
    kernel::demo::mark_seeded(state, MARKER, "1").await?;
    Ok(())
}

/// The centre's prescriptions for the residents it cares for, each checked as the FHIR server
/// checks one (`rx_api`), its findings kept as DetectedIssues: antihypertensives and
/// metformin, a statin beside amlodipine (an interaction), an NSAID for the elderly, and one
/// high finding overridden with its reason. Returns how many were written.
async fn prescriptions(
    records: &Records,
    wu: &kernel::access::Caller,
    yangcun: &str,
    centre: &[String],
    conditions: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<usize> {
    use crate::rx_api;
    let author = Author { user_id: wu.user_id.clone(), name: wu.username.clone(), org_id: yangcun.to_string() };
    let order = |pid: &str, atc: &str, text: &str, mg: f64, per_day: u32| {
        json!({ "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": { "coding": [{ "system": crate::rx::ATC, "code": atc }], "text": text },
            "subject": { "reference": format!("Patient/{pid}") }, "authoredOn": ms_to_rfc3339(now_ms()),
            "requester": { "display": wu.username },
            "dosageInstruction": [{ "text": format!("{mg} mg，每日 {per_day} 次"),
                "timing": { "repeat": { "frequency": per_day, "period": 1, "periodUnit": "d" } },
                "doseAndRate": [{ "doseQuantity": { "value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }] }] })
    };
    let mut n = 0;
    for (i, pid) in centre.iter().enumerate().take(60) {
        let has = |code: &str| conditions.get(pid).is_some_and(|c| c.contains(code));
        let mut plan: Vec<(Value, Option<&str>)> = vec![];
        if has("I10") {
            plan.push((order(pid, "C08CA01", "苯磺酸氨氯地平片 5 mg", 5.0, 1), None));
            if i % 4 == 0 {
                plan.push((order(pid, "C10AA01", "辛伐他汀片 20 mg", 20.0, 1), None));
            }
        }
        if has("E11") {
            plan.push((order(pid, "A10BA02", "盐酸二甲双胍片 0.5 g", 500.0, 2), None));
        }
        if i % 9 == 0 {
            plan.push((order(pid, "M01AE01", "布洛芬缓释胶囊 0.3 g", 300.0, 2), None));
        }
        if i == 5 {
            plan.push((order(pid, "B01AA03", "华法林钠片 2.5 mg", 2.5, 1), None));
            plan.push((
                order(pid, "M01AB05", "双氯芬酸钠肠溶片 25 mg", 25.0, 2),
                Some("短期镇痛 3 天，已监测 INR 并加用胃黏膜保护"),
            ));
        }
        for (request, reason) in plan {
            let id = uuid::Uuid::now_v7().to_string();
            let mut request = request;
            request["id"] = Value::String(id.clone());
            let outcome = rx_api::check(records, &request, &id).await?;
            if outcome.blocks() && reason.is_none() {
                continue; // the demo's doctor would not prescribe it
            }
            let at = ms_to_rfc3339(now_ms());
            let mut changes = vec![Change {
                rtype: "MedicationRequest".into(),
                id: id.clone(),
                resource: Some(request),
                if_match: None,
            }];
            for (did, dv) in
                rx_api::detected_issues(&outcome, pid, &id, &wu.username, &at, reason.filter(|_| outcome.blocks()))
            {
                changes.push(Change { rtype: "DetectedIssue".into(), id: did, resource: Some(dv), if_match: None });
            }
            records.commit(&author, "create", changes, vec![]).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The patients with an encounter at the institution in the last year (in care there), in id
/// order: the demo's generated residents only.
async fn patients_with_encounters(store: &kernel::store::Store, org: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(&store.sql(
        "SELECT DISTINCT r.patient_id FROM health_resources r JOIN health_dates d ON d.type = r.type AND d.id = r.id \
         AND d.param = 'date' WHERE r.type = 'Encounter' AND r.owner_org = $1 AND r.deleted = 0 \
         AND r.patient_id LIKE 'demo-%' AND d.end_ms >= $2 ORDER BY r.patient_id",
    ))
    .bind(org.to_string())
    .bind(now_ms() - crate::fhir_api::IN_CARE_WINDOW_MS + 30 * DAY_MS)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(|r| col(r, "patient_id")).collect()
}

/// Each patient's condition codes (ICD-10 categories: `I10`, `E11`).
async fn conditions(store: &kernel::store::Store) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.patient_id, t.code FROM health_tokens t JOIN health_resources r ON r.type = t.type AND r.id = t.id \
         WHERE t.type = 'Condition' AND t.param = 'code' AND r.deleted = 0",
    )
    .fetch_all(store.reader())
    .await?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let (p, code): (Option<String>, String) = (col(r, "patient_id")?, col(r, "code")?);
        if let Some(p) = p {
            out.entry(p).or_default().insert(code.chars().take(3).collect());
        }
    }
    Ok(out)
}

/// Moves a contract signed today back by `days`: its term, its signature.
async fn backdate_contract(store: &kernel::store::Store, id: &str, days: i64) -> Result<(), StoreError> {
    let start = contract::today_date() - time::Duration::days(days);
    let end = contract::term_end(start, DEFAULT_MONTHS);
    let mut tx = store.begin().await?;
    sqlx::query(
        &store
            .sql("UPDATE health_contracts SET start_day = $1, end_day = $2, signed_ms = signed_ms - $3 WHERE id = $4"),
    )
    .bind(contract::day(start))
    .bind(contract::day(end))
    .bind(days * DAY_MS)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Puts a referral's steps at `times` (one per step, oldest first) and its state's times with
/// them.
async fn backdate_referral(store: &kernel::store::Store, id: &str, times: &[i64]) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for (i, t) in times.iter().enumerate() {
        let seq = i as i64 + 1;
        let row =
            sqlx::query(&store.sql(
                "UPDATE health_referral_steps SET at_ms = $1 WHERE referral_id = $2 AND seq = $3 RETURNING action",
            ))
            .bind(*t)
            .bind(id.to_string())
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { continue };
        let column = match col::<String>(&row, "action")?.as_str() {
            "request" => "requested_ms",
            "accept" => "accepted_ms",
            "arrive" => "arrived_ms",
            "complete" => "completed_ms",
            "return" => "returned_ms",
            _ => "closed_ms",
        };
        sqlx::query(&store.sql(&format!("UPDATE health_referrals SET {column} = $1, updated_ms = $1 WHERE id = $2")))
            .bind(*t)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
