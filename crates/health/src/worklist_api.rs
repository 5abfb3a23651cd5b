//! `/api/health/worklist`, `/api/health/indicators`: the family doctor's worklist of alerts and
//! follow-up tasks raised by the chronic-disease monitoring (`monitoring`), closed by the
//! doctor with the follow-up's outcome; and the management indicators per institution and
//! township (WHO HEARTS / DHIS2 style) that the health commission and the institutions watch.
//!
//! A clinician sees the worklist of their own institution, each patient listed audited as a
//! read; another institution's item is a 404. Closing a follow-up task records the follow-up
//! visit in the patient's record (an Encounter, and an Observation of what was measured),
//! closes the task and its overdue notice, and may raise the next alert: consecutive
//! uncontrolled follow-ups suggest a referral. Indicators are aggregates: the commission's
//! staff see every institution and township, a clinician their institution.

use crate::health_api::{is_health_regulator, records};
use crate::monitoring::{self, condition_str, parse_condition};
use crate::records::{Author, Change, Keys, instant};
use axum::extract::State as AxState;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use rules::clinical::{ClinicalRules, Condition, DAY_MS, Reading};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(close))
        .routes(routes!(indicators))
        .layer(axum::Extension(keys))
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, msg)
}

async fn refuse(st: &AppState, c: &Caller, action: &str, target: Option<&str>, why: &str, msg: &str) -> ApiError {
    crate::health_api::refuse(st, c, action, "worklist", target, why, msg).await
}

/// One alert or task on the worklist.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkItem {
    pub id: String,
    pub org_id: String,
    pub team_id: Option<String>,
    pub patient_id: String,
    pub patient_name: Option<String>,
    /// hypertension 高血压, diabetes 2型糖尿病.
    pub condition: String,
    /// follow_up 随访, urgent 紧急, suggest_referral 建议转诊, follow_up_overdue 随访逾期,
    /// reminder 提醒测量.
    pub action: String,
    /// When the reading was taken or the clock raised it.
    pub raised: String,
    /// The follow-up's deadline.
    pub due: Option<String>,
    /// Open and past its deadline.
    pub overdue: bool,
    pub rules_version: i64,
    /// The rule with its source, the reading (values, device, the Observation).
    pub evidence: Value,
    /// open or closed.
    pub state: String,
    pub closed: Option<String>,
    pub closed_by: Option<String>,
    /// controlled, uncontrolled, handled, referred.
    pub outcome: Option<String>,
    pub note: Option<String>,
    /// From raised to closed, minutes.
    pub response_minutes: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorklistFilter {
    /// open (default), closed or all.
    pub state: Option<String>,
    pub action: Option<String>,
    pub condition: Option<String>,
    pub patient_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const ACTIONS: &[&str] = &["follow_up", "urgent", "suggest_referral", "follow_up_overdue", "reminder"];
const ITEM_COLUMNS: &str = "id, org_id, team_id, patient_id, condition, action, at_ms, due_ms, rules_version, \
    evidence_enc, state, created_ms, closed_ms, closed_by, outcome, note_enc";

async fn view(st: &AppState, r: &crate::records::Records, row: &sqlx::any::AnyRow, now: i64) -> ApiResult<WorkItem> {
    let evidence: Vec<u8> = col(row, "evidence_enc")?;
    let evidence =
        st.cipher.decrypt(&evidence).map_err(|_| StoreError::Corrupt("a worklist item's evidence".into()))?;
    let note = match col::<Option<Vec<u8>>>(row, "note_enc")? {
        Some(b) => Some(st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt("a worklist item's note".into()))?),
        None => None,
    };
    let at_ms: i64 = col(row, "at_ms")?;
    let due_ms: Option<i64> = col(row, "due_ms")?;
    let closed_ms: Option<i64> = col(row, "closed_ms")?;
    let state: String = col(row, "state")?;
    let patient_id: String = col(row, "patient_id")?;
    Ok(WorkItem {
        id: col(row, "id")?,
        org_id: col(row, "org_id")?,
        team_id: col(row, "team_id")?,
        patient_name: r.patient_name(&patient_id).await?,
        patient_id,
        condition: col(row, "condition")?,
        action: col(row, "action")?,
        raised: ms_to_rfc3339(at_ms),
        due: due_ms.map(ms_to_rfc3339),
        overdue: state == "open" && due_ms.is_some_and(|d| now > d),
        rules_version: col(row, "rules_version")?,
        evidence: serde_json::from_str(&evidence).unwrap_or(Value::Null),
        closed: closed_ms.map(ms_to_rfc3339),
        closed_by: col(row, "closed_by")?,
        outcome: col(row, "outcome")?,
        note,
        response_minutes: closed_ms.map(|c| (c - at_ms).max(0) / 60_000),
        state,
    })
}

/// The worklist of the caller's institution: open items first by urgency and time (or closed
/// ones, newest first). Each patient listed is audited as a read.
#[utoipa::path(get, path = "/api/health/worklist", tag = "health", params(WorklistFilter),
    responses((status = 200, body = Paged<WorkItem>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Query(f): Query<WorklistFilter>,
) -> ApiResult<axum::Json<Paged<WorkItem>>> {
    if c.role != Role::Clinician {
        return Err(refuse(
            &st,
            &c,
            "health.worklist.read",
            None,
            "not_clinician",
            "the worklist is the family doctors' (仅限医生)",
        )
        .await);
    }
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let mut conds = vec!["org_id = $1".to_string()];
    let mut args = vec![c.org_id.clone()];
    let mut add = |sql: &str, v: String| {
        args.push(v);
        conds.push(sql.replace('?', &format!("${}", args.len())));
    };
    let state = f.state.as_deref().unwrap_or("open");
    match state {
        "open" | "closed" => add("state = ?", state.to_string()),
        "all" => {}
        _ => return Err(ApiError::field(Code::InvalidQuery, "state", "open, closed or all")),
    }
    if let Some(a) = &f.action {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(ApiError::field(Code::InvalidQuery, "action", ACTIONS.join(", ")));
        }
        add("action = ?", a.clone());
    }
    if let Some(k) = &f.condition {
        if parse_condition(k).is_none() {
            return Err(ApiError::field(Code::InvalidQuery, "condition", "hypertension or diabetes"));
        }
        add("condition = ?", k.clone());
    }
    if let Some(p) = &f.patient_id {
        add("patient_id = ?", p.clone());
    }
    let wh = conds.join(" AND ");
    let order = if state == "open" {
        "CASE action WHEN 'urgent' THEN 0 WHEN 'suggest_referral' THEN 1 WHEN 'follow_up_overdue' THEN 2 \
         WHEN 'follow_up' THEN 3 ELSE 4 END, at_ms DESC, id"
    } else {
        "at_ms DESC, id"
    };
    let sql = st
        .store
        .sql(&format!(
            "SELECT {ITEM_COLUMNS} FROM health_worklist WHERE {wh} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        ))
        .into_owned();
    let mut q = sqlx::query(&sql);
    for a in &args {
        q = q.bind(a.clone());
    }
    let rows = q.fetch_all(st.store.reader()).await.map_err(StoreError::from)?;
    let sql = st.store.sql(&format!("SELECT COUNT(*) AS n FROM health_worklist WHERE {wh}")).into_owned();
    let mut q = sqlx::query(&sql);
    for a in &args {
        q = q.bind(a.clone());
    }
    let total: i64 = col(&q.fetch_one(st.store.reader()).await.map_err(StoreError::from)?, "n")?;
    let r = records(&st, &keys);
    let now = now_ms();
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(view(&st, &r, row, now).await?);
    }
    let listed = items.iter().map(|x| x.patient_id.as_str());
    crate::health_api::audit_listed(&st, &c, "health.worklist.read", listed, None).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// How the family doctor closes an item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    /// A follow-up task (or its overdue notice): `controlled` or `uncontrolled` (the follow-up
    /// visit's finding). Any other item: `handled` or `referred`.
    pub outcome: String,
    /// Up to 1 000 characters.
    pub note: Option<String>,
    /// Measured at the follow-up (mmHg): both or neither.
    pub systolic: Option<f64>,
    pub diastolic: Option<f64>,
    /// Fasting glucose measured at the follow-up (mmol/L).
    pub glucose_mmol_l: Option<f64>,
    /// The referral made for it (`referred`): one of the caller's institution's, for the patient.
    pub referral_id: Option<String>,
}

fn measured(b: &Closing, condition: Condition) -> ApiResult<Option<Reading>> {
    let sane = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
    match (condition, b.systolic, b.diastolic, b.glucose_mmol_l) {
        (_, None, None, None) => Ok(None),
        (Condition::Hypertension, Some(s), Some(d), None) => {
            if !sane(s, 50.0, 300.0) {
                return Err(bad("systolic", "50 to 300 mmHg"));
            }
            if !sane(d, 30.0, 200.0) || d >= s {
                return Err(bad("diastolic", "30 to 200 mmHg, below the systolic"));
            }
            Ok(Some(Reading::BloodPressure { systolic: s, diastolic: d }))
        }
        (Condition::Diabetes, None, None, Some(g)) => {
            if !sane(g, 0.5, 60.0) {
                return Err(bad("glucose_mmol_l", "0.5 to 60 mmol/L"));
            }
            Ok(Some(Reading::FastingGlucose { mmol_l: g }))
        }
        (Condition::Hypertension, ..) => {
            Err(bad("systolic", "a blood pressure follow-up measures systolic and diastolic"))
        }
        (Condition::Diabetes, ..) => Err(bad("glucose_mmol_l", "a diabetes follow-up measures fasting glucose")),
    }
}

/// Closes an item of the caller's institution's worklist. A follow-up task's outcome
/// (controlled or not) is the follow-up visit, recorded in the patient's record; the task's
/// overdue notice closes with it; a second uncontrolled follow-up in a row puts a referral
/// suggestion on the worklist.
#[utoipa::path(post, path = "/api/health/worklist/{id}/close", tag = "health", params(("id" = String, Path)),
    request_body = Closing,
    responses((status = 200, body = WorkItem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn close(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<Closing>,
) -> ApiResult<axum::Json<WorkItem>> {
    let item = close_item(&st, &keys, &c, &id, b, now_ms()).await?;
    Ok(axum::Json(item))
}

/// Closes a worklist item at `at_ms` (the HTTP handler's now; the demo's past).
pub async fn close_item(
    st: &AppState,
    keys: &Keys,
    c: &Caller,
    id: &str,
    b: Closing,
    at_ms: i64,
) -> ApiResult<WorkItem> {
    const ACTION: &str = "health.worklist.close";
    if c.role != Role::Clinician {
        return Err(
            refuse(st, c, ACTION, Some(id), "not_clinician", "the worklist is the family doctors' (仅限医生)").await
        );
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {ITEM_COLUMNS} FROM health_worklist WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else { return Err(ApiError::not_found("worklist item")) };
    if col::<String>(&row, "org_id")? != c.org_id {
        let ev = Event::new(Actor::of(c), ACTION, "worklist", Some(id), Outcome::Denied)
            .detail(json!({ "refusal": "not_your_institution" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError { audited: true, ..ApiError::not_found("worklist item") });
    }
    if col::<String>(&row, "state")? != "open" {
        return Err(ApiError::new(Code::Conflict, "closed already (已处理)"));
    }
    let action: String = col(&row, "action")?;
    let patient: String = col(&row, "patient_id")?;
    let condition = parse_condition(&col::<String>(&row, "condition")?)
        .ok_or_else(|| StoreError::Corrupt("a worklist item's condition".into()))?;
    let follow_up = action == "follow_up" || action == "follow_up_overdue";
    let outcome = b.outcome.as_str();
    match (follow_up, outcome) {
        (true, "controlled" | "uncontrolled") | (false, "handled" | "referred") => {}
        (true, _) => return Err(bad("outcome", "a follow-up closes as controlled or uncontrolled (控制满意/不满意)")),
        (false, _) => return Err(bad("outcome", "handled or referred (已处理/已转诊)")),
    }
    let note = match b.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 1000 || n.chars().any(|ch| ch.is_control() && ch != '\n') => {
            return Err(bad("note", "up to 1000 characters, no control characters"));
        }
        n => n.map(str::to_string),
    };
    let reading = if follow_up { measured(&b, condition)? } else { None };
    if !follow_up && (b.systolic.is_some() || b.diastolic.is_some() || b.glucose_mmol_l.is_some()) {
        return Err(bad("systolic", "measurements are recorded with a follow-up task"));
    }
    if let Some(rid) = &b.referral_id {
        let ok = sqlx::query(&st.store.sql(
            "SELECT 1 AS one FROM health_referrals WHERE id = $1 AND patient_id = $2 AND (from_org = $3 OR to_org = $3)",
        ))
        .bind(rid.clone())
        .bind(patient.clone())
        .bind(c.org_id.clone())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
        if outcome != "referred" || ok.is_none() {
            return Err(bad("referral_id", "a referral of your institution for this patient, with outcome referred"));
        }
    }
    let rules = ClinicalRules::default();
    let r = records(st, keys);
    // The follow-up visit in the record first (its own transaction): an Encounter, and what
    // was measured. Closing the task after it means a failure leaves the task open, never a
    // closed task without its visit.
    if follow_up {
        let label = match condition {
            Condition::Hypertension => "高血压患者随访 Hypertension follow-up",
            Condition::Diabetes => "2型糖尿病患者随访 Diabetes follow-up",
        };
        let enc_id = uuid::Uuid::now_v7().to_string();
        let encounter = json!({
            "resourceType": "Encounter",
            "id": enc_id,
            "status": "finished",
            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory" },
            "type": [{ "text": label }],
            "subject": { "reference": format!("Patient/{patient}") },
            "period": { "start": instant(at_ms), "end": instant(at_ms) },
            "serviceProvider": { "reference": format!("Organization/{}", c.org_id) },
        });
        let mut changes =
            vec![Change { rtype: "Encounter".into(), id: enc_id.clone(), resource: Some(encounter), if_match: None }];
        if let Some(m) = &reading {
            let oid = uuid::Uuid::now_v7().to_string();
            let mut o = monitoring::observation(&oid, &patient, at_ms, m, None, None);
            o["encounter"] = json!({ "reference": format!("Encounter/{enc_id}") });
            changes.push(Change { rtype: "Observation".into(), id: oid, resource: Some(o), if_match: None });
        }
        let author = Author { user_id: c.user_id.clone(), name: c.username.clone(), org_id: c.org_id.clone() };
        let ev = Event::new(Actor::of(c), "health.worklist.follow_up", "Patient", Some(&patient), Outcome::Success)
            .detail(json!({ "item": id, "encounter": enc_id }));
        r.commit(&author, "follow-up", changes, vec![ev]).await.map_err(|e| match e {
            crate::records::WriteError::Store(s) => ApiError::from(s),
            e => ApiError::new(Code::Internal, e.to_string()),
        })?;
    }
    let mut tx = st.store.begin().await?;
    let closing_sql = if follow_up {
        // The task and its overdue notice are one task.
        "UPDATE health_worklist SET state = 'closed', closed_ms = $1, closed_by = $2, outcome = $3, note_enc = $4 \
         WHERE state = 'open' AND (id = $5 OR (patient_id = $6 AND condition = $7 AND action IN ('follow_up', 'follow_up_overdue') AND org_id = $8))"
    } else {
        "UPDATE health_worklist SET state = 'closed', closed_ms = $1, closed_by = $2, outcome = $3, note_enc = $4 \
         WHERE state = 'open' AND id = $5 AND $6 <> '' AND $7 <> '' AND $8 <> ''"
    };
    let done = sqlx::query(&st.store.sql(closing_sql))
        .bind(at_ms)
        .bind(c.username.clone())
        .bind(outcome.to_string())
        .bind(note.as_deref().map(|n| st.cipher.encrypt(n)))
        .bind(id.to_string())
        .bind(patient.clone())
        .bind(condition_str(condition))
        .bind(c.org_id.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "closed already (已处理)"));
    }
    if follow_up {
        monitoring::followed_up(
            st,
            &mut tx,
            &rules,
            &patient,
            condition,
            &c.org_id,
            at_ms,
            outcome == "controlled",
            reading,
        )
        .await?;
    }
    let ev = Event::new(Actor::of(c), ACTION, "Patient", Some(&patient), Outcome::Success)
        .detail(json!({ "item": id, "action": action, "outcome": outcome, "referral": b.referral_id }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = sqlx::query(&st.store.sql(&format!("SELECT {ITEM_COLUMNS} FROM health_worklist WHERE id = $1")))
        .bind(id.to_string())
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    view(st, &r, &row, now_ms()).await
}

// ---------------------------------------------------------------- indicators

/// One condition's management figures for an institution or township.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ConditionFigures {
    /// Patients under management (规范管理): contracts in force with the condition's package.
    pub managed: i64,
    /// Of them, measured in the last 3 months (home device or follow-up).
    pub measured_3m: i64,
    /// Of them, controlled at the last measurement within 3 months (BP < 140/90; fasting
    /// glucose < 7.0 mmol/L): the HEARTS control rate's numerator.
    pub controlled: i64,
    /// controlled ÷ managed, percent (none without patients).
    pub control_rate: Option<f64>,
    /// Managed patients without a visit (Encounter) at the managing institution in 3 months.
    pub no_visit_3m: i64,
    /// Follow-up tasks due in the last 3 months.
    pub follow_ups_due: i64,
    /// Of them, done by their deadline.
    pub follow_ups_on_time: i64,
    /// on time ÷ due, percent.
    pub follow_up_compliance: Option<f64>,
}

/// An institution's or township's figures.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = CareFigures)]
pub struct Figures {
    pub hypertension: ConditionFigures,
    pub diabetes: ConditionFigures,
    /// Urgent alerts raised in the last 3 months, and those still open.
    pub urgent_alerts: i64,
    pub urgent_open: i64,
    /// Median minutes from an urgent alert to its closing (alert response time).
    pub urgent_response_median_minutes: Option<i64>,
    /// Referrals returned to primary care (up) or handed down in the 3 months whose 2-week
    /// follow-up was decided, done in time, and the share (institutions only; by the
    /// primary-care institution).
    pub referral_follow_ups: Option<i64>,
    pub referral_follow_ups_done: Option<i64>,
    pub referral_follow_up_rate: Option<f64>,
    /// Residents with a contract in force, the population the commission keeps, the share
    /// (townships only).
    pub contracted: Option<i64>,
    pub population: Option<i64>,
    pub contract_coverage: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionFigures {
    pub org_id: String,
    pub org_name: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TownshipFigures {
    pub township: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Indicators {
    /// The day they were computed for (Beijing), and the window's start.
    pub on: String,
    pub since: String,
    pub institutions: Vec<InstitutionFigures>,
    pub townships: Vec<TownshipFigures>,
    /// The monitoring rules' version and thresholds.
    pub rules: ClinicalRulesView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClinicalRulesView {
    pub version: u32,
    pub bp_systolic: f64,
    pub bp_diastolic: f64,
    pub glucose_fasting: f64,
    pub follow_up_days: u32,
}

fn records_plain(st: &AppState) -> crate::records::Records {
    crate::records::Records::new(st.store.clone(), st.cipher.clone())
}

fn pct(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| (n as f64 * 1000.0 / d as f64).round() / 10.0)
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// The management indicators over the last 3 months, per institution and per township: the
/// health commission's staff see all, a clinician their own institution.
#[utoipa::path(get, path = "/api/health/indicators", tag = "health",
    responses((status = 200, body = Indicators), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn indicators(AxState(st): AxState<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<Indicators>> {
    let only = if is_health_regulator(&st, &c).await? {
        None
    } else if c.role == Role::Clinician {
        Some(c.org_id.clone())
    } else {
        return Err(refuse(
            &st,
            &c,
            "health.indicators.read",
            None,
            "not_health_staff",
            "indicators are for the health commission and institutions (仅限卫健委与医疗机构)",
        )
        .await);
    };
    Ok(axum::Json(compute(&st, only.as_deref(), now_ms()).await?))
}

/// Computes the indicators at `now` (for one institution, or all).
pub async fn compute(st: &AppState, only: Option<&str>, now: i64) -> ApiResult<Indicators> {
    let since = now - 90 * DAY_MS;
    let today = crate::contract::today();
    let rules = ClinicalRules::default();
    // Managed patients: contracts in force with the hypertension or diabetes package.
    let rows = sqlx::query(&st.store.sql(
        "SELECT patient_id, org_id, township, packages FROM health_contracts WHERE state <> 'terminated' \
         AND start_day <= $1 AND end_day >= $1",
    ))
    .bind(today.clone())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    // (patient, condition) → (org, township)
    let mut managed: HashMap<(String, Condition), (String, String)> = HashMap::new();
    let mut township_of: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let (p, org, town, packages): (String, String, String, String) =
            (col(r, "patient_id")?, col(r, "org_id")?, col(r, "township")?, col(r, "packages")?);
        if only.is_some_and(|o| o != org) {
            continue;
        }
        township_of.insert(p.clone(), town.clone());
        for (pk, cond) in [("hypertension", Condition::Hypertension), ("diabetes", Condition::Diabetes)] {
            if packages.split(',').any(|x| x == pk) {
                managed.insert((p.clone(), cond), (org.clone(), town.clone()));
            }
        }
    }
    // The last measurement of each watched condition.
    let rows = sqlx::query(
        &st.store.sql("SELECT patient_id, condition, last_reading_ms, last_controlled FROM health_monitor_watches"),
    )
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut last: HashMap<(String, Condition), (Option<i64>, Option<i64>)> = HashMap::new();
    for r in &rows {
        let Some(cond) = parse_condition(&col::<String>(r, "condition")?) else { continue };
        last.insert((col(r, "patient_id")?, cond), (col(r, "last_reading_ms")?, col(r, "last_controlled")?));
    }
    // Visits at the managing institution in the window.
    let rows = sqlx::query(&st.store.sql(
        "SELECT DISTINCT r.patient_id, r.owner_org FROM health_resources r JOIN health_dates d ON d.type = r.type \
         AND d.id = r.id AND d.param = 'date' WHERE r.type = 'Encounter' AND r.deleted = 0 AND d.end_ms >= $1 \
         AND r.patient_id IN (SELECT patient_id FROM health_contracts WHERE state <> 'terminated' AND end_day >= $2)",
    ))
    .bind(since)
    .bind(today.clone())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut visited: HashSet<(String, String)> = HashSet::new();
    for r in &rows {
        if let Some(p) = col::<Option<String>>(r, "patient_id")? {
            visited.insert((p, col::<Option<String>>(r, "owner_org")?.unwrap_or_default()));
        }
    }
    let mut by_org: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_town: BTreeMap<String, Figures> = BTreeMap::new();
    fn slot(f: &mut Figures, c: Condition) -> &mut ConditionFigures {
        match c {
            Condition::Hypertension => &mut f.hypertension,
            Condition::Diabetes => &mut f.diabetes,
        }
    }
    for ((p, cond), (org, town)) in &managed {
        let (measured, ok) = match last.get(&(p.clone(), *cond)) {
            Some((Some(t), ok)) if *t >= since => (true, *ok == Some(1)),
            _ => (false, false),
        };
        let no_visit = !visited.contains(&(p.clone(), org.clone()));
        for f in [by_org.entry(org.clone()).or_default(), by_town.entry(town.clone()).or_default()] {
            let s = slot(f, *cond);
            s.managed += 1;
            s.measured_3m += i64::from(measured);
            s.controlled += i64::from(ok);
            s.no_visit_3m += i64::from(no_visit);
        }
    }
    // Follow-up tasks due in the window, and urgent alerts raised in it.
    let rows = sqlx::query(&st.store.sql(
        "SELECT org_id, patient_id, condition, action, at_ms, due_ms, closed_ms FROM health_worklist \
         WHERE (action = 'follow_up' AND due_ms >= $1 AND due_ms <= $2) OR (action = 'urgent' AND at_ms >= $1)",
    ))
    .bind(since)
    .bind(now)
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut responses: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut town_responses: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        let org: String = col(r, "org_id")?;
        if only.is_some_and(|o| o != org) {
            continue;
        }
        let patient: String = col(r, "patient_id")?;
        let town = township_of.get(&patient).cloned().unwrap_or_else(|| "—".into());
        let closed: Option<i64> = col(r, "closed_ms")?;
        let action: String = col(r, "action")?;
        if action == "urgent" {
            let at: i64 = col(r, "at_ms")?;
            for (key, f, resp) in [
                (org.clone(), by_org.entry(org.clone()).or_default(), &mut responses),
                (town.clone(), by_town.entry(town.clone()).or_default(), &mut town_responses),
            ] {
                f.urgent_alerts += 1;
                f.urgent_open += i64::from(closed.is_none());
                if let Some(cl) = closed {
                    resp.entry(key).or_default().push((cl - at).max(0) / 60_000);
                }
            }
        } else {
            let Some(cond) = parse_condition(&col::<String>(r, "condition")?) else { continue };
            let due: Option<i64> = col(r, "due_ms")?;
            let on_time = closed.is_some_and(|cl| due.is_some_and(|d| cl <= d));
            for f in [by_org.entry(org.clone()).or_default(), by_town.entry(town.clone()).or_default()] {
                let s = slot(f, cond);
                s.follow_ups_due += 1;
                s.follow_ups_on_time += i64::from(on_time);
            }
        }
    }
    let finish = |f: &mut Figures, resp: Option<Vec<i64>>| {
        for s in [&mut f.hypertension, &mut f.diabetes] {
            s.control_rate = pct(s.controlled, s.managed);
            s.follow_up_compliance = pct(s.follow_ups_on_time, s.follow_ups_due);
        }
        f.urgent_response_median_minutes = resp.and_then(median);
    };
    // Referrals of the window and their 2-week follow-ups, by the primary-care institution.
    let r = records_plain(st);
    for rf in crate::referral_api::figures(st, &r, since, now, only).await? {
        let decided = rf.follow_up_done + rf.follow_up_late + rf.follow_up_overdue;
        if decided == 0 && !by_org.contains_key(&rf.org_id) {
            continue;
        }
        let f = by_org.entry(rf.org_id.clone()).or_default();
        f.referral_follow_ups = Some(decided);
        f.referral_follow_ups_done = Some(rf.follow_up_done);
        f.referral_follow_up_rate = pct(rf.follow_up_done, decided);
    }
    // Contract coverage per township: contracts in force ÷ the population kept.
    let rows = sqlx::query(&st.store.sql(
        "SELECT k.township, COUNT(DISTINCT k.patient_id) AS n, MAX(t.population) AS population FROM health_contracts k \
         LEFT JOIN health_townships t ON t.name = k.township WHERE k.state <> 'terminated' AND k.start_day <= $1 \
         AND k.end_day >= $1 AND ($2 = '' OR k.org_id = $2) GROUP BY k.township",
    ))
    .bind(today.clone())
    .bind(only.unwrap_or_default().to_string())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    for row in &rows {
        let town: String = col(row, "township")?;
        let n: i64 = col(row, "n")?;
        let population: Option<i64> = col(row, "population")?;
        let f = by_town.entry(town).or_default();
        f.contracted = Some(n);
        f.population = population;
        f.contract_coverage = population.and_then(|p| pct(n, p));
    }
    let mut institutions = vec![];
    for (org, mut f) in by_org {
        finish(&mut f, responses.remove(&org));
        let org_name = kernel::orgs::get(&st.store, &org).await?.map(|o| o.name);
        institutions.push(InstitutionFigures { org_id: org, org_name, figures: f });
    }
    let townships = by_town
        .into_iter()
        .map(|(t, mut f)| {
            finish(&mut f, town_responses.remove(&t));
            TownshipFigures { township: t, figures: f }
        })
        .collect();
    Ok(Indicators {
        on: today,
        since: crate::contract::day(
            time::OffsetDateTime::from_unix_timestamp(since / 1000)
                .map(|t| t.to_offset(crate::fhir::datetime::BEIJING).date())
                .unwrap_or_else(|_| crate::contract::today_date()),
        ),
        institutions,
        townships,
        rules: ClinicalRulesView {
            version: rules.version,
            bp_systolic: rules.bp_systolic,
            bp_diastolic: rules.bp_diastolic,
            glucose_fasting: rules.glucose_fasting,
            follow_up_days: rules.follow_up_days,
        },
    })
}
