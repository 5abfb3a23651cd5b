//! Authentication: password login with lock-out, TOTP for administrators, console sessions and
//! bearer API tokens (both stored only as hashes, both revocable).

use crate::access::{Caller, Restriction, Role, TokenScope, password, totp};
use crate::audit::{self, Actor, Event, Outcome};
use crate::crypto::FieldCipher;
use crate::error::{ApiError, ApiResult, Code};
use crate::orgs::OrgTree;
use crate::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use crate::users::{self, UserRecord};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The security settings that authentication applies: `[security]` at start, replaced by the
/// security administrator's published policy (`crate::policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub lockout_threshold: u32,
    pub lockout_minutes: u32,
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
    pub admin_totp: bool,
    pub password_min_length: usize,
}

impl From<&crate::config::SecurityConfig> for AuthSettings {
    fn from(s: &crate::config::SecurityConfig) -> Self {
        Self {
            lockout_threshold: s.lockout_threshold,
            lockout_minutes: s.lockout_minutes,
            session_idle_minutes: s.session_idle_minutes,
            session_max_hours: s.session_max_hours,
            admin_totp: s.admin_totp,
            password_min_length: s.password_min_length,
        }
    }
}

fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}{}", data_encoding::BASE64URL_NOPAD.encode(&b))
}

/// Credentials are high-entropy random strings: a plain SHA-256 is the right hash for them.
fn token_hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// A login attempt's username as it may appear in the audit log: bounded and printable.
fn loggable_username(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A successful login.
#[derive(Debug)]
pub struct LoginOk {
    pub token: String,
    pub credential_id: String,
    pub user: UserRecord,
    pub restriction: Option<Restriction>,
    pub expires_ms: i64,
}

fn restriction_of(u: &UserRecord, s: &AuthSettings) -> Option<Restriction> {
    if u.must_change_password {
        Some(Restriction::PasswordChange)
    } else if s.admin_totp && u.role.is_admin() && !u.totp_enabled {
        Some(Restriction::TotpSetup)
    } else {
        None
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::new(Code::InvalidCredentials, "wrong username or password (用户名或密码错误)")
}

fn locked_for(minutes: u32) -> ApiError {
    ApiError::new(
        Code::AccountLocked,
        format!("too many failed logins: this account is locked for {minutes} minutes (登录失败次数过多，账户已锁定)"),
    )
}

fn locked_until(ms: i64) -> ApiError {
    ApiError::new(
        Code::AccountLocked,
        format!(
            "too many failed logins: this account is locked until {} (登录失败次数过多，账户已锁定)",
            ms_to_rfc3339(ms)
        ),
    )
}

/// A login under a name that is no account's, answered as an account's wrong password is:
/// the same work (a password hash verified, a row written with the audit record), the same
/// answers, and the same lock-out after as many failures (table `login_unknown`), so that
/// neither the answers nor the lock-out tell which names are accounts.
async fn unknown_user(store: &Store, s: &AuthSettings, username: &str, pw: &str, ev: Event) -> ApiResult<LoginOk> {
    let now = now_ms();
    let key = token_hash(username);
    let row = sqlx::query(&store.sql("SELECT failures, locked_until_ms FROM login_unknown WHERE name_hash = $1"))
        .bind(key.clone())
        .fetch_optional(store.reader())
        .await
        .map_err(StoreError::from)?;
    let (failures, locked_until_ms): (i64, i64) = match &row {
        Some(r) => (col(r, "failures")?, col(r, "locked_until_ms")?),
        None => (0, 0),
    };
    metrics::counter!("wuqing_logins_total", "outcome" => "failure").increment(1);
    if locked_until_ms > now {
        audit::record(store, ev).await?;
        return Err(locked_until(locked_until_ms));
    }
    password::verify_async(pw.to_string(), password::dummy_hash().to_string()).await;
    let failures = failures + 1;
    let lock = failures >= i64::from(s.lockout_threshold);
    let (failures, until) = if lock { (0, now + i64::from(s.lockout_minutes) * 60_000) } else { (failures, 0) };
    let mut tx = store.begin().await?;
    // Names tried once a day ago and not locked out are forgotten, so that spraying names
    // does not grow the table without end.
    sqlx::query(&store.sql("DELETE FROM login_unknown WHERE updated_ms < $1 AND locked_until_ms < $2"))
        .bind(now - 86_400_000)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query(&store.sql(
        "INSERT INTO login_unknown (name_hash, failures, locked_until_ms, updated_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name_hash) DO UPDATE SET failures = $2, locked_until_ms = $3, updated_ms = $4",
    ))
    .bind(key)
    .bind(failures)
    .bind(until)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    audit::append(store, &mut tx, &ev).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Err(if lock { locked_for(s.lockout_minutes) } else { invalid_credentials() })
}

pub async fn login(
    store: &Store,
    cipher: &FieldCipher,
    s: &AuthSettings,
    username: &str,
    pw: &str,
    totp_code: Option<&str>,
    ip: Option<String>,
) -> ApiResult<LoginOk> {
    let now = now_ms();
    let actor = Actor::anonymous(ip.clone(), &loggable_username(username));
    let deny = |outcome: Outcome, reason: &str, user: Option<&UserRecord>| {
        let mut a = actor.clone();
        if let Some(u) = user {
            a.user_id = Some(u.id.clone());
            a.role = Some(u.role.as_str().into());
            a.org_id = Some(u.org_id.clone());
        }
        Event::new(a, "login", "user", user.map(|u| u.id.as_str()), outcome)
            .detail(serde_json::json!({"reason": reason}))
    };
    let user = if username.len() <= 64 { users::by_username(store, username).await? } else { None };
    let Some(user) = user else {
        return unknown_user(store, s, username, pw, deny(Outcome::Failure, "unknown user", None)).await;
    };
    if user.locked_until_ms > now {
        audit::record(store, deny(Outcome::Denied, "locked out after failed logins", Some(&user))).await?;
        return Err(locked_until(user.locked_until_ms));
    }
    let ok = password::verify_async(pw.to_string(), user.password_hash.clone()).await;
    let needs_totp = s.admin_totp && user.role.is_admin() && user.totp_enabled;
    let totp_ok = if ok && needs_totp {
        match totp_code {
            None => {
                audit::record(store, deny(Outcome::Failure, "second factor missing", Some(&user))).await?;
                return Err(ApiError::field(
                    Code::TotpRequired,
                    "totp",
                    "enter the code from your authenticator (请输入动态口令)",
                ));
            }
            Some(code) => {
                let secret = user.totp_secret_enc.as_ref().and_then(|b| cipher.decrypt(b).ok()).unwrap_or_default();
                totp::verify(&secret, code, (now / 1000) as u64)
            }
        }
    } else {
        true
    };
    if !ok || !totp_ok {
        let failures = user.failed_logins + 1;
        let lock = failures >= i64::from(s.lockout_threshold);
        let mut tx = store.begin().await?;
        if lock {
            sqlx::query(&store.sql("UPDATE users SET failed_logins = 0, locked_until_ms = $1 WHERE id = $2"))
                .bind(now + i64::from(s.lockout_minutes) * 60_000)
                .bind(user.id.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        } else {
            sqlx::query(&store.sql("UPDATE users SET failed_logins = $1 WHERE id = $2"))
                .bind(failures)
                .bind(user.id.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        let reason = if ok { "wrong second factor" } else { "wrong password" };
        let mut ev = deny(Outcome::Failure, reason, Some(&user));
        ev.detail = serde_json::json!({"reason": reason, "failures": failures, "locked": lock});
        audit::append(store, &mut tx, &ev).await?;
        tx.commit().await.map_err(StoreError::from)?;
        metrics::counter!("wuqing_logins_total", "outcome" => "failure").increment(1);
        if lock {
            tracing::warn!(user_id = %user.id, "account locked out after failed logins");
            return Err(locked_for(s.lockout_minutes));
        }
        return Err(invalid_credentials());
    }
    // Only now, with the password right: an administrator's lock refused before the password
    // was checked would tell anyone which names are accounts (issue 8).
    if user.disabled {
        audit::record(store, deny(Outcome::Denied, "account locked by an administrator", Some(&user))).await?;
        return Err(ApiError::new(
            Code::AccountLocked,
            "this account is locked by an administrator (账户已被管理员锁定)",
        ));
    }
    let token = new_secret("wqs_");
    let id = uuid::Uuid::now_v7().to_string();
    let expires = now + i64::from(s.session_max_hours) * 3_600_000;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE users SET failed_logins = 0 WHERE id = $1"))
        .bind(user.id.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query(&store.sql(
        "INSERT INTO credentials (id, token_hash, user_id, kind, name, scope, created_ms, last_seen_ms, expires_ms, source_ip) \
         VALUES ($1, $2, $3, 'session', '', 'read_write', $4, $4, $5, $6)",
    ))
    .bind(id.clone())
    .bind(token_hash(&token))
    .bind(user.id.clone())
    .bind(now)
    .bind(expires)
    .bind(ip.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let restriction = restriction_of(&user, s);
    let mut a = actor;
    a.user_id = Some(user.id.clone());
    a.role = Some(user.role.as_str().into());
    a.org_id = Some(user.org_id.clone());
    audit::append(
        store,
        &mut tx,
        &Event::new(a, "login", "user", Some(&user.id), Outcome::Success)
            .detail(serde_json::json!({"session": id, "second_factor": needs_totp})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    metrics::counter!("wuqing_logins_total", "outcome" => "success").increment(1);
    Ok(LoginOk { token, credential_id: id, user, restriction, expires_ms: expires })
}

/// Resolves a session or token into the caller, enforcing revocation, expiry, idle time-out
/// and account locks.
pub async fn authenticate(
    store: &Store,
    tree: &OrgTree,
    s: &AuthSettings,
    token: &str,
    ip: Option<String>,
) -> ApiResult<Caller> {
    let unauth = |m: &str| ApiError::new(Code::Unauthenticated, m.to_string());
    if token.len() > 200 {
        return Err(unauth("malformed credential"));
    }
    let row = sqlx::query(&store.sql(
        "SELECT id, user_id, kind, scope, last_seen_ms, expires_ms, revoked_ms FROM credentials WHERE token_hash = $1",
    ))
    .bind(token_hash(token))
    .fetch_optional(store.reader())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Err(unauth("not signed in, or the credential is unknown (请先登录)"));
    };
    let now = now_ms();
    let cred_id: String = col(&row, "id")?;
    let kind: String = col(&row, "kind")?;
    let revoked: Option<i64> = col(&row, "revoked_ms")?;
    let last_seen: i64 = col(&row, "last_seen_ms")?;
    let expires: i64 = col(&row, "expires_ms")?;
    if revoked.is_some() {
        return Err(unauth("this session or token was ended (会话已结束)"));
    }
    if expires <= now {
        return Err(unauth("this session or token has expired (会话已过期)"));
    }
    let is_session = kind == "session";
    if is_session && last_seen + i64::from(s.session_idle_minutes) * 60_000 <= now {
        revoke(store, &cred_id).await?;
        return Err(unauth("the session timed out after inactivity (会话超时，请重新登录)"));
    }
    let user_id: String = col(&row, "user_id")?;
    let user = users::by_id(store, &user_id).await?.ok_or_else(|| unauth("the account no longer exists"))?;
    if user.disabled || user.locked_until_ms > now {
        return Err(ApiError::new(Code::AccountLocked, "this account is locked (账户已锁定)"));
    }
    // Refresh the idle clock at most every 30 s: one write per half minute, not per request.
    if now - last_seen > 30_000 {
        let mut tx = store.begin().await?;
        sqlx::query(&store.sql("UPDATE credentials SET last_seen_ms = $1 WHERE id = $2"))
            .bind(now)
            .bind(cred_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    let scope_s: String = col(&row, "scope")?;
    let token_scope = TokenScope::parse(&scope_s).unwrap_or(TokenScope::Read);
    let scope = tree.scope_for(store, user.role, &user.org_id).await?;
    Ok(Caller {
        restriction: restriction_of(&user, s),
        user_id: user.id,
        username: user.username,
        role: user.role,
        org_id: user.org_id,
        clearance: user.clearance,
        scope,
        token_scope,
        credential_id: cred_id,
        via_token: !is_session,
        source_ip: ip,
    })
}

pub async fn revoke(store: &Store, cred_id: &str) -> StoreResult<bool> {
    let mut tx = store.begin().await?;
    let r = sqlx::query(&store.sql("UPDATE credentials SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL"))
        .bind(now_ms())
        .bind(cred_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

pub async fn revoke_all_for_user(store: &Store, user_id: &str) -> StoreResult<()> {
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE credentials SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms IS NULL"))
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// An API token as listed (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub scope: TokenScope,
    /// 1 to 365 days; 90 when omitted.
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    pub info: TokenInfo,
    /// The bearer token, shown this once: `Authorization: Bearer <token>`.
    pub token: String,
}

pub async fn create_token(store: &Store, caller: &Caller, new: NewToken) -> ApiResult<CreatedToken> {
    let name = crate::orgs::check_name("name", &new.name, 64)?;
    let days = new.expires_in_days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::field(Code::InvalidField, "expires_in_days", "must be between 1 and 365"));
    }
    let token = new_secret("wqt_");
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let expires = now + i64::from(days) * 86_400_000;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO credentials (id, token_hash, user_id, kind, name, scope, created_ms, last_seen_ms, expires_ms, source_ip) \
         VALUES ($1, $2, $3, 'token', $4, $5, $6, $6, $7, $8)",
    ))
    .bind(id.clone())
    .bind(token_hash(&token))
    .bind(caller.user_id.clone())
    .bind(name.clone())
    .bind(new.scope.as_str())
    .bind(now)
    .bind(expires)
    .bind(caller.source_ip.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(caller), "token.create", "token", Some(&id), Outcome::Success)
            .detail(serde_json::json!({"name": name, "scope": new.scope.as_str(), "days": days})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(CreatedToken {
        info: TokenInfo {
            id,
            user_id: caller.user_id.clone(),
            name,
            scope: new.scope,
            created_at: ms_to_rfc3339(now),
            last_used_at: ms_to_rfc3339(now),
            expires_at: ms_to_rfc3339(expires),
            revoked_at: None,
        },
        token,
    })
}

pub async fn list_tokens(
    store: &Store,
    user_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<TokenInfo>, i64)> {
    let mut w = Where::new();
    w.and("kind = ?", Arg::S("token".into()));
    if let Some(u) = user_id {
        w.and("user_id = ?", Arg::S(u.to_string()));
    }
    let cols = "id, user_id, name, scope, created_ms, last_seen_ms, expires_ms, revoked_ms";
    let (rows, total) = fetch_page(store, cols, "credentials", &w, "created_ms DESC", limit, offset).await?;
    let mut out = vec![];
    for r in &rows {
        let scope: String = col(r, "scope")?;
        out.push(TokenInfo {
            id: col(r, "id")?,
            user_id: col(r, "user_id")?,
            name: col(r, "name")?,
            scope: TokenScope::parse(&scope).unwrap_or(TokenScope::Read),
            created_at: ms_to_rfc3339(col(r, "created_ms")?),
            last_used_at: ms_to_rfc3339(col(r, "last_seen_ms")?),
            expires_at: ms_to_rfc3339(col(r, "expires_ms")?),
            revoked_at: col::<Option<i64>>(r, "revoked_ms")?.map(ms_to_rfc3339),
        });
    }
    Ok((out, total))
}

/// The owner of a token, when `id` names a token.
pub async fn token_owner(store: &Store, id: &str) -> StoreResult<Option<String>> {
    let r = sqlx::query(&store.sql("SELECT user_id FROM credentials WHERE id = $1 AND kind = 'token'"))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    r.map(|r| col(&r, "user_id")).transpose()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URI for a QR code.
    pub uri: String,
}

/// Starts TOTP enrolment: a new secret, stored encrypted, not yet active.
pub async fn totp_setup(store: &Store, cipher: &FieldCipher, caller: &Caller) -> ApiResult<TotpSetup> {
    let user = users::by_id(store, &caller.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    if user.totp_enabled {
        return Err(ApiError::new(
            Code::Conflict,
            "a second factor is already active; the security administrator can reset it",
        ));
    }
    let secret = totp::new_secret();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE users SET totp_secret_enc = $1, updated_ms = $2 WHERE id = $3"))
        .bind(cipher.encrypt(&secret))
        .bind(now_ms())
        .bind(user.id.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(caller), "totp.setup", "user", Some(&user.id), Outcome::Success),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(TotpSetup { uri: totp::uri(&secret, &user.username), secret })
}

/// Activates TOTP once the user proves they hold the secret.
pub async fn totp_enable(store: &Store, cipher: &FieldCipher, caller: &Caller, code: &str) -> ApiResult<()> {
    let user = users::by_id(store, &caller.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let Some(secret) = user.totp_secret_enc.as_ref().and_then(|b| cipher.decrypt(b).ok()) else {
        return Err(ApiError::new(Code::Conflict, "start with POST /api/auth/totp/setup"));
    };
    let ok = totp::verify(&secret, code, (now_ms() / 1000) as u64);
    let mut tx = store.begin().await?;
    if ok {
        sqlx::query(&store.sql("UPDATE users SET totp_enabled = 1, updated_ms = $1 WHERE id = $2"))
            .bind(now_ms())
            .bind(user.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    }
    let outcome = if ok { Outcome::Success } else { Outcome::Failure };
    audit::append(store, &mut tx, &Event::new(Actor::of(caller), "totp.enable", "user", Some(&user.id), outcome))
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(Code::InvalidField, "code", "the code does not match (动态口令错误)"))
    }
}

/// Whether the role must use a second factor under these settings.
pub fn needs_second_factor(role: Role, s: &AuthSettings) -> bool {
    s.admin_totp && role.is_admin()
}
