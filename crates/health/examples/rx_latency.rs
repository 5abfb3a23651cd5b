//! Prescription check latency with the full starter knowledge base: every drug of the knowledge
//! base prescribed in turn (by ATC code or by name, with a dosage instruction) to a rotating set
//! of patients (age, pregnancy, conditions, allergies, 0–10 current medicines), from the
//! MedicationRequest's JSON to the findings; prints p50, p99, p99.9 and the maximum.
//!
//! `cargo run --release -p wuqing-health --example rx_latency [CHECKS]`

use health::rx::{self, Context, KnowledgeBase};
use serde_json::json;
use std::time::Instant;

fn main() {
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
    took.sort_unstable();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)] as f64 / 1000.0;
    println!(
        "checks {n}  findings {findings}  knowledge base {} ({} drugs, {} interactions)",
        kb.version, kb.counts.drugs, kb.counts.interactions
    );
    println!("p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs", at(0.5), at(0.99), at(0.999), at(1.0));
}
