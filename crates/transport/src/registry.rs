//! The registry of vehicles and terminals and their binding (车辆、终端及其绑定), scoped to the
//! enterprise that owns them.

use crate::model::{Plate, PlateColour, TerminalPhone, VehicleClass};
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code};
use kernel::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// Who may read transport records: the transport bureau's regulators (their domain) and the
/// enterprises' operators (their own organisation).
pub fn require_read(c: &Caller) -> ApiResult<()> {
    match c.role {
        Role::Regulator | Role::Operator => Ok(()),
        _ => Err(ApiError::forbidden("transport records are for regulators and enterprise operators")),
    }
}

/// Who may write: an enterprise's operators, for their own organisation.
pub fn require_write(c: &Caller, org_id: &str) -> ApiResult<()> {
    if c.role != Role::Operator {
        return Err(ApiError::forbidden("vehicles and terminals are registered by their enterprise's operators"));
    }
    c.require_org(org_id)?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Vehicle {
    pub id: String,
    /// The owning enterprise.
    pub org_id: String,
    /// 号牌号码, e.g. 津A12345.
    pub plate: String,
    pub plate_colour: PlateColour,
    pub class: VehicleClass,
    /// Vehicle identification number, when known.
    pub vin: Option<String>,
    /// The bound terminal's phone number, if any.
    pub terminal_phone: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVehicle {
    /// Defaults to the caller's organisation.
    pub org_id: Option<String>,
    pub plate: String,
    pub plate_colour: PlateColour,
    pub class: VehicleClass,
    pub vin: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehiclePatch {
    pub class: Option<VehicleClass>,
    /// Empty string removes it.
    pub vin: Option<String>,
}

const VEHICLE_COLS: &str =
    "v.id, v.org_id, v.plate, v.plate_colour, v.class, v.vin, v.created_ms, v.updated_ms, t.phone AS terminal_phone";
const VEHICLE_FROM: &str = "transport_vehicles v LEFT JOIN transport_terminals t ON t.vehicle_id = v.id";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

fn row_to_vehicle(r: &AnyRow) -> StoreResult<Vehicle> {
    let colour: String = col(r, "plate_colour")?;
    let class: String = col(r, "class")?;
    Ok(Vehicle {
        id: col(r, "id")?,
        org_id: col(r, "org_id")?,
        plate: col(r, "plate")?,
        plate_colour: PlateColour::parse(&colour).ok_or_else(|| corrupt("plate colour", &colour))?,
        class: VehicleClass::parse(&class).ok_or_else(|| corrupt("vehicle class", &class))?,
        vin: col(r, "vin")?,
        terminal_phone: col(r, "terminal_phone")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
    })
}

/// A plate number as the API and the import check it.
pub fn check_plate(s: &str) -> ApiResult<Plate> {
    Plate::parse(s).map_err(|m| ApiError::field(Code::InvalidField, "plate", m))
}

/// An optional VIN as the API and the import check it: blank is none.
pub fn check_optional_vin(v: Option<&str>) -> ApiResult<Option<String>> {
    v.filter(|v| !v.trim().is_empty()).map(check_vin).transpose()
}

/// A VIN: 17 characters of digits and capitals other than I, O and Q (ISO 3779).
pub fn check_vin(v: &str) -> ApiResult<String> {
    let v = v.trim().to_uppercase();
    let ok = v.len() == 17 && v.bytes().all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOQ".contains(&b)));
    if ok {
        Ok(v)
    } else {
        Err(ApiError::field(
            Code::InvalidField,
            "vin",
            "a VIN has 17 characters: digits and letters other than I, O, Q",
        ))
    }
}

fn write_error(e: sqlx::Error, field: &str, what: &str) -> ApiError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => ApiError::field(Code::Conflict, field, what.to_string()),
        other => other.into(),
    }
}

pub async fn create_vehicle(store: &Store, c: &Caller, new: NewVehicle) -> ApiResult<Vehicle> {
    let org_id = new.org_id.clone().unwrap_or_else(|| c.org_id.clone());
    require_write(c, &org_id)?;
    insert_vehicle(store, Actor::of(c), &org_id, new).await
}

/// Validates and stores a vehicle; the caller has checked who may (the API, or the demo seed).
pub async fn insert_vehicle(store: &Store, actor: Actor, org_id: &str, new: NewVehicle) -> ApiResult<Vehicle> {
    let plate = check_plate(&new.plate)?;
    let vin = check_optional_vin(new.vin.as_deref())?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO transport_vehicles (id, org_id, plate, plate_colour, class, vin, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    ))
    .bind(id.clone())
    .bind(org_id.to_string())
    .bind(plate.as_str().to_string())
    .bind(new.plate_colour.as_str())
    .bind(new.class.as_str())
    .bind(vin)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "plate", "a vehicle with this plate and colour is registered"))?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "vehicle.create", "vehicle", Some(&id), Outcome::Success)
            .detail(serde_json::json!({"plate": plate.as_str(), "class": new.class.as_str(), "org_id": org_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    vehicle_by_id(store, &id).await?.ok_or_else(|| ApiError::internal("vehicle vanished after insert"))
}

/// A vehicle checked for storing (by [`check_plate`], [`check_optional_vin`] and the types).
#[derive(Debug, Clone)]
pub struct CheckedVehicle {
    pub plate: Plate,
    pub plate_colour: PlateColour,
    pub class: VehicleClass,
    pub vin: Option<String>,
}

/// Of these plates and colours, the ones registered (to any enterprise: the pair is unique).
pub async fn registered_plates(
    store: &Store,
    plates: &[(&str, PlateColour)],
) -> StoreResult<std::collections::HashSet<(String, PlateColour)>> {
    let wanted: std::collections::HashSet<(&str, PlateColour)> = plates.iter().copied().collect();
    let mut unique: Vec<&str> = plates.iter().map(|(p, _)| *p).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut found = std::collections::HashSet::new();
    for chunk in unique.chunks(500) {
        let sql = format!(
            "SELECT plate, plate_colour FROM transport_vehicles WHERE plate IN {}",
            store.values_placeholders(1, chunk.len())
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q.bind(p.to_string());
        }
        for r in q.fetch_all(store.reader()).await? {
            let (plate, colour): (String, String) = (col(&r, "plate")?, col(&r, "plate_colour")?);
            if let Some(c) = PlateColour::parse(&colour).filter(|c| wanted.contains(&(plate.as_str(), *c))) {
                found.insert((plate, c));
            }
        }
    }
    Ok(found)
}

/// Rows per INSERT of the import: 500 × 8 = 4000 parameters, inside SQLite's and PostgreSQL's
/// limits.
const IMPORT_ROWS_PER_STATEMENT: usize = 500;

/// Stores checked vehicles of one enterprise in ONE transaction with one audit record
/// (`vehicle.import`, carrying `detail`): all of them or, on any failure, none. A plate
/// registered meanwhile is a 409 and nothing is stored. The caller has checked who may.
pub async fn import_vehicles(
    store: &Store,
    actor: Actor,
    org_id: &str,
    rows: &[CheckedVehicle],
    detail: serde_json::Value,
) -> ApiResult<Vec<Vehicle>> {
    let now = now_ms();
    let vehicles: Vec<Vehicle> = rows
        .iter()
        .map(|r| Vehicle {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org_id.to_string(),
            plate: r.plate.as_str().to_string(),
            plate_colour: r.plate_colour,
            class: r.class,
            vin: r.vin.clone(),
            terminal_phone: None,
            created_at: ms_to_rfc3339(now),
            updated_at: ms_to_rfc3339(now),
        })
        .collect();
    let mut tx = store.begin().await?;
    for chunk in vehicles.chunks(IMPORT_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO transport_vehicles (id, org_id, plate, plate_colour, class, vin, created_ms, updated_ms) VALUES {}",
            store.values_placeholders(chunk.len(), 8)
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for v in chunk {
            q = q
                .bind(v.id.clone())
                .bind(v.org_id.clone())
                .bind(v.plate.clone())
                .bind(v.plate_colour.as_str())
                .bind(v.class.as_str())
                .bind(v.vin.clone())
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await.map_err(|e| {
            write_error(
                e,
                "plate",
                "a vehicle with one of these plates and colours was registered meanwhile; try again",
            )
        })?;
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "vehicle.import", "organisation", Some(org_id), Outcome::Success).detail(detail),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(vehicles)
}

pub async fn vehicle_by_id(store: &Store, id: &str) -> StoreResult<Option<Vehicle>> {
    let sql = store.sql(&format!("SELECT {VEHICLE_COLS} FROM {VEHICLE_FROM} WHERE v.id = $1")).into_owned();
    let r = sqlx::query(&sql).bind(id.to_string()).fetch_optional(store.reader()).await?;
    r.as_ref().map(row_to_vehicle).transpose()
}

/// A vehicle the caller may see, or not-found.
pub async fn get_vehicle(store: &Store, c: &Caller, id: &str) -> ApiResult<Vehicle> {
    require_read(c)?;
    match vehicle_by_id(store, id).await? {
        Some(v) if c.scope.contains(&v.org_id) => Ok(v),
        _ => Err(ApiError::not_found("vehicle")),
    }
}

#[derive(Debug, Default, Clone)]
pub struct VehicleFilter {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    /// Substring of the plate.
    pub plate: Option<String>,
    /// With (true) or without (false) a bound terminal.
    pub bound: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list_vehicles(store: &Store, c: &Caller, f: &VehicleFilter) -> ApiResult<(Vec<Vehicle>, i64)> {
    require_read(c)?;
    let mut w = Where::new();
    w.scope(&c.scope, "v.org_id");
    if let Some(o) = &f.org_id {
        c.require_org(o)?;
        w.and("v.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(k) = f.class {
        w.and("v.class = ?", Arg::S(k.as_str().into()));
    }
    if let Some(p) = &f.plate {
        w.contains(&["v.plate"], &p.to_uppercase());
    }
    match f.bound {
        Some(true) => _ = w.and_fixed("t.id IS NOT NULL"),
        Some(false) => _ = w.and_fixed("t.id IS NULL"),
        None => {}
    }
    let (rows, total) = fetch_page(store, VEHICLE_COLS, VEHICLE_FROM, &w, "v.plate", f.limit, f.offset).await?;
    Ok((rows.iter().map(row_to_vehicle).collect::<StoreResult<_>>()?, total))
}

pub async fn update_vehicle(store: &Store, c: &Caller, id: &str, p: VehiclePatch) -> ApiResult<Vehicle> {
    let cur = get_vehicle(store, c, id).await?;
    require_write(c, &cur.org_id)?;
    let class = p.class.unwrap_or(cur.class);
    let vin = match p.vin.as_deref() {
        None => cur.vin.clone(),
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(check_vin(v)?),
    };
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE transport_vehicles SET class = $1, vin = $2, updated_ms = $3 WHERE id = $4"))
        .bind(class.as_str())
        .bind(vin)
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "vehicle.update", "vehicle", Some(id), Outcome::Success)
            .detail(serde_json::json!({"class": class.as_str()})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    get_vehicle(store, c, id).await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Terminal {
    pub id: String,
    pub org_id: String,
    /// 终端手机号: the terminal's identity in JT/T 808 headers.
    pub phone: String,
    /// 终端ID (7 characters in 2013, up to 30 in 2019).
    pub terminal_id: String,
    /// 制造商ID
    pub maker: String,
    /// 终端型号
    pub model: String,
    pub vehicle_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTerminal {
    pub org_id: Option<String>,
    pub phone: String,
    #[serde(default)]
    pub terminal_id: String,
    #[serde(default)]
    pub maker: String,
    #[serde(default)]
    pub model: String,
}

const TERMINAL_COLS: &str = "id, org_id, phone, terminal_id, maker, model, vehicle_id, created_ms, updated_ms";

fn row_to_terminal(r: &AnyRow) -> StoreResult<Terminal> {
    Ok(Terminal {
        id: col(r, "id")?,
        org_id: col(r, "org_id")?,
        phone: col(r, "phone")?,
        terminal_id: col(r, "terminal_id")?,
        maker: col(r, "maker")?,
        model: col(r, "model")?,
        vehicle_id: col(r, "vehicle_id")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        updated_at: ms_to_rfc3339(col(r, "updated_ms")?),
    })
}

fn check_text(field: &str, s: &str, max: usize) -> ApiResult<String> {
    let t = s.trim();
    if t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(ApiError::field(
            Code::InvalidField,
            field,
            format!("{field} has at most {max} printable characters"),
        ));
    }
    Ok(t.to_string())
}

pub async fn create_terminal(store: &Store, c: &Caller, new: NewTerminal) -> ApiResult<Terminal> {
    let org_id = new.org_id.clone().unwrap_or_else(|| c.org_id.clone());
    require_write(c, &org_id)?;
    insert_terminal(store, Actor::of(c), &org_id, new).await
}

/// Validates and stores a terminal; the caller has checked who may.
/// A terminal's fields after checking (the phone parsed, the texts bounded).
#[derive(Debug, Clone)]
pub struct CheckedTerminal {
    pub phone: TerminalPhone,
    pub terminal_id: String,
    pub maker: String,
    pub model: String,
}

/// Checks a terminal's fields: the first fault as a 422 naming it.
pub fn check_terminal(new: &NewTerminal) -> ApiResult<CheckedTerminal> {
    Ok(CheckedTerminal {
        phone: TerminalPhone::parse(&new.phone).map_err(|m| ApiError::field(Code::InvalidField, "phone", m))?,
        terminal_id: check_text("terminal_id", &new.terminal_id, 30)?,
        maker: check_text("maker", &new.maker, 11)?,
        model: check_text("model", &new.model, 30)?,
    })
}

/// Which of `phones` are registered already (for an import's report).
pub async fn registered_phones(store: &Store, phones: &[&str]) -> StoreResult<std::collections::HashSet<String>> {
    let mut found = std::collections::HashSet::new();
    for chunk in phones.chunks(500) {
        let sql = format!(
            "SELECT phone FROM transport_terminals WHERE phone IN {}",
            store.values_placeholders(1, chunk.len())
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q.bind(p.to_string());
        }
        for r in q.fetch_all(store.reader()).await? {
            found.insert(col::<String>(&r, "phone")?);
        }
    }
    Ok(found)
}

/// Stores checked terminals of one enterprise, each bound to its vehicle when one is given, in
/// ONE transaction with one audit record (`terminal.import`, carrying `detail`): all or none. A
/// phone registered or a vehicle bound meanwhile is a 409 and nothing is stored. The caller has
/// checked who may, and that each vehicle is the enterprise's.
pub async fn import_terminals(
    store: &Store,
    actor: Actor,
    org_id: &str,
    rows: &[(CheckedTerminal, Option<String>)],
    detail: serde_json::Value,
) -> ApiResult<usize> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    // Rows per INSERT: 500 × 9 parameters.
    for chunk in rows.chunks(IMPORT_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO transport_terminals (id, org_id, phone, terminal_id, maker, model, vehicle_id, created_ms, \
             updated_ms) VALUES {}",
            store.values_placeholders(chunk.len(), 9)
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for (t, vehicle) in chunk {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(org_id.to_string())
                .bind(t.phone.as_str().to_string())
                .bind(t.terminal_id.clone())
                .bind(t.maker.clone())
                .bind(t.model.clone())
                .bind(vehicle.clone())
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await.map_err(|e| {
            write_error(e, "phone", "a terminal with one of these phones, or a binding to one of these vehicles, was registered meanwhile; try again")
        })?;
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "terminal.import", "organisation", Some(org_id), Outcome::Success).detail(detail),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(rows.len())
}

pub async fn insert_terminal(store: &Store, actor: Actor, org_id: &str, new: NewTerminal) -> ApiResult<Terminal> {
    let CheckedTerminal { phone, terminal_id, maker, model } = check_terminal(&new)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO transport_terminals (id, org_id, phone, terminal_id, maker, model, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    ))
    .bind(id.clone())
    .bind(org_id.to_string())
    .bind(phone.as_str().to_string())
    .bind(terminal_id)
    .bind(maker)
    .bind(model)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| write_error(e, "phone", "a terminal with this phone number is registered"))?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "terminal.create", "terminal", Some(&id), Outcome::Success)
            .detail(serde_json::json!({"phone": phone.as_str(), "org_id": org_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    terminal_by_id(store, &id).await?.ok_or_else(|| ApiError::internal("terminal vanished after insert"))
}

pub async fn terminal_by_id(store: &Store, id: &str) -> StoreResult<Option<Terminal>> {
    let sql = store.sql(&format!("SELECT {TERMINAL_COLS} FROM transport_terminals WHERE id = $1")).into_owned();
    let r = sqlx::query(&sql).bind(id.to_string()).fetch_optional(store.reader()).await?;
    r.as_ref().map(row_to_terminal).transpose()
}

/// The terminal with this header phone number, for the gateway.
pub async fn terminal_by_phone(store: &Store, phone: &TerminalPhone) -> StoreResult<Option<Terminal>> {
    let sql = store.sql(&format!("SELECT {TERMINAL_COLS} FROM transport_terminals WHERE phone = $1")).into_owned();
    let r = sqlx::query(&sql).bind(phone.as_str().to_string()).fetch_optional(store.reader()).await?;
    r.as_ref().map(row_to_terminal).transpose()
}

pub async fn get_terminal(store: &Store, c: &Caller, id: &str) -> ApiResult<Terminal> {
    require_read(c)?;
    match terminal_by_id(store, id).await? {
        Some(t) if c.scope.contains(&t.org_id) => Ok(t),
        _ => Err(ApiError::not_found("terminal")),
    }
}

#[derive(Debug, Default, Clone)]
pub struct TerminalFilter {
    pub org_id: Option<String>,
    pub phone: Option<String>,
    /// Only bound (true) or unbound (false) terminals.
    pub bound: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list_terminals(store: &Store, c: &Caller, f: &TerminalFilter) -> ApiResult<(Vec<Terminal>, i64)> {
    require_read(c)?;
    let mut w = Where::new();
    w.scope(&c.scope, "org_id");
    if let Some(o) = &f.org_id {
        c.require_org(o)?;
        w.and("org_id = ?", Arg::S(o.clone()));
    }
    if let Some(p) = &f.phone {
        w.contains(&["phone"], p);
    }
    match f.bound {
        Some(true) => {
            w.and_fixed("vehicle_id IS NOT NULL");
        }
        Some(false) => {
            w.and_fixed("vehicle_id IS NULL");
        }
        None => {}
    }
    let (rows, total) = fetch_page(store, TERMINAL_COLS, "transport_terminals", &w, "phone", f.limit, f.offset).await?;
    Ok((rows.iter().map(row_to_terminal).collect::<StoreResult<_>>()?, total))
}

/// Binds a terminal to a vehicle of the same enterprise; a vehicle has at most one terminal.
pub async fn bind(store: &Store, c: &Caller, terminal_id: &str, vehicle_id: Option<&str>) -> ApiResult<Terminal> {
    let t = get_terminal(store, c, terminal_id).await?;
    require_write(c, &t.org_id)?;
    if let Some(v) = vehicle_id {
        let veh = match get_vehicle(store, c, v).await {
            Ok(veh) => veh,
            Err(_) => return Err(ApiError::field(Code::InvalidField, "vehicle_id", "no such vehicle in your scope")),
        };
        if veh.org_id != t.org_id {
            return Err(ApiError::field(Code::InvalidField, "vehicle_id", "the vehicle belongs to another enterprise"));
        }
    }
    set_binding(store, Actor::of(c), &t, vehicle_id).await?;
    get_terminal(store, c, terminal_id).await
}

/// Stores a binding; the caller has checked that terminal and vehicle belong together.
pub async fn set_binding(store: &Store, actor: Actor, t: &Terminal, vehicle_id: Option<&str>) -> ApiResult<()> {
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE transport_terminals SET vehicle_id = $1, updated_ms = $2 WHERE id = $3"))
        .bind(vehicle_id.map(str::to_string))
        .bind(now_ms())
        .bind(t.id.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, "vehicle_id", "that vehicle already has a terminal; unbind it first"))?;
    let action = if vehicle_id.is_some() { "terminal.bind" } else { "terminal.unbind" };
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, action, "terminal", Some(&t.id), Outcome::Success)
            .detail(serde_json::json!({"vehicle_id": vehicle_id, "previous": t.vehicle_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Every vehicle, a page at a time (start-up of the live state; no caller).
pub async fn all_vehicles(store: &Store, limit: i64, offset: i64) -> StoreResult<(Vec<Vehicle>, i64)> {
    let (rows, total) = fetch_page(store, VEHICLE_COLS, VEHICLE_FROM, &Where::new(), "v.id", limit, offset).await?;
    Ok((rows.iter().map(row_to_vehicle).collect::<StoreResult<_>>()?, total))
}

/// Issues a fresh authentication code (鉴权码) to a terminal at registration; only its SM3 hash
/// is stored, so a copy of the database does not let anyone impersonate a terminal.
pub async fn issue_auth_code(store: &Store, t: &Terminal) -> StoreResult<String> {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let code: String = (0..16).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE transport_terminals SET auth_code_hash = $1, updated_ms = $2 WHERE id = $3"))
        .bind(kernel::crypto::sm3_hex(code.as_bytes()))
        .bind(now_ms())
        .bind(t.id.clone())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(code)
}

/// Whether `code` is the terminal's current authentication code.
pub async fn check_auth_code(store: &Store, terminal_id: &str, code: &str) -> StoreResult<bool> {
    let r = sqlx::query(&store.sql("SELECT auth_code_hash FROM transport_terminals WHERE id = $1"))
        .bind(terminal_id.to_string())
        .fetch_optional(store.reader())
        .await?;
    let stored: Option<String> = match r {
        Some(r) => col(&r, "auth_code_hash")?,
        None => None,
    };
    Ok(stored.is_some_and(|s| !code.is_empty() && s == kernel::crypto::sm3_hex(code.as_bytes())))
}
