//! The search parameters the server supports (the International Patient Access set and a few
//! more) and what a resource gives each of them: the entries a store keeps beside the resource so
//! that a search is a lookup, not a scan. Pure: resource in, entries out.

use super::datetime::{self, Kind, Period};
use serde_json::Value;
use time::UtcOffset;

/// How a parameter's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Token,
    Date,
    String,
    Reference,
}

/// A search parameter: its resource type, name, type, and the elements it reads (a choice
/// element as `effective[x]`; nested elements with dots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub resource: &'static str,
    pub name: &'static str,
    pub kind: ParamType,
    pub paths: &'static [&'static str],
}

const fn p(resource: &'static str, name: &'static str, kind: ParamType, paths: &'static [&'static str]) -> SearchParam {
    SearchParam { resource, name, kind, paths }
}

use ParamType::{Date, Reference, String as Str, Token};

/// The supported parameters (R4 names; `patient` reads `subject` where the resource has one).
pub const PARAMS: &[SearchParam] = &[
    p("Patient", "identifier", Token, &["identifier"]),
    p("Patient", "name", Str, &["name.text", "name.family", "name.given"]),
    p("Patient", "family", Str, &["name.family"]),
    p("Patient", "given", Str, &["name.given"]),
    p("Patient", "birthdate", Date, &["birthDate"]),
    p("Patient", "gender", Token, &["gender"]),
    p("Patient", "telecom", Token, &["telecom"]),
    p("Patient", "organization", Reference, &["managingOrganization"]),
    p("Patient", "general-practitioner", Reference, &["generalPractitioner"]),
    p("Observation", "patient", Reference, &["subject"]),
    p("Observation", "category", Token, &["category"]),
    p("Observation", "code", Token, &["code"]),
    p("Observation", "date", Date, &["effective[x]"]),
    p("Observation", "status", Token, &["status"]),
    p("Observation", "encounter", Reference, &["encounter"]),
    p("Condition", "patient", Reference, &["subject"]),
    p("Condition", "category", Token, &["category"]),
    p("Condition", "code", Token, &["code"]),
    p("Condition", "clinical-status", Token, &["clinicalStatus"]),
    p("Condition", "onset-date", Date, &["onset[x]"]),
    p("Encounter", "patient", Reference, &["subject"]),
    p("Encounter", "date", Date, &["period"]),
    p("Encounter", "class", Token, &["class"]),
    p("Encounter", "status", Token, &["status"]),
    p("Encounter", "service-provider", Reference, &["serviceProvider"]),
    p("AllergyIntolerance", "patient", Reference, &["patient"]),
    p("AllergyIntolerance", "clinical-status", Token, &["clinicalStatus"]),
    p("AllergyIntolerance", "code", Token, &["code"]),
    p("Immunization", "patient", Reference, &["patient"]),
    p("Immunization", "date", Date, &["occurrence[x]"]),
    p("Immunization", "status", Token, &["status"]),
    p("Immunization", "vaccine-code", Token, &["vaccineCode"]),
    p("DetectedIssue", "patient", Reference, &["patient"]),
    p("DetectedIssue", "code", Token, &["code"]),
    p("DetectedIssue", "implicated", Reference, &["implicated"]),
    p("DetectedIssue", "identified", Date, &["identified[x]"]),
    p("DetectedIssue", "identifier", Token, &["identifier"]),
    // Platform extensions, for the prescription supervision figures.
    p("DetectedIssue", "severity", Token, &["severity"]),
    p("DetectedIssue", "mitigation", Token, &["mitigation.action"]),
    p("MedicationRequest", "patient", Reference, &["subject"]),
    p("MedicationRequest", "status", Token, &["status"]),
    p("MedicationRequest", "intent", Token, &["intent"]),
    p("MedicationRequest", "authoredon", Date, &["authoredOn"]),
    p("MedicationRequest", "code", Token, &["medication[x]"]),
    p("MedicationStatement", "patient", Reference, &["subject"]),
    p("MedicationStatement", "status", Token, &["status"]),
    p("MedicationStatement", "effective", Date, &["effective[x]"]),
    p("DiagnosticReport", "patient", Reference, &["subject"]),
    p("DiagnosticReport", "category", Token, &["category"]),
    p("DiagnosticReport", "code", Token, &["code"]),
    p("DiagnosticReport", "date", Date, &["effective[x]"]),
    p("DocumentReference", "patient", Reference, &["subject"]),
    p("DocumentReference", "category", Token, &["category"]),
    p("DocumentReference", "type", Token, &["type"]),
    p("DocumentReference", "date", Date, &["date"]),
    p("DocumentReference", "status", Token, &["status"]),
    p("Organization", "identifier", Token, &["identifier"]),
    p("Organization", "name", Str, &["name", "alias"]),
    p("Practitioner", "identifier", Token, &["identifier"]),
    p("Practitioner", "name", Str, &["name.text", "name.family", "name.given"]),
    p("PractitionerRole", "practitioner", Reference, &["practitioner"]),
    p("PractitionerRole", "organization", Reference, &["organization"]),
    p("Consent", "patient", Reference, &["patient"]),
    p("CarePlan", "patient", Reference, &["subject"]),
    p("CarePlan", "status", Token, &["status"]),
    p("CarePlan", "category", Token, &["category"]),
    p("CarePlan", "date", Date, &["period"]),
    p("CarePlan", "identifier", Token, &["identifier"]),
    p("Consent", "status", Token, &["status"]),
    p("Provenance", "target", Reference, &["target"]),
    p("ImagingStudy", "patient", Reference, &["subject"]),
    p("ImagingStudy", "started", Date, &["started"]),
    p("Group", "identifier", Token, &["identifier"]),
    p("Group", "type", Token, &["type"]),
    p("Group", "name", Str, &["name"]),
    p("Group", "member", Reference, &["member.entity"]),
];

/// The parameters of a resource type.
pub fn params_of(resource_type: &str) -> impl Iterator<Item = &'static SearchParam> {
    PARAMS.iter().filter(move |p| p.resource == resource_type)
}

/// One entry of a resource for a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Token {
        system: Option<String>,
        code: String,
    },
    Date(Period),
    /// Lower case, white space collapsed (FHIR string search is case- and accent-insensitive and
    /// matches the start; accents are left as they are here).
    String(String),
    /// `Type/id` of a relative reference.
    Reference {
        target_type: String,
        id: String,
    },
}

/// The values at `path` in `v`, through lists; a choice element `x[x]` reads whichever `xType`
/// is present (with its type suffix).
fn values<'a>(v: &'a Value, path: &str, out: &mut Vec<(&'a Value, &'a str)>) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(o) = v.as_object() else { return };
    let found: Vec<(&Value, &str)> = match head.strip_suffix("[x]") {
        Some(stem) => o
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(stem).filter(|s| s.starts_with(char::is_uppercase)).map(|s| (v, s)))
            .collect(),
        None => o.get(head).map(|v| vec![(v, "")]).unwrap_or_default(),
    };
    for (found, suffix) in found {
        let items: Vec<&Value> = match found {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in items {
            match rest {
                Some(r) => values(item, r, out),
                None => out.push((item, suffix)),
            }
        }
    }
}

/// A string as string search compares it: white space collapsed, lower case.
pub fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The entries a resource gives a parameter; a zone-less date is read in `zone`.
pub fn extract(resource: &Value, param: &SearchParam, zone: UtcOffset) -> Vec<Entry> {
    let mut found = vec![];
    for path in param.paths {
        values(resource, path, &mut found);
    }
    let mut out = vec![];
    for (v, suffix) in found {
        match param.kind {
            ParamType::Token => tokens(v, &mut out),
            ParamType::String => {
                if let Some(s) = v.as_str().map(norm).filter(|s| !s.is_empty()) {
                    out.push(Entry::String(s));
                }
            }
            ParamType::Reference => {
                let target = v["reference"].as_str().unwrap_or_default();
                let mut parts = target.split('/');
                if let (Some(t), Some(id)) = (parts.next(), parts.next()) {
                    if t.starts_with(char::is_uppercase) && !id.is_empty() {
                        out.push(Entry::Reference { target_type: t.to_string(), id: id.to_string() });
                    }
                }
            }
            ParamType::Date => {
                let period = match (v, suffix) {
                    (Value::Object(o), _) if suffix == "Period" || o.contains_key("start") || o.contains_key("end") => {
                        let start = o
                            .get("start")
                            .and_then(Value::as_str)
                            .and_then(|s| datetime::parse(s, Kind::DateTime, zone).ok());
                        let end = o
                            .get("end")
                            .and_then(Value::as_str)
                            .and_then(|s| datetime::parse(s, Kind::DateTime, zone).ok());
                        match (start, end) {
                            (None, None) => None,
                            // An open end runs on for ever; an open start from the beginning.
                            (s, e) => Some(Period {
                                start_ms: s.map_or(i64::MIN, |(p, _)| p.start_ms),
                                end_ms: e.map_or(i64::MAX, |(p, _)| p.end_ms),
                            }),
                        }
                    }
                    (Value::String(s), _) => datetime::parse(s, Kind::DateTime, zone)
                        .or_else(|_| datetime::parse(s, Kind::Instant, zone))
                        .ok()
                        .map(|(p, _)| p),
                    _ => None,
                };
                if let Some(p) = period.filter(|p| p.start_ms < p.end_ms) {
                    out.push(Entry::Date(p));
                }
            }
        }
    }
    out
}

/// Tokens of a code, boolean, Coding, CodeableConcept, Identifier or ContactPoint.
fn tokens(v: &Value, out: &mut Vec<Entry>) {
    match v {
        Value::String(s) => out.push(Entry::Token { system: None, code: s.clone() }),
        Value::Bool(b) => out.push(Entry::Token { system: None, code: b.to_string() }),
        Value::Object(o) => {
            if let Some(codings) = o.get("coding").and_then(Value::as_array) {
                for c in codings {
                    tokens(c, out);
                }
                return;
            }
            // Coding (system, code), Identifier (system, value), ContactPoint (system, value).
            let code = o.get("code").or(o.get("value")).and_then(Value::as_str);
            if let Some(code) = code {
                let system = o.get("system").and_then(Value::as_str).map(str::to_string);
                out.push(Entry::Token { system, code: code.to_string() });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::datetime::BEIJING;
    use crate::fhir::search::{DateSearch, Token};
    use serde_json::json;

    fn param(resource: &str, name: &str) -> &'static SearchParam {
        params_of(resource).find(|p| p.name == name).unwrap()
    }

    #[test]
    fn every_parameter_reads_elements_its_resource_has() {
        for p in PARAMS {
            let own = crate::fhir::validate::definition(p.resource)
                .unwrap_or_else(|| panic!("{} is not supported", p.resource));
            for path in p.paths {
                let head = path.split('.').next().unwrap_or_default();
                assert!(own.iter().any(|e| e.name == head), "{}.{head} ({})", p.resource, p.name);
            }
        }
    }

    #[test]
    fn a_generated_observation_is_found_by_patient_code_category_and_date() {
        let mut obs = None;
        crate::generate::district(200, 2, 2026, |t, v| {
            if t == "Observation" && obs.is_none() {
                obs = Some(v);
            }
        });
        let o = obs.expect("an observation");
        let patient = extract(&o, param("Observation", "patient"), BEIJING);
        assert!(
            matches!(&patient[..], [Entry::Reference { target_type, .. }] if target_type == "Patient"),
            "{patient:?}"
        );
        let code = extract(&o, param("Observation", "code"), BEIJING);
        let Entry::Token { system, code: c } = &code[0] else { panic!("{code:?}") };
        assert!(Token::parse(&format!("http://loinc.org|{c}")).unwrap().matches(system.as_deref(), c));
        let cat = extract(&o, param("Observation", "category"), BEIJING);
        assert!(!cat.is_empty());
        let [Entry::Date(when)] = &extract(&o, param("Observation", "date"), BEIJING)[..] else { panic!() };
        assert!(DateSearch::parse("2026", BEIJING).unwrap().matches(when, 0));
        assert!(!DateSearch::parse("2025", BEIJING).unwrap().matches(when, 0));
    }

    #[test]
    fn entries_of_each_type() {
        let pt = json!({ "resourceType": "Patient", "identifier": [{ "system": "urn:x", "value": "1" }, { "value": "2" }],
            "name": [{ "family": "王", "given": ["芳 ", "Mary  Ann"] }], "birthDate": "1980-02", "gender": "female",
            "telecom": [{ "system": "phone", "value": "138" }], "managingOrganization": { "reference": "Organization/o1" } });
        assert_eq!(
            extract(&pt, param("Patient", "identifier"), BEIJING),
            vec![
                Entry::Token { system: Some("urn:x".into()), code: "1".into() },
                Entry::Token { system: None, code: "2".into() },
            ]
        );
        assert_eq!(
            extract(&pt, param("Patient", "given"), BEIJING),
            vec![Entry::String("芳".into()), Entry::String("mary ann".into())]
        );
        let [Entry::Date(p)] = &extract(&pt, param("Patient", "birthdate"), BEIJING)[..] else { panic!() };
        assert_eq!(*p, datetime::parse("1980-02", Kind::Date, BEIJING).unwrap().0, "the whole month");
        assert_eq!(
            extract(&pt, param("Patient", "organization"), BEIJING),
            vec![Entry::Reference { target_type: "Organization".into(), id: "o1".into() }]
        );
        // An open period, and a reference that is not relative, and nothing at all.
        let enc = json!({ "resourceType": "Encounter", "status": "in-progress", "class": { "code": "IMP" },
            "period": { "start": "2026-03-01T08:00:00+08:00" }, "subject": { "reference": "http://elsewhere/Patient/1" } });
        let [Entry::Date(p)] = &extract(&enc, param("Encounter", "date"), BEIJING)[..] else { panic!() };
        assert_eq!(p.end_ms, i64::MAX);
        assert!(extract(&enc, param("Encounter", "patient"), BEIJING).is_empty());
        assert!(extract(&json!({}), param("Encounter", "class"), BEIJING).is_empty());
    }
}

/// Whether a resource belongs to the record of `Patient/<patient>`: the Patient itself, or a
/// resource whose `patient` parameter refers to it (the patient compartment, as far as the
/// supported resources go).
pub fn in_compartment(resource: &Value, patient: &str, zone: UtcOffset) -> bool {
    let Some(rt) = resource["resourceType"].as_str() else { return false };
    if rt == "Patient" {
        return resource["id"].as_str() == Some(patient);
    }
    params_of(rt).filter(|p| p.name == "patient" && p.kind == ParamType::Reference).any(|p| {
        extract(resource, p, zone)
            .iter()
            .any(|e| matches!(e, Entry::Reference { target_type, id } if target_type == "Patient" && id == patient))
    })
}

/// `Patient/<id>/$everything` over a set of resources: the patient's compartment, then the
/// Organizations and Practitioners its resources refer to (one step), each once, in that order.
pub fn everything<'a>(patient: &str, resources: &'a [Value], zone: UtcOffset) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = resources.iter().filter(|r| in_compartment(r, patient, zone)).collect();
    let mut wanted = std::collections::BTreeSet::new();
    for r in &out {
        collect_references(r, &mut wanted);
    }
    let key = |r: &Value| {
        format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default())
    };
    let have: std::collections::HashSet<String> = out.iter().map(|r| key(r)).collect();
    out.extend(resources.iter().filter(|r| {
        let k = key(r);
        (k.starts_with("Organization/") || k.starts_with("Practitioner/")) && wanted.contains(&k) && !have.contains(&k)
    }));
    out
}

fn collect_references(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x.as_str()) {
                    ("reference", Some(r)) => {
                        out.insert(r.to_string());
                    }
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod everything_tests {
    use super::*;
    use crate::fhir::datetime::BEIJING;

    #[test]
    fn everything_is_the_patient_s_compartment_and_what_it_refers_to() {
        let mut all = vec![];
        crate::generate::district(100, 3, 2026, |_, v| all.push(v));
        let pid = "p0000001";
        let got = everything(pid, &all, BEIJING);
        assert_eq!(got[0]["id"], pid);
        let refers_to_patient = |r: &Value| r["subject"]["reference"] == format!("Patient/{pid}").as_str();
        let expected = all.iter().filter(|r| refers_to_patient(r)).count();
        assert_eq!(got.iter().filter(|r| refers_to_patient(r)).count(), expected);
        // Nobody else's records; the organisations referred to, once each.
        for r in &got {
            let rt = r["resourceType"].as_str().unwrap_or_default();
            assert!(rt == "Organization" || in_compartment(r, pid, BEIJING), "{r}");
        }
        let orgs: Vec<&str> =
            got.iter().filter(|r| r["resourceType"] == "Organization").filter_map(|r| r["id"].as_str()).collect();
        let distinct: std::collections::HashSet<&&str> = orgs.iter().collect();
        assert!(!orgs.is_empty() && distinct.len() == orgs.len(), "{orgs:?}");
        assert!(everything("nobody", &all, BEIJING).is_empty());
    }
}
