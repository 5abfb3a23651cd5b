//! The errors every route shares, written into the OpenAPI document once.
//!
//! Handlers document the answers of their own logic (`409` on a stale version, `404` of an id
//! outside the caller's scope, …). Some answers come from the scaffolding every route runs
//! through instead: the extractors (`Json`, `Query`, `Path`, `Auth`) and the router's layers.
//! [`document`] adds those to each operation whose shape makes them possible, and gives every
//! problem response the media type it is sent with (`application/problem+json`; utoipa writes
//! `application/json` for any `body = …`).

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

const PROBLEM_REF: &str = "#/components/schemas/Problem";
/// Schemas of problem documents with extension members (`crate::import::ImportRejected`).
const PROBLEM_REFS: [&str; 2] = [PROBLEM_REF, "#/components/schemas/ImportRejected"];
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Adds the shared error answers to every operation of `doc` and fixes the media type of every
/// problem response.
pub(crate) fn document(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            document_operation(op);
        }
    }
}

fn document_operation(op: &mut Operation) {
    for r in op.responses.responses.values_mut() {
        if let RefOr::T(resp) = r {
            problem_media_type(resp);
        }
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let (query, path) = (has(ParameterIn::Query), has(ParameterIn::Path));
    let body = op.request_body.is_some();
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add = |status: &str, why: &str| {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::T(problem(why)));
    };
    if query || path || body {
        add("400", "malformed request: a query or path parameter of the wrong form, or JSON that does not parse");
    }
    if secured {
        add("401", "not signed in, or the session or token has ended");
        add("403", "not allowed: the role, a read-only token, or a pending password change or second factor");
    }
    if path {
        add("404", "no such record, or one outside the caller's scope");
    }
    if body {
        add("413", "the body is larger than the server takes");
        add("415", "the body is not of a media type the operation takes");
        add("422", "a field of the body is missing, of the wrong type, or invalid");
    }
    add("503", "the store is unavailable; retry later");
}

/// `body = Problem` documents `application/json`; problems are sent as `application/problem+json`.
fn problem_media_type(resp: &mut Response) {
    let is_problem =
        |c: &Content| matches!(&c.schema, Some(RefOr::Ref(r)) if PROBLEM_REFS.contains(&r.ref_location.as_str()));
    if let Some(c) = resp.content.get("application/json") {
        if is_problem(c) {
            if let Some(c) = resp.content.shift_remove("application/json") {
                resp.content.insert(PROBLEM_JSON.to_string(), c);
            }
        }
    }
}

fn problem(description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(PROBLEM_JSON.to_string(), Content::new(Some(Ref::new(PROBLEM_REF))));
    r
}
