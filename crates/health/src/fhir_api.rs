//! The FHIR R4 server at `/fhir` (JSON only): read, vread, create (and conditional create),
//! update, delete, history, search with paging and `_include`, `Patient/$everything`,
//! `$verify`, Provenance from the seals, and the CapabilityStatement generated from the tables
//! the code runs on. Errors are OperationOutcomes (`application/fhir+json`), never problem
//! documents.
//!
//! Access (PIPL; `crate::access`): every request is signed in (session cookie or bearer token).
//! A resident reads their own record; a clinician reads their institution's records, and a
//! patient's shared record when the patient is in care there, under the patient's Consent, or by
//! break-glass (`X-Break-Glass-Reason`, percent-encoded UTF-8: audited as `health.break_glass` and
//! kept for the security administrator's review); clinicians write for their institution and
//! change only its records; regulators and administrators read no records. Directory resources
//! (Organization, Practitioner, PractitionerRole) are readable by everyone signed in. Every read
//! of a patient's record is an audit record (`health.read`, target the patient) that the patient
//! can see; every refusal too.

use crate::access::{self, Action, Ground, Refusal};
use crate::consent;
use crate::fhir::bundle;
use crate::fhir::datetime::BEIJING;
use crate::fhir::index::{self, ParamType};
use crate::fhir::query::{self, Query};
use crate::fhir::validate::{self, Issue};
use crate::mpi_store::{self, MpiState};
use crate::records::{self, Author, Change, Records, Stored, WriteError};
use crate::retention::{self, RecordKind};
use crate::rx_api;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::AlreadyAudited;
use kernel::http::{AppState, Auth};
use kernel::store::{StoreError, now_ms};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A patient counts as in care at an institution for this long after an encounter there ends.
pub const IN_CARE_WINDOW_MS: i64 = 365 * 24 * 3600 * 1000;

/// Resources one `$everything` answers at most.
const EVERYTHING_MAX: i64 = 10_000;

/// Resource types whose records are a directory, readable by everyone signed in.
fn is_directory(rt: &str) -> bool {
    matches!(rt, "Organization" | "Practitioner" | "PractitionerRole")
}

/// What the server stores: the validator's resource types except Provenance, which the
/// platform writes itself (from its seals).
pub fn stored_types() -> impl Iterator<Item = &'static str> {
    SUPPORTED.iter().copied().filter(|t| !is_derived(t))
}

/// Types the platform renders from its own records (seals, the audit log): read and searched,
/// never written by clients.
fn is_derived(rt: &str) -> bool {
    matches!(rt, "Provenance" | "AuditEvent")
}

const SUPPORTED: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "MedicationRequest",
    "MedicationStatement",
    "DetectedIssue",
    "Immunization",
    "DocumentReference",
    "Consent",
    "CarePlan",
    "Group",
    "Provenance",
    "AuditEvent",
];

/// An error answered as an OperationOutcome.
#[derive(Debug)]
pub struct FhirError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
    /// The refusal is in the audit log already.
    pub audited: bool,
}

impl FhirError {
    pub fn new(status: StatusCode, code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self {
            status,
            issues: vec![Issue { code, path: String::new(), diagnostics: diagnostics.into() }],
            audited: false,
        }
    }
    fn invalid(issues: Vec<Issue>) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, issues, audited: false }
    }
    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", format!("{what} is not known (未找到)"))
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        let api = kernel::error::ApiError::from(e);
        let status = api.code.status();
        if status.is_server_error() {
            tracing::error!(error = %api.message, "FHIR store error");
        }
        Self::new(status, if status.is_server_error() { "exception" } else { "invalid" }, api.message)
    }
}

impl From<WriteError> for FhirError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotOwner(..) => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{e}: an institution changes only its own records (只能修改本机构的记录)"),
            ),
            WriteError::VersionConflict { .. } => Self::new(StatusCode::PRECONDITION_FAILED, "conflict", e.to_string()),
            WriteError::Missing(..) => Self::new(StatusCode::NOT_FOUND, "not-found", e.to_string()),
            WriteError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = validate::operation_outcome(&self.issues);
        let mut r = (self.status, [(header::CONTENT_TYPE, FHIR_JSON)], body.to_string()).into_response();
        if self.audited {
            r.extensions_mut().insert(AlreadyAudited);
        }
        r
    }
}

type FhirResult<T> = Result<T, FhirError>;

fn fhir(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], v.to_string()).into_response()
}

/// The caller, signed in; a missing or bad credential is a 401 OperationOutcome.
pub struct Who(pub Caller);

impl FromRequestParts<AppState> for Who {
    type Rejection = FhirError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, FhirError> {
        match Auth::from_request_parts(parts, state).await {
            Ok(Auth(c)) => Ok(Who(c)),
            Err(e) => {
                let status = e.code.status();
                Err(FhirError::new(
                    status,
                    if status == StatusCode::UNAUTHORIZED { "login" } else { "forbidden" },
                    e.message,
                ))
            }
        }
    }
}

/// The store of records for a request: the platform's store and cipher, the module's keys
/// (an `Extension` layer of the FHIR router).
impl FromRequestParts<AppState> for Records {
    type Rejection = FhirError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, FhirError> {
        let keys = parts.extensions.get::<records::Keys>().cloned().unwrap_or_default();
        Ok(Records { store: state.store.clone(), cipher: state.cipher.clone(), keys })
    }
}

/// The routes, nested at `/fhir`.
pub fn router(keys: records::Keys, mpi: MpiState) -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/", axum::routing::post(bundle))
        .route("/$import", axum::routing::post(bulk_import))
        .route("/AuditEvent", get(audit_events))
        .route("/AuditEvent/{id}", get(audit_event_read))
        .route("/{rt}", get(search).post(create))
        .route("/{rt}/{id}", get(read).put(update).delete(delete).post(type_op))
        .route("/{rt}/{id}/{op}", get(instance_op))
        .route("/{rt}/{id}/_history/{vid}", get(vread))
        .fallback(|| async { FhirError::new(StatusCode::NOT_FOUND, "not-supported", "no such FHIR interaction") })
        .method_not_allowed_fallback(|| async {
            FhirError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                "this interaction does not take that method",
            )
        })
        .layer(axum::Extension(keys))
        .layer(axum::Extension(mpi))
}

type Seg = axum::extract::Path<Vec<(String, String)>>;

/// Path segments by name, checked: a supported type, ids of R4 form.
struct Target {
    rt: String,
    id: Option<String>,
    op: Option<String>,
    vid: Option<String>,
}

fn target(p: Result<Seg, axum::extract::rejection::PathRejection>) -> FhirResult<Target> {
    let axum::extract::Path(segs) =
        p.map_err(|e| FhirError::new(StatusCode::BAD_REQUEST, "invalid", format!("bad path: {}", e.body_text())))?;
    let get = |k: &str| segs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let rt = get("rt").unwrap_or_default();
    if !SUPPORTED.contains(&rt.as_str()) {
        let shown: String = rt.chars().take(40).collect();
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("resource type {shown:?} is not supported"),
        ));
    }
    let id = get("id");
    if let Some(i) = &id {
        if !validate::is_id(i) && !i.starts_with('$') {
            return Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "an id is 1 to 64 letters, digits, '-' or '.'",
            ));
        }
    }
    Ok(Target { rt, id, op: get("op"), vid: get("vid") })
}

fn author(c: &Caller) -> Author {
    Author { user_id: c.user_id.clone(), name: c.username.clone(), org_id: c.org_id.clone() }
}

/// The caller as the access policy sees them.
async fn policy_caller(r: &Records, c: &Caller) -> FhirResult<access::Caller> {
    Ok(match c.role {
        Role::Resident => access::Caller::Resident { patient: own_patient(r, c).await? },
        Role::Clinician => access::Caller::Clinician { institution: c.org_id.clone() },
        Role::Regulator => access::Caller::Regulator,
        _ => access::Caller::Other,
    })
}

/// A resident's own Patient: the one whose citizen-ID identifier is the account's.
pub(crate) async fn own_patient(r: &Records, c: &Caller) -> Result<Option<String>, StoreError> {
    let Some(u) = kernel::users::by_id(&r.store, &c.user_id).await? else { return Ok(None) };
    let Some(enc) = u.citizen_id_enc else { return Ok(None) };
    let Ok(cid) = r.cipher.decrypt(&enc) else { return Ok(None) };
    r.patient_by_citizen_bidx(&r.cipher.blind_index(&cid)).await
}

fn break_glass_reason(h: &HeaderMap) -> Option<String> {
    let raw = h.get("x-break-glass-reason")?.to_str().ok()?;
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    Some(decoded.chars().take(500).collect())
}

fn ground_name(g: &Ground) -> &'static str {
    match g {
        Ground::OwnRecord => "own_record",
        Ground::InCare => "in_care",
        Ground::Consent => "consent",
        Ground::BreakGlass(_) => "break_glass",
        Ground::OwnInstitution => "own_institution",
        Ground::Aggregate => "aggregate",
    }
}

fn refusal_text(r: Refusal) -> &'static str {
    match r {
        Refusal::NotYourRecord => "residents read their own record only (居民只能查看本人档案)",
        Refusal::NotInCare => {
            "the patient is not in care at your institution and has not consented; break-glass needs a stated reason \
             (患者未在本机构就诊且未授权)"
        }
        Refusal::ConsentDenies => "the patient's consent refuses this access (患者已拒绝授权)",
        Refusal::NotYourInstitution => "an institution writes only its own records (只能修改本机构的记录)",
        Refusal::RecordsNotForRole => "this role reads statistics, not patient records (该角色不能查看个人档案)",
        Refusal::ReasonMissing => "break-glass needs a reason of at least 4 characters (紧急访问须说明理由)",
    }
}

fn refusal_code(r: Refusal) -> &'static str {
    match r {
        Refusal::NotYourRecord => "not_your_record",
        Refusal::NotInCare => "not_in_care",
        Refusal::ConsentDenies => "consent_denies",
        Refusal::NotYourInstitution => "not_your_institution",
        Refusal::RecordsNotForRole => "records_not_for_role",
        Refusal::ReasonMissing => "reason_missing",
    }
}

/// Decides whether the caller may read the record of `patient` (for a resource of type `rt`
/// owned by `owner`, when one is at hand); refusals are audited here.
async fn may_read(
    r: &Records,
    c: &Caller,
    who: &access::Caller,
    patient: &str,
    rt: &str,
    owner: Option<&str>,
    headers: &HeaderMap,
) -> FhirResult<Ground> {
    if let (access::Caller::Clinician { institution }, Some(o)) = (who, owner) {
        if institution == o {
            return Ok(Ground::OwnInstitution);
        }
    }
    let ctx = match who {
        access::Caller::Clinician { institution } => {
            clinician_context(r, c, institution, patient, rt, break_glass_reason(headers)).await?
        }
        _ => access::Context { patient: patient.to_string(), ..Default::default() },
    };
    match access::decide(who, Action::Read, &ctx) {
        Ok(g) => {
            if let Ground::BreakGlass(reason) = &g {
                record_break_glass(r, c, patient, reason).await?;
            }
            Ok(g)
        }
        Err(refusal) => {
            let ev = Event::new(Actor::of(c), "health.read", "Patient", Some(patient), Outcome::Denied)
                .detail(json!({ "resource_type": rt, "refusal": refusal_code(refusal) }));
            audit::record(&r.store, ev).await?;
            Err(FhirError {
                audited: true,
                ..FhirError::new(StatusCode::FORBIDDEN, "forbidden", refusal_text(refusal))
            })
        }
    }
}

/// Keeps a break-glass access for the security administrator's review, with its audit record.
async fn record_break_glass(r: &Records, c: &Caller, patient: &str, reason: &str) -> FhirResult<()> {
    let mut tx = r.store.begin().await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    sqlx::query(&r.store.sql(
        "INSERT INTO health_break_glass (id, user_id, org_id, patient_id, reason_enc, at_ms, until_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    ))
    .bind(id.clone())
    .bind(c.user_id.clone())
    .bind(c.org_id.clone())
    .bind(patient.to_string())
    .bind(r.cipher.encrypt(reason))
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    // The reason may name the patient's condition: it stays encrypted, out of the audit detail.
    let ev = Event::new(Actor::of(c), "health.break_glass", "Patient", Some(patient), Outcome::Success)
        .detail(json!({ "grant": id }));
    audit::append(&r.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::warn!(user = %c.user_id, grant = %id, "break-glass access to a patient's record");
    Ok(())
}

/// Audits the reads of these patients' records (one record per patient).
async fn audit_reads(
    r: &Records,
    c: &Caller,
    reads: &BTreeMap<String, (Ground, BTreeSet<String>)>,
    how: &str,
) -> FhirResult<()> {
    for (patient, (ground, types)) in reads {
        let ev = Event::new(Actor::of(c), "health.read", "Patient", Some(patient), Outcome::Success)
            .detail(json!({ "ground": ground_name(ground), "interaction": how, "resource_types": types }));
        audit::record(&r.store, ev).await?;
    }
    Ok(())
}

/// A read of a resource of no patient's record but naming patients (a Group's members), by its
/// institution.
async fn audit_institution_read(r: &Records, c: &Caller, s: &Stored, how: &str) -> FhirResult<()> {
    let ev = Event::new(Actor::of(c), "health.read", &s.rtype, Some(&s.id), Outcome::Success)
        .detail(json!({ "ground": "own_institution", "interaction": how }));
    audit::record(&r.store, ev).await?;
    Ok(())
}

/// Clinical records are for residents and clinicians; others are told so (and audited).
async fn require_reader(r: &Records, c: &Caller, rt: &str) -> FhirResult<access::Caller> {
    let who = policy_caller(r, c).await?;
    if is_directory(rt) {
        return Ok(who);
    }
    if matches!(who, access::Caller::Regulator | access::Caller::Other) {
        let ev = Event::new(Actor::of(c), "health.read", rt, None, Outcome::Denied)
            .detail(json!({ "refusal": refusal_code(Refusal::RecordsNotForRole) }));
        audit::record(&r.store, ev).await?;
        return Err(FhirError {
            audited: true,
            ..FhirError::new(StatusCode::FORBIDDEN, "forbidden", refusal_text(Refusal::RecordsNotForRole))
        });
    }
    Ok(who)
}

/// The Patient's demographic details a clinician without a ground sees: who, not what.
fn masked_patient(mut p: Value) -> Value {
    if let Some(ids) = p.get_mut("identifier").and_then(Value::as_array_mut) {
        for i in ids {
            if let Some(v) = i["value"].as_str() {
                let masked = if i["system"] == crate::generate::CITIZEN_ID_SYSTEM {
                    kernel::crypto::mask_citizen_id(v)
                } else {
                    let n = v.chars().count();
                    v.chars().enumerate().map(|(k, ch)| if k + 4 < n { '*' } else { ch }).collect()
                };
                i["value"] = Value::String(masked);
            }
        }
    }
    if let Some(o) = p.as_object_mut() {
        for k in ["telecom", "address", "contact", "photo", "text"] {
            o.remove(k);
        }
        let meta = o.entry("meta").or_insert_with(|| json!({}));
        meta["security"] =
            json!([{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "MASKED" }]);
    }
    p
}

/// Reads one resource for the caller: the body to answer, with the read audited.
async fn readable(r: &Records, c: &Caller, s: Stored, headers: &HeaderMap, how: &str) -> FhirResult<Value> {
    let who = require_reader(r, c, &s.rtype).await?;
    if is_directory(&s.rtype) {
        return Ok(s.body);
    }
    let Some(patient) = s.patient_id.clone() else {
        // A clinical resource without a patient: its institution's alone.
        return match &who {
            access::Caller::Clinician { institution } if *institution == s.owner_org => {
                audit_institution_read(r, c, &s, how).await?;
                Ok(s.body)
            }
            _ => Err(FhirError::not_found(&format!("{}/{}", s.rtype, s.id))),
        };
    };
    match may_read(r, c, &who, &patient, &s.rtype, Some(&s.owner_org), headers).await {
        Ok(g) => {
            let mut m = BTreeMap::new();
            m.insert(patient, (g, BTreeSet::from([s.rtype.clone()])));
            audit_reads(r, c, &m, how).await?;
            Ok(s.body)
        }
        // Finding a patient is not reading their record: a clinician sees who it is, masked.
        Err(e)
            if s.rtype == "Patient"
                && matches!(who, access::Caller::Clinician { .. })
                && e.status == StatusCode::FORBIDDEN =>
        {
            Ok(masked_patient(s.body))
        }
        Err(e) => Err(e),
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{version}\"")).unwrap_or(HeaderValue::from_static("W/\"0\""))
}

fn resource_response(status: StatusCode, s: &Stored, body: &Value) -> Response {
    let mut resp = fhir(status, body);
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag(s.version));
    if let Ok(v) = HeaderValue::from_str(&httpdate(s.last_updated_ms)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/fhir/{}/{}/_history/{}", s.rtype, s.id, s.version)) {
        if status == StatusCode::CREATED {
            h.insert(header::LOCATION, v.clone());
        }
        h.insert(header::CONTENT_LOCATION, v);
    }
    resp
}

fn httpdate(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A deleted version answers 410, once the caller was found to read this type at all (a deletion
/// tells nothing to a stranger).
async fn gone_if_deleted(r: &Records, c: &Caller, s: &Stored) -> FhirResult<()> {
    if !s.deleted {
        return Ok(());
    }
    require_reader(r, c, &s.rtype).await?;
    Err(FhirError::new(
        StatusCode::GONE,
        "deleted",
        format!("{}/{} version {} is a deletion", s.rtype, s.id, s.version),
    ))
}

async fn read(
    r: Records,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let t = target(p)?;
    let id = t.id.unwrap_or_default();
    if t.rt == "Provenance" {
        return provenance(&r, &c, &id, &headers).await;
    }
    let Some(s) = r.current(&t.rt, &id).await? else {
        return Err(FhirError::not_found(&format!("{}/{id}", t.rt)));
    };
    gone_if_deleted(&r, &c, &s).await?;
    let body = readable(&r, &c, s.clone(), &headers, "read").await?;
    Ok(resource_response(StatusCode::OK, &s, &body))
}

async fn vread(
    r: Records,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let t = target(p)?;
    let id = t.id.unwrap_or_default();
    let vid: i64 = t
        .vid
        .as_deref()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| FhirError::new(StatusCode::BAD_REQUEST, "invalid", "a version id is a positive number"))?;
    let Some(s) = r.version(&t.rt, &id, vid).await? else {
        return Err(FhirError::not_found(&format!("{}/{id}/_history/{vid}", t.rt)));
    };
    gone_if_deleted(&r, &c, &s).await?;
    let body = readable(&r, &c, s.clone(), &headers, "vread").await?;
    Ok(resource_response(StatusCode::OK, &s, &body))
}

/// The body of a write: JSON of the given type, valid R4, else an OperationOutcome.
fn resource_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, rt: &str) -> FhirResult<Value> {
    let v = json_body(headers, body)?;
    let issues = validate::validate(&v, Some(rt));
    if !issues.is_empty() {
        return Err(FhirError::invalid(issues));
    }
    Ok(v)
}

/// A JSON body (`application/fhir+json` or `application/json`), else an OperationOutcome.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> FhirResult<Value> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let base = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if base != "application/fhir+json" && base != "application/json" {
            return Err(FhirError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "send resources as application/fhir+json",
            ));
        }
    }
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            FhirError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-costly", "the request body is too large")
        } else {
            FhirError::new(StatusCode::BAD_REQUEST, "invalid", e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::new(StatusCode::BAD_REQUEST, "structure", format!("not JSON: {e}")))
}

/// A clinician, writing for their institution; others are refused (audited).
async fn require_writer(r: &Records, c: &Caller, rt: &str) -> FhirResult<()> {
    if is_derived(rt) {
        return Err(FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("{rt} is written by the platform (every write is sealed, every access audited)"),
        ));
    }
    if c.role == Role::Clinician {
        return Ok(());
    }
    let ev = Event::new(Actor::of(c), "health.write", rt, None, Outcome::Denied)
        .detail(json!({ "refusal": refusal_code(Refusal::RecordsNotForRole) }));
    audit::record(&r.store, ev).await?;
    Err(FhirError {
        audited: true,
        ..FhirError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only clinicians write records, for their institution (仅医生可写入)",
        )
    })
}

/// A clinical resource must belong to a patient the platform knows.
async fn check_patient(r: &Records, v: &Value) -> FhirResult<()> {
    check_patient_among(r, v, &BTreeSet::new()).await
}

/// [`check_patient`], the Patients a transaction creates counting as known.
async fn check_patient_among(r: &Records, v: &Value, created: &BTreeSet<String>) -> FhirResult<()> {
    let rt = v["resourceType"].as_str().unwrap_or_default();
    if rt == "Patient" || !records::is_clinical(rt) {
        return Ok(());
    }
    match records::patient_of(v) {
        Some(p) if created.contains(&p) || r.exists("Patient", &p).await? => Ok(()),
        Some(p) => Err(FhirError::invalid(vec![Issue {
            code: "not-found",
            path: format!("{rt}.subject"),
            diagnostics: format!("Patient/{p} is not known"),
        }])),
        None => Err(FhirError::invalid(vec![Issue {
            code: "required",
            path: rt.to_string(),
            diagnostics: format!("a {rt} names its patient (Patient/…)"),
        }])),
    }
}

fn write_audit(c: &Caller, action: &str, s_rt: &str, id: &str, patient: Option<&str>) -> Event {
    Event::new(Actor::of(c), action, "Patient", patient, Outcome::Success)
        .detail(json!({ "resource": format!("{s_rt}/{id}") }))
}

async fn create(
    r: Records,
    axum::Extension(mpi): axum::Extension<MpiState>,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let t = target(p)?;
    require_writer(&r, &c, &t.rt).await?;
    let v = resource_body(&headers, body, &t.rt)?;
    check_patient(&r, &v).await?;
    if let Some(cond) = headers.get("if-none-exist").and_then(|v| v.to_str().ok()) {
        if let Some(s) = if_none_exist(&r, &t.rt, cond).await? {
            let body = readable(&r, &c, s.clone(), &headers, "conditional-create").await?;
            return Ok(resource_response(StatusCode::OK, &s, &body));
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let patient = if t.rt == "Patient" { Some(id.clone()) } else { records::patient_of(&v) };
    let ev = write_audit(&c, "health.create", &t.rt, &id, patient.as_deref());
    let (findings, mut events) = prescription_check(&r, &c, &v, &id, &headers).await?;
    events.insert(0, ev);
    let mut changes = vec![Change { rtype: t.rt.clone(), id, resource: Some(v), if_match: None }];
    changes.extend(findings);
    let (stored, _) = r.commit(&author(&c), "create", changes, events).await?;
    mpi_store::after_patients(&r, &mpi, &Actor::of(&c), &stored).await?;
    let s = &stored[0];
    Ok(with_issues(resource_response(StatusCode::CREATED, s, &s.body), stored.len() - 1))
}

/// The prescription check of a MedicationRequest about to be written (`rx_api`): its findings
/// as DetectedIssues to write with it, and the audit records of an override; a `high` finding
/// without an override reason refuses the request (422), audited.
async fn prescription_check(
    r: &Records,
    c: &Caller,
    v: &Value,
    id: &str,
    headers: &HeaderMap,
) -> FhirResult<(Vec<Change>, Vec<Event>)> {
    if !rx_api::is_checked(v) {
        return Ok((vec![], vec![]));
    }
    let outcome = rx_api::check(r, v, id).await?;
    let patient = records::patient_of(v).unwrap_or_default();
    let rules: Vec<&str> = outcome.findings.iter().map(|f| f.rule.as_str()).collect();
    let reason = headers
        .get("x-override-reason")
        .and_then(|h| h.to_str().ok())
        .and_then(|raw| percent_encoding::percent_decode_str(raw).decode_utf8().ok())
        .map(|s| s.trim().chars().take(500).collect::<String>());
    let mut events = vec![];
    if outcome.blocks() {
        match reason.as_deref() {
            Some(why) if why.chars().count() >= rx_api::MIN_OVERRIDE_CHARS => {
                // The reason may name the patient's condition: kept in the DetectedIssue, not here.
                events.push(
                    Event::new(Actor::of(c), "health.rx.override", "Patient", Some(&patient), Outcome::Success)
                        .detail(json!({ "request": format!("MedicationRequest/{id}"), "rules": rules, "knowledge_base": outcome.kb_version })),
                );
            }
            given => {
                let ev = Event::new(Actor::of(c), "health.rx.blocked", "Patient", Some(&patient), Outcome::Denied)
                    .detail(json!({ "rules": rules, "knowledge_base": outcome.kb_version }));
                audit::record(&r.store, ev).await?;
                let mut issues = rx_api::issues(&outcome);
                if given.is_some() {
                    issues.insert(
                        0,
                        Issue {
                            code: "business-rule",
                            path: "MedicationRequest".into(),
                            diagnostics: "an override needs a reason of at least 4 characters (越权使用须说明理由)"
                                .into(),
                        },
                    );
                }
                return Err(FhirError { audited: true, ..FhirError::invalid(issues) });
            }
        }
    }
    let at = records::instant(now_ms());
    let override_reason = reason.filter(|_| outcome.blocks());
    let changes = rx_api::detected_issues(&outcome, &patient, id, &c.username, &at, override_reason.as_deref())
        .into_iter()
        .map(|(did, dv)| Change { rtype: "DetectedIssue".into(), id: did, resource: Some(dv), if_match: None })
        .collect();
    Ok((changes, events))
}

/// Says how many DetectedIssues a prescription check wrote with the resource.
fn with_issues(mut resp: Response, n: usize) -> Response {
    if n > 0 {
        resp.headers_mut().insert("x-detected-issues", HeaderValue::from(n));
    }
    resp
}

fn if_match(headers: &HeaderMap) -> FhirResult<Option<i64>> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let s = v.to_str().unwrap_or_default().trim();
    let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
    s.parse::<i64>()
        .map(Some)
        .map_err(|_| FhirError::new(StatusCode::BAD_REQUEST, "invalid", "If-Match takes a version: W/\"3\""))
}

async fn update(
    r: Records,
    axum::Extension(mpi): axum::Extension<MpiState>,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let t = target(p)?;
    let id = t.id.unwrap_or_default();
    require_writer(&r, &c, &t.rt).await?;
    let v = resource_body(&headers, body, &t.rt)?;
    if v["id"].as_str() != Some(id.as_str()) {
        return Err(FhirError::new(StatusCode::BAD_REQUEST, "invalid", "the resource's id must be the one in the URL"));
    }
    check_patient(&r, &v).await?;
    let cur = r.current(&t.rt, &id).await?;
    if let Some(cur) = &cur {
        if cur.owner_org != c.org_id {
            let ev = Event::new(Actor::of(&c), "health.update", "Patient", cur.patient_id.as_deref(), Outcome::Denied)
                .detail(json!({ "resource": format!("{}/{id}", t.rt), "refusal": "not_your_institution" }));
            audit::record(&r.store, ev).await?;
            return Err(FhirError {
                audited: true,
                ..FhirError::new(StatusCode::FORBIDDEN, "forbidden", refusal_text(Refusal::NotYourInstitution))
            });
        }
    }
    let patient = if t.rt == "Patient" { Some(id.clone()) } else { records::patient_of(&v) };
    let ev = write_audit(&c, "health.update", &t.rt, &id, patient.as_deref());
    let (findings, mut events) = prescription_check(&r, &c, &v, &id, &headers).await?;
    events.insert(0, ev);
    let mut changes = vec![Change { rtype: t.rt.clone(), id, resource: Some(v), if_match: if_match(&headers)? }];
    changes.extend(findings);
    let (stored, _) = r.commit(&author(&c), "update", changes, events).await?;
    mpi_store::after_patients(&r, &mpi, &Actor::of(&c), &stored).await?;
    let s = &stored[0];
    let status = if s.version == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok(with_issues(resource_response(status, s, &s.body), stored.len() - 1))
}

/// The retention rule a record falls under (its encounter's class), and the date it counts from.
async fn retention_of(r: &Records, s: &Stored) -> FhirResult<Option<RecordKind>> {
    // Lists and directories are not medical records.
    if is_directory(&s.rtype) || matches!(s.rtype.as_str(), "Consent" | "Group") {
        return Ok(None);
    }
    let class = |e: &Value| e["class"]["code"].as_str().map(RecordKind::of_encounter_class);
    if s.rtype == "Encounter" {
        return Ok(Some(class(&s.body).unwrap_or(RecordKind::Outpatient)));
    }
    if let Some(enc) = s.body["encounter"]["reference"].as_str().and_then(|x| x.strip_prefix("Encounter/")) {
        if let Some(e) = r.current("Encounter", enc).await? {
            return Ok(Some(class(&e.body).unwrap_or(RecordKind::Outpatient)));
        }
    }
    Ok(Some(RecordKind::Outpatient))
}

fn ymd(ms: i64) -> (i32, u32, u32) {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(BEIJING);
    (t.year(), t.month() as u32, t.day() as u32)
}

/// Refuses deleting a record inside its retention period (电子病历应用管理规范).
async fn check_retention(r: &Records, cur: &Stored) -> FhirResult<()> {
    let Some(kind) = retention_of(r, cur).await? else { return Ok(()) };
    let created = r.created_ms(&cur.rtype, &cur.id).await?.unwrap_or(cur.last_updated_ms);
    if let Err((y, m, d)) = retention::may_delete(kind, ymd(created), ymd(now_ms())) {
        return Err(FhirError::new(
            StatusCode::CONFLICT,
            "business-rule",
            format!(
                "{} records are kept {} years (电子病历应用管理规范): {}/{} may be deleted from {y:04}-{m:02}-{d:02}; \
                 mark an erroneous record entered-in-error instead",
                match kind {
                    RecordKind::Outpatient => "outpatient",
                    RecordKind::Inpatient => "inpatient",
                },
                kind.years(),
                cur.rtype,
                cur.id
            ),
        ));
    }
    Ok(())
}

async fn delete(
    r: Records,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
) -> FhirResult<Response> {
    let t = target(p)?;
    let id = t.id.unwrap_or_default();
    require_writer(&r, &c, &t.rt).await?;
    let Some(cur) = r.current(&t.rt, &id).await? else {
        return Err(FhirError::not_found(&format!("{}/{id}", t.rt)));
    };
    if cur.deleted {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if cur.owner_org != c.org_id {
        let ev = Event::new(Actor::of(&c), "health.delete", "Patient", cur.patient_id.as_deref(), Outcome::Denied)
            .detail(json!({ "resource": format!("{}/{id}", t.rt), "refusal": "not_your_institution" }));
        audit::record(&r.store, ev).await?;
        return Err(FhirError {
            audited: true,
            ..FhirError::new(StatusCode::FORBIDDEN, "forbidden", refusal_text(Refusal::NotYourInstitution))
        });
    }
    check_retention(&r, &cur).await?;
    let ev = write_audit(&c, "health.delete", &t.rt, &id, cur.patient_id.as_deref());
    let change = Change { rtype: t.rt.clone(), id, resource: None, if_match: None };
    r.commit(&author(&c), "delete", vec![change], vec![ev]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `_history`, `$everything`, `$verify` on an instance.
async fn instance_op(
    r: Records,
    State(st): State<AppState>,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let t = target(p)?;
    let id = t.id.clone().unwrap_or_default();
    match t.op.as_deref() {
        Some("_history") => history(&r, &c, &t.rt, &id, &headers, &st).await,
        Some("$everything") if t.rt == "Patient" => everything(&r, &c, &id, q.as_deref(), &headers, &st).await,
        Some("$export") if t.rt == "Patient" => export(&r, &c, &id, &headers).await,
        Some("$export") if t.rt == "Group" => group_export(&r, &c, &id, &headers).await,
        Some("$verify") => verify(&r, &c, &t.rt, &id, &headers).await,
        _ => Err(FhirError::new(StatusCode::NOT_FOUND, "not-supported", "no such operation on this resource type")),
    }
}

fn base_url(headers: &HeaderMap, st: &AppState) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(*c)).collect();
    let scheme = if st.config.raw.server.tls_cert.is_some() { "https" } else { "http" };
    format!("{scheme}://{host}/fhir")
}

fn entry(base: &str, s: &Stored, body: Value, mode: Option<&str>) -> Value {
    let mut e = json!({ "fullUrl": format!("{base}/{}/{}", s.rtype, s.id), "resource": body });
    if let Some(m) = mode {
        e["search"] = json!({ "mode": m });
    }
    e
}

async fn history(
    r: &Records,
    c: &Caller,
    rt: &str,
    id: &str,
    headers: &HeaderMap,
    st: &AppState,
) -> FhirResult<Response> {
    let versions = r.history(rt, id, 1000).await?;
    let Some(latest) = versions.first().cloned() else {
        return Err(FhirError::not_found(&format!("{rt}/{id}")));
    };
    // Access is decided once, on the resource as it is now (a deletion keeps its compartment).
    let probe = Stored { deleted: false, ..latest };
    readable(r, c, probe, headers, "history").await?;
    let base = base_url(headers, st);
    let entries: Vec<Value> = versions
        .iter()
        .map(|s| {
            let (method, status) = match (s.deleted, s.version) {
                (true, _) => ("DELETE", "204"),
                (false, 1) => ("POST", "201"),
                _ => ("PUT", "200"),
            };
            let mut e = json!({
                "fullUrl": format!("{base}/{rt}/{id}"),
                "request": { "method": method, "url": format!("{rt}/{id}") },
                "response": { "status": status, "etag": format!("W/\"{}\"", s.version),
                    "lastModified": records::instant(s.last_updated_ms) },
            });
            if !s.deleted {
                e["resource"] = s.body.clone();
            }
            e
        })
        .collect();
    let b = json!({ "resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries });
    Ok(fhir(StatusCode::OK, &b))
}

/// A patient's whole record for the caller (the Patient, their compartment, the organisations
/// and practitioners it refers to), the read audited.
async fn whole_record(r: &Records, c: &Caller, id: &str, headers: &HeaderMap, how: &str) -> FhirResult<Vec<Stored>> {
    let who = require_reader(r, c, "Patient").await?;
    let Some(p) = r.current("Patient", id).await?.filter(|s| !s.deleted) else {
        return Err(FhirError::not_found(&format!("Patient/{id}")));
    };
    let ground = may_read(r, c, &who, id, "Patient", None, headers).await?;
    let items = r.compartment(id, EVERYTHING_MAX).await?;
    let mut wanted: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for s in std::iter::once(&p).chain(items.iter()) {
        collect_refs(&s.body, &mut wanted);
    }
    let mut extra = vec![];
    for (rt, ids) in wanted {
        let ids: Vec<String> = ids.into_iter().collect();
        extra.extend(r.many(rt, &ids).await?);
    }
    let types: BTreeSet<String> = items.iter().map(|s| s.rtype.clone()).collect();
    let mut m = BTreeMap::new();
    m.insert(id.to_string(), (ground, types));
    audit_reads(r, c, &m, how).await?;
    Ok(std::iter::once(p).chain(items.into_iter().filter(|s| s.rtype != "Patient")).chain(extra).collect())
}

async fn everything(
    r: &Records,
    c: &Caller,
    id: &str,
    _q: Option<&str>,
    headers: &HeaderMap,
    st: &AppState,
) -> FhirResult<Response> {
    let all = whole_record(r, c, id, headers, "everything").await?;
    let base = base_url(headers, st);
    let entries: Vec<Value> = all.iter().map(|s| entry(&base, s, s.body.clone(), Some("match"))).collect();
    let b = json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries });
    Ok(fhir(StatusCode::OK, &b))
}

/// `GET /fhir/Patient/<id>/$export`: the patient's whole record as Bulk Data NDJSON (one
/// resource per line), for a transfer or the patient's own copy.
async fn export(r: &Records, c: &Caller, id: &str, headers: &HeaderMap) -> FhirResult<Response> {
    let all = whole_record(r, c, id, headers, "export").await?;
    let mut out = String::new();
    for s in &all {
        out.push_str(&s.body.to_string());
        out.push('\n');
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/fhir+ndjson"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"patient-record.ndjson\""),
        ],
        out,
    )
        .into_response())
}

/// Members a group export takes at most (each member's record is read whole).
const GROUP_EXPORT_MAX: usize = 500;

/// `GET /fhir/Group/<id>/$export`: the Group, then the whole record of each active member, as
/// one Bulk Data NDJSON file. For the institution that keeps the group, and only when it may
/// read every member's record (in care, consent, or break-glass for all): otherwise refused,
/// saying how many it may not read, and nothing is exported. Members that are no Patient, or
/// whose Patient is gone, are left out.
async fn group_export(r: &Records, c: &Caller, id: &str, headers: &HeaderMap) -> FhirResult<Response> {
    let Some(g) = r.current("Group", id).await?.filter(|s| !s.deleted) else {
        return Err(FhirError::not_found(&format!("Group/{id}")));
    };
    let group = readable(r, c, g, headers, "export").await?;
    let mut members: Vec<String> = vec![];
    for m in group["member"].as_array().into_iter().flatten() {
        let pid = m["entity"]["reference"].as_str().and_then(|x| x.strip_prefix("Patient/"));
        if let Some(pid) = pid.filter(|p| validate::is_id(p)) {
            if m["inactive"] != true && !members.iter().any(|x| x == pid) {
                members.push(pid.to_string());
            }
        }
    }
    if members.len() > GROUP_EXPORT_MAX {
        return Err(FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-costly",
            format!("a group export takes at most {GROUP_EXPORT_MAX} members; this group has {}", members.len()),
        ));
    }
    // Every member checked before anything is read: all or nothing.
    let who = require_reader(r, c, "Patient").await?;
    let mut present = vec![];
    let mut refused = 0;
    for pid in members {
        if !r.exists("Patient", &pid).await? {
            continue;
        }
        match may_read(r, c, &who, &pid, "Patient", None, headers).await {
            Ok(_) => present.push(pid),
            Err(e) if e.status == StatusCode::FORBIDDEN => refused += 1,
            Err(e) => return Err(e),
        }
    }
    if refused > 0 {
        return Err(FhirError {
            audited: true,
            ..FhirError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this institution may not read the records of {refused} of the group's members; nothing was exported"
                ),
            )
        });
    }
    let mut out = group.to_string();
    out.push('\n');
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for pid in &present {
        for s in whole_record(r, c, pid, headers, "export").await? {
            // The directory entries several members share, once.
            if seen.insert((s.rtype.clone(), s.id.clone())) {
                out.push_str(&s.body.to_string());
                out.push('\n');
            }
        }
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/fhir+ndjson"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"group-records.ndjson\""),
        ],
        out,
    )
        .into_response())
}

/// The directory resources (organisations, practitioners) a record refers to.
fn collect_refs(v: &Value, out: &mut BTreeMap<&'static str, BTreeSet<String>>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if let ("reference", Some(s)) = (k.as_str(), x.as_str()) {
                    for rt in ["Organization", "Practitioner"] {
                        if let Some(id) = s.strip_prefix(rt).and_then(|r| r.strip_prefix('/')) {
                            if validate::is_id(id) {
                                out.entry(rt).or_default().insert(id.to_string());
                            }
                        }
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

async fn verify(r: &Records, c: &Caller, rt: &str, id: &str, headers: &HeaderMap) -> FhirResult<Response> {
    let Some(s) = r.current(rt, id).await? else {
        return Err(FhirError::not_found(&format!("{rt}/{id}")));
    };
    readable(r, c, Stored { deleted: false, ..s }, headers, "verify").await?;
    let checks = r.verify(rt, id).await?;
    let ok = checks.iter().all(|v| v.ok);
    let mut params = vec![json!({ "name": "ok", "valueBoolean": ok })];
    for v in &checks {
        let mut part = vec![
            json!({ "name": "version", "valueString": v.version.to_string() }),
            json!({ "name": "ok", "valueBoolean": v.ok }),
            json!({ "name": "provenance", "valueReference": { "reference": format!("Provenance/{}", v.seal) } }),
        ];
        if let Some(pb) = &v.problem {
            part.push(json!({ "name": "problem", "valueString": pb }));
        }
        params.push(json!({ "name": "version", "part": part }));
    }
    if !ok {
        tracing::error!(resource = %format!("{rt}/{id}"), "a record fails verification: changed outside the platform");
    }
    Ok(fhir(StatusCode::OK, &json!({ "resourceType": "Parameters", "parameter": params })))
}

/// `Provenance/<seal>`: the seal of one write, its targets (version-specific) and signature.
async fn provenance(r: &Records, c: &Caller, id: &str, headers: &HeaderMap) -> FhirResult<Response> {
    let Some(p) = r.provenance(id).await? else { return Err(FhirError::not_found(&format!("Provenance/{id}"))) };
    // Readable by whoever may read its first target.
    if let Some((rt, tid)) = p.targets.first() {
        let Some(s) = r.current(rt, tid).await? else { return Err(FhirError::not_found(&format!("Provenance/{id}"))) };
        readable(r, c, Stored { deleted: false, ..s }, headers, "provenance").await?;
    }
    Ok(fhir(StatusCode::OK, &p.resource))
}

fn split_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

async fn search(
    r: Records,
    State(st): State<AppState>,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let t = target(p)?;
    let mut pairs = split_query(raw.as_deref());
    let mut offset = 0usize;
    let mut with_total = false;
    pairs.retain(|(k, v)| match k.as_str() {
        "_offset" => {
            offset = v.parse().unwrap_or(usize::MAX);
            false
        }
        "_total" => {
            with_total = v == "accurate";
            true
        }
        _ => true,
    });
    if offset > 100_000 {
        return Err(FhirError::new(StatusCode::BAD_REQUEST, "invalid", "_offset is a number up to 100000"));
    }
    let lenient = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|x| x.trim() == "handling=lenient"));
    if t.rt == "Provenance" {
        return provenance_search(&r, &c, &pairs, &headers).await;
    }
    let q = query::parse(&t.rt, &pairs, lenient, BEIJING).map_err(|issues| FhirError {
        status: StatusCode::BAD_REQUEST,
        issues,
        audited: false,
    })?;
    let who = require_reader(&r, &c, &t.rt).await?;
    let mut f = records::filter(&q, &r.cipher, now_ms())
        .map_err(|e| FhirError::new(StatusCode::BAD_REQUEST, "not-supported", e.0))?;
    // Whose records: the patient named, if any, decides; else the caller's own.
    let named = named_patient(&q);
    let mut grounds: BTreeMap<String, Ground> = BTreeMap::new();
    let mut mask_patients = false;
    if !is_directory(&t.rt) {
        match (&who, &named) {
            (access::Caller::Resident { patient }, _) => match patient {
                Some(me) => f.patient(me),
                None => f.patient(""),
            },
            (access::Caller::Clinician { institution }, Some(pid)) => {
                // An institution holding records of the patient sees at least those.
                let own = break_glass_reason(&headers).is_none() && r.owns_any(pid, institution).await?;
                let ground = if own {
                    let ctx = clinician_context(&r, &c, institution, pid, &t.rt, None).await?;
                    access::decide(&who, Action::Read, &ctx).ok()
                } else {
                    Some(may_read(&r, &c, &who, pid, &t.rt, None, &headers).await?)
                };
                match ground {
                    Some(g) => {
                        grounds.insert(pid.clone(), g);
                    }
                    None => f.owner(institution),
                }
                f.patient(pid);
            }
            (access::Caller::Clinician { .. }, None) if t.rt == "Patient" => mask_patients = true,
            (access::Caller::Clinician { .. }, None) => f.owner(&c.org_id),
            _ => unreachable!("require_reader refused the others"),
        }
    }
    let page = r.search(&t.rt, f, q.count, offset, with_total).await?;
    // _include: the targets of the named reference parameters, each once, readable or left out.
    let mut included: Vec<Stored> = vec![];
    for param in &q.include {
        let mut by_type: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in &page.items {
            for e in index::extract(&s.body, param, BEIJING) {
                if let index::Entry::Reference { target_type, id } = e {
                    by_type.entry(target_type).or_default().insert(id);
                }
            }
        }
        for (rt, ids) in by_type {
            if !SUPPORTED.contains(&rt.as_str()) || rt == "Provenance" {
                continue;
            }
            let ids: Vec<String> = ids.into_iter().collect();
            for s in r.many(&rt, &ids).await? {
                if !included.iter().any(|x| x.rtype == s.rtype && x.id == s.id) {
                    included.push(s);
                }
            }
        }
    }
    let base = base_url(&headers, &st);
    let mut reads: BTreeMap<String, (Ground, BTreeSet<String>)> = BTreeMap::new();
    let mut entries = vec![];
    for (s, mode) in page.items.iter().map(|s| (s, "match")).chain(included.iter().map(|s| (s, "include"))) {
        let body = if is_directory(&s.rtype) {
            s.body.clone()
        } else if mask_patients && s.rtype == "Patient" && mode == "match" {
            // A clinician's patient search across the district: who, not what, unless a
            // ground lets them read the record.
            match ground_without_refusal(&r, &c, &who, s).await? {
                Some(g) => {
                    reads.entry(s.id.clone()).or_insert((g, BTreeSet::new())).1.insert(s.rtype.clone());
                    s.body.clone()
                }
                None => masked_patient(s.body.clone()),
            }
        } else {
            let Some(pid) = s.patient_id.clone() else {
                // Of no patient's record (a Group): its institution's alone, each read audited.
                if matches!(&who, access::Caller::Clinician { institution } if *institution == s.owner_org) {
                    audit_institution_read(&r, &c, s, "search").await?;
                    entries.push(entry(&base, s, s.body.clone(), Some(mode)));
                }
                continue;
            };
            let g = match (&who, grounds.get(&pid)) {
                (access::Caller::Resident { .. }, _) => Some(Ground::OwnRecord),
                (_, Some(g)) => Some(g.clone()),
                (access::Caller::Clinician { institution }, None) if *institution == s.owner_org => {
                    Some(Ground::OwnInstitution)
                }
                _ => ground_without_refusal(&r, &c, &who, s).await?,
            };
            let Some(g) = g else { continue };
            reads.entry(pid).or_insert((g, BTreeSet::new())).1.insert(s.rtype.clone());
            s.body.clone()
        };
        entries.push(entry(&base, s, body, Some(mode)));
    }
    audit_reads(&r, &c, &reads, "search").await?;
    let self_q = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
    let url = |off: usize| {
        let sep = if self_q.is_empty() { "" } else { "&" };
        format!("{base}/{}?{self_q}{sep}_offset={off}", t.rt)
    };
    let mut links = vec![json!({ "relation": "self", "url": url(offset) })];
    if page.more {
        links.push(json!({ "relation": "next", "url": url(offset + q.count) }));
    }
    if offset > 0 {
        links.push(json!({ "relation": "previous", "url": url(offset.saturating_sub(q.count)) }));
    }
    let mut b = json!({ "resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries });
    if let Some(n) = page.total {
        b["total"] = json!(n);
    }
    if !q.ignored.is_empty() {
        let issues: Vec<Issue> = q
            .ignored
            .iter()
            .map(|k| Issue { code: "not-supported", path: k.clone(), diagnostics: format!("ignored parameter {k}") })
            .collect();
        let mut oo = validate::operation_outcome(&issues);
        for i in oo["issue"].as_array_mut().into_iter().flatten() {
            i["severity"] = json!("warning");
        }
        if let Some(e) = b["entry"].as_array_mut() {
            e.push(json!({ "resource": oo, "search": { "mode": "outcome" } }));
        }
    }
    Ok(fhir(StatusCode::OK, &b))
}

/// A ground for reading a record, or none, without auditing a refusal (an include or a row of a
/// wider search that is simply left out).
async fn ground_without_refusal(
    r: &Records,
    c: &Caller,
    who: &access::Caller,
    s: &Stored,
) -> FhirResult<Option<Ground>> {
    let Some(patient) = &s.patient_id else { return Ok(None) };
    let access::Caller::Clinician { institution } = who else { return Ok(None) };
    if *institution == s.owner_org {
        return Ok(Some(Ground::OwnInstitution));
    }
    let ctx = clinician_context(r, c, institution, patient, &s.rtype, None).await?;
    Ok(access::decide(who, Action::Read, &ctx).ok())
}

/// What the platform knows for a clinician's request to a patient's record: whether the
/// patient is in care at the clinician's institution, what the patient's consents say, and the
/// break-glass reason given, if any.
pub(crate) async fn clinician_context(
    r: &Records,
    c: &Caller,
    institution: &str,
    patient: &str,
    rt: &str,
    break_glass: Option<String>,
) -> Result<access::Context, StoreError> {
    let mut ctx = access::Context { patient: patient.to_string(), ..Default::default() };
    if r.in_care(patient, institution, IN_CARE_WINDOW_MS).await? {
        ctx.in_care_at.push(institution.to_string());
    }
    let consents = r.consents(patient).await?;
    if !consents.is_empty() {
        let req = consent::Request {
            patient: format!("Patient/{patient}"),
            actors: vec![format!("Practitioner/{}", c.user_id), format!("Organization/{institution}")],
            purpose: if break_glass.is_some() { "ETREAT" } else { "TREAT" }.into(),
            action: "access".into(),
            class: rt.to_string(),
            at_ms: now_ms(),
        };
        ctx.consent = Some(consent::decide(&consents, &req, BEIJING));
    }
    ctx.break_glass = break_glass;
    Ok(ctx)
}

/// The patient a search names with its `patient` parameter (one value, `Patient/<id>` or an
/// id), or a Patient search's single `_id`.
fn named_patient(q: &Query) -> Option<String> {
    q.tests.iter().find_map(|t| match t {
        query::Test::Reference { param, values } if param.name == "patient" && values.len() == 1 => {
            let (ty, id) = &values[0];
            (ty.as_deref().is_none_or(|t| t == "Patient")).then(|| id.clone())
        }
        query::Test::Id(ids) if q.resource_type == "Patient" && ids.len() == 1 => Some(ids[0].clone()),
        _ => None,
    })
}

async fn provenance_search(
    r: &Records,
    c: &Caller,
    pairs: &[(String, String)],
    headers: &HeaderMap,
) -> FhirResult<Response> {
    let target = pairs.iter().find(|(k, _)| k == "target").map(|(_, v)| v.clone());
    let unknown: Vec<&String> =
        pairs.iter().map(|(k, _)| k).filter(|k| !matches!(k.as_str(), "target" | "_count" | "_format")).collect();
    if let Some(k) = unknown.first() {
        return Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            "not-supported",
            format!("Provenance has no search parameter {k}"),
        ));
    }
    let Some((rt, id)) = target.as_deref().and_then(|t| t.split_once('/')) else {
        return Err(FhirError::new(StatusCode::BAD_REQUEST, "required", "search Provenance by target=Type/id"));
    };
    let id = id.split('/').next().unwrap_or_default();
    let Some(s) = r.current(rt, id).await? else { return Err(FhirError::not_found(&format!("{rt}/{id}"))) };
    readable(r, c, Stored { deleted: false, ..s }, headers, "provenance").await?;
    let mut entries = vec![];
    for seal in r.seals_of(rt, id).await? {
        if let Some(p) = r.provenance(&seal).await? {
            entries.push(json!({ "fullUrl": format!("Provenance/{seal}"), "resource": p.resource, "search": { "mode": "match" } }));
        }
    }
    Ok(fhir(
        StatusCode::OK,
        &json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries }),
    ))
}

/// `GET /fhir/metadata`: what this server does, from the tables it runs on.
async fn metadata(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&headers, &st);
    let resources: Vec<Value> = SUPPORTED
        .iter()
        .map(|rt| {
            let params: Vec<Value> = index::params_of(rt)
                .map(|p| {
                    json!({ "name": p.name, "type": match p.kind {
                        ParamType::Token => "token", ParamType::Date => "date",
                        ParamType::String => "string", ParamType::Reference => "reference" } })
                })
                .chain([json!({ "name": "_id", "type": "token" }), json!({ "name": "_lastUpdated", "type": "date" })])
                .collect();
            let interactions: Vec<Value> = if is_derived(rt) {
                vec![json!({ "code": "read" }), json!({ "code": "search-type" })]
            } else {
                ["read", "vread", "update", "delete", "history-instance", "create", "search-type"]
                    .iter()
                    .map(|c| json!({ "code": c }))
                    .collect()
            };
            let mut res = json!({
                "type": rt,
                "interaction": interactions,
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": !is_derived(rt),
                "conditionalDelete": "not-supported",
                "searchParam": params,
                "searchInclude": index::params_of(rt).filter(|p| p.kind == ParamType::Reference)
                    .map(|p| format!("{rt}:{}", p.name)).collect::<Vec<_>>(),
                "operation": [{ "name": "verify", "definition": format!("{base}/OperationDefinition/verify") }],
                "versioning": if is_derived(rt) { "no-version" } else { "versioned-update" },
            });
            if *rt == "Provenance" {
                res["searchParam"] = json!([{ "name": "target", "type": "reference" }]);
                res["operation"] = json!([]);
            }
            if *rt == "AuditEvent" {
                res["searchParam"] = json!([{ "name": "patient", "type": "reference" }]);
                res["searchInclude"] = json!([]);
                res["operation"] = json!([]);
            }
            if *rt == "Patient" {
                if let Some(o) = res["operation"].as_array_mut() {
                    o.push(json!({ "name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything" }));
                    o.push(json!({ "name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match" }));
                    o.push(json!({ "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export" }));
                }
            }
            if *rt == "Group" {
                if let Some(o) = res["operation"].as_array_mut() {
                    o.push(json!({ "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export" }));
                }
            }
            res
        })
        .collect();
    let cs = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": records::instant(now_ms()),
        "kind": "instance",
        "software": { "name": "Wuqing Smart District Platform (智慧武清平台)", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Wuqing health data platform FHIR server", "url": base },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": { "cors": false, "description": "Session cookie or bearer token of the platform; access by PIPL rules: own record, care relationship, consent, break-glass." },
            "resource": resources,
            "interaction": [],
            "operation": [{ "name": "import", "definition": format!("{base}/OperationDefinition/import") }],
        }],
    });
    fhir(StatusCode::OK, &cs)
}

/// `POST /fhir/$import`: an NDJSON body (Bulk Data, one resource per line) loaded as the
/// clinician's institution's records, answered with an OperationOutcome counting what was stored
/// and naming each invalid line. Synchronous: the answer comes when every batch is committed.
async fn bulk_import(
    r: Records,
    axum::Extension(mpi): axum::Extension<MpiState>,
    Who(c): Who,
    headers: HeaderMap,
    body: axum::body::Body,
) -> FhirResult<Response> {
    use futures_util::TryStreamExt;
    require_writer(&r, &c, "Bundle").await?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let base = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !matches!(base.as_str(), "application/fhir+ndjson" | "application/ndjson" | "application/x-ndjson") {
            return Err(FhirError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "send application/fhir+ndjson",
            ));
        }
    }
    let mut seen = 0usize;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let stream = futures_util::StreamExt::map(stream, move |item| {
        let chunk = item?;
        seen += chunk.len();
        if seen > IMPORT_MAX_BYTES {
            return Err(std::io::Error::other(format!("the body is larger than {IMPORT_MAX_BYTES} bytes")));
        }
        Ok(chunk)
    });
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let input = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut report = crate::import::Report::default();
    let result = crate::import::import(
        &r,
        &author(&c),
        Actor::of(&c),
        "$import",
        input,
        crate::import::Options { mpi: Some(&mpi), batch: crate::import::BATCH },
        &mut report,
    )
    .await;
    let mut issues = vec![Issue {
        code: "informational",
        path: String::new(),
        diagnostics: format!("{} resources stored, {} invalid lines", report.total(), report.invalid),
    }];
    for (_, line, i) in &report.problems {
        issues.push(Issue {
            code: i.code,
            path: format!("line {line}: {}", i.path),
            diagnostics: i.diagnostics.clone(),
        });
    }
    let mut oo = validate::operation_outcome(&issues);
    oo["issue"][0]["severity"] = json!("information");
    match result {
        Ok(()) => {
            let status = if report.total() == 0 && report.invalid > 0 {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            Ok(fhir(status, &oo))
        }
        Err(WriteError::Store(kernel::store::StoreError::Unavailable(m))) if m.contains("reading") => {
            Err(FhirError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("{m}; {} resources were stored before", report.total()),
            ))
        }
        Err(e) => {
            let mut fe = FhirError::from(e);
            fe.issues.push(Issue {
                code: "informational",
                path: String::new(),
                diagnostics: format!("{} resources were stored before", report.total()),
            });
            Err(fe)
        }
    }
}

/// The largest `$import` body (the command line takes files of any size).
const IMPORT_MAX_BYTES: usize = 1 << 30;

/// Who may see who accessed a patient's record: the patient, the audit administrator, and a
/// clinician who may read the record (the access log is part of the summary they see).
async fn may_see_access_log(r: &Records, c: &Caller, patient: &str, headers: &HeaderMap) -> FhirResult<()> {
    let allowed = match c.role {
        Role::AuditAdmin => true,
        Role::Resident => own_patient(r, c).await?.as_deref() == Some(patient),
        Role::Clinician => {
            let who = policy_caller(r, c).await?;
            // Refusals are audited by may_read.
            may_read(r, c, &who, patient, "AuditEvent", None, headers).await?;
            true
        }
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let ev = Event::new(Actor::of(c), "health.access_log", "Patient", Some(patient), Outcome::Denied)
        .detail(json!({ "refusal": "not_your_record" }));
    audit::record(&r.store, ev).await?;
    Err(FhirError {
        audited: true,
        ..FhirError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the access log of a record is for its patient, the clinicians who may read it and the audit administrator \
             (仅本人、可查看档案的医生和审计管理员可查看)",
        )
    })
}

const AUDIT_COLUMNS: &str =
    "a.seq, a.at_ms, a.actor, a.role, a.action, a.outcome, a.target_id, a.detail, u.display_name, o.name AS org_name";
const AUDIT_FROM: &str =
    "FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id LEFT JOIN organisations o ON o.id = a.org_id";

fn audit_event(row: &sqlx::any::AnyRow) -> Result<Value, StoreError> {
    use kernel::store::col;
    let action: String = col(row, "action")?;
    let outcome: String = col(row, "outcome")?;
    let detail: Value = serde_json::from_str(&col::<String>(row, "detail")?).unwrap_or(Value::Null);
    let display: Option<String> = col(row, "display_name")?;
    let actor: String = col(row, "actor")?;
    let org: Option<String> = col(row, "org_name")?;
    let patient: Option<String> = col(row, "target_id")?;
    let code = match action.as_str() {
        "health.create"
        | "health.import"
        | "health.referral.create"
        | "health.contract.sign"
        | "health.contract.renew" => "C",
        "health.update" | "health.contract.terminate" => "U",
        a if a.starts_with("health.referral.") && !a.ends_with(".read") => "U",
        "health.delete" => "D",
        _ => "R",
    };
    let purpose = match detail["ground"].as_str() {
        Some("break_glass") => Some(("ETREAT", "emergency treatment (紧急访问)")),
        Some("own_record") => Some(("PATRQT", "patient requested (本人查询)")),
        Some(_) => Some(("TREAT", "treatment (诊疗)")),
        None if action == "health.break_glass" => Some(("ETREAT", "emergency treatment (紧急访问)")),
        // Referrals, contracts and prescription checks are the care of the patient.
        None if ["health.referral.", "health.contract.", "health.rx."].iter().any(|p| action.starts_with(p)) => {
            Some(("TREAT", "treatment (诊疗)"))
        }
        None => None,
    };
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": col::<i64>(row, "seq")?.to_string(),
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "subtype": [{ "system": "urn:wuqing:audit-action", "code": action }],
        "action": code,
        "recorded": records::instant(col(row, "at_ms")?),
        "outcome": if outcome == "success" { "0" } else { "4" },
        "outcomeDesc": if outcome == "success" { "allowed (已允许)" } else { "refused (已拒绝)" },
        "agent": [{
            "who": { "identifier": { "system": "urn:wuqing:user", "value": actor }, "display": display.unwrap_or_default() },
            "requestor": true,
            "role": [{ "text": col::<Option<String>>(row, "role")?.unwrap_or_default() }],
        }],
        "source": { "observer": { "display": "Wuqing Smart District Platform (智慧武清平台)" } },
        "entity": [{ "what": { "reference": format!("Patient/{}", patient.unwrap_or_default()) } }],
    });
    if let Some(o) = org {
        ev["agent"][0]["extension"] = json!([{ "url": "urn:wuqing:agent-organization", "valueString": o }]);
    }
    if let Some((code, text)) = purpose {
        ev["purposeOfEvent"] = json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": code }], "text": text }]);
    }
    Ok(ev)
}

/// `GET /fhir/AuditEvent?patient=…`: who read or changed the patient's record, newest first.
async fn audit_events(r: Records, Who(c): Who, RawQuery(raw): RawQuery, headers: HeaderMap) -> FhirResult<Response> {
    let pairs = split_query(raw.as_deref());
    let mut patient = None;
    let mut count = 50i64;
    let mut offset = 0i64;
    for (k, v) in &pairs {
        match k.as_str() {
            "patient" => patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_string()),
            "_count" => {
                count = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| FhirError::new(StatusCode::BAD_REQUEST, "invalid", "_count is 1 to 500"))?
            }
            "_offset" => {
                offset = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=100_000).contains(n))
                    .ok_or_else(|| FhirError::new(StatusCode::BAD_REQUEST, "invalid", "_offset is 0 to 100000"))?
            }
            "_format" => {}
            other => {
                return Err(FhirError::new(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    format!("AuditEvent has no search parameter {other}"),
                ));
            }
        }
    }
    let Some(patient) = patient else {
        return Err(FhirError::new(StatusCode::BAD_REQUEST, "required", "search AuditEvent by patient"));
    };
    may_see_access_log(&r, &c, &patient, &headers).await?;
    let rows = sqlx::query(&r.store.sql(&format!(
        "SELECT {AUDIT_COLUMNS} {AUDIT_FROM} WHERE a.target_kind = 'Patient' AND a.target_id = $1 AND a.action LIKE 'health.%' \
         ORDER BY a.seq DESC LIMIT $2 OFFSET $3"
    )))
    .bind(patient.clone())
    .bind(count + 1)
    .bind(offset)
    .fetch_all(r.store.reader())
    .await
    .map_err(StoreError::from)?;
    let more = rows.len() as i64 > count;
    let entries: Vec<Value> = rows
        .iter()
        .take(count as usize)
        .map(|row| audit_event(row).map(|ev| json!({ "fullUrl": format!("AuditEvent/{}", ev["id"].as_str().unwrap_or_default()), "resource": ev, "search": { "mode": "match" } })))
        .collect::<Result<_, _>>()?;
    let mut links = vec![
        json!({ "relation": "self", "url": format!("AuditEvent?patient={patient}&_count={count}&_offset={offset}") }),
    ];
    if more {
        links.push(json!({ "relation": "next", "url": format!("AuditEvent?patient={patient}&_count={count}&_offset={}", offset + count) }));
    }
    Ok(fhir(StatusCode::OK, &json!({ "resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries })))
}

/// `GET /fhir/AuditEvent/<seq>`.
async fn audit_event_read(
    r: Records,
    Who(c): Who,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> FhirResult<Response> {
    let seq: i64 = id
        .parse()
        .map_err(|_| FhirError::not_found(&format!("AuditEvent/{}", id.chars().take(40).collect::<String>())))?;
    let row = sqlx::query(&r.store.sql(&format!(
        "SELECT {AUDIT_COLUMNS} {AUDIT_FROM} WHERE a.seq = $1 AND a.target_kind = 'Patient' AND a.action LIKE 'health.%'"
    )))
    .bind(seq)
    .fetch_optional(r.store.reader())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else { return Err(FhirError::not_found(&format!("AuditEvent/{seq}"))) };
    let patient: Option<String> = kernel::store::col(&row, "target_id")?;
    may_see_access_log(&r, &c, patient.as_deref().unwrap_or_default(), &headers).await?;
    Ok(fhir(StatusCode::OK, &audit_event(&row)?))
}

/// One entry's answer in a batch or transaction response.
fn entry_response(status: StatusCode, s: Option<&Stored>, outcome: Option<Value>) -> Value {
    let mut resp =
        json!({ "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or_default()) });
    if let Some(s) = s {
        resp["location"] = json!(format!("{}/{}/_history/{}", s.rtype, s.id, s.version));
        resp["etag"] = json!(format!("W/\"{}\"", s.version));
        resp["lastModified"] = json!(records::instant(s.last_updated_ms));
    }
    if let Some(o) = outcome {
        resp["outcome"] = o;
    }
    json!({ "response": resp })
}

/// What one write of a Bundle asks, checked as the single interaction would check it.
async fn bundle_change(
    r: &Records,
    c: &Caller,
    op: &bundle::Op,
    created: &BTreeSet<String>,
    headers: &HeaderMap,
) -> FhirResult<Option<(Vec<Change>, Vec<Event>)>> {
    let rt = op.resource_type.clone();
    let id = op.id.clone().unwrap_or_default();
    require_writer(r, c, &rt).await?;
    match op.method {
        bundle::Method::Delete => {
            let Some(cur) = r.current(&rt, &id).await? else { return Err(FhirError::not_found(&format!("{rt}/{id}"))) };
            if cur.deleted {
                return Ok(None);
            }
            check_retention(r, &cur).await?;
            let ev = write_audit(c, "health.delete", &rt, &id, cur.patient_id.as_deref());
            Ok(Some((vec![Change { rtype: rt, id, resource: None, if_match: None }], vec![ev])))
        }
        bundle::Method::Post | bundle::Method::Put => {
            let v = op.resource.clone().unwrap_or_default();
            check_patient_among(r, &v, created).await?;
            let patient = if rt == "Patient" { Some(id.clone()) } else { records::patient_of(&v) };
            let action = if op.method == bundle::Method::Post { "health.create" } else { "health.update" };
            let ev = write_audit(c, action, &rt, &id, patient.as_deref());
            // A prescription in a Bundle is checked as a single one is (its DetectedIssues and
            // override records follow it into the same commit).
            let (findings, mut events) = prescription_check(r, c, &v, &id, headers).await?;
            events.insert(0, ev);
            let mut changes = vec![Change { rtype: rt, id, resource: Some(v), if_match: None }];
            changes.extend(findings);
            Ok(Some((changes, events)))
        }
        bundle::Method::Get => Ok(None),
    }
}

/// A conditional create's search: `Some(existing)` when exactly one matches, `None` when none
/// does, an error when several do.
async fn if_none_exist(r: &Records, rt: &str, cond: &str) -> FhirResult<Option<Stored>> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(cond.trim_start_matches('?').as_bytes()).into_owned().collect();
    let q = query::parse(rt, &pairs, false, BEIJING).map_err(FhirError::invalid)?;
    let f = records::filter(&q, &r.cipher, now_ms())
        .map_err(|e| FhirError::new(StatusCode::BAD_REQUEST, "not-supported", e.0))?;
    let page = r.search(rt, f, 2, 0, false).await?;
    match page.items.len() {
        0 => Ok(None),
        1 => Ok(page.items.into_iter().next()),
        _ => Err(FhirError::new(
            StatusCode::PRECONDITION_FAILED,
            "duplicate",
            "ifNoneExist matches more than one resource",
        )),
    }
}

/// A GET inside a Bundle: a read (`Type/id`).
async fn bundle_get(r: &Records, c: &Caller, op: &bundle::Op, headers: &HeaderMap) -> FhirResult<(Stored, Value)> {
    let (Some(id), None) = (&op.id, &op.query) else {
        return Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            "not-supported",
            "a GET in a Bundle reads Type/id; search with GET /fhir/Type?…",
        ));
    };
    let Some(s) = r.current(&op.resource_type, id).await? else {
        return Err(FhirError::not_found(&format!("{}/{id}", op.resource_type)));
    };
    if s.deleted {
        return Err(FhirError::new(StatusCode::GONE, "deleted", format!("{}/{id} was deleted", op.resource_type)));
    }
    let body = readable(r, c, s.clone(), headers, "read").await?;
    Ok((s, body))
}

/// `POST /fhir`: a batch (each entry on its own) or a transaction (all or nothing, one seal).
async fn bundle(
    r: Records,
    axum::Extension(mpi): axum::Extension<MpiState>,
    Who(c): Who,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let v = json_body(&headers, body)?;
    let plan = bundle::plan(&v, || uuid::Uuid::now_v7().to_string()).map_err(FhirError::invalid)?;
    let n = v["entry"].as_array().map_or(0, Vec::len);
    let mut answers: Vec<Value> = vec![Value::Null; n];
    for (i, issue) in &plan.refused {
        answers[*i] = entry_response(
            StatusCode::BAD_REQUEST,
            None,
            Some(validate::operation_outcome(std::slice::from_ref(issue))),
        );
    }
    let created: BTreeSet<String> = plan
        .ops
        .iter()
        .filter(|o| o.method == bundle::Method::Post && o.resource_type == "Patient")
        .filter_map(|o| o.id.clone())
        .collect();
    let outcome = |e: &FhirError| validate::operation_outcome(&e.issues);
    match plan.kind {
        bundle::Kind::Transaction => {
            let mut changes = vec![];
            let mut events = vec![];
            let mut at = vec![];
            for op in &plan.ops {
                if let (bundle::Method::Post, Some(cond)) = (op.method, &op.if_none_exist) {
                    if let Some(existing) = if_none_exist(&r, &op.resource_type, cond).await? {
                        answers[op.entry] = entry_response(StatusCode::OK, Some(&existing), None);
                        continue;
                    }
                }
                if let Some((chs, evs)) = bundle_change(&r, &c, op, &created, &headers).await? {
                    // The entry's own change first; its DetectedIssues answer no entry.
                    at.extend(std::iter::once(Some(op.entry)).chain(std::iter::repeat_n(None, chs.len() - 1)));
                    changes.extend(chs);
                    events.extend(evs);
                } else if op.method == bundle::Method::Delete {
                    answers[op.entry] = entry_response(StatusCode::NO_CONTENT, None, None);
                }
            }
            if !changes.is_empty() {
                let (stored, _) = r.commit(&author(&c), "transaction", changes, events).await?;
                mpi_store::after_patients(&r, &mpi, &Actor::of(&c), &stored).await?;
                for (s, entry) in stored.iter().zip(at) {
                    let Some(entry) = entry else { continue };
                    let status = match (s.deleted, s.version) {
                        (true, _) => StatusCode::NO_CONTENT,
                        (false, 1) => StatusCode::CREATED,
                        _ => StatusCode::OK,
                    };
                    answers[entry] = entry_response(status, Some(s), None);
                    if !s.deleted {
                        answers[entry]["resource"] = s.body.clone();
                    }
                }
            }
            for op in plan.ops.iter().filter(|o| o.method == bundle::Method::Get) {
                answers[op.entry] = match bundle_get(&r, &c, op, &headers).await {
                    Ok((s, body)) => {
                        json!({ "resource": body, "response": entry_response(StatusCode::OK, Some(&s), None)["response"] })
                    }
                    Err(e) => entry_response(e.status, None, Some(outcome(&e))),
                };
            }
            let b = json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": answers });
            Ok(fhir(StatusCode::OK, &b))
        }
        bundle::Kind::Batch => {
            for op in &plan.ops {
                let answer: FhirResult<Value> = async {
                    if op.method == bundle::Method::Get {
                        let (s, body) = bundle_get(&r, &c, op, &headers).await?;
                        return Ok(json!({ "resource": body, "response": entry_response(StatusCode::OK, Some(&s), None)["response"] }));
                    }
                    if let (bundle::Method::Post, Some(cond)) = (op.method, &op.if_none_exist) {
                        if let Some(existing) = if_none_exist(&r, &op.resource_type, cond).await? {
                            return Ok(entry_response(StatusCode::OK, Some(&existing), None));
                        }
                    }
                    let Some((chs, evs)) = bundle_change(&r, &c, op, &BTreeSet::new(), &headers).await? else {
                        return Ok(entry_response(StatusCode::NO_CONTENT, None, None));
                    };
                    let (stored, _) = r.commit(&author(&c), "batch", chs, evs).await?;
                    mpi_store::after_patients(&r, &mpi, &Actor::of(&c), &stored).await?;
                    let s = &stored[0];
                    let status = match (s.deleted, s.version) {
                        (true, _) => StatusCode::NO_CONTENT,
                        (false, 1) => StatusCode::CREATED,
                        _ => StatusCode::OK,
                    };
                    let mut a = entry_response(status, Some(s), None);
                    if !s.deleted {
                        a["resource"] = s.body.clone();
                    }
                    Ok(a)
                }
                .await;
                answers[op.entry] = answer.unwrap_or_else(|e| entry_response(e.status, None, Some(outcome(&e))));
            }
            let b = json!({ "resourceType": "Bundle", "type": "batch-response", "entry": answers });
            Ok(fhir(StatusCode::OK, &b))
        }
    }
}

/// `POST /fhir/Patient/$match` (R4): the master patient index's candidates for a Patient, each
/// with its score and grade (certain, probable, possible), best first. For clinicians; a
/// candidate whose record the clinician may not read is shown masked.
async fn type_op(
    r: Records,
    axum::Extension(mpi): axum::Extension<MpiState>,
    Who(c): Who,
    p: Result<Seg, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> FhirResult<Response> {
    let t = target(p)?;
    if t.rt != "Patient" || t.id.as_deref() != Some("$match") {
        return Err(FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "POST goes to the type (create) or to Patient/$match",
        ));
    }
    if c.role != Role::Clinician {
        let ev = Event::new(Actor::of(&c), "health.match", "Patient", None, Outcome::Denied)
            .detail(json!({ "refusal": refusal_code(Refusal::RecordsNotForRole) }));
        audit::record(&r.store, ev).await?;
        return Err(FhirError {
            audited: true,
            ..FhirError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "patient matching is for clinicians (仅医生可查找患者)",
            )
        });
    }
    let v = json_body(&headers, body)?;
    if v["resourceType"] != "Parameters" {
        return Err(FhirError::invalid(vec![Issue {
            code: "invalid",
            path: "resourceType".into(),
            diagnostics: "$match takes a Parameters resource".into(),
        }]));
    }
    let params = v["parameter"].as_array().cloned().unwrap_or_default();
    let find = |name: &str| params.iter().find(|p| p["name"] == name).cloned();
    let Some(patient) = find("resource").map(|p| p["resource"].clone()) else {
        return Err(FhirError::invalid(vec![Issue {
            code: "required",
            path: "Parameters.parameter".into(),
            diagnostics: "a resource parameter holding the Patient is required".into(),
        }]));
    };
    let issues = validate::validate(&patient, Some("Patient"));
    if !issues.is_empty() {
        return Err(FhirError::invalid(issues));
    }
    let count = find("count").and_then(|p| p["valueInteger"].as_u64()).unwrap_or(10).clamp(1, 100) as usize;
    let only_certain = find("onlyCertainMatches").and_then(|p| p["valueBoolean"].as_bool()).unwrap_or(false);
    mpi.ensure(&r).await?;
    let Some(found) = mpi.matches(&patient, count, only_certain) else {
        return Err(FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "the patient index is loading; try again shortly",
        ));
    };
    let ids: Vec<String> = found.iter().map(|c| c.id.clone()).collect();
    let stored = r.many("Patient", &ids).await?;
    let who = policy_caller(&r, &c).await?;
    let mut shown = std::collections::HashMap::new();
    let mut reads = BTreeMap::new();
    for s in &stored {
        let body = match ground_without_refusal(&r, &c, &who, s).await? {
            Some(g) => {
                reads.insert(s.id.clone(), (g, BTreeSet::from(["Patient".to_string()])));
                s.body.clone()
            }
            None => masked_patient(s.body.clone()),
        };
        shown.insert(s.id.clone(), body);
    }
    let found: Vec<_> = found.into_iter().filter(|c| shown.contains_key(&c.id)).collect();
    let ev = Event::new(Actor::of(&c), "health.match", "Patient", None, Outcome::Success)
        .detail(json!({ "candidates": found.len() }));
    audit::record(&r.store, ev).await?;
    audit_reads(&r, &c, &reads, "match").await?;
    let b = crate::mpi::match_bundle(&found, |id| shown.get(id).cloned());
    Ok(fhir(StatusCode::OK, &b))
}
