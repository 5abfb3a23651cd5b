//! `/api/health/teams`, `/api/health/contracts`, `/api/health/townships`: family-doctor teams,
//! residents' contracts with them, and contract coverage per township (家庭医生签约).
//!
//! An institution's clinicians form its teams (each member a clinician of the institution) and
//! register the contracts residents sign with them; a contract in force puts the resident in
//! care at the team's institution (`Records::in_care`), so its clinicians read the shared
//! record. A resident has one contract at a time (a second overlapping one is a 409 naming the
//! team), renews it from 60 days before its end, or it is terminated with a reason. Each
//! contract written or listed is audited against the patient; the resident sees their own
//! contracts. Coverage (签约覆盖率) is contracted residents ÷ the township's resident population,
//! which the health commission's staff keep.

use crate::contract::{self, DEFAULT_MONTHS, MAX_MONTHS, RENEW_WITHIN_DAYS};
use crate::health_api::{is_health_regulator, records};
use crate::records::{Author, Change, Keys, Records};
use crate::synth::LOCALITIES;
use axum::extract::State as AxState;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(keys: Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(teams, create_team))
        .routes(routes!(contracts, sign))
        .routes(routes!(coverage))
        .routes(routes!(renew))
        .routes(routes!(terminate))
        .routes(routes!(townships))
        .routes(routes!(set_township))
        .layer(axum::Extension(keys))
}

async fn refuse(st: &AppState, c: &Caller, action: &str, target: Option<&str>, why: &str, msg: &str) -> ApiError {
    crate::health_api::refuse(st, c, action, "contract", target, why, msg).await
}

async fn require_clinician(st: &AppState, c: &Caller, action: &str, target: Option<&str>) -> ApiResult<()> {
    if c.role == Role::Clinician {
        return Ok(());
    }
    Err(refuse(
        st,
        c,
        action,
        target,
        "not_clinician",
        "family-doctor contracts are kept by clinicians (由医生办理签约)",
    )
    .await)
}

fn bad(field: impl Into<String>, msg: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, msg)
}

// ---------------------------------------------------------------- teams

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CareTeamMember)]
pub struct Member {
    pub user_id: String,
    /// doctor 家庭医生, nurse 护士, public_health 公卫医生, village_doctor 乡村医生, specialist 专科医生.
    pub role: String,
    #[serde(default, skip_deserializing)]
    pub display_name: Option<String>,
}

/// A family-doctor team (家庭医生团队, FHIR CareTeam).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CareTeam)]
pub struct Team {
    pub id: String,
    pub org_id: String,
    pub org_name: Option<String>,
    pub name: String,
    /// The township (镇/街道) the team serves.
    pub township: String,
    pub members: Vec<Member>,
    /// Contracts in force today.
    pub contracts_in_force: i64,
    pub created: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewCareTeam)]
pub struct NewTeam {
    pub name: String,
    pub township: String,
    /// Clinicians of the caller's institution, one of them at least a `doctor`.
    pub members: Vec<Member>,
}

async fn team_view(st: &AppState, row: &sqlx::any::AnyRow, today: &str) -> ApiResult<Team> {
    let id: String = col(row, "id")?;
    let org_id: String = col(row, "org_id")?;
    let ms = sqlx::query(&st.store.sql(
        "SELECT m.user_id, m.role, u.display_name FROM health_care_team_members m LEFT JOIN users u ON u.id = m.user_id \
         WHERE m.team_id = $1 ORDER BY m.role, m.user_id",
    ))
    .bind(id.clone())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let members = ms
        .iter()
        .map(|m| {
            Ok(Member { user_id: col(m, "user_id")?, role: col(m, "role")?, display_name: col(m, "display_name")? })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let n = sqlx::query(&st.store.sql(
        "SELECT COUNT(*) AS n FROM health_contracts WHERE team_id = $1 AND state <> 'terminated' \
         AND start_day <= $2 AND end_day >= $2",
    ))
    .bind(id.clone())
    .bind(today.to_string())
    .fetch_one(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    Ok(Team {
        org_name: kernel::orgs::get(&st.store, &org_id).await?.map(|o| o.name),
        name: col(row, "name")?,
        township: col(row, "township")?,
        members,
        contracts_in_force: col(&n, "n")?,
        created: ms_to_rfc3339(col(row, "created_ms")?),
        id,
        org_id,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamFilter {
    pub township: Option<String>,
}

/// The family-doctor teams: a clinician's institution's, or every institution's for the health
/// commission's staff.
#[utoipa::path(get, path = "/api/health/teams", tag = "health", params(TeamFilter),
    responses((status = 200, body = Vec<Team>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn teams(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    Query(f): Query<TeamFilter>,
) -> ApiResult<axum::Json<Vec<Team>>> {
    let all = is_health_regulator(&st, &c).await?;
    if !all {
        require_clinician(&st, &c, "health.team.list", None).await?;
    }
    let rows = sqlx::query(&st.store.sql(
        "SELECT id, org_id, name, township, created_ms FROM health_care_teams \
         WHERE ($1 = 1 OR org_id = $2) AND ($3 = '' OR township = $3) ORDER BY township, name",
    ))
    .bind(i64::from(all))
    .bind(c.org_id.clone())
    .bind(f.township.unwrap_or_default())
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let today = contract::today();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(team_view(&st, r, &today).await?);
    }
    Ok(axum::Json(out))
}

/// Forms a family-doctor team of the caller's institution.
#[utoipa::path(post, path = "/api/health/teams", tag = "health", request_body = NewTeam,
    responses((status = 201, body = Team), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_team(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    kernel::http::Json(b): kernel::http::Json<NewTeam>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Team>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(form_team(&st, &c, b).await?)))
}

/// Forms a team of the clinician `c`'s institution (the service behind `POST /api/health/teams`).
pub async fn form_team(st: &AppState, c: &Caller, b: NewTeam) -> ApiResult<Team> {
    require_clinician(st, c, "health.team.create", None).await?;
    let name = kernel::orgs::check_name("name", &b.name, 50)?;
    if !LOCALITIES.contains(&b.township.as_str()) {
        return Err(bad("township", "one of Wuqing's towns and sub-districts (不是武清区的镇街)"));
    }
    if b.members.is_empty() || b.members.len() > 20 {
        return Err(bad("members", "1 to 20 members (成员 1–20 人)"));
    }
    if !b.members.iter().any(|m| m.role == "doctor") {
        return Err(bad("members", "a team has a family doctor (团队须有家庭医生)"));
    }
    for (i, m) in b.members.iter().enumerate() {
        if !contract::MEMBER_ROLES.iter().any(|(r, _)| *r == m.role) {
            return Err(bad(
                format!("members[{i}].role"),
                "doctor, nurse, public_health, village_doctor or specialist",
            ));
        }
        if b.members[..i].iter().any(|o| o.user_id == m.user_id) {
            return Err(bad(format!("members[{i}].user_id"), "named twice (重复)"));
        }
        let u = kernel::users::by_id(&st.store, &m.user_id).await?;
        if !u.is_some_and(|u| u.role == Role::Clinician && u.org_id == c.org_id) {
            return Err(bad(format!("members[{i}].user_id"), "not a clinician of your institution (不是本机构医生)"));
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = st.store.begin().await?;
    let ins = sqlx::query(
        &st.store
            .sql("INSERT INTO health_care_teams (id, org_id, name, township, created_ms) VALUES ($1, $2, $3, $4, $5)"),
    )
    .bind(id.clone())
    .bind(c.org_id.clone())
    .bind(name)
    .bind(b.township.clone())
    .bind(now)
    .execute(&mut *tx)
    .await;
    if let Err(e) = ins {
        let e = StoreError::from(e);
        return Err(match e {
            StoreError::Conflict(_) => {
                ApiError::new(Code::Conflict, "your institution has a team of that name (团队名称重复)")
            }
            e => e.into(),
        });
    }
    for m in &b.members {
        sqlx::query(&st.store.sql("INSERT INTO health_care_team_members (team_id, user_id, role) VALUES ($1, $2, $3)"))
            .bind(id.clone())
            .bind(m.user_id.clone())
            .bind(m.role.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    }
    let ev = Event::new(Actor::of(c), "health.team.create", "care_team", Some(&id), Outcome::Success);
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = team_row(st, &id).await?.ok_or_else(|| ApiError::not_found("team"))?;
    team_view(st, &row, &contract::today()).await
}

async fn team_row(st: &AppState, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&st.store.sql("SELECT id, org_id, name, township, created_ms FROM health_care_teams WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

// ---------------------------------------------------------------- contracts

/// Where a contract stands today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ContractStatus)]
pub enum Status {
    /// 履约中
    InForce,
    /// 未生效: starts later (a renewal waiting for the old term's end).
    Pending,
    /// 已到期
    Expired,
    /// 已解约
    Terminated,
}

/// A resident's contract with a family-doctor team (FHIR: the CareTeam's participant, with a
/// CarePlan per managed condition).
#[derive(Debug, Serialize, ToSchema)]
pub struct Contract {
    pub id: String,
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub team_id: String,
    pub team_name: Option<String>,
    pub org_id: String,
    pub township: String,
    pub packages: Vec<String>,
    /// First and last day covered (Beijing, `YYYY-MM-DD`).
    pub start: String,
    pub end: String,
    pub status: Status,
    /// Days until the end (negative once expired).
    pub days_left: i64,
    /// Renewed: the contract that continues it.
    pub renewed_by: Option<String>,
    pub renewed_from: Option<String>,
    pub signed_by: String,
    pub signed: String,
    pub terminated: Option<String>,
    pub termination_reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewContract)]
pub struct NewContract {
    pub patient_id: String,
    pub team_id: String,
    /// Package codes; the basic package is always included.
    pub packages: Option<Vec<String>>,
    /// First day (`YYYY-MM-DD`, today by default; not in the past, at most 90 days ahead).
    pub start: Option<String>,
    /// Term in months (12 by default, at most 36).
    pub months: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// The packages of the new term (the old ones by default).
    pub packages: Option<Vec<String>>,
    pub months: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Termination {
    /// Why (the resident's request, moved away, died…): 2–500 characters.
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractFilter {
    pub team_id: Option<String>,
    pub patient_id: Option<String>,
    /// Only contracts in force that end within this many days and are not yet renewed (续约提醒).
    pub expiring_within_days: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

const CONTRACT_COLUMNS: &str = "k.id, k.patient_id, k.team_id, t.name AS team_name, k.org_id, k.township, k.packages, \
    k.start_day, k.end_day, k.state, k.signed_by, k.signed_ms, k.renewed_from, k.ended_ms, k.end_reason_enc, \
    (SELECT n.id FROM health_contracts n WHERE n.renewed_from = k.id) AS renewed_by";
const CONTRACT_FROM: &str = "health_contracts k LEFT JOIN health_care_teams t ON t.id = k.team_id";

async fn contract_view(st: &AppState, r: &Records, row: &sqlx::any::AnyRow) -> ApiResult<Contract> {
    let today = contract::today_date();
    let start: String = col(row, "start_day")?;
    let end: String = col(row, "end_day")?;
    let state: String = col(row, "state")?;
    let end_date = contract::parse_day(&end).ok_or_else(|| StoreError::Corrupt("a contract's end day".into()))?;
    let status = if state == "terminated" {
        Status::Terminated
    } else if end_date < today {
        Status::Expired
    } else if contract::parse_day(&start).is_some_and(|s| s > today) {
        Status::Pending
    } else {
        Status::InForce
    };
    let patient_id: String = col(row, "patient_id")?;
    Ok(Contract {
        id: col(row, "id")?,
        patient_name: r.patient_name(&patient_id).await?,
        patient_id,
        team_id: col(row, "team_id")?,
        team_name: col(row, "team_name")?,
        org_id: col(row, "org_id")?,
        township: col(row, "township")?,
        packages: col::<String>(row, "packages")?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        start,
        end,
        status,
        days_left: (end_date - today).whole_days(),
        renewed_by: col(row, "renewed_by")?,
        renewed_from: col(row, "renewed_from")?,
        signed_by: col(row, "signed_by")?,
        signed: ms_to_rfc3339(col(row, "signed_ms")?),
        terminated: col::<Option<i64>>(row, "ended_ms")?.map(ms_to_rfc3339),
        termination_reason: col::<Option<Vec<u8>>>(row, "end_reason_enc")?
            .map(|b| st.cipher.decrypt(&b).map_err(|_| StoreError::Corrupt("a contract's termination reason".into())))
            .transpose()?,
    })
}

async fn contract_row(st: &AppState, id: &str) -> ApiResult<Option<sqlx::any::AnyRow>> {
    Ok(sqlx::query(&st.store.sql(&format!("SELECT {CONTRACT_COLUMNS} FROM {CONTRACT_FROM} WHERE k.id = $1")))
        .bind(id.to_string())
        .fetch_optional(st.store.reader())
        .await
        .map_err(StoreError::from)?)
}

fn term(months: Option<u32>) -> ApiResult<u32> {
    match months.unwrap_or(DEFAULT_MONTHS) {
        m @ 1..=MAX_MONTHS => Ok(m),
        _ => Err(bad("months", "1 to 36 months (签约期 1–36 个月)")),
    }
}

/// The contract of the patient, not terminated, whose term overlaps `[start, end]`.
async fn overlapping(
    st: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    patient: &str,
    start: &str,
    end: &str,
    except: Option<&str>,
) -> ApiResult<Option<(String, Option<String>)>> {
    let row = sqlx::query(&st.store.sql(
        "SELECT k.id, t.name FROM health_contracts k LEFT JOIN health_care_teams t ON t.id = k.team_id \
         WHERE k.patient_id = $1 AND k.state <> 'terminated' AND k.start_day <= $3 AND k.end_day >= $2 \
         AND k.id <> $4 LIMIT 1",
    ))
    .bind(patient.to_string())
    .bind(start.to_string())
    .bind(end.to_string())
    .bind(except.unwrap_or_default().to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(row.map(|r| Ok::<_, StoreError>((col(&r, "id")?, col(&r, "name")?))).transpose()?)
}

#[allow(clippy::too_many_arguments)]
async fn insert_contract(
    st: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    c: &Caller,
    id: &str,
    patient: &str,
    team: &sqlx::any::AnyRow,
    township: &str,
    packages: &[&str],
    start: &str,
    end: &str,
    renewed_from: Option<&str>,
) -> ApiResult<()> {
    sqlx::query(&st.store.sql(
        "INSERT INTO health_contracts (id, patient_id, team_id, org_id, township, packages, start_day, end_day, state, \
         signed_by, signed_ms, renewed_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'signed', $9, $10, $11)",
    ))
    .bind(id.to_string())
    .bind(patient.to_string())
    .bind(col::<String>(team, "id")?)
    .bind(col::<String>(team, "org_id")?)
    .bind(township.to_string())
    .bind(packages.join(","))
    .bind(start.to_string())
    .bind(end.to_string())
    .bind(c.user_id.clone())
    .bind(now_ms())
    .bind(renewed_from.map(str::to_string))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    // The managed conditions' packages put the resident under monitoring at the institution.
    let org: String = col(team, "org_id")?;
    for cond in managed_conditions(packages) {
        crate::monitoring::enrol(st, tx, patient, cond, &org, now_ms()).await?;
    }
    Ok(())
}

/// The monitored conditions a contract's packages manage.
fn managed_conditions(packages: &[&str]) -> Vec<rules::clinical::Condition> {
    use rules::clinical::Condition;
    let mut out = vec![];
    if packages.contains(&"hypertension") {
        out.push(Condition::Hypertension);
    }
    if packages.contains(&"diabetes") {
        out.push(Condition::Diabetes);
    }
    out
}

/// The CarePlan of a contract's managed condition: its id.
fn care_plan_id(contract: &str, c: rules::clinical::Condition) -> String {
    format!("cp-{contract}-{}", crate::monitoring::condition_str(c))
}

/// One CarePlan per managed condition of a contract (高血压/糖尿病患者健康管理), for the contract's
/// term, following the basic public health service: at least four face-to-face follow-ups a
/// year, home monitoring, the yearly health check.
#[allow(clippy::too_many_arguments)]
async fn write_care_plans(
    r: &Records,
    c: &Caller,
    contract: &str,
    patient: &str,
    team_name: &str,
    packages: &[&str],
    start: &str,
    end: &str,
) -> ApiResult<()> {
    use rules::clinical::Condition;
    let mut changes = vec![];
    for cond in managed_conditions(packages) {
        let (code, title, monitoring) = match cond {
            Condition::Hypertension => (
                "hypertension",
                "高血压患者健康管理 Hypertension management",
                "家庭血压监测 Home blood-pressure monitoring",
            ),
            Condition::Diabetes => {
                ("diabetes", "2型糖尿病患者健康管理 Type 2 diabetes management", "家庭血糖监测 Home glucose monitoring")
            }
        };
        let id = care_plan_id(contract, cond);
        let detail = |status: &str, text: &str| json!({ "detail": { "status": status, "description": text } });
        let plan = json!({
            "resourceType": "CarePlan",
            "id": id,
            "identifier": [{ "system": "urn:wuqing:contract", "value": format!("{contract}/{code}") }],
            "status": "active",
            "intent": "plan",
            "category": [{ "coding": [{ "system": "urn:wuqing:care-plan", "code": code }], "text": title }],
            "title": title,
            "subject": { "reference": format!("Patient/{patient}") },
            "period": { "start": start, "end": end },
            "careTeam": [{ "display": team_name }],
            "author": { "reference": format!("Organization/{}", c.org_id) },
            "activity": [
                detail("scheduled", "每年至少 4 次面对面随访 At least four face-to-face follow-ups a year"),
                detail("in-progress", monitoring),
                detail("scheduled", "每年 1 次健康体检 A yearly health check"),
            ],
        });
        changes.push(Change { rtype: "CarePlan".into(), id, resource: Some(plan), if_match: None });
    }
    if changes.is_empty() {
        return Ok(());
    }
    let author = Author { user_id: c.user_id.clone(), name: c.username.clone(), org_id: c.org_id.clone() };
    r.commit(&author, "care-plan", changes, vec![]).await.map_err(write_error)?;
    Ok(())
}

/// Ends a contract's CarePlans (`completed` at renewal, `revoked` at termination).
async fn end_care_plans(r: &Records, c: &Caller, contract: &str, packages: &[&str], status: &str) -> ApiResult<()> {
    let mut changes = vec![];
    for cond in managed_conditions(packages) {
        let id = care_plan_id(contract, cond);
        if let Some(cur) = r.current("CarePlan", &id).await? {
            if cur.deleted || cur.owner_org != c.org_id {
                continue;
            }
            let mut body = cur.body.clone();
            body["status"] = json!(status);
            changes.push(Change { rtype: "CarePlan".into(), id, resource: Some(body), if_match: Some(cur.version) });
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let author = Author { user_id: c.user_id.clone(), name: c.username.clone(), org_id: c.org_id.clone() };
    r.commit(&author, "care-plan", changes, vec![]).await.map_err(write_error)?;
    Ok(())
}

fn write_error(e: crate::records::WriteError) -> ApiError {
    match e {
        crate::records::WriteError::Store(s) => s.into(),
        e => ApiError::new(Code::Conflict, e.to_string()),
    }
}

/// Registers the contract a resident signed with one of the caller's institution's teams.
#[utoipa::path(post, path = "/api/health/contracts", tag = "health", request_body = NewContract,
    responses((status = 201, body = Contract), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn sign(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    kernel::http::Json(b): kernel::http::Json<NewContract>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Contract>)> {
    Ok((axum::http::StatusCode::CREATED, axum::Json(sign_contract(&st, &keys, &c, b).await?)))
}

/// Registers a contract as the clinician `c` (the service behind `POST /api/health/contracts`).
pub async fn sign_contract(st: &AppState, keys: &Keys, c: &Caller, b: NewContract) -> ApiResult<Contract> {
    require_clinician(st, c, "health.contract.sign", None).await?;
    let Some(team) = team_row(st, &b.team_id).await? else {
        return Err(bad("team_id", "no such team (团队不存在)"));
    };
    if col::<String>(&team, "org_id")? != c.org_id {
        return Err(refuse(
            st,
            c,
            "health.contract.sign",
            None,
            "not_your_team",
            "a team of your institution signs (只能签约本机构团队)",
        )
        .await);
    }
    let packages = contract::packages(&b.packages.unwrap_or_default()).map_err(|e| bad("packages", e))?;
    let months = term(b.months)?;
    let today = contract::today_date();
    let start = match b.start.as_deref() {
        None => today,
        Some(s) => {
            let d = contract::parse_day(s).ok_or_else(|| bad("start", "a date YYYY-MM-DD (日期格式错误)"))?;
            if d < today || (d - today).whole_days() > 90 {
                return Err(bad("start", "from today to 90 days ahead (起始日须在今天至 90 天内)"));
            }
            d
        }
    };
    let r = records(st, keys);
    if !r.exists("Patient", &b.patient_id).await? {
        return Err(ApiError::not_found("patient"));
    }
    let (start, end) = (contract::day(start), contract::day(contract::term_end(start, months)));
    // Coverage counts residents where they live: the township of the resident's address, else
    // the team's.
    let address = r.current("Patient", &b.patient_id).await?.map(|p| p.body["address"].to_string()).unwrap_or_default();
    let township = match LOCALITIES.iter().find(|l| address.contains(**l)) {
        Some(l) => l.to_string(),
        None => col::<String>(&team, "township")?,
    };
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = st.store.begin().await?;
    if let Some((_, team_name)) = overlapping(st, &mut tx, &b.patient_id, &start, &end, None).await? {
        return Err(ApiError::new(
            Code::Conflict,
            format!(
                "the resident has a contract with {} for these dates; a resident signs with one team at a time (已与其他团队签约)",
                team_name.unwrap_or_else(|| "another team".into())
            ),
        ));
    }
    insert_contract(st, &mut tx, c, &id, &b.patient_id, &team, &township, &packages, &start, &end, None).await?;
    let ev = Event::new(Actor::of(c), "health.contract.sign", "Patient", Some(&b.patient_id), Outcome::Success)
        .detail(json!({ "contract": id, "team": b.team_id, "start": start, "end": end }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let team_name: String = col(&team, "name")?;
    write_care_plans(&r, c, &id, &b.patient_id, &team_name, &packages, &start, &end).await?;
    let row = contract_row(st, &id).await?.ok_or_else(|| ApiError::not_found("contract"))?;
    contract_view(st, &r, &row).await
}

/// The contract as its institution's clinician may act on it (404 for another's).
async fn own_contract(st: &AppState, c: &Caller, id: &str, action: &str) -> ApiResult<sqlx::any::AnyRow> {
    require_clinician(st, c, action, Some(id)).await?;
    let row = contract_row(st, id).await?;
    match row {
        Some(row) if col::<String>(&row, "org_id")? == c.org_id => Ok(row),
        Some(_) => {
            let ev = Event::new(Actor::of(c), action, "contract", Some(id), Outcome::Denied)
                .detail(json!({ "refusal": "not_your_institution" }));
            audit::record(&st.store, ev).await?;
            Err(ApiError { audited: true, ..ApiError::not_found("contract") })
        }
        None => Err(ApiError::not_found("contract")),
    }
}

/// Renews a contract for a new term that starts the day after it ends (today, when it has
/// expired): from 60 days before its end; once only.
#[utoipa::path(post, path = "/api/health/contracts/{id}/renew", tag = "health", params(("id" = String, Path)),
    request_body = Renewal,
    responses((status = 201, body = Contract), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn renew(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<Renewal>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Contract>)> {
    let old = own_contract(&st, &c, &id, "health.contract.renew").await?;
    let state: String = col(&old, "state")?;
    if state == "terminated" {
        return Err(ApiError::new(Code::Conflict, "a terminated contract is not renewed; sign a new one (已解约)"));
    }
    if col::<Option<String>>(&old, "renewed_by")?.is_some() {
        return Err(ApiError::new(Code::Conflict, "renewed already (已续约)"));
    }
    let end = contract::parse_day(&col::<String>(&old, "end_day")?)
        .ok_or_else(|| StoreError::Corrupt("a contract's end day".into()))?;
    let today = contract::today_date();
    if (end - today).whole_days() > RENEW_WITHIN_DAYS {
        return Err(ApiError::new(Code::Conflict, "renewal opens 60 days before the end (到期前 60 天内可续约)"));
    }
    let asked = match b.packages {
        Some(p) => p,
        None => col::<String>(&old, "packages")?.split(',').map(str::to_string).collect(),
    };
    let packages = contract::packages(&asked).map_err(|e| bad("packages", e))?;
    let months = term(b.months)?;
    let start = (end + time::Duration::days(1)).max(today);
    let (start_s, end_s) = (contract::day(start), contract::day(contract::term_end(start, months)));
    let team = team_row(&st, &col::<String>(&old, "team_id")?).await?.ok_or_else(|| ApiError::not_found("team"))?;
    let patient: String = col(&old, "patient_id")?;
    let new_id = uuid::Uuid::now_v7().to_string();
    let mut tx = st.store.begin().await?;
    if let Some((other, _)) = overlapping(&st, &mut tx, &patient, &start_s, &end_s, Some(&id)).await? {
        return Err(ApiError::new(Code::Conflict, format!("the new term overlaps contract {other} (与其他签约重叠)")));
    }
    let township: String = col(&old, "township")?;
    insert_contract(&st, &mut tx, &c, &new_id, &patient, &team, &township, &packages, &start_s, &end_s, Some(&id))
        .await?;
    let done =
        sqlx::query(&st.store.sql("UPDATE health_contracts SET state = 'renewed' WHERE id = $1 AND state = 'signed'"))
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "the contract changed meanwhile (已被修改)"));
    }
    let ev = Event::new(Actor::of(&c), "health.contract.renew", "Patient", Some(&patient), Outcome::Success)
        .detail(json!({ "contract": new_id, "renewed_from": id, "start": start_s, "end": end_s }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => ApiError::new(Code::Conflict, "renewed already (已续约)"),
        e => e.into(),
    })?;
    let r = records(&st, &keys);
    let old_packages: String = col(&old, "packages")?;
    let old_packages: Vec<&str> = old_packages.split(',').collect();
    end_care_plans(&r, &c, &id, &old_packages, "completed").await?;
    let team_name: String = col(&team, "name")?;
    write_care_plans(&r, &c, &new_id, &patient, &team_name, &packages, &start_s, &end_s).await?;
    let row = contract_row(&st, &new_id).await?.ok_or_else(|| ApiError::not_found("contract"))?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(contract_view(&st, &r, &row).await?)))
}

/// Ends a contract before its term (the resident's request, moved away…), with the reason.
#[utoipa::path(post, path = "/api/health/contracts/{id}/terminate", tag = "health", params(("id" = String, Path)),
    request_body = Termination,
    responses((status = 200, body = Contract), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn terminate(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Path(id): Path<String>,
    kernel::http::Json(b): kernel::http::Json<Termination>,
) -> ApiResult<axum::Json<Contract>> {
    let old = own_contract(&st, &c, &id, "health.contract.terminate").await?;
    let reason = b.reason.trim();
    if !(2..=500).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
        return Err(bad("reason", "2 to 500 characters, no control characters (请说明解约原因)"));
    }
    let mut tx = st.store.begin().await?;
    let done = sqlx::query(&st.store.sql(
        "UPDATE health_contracts SET state = 'terminated', ended_ms = $1, end_reason_enc = $2 \
         WHERE id = $3 AND state <> 'terminated'",
    ))
    .bind(now_ms())
    .bind(st.cipher.encrypt(reason))
    .bind(id.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(Code::Conflict, "terminated already (已解约)"));
    }
    let patient: String = col(&old, "patient_id")?;
    crate::monitoring::leave(&st, &mut tx, &patient, &c.org_id).await?;
    let ev = Event::new(Actor::of(&c), "health.contract.terminate", "Patient", Some(&patient), Outcome::Success)
        .detail(json!({ "contract": id }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let r = records(&st, &keys);
    let packages: String = col(&old, "packages")?;
    end_care_plans(&r, &c, &id, &packages.split(',').collect::<Vec<_>>(), "revoked").await?;
    let row = contract_row(&st, &id).await?.ok_or_else(|| ApiError::not_found("contract"))?;
    Ok(axum::Json(contract_view(&st, &r, &row).await?))
}

/// Contracts: a clinician's institution's (filtered by team, patient, or those to renew), a
/// resident's own. Each patient listed is audited as a read.
#[utoipa::path(get, path = "/api/health/contracts", tag = "health", params(ContractFilter),
    responses((status = 200, body = Paged<Contract>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn contracts(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<Keys>,
    Query(f): Query<ContractFilter>,
) -> ApiResult<axum::Json<Paged<Contract>>> {
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let r = records(&st, &keys);
    let mut conds: Vec<String> = vec![];
    let mut args: Vec<String> = vec![];
    let mut arg = |v: String, conds: &mut Vec<String>, sql: &str| {
        args.push(v);
        conds.push(sql.replace('?', &format!("${}", args.len())));
    };
    match c.role {
        Role::Clinician => arg(c.org_id.clone(), &mut conds, "k.org_id = ?"),
        Role::Resident => {
            let Some(own) = crate::fhir_api::own_patient(&r, &c).await? else {
                return Ok(axum::Json(Paged { items: vec![], total: 0, limit, offset }));
            };
            arg(own, &mut conds, "k.patient_id = ?");
        }
        _ => {
            return Err(refuse(
                &st,
                &c,
                "health.contract.list",
                None,
                "records_not_for_role",
                "contracts name residents: clinicians and the resident read them (签约记录仅医生和本人可查)",
            )
            .await);
        }
    }
    if let Some(t) = f.team_id {
        arg(t, &mut conds, "k.team_id = ?");
    }
    if let Some(p) = f.patient_id {
        arg(p, &mut conds, "k.patient_id = ?");
    }
    if let Some(d) = f.expiring_within_days {
        if !(0..=365).contains(&d) {
            return Err(ApiError::bad_request("expiring_within_days is 0 to 365"));
        }
        let today = contract::today_date();
        arg(contract::day(today), &mut conds, "k.end_day >= ?");
        arg(contract::day(today + time::Duration::days(d)), &mut conds, "k.end_day <= ?");
        conds.push("k.state = 'signed'".into());
    }
    let wh = conds.join(" AND ");
    let bind = |sql: String| {
        let args = args.clone();
        let st = st.clone();
        async move {
            let sql = st.store.sql(&sql);
            let mut q = sqlx::query(&sql);
            for a in args {
                q = q.bind(a);
            }
            q.fetch_all(st.store.reader()).await.map_err(StoreError::from)
        }
    };
    let rows = bind(format!(
        "SELECT {CONTRACT_COLUMNS} FROM {CONTRACT_FROM} WHERE {wh} ORDER BY k.end_day, k.id LIMIT {limit} OFFSET {offset}"
    ))
    .await?;
    let n = bind(format!("SELECT COUNT(*) AS n FROM health_contracts k WHERE {wh}")).await?;
    let total = n.first().map(|r| col::<i64>(r, "n")).transpose()?.unwrap_or(0);
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(contract_view(&st, &r, row).await?);
    }
    if c.role == Role::Clinician {
        let listed = items.iter().map(|x| x.patient_id.as_str());
        crate::health_api::audit_listed(&st, &c, "health.contract.read", listed, None).await?;
    }
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

// ---------------------------------------------------------------- townships and coverage

#[derive(Debug, Serialize, ToSchema)]
pub struct Township {
    pub name: String,
    /// Resident population (常住人口), as the health commission keeps it; none yet if unset.
    pub population: Option<i64>,
    pub updated: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub population: i64,
}

async fn township_rows(st: &AppState) -> ApiResult<BTreeMap<String, (i64, i64)>> {
    let rows = sqlx::query("SELECT name, population, updated_ms FROM health_townships")
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    rows.iter()
        .map(|r| Ok((col(r, "name")?, (col(r, "population")?, col(r, "updated_ms")?))))
        .collect::<Result<_, StoreError>>()
        .map_err(Into::into)
}

/// Wuqing's towns and sub-districts with their resident population.
#[utoipa::path(get, path = "/api/health/townships", tag = "health",
    responses((status = 200, body = Vec<Township>)), security(("session" = []), ("bearer" = [])))]
async fn townships(AxState(st): AxState<AppState>, Auth(_c): Auth) -> ApiResult<axum::Json<Vec<Township>>> {
    let known = township_rows(&st).await?;
    Ok(axum::Json(
        LOCALITIES
            .iter()
            .map(|n| Township {
                name: n.to_string(),
                population: known.get(*n).map(|x| x.0),
                updated: known.get(*n).map(|x| ms_to_rfc3339(x.1)),
            })
            .collect(),
    ))
}

/// Sets a township's resident population (the health commission's staff).
#[utoipa::path(put, path = "/api/health/townships/{name}", tag = "health", params(("name" = String, Path)),
    request_body = Population,
    responses((status = 200, body = Township), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn set_township(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    Path(name): Path<String>,
    kernel::http::Json(b): kernel::http::Json<Population>,
) -> ApiResult<axum::Json<Township>> {
    Ok(axum::Json(set_population(&st, &c, name, b).await?))
}

/// Sets a township's population as `c` (the service behind `PUT /api/health/townships/{name}`).
pub async fn set_population(st: &AppState, c: &Caller, name: String, b: Population) -> ApiResult<Township> {
    if !is_health_regulator(st, c).await? {
        return Err(refuse(
            st,
            c,
            "health.township.update",
            Some(&name),
            "not_health_regulator",
            "populations are kept by the health commission (由卫健委维护)",
        )
        .await);
    }
    if !LOCALITIES.contains(&name.as_str()) {
        return Err(ApiError::not_found("township"));
    }
    if !(0..=10_000_000).contains(&b.population) {
        return Err(bad("population", "0 to 10 000 000"));
    }
    let now = now_ms();
    let mut tx = st.store.begin().await?;
    sqlx::query(&st.store.sql(
        "INSERT INTO health_townships (name, population, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET population = excluded.population, updated_ms = excluded.updated_ms",
    ))
    .bind(name.clone())
    .bind(b.population)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let ev = Event::new(Actor::of(c), "health.township.update", "township", Some(&name), Outcome::Success)
        .detail(json!({ "population": b.population }));
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Township { name, population: Some(b.population), updated: Some(ms_to_rfc3339(now)) })
}

/// One township's coverage.
#[derive(Debug, Serialize, ToSchema)]
pub struct Coverage {
    pub township: String,
    pub population: Option<i64>,
    /// Residents with a contract in force on the day.
    pub contracted: i64,
    /// contracted ÷ population.
    pub rate: Option<f64>,
    /// Residents in force by package code (key populations).
    pub by_package: BTreeMap<String, i64>,
    pub teams: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CoverageQuery {
    /// The day (`YYYY-MM-DD`, today by default).
    pub on: Option<String>,
}

/// Contract coverage per township on a day (counts only): for the health commission's staff
/// and the clinicians.
#[utoipa::path(get, path = "/api/health/contracts/coverage", tag = "health", params(CoverageQuery),
    responses((status = 200, body = Vec<Coverage>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn coverage(
    AxState(st): AxState<AppState>,
    Auth(c): Auth,
    Query(q): Query<CoverageQuery>,
) -> ApiResult<axum::Json<Vec<Coverage>>> {
    if !is_health_regulator(&st, &c).await? && c.role != Role::Clinician {
        return Err(refuse(
            &st,
            &c,
            "health.contract.coverage",
            None,
            "not_health_staff",
            "coverage is for the health commission and clinicians (仅卫健人员可查)",
        )
        .await);
    }
    let on = match q.on.as_deref() {
        Some(s) => contract::day(contract::parse_day(s).ok_or_else(|| bad("on", "a date YYYY-MM-DD (日期格式错误)"))?),
        None => contract::today(),
    };
    let rows = sqlx::query(&st.store.sql(
        "SELECT township, patient_id, packages FROM health_contracts \
         WHERE state <> 'terminated' AND start_day <= $1 AND end_day >= $1",
    ))
    .bind(on)
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let teams = sqlx::query("SELECT township, COUNT(*) AS n FROM health_care_teams GROUP BY township")
        .fetch_all(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let teams: BTreeMap<String, i64> =
        teams.iter().map(|r| Ok((col(r, "township")?, col(r, "n")?))).collect::<Result<_, StoreError>>()?;
    let pops = township_rows(&st).await?;
    let mut by: BTreeMap<&str, (std::collections::BTreeSet<String>, BTreeMap<String, i64>)> =
        LOCALITIES.iter().map(|l| (*l, Default::default())).collect();
    for r in &rows {
        let t: String = col(r, "township")?;
        let Some(e) = by.get_mut(t.as_str()) else { continue };
        if e.0.insert(col(r, "patient_id")?) {
            for p in col::<String>(r, "packages")?.split(',').filter(|p| !p.is_empty()) {
                *e.1.entry(p.to_string()).or_default() += 1;
            }
        }
    }
    let out = by
        .into_iter()
        .map(|(t, (patients, by_package))| {
            let population = pops.get(t).map(|p| p.0);
            let contracted = patients.len() as i64;
            Coverage {
                township: t.to_string(),
                population,
                contracted,
                rate: population.filter(|p| *p > 0).map(|p| contracted as f64 / p as f64),
                by_package,
                teams: teams.get(t).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(axum::Json(out))
}
