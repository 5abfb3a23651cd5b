//! Prescription checks at the FHIR server (合理用药): every MedicationRequest created or updated
//! with status `active`, `draft` or `on-hold` is checked (`rx::KnowledgeBase::check`) against
//! what the platform holds of the patient — age from the Patient, active Conditions (ICD-10)
//! and pregnancy among them, active AllergyIntolerances, and the active MedicationRequests and
//! MedicationStatements — before it is accepted.
//!
//! - A `high` finding refuses the request (422, an OperationOutcome with one issue per finding,
//!   code `business-rule`, naming the rule, the knowledge base version and the source), audited
//!   as `health.rx.blocked`; the prescriber may override with a reason in the header
//!   `X-Override-Reason` (percent-encoded UTF-8, at least 4 characters), audited as
//!   `health.rx.override`.
//! - Every finding, blocking or not, is written as a FHIR DetectedIssue in the same transaction
//!   as the MedicationRequest it implicates (severity, ActCode category, detail with the source,
//!   the rule and the knowledge base version as identifiers, the override as a mitigation), so
//!   the patient's record and the regulators' statistics hold them.
//!
//! A medicine the knowledge base does not know is accepted unchecked.

use crate::records::{Filter, Records, patient_of};
use crate::rx::{self, Context, Finding, KnowledgeBase, Severity};
use axum::extract::State;
use kernel::access::Role;
use kernel::audit::{self, Actor, Event};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Query};
use kernel::store::{StoreError, col, now_ms, rfc3339_to_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(knowledge_base_info, publish))
        .routes(routes!(knowledge_base_file))
        .routes(routes!(versions))
        .routes(routes!(statistics))
}

/// The knowledge base as the kernel's versioned document: version 1 is the built-in starter
/// set (never stored); the health commission publishes the next ones.
pub const DOCUMENT: &str = "health.rx-kb";
pub const BUILTIN_VERSION: i64 = 1;

/// The knowledge bases read from stored versions, by (version, publication time): a new
/// publication is read once; a process serving several stores (the tests) keeps theirs apart.
type Read = Vec<((i64, i64), Arc<KnowledgeBase>)>;
static READ: LazyLock<std::sync::Mutex<Read>> = LazyLock::new(|| std::sync::Mutex::new(Vec::new()));

/// The knowledge base in force and its document version: the newest published version (one
/// small query per call tells whether one was published, on any node; its file is read once),
/// else the starter set. A stored version that no longer reads is logged and the starter set
/// used.
pub async fn in_force(store: &kernel::store::Store) -> Result<(i64, Arc<KnowledgeBase>), StoreError> {
    let row = sqlx::query(
        &store.sql("SELECT version, created_ms FROM config_documents WHERE name = $1 ORDER BY version DESC LIMIT 1"),
    )
    .bind(DOCUMENT)
    .fetch_optional(store.reader())
    .await?;
    let Some(row) = row else { return Ok((BUILTIN_VERSION, knowledge_base())) };
    let key: (i64, i64) = (col(&row, "version")?, col(&row, "created_ms")?);
    if let Some(kb) = READ.lock().ok().and_then(|c| c.iter().find(|(k, _)| *k == key).map(|(_, kb)| kb.clone())) {
        return Ok((key.0, kb));
    }
    let Some(doc) = kernel::versioned::get(store, DOCUMENT, key.0).await? else {
        return Ok((BUILTIN_VERSION, knowledge_base()));
    };
    let kb = match doc.body["toml"].as_str().map(KnowledgeBase::parse) {
        Some(Ok(kb)) => Arc::new(kb),
        Some(Err(e)) => {
            tracing::error!(version = key.0, error = %e, "a stored prescription knowledge base does not read; the starter set is used");
            knowledge_base()
        }
        None => {
            tracing::error!(
                version = key.0,
                "a stored prescription knowledge base has no text; the starter set is used"
            );
            knowledge_base()
        }
    };
    if let Ok(mut c) = READ.lock() {
        if c.len() >= 8 {
            c.remove(0);
        }
        c.push((key, kb.clone()));
    }
    Ok((key.0, kb))
}

/// The knowledge base in use.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RxKnowledgeBase)]
pub struct KbInfo {
    /// The document's version (1: the built-in starter set).
    pub document_version: i64,
    /// Whether it was published (not the built-in one).
    pub stored: bool,
    /// The knowledge base's own version and title, from the file.
    pub version: String,
    pub title: String,
    pub counts: rx::Counts,
}

fn info(v: i64, kb: &KnowledgeBase) -> KbInfo {
    KbInfo {
        document_version: v,
        stored: v != BUILTIN_VERSION,
        version: kb.version.clone(),
        title: kb.title.clone(),
        counts: kb.counts,
    }
}

/// The prescription knowledge base in force: its versions, title and how many rules of each
/// kind it holds (any signed-in user).
#[utoipa::path(get, path = "/api/health/rx/knowledge-base", tag = "health",
    responses((status = 200, body = KbInfo)), security(("session" = []), ("bearer" = [])))]
async fn knowledge_base_info(State(st): State<AppState>, Auth(_c): Auth) -> ApiResult<axum::Json<KbInfo>> {
    let (v, kb) = in_force(&st.store).await?;
    Ok(axum::Json(info(v, &kb)))
}

/// The file of the knowledge base in force (TOML), to read or to edit and publish again.
#[utoipa::path(get, path = "/api/health/rx/knowledge-base/file", tag = "health",
    responses((status = 200, description = "The knowledge base file", content_type = "application/toml")),
    security(("session" = []), ("bearer" = [])))]
async fn knowledge_base_file(State(st): State<AppState>, Auth(_c): Auth) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let text = match kernel::versioned::current(&st.store, DOCUMENT).await? {
        Some(doc) => doc.body["toml"].as_str().unwrap_or(rx::STARTER).to_string(),
        None => rx::STARTER.to_string(),
    };
    Ok(([(axum::http::header::CONTENT_TYPE, "application/toml; charset=utf-8")], text).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PublishRxKnowledgeBase)]
pub struct Publish {
    /// The document version the edit started from: 409 when another was published since.
    pub base_version: i64,
    /// The whole knowledge base file (TOML, at most 2 MiB).
    pub toml: String,
    /// Why, at most 1000 characters.
    #[serde(default)]
    pub note: String,
}

/// Publishes a new version of the knowledge base (the health commission's staff): the file is
/// read and checked as a whole (422 naming the entry: `toml` with the path in the message), a
/// stale `base_version` is a 409; checks use it at once, on every node.
#[utoipa::path(put, path = "/api/health/rx/knowledge-base", tag = "health", request_body = Publish,
    responses((status = 200, body = KbInfo), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn publish(
    State(st): State<AppState>,
    Auth(c): Auth,
    kernel::http::Json(p): kernel::http::Json<Publish>,
) -> ApiResult<axum::Json<KbInfo>> {
    let regulator = crate::health_api::is_health_regulator(&st, &c).await?;
    if !regulator {
        let ev = Event::new(Actor::of(&c), "health.rx.publish", "rx", None, kernel::audit::Outcome::Denied)
            .detail(json!({ "refusal": "not_health_regulator" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("the knowledge base is published by the health commission (由卫健委发布)")
        });
    }
    if p.toml.len() > 2 * 1024 * 1024 {
        return Err(ApiError::field(Code::InvalidField, "toml", "at most 2 MiB"));
    }
    let kb = KnowledgeBase::parse(&p.toml).map_err(|e| ApiError::field(Code::InvalidField, "toml", e.to_string()))?;
    let body = json!({ "toml": p.toml });
    let draft = kernel::versioned::Draft {
        name: DOCUMENT,
        base_version: Some(p.base_version),
        builtin_version: BUILTIN_VERSION,
        body: &body,
        note: &p.note,
    };
    let v = kernel::versioned::publish(&st.store, st.bus.as_ref(), Actor::of(&c), draft).await?;
    Ok(axum::Json(info(v, &kb)))
}

/// The published versions of the knowledge base, newest first (without their files).
#[utoipa::path(get, path = "/api/health/rx/knowledge-base/versions", tag = "health",
    params(kernel::versioned::VersionsQuery),
    responses((status = 200, body = kernel::http::Paged<kernel::versioned::VersionInfo>)),
    security(("session" = []), ("bearer" = [])))]
async fn versions(
    State(st): State<AppState>,
    Auth(_c): Auth,
    Query(q): Query<kernel::versioned::VersionsQuery>,
) -> ApiResult<axum::Json<kernel::http::Paged<kernel::versioned::VersionInfo>>> {
    Ok(axum::Json(kernel::versioned::page(&st.store, DOCUMENT, &q).await?))
}

/// One institution's prescription check figures.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = RxFigures)]
pub struct Figures {
    pub org_id: String,
    pub org_name: Option<String>,
    /// MedicationRequests written in the period.
    pub prescriptions: i64,
    /// Findings (DetectedIssues) by severity, and per 1 000 prescriptions.
    pub alerts: i64,
    pub high: i64,
    pub moderate: i64,
    pub low: i64,
    pub alerts_per_1000: Option<f64>,
    /// High findings overridden by the prescriber.
    pub overrides: i64,
}

/// The most frequent interactions found.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RxTopRule)]
pub struct TopRule {
    pub rule: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RxStatistics)]
pub struct Statistics {
    pub since: String,
    pub knowledge_base: String,
    pub institutions: Vec<Figures>,
    pub top_interactions: Vec<TopRule>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// From this time (RFC 3339); the last 30 days by default.
    pub since: Option<String>,
}

/// Prescription supervision figures (合理用药监管): per institution the prescriptions, the
/// findings by severity and per 1 000 prescriptions, the overrides; the most frequent
/// interactions. Counts only: the health commission's staff see every institution, a clinician
/// their own.
#[utoipa::path(get, path = "/api/health/rx/statistics", tag = "health", params(Period),
    responses((status = 200, body = Statistics), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn statistics(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(p): Query<Period>,
) -> ApiResult<axum::Json<Statistics>> {
    let regulator = crate::health_api::is_health_regulator(&st, &c).await?;
    if !regulator && c.role != Role::Clinician {
        let ev = Event::new(Actor::of(&c), "health.rx.statistics", "rx", None, kernel::audit::Outcome::Denied)
            .detail(json!({ "refusal": "not_health_staff" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("prescription figures are for the health commission and clinicians (仅卫健人员可查)")
        });
    }
    let since = match p.since.as_deref() {
        Some(s) => rfc3339_to_ms(s)
            .ok_or_else(|| ApiError::field(Code::InvalidField, "since", "an RFC 3339 time (时间格式错误)"))?,
        None => now_ms() - 30 * 24 * 3_600_000,
    };
    let org_filter = if regulator { "" } else { " AND (r.owner_org || '') = $2" };
    let q = |sql: String| {
        let st = st.clone();
        let org = c.org_id.clone();
        async move {
            let sql = st.store.sql(&sql);
            let mut q = sqlx::query(&sql).bind(since);
            if !regulator {
                q = q.bind(org);
            }
            q.fetch_all(st.store.reader()).await.map_err(StoreError::from)
        }
    };
    let mut by: BTreeMap<String, Figures> = BTreeMap::new();
    fn fig(by: &mut BTreeMap<String, Figures>, org: String) -> &mut Figures {
        by.entry(org.clone()).or_insert_with(|| Figures { org_id: org, ..Default::default() })
    }
    for row in q(format!(
        "SELECT r.owner_org, COUNT(*) AS n FROM health_resources r WHERE r.type = 'MedicationRequest' \
         AND r.created_ms >= $1{org_filter} GROUP BY r.owner_org"
    ))
    .await?
    {
        fig(&mut by, col(&row, "owner_org")?).prescriptions = col(&row, "n")?;
    }
    for row in q(format!(
        "SELECT r.owner_org, t.code, COUNT(*) AS n FROM health_resources r JOIN health_tokens t \
         ON t.type = r.type AND t.id = r.id AND t.param = 'severity' WHERE r.type = 'DetectedIssue' \
         AND r.deleted = 0 AND r.created_ms >= $1{org_filter} GROUP BY r.owner_org, t.code"
    ))
    .await?
    {
        let f = fig(&mut by, col(&row, "owner_org")?);
        let n: i64 = col(&row, "n")?;
        match col::<String>(&row, "code")?.as_str() {
            "high" => f.high += n,
            "moderate" => f.moderate += n,
            _ => f.low += n,
        }
        f.alerts += n;
    }
    for row in q(format!(
        "SELECT r.owner_org, COUNT(DISTINCT r.id) AS n FROM health_resources r JOIN health_tokens t \
         ON t.type = r.type AND t.id = r.id AND t.param = 'mitigation' WHERE r.type = 'DetectedIssue' \
         AND r.deleted = 0 AND r.created_ms >= $1{org_filter} GROUP BY r.owner_org"
    ))
    .await?
    {
        fig(&mut by, col(&row, "owner_org")?).overrides = col(&row, "n")?;
    }
    let top = q(format!(
        "SELECT t.code AS rule, COUNT(*) AS n FROM health_resources r \
         JOIN health_tokens t ON t.type = r.type AND t.id = r.id AND t.param = 'identifier' AND t.system = '{RULE_SYSTEM}' \
         JOIN health_tokens k ON k.type = r.type AND k.id = r.id AND k.param = 'code' AND k.code = 'DRG' \
         WHERE r.type = 'DetectedIssue' AND r.deleted = 0 AND r.created_ms >= $1{org_filter} \
         GROUP BY t.code ORDER BY n DESC, t.code LIMIT 10"
    ))
    .await?
    .iter()
    .map(|row| Ok(TopRule { rule: col(row, "rule")?, count: col(row, "n")? }))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let mut institutions: Vec<Figures> = by.into_values().collect();
    for f in &mut institutions {
        f.alerts_per_1000 = (f.prescriptions > 0).then(|| f.alerts as f64 * 1000.0 / f.prescriptions as f64);
        f.org_name = kernel::orgs::get(&st.store, &f.org_id).await?.map(|o| o.name);
    }
    let ev = Event::new(Actor::of(&c), "health.rx.statistics", "rx", None, kernel::audit::Outcome::Success);
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(Statistics {
        since: kernel::store::ms_to_rfc3339(since),
        knowledge_base: in_force(&st.store).await?.1.version.clone(),
        institutions,
        top_interactions: top,
    }))
}

/// The knowledge base in force: the starter set (publication by the health commission comes
/// with its versioned document).
static KB: LazyLock<Arc<KnowledgeBase>> = LazyLock::new(|| Arc::new(KnowledgeBase::starter()));

pub fn knowledge_base() -> Arc<KnowledgeBase> {
    KB.clone()
}

pub const RULE_SYSTEM: &str = "urn:wuqing:rx-rule";
pub const KB_SYSTEM: &str = "urn:wuqing:rx-knowledge-base";

/// The least an override reason must say (characters, after trimming).
pub const MIN_OVERRIDE_CHARS: usize = 4;

/// Whether a MedicationRequest in this state is checked.
pub fn is_checked(request: &Value) -> bool {
    request["resourceType"] == "MedicationRequest"
        && matches!(request["status"].as_str(), Some("active" | "draft" | "on-hold"))
}

/// What a check found for one MedicationRequest.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub kb_version: String,
}

impl Outcome {
    pub fn blocks(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::High)
    }
}

/// Checks `request` (the MedicationRequest as it will be stored, `id` its id) for its patient.
pub async fn check(r: &Records, request: &Value, id: &str) -> Result<Outcome, StoreError> {
    if !is_checked(request) {
        return Ok(Outcome::default());
    }
    let (_, kb) = in_force(&r.store).await?;
    let mut out = Outcome { findings: vec![], kb_version: kb.version.clone() };
    let Some(drug) = kb.resolve(&request["medicationCodeableConcept"]) else { return Ok(out) };
    let Some(patient) = patient_of(request) else { return Ok(out) };
    let ctx = context(r, &kb, &patient, id).await?;
    let daily = rx::daily_mg(&request["dosageInstruction"]);
    out.findings = kb.check(&[(drug, daily)], &ctx);
    Ok(out)
}

async fn of_patient(r: &Records, rt: &str, patient: &str) -> Result<Vec<Value>, StoreError> {
    let mut f = Filter::default();
    f.patient(patient);
    Ok(r.search(rt, f, 500, 0, false).await?.items.into_iter().map(|s| s.body).collect())
}

fn active(v: &Value, field: &str) -> bool {
    v[field]["coding"].as_array().is_none_or(|cs| {
        cs.iter().all(|c| c["code"].as_str().is_none_or(|x| x == "active" || x == "recurrence" || x == "relapse"))
    })
}

/// What the platform holds of the patient that a check reads.
async fn context(r: &Records, kb: &KnowledgeBase, patient: &str, request_id: &str) -> Result<Context, StoreError> {
    let mut ctx = Context::default();
    if let Some(p) = r.current("Patient", patient).await? {
        ctx.age_years = p.body["birthDate"].as_str().and_then(age_years);
    }
    for c in of_patient(r, "Condition", patient).await? {
        if !active(&c, "clinicalStatus") {
            continue;
        }
        for coding in c["code"]["coding"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(code) = coding["code"].as_str() {
                ctx.conditions.push(code.to_string());
            }
        }
    }
    ctx.pregnant = rx::pregnant(&ctx.conditions);
    for a in of_patient(r, "AllergyIntolerance", patient).await? {
        if !active(&a, "clinicalStatus") {
            continue;
        }
        let code = &a["code"];
        for coding in code["coding"].as_array().map(Vec::as_slice).unwrap_or_default() {
            ctx.allergies.extend(["code", "display"].iter().filter_map(|k| coding[*k].as_str()).map(str::to_string));
        }
        ctx.allergies.extend(code["text"].as_str().map(str::to_string));
    }
    for m in of_patient(r, "MedicationRequest", patient).await? {
        if m["id"].as_str() != Some(request_id) && m["status"] == "active" {
            ctx.current.extend(kb.resolve(&m["medicationCodeableConcept"]));
        }
    }
    for m in of_patient(r, "MedicationStatement", patient).await? {
        if m["status"] == "active" {
            ctx.current.extend(kb.resolve(&m["medicationCodeableConcept"]));
        }
    }
    ctx.current.sort_unstable();
    ctx.current.dedup();
    Ok(ctx)
}

/// Whole years from a FHIR birth date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`) to today in Beijing.
fn age_years(birth: &str) -> Option<u32> {
    let today = crate::contract::today_date();
    let y: i32 = birth.get(..4)?.parse().ok()?;
    let m: u8 = birth.get(5..7).and_then(|s| s.parse().ok()).unwrap_or(1);
    let d: u8 = birth.get(8..10).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut age = today.year() - y;
    if (u8::from(today.month()), today.day()) < (m, d) {
        age -= 1;
    }
    u32::try_from(age).ok()
}

/// The findings as DetectedIssues implicating `MedicationRequest/<request_id>` (with the
/// override as a mitigation, when one was given).
pub fn detected_issues(
    outcome: &Outcome,
    patient: &str,
    request_id: &str,
    author: &str,
    at: &str,
    override_reason: Option<&str>,
) -> Vec<(String, Value)> {
    outcome
        .findings
        .iter()
        .map(|f| {
            let id = uuid::Uuid::now_v7().to_string();
            let (code, display) = f.kind.act_code();
            let mut detail = format!("{}：{}", f.drug_name, f.detail);
            if let Some(w) = &f.with {
                detail.push_str(&format!("（{w}）"));
            }
            if let Some(a) = &f.advice {
                detail.push_str(&format!("。建议：{a}"));
            }
            detail.push_str(&format!("。来源：{}", f.source));
            let mut v = json!({
                "resourceType": "DetectedIssue",
                "id": id,
                "identifier": [
                    { "system": RULE_SYSTEM, "value": f.rule },
                    { "system": KB_SYSTEM, "value": outcome.kb_version },
                ],
                "status": "final",
                "code": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display }] },
                "severity": f.severity.as_str(),
                "patient": { "reference": format!("Patient/{patient}") },
                "identifiedDateTime": at,
                "author": { "display": author },
                "implicated": [{ "reference": format!("MedicationRequest/{request_id}") }],
                "detail": detail,
            });
            if let Some(reason) = override_reason {
                v["mitigation"] = json!([{
                    "action": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "1", "display": "Therapy Appropriate" }], "text": reason },
                    "date": at,
                    "author": { "display": author },
                }]);
            }
            (id, v)
        })
        .collect()
}

/// The findings as OperationOutcome issues (a refusal's body).
pub fn issues(outcome: &Outcome) -> Vec<crate::fhir::validate::Issue> {
    outcome
        .findings
        .iter()
        .map(|f| crate::fhir::validate::Issue {
            code: "business-rule",
            path: "MedicationRequest.medication".into(),
            diagnostics: format!(
                "[{}] {} {}：{}{}（规则 {}，知识库 {}；来源：{}）",
                f.severity.as_str(),
                f.kind.act_code().1,
                f.drug_name,
                f.detail,
                f.with.as_ref().map(|w| format!("（{w}）")).unwrap_or_default(),
                f.rule,
                outcome.kb_version,
                f.source
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_from_birth_dates() {
        let today = crate::contract::today_date();
        let y = today.year();
        assert_eq!(age_years(&format!("{}-01-01", y - 40)), Some(40));
        assert_eq!(age_years(&format!("{}", y - 40)), Some(40), "a year alone counts from 1 January");
        let birthday_passed = crate::contract::day(today.replace_year(y - 30).unwrap_or(today));
        assert_eq!(age_years(&birthday_passed), Some(30));
        assert_eq!(age_years("garbage"), None);
        assert_eq!(age_years(&format!("{}-01-01", y + 1)), None, "not born yet");
    }
}
