//! The demo district's health records: a small synthetic population (`generate`) stored as the
//! records of the demo's three institutions (the People's Hospital, the TCM hospital and the
//! Yangcun community health centre, which stands in for every town's centre), the demo
//! resident 黄秀英's own record (hypertension followed at the People's Hospital, a year of blood
//! pressures), and a second registration of one resident at the TCM hospital for the index's
//! review queue. Idempotent.

use crate::mpi_store::{self, MpiState};
use crate::records::{Author, Change, Records};
use kernel::audit::Actor;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Residents in the demo district.
pub const RESIDENTS: usize = 300;

/// The demo's generated records take ids of their own (`demo-p0000001`), so that a district
/// generated and imported beside them (the benchmarks) keeps its ids.
const ID_PREFIX: &str = "demo-";

/// Rewrites `Organization/<generated id>` references through `map`, and every other reference
/// to the demo's own ids.
fn remap(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    let Some(r) = x.as_str() else { continue };
                    let to = match r.split_once('/') {
                        Some(("Organization", id)) => map.get(id).map(|to| format!("Organization/{to}")),
                        Some((t, id)) => Some(format!("{t}/{ID_PREFIX}{id}")),
                        None => None,
                    };
                    if let Some(to) = to {
                        *x = Value::String(to);
                    }
                } else {
                    remap(x, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| remap(x, map)),
        _ => {}
    }
}

fn org_of(v: &Value, field: &str) -> Option<String> {
    v[field]["reference"].as_str().and_then(|r| r.strip_prefix("Organization/")).map(str::to_string)
}

pub async fn seed(state: &AppState, demo: &DemoContext, records: &Records, mpi: &MpiState) -> anyhow::Result<()> {
    if kernel::demo::is_seeded(state, "health").await? {
        return Ok(());
    }
    let org = |k: &str| demo.orgs.get(k).cloned().ok_or_else(|| anyhow::anyhow!("demo organisation {k} missing"));
    let (people, tcm, yangcun) = (org("people_hospital")?, org("tcm_hospital")?, org("yangcun_chc")?);
    let mut map = HashMap::new();
    map.insert("people-hospital".to_string(), people.clone());
    map.insert("tcm-hospital".to_string(), tcm.clone());
    for (id, _) in crate::generate::institutions().iter().skip(2) {
        map.insert(id.clone(), yangcun.clone());
    }
    // The generated resources, each owned by the institution it belongs to.
    let mut by_owner: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut encounter_org: HashMap<String, String> = HashMap::new();
    let mut patient_org: HashMap<String, String> = HashMap::new();
    let mut generated = vec![];
    // A year of visits up to today, none in the future.
    let today = crate::contract::today_date();
    let until = (today.year(), u32::from(u8::from(today.month())), u32::from(today.day()));
    crate::generate::district_until(RESIDENTS, 7, until, |rt, v| generated.push((rt.to_string(), v)));
    for (rt, mut v) in generated {
        if rt == "Organization" {
            continue;
        }
        remap(&mut v, &map);
        let id = format!("{ID_PREFIX}{}", v["id"].as_str().unwrap_or_default());
        v["id"] = Value::String(id.clone());
        let subject = v["subject"]["reference"].as_str().and_then(|r| r.strip_prefix("Patient/")).map(str::to_string);
        let owner = match rt.as_str() {
            "Patient" => org_of(&v, "managingOrganization"),
            "Encounter" => org_of(&v, "serviceProvider"),
            _ => v["encounter"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Encounter/"))
                .and_then(|e| encounter_org.get(e).cloned())
                .or_else(|| subject.as_ref().and_then(|p| patient_org.get(p).cloned())),
        }
        .unwrap_or_else(|| yangcun.clone());
        match rt.as_str() {
            "Patient" => {
                patient_org.insert(id.clone(), owner.clone());
            }
            "Encounter" => {
                encounter_org.insert(id.clone(), owner.clone());
            }
            _ => {}
        }
        by_owner.entry(owner).or_default().push(Change { rtype: rt, id, resource: Some(v), if_match: None });
    }
    // The institutions themselves, under their platform ids.
    for (key, id) in [("people_hospital", &people), ("tcm_hospital", &tcm), ("yangcun_chc", &yangcun)] {
        let name = kernel::orgs::get(&state.store, id).await?.map(|o| o.name).unwrap_or_else(|| key.to_string());
        let o = json!({ "resourceType": "Organization", "id": id, "active": true, "name": name,
            "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov" }] }],
            "address": [{ "district": "武清区", "city": "天津市", "country": "CN" }] });
        by_owner
            .entry(id.clone())
            .or_default()
            .insert(0, Change { rtype: "Organization".into(), id: id.clone(), resource: Some(o), if_match: None });
    }
    // 黄秀英 (the demo resident): registered at Yangcun, hypertension followed at the People's
    // Hospital. Patients go first, so that every institution's records find theirs.
    if let Some(cid) = resident_citizen_id(state, "resident.huang").await? {
        let pid = "huang-xiuying";
        let p = json!({ "resourceType": "Patient", "id": pid,
            "identifier": [{ "use": "official", "system": crate::generate::CITIZEN_ID_SYSTEM, "value": cid }],
            "name": [{ "use": "official", "text": "黄秀英", "family": "黄", "given": ["秀英"] }],
            "telecom": [{ "system": "phone", "value": "13900100011", "use": "mobile" }],
            "gender": "female", "birthDate": "1955-02-26",
            "address": [{ "use": "home", "text": "天津市武清区杨村街道", "district": "武清区", "city": "天津市" }],
            "managingOrganization": { "reference": format!("Organization/{yangcun}") } });
        by_owner
            .entry(yangcun.clone())
            .or_default()
            .insert(1, Change { rtype: "Patient".into(), id: pid.into(), resource: Some(p), if_match: None });
        let mut mine = vec![json!({ "resourceType": "Condition", "id": "huang-htn",
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "原发性高血压 Essential (primary) hypertension" }] },
            "subject": { "reference": format!("Patient/{pid}") }, "onsetDateTime": "2019-06" })];
        // Every other month of the year up to this month (the day before today at the latest).
        let month_back = |back: i32| {
            let index = today.year() * 12 + i32::from(u8::from(today.month())) - 1 - back;
            (index.div_euclid(12), index.rem_euclid(12) + 1)
        };
        for (i, (back, sys, dia)) in
            [(10, 158, 96), (8, 150, 94), (6, 146, 90), (4, 142, 88), (2, 138, 86), (0, 134, 84)].iter().enumerate()
        {
            let (year, month) = month_back(*back);
            let day = if *back == 0 { today.day().saturating_sub(1).clamp(1, 15) } else { 15 };
            let when = format!("{year:04}-{month:02}-{day:02}T09:30:00+08:00");
            let eid = format!("huang-enc-{i}");
            mine.push(json!({ "resourceType": "Encounter", "id": eid, "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "门诊 ambulatory" },
                "subject": { "reference": format!("Patient/{pid}") },
                "serviceProvider": { "reference": format!("Organization/{people}") },
                "period": { "start": when, "end": format!("{year:04}-{month:02}-{day:02}T10:00:00+08:00") } }));
            mine.push(json!({ "resourceType": "Observation", "id": format!("huang-bp-{i}"), "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
                "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel" }], "text": "血压 Blood pressure" },
                "subject": { "reference": format!("Patient/{pid}") }, "encounter": { "reference": format!("Encounter/{eid}") },
                "effectiveDateTime": when,
                "component": [
                    { "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6", "display": "Systolic" }] },
                      "valueQuantity": { "value": sys, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
                    { "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4", "display": "Diastolic" }] },
                      "valueQuantity": { "value": dia, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } } ] }));
        }
        let (y, m) = month_back(10);
        mine.push(json!({ "resourceType": "MedicationStatement", "id": "huang-amlodipine", "status": "active",
            "medicationCodeableConcept": { "text": "苯磺酸氨氯地平片 5 mg Amlodipine" },
            "subject": { "reference": format!("Patient/{pid}") },
            "effectiveDateTime": format!("{y:04}-{m:02}-15") }));
        let list = by_owner.entry(people.clone()).or_default();
        for v in mine {
            let rt = v["resourceType"].as_str().unwrap_or_default().to_string();
            let id = v["id"].as_str().unwrap_or_default().to_string();
            list.push(Change { rtype: rt, id, resource: Some(v), if_match: None });
        }
    }
    // Patients first (every institution's), then the rest.
    let mut patients: Vec<(String, Vec<Change>)> = vec![];
    let mut rest: Vec<(String, Vec<Change>)> = vec![];
    for (owner, changes) in by_owner {
        let (p, r): (Vec<Change>, Vec<Change>) =
            changes.into_iter().partition(|c| c.rtype == "Patient" || c.rtype == "Organization");
        patients.push((owner.clone(), p));
        rest.push((owner, r));
    }
    for (owner, changes) in patients.into_iter().chain(rest) {
        let author = Author { user_id: "demo".into(), name: "demo district".into(), org_id: owner };
        for chunk in changes.chunks(crate::import::BATCH) {
            records.commit(&author, "import", chunk.to_vec(), vec![]).await?;
        }
    }
    // A second registration at the TCM hospital of a resident of the district, with her name,
    // sex and birth date only: the index puts the pair on the review queue.
    mpi.ensure(records).await?;
    if let Some(first) = records.current("Patient", &format!("{ID_PREFIX}p0000001")).await? {
        let mut again = first.body.clone();
        if let Some(o) = again.as_object_mut() {
            o.remove("identifier");
            o.remove("meta");
            o.remove("telecom");
            o.remove("address");
            o.insert("id".into(), Value::String("tcm-registration-1".into()));
            o.insert("managingOrganization".into(), json!({ "reference": format!("Organization/{tcm}") }));
        }
        let author = Author { user_id: "demo".into(), name: "demo district".into(), org_id: tcm.clone() };
        let change =
            Change { rtype: "Patient".into(), id: "tcm-registration-1".into(), resource: Some(again), if_match: None };
        let (stored, _) = records.commit(&author, "create", vec![change], vec![]).await?;
        mpi_store::after_patients(records, mpi, &Actor::cli("demo"), &stored).await?;
    }
    kernel::demo::mark_seeded(state, "health", "1").await?;
    Ok(())
}

/// A demo account's citizen ID, as the account holds it.
async fn resident_citizen_id(state: &AppState, username: &str) -> anyhow::Result<Option<String>> {
    let Some(u) = kernel::users::by_username(&state.store, username).await? else { return Ok(None) };
    Ok(u.citizen_id_enc.and_then(|e| state.cipher.decrypt(&e).ok()))
}
