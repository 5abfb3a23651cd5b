//! Spreadsheet imports of the supervision registry (批量导入): enterprise profiles,
//! practitioners and vehicles' supervision details, from xlsx or CSV (`kernel::import`), with
//! their templates.
//!
//! Each row is checked as the single-record API checks it (`practitioners::check`,
//! `vehicles::check` against the vehicle's class), plus what only a file can get wrong: the same
//! person (citizen ID) or the same vehicle twice, a person already registered, a plate not in
//! the caller's reach. A row's first fault is reported with its row (as Excel numbers it) and
//! column (as the file names it). `all_or_nothing` (the default) writes nothing while any row is
//! bad; `valid_only` writes the good rows and reports the others; `dry_run` checks only. The
//! rows are written in one transaction with one audit record (`practitioner.import`,
//! `vehicle.details.import`), never with a citizen ID.

use crate::access::{Who, who};
use crate::enterprises::{self, Profile};
use crate::practitioners::{self, Checked, PractitionerInput, PractitionerRole, QUALIFICATION_TYPES};
use crate::vehicles::{self, Details};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Problem};
use kernel::http::{AppState, Auth, Query};
use kernel::import::{self as sheet, ColumnSpec, ImportMode, ImportRejected, ImportReport, RowError, Table};
use kernel::store::{StoreError, col};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_practitioners))
        .routes(routes!(practitioner_template))
        .routes(routes!(import_vehicle_details))
        .routes(routes!(vehicle_details_template))
        .routes(routes!(import_profiles))
        .routes(routes!(profile_template))
        .layer(DefaultBodyLimit::max(sheet::MAX_BYTES))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `all_or_nothing` (default): any bad row and nothing is written; `valid_only`: the good
    /// rows are written, the bad ones reported.
    pub mode: Option<ImportMode>,
    /// Check and report only; nothing is written.
    pub dry_run: Option<bool>,
}

/// Reads the body as a table of `specs`; a header that does not match, or no rows, is the 422 report.
async fn read(headers: &HeaderMap, body: Bytes, specs: Vec<ColumnSpec>, q: &ImportQuery) -> Result<Table, Response> {
    sheet::check_content_type(headers).map_err(IntoResponse::into_response)?;
    let read = tokio::task::spawn_blocking(move || sheet::read_table(&body, &specs))
        .await
        .map_err(|e| ApiError::internal(e).into_response())?;
    read.map_err(|e| e.into_response(q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false)))
}

/// The all-or-nothing refusal when rows are bad, else `None` (go on and write).
fn refuse(q: &ImportQuery, total: usize, errors: &[RowError]) -> Option<Response> {
    if errors.is_empty() || q.mode.unwrap_or_default() != ImportMode::AllOrNothing {
        return None;
    }
    let report = ImportReport::new(ImportMode::AllOrNothing, q.dry_run.unwrap_or(false), total, errors.to_vec(), 0);
    let detail = format!(
        "{} of {total} rows have errors: nothing was imported (fix them, or import with mode=valid_only)",
        report.invalid_rows.len()
    );
    Some(ImportRejected::new(detail, report).into_response())
}

/// A checker's 422 as the row's error in the column it names (or the first column).
fn row_error(t: &Table, row: u32, e: &ApiError, fallback: &str) -> RowError {
    t.error(row, e.field.as_deref().unwrap_or(fallback), e.message.clone())
}

fn optional(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

// ------------------------------------------------------------------------------ practitioners

fn role_of(s: &str) -> Option<PractitionerRole> {
    match s.trim() {
        "驾驶员" | "driver" | "Driver" => Some(PractitionerRole::Driver),
        "押运员" | "押运人员" | "escort" | "Escort" => Some(PractitionerRole::Escort),
        "装卸管理人员" | "装卸员" | "loader" | "Loader" => Some(PractitionerRole::Loader),
        _ => None,
    }
}

pub fn practitioner_columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::new("name", "姓名").required().example("张建国").width(10.0),
        ColumnSpec::new("role", "岗位")
            .required()
            .aliases(&["从业岗位"])
            .example("驾驶员")
            .help("驾驶员 押运员 装卸管理人员")
            .choices(vec!["驾驶员".into(), "押运员".into(), "装卸管理人员".into()])
            .width(12.0),
        ColumnSpec::new("citizen_id", "公民身份号码")
            .required()
            .aliases(&["身份证号", "身份证号码"])
            .example("120114197803120011")
            .help("18 位, 校验位按 GB 11643 核对 (stored encrypted, shown masked)")
            .width(22.0),
        ColumnSpec::new("qualification_type", "从业资格类别")
            .required()
            .example("道路危险货物运输驾驶员")
            .choices(QUALIFICATION_TYPES.iter().map(|(t, _)| (*t).to_string()).collect())
            .width(24.0),
        ColumnSpec::new("qualification_no", "从业资格证号")
            .help("留空: 以公民身份号码为证号 (2016 年起的证件)")
            .width(20.0),
        ColumnSpec::new("qualification_valid_until", "从业资格证有效期至")
            .required()
            .example("2029-06-30")
            .help("YYYY-MM-DD (an Excel date cell is read as its date)")
            .width(16.0),
        ColumnSpec::new("licence_class", "准驾车型").example("A2").help("驾驶员必填, e.g. A2 or B2E").width(10.0),
        ColumnSpec::new("licence_valid_until", "驾驶证有效期至").example("2031-03-15").help("YYYY-MM-DD").width(16.0),
    ]
}

/// Imports practitioners of the caller's enterprise (its operators) from an xlsx workbook or a
/// CSV file sent as the body: each row checked as a single registration is, plus a citizen ID
/// repeated in the file or already registered in the enterprise; errors by row and column.
/// With any bad row the default `all_or_nothing` answers 422 with the report and writes nothing.
#[utoipa::path(post, path = "/api/supervision/practitioners/import", tag = "supervision", params(ImportQuery),
    request_body(description = "the xlsx or CSV file", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "text/csv"))),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "a person was registered meanwhile; nothing imported"),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = ImportRejected)),
    security(("session" = []), ("bearer" = [])))]
async fn import_practitioners(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    practitioners::operator_only(&st, &c).await?;
    let t = match read(&headers, body, practitioner_columns(), &q).await {
        Ok(t) => t,
        Err(r) => return Ok(r),
    };
    let total = t.rows.len();
    let mut good: Vec<(u32, Checked)> = Vec::with_capacity(total);
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for row in &t.rows {
        let Some(role) = role_of(row.get("role")) else {
            errors.push(t.error(row.number, "role", "驾驶员, 押运员 or 装卸管理人员"));
            continue;
        };
        let input = PractitionerInput {
            name: row.get("name").to_string(),
            role,
            citizen_id: Some(row.get("citizen_id").to_string()),
            qualification_type: row.get("qualification_type").to_string(),
            qualification_no: optional(row.get("qualification_no")),
            qualification_valid_until: row.get("qualification_valid_until").to_string(),
            licence_class: optional(row.get("licence_class")),
            licence_valid_until: optional(row.get("licence_valid_until")),
        };
        match practitioners::check(&input, None) {
            Ok(p) => {
                let key = p.citizen_id.as_ref().map(|c| st.cipher.blind_index(c.as_str())).unwrap_or_default();
                if let Some(first) = seen.get(&key) {
                    errors.push(t.error(row.number, "citizen_id", format!("the same person as row {first}")));
                } else {
                    seen.insert(key, row.number);
                    good.push((row.number, p));
                }
            }
            Err(e) => errors.push(row_error(&t, row.number, &e, "name")),
        }
    }
    // People already registered in the enterprise.
    let registered: Vec<String> =
        sqlx::query(&st.store.sql("SELECT citizen_id_bidx FROM supervision_practitioners WHERE org_id = $1"))
            .bind(c.org_id.clone())
            .fetch_all(st.store.reader())
            .await
            .map_err(StoreError::from)?
            .iter()
            .map(|r| col::<String>(r, "citizen_id_bidx"))
            .collect::<Result<_, _>>()?;
    good.retain(|(n, p)| {
        let key = p.citizen_id.as_ref().map(|c| st.cipher.blind_index(c.as_str())).unwrap_or_default();
        let taken = registered.contains(&key);
        if taken {
            errors.push(t.error(*n, "citizen_id", "this person is already registered in your enterprise"));
        }
        !taken
    });
    if let Some(r) = refuse(&q, total, &errors) {
        return Ok(r);
    }
    let (mode, dry_run) = (q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false));
    let mut imported = 0;
    if !dry_run && !good.is_empty() {
        let store = &st.store;
        let mut tx = store.begin().await?;
        for (_, p) in &good {
            practitioners::insert_in(&st, &mut tx, &c.username, &c.org_id, p).await?;
        }
        imported = good.len();
        let detail = serde_json::json!({"org_id": c.org_id, "rows": total, "imported": imported,
            "skipped": total - imported, "mode": mode});
        audit::append(
            store,
            &mut tx,
            &Event::new(Actor::of(&c), "practitioner.import", "practitioner", None, Outcome::Success).detail(detail),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    tracing::info!(org = %c.org_id, rows = total, imported, bad = errors.len(), ?mode, dry_run, "practitioner import");
    Ok(axum::Json(ImportReport::new(mode, dry_run, total, errors, imported)).into_response())
}

/// The practitioner import template (xlsx).
#[utoipa::path(get, path = "/api/supervision/practitioners/import/template.xlsx", tag = "supervision",
    responses((status = 200, description = "the template",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn practitioner_template(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<Response> {
    who(&st, &c).await?;
    let bytes = sheet::template_xlsx("从业人员 practitioners", &practitioner_columns()).map_err(ApiError::internal)?;
    Ok(sheet::xlsx_attachment(bytes, "practitioners-template.xlsx"))
}

// ------------------------------------------------------------------------------ vehicle details

pub fn vehicle_detail_columns() -> Vec<ColumnSpec> {
    let date = |key, title, ex: &str| ColumnSpec::new(key, title).example(ex).help("YYYY-MM-DD").width(16.0);
    vec![
        ColumnSpec::new("plate", "车牌号")
            .required()
            .aliases(&["车牌号码", "号牌号码"])
            .example("津C80100")
            .width(12.0),
        ColumnSpec::new("plate_colour", "车牌颜色")
            .aliases(&["号牌颜色"])
            .help("only when a plate is registered in two colours")
            .width(10.0),
        ColumnSpec::new("road_transport_certificate_no", "道路运输证号").required().example("120114300006").width(18.0),
        date("road_transport_certificate_valid_until", "道路运输证有效期至", "2028-06-30").required(),
        date("annual_inspection_valid_until", "检验有效期至", "2027-05-31").required(),
        date("compulsory_insurance_valid_until", "交强险有效期至", "2027-03-15").required(),
        date("commercial_insurance_valid_until", "商业险有效期至", "2027-03-15"),
        ColumnSpec::new("seats", "核定载客人数").help("passenger vehicles: 1–100").width(12.0),
        ColumnSpec::new("tonnage_kg", "核定载质量(kg)").aliases(&["核定载质量"]).help("goods vehicles, kg").width(14.0),
        ColumnSpec::new("dangerous_goods_class", "危险货物类别")
            .help("dangerous goods vehicles: GB 6944 class or division, e.g. 2.1 or 3")
            .width(12.0),
    ]
}

/// Imports vehicles' supervision details (道路运输证, 检验, 保险, 核定载客/载质量, 危险货物类别)
/// for vehicles of the registry found by plate: an enterprise's operators for their own
/// vehicles, the bureau's regulators for any in reach. Each row is checked against its vehicle's
/// class as `PUT /api/supervision/vehicles/{id}` checks it; a plate not found, found twice in
/// the file, or ambiguous without its colour is an error. Existing details are replaced.
#[utoipa::path(post, path = "/api/supervision/vehicles/import", tag = "supervision", params(ImportQuery),
    request_body(description = "the xlsx or CSV file", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "text/csv"))),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = ImportRejected)),
    security(("session" = []), ("bearer" = [])))]
async fn import_vehicle_details(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    who(&st, &c).await?;
    let t = match read(&headers, body, vehicle_detail_columns(), &q).await {
        Ok(t) => t,
        Err(r) => return Ok(r),
    };
    let total = t.rows.len();
    let reach = vehicles_in_reach(&st, &c).await?;
    let mut good: Vec<(u32, String, Details)> = Vec::with_capacity(total);
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for row in &t.rows {
        let n = row.number;
        let plate = row.get("plate").trim().to_uppercase();
        let colour = row.get("plate_colour").trim();
        let matches: Vec<&(String, String, String)> = reach
            .get(&plate)
            .map(|v| v.iter().filter(|(_, c, _)| colour.is_empty() || colour_matches(c, colour)).collect())
            .unwrap_or_default();
        let (vehicle_id, class) = match matches.as_slice() {
            [(id, _, class)] => (id.clone(), class.clone()),
            [] => {
                errors.push(t.error(n, "plate", "no vehicle with this plate in your reach"));
                continue;
            }
            _ => {
                errors.push(t.error(n, "plate_colour", "the plate is registered in more than one colour: name it"));
                continue;
            }
        };
        if let Some(first) = seen.get(&vehicle_id) {
            errors.push(t.error(n, "plate", format!("the same vehicle as row {first}")));
            continue;
        }
        let number = |key: &str, errors: &mut Vec<RowError>| -> Option<Option<i64>> {
            match optional(row.get(key)) {
                None => Some(None),
                Some(v) => match v.parse::<i64>() {
                    Ok(i) => Some(Some(i)),
                    Err(_) => {
                        errors.push(t.error(n, key, "a whole number"));
                        None
                    }
                },
            }
        };
        let (Some(seats), Some(tonnage_kg)) = (number("seats", &mut errors), number("tonnage_kg", &mut errors)) else {
            continue;
        };
        let d = Details {
            road_transport_certificate_no: row.get("road_transport_certificate_no").to_string(),
            road_transport_certificate_valid_until: row.get("road_transport_certificate_valid_until").to_string(),
            annual_inspection_valid_until: row.get("annual_inspection_valid_until").to_string(),
            compulsory_insurance_valid_until: row.get("compulsory_insurance_valid_until").to_string(),
            commercial_insurance_valid_until: optional(row.get("commercial_insurance_valid_until")),
            seats,
            tonnage_kg,
            dangerous_goods_class: optional(row.get("dangerous_goods_class")),
        };
        match vehicles::check(&class, &d) {
            Ok(d) => {
                seen.insert(vehicle_id.clone(), n);
                good.push((n, vehicle_id, d));
            }
            Err(e) => errors.push(row_error(&t, n, &e, "plate")),
        }
    }
    if let Some(r) = refuse(&q, total, &errors) {
        return Ok(r);
    }
    let (mode, dry_run) = (q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false));
    let mut imported = 0;
    if !dry_run && !good.is_empty() {
        let store = &st.store;
        let mut tx = store.begin().await?;
        for (_, id, d) in &good {
            vehicles::write_in(&st, &mut tx, &c.username, id, d).await?;
        }
        imported = good.len();
        let detail =
            serde_json::json!({"rows": total, "imported": imported, "skipped": total - imported, "mode": mode});
        audit::append(
            store,
            &mut tx,
            &Event::new(Actor::of(&c), "vehicle.details.import", "vehicle", None, Outcome::Success).detail(detail),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    tracing::info!(rows = total, imported, bad = errors.len(), ?mode, dry_run, "vehicle details import");
    Ok(axum::Json(ImportReport::new(mode, dry_run, total, errors, imported)).into_response())
}

/// A plate colour as a sheet may give it, against the registry's code (`yellow`).
fn colour_matches(code: &str, given: &str) -> bool {
    let zh = match code {
        "blue" => "蓝",
        "yellow" => "黄",
        "black" => "黑",
        "white" => "白",
        "green" => "绿",
        _ => "其",
    };
    given.eq_ignore_ascii_case(code) || given.starts_with(zh)
}

/// The vehicles the caller may keep details of, by plate: (id, colour, class).
async fn vehicles_in_reach(st: &AppState, c: &Caller) -> ApiResult<HashMap<String, Vec<(String, String, String)>>> {
    let rows = sqlx::query(&st.store.sql("SELECT id, plate, plate_colour, class, org_id FROM transport_vehicles"))
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let mut out: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for r in &rows {
        let org: String = col(r, "org_id")?;
        let mine = match c.role {
            Role::Operator => org == c.org_id,
            _ => c.scope.contains(&org),
        };
        if mine {
            out.entry(col::<String>(r, "plate")?.to_uppercase()).or_default().push((
                col(r, "id")?,
                col(r, "plate_colour")?,
                col(r, "class")?,
            ));
        }
    }
    Ok(out)
}

/// The vehicle details import template (xlsx).
#[utoipa::path(get, path = "/api/supervision/vehicles/import/template.xlsx", tag = "supervision",
    responses((status = 200, description = "the template",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn vehicle_details_template(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<Response> {
    who(&st, &c).await?;
    let bytes =
        sheet::template_xlsx("车辆档案 vehicle details", &vehicle_detail_columns()).map_err(ApiError::internal)?;
    Ok(sheet::xlsx_attachment(bytes, "vehicle-details-template.xlsx"))
}

// ------------------------------------------------------------------------------ enterprise profiles

pub fn profile_columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::new("name", "企业名称")
            .required()
            .example("天津武清顺达危险货物运输有限公司")
            .help("as registered in the platform's organisations")
            .width(30.0),
        ColumnSpec::new("uscc", "统一社会信用代码").required().example("91120114MA06K2R17R").width(22.0),
        ColumnSpec::new("business_scope", "经营范围").required().example("危险货物运输（2类1项、3类）").width(28.0),
        ColumnSpec::new("licence_no", "经营许可证号")
            .required()
            .aliases(&["道路运输经营许可证号"])
            .example("津交运管许可危字120114000318号")
            .width(28.0),
        ColumnSpec::new("licence_valid_until", "许可证有效期至")
            .required()
            .example("2028-06-30")
            .help("YYYY-MM-DD")
            .width(16.0),
        ColumnSpec::new("safety_officer", "安全负责人").required().example("赵立新").width(12.0),
        ColumnSpec::new("monitoring_staff", "动态监控人员数")
            .required()
            .example("3")
            .help("at least one per 100 vehicles, two at minimum")
            .width(14.0),
    ]
}

/// Imports enterprise profiles (企业档案) by enterprise name: the bureau's regulators, for the
/// transport enterprises in their reach. Each row is checked as `PUT …/enterprises/{org_id}`
/// checks a profile (the credit code by its check characters); an unknown or repeated
/// enterprise, a credit code repeated in the file or held by another enterprise is an error.
/// Existing profiles are replaced.
#[utoipa::path(post, path = "/api/supervision/enterprises/import", tag = "supervision", params(ImportQuery),
    request_body(description = "the xlsx or CSV file", content(
        (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (Vec<u8> = "text/csv"))),
    responses((status = 200, body = ImportReport), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "a credit code was taken meanwhile; nothing imported"),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = ImportRejected)),
    security(("session" = []), ("bearer" = [])))]
async fn import_profiles(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if who(&st, &c).await? != Who::Regulator {
        return Err(ApiError::forbidden("the bureau imports profiles; an enterprise keeps its own in the form"));
    }
    let t = match read(&headers, body, profile_columns(), &q).await {
        Ok(t) => t,
        Err(r) => return Ok(r),
    };
    let known: HashMap<String, String> =
        enterprises::list(&st, &c).await?.into_iter().map(|e| (e.name, e.org_id)).collect();
    let held: HashMap<String, String> = sqlx::query(&st.store.sql("SELECT org_id, uscc FROM supervision_enterprises"))
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| Ok((col::<String>(r, "uscc")?, col::<String>(r, "org_id")?)))
        .collect::<Result<_, StoreError>>()?;
    let total = t.rows.len();
    let mut good: Vec<(u32, String, Profile)> = Vec::with_capacity(total);
    let mut errors = Vec::new();
    let (mut orgs, mut codes): (HashMap<String, u32>, HashMap<String, u32>) = (HashMap::new(), HashMap::new());
    for row in &t.rows {
        let n = row.number;
        let Some(org_id) = known.get(row.get("name").trim()).cloned() else {
            errors.push(t.error(n, "name", "no transport enterprise of this name in your reach"));
            continue;
        };
        let Ok(staff) = row.get("monitoring_staff").trim().parse::<i64>() else {
            errors.push(t.error(n, "monitoring_staff", "a whole number"));
            continue;
        };
        let p = Profile {
            uscc: row.get("uscc").to_string(),
            business_scope: row.get("business_scope").to_string(),
            licence_no: row.get("licence_no").to_string(),
            licence_valid_until: row.get("licence_valid_until").to_string(),
            safety_officer: row.get("safety_officer").to_string(),
            monitoring_staff: staff,
        };
        let p = match enterprises::check(&p) {
            Ok(p) => p,
            Err(e) => {
                errors.push(row_error(&t, n, &e, "name"));
                continue;
            }
        };
        if let Some(first) = orgs.get(&org_id) {
            errors.push(t.error(n, "name", format!("the same enterprise as row {first}")));
            continue;
        }
        if let Some(first) = codes.get(&p.uscc) {
            errors.push(t.error(n, "uscc", format!("the same credit code as row {first}")));
            continue;
        }
        if held.get(&p.uscc).is_some_and(|o| *o != org_id) {
            errors.push(t.error(n, "uscc", "another enterprise is registered with this credit code"));
            continue;
        }
        orgs.insert(org_id.clone(), n);
        codes.insert(p.uscc.clone(), n);
        good.push((n, org_id, p));
    }
    if let Some(r) = refuse(&q, total, &errors) {
        return Ok(r);
    }
    let (mode, dry_run) = (q.mode.unwrap_or_default(), q.dry_run.unwrap_or(false));
    let mut imported = 0;
    if !dry_run && !good.is_empty() {
        let store = &st.store;
        let mut tx = store.begin().await?;
        for (_, org_id, p) in &good {
            enterprises::write_in(&st, &mut tx, &c.username, org_id, p).await?;
        }
        imported = good.len();
        let detail =
            serde_json::json!({"rows": total, "imported": imported, "skipped": total - imported, "mode": mode});
        audit::append(
            store,
            &mut tx,
            &Event::new(Actor::of(&c), "enterprise.profile.import", "organisation", None, Outcome::Success)
                .detail(detail),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    tracing::info!(rows = total, imported, bad = errors.len(), ?mode, dry_run, "enterprise profile import");
    Ok(axum::Json(ImportReport::new(mode, dry_run, total, errors, imported)).into_response())
}

/// The enterprise profile import template (xlsx).
#[utoipa::path(get, path = "/api/supervision/enterprises/import/template.xlsx", tag = "supervision",
    responses((status = 200, description = "the template",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn profile_template(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<Response> {
    who(&st, &c).await?;
    let bytes = sheet::template_xlsx("企业档案 enterprises", &profile_columns()).map_err(ApiError::internal)?;
    Ok(sheet::xlsx_attachment(bytes, "enterprises-template.xlsx"))
}
