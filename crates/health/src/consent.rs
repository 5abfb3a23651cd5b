//! What a patient's Consents say about one request to their record (R4 Consent, privacy scope):
//! who asks (actor references: the practitioner, the institution), for what purpose, which kind
//! of data, when. A provision states a base rule (permit or deny) for the requests it covers; its
//! nested provisions are exceptions to it, and a nested rule that covers the request overrides
//! its parent (a deny among several that cover it wins). Among a patient's active consents that
//! speak to a request, the newest decides. Pure: resources in, a decision out; the server adds
//! the care relationships and break-glass around it.

use crate::fhir::datetime::{self, Kind, Period};
use serde_json::Value;
use time::UtcOffset;

/// A request to read (or otherwise use) part of a patient's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `Patient/<id>` whose record it is.
    pub patient: String,
    /// The requester and those on whose behalf they act: `Practitioner/d1`, `Organization/h1`.
    pub actors: Vec<String>,
    /// v3 PurposeOfUse code: `TREAT`, `ETREAT` (emergency), `HPAYMT`, `HRESCH`, …
    pub purpose: String,
    /// Consent action code: `access`, `collect`, `use`, `disclose`, `correct`.
    pub action: String,
    /// The resource type asked for (`Observation`).
    pub class: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Permit,
    Deny,
    /// No active consent speaks to the request: the platform's default rules apply.
    NotApplicable,
}

fn codes(v: &Value) -> impl Iterator<Item = &str> {
    // A list of Codings, or of CodeableConcepts holding Codings.
    v.as_array().into_iter().flatten().flat_map(|c| {
        let own = c["code"].as_str().into_iter();
        let nested = c["coding"].as_array().into_iter().flatten().filter_map(|x| x["code"].as_str());
        own.chain(nested)
    })
}

fn period_covers(p: &Value, at_ms: i64, zone: UtcOffset) -> bool {
    if p.is_null() {
        return true;
    }
    let bound = |k: &str| p[k].as_str().and_then(|s| datetime::parse(s, Kind::DateTime, zone).ok()).map(|(p, _)| p);
    let start = bound("start").map_or(i64::MIN, |p: Period| p.start_ms);
    let end = bound("end").map_or(i64::MAX, |p: Period| p.end_ms);
    start <= at_ms && at_ms < end
}

/// Whether a provision's own criteria (those it states; an absent one covers everything) cover
/// the request.
fn covers(p: &Value, r: &Request, zone: UtcOffset) -> bool {
    let listed = |k: &str| p[k].as_array().is_some_and(|a| !a.is_empty());
    let actor_ok = !listed("actor")
        || p["actor"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["reference"]["reference"].as_str())
            .any(|a| r.actors.iter().any(|x| x == a));
    let action_ok = !listed("action") || codes(&p["action"]).any(|c| c == r.action);
    let purpose_ok = !listed("purpose") || codes(&p["purpose"]).any(|c| c == r.purpose);
    let class_ok = !listed("class") || codes(&p["class"]).any(|c| c == r.class);
    actor_ok && action_ok && purpose_ok && class_ok && period_covers(&p["period"], r.at_ms, zone)
}

/// The rule of a provision for a request it covers: its own type (or the inherited one), unless
/// nested provisions that cover the request say otherwise (deny wins among them).
fn evaluate(p: &Value, r: &Request, inherited: Option<Decision>, zone: UtcOffset, depth: usize) -> Option<Decision> {
    if depth > 16 || !covers(p, r, zone) {
        return None;
    }
    let own = match p["type"].as_str() {
        Some("permit") => Some(Decision::Permit),
        Some("deny") => Some(Decision::Deny),
        _ => inherited,
    };
    let nested: Vec<Decision> =
        p["provision"].as_array().into_iter().flatten().filter_map(|n| evaluate(n, r, own, zone, depth + 1)).collect();
    if nested.contains(&Decision::Deny) {
        Some(Decision::Deny)
    } else if nested.contains(&Decision::Permit) {
        Some(Decision::Permit)
    } else {
        own
    }
}

/// The decision of a patient's consents on a request.
pub fn decide(consents: &[Value], r: &Request, zone: UtcOffset) -> Decision {
    let mut applicable: Vec<(i64, Decision)> = consents
        .iter()
        .filter(|c| c["resourceType"] == "Consent" && c["status"] == "active")
        .filter(|c| c["patient"]["reference"].as_str() == Some(r.patient.as_str()))
        .filter_map(|c| {
            let when = c["dateTime"]
                .as_str()
                .and_then(|s| datetime::parse(s, Kind::DateTime, zone).ok())
                .map_or(i64::MIN, |(p, _)| p.start_ms);
            evaluate(&c["provision"], r, None, zone, 0).map(|d| (when, d))
        })
        .collect();
    applicable.sort_by_key(|(when, _)| *when);
    applicable.last().map_or(Decision::NotApplicable, |(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::datetime::BEIJING;
    use serde_json::json;

    fn at(s: &str) -> i64 {
        datetime::parse(s, Kind::DateTime, BEIJING).unwrap().0.start_ms
    }

    fn request(actor: &str, purpose: &str, class: &str, when: &str) -> Request {
        Request {
            patient: "Patient/p1".into(),
            actors: vec![actor.into(), "Organization/people-hospital".into()],
            purpose: purpose.into(),
            action: "access".into(),
            class: class.into(),
            at_ms: at(when),
        }
    }

    /// Opt-in for the district hospital for treatment, for a year, except mental-health notes
    /// (DocumentReference) unless in an emergency.
    fn consent() -> Value {
        json!({ "resourceType": "Consent", "status": "active", "patient": { "reference": "Patient/p1" }, "dateTime": "2026-03-01",
            "scope": { "text": "privacy" }, "category": [{ "text": "x" }],
            "provision": { "type": "deny", "provision": [{
                "type": "permit",
                "period": { "start": "2026-03-01", "end": "2027-03-01" },
                "actor": [{ "role": { "text": "custodian" }, "reference": { "reference": "Organization/people-hospital" } }],
                "purpose": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT" }, { "code": "ETREAT" }],
                "provision": [{ "type": "deny", "class": [{ "code": "DocumentReference" }],
                    "provision": [{ "type": "permit", "purpose": [{ "code": "ETREAT" }] }] }]
            }] } })
    }

    #[test]
    fn a_permit_with_exceptions_inside_a_deny() {
        let c = [consent()];
        let d = |r: Request| decide(&c, &r, BEIJING);
        assert_eq!(d(request("Practitioner/d1", "TREAT", "Observation", "2026-06-01")), Decision::Permit);
        assert_eq!(
            d(request("Practitioner/d1", "HRESCH", "Observation", "2026-06-01")),
            Decision::Deny,
            "research is not covered"
        );
        assert_eq!(d(request("Practitioner/d1", "TREAT", "DocumentReference", "2026-06-01")), Decision::Deny);
        assert_eq!(
            d(request("Practitioner/d1", "ETREAT", "DocumentReference", "2026-06-01")),
            Decision::Permit,
            "the exception's exception"
        );
        assert_eq!(
            d(request("Practitioner/d1", "TREAT", "Observation", "2027-06-01")),
            Decision::Deny,
            "after the period"
        );
        let mut elsewhere = request("Practitioner/d9", "TREAT", "Observation", "2026-06-01");
        elsewhere.actors = vec!["Practitioner/d9".into(), "Organization/tcm-hospital".into()];
        assert_eq!(d(elsewhere), Decision::Deny);
        let mut other_patient = request("Practitioner/d1", "TREAT", "Observation", "2026-06-01");
        other_patient.patient = "Patient/p2".into();
        assert_eq!(d(other_patient), Decision::NotApplicable);
    }

    #[test]
    fn only_active_consents_count_and_the_newest_decides() {
        let r = request("Practitioner/d1", "TREAT", "Observation", "2026-06-01");
        let mut inactive = consent();
        inactive["status"] = json!("inactive");
        assert_eq!(decide(&[inactive], &r, BEIJING), Decision::NotApplicable);
        let withdrawn = json!({ "resourceType": "Consent", "status": "active", "patient": { "reference": "Patient/p1" },
            "dateTime": "2026-05-01", "provision": { "type": "deny" } });
        assert_eq!(decide(&[consent(), withdrawn.clone()], &r, BEIJING), Decision::Deny, "a later refusal");
        assert_eq!(decide(&[withdrawn, consent()], &r, BEIJING), Decision::Deny, "order of the list does not matter");
        assert_eq!(decide(&[], &r, BEIJING), Decision::NotApplicable);
        // Nested without end is cut off, not a stack overflow.
        let mut deep = json!({ "type": "permit" });
        for _ in 0..1_000 {
            deep = json!({ "provision": [deep] });
        }
        let c = json!({ "resourceType": "Consent", "status": "active", "patient": { "reference": "Patient/p1" }, "provision": deep });
        let _ = decide(&[c], &r, BEIJING);
    }
}
