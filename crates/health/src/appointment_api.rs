//! `/api/health/schedules`, `/api/health/slots`, `/api/health/appointments`: booking (预约挂号)
//! with the rules of `appointment`.
//!
//! An institution's clinicians publish schedules (a department's or a practitioner's) and cut
//! them into slots; anyone signed in reads the schedules and free slots (they hold no personal
//! data). A resident books for themselves; a clinician books for a patient in care at their
//! own institution (a family doctor booking the hospital for a referred patient). The slot's
//! capacity, the overlap and daily limits and the no-show suspension are checked in the
//! booking's transaction, so that two requests racing for the last place get one place and one
//! 409. The patient's side cancels or moves; the institution records arrival, the visit, a
//! no-show. Every booking and step is audited against the patient; the resident reads their
//! own. `…/{id}/fhir` renders the appointment as FHIR R4 (Appointment, Slot, Schedule).

use crate::appointment::{self, Action, DAY_MS, Refusal, Session, Side, State};
use crate::health_api::{health_institution, records};
use crate::records::Keys;
use axum::extract::State as AxState;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schedules, create_schedule))
        .routes(routes!(add_slots))
        .routes(routes!(slots))
        .routes(routes!(appointments, book))
        .routes(routes!(read))
        .routes(routes!(take_step))
        .routes(routes!(read_fhir))
        .layer(axum::Extension(keys))
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, msg)
}

fn conflict(r: Refusal) -> ApiError {
    ApiError::new(Code::Conflict, r.to_string())
}

fn text(field: &str, s: &str, max: usize) -> ApiResult<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(bad(field, format!("1 to {max} characters, no control characters")));
    }
    Ok(t.to_string())
}

async fn refuse(st: &AppState, c: &Caller, action: &str, target: Option<&str>, why: &str, msg: &str) -> ApiError {
    crate::health_api::refuse(st, c, action, "appointment", target, why, msg).await
}

// ---------------------------------------------------------------- schedules

/// A schedule (出诊安排, FHIR Schedule): a department's or a practitioner's.
#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    pub id: String,
    pub org_id: String,
    pub org_name: Option<String>,
    pub department: String,
    pub practitioner_id: Option<String>,
    pub practitioner_name: Option<String>,
    pub name: String,
    /// 普通门诊, 专家门诊, 检查 (B 超, 心电图…).
    pub service: String,
    pub active: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    pub department: String,
    pub name: String,
    pub service: Option<String>,
    /// A clinician of the caller's institution; none for a department's schedule.
    pub practitioner_id: Option<String>,
}

const SCHEDULE_COLUMNS: &str = "s.id, s.org_id, s.department, s.practitioner_id, s.name, s.service, s.active, \
    u.display_name AS practitioner_name";

async fn schedule_view(st: &AppState, r: &sqlx::any::AnyRow) -> ApiResult<Schedule> {
    let org_id: String = col(r, "org_id")?;
    Ok(Schedule {
        org_name: kernel::orgs::get(&st.store, &org_id).await?.map(|o| o.name),
        id: col(r, "id")?,
        org_id,
        department: col(r, "department")?,
        practitioner_id: col(r, "practitioner_id")?,
        practitioner_name: col(r, "practitioner_name")?,
        name: col(r, "name")?,
        service: col(r, "service")?,
        active: col::<i64>(r, "active")? == 1,
    })
}

async fn schedule_row(st: &AppState, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&st.store.sql(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM health_schedules s LEFT JOIN users u ON u.id = s.practitioner_id WHERE s.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(st.store.reader())
    .await
    .map_err(StoreError::from)?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduleFilter {
    pub org_id: Option<String>,
    pub department: Option<String>,
}

/// The active schedules, of one institution or department if asked: a public directory.
#[utoipa::path(get, path = "/api/health/schedules", tag = "health", params(ScheduleFilter),
    responses((status = 200, body = Vec<Schedule>)), security(("session" = []), ("bearer" = [])))]
async fn schedules(
    AxState(st): AxState<AppState>,
    Auth(_c): Auth,
    Query(f): Query<ScheduleFilter>,
) -> ApiResult<axum::Json<Vec<Schedule>>> {
    let rows = sqlx::query(&st.store.sql(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM health_schedules s LEFT JOIN users u ON u.id = s.practitioner_id \
         WHERE s.active = 1 AND ($1 = '' OR s.org_id = $1) AND ($2 = '' OR s.department = $2) \
         ORDER BY s.org_id, s.department, s.name LIMIT 500"
    )))
    .bind(f.org_id.unwrap_or_default())
    .bind(f.department.unwrap_or_default())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(schedule_view(&st, r).await?);
    }
    Ok(axum::Json(out))
}

/// Publishes a schedule of the caller's institution.
#[utoipa::path(post, path = "/api/health/schedules", tag = "health", request_body = NewSchedule,
    responses((status = 201, body = Schedule), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_schedule(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    kernel::http::Json(b): kernel::http::Json<NewSchedule>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Schedule>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(publish_schedule(&st, &c, b).await?)))
}

/// The service behind `POST /api/health/schedules` (the demo's seed uses it too).
pub async fn publish_schedule(st: &AppState, c: &Caller, b: NewSchedule) -> ApiResult<Schedule> {
    if c.role != Role::Clinician || health_institution(st, &c.org_id).await?.is_none() {
        return Err(refuse(
            st,
            c,
            "health.schedule.create",
            None,
            "not_institution_staff",
            "a health institution's clinicians publish its schedules (由医疗机构发布)",
        )
        .await);
    }
    let department = text("department", &b.department, 50)?;
    let name = text("name", &b.name, 100)?;
    let service = text("service", b.service.as_deref().unwrap_or("普通门诊 General clinic"), 50)?;
    if let Some(p) = &b.practitioner_id {
        let u = kernel::users::by_id(&st.store, p).await?;
        if !u.is_some_and(|u| u.org_id == c.org_id && u.role == Role::Clinician) {
            return Err(bad("practitioner_id", "a clinician of your institution (本机构医生)"));
        }
    }
    let dup = sqlx::query(
        &st.store.sql("SELECT 1 AS one FROM health_schedules WHERE org_id = $1 AND department = $2 AND name = $3"),
    )
    .bind(c.org_id.clone())
    .bind(department.clone())
    .bind(name.clone())
    .fetch_optional(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    if dup.is_some() {
        return Err(ApiError::new(
            Code::Conflict,
            "a schedule of that name exists in the department (同名出诊安排已存在)",
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO health_schedules (id, org_id, department, practitioner_id, name, service, active, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
    ))
    .bind(id.clone())
    .bind(c.org_id.clone())
    .bind(department)
    .bind(b.practitioner_id.clone())
    .bind(name)
    .bind(service)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let ev = Event::new(Actor::of(c), "health.schedule.create", "schedule", Some(&id), Outcome::Success);
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = schedule_row(st, &id).await?.ok_or_else(|| ApiError::not_found("schedule"))?;
    schedule_view(st, &row).await
}

/// Slots to cut from a schedule: the same session on consecutive days.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSlots {
    /// The first day, `YYYY-MM-DD` (Beijing), today to 60 days ahead.
    pub from: String,
    /// 1 to 28 days.
    pub days: i64,
    /// `HH:MM` Beijing.
    pub start: String,
    pub end: String,
    /// Minutes per slot, 5 to 240.
    pub minutes: i64,
    /// Patients per slot, 1 to 50 (default 1).
    pub capacity: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotsAdded {
    pub created: usize,
    /// Slots that already existed at those times (left as they were).
    pub existing: usize,
}

/// Cuts slots into one of the caller's institution's schedules (at most 500 a request).
#[utoipa::path(post, path = "/api/health/schedules/{id}/slots", tag = "health", params(("id" = String, Path)),
    request_body = NewSlots,
    responses((status = 201, body = SlotsAdded), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn add_slots(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<NewSlots>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<SlotsAdded>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(cut_slots(&st, &c, &id, b).await?)))
}

/// The service behind `POST /api/health/schedules/{id}/slots`.
pub async fn cut_slots(st: &AppState, c: &Caller, id: &str, b: NewSlots) -> ApiResult<SlotsAdded> {
    let Some(row) = schedule_row(st, id).await? else { return Err(ApiError::not_found("schedule")) };
    if c.role != Role::Clinician || col::<String>(&row, "org_id")? != c.org_id {
        // Another institution's schedule is one that does not exist, for the caller.
        let ev = Event::new(Actor::of(c), "health.schedule.slots", "schedule", Some(id), Outcome::Denied)
            .detail(json!({ "refusal": "not_your_institution" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError { audited: true, ..ApiError::not_found("schedule") });
    }
    let first = crate::contract::parse_day(&b.from).ok_or_else(|| bad("from", "a date YYYY-MM-DD"))?;
    let today = crate::contract::today_date();
    if first < today || (first - today).whole_days() > 60 {
        return Err(bad("from", "today to 60 days ahead (今天至 60 天内)"));
    }
    if !(1..=28).contains(&b.days) {
        return Err(bad("days", "1 to 28"));
    }
    let start_min = appointment::parse_clock(&b.start).ok_or_else(|| bad("start", "HH:MM"))?;
    let end_min = appointment::parse_clock(&b.end).ok_or_else(|| bad("end", "HH:MM"))?;
    if end_min <= start_min {
        return Err(bad("end", "after the start"));
    }
    if !(5..=240).contains(&b.minutes) {
        return Err(bad("minutes", "5 to 240"));
    }
    let capacity = b.capacity.unwrap_or(1);
    if !(1..=50).contains(&capacity) {
        return Err(bad("capacity", "1 to 50"));
    }
    let midnight = first.midnight().assume_offset(crate::fhir::datetime::BEIJING).unix_timestamp() * 1000;
    let cut = appointment::cut(midnight, b.days, Session { start_min, end_min, minutes: b.minutes });
    if cut.is_empty() {
        return Err(bad("minutes", "longer than the session"));
    }
    if cut.len() > appointment::MAX_SLOTS {
        return Err(bad("days", format!("{} slots: at most {} a request", cut.len(), appointment::MAX_SLOTS)));
    }
    let mut tx = st.store.begin().await?;
    let mut created = 0;
    for (s, e) in &cut {
        let done = sqlx::query(&st.store.sql(
            "INSERT INTO health_slots (id, schedule_id, org_id, start_ms, end_ms, capacity, booked) \
             VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT DO NOTHING",
        ))
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id.to_string())
        .bind(c.org_id.clone())
        .bind(*s)
        .bind(*e)
        .bind(capacity)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        created += done.rows_affected() as usize;
    }
    let ev = Event::new(Actor::of(c), "health.schedule.slots", "schedule", Some(id), Outcome::Success)
        .detail(json!({ "created": created, "from": b.from, "days": b.days }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(SlotsAdded { created, existing: cut.len() - created })
}

// ---------------------------------------------------------------- slots

/// A slot (号源, FHIR Slot).
#[derive(Debug, Serialize, ToSchema)]
pub struct Slot {
    pub id: String,
    pub schedule_id: String,
    pub org_id: String,
    pub start: String,
    pub end: String,
    pub capacity: i64,
    pub booked: i64,
    /// free or busy (FHIR Slot.status).
    pub status: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotFilter {
    pub schedule_id: Option<String>,
    pub org_id: Option<String>,
    /// `YYYY-MM-DD` (Beijing): that day's slots; default from now for 14 days.
    pub day: Option<String>,
    /// Only slots with a place left that may still be booked.
    pub free: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn slot_view(r: &sqlx::any::AnyRow) -> Result<Slot, StoreError> {
    let (capacity, booked): (i64, i64) = (col(r, "capacity")?, col(r, "booked")?);
    Ok(Slot {
        id: col(r, "id")?,
        schedule_id: col(r, "schedule_id")?,
        org_id: col(r, "org_id")?,
        start: ms_to_rfc3339(col(r, "start_ms")?),
        end: ms_to_rfc3339(col(r, "end_ms")?),
        capacity,
        booked,
        status: if booked >= capacity { "busy" } else { "free" }.into(),
    })
}

/// Slots of a schedule or institution, by day: a public directory (no patient in it).
#[utoipa::path(get, path = "/api/health/slots", tag = "health", params(SlotFilter),
    responses((status = 200, body = Paged<Slot>), (status = 400, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn slots(
    AxState(st): AxState<AppState>,
    Auth(_c): Auth,
    Query(f): Query<SlotFilter>,
) -> ApiResult<axum::Json<Paged<Slot>>> {
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    if f.schedule_id.is_none() && f.org_id.is_none() {
        return Err(ApiError::field(Code::InvalidQuery, "schedule_id", "name a schedule_id or an org_id"));
    }
    let now = now_ms();
    let (from, to) = match &f.day {
        Some(d) => {
            let day = crate::contract::parse_day(d)
                .ok_or_else(|| ApiError::field(Code::InvalidQuery, "day", "a date YYYY-MM-DD"))?;
            let m = day.midnight().assume_offset(crate::fhir::datetime::BEIJING).unix_timestamp() * 1000;
            (m, m + DAY_MS)
        }
        None => (now, now + appointment::WINDOW_DAYS * DAY_MS),
    };
    let free = f.free.unwrap_or(false);
    let (lo, hi) = if free {
        (from.max(now + appointment::MIN_LEAD_MS), to.min(now + appointment::WINDOW_DAYS * DAY_MS))
    } else {
        (from, to)
    };
    let wh = "($1 = '' OR schedule_id = $1) AND ($2 = '' OR org_id = $2) AND start_ms >= $3 AND start_ms < $4 \
              AND ($5 = 0 OR booked < capacity)";
    let bind = |sql: String| {
        let (s, o) = (f.schedule_id.clone().unwrap_or_default(), f.org_id.clone().unwrap_or_default());
        let st = &st;
        async move {
            sqlx::query(&st.store.sql(&sql))
                .bind(s)
                .bind(o)
                .bind(lo)
                .bind(hi)
                .bind(i64::from(free))
                .fetch_all(st.store.reader())
                .await
                .map_err(StoreError::from)
        }
    };
    let rows = bind(format!(
        "SELECT id, schedule_id, org_id, start_ms, end_ms, capacity, booked FROM health_slots WHERE {wh} \
         ORDER BY start_ms, schedule_id LIMIT {limit} OFFSET {offset}"
    ))
    .await?;
    let n = bind(format!("SELECT COUNT(*) AS n FROM health_slots WHERE {wh}")).await?;
    let total = n.first().map(|r| col::<i64>(r, "n")).transpose()?.unwrap_or(0);
    let items = rows.iter().map(slot_view).collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

// ---------------------------------------------------------------- appointments

/// An appointment (预约, FHIR Appointment).
#[derive(Debug, Serialize, ToSchema)]
pub struct Appointment {
    pub id: String,
    pub slot_id: String,
    pub schedule_id: String,
    pub schedule_name: String,
    pub department: String,
    pub org_id: String,
    pub org_name: Option<String>,
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub start: String,
    pub end: String,
    pub state: State,
    /// The organisation of whoever booked (the resident's own booking: none).
    pub booked_by_org: Option<String>,
    pub booked: String,
    pub reason: Option<String>,
    pub referral_id: Option<String>,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppointment {
    pub slot_id: String,
    /// A clinician books for a patient in care at their institution; a resident for themselves
    /// (omit it).
    pub patient_id: Option<String>,
    /// Up to 200 characters (encrypted).
    pub reason: Option<String>,
    /// The referral it serves (its receiving institution is the slot's).
    pub referral_id: Option<String>,
}

const APPOINTMENT_COLUMNS: &str = "a.id, a.slot_id, a.org_id, a.patient_id, a.start_ms, a.end_ms, a.state, \
    a.booked_by, a.booked_org, a.booked_ms, a.reason_enc, a.referral_id, a.version, s.schedule_id, \
    h.name AS schedule_name, h.department";
const APPOINTMENT_FROM: &str = "health_appointments a JOIN health_slots s ON s.id = a.slot_id \
    JOIN health_schedules h ON h.id = s.schedule_id";

async fn appointment_row(st: &AppState, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&st.store.sql(&format!("SELECT {APPOINTMENT_COLUMNS} FROM {APPOINTMENT_FROM} WHERE a.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

async fn view(st: &AppState, r: &crate::records::Records, row: &sqlx::any::AnyRow) -> ApiResult<Appointment> {
    let org_id: String = col(row, "org_id")?;
    let patient_id: String = col(row, "patient_id")?;
    let reason = match col::<Option<Vec<u8>>>(row, "reason_enc")? {
        Some(b) => Some(st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt("an appointment's reason".into()))?),
        None => None,
    };
    let state: String = col(row, "state")?;
    let booked_org: String = col(row, "booked_org")?;
    Ok(Appointment {
        id: col(row, "id")?,
        slot_id: col(row, "slot_id")?,
        schedule_id: col(row, "schedule_id")?,
        schedule_name: col(row, "schedule_name")?,
        department: col(row, "department")?,
        org_name: kernel::orgs::get(&st.store, &org_id).await?.map(|o| o.name),
        org_id,
        patient_name: r.patient_name(&patient_id).await?,
        patient_id,
        start: ms_to_rfc3339(col(row, "start_ms")?),
        end: ms_to_rfc3339(col(row, "end_ms")?),
        state: State::parse(&state).ok_or_else(|| StoreError::Corrupt("an appointment's state".into()))?,
        booked_by_org: (!booked_org.is_empty()).then_some(booked_org),
        booked: ms_to_rfc3339(col(row, "booked_ms")?),
        reason,
        referral_id: col(row, "referral_id")?,
        version: col(row, "version")?,
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The booking rules that need the store, inside the booking's transaction: the patient's
/// no-shows, overlapping appointments, the daily limit; then a place taken in the slot.
async fn take_place(
    st: &AppState,
    tx: &mut Tx,
    patient: &str,
    slot_id: &str,
    own_booking: bool,
    except: Option<&str>,
    now: i64,
) -> ApiResult<(String, i64, i64)> {
    let slot = sqlx::query(&st.store.sql(&format!(
        "SELECT org_id, start_ms, end_ms, capacity, booked FROM health_slots WHERE id = $1{}",
        st.store.for_update()
    )))
    .bind(slot_id.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    let Some(slot) = slot else { return Err(bad("slot_id", "no such slot (号源不存在)")) };
    let (org, start, end): (String, i64, i64) = (col(&slot, "org_id")?, col(&slot, "start_ms")?, col(&slot, "end_ms")?);
    appointment::bookable(now, start).map_err(conflict)?;
    if own_booking {
        let n = sqlx::query(&st.store.sql(
            "SELECT COUNT(*) AS n FROM health_appointments WHERE patient_id = $1 AND state = 'noshow' AND start_ms >= $2",
        ))
        .bind(patient.to_string())
        .bind(now - appointment::NO_SHOW_WINDOW_DAYS * DAY_MS)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::from)?;
        if col::<i64>(&n, "n")? >= appointment::NO_SHOW_LIMIT {
            return Err(conflict(Refusal::Suspended));
        }
    }
    let held = sqlx::query(&st.store.sql(
        "SELECT id, start_ms, end_ms FROM health_appointments WHERE patient_id = $1 AND state = 'booked' \
         AND start_ms < $2 AND end_ms > $3",
    ))
    .bind(patient.to_string())
    .bind(end + DAY_MS)
    .bind(start - DAY_MS)
    .fetch_all(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    let mut same_day = 0;
    for h in &held {
        if except == Some(col::<String>(h, "id")?.as_str()) {
            continue;
        }
        let (s, e): (i64, i64) = (col(h, "start_ms")?, col(h, "end_ms")?);
        if s < end && e > start {
            return Err(conflict(Refusal::Overlap));
        }
        same_day += i64::from(appointment::beijing_day(s) == appointment::beijing_day(start));
    }
    if same_day >= appointment::DAILY_LIMIT {
        return Err(conflict(Refusal::DailyLimit));
    }
    let taken =
        sqlx::query(&st.store.sql("UPDATE health_slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity"))
            .bind(slot_id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    if taken.rows_affected() == 0 {
        return Err(conflict(Refusal::Full));
    }
    Ok((org, start, end))
}

/// Whose patient the caller books for: a resident their own record; a clinician a patient in
/// care at their institution.
async fn patient_for(st: &AppState, keys: &Keys, c: &Caller, asked: Option<&str>) -> ApiResult<String> {
    let r = records(st, keys);
    match c.role {
        Role::Resident => {
            let own = crate::fhir_api::own_patient(&r, c).await?;
            match (own, asked) {
                (Some(me), None) => Ok(me),
                (Some(me), Some(p)) if p == me => Ok(me),
                (None, _) => Err(refuse(
                    st,
                    c,
                    "health.appointment.book",
                    None,
                    "no_record",
                    "no health record is linked to your account (未关联健康档案)",
                )
                .await),
                _ => Err(refuse(
                    st,
                    c,
                    "health.appointment.book",
                    asked,
                    "not_own",
                    "a resident books for themselves (只能为本人预约)",
                )
                .await),
            }
        }
        Role::Clinician => {
            let Some(p) = asked else { return Err(bad("patient_id", "the patient booked for")) };
            if !r.exists("Patient", p).await? {
                return Err(ApiError::not_found("patient"));
            }
            if !r.in_care(p, &c.org_id, crate::fhir_api::IN_CARE_WINDOW_MS).await? {
                return Err(refuse(
                    st,
                    c,
                    "health.appointment.book",
                    Some(p),
                    "not_in_care",
                    "the patient is not in care at your institution (非本机构患者)",
                )
                .await);
            }
            Ok(p.to_string())
        }
        _ => Err(refuse(
            st,
            c,
            "health.appointment.book",
            asked,
            "not_allowed",
            "residents and clinicians book (居民或医生预约)",
        )
        .await),
    }
}

/// Books a slot.
#[utoipa::path(post, path = "/api/health/appointments", tag = "health", request_body = NewAppointment,
    responses((status = 201, body = Appointment), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn book(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    kernel::http::Json(b): kernel::http::Json<NewAppointment>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Appointment>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(book_slot(&st, &keys, &c, b, now_ms()).await?)))
}

/// The service behind `POST /api/health/appointments`, at `now`.
pub async fn book_slot(st: &AppState, keys: &Keys, c: &Caller, b: NewAppointment, now: i64) -> ApiResult<Appointment> {
    let patient = patient_for(st, keys, c, b.patient_id.as_deref()).await?;
    let reason = match b.reason.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(text("reason", s, 200)?),
        None => None,
    };
    if let Some(rid) = &b.referral_id {
        let ok = sqlx::query(&st.store.sql("SELECT to_org FROM health_referrals WHERE id = $1 AND patient_id = $2"))
            .bind(rid.clone())
            .bind(patient.clone())
            .fetch_optional(st.store.reader())
            .await
            .map_err(StoreError::from)?;
        if ok.is_none() {
            return Err(bad("referral_id", "a referral of this patient"));
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = st.store.begin().await?;
    let own = c.role == Role::Resident;
    let (org, start, end) = take_place(st, &mut tx, &patient, &b.slot_id, own, None, now).await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO health_appointments (id, slot_id, org_id, patient_id, start_ms, end_ms, state, booked_by, booked_org, \
         booked_ms, reason_enc, referral_id, updated_ms, version) VALUES ($1, $2, $3, $4, $5, $6, 'booked', $7, $8, $9, $10, $11, $9, 1)",
    ))
    .bind(id.clone())
    .bind(b.slot_id.clone())
    .bind(org)
    .bind(patient.clone())
    .bind(start)
    .bind(end)
    .bind(c.user_id.clone())
    .bind(if own { String::new() } else { c.org_id.clone() })
    .bind(now)
    .bind(reason.as_deref().map(|r| st.cipher.encrypt(r)))
    .bind(b.referral_id.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let ev = Event::new(Actor::of(c), "health.appointment.book", "Patient", Some(&patient), Outcome::Success)
        .detail(json!({ "appointment": id, "slot": b.slot_id }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = appointment_row(st, &id).await?.ok_or_else(|| ApiError::not_found("appointment"))?;
    view(st, &records(st, keys), &row).await
}

/// The caller's side of an appointment, or the 404 of one that does not exist for them.
async fn side_of(st: &AppState, keys: &Keys, c: &Caller, row: &sqlx::any::AnyRow, action: &str) -> ApiResult<Side> {
    let org: String = col(row, "org_id")?;
    let patient: String = col(row, "patient_id")?;
    let booked_org: String = col(row, "booked_org")?;
    let id: String = col(row, "id")?;
    match c.role {
        Role::Clinician if c.org_id == org => return Ok(Side::Institution),
        Role::Clinician if c.org_id == booked_org => return Ok(Side::Patient),
        Role::Resident => {
            let own = crate::fhir_api::own_patient(&records(st, keys), c).await?;
            if own.as_deref() == Some(patient.as_str()) {
                return Ok(Side::Patient);
            }
        }
        _ => {}
    }
    let ev = Event::new(Actor::of(c), action, "appointment", Some(&id), Outcome::Denied)
        .detail(json!({ "refusal": "not_a_party" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError { audited: true, ..ApiError::not_found("appointment") })
}

/// One appointment, to its patient, the institution and whoever booked it.
#[utoipa::path(get, path = "/api/health/appointments/{id}", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = Appointment), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn read(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Appointment>> {
    Ok(axum::Json(readable(&st, &keys, &c, &id).await?))
}

/// An appointment read by one of its parties (the read audited), or the 404.
async fn readable(st: &AppState, keys: &Keys, c: &Caller, id: &str) -> ApiResult<Appointment> {
    let Some(row) = appointment_row(st, id).await? else { return Err(ApiError::not_found("appointment")) };
    side_of(st, keys, c, &row, "health.appointment.read").await?;
    let a = view(st, &records(st, keys), &row).await?;
    let ev = Event::new(Actor::of(c), "health.appointment.read", "Patient", Some(&a.patient_id), Outcome::Success)
        .detail(json!({ "appointment": id }));
    audit::record(&st.store, ev).await?;
    Ok(a)
}

/// The appointment as FHIR R4: a Bundle of the Appointment, its Slot and Schedule.
#[utoipa::path(get, path = "/api/health/appointments/{id}/fhir", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn read_fhir(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let a = readable(&st, &keys, &c, &id).await?;
    let sched = schedule_row(&st, &a.schedule_id).await?.ok_or_else(|| ApiError::not_found("schedule"))?;
    let s = schedule_view(&st, &sched).await?;
    Ok(axum::Json(fhir_bundle(&a, &s)))
}

/// The FHIR R4 rendering of an appointment.
pub fn fhir_bundle(a: &Appointment, s: &Schedule) -> Value {
    let mut actors = vec![json!({ "reference": format!("Organization/{}", s.org_id), "display": s.org_name })];
    if let Some(p) = &s.practitioner_id {
        actors.push(json!({ "reference": format!("Practitioner/{p}"), "display": s.practitioner_name }));
    }
    let schedule = json!({
        "resourceType": "Schedule", "id": s.id, "active": s.active,
        "serviceType": [{ "text": s.service }],
        "specialty": [{ "text": s.department }],
        "actor": actors,
        "comment": s.name,
    });
    let slot = json!({
        "resourceType": "Slot", "id": a.slot_id,
        "schedule": { "reference": format!("Schedule/{}", s.id) },
        "status": if a.state == State::Booked || a.state == State::Arrived { "busy" } else { "free" },
        "start": a.start, "end": a.end,
    });
    let participant_status = match a.state {
        State::Cancelled => "declined",
        _ => "accepted",
    };
    let mut participants = vec![
        json!({ "actor": { "reference": format!("Patient/{}", a.patient_id), "display": a.patient_name }, "status": participant_status }),
        json!({ "actor": { "reference": format!("Organization/{}", a.org_id), "display": a.org_name }, "status": "accepted" }),
    ];
    if let Some(p) = &s.practitioner_id {
        participants.push(json!({ "actor": { "reference": format!("Practitioner/{p}") }, "status": "accepted" }));
    }
    let mut appt = json!({
        "resourceType": "Appointment", "id": a.id,
        "status": a.state.as_str(),
        "serviceType": [{ "text": s.service }],
        "specialty": [{ "text": a.department }],
        "start": a.start, "end": a.end,
        "slot": [{ "reference": format!("Slot/{}", a.slot_id) }],
        "created": a.booked,
        "participant": participants,
    });
    if let Some(r) = &a.reason {
        appt["description"] = json!(r);
    }
    if let Some(rid) = &a.referral_id {
        appt["basedOn"] = json!([{ "reference": format!("ServiceRequest/{rid}") }]);
    }
    let entry = |r: Value| {
        let url = format!("urn:uuid:{}", r["id"].as_str().unwrap_or_default());
        json!({ "fullUrl": url, "resource": r })
    };
    json!({ "resourceType": "Bundle", "type": "collection", "entry": [entry(appt), entry(slot), entry(schedule)] })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppointmentFilter {
    /// `YYYY-MM-DD` (Beijing).
    pub day: Option<String>,
    pub state: Option<String>,
    pub patient_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Appointments: a resident's own (newest first); a clinician's institution's, those at it and
/// those it booked elsewhere (by day, in time order). Each patient listed is audited as a read.
#[utoipa::path(get, path = "/api/health/appointments", tag = "health", params(AppointmentFilter),
    responses((status = 200, body = Paged<Appointment>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn appointments(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Query(f): Query<AppointmentFilter>,
) -> ApiResult<axum::Json<Paged<Appointment>>> {
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let r = records(&st, &keys);
    let mut conds: Vec<String> = vec![];
    let mut args: Vec<Arg> = vec![];
    enum Arg {
        S(String),
        I(i64),
    }
    let mut add = |sql: &str, v: Arg, conds: &mut Vec<String>| {
        args.push(v);
        conds.push(sql.replace('?', &format!("${}", args.len())));
    };
    match c.role {
        Role::Resident => {
            let Some(own) = crate::fhir_api::own_patient(&r, &c).await? else {
                return Ok(axum::Json(Paged { items: vec![], total: 0, limit, offset }));
            };
            add("a.patient_id = ?", Arg::S(own), &mut conds);
        }
        Role::Clinician => add("(a.org_id = ? OR a.booked_org = ?)", Arg::S(c.org_id.clone()), &mut conds),
        _ => {
            return Err(refuse(
                &st,
                &c,
                "health.appointment.read",
                None,
                "not_allowed",
                "appointments are for residents and clinicians (仅限居民和医生)",
            )
            .await);
        }
    }
    if let Some(d) = &f.day {
        let day = crate::contract::parse_day(d)
            .ok_or_else(|| ApiError::field(Code::InvalidQuery, "day", "a date YYYY-MM-DD"))?;
        let m = day.midnight().assume_offset(crate::fhir::datetime::BEIJING).unix_timestamp() * 1000;
        add("a.start_ms >= ?", Arg::I(m), &mut conds);
        add("a.start_ms < ?", Arg::I(m + DAY_MS), &mut conds);
    }
    if let Some(s) = &f.state {
        if State::parse(s).is_none() {
            return Err(ApiError::field(
                Code::InvalidQuery,
                "state",
                "booked, cancelled, arrived, fulfilled or noshow",
            ));
        }
        add("a.state = ?", Arg::S(s.clone()), &mut conds);
    }
    if let Some(p) = &f.patient_id {
        add("a.patient_id = ?", Arg::S(p.clone()), &mut conds);
    }
    let wh = conds.join(" AND ");
    let order = if c.role == Role::Resident { "a.start_ms DESC" } else { "a.start_ms, a.id" };
    let run = |sql: String| {
        let st = &st;
        let args = &args;
        async move {
            let sql = st.store.sql(&sql).into_owned();
            let mut q = sqlx::query(&sql);
            for a in args {
                q = match a {
                    Arg::S(s) => q.bind(s.clone()),
                    Arg::I(i) => q.bind(*i),
                };
            }
            q.fetch_all(st.store.reader()).await.map_err(StoreError::from)
        }
    };
    let rows = run(format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM {APPOINTMENT_FROM} WHERE {wh} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ))
    .await?;
    let n = run(format!("SELECT COUNT(*) AS n FROM health_appointments a WHERE {wh}")).await?;
    let total = n.first().map(|r| col::<i64>(r, "n")).transpose()?.unwrap_or(0);
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(view(&st, &r, row).await?);
    }
    if c.role == Role::Clinician {
        let listed = items.iter().map(|x| x.patient_id.as_str());
        crate::health_api::audit_listed(&st, &c, "health.appointment.read", listed, None).await?;
    }
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppointmentStep)]
pub struct StepBody {
    pub action: Action,
    /// The new slot (reschedule): of the same institution.
    pub slot_id: Option<String>,
    /// The version last seen: a 409 if it moved since.
    pub version: Option<i64>,
}

/// Cancels or moves an appointment (its patient's side, up to 2 hours before; the institution
/// any time before the start), or records arrival, the visit, a no-show (the institution).
#[utoipa::path(post, path = "/api/health/appointments/{id}/steps", tag = "health", params(("id" = String, Path)),
    request_body = StepBody,
    responses((status = 200, body = Appointment), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn take_step(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<StepBody>,
) -> ApiResult<axum::Json<Appointment>> {
    Ok(axum::Json(step(&st, &keys, &c, &id, b, now_ms()).await?))
}

/// The service behind `POST /api/health/appointments/{id}/steps`, at `now`.
pub async fn step(st: &AppState, keys: &Keys, c: &Caller, id: &str, b: StepBody, now: i64) -> ApiResult<Appointment> {
    let action_name = match b.action {
        Action::Cancel => "health.appointment.cancel",
        Action::Reschedule => "health.appointment.reschedule",
        Action::Arrive => "health.appointment.arrive",
        Action::Fulfil => "health.appointment.fulfil",
        Action::Noshow => "health.appointment.noshow",
    };
    let Some(row) = appointment_row(st, id).await? else { return Err(ApiError::not_found("appointment")) };
    let side = side_of(st, keys, c, &row, action_name).await?;
    let state = State::parse(&col::<String>(&row, "state")?).ok_or_else(|| StoreError::Corrupt("a state".into()))?;
    let version: i64 = col(&row, "version")?;
    if b.version.is_some_and(|v| v != version) {
        return Err(ApiError::new(Code::Conflict, format!("the appointment is at version {version} (已被修改)")));
    }
    let (start, end): (i64, i64) = (col(&row, "start_ms")?, col(&row, "end_ms")?);
    let next = appointment::step(state, b.action, side, now, start, end).map_err(conflict)?;
    if b.action != Action::Reschedule && b.slot_id.is_some() {
        return Err(bad("slot_id", "only a reschedule names a new slot"));
    }
    let patient: String = col(&row, "patient_id")?;
    let old_slot: String = col(&row, "slot_id")?;
    let mut tx = st.store.begin().await?;
    let mut detail = json!({ "appointment": id, "from": state.as_str(), "to": next.as_str() });
    if b.action == Action::Reschedule {
        let Some(new_slot) = b.slot_id.as_deref() else { return Err(bad("slot_id", "the new slot")) };
        if new_slot == old_slot {
            return Err(bad("slot_id", "another slot than the booked one"));
        }
        let own = c.role == Role::Resident;
        let (org, s2, e2) = take_place(st, &mut tx, &patient, new_slot, own, Some(id), now).await?;
        if org != col::<String>(&row, "org_id")? {
            return Err(bad("slot_id", "a slot of the same institution (同一机构内改约)"));
        }
        sqlx::query(&st.store.sql("UPDATE health_slots SET booked = booked - 1 WHERE id = $1 AND booked > 0"))
            .bind(old_slot.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let moved = sqlx::query(&st.store.sql(
            "UPDATE health_appointments SET slot_id = $1, start_ms = $2, end_ms = $3, updated_ms = $4, version = version + 1 \
             WHERE id = $5 AND version = $6 AND state = 'booked'",
        ))
        .bind(new_slot.to_string())
        .bind(s2)
        .bind(e2)
        .bind(now)
        .bind(id.to_string())
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        if moved.rows_affected() == 0 {
            return Err(ApiError::new(Code::Conflict, "the appointment changed meanwhile (已被修改)"));
        }
        detail["slot"] = json!(new_slot);
    } else {
        let done = sqlx::query(&st.store.sql(
            "UPDATE health_appointments SET state = $1, updated_ms = $2, version = version + 1 WHERE id = $3 AND version = $4",
        ))
        .bind(next.as_str())
        .bind(now)
        .bind(id.to_string())
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        if done.rows_affected() == 0 {
            return Err(ApiError::new(Code::Conflict, "the appointment changed meanwhile (已被修改)"));
        }
        if next == State::Cancelled {
            sqlx::query(&st.store.sql("UPDATE health_slots SET booked = booked - 1 WHERE id = $1 AND booked > 0"))
                .bind(old_slot)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
    }
    let ev = Event::new(Actor::of(c), action_name, "Patient", Some(&patient), Outcome::Success).detail(detail);
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = appointment_row(st, id).await?.ok_or_else(|| ApiError::not_found("appointment"))?;
    view(st, &records(st, keys), &row).await
}
