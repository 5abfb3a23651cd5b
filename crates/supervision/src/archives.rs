//! Monthly archives (月度归档): the records each transport enterprise files with the bureau every
//! month — dynamic monitoring duty logs (动态监控值班记录), safety meeting minutes (安全例会记录),
//! driver safety education records (驾驶员安全教育记录) and whatever kinds the bureau adds.
//!
//! **Kinds** are the bureau's list (`supervision_archive_kinds`: code, Chinese and English name,
//! active); the three above are seeded by the migration, so every deployment starts with them.
//! Transport regulators add kinds and deactivate them; a deactivated kind leaves the board and
//! takes no new files, and its files stay.
//!
//! **Filing**: an enterprise's operator uploads the file with `POST /api/files` and attaches it to
//! a month and kind (`POST /api/supervision/archives`); a month may hold several files of a kind.
//! The month may not be in the future nor before 2020-01; the file must be the enterprise's own.
//! Month M's archives are due by the 5th of M+1 (inclusive, Beijing time): a file attached later
//! is kept and marked late.
//!
//! **Board** (`GET …/archives/board?month=`): per enterprise and active kind, the files and a
//! status: `uploaded` (a file in time), `late` (files, all late), `missing` (none, and the 5th
//! of M+1 has begun), `pending` (none yet, the 5th not reached).
//!
//! **Flag**: a daily job ([`flag_missing`]) raises, from the 5th of M+1 on, one alarm
//! (`archive_missing`, domain `supervision`) per transport enterprise with kinds of month M
//! missing, owned by the enterprise; remembered in `supervision_archive_flags` so that it is
//! raised once, and started at Beijing midnight of the 5th so that a repeat after a crash updates
//! the same alarm. The alarm's episode ends when the enterprise files the last missing kind. On
//! the 5th itself the board says `missing` and the alarm stands, though a file attached that day
//! still counts as in time: the last day's reminder.

use crate::access::{Who, reaches, require_filter, who};
use crate::dates::{Month, date_of, day_of_ms, midnight_ms, today_days};
use crate::enterprises::DOMAIN;
use crate::expiry::ALARM_DOMAIN;
use crate::workflow::{self, not_yours};
use alarms::model::{NewAlarm, Severity};
use kernel::access::{Caller, Scope};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::orgs::{OrgKind, Organisation};
use kernel::store::{Arg, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The alarm kind of a month with archives missing.
pub const MISSING: &str = "archive_missing";
/// The day of the following month by which a month's archives are due.
pub const DUE_DAY: u8 = 5;
/// The first month archives are kept for.
pub const FIRST_MONTH: Month = Month { year: 2020, month: 1 };

/// The last day (Beijing) month `m`'s archives are in time: the 5th of the month after.
pub fn due_day(m: Month) -> i64 {
    m.next().day(DUE_DAY)
}

// ------------------------------------------------------------------------------ kinds

/// A kind of monthly archive the bureau requires.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ArchiveKind {
    /// `monitoring_duty_log`, `safety_meeting_minutes`, `driver_safety_education`, …
    pub code: String,
    /// The Chinese name, e.g. 动态监控值班记录.
    pub name: String,
    pub name_en: String,
    /// Required on the board and open for filing.
    pub active: bool,
}

/// A new kind (transport regulators).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKind {
    /// Lowercase letters, digits and `_`, starting with a letter, 2 to 40 characters.
    pub code: String,
    pub name: String,
    pub name_en: String,
}

/// A kind's names and whether it is required.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindUpdate {
    pub name: String,
    pub name_en: String,
    pub active: bool,
}

/// Every kind, active first in the bureau's order; `all` false: the active only.
pub async fn kinds(st: &AppState, all: bool) -> StoreResult<Vec<ArchiveKind>> {
    let sql = if all {
        "SELECT code, name, name_en, active FROM supervision_archive_kinds ORDER BY active DESC, ord, code"
    } else {
        "SELECT code, name, name_en, active FROM supervision_archive_kinds WHERE active = 1 ORDER BY ord, code"
    };
    let rows = sqlx::query(sql).fetch_all(st.store.reader()).await?;
    rows.iter()
        .map(|r| {
            Ok(ArchiveKind {
                code: col(r, "code")?,
                name: col(r, "name")?,
                name_en: col(r, "name_en")?,
                active: col::<i64>(r, "active")? != 0,
            })
        })
        .collect()
}

fn check_code(code: &str) -> ApiResult<String> {
    let ok = (2..=40).contains(&code.len())
        && code.starts_with(|ch: char| ch.is_ascii_lowercase())
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(code.to_string())
    } else {
        Err(ApiError::field(Code::InvalidField, "code", "2 to 40 of a-z, 0-9 and _, starting with a letter"))
    }
}

async fn regulator(st: &AppState, c: &Caller, action: &str) -> ApiResult<()> {
    if who(st, c).await? == Who::Regulator { Ok(()) } else { Err(not_yours(action)) }
}

/// Adds a kind (transport regulators); a code taken is a 409.
pub async fn create_kind(st: &AppState, c: &Caller, k: &NewKind) -> ApiResult<ArchiveKind> {
    regulator(st, c, "keeping the archive kinds").await?;
    let code = check_code(k.code.trim())?;
    let name = workflow::line("name", &k.name, 50)?;
    let name_en = workflow::line("name_en", &k.name_en, 100)?;
    let store = &st.store;
    let mut tx = store.begin().await?;
    let ord: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(ord), 0) + 1 AS BIGINT) FROM supervision_archive_kinds")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_archive_kinds (code, name, name_en, active, ord, updated_ms, updated_by) \
         VALUES ($1, $2, $3, 1, $4, $5, $6)",
    ))
    .bind(code.clone())
    .bind(name.clone())
    .bind(name_en.clone())
    .bind(ord)
    .bind(now_ms())
    .bind(c.username.clone())
    .execute(&mut *tx)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => ApiError::field(Code::Conflict, "code", "a kind with this code exists"),
        other => other.into(),
    })?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "archive_kind.create", "archive_kind", Some(&code), Outcome::Success)
            .detail(serde_json::json!({"name": name, "name_en": name_en})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(ArchiveKind { code, name, name_en, active: true })
}

/// Renames, deactivates or reactivates a kind (transport regulators).
pub async fn update_kind(st: &AppState, c: &Caller, code: &str, k: &KindUpdate) -> ApiResult<ArchiveKind> {
    regulator(st, c, "keeping the archive kinds").await?;
    let name = workflow::line("name", &k.name, 50)?;
    let name_en = workflow::line("name_en", &k.name_en, 100)?;
    let store = &st.store;
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE supervision_archive_kinds SET name = $1, name_en = $2, active = $3, updated_ms = $4, updated_by = $5 \
         WHERE code = $6",
    ))
    .bind(name.clone())
    .bind(name_en.clone())
    .bind(i64::from(k.active))
    .bind(now_ms())
    .bind(c.username.clone())
    .bind(code.to_string())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("archive kind"));
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "archive_kind.update", "archive_kind", Some(code), Outcome::Success)
            .detail(serde_json::json!({"name": name, "name_en": name_en, "active": k.active})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(ArchiveKind { code: code.to_string(), name, name_en, active: k.active })
}

// ------------------------------------------------------------------------------ archives

/// A file attached to a month (an enterprise's operator).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArchive {
    /// `YYYY-MM`: not in the future, not before 2020-01.
    pub month: String,
    /// An active kind's code.
    pub kind: String,
    /// A file of the enterprise's, from `POST /api/files`.
    pub file_id: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// An archived file as a list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArchiveView {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub month: String,
    pub kind: String,
    pub kind_name: String,
    pub file_id: String,
    pub name: String,
    pub size: i64,
    pub media_type: String,
    pub note: Option<String>,
    /// Attached after the 5th of the month after.
    pub late: bool,
    /// RFC 3339, UTC.
    pub uploaded_at: String,
    /// The operator's user name.
    pub uploaded_by: String,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArchiveQuery {
    /// One enterprise (an operator sees its own anyway).
    pub org_id: Option<String>,
    /// `YYYY-MM`.
    pub month: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

// The file's name, size and type are the kernel's `files` row: read with the archive rather
// than once per file.
const COLS: &str = "a.id AS id, a.org_id AS org_id, o.name AS org_name, a.month AS month, a.kind AS kind, \
     k.name AS kind_name, a.file_id AS file_id, f.name AS file_name, f.size AS size, f.media_type AS media_type, \
     a.note AS note, a.late AS late, a.uploaded_ms AS uploaded_ms, a.uploaded_by AS uploaded_by";
const FROM: &str = "supervision_archives a JOIN organisations o ON o.id = a.org_id \
     JOIN supervision_archive_kinds k ON k.code = a.kind JOIN files f ON f.id = a.file_id";

fn row_to_view(r: &AnyRow) -> ApiResult<ArchiveView> {
    Ok(ArchiveView {
        id: col(r, "id")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        month: col(r, "month")?,
        kind: col(r, "kind")?,
        kind_name: col(r, "kind_name")?,
        file_id: col(r, "file_id")?,
        name: col(r, "file_name")?,
        size: col(r, "size")?,
        media_type: col(r, "media_type")?,
        note: col(r, "note")?,
        late: col::<i64>(r, "late")? != 0,
        uploaded_at: ms_to_rfc3339(col(r, "uploaded_ms")?),
        uploaded_by: col(r, "uploaded_by")?,
    })
}

fn not_found() -> ApiError {
    ApiError::not_found("archive")
}

/// A month as a caller names it: `YYYY-MM`, from 2020-01 to the current month (Beijing).
fn check_month(field: &str, v: &str, code: Code, today: i64) -> ApiResult<Month> {
    let m = Month::parse(v.trim()).ok_or_else(|| ApiError::field(code, field, "a month, YYYY-MM"))?;
    if m < FIRST_MONTH {
        return Err(ApiError::field(code, field, "not before 2020-01"));
    }
    if m > Month::of_day(today) {
        return Err(ApiError::field(code, field, "a month in the future"));
    }
    Ok(m)
}

/// Whether the caller's organisation is a transport enterprise (an operator elsewhere files
/// nothing here).
async fn own_enterprise(st: &AppState, c: &Caller) -> ApiResult<()> {
    let org = kernel::orgs::get(&st.store, &c.org_id).await?;
    let domain = st.orgs.domain_of(&st.store, &c.org_id).await?;
    if org.is_some_and(|o| o.kind == OrgKind::Enterprise) && domain.as_deref() == Some(DOMAIN) {
        Ok(())
    } else {
        Err(ApiError::forbidden("monthly archives are filed by transport enterprises"))
    }
}

/// Attaches an uploaded file to a month and kind (an enterprise's operator, for its own
/// enterprise).
#[tracing::instrument(skip_all)]
pub async fn attach(st: &AppState, c: &Caller, a: &NewArchive) -> ApiResult<ArchiveView> {
    if who(st, c).await? != Who::Operator {
        return Err(not_yours("filing monthly archives"));
    }
    own_enterprise(st, c).await?;
    let month = check_month("month", &a.month, Code::InvalidField, today_days())?;
    let kind = a.kind.trim();
    if !kinds(st, false).await?.iter().any(|k| k.code == kind) {
        return Err(ApiError::field(Code::InvalidField, "kind", "no such archive kind (or no longer required)"));
    }
    let file = kernel::files::require_readable(st, c, &a.file_id)
        .await
        .map_err(|_| ApiError::field(Code::InvalidField, "file_id", "no such file of yours"))?;
    if file.org_id != c.org_id {
        return Err(ApiError::field(Code::InvalidField, "file_id", "not a file of your enterprise"));
    }
    let note = workflow::text("note", a.note.as_deref(), 500, false)?;
    let id = insert(st, Actor::of(c), &c.org_id, month, kind, &file.id, note.as_deref(), now_ms()).await?;
    // A late filing that completes a flagged month ends its alarm's episode.
    if let Err(e) = end_flag_if_complete(st, &c.org_id, month).await {
        tracing::warn!(error = %e, "missing-archive alarm not ended");
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE a.id = $1")))
        .bind(id)
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    row_to_view(&row)
}

/// Stores an attachment (checked by the caller) with its audit record in one transaction; late
/// when `uploaded_ms` falls after the month's due day. Also the demo's way in.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    st: &AppState,
    actor: Actor,
    org_id: &str,
    month: Month,
    kind: &str,
    file_id: &str,
    note: Option<&str>,
    uploaded_ms: i64,
) -> ApiResult<String> {
    let late = day_of_ms(uploaded_ms) > due_day(month);
    let store = &st.store;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_archives (id, org_id, month, kind, file_id, note, late, uploaded_ms, uploaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    ))
    .bind(id.clone())
    .bind(org_id.to_string())
    .bind(month.to_string())
    .bind(kind.to_string())
    .bind(file_id.to_string())
    .bind(note.map(str::to_string))
    .bind(i64::from(late))
    .bind(uploaded_ms)
    .bind(actor.name.clone())
    .execute(&mut *tx)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => {
            ApiError::field(Code::Conflict, "file_id", "this file is filed for this month and kind already")
        }
        other => other.into(),
    })?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "archive.attach", "archive", Some(&id), Outcome::Success).detail(serde_json::json!({
            "org_id": org_id, "month": month.to_string(), "kind": kind, "file_id": file_id, "late": late,
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// An enterprise's archives (the bureau: any in scope; an operator: its own), newest month first.
pub async fn list(st: &AppState, c: &Caller, q: &ArchiveQuery) -> ApiResult<Paged<ArchiveView>> {
    let side = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let mut w = Where::new();
    w.scope(&c.scope, "a.org_id");
    if side == Who::Operator {
        w.and("a.org_id = ?", Arg::S(c.org_id.clone()));
    }
    if let Some(o) = &q.org_id {
        require_filter(c, o)?;
        w.and("a.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(m) = &q.month {
        let m =
            Month::parse(m.trim()).ok_or_else(|| ApiError::field(Code::InvalidQuery, "month", "a month, YYYY-MM"))?;
        w.and("a.month = ?", Arg::S(m.to_string()));
    }
    if let Some(k) = &q.kind {
        let k =
            check_code(k.trim()).map_err(|_| ApiError::field(Code::InvalidQuery, "kind", "an archive kind's code"))?;
        w.and("a.kind = ?", Arg::S(k));
    }
    let (rows, total) =
        fetch_page(&st.store, COLS, FROM, &w, "a.month DESC, a.kind, a.uploaded_ms DESC, a.id", limit, offset).await?;
    let items = rows.iter().map(row_to_view).collect::<ApiResult<_>>()?;
    Ok(Paged { items, total, limit, offset })
}

/// One archived file's record (404 outside the caller's reach).
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<ArchiveView> {
    who(st, c).await?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(not_found());
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE a.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(not_found)?;
    let v = row_to_view(&row)?;
    if reaches(c, &v.org_id) { Ok(v) } else { Err(not_found()) }
}

// ------------------------------------------------------------------------------ board

/// A kind's state for one enterprise and month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ArchiveStatus)]
pub enum Status {
    /// 已归档: a file attached in time.
    Uploaded,
    /// 逾期归档: files attached, all after the due day.
    Late,
    /// 缺失: none, and the due day has come.
    Missing,
    /// 待归档: none yet, the due day not reached.
    Pending,
}

/// A file on the board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardFile {
    /// The archive record.
    pub archive_id: String,
    pub file_id: String,
    pub name: String,
    pub size: i64,
    pub uploaded_at: String,
    pub uploaded_by: String,
    pub late: bool,
}

/// One kind of one enterprise's month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardCell {
    pub kind: String,
    pub kind_name: String,
    pub status: Status,
    pub files: Vec<BoardFile>,
}

/// One enterprise's month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardRow {
    pub org_id: String,
    pub org_name: String,
    /// One per active kind, in the bureau's order.
    pub kinds: Vec<BoardCell>,
    /// Kinds missing (the due day has come and nothing is filed).
    pub missing: i64,
    pub late: i64,
    pub pending: i64,
}

/// The month's board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Board {
    pub month: String,
    /// The last day in time, `YYYY-MM-DD` (the 5th of the month after).
    pub due: String,
    /// Today in Beijing, `YYYY-MM-DD`.
    pub today: String,
    pub kinds: Vec<ArchiveKind>,
    /// Every transport enterprise in reach, by name.
    pub enterprises: Vec<BoardRow>,
}

/// The board's query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// `YYYY-MM`, from 2020-01 to the current month.
    pub month: Option<String>,
    /// One enterprise.
    pub org_id: Option<String>,
}

/// The status of a kind with `files` (their late flags) for a month due on `due`, on `today`.
pub fn status(late_flags: &[bool], due: i64, today: i64) -> Status {
    match () {
        _ if late_flags.iter().any(|l| !l) => Status::Uploaded,
        _ if !late_flags.is_empty() => Status::Late,
        _ if today >= due => Status::Missing,
        _ => Status::Pending,
    }
}

/// The transport enterprises in the caller's reach (an operator: its own), by name.
async fn enterprises_in_reach(st: &AppState, c: &Caller, only: Option<&str>) -> ApiResult<Vec<Organisation>> {
    let (orgs, _) = kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut out = Vec::new();
    for o in orgs {
        if !reaches(c, &o.id)
            || only.is_some_and(|f| f != o.id)
            || st.orgs.domain_of(&st.store, &o.id).await?.as_deref() != Some(DOMAIN)
        {
            continue;
        }
        out.push(o);
    }
    Ok(out)
}

/// The board of `month` for the caller, as of local day `today`.
pub async fn board(st: &AppState, c: &Caller, q: &BoardQuery, today: i64) -> ApiResult<Board> {
    who(st, c).await?;
    let month = q.month.as_deref().ok_or_else(|| ApiError::field(Code::InvalidQuery, "month", "required, YYYY-MM"))?;
    let month = check_month("month", month, Code::InvalidQuery, today)?;
    if let Some(o) = &q.org_id {
        require_filter(c, o)?;
    }
    let orgs = enterprises_in_reach(st, c, q.org_id.as_deref()).await?;
    let active = kinds(st, false).await?;
    let due = due_day(month);
    let mut w = Where::new();
    w.scope(&c.scope, "a.org_id");
    w.and("a.month = ?", Arg::S(month.to_string()));
    if let Some(o) = &q.org_id {
        w.and("a.org_id = ?", Arg::S(o.clone()));
    }
    let (rows, _) = fetch_page(&st.store, COLS, FROM, &w, "a.uploaded_ms, a.id", 1_000_000, 0).await?;
    let files = rows.iter().map(row_to_view).collect::<ApiResult<Vec<_>>>()?;
    let mut enterprises = Vec::with_capacity(orgs.len());
    for o in orgs {
        let mut row =
            BoardRow { org_id: o.id.clone(), org_name: o.name, kinds: vec![], missing: 0, late: 0, pending: 0 };
        for k in &active {
            let mine: Vec<BoardFile> = files
                .iter()
                .filter(|f| f.org_id == o.id && f.kind == k.code)
                .map(|f| BoardFile {
                    archive_id: f.id.clone(),
                    file_id: f.file_id.clone(),
                    name: f.name.clone(),
                    size: f.size,
                    uploaded_at: f.uploaded_at.clone(),
                    uploaded_by: f.uploaded_by.clone(),
                    late: f.late,
                })
                .collect();
            let s = status(&mine.iter().map(|f| f.late).collect::<Vec<_>>(), due, today);
            match s {
                Status::Missing => row.missing += 1,
                Status::Late => row.late += 1,
                Status::Pending => row.pending += 1,
                Status::Uploaded => {}
            }
            row.kinds.push(BoardCell { kind: k.code.clone(), kind_name: k.name.clone(), status: s, files: mine });
        }
        enterprises.push(row);
    }
    Ok(Board { month: month.to_string(), due: date_of(due), today: date_of(today), kinds: active, enterprises })
}

// ------------------------------------------------------------------------------ flag

/// The active kinds `org_id` has filed nothing of for `month`.
async fn missing_kinds(st: &AppState, org_id: &str, month: Month) -> StoreResult<Vec<ArchiveKind>> {
    let rows =
        sqlx::query(&st.store.sql("SELECT DISTINCT kind FROM supervision_archives WHERE org_id = $1 AND month = $2"))
            .bind(org_id.to_string())
            .bind(month.to_string())
            .fetch_all(st.store.reader())
            .await?;
    let filed: Vec<String> = rows.iter().map(|r| col(r, "kind")).collect::<StoreResult<_>>()?;
    Ok(kinds(st, false).await?.into_iter().filter(|k| !filed.contains(&k.code)).collect())
}

async fn flagged(st: &AppState, org_id: &str, month: Month) -> StoreResult<bool> {
    let r =
        sqlx::query(&st.store.sql("SELECT 1 AS one FROM supervision_archive_flags WHERE org_id = $1 AND month = $2"))
            .bind(org_id.to_string())
            .bind(month.to_string())
            .fetch_optional(st.store.reader())
            .await?;
    Ok(r.is_some())
}

/// Ends the flagged month's alarm once nothing is missing any more.
async fn end_flag_if_complete(st: &AppState, org_id: &str, month: Month) -> StoreResult<()> {
    if flagged(st, org_id, month).await? && missing_kinds(st, org_id, month).await?.is_empty() {
        let start = midnight_ms(due_day(month));
        alarms::service::end(&st.store, &st.bus, ALARM_DOMAIN, MISSING, org_id, start, now_ms()).await?;
    }
    Ok(())
}

/// The month whose archives the flag looks at on local day `today`: the last one whose due day
/// has come (on the 5th and after: last month; before: the month before that).
pub fn month_to_flag(today: i64) -> Month {
    let this = Month::of_day(today);
    if today >= this.day(DUE_DAY) { this.prev() } else { this.prev().prev() }
}

/// Raises, for [`month_to_flag`]`(today)`, one alarm per transport enterprise with kinds
/// missing and not flagged yet; returns how many were raised.
pub async fn flag_missing(st: &AppState, today: i64) -> anyhow::Result<usize> {
    let month = month_to_flag(today);
    if month < FIRST_MONTH {
        return Ok(0);
    }
    let due = due_day(month);
    let (orgs, _) = kernel::orgs::list(&st.store, &Scope::All, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut raised = 0;
    for o in orgs {
        if st.orgs.domain_of(&st.store, &o.id).await?.as_deref() != Some(DOMAIN) || flagged(st, &o.id, month).await? {
            continue;
        }
        let missing = missing_kinds(st, &o.id, month).await?;
        if missing.is_empty() {
            continue;
        }
        let codes: Vec<&str> = missing.iter().map(|k| k.code.as_str()).collect();
        let names: Vec<&str> = missing.iter().map(|k| k.name.as_str()).collect();
        let now = now_ms();
        let alarm = NewAlarm {
            domain: ALARM_DOMAIN.into(),
            kind: MISSING.into(),
            severity: Severity::Minor,
            subject_type: "organisation".into(),
            subject_id: o.id.clone(),
            subject_label: format!("{} {month} 月度归档", o.name),
            org_id: o.id.clone(),
            started_ms: midnight_ms(due),
            at_ms: now,
            rule_version: 1,
            details: serde_json::json!({"month": month.to_string(), "due": date_of(due), "missing": codes, "missing_names": names}),
            evidence: serde_json::json!([]),
        };
        let (a, _) = alarms::service::raise(&st.store, &st.bus, &alarm).await?;
        let mut tx = st.store.begin().await?;
        let n = sqlx::query(&st.store.sql(
            "INSERT INTO supervision_archive_flags (org_id, month, missing, alarm_id, raised_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        ))
        .bind(o.id.clone())
        .bind(month.to_string())
        .bind(serde_json::to_string(&codes).unwrap_or_else(|_| "[]".into()))
        .bind(a.id.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        raised += usize::from(n > 0);
    }
    if raised > 0 {
        tracing::info!(raised, month = %month, "missing monthly archives flagged");
    }
    Ok(raised)
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_archives, attach_archive))
        .routes(routes!(get_board))
        .routes(routes!(list_kinds, create_archive_kind))
        .routes(routes!(update_archive_kind))
        .routes(routes!(get_archive))
}

/// An enterprise's archived files (the bureau: any enterprise in reach; an operator: its own),
/// newest month first.
#[utoipa::path(get, path = "/api/supervision/archives", tag = "supervision", params(ArchiveQuery),
    responses((status = 200, body = Paged<ArchiveView>), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_archives(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<axum::Json<Paged<ArchiveView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Files an uploaded file of the enterprise's (`POST /api/files` first) under a month and kind
/// (an enterprise's operator); after the 5th of the month after it is kept and marked late.
#[utoipa::path(post, path = "/api/supervision/archives", tag = "supervision", request_body = NewArchive,
    responses((status = 201, body = ArchiveView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn attach_archive(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(a): Json<NewArchive>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<ArchiveView>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(attach(&st, &c, &a).await?)))
}

/// The month's board: per transport enterprise in reach and active kind, the files filed and
/// `uploaded`, `late`, `missing` or `pending`.
#[utoipa::path(get, path = "/api/supervision/archives/board", tag = "supervision", params(BoardQuery),
    responses((status = 200, body = Board), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_board(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<BoardQuery>,
) -> ApiResult<axum::Json<Board>> {
    Ok(axum::Json(board(&st, &c, &q, today_days()).await?))
}

/// The kinds' list's query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KindsQuery {
    /// Also the deactivated kinds.
    pub all: Option<bool>,
}

/// The archive kinds the bureau requires (`all=true`: also those no longer required).
#[utoipa::path(get, path = "/api/supervision/archives/kinds", tag = "supervision", params(KindsQuery),
    responses((status = 200, body = Vec<ArchiveKind>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_kinds(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<KindsQuery>,
) -> ApiResult<axum::Json<Vec<ArchiveKind>>> {
    who(&st, &c).await?;
    Ok(axum::Json(kinds(&st, q.all == Some(true)).await?))
}

/// Adds an archive kind (transport regulators).
#[utoipa::path(post, path = "/api/supervision/archives/kinds", tag = "supervision", request_body = NewKind,
    responses((status = 201, body = ArchiveKind), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_archive_kind(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(k): Json<NewKind>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<ArchiveKind>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(create_kind(&st, &c, &k).await?)))
}

/// Renames, deactivates or reactivates an archive kind (transport regulators).
#[utoipa::path(put, path = "/api/supervision/archives/kinds/{code}", tag = "supervision", params(("code" = String, Path)),
    request_body = KindUpdate,
    responses((status = 200, body = ArchiveKind), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update_archive_kind(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(code): Path<String>,
    Json(k): Json<KindUpdate>,
) -> ApiResult<axum::Json<ArchiveKind>> {
    Ok(axum::Json(update_kind(&st, &c, &code, &k).await?))
}

/// One archived file's record.
#[utoipa::path(get, path = "/api/supervision/archives/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = ArchiveView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_archive(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ArchiveView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::days_of;

    #[test]
    fn statuses_follow_the_due_day() {
        let m = Month::parse("2026-03").unwrap();
        let due = due_day(m);
        assert_eq!(date_of(due), "2026-04-05");
        assert_eq!(status(&[], due, due - 1), Status::Pending);
        assert_eq!(status(&[], due, due), Status::Missing);
        assert_eq!(status(&[true], due, due), Status::Late);
        assert_eq!(status(&[true, false], due, due + 40), Status::Uploaded);
    }

    #[test]
    fn the_flag_looks_at_the_last_month_due() {
        let d = |s: &str| days_of(s).unwrap();
        assert_eq!(month_to_flag(d("2026-04-04")).to_string(), "2026-02");
        assert_eq!(month_to_flag(d("2026-04-05")).to_string(), "2026-03");
        assert_eq!(month_to_flag(d("2026-01-31")).to_string(), "2025-12");
        assert_eq!(month_to_flag(d("2026-01-01")).to_string(), "2025-11");
    }
}
