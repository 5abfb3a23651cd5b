//! User accounts: identity, organisation, role, clearance, password state, lock-out and the
//! personal identifiers (phone, citizen ID), which are stored encrypted and shown masked.

use crate::access::{Caller, Classification, Permission, Role, Scope, password};
use crate::audit::{self, Actor, Event, Outcome};
use crate::crypto::{CitizenId, FieldCipher, mask_citizen_id, mask_phone, parse_phone};
use crate::error::{ApiError, ApiResult, Code};
use crate::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub org_id: String,
    pub role: Role,
    pub clearance: Classification,
    /// Locked by an administrator or by too many failed logins.
    pub locked: bool,
    /// RFC 3339 end of a lock-out after failed logins, when one is in force.
    pub locked_until: Option<String>,
    pub must_change_password: bool,
    pub totp_enabled: bool,
    /// Masked (`139****5678`) unless revealed.
    pub phone: Option<String>,
    /// Masked (`120114********123X`) unless revealed.
    pub citizen_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A user row with what the kernel needs internally.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub org_id: String,
    pub role: Role,
    pub clearance: Classification,
    pub password_hash: String,
    pub must_change_password: bool,
    pub failed_logins: i64,
    pub locked_until_ms: i64,
    pub disabled: bool,
    pub totp_secret_enc: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub phone_enc: Option<Vec<u8>>,
    pub citizen_id_enc: Option<Vec<u8>>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const COLS: &str = "id, username, display_name, org_id, role, clearance, password_hash, must_change_password, failed_logins, \
                    locked_until_ms, disabled, totp_secret_enc, totp_enabled, phone_enc, citizen_id_enc, created_ms, updated_ms";

fn row_to_user(r: &AnyRow) -> StoreResult<UserRecord> {
    let role: String = col(r, "role")?;
    let clearance: String = col(r, "clearance")?;
    Ok(UserRecord {
        id: col(r, "id")?,
        username: col(r, "username")?,
        display_name: col(r, "display_name")?,
        org_id: col(r, "org_id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        clearance: Classification::parse(&clearance)
            .ok_or_else(|| StoreError::Corrupt(format!("clearance {clearance}")))?,
        password_hash: col(r, "password_hash")?,
        must_change_password: col::<i64>(r, "must_change_password")? != 0,
        failed_logins: col(r, "failed_logins")?,
        locked_until_ms: col(r, "locked_until_ms")?,
        disabled: col::<i64>(r, "disabled")? != 0,
        totp_secret_enc: col(r, "totp_secret_enc")?,
        totp_enabled: col::<i64>(r, "totp_enabled")? != 0,
        phone_enc: col(r, "phone_enc")?,
        citizen_id_enc: col(r, "citizen_id_enc")?,
        created_ms: col(r, "created_ms")?,
        updated_ms: col(r, "updated_ms")?,
    })
}

impl UserRecord {
    /// The view, identifiers masked unless `reveal`.
    pub fn view(&self, cipher: &FieldCipher, reveal: bool) -> UserView {
        let now = now_ms();
        let dec = |b: &Option<Vec<u8>>| b.as_ref().map(|b| cipher.decrypt(b).unwrap_or_else(|_| "(unreadable)".into()));
        let phone = dec(&self.phone_enc).map(|p| if reveal { p } else { mask_phone(&p) });
        let citizen_id = dec(&self.citizen_id_enc).map(|p| if reveal { p } else { mask_citizen_id(&p) });
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            org_id: self.org_id.clone(),
            role: self.role,
            clearance: self.clearance,
            locked: self.disabled || self.locked_until_ms > now,
            locked_until: (self.locked_until_ms > now).then(|| ms_to_rfc3339(self.locked_until_ms)),
            must_change_password: self.must_change_password,
            totp_enabled: self.totp_enabled,
            phone,
            citizen_id,
            created_at: ms_to_rfc3339(self.created_ms),
            updated_at: ms_to_rfc3339(self.updated_ms),
        }
    }
}

pub async fn by_id(store: &Store, id: &str) -> StoreResult<Option<UserRecord>> {
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM users WHERE id = $1")))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    r.as_ref().map(row_to_user).transpose()
}

pub async fn by_username(store: &Store, username: &str) -> StoreResult<Option<UserRecord>> {
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM users WHERE username = $1")))
        .bind(username)
        .fetch_optional(store.reader())
        .await?;
    r.as_ref().map(row_to_user).transpose()
}

/// Usernames: 3 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_username(s: &str) -> ApiResult<String> {
    let ok = (3..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(s.to_string())
    } else {
        Err(ApiError::field(
            Code::InvalidField,
            "username",
            "a username has 3 to 32 characters of a-z, 0-9, '.', '_', '-' and starts with a letter or digit",
        ))
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub org_id: String,
    pub role: Role,
    #[serde(default = "default_clearance")]
    pub clearance: Classification,
    /// Initial password; omitted: one is generated and returned once. Either way the user must
    /// change it at first login.
    pub password: Option<String>,
    pub phone: Option<String>,
    pub citizen_id: Option<String>,
}

fn default_clearance() -> Classification {
    Classification::Internal
}

/// The outcome of creating a user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Created {
    pub user: UserView,
    /// The initial password when it was generated; shown this once.
    pub initial_password: Option<String>,
}

/// Options of account creation that only the server itself may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Skip the forced change at first login (demo accounts, the issue says so).
    pub no_forced_change: bool,
    /// Allow creating the three administrators (the CLI and the demo; not the API).
    pub allow_admin_roles: bool,
}

pub async fn create(
    store: &Store,
    cipher: &FieldCipher,
    min_password: usize,
    actor: Actor,
    new: NewUser,
    opts: CreateOptions,
) -> ApiResult<Created> {
    let username = check_username(&new.username)?;
    let display_name = crate::orgs::check_name("display_name", &new.display_name, 64)?;
    if new.role.is_admin() && !opts.allow_admin_roles {
        return Err(ApiError::field(
            Code::InvalidField,
            "role",
            "administrator accounts are created on the server with `wuqing user add`",
        ));
    }
    if crate::orgs::get(store, &new.org_id).await?.is_none() {
        return Err(ApiError::field(Code::InvalidField, "org_id", "no such organisation"));
    }
    let (pw, generated) = match &new.password {
        Some(p) => (p.clone(), false),
        None => (password::generate(), true),
    };
    password::check_policy(&pw, &username, min_password)
        .map_err(|m| ApiError::field(Code::WeakPassword, "password", m))?;
    let phone = match &new.phone {
        Some(p) => Some(parse_phone(p).map_err(|m| ApiError::field(Code::InvalidField, "phone", m))?),
        None => None,
    };
    let cid = match &new.citizen_id {
        Some(c) => Some(CitizenId::parse(c).map_err(|m| ApiError::field(Code::InvalidField, "citizen_id", m))?),
        None => None,
    };
    let initial = generated.then(|| pw.clone());
    let hash = password::hash_async(pw).await;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "INSERT INTO users (id, username, display_name, org_id, role, clearance, password_hash, must_change_password, \
         phone_enc, citizen_id_enc, citizen_id_bidx, created_ms, updated_ms, password_changed_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)",
    ))
    .bind(id.clone())
    .bind(username.clone())
    .bind(display_name)
    .bind(new.org_id.clone())
    .bind(new.role.as_str())
    .bind(new.clearance.as_str())
    .bind(hash)
    .bind(i64::from(!opts.no_forced_change))
    .bind(phone.as_ref().map(|p| cipher.encrypt(p)))
    .bind(cid.as_ref().map(|c| cipher.encrypt(c.as_str())))
    .bind(cid.as_ref().map(|c| cipher.blind_index(c.as_str())))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict(_) => ApiError::field(Code::Conflict, "username", "this username is taken"),
        other => other.into(),
    })?;
    audit::append(
        store,
        &mut tx,
        &Event::new(actor, "user.create", "user", Some(&id), Outcome::Success).detail(serde_json::json!({
            "username": username, "org_id": new.org_id, "role": new.role.as_str(), "clearance": new.clearance.as_str()
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let rec = by_id(store, &id).await?.ok_or_else(|| ApiError::internal("user vanished after insert"))?;
    Ok(Created { user: rec.view(cipher, false), initial_password: initial })
}

/// Filters of the user list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub org_id: Option<String>,
    pub role: Option<Role>,
    /// Substring of username or display name.
    pub q: Option<String>,
    /// Locked (by an administrator, or a lock-out still running) or not.
    pub locked: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list(store: &Store, scope: &Scope, f: &ListFilter) -> StoreResult<(Vec<UserRecord>, i64)> {
    let mut w = Where::new();
    w.scope(scope, "org_id");
    if let Some(o) = &f.org_id {
        w.and("org_id = ?", Arg::S(o.clone()));
    }
    if let Some(r) = f.role {
        w.and("role = ?", Arg::S(r.as_str().into()));
    }
    if let Some(q) = &f.q {
        w.contains(&["username", "display_name"], q);
    }
    if let Some(locked) = f.locked {
        let clause =
            if locked { "(disabled <> 0 OR locked_until_ms > ?)" } else { "(disabled = 0 AND locked_until_ms <= ?)" };
        w.and(clause, Arg::I(now_ms()));
    }
    let (rows, total) = fetch_page(store, COLS, "users", &w, "username", f.limit, f.offset).await?;
    let users = rows.iter().map(row_to_user).collect::<StoreResult<Vec<_>>>()?;
    Ok((users, total))
}

/// A user the caller may see, or not-found (never "forbidden": that would confirm it exists).
pub async fn get_scoped(store: &Store, caller: &Caller, id: &str) -> ApiResult<UserRecord> {
    if caller.user_id != id {
        caller.require_clearance(RECORD_CLASS, "a user record")?;
    }
    let u = by_id(store, id).await?;
    match u {
        Some(u) if u.id == caller.user_id || (caller.can(Permission::UserRead) && caller.scope.contains(&u.org_id)) => {
            Ok(u)
        }
        _ => Err(ApiError::not_found("user")),
    }
}

/// The classification of user records as a whole (数据分级): names and roles are internal.
pub const RECORD_CLASS: Classification = Classification::Internal;
/// The classification of the identifiers (phone, citizen ID): sensitive personal information
/// (个人信息保护法 art. 28), shown in full only to a cleared caller who asks.
pub const IDENTIFIER_CLASS: Classification = Classification::Sensitive;

/// Whether `caller` may see `target`'s identifiers in full: the caller's clearance must reach
/// [`IDENTIFIER_CLASS`] and the caller must be the user or an account administrator.
pub fn may_reveal(caller: &Caller, target: &UserRecord) -> bool {
    caller.clearance >= IDENTIFIER_CLASS
        && (caller.user_id == target.id || matches!(caller.role, Role::SystemAdmin | Role::SecurityAdmin))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    /// Empty string removes it.
    pub phone: Option<String>,
    /// Empty string removes it.
    pub citizen_id: Option<String>,
    pub org_id: Option<String>,
}

pub async fn update_profile(
    store: &Store,
    cipher: &FieldCipher,
    caller: &Caller,
    id: &str,
    p: UserPatch,
) -> ApiResult<UserRecord> {
    let cur = get_scoped(store, caller, id).await?;
    let display_name = match &p.display_name {
        Some(d) => crate::orgs::check_name("display_name", d, 64)?,
        None => cur.display_name.clone(),
    };
    let org_id = match &p.org_id {
        Some(o) => {
            if crate::orgs::get(store, o).await?.is_none() {
                return Err(ApiError::field(Code::InvalidField, "org_id", "no such organisation"));
            }
            o.clone()
        }
        None => cur.org_id.clone(),
    };
    let phone_enc = match p.phone.as_deref() {
        None => cur.phone_enc.clone(),
        Some("") => None,
        Some(ph) => {
            Some(cipher.encrypt(&parse_phone(ph).map_err(|m| ApiError::field(Code::InvalidField, "phone", m))?))
        }
    };
    let (cid_enc, cid_idx) = match p.citizen_id.as_deref() {
        None => (cur.citizen_id_enc.clone(), None::<Option<String>>),
        Some("") => (None, Some(None)),
        Some(c) => {
            let c = CitizenId::parse(c).map_err(|m| ApiError::field(Code::InvalidField, "citizen_id", m))?;
            (Some(cipher.encrypt(c.as_str())), Some(Some(cipher.blind_index(c.as_str()))))
        }
    };
    let mut tx = store.begin().await?;
    let mut q = String::from(
        "UPDATE users SET display_name = $1, org_id = $2, phone_enc = $3, citizen_id_enc = $4, updated_ms = $5",
    );
    if cid_idx.is_some() {
        q.push_str(", citizen_id_bidx = $7");
    }
    q.push_str(" WHERE id = $6");
    let q = store.sql(&q).into_owned();
    let mut query = sqlx::query(&q)
        .bind(display_name)
        .bind(org_id.clone())
        .bind(phone_enc)
        .bind(cid_enc)
        .bind(now_ms())
        .bind(id.to_string());
    if let Some(idx) = cid_idx {
        query = query.bind(idx);
    }
    query.execute(&mut *tx).await.map_err(StoreError::from)?;
    let changed: Vec<&str> = [
        p.display_name.as_ref().map(|_| "display_name"),
        p.phone.as_ref().map(|_| "phone"),
        p.citizen_id.as_ref().map(|_| "citizen_id"),
        p.org_id.as_ref().map(|_| "org_id"),
    ]
    .into_iter()
    .flatten()
    .collect();
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(caller), "user.update", "user", Some(id), Outcome::Success)
            .detail(serde_json::json!({"fields": changed, "org_id": org_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    by_id(store, id).await?.ok_or_else(|| ApiError::not_found("user"))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub role: Option<Role>,
    pub clearance: Option<Classification>,
}

/// Changes role or clearance: the security administrator's job alone.
pub async fn grant(store: &Store, caller: &Caller, id: &str, g: Grant) -> ApiResult<UserRecord> {
    let cur = get_scoped(store, caller, id).await?;
    if cur.id == caller.user_id {
        return Err(ApiError::forbidden("nobody may change their own role or clearance"));
    }
    let role = g.role.unwrap_or(cur.role);
    if role.is_admin() != cur.role.is_admin() || (role.is_admin() && role != cur.role) {
        return Err(ApiError::field(
            Code::InvalidField,
            "role",
            "administrator roles are assigned on the server with `wuqing user add`",
        ));
    }
    let clearance = g.clearance.unwrap_or(cur.clearance);
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE users SET role = $1, clearance = $2, updated_ms = $3 WHERE id = $4"))
        .bind(role.as_str())
        .bind(clearance.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(caller), "user.grant", "user", Some(id), Outcome::Success).detail(serde_json::json!({
            "from": {"role": cur.role.as_str(), "clearance": cur.clearance.as_str()},
            "to": {"role": role.as_str(), "clearance": clearance.as_str()},
        })),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Existing sessions carry the old role: end them.
    crate::auth::revoke_all_for_user(store, id).await?;
    by_id(store, id).await?.ok_or_else(|| ApiError::not_found("user"))
}

/// Locks (disables) or unlocks an account; unlocking also clears a failed-login lock-out.
pub async fn set_locked(store: &Store, actor: Actor, id: &str, locked: bool) -> ApiResult<()> {
    let mut tx = store.begin().await?;
    let q = if locked {
        "UPDATE users SET disabled = 1, updated_ms = $1 WHERE id = $2"
    } else {
        "UPDATE users SET disabled = 0, failed_logins = 0, locked_until_ms = 0, updated_ms = $1 WHERE id = $2"
    };
    let res = sqlx::query(&store.sql(q)).bind(now_ms()).bind(id).execute(&mut *tx).await.map_err(StoreError::from)?;
    if res.rows_affected() == 0 {
        return Err(ApiError::not_found("user"));
    }
    let action = if locked { "user.lock" } else { "user.unlock" };
    audit::append(store, &mut tx, &Event::new(actor, action, "user", Some(id), Outcome::Success)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if locked {
        crate::auth::revoke_all_for_user(store, id).await?;
    }
    Ok(())
}

/// Sets a password. `forced_change`: the user must change it at next login (an administrator's
/// reset); false when the user chose it themselves.
pub async fn set_password(
    store: &Store,
    actor: Actor,
    user: &UserRecord,
    new_password: &str,
    min_len: usize,
    forced_change: bool,
) -> ApiResult<()> {
    password::check_policy(new_password, &user.username, min_len)
        .map_err(|m| ApiError::field(Code::WeakPassword, "new_password", m))?;
    let pw = new_password.to_string();
    let old = user.password_hash.clone();
    if password::verify_async(pw.clone(), old).await {
        return Err(ApiError::field(
            Code::WeakPassword,
            "new_password",
            "the new password must differ from the old one",
        ));
    }
    let hash = password::hash_async(pw).await;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(
        "UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, password_changed_ms = $3, updated_ms = $3 WHERE id = $4",
    ))
    .bind(hash)
    .bind(i64::from(forced_change))
    .bind(now_ms())
    .bind(user.id.clone())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let action = if forced_change { "user.password_reset" } else { "user.password_change" };
    audit::append(store, &mut tx, &Event::new(actor, action, "user", Some(&user.id), Outcome::Success)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
