//! `/api/security/policy`: the security policy (安全策略) that the security administrator
//! publishes and the system administrator may read. See `crate::policy`.

use super::admin_api::require;
use super::{AppState, Auth, Json, Paged, Query};
use crate::access::Permission;
use crate::audit::Actor;
use crate::auth::AuthSettings;
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::policy::{BUILTIN_VERSION, DOCUMENT};
use crate::versioned::{self, Draft, VersionInfo};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy)).routes(routes!(list_versions))
}

/// The policy in force and where it came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// 1 is the configuration file's (`stored: false`); publications start at 2.
    pub version: i64,
    pub stored: bool,
    /// RFC 3339, for a stored version.
    pub published_at: Option<String>,
    /// The publisher's user name, for a stored version.
    pub published_by: Option<String>,
    pub note: Option<String>,
    pub policy: AuthSettings,
}

/// A new version of the policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPolicy {
    /// The version the edit started from (409 when another was published since).
    pub base_version: i64,
    pub policy: AuthSettings,
    /// Why (kept with the version; up to 1000 characters).
    #[serde(default)]
    pub note: String,
}

async fn view(st: &AppState) -> ApiResult<PolicyView> {
    Ok(match versioned::current(&st.store, DOCUMENT).await? {
        Some(doc) => PolicyView {
            version: doc.info.version,
            stored: true,
            published_at: Some(doc.info.created_at),
            published_by: Some(doc.info.author),
            note: Some(doc.info.note),
            policy: serde_json::from_value(doc.body).map_err(ApiError::internal)?,
        },
        None => PolicyView {
            version: BUILTIN_VERSION,
            stored: false,
            published_at: None,
            published_by: None,
            note: None,
            policy: st.auth.configured().clone(),
        },
    })
}

/// The security policy in force (system and security administrators).
#[utoipa::path(get, path = "/api/security/policy", tag = "security",
    responses((status = 200, body = PolicyView), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_policy(State(st): State<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<PolicyView>> {
    require(&st, &c, Permission::PolicyRead, "security.policy.read", "config", None).await?;
    Ok(axum::Json(view(&st).await?))
}

/// Publishes a new security policy (the security administrator only): checked against the
/// bounds of 等保 2.0 level 3 (422 naming the field), numbered `base_version + 1` (409 when
/// stale), stored with its audit record, and applied by every node within moments. Sessions
/// already open keep running under the new time-outs from their next request.
#[utoipa::path(put, path = "/api/security/policy", tag = "security", request_body = PublishPolicy,
    responses((status = 200, body = PolicyView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn put_policy(
    State(st): State<AppState>,
    Auth(c): Auth,
    Json(req): Json<PublishPolicy>,
) -> ApiResult<axum::Json<PolicyView>> {
    require(&st, &c, Permission::PolicyWrite, "security.policy.publish", "config", None).await?;
    st.auth.check(&req.policy).map_err(|(field, reason)| ApiError::field(Code::InvalidField, field, reason))?;
    let body = serde_json::to_value(&req.policy).map_err(ApiError::internal)?;
    let draft = Draft {
        name: DOCUMENT,
        base_version: Some(req.base_version),
        builtin_version: BUILTIN_VERSION,
        body: &body,
        note: &req.note,
    };
    versioned::publish(&st.store, st.bus.as_ref(), Actor::of(&c), draft).await?;
    // This node applies it now rather than when the bus delivers the announcement, so that the
    // answer and the next request agree.
    st.auth.reload(&st.store).await?;
    Ok(axum::Json(view(&st).await?))
}

/// The published versions, newest first, without their bodies.
#[utoipa::path(get, path = "/api/security/policy/versions", tag = "security", params(versioned::VersionsQuery),
    responses((status = 200, body = Paged<VersionInfo>), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_versions(
    State(st): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<versioned::VersionsQuery>,
) -> ApiResult<axum::Json<Paged<VersionInfo>>> {
    require(&st, &c, Permission::PolicyRead, "security.policy.read", "config", None).await?;
    Ok(axum::Json(versioned::page(&st.store, DOCUMENT, &q).await?))
}
