//! The kernel's own objects: organisations, users, roles, API tokens, and the audit log.

use super::{AppState, Auth, Json, Page, Paged, Path, Query};
use crate::access::{Permission, Role};
use crate::audit::{self, Actor, Event, Outcome};
use crate::auth::{self, CreatedToken, NewToken, TokenInfo};
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::orgs::{self, NewOrganisation, OrgKind, Organisation, OrganisationPatch};
use crate::users::{self, Created, Grant, NewUser, UserPatch, UserView};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(get_org, update_org))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(grant_user))
        .routes(routes!(lock_user))
        .routes(routes!(unlock_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_roles))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(query_audit))
        .routes(routes!(verify_audit))
}

/// Records a refusal in the audit log and returns the error to answer with.
async fn denied(
    state: &AppState,
    c: &crate::access::Caller,
    action: &str,
    kind: &str,
    id: Option<&str>,
    err: ApiError,
) -> ApiError {
    let ev =
        Event::new(Actor::of(c), action, kind, id, Outcome::Denied).detail(serde_json::json!({"reason": err.message}));
    if let Err(e) = audit::record(&state.store, ev).await {
        return e.into();
    }
    ApiError { audited: true, ..err }
}

pub(crate) async fn require(
    state: &AppState,
    c: &crate::access::Caller,
    p: Permission,
    action: &str,
    kind: &str,
    id: Option<&str>,
) -> ApiResult<()> {
    match c.require(p) {
        Ok(()) => Ok(()),
        Err(e) => Err(denied(state, c, action, kind, id, e).await),
    }
}

// ---------------------------------------------------------------- organisations

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    pub kind: Option<OrgKind>,
    /// Substring of the Chinese or English name.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Organisations the caller may see.
#[utoipa::path(get, path = "/api/orgs", tag = "organisations", params(OrgQuery),
    responses((status = 200, body = Paged<Organisation>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn list_orgs(
    State(state): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<OrgQuery>,
) -> ApiResult<axum::Json<Paged<Organisation>>> {
    require(&state, &c, Permission::OrgRead, "org.list", "organisation", None).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let (items, total) = orgs::list(&state.store, &c.scope, q.kind, q.q.as_deref(), limit, offset).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Creates an organisation (system administrator).
#[utoipa::path(post, path = "/api/orgs", tag = "organisations", request_body = NewOrganisation,
    responses((status = 201, body = Organisation), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_org(
    State(state): State<AppState>,
    Auth(c): Auth,
    Json(new): Json<NewOrganisation>,
) -> ApiResult<(StatusCode, axum::Json<Organisation>)> {
    require(&state, &c, Permission::OrgWrite, "org.create", "organisation", None).await?;
    let o = orgs::create(&state.store, &state.orgs, Actor::of(&c), new).await?;
    Ok((StatusCode::CREATED, axum::Json(o)))
}

/// One organisation, if the caller may see it.
#[utoipa::path(get, path = "/api/orgs/{id}", tag = "organisations", params(("id" = String, Path)),
    responses((status = 200, body = Organisation), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn get_org(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Organisation>> {
    require(&state, &c, Permission::OrgRead, "org.read", "organisation", Some(&id)).await?;
    if !c.scope.contains(&id) {
        return Err(ApiError::not_found("organisation"));
    }
    orgs::get(&state.store, &id).await?.map(axum::Json).ok_or_else(|| ApiError::not_found("organisation"))
}

/// Renames an organisation or changes its domain (system administrator).
#[utoipa::path(patch, path = "/api/orgs/{id}", tag = "organisations", params(("id" = String, Path)), request_body = OrganisationPatch,
    responses((status = 200, body = Organisation), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update_org(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(p): Json<OrganisationPatch>,
) -> ApiResult<axum::Json<Organisation>> {
    require(&state, &c, Permission::OrgWrite, "org.update", "organisation", Some(&id)).await?;
    orgs::update(&state.store, &state.orgs, &c, &id, p).await.map(axum::Json)
}

// ---------------------------------------------------------------- users

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users of this organisation (which must be in the caller's scope).
    pub org_id: Option<String>,
    pub role: Option<Role>,
    /// Substring of username or display name.
    pub q: Option<String>,
    /// Only locked (true: by an administrator or a lock-out still running) or unlocked accounts.
    pub locked: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Users the caller may see; phone and citizen ID masked.
#[utoipa::path(get, path = "/api/users", tag = "users", params(UserQuery),
    responses((status = 200, body = Paged<UserView>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn list_users(
    State(state): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<UserQuery>,
) -> ApiResult<axum::Json<Paged<UserView>>> {
    require(&state, &c, Permission::UserRead, "user.list", "user", None).await?;
    if let Err(e) = c.require_clearance(users::RECORD_CLASS, "the user list") {
        return Err(denied(&state, &c, "user.list", "user", None, e).await);
    }
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    if let Some(o) = &q.org_id {
        if let Err(e) = c.require_org(o) {
            return Err(denied(&state, &c, "user.list", "organisation", Some(o), e).await);
        }
    }
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::field(Code::InvalidQuery, "q", "at most 64 characters"));
    }
    let f =
        users::ListFilter { org_id: q.org_id.clone(), role: q.role, q: q.q.clone(), locked: q.locked, limit, offset };
    let (list, total) = users::list(&state.store, &c.scope, &f).await?;
    let items: Vec<UserView> = list.iter().map(|u| u.view(&state.cipher, false)).collect();
    // Reading personal data (names, masked identifiers) is audited: one record per request.
    audit::record(
        &state.store,
        Event::new(Actor::of(&c), "user.list", "user", None, Outcome::Success)
            .detail(serde_json::json!({"count": items.len(), "org_id": q.org_id, "offset": offset})),
    )
    .await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Creates an account (system administrator). Administrators are created on the server.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = Created), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn create_user(
    State(state): State<AppState>,
    Auth(c): Auth,
    Json(new): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<Created>)> {
    require(&state, &c, Permission::UserWrite, "user.create", "user", None).await?;
    if new.clearance > crate::access::Classification::Internal {
        return Err(ApiError::field(
            Code::Forbidden,
            "clearance",
            "clearance above internal is granted by the security administrator",
        ));
    }
    let created = users::create(
        &state.store,
        &state.cipher,
        state.auth.get().password_min_length,
        Actor::of(&c),
        new,
        Default::default(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// Show phone and citizen ID in full (needs clearance "sensitive"; audited).
    pub reveal: Option<bool>,
}

/// One user, if the caller may see them.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = String, Path), RevealQuery),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn get_user(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Query(rq): Query<RevealQuery>,
) -> ApiResult<axum::Json<UserView>> {
    let u = match users::get_scoped(&state.store, &c, &id).await {
        Ok(u) => u,
        Err(e) => return Err(denied(&state, &c, "user.read", "user", Some(&id), e).await),
    };
    let reveal = rq.reveal.unwrap_or(false);
    if reveal && !users::may_reveal(&c, &u) {
        let e = ApiError::forbidden("revealing identifiers needs clearance \"sensitive\" and an account role");
        return Err(denied(&state, &c, "user.reveal", "user", Some(&id), e).await);
    }
    let action = if reveal { "user.reveal" } else { "user.read" };
    audit::record(&state.store, Event::new(Actor::of(&c), action, "user", Some(&id), Outcome::Success)).await?;
    Ok(axum::Json(u.view(&state.cipher, reveal)))
}

/// Edits an account's profile (system administrator).
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn update_user(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(p): Json<UserPatch>,
) -> ApiResult<axum::Json<UserView>> {
    require(&state, &c, Permission::UserWrite, "user.update", "user", Some(&id)).await?;
    let u = users::update_profile(&state.store, &state.cipher, &c, &id, p).await?;
    Ok(axum::Json(u.view(&state.cipher, false)))
}

/// Changes a user's role or clearance (security administrator).
#[utoipa::path(post, path = "/api/users/{id}/grant", tag = "users", params(("id" = String, Path)), request_body = Grant,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn grant_user(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(g): Json<Grant>,
) -> ApiResult<axum::Json<UserView>> {
    require(&state, &c, Permission::UserGrant, "user.grant", "user", Some(&id)).await?;
    let u = users::grant(&state.store, &c, &id, g).await?;
    Ok(axum::Json(u.view(&state.cipher, false)))
}

/// Locks an account and ends its sessions (security administrator).
#[utoipa::path(post, path = "/api/users/{id}/lock", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn lock_user(State(state): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    require(&state, &c, Permission::UserLock, "user.lock", "user", Some(&id)).await?;
    users::get_scoped(&state.store, &c, &id).await?;
    if id == c.user_id {
        return Err(ApiError::forbidden("you cannot lock yourself out"));
    }
    users::set_locked(&state.store, Actor::of(&c), &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unlocks an account, also after a failed-login lock-out (security administrator).
#[utoipa::path(post, path = "/api/users/{id}/unlock", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn unlock_user(State(state): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    require(&state, &c, Permission::UserLock, "user.unlock", "user", Some(&id)).await?;
    users::get_scoped(&state.store, &c, &id).await?;
    users::set_locked(&state.store, Actor::of(&c), &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// The new initial password, shown once; the user must change it at next login.
    pub initial_password: String,
}

/// Resets a user's password to a generated one (system administrator).
#[utoipa::path(post, path = "/api/users/{id}/reset-password", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = PasswordReset), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn reset_password(
    State(state): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PasswordReset>> {
    require(&state, &c, Permission::UserWrite, "user.password_reset", "user", Some(&id)).await?;
    let u = users::get_scoped(&state.store, &c, &id).await?;
    if u.role.is_admin() {
        return Err(ApiError::forbidden("administrator passwords are reset on the server with `wuqing user passwd`"));
    }
    let pw = crate::access::password::generate();
    users::set_password(&state.store, Actor::of(&c), &u, &pw, state.auth.get().password_min_length, true).await?;
    auth::revoke_all_for_user(&state.store, &id).await?;
    Ok(axum::Json(PasswordReset { initial_password: pw }))
}

// ---------------------------------------------------------------- roles

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleInfo {
    pub role: Role,
    pub name_zh: String,
    pub name_en: String,
    pub permissions: Vec<Permission>,
}

/// The roles and what each may do.
#[utoipa::path(get, path = "/api/roles", tag = "users",
    responses((status = 200, body = Vec<RoleInfo>)), security(("session" = []), ("bearer" = [])))]
async fn list_roles(Auth(_c): Auth) -> axum::Json<Vec<RoleInfo>> {
    axum::Json(
        Role::ALL
            .iter()
            .map(|r| RoleInfo {
                role: *r,
                name_zh: r.label().0.into(),
                name_en: r.label().1.into(),
                permissions: r.permissions().to_vec(),
            })
            .collect(),
    )
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Someone else's tokens (system administrator only).
    pub user_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// API tokens: the caller's own, or a user's for the system administrator.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", params(TokenQuery),
    responses((status = 200, body = Paged<TokenInfo>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn list_tokens(
    State(state): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<TokenQuery>,
) -> ApiResult<axum::Json<Paged<TokenInfo>>> {
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let user = match &q.user_id {
        Some(u) if *u != c.user_id => {
            require(&state, &c, Permission::TokenAdmin, "token.list", "user", Some(u)).await?;
            Some(u.clone())
        }
        _ => Some(c.user_id.clone()),
    };
    let (items, total) = auth::list_tokens(&state.store, user.as_deref(), limit, offset).await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Creates an API token for the caller; the secret is shown once. Only from a signed-in session.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem), (status = 422, body = Problem)), security(("session" = [])))]
async fn create_token(
    State(state): State<AppState>,
    Auth(c): Auth,
    Json(new): Json<NewToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    if c.via_token {
        return Err(ApiError::forbidden("a token cannot create tokens; sign in"));
    }
    let t = auth::create_token(&state.store, &c, new).await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// Revokes a token: the caller's own, or any for the system administrator.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn revoke_token(State(state): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let owner = auth::token_owner(&state.store, &id).await?;
    match owner {
        Some(o) if o == c.user_id || c.can(Permission::TokenAdmin) => {}
        _ => return Err(ApiError::not_found("token")),
    }
    auth::revoke(&state.store, &id).await?;
    audit::record(&state.store, Event::new(Actor::of(&c), "token.revoke", "token", Some(&id), Outcome::Success))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- audit

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The audit log, newest first (audit administrator only). Reading it is itself audited.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Paged<audit::Record>), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn query_audit(
    State(state): State<AppState>,
    Auth(c): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Paged<audit::Record>>> {
    require(&state, &c, Permission::AuditRead, "audit.read", "audit", None).await?;
    let (limit, offset) = Page::resolve(q.limit, q.offset)?;
    let time = |name: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        v.as_ref()
            .map(|s| {
                crate::store::rfc3339_to_ms(s).ok_or_else(|| {
                    ApiError::field(Code::InvalidQuery, name, "an RFC 3339 time, e.g. 2026-01-01T00:00:00Z")
                })
            })
            .transpose()
    };
    if let Some(o) = &q.outcome {
        if !matches!(o.as_str(), "success" | "denied" | "failure") {
            return Err(ApiError::field(Code::InvalidQuery, "outcome", "success, denied or failure"));
        }
    }
    let f = audit::Filter {
        actor: q.actor.clone(),
        action: q.action.clone(),
        target_kind: q.target_kind.clone(),
        target_id: q.target_id.clone(),
        outcome: q.outcome.clone(),
        from_ms: time("from", &q.from)?,
        to_ms: time("to", &q.to)?,
        limit,
        offset,
    };
    let (items, total) = audit::query(&state.store, &f).await?;
    audit::record(
        &state.store,
        Event::new(Actor::of(&c), "audit.read", "audit", None, Outcome::Success)
            .detail(serde_json::json!({"count": items.len()})),
    )
    .await?;
    Ok(axum::Json(Paged { items, total, limit, offset }))
}

/// Verifies the hash chain of the audit log (audit administrator only).
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit",
    responses((status = 200, body = audit::Verification), (status = 403, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn verify_audit(State(state): State<AppState>, Auth(c): Auth) -> ApiResult<axum::Json<audit::Verification>> {
    require(&state, &c, Permission::AuditRead, "audit.verify", "audit", None).await?;
    let v = audit::verify(&state.store).await?;
    audit::record(
        &state.store,
        Event::new(Actor::of(&c), "audit.verify", "audit", None, Outcome::Success)
            .detail(serde_json::json!({"checked": v.checked, "ok": v.ok()})),
    )
    .await?;
    Ok(axum::Json(v))
}
