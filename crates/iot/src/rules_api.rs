//! The sensor rules as a versioned document (`iot.rules`, kernel `versioned`): thresholds per
//! device kind, read by everyone who reads devices, published by regulators. Version 1 is the
//! built-in set ([`crate::alerting::builtin_rules`], never stored); publications start at 2 and
//! the running sensor rules take each one up at once (the bus announces it) or at their next
//! save. Every version is kept, with who published it and why, and audited.
//!
//! The rules are shared by the bureaus whose devices report here (cold chain, health,
//! environment, water); a per-bureau split by device kind is left for when a second bureau
//! edits them.

use crate::alerting::builtin_rules;
use crate::payload::valid_metric;
use crate::registry::require_read;
use axum::extract::State;
use kernel::access::{Caller, Role};
use kernel::audit::Actor;
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Paged, Path, Query};
use kernel::versioned::{self, Document, Draft, VersionInfo};
use rules::{RuleSet, SensorRule};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's name.
pub const DOCUMENT: &str = "iot.rules";
/// The built-in set's version.
pub const BUILTIN_VERSION: i64 = 1;
/// Most rules in one version.
const MAX_RULES: usize = 500;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
}

/// A version of the sensor rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct SensorRulesView {
    pub version: i64,
    /// `false` for the built-in set.
    pub stored: bool,
    /// Each: `id` (the alarm kind), `metric`, `direction` (`above`/`below`), `threshold`,
    /// `hysteresis`, `min_duration_s`, `severity` (`info`…`critical`), `classes` (device kinds).
    #[schema(value_type = Vec<Object>)]
    pub sensors: Vec<SensorRule>,
    pub author: Option<String>,
    pub note: String,
    pub created_at: Option<String>,
}

/// A new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishSensorRules {
    /// The version the edit started from (409 when it is no longer current).
    pub base_version: i64,
    #[schema(value_type = Vec<Object>)]
    pub sensors: Vec<SensorRule>,
    #[serde(default)]
    pub note: String,
}

/// The rule set of a stored version (the built-in set with its sensors replaced).
pub fn rules_of(doc: &Document) -> Result<RuleSet, String> {
    let sensors: Vec<SensorRule> =
        serde_json::from_value(doc.body.get("sensors").cloned().unwrap_or_default()).map_err(|e| e.to_string())?;
    let version = u32::try_from(doc.info.version).map_err(|e| e.to_string())?;
    let rules = RuleSet { version, sensors, ..builtin_rules() };
    rules.check().map_err(|e| e.to_string())?;
    Ok(rules)
}

fn builtin_view() -> SensorRulesView {
    SensorRulesView {
        version: BUILTIN_VERSION,
        stored: false,
        sensors: builtin_rules().sensors,
        author: None,
        note: "built-in".into(),
        created_at: None,
    }
}

fn stored_view(doc: Document) -> ApiResult<SensorRulesView> {
    let rules = rules_of(&doc).map_err(ApiError::internal)?;
    Ok(SensorRulesView {
        version: doc.info.version,
        stored: true,
        sensors: rules.sensors,
        author: Some(doc.info.author),
        note: doc.info.note,
        created_at: Some(doc.info.created_at),
    })
}

fn field(f: String, msg: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, f, msg)
}

/// What the engine's own check does not cover: ids that are alarm kinds, metric and kind names.
fn check(sensors: &[SensorRule]) -> ApiResult<()> {
    if sensors.len() > MAX_RULES {
        return Err(field("sensors".into(), format!("at most {MAX_RULES} rules")));
    }
    for (i, s) in sensors.iter().enumerate() {
        let id_ok = (1..=48).contains(&s.id.len())
            && s.id.as_bytes()[0].is_ascii_lowercase()
            && s.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            return Err(field(format!("sensors[{i}].id"), "1 to 48 of a-z, 0-9, '_', starting with a letter"));
        }
        if !valid_metric(&s.metric) {
            return Err(field(format!("sensors[{i}].metric"), "1 to 64 of a-z, 0-9, '_', '.'"));
        }
        if !s.threshold.is_finite() || !s.hysteresis.is_finite() || s.hysteresis < 0.0 {
            return Err(field(format!("sensors[{i}].threshold"), "finite numbers; hysteresis not negative"));
        }
        if s.min_duration_s < 0 || s.min_duration_s > 7 * 86_400 {
            return Err(field(format!("sensors[{i}].min_duration_s"), "0 to 604800 seconds"));
        }
        if s.classes.is_empty() {
            return Err(field(format!("sensors[{i}].classes"), "name the device kinds the rule applies to"));
        }
        for (j, k) in s.classes.iter().enumerate() {
            let ok = (1..=32).contains(&k.len())
                && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(field(format!("sensors[{i}].classes[{j}]"), "a device kind: 1 to 32 of a-z, 0-9, '_'"));
            }
        }
    }
    let set = RuleSet { sensors: sensors.to_vec(), ..builtin_rules() };
    set.check().map_err(|e| ApiError::new(Code::InvalidField, e.to_string()))
}

/// The sensor rules in force: the newest published version, or the built-in set.
#[utoipa::path(get, path = "/api/iot/rules", tag = "iot",
    responses((status = 200, body = SensorRulesView), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_rules(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<SensorRulesView>> {
    require_read(&c)?;
    match versioned::current(&st.store, DOCUMENT).await? {
        Some(doc) => stored_view(doc).map(axum::Json),
        None => Ok(axum::Json(builtin_view())),
    }
}

fn require_publisher(c: &Caller) -> ApiResult<()> {
    if c.role == Role::Regulator {
        Ok(())
    } else {
        Err(ApiError::forbidden("sensor rules are published by regulators"))
    }
}

/// Publishes a new version of the sensor rules (regulators): checked (422 naming the field),
/// numbered `base_version + 1`, audited, and taken up by the running rules at once.
#[utoipa::path(put, path = "/api/iot/rules", tag = "iot", request_body = PublishSensorRules,
    responses((status = 200, body = SensorRulesView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_rules(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(req): Json<PublishSensorRules>,
) -> ApiResult<axum::Json<SensorRulesView>> {
    require_publisher(&c)?;
    check(&req.sensors)?;
    let body = serde_json::json!({ "sensors": req.sensors });
    let draft = Draft {
        name: DOCUMENT,
        base_version: Some(req.base_version),
        builtin_version: BUILTIN_VERSION,
        body: &body,
        note: &req.note,
    };
    let version = versioned::publish(&st.store, st.bus.as_ref(), Actor::of(&c), draft).await?;
    let doc = versioned::get(&st.store, DOCUMENT, version)
        .await?
        .ok_or_else(|| ApiError::internal("a published sensor rules version is missing"))?;
    stored_view(doc).map(axum::Json)
}

/// The published versions, newest first, without their bodies.
#[utoipa::path(get, path = "/api/iot/rules/versions", tag = "iot", params(versioned::VersionsQuery),
    responses((status = 200, body = Paged<VersionInfo>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_versions(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<versioned::VersionsQuery>,
) -> ApiResult<axum::Json<Paged<VersionInfo>>> {
    require_read(&c)?;
    Ok(axum::Json(versioned::page(&st.store, DOCUMENT, &q).await?))
}

/// One version (the one an alarm's `rule_version` names); version 1 is the built-in set.
#[utoipa::path(get, path = "/api/iot/rules/versions/{version}", tag = "iot", params(("version" = i64, Path)),
    responses((status = 200, body = SensorRulesView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_version(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(version): Path<i64>,
) -> ApiResult<axum::Json<SensorRulesView>> {
    require_read(&c)?;
    if version == BUILTIN_VERSION {
        return Ok(axum::Json(builtin_view()));
    }
    match versioned::get(&st.store, DOCUMENT, version).await? {
        Some(doc) => stored_view(doc).map(axum::Json),
        None => Err(ApiError::not_found("sensor rules version")),
    }
}
