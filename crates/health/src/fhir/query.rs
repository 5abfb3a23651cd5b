//! A FHIR search request read into a [`Query`] (R4 search §3.1.1): each parameter checked against
//! those the resource supports, its modifier and its values parsed; and [`Query::matches`], which
//! says whether a resource answers it. The store runs queries against its index; `matches` is the
//! reference it is tested against, and serves small in-memory sets.
//!
//! Parameters are ANDed, the comma-separated values of one parameter ORed. An unknown parameter
//! is an error unless the client asked for lenient handling (`Prefer: handling=lenient`): a
//! mistyped filter on health records must not silently return everything.

use super::datetime::{self, Kind, Period};
use super::index::{self, Entry, ParamType, SearchParam};
use super::search::{self, DateSearch, Token};
use super::validate::Issue;
use serde_json::Value;
use time::UtcOffset;

/// Results per page when `_count` is absent, and at most.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;

/// What one parameter asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `_id`: one of these ids.
    Id(Vec<String>),
    /// `_lastUpdated`: any of these.
    LastUpdated(Vec<DateSearch>),
    Token {
        param: &'static SearchParam,
        values: Vec<Token>,
        not: bool,
    },
    Date {
        param: &'static SearchParam,
        values: Vec<DateSearch>,
    },
    /// Strings: starts with, unless `:exact` or `:contains`.
    String {
        param: &'static SearchParam,
        values: Vec<String>,
        how: StringMatch,
    },
    /// References: `Type/id`, or an id of any type.
    Reference {
        param: &'static SearchParam,
        values: Vec<(Option<String>, String)>,
    },
    /// `:missing=true|false`.
    Missing {
        param: &'static SearchParam,
        missing: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    StartsWith,
    Exact,
    Contains,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub resource_type: String,
    pub tests: Vec<Test>,
    pub count: usize,
    /// `_include=Observation:patient`: the reference parameters whose targets come along.
    pub include: Vec<&'static SearchParam>,
    /// Parameters ignored under lenient handling, to report back.
    pub ignored: Vec<String>,
}

fn issue(code: &'static str, path: &str, diagnostics: String) -> Issue {
    Issue { code, path: path.to_string(), diagnostics }
}

/// Reads a search of `resource_type` from its query parameters.
pub fn parse(
    resource_type: &str,
    pairs: &[(String, String)],
    lenient: bool,
    zone: UtcOffset,
) -> Result<Query, Vec<Issue>> {
    let mut q = Query {
        resource_type: resource_type.to_string(),
        tests: vec![],
        count: DEFAULT_COUNT,
        include: vec![],
        ignored: vec![],
    };
    let mut issues = vec![];
    for (key, raw) in pairs {
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let values = search::alternatives(raw);
        let result: Result<Option<Test>, String> = match name {
            "_count" => match search::count(Some(raw), DEFAULT_COUNT, MAX_COUNT) {
                Ok(n) => {
                    q.count = n;
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            },
            "_id" => Ok(Some(Test::Id(values))),
            "_lastUpdated" => values
                .iter()
                .map(|v| DateSearch::parse(v, zone).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(Test::LastUpdated(v))),
            "_include" => {
                for v in &values {
                    let (source, pname) = v.split_once(':').unwrap_or(("", v));
                    match index::params_of(resource_type).find(|p| p.name == pname && p.kind == ParamType::Reference) {
                        Some(p) if source == resource_type => q.include.push(p),
                        _ => issues.push(issue("not-supported", key, format!("cannot include {v}"))),
                    }
                }
                Ok(None)
            }
            // Result parameters that change nothing of what matches.
            "_format" | "_summary" | "_elements" | "_total" => Ok(None),
            _ => match index::params_of(resource_type).find(|p| p.name == name) {
                None => {
                    if lenient {
                        q.ignored.push(key.clone());
                        Ok(None)
                    } else {
                        Err(format!("{resource_type} has no search parameter {name}"))
                    }
                }
                Some(p) => test(p, modifier, &values, zone).map(Some),
            },
        };
        match result {
            Ok(Some(t)) => q.tests.push(t),
            Ok(None) => {}
            Err(d) => {
                issues.push(issue(if d.contains("no search parameter") { "not-supported" } else { "value" }, key, d))
            }
        }
    }
    if issues.is_empty() { Ok(q) } else { Err(issues) }
}

fn test(p: &'static SearchParam, modifier: Option<&str>, values: &[String], zone: UtcOffset) -> Result<Test, String> {
    if modifier == Some("missing") {
        return match values {
            [v] if v == "true" || v == "false" => Ok(Test::Missing { param: p, missing: v == "true" }),
            _ => Err(":missing takes true or false".into()),
        };
    }
    if values.iter().any(String::is_empty) {
        return Err("an empty value".into());
    }
    match (p.kind, modifier) {
        (ParamType::Token, None | Some("not")) => values
            .iter()
            .map(|v| Token::parse(v).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|values| Test::Token { param: p, values, not: modifier == Some("not") }),
        (ParamType::Date, None) => values
            .iter()
            .map(|v| DateSearch::parse(v, zone).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|values| Test::Date { param: p, values }),
        (ParamType::String, m @ (None | Some("exact") | Some("contains"))) => {
            let how = match m {
                Some("exact") => StringMatch::Exact,
                Some("contains") => StringMatch::Contains,
                _ => StringMatch::StartsWith,
            };
            let values =
                values.iter().map(|v| if how == StringMatch::Exact { v.clone() } else { index::norm(v) }).collect();
            Ok(Test::String { param: p, values, how })
        }
        (ParamType::Reference, None) => Ok(Test::Reference {
            param: p,
            values: values
                .iter()
                .map(|v| {
                    // `Patient/1`, a full URL ending in it, or a bare id.
                    let parts: Vec<&str> = v.rsplitn(3, '/').collect();
                    match parts.as_slice() {
                        [id, t, ..] if t.starts_with(char::is_uppercase) => (Some(t.to_string()), id.to_string()),
                        _ => (None, v.clone()),
                    }
                })
                .collect(),
        }),
        (kind, m) => Err(format!("the modifier :{} does not apply to a {kind:?} parameter", m.unwrap_or_default())),
    }
}

impl Query {
    /// Whether a resource of the query's type answers it; `last_updated` is its meta.lastUpdated
    /// (the store's), `now_ms` serves `ap`.
    pub fn matches(&self, resource: &Value, last_updated_ms: Option<i64>, zone: UtcOffset, now_ms: i64) -> bool {
        if resource["resourceType"] != self.resource_type.as_str() {
            return false;
        }
        self.tests.iter().all(|t| match t {
            Test::Id(ids) => resource["id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id)),
            Test::LastUpdated(values) => last_updated_ms
                .or_else(|| {
                    resource["meta"]["lastUpdated"]
                        .as_str()
                        .and_then(|s| datetime::parse(s, Kind::Instant, zone).ok())
                        .map(|(p, _)| p.start_ms)
                })
                .is_some_and(|ms| values.iter().any(|d| d.matches(&Period::at(ms), now_ms))),
            Test::Token { param, values, not } => {
                let entries = index::extract(resource, param, zone);
                let any = entries.iter().any(|e| match e {
                    Entry::Token { system, code } => values.iter().any(|v| v.matches(system.as_deref(), code)),
                    _ => false,
                });
                any != *not
            }
            Test::Date { param, values } => index::extract(resource, param, zone)
                .iter()
                .any(|e| matches!(e, Entry::Date(p) if values.iter().any(|d| d.matches(p, now_ms)))),
            Test::String { param, values, how } => {
                index::extract(resource, param, zone).iter().any(|e| match e {
                    Entry::String(s) => values.iter().any(|v| match how {
                        StringMatch::StartsWith => s.starts_with(v.as_str()),
                        StringMatch::Contains => s.contains(v.as_str()),
                        StringMatch::Exact => false,
                    }),
                    _ => false,
                }) || (*how == StringMatch::Exact && exact_strings(resource, param).iter().any(|s| values.contains(s)))
            }
            Test::Reference { param, values } => index::extract(resource, param, zone).iter().any(|e| match e {
                Entry::Reference { target_type, id } => {
                    values.iter().any(|(t, i)| i == id && t.as_ref().is_none_or(|t| t == target_type))
                }
                _ => false,
            }),
            Test::Missing { param, missing } => index::extract(resource, param, zone).is_empty() == *missing,
        })
    }
}

/// A string parameter's values as written (`:exact` compares them unchanged), in the order
/// `index::extract` reads them.
pub fn exact_strings(resource: &Value, param: &SearchParam) -> Vec<String> {
    let mut out = vec![];
    for path in param.paths {
        let mut v = vec![resource];
        for step in path.split('.') {
            v = v
                .into_iter()
                .filter_map(|x| x.get(step))
                .flat_map(|x| match x {
                    Value::Array(a) => a.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect();
        }
        out.extend(v.into_iter().filter_map(Value::as_str).map(str::to_string));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::datetime::BEIJING;
    use serde_json::json;

    fn q(rt: &str, s: &str) -> Result<Query, Vec<Issue>> {
        let pairs: Vec<(String, String)> = s
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        parse(rt, &pairs, false, BEIJING)
    }

    fn hits(rt: &str, s: &str, rs: &[Value]) -> Vec<String> {
        let query = q(rt, s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        rs.iter()
            .filter(|r| query.matches(r, None, BEIJING, 0))
            .map(|r| r["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn patients() -> Vec<Value> {
        vec![
            json!({ "resourceType": "Patient", "id": "a", "meta": { "lastUpdated": "2026-03-01T10:00:00+08:00" },
                "identifier": [{ "system": "urn:wuqing:sid:citizen-id", "value": "11010519491231002X" }],
                "name": [{ "family": "Wang", "given": ["Fang"] }], "gender": "female", "birthDate": "1949-12-31" }),
            json!({ "resourceType": "Patient", "id": "b", "meta": { "lastUpdated": "2026-04-01T10:00:00+08:00" },
                "name": [{ "family": "Wangmu", "given": ["Li"] }], "gender": "male", "birthDate": "1980",
                "managingOrganization": { "reference": "Organization/o1" } }),
            json!({ "resourceType": "Patient", "id": "c", "name": [{ "text": "张伟" }] }),
        ]
    }

    #[test]
    fn the_ipa_searches_of_patient() {
        let ps = patients();
        assert_eq!(hits("Patient", "_id=a,c", &ps), ["a", "c"]);
        assert_eq!(hits("Patient", "identifier=urn:wuqing:sid:citizen-id|11010519491231002X", &ps), ["a"]);
        assert_eq!(hits("Patient", "identifier=11010519491231002X", &ps), ["a"]);
        assert!(hits("Patient", "identifier=urn:other|11010519491231002X", &ps).is_empty());
        // Strings start with, ignoring case; :exact and :contains.
        assert_eq!(hits("Patient", "family=wang", &ps), ["a", "b"]);
        assert_eq!(hits("Patient", "family:exact=Wang", &ps), ["a"]);
        assert_eq!(hits("Patient", "name:contains=伟", &ps), ["c"]);
        // AND across parameters, OR within one.
        assert_eq!(hits("Patient", "family=wang&gender=male", &ps), ["b"]);
        assert_eq!(hits("Patient", "gender=male,female", &ps), ["a", "b"]);
        assert_eq!(hits("Patient", "gender:not=male", &ps), ["a", "c"]);
        assert_eq!(hits("Patient", "gender:missing=true", &ps), ["c"]);
        // Dates: a year value against a day, a day value against a year (not within).
        assert_eq!(hits("Patient", "birthdate=1949", &ps), ["a"]);
        assert_eq!(hits("Patient", "birthdate=ge1950", &ps), ["b"]);
        assert!(hits("Patient", "birthdate=1980-06-01", &ps).is_empty(), "a day does not contain the year 1980");
        assert_eq!(hits("Patient", "_lastUpdated=gt2026-03-15", &ps), ["b"]);
        assert_eq!(hits("Patient", "organization=Organization/o1", &ps), ["b"]);
        assert_eq!(hits("Patient", "organization=o1", &ps), ["b"]);
        assert!(hits("Patient", "organization=Practitioner/o1", &ps).is_empty());
    }

    #[test]
    fn count_include_and_errors() {
        let query = q("Observation", "patient=Patient/p1&_count=5000&_include=Observation:patient").unwrap();
        assert_eq!((query.count, query.include.len()), (MAX_COUNT, 1));
        let e = q("Patient", "nmae=x").unwrap_err();
        assert_eq!((e[0].code, e[0].path.as_str()), ("not-supported", "nmae"));
        let lenient = parse("Patient", &[("nmae".into(), "x".into())], true, BEIJING).unwrap();
        assert_eq!(lenient.ignored, ["nmae"]);
        for bad in [
            "birthdate=2013-02-30",
            "gender:exact=male",
            "gender:missing=maybe",
            "_count=-1",
            "_include=Patient:organization",
            "family=",
        ] {
            assert!(q(if bad.starts_with("_include") { "Observation" } else { "Patient" }, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_observations_answer_the_ipa_observation_searches() {
        let mut obs = vec![];
        crate::generate::district(300, 6, 2026, |t, v| {
            if t == "Observation" {
                obs.push(v);
            }
        });
        let subject = obs[0]["subject"]["reference"].as_str().unwrap().to_string();
        let of_patient = hits("Observation", &format!("patient={subject}"), &obs);
        assert!(!of_patient.is_empty());
        let vitals = hits("Observation", &format!("patient={subject}&category=vital-signs"), &obs);
        let bp = hits("Observation", &format!("patient={subject}&code=http://loinc.org|85354-9"), &obs);
        assert_eq!(vitals, bp, "the generated vital signs are blood pressures");
        let all_2026 =
            hits("Observation", &format!("patient={subject}&category=vital-signs,laboratory&date=2026"), &obs);
        assert_eq!(all_2026, of_patient);
        assert!(hits("Observation", &format!("patient={subject}&date=lt2026"), &obs).is_empty());
    }
}
