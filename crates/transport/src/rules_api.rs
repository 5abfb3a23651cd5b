//! `/api/transport/rules`: the transport alarm rules (运输监管报警规则) as a versioned, stored
//! document (`kernel::versioned`, name [`DOCUMENT`]).
//!
//! - Who reads: the regulators and operators of organisations whose domain is `transport`. An
//!   operator sees the enterprise overrides of the organisations in its scope only (its own
//!   enterprise), and the areas that apply to everyone or to it.
//! - Who publishes: a regulator of an organisation whose domain is `transport` (the transport
//!   bureau). The district government's organisation (domain `government`) does not: the rules
//!   are the bureau's to set, and a second publisher would only blur who answers for them.
//! - Versions: the built-in rule set ([`RuleSet::default`]) is version 1 and is never stored;
//!   the first publication is version 2. A publication names the version it was edited from
//!   (`base_version`) and is refused with a 409 when another was published since.
//! - Validation: the document is read with the rule set's own `deny_unknown_fields` types and
//!   checked by [`RuleSet::check`]; enterprise ids must be organisations in the publisher's
//!   scope and class names the registry's classes. Every refusal is a 422 naming the field
//!   (`rules.by_class.taxi.speed_limit_kmh`).
//!
//! The running rules task ([`crate::alerting`]) hears of a publication on the bus
//! (`config.transport.rules`) and loads it with [`stored`].

use crate::alerting::DOMAIN;
use crate::model::VehicleClass;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use kernel::access::{Caller, Role};
use kernel::audit::Actor;
use kernel::error::{ApiError, ApiResult, Code, Problem};
use kernel::http::{AppState, Auth, Json, Paged, Path, Query};
use kernel::store::{Store, StoreError};
use kernel::versioned::{self, Document, Draft, VersionInfo};
use rules::{ConfigError, RuleSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The name of the stored document (its bus subject is `config.transport.rules`).
pub const DOCUMENT: &str = "transport.rules";
/// The version of the built-in rule set, in force while nothing is stored.
pub const BUILTIN_VERSION: i64 = 1;

// ------------------------------------------------------------------ the stored rule set

/// Why a stored rule set is not usable.
#[derive(Debug, thiserror::Error)]
pub enum StoredRulesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored by an older release in a format this one no longer reads, or no longer valid.
    #[error("stored rules version {version} is not usable: {reason}")]
    Unusable { version: i64, reason: String },
}

/// The rule set of a stored document, its `version` the document's, checked.
pub fn rules_of(doc: &Document) -> Result<RuleSet, StoredRulesError> {
    let version = doc.info.version;
    let unusable = |reason: String| StoredRulesError::Unusable { version, reason };
    let mut rules: RuleSet = serde_json::from_value(doc.body.clone()).map_err(|e| unusable(e.to_string()))?;
    rules.version = u32::try_from(version).map_err(|_| unusable("version out of range".into()))?;
    rules.check().map_err(|e| unusable(e.to_string()))?;
    Ok(rules)
}

/// The current stored rule set; `None` while nothing is stored (the built-in set applies).
pub async fn stored(store: &Store) -> Result<Option<RuleSet>, StoredRulesError> {
    match versioned::current(store, DOCUMENT).await? {
        Some(doc) => rules_of(&doc).map(Some),
        None => Ok(None),
    }
}

// ------------------------------------------------------------------ access

async fn in_transport_domain(st: &AppState, c: &Caller) -> ApiResult<bool> {
    Ok(st.orgs.domain_of(&st.store, &c.org_id).await?.as_deref() == Some(DOMAIN))
}

async fn require_reader(st: &AppState, c: &Caller) -> ApiResult<()> {
    if matches!(c.role, Role::Regulator | Role::Operator) && in_transport_domain(st, c).await? {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "the transport rules are for the transport bureau's regulators and the operators it regulates",
    ))
}

async fn require_publisher(st: &AppState, c: &Caller) -> ApiResult<()> {
    if c.role == Role::Regulator && in_transport_domain(st, c).await? {
        return Ok(());
    }
    Err(ApiError::forbidden("the transport rules are published by the transport bureau's regulators"))
}

/// What of a rule set (as JSON) the caller may see: a regulator all of it; anyone else the
/// enterprise overrides of their scope, and the areas for everyone or for their scope (with
/// other enterprises' ids taken out of the areas' lists).
fn visible(c: &Caller, mut rules: Value) -> Value {
    if c.role == Role::Regulator {
        return rules;
    }
    let mine = |e: &Value| e.as_str().is_some_and(|id| c.scope.contains(id));
    if let Some(m) = rules.get_mut("by_enterprise").and_then(Value::as_object_mut) {
        m.retain(|id, _| c.scope.contains(id));
    }
    if let Some(areas) = rules.get_mut("areas").and_then(Value::as_array_mut) {
        areas.retain(|a| match a.get("enterprises").and_then(Value::as_array) {
            Some(list) => list.is_empty() || list.iter().any(mine),
            None => true,
        });
        for a in areas.iter_mut() {
            if let Some(list) = a.get_mut("enterprises").and_then(Value::as_array_mut) {
                list.retain(mine);
            }
        }
    }
    rules
}

// ------------------------------------------------------------------ views and requests

/// A version of the rule set.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesView {
    /// Every alarm carries the version that raised it.
    pub version: i64,
    /// The rule set (crate `rules`' `RuleSet`): `engine`, `defaults`, `by_class`,
    /// `by_enterprise` (keyed by enterprise id), `areas`, `routes`, `sensors`.
    #[schema(value_type = Object)]
    pub rules: Value,
    /// Who published it (`null` for the built-in set).
    pub author: Option<String>,
    pub note: Option<String>,
    /// RFC 3339, UTC (`null` for the built-in set).
    pub created_at: Option<String>,
    /// `false`: nothing is stored and the built-in set applies.
    pub stored: bool,
}

fn builtin_view(c: &Caller) -> ApiResult<RulesView> {
    let rules = serde_json::to_value(RuleSet::default()).map_err(ApiError::internal)?;
    Ok(RulesView {
        version: BUILTIN_VERSION,
        rules: visible(c, rules),
        author: None,
        note: None,
        created_at: None,
        stored: false,
    })
}

fn stored_view(c: &Caller, doc: Document) -> RulesView {
    let mut rules = doc.body;
    if let Some(m) = rules.as_object_mut() {
        m.insert("version".into(), doc.info.version.into());
    }
    RulesView {
        version: doc.info.version,
        rules: visible(c, rules),
        author: Some(doc.info.author),
        note: Some(doc.info.note),
        created_at: Some(doc.info.created_at),
        stored: true,
    }
}

/// A new version of the rule set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRules {
    /// The version the edit started from (`version` of `GET /api/transport/rules`): 409 when
    /// another version has been published since.
    pub base_version: i64,
    /// The whole rule set, as `GET` returns it. Its `version` is ignored: the publication sets it.
    #[schema(value_type = Object)]
    pub rules: RuleSet,
    /// Why (shown in the list of versions), at most 1000 characters.
    #[serde(default)]
    pub note: String,
}

/// Longest id or name echoed in a field path.
const ECHO_CHARS: usize = 80;

fn echo(s: &str) -> String {
    s.chars().take(ECHO_CHARS).collect()
}

fn invalid(field: String, message: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, message)
}

/// A body that does not read as [`PublishRules`]: a 422 naming the field by its path
/// (`rules.by_class.taxi.speed` for an unknown field `speed` there).
fn shape_error(rej: JsonRejection) -> ApiError {
    let text = rej.body_text();
    let detail = text.split_once("target type: ").map_or(text.as_str(), |(_, d)| d);
    // The body was re-serialised: its line and column would point nowhere the client knows.
    let detail = detail.rfind(" at line ").map_or(detail, |i| &detail[..i]);
    let (path, message) = match detail.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(' ') => (Some(p), m),
        _ => (None, detail),
    };
    let named = (message.starts_with("unknown field") || message.starts_with("missing field"))
        .then(|| message.split('`').nth(1))
        .flatten();
    let field = match (path, named) {
        // An unknown field's path already ends with it; a missing one's is its container's.
        (Some(p), Some(n)) if p == n || p.ends_with(&format!(".{n}")) => Some(p.to_string()),
        (Some(p), Some(n)) => Some(format!("{p}.{n}")),
        (Some(p), None) => Some(p.to_string()),
        (None, Some(n)) => Some(n.to_string()),
        (None, None) => None,
    };
    ApiError { field: field.map(|f| echo(&f)), ..ApiError::new(Code::InvalidField, detail) }
}

fn check_error(e: &ConfigError) -> ApiError {
    let field = match e {
        ConfigError::Negative { field }
        | ConfigError::OutOfRange { field, .. }
        | ConfigError::TooFewPoints { field }
        | ConfigError::DuplicateId { field, .. } => field,
    };
    invalid(echo(&format!("rules.{field}")), format!("rules.{e}"))
}

async fn known(st: &AppState, c: &Caller, id: &str) -> ApiResult<bool> {
    Ok(c.scope.contains(id) && st.orgs.exists(&st.store, id).await?)
}

/// Enterprise ids must be organisations in the publisher's scope, class names the registry's.
async fn check_names(st: &AppState, c: &Caller, rules: &RuleSet) -> ApiResult<()> {
    for id in rules.by_enterprise.keys() {
        if !known(st, c, id).await? {
            return Err(invalid(
                format!("rules.by_enterprise.{}", echo(id)),
                "no organisation with this id in your scope",
            ));
        }
    }
    for class in rules.by_class.keys() {
        if VehicleClass::parse(class).is_none() {
            return Err(invalid(format!("rules.by_class.{}", echo(class)), "not a vehicle class"));
        }
    }
    for (i, a) in rules.areas.iter().enumerate() {
        for id in &a.enterprises {
            if !known(st, c, id).await? {
                return Err(invalid(
                    format!("rules.areas[{i}].enterprises"),
                    format!("no organisation with id {} in your scope", echo(id)),
                ));
            }
        }
        for class in &a.classes {
            if VehicleClass::parse(class).is_none() {
                return Err(invalid(
                    format!("rules.areas[{i}].classes"),
                    format!("{} is not a vehicle class", echo(class)),
                ));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ routes

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
}

/// The rule set in force (运输监管报警规则): the newest published version, or the built-in set
/// (`stored: false`) while none is. An operator sees only its own enterprise's overrides and the
/// areas that apply to everyone or to it.
#[utoipa::path(get, path = "/api/transport/rules", tag = "transport",
    responses((status = 200, body = RulesView), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_rules(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<RulesView>> {
    require_reader(&st, &c).await?;
    match versioned::current(&st.store, DOCUMENT).await? {
        Some(doc) => Ok(axum::Json(stored_view(&c, doc))),
        None => builtin_view(&c).map(axum::Json),
    }
}

/// Publishes a new version of the rule set (transport bureau regulators only): checked (unknown
/// fields, ranges, enterprise ids in the caller's scope, class names; 422 naming the field),
/// numbered `base_version + 1`, stored, audited (`config.published`) and taken up by the running
/// rules within moments. A `base_version` that is no longer current is a 409: reload and redo.
#[utoipa::path(put, path = "/api/transport/rules", tag = "transport", request_body = PublishRules,
    responses((status = 200, body = RulesView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_rules(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(mut body): Json<Value>,
) -> ApiResult<axum::Json<RulesView>> {
    require_publisher(&st, &c).await?;
    // The publication numbers the set: whatever `version` the client sent is replaced.
    if let Some(r) = body.get_mut("rules").and_then(Value::as_object_mut) {
        r.insert("version".into(), 0.into());
    }
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let axum::Json(req) = axum::Json::<PublishRules>::from_bytes(&bytes).map_err(shape_error)?;
    let mut rules = req.rules;
    rules.check().map_err(|e| check_error(&e))?;
    check_names(&st, &c, &rules).await?;
    let stale =
        || ApiError::field(Code::Conflict, "base_version", "base_version is not the current version: reload and redo");
    rules.version = req.base_version.checked_add(1).and_then(|v| u32::try_from(v).ok()).ok_or_else(stale)?;
    let body = serde_json::to_value(&rules).map_err(ApiError::internal)?;
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
        .ok_or_else(|| ApiError::internal("a published rules version is missing"))?;
    Ok(axum::Json(stored_view(&c, doc)))
}

/// The published versions of the rule set, newest first, without their bodies (the built-in
/// version 1 is not listed).
#[utoipa::path(get, path = "/api/transport/rules/versions", tag = "transport", params(versioned::VersionsQuery),
    responses((status = 200, body = Paged<VersionInfo>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_versions(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<versioned::VersionsQuery>,
) -> ApiResult<axum::Json<Paged<VersionInfo>>> {
    require_reader(&st, &c).await?;
    Ok(axum::Json(versioned::page(&st.store, DOCUMENT, &q).await?))
}

/// One version of the rule set (the one an alarm's `rule_version` names); version 1 is the
/// built-in set. Filtered for operators as `GET /api/transport/rules` is.
#[utoipa::path(get, path = "/api/transport/rules/versions/{version}", tag = "transport", params(("version" = i64, Path)),
    responses((status = 200, body = RulesView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_version(
    State(st): State<AppState>,
    Auth(c): Auth,
    Path(version): Path<i64>,
) -> ApiResult<axum::Json<RulesView>> {
    require_reader(&st, &c).await?;
    if version == BUILTIN_VERSION {
        return builtin_view(&c).map(axum::Json);
    }
    match versioned::get(&st.store, DOCUMENT, version).await? {
        Some(doc) => Ok(axum::Json(stored_view(&c, doc))),
        None => Err(ApiError::not_found("rules version")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kernel::access::{Classification, Scope, TokenScope};
    use serde_json::json;

    fn caller(role: Role, scope: &[&str]) -> Caller {
        Caller {
            user_id: "u".into(),
            username: "u".into(),
            role,
            org_id: scope.first().copied().unwrap_or("o").into(),
            clearance: Classification::Internal,
            scope: Scope::Orgs(scope.iter().map(|s| s.to_string()).collect()),
            token_scope: TokenScope::ReadWrite,
            credential_id: "c".into(),
            via_token: true,
            source_ip: None,
            restriction: None,
        }
    }

    #[test]
    fn the_builtin_set_is_version_one() {
        assert_eq!(i64::from(RuleSet::default().version), BUILTIN_VERSION);
    }

    #[test]
    fn operators_see_their_own_overrides_and_areas() {
        let rules = json!({
            "version": 3,
            "by_enterprise": {"a": {"speed_limit_kmh": 40.0}, "b": {"speed_limit_kmh": 50.0}},
            "areas": [
                {"id": "all", "enterprises": []},
                {"id": "ab", "enterprises": ["a", "b"]},
                {"id": "b", "enterprises": ["b"]},
                {"id": "none"}
            ]
        });
        let seen = visible(&caller(Role::Operator, &["a"]), rules.clone());
        assert_eq!(seen["by_enterprise"], json!({"a": {"speed_limit_kmh": 40.0}}));
        let ids: Vec<&str> = seen["areas"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["all", "ab", "none"]);
        assert_eq!(seen["areas"][1]["enterprises"], json!(["a"]));
        assert_eq!(visible(&caller(Role::Regulator, &["r"]), rules.clone()), rules);
    }

    #[test]
    fn shape_errors_name_the_field_by_its_path() {
        let parse = |v: Value| {
            axum::Json::<PublishRules>::from_bytes(&serde_json::to_vec(&v).unwrap()).map(|_| ()).map_err(shape_error)
        };
        let e =
            parse(json!({"base_version": 1, "rules": {"version": 0, "by_class": {"taxi": {"speed": 3}}}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules.by_class.taxi.speed"), "{e:?}");
        assert_eq!(e.code, Code::InvalidField);
        assert!(!e.message.contains(" at line "), "{}", e.message);
        let e = parse(json!({"base_version": 1, "rules": {"version": 0}, "extra": 1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("extra"), "{e:?}");
        let e = parse(json!({"base_version": 1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules"), "{e:?}");
        let e = parse(json!({"base_version": 1, "rules": {"version": 0, "defaults": {"speed_limit_kmh": "fast"}}}))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules.defaults.speed_limit_kmh"), "{e:?}");
        let e = parse(json!({"base_version": 1, "rules": {"version": 0, "areas": [{"id": "a"}]}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules.areas[0].shape"), "{e:?}");
        let e = parse(json!([])).unwrap_err();
        assert_eq!(e.field, None, "{e:?}");
    }
}
