//! `/api/health/referrals`: two-way referrals between the district's institutions (双向转诊).
//!
//! A clinician refers a patient in care at their institution to another institution (a
//! hospital's department for an up-referral, a community centre for a down-referral) with the
//! reason, a diagnosis, a summary and the patient's records to read; the receiving institution's
//! clinicians answer and move the referral along ([`crate::referral`]); the referring side may
//! cancel until the patient arrives. While a referral stands, the patient is in care at the
//! receiving institution, whose clinicians then read the shared record (`Records::in_care`).
//! Reasons, summaries and notes are health data: stored encrypted, kept out of logs and audit
//! details; every read and step is audited against the patient, so it shows in the patient's
//! "who looked at my record". The health commission's staff see counts, never a referral.

use crate::fhir_api::clinician_context;
use crate::health_api::{health_institution, is_health_regulator, records};
use crate::records::Records;
use crate::referral::{self, Action, Direction, Due, FollowUp, Priority, Side, State, Times};
use crate::{access, fhir::validate};
use axum::extract::State as AxState;
use axum::response::IntoResponse;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{Store, StoreError, col, ms_to_rfc3339, now_ms, rfc3339_to_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: crate::records::Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(statistics))
        .routes(routes!(read))
        .routes(routes!(read_fhir))
        .routes(routes!(take_step))
        .layer(axum::Extension(keys))
}

/// A referral as its two institutions see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Referral {
    pub id: String,
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub direction: Direction,
    pub priority: Priority,
    pub from_org_id: String,
    pub from_org_name: Option<String>,
    pub to_org_id: String,
    pub to_org_name: Option<String>,
    /// The receiving department (科室), as the referrer named it.
    pub department: Option<String>,
    /// ICD-10 (GB/T 14396) code of the diagnosis the referral is for.
    pub diagnosis: Option<String>,
    pub reason: String,
    /// The referral summary (转诊单摘要) and, once returned, the receiving side's return summary
    /// is in the steps.
    pub summary: Option<String>,
    /// The patient's records attached (`Type/id`), readable by the receiving side.
    pub attachments: Vec<String>,
    pub state: State,
    pub requested_by: String,
    pub requested: String,
    pub accepted: Option<String>,
    pub arrived: Option<String>,
    pub completed: Option<String>,
    pub returned: Option<String>,
    /// When it was rejected or cancelled.
    pub closed: Option<String>,
    /// The reserved slot (预约号源) at the receiving institution.
    pub slot: Option<String>,
    /// What is due next and by when; `overdue` once that time has passed.
    pub due: Option<Due>,
    pub due_by: Option<String>,
    pub overdue: bool,
    /// The follow-up at the primary-care institution within two weeks of the hand-back.
    pub follow_up: Option<FollowUp>,
    pub follow_up_by: Option<String>,
    /// Optimistic concurrency: a step may name the version it was decided on.
    pub version: i64,
    /// The steps taken, oldest first (only when one referral is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReferralStep)]
pub struct Step {
    pub at: String,
    pub user_id: String,
    pub username: Option<String>,
    pub org_id: String,
    /// `request` for the referral itself, else the action.
    pub action: String,
    pub state: State,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    pub patient_id: String,
    pub direction: Direction,
    pub priority: Option<Priority>,
    /// The receiving institution (organisation id).
    pub to_org_id: String,
    pub department: Option<String>,
    pub diagnosis: Option<String>,
    /// Why the patient is referred (1–500 characters).
    pub reason: String,
    /// The clinical summary sent with the referral (at most 4 000 characters).
    pub summary: Option<String>,
    /// The patient's records to send (`Type/id`, at most 20).
    pub attachments: Option<Vec<String>>,
    /// A slot already reserved at the receiving institution (RFC 3339, within 90 days).
    pub slot: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReferralStepBody)]
pub struct StepBody {
    pub action: Action,
    /// The reason of a rejection or cancellation, the summary of a return (required for
    /// those), else an optional note.
    pub note: Option<String>,
    /// On acceptance: the slot reserved for the patient (RFC 3339).
    pub slot: Option<String>,
    /// The version the step was decided on (409 when the referral changed since).
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// `incoming` (to the caller's institution) or `outgoing` (from it); both by default.
    pub r#box: Option<String>,
    pub state: Option<State>,
    pub patient_id: Option<String>,
    /// Only those past their answer or arrival deadline, or with the follow-up overdue.
    pub overdue: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const MAX_REASON: usize = 500;
const MAX_SUMMARY: usize = 4_000;
const MAX_NOTE: usize = 4_000;
const MAX_ATTACHMENTS: usize = 20;
const SLOT_AHEAD_MS: i64 = 90 * referral::DAY_MS;

/// Referrals are the clinicians' (and the commission's counts): anyone else is refused, audited.
async fn require_clinician(st: &AppState, c: &Caller, action: &str, referral: Option<&str>) -> ApiResult<()> {
    if c.role == Role::Clinician {
        return Ok(());
    }
    let ev = Event::new(Actor::of(c), action, "referral", referral, Outcome::Denied)
        .detail(json!({ "refusal": "not_clinician" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError { audited: true, ..ApiError::forbidden("referrals are made by clinicians (转诊由医生办理)") })
}

fn text(field: &str, s: Option<&str>, max: usize, required: bool) -> ApiResult<Option<String>> {
    let t = s.map(str::trim).filter(|t| !t.is_empty());
    match t {
        None if required => Err(ApiError::field(Code::InvalidField, field, "required (必填)")),
        None => Ok(None),
        Some(t) if t.chars().count() > max => {
            Err(ApiError::field(Code::InvalidField, field, format!("at most {max} characters (过长)")))
        }
        Some(t) if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(ApiError::field(Code::InvalidField, field, "control characters are not allowed (含非法字符)"))
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

fn slot(field: &str, s: Option<&str>, now: i64) -> ApiResult<Option<i64>> {
    let Some(s) = s else { return Ok(None) };
    let ms = rfc3339_to_ms(s)
        .ok_or_else(|| ApiError::field(Code::InvalidField, field, "an RFC 3339 time with its zone (时间格式错误)"))?;
    if ms < now - referral::HOUR_MS || ms > now + SLOT_AHEAD_MS {
        return Err(ApiError::field(Code::InvalidField, field, "a slot within the next 90 days (号源须在 90 天内)"));
    }
    Ok(Some(ms))
}

/// The health institutions a referral may go to: organisations of kind institution in the
/// health domain.
#[utoipa::path(post, path = "/api/health/referrals", tag = "health", request_body = NewReferral,
    responses((status = 201, body = Referral), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<crate::records::Keys>,
    kernel::http::Json(b): kernel::http::Json<NewReferral>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Referral>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(request(&st, &keys, &c, b).await?)))
}

/// Makes a referral as the clinician `c` (the service behind `POST /api/health/referrals`).
pub async fn request(st: &AppState, keys: &crate::records::Keys, c: &Caller, b: NewReferral) -> ApiResult<Referral> {
    require_clinician(st, c, "health.referral.create", None).await?;
    let r = records(st, keys);
    let now = now_ms();
    let reason = text("reason", Some(&b.reason), MAX_REASON, true)?.unwrap_or_default();
    let summary = text("summary", b.summary.as_deref(), MAX_SUMMARY, false)?;
    let department = text("department", b.department.as_deref(), 50, false)?;
    let diagnosis = match b.diagnosis.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) if !validate::icd10_ok(d) => {
            return Err(ApiError::field(Code::InvalidField, "diagnosis", "an ICD-10 code such as I10 or E11.9"));
        }
        d => d.map(str::to_string),
    };
    let slot_ms = slot("slot", b.slot.as_deref(), now)?;
    let attachments = b.attachments.unwrap_or_default();
    if b.to_org_id == c.org_id {
        return Err(ApiError::field(
            Code::InvalidField,
            "to_org_id",
            "another institution than yours (不能转给本机构)",
        ));
    }
    if health_institution(st, &b.to_org_id).await?.is_none() {
        return Err(ApiError::field(Code::InvalidField, "to_org_id", "not a health institution (不是医疗机构)"));
    }
    if !r.exists("Patient", &b.patient_id).await? {
        return Err(ApiError::not_found("patient"));
    }
    // The referring clinician must have the patient in care (or the patient's consent).
    let ctx = clinician_context(&r, c, &c.org_id, &b.patient_id, "ServiceRequest", None).await?;
    let who = access::Caller::Clinician { institution: c.org_id.clone() };
    if let Err(refusal) = access::decide(&who, access::Action::Read, &ctx) {
        let ev = Event::new(Actor::of(c), "health.referral.create", "Patient", Some(&b.patient_id), Outcome::Denied)
            .detail(json!({ "refusal": format!("{refusal:?}") }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("only a patient in care at your institution is referred (患者未在本机构就诊)")
        });
    }
    let seen = crate::health_api::attachments(&r, &b.patient_id, &attachments, MAX_ATTACHMENTS).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let priority = b.priority.unwrap_or(Priority::Routine);
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO health_referrals (id, patient_id, direction, priority, from_org, to_org, department, diagnosis, \
         reason_enc, summary_enc, attachments, state, requested_by, requested_ms, slot_ms, updated_ms, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'requested', $12, $13, $14, $13, 1)",
    ))
    .bind(id.clone())
    .bind(b.patient_id.clone())
    .bind(enum_str(&b.direction))
    .bind(enum_str(&priority))
    .bind(c.org_id.clone())
    .bind(b.to_org_id.clone())
    .bind(department)
    .bind(diagnosis)
    .bind(st.cipher.encrypt(&reason))
    .bind(summary.map(|s| st.cipher.encrypt(&s)))
    .bind(serde_json::to_string(&seen).unwrap_or_else(|_| "[]".into()))
    .bind(c.user_id.clone())
    .bind(now)
    .bind(slot_ms)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    insert_step(&st.store, &mut tx, &id, 1, c, "request", State::Requested, None, now).await?;
    let ev = Event::new(Actor::of(c), "health.referral.create", "Patient", Some(&b.patient_id), Outcome::Success)
        .detail(json!({ "referral": id, "to_org": b.to_org_id, "direction": enum_str(&b.direction) }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = row_of(&st.store, &id).await?.ok_or_else(|| ApiError::not_found("referral"))?;
    view(st, &r, &row, now).await
}

fn enum_str<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn insert_step(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    seq: i64,
    c: &Caller,
    action: &str,
    state: State,
    note_enc: Option<Vec<u8>>,
    at: i64,
) -> ApiResult<()> {
    sqlx::query(&store.sql(
        "INSERT INTO health_referral_steps (referral_id, seq, at_ms, user_id, org_id, action, state, note_enc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ))
    .bind(id.to_string())
    .bind(seq)
    .bind(at)
    .bind(c.user_id.clone())
    .bind(c.org_id.clone())
    .bind(action.to_string())
    .bind(state.as_str())
    .bind(note_enc)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

const COLUMNS: &str = "f.id, f.patient_id, f.direction, f.priority, f.from_org, f.to_org, f.department, f.diagnosis, \
    f.reason_enc, f.summary_enc, f.attachments, f.state, f.requested_by, f.requested_ms, f.accepted_ms, f.arrived_ms, \
    f.completed_ms, f.returned_ms, f.closed_ms, f.slot_ms, f.updated_ms, f.version";

async fn row_of(store: &Store, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&store.sql(&format!("SELECT {COLUMNS} FROM health_referrals f WHERE f.id = $1")))
        .bind(id.to_string())
        .fetch_optional(store.reader())
        .await
        .map_err(StoreError::from)?)
}

fn parse_enum<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("a referral's {what} {s:?}")))
}

/// The stored referral's fields the state machine needs.
struct Core {
    id: String,
    patient_id: String,
    direction: Direction,
    priority: Priority,
    from_org: String,
    to_org: String,
    state: State,
    times: Times,
    version: i64,
}

fn core(row: &sqlx::any::AnyRow) -> Result<Core, StoreError> {
    let state: String = col(row, "state")?;
    Ok(Core {
        id: col(row, "id")?,
        patient_id: col(row, "patient_id")?,
        direction: parse_enum(&col::<String>(row, "direction")?, "direction")?,
        priority: parse_enum(&col::<String>(row, "priority")?, "priority")?,
        from_org: col(row, "from_org")?,
        to_org: col(row, "to_org")?,
        state: State::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("a referral's state {state:?}")))?,
        times: Times {
            requested_ms: col(row, "requested_ms")?,
            accepted_ms: col(row, "accepted_ms")?,
            arrived_ms: col(row, "arrived_ms")?,
            returned_ms: col(row, "returned_ms")?,
            slot_ms: col(row, "slot_ms")?,
        },
        version: col(row, "version")?,
    })
}

/// The institution where the patient is followed up after the hand-back.
fn primary_org(k: &Core) -> &str {
    match k.direction {
        Direction::Up => &k.from_org,
        Direction::Down => &k.to_org,
    }
}

/// The follow-up's standing: the first encounter at the primary-care institution after the
/// hand-back (a down-referral's recorded arrival counts as one).
async fn follow_up_of(r: &Records, k: &Core, now: i64) -> ApiResult<Option<(FollowUp, i64)>> {
    let Some(back) = referral::handed_back(k.direction, k.state, &k.times) else { return Ok(None) };
    let mut first = r.first_encounter_since(&k.patient_id, primary_org(k), back).await?;
    if k.direction == Direction::Down {
        first = match (first, k.times.arrived_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(Some((referral::follow_up(back, first, now), back + referral::FOLLOW_UP_WITHIN_MS)))
}

async fn view(st: &AppState, r: &Records, row: &sqlx::any::AnyRow, now: i64) -> ApiResult<Referral> {
    let k = core(row)?;
    let dec = |name: &str| -> Result<Option<String>, StoreError> {
        col::<Option<Vec<u8>>>(row, name)?
            .map(|b| st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt(format!("a referral's {name}"))))
            .transpose()
    };
    let deadline = referral::deadline(k.state, k.priority, &k.times);
    let follow = follow_up_of(r, &k, now).await?;
    let org_name = |id: String| async move { kernel::orgs::get(&st.store, &id).await.ok().flatten().map(|o| o.name) };
    let opt = |name: &str| col::<Option<i64>>(row, name).map(|v| v.map(ms_to_rfc3339));
    Ok(Referral {
        patient_name: r.patient_name(&k.patient_id).await?,
        from_org_name: org_name(k.from_org.clone()).await,
        to_org_name: org_name(k.to_org.clone()).await,
        department: col(row, "department")?,
        diagnosis: col(row, "diagnosis")?,
        reason: dec("reason_enc")?.unwrap_or_default(),
        summary: dec("summary_enc")?,
        attachments: serde_json::from_str(&col::<String>(row, "attachments")?).unwrap_or_default(),
        requested_by: col(row, "requested_by")?,
        requested: ms_to_rfc3339(k.times.requested_ms),
        accepted: opt("accepted_ms")?,
        arrived: opt("arrived_ms")?,
        completed: opt("completed_ms")?,
        returned: opt("returned_ms")?,
        closed: opt("closed_ms")?,
        slot: k.times.slot_ms.map(ms_to_rfc3339),
        due: deadline.map(|d| d.0),
        due_by: deadline.map(|d| ms_to_rfc3339(d.1)),
        overdue: deadline.is_some_and(|d| now > d.1) || matches!(follow, Some((FollowUp::Overdue, _))),
        follow_up: follow.map(|f| f.0),
        follow_up_by: follow.map(|f| ms_to_rfc3339(f.1)),
        steps: None,
        id: k.id,
        patient_id: k.patient_id,
        direction: k.direction,
        priority: k.priority,
        from_org_id: k.from_org,
        to_org_id: k.to_org,
        state: k.state,
        version: k.version,
    })
}

/// The side the caller's institution is on, else a refusal (audited) or a 404 for a referral
/// that is none of its business.
async fn side_of(st: &AppState, c: &Caller, k: &Core, action: &str) -> ApiResult<Side> {
    if c.role == Role::Clinician && c.org_id == k.from_org {
        return Ok(Side::From);
    }
    if c.role == Role::Clinician && c.org_id == k.to_org {
        return Ok(Side::To);
    }
    let ev = Event::new(Actor::of(c), action, "referral", Some(&k.id), Outcome::Denied)
        .detail(json!({ "refusal": "not_a_party" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError { audited: true, ..ApiError::not_found("referral") })
}

/// One referral with its steps, for the clinicians of its two institutions (audited as a read
/// of the patient's record).
#[utoipa::path(get, path = "/api/health/referrals/{id}", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = Referral), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn read(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<crate::records::Keys>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Referral>> {
    require_clinician(&st, &c, "health.referral.read", Some(&id)).await?;
    let Some(row) = row_of(&st.store, &id).await? else { return Err(ApiError::not_found("referral")) };
    let k = core(&row)?;
    side_of(&st, &c, &k, "health.referral.read").await?;
    let r = records(&st, &keys);
    let mut v = view(&st, &r, &row, now_ms()).await?;
    v.steps = Some(steps(&st, &id).await?);
    let ev = Event::new(Actor::of(&c), "health.referral.read", "Patient", Some(&k.patient_id), Outcome::Success)
        .detail(json!({ "referral": id }));
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(v))
}

/// The referral as FHIR R4: a Bundle (collection) of the ServiceRequest (the order: patient,
/// requester, performer, reason, diagnosis, supporting records, priority) and the Task that
/// carries its state (status and business status, owner the receiving institution, the
/// reserved slot as the restriction period, the steps' notes), for systems that take referrals
/// as FHIR (the IHE 360X pattern). Audited as a read, like the JSON view.
#[utoipa::path(get, path = "/api/health/referrals/{id}/fhir", tag = "health", params(("id" = String, Path)),
    responses((status = 200, description = "A FHIR Bundle", content_type = "application/fhir+json"),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn read_fhir(
    st: AxState<AppState>,
    auth: Auth,
    keys: axum::Extension<crate::records::Keys>,
    id: Path<String>,
) -> ApiResult<axum::response::Response> {
    let axum::Json(v) = read(st, auth, keys, id).await?;
    let body = fhir_bundle(&v).to_string();
    Ok(([(axum::http::header::CONTENT_TYPE, crate::fhir_api::FHIR_JSON)], body).into_response())
}

/// [`read_fhir`]'s Bundle.
pub fn fhir_bundle(v: &Referral) -> serde_json::Value {
    let org = |id: &str, name: &Option<String>| json!({ "reference": format!("Organization/{id}"), "display": name });
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "id": v.id,
        "status": match v.state {
            State::Requested | State::Accepted | State::Arrived => "active",
            State::Completed | State::Returned => "completed",
            State::Rejected | State::Cancelled => "revoked",
        },
        "intent": "order",
        "category": [{ "coding": [{ "system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral" }],
            "text": match v.direction { Direction::Up => "上转 up-referral", Direction::Down => "下转 down-referral" } }],
        "priority": match v.priority { Priority::Routine => "routine", Priority::Urgent => "urgent" },
        "code": { "text": v.department.clone().unwrap_or_else(|| "转诊 referral".into()) },
        "subject": { "reference": format!("Patient/{}", v.patient_id), "display": v.patient_name },
        "authoredOn": v.requested,
        "requester": org(&v.from_org_id, &v.from_org_name),
        "performer": [org(&v.to_org_id, &v.to_org_name)],
        "reasonCode": [{ "text": v.reason }],
        "supportingInfo": v.attachments.iter().map(|a| json!({ "reference": a })).collect::<Vec<_>>(),
    });
    if let Some(d) = &v.diagnosis {
        sr["reasonCode"] =
            json!([{ "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": d }], "text": v.reason }]);
    }
    if let Some(s) = &v.summary {
        sr["note"] = json!([{ "text": s }]);
    }
    let (status, business) = v.state.task_status();
    let mut task = json!({
        "resourceType": "Task",
        "id": format!("{}-task", v.id),
        "basedOn": [{ "reference": format!("ServiceRequest/{}", v.id) }],
        "focus": { "reference": format!("ServiceRequest/{}", v.id) },
        "for": { "reference": format!("Patient/{}", v.patient_id) },
        "status": status,
        "intent": "order",
        "priority": match v.priority { Priority::Routine => "routine", Priority::Urgent => "urgent" },
        "authoredOn": v.requested,
        "requester": org(&v.from_org_id, &v.from_org_name),
        "owner": org(&v.to_org_id, &v.to_org_name),
        "note": v.steps.iter().flatten().filter_map(|s| s.note.as_ref().map(|n| json!({ "time": s.at, "text": n }))).collect::<Vec<_>>(),
    });
    if let Some(b) = business {
        task["businessStatus"] = json!({ "text": b });
    }
    if let Some(reason) = v.steps.iter().flatten().rev().find(|s| matches!(s.action.as_str(), "reject" | "cancel")) {
        task["statusReason"] = json!({ "text": reason.note });
    }
    if let Some(last) = v.steps.iter().flatten().last() {
        task["lastModified"] = json!(last.at);
    }
    if let Some(slot) = &v.slot {
        task["restriction"] = json!({ "period": { "start": slot } });
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            { "fullUrl": format!("urn:uuid:{}", v.id), "resource": sr },
            { "fullUrl": format!("urn:wuqing:task:{}", v.id), "resource": task },
        ],
    })
}

async fn steps(st: &AppState, id: &str) -> ApiResult<Vec<Step>> {
    let rows = sqlx::query(&st.store.sql(
        "SELECT s.at_ms, s.user_id, u.username, s.org_id, s.action, s.state, s.note_enc \
         FROM health_referral_steps s LEFT JOIN users u ON u.id = s.user_id WHERE s.referral_id = $1 ORDER BY s.seq",
    ))
    .bind(id.to_string())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = col(row, "state")?;
        out.push(Step {
            at: ms_to_rfc3339(col(row, "at_ms")?),
            user_id: col(row, "user_id")?,
            username: col(row, "username")?,
            org_id: col(row, "org_id")?,
            action: col(row, "action")?,
            state: State::parse(&state).ok_or_else(|| StoreError::Corrupt("a referral step's state".into()))?,
            note: col::<Option<Vec<u8>>>(row, "note_enc")?
                .map(|b| st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt("a referral step's note".into())))
                .transpose()?,
        });
    }
    Ok(out)
}

/// Takes a step on a referral: the receiving institution accepts (optionally with the slot),
/// rejects (with the reason), records the arrival, completes, returns an up-referral's patient
/// to primary care (with the summary); the referring institution cancels (with the reason)
/// before the arrival. A step from the wrong state, or on a version that is no longer current,
/// is a 409.
#[utoipa::path(post, path = "/api/health/referrals/{id}/steps", tag = "health", params(("id" = String, Path)),
    request_body = StepBody,
    responses((status = 200, body = Referral), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn take_step(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<crate::records::Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<StepBody>,
) -> ApiResult<axum::Json<Referral>> {
    Ok(axum::Json(advance(&st, &keys, &c, &id, b).await?))
}

/// Takes a step on a referral as the clinician `c` (the service behind `POST …/{id}/steps`).
pub async fn advance(
    st: &AppState,
    keys: &crate::records::Keys,
    c: &Caller,
    id: &str,
    b: StepBody,
) -> ApiResult<Referral> {
    let id = id.to_string();
    let audit_action = format!("health.referral.{}", b.action.as_str());
    require_clinician(st, c, &audit_action, Some(&id)).await?;
    let Some(row) = row_of(&st.store, &id).await? else { return Err(ApiError::not_found("referral")) };
    let k = core(&row)?;
    let side = side_of(st, c, &k, &audit_action).await?;
    let now = now_ms();
    let note = text("note", b.note.as_deref(), MAX_NOTE, b.action.needs_note())?;
    let slot_ms = match b.action {
        Action::Accept => slot("slot", b.slot.as_deref(), now)?,
        _ if b.slot.is_some() => {
            return Err(ApiError::field(Code::InvalidField, "slot", "a slot is given on acceptance only"));
        }
        _ => None,
    };
    if let Some(v) = b.version.filter(|v| *v != k.version) {
        return Err(ApiError::new(
            Code::Conflict,
            format!("the referral is at version {}, not {v} (已被修改)", k.version),
        ));
    }
    let next = match referral::step(k.direction, k.state, side, b.action) {
        Ok(s) => s,
        Err(referral::Refusal::NotYourStep) => {
            let ev = Event::new(Actor::of(c), &audit_action, "referral", Some(&id), Outcome::Denied)
                .detail(json!({ "refusal": "not_your_step" }));
            audit::record(&st.store, ev).await?;
            let msg = match side {
                Side::From => "the receiving institution takes this step (由接收机构办理)",
                Side::To => "only the referring institution cancels (由转出机构撤销)",
            };
            return Err(ApiError { audited: true, ..ApiError::forbidden(msg) });
        }
        Err(referral::Refusal::NotReturnable) => {
            return Err(ApiError::new(Code::Conflict, "only an up-referral is returned (仅上转可回转)"));
        }
        Err(referral::Refusal::WrongState) => {
            return Err(ApiError::new(
                Code::Conflict,
                format!("cannot {} a referral that is {} (当前状态不允许)", b.action.as_str(), k.state.as_str()),
            ));
        }
    };
    let column = match next {
        State::Accepted => "accepted_ms",
        State::Arrived => "arrived_ms",
        State::Completed => "completed_ms",
        State::Returned => "returned_ms",
        _ => "closed_ms",
    };
    let mut tx = st.store.begin().await?;
    let done = sqlx::query(&st.store.sql(&format!(
        "UPDATE health_referrals SET state = $1, {column} = $2, slot_ms = COALESCE($3, slot_ms), updated_ms = $2, \
         version = version + 1 WHERE id = $4 AND version = $5"
    )))
    .bind(next.as_str())
    .bind(now)
    .bind(slot_ms)
    .bind(id.clone())
    .bind(k.version)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "the referral changed meanwhile; read it again (已被修改)"));
    }
    let seq = k.version + 1;
    insert_step(&st.store, &mut tx, &id, seq, c, b.action.as_str(), next, note.map(|n| st.cipher.encrypt(&n)), now)
        .await?;
    let ev = Event::new(Actor::of(c), &audit_action, "Patient", Some(&k.patient_id), Outcome::Success)
        .detail(json!({ "referral": id, "state": next.as_str() }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = row_of(&st.store, &id).await?.ok_or_else(|| ApiError::not_found("referral"))?;
    let r = records(st, keys);
    let mut v = view(st, &r, &row, now).await?;
    v.steps = Some(steps(st, &id).await?);
    Ok(v)
}

/// The referrals to and from the caller's institution, newest first; each patient listed is
/// audited as a read.
#[utoipa::path(get, path = "/api/health/referrals", tag = "health", params(Filter),
    responses((status = 200, body = Paged<Referral>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<crate::records::Keys>,
    Query(f): Query<Filter>,
) -> ApiResult<axum::Json<Paged<Referral>>> {
    require_clinician(&st, &c, "health.referral.list", None).await?;
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let mut conds = vec![];
    let mut args: Vec<String> = vec![];
    let mut arg = |v: String| {
        args.push(v);
        format!("${}", args.len())
    };
    match f.r#box.as_deref() {
        Some("incoming") => conds.push(format!("f.to_org = {}", arg(c.org_id.clone()))),
        Some("outgoing") => conds.push(format!("f.from_org = {}", arg(c.org_id.clone()))),
        None => {
            let (a, b) = (arg(c.org_id.clone()), arg(c.org_id.clone()));
            conds.push(format!("(f.to_org = {a} OR f.from_org = {b})"));
        }
        Some(_) => return Err(ApiError::bad_request("box is incoming or outgoing")),
    }
    if let Some(s) = f.state {
        conds.push(format!("f.state = {}", arg(s.as_str().to_string())));
    }
    if let Some(p) = &f.patient_id {
        conds.push(format!("f.patient_id = {}", arg(p.clone())));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM health_referrals f WHERE {} ORDER BY f.requested_ms DESC, f.id",
        conds.join(" AND ")
    );
    let r = records(&st, &keys);
    let now = now_ms();
    let overdue_only = f.overdue.unwrap_or(false);
    // The overdue filter depends on deadlines and visits computed per referral: each view is
    // computed once and paged in Rust.
    let (items, total) = if overdue_only {
        let mut keep = vec![];
        for row in bind_all(&st.store, &sql, &args).await? {
            let v = view(&st, &r, &row, now).await?;
            if v.overdue {
                keep.push(v);
            }
        }
        let total = keep.len() as i64;
        (keep.into_iter().skip(offset as usize).take(limit as usize).collect::<Vec<_>>(), total)
    } else {
        let page = bind_all(&st.store, &format!("{sql} LIMIT {limit} OFFSET {offset}"), &args).await?;
        let count = format!("SELECT COUNT(*) AS n FROM health_referrals f WHERE {}", conds.join(" AND "));
        let n = bind_all(&st.store, &count, &args).await?;
        let total = n.first().map(|r| col::<i64>(r, "n")).transpose()?.unwrap_or(0);
        let mut items = Vec::with_capacity(page.len());
        for row in &page {
            items.push(view(&st, &r, row, now).await?);
        }
        (items, total)
    };
    let listed = items.iter().map(|v| v.patient_id.as_str());
    crate::health_api::audit_listed(&st, &c, "health.referral.read", listed, Some(json!({ "interaction": "list" })))
        .await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

async fn bind_all(store: &Store, sql: &str, args: &[String]) -> ApiResult<Vec<sqlx::any::AnyRow>> {
    let sql = store.sql(sql);
    let mut q = sqlx::query(&sql);
    for a in args {
        q = q.bind(a.clone());
    }
    Ok(q.fetch_all(store.reader()).await.map_err(StoreError::from)?)
}

/// One institution's referral figures.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = ReferralFigures)]
pub struct Figures {
    pub org_id: String,
    pub org_name: Option<String>,
    /// Up- and down-referrals sent.
    pub sent_up: i64,
    pub sent_down: i64,
    pub received: i64,
    /// Received and rejected.
    pub rejected: i64,
    /// Received and not answered in time (still waiting past the deadline, or answered late).
    pub answered_late: i64,
    /// Follow-ups at this institution after a hand-back: done within two weeks, late, overdue,
    /// still due.
    pub follow_up_done: i64,
    pub follow_up_late: i64,
    pub follow_up_overdue: i64,
    pub follow_up_due: i64,
    /// done ÷ (done + late + overdue), when any is decided.
    pub follow_up_rate: Option<f64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// Referrals requested from this time (RFC 3339); the last 365 days by default.
    pub since: Option<String>,
}

/// Referral figures per institution (the health commission's staff: every institution; a
/// clinician: their own). Counts only: no patient is named.
#[utoipa::path(get, path = "/api/health/referrals/statistics", tag = "health", params(Period),
    responses((status = 200, body = Vec<Figures>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn statistics(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<crate::records::Keys>,
    Query(p): Query<Period>,
) -> ApiResult<axum::Json<Vec<Figures>>> {
    let regulator = is_health_regulator(&st, &c).await?;
    if !regulator {
        require_clinician(&st, &c, "health.referral.statistics", None).await?;
    }
    let now = now_ms();
    let since = match p.since.as_deref() {
        Some(s) => rfc3339_to_ms(s)
            .ok_or_else(|| ApiError::field(Code::InvalidField, "since", "an RFC 3339 time (时间格式错误)"))?,
        None => now - 365 * referral::DAY_MS,
    };
    let r = records(&st, &keys);
    let out = figures(&st, &r, since, now, (!regulator).then_some(c.org_id.as_str())).await?;
    let ev = Event::new(Actor::of(&c), "health.referral.statistics", "referral", None, Outcome::Success);
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(out))
}

/// The referral figures per institution for the referrals requested since `since`: every
/// institution's, or `only` one's.
pub async fn figures(st: &AppState, r: &Records, since: i64, now: i64, only: Option<&str>) -> ApiResult<Vec<Figures>> {
    let rows =
        sqlx::query(&st.store.sql(&format!(
            "SELECT {COLUMNS} FROM health_referrals f WHERE f.requested_ms >= $1 ORDER BY f.requested_ms"
        )))
        .bind(since)
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let mut by: BTreeMap<String, Figures> = BTreeMap::new();
    fn fig<'a>(by: &'a mut BTreeMap<String, Figures>, org: &str) -> &'a mut Figures {
        by.entry(org.to_string()).or_insert_with(|| Figures { org_id: org.to_string(), ..Default::default() })
    }
    for row in &rows {
        let k = core(row)?;
        if only.is_some_and(|o| k.from_org != o && k.to_org != o) {
            continue;
        }
        {
            let f = fig(&mut by, &k.from_org);
            match k.direction {
                Direction::Up => f.sent_up += 1,
                Direction::Down => f.sent_down += 1,
            }
        }
        {
            let f = fig(&mut by, &k.to_org);
            f.received += 1;
            if k.state == State::Rejected {
                f.rejected += 1;
            }
            let answer_by = referral::deadline(State::Requested, k.priority, &k.times).map(|d| d.1).unwrap_or(i64::MAX);
            let answered =
                k.times.accepted_ms.or(col::<Option<i64>>(row, "closed_ms")?.filter(|_| k.state == State::Rejected));
            let late = match answered {
                Some(a) => a > answer_by,
                None => k.state == State::Requested && now > answer_by,
            };
            if late {
                f.answered_late += 1;
            }
        }
        if let Some((fu, _)) = follow_up_of(r, &k, now).await? {
            let f = fig(&mut by, primary_org(&k));
            match fu {
                FollowUp::Done => f.follow_up_done += 1,
                FollowUp::Late => f.follow_up_late += 1,
                FollowUp::Overdue => f.follow_up_overdue += 1,
                FollowUp::Due => f.follow_up_due += 1,
            }
        }
    }
    let mut out: Vec<Figures> = by.into_values().filter(|f| only.is_none_or(|o| f.org_id == o)).collect();
    for f in &mut out {
        let decided = f.follow_up_done + f.follow_up_late + f.follow_up_overdue;
        f.follow_up_rate = (decided > 0).then(|| f.follow_up_done as f64 / decided as f64);
        f.org_name = kernel::orgs::get(&st.store, &f.org_id).await?.map(|o| o.name);
    }
    Ok(out)
}
