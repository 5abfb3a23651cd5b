//! `/api/auth`: login, logout, me, password change, TOTP enrolment.

use super::{AppState, AuthAny, ClientIp, Json, SESSION_COOKIE};
use crate::access::{Classification, Restriction, TokenScope};
use crate::auth;
use crate::error::{ApiError, ApiResult, Code, Problem};
use crate::users::{self, UserView};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(totp_setup))
        .routes(routes!(totp_enable))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit code, for administrators with a second factor.
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for scripts (`Authorization: Bearer …`); the console uses the cookie.
    pub token: String,
    pub expires_at: String,
    pub user: UserView,
    /// What must happen before anything else: `password_change` or `totp_setup`.
    pub next: Option<Restriction>,
}

fn session_cookie(state: &AppState, token: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.config.tls.is_some() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Signs in with username and password (and TOTP for administrators).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 403, body = Problem, description = "account locked")))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let ok = auth::login(
        &state.store,
        &state.cipher,
        &state.auth.get(),
        &req.username,
        &req.password,
        req.totp.as_deref(),
        ip,
    )
    .await?;
    let max_age = ok.expires_ms.saturating_sub(crate::store::now_ms()) / 1000;
    let body = LoginResponse {
        token: ok.token.clone(),
        expires_at: crate::store::ms_to_rfc3339(ok.expires_ms),
        user: ok.user.view(&state.cipher, false),
        next: ok.restriction,
    };
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &ok.token, max_age));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Ends the session or token used for this request.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn logout(State(state): State<AppState>, AuthAny(c): AuthAny) -> ApiResult<Response> {
    auth::revoke(&state.store, &c.credential_id).await?;
    crate::audit::record(
        &state.store,
        crate::audit::Event::new(
            crate::audit::Actor::of(&c),
            "logout",
            "user",
            Some(&c.user_id),
            crate::audit::Outcome::Success,
        ),
    )
    .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    pub role_label: [String; 2],
    pub permissions: Vec<crate::access::Permission>,
    pub restriction: Option<Restriction>,
    pub token_scope: TokenScope,
    pub via_token: bool,
    pub clearance: Classification,
    pub second_factor_required: bool,
    /// The security policy's minimum password length, for the password change form's hint.
    pub password_min_length: usize,
    /// The domain of the caller's organisation (`transport`, `health`, …), which the console's
    /// menu follows; None for the district's own organisation.
    pub domain: Option<String>,
}

/// Who am I: the caller's account, role, permissions and any pending restriction.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn me(State(state): State<AppState>, AuthAny(c): AuthAny) -> ApiResult<axum::Json<Me>> {
    let u = users::by_id(&state.store, &c.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let (zh, en) = c.role.label();
    Ok(axum::Json(Me {
        user: u.view(&state.cipher, false),
        role_label: [zh.into(), en.into()],
        permissions: c.role.permissions().to_vec(),
        restriction: c.restriction,
        token_scope: c.token_scope,
        via_token: c.via_token,
        clearance: c.clearance,
        second_factor_required: auth::needs_second_factor(c.role, &state.auth.get()),
        password_min_length: state.auth.get().password_min_length,
        domain: state.orgs.domain_of(&state.store, &c.org_id).await?.filter(|d| !d.is_empty()),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: String,
    pub new_password: String,
}

/// Changes the caller's own password (required before anything else after an initial or reset
/// password). Other sessions of the user end.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)), security(("session" = []), ("bearer" = [])))]
async fn change_password(
    State(state): State<AppState>,
    AuthAny(c): AuthAny,
    Json(req): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    if c.via_token {
        return Err(ApiError::forbidden("passwords are changed in a signed-in session, not with an API token"));
    }
    let u = users::by_id(&state.store, &c.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let (old, hash) = (req.old_password.clone(), u.password_hash.clone());
    let ok = crate::access::password::verify_async(old, hash).await;
    if !ok {
        crate::audit::record(
            &state.store,
            crate::audit::Event::new(
                crate::audit::Actor::of(&c),
                "user.password_change",
                "user",
                Some(&c.user_id),
                crate::audit::Outcome::Failure,
            )
            .detail(serde_json::json!({"reason": "wrong old password"})),
        )
        .await?;
        return Err(ApiError::field(
            Code::InvalidCredentials,
            "old_password",
            "the current password is wrong (原密码错误)",
        ));
    }
    users::set_password(
        &state.store,
        crate::audit::Actor::of(&c),
        &u,
        &req.new_password,
        state.auth.get().password_min_length,
        false,
    )
    .await?;
    // Every other session of this user ends; this one goes on.
    let mut tx = state.store.begin().await?;
    sqlx::query(&state.store.sql("UPDATE credentials SET revoked_ms = $1 WHERE user_id = $2 AND id <> $3 AND kind = 'session' AND revoked_ms IS NULL"))
        .bind(crate::store::now_ms())
        .bind(c.user_id.clone())
        .bind(c.credential_id.clone())
        .execute(&mut *tx)
        .await
        .map_err(crate::store::StoreError::from)?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts TOTP enrolment for the caller (administrators must; others may).
#[utoipa::path(post, path = "/api/auth/totp/setup", tag = "auth",
    responses((status = 200, body = auth::TotpSetup), (status = 409, body = Problem)), security(("session" = [])))]
async fn totp_setup(State(state): State<AppState>, AuthAny(c): AuthAny) -> ApiResult<Response> {
    if c.restriction == Some(Restriction::PasswordChange) {
        return Err(ApiError::new(
            Code::PasswordChangeRequired,
            "change your initial password first (请先修改初始密码)",
        ));
    }
    let s = auth::totp_setup(&state.store, &state.cipher, &c).await?;
    let mut resp = axum::Json(s).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// Activates TOTP with a code from the authenticator.
#[utoipa::path(post, path = "/api/auth/totp/enable", tag = "auth", request_body = TotpCode,
    responses((status = 204), (status = 409, body = Problem, description = "no enrolment started"), (status = 422, body = Problem)),
    security(("session" = [])))]
async fn totp_enable(
    State(state): State<AppState>,
    AuthAny(c): AuthAny,
    Json(req): Json<TotpCode>,
) -> ApiResult<StatusCode> {
    auth::totp_enable(&state.store, &state.cipher, &c, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}
