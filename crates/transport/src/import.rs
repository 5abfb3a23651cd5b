//! Bulk import of vehicles (车辆批量导入) and terminals (终端批量导入) from xlsx or CSV, and
//! their templates.
//!
//! Every row is checked as `POST /api/transport/vehicles` checks one vehicle (the registry's
//! `check_plate`, `check_optional_vin`, the colour and class by their codes or Chinese names),
//! plus plates repeated within the file and plates already registered (a plate and its colour are
//! unique). `all_or_nothing` (the default) imports nothing while any row is bad; `valid_only`
//! imports the good rows and reports the others. The write is one transaction with one audit
//! record; the live map learns the new vehicles after the commit.

use crate::live::LiveMap;
use crate::model::{PlateColour, VehicleClass};
use crate::registry::{self, CheckedVehicle};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kernel::audit::Actor;
use kernel::error::{ApiError, ApiResult, Problem};
use kernel::http::{AppState, Auth, Query};
use kernel::import::{self as sheet, ColumnSpec, ImportMode, ImportRejected, ImportReport, RowError, Table};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_vehicles))
        .routes(routes!(vehicle_template))
        .routes(routes!(import_terminals))
        .routes(routes!(terminal_template))
        // Uploads are larger than the API's JSON bodies; the reader bounds rows and unpacked size.
        .layer(DefaultBodyLimit::max(sheet::MAX_BYTES))
}

/// Plate colours as a sheet may give them: the Chinese name (with or without 色), the
/// JT/T 697.7 code, or the API's code.
fn colour_names(c: PlateColour) -> &'static [&'static str] {
    match c {
        PlateColour::Blue => &["蓝色", "蓝"],
        PlateColour::Yellow => &["黄色", "黄"],
        PlateColour::Black => &["黑色", "黑"],
        PlateColour::White => &["白色", "白"],
        PlateColour::Green => &["绿色", "绿"],
        PlateColour::Other => &["其他", "其它"],
    }
}

/// Codes compare without case, spaces, `_` and `-`.
fn fold(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect()
}

pub fn parse_colour(s: &str) -> Option<PlateColour> {
    let f = fold(s);
    PlateColour::ALL
        .into_iter()
        .find(|c| f == fold(c.as_str()) || f == c.code().to_string() || colour_names(*c).iter().any(|n| f == fold(n)))
}

pub fn parse_class(s: &str) -> Option<VehicleClass> {
    let f = fold(s);
    VehicleClass::ALL.into_iter().find(|c| {
        let (zh, en) = c.label();
        f == fold(c.as_str()) || f == fold(zh) || f == fold(en)
    })
}

/// The columns of the vehicle sheet.
pub fn vehicle_columns() -> Vec<ColumnSpec> {
    let colours: Vec<String> = PlateColour::ALL.iter().map(|c| colour_names(*c)[0].to_string()).collect();
    let classes: Vec<String> = VehicleClass::ALL.iter().map(|c| c.label().0.to_string()).collect();
    let codes = |pairs: Vec<String>| pairs.join(", ");
    vec![
        ColumnSpec::new("plate", "车牌号")
            .required()
            .aliases(&["车牌号码", "号牌号码"])
            .example("津A12345")
            .help("号牌号码, e.g. 津A12345 (新能源 津AD12345)")
            .width(14.0),
        ColumnSpec::new("plate_colour", "车牌颜色")
            .required()
            .aliases(&["号牌颜色"])
            .example("黄色")
            .help(format!(
                "{} — or JT/T 697.7 codes {}",
                colours.join(" "),
                codes(PlateColour::ALL.iter().map(|c| format!("{}={}", c.code(), colour_names(*c)[0])).collect())
            ))
            .choices(colours)
            .width(10.0),
        ColumnSpec::new("class", "车辆类型")
            .required()
            .example(VehicleClass::DangerousGoods.label().0)
            .help(format!(
                "{} — or codes {}",
                classes.join(" "),
                codes(VehicleClass::ALL.iter().map(|c| c.as_str().to_string()).collect())
            ))
            .choices(classes)
            .width(16.0),
        ColumnSpec::new("vin", "车辆识别代号")
            .aliases(&["车架号", "VIN码"])
            .example("LGAX2A136D1002345")
            .help("17 characters: digits and letters other than I, O, Q (may be left empty)")
            .width(22.0),
    ]
}

/// Checks one row as the API checks a vehicle: every fault of the row, not only the first.
fn check_row(t: &Table, row: &sheet::Row) -> Result<CheckedVehicle, Vec<RowError>> {
    let mut errors = Vec::new();
    let n = row.number;
    let required = |key: &str, errors: &mut Vec<RowError>| {
        let v = row.get(key);
        if v.is_empty() {
            errors.push(t.error(n, key, "a value is required"));
        }
        (!v.is_empty()).then_some(v)
    };
    let plate = required("plate", &mut errors).and_then(|p| match registry::check_plate(p) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(t.error(n, "plate", e.message));
            None
        }
    });
    let colour = required("plate_colour", &mut errors).and_then(|c| {
        let r = parse_colour(c);
        if r.is_none() {
            errors.push(t.error(
                n,
                "plate_colour",
                "unknown plate colour: 蓝色 黄色 黑色 白色 绿色 其他, or codes 1 2 3 4 5 9",
            ));
        }
        r
    });
    let class = required("class", &mut errors).and_then(|c| {
        let r = parse_class(c);
        if r.is_none() {
            let names: Vec<&str> = VehicleClass::ALL.iter().map(|c| c.label().0).collect();
            errors.push(t.error(n, "class", format!("unknown vehicle class: {}, or their codes", names.join(" "))));
        }
        r
    });
    let vin = match registry::check_optional_vin(Some(row.get("vin"))) {
        Ok(v) => v,
        Err(e) => {
            errors.push(t.error(n, "vin", e.message));
            None
        }
    };
    match (plate, colour, class) {
        (Some(plate), Some(plate_colour), Some(class)) if errors.is_empty() => {
            Ok(CheckedVehicle { plate, plate_colour, class, vin })
        }
        _ => Err(errors),
    }
}

/// Checks every row; returns the good ones (with their row numbers) and every error. A plate
/// and colour repeated in the file is an error on the later rows; one already registered is an
/// error on every row that has it.
async fn check_rows(st: &AppState, t: &Table) -> ApiResult<(Vec<(u32, CheckedVehicle)>, Vec<RowError>)> {
    let mut good = Vec::with_capacity(t.rows.len());
    let mut errors = Vec::new();
    let mut first_row: HashMap<(String, PlateColour), u32> = HashMap::new();
    for row in &t.rows {
        match check_row(t, row) {
            Ok(v) => {
                let key = (v.plate.as_str().to_string(), v.plate_colour);
                if let Some(first) = first_row.get(&key) {
                    errors.push(t.error(row.number, "plate", format!("the same plate and colour as row {first}")));
                } else {
                    first_row.insert(key, row.number);
                    good.push((row.number, v));
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    let pairs: Vec<(&str, PlateColour)> = good.iter().map(|(_, v)| (v.plate.as_str(), v.plate_colour)).collect();
    let registered = registry::registered_plates(&st.store, &pairs).await?;
    if !registered.is_empty() {
        good.retain(|(n, v)| {
            let taken = registered.contains(&(v.plate.as_str().to_string(), v.plate_colour));
            if taken {
                errors.push(t.error(*n, "plate", "a vehicle with this plate and colour is registered"));
            }
            !taken
        });
    }
    Ok((good, errors))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `all_or_nothing` (default): any bad row and nothing is imported; `valid_only`: the good
    /// rows are imported, the bad ones reported.
    pub mode: Option<ImportMode>,
    /// Check and report only; nothing is written.
    pub dry_run: Option<bool>,
    /// The enterprise the vehicles belong to; defaults to the caller's.
    pub org_id: Option<String>,
}

/// Imports vehicles of the caller's enterprise from an xlsx workbook (first sheet) or a CSV
/// file (UTF-8, or GBK as Chinese Excel saves it), sent as the request body. The header row names
/// the columns 车牌号 (plate), 车牌颜色 (plate_colour), 车辆类型 (class), 车辆识别代号 (vin,
/// optional), by Chinese title or English key. Every row is checked as a single registration
/// is, plus repeated and already registered plates; errors name the row as Excel numbers it
/// (the header is row 1) and the column as the file names it. With any bad row, the default
/// `all_or_nothing` answers 422 with the report and writes nothing; `valid_only` imports the
/// good rows and lists the skipped ones. All rows are written in one transaction, audited once
/// (`vehicle.import`). At most 50 000 rows and 20 MiB.
#[utoipa::path(post, path = "/api/transport/vehicles/import", tag = "transport", params(ImportQuery),
    request_body(description = "the xlsx or CSV file", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "text/csv"))),
    responses((status = 200, body = ImportReport, description = "imported (or, with dry_run, checked): the report"),
        (status = 400, body = Problem, description = "not a readable xlsx or CSV file"),
        (status = 403, body = Problem), (status = 409, body = Problem, description = "a plate was registered meanwhile; nothing imported"),
        (status = 413, body = Problem, description = "over 20 MiB or 50 000 rows"), (status = 415, body = Problem),
        (status = 422, body = ImportRejected, description = "bad rows or header: the report, nothing imported")),
    security(("session" = []), ("bearer" = [])))]
async fn import_vehicles(
    State(st): State<AppState>,
    Extension(live): Extension<LiveMap>,
    Auth(c): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org_id = q.org_id.clone().unwrap_or_else(|| c.org_id.clone());
    registry::require_write(&c, &org_id)?;
    sheet::check_content_type(&headers)?;
    let (mode, dry_run) = (q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false));
    let began = std::time::Instant::now();
    let read = tokio::task::spawn_blocking(move || sheet::read_table(&body, &vehicle_columns()))
        .await
        .map_err(ApiError::internal)?;
    let table = match read {
        Ok(t) => t,
        Err(e) => return Ok(e.into_response(mode, dry_run)),
    };
    let total = table.rows.len();
    let (good, errors) = check_rows(&st, &table).await?;
    if !errors.is_empty() && mode == ImportMode::AllOrNothing {
        let report = ImportReport::new(mode, dry_run, total, errors, 0);
        let detail = format!(
            "{} of {total} rows have errors: nothing was imported (fix them, or import with mode=valid_only)",
            report.invalid_rows.len()
        );
        return Ok(ImportRejected::new(detail, report).into_response());
    }
    let checked = began.elapsed();
    let mut imported = 0;
    if !dry_run && !good.is_empty() {
        let rows: Vec<CheckedVehicle> = good.into_iter().map(|(_, v)| v).collect();
        let skipped = total - rows.len();
        let detail = serde_json::json!({"org_id": org_id, "rows": total, "imported": rows.len(), "skipped": skipped, "mode": mode});
        let vehicles = registry::import_vehicles(&st.store, Actor::of(&c), &org_id, &rows, detail).await?;
        vehicles.iter().for_each(|v| live.register(v));
        imported = vehicles.len();
        metrics::counter!("wuqing_import_rows_total", "what" => "vehicles").increment(imported as u64);
    }
    tracing::info!(org = %org_id, rows = total, imported, bad = errors.len(), ?mode, dry_run,
        check_ms = checked.as_millis() as u64, total_ms = began.elapsed().as_millis() as u64, "vehicle import");
    Ok(axum::Json(ImportReport::new(mode, dry_run, total, errors, imported)).into_response())
}

/// The vehicle import template (xlsx): the header row, an example row, notes on what each column
/// takes and the lists of colours and classes.
#[utoipa::path(get, path = "/api/transport/vehicles/import/template.xlsx", tag = "transport",
    responses((status = 200, description = "the template",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn vehicle_template(Auth(c): Auth) -> ApiResult<Response> {
    registry::require_read(&c)?;
    let bytes = sheet::template_xlsx("车辆 vehicles", &vehicle_columns()).map_err(ApiError::internal)?;
    Ok(sheet::xlsx_attachment(bytes, "vehicles-template.xlsx"))
}

// ------------------------------------------------------------------------------ terminals

/// The columns of the terminal sheet.
pub fn terminal_columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::new("phone", "终端手机号")
            .required()
            .aliases(&["SIM卡号", "终端SIM卡号", "手机号"])
            .example("13900001234")
            .help("the number the terminal puts in its message headers: digits, up to 20")
            .width(16.0),
        ColumnSpec::new("terminal_id", "终端ID").example("T123456").help("up to 30 characters").width(12.0),
        ColumnSpec::new("maker", "制造商ID").example("70111").help("up to 11 characters").width(10.0),
        ColumnSpec::new("model", "终端型号").example("JT-900").help("up to 30 characters").width(12.0),
        ColumnSpec::new("plate", "绑定车牌号")
            .aliases(&["车牌号"])
            .example("津A12345")
            .help("optional: a vehicle of yours without a terminal")
            .width(14.0),
        ColumnSpec::new("plate_colour", "车牌颜色")
            .aliases(&["号牌颜色"])
            .help("only when the plate is registered in two colours")
            .width(10.0),
    ]
}

/// Imports terminals of the caller's enterprise from an xlsx workbook or CSV file sent as the
/// body, each optionally bound to one of the enterprise's vehicles by plate. Every row is checked
/// as a single registration is, plus phones repeated in the file or registered, plates not of
/// the enterprise, vehicles that already have a terminal or get two in the file. With any bad
/// row the default `all_or_nothing` answers 422 with the report and writes nothing;
/// `valid_only` writes the good rows. One transaction, audited once (`terminal.import`).
#[utoipa::path(post, path = "/api/transport/terminals/import", tag = "transport", params(ImportQuery),
    request_body(description = "the xlsx or CSV file", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "text/csv"))),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "a phone or binding was registered meanwhile; nothing imported"),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = ImportRejected)),
    security(("session" = []), ("bearer" = [])))]
async fn import_terminals(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let org_id = q.org_id.clone().unwrap_or_else(|| c.org_id.clone());
    registry::require_write(&c, &org_id)?;
    sheet::check_content_type(&headers)?;
    let (mode, dry_run) = (q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false));
    let read = tokio::task::spawn_blocking(move || sheet::read_table(&body, &terminal_columns()))
        .await
        .map_err(ApiError::internal)?;
    let t = match read {
        Ok(t) => t,
        Err(e) => return Ok(e.into_response(mode, dry_run)),
    };
    // The enterprise's vehicles by plate: (id, colour, has a terminal).
    let rows = sqlx::query(&st.store.sql(
        "SELECT v.id AS id, v.plate AS plate, v.plate_colour AS colour, t.id AS terminal FROM transport_vehicles v \
         LEFT JOIN transport_terminals t ON t.vehicle_id = v.id WHERE v.org_id = $1",
    ))
    .bind(org_id.clone())
    .fetch_all(st.store.reader())
    .await
    .map_err(kernel::store::StoreError::from)?;
    let mut fleet: HashMap<String, Vec<(String, PlateColour, bool)>> = HashMap::new();
    for r in &rows {
        let colour: String = kernel::store::col(r, "colour")?;
        let terminal: Option<String> = kernel::store::col(r, "terminal")?;
        fleet.entry(kernel::store::col(r, "plate")?).or_default().push((
            kernel::store::col(r, "id")?,
            PlateColour::parse(&colour).unwrap_or(PlateColour::Other),
            terminal.is_some(),
        ));
    }
    let total = t.rows.len();
    let mut good: Vec<(u32, registry::CheckedTerminal, Option<String>)> = Vec::with_capacity(total);
    let mut errors = Vec::new();
    let (mut phones, mut bound): (HashMap<String, u32>, HashMap<String, u32>) = (HashMap::new(), HashMap::new());
    for row in &t.rows {
        let n = row.number;
        let new = registry::NewTerminal {
            org_id: None,
            phone: row.get("phone").to_string(),
            terminal_id: row.get("terminal_id").to_string(),
            maker: row.get("maker").to_string(),
            model: row.get("model").to_string(),
        };
        let checked = match registry::check_terminal(&new) {
            Ok(ct) => ct,
            Err(e) => {
                errors.push(t.error(n, e.field.as_deref().unwrap_or("phone"), e.message));
                continue;
            }
        };
        let vehicle = match row.get("plate").trim() {
            "" => None,
            plate => {
                let wanted = row.get("plate_colour").trim();
                let colour = (!wanted.is_empty()).then(|| parse_colour(wanted));
                let found: Vec<&(String, PlateColour, bool)> = fleet
                    .get(&plate.to_uppercase())
                    .or_else(|| fleet.get(plate))
                    .map(|v| v.iter().filter(|(_, c, _)| colour.is_none_or(|w| w == Some(*c))).collect())
                    .unwrap_or_default();
                match found.as_slice() {
                    [(_, _, true)] => {
                        errors.push(t.error(n, "plate", "this vehicle has a terminal already: unbind it first"));
                        continue;
                    }
                    [(id, _, false)] => Some(id.clone()),
                    [] => {
                        errors.push(t.error(n, "plate", "no vehicle of yours with this plate"));
                        continue;
                    }
                    _ => {
                        errors.push(t.error(
                            n,
                            "plate_colour",
                            "the plate is registered in more than one colour: name it",
                        ));
                        continue;
                    }
                }
            }
        };
        if let Some(first) = phones.get(checked.phone.as_str()) {
            errors.push(t.error(n, "phone", format!("the same phone as row {first}")));
            continue;
        }
        if let Some(first) = vehicle.as_ref().and_then(|v| bound.get(v)) {
            errors.push(t.error(n, "plate", format!("the same vehicle as row {first}")));
            continue;
        }
        phones.insert(checked.phone.as_str().to_string(), n);
        if let Some(v) = &vehicle {
            bound.insert(v.clone(), n);
        }
        good.push((n, checked, vehicle));
    }
    let wanted: Vec<&str> = good.iter().map(|(_, ct, _)| ct.phone.as_str()).collect();
    let taken = registry::registered_phones(&st.store, &wanted).await?;
    good.retain(|(n, ct, _)| {
        let dup = taken.contains(ct.phone.as_str());
        if dup {
            errors.push(t.error(*n, "phone", "a terminal with this phone is registered"));
        }
        !dup
    });
    if !errors.is_empty() && mode == ImportMode::AllOrNothing {
        let report = ImportReport::new(mode, dry_run, total, errors, 0);
        let detail = format!(
            "{} of {total} rows have errors: nothing was imported (fix them, or import with mode=valid_only)",
            report.invalid_rows.len()
        );
        return Ok(ImportRejected::new(detail, report).into_response());
    }
    let mut imported = 0;
    if !dry_run && !good.is_empty() {
        let rows: Vec<(registry::CheckedTerminal, Option<String>)> = good.into_iter().map(|(_, t, v)| (t, v)).collect();
        let bound = rows.iter().filter(|(_, v)| v.is_some()).count();
        let detail = serde_json::json!({"org_id": org_id, "rows": total, "imported": rows.len(), "bound": bound,
            "skipped": total - rows.len(), "mode": mode});
        imported = registry::import_terminals(&st.store, Actor::of(&c), &org_id, &rows, detail).await?;
        metrics::counter!("wuqing_import_rows_total", "what" => "terminals").increment(imported as u64);
    }
    tracing::info!(org = %org_id, rows = total, imported, bad = errors.len(), ?mode, dry_run, "terminal import");
    Ok(axum::Json(ImportReport::new(mode, dry_run, total, errors, imported)).into_response())
}

/// The terminal import template (xlsx).
#[utoipa::path(get, path = "/api/transport/terminals/import/template.xlsx", tag = "transport",
    responses((status = 200, description = "the template",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn terminal_template(Auth(c): Auth) -> ApiResult<Response> {
    registry::require_read(&c)?;
    let bytes = sheet::template_xlsx("终端 terminals", &terminal_columns()).map_err(ApiError::internal)?;
    Ok(sheet::xlsx_attachment(bytes, "terminals-template.xlsx"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_classes_by_name_and_code() {
        assert_eq!(parse_colour("黄色"), Some(PlateColour::Yellow));
        assert_eq!(parse_colour(" 黄 "), Some(PlateColour::Yellow));
        assert_eq!(parse_colour("2"), Some(PlateColour::Yellow));
        assert_eq!(parse_colour("Blue"), Some(PlateColour::Blue));
        assert_eq!(parse_colour("9"), Some(PlateColour::Other));
        assert_eq!(parse_colour("6"), None);
        assert_eq!(parse_class("危险货物运输车"), Some(VehicleClass::DangerousGoods));
        assert_eq!(parse_class("heavy_goods"), Some(VehicleClass::HeavyGoods));
        assert_eq!(parse_class("Heavy goods vehicle"), Some(VehicleClass::HeavyGoods));
        assert_eq!(parse_class("出租车"), Some(VehicleClass::Taxi));
        assert_eq!(parse_class("坦克"), None);
    }
}
