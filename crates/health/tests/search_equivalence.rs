//! The store's searches against the reference: a generated district stored, then for every
//! supported parameter of the stored types, queries built from values the resources really hold
//! (tokens in their four forms and `:not`, `:missing`, dates at three precisions under every
//! prefix, strings as prefix, `:exact` and `:contains`, references typed and bare, `_id`,
//! `_lastUpdated`), each answered by SQL (`records::filter` + `Records::search`) and by
//! `Query::matches` over every resource in memory: the same ids, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use health::HealthModule;
use health::fhir::datetime::BEIJING;
use health::fhir::index::{self, Entry, ParamType};
use health::fhir::query;
use health::records::{self, Author, Change, Records};
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap().to_offset(BEIJING);
    format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
}

/// Queries for one parameter from the values the resources hold.
fn queries_for(rt: &str, p: &index::SearchParam, resources: &[Value]) -> Vec<String> {
    let mut out = vec![];
    let entries: Vec<Entry> = resources.iter().flat_map(|r| index::extract(r, p, BEIJING)).collect();
    let blind = records::is_blind(rt, p.name);
    out.push(format!("{}:missing=true", p.name));
    out.push(format!("{}:missing=false", p.name));
    for e in entries.iter().step_by((entries.len() / 4).max(1)).take(4) {
        match e {
            Entry::Token { system, code } => {
                out.push(format!("{}={code}", p.name));
                out.push(format!("{}:not={code}", p.name));
                match system {
                    Some(s) => {
                        out.push(format!("{}={s}|{code}", p.name));
                        out.push(format!("{}={s}|", p.name));
                        out.push(format!("{}=urn:other|{code}", p.name));
                    }
                    None => out.push(format!("{}=|{code}", p.name)),
                }
            }
            Entry::Date(period) if period.start_ms > i64::MIN => {
                let d = day(period.start_ms);
                for v in [d.clone(), d[..7].to_string(), d[..4].to_string()] {
                    for prefix in ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"] {
                        out.push(format!("{}={prefix}{v}", p.name));
                    }
                }
            }
            Entry::Date(_) => {}
            Entry::String(s) => {
                if blind {
                    continue; // Blind names: a whole-name search, checked over HTTP in fhir.rs.
                }
                let first: String = s.chars().take(1).collect();
                out.push(format!("{}={first}", p.name));
                let mid: String = s.chars().skip(1).take(2).collect();
                if !mid.is_empty() {
                    out.push(format!("{}:contains={mid}", p.name));
                }
            }
            Entry::Reference { target_type, id } => {
                out.push(format!("{}={target_type}/{id}", p.name));
                out.push(format!("{}={id}", p.name));
                out.push(format!("{}=Unicorn/{id}", p.name));
            }
        }
    }
    if p.kind == ParamType::String && !blind {
        out.push(format!("{}:exact=天津市武清区人民医院", p.name));
    }
    out
}

fn encode(q: &str) -> Vec<(String, String)> {
    q.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn the_same_answers(backend: Backend) {
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(HealthModule { demo_records: false, ..HealthModule::default() })];
    let Some(app) = TestApp::spawn_with(backend, modules, |_| {}).await else { return };
    let st = &app.platform.state;
    let records = Records::new(st.store.clone(), st.cipher.clone());
    let org = app.org_id("people_hospital").await;
    let author = Author { user_id: "test".into(), name: "test".into(), org_id: org };
    let mut by_type: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    health::generate::district(80, 11, 2026, |rt, v| {
        let id = v["id"].as_str().unwrap().to_string();
        by_type.entry(rt.to_string()).or_default().push(Change {
            rtype: rt.into(),
            id,
            resource: Some(v),
            if_match: None,
        });
    });
    let mut stored: BTreeMap<String, Vec<(Value, i64)>> = BTreeMap::new();
    for (rt, changes) in by_type {
        let (s, _) = records.commit(&author, "import", changes, vec![]).await.unwrap();
        stored.insert(rt, s.into_iter().map(|x| (x.body, x.last_updated_ms)).collect());
    }
    let now = kernel::store::now_ms();
    let mut checked = 0;
    for (rt, resources) in &stored {
        let bodies: Vec<Value> = resources.iter().map(|(b, _)| b.clone()).collect();
        let mut qs: Vec<String> = index::params_of(rt).flat_map(|p| queries_for(rt, p, &bodies)).collect();
        let some_id = bodies[bodies.len() / 2]["id"].as_str().unwrap().to_string();
        qs.push(format!("_id={some_id}"));
        qs.push(format!("_id={some_id},nobody"));
        qs.push(format!("_lastUpdated=ge{}", day(resources[0].1)));
        qs.push("_lastUpdated=lt2020".into());
        // Two parameters at once, where the type has them.
        let names: Vec<&str> = index::params_of(rt).map(|p| p.name).collect();
        if names.contains(&"patient") && names.contains(&"code") {
            let first = &bodies[0];
            let pid = first["subject"]["reference"].as_str().unwrap_or_default().to_string();
            let code = first["code"]["coding"][0]["code"].as_str().unwrap_or_default().to_string();
            qs.push(format!("patient={pid}&code={code}"));
            qs.push(format!("patient={pid}&code:not={code}"));
        }
        for q in qs {
            let parsed = query::parse(rt, &encode(&q), false, BEIJING).unwrap_or_else(|e| panic!("{rt}?{q}: {e:?}"));
            let want: BTreeSet<String> = resources
                .iter()
                .filter(|(b, lu)| parsed.matches(b, Some(*lu), BEIJING, now))
                .map(|(b, _)| b["id"].as_str().unwrap().to_string())
                .collect();
            let f = records::filter(&parsed, &st.cipher, now).unwrap_or_else(|e| panic!("{rt}?{q}: {e}"));
            let got: BTreeSet<String> =
                records.search(rt, f, 1000, 0, false).await.unwrap().items.into_iter().map(|s| s.id).collect();
            assert_eq!(got, want, "{rt}?{q}");
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} queries");
}

#[tokio::test]
async fn sql_answers_as_the_reference_on_sqlite() {
    the_same_answers(Backend::Sqlite).await;
}

#[tokio::test]
async fn sql_answers_as_the_reference_on_postgres() {
    the_same_answers(Backend::Postgres).await;
}
