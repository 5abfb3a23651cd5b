//! Vehicle supervision details (车辆监管档案): what the transport bureau keeps on each registered
//! vehicle beyond the registry's plate and class — the road transport certificate (道路运输证)
//! and its validity, the date its annual inspection falls due (检验有效期至), the compulsory
//! traffic insurance (交强险) and the commercial insurance (商业险), the approved seats (核定载客,
//! passenger classes) or rated load in kg (核定载质量, goods classes), and for dangerous goods
//! vehicles the class or division they carry (GB 6944-2012).
//!
//! The vehicle registry stays in the transport crate; this module reads `transport_vehicles` and
//! `transport_terminals` and keeps its own table `supervision_vehicles`, one row per vehicle. The
//! enterprise's operators keep their own vehicles' details; the bureau's regulators read every
//! vehicle of their domain and may correct them. A vehicle outside the caller's reach is not
//! found. Every write is audited in its transaction (`vehicle.details`).

use crate::access::{reaches, who};
use crate::dates::{date_of, days_of, today_days};
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::store::{Arg, StoreError, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The registry's classes that carry passengers: seats apply.
pub const PASSENGER_CLASSES: [&str; 5] = ["coach", "tourist_coach", "school_bus", "city_bus", "taxi"];
/// The registry's classes that carry goods: rated load applies.
pub const GOODS_CLASSES: [&str; 2] = ["dangerous_goods", "heavy_goods"];
/// The class whose vehicles carry a dangerous goods class.
pub const DANGEROUS_GOODS: &str = "dangerous_goods";

/// GB 6944-2012 危险货物分类和品名编号: classes 1–9; classes 1, 2, 4, 5 and 6 are named by
/// their division (1.1–1.6, 2.1–2.3, 4.1–4.3, 5.1–5.2, 6.1–6.2), classes 3, 7, 8 and 9 have none.
pub const DG_CLASSES: [&str; 20] = [
    "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "2.1", "2.2", "2.3", "3", "4.1", "4.2", "4.3", "5.1", "5.2", "6.1",
    "6.2", "7", "8", "9",
];

/// Approved seats (核定载客人数) accepted: a taxi's 5 to a coach's 50-odd, 100 at most.
const SEATS: std::ops::RangeInclusive<i64> = 1..=100;
/// Rated load in kg accepted (GB 1589-2016 caps a combination's gross mass at 49 t).
const TONNAGE_KG: std::ops::RangeInclusive<i64> = 1..=49_000;

/// A vehicle's supervision details as kept (the body of a PUT).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Details {
    /// 道路运输证号: printable, at most 50 characters.
    pub road_transport_certificate_no: String,
    /// The certificate's last valid day, `YYYY-MM-DD`.
    pub road_transport_certificate_valid_until: String,
    /// 检验有效期至: the last day before the next annual inspection falls due, `YYYY-MM-DD`.
    pub annual_inspection_valid_until: String,
    /// 交强险 valid until, `YYYY-MM-DD`.
    pub compulsory_insurance_valid_until: String,
    /// 商业险 valid until, `YYYY-MM-DD`; none when the vehicle has none.
    #[serde(default)]
    pub commercial_insurance_valid_until: Option<String>,
    /// 核定载客人数 (1–100), passenger classes only, required there.
    #[serde(default)]
    pub seats: Option<i64>,
    /// 核定载质量 in kg, goods classes only, required there.
    #[serde(default)]
    pub tonnage_kg: Option<i64>,
    /// GB 6944 class or division (`2.1`, `3`, `6.1`, …), dangerous goods vehicles only, required
    /// there.
    #[serde(default)]
    pub dangerous_goods_class: Option<String>,
}

/// A vehicle of the registry with its supervision details (if kept yet) and their days left.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VehicleView {
    pub vehicle_id: String,
    pub plate: String,
    pub plate_colour: String,
    /// The registry's class (`coach`, `dangerous_goods`, …).
    pub class: String,
    /// The owning enterprise.
    pub org_id: String,
    pub org_name: String,
    /// The bound terminal's phone number, if any.
    pub terminal_phone: Option<String>,
    /// None until the enterprise or the bureau fills them in.
    pub details: Option<Details>,
    /// Days left (negative: expired), from today in Beijing.
    pub road_transport_certificate_days_left: Option<i64>,
    pub annual_inspection_days_left: Option<i64>,
    pub compulsory_insurance_days_left: Option<i64>,
    pub commercial_insurance_days_left: Option<i64>,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

/// Who may read and keep vehicle records: see [`crate::access`].
pub(crate) async fn require_reader(st: &AppState, c: &Caller) -> ApiResult<()> {
    who(st, c).await.map(|_| ())
}

/// Checks details field by field against the vehicle's class: the first fault as a 422 naming it.
pub fn check(class: &str, d: &Details) -> ApiResult<Details> {
    let bad = |field: &str, why: String| ApiError::field(Code::InvalidField, field, why);
    let no = d.road_transport_certificate_no.trim();
    if no.is_empty() || no.chars().count() > 50 || no.chars().any(char::is_control) {
        return Err(bad("road_transport_certificate_no", "1 to 50 printable characters".into()));
    }
    let date = |field: &str, v: &str| -> ApiResult<String> {
        let v = v.trim();
        days_of(v).map(|_| v.to_string()).ok_or_else(|| bad(field, "a date, YYYY-MM-DD (1990 to 2100)".into()))
    };
    let certificate = date("road_transport_certificate_valid_until", &d.road_transport_certificate_valid_until)?;
    let inspection = date("annual_inspection_valid_until", &d.annual_inspection_valid_until)?;
    let compulsory = date("compulsory_insurance_valid_until", &d.compulsory_insurance_valid_until)?;
    let commercial = match d.commercial_insurance_valid_until.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(date("commercial_insurance_valid_until", v)?),
    };
    let passenger = PASSENGER_CLASSES.contains(&class);
    match (passenger, d.seats) {
        (true, Some(s)) if SEATS.contains(&s) => {}
        (true, _) => return Err(bad("seats", "the approved seats, 1 to 100, for a passenger vehicle".into())),
        (false, Some(_)) => return Err(bad("seats", format!("seats apply to passenger vehicles, not to {class}"))),
        (false, None) => {}
    }
    let goods = GOODS_CLASSES.contains(&class);
    match (goods, d.tonnage_kg) {
        (true, Some(t)) if TONNAGE_KG.contains(&t) => {}
        (true, _) => return Err(bad("tonnage_kg", "the rated load in kg, 1 to 49000, for a goods vehicle".into())),
        (false, Some(_)) => {
            return Err(bad("tonnage_kg", format!("a rated load applies to goods vehicles, not to {class}")));
        }
        (false, None) => {}
    }
    let dg = d.dangerous_goods_class.as_deref().map(str::trim).filter(|s| !s.is_empty());
    match (class == DANGEROUS_GOODS, dg) {
        (true, Some(k)) if DG_CLASSES.contains(&k) => {}
        (true, _) => {
            return Err(bad(
                "dangerous_goods_class",
                "a GB 6944 class or division: 1.1–1.6, 2.1–2.3, 3, 4.1–4.3, 5.1, 5.2, 6.1, 6.2, 7, 8 or 9".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(bad("dangerous_goods_class", "only for dangerous goods vehicles".into()));
        }
        (false, None) => {}
    }
    Ok(Details {
        road_transport_certificate_no: no.to_string(),
        road_transport_certificate_valid_until: certificate,
        annual_inspection_valid_until: inspection,
        compulsory_insurance_valid_until: compulsory,
        commercial_insurance_valid_until: commercial,
        seats: d.seats,
        tonnage_kg: d.tonnage_kg,
        dangerous_goods_class: dg.map(str::to_string),
    })
}

const COLS: &str = "v.id AS vehicle_id, v.plate AS plate, v.plate_colour AS plate_colour, v.class AS class, \
     v.org_id AS org_id, o.name AS org_name, t.phone AS terminal_phone, s.vehicle_id AS kept, \
     s.certificate_no AS certificate_no, s.certificate_valid_until AS certificate_valid_until, \
     s.inspection_valid_until AS inspection_valid_until, s.compulsory_valid_until AS compulsory_valid_until, \
     s.commercial_valid_until AS commercial_valid_until, s.seats AS seats, s.tonnage_kg AS tonnage_kg, \
     s.dg_class AS dg_class, s.updated_ms AS updated_ms, s.updated_by AS updated_by";
const FROM: &str = "transport_vehicles v JOIN organisations o ON o.id = v.org_id \
     LEFT JOIN transport_terminals t ON t.vehicle_id = v.id LEFT JOIN supervision_vehicles s ON s.vehicle_id = v.id";

fn row_to_view(r: &AnyRow, today: i64) -> ApiResult<VehicleView> {
    let kept: Option<String> = col(r, "kept")?;
    let left = |d: &Option<String>| d.as_deref().and_then(days_of).map(|d| d - today);
    let (details, updated_at, updated_by) = if kept.is_some() {
        let d = Details {
            road_transport_certificate_no: col(r, "certificate_no")?,
            road_transport_certificate_valid_until: col(r, "certificate_valid_until")?,
            annual_inspection_valid_until: col(r, "inspection_valid_until")?,
            compulsory_insurance_valid_until: col(r, "compulsory_valid_until")?,
            commercial_insurance_valid_until: col(r, "commercial_valid_until")?,
            seats: col(r, "seats")?,
            tonnage_kg: col(r, "tonnage_kg")?,
            dangerous_goods_class: col(r, "dg_class")?,
        };
        (Some(d), Some(ms_to_rfc3339(col(r, "updated_ms")?)), col::<Option<String>>(r, "updated_by")?)
    } else {
        (None, None, None)
    };
    let field = |f: fn(&Details) -> Option<String>| details.as_ref().and_then(f);
    Ok(VehicleView {
        vehicle_id: col(r, "vehicle_id")?,
        plate: col(r, "plate")?,
        plate_colour: col(r, "plate_colour")?,
        class: col(r, "class")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        terminal_phone: col(r, "terminal_phone")?,
        road_transport_certificate_days_left: left(&field(|d| Some(d.road_transport_certificate_valid_until.clone()))),
        annual_inspection_days_left: left(&field(|d| Some(d.annual_inspection_valid_until.clone()))),
        compulsory_insurance_days_left: left(&field(|d| Some(d.compulsory_insurance_valid_until.clone()))),
        commercial_insurance_days_left: left(&field(|d| d.commercial_insurance_valid_until.clone())),
        details,
        updated_at,
        updated_by,
    })
}

/// The list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VehicleQuery {
    /// One enterprise (a regulator's choice; an operator sees its own anyway).
    pub org_id: Option<String>,
    /// The registry's class (`coach`, `dangerous_goods`, …).
    pub class: Option<String>,
    /// Vehicles with any validity ending within this many days from today (0–3650), expired
    /// ones included.
    pub expiring_within_days: Option<i64>,
    /// Vehicles with something expired (true), or with details kept and nothing expired (false).
    pub expired: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Vehicles in the caller's reach with their details, by plate.
pub async fn list(st: &AppState, c: &Caller, q: &VehicleQuery) -> ApiResult<Paged<VehicleView>> {
    require_reader(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let mut w = Where::new();
    w.scope(&c.scope, "v.org_id");
    if c.role == Role::Operator {
        w.and("v.org_id = ?", Arg::S(c.org_id.clone()));
    }
    if let Some(o) = &q.org_id {
        c.require_org(o)?;
        w.and("v.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(k) = &q.class {
        if !PASSENGER_CLASSES.contains(&k.as_str()) && !GOODS_CLASSES.contains(&k.as_str()) {
            return Err(ApiError::field(Code::InvalidQuery, "class", "not a vehicle class of the registry"));
        }
        w.and("v.class = ?", Arg::S(k.clone()));
    }
    let today = today_days();
    if let Some(n) = q.expiring_within_days {
        if !(0..=3650).contains(&n) {
            return Err(ApiError::field(Code::InvalidQuery, "expiring_within_days", "0 to 3650"));
        }
        w.and(
            "(s.certificate_valid_until <= ? OR s.inspection_valid_until <= ? OR s.compulsory_valid_until <= ? \
             OR s.commercial_valid_until <= ?)",
            Arg::S(date_of(today + n)),
        );
    }
    match q.expired {
        Some(true) => _ = w.and(
            "(s.certificate_valid_until < ? OR s.inspection_valid_until < ? OR s.compulsory_valid_until < ? \
             OR s.commercial_valid_until < ?)",
            Arg::S(date_of(today)),
        ),
        Some(false) => _ = w.and(
            "(s.vehicle_id IS NOT NULL AND s.certificate_valid_until >= ? AND s.inspection_valid_until >= ? \
             AND s.compulsory_valid_until >= ? AND (s.commercial_valid_until IS NULL OR s.commercial_valid_until >= ?))",
            Arg::S(date_of(today)),
        ),
        None => {}
    }
    let (rows, total) = fetch_page(&st.store, COLS, FROM, &w, "v.plate, v.id", limit, offset).await?;
    let items = rows.iter().map(|r| row_to_view(r, today)).collect::<ApiResult<_>>()?;
    Ok(Paged { items, total, limit, offset })
}

/// One vehicle in the caller's reach (else 404), with its details.
pub async fn get(st: &AppState, c: &Caller, vehicle_id: &str) -> ApiResult<VehicleView> {
    require_reader(st, c).await?;
    let sql = st.store.sql(&format!("SELECT {COLS} FROM {FROM} WHERE v.id = $1")).into_owned();
    let row = sqlx::query(&sql)
        .bind(vehicle_id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    match row {
        Some(r) => {
            let v = row_to_view(&r, today_days())?;
            if reaches(c, &v.org_id) { Ok(v) } else { Err(ApiError::not_found("vehicle")) }
        }
        None => Err(ApiError::not_found("vehicle")),
    }
}

/// Keeps a vehicle's details: its enterprise's operators, or a transport regulator correcting
/// them; checked against the vehicle's class.
pub async fn put(st: &AppState, c: &Caller, vehicle_id: &str, d: &Details) -> ApiResult<VehicleView> {
    let cur = get(st, c, vehicle_id).await?;
    let d = check(&cur.class, d)?;
    write(st, Actor::of(c), vehicle_id, &d).await?;
    get(st, c, vehicle_id).await
}

/// Stores details (checked by the caller) with their audit record, in one transaction. Also the
/// demo's way in.
pub async fn write(st: &AppState, actor: Actor, vehicle_id: &str, d: &Details) -> ApiResult<()> {
    let store = &st.store;
    let mut tx = store.begin().await?;
    write_in(st, &mut tx, &actor.name, vehicle_id, d).await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "vehicle.details", "vehicle", Some(vehicle_id), Outcome::Success)
            .detail(serde_json::to_value(d).unwrap_or_default()),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Stores details (checked by the caller) inside the caller's transaction, which also writes
/// the audit record (one per vehicle, or one for an import).
pub async fn write_in(
    st: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    by: &str,
    vehicle_id: &str,
    d: &Details,
) -> ApiResult<()> {
    let store = &st.store;
    let by = by.to_string();
    let now = now_ms();
    let update = store.sql(
        "UPDATE supervision_vehicles SET certificate_no = $1, certificate_valid_until = $2, \
         inspection_valid_until = $3, compulsory_valid_until = $4, commercial_valid_until = $5, seats = $6, \
         tonnage_kg = $7, dg_class = $8, updated_ms = $9, updated_by = $10 WHERE vehicle_id = $11",
    );
    let updated = bind_details(sqlx::query(&update), d, now, &by, vehicle_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if updated == 0 {
        let insert = store.sql(
            "INSERT INTO supervision_vehicles (certificate_no, certificate_valid_until, inspection_valid_until, \
             compulsory_valid_until, commercial_valid_until, seats, tonnage_kg, dg_class, updated_ms, updated_by, \
             vehicle_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        bind_details(sqlx::query(&insert), d, now, &by, vehicle_id)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
    }
    Ok(())
}

/// Binds `$1`–`$11` of the update and the insert alike.
fn bind_details<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    d: &Details,
    now: i64,
    by: &str,
    vehicle_id: &str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(d.road_transport_certificate_no.clone())
        .bind(d.road_transport_certificate_valid_until.clone())
        .bind(d.annual_inspection_valid_until.clone())
        .bind(d.compulsory_insurance_valid_until.clone())
        .bind(d.commercial_insurance_valid_until.clone())
        .bind(d.seats)
        .bind(d.tonnage_kg)
        .bind(d.dangerous_goods_class.clone())
        .bind(now)
        .bind(by.to_string())
        .bind(vehicle_id.to_string())
}

// ------------------------------------------------------------------------------------ HTTP

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_vehicles)).routes(routes!(get_vehicle, put_vehicle))
}

/// Vehicles in the caller's reach (a transport regulator: the domain's; an operator: its own)
/// with their supervision details and the days left of each validity, by plate.
#[utoipa::path(get, path = "/api/supervision/vehicles", tag = "supervision", params(VehicleQuery),
    responses((status = 200, body = Paged<VehicleView>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_vehicles(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Query(q): Query<VehicleQuery>,
) -> ApiResult<axum::Json<Paged<VehicleView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// One vehicle with its supervision details.
#[utoipa::path(get, path = "/api/supervision/vehicles/{vehicle_id}", tag = "supervision",
    params(("vehicle_id" = String, Path)),
    responses((status = 200, body = VehicleView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_vehicle(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(vehicle_id): Path<String>,
) -> ApiResult<axum::Json<VehicleView>> {
    Ok(axum::Json(get(&st, &c, &vehicle_id).await?))
}

/// Keeps a vehicle's supervision details (its enterprise's operators, or a transport regulator):
/// every field checked against the vehicle's class, a 422 naming the first faulty field.
#[utoipa::path(put, path = "/api/supervision/vehicles/{vehicle_id}", tag = "supervision",
    params(("vehicle_id" = String, Path)), request_body = Details,
    responses((status = 200, body = VehicleView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_vehicle(
    axum::extract::State(st): axum::extract::State<AppState>,
    Auth(c): Auth,
    Path(vehicle_id): Path<String>,
    Json(d): Json<Details>,
) -> ApiResult<axum::Json<VehicleView>> {
    Ok(axum::Json(put(&st, &c, &vehicle_id, &d).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> Details {
        Details {
            road_transport_certificate_no: "津交运管货字120114001001号".into(),
            road_transport_certificate_valid_until: "2030-01-31".into(),
            annual_inspection_valid_until: "2027-02-28".into(),
            compulsory_insurance_valid_until: "2027-03-01".into(),
            commercial_insurance_valid_until: None,
            seats: None,
            tonnage_kg: Some(20_000),
            dangerous_goods_class: Some("2.1".into()),
        }
    }

    fn field_of(class: &str, d: &Details) -> Option<String> {
        check(class, d).err().and_then(|e| e.field)
    }

    #[test]
    fn fields_are_checked_against_the_class() {
        assert!(check("dangerous_goods", &details()).is_ok());
        let mut d = details();
        d.dangerous_goods_class = Some("2".into());
        assert_eq!(field_of("dangerous_goods", &d).as_deref(), Some("dangerous_goods_class"));
        assert_eq!(field_of("heavy_goods", &details()).as_deref(), Some("dangerous_goods_class"));
        assert_eq!(field_of("coach", &details()).as_deref(), Some("seats"));
        let mut d = details();
        d.seats = Some(45);
        d.tonnage_kg = None;
        d.dangerous_goods_class = None;
        assert!(check("coach", &d).is_ok());
        d.seats = Some(101);
        assert_eq!(field_of("coach", &d).as_deref(), Some("seats"));
        let mut d = details();
        d.annual_inspection_valid_until = "2027-02-29".into();
        assert_eq!(field_of("dangerous_goods", &d).as_deref(), Some("annual_inspection_valid_until"));
        let mut d = details();
        d.road_transport_certificate_no = "x".repeat(51);
        assert_eq!(field_of("dangerous_goods", &d).as_deref(), Some("road_transport_certificate_no"));
        assert_eq!(days_of("1970-01-02"), None);
        assert_eq!(date_of(days_of("2026-05-17").unwrap_or_default()), "2026-05-17");
    }
}
