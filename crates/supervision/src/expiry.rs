//! The expiry watch (到期预警): every licence, certificate, inspection and insurance the bureau
//! keeps a date for, expired or ending within 30, 60 or 90 days, per enterprise; and the daily
//! notices that put them on the alarm desk.
//!
//! An item is named by a `kind` string and a subject (`subject_type`, `subject_id`,
//! `subject_label`), so that other records (practitioners' qualifications) join by adding a
//! kind and the query that lists them. Days left are counted from today in Beijing; the last
//! valid day has 0 left, the day after it −1.
//!
//! Notices: once per local day `run` raises an alarm (domain `supervision`) through
//! `alarms::service` for each item that entered the 30-day window (`expiry_30d`) or expired
//! (`expired`), owned by the enterprise so that it and the bureau see it on the desk. Each
//! notice raised is remembered in `supervision_expiry_notices` (kind, subject, valid until,
//! stage), so an item is noticed once per stage and a renewed date starts afresh; the alarm's
//! episode starts at the local midnight the stage began (plus the kind's ordinal in ms, so two
//! items of one subject ending the same day stay two alarms), so a repeated raise after a crash
//! updates the same alarm rather than adding one. When an item expires, its 30-day notice's
//! episode is ended.

use crate::access::{reaches, require_filter};
use crate::dates::{date_of, days_of, midnight_ms, today_days};
use crate::enterprises::DOMAIN;
use crate::vehicles::require_reader;
use alarms::model::{NewAlarm, Severity};
use kernel::access::{Caller, Role};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Query};
use kernel::orgs::OrgKind;
use kernel::store::{Arg, StoreError, StoreResult, Where, col, fetch_page, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The alarm desk's domain of the notices.
pub const ALARM_DOMAIN: &str = "supervision";
/// The notice kinds on the desk.
pub const NOTICE_30D: &str = "expiry_30d";
pub const NOTICE_EXPIRED: &str = "expired";
/// The windows the watch offers, in days.
pub const WINDOWS: [i64; 3] = [30, 60, 90];

/// The item kinds, in a fixed order (their ordinal separates episodes; append, never reorder).
pub const KINDS: [&str; 7] = [
    "enterprise_licence",
    "road_transport_certificate",
    "annual_inspection",
    "compulsory_insurance",
    "commercial_insurance",
    "qualification_certificate",
    "driving_licence",
];

/// What a person reads for a kind.
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "enterprise_licence" => "道路运输经营许可证",
        "road_transport_certificate" => "道路运输证",
        "annual_inspection" => "年审",
        "compulsory_insurance" => "交强险",
        "qualification_certificate" => "从业资格证",
        "driving_licence" => "机动车驾驶证",
        "commercial_insurance" => "商业险",
        _ => "证照",
    }
}

/// One dated item of the watch.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ExpiryItem {
    /// `enterprise_licence`, `road_transport_certificate`, `annual_inspection`,
    /// `compulsory_insurance`, `commercial_insurance`, `qualification_certificate`,
    /// `driving_licence`.
    pub kind: String,
    /// `enterprise`, `vehicle` or `practitioner`.
    pub subject_type: String,
    /// The organisation id, the vehicle id or the practitioner id.
    pub subject_id: String,
    /// The enterprise's name, the plate, or the practitioner's name.
    pub subject_label: String,
    /// The enterprise answerable for it.
    pub org_id: String,
    pub org_name: String,
    /// The licence or certificate number, when the item has one.
    pub reference: Option<String>,
    /// The last valid day, `YYYY-MM-DD`.
    pub valid_until: String,
    /// Days left from today (Beijing): negative once expired.
    pub days_left: i64,
}

/// Counts per enterprise (90-day horizon): `expired`, and those not expired with at most 30, 60
/// or 90 days left (each count includes the shorter windows').
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EnterpriseSummary {
    pub org_id: String,
    pub org_name: String,
    pub expired: i64,
    pub within_30: i64,
    pub within_60: i64,
    pub within_90: i64,
}

/// The watch: a page of items, most urgent first, and every enterprise's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiryReport {
    /// Today in Beijing, `YYYY-MM-DD`.
    pub today: String,
    pub within_days: i64,
    pub items: Vec<ExpiryItem>,
    /// Items in all (expired, or at most `within_days` left).
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Every transport enterprise in reach, by name, including those with nothing due.
    pub summary: Vec<EnterpriseSummary>,
}

/// Whose items: a caller's reach, or everyone's (the notice task).
enum Reach<'a> {
    Caller(&'a Caller, Option<&'a str>),
    All,
}

impl Reach<'_> {
    fn filter(&self, w: &mut Where, column: &str) {
        if let Reach::Caller(c, org) = self {
            w.scope(&c.scope, column);
            if c.role == Role::Operator {
                w.and(&format!("{column} = ?"), Arg::S(c.org_id.clone()));
            }
            if let Some(o) = org {
                w.and(&format!("{column} = ?"), Arg::S((*o).to_string()));
            }
        }
    }
}

/// Every item expired or ending within `horizon` days of `today`, in `reach`, most urgent first.
async fn items(st: &AppState, reach: &Reach<'_>, horizon: i64, today: i64) -> StoreResult<Vec<ExpiryItem>> {
    const ALL: i64 = 10_000_000;
    let cut = date_of(today + horizon);
    let mut out = Vec::new();
    let item = |kind: &str, typ: &str, id: &str, label: &str, org: (&str, &str), reference, until: &str| {
        let d = days_of(until)?;
        (d - today <= horizon).then(|| ExpiryItem {
            kind: kind.into(),
            subject_type: typ.into(),
            subject_id: id.into(),
            subject_label: label.into(),
            org_id: org.0.into(),
            org_name: org.1.into(),
            reference,
            valid_until: until.into(),
            days_left: d - today,
        })
    };

    let mut w = Where::new();
    reach.filter(&mut w, "e.org_id");
    w.and("e.licence_valid_until <= ?", Arg::S(cut.clone()));
    let (rows, _) = fetch_page(
        &st.store,
        "e.org_id AS org_id, o.name AS org_name, e.licence_no AS licence_no, e.licence_valid_until AS until",
        "supervision_enterprises e JOIN organisations o ON o.id = e.org_id",
        &w,
        "e.org_id",
        ALL,
        0,
    )
    .await?;
    for r in &rows {
        let (org, name): (String, String) = (col(r, "org_id")?, col(r, "org_name")?);
        let until: String = col(r, "until")?;
        out.extend(item(KINDS[0], "enterprise", &org, &name, (&org, &name), Some(col(r, "licence_no")?), &until));
    }

    let mut w = Where::new();
    reach.filter(&mut w, "v.org_id");
    w.and(
        "(s.certificate_valid_until <= ? OR s.inspection_valid_until <= ? OR s.compulsory_valid_until <= ? \
         OR s.commercial_valid_until <= ?)",
        Arg::S(cut.clone()),
    );
    let cut_p = cut;
    let (rows, _) = fetch_page(
        &st.store,
        "s.vehicle_id AS vehicle_id, v.plate AS plate, v.org_id AS org_id, o.name AS org_name, \
         s.certificate_no AS certificate_no, s.certificate_valid_until AS certificate_valid_until, \
         s.inspection_valid_until AS inspection_valid_until, s.compulsory_valid_until AS compulsory_valid_until, \
         s.commercial_valid_until AS commercial_valid_until",
        "supervision_vehicles s JOIN transport_vehicles v ON v.id = s.vehicle_id JOIN organisations o ON o.id = v.org_id",
        &w,
        "s.vehicle_id",
        ALL,
        0,
    )
    .await?;
    for r in &rows {
        let (id, plate): (String, String) = (col(r, "vehicle_id")?, col(r, "plate")?);
        let (org, name): (String, String) = (col(r, "org_id")?, col(r, "org_name")?);
        let org = (org.as_str(), name.as_str());
        let cert: String = col(r, "certificate_valid_until")?;
        out.extend(item(KINDS[1], "vehicle", &id, &plate, org, Some(col(r, "certificate_no")?), &cert));
        let insp: String = col(r, "inspection_valid_until")?;
        out.extend(item(KINDS[2], "vehicle", &id, &plate, org, None, &insp));
        let comp: String = col(r, "compulsory_valid_until")?;
        out.extend(item(KINDS[3], "vehicle", &id, &plate, org, None, &comp));
        if let Some(c) = col::<Option<String>>(r, "commercial_valid_until")? {
            out.extend(item(KINDS[4], "vehicle", &id, &plate, org, None, &c));
        }
    }
    // Practitioners: the qualification certificate (从业资格证) and the driving licence.
    let mut w = Where::new();
    reach.filter(&mut w, "p.org_id");
    w.and("(p.qualification_valid_until <= ? OR p.licence_valid_until <= ?)", Arg::S(cut_p));
    let (rows, _) = fetch_page(
        &st.store,
        "p.id AS id, p.name AS name, p.org_id AS org_id, o.name AS org_name, p.qualification_no AS qualification_no, \
         p.qualification_valid_until AS qualification_valid_until, p.licence_valid_until AS licence_valid_until",
        "supervision_practitioners p JOIN organisations o ON o.id = p.org_id",
        &w,
        "p.id",
        ALL,
        0,
    )
    .await?;
    for r in &rows {
        let (id, name): (String, String) = (col(r, "id")?, col(r, "name")?);
        let (org, org_name): (String, String) = (col(r, "org_id")?, col(r, "org_name")?);
        let org = (org.as_str(), org_name.as_str());
        let q: String = col(r, "qualification_valid_until")?;
        out.extend(item(KINDS[5], "practitioner", &id, &name, org, col(r, "qualification_no")?, &q));
        if let Some(l) = col::<Option<String>>(r, "licence_valid_until")? {
            out.extend(item(KINDS[6], "practitioner", &id, &name, org, None, &l));
        }
    }
    out.sort_by(|a, b| {
        (a.days_left, ordinal(&a.kind), &a.subject_label, &a.subject_id).cmp(&(
            b.days_left,
            ordinal(&b.kind),
            &b.subject_label,
            &b.subject_id,
        ))
    });
    Ok(out)
}

fn ordinal(kind: &str) -> i64 {
    KINDS.iter().position(|k| *k == kind).map_or(KINDS.len() as i64, |p| p as i64)
}

/// The watch's query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpiryQuery {
    /// 30, 60 or 90 (default 90): items with at most this many days left, and the expired.
    pub within_days: Option<i64>,
    /// One enterprise.
    pub org_id: Option<String>,
    /// One kind of item (`annual_inspection`, …); the summary still counts every kind.
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The watch for a caller: transport regulators see their domain's enterprises, operators their
/// own.
pub async fn report(st: &AppState, c: &Caller, q: &ExpiryQuery) -> ApiResult<ExpiryReport> {
    require_reader(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let within = q.within_days.unwrap_or(90);
    if !WINDOWS.contains(&within) {
        return Err(ApiError::field(Code::InvalidQuery, "within_days", "30, 60 or 90"));
    }
    if let Some(k) = &q.kind {
        if !KINDS.contains(&k.as_str()) {
            return Err(ApiError::field(Code::InvalidQuery, "kind", format!("one of {}", KINDS.join(", "))));
        }
    }
    if let Some(o) = &q.org_id {
        require_filter(c, o)?;
    }
    let today = today_days();
    let all = items(st, &Reach::Caller(c, q.org_id.as_deref()), 90, today).await?;

    let (orgs, _) = kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut summary = Vec::new();
    for o in orgs {
        if !reaches(c, &o.id)
            || q.org_id.as_deref().is_some_and(|f| f != o.id)
            || st.orgs.domain_of(&st.store, &o.id).await?.as_deref() != Some(DOMAIN)
        {
            continue;
        }
        let mine = all.iter().filter(|i| i.org_id == o.id);
        let count = |n: i64| mine.clone().filter(|i| (0..=n).contains(&i.days_left)).count() as i64;
        summary.push(EnterpriseSummary {
            expired: mine.clone().filter(|i| i.days_left < 0).count() as i64,
            within_30: count(30),
            within_60: count(60),
            within_90: count(90),
            org_id: o.id,
            org_name: o.name,
        });
    }
    summary.sort_by(|a, b| a.org_name.cmp(&b.org_name));

    let chosen: Vec<ExpiryItem> =
        all.into_iter().filter(|i| i.days_left <= within && q.kind.as_deref().is_none_or(|k| k == i.kind)).collect();
    let total = chosen.len() as i64;
    let items = chosen.into_iter().skip(offset as usize).take(limit as usize).collect();
    Ok(ExpiryReport { today: date_of(today), within_days: within, items, total, limit, offset, summary })
}

// ------------------------------------------------------------------------------------ notices

/// Local midnight (Beijing) at the start of day `days`, in ms UTC.
fn severity(kind: &str, stage: &str) -> Severity {
    match (stage, kind) {
        (NOTICE_30D, _) => Severity::Notice,
        (_, "commercial_insurance") => Severity::Minor,
        _ => Severity::Major,
    }
}

/// The alarm episode of an item's stage: (started_ms) as described in the module doc.
fn episode_start(item: &ExpiryItem, stage: &str) -> Option<i64> {
    let until = days_of(&item.valid_until)?;
    let day = if stage == NOTICE_EXPIRED { until + 1 } else { until - 30 };
    Some(midnight_ms(day) + ordinal(&item.kind))
}

async fn noticed(st: &AppState, item: &ExpiryItem, stage: &str) -> StoreResult<bool> {
    let r = sqlx::query(&st.store.sql(
        "SELECT 1 AS one FROM supervision_expiry_notices WHERE kind = $1 AND subject_id = $2 AND valid_until = $3 \
         AND stage = $4",
    ))
    .bind(item.kind.clone())
    .bind(item.subject_id.clone())
    .bind(item.valid_until.clone())
    .bind(stage.to_string())
    .fetch_optional(st.store.reader())
    .await?;
    Ok(r.is_some())
}

/// Raises the notices due on `today` (days since 1970-01-01, Beijing) for every enterprise:
/// each item that entered the 30-day window or expired and was not noticed in that stage yet.
/// Returns how many were raised.
pub async fn notify(st: &AppState, today: i64) -> anyhow::Result<usize> {
    let due = items(st, &Reach::All, 30, today).await?;
    let mut raised = 0;
    for item in due {
        let stage = if item.days_left < 0 { NOTICE_EXPIRED } else { NOTICE_30D };
        if noticed(st, &item, stage).await? {
            continue;
        }
        let Some(started_ms) = episode_start(&item, stage) else { continue };
        let now = now_ms();
        let what = kind_name(&item.kind);
        let new = NewAlarm {
            domain: ALARM_DOMAIN.into(),
            kind: stage.into(),
            severity: severity(&item.kind, stage),
            subject_type: item.subject_type.clone(),
            subject_id: item.subject_id.clone(),
            subject_label: format!("{}（{what}）", item.subject_label),
            org_id: item.org_id.clone(),
            started_ms,
            at_ms: now,
            rule_version: 1,
            details: serde_json::json!({
                "item": item.kind, "valid_until": item.valid_until, "days_left": item.days_left,
                "reference": item.reference,
            }),
            evidence: serde_json::json!([]),
        };
        let (alarm, _) = alarms::service::raise(&st.store, &st.bus, &new).await?;
        let mut tx = st.store.begin().await?;
        sqlx::query(&st.store.sql(
            "INSERT INTO supervision_expiry_notices (kind, subject_id, valid_until, stage, alarm_id, raised_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(item.kind.clone())
        .bind(item.subject_id.clone())
        .bind(item.valid_until.clone())
        .bind(stage.to_string())
        .bind(alarm.id.clone())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        raised += 1;
        if stage == NOTICE_EXPIRED {
            if let Some(s) = episode_start(&item, NOTICE_30D) {
                alarms::service::end(&st.store, &st.bus, ALARM_DOMAIN, NOTICE_30D, &item.subject_id, s, now).await?;
            }
        }
    }
    if raised > 0 {
        tracing::info!(raised, "expiry notices raised");
    }
    Ok(raised)
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_expiry))
}

/// The expiry watch: enterprise licences, road transport certificates, annual inspections and
/// insurances expired or ending within 30, 60 or 90 days, most urgent first, with each
/// enterprise's counts (a transport regulator: the domain's enterprises; an operator: its own).
#[utoipa::path(get, path = "/api/supervision/expiry", tag = "supervision", params(ExpiryQuery),
    responses((status = 200, body = ExpiryReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_expiry(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ExpiryQuery>,
) -> ApiResult<axum::Json<ExpiryReport>> {
    Ok(axum::Json(report(&st, &c, &q).await?))
}
