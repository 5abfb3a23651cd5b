//! Accidents and complaints (事故 / 投诉) the transport bureau records against an enterprise, with
//! one of its vehicles if known; they feed the credit assessment (`for_year`).
//!
//! An accident (`accident`) carries its grade after 《生产安全事故报告和调查处理条例》 第三条
//! (`minor` 一般, `major` 较大, `serious` 重大, `catastrophic` 特别重大), the deaths and
//! injuries, and whether the enterprise bore responsibility (`at_fault`, 负有责任). A complaint
//! (`complaint`, e.g. from the 12328 hotline) is open until the bureau decides, once, whether it
//! was substantiated (属实) — a second decision is a 409. The bureau's transport regulators
//! record and decide; the enterprise's operators read their own. Every write is a step of the
//! case history and an audit record in one transaction.

use crate::access::{Who, reaches, require_filter, who};
use crate::penalties::{check_year, enterprise_in_reach, vehicle_of};
use crate::workflow::{self, NewStep, Step, not_yours, wrong_state};
use kernel::access::Caller;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::store::{Arg, StoreError, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The history's case kind.
pub const CASE: &str = "incident";
/// Most deaths or injuries one record may count.
const MAX_PEOPLE: i64 = 10_000;

/// 事故 or 投诉.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = IncidentKind)]
pub enum Kind {
    /// 事故.
    Accident,
    /// 投诉.
    Complaint,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Accident => "accident",
            Kind::Complaint => "complaint",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Accident, Kind::Complaint].into_iter().find(|k| k.as_str() == s)
    }
}

/// An accident's grade (生产安全事故报告和调查处理条例 第三条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = IncidentGrade)]
pub enum Severity {
    /// 一般事故.
    Minor,
    /// 较大事故.
    Major,
    /// 重大事故.
    Serious,
    /// 特别重大事故.
    Catastrophic,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Serious => "serious",
            Severity::Catastrophic => "catastrophic",
        }
    }

    fn parse(s: &str) -> Option<Severity> {
        [Severity::Minor, Severity::Major, Severity::Serious, Severity::Catastrophic]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A new accident or complaint (the bureau's transport regulators).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// `accident` or `complaint` (read as text so that a wrong one is a 422 naming this field).
    #[schema(value_type = Kind)]
    pub kind: String,
    pub org_id: String,
    /// A vehicle of the enterprise, if known.
    #[serde(default)]
    pub vehicle_id: Option<String>,
    /// When it happened (the complaint: when it was received), `YYYY-MM-DD`, today or before.
    pub occurred_on: String,
    /// What happened, up to 4000 characters.
    pub description: String,
    /// Accidents only (required): `minor`, `major`, `serious` or `catastrophic`.
    #[serde(default)]
    #[schema(value_type = Option<Severity>)]
    pub severity: Option<String>,
    /// Accidents only, default 0.
    #[serde(default)]
    pub deaths: Option<i64>,
    /// Accidents only, default 0.
    #[serde(default)]
    pub injuries: Option<i64>,
    /// Accidents only (required): the enterprise bore responsibility (负有责任).
    #[serde(default)]
    pub at_fault: Option<bool>,
    /// Evidence (ids from `POST /api/files`); shared with the enterprise.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The bureau's decision on a complaint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintDecision {
    /// 属实 (true) or 不属实 (false).
    pub substantiated: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// An accident or complaint as a list or page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub kind: Kind,
    pub org_id: String,
    pub org_name: String,
    pub vehicle_id: Option<String>,
    pub plate: Option<String>,
    pub occurred_on: String,
    pub description: String,
    pub severity: Option<Severity>,
    pub deaths: Option<i64>,
    pub injuries: Option<i64>,
    pub at_fault: Option<bool>,
    /// Complaints: None until decided.
    pub substantiated: Option<bool>,
    /// Complaints: `YYYY-MM-DD` of the decision.
    pub decided_on: Option<String>,
    pub decision_note: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Step>>,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    pub org_id: Option<String>,
    pub kind: Option<Kind>,
    /// Happened in this calendar year.
    pub year: Option<i32>,
    /// Complaints not yet decided.
    pub open: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const COLS: &str = "i.id AS id, i.kind AS kind, i.org_id AS org_id, o.name AS org_name, i.vehicle_id AS vehicle_id, \
     v.plate AS plate, i.occurred_on AS occurred_on, i.description AS description, i.severity AS severity, \
     i.deaths AS deaths, i.injuries AS injuries, i.at_fault AS at_fault, i.substantiated AS substantiated, \
     i.decided_on AS decided_on, i.decision_note AS decision_note, i.created_ms AS created_ms, \
     i.created_by AS created_by, i.updated_ms AS updated_ms";
const FROM: &str = "supervision_incidents i JOIN organisations o ON o.id = i.org_id \
     LEFT JOIN transport_vehicles v ON v.id = i.vehicle_id";

fn corrupt(what: &str, v: &str) -> ApiError {
    ApiError::internal(format!("incident {what} {v:?}"))
}

fn flag(r: &AnyRow, name: &str) -> ApiResult<Option<bool>> {
    Ok(col::<Option<i64>>(r, name)?.map(|b| b != 0))
}

fn severity_of(r: &AnyRow) -> ApiResult<Option<Severity>> {
    col::<Option<String>>(r, "severity")?
        .map(|s| Severity::parse(&s).ok_or_else(|| corrupt("severity", &s)))
        .transpose()
}

fn row_to_view(r: &AnyRow) -> ApiResult<IncidentView> {
    let k: String = col(r, "kind")?;
    Ok(IncidentView {
        id: col(r, "id")?,
        kind: Kind::parse(&k).ok_or_else(|| corrupt("kind", &k))?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        vehicle_id: col(r, "vehicle_id")?,
        plate: col(r, "plate")?,
        occurred_on: col(r, "occurred_on")?,
        description: col(r, "description")?,
        severity: severity_of(r)?,
        deaths: col(r, "deaths")?,
        injuries: col(r, "injuries")?,
        at_fault: flag(r, "at_fault")?,
        substantiated: flag(r, "substantiated")?,
        decided_on: col(r, "decided_on")?,
        decision_note: col(r, "decision_note")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        created_by: col(r, "created_by")?,
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
        history: None,
    })
}

fn not_found() -> ApiError {
    ApiError::not_found("incident")
}

/// Accidents and complaints in the caller's reach, newest first.
pub async fn list(st: &AppState, c: &Caller, q: &IncidentQuery) -> ApiResult<Paged<IncidentView>> {
    let side = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let mut w = Where::new();
    w.scope(&c.scope, "i.org_id");
    if side == Who::Operator {
        w.and("i.org_id = ?", Arg::S(c.org_id.clone()));
    }
    if let Some(o) = &q.org_id {
        require_filter(c, o)?;
        w.and("i.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(k) = q.kind {
        w.and("i.kind = ?", Arg::S(k.as_str().into()));
    }
    if let Some(y) = q.year {
        let (from, to) = check_year(y)?;
        w.and("i.occurred_on >= ?", Arg::S(from));
        w.and("i.occurred_on <= ?", Arg::S(to));
    }
    if q.open == Some(true) {
        w.and_fixed("i.kind = 'complaint' AND i.substantiated IS NULL");
    }
    let (rows, total) = fetch_page(&st.store, COLS, FROM, &w, "i.occurred_on DESC, i.id DESC", limit, offset).await?;
    let items = rows.iter().map(row_to_view).collect::<ApiResult<_>>()?;
    Ok(Paged { items, total, limit, offset })
}

async fn reachable(st: &AppState, c: &Caller, id: &str) -> ApiResult<IncidentView> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE i.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(not_found)?;
    let v = row_to_view(&row)?;
    if reaches(c, &v.org_id) { Ok(v) } else { Err(not_found()) }
}

/// One accident or complaint with its history (the read audited).
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<IncidentView> {
    who(st, c).await?;
    let mut v = reachable(st, c, id).await?;
    v.history = Some(workflow::steps(st, c, CASE, &v.id).await?);
    audit::record(&st.store, Event::new(Actor::of(c), "incident.read", CASE, Some(&v.id), Outcome::Success)).await?;
    Ok(v)
}

/// The accident's figures, checked against the kind: (severity, deaths, injuries, at_fault).
type Figures = (Kind, Option<Severity>, Option<i64>, Option<i64>, Option<bool>);

fn figures(i: &NewIncident) -> ApiResult<Figures> {
    let bad = |field: &str, why: &str| ApiError::field(Code::InvalidField, field, why);
    let kind = Kind::parse(i.kind.trim()).ok_or_else(|| bad("kind", "accident or complaint"))?;
    match kind {
        Kind::Accident => {
            let severity = i.severity.as_deref().ok_or_else(|| bad("severity", "required for an accident"))?;
            let severity = Severity::parse(severity.trim())
                .ok_or_else(|| bad("severity", "minor, major, serious or catastrophic"))?;
            let at_fault = i.at_fault.ok_or_else(|| bad("at_fault", "required for an accident"))?;
            let count = |field: &str, v: Option<i64>| -> ApiResult<i64> {
                let n = v.unwrap_or(0);
                if (0..=MAX_PEOPLE).contains(&n) { Ok(n) } else { Err(bad(field, "0 to 10000")) }
            };
            Ok((
                kind,
                Some(severity),
                Some(count("deaths", i.deaths)?),
                Some(count("injuries", i.injuries)?),
                Some(at_fault),
            ))
        }
        Kind::Complaint => {
            for (field, given) in [
                ("severity", i.severity.is_some()),
                ("deaths", i.deaths.is_some()),
                ("injuries", i.injuries.is_some()),
                ("at_fault", i.at_fault.is_some()),
            ] {
                if given {
                    return Err(bad(field, "an accident's figure, not a complaint's"));
                }
            }
            Ok((kind, None, None, None, None))
        }
    }
}

/// Records an accident or complaint (the bureau's transport regulators).
#[tracing::instrument(skip_all)]
pub async fn create(st: &AppState, c: &Caller, i: &NewIncident) -> ApiResult<IncidentView> {
    if who(st, c).await? != Who::Regulator {
        return Err(not_yours("recording an accident or complaint"));
    }
    let id = insert(st, Some(c), Actor::of(c), &c.org_id, i).await?;
    get_after_write(st, c, &id).await
}

/// Checks and stores a record with its history step and audit record. `c` None: the demo seed.
pub async fn insert(
    st: &AppState,
    c: Option<&Caller>,
    actor: Actor,
    actor_org: &str,
    i: &NewIncident,
) -> ApiResult<String> {
    let (kind, severity, deaths, injuries, at_fault) = figures(i)?;
    enterprise_in_reach(st, c, "org_id", &i.org_id).await?;
    if let Some(v) = &i.vehicle_id {
        vehicle_of(st, "vehicle_id", &i.org_id, v).await?;
    }
    let occurred_on = workflow::past_date("occurred_on", &i.occurred_on)?;
    let description = workflow::text("description", Some(&i.description), 4000, true)?.unwrap_or_default();
    let files = match c {
        Some(c) => workflow::check_files(st, c, "files", &i.files).await?,
        None => vec![],
    };
    let store = &st.store;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_incidents (id, kind, org_id, vehicle_id, occurred_on, description, severity, deaths, \
         injuries, at_fault, created_ms, created_by, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)",
    ))
    .bind(id.clone())
    .bind(kind.as_str())
    .bind(i.org_id.clone())
    .bind(i.vehicle_id.clone())
    .bind(occurred_on.clone())
    .bind(description)
    .bind(severity.map(Severity::as_str))
    .bind(deaths)
    .bind(injuries)
    .bind(at_fault.map(i64::from))
    .bind(now)
    .bind(actor.name.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    for f in &files {
        kernel::files::share(store, &mut tx, &f.id, &i.org_id).await?;
    }
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: &id,
            actor: &actor,
            actor_org,
            action: "record",
            state: Some(if kind == Kind::Complaint { "open" } else { "recorded" }),
            note: None,
            files: &files,
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "incident.create", CASE, Some(&id), Outcome::Success).detail(serde_json::json!({
            "kind": kind.as_str(), "org_id": i.org_id, "vehicle_id": i.vehicle_id, "occurred_on": occurred_on,
            "severity": severity.map(Severity::as_str), "deaths": deaths, "injuries": injuries, "at_fault": at_fault,
            "files": files.len(),
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Decides a complaint, once (the bureau): substantiated or not.
#[tracing::instrument(skip_all)]
pub async fn decide(st: &AppState, c: &Caller, id: &str, d: &ComplaintDecision) -> ApiResult<IncidentView> {
    let side = who(st, c).await?;
    let v = reachable(st, c, id).await?;
    if side != Who::Regulator {
        return Err(not_yours("deciding a complaint"));
    }
    if v.kind != Kind::Complaint {
        return Err(ApiError::new(Code::Conflict, "an accident is not decided; only a complaint is"));
    }
    if v.substantiated.is_some() {
        return Err(wrong_state("decided", "decided"));
    }
    let note = workflow::text("note", d.note.as_deref(), 4000, false)?;
    decide_as(st, Actor::of(c), &c.org_id, &v.id, d.substantiated, note.as_deref()).await?;
    get_after_write(st, c, id).await
}

/// Writes a complaint's decision with its step and audit record; a 409 if it was decided
/// meanwhile. Also the demo's way in.
pub async fn decide_as(
    st: &AppState,
    actor: Actor,
    actor_org: &str,
    id: &str,
    substantiated: bool,
    note: Option<&str>,
) -> ApiResult<()> {
    let store = &st.store;
    let now = now_ms();
    let today = crate::dates::date_of(crate::dates::today_days());
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE supervision_incidents SET substantiated = $1, decided_on = $2, decision_note = $3, updated_ms = $4 \
         WHERE id = $5 AND kind = 'complaint' AND substantiated IS NULL",
    ))
    .bind(i64::from(substantiated))
    .bind(today.clone())
    .bind(note.map(str::to_string))
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(wrong_state("decided", "decided"));
    }
    let state = if substantiated { "substantiated" } else { "unsubstantiated" };
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: id,
            actor: &actor,
            actor_org,
            action: "decide",
            state: Some(state),
            note,
            files: &[],
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "incident.decide", CASE, Some(id), Outcome::Success)
            .detail(serde_json::json!({"substantiated": substantiated, "decided_on": today})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn get_after_write(st: &AppState, c: &Caller, id: &str) -> ApiResult<IncidentView> {
    let mut v = reachable(st, c, id).await?;
    v.history = Some(workflow::steps(st, c, CASE, id).await?);
    Ok(v)
}

// ------------------------------------------------------------------------------ credit

/// An accident or complaint as the credit assessment counts it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct IncidentRecord {
    pub id: String,
    pub org_id: String,
    pub kind: Kind,
    /// `YYYY-MM-DD`.
    pub occurred_on: String,
    /// Accidents only.
    pub severity: Option<Severity>,
    pub deaths: Option<i64>,
    pub injuries: Option<i64>,
    pub at_fault: Option<bool>,
    /// Complaints: `Some(false)` unsubstantiated, `None` not decided yet.
    pub substantiated: Option<bool>,
}

/// Every accident and complaint of `org_ids` that happened in calendar year `year`, by
/// enterprise and date. No access check: for the bureau's own computations.
pub async fn for_year(st: &AppState, org_ids: &[String], year: i32) -> ApiResult<Vec<IncidentRecord>> {
    if org_ids.is_empty() {
        return Ok(vec![]);
    }
    let (from, to) = check_year(year)?;
    let ph: Vec<String> = (0..org_ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT id, org_id, kind, occurred_on, severity, deaths, injuries, at_fault, substantiated FROM supervision_incidents \
         WHERE occurred_on >= $1 AND occurred_on <= $2 AND org_id IN ({}) ORDER BY org_id, occurred_on, id",
        ph.join(", ")
    );
    let sql = st.store.sql(&sql);
    let mut q = sqlx::query(&sql).bind(from).bind(to);
    for o in org_ids {
        q = q.bind(o.clone());
    }
    let rows = q.fetch_all(st.store.reader()).await.map_err(StoreError::from)?;
    rows.iter()
        .map(|r| {
            let k: String = col(r, "kind")?;
            Ok(IncidentRecord {
                id: col(r, "id")?,
                org_id: col(r, "org_id")?,
                kind: Kind::parse(&k).ok_or_else(|| corrupt("kind", &k))?,
                occurred_on: col(r, "occurred_on")?,
                severity: severity_of(r)?,
                deaths: col(r, "deaths")?,
                injuries: col(r, "injuries")?,
                at_fault: flag(r, "at_fault")?,
                substantiated: flag(r, "substantiated")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_incidents, create_incident))
        .routes(routes!(get_incident))
        .routes(routes!(decide_complaint))
}

/// Accidents and complaints in the caller's reach (the bureau: its enterprises'; an enterprise:
/// its own), newest first.
#[utoipa::path(get, path = "/api/supervision/incidents", tag = "supervision", params(IncidentQuery),
    responses((status = 200, body = Paged<IncidentView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_incidents(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<axum::Json<Paged<IncidentView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Records an accident (grade, deaths, injuries, responsibility) or a complaint (the bureau's
/// transport regulators).
#[utoipa::path(post, path = "/api/supervision/incidents", tag = "supervision", request_body = NewIncident,
    responses((status = 201, body = IncidentView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_incident(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(i): Json<NewIncident>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<IncidentView>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(create(&st, &c, &i).await?)))
}

/// One accident or complaint with its history.
#[utoipa::path(get, path = "/api/supervision/incidents/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_incident(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<IncidentView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

/// Decides a complaint once: substantiated or not (the bureau); a second decision is a 409.
#[utoipa::path(post, path = "/api/supervision/incidents/{id}/decide", tag = "supervision", params(("id" = String, Path)),
    request_body = ComplaintDecision,
    responses((status = 200, body = IncidentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn decide_complaint(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(d): Json<ComplaintDecision>,
) -> ApiResult<axum::Json<IncidentView>> {
    Ok(axum::Json(decide(&st, &c, &id, &d).await?))
}
