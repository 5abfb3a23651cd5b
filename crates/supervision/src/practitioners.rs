//! Practitioners (从业人员, issue 7): the drivers, dangerous-goods escorts and loading managers
//! employed by the supervised road transport enterprises, with their citizen ID, road transport
//! qualification certificate (从业资格证, 道路运输从业人员管理规定, 交通运输部令 2022 年第 38 号)
//! and, for drivers, the driving licence's permitted classes (准驾车型, 机动车驾驶证申领和使用规定,
//! 公安部令第 162 号) — and the enterprise's vehicles each one drives or escorts.
//!
//! The citizen ID is sensitive personal information (个人信息保护法 第二十八条): stored as the
//! kernel's users store it — SM4-GCM ciphertext plus an HMAC-SM3 blind index for exact look-up
//! (one person is registered once per enterprise: a second record is a 409) — and always shown
//! masked. Since the 2016 certificate form the qualification number *is* the holder's citizen
//! ID, so a number equal to it is not stored a second time in clear (shown masked), and a number
//! that is some other citizen ID is refused.
//!
//! Access follows the enterprise profiles: an enterprise's operators register, keep and delete
//! their own practitioners; the transport bureau's regulators read every enterprise's in their
//! scope and may correct a record or its vehicles (registering and removing staff stays with the
//! enterprise, which answers for its roster). Deletion is a hard delete: a practitioner who has
//! left is personal information whose purpose has ended (个人信息保护法 第四十七条); the audit
//! record of the deletion keeps name and role. Every list request, read and write is audited,
//! never with the citizen ID or the qualification number.
//!
//! Vehicle links name `transport_vehicles` rows of the same enterprise, checked on write; there
//! is no foreign key into the transport module's table (a domain does not constrain another's
//! deletions), and a link whose vehicle is gone simply no longer shows.

use crate::access::{Who, who};
use crate::dates::{date_of, days_of, today_days};
use crate::enterprises::DOMAIN;
use axum::extract::State;
use axum::http::StatusCode;
use kernel::access::{Caller, Scope};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::crypto::{CitizenId, FieldCipher, mask_citizen_id};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Page, Paged, Path, Query};
use kernel::orgs::OrgKind;
use kernel::store::{Arg, StoreError, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What a practitioner does (道路运输从业人员 of the enterprises supervised here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PractitionerRole {
    /// 驾驶员.
    Driver,
    /// 押运员 (dangerous goods).
    Escort,
    /// 装卸管理人员 (dangerous goods).
    Loader,
}

impl PractitionerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::Escort => "escort",
            Self::Loader => "loader",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "driver" => Some(Self::Driver),
            "escort" => Some(Self::Escort),
            "loader" => Some(Self::Loader),
            _ => None,
        }
    }
}

/// Qualification certificate types (从业资格类别) and the role each qualifies for. The road
/// transport categories are those of 道路运输从业人员管理规定 第六条; the taxi ones of
/// 出租汽车驾驶员从业资格管理规定; the city-bus one is our name for the bus company's driver
/// qualification (城市公共汽车和电车客运管理规定 第二十六条), which has no national certificate.
pub const QUALIFICATION_TYPES: &[(&str, PractitionerRole)] = &[
    ("道路旅客运输驾驶员", PractitionerRole::Driver),
    ("道路货物运输驾驶员", PractitionerRole::Driver),
    ("道路危险货物运输驾驶员", PractitionerRole::Driver),
    ("巡游出租汽车驾驶员", PractitionerRole::Driver),
    ("网络预约出租汽车驾驶员", PractitionerRole::Driver),
    ("城市公共汽车驾驶员", PractitionerRole::Driver),
    ("道路危险货物运输押运人员", PractitionerRole::Escort),
    ("道路危险货物运输装卸管理人员", PractitionerRole::Loader),
];

/// Permitted vehicle classes of a driving licence (准驾车型代号, 机动车驾驶证申领和使用规定
/// 附件1, with C6 of the 2021 revision).
pub const LICENCE_CLASSES: &[&str] =
    &["A1", "A2", "A3", "B1", "B2", "C1", "C2", "C3", "C4", "C5", "C6", "D", "E", "F", "M", "N", "P"];

/// Vehicles one practitioner may be linked to.
pub const MAX_VEHICLES: usize = 10;

/// A practitioner as written by a client (create: `POST`; correct: `PUT`, the whole record).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PractitionerInput {
    /// 姓名.
    pub name: String,
    pub role: PractitionerRole,
    /// 公民身份号码 (GB 11643-1999, 18 characters, check character verified). Required on
    /// create; omitted on update: the stored one is kept.
    #[serde(default)]
    pub citizen_id: Option<String>,
    /// 从业资格类别, one of `QUALIFICATION_TYPES` fitting the role.
    pub qualification_type: String,
    /// 从业资格证号; omitted or equal to the citizen ID: the citizen ID (the 2016 form).
    #[serde(default)]
    pub qualification_no: Option<String>,
    /// The qualification's last valid day, `YYYY-MM-DD`.
    pub qualification_valid_until: String,
    /// 准驾车型, e.g. `A2` or `B2E`; required for drivers.
    #[serde(default)]
    pub licence_class: Option<String>,
    /// The driving licence's last valid day, `YYYY-MM-DD`; required with the class.
    #[serde(default)]
    pub licence_valid_until: Option<String>,
}

/// A practitioner's record after checking.
#[derive(Debug, Clone)]
pub struct Checked {
    pub name: String,
    pub role: PractitionerRole,
    pub citizen_id: Option<CitizenId>,
    pub qualification_type: String,
    /// None: the number is the citizen ID.
    pub qualification_no: Option<String>,
    pub qualification_valid_until: String,
    pub licence_class: Option<String>,
    pub licence_valid_until: Option<String>,
}

/// A vehicle a practitioner drives or escorts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VehicleRef {
    pub id: String,
    pub plate: String,
    pub plate_colour: String,
}

/// A practitioner as shown: the citizen ID masked, days left computed from today in Beijing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PractitionerView {
    pub id: String,
    /// The employing enterprise.
    pub org_id: String,
    pub org_name: String,
    pub name: String,
    pub role: PractitionerRole,
    /// Masked: `120114********123X`.
    pub citizen_id: String,
    pub qualification_type: String,
    /// Masked like the citizen ID when it is the citizen ID.
    pub qualification_no: String,
    pub qualification_valid_until: String,
    /// Days until the qualification expires (negative: expired).
    pub qualification_days_left: Option<i64>,
    pub licence_class: Option<String>,
    pub licence_valid_until: Option<String>,
    /// Days until the driving licence expires (negative: expired).
    pub licence_days_left: Option<i64>,
    /// The enterprise's vehicles the practitioner drives or escorts, by plate.
    pub vehicles: Vec<VehicleRef>,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// The vehicles a practitioner drives or escorts, replacing the previous set.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleLinks {
    /// Ids of vehicles of the practitioner's enterprise (at most 10; empty: none).
    pub vehicle_ids: Vec<String>,
}

/// Filters of the practitioner list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One enterprise (a regulator's filter; an operator sees its own anyway).
    pub org_id: Option<String>,
    /// Substring of the name.
    pub q: Option<String>,
    pub role: Option<PractitionerRole>,
    /// Qualification or driving licence valid until on or before today + N days (Beijing),
    /// expired ones included; 0 to 3650.
    pub expiring_within_days: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

// ------------------------------------------------------------------------------ routes

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_practitioners, create_practitioner))
        .routes(routes!(get_practitioner, put_practitioner, delete_practitioner))
        .routes(routes!(put_vehicles))
}

/// Practitioners the caller may see (a transport regulator: every enterprise's in scope; an
/// operator: its enterprise's), filtered and paged; citizen IDs masked. Audited once per request.
#[utoipa::path(get, path = "/api/supervision/practitioners", tag = "supervision", params(ListQuery),
    responses((status = 200, body = Paged<PractitionerView>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_practitioners(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Paged<PractitionerView>>> {
    Ok(axum::Json(list(&st, &c, &q).await?))
}

/// Registers a practitioner of the caller's enterprise (its operators): every field checked (422
/// naming the field); the same citizen ID twice in one enterprise is a 409.
#[utoipa::path(post, path = "/api/supervision/practitioners", tag = "supervision", request_body = PractitionerInput,
    responses((status = 201, body = PractitionerView), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_practitioner(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(p): Json<PractitionerInput>,
) -> ApiResult<(StatusCode, axum::Json<PractitionerView>)> {
    Ok((StatusCode::CREATED, axum::Json(create(&st, &c, &p).await?)))
}

/// One practitioner (404 outside the caller's enterprise or scope).
#[utoipa::path(get, path = "/api/supervision/practitioners/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 200, body = PractitionerView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_practitioner(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PractitionerView>> {
    Ok(axum::Json(get(&st, &c, &id).await?))
}

/// Replaces a practitioner's record (the enterprise's operators, or a transport regulator
/// correcting it); `citizen_id` omitted keeps the stored one.
#[utoipa::path(put, path = "/api/supervision/practitioners/{id}", tag = "supervision", params(("id" = String, Path)),
    request_body = PractitionerInput,
    responses((status = 200, body = PractitionerView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_practitioner(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(p): Json<PractitionerInput>,
) -> ApiResult<axum::Json<PractitionerView>> {
    Ok(axum::Json(update(&st, &c, &id, &p).await?))
}

/// Deletes a practitioner who has left (the enterprise's operators): the record and its vehicle
/// links are removed for good; the audit log keeps name and role.
#[utoipa::path(delete, path = "/api/supervision/practitioners/{id}", tag = "supervision", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn delete_practitioner(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete(&st, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the vehicles a practitioner drives or escorts: vehicles of the same enterprise only
/// (422 `vehicle_ids` otherwise); loading managers have none.
#[utoipa::path(put, path = "/api/supervision/practitioners/{id}/vehicles", tag = "supervision", params(("id" = String, Path)),
    request_body = VehicleLinks,
    responses((status = 200, body = PractitionerView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_vehicles(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(v): Json<VehicleLinks>,
) -> ApiResult<axum::Json<PractitionerView>> {
    Ok(axum::Json(set_vehicles(&st, &c, &id, &v.vehicle_ids).await?))
}

// ------------------------------------------------------------------------------ access

/// Registering and removing practitioners is the enterprise's own business.
/// Transport enterprises' operators only (they register their own people).
pub(crate) async fn operator_only(st: &AppState, c: &Caller) -> ApiResult<()> {
    match who(st, c).await? {
        Who::Operator if is_transport_enterprise(st, &c.org_id).await? => Ok(()),
        Who::Operator => Err(ApiError::forbidden("only transport enterprises register practitioners")),
        Who::Regulator => Err(ApiError::forbidden("practitioners are registered and removed by their enterprise")),
    }
}

async fn is_transport_enterprise(st: &AppState, org_id: &str) -> ApiResult<bool> {
    let Some(org) = kernel::orgs::get(&st.store, org_id).await? else { return Ok(false) };
    Ok(org.kind == OrgKind::Enterprise && st.orgs.domain_of(&st.store, org_id).await?.as_deref() == Some(DOMAIN))
}

/// The enterprises whose practitioners the caller sees.
async fn visible_orgs(st: &AppState, c: &Caller, who: Who) -> ApiResult<Vec<String>> {
    match who {
        Who::Operator => {
            Ok(if is_transport_enterprise(st, &c.org_id).await? { vec![c.org_id.clone()] } else { vec![] })
        }
        Who::Regulator => {
            let (orgs, _) =
                kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
            let mut out = Vec::new();
            for o in orgs {
                if st.orgs.domain_of(&st.store, &o.id).await?.as_deref() == Some(DOMAIN) {
                    out.push(o.id);
                }
            }
            Ok(out)
        }
    }
}

async fn may_see(st: &AppState, c: &Caller, who: Who, org_id: &str) -> ApiResult<bool> {
    let own = match who {
        Who::Operator => org_id == c.org_id,
        Who::Regulator => c.scope.contains(org_id),
    };
    Ok(own && is_transport_enterprise(st, org_id).await?)
}

fn not_found() -> ApiError {
    ApiError::not_found("practitioner")
}

// ------------------------------------------------------------------------------ checks

fn bad(field: &str, why: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, why)
}

fn text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(bad(field, format!("1 to {max} printable characters")));
    }
    Ok(v.to_string())
}

fn date(field: &str, v: &str) -> ApiResult<String> {
    let v = v.trim();
    match days_of(v) {
        Some(_) if v.len() == 10 && (1900..=2199).contains(&v[..4].parse::<i32>().unwrap_or(0)) => Ok(v.to_string()),
        _ => Err(bad(field, "a date, YYYY-MM-DD")),
    }
}

/// `A2`, `b2e` → `B2E`: permitted classes of 准驾车型, each once.
fn licence_class(v: &str) -> ApiResult<String> {
    let s = v.trim().to_uppercase();
    let b = s.as_bytes();
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let len = if i + 1 < b.len() && b[i + 1].is_ascii_digit() { 2 } else { 1 };
        let code = s.get(i..i + len).unwrap_or("");
        if !LICENCE_CLASSES.contains(&code) || seen.contains(&code) {
            return Err(bad(
                "licence_class",
                format!("permitted classes of a driving licence: {}", LICENCE_CLASSES.join(" ")),
            ));
        }
        seen.push(code);
        i += len;
    }
    if seen.is_empty() {
        return Err(bad("licence_class", "a permitted class of a driving licence, e.g. A2 or B2"));
    }
    Ok(s)
}

/// Checks a record field by field: the first fault as a 422 naming it. `stored_id` is the
/// citizen ID already on record (update), against which the qualification number is compared.
pub fn check(p: &PractitionerInput, stored_id: Option<&str>) -> ApiResult<Checked> {
    let name = text("name", &p.name, 50)?;
    let citizen_id = match p.citizen_id.as_deref() {
        Some(s) => Some(CitizenId::parse(s).map_err(|m| bad("citizen_id", m))?),
        None if stored_id.is_none() => return Err(bad("citizen_id", "the citizen ID is required")),
        None => None,
    };
    let qualification_type = p.qualification_type.trim().to_string();
    match QUALIFICATION_TYPES.iter().find(|(t, _)| *t == qualification_type) {
        Some((_, r)) if *r == p.role => {}
        Some(_) => return Err(bad("qualification_type", format!("not a qualification of a {}", p.role.as_str()))),
        None => {
            let names: Vec<&str> = QUALIFICATION_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(bad("qualification_type", format!("one of {}", names.join("、"))));
        }
    }
    let holder = citizen_id.as_ref().map(CitizenId::as_str).or(stored_id);
    let qualification_no = match p.qualification_no.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => match CitizenId::parse(n) {
            Ok(id) if Some(id.as_str()) == holder => None,
            Ok(_) => return Err(bad("qualification_no", "a citizen ID other than the practitioner's")),
            Err(_) => Some(text("qualification_no", n, 50)?),
        },
    };
    let qualification_valid_until = date("qualification_valid_until", &p.qualification_valid_until)?;
    let licence_class =
        p.licence_class.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(licence_class).transpose()?;
    let licence_valid_until = p
        .licence_valid_until
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| date("licence_valid_until", d))
        .transpose()?;
    match (&licence_class, &licence_valid_until) {
        (None, _) if p.role == PractitionerRole::Driver => {
            return Err(bad("licence_class", "a driver's permitted classes are required"));
        }
        (Some(_), None) => return Err(bad("licence_valid_until", "the driving licence's validity is required")),
        (None, Some(_)) => return Err(bad("licence_class", "a licence's validity needs its permitted classes")),
        _ => {}
    }
    Ok(Checked {
        name,
        role: p.role,
        citizen_id,
        qualification_type,
        qualification_no,
        qualification_valid_until,
        licence_class,
        licence_valid_until,
    })
}

/// What an audit record says of a practitioner: never the citizen ID or the qualification number.
fn audit_detail(org_id: &str, p: &Checked) -> serde_json::Value {
    serde_json::json!({
        "org_id": org_id, "name": p.name, "role": p.role.as_str(), "qualification_type": p.qualification_type,
        "qualification_valid_until": p.qualification_valid_until, "licence_class": p.licence_class,
        "licence_valid_until": p.licence_valid_until,
    })
}

// ------------------------------------------------------------------------------ reads

const COLUMNS: &str = "p.id AS id, p.org_id AS org_id, o.name AS org_name, p.name AS name, p.role AS role, \
    p.citizen_id_enc AS citizen_id_enc, p.qualification_type AS qualification_type, p.qualification_no AS qualification_no, \
    p.qualification_valid_until AS qualification_valid_until, p.licence_class AS licence_class, \
    p.licence_valid_until AS licence_valid_until, p.created_ms AS created_ms, p.updated_ms AS updated_ms, \
    p.updated_by AS updated_by";
const FROM: &str = "supervision_practitioners p JOIN organisations o ON o.id = p.org_id";

/// A stored row, the citizen ID still encrypted.
struct Stored {
    id: String,
    org_id: String,
    org_name: String,
    name: String,
    role: PractitionerRole,
    citizen_id_enc: Vec<u8>,
    qualification_type: String,
    qualification_no: Option<String>,
    qualification_valid_until: String,
    licence_class: Option<String>,
    licence_valid_until: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    updated_by: String,
}

impl Stored {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let role: String = col(r, "role")?;
        Ok(Self {
            id: col(r, "id")?,
            org_id: col(r, "org_id")?,
            org_name: col(r, "org_name")?,
            name: col(r, "name")?,
            role: PractitionerRole::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("practitioner role {role}")))?,
            citizen_id_enc: col(r, "citizen_id_enc")?,
            qualification_type: col(r, "qualification_type")?,
            qualification_no: col(r, "qualification_no")?,
            qualification_valid_until: col(r, "qualification_valid_until")?,
            licence_class: col(r, "licence_class")?,
            licence_valid_until: col(r, "licence_valid_until")?,
            created_ms: col(r, "created_ms")?,
            updated_ms: col(r, "updated_ms")?,
            updated_by: col(r, "updated_by")?,
        })
    }

    fn citizen_id(&self, cipher: &FieldCipher) -> Option<String> {
        cipher.decrypt(&self.citizen_id_enc).ok()
    }

    fn view(self, cipher: &FieldCipher, vehicles: Vec<VehicleRef>) -> PractitionerView {
        let masked = self.citizen_id(cipher).map_or_else(|| "(unreadable)".to_string(), |s| mask_citizen_id(&s));
        let today = today_days();
        PractitionerView {
            qualification_days_left: days_of(&self.qualification_valid_until).map(|d| d - today),
            licence_days_left: self.licence_valid_until.as_deref().and_then(days_of).map(|d| d - today),
            qualification_no: self.qualification_no.unwrap_or_else(|| masked.clone()),
            citizen_id: masked,
            id: self.id,
            org_id: self.org_id,
            org_name: self.org_name,
            name: self.name,
            role: self.role,
            qualification_type: self.qualification_type,
            qualification_valid_until: self.qualification_valid_until,
            licence_class: self.licence_class,
            licence_valid_until: self.licence_valid_until,
            vehicles,
            created_at: ms_to_rfc3339(self.created_ms),
            updated_at: ms_to_rfc3339(self.updated_ms),
            updated_by: self.updated_by,
        }
    }
}

async fn load(st: &AppState, id: &str) -> ApiResult<Option<Stored>> {
    let r = sqlx::query(&st.store.sql(&format!("SELECT {COLUMNS} FROM {FROM} WHERE p.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    r.as_ref().map(Stored::from_row).transpose()
}

/// The vehicles of each practitioner in `ids`, by plate.
async fn vehicles_of(st: &AppState, ids: &[String]) -> ApiResult<HashMap<String, Vec<VehicleRef>>> {
    let mut out: HashMap<String, Vec<VehicleRef>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ph: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT l.practitioner_id AS pid, v.id AS id, v.plate AS plate, v.plate_colour AS plate_colour \
         FROM supervision_practitioner_vehicles l JOIN transport_vehicles v ON v.id = l.vehicle_id \
         WHERE l.practitioner_id IN ({}) ORDER BY v.plate, v.id",
        ph.join(", ")
    );
    let sql = st.store.sql(&sql);
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.clone());
    }
    for r in q.fetch_all(st.store.reader()).await.map_err(StoreError::from)? {
        out.entry(col(&r, "pid")?).or_default().push(VehicleRef {
            id: col(&r, "id")?,
            plate: col(&r, "plate")?,
            plate_colour: col(&r, "plate_colour")?,
        });
    }
    Ok(out)
}

async fn view_of(st: &AppState, s: Stored) -> ApiResult<PractitionerView> {
    let mut v = vehicles_of(st, std::slice::from_ref(&s.id)).await?;
    let vehicles = v.remove(&s.id).unwrap_or_default();
    Ok(s.view(&st.cipher, vehicles))
}

/// The practitioners the caller may see, filtered, one page; one audit record per request.
#[tracing::instrument(skip_all)]
pub async fn list(st: &AppState, c: &Caller, q: &ListQuery) -> ApiResult<Paged<PractitionerView>> {
    let who = who(st, c).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let mut w = Where::new();
    w.scope(&Scope::Orgs(visible_orgs(st, c, who).await?), "p.org_id");
    if let Some(o) = &q.org_id {
        crate::access::require_filter(c, o)?;
        w.and("p.org_id = ?", Arg::S(o.clone()));
    }
    if let Some(r) = q.role {
        w.and("p.role = ?", Arg::S(r.as_str().into()));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if text.chars().count() > 50 {
            return Err(ApiError::field(Code::InvalidQuery, "q", "at most 50 characters"));
        }
        w.contains(&["p.name"], text);
    }
    if let Some(days) = q.expiring_within_days {
        if !(0..=3650).contains(&days) {
            return Err(ApiError::field(Code::InvalidQuery, "expiring_within_days", "0 to 3650"));
        }
        w.and("(p.qualification_valid_until <= ? OR p.licence_valid_until <= ?)", Arg::S(date_of(today_days() + days)));
    }
    let (rows, total) = fetch_page(&st.store, COLUMNS, FROM, &w, "p.org_id, p.name, p.id", limit, offset).await?;
    let stored = rows.iter().map(Stored::from_row).collect::<ApiResult<Vec<_>>>()?;
    let ids: Vec<String> = stored.iter().map(|s| s.id.clone()).collect();
    let mut vehicles = vehicles_of(st, &ids).await?;
    let items: Vec<PractitionerView> = stored
        .into_iter()
        .map(|s| {
            let v = vehicles.remove(&s.id).unwrap_or_default();
            s.view(&st.cipher, v)
        })
        .collect();
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "practitioner.list", "practitioner", None, Outcome::Success).detail(
            serde_json::json!({
                "count": items.len(), "total": total, "org_id": q.org_id, "role": q.role.map(PractitionerRole::as_str),
                "expiring_within_days": q.expiring_within_days, "name_search": q.q.is_some(),
            }),
        ),
    )
    .await?;
    Ok(Paged { items, total, limit, offset })
}

/// One practitioner, audited.
#[tracing::instrument(skip_all)]
pub async fn get(st: &AppState, c: &Caller, id: &str) -> ApiResult<PractitionerView> {
    let who = who(st, c).await?;
    let s = load(st, id).await?.ok_or_else(not_found)?;
    if !may_see(st, c, who, &s.org_id).await? {
        return Err(not_found());
    }
    let v = view_of(st, s).await?;
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "practitioner.read", "practitioner", Some(&v.id), Outcome::Success)
            .detail(serde_json::json!({"org_id": v.org_id})),
    )
    .await?;
    Ok(v)
}

// ------------------------------------------------------------------------------ writes

/// Two records with one citizen ID in one enterprise.
fn conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::field(
            Code::Conflict,
            "citizen_id",
            "a practitioner with this citizen ID is already registered in this enterprise",
        ),
        other => other.into(),
    }
}

/// Registers a practitioner of the caller's enterprise.
#[tracing::instrument(skip_all)]
pub async fn create(st: &AppState, c: &Caller, p: &PractitionerInput) -> ApiResult<PractitionerView> {
    operator_only(st, c).await?;
    let p = check(p, None)?;
    let id = insert(st, Actor::of(c), &c.org_id, &p).await?;
    view_of(st, load(st, &id).await?.ok_or_else(|| ApiError::internal("practitioner vanished after insert"))?).await
}

/// Stores a checked record (with its citizen ID) and its audit record in one transaction; the
/// caller checked access. Also the demo's way in. Returns the new id.
pub async fn insert(st: &AppState, actor: Actor, org_id: &str, p: &Checked) -> ApiResult<String> {
    let store = &st.store;
    let mut tx = store.begin().await?;
    let id = insert_in(st, &mut tx, &actor.name, org_id, p).await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "practitioner.create", "practitioner", Some(&id), Outcome::Success)
            .detail(audit_detail(org_id, p)),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Inserts a checked record (with its citizen ID) inside the caller's transaction, which also
/// writes the audit record (one per practitioner, or one for an import). Returns the new id; a
/// citizen ID already registered in the enterprise is a 409 naming `citizen_id`.
pub async fn insert_in(
    st: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    by: &str,
    org_id: &str,
    p: &Checked,
) -> ApiResult<String> {
    let cid = p.citizen_id.as_ref().ok_or_else(|| bad("citizen_id", "the citizen ID is required"))?;
    let store = &st.store;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    sqlx::query(&store.sql(
        "INSERT INTO supervision_practitioners (id, org_id, name, role, citizen_id_enc, citizen_id_bidx, qualification_type, \
         qualification_no, qualification_valid_until, licence_class, licence_valid_until, created_ms, updated_ms, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
    ))
    .bind(id.clone())
    .bind(org_id.to_string())
    .bind(p.name.clone())
    .bind(p.role.as_str())
    .bind(st.cipher.encrypt(cid.as_str()))
    .bind(st.cipher.blind_index(cid.as_str()))
    .bind(p.qualification_type.clone())
    .bind(p.qualification_no.clone())
    .bind(p.qualification_valid_until.clone())
    .bind(p.licence_class.clone())
    .bind(p.licence_valid_until.clone())
    .bind(now)
    .bind(by.to_string())
    .execute(&mut **tx)
    .await
    .map_err(|e| conflict(e.into()))?;
    Ok(id)
}

/// Replaces a practitioner's record: the enterprise's operators, or a transport regulator
/// correcting it. A loading manager drives nothing: becoming one drops the vehicle links.
#[tracing::instrument(skip_all)]
pub async fn update(st: &AppState, c: &Caller, id: &str, p: &PractitionerInput) -> ApiResult<PractitionerView> {
    let who = who(st, c).await?;
    let cur = load(st, id).await?.ok_or_else(not_found)?;
    if !may_see(st, c, who, &cur.org_id).await? {
        return Err(not_found());
    }
    let stored_id =
        cur.citizen_id(&st.cipher).ok_or_else(|| ApiError::internal("a stored citizen ID does not decrypt"))?;
    let p = check(p, Some(&stored_id))?;
    let store = &st.store;
    let mut tx = store.begin().await?;
    let mut sql = String::from(
        "UPDATE supervision_practitioners SET name = $1, role = $2, qualification_type = $3, qualification_no = $4, \
         qualification_valid_until = $5, licence_class = $6, licence_valid_until = $7, updated_ms = $8, updated_by = $9",
    );
    if p.citizen_id.is_some() {
        sql.push_str(", citizen_id_enc = $11, citizen_id_bidx = $12");
    }
    sql.push_str(" WHERE id = $10");
    let sql = store.sql(&sql);
    let mut q = sqlx::query(&sql)
        .bind(p.name.clone())
        .bind(p.role.as_str())
        .bind(p.qualification_type.clone())
        .bind(p.qualification_no.clone())
        .bind(p.qualification_valid_until.clone())
        .bind(p.licence_class.clone())
        .bind(p.licence_valid_until.clone())
        .bind(now_ms())
        .bind(c.username.clone())
        .bind(id.to_string());
    if let Some(cid) = &p.citizen_id {
        q = q.bind(st.cipher.encrypt(cid.as_str())).bind(st.cipher.blind_index(cid.as_str()));
    }
    q.execute(&mut *tx).await.map_err(|e| conflict(e.into()))?;
    let mut unlinked = 0;
    if p.role == PractitionerRole::Loader {
        unlinked = sqlx::query(&store.sql("DELETE FROM supervision_practitioner_vehicles WHERE practitioner_id = $1"))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .rows_affected();
    }
    let mut detail = audit_detail(&cur.org_id, &p);
    detail["citizen_id_changed"] = serde_json::json!(p.citizen_id.as_ref().is_some_and(|n| n.as_str() != stored_id));
    detail["vehicles_unlinked"] = serde_json::json!(unlinked);
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "practitioner.update", "practitioner", Some(id), Outcome::Success).detail(detail),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    view_of(st, load(st, id).await?.ok_or_else(not_found)?).await
}

/// Deletes a practitioner and the vehicle links (the enterprise's operators).
#[tracing::instrument(skip_all)]
pub async fn delete(st: &AppState, c: &Caller, id: &str) -> ApiResult<()> {
    operator_only(st, c).await?;
    let cur = load(st, id).await?.ok_or_else(not_found)?;
    if cur.org_id != c.org_id {
        return Err(not_found());
    }
    let store = &st.store;
    let mut tx = store.begin().await?;
    for sql in [
        "DELETE FROM supervision_practitioner_vehicles WHERE practitioner_id = $1",
        "DELETE FROM supervision_practitioners WHERE id = $1",
    ] {
        sqlx::query(&store.sql(sql)).bind(id.to_string()).execute(&mut *tx).await.map_err(StoreError::from)?;
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "practitioner.delete", "practitioner", Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": cur.org_id, "name": cur.name, "role": cur.role.as_str()})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Sets the vehicles a practitioner drives or escorts (operators of the enterprise, or a
/// transport regulator correcting them).
#[tracing::instrument(skip_all)]
pub async fn set_vehicles(st: &AppState, c: &Caller, id: &str, vehicle_ids: &[String]) -> ApiResult<PractitionerView> {
    let who = who(st, c).await?;
    let cur = load(st, id).await?.ok_or_else(not_found)?;
    if !may_see(st, c, who, &cur.org_id).await? {
        return Err(not_found());
    }
    let mut ids: Vec<String> = Vec::new();
    for v in vehicle_ids {
        if !ids.contains(v) {
            ids.push(v.clone());
        }
    }
    if ids.len() > MAX_VEHICLES {
        return Err(bad("vehicle_ids", format!("at most {MAX_VEHICLES} vehicles")));
    }
    if cur.role == PractitionerRole::Loader && !ids.is_empty() {
        return Err(bad("vehicle_ids", "a loading manager is not linked to vehicles"));
    }
    check_vehicles(st, &cur.org_id, &ids).await?;
    link(st, Actor::of(c), id, &cur.org_id, &ids).await?;
    view_of(st, load(st, id).await?.ok_or_else(not_found)?).await
}

/// Every id names a vehicle of the enterprise `org_id` (422 `vehicle_ids` otherwise).
pub async fn check_vehicles(st: &AppState, org_id: &str, ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ph: Vec<String> = (2..=ids.len() + 1).map(|n| format!("${n}")).collect();
    let sql = format!("SELECT id FROM transport_vehicles WHERE org_id = $1 AND id IN ({})", ph.join(", "));
    let sql = st.store.sql(&sql);
    let mut q = sqlx::query(&sql).bind(org_id.to_string());
    for id in ids {
        q = q.bind(id.clone());
    }
    let found: Vec<String> = q
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| col::<String>(r, "id"))
        .collect::<Result<_, _>>()?;
    match ids.iter().position(|i| !found.contains(i)) {
        Some(n) => Err(bad("vehicle_ids", format!("entry {n} is not a vehicle of the practitioner's enterprise"))),
        None => Ok(()),
    }
}

/// Replaces the links (checked by the caller) with their audit record, in one transaction. Also
/// the demo's way in.
pub async fn link(st: &AppState, actor: Actor, id: &str, org_id: &str, vehicle_ids: &[String]) -> ApiResult<()> {
    let store = &st.store;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("DELETE FROM supervision_practitioner_vehicles WHERE practitioner_id = $1"))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    for v in vehicle_ids {
        sqlx::query(
            &store.sql("INSERT INTO supervision_practitioner_vehicles (practitioner_id, vehicle_id) VALUES ($1, $2)"),
        )
        .bind(id.to_string())
        .bind(v.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    }
    sqlx::query(&store.sql("UPDATE supervision_practitioners SET updated_ms = $1, updated_by = $2 WHERE id = $3"))
        .bind(now_ms())
        .bind(actor.name.clone())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "practitioner.vehicles", "practitioner", Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": org_id, "vehicle_ids": vehicle_ids})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_classes_parse() {
        assert_eq!(licence_class(" b2e ").ok().as_deref(), Some("B2E"));
        assert_eq!(licence_class("A1A2").ok().as_deref(), Some("A1A2"));
        for bad in ["", "B3", "A2A2", "X", "C", "2"] {
            assert!(licence_class(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(days_of(&date_of(20_000)), Some(20_000));
        assert!(date("d", "2030-02-30").is_err());
        assert!(date("d", "30-02-01").is_err());
    }
}
