//! Assessment figures (道路运输车辆动态监督考核指标): what regulators score an enterprise's
//! monitoring on, per local day and per month, and their xlsx export.
//!
//! # Sources and definitions
//! The indicators are those of the national assessment of the joint monitoring system,
//! 《全国重点营运车辆联网联控系统考核管理办法》 (交运发〔2014〕267号, revised 2016 after
//! 交通运输部令2016年第55号 《道路运输车辆动态监督管理办法》), whose monthly enterprise form lists
//! 入网率, 上线率, 轨迹完整率, 数据合格率 and 卫星定位车辆漂移率; provincial bulletins report the same
//! five (e.g. 四川省交通运输厅道路运输管理局, 全省重点营运车辆联网联控系统运行情况的通报, 2025-04-15).
//! The texts we could reach name the indicators and their ratios but not every threshold; where a
//! threshold is our choice, its doc comment says so.
//! - **Network-entry rate (车辆入网率)** = vehicles with a bound terminal that has reported at
//!   least once by the end of the period ÷ registered vehicles. (江苏省 interpretation of the
//!   indicator, 2021: 入网 = at least one qualified dynamic record sent by the statistics time; we
//!   count any stored record, as the brief of this module asks.)
//! - **Online rate (车辆上线率)** = network-entered vehicles with at least one qualified record in
//!   the period ÷ network-entered vehicles.
//! - **Track completeness rate (轨迹完整率)** = complete track mileage ÷ total track mileage
//!   (湖北 黄石 monthly bulletin columns: 车辆轨迹完整总里程数 / 车辆轨迹总里程). A step between two
//!   consecutive qualified points longer than [`INCOMPLETE_STEP_M`] (10 km) is incomplete: the
//!   track has a hole there. The 10 km figure is the one commonly used by the platforms; we did
//!   not find it in an official text we could read, so it is our stated choice.
//! - **Data-qualified rate (数据合格率)** = qualified records ÷ all records; see [`qualified`].
//! - **Drift rate (卫星定位车辆漂移率)** = online vehicles with at least one drift point ÷ online
//!   vehicles. A drift point implies more than the rules engine's drift speed (200 km/h,
//!   `rules::EngineSettings::drift_speed_kmh`) from the previous accepted point, over more than its
//!   minimum jump (100 m); the same anchor logic as the engine (two agreeing points after a jump
//!   mean the anchor was the outlier). The national text's own threshold was not found.
//! - **Overspeed and fatigue alarms per 100 vehicles (百车超速/疲劳报警数)** = alarms that started
//!   in the period ÷ online vehicles × 100. Kinds: [`OVERSPEED_KINDS`], [`FATIGUE_KINDS`]
//!   (the rules engine's codes; fatigue pre-warnings are not alarms of the assessment).
//! - **Mean handling time (平均处置时长)** = over the enterprise's transport alarms handled in the
//!   period (any kind), the mean of handled − started.
//!
//! # Days, months and the table
//! A day is a local day (Asia/Shanghai, UTC+8, no daylight saving) of DEVICE time. A step across
//! midnight belongs to neither day. Each closed day is summarised once per vehicle into
//! `transport_assessment_days` (points, qualified, drift points, mileage, incomplete mileage,
//! first and last device time; only vehicles that reported) and marked in
//! `transport_assessment_computed`. A day is closed [`SETTLE_MS`] after it ends, so most
//! blind-area uploads are in; a report uploaded later than that is not in the stored figures
//! until [`compute_day`] runs again for that day. The hourly task ([`run`]) computes every closed
//! day of the last [`LOOK_BACK_DAYS`] not yet computed, so a restart catches up; a closed day a
//! request needs and nobody computed yet is computed then (within the positions' retention). Days not closed yet (today) are
//! computed from the positions on request and not stored.
//!
//! An enterprise's figures aggregate its vehicles' days. For a month, vehicle counts are of
//! distinct vehicles: a vehicle is online (or drifting) for the month if it was on any day of it;
//! records and mileage are summed. The registry keeps no history: the vehicles counted are those
//! the enterprise has now, and "bound terminal" means bound now.

use crate::positions::{self, Position, STATUS_FIXED, distance_m};
use crate::registry;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kernel::access::{Caller, Scope};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Query};
use kernel::platform::CancellationToken;
use kernel::store::{Store, StoreResult, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// China Standard Time, UTC+8 (no daylight saving since 1991).
pub const LOCAL_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// A step between consecutive qualified points longer than this leaves a hole in the track
/// (轨迹不完整). Our choice, the figure the platforms commonly use: see the module docs.
pub const INCOMPLETE_STEP_M: f64 = 10_000.0;
/// A reported speed above this is not a qualified record. Our choice: the drift speed, above
/// anything a regulated road vehicle reaches.
pub const MAX_SPEED_KMH: f64 = 200.0;
/// Device times before 2000-01-01 are not plausible (as in the rules engine).
const TIME_MIN_MS: i64 = 946_684_800_000;
/// A day counts as closed this long after it ends (blind-area uploads of that day are in).
pub const SETTLE_MS: i64 = 3_600_000;
/// How far back the hourly task looks for closed days not yet computed.
pub const LOOK_BACK_DAYS: i64 = 35;
/// The alarm kinds counted as overspeed (`rules::AlarmKind::Overspeed`, `NightOverspeed`).
pub const OVERSPEED_KINDS: &[&str] = &["overspeed", "night_overspeed"];
/// The alarm kinds counted as fatigue driving (`rules::AlarmKind::FatigueContinuous`,
/// `FatigueDaily`, `FatigueWeekly`); pre-warnings (`*_pre_warning`) are not counted.
pub const FATIGUE_KINDS: &[&str] = &["fatigue_continuous", "fatigue_daily", "fatigue_weekly"];
/// Most positions read for one vehicle-day (a report a second is 86 400).
const DAY_POSITIONS_LIMIT: i64 = 1_000_000;
/// Most vehicles one assessment covers.
const MAX_VEHICLES: i64 = 200_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The thresholds a vehicle-day is summarised with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub incomplete_step_m: f64,
    /// From `rules::EngineSettings::drift_speed_kmh` (200 km/h).
    pub drift_speed_kmh: f64,
    /// From `rules::EngineSettings::drift_min_distance_m` (100 m).
    pub drift_min_distance_m: f64,
    pub max_speed_kmh: f64,
    /// Device time at most this far ahead of the receiving time (`rules` future tolerance, 5 min).
    pub future_tolerance_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        let e = rules::EngineSettings::default();
        Self {
            incomplete_step_m: INCOMPLETE_STEP_M,
            drift_speed_kmh: e.drift_speed_kmh,
            drift_min_distance_m: e.drift_min_distance_m,
            max_speed_kmh: MAX_SPEED_KMH,
            future_tolerance_ms: e.future_tolerance_s.saturating_mul(1000),
        }
    }
}

/// The local day (days since 1970-01-01, Asia/Shanghai) of a time.
pub fn local_day_of(ms: i64) -> i64 {
    (ms + LOCAL_OFFSET_MS).div_euclid(DAY_MS)
}

/// When local day `day` starts (ms UTC).
pub fn day_start_ms(day: i64) -> i64 {
    day * DAY_MS - LOCAL_OFFSET_MS
}

/// `YYYY-MM-DD` of a local day.
pub fn day_label(day: i64) -> String {
    ms_to_rfc3339(day * DAY_MS).get(..10).unwrap_or_default().to_string()
}

/// The newest local day that is closed at `now` (ended at least [`SETTLE_MS`] ago).
pub fn last_closed_day(now: i64) -> i64 {
    local_day_of(now - SETTLE_MS) - 1
}

/// Whether a record is qualified (合格): the fix is valid (JT/T 808-2019 table 24, status bit 1),
/// latitude and longitude finite, in range and not zero (a terminal without a fix reports
/// zeros), the speed finite and between 0 and [`MAX_SPEED_KMH`], the heading 0–359 (JT/T
/// 808-2019 table 23, 方向), and the device time plausible: after 2000 and not ahead of its
/// reception by more than the tolerance. The national check list itself was not found; these are
/// the field ranges of JT/T 808 and the plausibility checks of the rules engine (`rules`, invalid
/// data).
pub fn qualified(p: &Position, t: &Thresholds) -> bool {
    p.status & STATUS_FIXED != 0
        && p.lat.is_finite()
        && p.lon.is_finite()
        && (-90.0..=90.0).contains(&p.lat)
        && (-180.0..=180.0).contains(&p.lon)
        && p.lat != 0.0
        && p.lon != 0.0
        && p.speed_kmh.is_finite()
        && (0.0..=t.max_speed_kmh).contains(&p.speed_kmh)
        && p.heading <= 359
        && p.device_ms >= TIME_MIN_MS
        && p.device_ms <= p.received_ms.saturating_add(t.future_tolerance_ms)
}

/// One vehicle's day, as stored in `transport_assessment_days`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VehicleDay {
    pub points: i64,
    pub qualified: i64,
    pub drift: i64,
    pub mileage_m: f64,
    pub incomplete_m: f64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

fn kmh(distance_m: f64, dt_ms: i64) -> f64 {
    distance_m / 1000.0 / (dt_ms as f64 / 3_600_000.0)
}

fn step_m(a: &Position, b: &Position) -> f64 {
    distance_m(a.lat, a.lon, b.lat, b.lon)
}

/// Summarises a vehicle's positions of one day, oldest first: records, qualified records, drift
/// points, mileage between consecutive accepted points, and the part of it in steps longer than
/// the incomplete-step threshold.
pub fn summarise_day(points: &[Position], t: &Thresholds) -> VehicleDay {
    let mut out = VehicleDay::default();
    let mut anchor: Option<&Position> = None;
    let mut pending: Option<&Position> = None;
    let add_step = |out: &mut VehicleDay, d: f64| {
        out.mileage_m += d;
        if d > t.incomplete_step_m {
            out.incomplete_m += d;
        }
    };
    for p in points {
        out.points += 1;
        out.first_ms = Some(out.first_ms.map_or(p.device_ms, |f| f.min(p.device_ms)));
        out.last_ms = Some(out.last_ms.map_or(p.device_ms, |l| l.max(p.device_ms)));
        if !qualified(p, t) {
            continue;
        }
        out.qualified += 1;
        let Some(a) = anchor else {
            anchor = Some(p);
            continue;
        };
        let dt = p.device_ms - a.device_ms;
        if dt <= 0 {
            continue;
        }
        let d = step_m(a, p);
        if d > t.drift_min_distance_m && kmh(d, dt) > t.drift_speed_kmh {
            let agreeing = pending.filter(|q| {
                let dtq = p.device_ms - q.device_ms;
                let dq = step_m(q, p);
                dtq > 0 && (dq <= t.drift_min_distance_m || kmh(dq, dtq) <= t.drift_speed_kmh)
            });
            match agreeing {
                // Two points agree with each other and not with the anchor: the anchor was the
                // outlier. The track goes on from the pair; the jump from the anchor is no mileage.
                Some(q) => {
                    add_step(&mut out, step_m(q, p));
                    pending = None;
                    anchor = Some(p);
                }
                None => {
                    out.drift += 1;
                    pending = Some(p);
                }
            }
            continue;
        }
        pending = None;
        add_step(&mut out, d);
        anchor = Some(p);
    }
    out
}

/// One vehicle's figures for local day `day`, from its stored positions.
pub async fn compute_vehicle_day(store: &Store, vehicle_id: &str, day: i64, t: &Thresholds) -> StoreResult<VehicleDay> {
    let from = day_start_ms(day);
    let points = positions::range(store, vehicle_id, from, from + DAY_MS, DAY_POSITIONS_LIMIT).await?;
    if points.len() as i64 >= DAY_POSITIONS_LIMIT {
        tracing::warn!(day = %day_label(day), "a vehicle-day has more positions than are read: figures cut short");
    }
    Ok(summarise_day(&points, t))
}

/// Computes and stores every vehicle's figures for closed local day `day` (days since
/// 1970-01-01, Asia/Shanghai) and marks the day computed. Idempotent: running it again replaces
/// the day's rows with the same figures (or newer ones, if late positions arrived). Returns how
/// many vehicles reported that day.
pub async fn compute_day(store: &Store, day: i64) -> StoreResult<u64> {
    let t = Thresholds::default();
    let began = std::time::Instant::now();
    let upsert = store
        .sql(
            "INSERT INTO transport_assessment_days (vehicle_id, day, points, qualified, drift, mileage_m, incomplete_m, \
             first_ms, last_ms, computed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (vehicle_id, day) DO UPDATE SET points = excluded.points, qualified = excluded.qualified, \
             drift = excluded.drift, mileage_m = excluded.mileage_m, incomplete_m = excluded.incomplete_m, \
             first_ms = excluded.first_ms, last_ms = excluded.last_ms, computed_ms = excluded.computed_ms",
        )
        .into_owned();
    let delete = store.sql("DELETE FROM transport_assessment_days WHERE vehicle_id = $1 AND day = $2").into_owned();
    let mut offset = 0;
    let mut reported = 0u64;
    loop {
        let (page, _) = registry::all_vehicles(store, 200, offset).await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        let mut figures = Vec::with_capacity(page.len());
        for v in &page {
            figures.push((v.id.as_str(), compute_vehicle_day(store, &v.id, day, &t).await?));
        }
        // Short transactions, one per page: on SQLite the gateway's commits go in between.
        let now = now_ms();
        let mut tx = store.begin().await?;
        for (vid, f) in &figures {
            match (f.first_ms, f.last_ms) {
                (Some(first), Some(last)) => {
                    reported += 1;
                    sqlx::query(&upsert)
                        .bind(vid.to_string())
                        .bind(day)
                        .bind(f.points)
                        .bind(f.qualified)
                        .bind(f.drift)
                        .bind(f.mileage_m)
                        .bind(f.incomplete_m)
                        .bind(first)
                        .bind(last)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                _ => {
                    sqlx::query(&delete).bind(vid.to_string()).bind(day).execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
    }
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO transport_assessment_computed (day, vehicles, computed_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (day) DO UPDATE SET vehicles = excluded.vehicles, computed_ms = excluded.computed_ms",
    ))
    .bind(day)
    .bind(reported as i64)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("wuqing_transport_assessment_days_computed_total").increment(1);
    tracing::info!(day = %day_label(day), vehicles = reported, seconds = began.elapsed().as_secs_f64(), "assessment day computed");
    Ok(reported)
}

/// The days of `[first, last]` already computed.
async fn computed_days(store: &Store, first: i64, last: i64) -> StoreResult<BTreeSet<i64>> {
    let rows = sqlx::query(&store.sql("SELECT day FROM transport_assessment_computed WHERE day >= $1 AND day <= $2"))
        .bind(first)
        .bind(last)
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(|r| col::<i64>(r, "day")).collect()
}

/// Computes every closed day of the last [`LOOK_BACK_DAYS`] not computed yet; returns those days.
pub async fn catch_up(store: &Store, now: i64) -> StoreResult<Vec<i64>> {
    let last = last_closed_day(now);
    let first = last - LOOK_BACK_DAYS + 1;
    let done = computed_days(store, first, last).await?;
    let mut out = vec![];
    for d in first..=last {
        if !done.contains(&d) {
            compute_day(store, d).await?;
            out.push(d);
        }
    }
    Ok(out)
}

/// The hourly task: catches up closed days (the first run a minute after start), on one
/// processor of a scaled-out deployment per hour.
pub async fn run(store: Store, node: String, shutdown: CancellationToken) {
    let every = std::time::Duration::from_secs(3600);
    let start = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(start, every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                // Once an hour across the processors (`kernel::cluster::due`).
                match kernel::cluster::due(&store, "transport.assessment", &node, every).await {
                    Ok(true) => if let Err(e) = catch_up(&store, now_ms()).await {
                        tracing::warn!(error = %e, "assessment days not computed");
                    },
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "assessment days not scheduled"),
                }
            },
        }
    }
}

// ------------------------------------------------------------------ periods

/// Day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    Month,
}

/// The local days an assessment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub kind: PeriodKind,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub label: String,
    pub first_day: i64,
    /// Inclusive.
    pub last_day: i64,
}

impl Span {
    pub fn start_ms(&self) -> i64 {
        day_start_ms(self.first_day)
    }
    pub fn end_ms(&self) -> i64 {
        day_start_ms(self.last_day + 1)
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn day_number(d: time::Date) -> i64 {
    i64::from(d.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

/// Parses `period` (`day`, the default, or `month`) and `date` (`YYYY-MM-DD` or `YYYY-MM`) into
/// the days they cover. Periods before 2000 or starting after today (local) are refused.
pub fn parse_span(period: Option<&str>, date: Option<&str>, now: i64) -> ApiResult<Span> {
    let kind = match period.unwrap_or("day") {
        "day" => PeriodKind::Day,
        "month" => PeriodKind::Month,
        _ => return Err(ApiError::field(Code::InvalidQuery, "period", "day or month")),
    };
    let Some(date) = date else {
        return Err(ApiError::field(Code::InvalidQuery, "date", "date is required: YYYY-MM-DD or YYYY-MM"));
    };
    let parts: Vec<&str> = date.split('-').collect();
    let ymd = |y: &str, m: &str, d: &str| -> Option<time::Date> {
        let month = time::Month::try_from(u8::try_from(digits(m, 2)?).ok()?).ok()?;
        let year = i32::try_from(digits(y, 4)?).ok()?;
        time::Date::from_calendar_date(year, month, u8::try_from(digits(d, 2)?).ok()?).ok()
    };
    let (first, last, label) = match (kind, parts.as_slice()) {
        (PeriodKind::Day, [y, m, d]) => {
            let Some(day) = ymd(y, m, d) else {
                return Err(ApiError::field(Code::InvalidQuery, "date", "a day is YYYY-MM-DD, e.g. 2026-11-28"));
            };
            let n = day_number(day);
            (n, n, format!("{y}-{m}-{d}"))
        }
        (PeriodKind::Month, [y, m]) => {
            let Some(first) = ymd(y, m, "01") else {
                return Err(ApiError::field(Code::InvalidQuery, "date", "a month is YYYY-MM, e.g. 2026-11"));
            };
            let len = time::util::days_in_month(first.month(), first.year());
            let n = day_number(first);
            (n, n + i64::from(len) - 1, format!("{y}-{m}"))
        }
        (PeriodKind::Day, _) => {
            return Err(ApiError::field(Code::InvalidQuery, "date", "a day is YYYY-MM-DD, e.g. 2026-11-28"));
        }
        (PeriodKind::Month, _) => {
            return Err(ApiError::field(Code::InvalidQuery, "date", "a month is YYYY-MM, e.g. 2026-11"));
        }
    };
    if first < local_day_of(TIME_MIN_MS) || first > local_day_of(now) {
        return Err(ApiError::field(Code::InvalidQuery, "date", "the period must start between 2000 and today"));
    }
    Ok(Span { kind, label, first_day: first, last_day: last })
}

// ------------------------------------------------------------------ the figures

/// One enterprise's assessment figures for a period. Rates are fractions (0.9876 = 98.76 %),
/// `null` where the denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AssessmentRow {
    pub org_id: String,
    /// The enterprise's registered name.
    pub org_name: String,
    /// Registered vehicles (车辆数).
    pub vehicles: i64,
    /// Vehicles whose bound terminal has reported by the end of the period (入网车辆数).
    pub entered: i64,
    /// Network-entered vehicles with a qualified record in the period (上线车辆数).
    pub online: i64,
    /// Online vehicles with at least one drift point (漂移车辆数).
    pub drift_vehicles: i64,
    /// Records (定位数据) in the period.
    pub records: i64,
    pub qualified_records: i64,
    /// Track mileage between accepted points, km.
    pub mileage_km: f64,
    /// Of which in complete steps (≤ 10 km), km.
    pub complete_mileage_km: f64,
    /// 车辆入网率.
    pub network_entry_rate: Option<f64>,
    /// 车辆上线率.
    pub online_rate: Option<f64>,
    /// 轨迹完整率.
    pub track_completeness_rate: Option<f64>,
    /// 数据合格率.
    pub data_qualified_rate: Option<f64>,
    /// 漂移率.
    pub drift_rate: Option<f64>,
    /// Overspeed alarms (超速, 夜间超速) that started in the period.
    pub overspeed_alarms: i64,
    /// Fatigue alarms (疲劳驾驶) that started in the period.
    pub fatigue_alarms: i64,
    /// Per 100 online vehicles.
    pub overspeed_per_100: Option<f64>,
    pub fatigue_per_100: Option<f64>,
    /// Transport alarms of the enterprise handled in the period.
    pub handled_alarms: i64,
    /// Mean minutes from an alarm's start to its handling, over those handled in the period.
    pub mean_handling_minutes: Option<f64>,
}

/// The assessment of a period: one row per enterprise in the caller's scope that owns vehicles.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Assessment {
    pub period: PeriodKind,
    /// `YYYY-MM-DD` or `YYYY-MM` (local).
    pub date: String,
    /// RFC 3339 start (inclusive) and end (exclusive) of the period.
    pub from: String,
    pub to: String,
    pub rows: Vec<AssessmentRow>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| round(num / den, 4))
}

/// `v.org_id IN (…)` (or `= …`) for the caller's scope and the optional enterprise, its
/// parameters numbered from `$first`; `None` when nothing can match.
fn org_clause(scope: &Scope, org_id: Option<&str>, first: usize) -> Option<(String, Vec<String>)> {
    if let Some(o) = org_id {
        return Some((format!("v.org_id = ${first}"), vec![o.to_string()]));
    }
    match scope {
        Scope::All => Some(("1 = 1".into(), vec![])),
        Scope::Orgs(v) if v.is_empty() => None,
        Scope::Orgs(v) => {
            let ph: Vec<String> = (0..v.len()).map(|i| format!("${}", first + i)).collect();
            Some((format!("v.org_id IN ({})", ph.join(", ")), v.clone()))
        }
    }
}

/// Per vehicle over the period.
#[derive(Debug, Default, Clone)]
struct Acc {
    points: i64,
    qualified: i64,
    drift: i64,
    mileage_m: f64,
    incomplete_m: f64,
}

impl Acc {
    fn add(&mut self, d: &VehicleDay) {
        self.points += d.points;
        self.qualified += d.qualified;
        self.drift += d.drift;
        self.mileage_m += d.mileage_m;
        self.incomplete_m += d.incomplete_m;
    }
}

/// The assessment rows of `span` for the enterprises in the caller's scope (or the one
/// `org_id`, which must be in it). A closed day nobody computed yet is computed first, unless
/// it is older than the positions' retention (`retention_days`): its positions are gone, so it
/// counts as a day without reports (and a request cannot set off computing years of days).
pub async fn assess(
    store: &Store,
    c: &Caller,
    span: &Span,
    org_id: Option<&str>,
    retention_days: u32,
) -> ApiResult<Vec<AssessmentRow>> {
    registry::require_read(c)?;
    if let Some(o) = org_id {
        c.require_org(o)?;
    }
    let Some((clause, orgs)) = org_clause(&c.scope, org_id, 1) else { return Ok(vec![]) };
    let now = now_ms();

    // The vehicles, with whether a terminal is bound.
    let sql = store
        .sql(&format!(
            "SELECT v.id AS id, v.org_id AS org_id, t.id AS terminal FROM transport_vehicles v \
             LEFT JOIN transport_terminals t ON t.vehicle_id = v.id WHERE {clause} ORDER BY v.id LIMIT {MAX_VEHICLES}"
        ))
        .into_owned();
    let mut q = sqlx::query(&sql);
    for o in &orgs {
        q = q.bind(o.clone());
    }
    let rows = q.fetch_all(store.reader()).await.map_err(kernel::store::StoreError::from)?;
    let mut vehicles: Vec<(String, String, bool)> = Vec::with_capacity(rows.len());
    for r in &rows {
        vehicles.push((col(r, "id")?, col(r, "org_id")?, col::<Option<String>>(r, "terminal")?.is_some()));
    }
    if vehicles.is_empty() {
        return Ok(vec![]);
    }

    // Closed days: from the table, computing the ones nobody computed yet.
    let last_closed = last_closed_day(now);
    let today = local_day_of(now);
    let mut acc: HashMap<String, Acc> = HashMap::new();
    let closed_last = span.last_day.min(last_closed);
    if span.first_day <= closed_last {
        let done = computed_days(store, span.first_day, closed_last).await?;
        let oldest_retained = local_day_of(now - i64::from(retention_days) * DAY_MS) + 1;
        for d in span.first_day.max(oldest_retained)..=closed_last {
            if !done.contains(&d) {
                compute_day(store, d).await?;
            }
        }
        let n = orgs.len();
        let sql = store
            .sql(&format!(
                "SELECT a.vehicle_id AS vehicle_id, CAST(SUM(a.points) AS BIGINT) AS points, \
                 CAST(SUM(a.qualified) AS BIGINT) AS qualified, CAST(SUM(a.drift) AS BIGINT) AS drift, \
                 CAST(SUM(a.mileage_m) AS DOUBLE PRECISION) AS mileage_m, \
                 CAST(SUM(a.incomplete_m) AS DOUBLE PRECISION) AS incomplete_m \
                 FROM transport_assessment_days a JOIN transport_vehicles v ON v.id = a.vehicle_id \
                 WHERE {clause} AND a.day >= ${} AND a.day <= ${} GROUP BY a.vehicle_id",
                n + 1,
                n + 2
            ))
            .into_owned();
        let mut q = sqlx::query(&sql);
        for o in &orgs {
            q = q.bind(o.clone());
        }
        let rows = q
            .bind(span.first_day)
            .bind(closed_last)
            .fetch_all(store.reader())
            .await
            .map_err(kernel::store::StoreError::from)?;
        for r in &rows {
            let a = acc.entry(col(r, "vehicle_id")?).or_default();
            a.points += col::<i64>(r, "points")?;
            a.qualified += col::<i64>(r, "qualified")?;
            a.drift += col::<i64>(r, "drift")?;
            a.mileage_m += col::<f64>(r, "mileage_m")?;
            a.incomplete_m += col::<f64>(r, "incomplete_m")?;
        }
    }
    // Days not closed yet (today, and yesterday in its first hour): from the positions.
    let open_first = span.first_day.max(last_closed + 1);
    let open_last = span.last_day.min(today);
    if open_first <= open_last {
        let t = Thresholds::default();
        for (vid, _, _) in &vehicles {
            for d in open_first..=open_last {
                let f = compute_vehicle_day(store, vid, d, &t).await?;
                if f.points > 0 {
                    acc.entry(vid.clone()).or_default().add(&f);
                }
            }
        }
    }

    // Per enterprise.
    #[derive(Default)]
    struct Org {
        vehicles: i64,
        entered: i64,
        online: i64,
        drift: i64,
        data: Acc,
    }
    let mut per_org: BTreeMap<String, Org> = BTreeMap::new();
    let end = span.end_ms();
    for (vid, org, bound) in &vehicles {
        let o = per_org.entry(org.clone()).or_default();
        o.vehicles += 1;
        let a = acc.get(vid).cloned().unwrap_or_default();
        let entered = *bound && (a.points > 0 || !positions::range(store, vid, i64::MIN, end, 1).await?.is_empty());
        if entered {
            o.entered += 1;
            if a.qualified > 0 {
                o.online += 1;
                if a.drift > 0 {
                    o.drift += 1;
                }
            }
        }
        o.data.points += a.points;
        o.data.qualified += a.qualified;
        o.data.drift += a.drift;
        o.data.mileage_m += a.mileage_m;
        o.data.incomplete_m += a.incomplete_m;
    }

    let org_ids: Vec<String> = per_org.keys().cloned().collect();
    let counts =
        alarms::service::assessment_counts(store, crate::alerting::DOMAIN, &org_ids, span.start_ms(), end).await?;
    let names: HashMap<String, String> = kernel::orgs::list(store, &c.scope, None, None, i64::from(i32::MAX), 0)
        .await?
        .0
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();

    let mut out = Vec::with_capacity(per_org.len());
    for (org_id, o) in per_org {
        let mut overspeed = 0;
        let mut fatigue = 0;
        let mut handled = 0;
        let mut handling_ms = 0i64;
        for k in counts.iter().filter(|k| k.org_id == org_id) {
            if OVERSPEED_KINDS.contains(&k.kind.as_str()) {
                overspeed += k.raised;
            }
            if FATIGUE_KINDS.contains(&k.kind.as_str()) {
                fatigue += k.raised;
            }
            handled += k.handled;
            handling_ms = handling_ms.saturating_add(k.handling_ms);
        }
        let online = o.online as f64;
        let per_100 = |n: i64| (online > 0.0).then(|| round(n as f64 / online * 100.0, 2));
        out.push(AssessmentRow {
            org_name: names.get(&org_id).cloned().unwrap_or_default(),
            org_id,
            vehicles: o.vehicles,
            entered: o.entered,
            online: o.online,
            drift_vehicles: o.drift,
            records: o.data.points,
            qualified_records: o.data.qualified,
            mileage_km: round(o.data.mileage_m / 1000.0, 3),
            complete_mileage_km: round((o.data.mileage_m - o.data.incomplete_m) / 1000.0, 3),
            network_entry_rate: ratio(o.entered as f64, o.vehicles as f64),
            online_rate: ratio(online, o.entered as f64),
            track_completeness_rate: ratio(o.data.mileage_m - o.data.incomplete_m, o.data.mileage_m),
            data_qualified_rate: ratio(o.data.qualified as f64, o.data.points as f64),
            drift_rate: ratio(o.drift as f64, online),
            overspeed_alarms: overspeed,
            fatigue_alarms: fatigue,
            overspeed_per_100: per_100(overspeed),
            fatigue_per_100: per_100(fatigue),
            handled_alarms: handled,
            mean_handling_minutes: (handled > 0).then(|| round(handling_ms as f64 / handled as f64 / 60_000.0, 1)),
        });
    }
    out.sort_by(|a, b| a.org_name.cmp(&b.org_name).then_with(|| a.org_id.cmp(&b.org_id)));
    Ok(out)
}

// ------------------------------------------------------------------ the workbook

/// The columns of the workbook: Chinese header with the English beside it, and the cell kind.
const COLUMNS: &[(&str, Cell)] = &[
    ("企业 Enterprise", Cell::Text),
    ("车辆数 Registered vehicles", Cell::Count),
    ("入网车辆数 Network-entered vehicles", Cell::Count),
    ("入网率 Network-entry rate", Cell::Rate),
    ("上线车辆数 Online vehicles", Cell::Count),
    ("上线率 Online rate", Cell::Rate),
    ("总里程(km) Total mileage", Cell::Km),
    ("完整轨迹里程(km) Complete mileage", Cell::Km),
    ("轨迹完整率 Track completeness rate", Cell::Rate),
    ("定位数据条数 Records", Cell::Count),
    ("合格数据条数 Qualified records", Cell::Count),
    ("数据合格率 Data-qualified rate", Cell::Rate),
    ("漂移车辆数 Drifting vehicles", Cell::Count),
    ("漂移率 Drift rate", Cell::Rate),
    ("超速报警数 Overspeed alarms", Cell::Count),
    ("百车超速报警数 Overspeed per 100 vehicles", Cell::Decimal),
    ("疲劳驾驶报警数 Fatigue alarms", Cell::Count),
    ("百车疲劳驾驶报警数 Fatigue per 100 vehicles", Cell::Decimal),
    ("已处置报警数 Handled alarms", Cell::Count),
    ("平均处置时长(分钟) Mean handling time (min)", Cell::Decimal),
];

#[derive(Debug, Clone, Copy)]
enum Cell {
    Text,
    Count,
    Rate,
    Km,
    Decimal,
}

enum Value<'a> {
    Text(&'a str),
    Number(Option<f64>),
}

fn row_values(r: &AssessmentRow) -> [Value<'_>; 20] {
    let n = |x: i64| Value::Number(Some(x as f64));
    [
        Value::Text(if r.org_name.is_empty() { &r.org_id } else { &r.org_name }),
        n(r.vehicles),
        n(r.entered),
        Value::Number(r.network_entry_rate),
        n(r.online),
        Value::Number(r.online_rate),
        Value::Number(Some(r.mileage_km)),
        Value::Number(Some(r.complete_mileage_km)),
        Value::Number(r.track_completeness_rate),
        n(r.records),
        n(r.qualified_records),
        Value::Number(r.data_qualified_rate),
        n(r.drift_vehicles),
        Value::Number(r.drift_rate),
        n(r.overspeed_alarms),
        Value::Number(r.overspeed_per_100),
        n(r.fatigue_alarms),
        Value::Number(r.fatigue_per_100),
        n(r.handled_alarms),
        Value::Number(r.mean_handling_minutes),
    ]
}

/// The assessment as an xlsx workbook: a title row with the period, the headers, a row per
/// enterprise; rates formatted as percentages, an empty cell where a rate has no denominator.
/// Text is written as strings, never as formulas.
pub fn to_xlsx(a: &Assessment) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("考核指标")?;
    let title = Format::new().set_bold().set_font_size(14);
    let head = Format::new().set_bold().set_text_wrap().set_align(FormatAlign::Center).set_border(FormatBorder::Thin);
    let text = Format::new().set_border(FormatBorder::Thin);
    let fmt = |c: Cell| match c {
        Cell::Text => text.clone(),
        Cell::Count => text.clone().set_num_format("0"),
        Cell::Rate => text.clone().set_num_format("0.00%"),
        Cell::Km => text.clone().set_num_format("#,##0.0"),
        Cell::Decimal => text.clone().set_num_format("0.00"),
    };
    let (period_zh, period_en) = match a.period {
        PeriodKind::Day => ("日", "day"),
        PeriodKind::Month => ("月", "month"),
    };
    let last_col = (COLUMNS.len() - 1) as u16;
    ws.merge_range(
        0,
        0,
        0,
        last_col,
        &format!("道路运输车辆动态监督考核指标 Transport assessment — {} ({period_zh} {period_en})", a.date),
        &title,
    )?;
    ws.write_string(1, 0, format!("统计时段 Period: {} – {} (UTC)", a.from, a.to))?;
    for (i, (h, _)) in COLUMNS.iter().enumerate() {
        let col = i as u16;
        ws.write_string_with_format(2, col, *h, &head)?;
        ws.set_column_width(col, if i == 0 { 40 } else { 16 })?;
    }
    ws.set_row_height(2, 45)?;
    ws.set_freeze_panes(3, 1)?;
    for (i, r) in a.rows.iter().enumerate() {
        let row = 3 + i as u32;
        for (j, v) in row_values(r).iter().enumerate() {
            let f = fmt(COLUMNS[j].1);
            let col = j as u16;
            match v {
                Value::Text(s) => ws.write_string_with_format(row, col, *s, &f)?,
                Value::Number(Some(x)) => ws.write_number_with_format(row, col, *x, &f)?,
                Value::Number(None) => ws.write_blank(row, col, &f)?,
            };
        }
    }
    wb.save_to_buffer()
}

// ------------------------------------------------------------------ the routes

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(assessment)).routes(routes!(assessment_xlsx))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssessmentQuery {
    /// `day` (default) or `month`.
    pub period: Option<String>,
    /// The local date (Asia/Shanghai): `YYYY-MM-DD` for a day, `YYYY-MM` for a month.
    pub date: Option<String>,
    /// One enterprise (must be in the caller's scope).
    pub org_id: Option<String>,
}

async fn build(st: &AppState, c: &Caller, q: &AssessmentQuery) -> ApiResult<Assessment> {
    registry::require_read(c)?;
    if let Some(o) = &q.org_id {
        c.require_org(o)?;
    }
    let span = parse_span(q.period.as_deref(), q.date.as_deref(), now_ms())?;
    let rows = assess(&st.store, c, &span, q.org_id.as_deref(), st.config.raw.telemetry.retention_days).await?;
    Ok(Assessment {
        period: span.kind,
        date: span.label.clone(),
        from: ms_to_rfc3339(span.start_ms()),
        to: ms_to_rfc3339(span.end_ms()),
        rows,
    })
}

/// Assessment figures (考核指标) per enterprise for a local day or month: network-entry, online,
/// track completeness, data-qualified and drift rates, overspeed and fatigue alarms per 100
/// vehicles, mean handling time. Regulators see their domain's enterprises, an operator their own.
#[utoipa::path(get, path = "/api/transport/assessment", tag = "transport", params(AssessmentQuery),
    responses((status = 200, body = Assessment), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn assessment(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<AssessmentQuery>,
) -> ApiResult<axum::Json<Assessment>> {
    build(&st, &c, &q).await.map(axum::Json)
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The same figures as an xlsx workbook (Chinese headers with English beside them).
#[utoipa::path(get, path = "/api/transport/assessment.xlsx", tag = "transport", params(AssessmentQuery),
    responses((status = 200, description = "the workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn assessment_xlsx(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<AssessmentQuery>,
) -> ApiResult<Response> {
    let a = build(&st, &c, &q).await?;
    let bytes = to_xlsx(&a).map_err(ApiError::internal)?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XLSX));
    // The label is digits and hyphens only (parsed above).
    if let Ok(h) = HeaderValue::from_str(&format!("attachment; filename=\"assessment-{}.xlsx\"", a.date)) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t_min: i64, lat: f64) -> Position {
        let t = 1_795_000_000_000 + t_min * 60_000;
        Position {
            vehicle_id: "v".into(),
            device_ms: t,
            received_ms: t + 500,
            lat,
            lon: 117.0,
            altitude_m: 5,
            speed_kmh: 60.0,
            heading: 0,
            alarm: 0,
            status: STATUS_FIXED,
            mileage_km: None,
            extras: vec![],
        }
    }

    /// 0.01° of latitude on the mean sphere.
    const STEP: f64 = 1_111.950_8;

    #[test]
    fn a_long_step_is_incomplete_mileage() {
        let t = Thresholds::default();
        let mut pts: Vec<Position> = (0..=10).map(|k| p(k, 39.0 + k as f64 * 0.01)).collect();
        // 15 km after a 20-minute silence: 45 km/h, not drift, but a hole in the track.
        pts.push(p(30, 39.235));
        let f = summarise_day(&pts, &t);
        assert_eq!((f.points, f.qualified, f.drift), (12, 12, 0));
        assert!((f.mileage_m - 23.5 * STEP).abs() < 1.0, "{}", f.mileage_m);
        assert!((f.incomplete_m - 13.5 * STEP).abs() < 1.0, "{}", f.incomplete_m);
        assert_eq!(f.first_ms, Some(pts[0].device_ms));
        assert_eq!(f.last_ms, Some(pts[11].device_ms));
    }

    #[test]
    fn drift_points_are_counted_and_skipped_and_an_outlying_anchor_is_dropped() {
        let t = Thresholds::default();
        // A single jump and back: one drift point, no mileage for it.
        let pts = vec![p(0, 39.0), p(1, 39.01), p(2, 39.6), p(3, 39.02)];
        let f = summarise_day(&pts, &t);
        assert_eq!(f.drift, 1);
        assert!((f.mileage_m - 2.0 * STEP).abs() < 1.0, "{}", f.mileage_m);
        // The first point is the outlier: the next two agree with each other.
        let pts = vec![p(0, 38.0), p(1, 39.0), p(2, 39.01), p(3, 39.02)];
        let f = summarise_day(&pts, &t);
        assert_eq!(f.drift, 1);
        assert!((f.mileage_m - 2.0 * STEP).abs() < 1.0, "{}", f.mileage_m);
    }

    #[test]
    fn qualified_records() {
        let t = Thresholds::default();
        assert!(qualified(&p(0, 39.0), &t));
        let bad = [
            Position { status: 0, ..p(0, 39.0) },
            Position { lat: 0.0, ..p(0, 39.0) },
            Position { lat: 91.0, ..p(0, 39.0) },
            Position { lon: f64::NAN, ..p(0, 39.0) },
            Position { speed_kmh: 250.0, ..p(0, 39.0) },
            Position { heading: 360, ..p(0, 39.0) },
            Position { received_ms: 1_795_000_000_000 - 600_000, ..p(0, 39.0) },
            Position { device_ms: 900_000_000_000, received_ms: 900_000_000_000, ..p(0, 39.0) },
        ];
        for b in &bad {
            assert!(!qualified(b, &t), "{b:?}");
        }
        let f = summarise_day(&[p(0, 39.0), bad[0].clone(), p(2, 39.01)], &t);
        assert_eq!((f.points, f.qualified), (3, 2));
    }

    #[test]
    fn kinds_are_the_rules_engine_codes() {
        let code = |k: rules::AlarmKind| serde_json::to_value(k).unwrap().as_str().unwrap().to_string();
        assert_eq!(OVERSPEED_KINDS, [code(rules::AlarmKind::Overspeed), code(rules::AlarmKind::NightOverspeed)]);
        assert_eq!(
            FATIGUE_KINDS,
            [
                code(rules::AlarmKind::FatigueContinuous),
                code(rules::AlarmKind::FatigueDaily),
                code(rules::AlarmKind::FatigueWeekly)
            ]
        );
    }

    #[test]
    fn periods() {
        let now = kernel::store::rfc3339_to_ms("2026-11-30T20:00:00Z").unwrap();
        let s = parse_span(Some("day"), Some("2026-11-28"), now).unwrap();
        assert_eq!(s.start_ms(), kernel::store::rfc3339_to_ms("2026-11-27T16:00:00Z").unwrap());
        assert_eq!(s.end_ms() - s.start_ms(), DAY_MS);
        assert_eq!(day_label(s.first_day), "2026-11-28");
        let m = parse_span(Some("month"), Some("2024-02"), now).unwrap();
        assert_eq!(m.last_day - m.first_day + 1, 29);
        assert_eq!(day_label(m.first_day), "2024-02-01");
        // 20:00 UTC on the 30th is the 1st of December locally: December has started.
        assert!(parse_span(Some("month"), Some("2026-12"), now).is_ok());
        for (period, date) in [
            (Some("week"), Some("2026-11-28")),
            (None, None),
            (None, Some("2026-11")),
            (Some("month"), Some("2026-11-28")),
            (None, Some("2026-02-30")),
            (None, Some("26-11-28")),
            (None, Some("+026-11-28")),
            (None, Some("2027-01-01")),
            (None, Some("1999-12-31")),
            (Some("month"), Some("2026-13")),
        ] {
            assert!(parse_span(period, date, now).is_err(), "{period:?} {date:?}");
        }
        assert_eq!(last_closed_day(now), local_day_of(now) - 1);
        // At 00:30 local the day before is not settled yet.
        let early = kernel::store::rfc3339_to_ms("2026-11-30T16:30:00Z").unwrap();
        assert_eq!(last_closed_day(early), local_day_of(early) - 2);
    }
}
