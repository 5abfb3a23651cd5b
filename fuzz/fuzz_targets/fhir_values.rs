//! FHIR values: date, dateTime, instant and search date values, search parameter values (commas,
//! escapes, prefixes, tokens), resource validation, index extraction, query strings and Bundle
//! plans, over arbitrary text. Whatever is accepted keeps the bounds the server relies on: a
//! period is never empty, a validation answers at most 100 issues, a query's page and a plan are
//! bounded. The modules are compiled from the health crate's own source files (they need only
//! time, serde_json and thiserror), so fuzzing does not build the platform.
#![no_main]

// At the root, as siblings: the modules reach each other as `super::datetime`.
#[path = "../../crates/health/src/fhir/datetime.rs"]
#[allow(dead_code)]
mod datetime;
#[path = "../../crates/health/src/fhir/search.rs"]
#[allow(dead_code)]
mod search;
#[path = "../../crates/health/src/fhir/validate.rs"]
#[allow(dead_code)]
mod validate;
#[path = "../../crates/health/src/fhir/index.rs"]
#[allow(dead_code)]
mod index;
#[path = "../../crates/health/src/fhir/query.rs"]
#[allow(dead_code)]
mod query;
#[path = "../../crates/health/src/fhir/bundle.rs"]
#[allow(dead_code)]
mod bundle;

use datetime::{BEIJING, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for k in [Kind::Date, Kind::DateTime, Kind::Instant, Kind::Search] {
        if let Ok((p, _)) = datetime::parse(s, k, BEIJING) {
            assert!(p.start_ms < p.end_ms);
        }
    }
    for a in search::alternatives(s) {
        let _ = search::Token::parse(&a);
        if let Ok(d) = search::DateSearch::parse(&a, BEIJING) {
            assert!(d.period.start_ms < d.period.end_ms);
            let _ = d.matches(&d.period, 0);
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
        assert!(validate::validate(&v, None).len() <= 100);
        for p in index::PARAMS {
            let _ = index::extract(&v, p, BEIJING);
        }
        let mut n = 0;
        if let Ok(plan) = bundle::plan(&v, || {
            n += 1;
            n.to_string()
        }) {
            assert!(plan.ops.len() <= bundle::MAX_ENTRIES);
        }
    }
    // The text as a query string, against every resource type's parameters.
    let pairs: Vec<(String, String)> =
        s.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for rt in ["Patient", "Observation", "Encounter"] {
        if let Ok(q) = query::parse(rt, &pairs, false, BEIJING) {
            assert!(q.count <= query::MAX_COUNT);
            let _ = q.matches(&serde_json::json!({ "resourceType": rt, "id": "x" }), Some(0), BEIJING, 0);
        }
    }
});
