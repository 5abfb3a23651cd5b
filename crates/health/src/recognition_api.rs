//! `/api/health/recognition`: before ordering a recognised test, a clinician asks for the
//! patient's recent equivalent results from other institutions (检查检验结果互认): the
//! Observations and DiagnosticReports with a code of the same item inside its window, with
//! their values, dates and institutions. The clinician must be able to read the patient's
//! record (in care, consent); each question is audited against the patient.

use crate::access;
use crate::fhir::datetime::BEIJING;
use crate::fhir::query;
use crate::fhir_api::clinician_context;
use crate::health_api::records;
use crate::recognition::{Item, List};
use crate::records::Keys;
use axum::extract::State as AxState;
use kernel::access::Role;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Query};
use kernel::store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(items)).routes(routes!(results)).layer(axum::Extension(keys))
}

fn list() -> &'static List {
    static LIST: OnceLock<List> = OnceLock::new();
    LIST.get_or_init(List::starter)
}

/// The recognised items and their windows.
#[utoipa::path(get, path = "/api/health/recognition/items", tag = "health",
    responses((status = 200, body = List)), security(("session" = []), ("bearer" = [])))]
async fn items(Auth(_c): Auth) -> axum::Json<List> {
    axum::Json(list().clone())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecognitionQuery {
    pub patient_id: String,
    /// A LOINC code of the test to order, or a recognised item's id.
    pub code: String,
}

/// One recognised result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recognised {
    /// `Observation/{id}` or `DiagnosticReport/{id}`.
    pub resource: String,
    pub code: String,
    pub display: Option<String>,
    /// The value with its unit, or the report's conclusion.
    pub value: Option<String>,
    pub date: Option<String>,
    pub org_id: String,
    pub org_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecognitionAnswer {
    /// The item the code belongs to (none: not a recognised test).
    pub item: Option<Item>,
    /// Results from other institutions inside the window, newest first.
    pub results: Vec<Recognised>,
    /// The list's version.
    pub version: String,
}

fn value_of(body: &Value) -> Option<String> {
    if let Some(q) = body.get("valueQuantity") {
        let v = q["value"].as_f64().map(|v| v.to_string()).unwrap_or_default();
        return Some(format!("{v} {}", q["unit"].as_str().unwrap_or_default()).trim().to_string());
    }
    if let Some(s) = body["valueString"].as_str() {
        return Some(s.to_string());
    }
    if let Some(c) = body["conclusion"].as_str() {
        return Some(c.to_string());
    }
    let parts: Vec<String> = body["component"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["valueQuantity"]["value"].as_f64().map(|v| v.to_string()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The patient's recent results equivalent to `code` from other institutions.
#[utoipa::path(get, path = "/api/health/recognition", tag = "health", params(RecognitionQuery),
    responses((status = 200, body = RecognitionAnswer), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn results(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Query(q): Query<RecognitionQuery>,
) -> ApiResult<axum::Json<RecognitionAnswer>> {
    const ACTION: &str = "health.recognition.read";
    let r = records(&st, &keys);
    let deny = |why: &str| {
        Event::new(Actor::of(&c), ACTION, "Patient", Some(&q.patient_id), Outcome::Denied)
            .detail(json!({ "refusal": why }))
    };
    if c.role != Role::Clinician {
        audit::record(&st.store, deny("not_clinician")).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("results are recognised for clinicians ordering (仅限医生)")
        });
    }
    if !r.exists("Patient", &q.patient_id).await? {
        return Err(ApiError::not_found("patient"));
    }
    let ctx = clinician_context(&r, &c, &c.org_id, &q.patient_id, "Observation", None).await?;
    let who = access::Caller::Clinician { institution: c.org_id.clone() };
    if let Err(refusal) = access::decide(&who, access::Action::Read, &ctx) {
        audit::record(&st.store, deny(&format!("{refusal:?}"))).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("the patient is not in care at your institution (患者未在本机构就诊)")
        });
    }
    let l = list();
    let Some(item) = l.find(q.code.trim()) else {
        let ev = Event::new(Actor::of(&c), ACTION, "Patient", Some(&q.patient_id), Outcome::Success)
            .detail(json!({ "code": q.code }));
        audit::record(&st.store, ev).await?;
        return Ok(axum::Json(RecognitionAnswer { item: None, results: vec![], version: l.version.clone() }));
    };
    let since = now_ms() - i64::from(item.window_days) * 86_400_000;
    let since_day = time::OffsetDateTime::from_unix_timestamp(since / 1000)
        .map(|t| crate::contract::day(t.to_offset(BEIJING).date()))
        .map_err(|_| ApiError::new(Code::Internal, "a date out of range"))?;
    let codes: Vec<String> = item.codes.iter().map(|c| format!("http://loinc.org|{c}")).collect();
    let mut out = vec![];
    for rt in ["Observation", "DiagnosticReport"] {
        let pairs = vec![
            ("patient".to_string(), q.patient_id.clone()),
            ("code".to_string(), codes.join(",")),
            ("date".to_string(), format!("ge{since_day}")),
        ];
        let parsed = query::parse(rt, &pairs, false, BEIJING)
            .map_err(|i| ApiError::new(Code::Internal, format!("{:?}", i.first().map(|x| &x.diagnostics))))?;
        let f = crate::records::filter(&parsed, &r.cipher, now_ms()).map_err(|e| ApiError::new(Code::Internal, e.0))?;
        let page = r.search(rt, f, 100, 0, false).await?;
        for s in page.items.into_iter().filter(|s| s.owner_org != c.org_id) {
            let coding = s.body["code"]["coding"].as_array().and_then(|a| {
                a.iter().find(|x| x["code"].as_str().is_some_and(|k| item.codes.iter().any(|c| c == k))).cloned()
            });
            let date = s.body["effectiveDateTime"]
                .as_str()
                .or_else(|| s.body["effectivePeriod"]["start"].as_str())
                .or_else(|| s.body["issued"].as_str())
                .map(str::to_string);
            out.push(Recognised {
                resource: format!("{}/{}", s.rtype, s.id),
                code: coding.as_ref().and_then(|x| x["code"].as_str()).unwrap_or_default().to_string(),
                display: s.body["code"]["text"]
                    .as_str()
                    .or(coding.as_ref().and_then(|x| x["display"].as_str()))
                    .map(str::to_string),
                value: value_of(&s.body),
                date,
                org_name: kernel::orgs::get(&st.store, &s.owner_org).await?.map(|o| o.name),
                org_id: s.owner_org,
            });
        }
    }
    out.sort_by(|a, b| b.date.cmp(&a.date));
    let ev = Event::new(Actor::of(&c), ACTION, "Patient", Some(&q.patient_id), Outcome::Success)
        .detail(json!({ "item": item.id, "shown": out.len() }));
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(RecognitionAnswer { item: Some(item.clone()), results: out, version: l.version.clone() }))
}
