//! `/api/health/…` beside the patient index: the institutions' verifying keys, published (anyone
//! may check a seal), and the break-glass accesses for the security administrator's review.

use crate::records;
use axum::extract::State;
use kernel::access::Role;
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Page, Paged, Path, Query};
use kernel::store::{StoreError, col, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(signing: records::Keys) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(keys))
        .routes(routes!(rotate_key))
        .routes(routes!(break_glass_list))
        .routes(routes!(break_glass_review))
        .layer(axum::Extension(signing))
}

/// The records of the state's store, sealed with the module's signing keys.
pub(crate) fn records(st: &AppState, keys: &records::Keys) -> records::Records {
    records::Records { store: st.store.clone(), cipher: st.cipher.clone(), keys: keys.clone() }
}

/// A refusal recorded in the audit log (action, the kind and id of what was asked for, why),
/// answered as a 403 with `msg`.
pub(crate) async fn refuse(
    st: &AppState,
    c: &kernel::access::Caller,
    action: &str,
    kind: &str,
    target: Option<&str>,
    why: &str,
    msg: &str,
) -> kernel::error::ApiError {
    let ev =
        kernel::audit::Event::new(kernel::audit::Actor::of(c), action, kind, target, kernel::audit::Outcome::Denied)
            .detail(serde_json::json!({ "refusal": why }));
    match kernel::audit::record(&st.store, ev).await {
        Ok(_) => kernel::error::ApiError { audited: true, ..kernel::error::ApiError::forbidden(msg.to_string()) },
        Err(e) => e.into(),
    }
}

/// Records the reading of each patient a list showed (once each), as `action`.
pub(crate) async fn audit_listed<'a>(
    st: &AppState,
    c: &kernel::access::Caller,
    action: &str,
    patients: impl IntoIterator<Item = &'a str>,
    detail: Option<serde_json::Value>,
) -> ApiResult<()> {
    let patients: std::collections::BTreeSet<&str> = patients.into_iter().collect();
    for p in patients {
        let mut ev = kernel::audit::Event::new(
            kernel::audit::Actor::of(c),
            action,
            "Patient",
            Some(p),
            kernel::audit::Outcome::Success,
        );
        if let Some(d) = &detail {
            ev = ev.detail(d.clone());
        }
        kernel::audit::record(&st.store, ev).await?;
    }
    Ok(())
}

/// The organisation `id` if it is a health institution.
pub(crate) async fn health_institution(st: &AppState, id: &str) -> ApiResult<Option<kernel::orgs::Organisation>> {
    Ok(kernel::orgs::get(&st.store, id)
        .await?
        .filter(|o| o.kind == kernel::orgs::OrgKind::Institution && o.domain == "health"))
}

/// Checks records attached to a request about `patient` (`Type/id`, at most `max`): clinical
/// records of that patient, each once. Answers them as given, or the 422 naming the first bad one.
pub(crate) async fn attachments(
    r: &records::Records,
    patient: &str,
    list: &[String],
    max: usize,
) -> ApiResult<Vec<String>> {
    use kernel::error::{ApiError, Code};
    if list.len() > max {
        return Err(ApiError::field(Code::InvalidField, "attachments", format!("at most {max} records (附件过多)")));
    }
    let mut seen: Vec<String> = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let field = format!("attachments[{i}]");
        let Some((rt, id)) = a.split_once('/').filter(|(rt, _)| records::is_clinical(rt) && *rt != "Patient") else {
            return Err(ApiError::field(Code::InvalidField, field, "a record as Type/id (记录引用格式错误)"));
        };
        let ok = r.current(rt, id).await?.filter(|s| !s.deleted && s.patient_id.as_deref() == Some(patient));
        if ok.is_none() {
            return Err(ApiError::field(Code::InvalidField, field, "no record of this patient (不是该患者的记录)"));
        }
        if seen.contains(a) {
            return Err(ApiError::field(Code::InvalidField, field, "named twice (重复)"));
        }
        seen.push(a.clone());
    }
    Ok(seen)
}

/// Whether the caller is the health commission's staff: a regulator of the health domain.
pub(crate) async fn is_health_regulator(st: &AppState, c: &kernel::access::Caller) -> ApiResult<bool> {
    Ok(c.role == Role::Regulator && st.orgs.domain_of(&st.store, &c.org_id).await?.as_deref() == Some("health"))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthSigningKey)]
pub struct SigningKey {
    pub id: String,
    /// The institution (organisation id) whose seals it verifies.
    pub org_id: String,
    /// SEC1 uncompressed point, hex.
    pub public_key: String,
    pub algorithm: String,
    /// The SM2 distinguishing identifier (GM/T 0009).
    pub user_id: String,
    pub created: String,
    pub retired: Option<String>,
}

impl From<records::PublicKey> for SigningKey {
    fn from(k: records::PublicKey) -> Self {
        SigningKey {
            id: k.id,
            org_id: k.org_id,
            public_key: k.public_key,
            algorithm: k.algorithm.to_string(),
            user_id: k.user_id.to_string(),
            created: k.created,
            retired: k.retired,
        }
    }
}

/// The verifying keys of the institutions' seals (SM2 over SM3, GM/T 0003), published: a
/// Provenance's signature names its key, and anyone may check it.
#[utoipa::path(get, path = "/api/health/keys", tag = "health",
    responses((status = 200, body = Vec<SigningKey>)))]
async fn keys(State(st): State<AppState>) -> ApiResult<axum::Json<Vec<SigningKey>>> {
    let ks = records::public_keys(&st.store).await?;
    Ok(axum::Json(ks.into_iter().map(SigningKey::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The institution (organisation id) whose signing key is replaced.
    pub org_id: String,
}

/// Replaces an institution's signing key with a new one (the security administrator's): the
/// old key is retired, stays published and still verifies the seals it made; new writes are
/// sealed with the new key at once in this process (within a minute on other nodes). To bring
/// a key of one's own, use `wuqing health keys rotate --private-key FILE`.
#[utoipa::path(post, path = "/api/health/keys/rotate", tag = "health", request_body = RotateKey,
    responses((status = 200, body = SigningKey), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn rotate_key(
    State(st): State<AppState>,
    Auth(c): Auth,
    axum::Extension(keys): axum::Extension<records::Keys>,
    kernel::http::Json(body): kernel::http::Json<RotateKey>,
) -> ApiResult<axum::Json<SigningKey>> {
    if c.role != Role::SecurityAdmin {
        let ev = Event::new(Actor::of(&c), "health.key.rotate", "Organization", Some(&body.org_id), Outcome::Denied)
            .detail(json!({ "refusal": "not_security_admin" }));
        audit::record(&st.store, ev).await?;
        return Err(ApiError {
            audited: true,
            ..ApiError::forbidden("signing keys are managed by the security administrator (由安全管理员管理签名密钥)")
        });
    }
    let r = records(&st, &keys);
    let Some((org_id, _)) = r.organisation(&body.org_id).await? else {
        return Err(ApiError::not_found("organisation"));
    };
    let id = keys.rotate(&st.store, &st.cipher, &org_id, None, Actor::of(&c)).await?;
    let k = records::public_keys(&st.store)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| StoreError::Corrupt(format!("signing key {id}")))?;
    Ok(axum::Json(k.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakGlass {
    pub id: String,
    pub at: String,
    /// The clinician (account id) and their institution.
    pub user_id: String,
    pub username: Option<String>,
    pub org_id: String,
    /// The Patient whose record was opened.
    pub patient_id: String,
    /// The reason the clinician gave.
    pub reason: String,
    pub reviewed_by: Option<String>,
    pub reviewed: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakGlassFilter {
    /// Only those not yet reviewed.
    pub pending: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn require_security_admin(st: &AppState, c: &kernel::access::Caller) -> ApiResult<()> {
    if c.role == Role::SecurityAdmin {
        return Ok(());
    }
    let ev = Event::new(Actor::of(c), "health.break_glass.review", "break_glass", None, Outcome::Denied)
        .detail(json!({ "refusal": "not_security_admin" }));
    audit::record(&st.store, ev).await?;
    Err(ApiError {
        audited: true,
        ..ApiError::forbidden("emergency accesses are reviewed by the security administrator (由安全管理员审查)")
    })
}

const COLUMNS: &str =
    "b.id, b.at_ms, b.user_id, u.username, b.org_id, b.patient_id, b.reason_enc, b.reviewed_by, b.reviewed_ms";

fn view(st: &AppState, r: &sqlx::any::AnyRow) -> Result<BreakGlass, StoreError> {
    let enc: Vec<u8> = col(r, "reason_enc")?;
    Ok(BreakGlass {
        id: col(r, "id")?,
        at: ms_to_rfc3339(col(r, "at_ms")?),
        user_id: col(r, "user_id")?,
        username: col(r, "username")?,
        org_id: col(r, "org_id")?,
        patient_id: col(r, "patient_id")?,
        reason: st.cipher.decrypt(&enc).map_err(|_| StoreError::Corrupt("a break-glass reason".into()))?,
        reviewed_by: col(r, "reviewed_by")?,
        reviewed: col::<Option<i64>>(r, "reviewed_ms")?.map(ms_to_rfc3339),
    })
}

/// Every break-glass access to a patient's record, newest first, with the reason given (the
/// security administrator's; the reading is audited).
#[utoipa::path(get, path = "/api/health/break-glass", tag = "health", params(BreakGlassFilter),
    responses((status = 200, body = Paged<BreakGlass>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn break_glass_list(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(f): Query<BreakGlassFilter>,
) -> ApiResult<axum::Json<Paged<BreakGlass>>> {
    require_security_admin(&st, &c).await?;
    let (limit, offset) = Page::resolve(f.limit, f.offset)?;
    let cond = if f.pending.unwrap_or(false) { "b.reviewed_ms IS NULL" } else { "1 = 1" };
    let rows = sqlx::query(&st.store.sql(&format!(
        "SELECT {COLUMNS} FROM health_break_glass b LEFT JOIN users u ON u.id = b.user_id WHERE {cond} \
         ORDER BY b.at_ms DESC, b.id LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    let total = sqlx::query(&format!("SELECT COUNT(*) AS n FROM health_break_glass b WHERE {cond}"))
        .fetch_one(st.store.reader())
        .await
        .map_err(StoreError::from)?;
    let items = rows.iter().map(|r| view(&st, r)).collect::<Result<Vec<_>, _>>()?;
    let ev = Event::new(Actor::of(&c), "health.break_glass.review", "break_glass", None, Outcome::Success)
        .detail(json!({ "shown": items.len() }));
    audit::record(&st.store, ev).await?;
    Ok(axum::Json(Paged { items, total: col(&total, "n")?, limit, offset }))
}

/// Marks a break-glass access reviewed (once; 409 after).
#[utoipa::path(post, path = "/api/health/break-glass/{id}/review", tag = "health", params(("id" = String, Path)),
    responses((status = 200, body = BreakGlass), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn break_glass_review(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BreakGlass>> {
    require_security_admin(&st, &c).await?;
    let mut tx = st.store.begin().await?;
    let done =
        sqlx::query(&st.store.sql(
            "UPDATE health_break_glass SET reviewed_by = $1, reviewed_ms = $2 WHERE id = $3 AND reviewed_ms IS NULL",
        ))
        .bind(c.username.clone())
        .bind(now_ms())
        .bind(id.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        drop(tx);
        let exists = sqlx::query(&st.store.sql("SELECT 1 AS one FROM health_break_glass WHERE id = $1"))
            .bind(id)
            .fetch_optional(st.store.reader())
            .await
            .map_err(StoreError::from)?;
        return Err(match exists {
            Some(_) => ApiError::new(Code::Conflict, "reviewed already (已审查)"),
            None => ApiError::not_found("break-glass access"),
        });
    }
    let ev = Event::new(Actor::of(&c), "health.break_glass.reviewed", "break_glass", Some(&id), Outcome::Success);
    audit::append(&st.store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let row = sqlx::query(&st.store.sql(&format!(
        "SELECT {COLUMNS} FROM health_break_glass b LEFT JOIN users u ON u.id = b.user_id WHERE b.id = $1"
    )))
    .bind(id)
    .fetch_one(st.store.reader())
    .await
    .map_err(StoreError::from)?;
    Ok(axum::Json(view(&st, &row)?))
}
