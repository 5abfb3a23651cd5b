//! The alarm service: raising (from rule engines), the handling steps (from the desk), the
//! scoped queries and the daily statistics. No HTTP here.

use crate::model::{Action, Alarm, NewAlarm, Severity, Status, Step, Subject};
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::bus::Bus;
use kernel::error::{ApiError, ApiResult, Code};
use kernel::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use sqlx::any::AnyRow;
use std::sync::Arc;

/// The longest note a step may carry, in characters.
pub const MAX_NOTE: usize = 500;
/// Evidence kept per alarm: the first report's, then replaced by each update's, bounded.
const MAX_EVIDENCE_BYTES: usize = 16 * 1024;

const COLS: &str = "id, domain, kind, severity, subject_type, subject_id, subject_label, org_id, status, started_ms, \
     last_ms, ended_ms, triggers, rule_version, details, evidence, action, supervised, acknowledged_ms, handled_ms, closed_ms";

/// Bus subject of an alarm's changes: `alarms.<domain>.<kind>`.
pub fn subject(domain: &str, kind: &str) -> String {
    format!("alarms.{domain}.{kind}")
}

fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(ms_to_rfc3339)
}

fn row_to_alarm(r: &AnyRow) -> StoreResult<Alarm> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("alarm {what} {v:?}"));
    let status: String = col(r, "status")?;
    let severity: i64 = col(r, "severity")?;
    let action: Option<String> = col(r, "action")?;
    let json = |name: &str| -> StoreResult<serde_json::Value> {
        let s: String = col(r, name)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("alarm {name}: {e}")))
    };
    Ok(Alarm {
        id: col(r, "id")?,
        domain: col(r, "domain")?,
        kind: col(r, "kind")?,
        severity: Severity::from_level(severity).ok_or_else(|| corrupt("severity", &severity.to_string()))?,
        subject: Subject { kind: col(r, "subject_type")?, id: col(r, "subject_id")?, label: col(r, "subject_label")? },
        org_id: col(r, "org_id")?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        started_at: ms_to_rfc3339(col(r, "started_ms")?),
        last_at: ms_to_rfc3339(col(r, "last_ms")?),
        ended_at: opt_time(col(r, "ended_ms")?),
        triggers: col(r, "triggers")?,
        rule_version: col(r, "rule_version")?,
        details: json("details")?,
        evidence: json("evidence")?,
        action: action.as_deref().map(|a| Action::parse(a).ok_or_else(|| corrupt("action", a))).transpose()?,
        supervised: col::<i64>(r, "supervised")? != 0,
        acknowledged_at: opt_time(col(r, "acknowledged_ms")?),
        handled_at: opt_time(col(r, "handled_ms")?),
        closed_at: opt_time(col(r, "closed_ms")?),
        steps: None,
    })
}

fn evidence_text(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() <= MAX_EVIDENCE_BYTES { s } else { serde_json::json!({"truncated": true}).to_string() }
}

/// The identity of an episode: a repeated report of it updates the same alarm.
fn episode_key(a: &NewAlarm) -> String {
    format!("{}|{}|{}|{}", a.domain, a.kind, a.subject_id, a.started_ms)
}

async fn publish(bus: &Arc<dyn Bus>, alarm: &Alarm) {
    match serde_json::to_vec(alarm) {
        Ok(json) => {
            if let Err(e) = bus.publish(&subject(&alarm.domain, &alarm.kind), Arc::from(json)).await {
                tracing::warn!(alarm = %alarm.id, error = %e, "alarm change not published");
            }
        }
        Err(e) => tracing::warn!(alarm = %alarm.id, error = %e, "alarm not serialisable"),
    }
}

async fn next_seq(store: &Store, tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: &str) -> StoreResult<i64> {
    let r = sqlx::query(&store.sql("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM alarm_steps WHERE alarm_id = $1"))
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await?;
    col(&r, "n")
}

async fn add_step(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    at_ms: i64,
    step: &str,
    actor: &str,
    note: &str,
) -> StoreResult<()> {
    let seq = next_seq(store, tx, id).await?;
    sqlx::query(
        &store.sql("INSERT INTO alarm_steps (alarm_id, seq, at_ms, step, actor, note) VALUES ($1, $2, $3, $4, $5, $6)"),
    )
    .bind(id.to_string())
    .bind(seq)
    .bind(at_ms)
    .bind(step.to_string())
    .bind(actor.to_string())
    .bind(note.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What raising did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alarm.
    New,
    /// An open episode's alarm was updated (severity, figures, evidence).
    Updated,
}

/// Raises an alarm for an episode, or updates the alarm already raised for it: its severity
/// only grows, its figures and evidence are the newest. Committed before it returns; then the
/// change is published on the bus.
pub async fn raise(store: &Store, bus: &Arc<dyn Bus>, a: &NewAlarm) -> StoreResult<(Alarm, Raised)> {
    let key = episode_key(a);
    let now = now_ms();
    let mut tx = store.begin().await?;
    let existing = sqlx::query(&store.sql("SELECT id, severity FROM alarms WHERE episode_key = $1"))
        .bind(key.clone())
        .fetch_optional(&mut *tx)
        .await?;
    let (id, outcome) = match existing {
        Some(r) => {
            let id: String = col(&r, "id")?;
            let severity = col::<i64>(&r, "severity")?.max(a.severity.level());
            sqlx::query(&store.sql(
                "UPDATE alarms SET severity = $1, last_ms = $2, triggers = triggers + 1, details = $3, evidence = $4, \
                 updated_ms = $5 WHERE id = $6",
            ))
            .bind(severity)
            .bind(a.at_ms)
            .bind(a.details.to_string())
            .bind(evidence_text(&a.evidence))
            .bind(now)
            .bind(id.clone())
            .execute(&mut *tx)
            .await?;
            (id, Raised::Updated)
        }
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            sqlx::query(&store.sql(
                "INSERT INTO alarms (id, episode_key, domain, kind, severity, subject_type, subject_id, subject_label, \
                 org_id, status, started_ms, last_ms, triggers, rule_version, details, evidence, supervised, created_ms, \
                 updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'raised', $10, $11, 1, $12, $13, $14, 0, $15, $15)",
            ))
            .bind(id.clone())
            .bind(key)
            .bind(a.domain.clone())
            .bind(a.kind.clone())
            .bind(a.severity.level())
            .bind(a.subject_type.clone())
            .bind(a.subject_id.clone())
            .bind(a.subject_label.clone())
            .bind(a.org_id.clone())
            .bind(a.started_ms)
            .bind(a.at_ms)
            .bind(a.rule_version)
            .bind(a.details.to_string())
            .bind(evidence_text(&a.evidence))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            add_step(store, &mut tx, &id, now, "raised", "rules", "").await?;
            (id, Raised::New)
        }
    };
    tx.commit().await?;
    metrics::counter!("wuqing_alarms_raised_total", "domain" => a.domain.clone(), "kind" => a.kind.clone(),
        "new" => if outcome == Raised::New { "true" } else { "false" })
    .increment(1);
    let alarm =
        alarm_by_id(store, &id).await?.ok_or_else(|| StoreError::Corrupt("alarm vanished after raise".into()))?;
    publish(bus, &alarm).await;
    Ok((alarm, outcome))
}

/// Records that an episode's condition ended (the vehicle slowed down, the reading came back);
/// its handling goes on. Returns the alarm, if that episode raised one.
pub async fn end(
    store: &Store,
    bus: &Arc<dyn Bus>,
    domain: &str,
    kind: &str,
    subject_id: &str,
    started_ms: i64,
    ended_ms: i64,
) -> StoreResult<Option<Alarm>> {
    let key = format!("{domain}|{kind}|{subject_id}|{started_ms}");
    let mut tx = store.begin().await?;
    let n = sqlx::query(
        &store.sql("UPDATE alarms SET ended_ms = $1, updated_ms = $2 WHERE episode_key = $3 AND ended_ms IS NULL"),
    )
    .bind(ended_ms)
    .bind(now_ms())
    .bind(key.clone())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if n == 0 {
        return Ok(None);
    }
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM alarms WHERE episode_key = $1")))
        .bind(key)
        .fetch_optional(store.reader())
        .await?;
    let alarm = r.as_ref().map(row_to_alarm).transpose()?;
    if let Some(a) = &alarm {
        publish(bus, a).await;
    }
    Ok(alarm)
}

/// The episodes (kind, start) raised for a subject in a domain, whatever their status: what the
/// crash test compares with the alarms the stored positions imply. No caller: not scoped.
pub async fn episodes_of(store: &Store, domain: &str, subject_id: &str) -> StoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query(&store.sql("SELECT kind, started_ms FROM alarms WHERE domain = $1 AND subject_id = $2"))
        .bind(domain)
        .bind(subject_id)
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(|r| Ok((col::<String>(r, "kind")?, col::<i64>(r, "started_ms")?))).collect()
}

pub async fn alarm_by_id(store: &Store, id: &str) -> StoreResult<Option<Alarm>> {
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM alarms WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(store.reader())
        .await?;
    r.as_ref().map(row_to_alarm).transpose()
}

/// Appends a step taken by the platform itself (a message sent to the driver and whether it was
/// delivered, say) to an alarm's history.
pub async fn system_step(store: &Store, id: &str, step: &str, note: &str) -> StoreResult<()> {
    let mut tx = store.begin().await?;
    add_step(store, &mut tx, id, now_ms(), step, "platform", note).await?;
    tx.commit().await?;
    Ok(())
}

/// Who may see alarms: regulators (their domain's organisations), enterprise operators and
/// clinicians (their own organisation: a family doctor follows the alarms of the monitors their
/// health centre looks after).
pub fn require_read(c: &Caller) -> ApiResult<()> {
    match c.role {
        Role::Regulator | Role::Operator | Role::Clinician => Ok(()),
        _ => Err(ApiError::forbidden("alarms are for regulators and the owning organisation's staff")),
    }
}

/// Who may manage an organisation's notification sinks: its regulators and operators.
pub fn require_manage(c: &Caller) -> ApiResult<()> {
    match c.role {
        Role::Regulator | Role::Operator => Ok(()),
        _ => Err(ApiError::forbidden("notification sinks are managed by regulators and enterprise operators")),
    }
}

/// An alarm the caller may see (with its steps), or not-found.
pub async fn get(store: &Store, c: &Caller, id: &str) -> ApiResult<Alarm> {
    require_read(c)?;
    let mut a = match alarm_by_id(store, id).await? {
        Some(a) if c.scope.contains(&a.org_id) => a,
        _ => return Err(ApiError::not_found("alarm")),
    };
    let rows = sqlx::query(
        &store.sql("SELECT seq, at_ms, step, actor, note FROM alarm_steps WHERE alarm_id = $1 ORDER BY seq"),
    )
    .bind(id.to_string())
    .fetch_all(store.reader())
    .await
    .map_err(StoreError::from)?;
    let steps = rows
        .iter()
        .map(|r| {
            Ok(Step {
                seq: col(r, "seq")?,
                at: ms_to_rfc3339(col(r, "at_ms")?),
                step: col(r, "step")?,
                actor: col(r, "actor")?,
                note: col(r, "note")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    a.steps = Some(steps);
    Ok(a)
}

/// Which alarms a list shows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// `None`: any; `open`: not closed.
    pub status: Option<StatusFilter>,
    pub min_severity: Option<Severity>,
    pub domain: Option<String>,
    pub kind: Option<String>,
    pub org_id: Option<String>,
    pub subject_id: Option<String>,
    pub supervised: Option<bool>,
    /// Started at or after (ms).
    pub from_ms: Option<i64>,
    /// Started before (ms).
    pub to_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Open,
    Is(Status),
}

/// Alarms in the caller's scope, most severe first, then oldest first (what waits longest).
pub async fn list(store: &Store, c: &Caller, f: &Filter) -> ApiResult<(Vec<Alarm>, i64)> {
    require_read(c)?;
    let mut w = Where::new();
    w.scope(&c.scope, "org_id");
    if let Some(o) = &f.org_id {
        c.require_org(o)?;
        w.and("org_id = ?", Arg::S(o.clone()));
    }
    match f.status {
        Some(StatusFilter::Open) => {
            w.and_fixed("status <> 'closed'");
        }
        Some(StatusFilter::Is(s)) => {
            w.and("status = ?", Arg::S(s.as_str().into()));
        }
        None => {}
    }
    if let Some(s) = f.min_severity {
        w.and("severity >= ?", Arg::I(s.level()));
    }
    if let Some(d) = &f.domain {
        w.and("domain = ?", Arg::S(d.clone()));
    }
    if let Some(k) = &f.kind {
        w.and("kind = ?", Arg::S(k.clone()));
    }
    if let Some(s) = &f.subject_id {
        w.and("subject_id = ?", Arg::S(s.clone()));
    }
    if let Some(s) = f.supervised {
        w.and("supervised = ?", Arg::I(i64::from(s)));
    }
    if let Some(t) = f.from_ms {
        w.and("started_ms >= ?", Arg::I(t));
    }
    if let Some(t) = f.to_ms {
        w.and("started_ms < ?", Arg::I(t));
    }
    let (rows, total) =
        fetch_page(store, COLS, "alarms", &w, "severity DESC, started_ms, id", f.limit, f.offset).await?;
    Ok((rows.iter().map(row_to_alarm).collect::<StoreResult<_>>()?, total))
}

/// A handling step the desk asks for.
#[derive(Debug, Clone)]
pub enum StepRequest {
    Acknowledge { note: String },
    Handle { action: Action, note: String },
    Close { note: String },
    Supervise { note: String },
}

impl StepRequest {
    fn name(&self) -> &'static str {
        match self {
            Self::Acknowledge { .. } => "acknowledged",
            Self::Handle { .. } => "handled",
            Self::Close { .. } => "closed",
            Self::Supervise { .. } => "supervised",
        }
    }
    fn note(&self) -> &str {
        match self {
            Self::Acknowledge { note }
            | Self::Handle { note, .. }
            | Self::Close { note }
            | Self::Supervise { note } => note,
        }
    }
}

/// Takes a handling step: the owning enterprise's operators acknowledge, handle and close; a
/// regulator supervises (督办). Each step is checked against the alarm's status, stored with who
/// and when, audited in the same transaction, then published.
pub async fn step(store: &Store, bus: &Arc<dyn Bus>, c: &Caller, id: &str, req: StepRequest) -> ApiResult<Alarm> {
    let cur = get(store, c, id).await?;
    let note = req.note().trim().to_string();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::field(Code::InvalidField, "note", format!("a note has at most {MAX_NOTE} characters")));
    }
    if note.chars().any(|ch| ch.is_control() && ch != '\n') {
        return Err(ApiError::field(Code::InvalidField, "note", "a note may not hold control characters"));
    }
    // Who may take the step, and from which status.
    let from: &[Status] = match &req {
        StepRequest::Supervise { .. } => {
            if c.role != Role::Regulator {
                return Err(ApiError::forbidden("only a regulator supervises the handling of an alarm"));
            }
            if note.is_empty() {
                return Err(ApiError::field(Code::InvalidField, "note", "say what the enterprise is to do"));
            }
            &[Status::Raised, Status::Acknowledged, Status::Handled]
        }
        other => {
            if !matches!(c.role, Role::Operator | Role::Clinician) {
                return Err(ApiError::forbidden("alarms are handled by the owning organisation's staff"));
            }
            c.require_org(&cur.org_id)?;
            match other {
                StepRequest::Acknowledge { .. } => &[Status::Raised],
                StepRequest::Handle { .. } => &[Status::Raised, Status::Acknowledged],
                _ => &[Status::Handled],
            }
        }
    };
    if !from.contains(&cur.status) {
        return Err(ApiError::new(
            Code::Conflict,
            format!("the alarm is {}: it cannot be {} now", cur.status.as_str(), req.name()),
        ));
    }
    let now = now_ms();
    let mut tx = store.begin().await?;
    // Guarded by the status read above: a concurrent step makes this update match nothing.
    let (sql, action) = match &req {
        StepRequest::Acknowledge { .. } => (
            "UPDATE alarms SET status = 'acknowledged', acknowledged_ms = $1, updated_ms = $1 WHERE id = $2 AND status = $3",
            None,
        ),
        StepRequest::Handle { action, .. } => (
            "UPDATE alarms SET status = 'handled', action = $4, handled_ms = $1, updated_ms = $1, \
             acknowledged_ms = COALESCE(acknowledged_ms, $1) WHERE id = $2 AND status = $3",
            Some(*action),
        ),
        StepRequest::Close { .. } => {
            ("UPDATE alarms SET status = 'closed', closed_ms = $1, updated_ms = $1 WHERE id = $2 AND status = $3", None)
        }
        StepRequest::Supervise { .. } => {
            ("UPDATE alarms SET supervised = 1, updated_ms = $1 WHERE id = $2 AND status = $3", None)
        }
    };
    let sql = store.sql(sql);
    let mut q = sqlx::query(&sql).bind(now).bind(id.to_string()).bind(cur.status.as_str());
    if let Some(a) = action {
        q = q.bind(a.as_str());
    }
    if q.execute(&mut *tx).await.map_err(StoreError::from)?.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "the alarm changed meanwhile: reload it"));
    }
    add_step(store, &mut tx, id, now, req.name(), &c.username, &note).await?;
    let mut detail = serde_json::json!({"kind": cur.kind, "org_id": cur.org_id, "from": cur.status.as_str()});
    if let Some(a) = action {
        detail["action"] = a.as_str().into();
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), &format!("alarm.{}", req.name()), "alarm", Some(id), Outcome::Success).detail(detail),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let alarm = get(store, c, id).await?;
    publish(bus, &alarm).await;
    Ok(alarm)
}

/// One row of the daily statistics: an organisation's alarms of one kind raised on one local day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DayStat {
    pub org_id: String,
    /// Local date (Asia/Shanghai), `YYYY-MM-DD`.
    pub day: String,
    pub kind: String,
    pub raised: i64,
    pub handled: i64,
    pub closed: i64,
    pub supervised: i64,
    /// Mean minutes from raised to handled, over those handled.
    pub mean_minutes_to_handle: Option<f64>,
}

/// Local days are China Standard Time, UTC+8 (no daylight saving since 1991).
const CST_OFFSET_MS: i64 = 8 * 3_600_000;
/// The most alarms one statistics query counts (a year of a large district's is far fewer).
const MAX_STATS_ROWS: i64 = 2_000_000;
/// The longest range a statistics query may cover.
pub const MAX_STATS_DAYS: i64 = 366;

/// Alarms raised in `[from, to)` in the caller's scope, counted per organisation, local day and
/// kind, with their handling.
pub async fn stats(store: &Store, c: &Caller, from_ms: i64, to_ms: i64) -> ApiResult<Vec<DayStat>> {
    require_read(c)?;
    if to_ms <= from_ms || to_ms - from_ms > MAX_STATS_DAYS * 86_400_000 {
        return Err(ApiError::field(
            Code::InvalidQuery,
            "to",
            format!("to must be after from, by at most {MAX_STATS_DAYS} days"),
        ));
    }
    let mut w = Where::new();
    w.scope(&c.scope, "org_id");
    w.and("started_ms >= ?", Arg::I(from_ms));
    w.and("started_ms < ?", Arg::I(to_ms));
    let (rows, _) = fetch_page(
        store,
        "org_id, kind, started_ms, handled_ms, closed_ms, supervised",
        "alarms",
        &w,
        "started_ms",
        MAX_STATS_ROWS,
        0,
    )
    .await?;
    let mut acc: std::collections::BTreeMap<(String, String, String), (DayStat, f64)> = Default::default();
    for r in &rows {
        let org: String = col(r, "org_id")?;
        let kind: String = col(r, "kind")?;
        let started: i64 = col(r, "started_ms")?;
        let handled: Option<i64> = col(r, "handled_ms")?;
        let closed: Option<i64> = col(r, "closed_ms")?;
        let supervised: i64 = col(r, "supervised")?;
        let day = ms_to_rfc3339(started + CST_OFFSET_MS)[..10].to_string();
        let (s, minutes) = acc.entry((org.clone(), day.clone(), kind.clone())).or_insert_with(|| {
            (
                DayStat {
                    org_id: org,
                    day,
                    kind,
                    raised: 0,
                    handled: 0,
                    closed: 0,
                    supervised: 0,
                    mean_minutes_to_handle: None,
                },
                0.0,
            )
        });
        s.raised += 1;
        if let Some(h) = handled {
            s.handled += 1;
            *minutes += (h - started).max(0) as f64 / 60_000.0;
        }
        s.closed += i64::from(closed.is_some());
        s.supervised += i64::from(supervised != 0);
    }
    Ok(acc
        .into_values()
        .map(|(mut s, minutes)| {
            if s.handled > 0 {
                s.mean_minutes_to_handle = Some((minutes / s.handled as f64 * 10.0).round() / 10.0);
            }
            s
        })
        .collect())
}

/// One organisation's alarms of one kind for an assessment period (考核): `raised` started in
/// the period; `handled` were handled in the period (whenever they started), taking
/// `handling_ms` from start to handling in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssessmentCount {
    pub org_id: String,
    pub kind: String,
    pub raised: i64,
    pub handled: i64,
    pub handling_ms: i64,
}

/// The alarm counts a domain's assessment figures need, per organisation of `org_ids` and kind,
/// for `[from_ms, to_ms)`: started in the period, and handled in it with their total handling
/// time. The caller has decided which organisations the asker may see; no caller is checked here.
pub async fn assessment_counts(
    store: &Store,
    domain: &str,
    org_ids: &[String],
    from_ms: i64,
    to_ms: i64,
) -> StoreResult<Vec<AssessmentCount>> {
    let mut acc: std::collections::BTreeMap<(String, String), AssessmentCount> = Default::default();
    // Bounded parameter lists: a district has hundreds of enterprises, not tens of thousands.
    for chunk in org_ids.chunks(500) {
        let list = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect::<Vec<_>>().join(", ");
        let raised = store
            .sql(&format!(
                "SELECT org_id, kind, COUNT(*) AS n, CAST(0 AS BIGINT) AS total FROM alarms WHERE domain = $1 \
                 AND started_ms >= $2 AND started_ms < $3 AND org_id IN ({list}) GROUP BY org_id, kind"
            ))
            .into_owned();
        let handled = store
            .sql(&format!(
                "SELECT org_id, kind, COUNT(*) AS n, CAST(COALESCE(SUM(CASE WHEN handled_ms > started_ms \
                 THEN handled_ms - started_ms ELSE 0 END), 0) AS BIGINT) AS total FROM alarms WHERE domain = $1 \
                 AND handled_ms >= $2 AND handled_ms < $3 AND org_id IN ({list}) GROUP BY org_id, kind"
            ))
            .into_owned();
        for (sql, is_handled) in [(raised, false), (handled, true)] {
            let mut q = sqlx::query(&sql).bind(domain.to_string()).bind(from_ms).bind(to_ms);
            for o in chunk {
                q = q.bind(o.clone());
            }
            for r in q.fetch_all(store.reader()).await? {
                let (org_id, kind): (String, String) = (col(&r, "org_id")?, col(&r, "kind")?);
                let n: i64 = col(&r, "n")?;
                let e = acc.entry((org_id.clone(), kind.clone())).or_insert_with(|| AssessmentCount {
                    org_id,
                    kind,
                    ..AssessmentCount::default()
                });
                if is_handled {
                    e.handled += n;
                    e.handling_ms += col::<i64>(&r, "total")?;
                } else {
                    e.raised += n;
                }
            }
        }
    }
    Ok(acc.into_values().collect())
}
