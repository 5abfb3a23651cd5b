//! What every supervision workflow shares (隐患整改, 下发文件/报送, 月度归档, 行政处罚): the
//! history of a case (案卷记录), one row per step, written in the transaction that makes the
//! step, beside its audit record; the checks of the free text, dates and attached files that
//! every step takes.
//!
//! A case is named by a kind (`hazard`, `document`, `document_reply`, …) and an id. Its steps are
//! numbered from 1 in the order they committed; a step names who took it (user and organisation),
//! the action, the state it led to, a note and the files attached to it.

use crate::dates::{date_of, days_of, today_days};
use kernel::access::Caller;
use kernel::audit::Actor;
use kernel::error::{ApiError, ApiResult, Code};
use kernel::files::{self, FileMeta};
use kernel::http::AppState;
use kernel::store::{Store, StoreError, StoreResult, col, ms_to_rfc3339};
use serde::Serialize;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

/// Most files one step may attach.
pub const MAX_FILES: usize = 20;

/// A file attached to a step, as a person sees it in a list.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub media_type: String,
}

impl From<&FileMeta> for FileRef {
    fn from(m: &FileMeta) -> Self {
        FileRef { id: m.id.clone(), name: m.name.clone(), size: m.size, media_type: m.media_type.clone() }
    }
}

/// One step of a case's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CaseStep)]
pub struct Step {
    /// 1, 2, … in commit order.
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The user who took the step (`system` for the server's own: escalation, flags).
    pub actor: String,
    /// The organisation the step was taken for (the bureau or the enterprise).
    pub actor_org: String,
    /// `notify`, `report`, `pass`, `return`, `escalate`, `read`, `reply`, …
    pub action: String,
    /// The case's state after the step.
    pub state: Option<String>,
    pub note: Option<String>,
    /// Files attached to this step (those the reader may not open are left out).
    pub files: Vec<FileRef>,
}

/// A step about to be written.
#[derive(Debug, Clone)]
pub struct NewStep<'a> {
    pub case_kind: &'static str,
    pub case_id: &'a str,
    pub actor: &'a Actor,
    pub actor_org: &'a str,
    pub action: &'static str,
    pub state: Option<&'a str>,
    pub note: Option<&'a str>,
    pub files: &'a [FileMeta],
    pub at_ms: i64,
}

/// Appends a step inside the caller's transaction (which holds the case's row lock or the
/// SQLite writer, so the numbering cannot race).
pub async fn append(store: &Store, tx: &mut Transaction<'static, Any>, s: &NewStep<'_>) -> StoreResult<i64> {
    let seq: i64 = sqlx::query_scalar(&store.sql(
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM supervision_history WHERE case_kind = $1 AND case_id = $2",
    ))
    .bind(s.case_kind)
    .bind(s.case_id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let ids: Vec<&str> = s.files.iter().map(|f| f.id.as_str()).collect();
    sqlx::query(&store.sql(
        "INSERT INTO supervision_history (case_kind, case_id, seq, at_ms, actor, actor_org, action, state, note, files) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    ))
    .bind(s.case_kind)
    .bind(s.case_id.to_string())
    .bind(seq)
    .bind(s.at_ms)
    .bind(s.actor.name.clone())
    .bind(s.actor_org.to_string())
    .bind(s.action)
    .bind(s.state.map(str::to_string))
    .bind(s.note.map(str::to_string))
    .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// A case's steps in order, with the files `c` may open.
pub async fn steps(st: &AppState, c: &Caller, case_kind: &str, case_id: &str) -> ApiResult<Vec<Step>> {
    let rows = sqlx::query(&st.store.sql(
        "SELECT seq, at_ms, actor, actor_org, action, state, note, files FROM supervision_history \
         WHERE case_kind = $1 AND case_id = $2 ORDER BY seq",
    ))
    .bind(case_kind.to_string())
    .bind(case_id.to_string())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let ids: Vec<String> = serde_json::from_str(&col::<String>(r, "files")?).unwrap_or_default();
        out.push(Step {
            seq: col(r, "seq")?,
            at: ms_to_rfc3339(col(r, "at_ms")?),
            actor: col(r, "actor")?,
            actor_org: col(r, "actor_org")?,
            action: col(r, "action")?,
            state: col(r, "state")?,
            note: col(r, "note")?,
            files: readable_refs(st, c, &ids).await?,
        });
    }
    Ok(out)
}

/// The files of `ids` that `c` may open, as references (stored order; the others left out).
pub async fn readable_refs(st: &AppState, c: &Caller, ids: &[String]) -> ApiResult<Vec<FileRef>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Ok(m) = files::require_readable(st, c, id).await {
            out.push(FileRef::from(&m));
        }
    }
    Ok(out)
}

/// The files a step attaches: each one the caller may read (else a 422 naming it: a file id is
/// not a secret the caller did not send), none twice, at most [`MAX_FILES`].
pub async fn check_files(st: &AppState, c: &Caller, field: &str, ids: &[String]) -> ApiResult<Vec<FileMeta>> {
    if ids.len() > MAX_FILES {
        return Err(ApiError::field(Code::InvalidField, field, format!("at most {MAX_FILES} files")));
    }
    let mut out: Vec<FileMeta> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let m = files::require_readable(st, c, id)
            .await
            .map_err(|_| ApiError::field(Code::InvalidField, format!("{field}[{i}]"), "no such file of yours"))?;
        if out.iter().any(|o| o.id == m.id) {
            return Err(ApiError::field(Code::InvalidField, format!("{field}[{i}]"), "the same file twice"));
        }
        out.push(m);
    }
    Ok(out)
}

/// A required line of text: trimmed, 1 to `max` characters, no control characters.
pub fn line(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::field(Code::InvalidField, field, format!("1 to {max} characters on one line")));
    }
    Ok(v.to_string())
}

/// Free text (a notice, a report): trimmed, up to `max` characters, line breaks and tabs allowed,
/// no other control characters; empty is None unless `required`.
pub fn text(field: &str, v: Option<&str>, max: usize, required: bool) -> ApiResult<Option<String>> {
    let v = v.map(str::trim).filter(|s| !s.is_empty());
    match v {
        None if required => Err(ApiError::field(Code::InvalidField, field, "required")),
        None => Ok(None),
        Some(s) if s.chars().count() > max => {
            Err(ApiError::field(Code::InvalidField, field, format!("at most {max} characters")))
        }
        Some(s) if s.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\r' && ch != '\t') => {
            Err(ApiError::field(Code::InvalidField, field, "no control characters"))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// A deadline: a date (`YYYY-MM-DD`) from today (in Beijing) to a year ahead.
pub fn deadline(field: &str, v: &str) -> ApiResult<String> {
    let d = days_of(v.trim()).ok_or_else(|| ApiError::field(Code::InvalidField, field, "a date, YYYY-MM-DD"))?;
    let today = today_days();
    if d < today {
        return Err(ApiError::field(Code::InvalidField, field, "the deadline has passed already"));
    }
    if d > today + 366 {
        return Err(ApiError::field(Code::InvalidField, field, "at most a year ahead"));
    }
    Ok(date_of(d))
}

/// A date that has happened: `YYYY-MM-DD`, not after today (in Beijing).
pub fn past_date(field: &str, v: &str) -> ApiResult<String> {
    let d = days_of(v.trim()).ok_or_else(|| ApiError::field(Code::InvalidField, field, "a date, YYYY-MM-DD"))?;
    if d > today_days() {
        return Err(ApiError::field(Code::InvalidField, field, "a date in the future"));
    }
    Ok(date_of(d))
}

/// A 409 for a step the case's state does not allow.
pub fn wrong_state(action: &str, state: &str) -> ApiError {
    ApiError::new(Code::Conflict, format!("a case in state {state} cannot be {action}"))
}

/// A 403 for a step the caller's side does not take.
pub fn not_yours(action: &str) -> ApiError {
    ApiError::forbidden(format!("{action} is not a step your organisation takes"))
}
