//! Enterprise profiles (企业档案): what the transport bureau keeps on each road transport
//! enterprise beyond its place in the organisation tree — the unified social credit code, business
//! scope, road transport operating licence and its validity, the safety officer, and the number of
//! dynamic-monitoring staff, which must be at least one per 100 vehicles and two at minimum
//! (道路运输车辆动态监督管理办法 第十六条: 监控人员 按照 每100辆车不少于1人 配备, 最低不少于2人).
//!
//! The enterprise's operators keep their own profile; the bureau's regulators read every
//! enterprise of their domain and may correct a profile. Every write is audited with the profile
//! it wrote; lists and reads are audited once per request (the safety officer is a person).

use crate::access::{reaches, who};
use crate::dates::{days_of, today_days};
use crate::ident::parse_uscc;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code};
use kernel::http::AppState;
use kernel::orgs::OrgKind;
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The domain whose enterprises are supervised here.
pub const DOMAIN: &str = "transport";

/// An enterprise's profile as stored.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// 统一社会信用代码 (GB 32100-2015, check characters verified).
    pub uscc: String,
    /// 经营范围, e.g. 危险货物运输（2类、3类）.
    pub business_scope: String,
    /// 道路运输经营许可证号.
    pub licence_no: String,
    /// The licence's last valid day, `YYYY-MM-DD`.
    pub licence_valid_until: String,
    /// 安全负责人.
    pub safety_officer: String,
    /// 动态监控人员数.
    pub monitoring_staff: i64,
}

/// One enterprise of the domain with its profile (if kept yet) and what follows from it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnterpriseView {
    pub org_id: String,
    pub name: String,
    pub name_en: String,
    /// None until the enterprise or the bureau fills it in.
    pub profile: Option<Profile>,
    /// Vehicles registered to the enterprise.
    pub vehicles: i64,
    /// Monitoring staff the enterprise needs: one per 100 vehicles, at least two.
    pub monitoring_required: i64,
    /// Fewer monitoring staff than required (or no profile yet).
    pub monitoring_short: bool,
    /// Days until the licence expires (negative: expired), from today in Beijing.
    pub licence_days_left: Option<i64>,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

/// Monitoring staff required for `vehicles` vehicles.
pub fn monitoring_required(vehicles: i64) -> i64 {
    ((vehicles + 99) / 100).max(2)
}

/// Who may read and keep a profile: transport regulators (in their scope) and the enterprise's
/// own operators (`org_id` None: a list, filtered to what the caller may see).
async fn require_access(st: &AppState, c: &Caller, org_id: Option<&str>) -> ApiResult<()> {
    who(st, c).await?;
    match org_id {
        Some(o) if !reaches(c, o) => Err(ApiError::not_found("enterprise")),
        _ => Ok(()),
    }
}

/// The transport enterprises in the caller's scope with their profiles, by name.
pub async fn list(st: &AppState, c: &Caller) -> ApiResult<Vec<EnterpriseView>> {
    require_access(st, c, None).await?;
    let (orgs, _) = kernel::orgs::list(&st.store, &c.scope, Some(OrgKind::Enterprise), None, 100_000, 0).await?;
    let mut out = Vec::new();
    for o in orgs {
        if st.orgs.domain_of(&st.store, &o.id).await?.as_deref() != Some(DOMAIN) {
            continue;
        }
        if c.role == Role::Operator && o.id != c.org_id {
            continue;
        }
        out.push(view(st, &o.id, &o.name, &o.name_en).await?);
    }
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "enterprise.list", "organisation", None, Outcome::Success)
            .detail(serde_json::json!({"count": out.len()})),
    )
    .await?;
    Ok(out)
}

async fn view(st: &AppState, org_id: &str, name: &str, name_en: &str) -> ApiResult<EnterpriseView> {
    let row = sqlx::query(&st.store.sql(
        "SELECT uscc, business_scope, licence_no, licence_valid_until, safety_officer, monitoring_staff, updated_ms, updated_by \
         FROM supervision_enterprises WHERE org_id = $1",
    ))
    .bind(org_id.to_string())
    .fetch_optional(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let vehicles: i64 = sqlx::query_scalar(&st.store.sql("SELECT COUNT(*) FROM transport_vehicles WHERE org_id = $1"))
        .bind(org_id.to_string())
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let required = monitoring_required(vehicles);
    let (profile, updated_at, updated_by) = match &row {
        Some(r) => (
            Some(Profile {
                uscc: col(r, "uscc")?,
                business_scope: col(r, "business_scope")?,
                licence_no: col(r, "licence_no")?,
                licence_valid_until: col(r, "licence_valid_until")?,
                safety_officer: col(r, "safety_officer")?,
                monitoring_staff: col(r, "monitoring_staff")?,
            }),
            Some(ms_to_rfc3339(col(r, "updated_ms")?)),
            Some(col::<String>(r, "updated_by")?),
        ),
        None => (None, None, None),
    };
    Ok(EnterpriseView {
        org_id: org_id.to_string(),
        name: name.to_string(),
        name_en: name_en.to_string(),
        monitoring_short: profile.as_ref().is_none_or(|p| p.monitoring_staff < required),
        licence_days_left: profile.as_ref().and_then(|p| days_of(&p.licence_valid_until)).map(|d| d - today_days()),
        profile,
        vehicles,
        monitoring_required: required,
        updated_at,
        updated_by,
    })
}

/// One transport enterprise with its profile (404 outside the caller's scope).
pub async fn get(st: &AppState, c: &Caller, org_id: &str) -> ApiResult<EnterpriseView> {
    require_access(st, c, Some(org_id)).await?;
    let org = enterprise(st, c, org_id).await?;
    let v = view(st, &org.id, &org.name, &org.name_en).await?;
    audit::record(
        &st.store,
        Event::new(Actor::of(c), "enterprise.read", "organisation", Some(org_id), Outcome::Success),
    )
    .await?;
    Ok(v)
}

/// A transport enterprise in the caller's scope, else 404.
pub(crate) async fn enterprise(st: &AppState, c: &Caller, org_id: &str) -> ApiResult<kernel::orgs::Organisation> {
    let not_found = || ApiError::not_found("enterprise");
    if !c.scope.contains(org_id) {
        return Err(not_found());
    }
    let org = kernel::orgs::get(&st.store, org_id).await?.ok_or_else(not_found)?;
    if org.kind != OrgKind::Enterprise || st.orgs.domain_of(&st.store, org_id).await?.as_deref() != Some(DOMAIN) {
        return Err(not_found());
    }
    Ok(org)
}

/// Checks a profile field by field: the first fault as a 422 naming it.
pub fn check(p: &Profile) -> ApiResult<Profile> {
    let bad = |field: &str, why: String| ApiError::field(Code::InvalidField, field, why);
    let text = |field: &str, v: &str, max: usize| -> ApiResult<String> {
        let v = v.trim();
        if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(bad(field, format!("1 to {max} printable characters")));
        }
        Ok(v.to_string())
    };
    let uscc = parse_uscc(&p.uscc).map_err(|e| bad("uscc", e.to_string()))?;
    if days_of(p.licence_valid_until.trim()).is_none() {
        return Err(bad("licence_valid_until", "a date, YYYY-MM-DD".into()));
    }
    if !(0..=10_000).contains(&p.monitoring_staff) {
        return Err(bad("monitoring_staff", "0 to 10000".into()));
    }
    Ok(Profile {
        uscc,
        business_scope: text("business_scope", &p.business_scope, 500)?,
        licence_no: text("licence_no", &p.licence_no, 50)?,
        licence_valid_until: p.licence_valid_until.trim().to_string(),
        safety_officer: text("safety_officer", &p.safety_officer, 50)?,
        monitoring_staff: p.monitoring_staff,
    })
}

/// Writes an enterprise's profile: its operators, or a transport regulator correcting it.
pub async fn put(st: &AppState, c: &Caller, org_id: &str, p: &Profile) -> ApiResult<EnterpriseView> {
    require_access(st, c, Some(org_id)).await?;
    let org = enterprise(st, c, org_id).await?;
    let p = check(p)?;
    write(st, Actor::of(c), org_id, &p).await?;
    view(st, &org.id, &org.name, &org.name_en).await
}

/// Stores a profile (checked by the caller) with its audit record, in one transaction. Also the
/// demo's way in.
pub async fn write(st: &AppState, actor: Actor, org_id: &str, p: &Profile) -> ApiResult<()> {
    let store = &st.store;
    let mut tx = store.begin().await?;
    write_in(st, &mut tx, &actor.name, org_id, p).await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "enterprise.profile", "organisation", Some(org_id), Outcome::Success).detail(
            serde_json::json!({
                "uscc": p.uscc, "licence_no": p.licence_no, "licence_valid_until": p.licence_valid_until,
                "monitoring_staff": p.monitoring_staff,
            }),
        ),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Stores a profile (checked by the caller) inside the caller's transaction, which also writes
/// the audit record (one per profile, or one for an import). Another enterprise's credit code is
/// a 409 naming `uscc`.
pub async fn write_in(
    st: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    by: &str,
    org_id: &str,
    p: &Profile,
) -> ApiResult<()> {
    let store = &st.store;
    let by = by.to_string();
    let now = now_ms();
    let updated = sqlx::query(&store.sql(
        "UPDATE supervision_enterprises SET uscc = $1, business_scope = $2, licence_no = $3, licence_valid_until = $4, \
         safety_officer = $5, monitoring_staff = $6, updated_ms = $7, updated_by = $8 WHERE org_id = $9",
    ))
    .bind(p.uscc.clone())
    .bind(p.business_scope.clone())
    .bind(p.licence_no.clone())
    .bind(p.licence_valid_until.clone())
    .bind(p.safety_officer.clone())
    .bind(p.monitoring_staff)
    .bind(now)
    .bind(by.clone())
    .bind(org_id.to_string())
    .execute(&mut **tx)
    .await
    .map_err(conflict)?
    .rows_affected();
    if updated == 0 {
        sqlx::query(&store.sql(
            "INSERT INTO supervision_enterprises (org_id, uscc, business_scope, licence_no, licence_valid_until, safety_officer, \
             monitoring_staff, updated_ms, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ))
        .bind(org_id.to_string())
        .bind(p.uscc.clone())
        .bind(p.business_scope.clone())
        .bind(p.licence_no.clone())
        .bind(p.licence_valid_until.clone())
        .bind(p.safety_officer.clone())
        .bind(p.monitoring_staff)
        .bind(now)
        .bind(by)
        .execute(&mut **tx)
        .await
        .map_err(conflict)?;
    }
    Ok(())
}

/// The unified social credit code is unique: another enterprise holding it is a conflict.
fn conflict(e: sqlx::Error) -> ApiError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => ApiError::field(
            Code::Conflict,
            "uscc",
            "another enterprise is registered with this unified social credit code",
        ),
        other => other.into(),
    }
}
