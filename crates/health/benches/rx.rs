//! Prescription checks with the starter knowledge base: one medicine for an elderly patient who
//! takes eight, with six conditions and two allergies (the common case at a family doctor's),
//! and the whole path from FHIR JSON (resolving the medicine, reading its daily dose).
//! The latency percentiles are `examples/rx_latency.rs`'s.

use criterion::{Criterion, criterion_group, criterion_main};
use health::rx::{self, Context, KnowledgeBase};
use serde_json::json;
use std::hint::black_box;

fn patient(kb: &KnowledgeBase) -> Context {
    let current = [
        "amlodipine",
        "valsartan",
        "metformin",
        "glimepiride",
        "atorvastatin",
        "aspirin",
        "omeprazole",
        "hydrochlorothiazide",
    ]
    .iter()
    .filter_map(|d| kb.drug(d))
    .collect();
    Context {
        age_years: Some(72),
        pregnant: false,
        conditions: ["I10", "E11.9", "E78.5", "N18.3", "K21.9", "M17.1"].iter().map(|s| s.to_string()).collect(),
        allergies: vec!["青霉素 penicillin".into(), "磺胺 sulfonamide".into()],
        current,
    }
}

fn bench(c: &mut Criterion) {
    let kb = KnowledgeBase::starter();
    let ctx = patient(&kb);
    let ibuprofen = kb.drug("ibuprofen").unwrap_or_default();
    c.bench_function("rx check: one medicine, 8 taken, 6 conditions, 2 allergies", |b| {
        b.iter(|| black_box(kb.check(black_box(&[(ibuprofen, Some(1200.0))]), black_box(&ctx))))
    });
    let request = json!({
        "medicationCodeableConcept": { "coding": [{ "system": "http://www.whocc.no/atc", "code": "J01FA09" }], "text": "克拉霉素片 250 mg" },
        "dosageInstruction": [{ "timing": { "repeat": { "frequency": 2, "period": 1, "periodUnit": "d" } },
            "doseAndRate": [{ "doseQuantity": { "value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }] }]
    });
    c.bench_function("rx check from FHIR JSON (resolve by ATC, daily dose, check)", |b| {
        b.iter(|| {
            let r = black_box(&request);
            let d = kb.resolve(&r["medicationCodeableConcept"]);
            let daily = rx::daily_mg(&r["dosageInstruction"]);
            black_box(d.map(|d| kb.check(&[(d, daily)], &ctx)))
        })
    });
    let by_name = json!({ "text": "阿莫西林克拉维酸钾片 0.457 g" });
    c.bench_function("rx resolve by name (no code)", |b| b.iter(|| black_box(kb.resolve(black_box(&by_name)))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
