//! Safety hazard rectification (隐患整改): a hazard the bureau found at an enterprise, by
//! inspection or from an alarm, and the enterprise's rectification of it.
//!
//! ```text
//!   found ──notify──► notified ──report──► reported ──pass──► closed
//!     │                  │  ▲                 │
//!     │                  │  └──── report ── returned ◄──return──┘
//!     └──withdraw──► withdrawn ◄──withdraw── (notified, returned)
//! ```
//!
//! The bureau's transport regulators record a hazard (with a deadline it is notified at once),
//! notify, review and withdraw; the enterprise's operators report the rectification with its
//! evidence files. A report after the deadline is taken (the hazard still has to be put right)
//! and marked late. Every step is a row of the case history (`workflow`) and an audit record in
//! one transaction.
//!
//! **Overdue**: once a day (`escalate`), each notified or returned hazard whose deadline has
//! passed is escalated once per deadline: an alarm `hazard_overdue` (domain `supervision`) on the
//! desk of the enterprise and the bureau, a step `escalate` in its history, and the count of
//! escalations kept for the credit assessment. The alarm's episode ends when the enterprise
//! reports.

use crate::access::{Who, reaches, who};
use crate::dates::{days_of, midnight_ms, today_days};
use crate::expiry::ALARM_DOMAIN;
use crate::workflow::{self, NewStep, Step, not_yours, wrong_state};
use alarms::model::{NewAlarm, Severity};
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
pub const CASE: &str = "hazard";
/// The alarm kind of an overdue hazard.
pub const OVERDUE: &str = "hazard_overdue";

/// A hazard's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = HazardState)]
pub enum State {
    /// 已发现: recorded, the enterprise not told yet.
    Found,
    /// 已下发整改通知: the enterprise must rectify by the deadline.
    Notified,
    /// 已报告整改: waiting for the bureau's review.
    Reported,
    /// 已退回: the review found the rectification wanting.
    Returned,
    /// 已销号: rectified and accepted.
    Closed,
    /// 已撤销: recorded in error.
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Found => "found",
            State::Notified => "notified",
            State::Reported => "reported",
            State::Returned => "returned",
            State::Closed => "closed",
            State::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Option<State> {
        [State::Found, State::Notified, State::Reported, State::Returned, State::Closed, State::Withdrawn]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Waiting for the enterprise to rectify (the deadline runs).
    fn awaits_enterprise(self) -> bool {
        matches!(self, State::Notified | State::Returned)
    }
}

/// 隐患等级.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 一般隐患.
    General,
    /// 重大隐患.
    Major,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::General => "general",
            Level::Major => "major",
        }
    }
}

/// How the hazard came to light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// 现场检查 or 书面检查.
    Inspection,
    /// From an alarm on the desk (`alarm_id`).
    Alarm,
}

/// A new hazard (the bureau's transport regulators).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHazard {
    /// The enterprise. Taken from the alarm when `alarm_id` is given (and then may be left out).
    #[serde(default)]
    pub org_id: Option<String>,
    /// A vehicle of the enterprise, if the hazard is one vehicle's.
    #[serde(default)]
    pub vehicle_id: Option<String>,
    /// One line, up to 100 characters.
    pub title: String,
    /// What was found, up to 4000 characters.
    pub description: String,
    pub level: Level,
    /// An alarm the hazard was found from (the enterprise and vehicle follow from it).
    #[serde(default)]
    pub alarm_id: Option<String>,
    /// When it was found, `YYYY-MM-DD` (today or before); default today.
    #[serde(default)]
    pub found_on: Option<String>,
    /// Given: the rectification notice goes out at once with this deadline (`YYYY-MM-DD`).
    #[serde(default)]
    pub deadline: Option<String>,
    /// Inspection evidence (ids from `POST /api/files`); shown to the enterprise with the notice.
    #[serde(default)]
    pub files: Vec<String>,
}

/// A step of the workflow: what the body of each action carries.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// Notify: required. Return: a new deadline (required when the old one has passed).
    #[serde(default)]
    pub deadline: Option<String>,
    /// Report and return: required; otherwise optional. Up to 4000 characters.
    #[serde(default)]
    pub note: Option<String>,
    /// Report: the rectification's evidence (photos, documents), ids from `POST /api/files`.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The bureau's review of a reported rectification.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `pass` closes the hazard; `return` sends it back to the enterprise.
    pub decision: Decision,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub deadline: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Pass,
    Return,
}

/// A hazard as a list or a page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HazardView {
    pub id: String,
    /// 编号, `YH-2026-0001`.
    pub number: String,
    pub org_id: String,
    pub org_name: String,
    pub vehicle_id: Option<String>,
    pub plate: Option<String>,
    pub title: String,
    pub description: String,
    pub level: Level,
    pub source: Source,
    pub alarm_id: Option<String>,
    pub found_on: String,
    pub state: State,
    /// The rectification deadline (notified and after).
    pub deadline: Option<String>,
    /// Days to the deadline (negative: past), while the enterprise has to act.
    pub days_left: Option<i64>,
    /// The deadline has passed and the enterprise has not reported.
    pub overdue: bool,
    /// How often it was escalated as overdue (feeds the credit assessment).
    pub escalations: i64,
    /// The (last) report came after its deadline.
    pub reported_late: bool,
    /// The caller's side has to act on it (the bureau: found or reported; the enterprise:
    /// notified or returned).
    pub awaits_you: bool,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    /// With one hazard (`GET …/{id}`): its history, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Step>>,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HazardQuery {
    /// One state.
    pub state: Option<State>,
    /// One enterprise (a regulator's choice; an operator sees its own anyway).
    pub org_id: Option<String>,
    pub level: Option<Level>,
    /// Only those whose deadline passed without a report.
    pub overdue: Option<bool>,
    /// Only those the caller's side has to act on (收件箱).
    pub inbox: Option<bool>,
    /// Text in the number or title.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const COLS: &str = "h.id AS id, h.number AS number, h.org_id AS org_id, o.name AS org_name, h.vehicle_id AS vehicle_id, \
     v.plate AS plate, h.title AS title, h.description AS description, h.level AS level, h.source AS source, \
     h.alarm_id AS alarm_id, h.found_on AS found_on, h.state AS state, h.deadline AS deadline, \
     h.escalations AS escalations, h.reported_late AS reported_late, h.created_ms AS created_ms, \
     h.created_by AS created_by, h.updated_ms AS updated_ms, h.closed_ms AS closed_ms";
const FROM: &str = "supervision_hazards h JOIN organisations o ON o.id = h.org_id \
     LEFT JOIN transport_vehicles v ON v.id = h.vehicle_id";

fn row_to_view(r: &AnyRow, side: Who, today: i64) -> ApiResult<HazardView> {
    let state_s: String = col(r, "state")?;
    let state = State::parse(&state_s).ok_or_else(|| ApiError::internal(format!("hazard state {state_s:?}")))?;
    let level = if col::<String>(r, "level")? == "major" { Level::Major } else { Level::General };
    let source = if col::<String>(r, "source")? == "alarm" { Source::Alarm } else { Source::Inspection };
    let deadline: Option<String> = col(r, "deadline")?;
    let days_left = deadline.as_deref().and_then(days_of).filter(|_| state.awaits_enterprise()).map(|d| d - today);
    Ok(HazardView {
        id: col(r, "id")?,
        number: col(r, "number")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        vehicle_id: col(r, "vehicle_id")?,
        plate: col(r, "plate")?,
        title: col(r, "title")?,
        description: col(r, "description")?,
        level,
        source,
        alarm_id: col(r, "alarm_id")?,
        found_on: col(r, "found_on")?,
        state,
        deadline,
        days_left,
        overdue: days_left.is_some_and(|d| d < 0),
        escalations: col(r, "escalations")?,
        reported_late: col::<i64>(r, "reported_late")? != 0,
        awaits_you: match side {
            Who::Regulator => matches!(state, State::Found | State::Reported),
            Who::Operator => state.awaits_enterprise(),
        },
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        created_by: col(r, "created_by")?,
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
        closed_at: col::<Option<i64>>(r, "closed_ms")?.map(ms_to_rfc3339),
        history: None,
    })
}

fn not_found() -> ApiError {
    ApiError::not_found("hazard")
}

/// The bureau's side only.
fn regulator(side: Who, action: &str) -> ApiResult<()> {
    if side == Who::Regulator { Ok(()) } else { Err(not_yours(action)) }
}

/// Hazards in the caller's reach, newest first.
pub async fn list(st: &AppState, c: &Caller, q: &HazardQuery) -> ApiResult<Paged<HazardView>> {
    let side = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let today = today_days();
    let mut w = Where::new();
    w.scope(&c.scope, "h.org_id");
    if side == Who::Operator {
        // An enterprise learns of a hazard from its notice: found and not yet notified, it is
        // the bureau's own working record.
        w.and("h.org_id = ?", Arg::S(c.org_id.clone()));
        w.and_fixed("h.deadline IS NOT NULL");
    }
    if let Some(o) = &q.org_id {
        c.require_org(o)?;
        w.and("h.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(s) = q.state {
        w.and("h.state = ?", Arg::S(s.as_str().into()));
    }
    if let Some(l) = q.level {
        w.and("h.level = ?", Arg::S(l.as_str().into()));
    }
    if q.overdue == Some(true) {
        w.and_fixed("h.state IN ('notified', 'returned')");
        w.and("h.deadline < ?", Arg::S(crate::dates::date_of(today)));
    }
    if q.inbox == Some(true) {
        w.and_fixed(match side {
            Who::Regulator => "h.state IN ('found', 'reported')",
            Who::Operator => "h.state IN ('notified', 'returned')",
        });
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if text.chars().count() > 100 {
            return Err(ApiError::field(Code::InvalidQuery, "q", "at most 100 characters"));
        }
        w.contains(&["h.number", "h.title"], text);
    }
    let (rows, total) = fetch_page(&st.store, COLS, FROM, &w, "h.created_ms DESC, h.id DESC", limit, offset).await?;
    let items = rows.iter().map(|r| row_to_view(r, side, today)).collect::<ApiResult<_>>()?;
    Ok(Paged { items, total, limit, offset })
}

async fn load(st: &AppState, id: &str) -> ApiResult<Option<AnyRow>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    Ok(sqlx::query(&st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE h.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

/// The hazard if the caller reaches its enterprise (else 404), without its history.
async fn reachable(st: &AppState, c: &Caller, side: Who, id: &str) -> ApiResult<HazardView> {
    let row = load(st, id).await?.ok_or_else(not_found)?;
    let h = row_to_view(&row, side, today_days())?;
    // An enterprise does not see a hazard before its notice (every notice sets a deadline).
    let hidden = side == Who::Operator && h.deadline.is_none();
    if reaches(c, &h.org_id) && !hidden { Ok(h) } else { Err(not_found()) }
}

/// One hazard with its history (the read of the case audited).
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    let mut h = reachable(st, c, side, id).await?;
    h.history = Some(workflow::steps(st, c, CASE, &h.id).await?);
    audit::record(&st.store, Event::new(Actor::of(c), "hazard.read", CASE, Some(&h.id), Outcome::Success)).await?;
    Ok(h)
}

/// The next number of the year: `YH-<year>-<n>`, inside the writer's transaction.
async fn next_number(st: &AppState, tx: &mut sqlx::Transaction<'static, sqlx::Any>, year: &str) -> ApiResult<String> {
    let prefix = format!("YH-{year}-");
    let n: i64 = sqlx::query_scalar(
        &st.store.sql("SELECT CAST(COUNT(*) AS BIGINT) FROM supervision_hazards WHERE number LIKE $1"),
    )
    .bind(format!("{prefix}%"))
    .fetch_one(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(format!("{prefix}{:04}", n + 1))
}

/// Records a hazard (the bureau); with a deadline, the notice goes out in the same step.
#[tracing::instrument(skip_all)]
pub async fn create(st: &AppState, c: &Caller, h: &NewHazard) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    regulator(side, "recording a hazard")?;
    let title = workflow::line("title", &h.title, 100)?;
    let description = workflow::text("description", Some(&h.description), 4000, true)?.unwrap_or_default();
    let found_on = match &h.found_on {
        Some(d) => workflow::past_date("found_on", d)?,
        None => crate::dates::date_of(today_days()),
    };
    let deadline = h.deadline.as_deref().map(|d| workflow::deadline("deadline", d)).transpose()?;
    // The enterprise and vehicle: from the alarm, or as given.
    let (org_id, vehicle_id, source) = match &h.alarm_id {
        Some(aid) => {
            let a = alarms::service::get(&st.store, c, aid)
                .await
                .map_err(|_| ApiError::field(Code::InvalidField, "alarm_id", "no such alarm in your reach"))?;
            if h.org_id.as_ref().is_some_and(|o| *o != a.org_id) {
                return Err(ApiError::field(Code::InvalidField, "org_id", "not the alarm's enterprise"));
            }
            let vehicle = (a.subject.kind == "vehicle").then(|| a.subject.id.clone());
            (a.org_id, vehicle.or_else(|| h.vehicle_id.clone()), Source::Alarm)
        }
        None => {
            let o = h.org_id.clone().ok_or_else(|| ApiError::field(Code::InvalidField, "org_id", "required"))?;
            (o, h.vehicle_id.clone(), Source::Inspection)
        }
    };
    if !reaches(c, &org_id) || crate::enterprises::enterprise(st, c, &org_id).await.is_err() {
        return Err(ApiError::field(Code::InvalidField, "org_id", "not a transport enterprise in your reach"));
    }
    if let Some(v) = &vehicle_id {
        let owner: Option<String> =
            sqlx::query_scalar(&st.store.sql("SELECT org_id FROM transport_vehicles WHERE id = $1"))
                .bind(v.clone())
                .fetch_optional(st.store.reader())
                .await
                .map_err(StoreError::from)?;
        if owner.as_deref() != Some(org_id.as_str()) {
            return Err(ApiError::field(Code::InvalidField, "vehicle_id", "not a vehicle of the enterprise"));
        }
    }
    let files = workflow::check_files(st, c, "files", &h.files).await?;
    let state = if deadline.is_some() { State::Notified } else { State::Found };
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let actor = Actor::of(c);
    let store = &st.store;
    let mut tx = store.begin().await?;
    let number = next_number(st, &mut tx, &found_on[..4]).await?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_hazards (id, number, org_id, vehicle_id, title, description, level, source, alarm_id, \
         found_on, state, deadline, escalations, reported_late, created_ms, created_by, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0, $13, $14, $13)",
    ))
    .bind(id.clone())
    .bind(number.clone())
    .bind(org_id.clone())
    .bind(vehicle_id.clone())
    .bind(title.clone())
    .bind(description)
    .bind(h.level.as_str())
    .bind(if source == Source::Alarm { "alarm" } else { "inspection" })
    .bind(h.alarm_id.clone())
    .bind(found_on.clone())
    .bind(state.as_str())
    .bind(deadline.clone())
    .bind(now)
    .bind(c.username.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    // The enterprise reads the inspection's evidence with the notice.
    for f in &files {
        kernel::files::share(store, &mut tx, &f.id, &org_id).await?;
    }
    let mut step = NewStep {
        case_kind: CASE,
        case_id: &id,
        actor: &actor,
        actor_org: &c.org_id,
        action: "record",
        state: Some(State::Found.as_str()),
        note: None,
        files: &files,
        at_ms: now,
    };
    workflow::append(store, &mut tx, &step).await?;
    if let Some(d) = &deadline {
        let note = format!("整改期限 {d}");
        step.action = "notify";
        step.state = Some(State::Notified.as_str());
        step.note = Some(&note);
        step.files = &[];
        workflow::append(store, &mut tx, &step).await?;
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "hazard.create", CASE, Some(&id), Outcome::Success).detail(serde_json::json!({
            "number": number, "org_id": org_id, "vehicle_id": vehicle_id, "level": h.level.as_str(),
            "alarm_id": h.alarm_id, "state": state.as_str(), "deadline": deadline, "files": files.len(),
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    if let Some(aid) = &h.alarm_id {
        // The alarm's handling shows where it went; the hazard stands whether or not this lands.
        if let Err(e) = alarms::service::system_step(store, aid, "hazard", &format!("隐患 {number}")).await {
            tracing::warn!(error = %e, "alarm step for a hazard not written");
        }
    }
    get_after_write(st, c, side, &id).await
}

async fn get_after_write(st: &AppState, c: &Caller, side: Who, id: &str) -> ApiResult<HazardView> {
    let mut h = reachable(st, c, side, id).await?;
    h.history = Some(workflow::steps(st, c, CASE, id).await?);
    Ok(h)
}

/// What a transition writes besides the state.
struct Change<'a> {
    action: &'static str,
    to: State,
    deadline: Option<&'a str>,
    note: Option<&'a str>,
    files: &'a [kernel::files::FileMeta],
    reported_late: Option<bool>,
    closed: bool,
}

/// Applies a checked transition from `from` (the state read; the update matches it, so a
/// concurrent step makes this one a 409, never a silent overwrite), its history step and audit
/// record in one transaction.
async fn transition(st: &AppState, c: &Caller, h: &HazardView, from: State, ch: Change<'_>) -> ApiResult<()> {
    let store = &st.store;
    let now = now_ms();
    let actor = Actor::of(c);
    let mut tx = store.begin().await?;
    let mut sql = String::from("UPDATE supervision_hazards SET state = $1, updated_ms = $2");
    if ch.deadline.is_some() {
        sql.push_str(", deadline = $5");
    }
    if let Some(late) = ch.reported_late {
        sql.push_str(if late { ", reported_late = 1" } else { ", reported_late = 0" });
    }
    if ch.closed {
        sql.push_str(", closed_ms = $2");
    }
    sql.push_str(" WHERE id = $3 AND state = $4");
    let sql = store.sql(&sql);
    let mut q = sqlx::query(&sql).bind(ch.to.as_str()).bind(now).bind(h.id.clone()).bind(from.as_str());
    if let Some(d) = ch.deadline {
        q = q.bind(d.to_string());
    }
    let n = q.execute(&mut *tx).await.map_err(StoreError::from)?.rows_affected();
    if n == 0 {
        return Err(ApiError::new(Code::Conflict, "the hazard changed meanwhile; reload it"));
    }
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: &h.id,
            actor: &actor,
            actor_org: &c.org_id,
            action: ch.action,
            state: Some(ch.to.as_str()),
            note: ch.note,
            files: ch.files,
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, &format!("hazard.{}", ch.action), CASE, Some(&h.id), Outcome::Success).detail(
            serde_json::json!({
                "number": h.number, "org_id": h.org_id, "from": from.as_str(), "to": ch.to.as_str(),
                "deadline": ch.deadline, "files": ch.files.len(), "late": ch.reported_late,
            }),
        ),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Sends the rectification notice of a found hazard (the bureau).
#[tracing::instrument(skip_all)]
pub async fn notify(st: &AppState, c: &Caller, id: &str, s: &StepInput) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    let h = reachable(st, c, side, id).await?;
    regulator(side, "notifying")?;
    if h.state != State::Found {
        return Err(wrong_state("notified", h.state.as_str()));
    }
    let d = s.deadline.as_deref().ok_or_else(|| ApiError::field(Code::InvalidField, "deadline", "required"))?;
    let d = workflow::deadline("deadline", d)?;
    let note = workflow::text("note", s.note.as_deref(), 4000, false)?;
    if !s.files.is_empty() {
        return Err(ApiError::field(
            Code::InvalidField,
            "files",
            "a notice attaches no files (record them with the hazard)",
        ));
    }
    let change = Change {
        action: "notify",
        to: State::Notified,
        deadline: Some(&d),
        note: note.as_deref(),
        files: &[],
        reported_late: None,
        closed: false,
    };
    transition(st, c, &h, State::Found, change).await?;
    get_after_write(st, c, side, id).await
}

/// Reports the rectification with its evidence (the enterprise).
#[tracing::instrument(skip_all)]
pub async fn report(st: &AppState, c: &Caller, id: &str, s: &StepInput) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    let h = reachable(st, c, side, id).await?;
    if side != Who::Operator || c.org_id != h.org_id {
        return Err(not_yours("reporting a rectification"));
    }
    if !h.state.awaits_enterprise() {
        return Err(wrong_state("reported", h.state.as_str()));
    }
    if s.deadline.is_some() {
        return Err(ApiError::field(Code::InvalidField, "deadline", "the bureau sets the deadline"));
    }
    let note = workflow::text("note", s.note.as_deref(), 4000, true)?;
    let files = workflow::check_files(st, c, "files", &s.files).await?;
    if let Some(f) = files.iter().find(|f| f.org_id != c.org_id) {
        return Err(ApiError::field(Code::InvalidField, "files", format!("file {} is not your enterprise's", f.id)));
    }
    let late = h.overdue;
    let change = Change {
        action: "report",
        to: State::Reported,
        deadline: None,
        note: note.as_deref(),
        files: &files,
        reported_late: Some(late),
        closed: false,
    };
    transition(st, c, &h, h.state, change).await?;
    // The overdue alarm's condition ends with the report.
    if let Some(start) = h.deadline.as_deref().and_then(days_of).map(|d| midnight_ms(d + 1)) {
        if let Err(e) = alarms::service::end(&st.store, &st.bus, ALARM_DOMAIN, OVERDUE, &h.id, start, now_ms()).await {
            tracing::warn!(error = %e, "overdue alarm of a reported hazard not ended");
        }
    }
    get_after_write(st, c, side, id).await
}

/// Reviews a reported rectification: pass closes it, return sends it back (the bureau).
#[tracing::instrument(skip_all)]
pub async fn review(st: &AppState, c: &Caller, id: &str, r: &Review) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    let h = reachable(st, c, side, id).await?;
    regulator(side, "reviewing")?;
    if h.state != State::Reported {
        return Err(wrong_state("reviewed", h.state.as_str()));
    }
    let change = match r.decision {
        Decision::Pass => {
            if r.deadline.is_some() {
                return Err(ApiError::field(Code::InvalidField, "deadline", "a passed hazard has no deadline"));
            }
            let note = workflow::text("note", r.note.as_deref(), 4000, false)?;
            transition(
                st,
                c,
                &h,
                State::Reported,
                Change {
                    action: "pass",
                    to: State::Closed,
                    deadline: None,
                    note: note.as_deref(),
                    files: &[],
                    reported_late: None,
                    closed: true,
                },
            )
            .await?;
            return get_after_write(st, c, side, id).await;
        }
        Decision::Return => {
            let note = workflow::text("note", r.note.as_deref(), 4000, true)?;
            let old_passed = h.deadline.as_deref().and_then(days_of).is_none_or(|d| d < today_days());
            let deadline = match (&r.deadline, old_passed) {
                (Some(d), _) => Some(workflow::deadline("deadline", d)?),
                (None, true) => {
                    return Err(ApiError::field(
                        Code::InvalidField,
                        "deadline",
                        "the deadline has passed: set a new one",
                    ));
                }
                (None, false) => None,
            };
            (note, deadline)
        }
    };
    transition(
        st,
        c,
        &h,
        State::Reported,
        Change {
            action: "return",
            to: State::Returned,
            deadline: change.1.as_deref(),
            note: change.0.as_deref(),
            files: &[],
            reported_late: None,
            closed: false,
        },
    )
    .await?;
    get_after_write(st, c, side, id).await
}

/// Withdraws a hazard recorded in error (the bureau), with the reason.
#[tracing::instrument(skip_all)]
pub async fn withdraw(st: &AppState, c: &Caller, id: &str, s: &StepInput) -> ApiResult<HazardView> {
    let side = who(st, c).await?;
    let h = reachable(st, c, side, id).await?;
    regulator(side, "withdrawing")?;
    if !matches!(h.state, State::Found | State::Notified | State::Returned) {
        return Err(wrong_state("withdrawn", h.state.as_str()));
    }
    if s.deadline.is_some() || !s.files.is_empty() {
        return Err(ApiError::field(Code::InvalidField, "note", "a withdrawal takes a reason only"));
    }
    let note = workflow::text("note", s.note.as_deref(), 4000, true)?;
    let change = Change {
        action: "withdraw",
        to: State::Withdrawn,
        deadline: None,
        note: note.as_deref(),
        files: &[],
        reported_late: None,
        closed: true,
    };
    transition(st, c, &h, h.state, change).await?;
    get_after_write(st, c, side, id).await
}

// ------------------------------------------------------------------------------ escalation

/// Escalates every hazard whose deadline passed before `today` (days since 1970-01-01, Beijing)
/// without a report, once per deadline. Returns how many were escalated.
pub async fn escalate(st: &AppState, today: i64) -> anyhow::Result<usize> {
    let store = &st.store;
    let rows = sqlx::query(&store.sql(&format!(
        "SELECT {COLS} FROM {FROM} WHERE h.state IN ('notified', 'returned') AND h.deadline < $1 \
         AND (h.escalated_deadline IS NULL OR h.escalated_deadline <> h.deadline) ORDER BY h.deadline"
    )))
    .bind(crate::dates::date_of(today))
    .fetch_all(store.reader())
    .await?;
    let system = Actor::cli("supervision.escalate");
    let mut n = 0;
    for r in &rows {
        let h = row_to_view(r, Who::Regulator, today)?;
        let Some(deadline) = h.deadline.clone() else { continue };
        let Some(day) = days_of(&deadline) else { continue };
        let now = now_ms();
        let label = format!("{} {}", h.number, h.title);
        let alarm = NewAlarm {
            domain: ALARM_DOMAIN.into(),
            kind: OVERDUE.into(),
            severity: if h.level == Level::Major { Severity::Major } else { Severity::Moderate },
            subject_type: CASE.into(),
            subject_id: h.id.clone(),
            subject_label: label,
            org_id: h.org_id.clone(),
            started_ms: midnight_ms(day + 1),
            at_ms: now,
            rule_version: 1,
            details: serde_json::json!({
                "number": h.number, "deadline": deadline, "level": h.level.as_str(), "plate": h.plate,
                "escalations": h.escalations + 1,
            }),
            evidence: serde_json::json!([]),
        };
        alarms::service::raise(store, &st.bus, &alarm).await?;
        let mut tx = store.begin().await?;
        let changed = sqlx::query(&store.sql(
            "UPDATE supervision_hazards SET escalated_deadline = deadline, escalations = escalations + 1 \
             WHERE id = $1 AND deadline = $2 AND (escalated_deadline IS NULL OR escalated_deadline <> deadline)",
        ))
        .bind(h.id.clone())
        .bind(deadline.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        let note = format!("逾期未整改（期限 {deadline}），已升级督办");
        workflow::append(
            store,
            &mut tx,
            &NewStep {
                case_kind: CASE,
                case_id: &h.id,
                actor: &system,
                actor_org: "",
                action: "escalate",
                state: Some(h.state.as_str()),
                note: Some(&note),
                files: &[],
                at_ms: now,
            },
        )
        .await?;
        audit::append(
            store,
            &mut tx,
            &Event::new(system.clone(), "hazard.escalate", CASE, Some(&h.id), Outcome::Success)
                .detail(serde_json::json!({"number": h.number, "org_id": h.org_id, "deadline": deadline})),
        )
        .await?;
        tx.commit().await?;
        n += 1;
    }
    if n > 0 {
        tracing::info!(escalated = n, "overdue hazards escalated");
    }
    Ok(n)
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_hazards, create_hazard))
        .routes(routes!(get_hazard))
        .routes(routes!(notify_hazard))
        .routes(routes!(report_hazard))
        .routes(routes!(review_hazard))
        .routes(routes!(withdraw_hazard))
}

/// Hazards in the caller's reach (the bureau: its enterprises'; an enterprise: its own),
/// newest first; `inbox=true` for those the caller's side has to act on.
#[utoipa::path(get, path = "/api/supervision/hazards", tag = "supervision", params(HazardQuery),
    responses((status = 200, body = Paged<HazardView>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_hazards(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<HazardQuery>,
) -> ApiResult<axum::Json<Paged<HazardView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Records a hazard found by inspection or from an alarm (the bureau's transport regulators);
/// with `deadline` the rectification notice goes out at once.
#[utoipa::path(post, path = "/api/supervision/hazards", tag = "supervision", request_body = NewHazard,
    responses((status = 201, body = HazardView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(h): Json<NewHazard>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<HazardView>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(create(&st, &c, &h).await?)))
}

/// One hazard with its history.
#[utoipa::path(get, path = "/api/supervision/hazards/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = HazardView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HazardView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

/// Sends the rectification notice with its deadline (the bureau; state `found`).
#[utoipa::path(post, path = "/api/supervision/hazards/{id}/notify", tag = "supervision", params(("id" = String, Path)),
    request_body = StepInput,
    responses((status = 200, body = HazardView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn notify_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(s): Json<StepInput>,
) -> ApiResult<axum::Json<HazardView>> {
    Ok(axum::Json(notify(&st, &c, &id, &s).await?))
}

/// Reports the rectification with its evidence files (the enterprise; state `notified` or
/// `returned`); after the deadline it is taken and marked late.
#[utoipa::path(post, path = "/api/supervision/hazards/{id}/report", tag = "supervision", params(("id" = String, Path)),
    request_body = StepInput,
    responses((status = 200, body = HazardView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn report_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(s): Json<StepInput>,
) -> ApiResult<axum::Json<HazardView>> {
    Ok(axum::Json(report(&st, &c, &id, &s).await?))
}

/// Passes or returns a reported rectification (the bureau; state `reported`).
#[utoipa::path(post, path = "/api/supervision/hazards/{id}/review", tag = "supervision", params(("id" = String, Path)),
    request_body = Review,
    responses((status = 200, body = HazardView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn review_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(r): Json<Review>,
) -> ApiResult<axum::Json<HazardView>> {
    Ok(axum::Json(review(&st, &c, &id, &r).await?))
}

/// Withdraws a hazard recorded in error, with the reason (the bureau).
#[utoipa::path(post, path = "/api/supervision/hazards/{id}/withdraw", tag = "supervision", params(("id" = String, Path)),
    request_body = StepInput,
    responses((status = 200, body = HazardView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn withdraw_hazard(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(s): Json<StepInput>,
) -> ApiResult<axum::Json<HazardView>> {
    Ok(axum::Json(withdraw(&st, &c, &id, &s).await?))
}
