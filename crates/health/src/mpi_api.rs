//! `/api/health/mpi/…`: the master patient index's review queue for the health commission's
//! data staff (a regulator of the health domain): pairs of registrations the index could not
//! decide, shown with the demographic details needed to judge them (identifiers masked), linked
//! or separated by a person, and every link or separation taken back by its inverse. Each view
//! and each decision is audited.

use crate::mpi::links::Event as LinkEvent;
use crate::mpi_store;
use crate::records::Records;
use axum::extract::State;
use kernel::access::Caller;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reviews))
        .routes(routes!(decide))
        .routes(routes!(person))
        .routes(routes!(undo))
}

fn records(st: &AppState, keys: Option<&crate::records::Keys>) -> Records {
    Records { store: st.store.clone(), cipher: st.cipher.clone(), keys: keys.cloned().unwrap_or_default() }
}

/// The health commission's staff (a regulator of the health domain) keep the index.
async fn require_keeper(st: &AppState, c: &Caller) -> ApiResult<()> {
    if crate::health_api::is_health_regulator(st, c).await? {
        return Ok(());
    }
    let ev = Event::new(Actor::of(c), "health.mpi.review", "mpi", None, Outcome::Denied)
        .detail(json!({ "refusal": "not_health_regulator" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError {
        audited: true,
        ..ApiError::forbidden(
            "the patient index is kept by the health commission's staff (仅卫健委人员可维护患者主索引)",
        )
    })
}

/// A registration as a reviewer sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MpiRegistration)]
pub struct Registration {
    pub id: String,
    pub name: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    /// Masked: region and birth date hidden, the last four shown.
    pub citizen_id: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub managing_organization: Option<String>,
}

fn registration(id: &str, p: Option<&Value>) -> Registration {
    let Some(p) = p else {
        return Registration {
            id: id.to_string(),
            name: None,
            gender: None,
            birth_date: None,
            citizen_id: None,
            phone: None,
            address: None,
            managing_organization: None,
        };
    };
    let s = |v: &Value| v.as_str().map(str::to_string);
    let name = p["name"][0]["text"].as_str().map(str::to_string).or_else(|| {
        let family = p["name"][0]["family"].as_str().unwrap_or_default();
        let given: String = p["name"][0]["given"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let n = format!("{family}{given}");
        (!n.is_empty()).then_some(n)
    });
    let cid = p["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == crate::generate::CITIZEN_ID_SYSTEM)
        .and_then(|i| i["value"].as_str())
        .map(kernel::crypto::mask_citizen_id);
    let phone = p["telecom"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["system"] == "phone")
        .and_then(|t| t["value"].as_str())
        .map(kernel::crypto::mask_phone);
    Registration {
        id: id.to_string(),
        name,
        gender: s(&p["gender"]),
        birth_date: s(&p["birthDate"]),
        citizen_id: cid,
        phone,
        address: s(&p["address"][0]["text"]),
        managing_organization: s(&p["managingOrganization"]["reference"]),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MpiReview)]
pub struct Review {
    pub id: String,
    /// Match probability, 0 to 1.
    pub score: f64,
    /// `certain`, `probable` or `possible`.
    pub grade: String,
    /// `open`, `linked` or `separated`.
    pub status: String,
    pub created: String,
    /// The new registration.
    pub a: Registration,
    /// The registration it may be the same person as.
    pub b: Registration,
    pub decided_by: Option<String>,
    pub decided: Option<String>,
    /// The link or separation the decision recorded.
    pub event_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// `open` (default), `linked`, `separated` or `all`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const REVIEW_COLUMNS: &str =
    "id, patient_a, patient_b, score, grade, status, created_ms, decided_by, decided_ms, event_id";

async fn review_views(r: &Records, rows: &[sqlx::any::AnyRow]) -> ApiResult<Vec<Review>> {
    let mut ids = vec![];
    for row in rows {
        ids.push(col::<String>(row, "patient_a")?);
        ids.push(col::<String>(row, "patient_b")?);
    }
    let found = r.many("Patient", &ids).await?;
    let body = |id: &str| found.iter().find(|s| s.id == id).map(|s| &s.body);
    rows.iter()
        .map(|row| {
            let (a, b): (String, String) = (col(row, "patient_a")?, col(row, "patient_b")?);
            Ok(Review {
                id: col(row, "id")?,
                score: col(row, "score")?,
                grade: col(row, "grade")?,
                status: col(row, "status")?,
                created: ms_to_rfc3339(col(row, "created_ms")?),
                a: registration(&a, body(&a)),
                b: registration(&b, body(&b)),
                decided_by: col(row, "decided_by")?,
                decided: col::<Option<i64>>(row, "decided_ms")?.map(ms_to_rfc3339),
                event_id: col(row, "event_id")?,
            })
        })
        .collect::<Result<_, StoreError>>()
        .map_err(ApiError::from)
}

/// The review queue: pairs of registrations the index found probably or possibly the same
/// person, newest first (the data staff of the health commission).
#[utoipa::path(get, path = "/api/health/mpi/reviews", tag = "health", params(ReviewFilter),
    responses((status = 200, body = Paged<Review>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_reviews(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(f): Query<ReviewFilter>,
) -> ApiResult<axum::Json<Paged<Review>>> {
    require_keeper(&st, &c).await?;
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let status = f.status.unwrap_or_else(|| "open".into());
    if !matches!(status.as_str(), "open" | "linked" | "separated" | "all") {
        return Err(ApiError::field(Code::InvalidQuery, "status", "status is open, linked, separated or all"));
    }
    let r = records(&st, None);
    let (cond, arg) = if status == "all" { ("$1 = $1", String::new()) } else { ("status = $1", status.clone()) };
    let rows = sqlx::query(&st.store.sql(&format!(
        "SELECT {REVIEW_COLUMNS} FROM health_mpi_reviews WHERE {cond} ORDER BY created_ms DESC, id LIMIT $2 OFFSET $3"
    )))
    .bind(arg.clone())
    .bind(limit)
    .bind(offset)
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let total_row = sqlx::query(&st.store.sql(&format!("SELECT COUNT(*) AS n FROM health_mpi_reviews WHERE {cond}")))
        .bind(arg)
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let items = review_views(&r, &rows).await?;
    let ev = Event::new(Actor::of(&c), "health.mpi.review", "mpi", None, Outcome::Success)
        .detail(json!({ "shown": items.len(), "status": status }));
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(Paged { items, total: col(&total_row, "n").map_err(ApiError::from)?, limit, offset }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MpiDecision)]
pub struct Decision {
    /// `link` (the same person) or `separate` (two people: never linked automatically again).
    pub decision: String,
}

/// Decides a pair: linked (the same person) or separated (two people). 409 when it was decided
/// already, or when the links in force refuse it (a link across a separation).
#[utoipa::path(post, path = "/api/health/mpi/reviews/{id}/decision", tag = "health", params(("id" = String, Path)),
    request_body = Decision,
    responses((status = 200, body = Review), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn decide(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> ApiResult<axum::Json<Review>> {
    require_keeper(&st, &c).await?;
    let (kind, status) = match d.decision.as_str() {
        "link" => ("link", "linked"),
        "separate" => ("separate", "separated"),
        _ => return Err(ApiError::field(Code::InvalidField, "decision", "decision is link or separate")),
    };
    let r = records(&st, None);
    let row = sqlx::query(&st.store.sql(&format!("SELECT {REVIEW_COLUMNS} FROM health_mpi_reviews WHERE id = $1")))
        .bind(id.clone())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::not_found("review"))?;
    if col::<String>(&row, "status")? != "open" {
        return Err(ApiError::new(Code::Conflict, "this pair was decided already (已处理)"));
    }
    let (a, b): (String, String) = (col(&row, "patient_a")?, col(&row, "patient_b")?);
    let e = if kind == "link" { LinkEvent::Link { a, b } } else { LinkEvent::Separate { a, b } };
    let event =
        match mpi_store::record_event(&r, &Actor::of(&c), e, &format!("review {id}"), col(&row, "score")?).await? {
            Ok(ev) => ev,
            Err(refused) => return Err(ApiError::new(Code::Conflict, format!("the index refuses it: {refused}"))),
        };
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "UPDATE health_mpi_reviews SET status = $1, decided_by = $2, decided_ms = $3, event_id = $4 WHERE id = $5",
    ))
    .bind(status)
    .bind(c.username.clone())
    .bind(now_ms())
    .bind(event)
    .bind(id.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = sqlx::query(&st.store.sql(&format!("SELECT {REVIEW_COLUMNS} FROM health_mpi_reviews WHERE id = $1")))
        .bind(id)
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let mut v = review_views(&r, std::slice::from_ref(&row)).await?;
    Ok(axum::Json(v.remove(0)))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MpiEvent)]
pub struct LinkEventView {
    pub id: String,
    pub at: String,
    /// `link`, `unlink`, `separate` or `unseparate`.
    pub kind: String,
    pub a: String,
    pub b: String,
    pub actor: String,
    /// `automatic` or the review that decided it, or the event it took back.
    pub source: String,
    pub score: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    /// The registrations of the same person (this one included), by Patient id.
    pub registrations: Vec<String>,
    /// The link events that concern them, oldest first.
    pub events: Vec<LinkEventView>,
}

const EVENT_COLUMNS: &str = "id, at_ms, kind, a, b, actor_id, source, score";

fn event_view(r: &sqlx::any::AnyRow) -> Result<LinkEventView, StoreError> {
    Ok(LinkEventView {
        id: col(r, "id")?,
        at: ms_to_rfc3339(col(r, "at_ms")?),
        kind: col(r, "kind")?,
        a: col(r, "a")?,
        b: col(r, "b")?,
        actor: col(r, "actor_id")?,
        source: col(r, "source")?,
        score: col(r, "score")?,
    })
}

/// The events that concern any of these registrations, oldest first.
async fn event_views(st: &AppState, ids: &[String]) -> ApiResult<Vec<LinkEventView>> {
    let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM health_mpi_events ORDER BY at_ms, id"))
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let mut out = vec![];
    for r in &rows {
        let v = event_view(r)?;
        if ids.contains(&v.a) || ids.contains(&v.b) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The person a registration belongs to: the registrations linked to it and the events.
#[utoipa::path(get, path = "/api/health/mpi/patients/{id}/person", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = Person), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn person(State(st): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<axum::Json<Person>> {
    require_keeper(&st, &c).await?;
    let r = records(&st, None);
    if r.current("Patient", &id).await?.is_none() {
        return Err(ApiError::not_found("patient"));
    }
    let links = mpi_store::links(&r).await?;
    let registrations: Vec<String> = links.person(&id).into_iter().collect();
    let events = event_views(&st, &registrations).await?;
    Ok(axum::Json(Person { registrations, events }))
}

/// Takes a link or separation back by recording its inverse (unlink, unseparate); 409 when it
/// is no longer in force.
#[utoipa::path(post, path = "/api/health/mpi/events/{id}/undo", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = LinkEventView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn undo(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LinkEventView>> {
    require_keeper(&st, &c).await?;
    let r = records(&st, None);
    let all = mpi_store::events(&r).await?;
    let Some((_, e)) = all.iter().find(|(i, _)| *i == id) else { return Err(ApiError::not_found("link event")) };
    let inverse = match e.clone() {
        LinkEvent::Link { a, b } => LinkEvent::Unlink { a, b },
        LinkEvent::Separate { a, b } => LinkEvent::Unseparate { a, b },
        _ => return Err(ApiError::new(Code::Conflict, "only a link or a separation is taken back")),
    };
    let new = match mpi_store::record_event(&r, &Actor::of(&c), inverse, &format!("undo {id}"), None).await? {
        Ok(n) => n,
        Err(refused) => return Err(ApiError::new(Code::Conflict, format!("cannot take it back: {refused}"))),
    };
    let row = sqlx::query(&st.store.sql(&format!("SELECT {EVENT_COLUMNS} FROM health_mpi_events WHERE id = $1")))
        .bind(new)
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    Ok(axum::Json(event_view(&row)?))
}
