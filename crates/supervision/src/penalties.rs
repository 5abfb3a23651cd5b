//! Administrative penalties and measures (行政处罚 / 行政措施): the transport bureau's decisions
//! against an enterprise, a vehicle of it or a practitioner of it, after 《中华人民共和国行政处罚法》
//! (2021) 第九条 for the kinds and 《中华人民共和国道路运输条例》 for the usual legal bases.
//!
//! ```text
//!   decided ──execute──► executed
//!      │                    │
//!      └──revoke──► revoked ◄──revoke──┘
//! ```
//!
//! A decision (决定书) is recorded by the bureau's transport regulators with its number, kind,
//! facts, legal basis, amount (fines and confiscations only, in fen) and the date it was made,
//! with the scanned decision attached; the enterprise's operators read their own enterprise's
//! decisions (the scan is shared with the enterprise, as it is served on it). A decision is
//! executed (履行: a fine paid, a suspension served) or revoked (撤销: after administrative
//! reconsideration or a lawsuit, with the reason), which is final. Every step is a row of the
//! case history (`workflow`) and an audit record in one transaction.
//!
//! The subject is named by `subject_type` and `subject_id`; its label (plate, practitioner's
//! name) is kept with the decision as the decision names it, so a later change or deletion of
//! the practitioner's record does not rewrite the bureau's file. The credit assessment reads a
//! year's decisions through [`for_year`], where revoked ones are marked as such.

use crate::access::{Who, reaches, require_filter, who};
use crate::dates::{date_of, today_days};
use crate::enterprises::DOMAIN;
use crate::workflow::{self, NewStep, Step, not_yours, wrong_state};
use kernel::access::Caller;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::files::FileMeta;
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::orgs::OrgKind;
use kernel::store::{Arg, StoreError, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The history's case kind.
pub const CASE: &str = "penalty";
/// The largest amount a decision may name, in fen (10^10 fen = 1 亿元): beyond any road
/// transport fine; a larger figure is a typo.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;

/// The kind of decision (行政处罚法 第九条 and the measures of 道路运输条例).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PenaltyKind)]
pub enum Kind {
    /// 警告.
    Warning,
    /// 罚款 (amount required).
    Fine,
    /// 没收违法所得 (amount required).
    Confiscation,
    /// 责令停业整顿.
    Suspension,
    /// 吊销许可证件.
    Revocation,
    /// 责令改正 (an administrative measure, not a penalty).
    OrderToCorrect,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Warning, Kind::Fine, Kind::Confiscation, Kind::Suspension, Kind::Revocation, Kind::OrderToCorrect];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Warning => "warning",
            Kind::Fine => "fine",
            Kind::Confiscation => "confiscation",
            Kind::Suspension => "suspension",
            Kind::Revocation => "revocation",
            Kind::OrderToCorrect => "order_to_correct",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the decision names a sum of money.
    pub fn has_amount(self) -> bool {
        matches!(self, Kind::Fine | Kind::Confiscation)
    }
}

/// A decision's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PenaltyState)]
pub enum State {
    /// 已作出: decided and served, not yet carried out.
    Decided,
    /// 已履行: carried out (a fine or confiscation: paid).
    Executed,
    /// 已撤销: revoked; it no longer counts against the enterprise.
    Revoked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Decided => "decided",
            State::Executed => "executed",
            State::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Decided, State::Executed, State::Revoked].into_iter().find(|x| x.as_str() == s)
    }
}

/// What the decision is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PenaltySubjectType)]
pub enum SubjectType {
    /// The enterprise itself (`subject_id` is its organisation id, or left out).
    Enterprise,
    /// A vehicle of the enterprise (the transport registry's id).
    Vehicle,
    /// A practitioner of the enterprise (`supervision_practitioners`).
    Practitioner,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::Enterprise => "enterprise",
            SubjectType::Vehicle => "vehicle",
            SubjectType::Practitioner => "practitioner",
        }
    }

    fn parse(s: &str) -> Option<SubjectType> {
        [SubjectType::Enterprise, SubjectType::Vehicle, SubjectType::Practitioner].into_iter().find(|x| x.as_str() == s)
    }
}

/// A new decision (the bureau's transport regulators).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPenalty {
    /// 决定书文号, e.g. 津武交罚〔2026〕12号; unique.
    pub decision_no: String,
    /// The enterprise answerable.
    pub org_id: String,
    /// `enterprise`, `vehicle` or `practitioner` (read as text so that a wrong one is a 422
    /// naming this field).
    #[schema(value_type = SubjectType)]
    pub subject_type: String,
    /// The vehicle or practitioner; for the enterprise itself its org id or nothing.
    #[serde(default)]
    pub subject_id: Option<String>,
    /// One of the kinds (read as text so that a wrong one is a 422 naming this field).
    #[schema(value_type = Kind)]
    pub kind: String,
    /// 违法事实, up to 4000 characters.
    pub facts: String,
    /// 法律依据, e.g. 《道路运输条例》第七十条; one line, up to 500 characters.
    pub legal_basis: String,
    /// Fines and confiscations only: the sum in fen (分), 1 to 10^10.
    #[serde(default)]
    pub amount_fen: Option<i64>,
    /// 决定日期, `YYYY-MM-DD`, today or before.
    pub decided_on: String,
    /// The scanned decision and its evidence (ids from `POST /api/files`); shared with the
    /// enterprise.
    #[serde(default)]
    pub files: Vec<String>,
}

/// Executing a decision: when, and what shows it (a payment receipt).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// 履行日期, `YYYY-MM-DD`: not before the decision, not in the future.
    pub executed_on: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
}

/// Revoking a decision: why (required), and when (default today).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// E.g. 经行政复议撤销 (复议决定书文号); up to 4000 characters.
    pub reason: String,
    /// 撤销日期, `YYYY-MM-DD`: not before the decision, not in the future.
    #[serde(default)]
    pub revoked_on: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
}

/// A decision as a list or a page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PenaltyView {
    pub id: String,
    pub decision_no: String,
    pub org_id: String,
    pub org_name: String,
    pub subject_type: SubjectType,
    pub subject_id: String,
    /// The enterprise's name, the plate or the practitioner's name, as the decision names them.
    pub subject_label: String,
    pub kind: Kind,
    pub facts: String,
    pub legal_basis: String,
    pub amount_fen: Option<i64>,
    pub decided_on: String,
    pub state: State,
    pub executed_on: Option<String>,
    pub execution_note: Option<String>,
    /// A fine or confiscation that was executed: paid.
    pub paid: bool,
    pub revoked_on: Option<String>,
    pub revoke_reason: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// With one decision (`GET …/{id}`): its history, oldest first, with the files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Step>>,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PenaltyQuery {
    /// One enterprise (an operator sees its own anyway).
    pub org_id: Option<String>,
    pub subject_type: Option<SubjectType>,
    pub subject_id: Option<String>,
    pub kind: Option<Kind>,
    pub state: Option<State>,
    /// Decided in this calendar year.
    pub year: Option<i32>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const COLS: &str = "p.id AS id, p.decision_no AS decision_no, p.org_id AS org_id, o.name AS org_name, \
     p.subject_type AS subject_type, p.subject_id AS subject_id, p.subject_label AS subject_label, p.kind AS kind, \
     p.facts AS facts, p.legal_basis AS legal_basis, p.amount_fen AS amount_fen, p.decided_on AS decided_on, \
     p.state AS state, p.executed_on AS executed_on, p.execution_note AS execution_note, p.revoked_on AS revoked_on, \
     p.revoke_reason AS revoke_reason, p.created_ms AS created_ms, p.created_by AS created_by, p.updated_ms AS updated_ms";
const FROM: &str = "supervision_penalties p JOIN organisations o ON o.id = p.org_id";

fn corrupt(what: &str, v: &str) -> ApiError {
    ApiError::internal(format!("penalty {what} {v:?}"))
}

fn row_to_view(r: &AnyRow) -> ApiResult<PenaltyView> {
    let kind_s: String = col(r, "kind")?;
    let kind = Kind::parse(&kind_s).ok_or_else(|| corrupt("kind", &kind_s))?;
    let state_s: String = col(r, "state")?;
    let state = State::parse(&state_s).ok_or_else(|| corrupt("state", &state_s))?;
    let st_s: String = col(r, "subject_type")?;
    let subject_type = SubjectType::parse(&st_s).ok_or_else(|| corrupt("subject type", &st_s))?;
    Ok(PenaltyView {
        id: col(r, "id")?,
        decision_no: col(r, "decision_no")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        subject_type,
        subject_id: col(r, "subject_id")?,
        subject_label: col(r, "subject_label")?,
        kind,
        facts: col(r, "facts")?,
        legal_basis: col(r, "legal_basis")?,
        amount_fen: col(r, "amount_fen")?,
        decided_on: col(r, "decided_on")?,
        state,
        executed_on: col(r, "executed_on")?,
        execution_note: col(r, "execution_note")?,
        paid: kind.has_amount() && state == State::Executed,
        revoked_on: col(r, "revoked_on")?,
        revoke_reason: col(r, "revoke_reason")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        created_by: col(r, "created_by")?,
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
        history: None,
    })
}

fn not_found() -> ApiError {
    ApiError::not_found("penalty")
}

/// A year given as a filter: 1990 to 2100, else a 400 naming it.
pub(crate) fn check_year(year: i32) -> ApiResult<(String, String)> {
    if !(1990..=2100).contains(&year) {
        return Err(ApiError::field(Code::InvalidQuery, "year", "a year, 1990 to 2100"));
    }
    Ok((format!("{year:04}-01-01"), format!("{year:04}-12-31")))
}

/// Decisions in the caller's reach, newest decision first.
pub async fn list(st: &AppState, c: &Caller, q: &PenaltyQuery) -> ApiResult<Paged<PenaltyView>> {
    let side = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let mut w = Where::new();
    w.scope(&c.scope, "p.org_id");
    if side == Who::Operator {
        w.and("p.org_id = ?", Arg::S(c.org_id.clone()));
    }
    if let Some(o) = &q.org_id {
        require_filter(c, o)?;
        w.and("p.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(t) = q.subject_type {
        w.and("p.subject_type = ?", Arg::S(t.as_str().into()));
    }
    if let Some(s) = &q.subject_id {
        if s.chars().count() > 100 {
            return Err(ApiError::field(Code::InvalidQuery, "subject_id", "at most 100 characters"));
        }
        w.and("p.subject_id = ?", Arg::S(s.clone()));
    }
    if let Some(k) = q.kind {
        w.and("p.kind = ?", Arg::S(k.as_str().into()));
    }
    if let Some(s) = q.state {
        w.and("p.state = ?", Arg::S(s.as_str().into()));
    }
    if let Some(y) = q.year {
        let (from, to) = check_year(y)?;
        w.and("p.decided_on >= ?", Arg::S(from));
        w.and("p.decided_on <= ?", Arg::S(to));
    }
    let (rows, total) = fetch_page(&st.store, COLS, FROM, &w, "p.decided_on DESC, p.id DESC", limit, offset).await?;
    let items = rows.iter().map(row_to_view).collect::<ApiResult<_>>()?;
    Ok(Paged { items, total, limit, offset })
}

async fn load(st: &AppState, id: &str) -> ApiResult<Option<PenaltyView>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE p.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    row.as_ref().map(row_to_view).transpose()
}

/// The decision if the caller reaches its enterprise (else 404), without its history.
async fn reachable(st: &AppState, c: &Caller, id: &str) -> ApiResult<PenaltyView> {
    let p = load(st, id).await?.ok_or_else(not_found)?;
    if reaches(c, &p.org_id) { Ok(p) } else { Err(not_found()) }
}

/// One decision with its history (the read audited).
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<PenaltyView> {
    who(st, c).await?;
    let mut p = reachable(st, c, id).await?;
    p.history = Some(workflow::steps(st, c, CASE, &p.id).await?);
    audit::record(&st.store, Event::new(Actor::of(c), "penalty.read", CASE, Some(&p.id), Outcome::Success)).await?;
    Ok(p)
}

/// The enterprise's name if `org_id` is a transport enterprise the caller reaches; else a 422
/// naming `field` (the id came in a body).
/// `c` None: the server's own records (the demo), any enterprise.
pub(crate) async fn enterprise_in_reach(
    st: &AppState,
    c: Option<&Caller>,
    field: &str,
    org_id: &str,
) -> ApiResult<String> {
    let bad = || ApiError::field(Code::InvalidField, field, "not a transport enterprise in your reach");
    if c.is_some_and(|c| !reaches(c, org_id)) {
        return Err(bad());
    }
    let org = kernel::orgs::get(&st.store, org_id).await?.ok_or_else(bad)?;
    if org.kind != OrgKind::Enterprise || st.orgs.domain_of(&st.store, org_id).await?.as_deref() != Some(DOMAIN) {
        return Err(bad());
    }
    Ok(org.name)
}

/// The plate of vehicle `id` if it is `org_id`'s; else a 422 naming `field`.
pub(crate) async fn vehicle_of(st: &AppState, field: &str, org_id: &str, id: &str) -> ApiResult<String> {
    let bad = || ApiError::field(Code::InvalidField, field, "not a vehicle of the enterprise");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad());
    }
    let row = sqlx::query(&st.store.sql("SELECT plate, org_id FROM transport_vehicles WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(bad)?;
    if col::<String>(&row, "org_id")? != org_id {
        return Err(bad());
    }
    Ok(col(&row, "plate")?)
}

/// The name of practitioner `id` if they are `org_id`'s; else a 422 naming `field`.
async fn practitioner_of(st: &AppState, field: &str, org_id: &str, id: &str) -> ApiResult<String> {
    let bad = || ApiError::field(Code::InvalidField, field, "not a practitioner of the enterprise");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad());
    }
    let row = sqlx::query(&st.store.sql("SELECT name, org_id FROM supervision_practitioners WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(bad)?;
    if col::<String>(&row, "org_id")? != org_id {
        return Err(bad());
    }
    Ok(col(&row, "name")?)
}

/// A date of a step: happened, and not before the decision.
fn step_date(field: &str, v: &str, decided_on: &str) -> ApiResult<String> {
    let d = workflow::past_date(field, v)?;
    if d.as_str() < decided_on {
        return Err(ApiError::field(Code::InvalidField, field, format!("before the decision ({decided_on})")));
    }
    Ok(d)
}

/// A decision checked field by field (the first fault a 422 naming it) and resolved: its
/// subject's id and label.
struct Checked {
    decision_no: String,
    kind: Kind,
    subject_type: SubjectType,
    subject_id: String,
    subject_label: String,
    facts: String,
    legal_basis: String,
    decided_on: String,
}

async fn check(st: &AppState, c: Option<&Caller>, p: &NewPenalty) -> ApiResult<Checked> {
    let decision_no = workflow::line("decision_no", &p.decision_no, 60)?;
    let kind = Kind::parse(p.kind.trim()).ok_or_else(|| {
        ApiError::field(
            Code::InvalidField,
            "kind",
            "warning, fine, confiscation, suspension, revocation or order_to_correct",
        )
    })?;
    let subject_type = SubjectType::parse(p.subject_type.trim())
        .ok_or_else(|| ApiError::field(Code::InvalidField, "subject_type", "enterprise, vehicle or practitioner"))?;
    let org_name = enterprise_in_reach(st, c, "org_id", &p.org_id).await?;
    let (subject_id, subject_label) = match (subject_type, p.subject_id.as_deref()) {
        (SubjectType::Enterprise, None) => (p.org_id.clone(), org_name),
        (SubjectType::Enterprise, Some(s)) if s == p.org_id => (p.org_id.clone(), org_name),
        (SubjectType::Enterprise, Some(_)) => {
            return Err(ApiError::field(
                Code::InvalidField,
                "subject_id",
                "the enterprise itself: its org_id or nothing",
            ));
        }
        (_, None) => return Err(ApiError::field(Code::InvalidField, "subject_id", "required")),
        (SubjectType::Vehicle, Some(v)) => (v.to_string(), vehicle_of(st, "subject_id", &p.org_id, v).await?),
        (SubjectType::Practitioner, Some(v)) => (v.to_string(), practitioner_of(st, "subject_id", &p.org_id, v).await?),
    };
    let facts = workflow::text("facts", Some(&p.facts), 4000, true)?.unwrap_or_default();
    let legal_basis = workflow::line("legal_basis", &p.legal_basis, 500)?;
    match (kind.has_amount(), p.amount_fen) {
        (true, None) => {
            return Err(ApiError::field(Code::InvalidField, "amount_fen", "required for a fine or confiscation"));
        }
        (true, Some(a)) if !(1..=MAX_AMOUNT_FEN).contains(&a) => {
            return Err(ApiError::field(Code::InvalidField, "amount_fen", format!("1 to {MAX_AMOUNT_FEN} fen")));
        }
        (false, Some(_)) => {
            return Err(ApiError::field(
                Code::InvalidField,
                "amount_fen",
                "only a fine or a confiscation names an amount",
            ));
        }
        _ => {}
    }
    let decided_on = workflow::past_date("decided_on", &p.decided_on)?;
    Ok(Checked { decision_no, kind, subject_type, subject_id, subject_label, facts, legal_basis, decided_on })
}

/// A unique decision number taken already: a 409 naming it.
fn conflict(e: sqlx::Error) -> ApiError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => {
            ApiError::field(Code::Conflict, "decision_no", "a decision with this number is recorded already")
        }
        other => other.into(),
    }
}

/// Records a decision (the bureau's transport regulators).
#[tracing::instrument(skip_all)]
pub async fn create(st: &AppState, c: &Caller, p: &NewPenalty) -> ApiResult<PenaltyView> {
    let side = who(st, c).await?;
    if side != Who::Regulator {
        return Err(not_yours("recording a penalty"));
    }
    let ch = check(st, Some(c), p).await?;
    let files = workflow::check_files(st, c, "files", &p.files).await?;
    let id = insert(st, Actor::of(c), &c.org_id, p, &ch, &files).await?;
    let mut v = reachable(st, c, &id).await?;
    v.history = Some(workflow::steps(st, c, CASE, &id).await?);
    Ok(v)
}

async fn insert(
    st: &AppState,
    actor: Actor,
    actor_org: &str,
    p: &NewPenalty,
    ch: &Checked,
    files: &[FileMeta],
) -> ApiResult<String> {
    let store = &st.store;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_penalties (id, decision_no, org_id, subject_type, subject_id, subject_label, kind, facts, \
         legal_basis, amount_fen, decided_on, state, created_ms, created_by, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)",
    ))
    .bind(id.clone())
    .bind(ch.decision_no.clone())
    .bind(p.org_id.clone())
    .bind(ch.subject_type.as_str())
    .bind(ch.subject_id.clone())
    .bind(ch.subject_label.clone())
    .bind(ch.kind.as_str())
    .bind(ch.facts.clone())
    .bind(ch.legal_basis.clone())
    .bind(p.amount_fen)
    .bind(ch.decided_on.clone())
    .bind(State::Decided.as_str())
    .bind(now)
    .bind(actor.name.clone())
    .execute(&mut *tx)
    .await
    .map_err(conflict)?;
    // The decision is served on the enterprise: its operators read the scan with it.
    for f in files {
        kernel::files::share(store, &mut tx, &f.id, &p.org_id).await?;
    }
    let note = format!("{} {}", ch.decision_no, ch.legal_basis);
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: &id,
            actor: &actor,
            actor_org,
            action: "decide",
            state: Some(State::Decided.as_str()),
            note: Some(&note),
            files,
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "penalty.create", CASE, Some(&id), Outcome::Success).detail(serde_json::json!({
            "decision_no": ch.decision_no, "org_id": p.org_id, "subject_type": ch.subject_type.as_str(),
            "kind": ch.kind.as_str(), "amount_fen": p.amount_fen, "decided_on": ch.decided_on, "files": files.len(),
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// What a transition writes besides the state.
struct Change<'a> {
    action: &'static str,
    to: State,
    /// (column, value): the step's date and text columns.
    set: [(&'static str, Option<&'a str>); 2],
    note: Option<&'a str>,
    files: &'a [FileMeta],
}

/// Applies a checked transition from the state read (the update matches it: a concurrent step
/// makes this one a 409), its history step, file shares and audit record in one transaction.
async fn transition(st: &AppState, actor: Actor, actor_org: &str, p: &PenaltyView, ch: Change<'_>) -> ApiResult<()> {
    let store = &st.store;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let sql = format!(
        "UPDATE supervision_penalties SET state = $1, updated_ms = $2, {} = $5, {} = $6 WHERE id = $3 AND state = $4",
        ch.set[0].0, ch.set[1].0
    );
    let n = sqlx::query(&store.sql(&sql))
        .bind(ch.to.as_str())
        .bind(now)
        .bind(p.id.clone())
        .bind(p.state.as_str())
        .bind(ch.set[0].1.map(str::to_string))
        .bind(ch.set[1].1.map(str::to_string))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::new(Code::Conflict, "the decision changed meanwhile; reload it"));
    }
    for f in ch.files {
        kernel::files::share(store, &mut tx, &f.id, &p.org_id).await?;
    }
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: &p.id,
            actor: &actor,
            actor_org,
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
        &Event::new(actor, &format!("penalty.{}", ch.action), CASE, Some(&p.id), Outcome::Success).detail(
            serde_json::json!({
                "decision_no": p.decision_no, "org_id": p.org_id, "from": p.state.as_str(), "to": ch.to.as_str(),
                "on": ch.set[0].1, "files": ch.files.len(),
            }),
        ),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Records that a decision was carried out (a fine: paid) — the bureau, state `decided`.
#[tracing::instrument(skip_all)]
pub async fn execute(st: &AppState, c: &Caller, id: &str, e: &Execution) -> ApiResult<PenaltyView> {
    let side = who(st, c).await?;
    let p = reachable(st, c, id).await?;
    if side != Who::Regulator {
        return Err(not_yours("recording an execution"));
    }
    if p.state != State::Decided {
        return Err(wrong_state("executed", p.state.as_str()));
    }
    let on = step_date("executed_on", &e.executed_on, &p.decided_on)?;
    let note = workflow::text("note", e.note.as_deref(), 4000, false)?;
    let files = workflow::check_files(st, c, "files", &e.files).await?;
    let change = Change {
        action: "execute",
        to: State::Executed,
        set: [("executed_on", Some(&on)), ("execution_note", note.as_deref())],
        note: note.as_deref(),
        files: &files,
    };
    transition(st, Actor::of(c), &c.org_id, &p, change).await?;
    get_after_write(st, c, id).await
}

/// Revokes a decision with the reason (the bureau; state `decided` or `executed`). Final.
#[tracing::instrument(skip_all)]
pub async fn revoke(st: &AppState, c: &Caller, id: &str, r: &Revocation) -> ApiResult<PenaltyView> {
    let side = who(st, c).await?;
    let p = reachable(st, c, id).await?;
    if side != Who::Regulator {
        return Err(not_yours("revoking a penalty"));
    }
    if p.state == State::Revoked {
        return Err(wrong_state("revoked", p.state.as_str()));
    }
    let reason = workflow::text("reason", Some(&r.reason), 4000, true)?.unwrap_or_default();
    let on = match &r.revoked_on {
        Some(d) => step_date("revoked_on", d, &p.decided_on)?,
        None => date_of(today_days()).max(p.decided_on.clone()),
    };
    let files = workflow::check_files(st, c, "files", &r.files).await?;
    let change = Change {
        action: "revoke",
        to: State::Revoked,
        set: [("revoked_on", Some(&on)), ("revoke_reason", Some(&reason))],
        note: Some(&reason),
        files: &files,
    };
    transition(st, Actor::of(c), &c.org_id, &p, change).await?;
    get_after_write(st, c, id).await
}

async fn get_after_write(st: &AppState, c: &Caller, id: &str) -> ApiResult<PenaltyView> {
    let mut p = reachable(st, c, id).await?;
    p.history = Some(workflow::steps(st, c, CASE, id).await?);
    Ok(p)
}

// ------------------------------------------------------------------------------ demo

/// Records a decision for the demo seed (checked as the API checks it, the scan already stored
/// by the bureau `bureau_org`) and optionally executes it.
pub async fn seed_one(
    st: &AppState,
    bureau_org: &str,
    p: &NewPenalty,
    files: &[FileMeta],
    executed_on: Option<&str>,
) -> ApiResult<String> {
    let ch = check(st, None, p).await?;
    let actor = Actor::cli("demo");
    let id = insert(st, actor.clone(), bureau_org, p, &ch, files).await?;
    if let Some(on) = executed_on {
        let v = load(st, &id).await?.ok_or_else(not_found)?;
        let change = Change {
            action: "execute",
            to: State::Executed,
            set: [("executed_on", Some(on)), ("execution_note", Some("已缴纳罚款"))],
            note: Some("已缴纳罚款"),
            files: &[],
        };
        transition(st, actor, bureau_org, &v, change).await?;
    }
    Ok(id)
}

// ------------------------------------------------------------------------------ credit

/// A decision as the credit assessment counts it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct PenaltyRecord {
    pub id: String,
    pub org_id: String,
    pub decision_no: String,
    pub subject_type: SubjectType,
    pub kind: Kind,
    /// `YYYY-MM-DD`.
    pub decided_on: String,
    /// `revoked` decisions no longer count against the enterprise; they are returned so the
    /// assessment can show them.
    pub state: State,
    pub amount_fen: Option<i64>,
}

/// Every decision against `org_ids` made in calendar year `year` (by its decision date), by
/// enterprise and date. No access check: for the bureau's own computations, whose callers
/// checked who asks.
pub async fn for_year(st: &AppState, org_ids: &[String], year: i32) -> ApiResult<Vec<PenaltyRecord>> {
    if org_ids.is_empty() {
        return Ok(vec![]);
    }
    let (from, to) = check_year(year)?;
    let ph: Vec<String> = (0..org_ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT id, org_id, decision_no, subject_type, kind, decided_on, state, amount_fen FROM supervision_penalties \
         WHERE decided_on >= $1 AND decided_on <= $2 AND org_id IN ({}) ORDER BY org_id, decided_on, id",
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
            let s: String = col(r, "state")?;
            let t: String = col(r, "subject_type")?;
            Ok(PenaltyRecord {
                id: col(r, "id")?,
                org_id: col(r, "org_id")?,
                decision_no: col(r, "decision_no")?,
                subject_type: SubjectType::parse(&t).ok_or_else(|| corrupt("subject type", &t))?,
                kind: Kind::parse(&k).ok_or_else(|| corrupt("kind", &k))?,
                decided_on: col(r, "decided_on")?,
                state: State::parse(&s).ok_or_else(|| corrupt("state", &s))?,
                amount_fen: col(r, "amount_fen")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_penalties, create_penalty))
        .routes(routes!(get_penalty))
        .routes(routes!(execute_penalty))
        .routes(routes!(revoke_penalty))
}

/// Penalties and measures in the caller's reach (the bureau: its enterprises'; an enterprise:
/// its own), newest decision first.
#[utoipa::path(get, path = "/api/supervision/penalties", tag = "supervision", params(PenaltyQuery),
    responses((status = 200, body = Paged<PenaltyView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_penalties(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<PenaltyQuery>,
) -> ApiResult<axum::Json<Paged<PenaltyView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Records a penalty decision (the bureau's transport regulators): amount in fen for fines and
/// confiscations only, decision number unique (409).
#[utoipa::path(post, path = "/api/supervision/penalties", tag = "supervision", request_body = NewPenalty,
    responses((status = 201, body = PenaltyView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_penalty(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(p): Json<NewPenalty>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<PenaltyView>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(create(&st, &c, &p).await?)))
}

/// One penalty decision with its history.
#[utoipa::path(get, path = "/api/supervision/penalties/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = PenaltyView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_penalty(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PenaltyView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

/// Records the decision's execution (a fine: paid) — the bureau; state `decided`.
#[utoipa::path(post, path = "/api/supervision/penalties/{id}/execute", tag = "supervision", params(("id" = String, Path)),
    request_body = Execution,
    responses((status = 200, body = PenaltyView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn execute_penalty(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(e): Json<Execution>,
) -> ApiResult<axum::Json<PenaltyView>> {
    Ok(axum::Json(execute(&st, &c, &id, &e).await?))
}

/// Revokes the decision with the reason (the bureau; state `decided` or `executed`).
#[utoipa::path(post, path = "/api/supervision/penalties/{id}/revoke", tag = "supervision", params(("id" = String, Path)),
    request_body = Revocation,
    responses((status = 200, body = PenaltyView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn revoke_penalty(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(r): Json<Revocation>,
) -> ApiResult<axum::Json<PenaltyView>> {
    Ok(axum::Json(revoke(&st, &c, &id, &r).await?))
}
