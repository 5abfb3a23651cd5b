//! Documents and reporting (下发文件 / 报送): the bureau issues a document to chosen enterprises,
//! to every enterprise running vehicles of a class, or to all of its enterprises, optionally
//! requiring a report by a deadline; each enterprise reads it (签收), answers with a note and
//! files, and the bureau accepts the answer or returns it; the bureau sees at any time who has
//! read, who has answered and who is late.
//!
//! Recipients are fixed when the document is issued (an enterprise registered later does not
//! receive it), and the document's attachments are shared with each of them
//! (`kernel::files::share`). Each recipient's part is its own small case:
//!
//! ```text
//!   unread ──read──► read ──reply──► replied ──accept──► accepted
//!     └──────reply─────────────────►   ▲  └──return──► returned ──reply──┘
//! ```
//!
//! An enterprise opening the document marks it read. A reply after the deadline is taken and
//! marked late (a late report is still a report); a document without a required report takes
//! no reply. The document's own history (`document`) holds its issue; each recipient's steps
//! are in the history of case `document_reply` `<document id>:<org id>`.

use crate::access::{Who, reaches, who};
use crate::dates::{days_of, today_days};
use crate::enterprises::DOMAIN;
use crate::workflow::{self, FileRef, NewStep, Step, not_yours, wrong_state};
use kernel::access::Caller;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::orgs::OrgKind;
use kernel::store::{Arg, StoreError, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The history's case kinds.
pub const CASE: &str = "document";
pub const REPLY_CASE: &str = "document_reply";

/// Whom a document goes to: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// These enterprises (1 to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_ids: Option<Vec<String>>,
    /// Every enterprise with a registered vehicle of this class (`dangerous_goods`, `taxi`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle_class: Option<String>,
    /// Every transport enterprise in the issuer's reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
}

/// A document to issue (the bureau's transport regulators).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// 文号, e.g. 武交运〔2026〕12号 (optional, up to 50 characters).
    #[serde(default)]
    pub number: Option<String>,
    /// Up to 100 characters.
    pub title: String,
    /// The text, up to 20 000 characters.
    pub body: String,
    /// Attachments, ids from `POST /api/files` (the bureau's own); shared with the recipients.
    #[serde(default)]
    pub files: Vec<String>,
    pub target: Target,
    /// The enterprises must answer (报送) by `deadline`.
    #[serde(default)]
    pub requires_report: bool,
    /// `YYYY-MM-DD`, today or later; required with `requires_report`, refused without.
    #[serde(default)]
    pub deadline: Option<String>,
}

/// An enterprise's answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Up to 4000 characters; required.
    pub note: String,
    /// Ids from `POST /api/files`, the enterprise's own.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The bureau's decision on an answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyReview {
    pub decision: ReplyDecision,
    /// Required to return.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyDecision {
    Accept,
    Return,
}

/// One recipient's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RecipientStatus)]
pub enum Status {
    /// 未读
    Unread,
    /// 已签收
    Read,
    /// 已报送, waiting for the bureau.
    Replied,
    /// 已退回: answer again.
    Returned,
    /// 已通过
    Accepted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unread => "unread",
            Status::Read => "read",
            Status::Replied => "replied",
            Status::Returned => "returned",
            Status::Accepted => "accepted",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [Status::Unread, Status::Read, Status::Replied, Status::Returned, Status::Accepted]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// One recipient's part.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recipient {
    pub org_id: String,
    pub org_name: String,
    pub status: Status,
    pub read_at: Option<String>,
    pub read_by: Option<String>,
    pub replied_at: Option<String>,
    pub replied_by: Option<String>,
    /// The report is due, the deadline passed, and there is no answer (or a returned one); or
    /// the answer came after the deadline.
    pub late: bool,
    pub reply_note: Option<String>,
    pub reply_files: Vec<FileRef>,
    /// With one recipient's view of a document: its steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Step>>,
}

/// How many recipients stand where.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Counts {
    pub recipients: i64,
    pub read: i64,
    pub replied: i64,
    pub accepted: i64,
    pub late: i64,
}

/// A document as a list or a page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub issuer_org_id: String,
    pub issuer_org_name: String,
    pub number: Option<String>,
    pub title: String,
    pub body: String,
    pub files: Vec<FileRef>,
    pub target: Target,
    pub requires_report: bool,
    pub deadline: Option<String>,
    /// Days to the deadline (negative: past).
    pub days_left: Option<i64>,
    pub issued_at: String,
    pub issued_by: String,
    /// The bureau's view: the recipients' standing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// An enterprise's view: its own part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mine: Option<Recipient>,
    /// The bureau's view of one document: every recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Recipient>>,
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// Text in the number or title.
    pub q: Option<String>,
    /// The bureau: documents with a late recipient or an answer to review; an enterprise:
    /// documents it has not read or still has to answer.
    pub pending: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const DOC_COLS: &str = "d.id AS id, d.issuer_org AS issuer_org, o.name AS issuer_name, d.number AS number, \
     d.title AS title, d.body AS body, d.files AS files, d.target AS target, d.requires_report AS requires_report, \
     d.deadline AS deadline, d.issued_ms AS issued_ms, d.issued_by AS issued_by";
const DOC_FROM: &str = "supervision_documents d JOIN organisations o ON o.id = d.issuer_org";
const REC_COLS: &str = "r.document_id AS document_id, r.org_id AS org_id, ro.name AS org_name, r.status AS status, \
     r.read_ms AS read_ms, r.read_by AS read_by, r.replied_ms AS replied_ms, r.replied_by AS replied_by, \
     r.reply_note AS reply_note, r.reply_files AS reply_files, r.reply_late AS reply_late";

fn not_found() -> ApiError {
    ApiError::not_found("document")
}

struct Doc {
    view: DocumentView,
    file_ids: Vec<String>,
}

fn row_to_doc(r: &AnyRow, today: i64) -> ApiResult<Doc> {
    let file_ids: Vec<String> = serde_json::from_str(&col::<String>(r, "files")?).unwrap_or_default();
    let target: Target = serde_json::from_str(&col::<String>(r, "target")?).unwrap_or_default();
    let deadline: Option<String> = col(r, "deadline")?;
    Ok(Doc {
        view: DocumentView {
            id: col(r, "id")?,
            issuer_org_id: col(r, "issuer_org")?,
            issuer_org_name: col(r, "issuer_name")?,
            number: col(r, "number")?,
            title: col(r, "title")?,
            body: col(r, "body")?,
            files: vec![],
            target,
            requires_report: col::<i64>(r, "requires_report")? != 0,
            days_left: deadline.as_deref().and_then(days_of).map(|d| d - today),
            deadline,
            issued_at: ms_to_rfc3339(col(r, "issued_ms")?),
            issued_by: col(r, "issued_by")?,
            counts: None,
            mine: None,
            recipients: None,
        },
        file_ids,
    })
}

/// Whether a recipient is late: a required report whose deadline passed without an answer
/// standing (none, or returned), or an answer given after the deadline.
fn is_late(requires_report: bool, days_left: Option<i64>, status: Status, reply_late: bool) -> bool {
    requires_report
        && (reply_late
            || (days_left.is_some_and(|d| d < 0) && matches!(status, Status::Unread | Status::Read | Status::Returned)))
}

async fn row_to_recipient(
    st: &AppState,
    c: &Caller,
    r: &AnyRow,
    requires_report: bool,
    days_left: Option<i64>,
) -> ApiResult<Recipient> {
    let s: String = col(r, "status")?;
    let status = Status::parse(&s).ok_or_else(|| ApiError::internal(format!("recipient status {s:?}")))?;
    let ids: Vec<String> =
        col::<Option<String>>(r, "reply_files")?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default();
    Ok(Recipient {
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        status,
        read_at: col::<Option<i64>>(r, "read_ms")?.map(ms_to_rfc3339),
        read_by: col(r, "read_by")?,
        replied_at: col::<Option<i64>>(r, "replied_ms")?.map(ms_to_rfc3339),
        replied_by: col(r, "replied_by")?,
        late: is_late(requires_report, days_left, status, col::<i64>(r, "reply_late")? != 0),
        reply_note: col(r, "reply_note")?,
        reply_files: workflow::readable_refs(st, c, &ids).await?,
        history: None,
    })
}

/// The enterprises a target names, each a transport enterprise in the issuer's reach.
async fn resolve(st: &AppState, c: &Caller, t: &Target) -> ApiResult<Vec<String>> {
    let bad = |why: &str| ApiError::field(Code::InvalidField, "target", why.to_string());
    let given = [t.org_ids.is_some(), t.vehicle_class.is_some(), t.all.is_some()].iter().filter(|x| **x).count();
    if given != 1 {
        return Err(bad("name exactly one of org_ids, vehicle_class, all"));
    }
    let (orgs, _) = kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut transport = Vec::new();
    for o in orgs {
        if st.orgs.domain_of(&st.store, &o.id).await?.as_deref() == Some(DOMAIN) {
            transport.push(o.id);
        }
    }
    let out: Vec<String> = if let Some(ids) = &t.org_ids {
        if ids.is_empty() || ids.len() > 500 {
            return Err(ApiError::field(Code::InvalidField, "target.org_ids", "1 to 500 enterprises"));
        }
        let mut out: Vec<String> = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if !transport.contains(id) {
                return Err(ApiError::field(
                    Code::InvalidField,
                    format!("target.org_ids[{i}]"),
                    "not a transport enterprise in your reach",
                ));
            }
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    } else if let Some(class) = &t.vehicle_class {
        if !crate::vehicles::PASSENGER_CLASSES.contains(&class.as_str())
            && !crate::vehicles::GOODS_CLASSES.contains(&class.as_str())
        {
            return Err(ApiError::field(
                Code::InvalidField,
                "target.vehicle_class",
                "not a vehicle class of the registry",
            ));
        }
        let with: Vec<String> =
            sqlx::query_scalar(&st.store.sql("SELECT DISTINCT org_id FROM transport_vehicles WHERE class = $1"))
                .bind(class.clone())
                .fetch_all(st.store.reader())
                .await
                .map_err(StoreError::from)?;
        transport.into_iter().filter(|o| with.contains(o)).collect()
    } else if t.all == Some(true) {
        transport
    } else {
        return Err(ApiError::field(Code::InvalidField, "target.all", "true, or name the enterprises"));
    };
    if out.is_empty() {
        return Err(bad("no enterprise matches"));
    }
    Ok(out)
}

/// Issues a document (the bureau): recipients fixed, attachments shared with them, one
/// transaction with its history step and audit record.
#[tracing::instrument(skip_all)]
pub async fn issue(st: &AppState, c: &Caller, d: &NewDocument) -> ApiResult<DocumentView> {
    let side = who(st, c).await?;
    if side != Who::Regulator {
        return Err(not_yours("issuing a document"));
    }
    let number = match d.number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(n) => Some(workflow::line("number", n, 50)?),
        None => None,
    };
    let title = workflow::line("title", &d.title, 100)?;
    let body = workflow::text("body", Some(&d.body), 20_000, true)?.unwrap_or_default();
    let deadline = match (d.requires_report, &d.deadline) {
        (true, Some(v)) => Some(workflow::deadline("deadline", v)?),
        (true, None) => {
            return Err(ApiError::field(Code::InvalidField, "deadline", "a required report needs a deadline"));
        }
        (false, Some(_)) => {
            return Err(ApiError::field(
                Code::InvalidField,
                "deadline",
                "a deadline applies to a required report only",
            ));
        }
        (false, None) => None,
    };
    let files = workflow::check_files(st, c, "files", &d.files).await?;
    let recipients = resolve(st, c, &d.target).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let actor = Actor::of(c);
    let store = &st.store;
    let file_ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO supervision_documents (id, issuer_org, number, title, body, files, target, requires_report, \
         deadline, issued_ms, issued_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    ))
    .bind(id.clone())
    .bind(c.org_id.clone())
    .bind(number.clone())
    .bind(title.clone())
    .bind(body)
    .bind(serde_json::to_string(&file_ids).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&d.target).unwrap_or_else(|_| "{}".into()))
    .bind(i64::from(d.requires_report))
    .bind(deadline.clone())
    .bind(now)
    .bind(c.username.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    for org in &recipients {
        sqlx::query(&store.sql(
            "INSERT INTO supervision_document_recipients (document_id, org_id, status, reply_late) VALUES ($1, $2, 'unread', 0)",
        ))
        .bind(id.clone())
        .bind(org.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        for f in &files {
            kernel::files::share(store, &mut tx, &f.id, org).await?;
        }
    }
    let note = format!("下发至 {} 家企业", recipients.len());
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: CASE,
            case_id: &id,
            actor: &actor,
            actor_org: &c.org_id,
            action: "issue",
            state: None,
            note: Some(&note),
            files: &files,
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "document.issue", CASE, Some(&id), Outcome::Success).detail(serde_json::json!({
            "number": number, "title": title, "recipients": recipients.len(), "requires_report": d.requires_report,
            "deadline": deadline, "files": files.len(),
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    detail(st, c, side, &id).await
}

async fn load(st: &AppState, id: &str) -> ApiResult<Option<Doc>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row = sqlx::query(&st.store.sql(&format!("SELECT {DOC_COLS} FROM {DOC_FROM} WHERE d.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    row.as_ref().map(|r| row_to_doc(r, today_days())).transpose()
}

async fn recipient_row(st: &AppState, id: &str, org_id: &str) -> ApiResult<Option<AnyRow>> {
    Ok(sqlx::query(&st.store.sql(&format!(
        "SELECT {REC_COLS} FROM supervision_document_recipients r JOIN organisations ro ON ro.id = r.org_id \
         WHERE r.document_id = $1 AND r.org_id = $2"
    )))
    .bind(id.to_string())
    .bind(org_id.to_string())
    .fetch_optional(st.store.reader())
    .await
    .map_err(StoreError::from)?)
}

/// The document as the caller's side sees it (404 when it is neither the issuer's in scope nor
/// sent to the caller's enterprise).
async fn detail(st: &AppState, c: &Caller, side: Who, id: &str) -> ApiResult<DocumentView> {
    let Doc { mut view, file_ids } = load(st, id).await?.ok_or_else(not_found)?;
    hide_other_recipients(&mut view, c);
    match side {
        Who::Regulator => {
            if !c.scope.contains(&view.issuer_org_id) {
                return Err(not_found());
            }
            let rows = sqlx::query(&st.store.sql(&format!(
                "SELECT {REC_COLS} FROM supervision_document_recipients r JOIN organisations ro ON ro.id = r.org_id \
                 WHERE r.document_id = $1 ORDER BY ro.name, r.org_id"
            )))
            .bind(id.to_string())
            .fetch_all(st.store.reader())
            .await
            .map_err(StoreError::from)?;
            let mut recipients = Vec::with_capacity(rows.len());
            for r in &rows {
                let rec = row_to_recipient(st, c, r, view.requires_report, view.days_left).await?;
                if reaches(c, &rec.org_id) {
                    recipients.push(rec);
                }
            }
            view.counts = Some(count(&recipients));
            view.recipients = Some(recipients);
        }
        Who::Operator => {
            let row = recipient_row(st, id, &c.org_id).await?.ok_or_else(not_found)?;
            let mut mine = row_to_recipient(st, c, &row, view.requires_report, view.days_left).await?;
            mine.history = Some(workflow::steps(st, c, REPLY_CASE, &format!("{id}:{}", c.org_id)).await?);
            view.mine = Some(mine);
        }
    }
    view.files = workflow::readable_refs(st, c, &file_ids).await?;
    Ok(view)
}

/// The enterprises a document was sent to, as the caller may see them: only those it reaches
/// (an enterprise is not told which others received the same document; issue 8).
fn hide_other_recipients(view: &mut DocumentView, c: &Caller) {
    if let Some(ids) = view.target.org_ids.as_mut() {
        ids.retain(|o| reaches(c, o));
    }
}

fn count(rs: &[Recipient]) -> Counts {
    let n = |f: &dyn Fn(&Recipient) -> bool| rs.iter().filter(|r| f(r)).count() as i64;
    Counts {
        recipients: rs.len() as i64,
        read: n(&|r| r.status != Status::Unread),
        replied: n(&|r| matches!(r.status, Status::Replied | Status::Accepted)),
        accepted: n(&|r| r.status == Status::Accepted),
        late: n(&|r| r.late),
    }
}

/// One document: the bureau sees every recipient's standing; an enterprise its own part, and
/// its first opening marks the document read.
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<DocumentView> {
    let side = who(st, c).await?;
    let view = detail(st, c, side, id).await?;
    if view.mine.as_ref().is_some_and(|m| m.status == Status::Unread) {
        return mark_read(st, c, id).await;
    }
    audit::record(&st.store, Event::new(Actor::of(c), "document.read", CASE, Some(id), Outcome::Success)).await?;
    Ok(view)
}

/// Records that the caller's enterprise has read (签收) the document; a second time changes
/// nothing.
#[tracing::instrument(skip_all)]
pub async fn mark_read(st: &AppState, c: &Caller, id: &str) -> ApiResult<DocumentView> {
    let side = who(st, c).await?;
    if side != Who::Operator {
        return Err(not_yours("signing for a document"));
    }
    let view = detail(st, c, side, id).await?;
    if view.mine.as_ref().is_some_and(|m| m.status != Status::Unread) {
        return Ok(view);
    }
    let store = &st.store;
    let now = now_ms();
    let actor = Actor::of(c);
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE supervision_document_recipients SET status = 'read', read_ms = $1, read_by = $2 \
         WHERE document_id = $3 AND org_id = $4 AND status = 'unread'",
    ))
    .bind(now)
    .bind(c.username.clone())
    .bind(id.to_string())
    .bind(c.org_id.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 1 {
        let case = format!("{id}:{}", c.org_id);
        workflow::append(
            store,
            &mut tx,
            &NewStep {
                case_kind: REPLY_CASE,
                case_id: &case,
                actor: &actor,
                actor_org: &c.org_id,
                action: "read",
                state: Some(Status::Read.as_str()),
                note: None,
                files: &[],
                at_ms: now,
            },
        )
        .await?;
        audit::append(store, &mut tx, &Event::new(actor, "document.sign", CASE, Some(id), Outcome::Success)).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    detail(st, c, side, id).await
}

/// The enterprise's answer to a document that requires one.
#[tracing::instrument(skip_all)]
pub async fn reply(st: &AppState, c: &Caller, id: &str, r: &Reply) -> ApiResult<DocumentView> {
    let side = who(st, c).await?;
    if side != Who::Operator {
        return Err(not_yours("answering a document"));
    }
    let view = detail(st, c, side, id).await?;
    let mine = view.mine.as_ref().ok_or_else(not_found)?;
    if !view.requires_report {
        return Err(ApiError::new(Code::Conflict, "this document asks for no report"));
    }
    if !matches!(mine.status, Status::Unread | Status::Read | Status::Returned) {
        return Err(wrong_state("answered", mine.status.as_str()));
    }
    let note = workflow::text("note", Some(&r.note), 4000, true)?;
    let files = workflow::check_files(st, c, "files", &r.files).await?;
    if let Some((i, _)) = files.iter().enumerate().find(|(_, f)| f.org_id != c.org_id) {
        return Err(ApiError::field(Code::InvalidField, format!("files[{i}]"), "not your enterprise's file"));
    }
    let late = view.days_left.is_some_and(|d| d < 0);
    let store = &st.store;
    let now = now_ms();
    let actor = Actor::of(c);
    let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE supervision_document_recipients SET status = 'replied', replied_ms = $1, replied_by = $2, \
         reply_note = $3, reply_files = $4, reply_late = $5, read_ms = COALESCE(read_ms, $1), \
         read_by = COALESCE(read_by, $2) WHERE document_id = $6 AND org_id = $7 AND status = $8",
    ))
    .bind(now)
    .bind(c.username.clone())
    .bind(note.clone())
    .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(late))
    .bind(id.to_string())
    .bind(c.org_id.clone())
    .bind(mine.status.as_str())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::new(Code::Conflict, "the document changed meanwhile; reload it"));
    }
    let case = format!("{id}:{}", c.org_id);
    let step_note = if late { note.clone().map(|n| format!("{n}（逾期报送）")) } else { note.clone() };
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: REPLY_CASE,
            case_id: &case,
            actor: &actor,
            actor_org: &c.org_id,
            action: "reply",
            state: Some(Status::Replied.as_str()),
            note: step_note.as_deref(),
            files: &files,
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "document.reply", CASE, Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": c.org_id, "late": late, "files": files.len()})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    detail(st, c, side, id).await
}

/// The bureau accepts or returns one enterprise's answer.
#[tracing::instrument(skip_all)]
pub async fn review(st: &AppState, c: &Caller, id: &str, org_id: &str, r: &ReplyReview) -> ApiResult<Recipient> {
    let side = who(st, c).await?;
    let view = detail(st, c, side, id).await?;
    if side != Who::Regulator {
        return Err(not_yours("reviewing an answer"));
    }
    let rec = view
        .recipients
        .as_ref()
        .and_then(|rs| rs.iter().find(|x| x.org_id == org_id))
        .ok_or_else(|| ApiError::not_found("recipient"))?;
    if rec.status != Status::Replied {
        return Err(wrong_state("reviewed", rec.status.as_str()));
    }
    let (to, action, note) = match r.decision {
        ReplyDecision::Accept => (Status::Accepted, "accept", workflow::text("note", r.note.as_deref(), 4000, false)?),
        ReplyDecision::Return => (Status::Returned, "return", workflow::text("note", r.note.as_deref(), 4000, true)?),
    };
    let store = &st.store;
    let now = now_ms();
    let actor = Actor::of(c);
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE supervision_document_recipients SET status = $1 WHERE document_id = $2 AND org_id = $3 AND status = 'replied'",
    ))
    .bind(to.as_str())
    .bind(id.to_string())
    .bind(org_id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::new(Code::Conflict, "the answer changed meanwhile; reload it"));
    }
    let case = format!("{id}:{org_id}");
    workflow::append(
        store,
        &mut tx,
        &NewStep {
            case_kind: REPLY_CASE,
            case_id: &case,
            actor: &actor,
            actor_org: &c.org_id,
            action,
            state: Some(to.as_str()),
            note: note.as_deref(),
            files: &[],
            at_ms: now,
        },
    )
    .await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, &format!("document.{action}"), CASE, Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": org_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = recipient_row(st, id, org_id).await?.ok_or_else(|| ApiError::not_found("recipient"))?;
    let mut rec = row_to_recipient(st, c, &row, view.requires_report, view.days_left).await?;
    rec.history = Some(workflow::steps(st, c, REPLY_CASE, &case).await?);
    Ok(rec)
}

/// One recipient's part with its steps (the bureau).
pub async fn recipient(st: &AppState, c: &Caller, id: &str, org_id: &str) -> ApiResult<Recipient> {
    let side = who(st, c).await?;
    if side != Who::Regulator {
        return Err(not_yours("reading another enterprise's answer"));
    }
    let view = detail(st, c, side, id).await?;
    let mut rec = view
        .recipients
        .and_then(|rs| rs.into_iter().find(|x| x.org_id == org_id))
        .ok_or_else(|| ApiError::not_found("recipient"))?;
    rec.history = Some(workflow::steps(st, c, REPLY_CASE, &format!("{id}:{org_id}")).await?);
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "document.reply.read", CASE, Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": org_id})),
    )
    .await?;
    Ok(rec)
}

/// Documents in the caller's reach, newest first: the bureau's with their counts, an
/// enterprise's with its own part.
pub async fn list(st: &AppState, c: &Caller, q: &DocumentQuery) -> ApiResult<Paged<DocumentView>> {
    let side = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let today = today_days();
    let mut w = Where::new();
    match side {
        Who::Regulator => {
            w.scope(&c.scope, "d.issuer_org");
        }
        Who::Operator => {
            w.and(
                "EXISTS (SELECT 1 FROM supervision_document_recipients x WHERE x.document_id = d.id AND x.org_id = ?)",
                Arg::S(c.org_id.clone()),
            );
        }
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if text.chars().count() > 100 {
            return Err(ApiError::field(Code::InvalidQuery, "q", "at most 100 characters"));
        }
        w.contains(&["d.number", "d.title"], text);
    }
    if q.pending == Some(true) {
        let past = Arg::S(crate::dates::date_of(today));
        match side {
            Who::Regulator => w.and(
                "EXISTS (SELECT 1 FROM supervision_document_recipients x WHERE x.document_id = d.id AND \
                 (x.status = 'replied' OR (d.requires_report = 1 AND d.deadline < ? AND x.status IN ('unread', 'read', 'returned'))))",
                past,
            ),
            Who::Operator => w.and(
                "EXISTS (SELECT 1 FROM supervision_document_recipients x WHERE x.document_id = d.id AND x.org_id = ? AND \
                 (x.status = 'unread' OR (d.requires_report = 1 AND x.status IN ('read', 'returned'))))",
                Arg::S(c.org_id.clone()),
            ),
        };
    }
    let (rows, total) =
        fetch_page(&st.store, DOC_COLS, DOC_FROM, &w, "d.issued_ms DESC, d.id DESC", limit, offset).await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let Doc { mut view, file_ids } = row_to_doc(r, today)?;
        hide_other_recipients(&mut view, c);
        match side {
            Who::Regulator => {
                let rs = sqlx::query(&st.store.sql(&format!(
                    "SELECT {REC_COLS} FROM supervision_document_recipients r JOIN organisations ro ON ro.id = r.org_id \
                     WHERE r.document_id = $1"
                )))
                .bind(view.id.clone())
                .fetch_all(st.store.reader())
                .await
                .map_err(StoreError::from)?;
                let mut recs = Vec::with_capacity(rs.len());
                for x in &rs {
                    let rec = row_to_recipient(st, c, x, view.requires_report, view.days_left).await?;
                    if reaches(c, &rec.org_id) {
                        recs.push(rec);
                    }
                }
                view.counts = Some(count(&recs));
            }
            Who::Operator => {
                if let Some(x) = recipient_row(st, &view.id, &c.org_id).await? {
                    view.mine = Some(row_to_recipient(st, c, &x, view.requires_report, view.days_left).await?);
                }
            }
        }
        view.files = workflow::readable_refs(st, c, &file_ids).await?;
        items.push(view);
    }
    Ok(Paged { items, total, limit, offset })
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_documents, issue_document))
        .routes(routes!(get_document))
        .routes(routes!(sign_document))
        .routes(routes!(reply_document))
        .routes(routes!(get_recipient))
        .routes(routes!(review_reply))
}

/// Documents in the caller's reach: the bureau's issued ones with who read, answered and is
/// late; an enterprise's received ones with its own part.
#[utoipa::path(get, path = "/api/supervision/documents", tag = "supervision", params(DocumentQuery),
    responses((status = 200, body = Paged<DocumentView>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_documents(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<DocumentQuery>,
) -> ApiResult<axum::Json<Paged<DocumentView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Issues a document to chosen enterprises, to those running a class of vehicle, or to all
/// (the bureau's transport regulators).
#[utoipa::path(post, path = "/api/supervision/documents", tag = "supervision", request_body = NewDocument,
    responses((status = 201, body = DocumentView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn issue_document(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Json(d): Json<NewDocument>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<DocumentView>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(issue(&st, &c, &d).await?)))
}

/// One document; an enterprise's first opening signs for it.
#[utoipa::path(get, path = "/api/supervision/documents/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_document(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DocumentView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

/// Signs for (签收) a document (an enterprise).
#[utoipa::path(post, path = "/api/supervision/documents/{id}/read", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = DocumentView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn sign_document(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DocumentView>> {
    Ok(axum::Json(mark_read(&st, &c, &id).await?))
}

/// Answers (报送) a document that requires a report, with files (an enterprise); after the
/// deadline it is taken and marked late.
#[utoipa::path(post, path = "/api/supervision/documents/{id}/reply", tag = "supervision", params(("id" = String, Path)),
    request_body = Reply,
    responses((status = 200, body = DocumentView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn reply_document(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(r): Json<Reply>,
) -> ApiResult<axum::Json<DocumentView>> {
    Ok(axum::Json(reply(&st, &c, &id, &r).await?))
}

/// One enterprise's part of a document, with its steps (the bureau).
#[utoipa::path(get, path = "/api/supervision/documents/{id}/recipients/{org_id}", tag = "supervision",
    params(("id" = String, Path), ("org_id" = String, Path)),
    responses((status = 200, body = Recipient), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_recipient(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path((id, org_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Recipient>> {
    Ok(axum::Json(recipient(&st, &c, &id, &org_id).await?))
}

/// Accepts or returns an enterprise's answer (the bureau).
#[utoipa::path(post, path = "/api/supervision/documents/{id}/recipients/{org_id}/review", tag = "supervision",
    params(("id" = String, Path), ("org_id" = String, Path)), request_body = ReplyReview,
    responses((status = 200, body = Recipient), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn review_reply(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path((id, org_id)): Path<(String, String)>,
    Json(r): Json<ReplyReview>,
) -> ApiResult<axum::Json<Recipient>> {
    Ok(axum::Json(review(&st, &c, &id, &org_id, &r).await?))
}
