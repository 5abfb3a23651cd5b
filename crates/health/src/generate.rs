//! The synthetic district as FHIR R4 resources (`wuqing health generate`): the district's health
//! institutions, its residents as Patients registered at their local centre, their hypertension
//! and type 2 diabetes as Conditions, a year of visits as Encounters, and the blood pressure and
//! fasting glucose taken at those visits as Observations. Deterministic for a seed; written as
//! one NDJSON file per resource type, the layout of FHIR Bulk Data.
//!
//! Prevalence among adults follows 《中国居民营养与慢性病状况报告（2020年）》: hypertension 27.5 %,
//! diabetes 11.9 % of people aged 18 and over, rising with age (the bands below give about those
//! shares for the district's age mix).

use crate::fhir::validate::{ICD10_SYSTEM as ICD10, LOINC_SYSTEM as LOINC};
use crate::linkage::Sex;
use crate::synth::{self, Resident};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The identifier system of citizen IDs (居民身份证号码) on this platform. The national
/// NamingSystem should replace it once the district's exchange partners agree on one.
pub const CITIZEN_ID_SYSTEM: &str = "urn:wuqing:sid:citizen-id";
pub const UCUM: &str = "http://unitsofmeasure.org";

/// The institutions: the two district hospitals and the community health service centre of the
/// demo, and a health centre (卫生院) for each town or sub-district. `(id, name)`.
pub fn institutions() -> Vec<(String, String)> {
    let mut v = vec![
        ("people-hospital".to_string(), "天津市武清区人民医院".to_string()),
        ("tcm-hospital".to_string(), "天津市武清区中医医院".to_string()),
    ];
    for (i, l) in synth::LOCALITIES.iter().enumerate() {
        let name = match l.strip_suffix("街道") {
            Some(s) => format!("武清区{s}街社区卫生服务中心"),
            None => format!("武清区{l}卫生院"),
        };
        v.push((format!("centre-{:02}", i + 1), name));
    }
    v
}

/// Share of people with the condition by age band: (from age, hypertension, diabetes).
const PREVALENCE: [(i32, f64, f64); 4] = [(0, 0.0, 0.002), (18, 0.12, 0.05), (45, 0.32, 0.14), (60, 0.55, 0.22)];

fn band(age: i32) -> (f64, f64) {
    PREVALENCE.iter().rev().find(|(from, ..)| age >= *from).map_or((0.0, 0.0), |(_, h, d)| (*h, *d))
}

/// What was generated, by resource type.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub organizations: usize,
    pub patients: usize,
    pub conditions: usize,
    pub encounters: usize,
    pub observations: usize,
}

fn date((y, m, d): (i32, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

fn patient(r: &Resident, id: &str, centre: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{ "use": "official", "system": CITIZEN_ID_SYSTEM, "value": r.citizen_id }],
        "name": [{ "use": "official", "text": format!("{}{}", r.family_name, r.given_name), "family": r.family_name, "given": [r.given_name] }],
        "telecom": [{ "system": "phone", "value": r.phone, "use": "mobile" }],
        "gender": if r.sex == Sex::Male { "male" } else { "female" },
        "birthDate": date(r.birth_date),
        "address": [{ "use": "home", "text": format!("天津市武清区{}{}", r.locality, r.address), "line": [r.address], "district": "武清区", "city": "天津市", "state": "天津市", "country": "CN" }],
        "managingOrganization": { "reference": format!("Organization/{centre}") }
    })
}

/// Calls `emit(resource type, resource)` for every resource of a district of `residents` people,
/// with a year of visits ending in `year`; returns the counts.
pub fn district(residents: usize, seed: u64, year: i32, emit: impl FnMut(&str, Value)) -> Counts {
    district_until(residents, seed, (year, 12, 31), emit)
}

/// [`district`] with the year of visits ending on the day `until` (year, month, day): the twelve
/// months up to it, none after it (the demo's district, generated today, has no visit in the
/// future).
pub fn district_until(
    residents: usize,
    seed: u64,
    until: (i32, u32, u32),
    mut emit: impl FnMut(&str, Value),
) -> Counts {
    let year = until.0;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut n = Counts::default();
    let orgs = institutions();
    for (id, name) in &orgs {
        emit(
            "Organization",
            json!({
                "resourceType": "Organization",
                "id": id,
                "active": true,
                "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider" }] }],
                "name": name,
                "address": [{ "district": "武清区", "city": "天津市", "country": "CN" }]
            }),
        );
        n.organizations += 1;
    }
    for (i, r) in synth::residents(residents, seed, year).iter().enumerate() {
        let pid = format!("p{:07}", i + 1);
        let locality = synth::LOCALITIES.iter().position(|l| *l == r.locality).unwrap_or(0);
        let centre = &orgs[2 + locality].0;
        emit("Patient", patient(r, &pid, centre));
        n.patients += 1;
        let age = year - r.birth_date.0;
        let (p_htn, p_dm) = band(age);
        let conditions: Vec<(&str, &str, &str)> = [
            (rng.gen_bool(p_htn), "I10", "原发性高血压 Essential (primary) hypertension"),
            (rng.gen_bool(p_dm), "E11", "2型糖尿病 Type 2 diabetes mellitus"),
        ]
        .into_iter()
        .filter(|(has, ..)| *has)
        .map(|(_, code, text)| (code, text, if code == "I10" { "htn" } else { "dm" }))
        .collect();
        for (code, text, tag) in &conditions {
            let from = (r.birth_date.0 + if age >= 18 { 18 } else { 1 }).max(year - 25).min(year);
            let mut onset = (rng.gen_range(from..=year), rng.gen_range(1..=12), 1);
            if onset.0 == until.0 {
                onset.1 = onset.1.min(until.1);
            }
            emit(
                "Condition",
                json!({
                    "resourceType": "Condition",
                    "id": format!("{pid}-{tag}"),
                    "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                    "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }] },
                    "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item" }] }],
                    "code": { "coding": [{ "system": ICD10, "code": code, "display": text }], "text": text },
                    "subject": { "reference": format!("Patient/{pid}") },
                    "onsetDateTime": format!("{:04}-{:02}", onset.0, onset.1),
                    "recordedDate": format!("{:04}-{:02}-01", onset.0, onset.1)
                }),
            );
            n.conditions += 1;
        }
        // Visits in the year: chronic patients are followed up quarterly (national basic public
        // health service), others visit now and then.
        let visits = if conditions.is_empty() { rng.gen_range(0..=2) } else { 4 };
        let chronic = |tag: &str| conditions.iter().any(|(_, _, t)| *t == tag);
        for v in 0..visits {
            let month = if conditions.is_empty() { rng.gen_range(1..=12) } else { v * 3 + rng.gen_range(1..=3) };
            let day = rng.gen_range(1..=28);
            // Month 12 is `until`'s month, month 1 eleven months before it.
            let index = until.0 * 12 + until.1 as i32 - 1 - (12 - month);
            let (y, mo) = (index.div_euclid(12), index.rem_euclid(12) + 1);
            let day = if (y, mo as u32) == (until.0, until.1) { day.min(until.2.max(1)) } else { day };
            let when =
                format!("{y:04}-{mo:02}-{day:02}T{:02}:{:02}:00+08:00", rng.gen_range(8..17), rng.gen_range(0..60));
            let eid = format!("{pid}-e{}", v + 1);
            let (org, class) = if rng.gen_bool(0.8) { (centre.as_str(), "AMB") } else { ("people-hospital", "AMB") };
            emit(
                "Encounter",
                json!({
                    "resourceType": "Encounter",
                    "id": eid,
                    "status": "finished",
                    "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class, "display": "ambulatory" },
                    "subject": { "reference": format!("Patient/{pid}") },
                    "serviceProvider": { "reference": format!("Organization/{org}") },
                    "period": { "start": when, "end": when }
                }),
            );
            n.encounters += 1;
            if chronic("htn") {
                let sys = rng.gen_range(118..172);
                let dia = (sys * 6 / 10 + rng.gen_range(0..15)).min(110);
                emit(
                    "Observation",
                    json!({
                        "resourceType": "Observation",
                        "id": format!("{eid}-bp"),
                        "status": "final",
                        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                        "code": { "coding": [{ "system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional" }], "text": "血压" },
                        "subject": { "reference": format!("Patient/{pid}") },
                        "encounter": { "reference": format!("Encounter/{eid}") },
                        "effectiveDateTime": when,
                        "component": [
                            { "code": { "coding": [{ "system": LOINC, "code": "8480-6", "display": "Systolic blood pressure" }] }, "valueQuantity": { "value": sys, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]" } },
                            { "code": { "coding": [{ "system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure" }] }, "valueQuantity": { "value": dia, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]" } }
                        ]
                    }),
                );
                n.observations += 1;
            }
            if chronic("dm") {
                let glucose = f64::from(rng.gen_range(55..125)) / 10.0;
                emit(
                    "Observation",
                    json!({
                        "resourceType": "Observation",
                        "id": format!("{eid}-glu"),
                        "status": "final",
                        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                        "code": { "coding": [{ "system": LOINC, "code": "14771-0", "display": "Fasting glucose [Moles/volume] in Serum or Plasma" }], "text": "空腹血糖" },
                        "subject": { "reference": format!("Patient/{pid}") },
                        "encounter": { "reference": format!("Encounter/{eid}") },
                        "effectiveDateTime": when,
                        "valueQuantity": { "value": glucose, "unit": "mmol/L", "system": UCUM, "code": "mmol/L" }
                    }),
                );
                n.observations += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn a_district_is_consistent_and_its_prevalence_near_the_national_figures() {
        let mut all: Vec<(String, Value)> = vec![];
        let counts = district(20_000, 3, 2026, |t, v| all.push((t.to_string(), v)));
        assert_eq!(counts.patients, 20_000);
        assert_eq!(counts.organizations, 32);
        let ids: HashSet<String> =
            all.iter().map(|(t, v)| format!("{t}/{}", v["id"].as_str().unwrap_or_default())).collect();
        assert_eq!(ids.len(), all.len(), "ids unique within each type");
        // Every reference resolves, every resource names its type.
        for (t, v) in &all {
            assert_eq!(v["resourceType"], t.as_str());
            for field in ["subject", "encounter", "serviceProvider", "managingOrganization"] {
                if let Some(r) = v[field]["reference"].as_str() {
                    assert!(ids.contains(r), "{t} {} refers to missing {r}", v["id"]);
                }
            }
        }
        // Patients: valid citizen IDs, ages and prevalence among adults.
        let mut adults = 0;
        let mut with: HashMap<&str, usize> = HashMap::new();
        let mut birth: HashMap<String, i32> = HashMap::new();
        for (t, v) in &all {
            if t == "Patient" {
                let id = v["identifier"][0]["value"].as_str().unwrap_or_default();
                assert!(kernel::crypto::CitizenId::parse(id).is_ok(), "{id}");
                let year: i32 = v["birthDate"].as_str().unwrap_or_default()[..4].parse().unwrap_or(0);
                birth.insert(format!("Patient/{}", v["id"].as_str().unwrap_or_default()), year);
                if 2026 - year >= 18 {
                    adults += 1;
                }
            }
        }
        for (t, v) in &all {
            if t == "Condition" {
                let y = birth[v["subject"]["reference"].as_str().unwrap_or_default()];
                if 2026 - y >= 18 {
                    *with.entry(v["code"]["coding"][0]["code"].as_str().unwrap_or_default()).or_default() += 1;
                }
            }
        }
        let htn = with["I10"] as f64 / adults as f64;
        let dm = with["E11"] as f64 / adults as f64;
        assert!((0.22..0.33).contains(&htn), "hypertension among adults {htn}");
        assert!((0.09..0.15).contains(&dm), "diabetes among adults {dm}");
        assert!(counts.observations > counts.conditions, "follow-up readings for the chronic");
    }
}
