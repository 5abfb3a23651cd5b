//! Prescription check latency with the full starter knowledge base, two ways:
//! 1. the rules alone: every drug of the knowledge base prescribed in turn (by ATC code or by
//!    name, with a dosage instruction) to a rotating set of patients (age, pregnancy, conditions,
//!    allergies, 0–10 current medicines), from the MedicationRequest's JSON to the findings;
//! 2. the server's whole check (`rx_api::check`): the knowledge base in force looked up, the
//!    patient's age, conditions, allergies and medicines read from the store (SQLite, a fresh
//!    platform with 200 patients of 12 records each), then the rules.
//!
//! Prints p50, p99, p99.9 and the maximum of each.
//!
//! `cargo run --release -p wuqing-health --example rx_latency [CHECKS]`

use health::rx::{self, Context, KnowledgeBase};
use serde_json::json;
use std::time::Instant;

#[tokio::main]
async fn main() {
    rules_alone();
    with_the_store().await;
}

fn report(what: &str, mut took: Vec<u64>) {
    took.sort_unstable();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)] as f64 / 1000.0;
    println!(
        "{what}: {} checks, p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs",
        took.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

async fn with_the_store() {
    use health::records::{Author, Change, Records};
    use kernel::testing::{Backend, TestApp};
    let modules: Vec<std::sync::Arc<dyn kernel::module::Module>> =
        vec![std::sync::Arc::new(health::HealthModule { demo_records: false, ..Default::default() })];
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let r = Records::new(st.store.clone(), st.cipher.clone());
    let author = Author { user_id: "bench".into(), name: "bench".into(), org_id: app.org_id("yangcun_chc").await };
    let kb = KnowledgeBase::starter();
    let med = |pid: &str, d: &health::rx::Drug, status: &str| {
        json!({ "resourceType": "MedicationRequest", "status": status, "intent": "order",
            "medicationCodeableConcept": { "text": d.name }, "subject": { "reference": format!("Patient/{pid}") } })
    };
    for p in 0..200 {
        let pid = format!("bench-p{p}");
        let mut changes = vec![Change {
            rtype: "Patient".into(),
            id: pid.clone(),
            if_match: None,
            resource: Some(json!({ "resourceType": "Patient", "birthDate": format!("{}-05-01", 1940 + p % 70) })),
        }];
        let mut add = |rt: &str, v: serde_json::Value| {
            let id = format!("{pid}-{}", changes.len());
            changes.push(Change { rtype: rt.into(), id, resource: Some(v), if_match: None });
        };
        for code in ["I10", "E11.9", "N18.3", "E78.5"].iter().take(1 + p % 4) {
            add(
                "Condition",
                json!({ "resourceType": "Condition", "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": code }] }, "subject": { "reference": format!("Patient/{pid}") } }),
            );
        }
        if p % 3 == 0 {
            add(
                "AllergyIntolerance",
                json!({ "resourceType": "AllergyIntolerance", "code": { "text": "青霉素" }, "patient": { "reference": format!("Patient/{pid}") } }),
            );
        }
        for k in 0..(4 + p % 5) {
            add("MedicationRequest", med(&pid, &kb.drugs[(p * 5 + k * 7) % kb.drugs.len()], "active"));
        }
        r.commit(&author, "import", changes, vec![]).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut took = vec![];
    let n = 4_000;
    for i in 0..n {
        let pid = format!("bench-p{}", i % 200);
        let request = med(&pid, &kb.drugs[i % kb.drugs.len()], "active");
        let t = Instant::now();
        let out = health::rx_api::check(&r, &request, "new").await.unwrap_or_else(|e| panic!("{e}"));
        took.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(out);
    }
    report("the server's check, patient read from SQLite", took);
}

fn rules_alone() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let kb = KnowledgeBase::starter();
    let requests: Vec<serde_json::Value> = kb
        .drugs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let concept = match (&d.atc, i % 2) {
                (Some(atc), 0) => json!({ "coding": [{ "system": rx::ATC, "code": atc }] }),
                _ => json!({ "text": format!("{}片", d.name) }),
            };
            json!({ "medicationCodeableConcept": concept, "dosageInstruction": [{
                "timing": { "repeat": { "frequency": 1 + i % 3, "period": 1, "periodUnit": "d" } },
                "doseAndRate": [{ "doseQuantity": { "value": 5 * (1 + i % 7), "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }] }] })
        })
        .collect();
    let conditions = ["I10", "E11.9", "N18.4", "I50.9", "J45.9", "K25.3", "M10.0", "Z33.1", "E78.5", "E87.5"];
    let allergies = ["青霉素", "磺胺 sulfonamide", "阿司匹林 aspirin", "头孢菌素"];
    let patients: Vec<Context> = (0..64)
        .map(|p| Context {
            age_years: Some([6, 14, 35, 52, 67, 81][p % 6]),
            pregnant: p % 11 == 0,
            conditions: conditions.iter().skip(p % 5).take(p % 7).map(|s| s.to_string()).collect(),
            allergies: allergies.iter().skip(p % 3).take(p % 3).map(|s| s.to_string()).collect(),
            current: (0..p % 11).map(|k| (p * 7 + k * 13) % kb.drugs.len()).collect(),
        })
        .collect();
    let mut took = Vec::with_capacity(n);
    let mut findings = 0usize;
    for i in 0..n {
        let r = &requests[i % requests.len()];
        let ctx = &patients[(i / requests.len()) % patients.len()];
        let t = Instant::now();
        let d = kb.resolve(&r["medicationCodeableConcept"]);
        let daily = rx::daily_mg(&r["dosageInstruction"]);
        let f = d.map(|d| kb.check(&[(d, daily)], ctx)).unwrap_or_default();
        took.push(t.elapsed().as_nanos() as u64);
        findings += f.len();
    }
    println!(
        "knowledge base {} ({} drugs, {} interactions); {findings} findings",
        kb.version, kb.counts.drugs, kb.counts.interactions
    );
    report("the rules alone", took);
}
