//! Batch and transaction Bundles (R4 http §3.1.0.11) read into a plan before anything is done:
//! every entry's request checked (method, URL, resource type and id agreeing, the resource
//! valid), transactions ordered as the specification orders them (DELETE, POST, PUT, GET), new
//! ids given to created resources and every `urn:uuid:` reference to them rewritten. A
//! transaction with any problem is refused whole; a batch's bad entries are answered alone.

use super::validate::{self, Issue};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    // Declared in the order a transaction runs them.
    Delete,
    Post,
    Put,
    Get,
}

/// One entry, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Its position in the Bundle (the response keeps the Bundle's order).
    pub entry: usize,
    pub method: Method,
    pub resource_type: String,
    /// The id: given for PUT and DELETE, assigned for POST, absent for a GET search.
    pub id: Option<String>,
    /// GET: the URL after the type (`/123`, `?name=x`).
    pub query: Option<String>,
    pub resource: Option<Value>,
    /// Conditional create (`ifNoneExist`: a search that must find nothing).
    pub if_none_exist: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Batch,
    Transaction,
}

/// A Bundle read and ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: Kind,
    /// In the order to run them.
    pub ops: Vec<Op>,
    /// A batch's entries answered with an error (by entry), the others running.
    pub refused: Vec<(usize, Issue)>,
}

/// Entries at most in one Bundle.
pub const MAX_ENTRIES: usize = 10_000;

fn issue(code: &'static str, path: String, diagnostics: impl Into<String>) -> Issue {
    Issue { code, path, diagnostics: diagnostics.into() }
}

/// Rewrites every `reference` string found in `map` (recursively).
fn rewrite(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    if let Some(to) = x.as_str().and_then(|s| map.get(s)) {
                        *x = Value::String(to.clone());
                    }
                } else {
                    rewrite(x, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, map)),
        _ => {}
    }
}

/// Reads a Bundle into its kind and its operations; `new_id` gives each created resource its id.
/// For a transaction any issue refuses the whole; for a batch the issues name the entries that
/// will be answered with an error, and the rest run.
pub fn plan(bundle: &Value, mut new_id: impl FnMut() -> String) -> Result<Plan, Vec<Issue>> {
    if bundle["resourceType"] != "Bundle" {
        return Err(vec![issue("invalid", "resourceType".into(), "a Bundle is expected")]);
    }
    let kind = match bundle["type"].as_str() {
        Some("batch") => Kind::Batch,
        Some("transaction") => Kind::Transaction,
        _ => {
            return Err(vec![issue(
                "invalid",
                "Bundle.type".into(),
                "only batch and transaction Bundles are processed",
            )]);
        }
    };
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.len() > MAX_ENTRIES {
        return Err(vec![issue("too-costly", "Bundle.entry".into(), format!("at most {MAX_ENTRIES} entries"))]);
    }
    let mut ops = vec![];
    let mut bad: Vec<(usize, Issue)> = vec![];
    let mut created: HashMap<String, String> = HashMap::new();
    let mut targets: HashSet<(String, String)> = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("Bundle.entry[{i}]");
        let method = match e["request"]["method"].as_str() {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some("PUT") => Method::Put,
            Some("DELETE") => Method::Delete,
            _ => {
                bad.push((i, issue("required", format!("{at}.request.method"), "GET, POST, PUT or DELETE")));
                continue;
            }
        };
        let Some(url) = e["request"]["url"].as_str().filter(|u| !u.is_empty()) else {
            bad.push((i, issue("required", format!("{at}.request.url"), "the request's URL is required")));
            continue;
        };
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (url, None),
        };
        let mut parts = path.trim_matches('/').split('/');
        let rt = parts.next().unwrap_or_default().to_string();
        let id = parts.next().map(str::to_string);
        if parts.next().is_some() && method != Method::Get {
            bad.push((i, issue("not-supported", format!("{at}.request.url"), "only Type or Type/id here")));
            continue;
        }
        if validate::definition(&rt).is_none() {
            let shown: String = rt.chars().take(40).collect();
            bad.push((
                i,
                issue("not-supported", format!("{at}.request.url"), format!("{shown} is not supported here")),
            ));
            continue;
        }
        let resource = match method {
            Method::Post | Method::Put => {
                let Some(r) = e.get("resource").filter(|r| r.is_object()) else {
                    bad.push((i, issue("required", format!("{at}.resource"), "POST and PUT carry a resource")));
                    continue;
                };
                let issues = validate::validate(r, Some(&rt));
                if !issues.is_empty() {
                    for is in issues {
                        // `Observation.status` inside the entry is `Bundle.entry[2].resource.status`.
                        let sub = is.path.strip_prefix(rt.as_str()).unwrap_or(&is.path).trim_start_matches('.');
                        let path =
                            if sub.is_empty() { format!("{at}.resource") } else { format!("{at}.resource.{sub}") };
                        bad.push((i, Issue { path, ..is }));
                    }
                    continue;
                }
                Some(r.clone())
            }
            _ => None,
        };
        let id = match method {
            Method::Post => {
                if id.is_some() {
                    bad.push((i, issue("invalid", format!("{at}.request.url"), "POST goes to the type, not to an id")));
                    continue;
                }
                let new = new_id();
                if let Some(full) = e["fullUrl"].as_str().filter(|f| f.starts_with("urn:uuid:")) {
                    created.insert(full.to_string(), format!("{rt}/{new}"));
                }
                Some(new)
            }
            Method::Put | Method::Delete => {
                let Some(id) = id.filter(|id| validate::is_id(id)) else {
                    bad.push((i, issue("invalid", format!("{at}.request.url"), "PUT and DELETE name Type/id")));
                    continue;
                };
                if method == Method::Put
                    && resource.as_ref().is_some_and(|r| r["id"].as_str().is_some_and(|rid| rid != id))
                {
                    bad.push((
                        i,
                        issue("invalid", format!("{at}.resource.id"), "the resource's id differs from the URL's"),
                    ));
                    continue;
                }
                Some(id)
            }
            Method::Get => id,
        };
        if kind == Kind::Transaction && method != Method::Get {
            if let Some(id) = &id {
                if !targets.insert((rt.clone(), id.clone())) {
                    bad.push((
                        i,
                        issue("invalid", format!("{at}.request.url"), "a transaction changes a resource once"),
                    ));
                    continue;
                }
            }
        }
        let if_none_exist = e["request"]["ifNoneExist"].as_str().map(str::to_string);
        ops.push(Op { entry: i, method, resource_type: rt, id, query, resource, if_none_exist });
    }
    if kind == Kind::Transaction {
        if !bad.is_empty() {
            return Err(bad.into_iter().map(|(_, i)| i).collect());
        }
        // The order of R4 http §3.1.0.11.2; the Bundle's order within each method.
        ops.sort_by_key(|o| (o.method, o.entry));
    }
    for op in &mut ops {
        if let Some(r) = op.resource.as_mut() {
            rewrite(r, &created);
            if op.method == Method::Post {
                if let (Some(o), Some(id)) = (r.as_object_mut(), &op.id) {
                    o.insert("id".into(), Value::String(id.clone()));
                }
            }
        }
    }
    Ok(Plan { kind, ops, refused: bad })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("new{n}")
        }
    }

    fn bundle(kind: &str) -> Value {
        json!({ "resourceType": "Bundle", "type": kind, "entry": [
            { "request": { "method": "GET", "url": "Patient?identifier=x" } },
            { "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": { "resourceType": "Patient", "gender": "female" },
              "request": { "method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:x|1" } },
            { "resource": { "resourceType": "Observation", "status": "final", "code": { "text": "血糖" },
                "subject": { "reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a" } },
              "request": { "method": "POST", "url": "Observation" } },
            { "resource": { "resourceType": "Organization", "id": "o1", "name": "卫生院" }, "request": { "method": "PUT", "url": "Organization/o1" } },
            { "request": { "method": "DELETE", "url": "Observation/old1" } }
        ] })
    }

    #[test]
    fn a_transaction_runs_in_the_specification_s_order_with_its_references_rewritten() {
        let Plan { kind, ops, refused: bad } = plan(&bundle("transaction"), ids()).unwrap();
        assert_eq!((kind, bad.len()), (Kind::Transaction, 0));
        let order: Vec<(Method, usize)> = ops.iter().map(|o| (o.method, o.entry)).collect();
        assert_eq!(
            order,
            [(Method::Delete, 4), (Method::Post, 1), (Method::Post, 2), (Method::Put, 3), (Method::Get, 0)]
        );
        let obs = ops.iter().find(|o| o.resource_type == "Observation" && o.method == Method::Post).unwrap();
        assert_eq!(obs.resource.as_ref().unwrap()["subject"]["reference"], "Patient/new1");
        assert_eq!(obs.resource.as_ref().unwrap()["id"], "new2");
        assert_eq!(ops[1].if_none_exist.as_deref(), Some("identifier=urn:x|1"));
        assert_eq!(ops[4].query.as_deref(), Some("identifier=x"));
    }

    #[test]
    fn a_bad_entry_refuses_a_transaction_whole_but_only_itself_in_a_batch() {
        let mut b = bundle("transaction");
        b["entry"][3]["resource"]["id"] = json!("o2");
        b["entry"][2]["resource"]["status"] = json!("done");
        let issues = plan(&b, ids()).unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"Bundle.entry[3].resource.id") && paths.contains(&"Bundle.entry[2].resource.status"),
            "{paths:?}"
        );
        b["type"] = json!("batch");
        let Plan { ops, refused: bad, .. } = plan(&b, ids()).unwrap();
        assert_eq!(ops.len(), 3);
        let bad_entries: HashSet<usize> = bad.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad_entries, HashSet::from([2, 3]));
        // Two changes to one resource in a transaction.
        let twice = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
            { "request": { "method": "DELETE", "url": "Patient/p1" } }, { "request": { "method": "DELETE", "url": "Patient/p1" } }] });
        assert_eq!(plan(&twice, ids()).unwrap_err()[0].path, "Bundle.entry[1].request.url");
    }

    #[test]
    fn malformed_bundles_and_requests_are_refused_with_paths() {
        assert!(plan(&json!({ "resourceType": "Bundle", "type": "searchset" }), ids()).is_err());
        assert!(plan(&json!({ "resourceType": "Patient" }), ids()).is_err());
        let b = json!({ "resourceType": "Bundle", "type": "batch", "entry": [
            { "request": { "method": "PATCH", "url": "Patient/1" } },
            { "request": { "method": "PUT", "url": "Patient/../../etc" }, "resource": { "resourceType": "Patient" } },
            { "request": { "method": "POST", "url": "Spaceship" }, "resource": { "resourceType": "Spaceship" } },
            { "request": { "method": "POST", "url": "Patient/1" }, "resource": { "resourceType": "Patient" } },
            { "request": { "method": "PUT", "url": "Patient/1" } },
            { "request": { "method": "DELETE" } }
        ] });
        let Plan { ops, refused: bad, .. } = plan(&b, ids()).unwrap();
        assert!(ops.is_empty());
        assert_eq!(bad.iter().map(|(i, _)| *i).collect::<HashSet<_>>(), (0..6).collect());
        let many: Vec<Value> = (0..=MAX_ENTRIES).map(|_| json!({})).collect();
        assert_eq!(
            plan(&json!({ "resourceType": "Bundle", "type": "batch", "entry": many }), ids()).unwrap_err()[0].code,
            "too-costly"
        );
    }
}
