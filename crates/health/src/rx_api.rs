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
use kernel::store::StoreError;
use serde_json::{Value, json};
use std::sync::{Arc, LazyLock};

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
    let kb = knowledge_base();
    let mut out = Outcome { findings: vec![], kb_version: kb.version.clone() };
    if !is_checked(request) {
        return Ok(out);
    }
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
