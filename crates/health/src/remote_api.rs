//! `/api/health/remote`: remote consultation and remote imaging and ECG reading between
//! institutions (`remote`), the report coming back as a DiagnosticReport in the patient's
//! record.
//!
//! A clinician asks another health institution about a patient in care at their own (the
//! question encrypted; imaging studies, ECG Observations or documents of the patient attached);
//! the reading institution's clinicians see it in their inbox and, while it is open, read the
//! patient's shared record (`Records::in_care`); they accept, decline with a reason, or report:
//! the report is written into the record as a FHIR DiagnosticReport (LOINC 11488-4 consult note,
//! 18748-4 imaging, 11524-6 ECG; `basedOn` the request as ServiceRequest), owned and sealed by
//! the reading institution, which the requester then reads. Deadlines (`remote::deadlines`) mark
//! requests overdue. Every request, read and step is audited against the patient.

use crate::access;
use crate::fhir_api::clinician_context;
use crate::health_api::records;
use crate::records::{Author, Change, Keys, Records, instant};
use crate::remote::{self, Action, Kind, Side, State};
use axum::extract::State as AxState;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read))
        .routes(routes!(take_step))
        .layer(axum::Extension(keys))
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, msg)
}

fn text(field: &str, s: Option<&str>, max: usize, required: bool) -> ApiResult<Option<String>> {
    match s.map(str::trim).filter(|t| !t.is_empty()) {
        None if required => Err(bad(field, "required (必填)")),
        None => Ok(None),
        Some(t) if t.chars().count() > max || t.chars().any(|c| c.is_control() && c != '\n') => {
            Err(bad(field, format!("up to {max} characters, no control characters")))
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// A request for a remote opinion or reading.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RemoteRequest)]
pub struct Request {
    pub id: String,
    pub kind: Kind,
    pub urgent: bool,
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub from_org: String,
    pub from_org_name: Option<String>,
    pub to_org: String,
    pub to_org_name: Option<String>,
    pub department: Option<String>,
    pub question: String,
    pub attachments: Vec<String>,
    pub state: State,
    pub requested: String,
    pub answer_by: String,
    pub report_by: String,
    pub overdue: bool,
    pub decline_reason: Option<String>,
    /// The report, `DiagnosticReport/{id}`, once written.
    pub report: Option<String>,
    pub reported: Option<String>,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewRemoteRequest)]
pub struct NewRequest {
    pub kind: Kind,
    pub patient_id: String,
    pub to_org_id: String,
    pub department: Option<String>,
    pub urgent: Option<bool>,
    /// The question (up to 2 000 characters, encrypted).
    pub question: String,
    /// Records of the patient as `Type/id` (an ImagingStudy, an ECG Observation, a
    /// DocumentReference…), at most 20.
    pub attachments: Option<Vec<String>>,
}

const COLUMNS: &str = "id, kind, urgent, patient_id, from_org, to_org, department, question_enc, attachments, state, \
    requested_ms, accepted_ms, reason_enc, report_id, reported_ms, updated_ms, version";

async fn row_of(st: &AppState, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&st.store.sql(&format!("SELECT {COLUMNS} FROM health_remote WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

fn decrypt(st: &AppState, b: Option<Vec<u8>>, what: &str) -> Result<Option<String>, StoreError> {
    b.map(|b| st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt(format!("a remote request's {what}")))).transpose()
}

async fn view(st: &AppState, r: &Records, row: &sqlx::any::AnyRow, now: i64) -> ApiResult<Request> {
    let kind = Kind::parse(&col::<String>(row, "kind")?).ok_or_else(|| StoreError::Corrupt("a kind".into()))?;
    let state = State::parse(&col::<String>(row, "state")?).ok_or_else(|| StoreError::Corrupt("a state".into()))?;
    let urgent = col::<i64>(row, "urgent")? == 1;
    let requested_ms: i64 = col(row, "requested_ms")?;
    let d = remote::deadlines(kind, urgent, requested_ms, col(row, "accepted_ms")?);
    let (from_org, to_org, patient_id): (String, String, String) =
        (col(row, "from_org")?, col(row, "to_org")?, col(row, "patient_id")?);
    let name = |o: String| async move { kernel::orgs::get(&st.store, &o).await.map(|x| x.map(|x| x.name)) };
    Ok(Request {
        id: col(row, "id")?,
        kind,
        urgent,
        patient_name: r.patient_name(&patient_id).await?,
        patient_id,
        from_org_name: name(from_org.clone()).await?,
        to_org_name: name(to_org.clone()).await?,
        from_org,
        to_org,
        department: col(row, "department")?,
        question: decrypt(st, col(row, "question_enc")?, "question")?.unwrap_or_default(),
        attachments: serde_json::from_str(&col::<String>(row, "attachments")?).unwrap_or_default(),
        state,
        requested: ms_to_rfc3339(requested_ms),
        answer_by: ms_to_rfc3339(d.0),
        report_by: ms_to_rfc3339(d.1),
        overdue: remote::overdue(state, now, d),
        decline_reason: decrypt(st, col(row, "reason_enc")?, "reason")?,
        report: col::<Option<String>>(row, "report_id")?.map(|id| format!("DiagnosticReport/{id}")),
        reported: col::<Option<i64>>(row, "reported_ms")?.map(ms_to_rfc3339),
        version: col(row, "version")?,
    })
}

/// Asks another institution for an opinion or a reading.
#[utoipa::path(post, path = "/api/health/remote", tag = "health", request_body = NewRequest,
    responses((status = 201, body = Request), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    kernel::http::Json(b): kernel::http::Json<NewRequest>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Request>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(ask(&st, &keys, &c, b).await?)))
}

/// The service behind `POST /api/health/remote`.
pub async fn ask(st: &AppState, keys: &Keys, c: &Caller, b: NewRequest) -> ApiResult<Request> {
    const ACTION: &str = "health.remote.create";
    if c.role != Role::Clinician {
        let ev = Event::new(Actor::of(c), ACTION, "Patient", Some(&b.patient_id), Outcome::Denied)
            .detail(json!({ "refusal": "not_clinician" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("clinicians ask for remote opinions (由医生发起)")
        });
    }
    let question = text("question", Some(&b.question), 2000, true)?.unwrap_or_default();
    let department = text("department", b.department.as_deref(), 50, false)?;
    if b.to_org_id == c.org_id {
        return Err(bad("to_org_id", "another institution than yours (不能发给本机构)"));
    }
    if crate::health_api::health_institution(st, &b.to_org_id).await?.is_none() {
        return Err(bad("to_org_id", "not a health institution (不是医疗机构)"));
    }
    let r = records(st, keys);
    if !r.exists("Patient", &b.patient_id).await? {
        return Err(ApiError::not_found("patient"));
    }
    let ctx = clinician_context(&r, c, &c.org_id, &b.patient_id, "ServiceRequest", None).await?;
    let who = access::Caller::Clinician { institution: c.org_id.clone() };
    if let Err(refusal) = access::decide(&who, access::Action::Read, &ctx) {
        let ev = Event::new(Actor::of(c), ACTION, "Patient", Some(&b.patient_id), Outcome::Denied)
            .detail(json!({ "refusal": format!("{refusal:?}") }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("only a patient in care at your institution (患者未在本机构就诊)")
        });
    }
    let seen = crate::health_api::attachments(&r, &b.patient_id, &b.attachments.unwrap_or_default(), 20).await?;
    if b.kind != Kind::Consultation && seen.is_empty() {
        return Err(bad("attachments", "a reading needs the study or the ECG to read (请附影像或心电图)"));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO health_remote (id, kind, urgent, patient_id, from_org, to_org, department, question_enc, attachments, \
         state, requested_by, requested_ms, updated_ms, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'requested', $10, $11, $11, 1)",
    ))
    .bind(id.clone())
    .bind(b.kind.as_str())
    .bind(i64::from(b.urgent.unwrap_or(false)))
    .bind(b.patient_id.clone())
    .bind(c.org_id.clone())
    .bind(b.to_org_id.clone())
    .bind(department)
    .bind(st.cipher.encrypt(&question))
    .bind(serde_json::to_string(&seen).unwrap_or_else(|_| "[]".into()))
    .bind(c.user_id.clone())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let ev = Event::new(Actor::of(c), ACTION, "Patient", Some(&b.patient_id), Outcome::Success)
        .detail(json!({ "remote": id, "kind": b.kind.as_str(), "to_org": b.to_org_id }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = row_of(st, &id).await?.ok_or_else(|| ApiError::not_found("remote request"))?;
    view(st, &r, &row, now).await
}

/// The caller's side, or the (audited) 404 of a request that does not exist for them.
async fn side_of(st: &AppState, c: &Caller, row: &sqlx::any::AnyRow, action: &str) -> ApiResult<Side> {
    if c.role == Role::Clinician {
        if c.org_id == col::<String>(row, "from_org")? {
            return Ok(Side::Requester);
        }
        if c.org_id == col::<String>(row, "to_org")? {
            return Ok(Side::Reader);
        }
    }
    let id: String = col(row, "id")?;
    let ev = Event::new(Actor::of(c), action, "remote", Some(&id), Outcome::Denied)
        .detail(json!({ "refusal": "not_a_party" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError { audited: true, ..ApiError::not_found("remote request") })
}

/// One request, to the two institutions' clinicians.
#[utoipa::path(get, path = "/api/health/remote/{id}", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = Request), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn read(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Request>> {
    let Some(row) = row_of(&st, &id).await? else { return Err(ApiError::not_found("remote request")) };
    side_of(&st, &c, &row, "health.remote.read").await?;
    let v = view(&st, &records(&st, &keys), &row, now_ms()).await?;
    let ev = Event::new(Actor::of(&c), "health.remote.read", "Patient", Some(&v.patient_id), Outcome::Success)
        .detail(json!({ "remote": id }));
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoteFilter {
    /// incoming (to be read by the caller's institution, the default) or outgoing.
    #[serde(rename = "box")]
    pub inbox: Option<String>,
    pub state: Option<String>,
    pub overdue: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The caller's institution's requests, in or out, newest first; each patient listed is
/// audited as a read.
#[utoipa::path(get, path = "/api/health/remote", tag = "health", params(RemoteFilter),
    responses((status = 200, body = Paged<Request>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Query(f): Query<RemoteFilter>,
) -> ApiResult<axum::Json<Paged<Request>>> {
    if c.role != Role::Clinician {
        let ev = Event::new(Actor::of(&c), "health.remote.read", "remote", None, Outcome::Denied)
            .detail(json!({ "refusal": "not_clinician" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("remote requests are the institutions' clinicians' (仅限医生)")
        });
    }
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let column = match f.inbox.as_deref().unwrap_or("incoming") {
        "incoming" => "to_org",
        "outgoing" => "from_org",
        _ => return Err(ApiError::field(Code::InvalidQuery, "box", "incoming or outgoing")),
    };
    if f.state.as_deref().is_some_and(|s| State::parse(s).is_none()) {
        return Err(ApiError::field(
            Code::InvalidQuery,
            "state",
            "requested, accepted, rejected, reported or cancelled",
        ));
    }
    // Overdue is computed: with it, the open ones are filtered here (an institution's open
    // requests are few).
    let sql = st
        .store
        .sql(&format!(
            "SELECT {COLUMNS} FROM health_remote WHERE {column} = $1 AND ($2 = '' OR state = $2) \
             ORDER BY requested_ms DESC, id LIMIT $3 OFFSET $4"
        ))
        .into_owned();
    let overdue_only = f.overdue.unwrap_or(false);
    let (lim, off) = if overdue_only { (5000, 0) } else { (limit, offset) };
    let rows = sqlx::query(&sql)
        .bind(c.org_id.clone())
        .bind(f.state.clone().unwrap_or_default())
        .bind(lim)
        .bind(off)
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let r = records(&st, &keys);
    let now = now_ms();
    let mut items = vec![];
    for row in &rows {
        let v = view(&st, &r, row, now).await?;
        if !overdue_only || v.overdue {
            items.push(v);
        }
    }
    let total = if overdue_only {
        let n = items.len() as i64;
        items = items.into_iter().skip(offset as usize).take(limit as usize).collect();
        n
    } else {
        let n =
            sqlx::query(&st.store.sql(&format!(
                "SELECT COUNT(*) AS n FROM health_remote WHERE {column} = $1 AND ($2 = '' OR state = $2)"
            )))
            .bind(c.org_id.clone())
            .bind(f.state.clone().unwrap_or_default())
            .fetch_one(st.store.reader())
            .await
            .map_err(StoreError::from)?;
        col(&n, "n")?
    };
    let listed = items.iter().map(|x| x.patient_id.as_str());
    crate::health_api::audit_listed(&st, &c, "health.remote.read", listed, None).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// The reading institution's report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RemoteReport)]
pub struct Report {
    /// 诊断意见 / 会诊意见: up to 4 000 characters.
    pub conclusion: String,
    /// ICD-10 codes of the conclusion, if any (e.g. I48.9).
    pub codes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RemoteStep)]
pub struct StepBody {
    pub action: Action,
    /// A declining's reason (required then).
    pub reason: Option<String>,
    /// The report (required to report).
    pub report: Option<Report>,
    pub version: Option<i64>,
}

/// Accepts, declines or reports (the reading institution), or withdraws (the requester).
#[utoipa::path(post, path = "/api/health/remote/{id}/steps", tag = "health", params(("id" = String, Path)),
    request_body = StepBody,
    responses((status = 200, body = Request), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn take_step(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<StepBody>,
) -> ApiResult<axum::Json<Request>> {
    Ok(axum::Json(advance(&st, &keys, &c, &id, b).await?))
}

/// The service behind `POST /api/health/remote/{id}/steps`.
pub async fn advance(st: &AppState, keys: &Keys, c: &Caller, id: &str, b: StepBody) -> ApiResult<Request> {
    let action_name = match b.action {
        Action::Accept => "health.remote.accept",
        Action::Reject => "health.remote.reject",
        Action::Report => "health.remote.report",
        Action::Cancel => "health.remote.cancel",
    };
    let Some(row) = row_of(st, id).await? else { return Err(ApiError::not_found("remote request")) };
    let side = side_of(st, c, &row, action_name).await?;
    let state = State::parse(&col::<String>(&row, "state")?).ok_or_else(|| StoreError::Corrupt("a state".into()))?;
    let version: i64 = col(&row, "version")?;
    if b.version.is_some_and(|v| v != version) {
        return Err(ApiError::new(Code::Conflict, format!("the request is at version {version} (已被修改)")));
    }
    let next = remote::step(state, b.action, side).map_err(|e| ApiError::new(Code::Conflict, e.to_string()))?;
    let reason = match b.action {
        Action::Reject => Some(text("reason", b.reason.as_deref(), 500, true)?.unwrap_or_default()),
        _ => None,
    };
    if b.action != Action::Report && b.report.is_some() {
        return Err(bad("report", "only a report carries one"));
    }
    let r = records(st, keys);
    let now = now_ms();
    let patient: String = col(&row, "patient_id")?;
    let mut report_id = None;
    if b.action == Action::Report {
        let Some(rep) = &b.report else { return Err(bad("report", "the report (报告)")) };
        let conclusion = text("report.conclusion", Some(&rep.conclusion), 4000, true)?.unwrap_or_default();
        let codes = rep.codes.clone().unwrap_or_default();
        for (i, code) in codes.iter().enumerate() {
            if !crate::fhir::validate::icd10_ok(code) {
                return Err(bad(format!("report.codes[{i}]"), "an ICD-10 code such as I48.9"));
            }
        }
        let kind = Kind::parse(&col::<String>(&row, "kind")?).ok_or_else(|| StoreError::Corrupt("a kind".into()))?;
        let (loinc, display, section) = kind.report_code();
        let dr_id = uuid::Uuid::now_v7().to_string();
        let attachments: Vec<String> = serde_json::from_str(&col::<String>(&row, "attachments")?).unwrap_or_default();
        let mut dr = json!({
            "resourceType": "DiagnosticReport",
            "id": dr_id,
            "identifier": [{ "system": "urn:wuqing:remote-request", "value": id }],
            "basedOn": [{ "reference": format!("ServiceRequest/{id}") }],
            "status": "final",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": section }] }],
            "code": { "coding": [{ "system": "http://loinc.org", "code": loinc, "display": display }] },
            "subject": { "reference": format!("Patient/{patient}") },
            "effectiveDateTime": instant(now),
            "issued": instant(now),
            "performer": [{ "reference": format!("Organization/{}", c.org_id) }],
            "resultsInterpreter": [{ "display": c.username }],
            "conclusion": conclusion,
        });
        if !codes.is_empty() {
            dr["conclusionCode"] = json!(
                codes
                    .iter()
                    .map(|k| json!({ "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": k }] }))
                    .collect::<Vec<_>>()
            );
        }
        let studies: Vec<_> =
            attachments.iter().filter(|a| a.starts_with("ImagingStudy/")).map(|a| json!({ "reference": a })).collect();
        if !studies.is_empty() {
            dr["imagingStudy"] = json!(studies);
        }
        let results: Vec<_> =
            attachments.iter().filter(|a| a.starts_with("Observation/")).map(|a| json!({ "reference": a })).collect();
        if !results.is_empty() {
            dr["result"] = json!(results);
        }
        let issues = crate::fhir::validate::validate(&dr, Some("DiagnosticReport"));
        if let Some(i) = issues.first() {
            return Err(bad("report", format!("{}: {}", i.path, i.diagnostics)));
        }
        let author = Author { user_id: c.user_id.clone(), name: c.username.clone(), org_id: c.org_id.clone() };
        let ev = Event::new(Actor::of(c), "health.remote.report", "Patient", Some(&patient), Outcome::Success)
            .detail(json!({ "remote": id, "report": dr_id }));
        let change = Change { rtype: "DiagnosticReport".into(), id: dr_id.clone(), resource: Some(dr), if_match: None };
        // The report first (its own transaction, sealed by the reading institution); a request
        // whose state then fails to move keeps its report, found by the identifier.
        r.commit(&author, "remote-report", vec![change], vec![ev]).await.map_err(|e| match e {
            crate::records::WriteError::Store(s) => ApiError::from(s),
            e => ApiError::new(Code::Conflict, e.to_string()),
        })?;
        report_id = Some(dr_id);
    }
    let mut tx = st.store.begin().await?;
    let done = sqlx::query(&st.store.sql(
        "UPDATE health_remote SET state = $1, updated_ms = $2, version = version + 1, \
         accepted_ms = CASE WHEN $3 = 1 AND accepted_ms IS NULL THEN $2 ELSE accepted_ms END, \
         reason_enc = COALESCE($4, reason_enc), report_id = COALESCE($5, report_id), \
         reported_ms = CASE WHEN $5 IS NULL THEN reported_ms ELSE $2 END, \
         answered_by = COALESCE(answered_by, $6) WHERE id = $7 AND version = $8",
    ))
    .bind(next.as_str())
    .bind(now)
    .bind(i64::from(matches!(b.action, Action::Accept | Action::Report)))
    .bind(reason.as_deref().map(|s| st.cipher.encrypt(s)))
    .bind(report_id.clone())
    .bind(if side == Side::Reader { Some(c.user_id.clone()) } else { None })
    .bind(id.to_string())
    .bind(version)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "the request changed meanwhile (已被修改)"));
    }
    let ev = Event::new(Actor::of(c), action_name, "Patient", Some(&patient), Outcome::Success)
        .detail(json!({ "remote": id, "from": state.as_str(), "to": next.as_str() }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = row_of(st, id).await?.ok_or_else(|| ApiError::not_found("remote request"))?;
    view(st, &r, &row, now).await
}
