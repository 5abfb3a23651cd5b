//! Webhook subscriptions: an organisation's URLs that receive its alarm changes, each with a
//! filter and a signing secret. No HTTP here (see `sinks::api`).
//!
//! Who: the operators of an enterprise manage their organisation's webhooks (its own alarms);
//! the regulators of a bureau manage their bureau's (every alarm their scope covers). Reads are
//! scoped like the alarm list: a webhook outside the caller's scope does not exist for it (404);
//! one in scope but of another organisation (an enterprise's, seen by its regulator) is read,
//! not managed (403).

use super::Sinks;
use super::delivery;
use crate::model::Severity;
use crate::service::require_manage;
use kernel::access::{Caller, Role};
use kernel::audit::{self, Actor, Event, Outcome};
use kernel::error::{ApiError, ApiResult, Code};
use kernel::http::AppState;
use kernel::store::{Arg, Store, StoreError, StoreResult, Where, col, fetch_page, ms_to_rfc3339, now_ms};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

/// The longest URL accepted, in bytes.
pub const MAX_URL: usize = 2048;
/// Webhooks one organisation may have.
pub const MAX_PER_ORG: i64 = 20;
/// Entries of a domains or kinds filter.
pub const MAX_FILTER_ENTRIES: usize = 32;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// A webhook as the API shows it (never with its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub org_id: String,
    pub description: String,
    pub url: String,
    /// The least severity delivered.
    pub min_severity: Severity,
    /// Only alarms of these domains (`transport`, …); empty: every domain.
    pub domains: Vec<String>,
    /// Only alarms of these kinds (`overspeed`, …); empty: every kind.
    pub kinds: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A webhook with its signing secret: the one time the secret is shown (at creation and at
/// rotation). Keep it: it cannot be read again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookSecret {
    pub webhook: Webhook,
    /// `whsec_` and 64 hex digits (256 bits); the HMAC-SHA256 key is this whole string.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http://` or `https://`, without user or password, at most 2048 bytes.
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Default `notice` (every alarm).
    pub min_severity: Option<Severity>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// What an update changes; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub min_severity: Option<Severity>,
    pub domains: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed (or the webhook was disabled meanwhile).
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One delivery of one event to one webhook, with its attempts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct Delivery {
    /// Also sent as `X-Wuqing-Delivery`.
    pub id: String,
    pub webhook_id: String,
    /// None for a test event.
    pub alarm_id: Option<String>,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When a pending delivery is next tried.
    pub next_attempt_at: Option<String>,
    /// The HTTP status of the last answer, if one came.
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// A webhook row with what the sinks need internally.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub id: String,
    pub org_id: String,
    /// Whose scope the webhook receives: `operator` (its organisation's subtree) or `regulator`
    /// (the bureau's subtree and domain), the role of the organisation's staff who created it.
    pub scope_role: Role,
    pub description: String,
    pub url: String,
    pub secret_enc: Vec<u8>,
    pub min_severity: Severity,
    pub domains: Vec<String>,
    pub kinds: Vec<String>,
    pub enabled: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

pub(crate) const COLS: &str = "id, org_id, scope_role, description, url, secret_enc, min_severity, domains, kinds, enabled, created_ms, updated_ms";

pub(crate) fn row_to_record(r: &AnyRow) -> StoreResult<Record> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("webhook {what} {v:?}"));
    let role: String = col(r, "scope_role")?;
    let sev: i64 = col(r, "min_severity")?;
    let list = |name: &str| -> StoreResult<Vec<String>> {
        let s: String = col(r, name)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("webhook {name}: {e}")))
    };
    Ok(Record {
        id: col(r, "id")?,
        org_id: col(r, "org_id")?,
        scope_role: Role::parse(&role).ok_or_else(|| corrupt("scope_role", &role))?,
        description: col(r, "description")?,
        url: col(r, "url")?,
        secret_enc: col(r, "secret_enc")?,
        min_severity: Severity::from_level(sev).ok_or_else(|| corrupt("min_severity", &sev.to_string()))?,
        domains: list("domains")?,
        kinds: list("kinds")?,
        enabled: col::<i64>(r, "enabled")? != 0,
        created_ms: col(r, "created_ms")?,
        updated_ms: col(r, "updated_ms")?,
    })
}

impl Record {
    pub fn view(&self) -> Webhook {
        Webhook {
            id: self.id.clone(),
            org_id: self.org_id.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            min_severity: self.min_severity,
            domains: self.domains.clone(),
            kinds: self.kinds.clone(),
            enabled: self.enabled,
            created_at: ms_to_rfc3339(self.created_ms),
            updated_at: ms_to_rfc3339(self.updated_ms),
        }
    }

    /// Whether the filter lets an alarm of this domain, kind and severity through.
    pub fn wants(&self, domain: &str, kind: &str, severity: Severity) -> bool {
        severity >= self.min_severity
            && (self.domains.is_empty() || self.domains.iter().any(|d| d == domain))
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
    }

    /// What the audit log says of the target: scheme, host, port and path, never the query
    /// (which may carry a receiver's token).
    fn audit_target(&self) -> String {
        audit_target(&self.url)
    }

    fn audit_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "org_id": self.org_id, "target": self.audit_target(), "min_severity": self.min_severity,
            "domains": self.domains, "kinds": self.kinds, "enabled": self.enabled,
        })
    }
}

fn audit_target(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let s = format!("{}{}", u.origin().ascii_serialization(), u.path());
            s.chars().take(200).collect()
        }
        Err(_) => String::new(),
    }
}

/// Checks a webhook URL: http or https with a host, no user or password, no fragment, no
/// whitespace or control characters, at most [`MAX_URL`] bytes. Refusals are 400s on `url`.
pub fn parse_url(s: &str) -> ApiResult<String> {
    let bad = |m: &str| ApiError::field(Code::BadRequest, "url", m);
    let s = s.trim();
    if s.is_empty() {
        return Err(bad("a webhook needs a URL"));
    }
    if s.len() > MAX_URL {
        return Err(bad(&format!("a URL has at most {MAX_URL} bytes")));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("a URL may not hold spaces or control characters"));
    }
    let u = reqwest::Url::parse(s).map_err(|_| bad("not a valid URL"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("a webhook URL is http:// or https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("a webhook URL names a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("a webhook URL may not carry a user or password: the signature authenticates"));
    }
    if u.fragment().is_some() {
        return Err(bad("a webhook URL has no fragment"));
    }
    if u.as_str().len() > MAX_URL {
        return Err(bad(&format!("a URL has at most {MAX_URL} bytes")));
    }
    Ok(u.to_string())
}

fn check_description(s: &str) -> ApiResult<String> {
    let t = s.trim();
    if t.chars().count() > MAX_DESCRIPTION || t.chars().any(char::is_control) {
        return Err(ApiError::field(
            Code::InvalidField,
            "description",
            format!("a description has at most {MAX_DESCRIPTION} characters and no control characters"),
        ));
    }
    Ok(t.to_string())
}

fn check_domains(v: &[String]) -> ApiResult<Vec<String>> {
    let mut out = check_tokens("domains", v)?;
    if let Some(d) = out.iter().find(|d| !kernel::orgs::DOMAINS.iter().any(|(k, _)| k == d)) {
        return Err(ApiError::field(Code::InvalidField, "domains", format!("unknown domain {d:?}")));
    }
    out.sort();
    Ok(out)
}

fn check_kinds(v: &[String]) -> ApiResult<Vec<String>> {
    let mut out = check_tokens("kinds", v)?;
    out.sort();
    Ok(out)
}

/// Domain and kind names: 1 to 64 of `a-z 0-9 _ -`, at most [`MAX_FILTER_ENTRIES`], no repeats.
fn check_tokens(field: &str, v: &[String]) -> ApiResult<Vec<String>> {
    if v.len() > MAX_FILTER_ENTRIES {
        return Err(ApiError::field(Code::InvalidField, field, format!("at most {MAX_FILTER_ENTRIES} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for t in v {
        let ok = !t.is_empty()
            && t.len() <= 64
            && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(ApiError::field(Code::InvalidField, field, "names of 1 to 64 of a-z, 0-9, _ and -"));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// 256 random bits, as the receiver will hold them.
fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("whsec_{}", data_encoding::HEXLOWER.encode(&b))
}

fn list_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

pub(crate) async fn record_by_id(store: &Store, id: &str) -> StoreResult<Option<Record>> {
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM alarm_webhooks WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(store.reader())
        .await?;
    r.as_ref().map(row_to_record).transpose()
}

/// Every enabled webhook, for the delivery intake.
pub(crate) async fn enabled(store: &Store) -> StoreResult<Vec<Record>> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM alarm_webhooks WHERE enabled = 1 ORDER BY created_ms, id"))
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(row_to_record).collect()
}

/// A webhook the caller may see, or not-found.
async fn visible(store: &Store, c: &Caller, id: &str) -> ApiResult<Record> {
    require_manage(c)?;
    match record_by_id(store, id).await? {
        Some(w) if c.scope.contains(&w.org_id) => Ok(w),
        _ => Err(ApiError::not_found("webhook")),
    }
}

/// A webhook the caller may manage: seen, and its own organisation's.
async fn managed(store: &Store, c: &Caller, id: &str) -> ApiResult<Record> {
    let w = visible(store, c, id).await?;
    if w.org_id != c.org_id {
        return Err(ApiError::forbidden("webhooks are managed by their own organisation"));
    }
    Ok(w)
}

/// Webhooks in the caller's scope (optionally one organisation's), oldest first.
pub async fn list(
    store: &Store,
    c: &Caller,
    org_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<Webhook>, i64)> {
    require_manage(c)?;
    let mut w = Where::new();
    w.scope(&c.scope, "org_id");
    if let Some(o) = org_id {
        c.require_org(o)?;
        w.and("org_id = ?", Arg::S(o.to_string()));
    }
    let (rows, total) = fetch_page(store, COLS, "alarm_webhooks", &w, "created_ms, id", limit, offset).await?;
    let items = rows.iter().map(|r| row_to_record(r).map(|w| w.view())).collect::<StoreResult<_>>()?;
    Ok((items, total))
}

pub async fn get(store: &Store, c: &Caller, id: &str) -> ApiResult<Webhook> {
    Ok(visible(store, c, id).await?.view())
}

/// Registers a webhook for the caller's organisation; its secret is returned this once.
pub async fn create(st: &AppState, c: &Caller, new: NewWebhook) -> ApiResult<WebhookSecret> {
    require_manage(c)?;
    let url = parse_url(&new.url)?;
    let description = check_description(&new.description)?;
    let domains = check_domains(&new.domains)?;
    let kinds = check_kinds(&new.kinds)?;
    let min_severity = new.min_severity.unwrap_or(Severity::Notice);
    let enabled = new.enabled.unwrap_or(true);
    let store = &st.store;
    let secret = generate_secret();
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let mut tx = store.begin().await?;
    let n: i64 = col(
        &sqlx::query(&store.sql("SELECT COUNT(*) AS n FROM alarm_webhooks WHERE org_id = $1"))
            .bind(c.org_id.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?,
        "n",
    )?;
    if n >= MAX_PER_ORG {
        return Err(ApiError::new(Code::Conflict, format!("an organisation has at most {MAX_PER_ORG} webhooks")));
    }
    sqlx::query(&store.sql(
        "INSERT INTO alarm_webhooks (id, org_id, scope_role, description, url, secret_enc, min_severity, domains, kinds, \
         enabled, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    ))
    .bind(id.clone())
    .bind(c.org_id.clone())
    .bind(c.role.as_str())
    .bind(description.clone())
    .bind(url.clone())
    .bind(st.cipher.encrypt(&secret))
    .bind(min_severity.level())
    .bind(list_json(&domains))
    .bind(list_json(&kinds))
    .bind(i64::from(enabled))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let rec = Record {
        id: id.clone(),
        org_id: c.org_id.clone(),
        scope_role: c.role,
        description,
        url,
        secret_enc: vec![],
        min_severity,
        domains,
        kinds,
        enabled,
        created_ms: now,
        updated_ms: now,
    };
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "alarm.webhook.create", "alarm_webhook", Some(&id), Outcome::Success)
            .detail(rec.audit_detail()),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(WebhookSecret { webhook: rec.view(), secret })
}

/// Changes a webhook's URL, description, filter or enabled flag.
pub async fn update(st: &AppState, c: &Caller, id: &str, p: WebhookPatch) -> ApiResult<Webhook> {
    let cur = managed(&st.store, c, id).await?;
    let mut next = cur.clone();
    let mut changed: Vec<&str> = vec![];
    if let Some(u) = &p.url {
        next.url = parse_url(u)?;
        changed.push("url");
    }
    if let Some(d) = &p.description {
        next.description = check_description(d)?;
        changed.push("description");
    }
    if let Some(s) = p.min_severity {
        next.min_severity = s;
        changed.push("min_severity");
    }
    if let Some(d) = &p.domains {
        next.domains = check_domains(d)?;
        changed.push("domains");
    }
    if let Some(k) = &p.kinds {
        next.kinds = check_kinds(k)?;
        changed.push("kinds");
    }
    if let Some(e) = p.enabled {
        next.enabled = e;
        changed.push("enabled");
    }
    next.updated_ms = now_ms();
    let store = &st.store;
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE alarm_webhooks SET url = $1, description = $2, min_severity = $3, domains = $4, kinds = $5, \
         enabled = $6, updated_ms = $7 WHERE id = $8",
    ))
    .bind(next.url.clone())
    .bind(next.description.clone())
    .bind(next.min_severity.level())
    .bind(list_json(&next.domains))
    .bind(list_json(&next.kinds))
    .bind(i64::from(next.enabled))
    .bind(next.updated_ms)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("webhook"));
    }
    let mut detail = next.audit_detail();
    detail["fields"] = serde_json::json!(changed);
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "alarm.webhook.update", "alarm_webhook", Some(id), Outcome::Success).detail(detail),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(next.view())
}

/// Deletes a webhook and its deliveries (pending ones are not sent).
pub async fn delete(st: &AppState, c: &Caller, id: &str) -> ApiResult<()> {
    let cur = managed(&st.store, c, id).await?;
    let store = &st.store;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("DELETE FROM alarm_webhook_deliveries WHERE webhook_id = $1"))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let n = sqlx::query(&store.sql("DELETE FROM alarm_webhooks WHERE id = $1"))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("webhook"));
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "alarm.webhook.delete", "alarm_webhook", Some(id), Outcome::Success)
            .detail(cur.audit_detail()),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Replaces a webhook's secret; the new one is returned this once and signs every attempt from
/// now on (pending deliveries included).
pub async fn rotate_secret(st: &AppState, c: &Caller, id: &str) -> ApiResult<WebhookSecret> {
    let mut cur = managed(&st.store, c, id).await?;
    let secret = generate_secret();
    cur.updated_ms = now_ms();
    let store = &st.store;
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql("UPDATE alarm_webhooks SET secret_enc = $1, updated_ms = $2 WHERE id = $3"))
        .bind(st.cipher.encrypt(&secret))
        .bind(cur.updated_ms)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("webhook"));
    }
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "alarm.webhook.rotate_secret", "alarm_webhook", Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": cur.org_id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(WebhookSecret { webhook: cur.view(), secret })
}

/// Sends a `webhook.test` event now, once (no retries, even to a disabled webhook), and returns
/// its delivery with the outcome.
pub async fn test(st: &AppState, sinks: &Sinks, c: &Caller, id: &str) -> ApiResult<Delivery> {
    let w = managed(&st.store, c, id).await?;
    let store = &st.store;
    let mut tx = store.begin().await?;
    let due = delivery::queue_test(store, &mut tx, &w, sinks.settings()).await?;
    audit::append(
        store,
        &mut tx,
        &Event::new(Actor::of(c), "alarm.webhook.test", "alarm_webhook", Some(id), Outcome::Success)
            .detail(serde_json::json!({"org_id": w.org_id, "target": w.audit_target(), "delivery_id": due.id})),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let delivery_id = due.id.clone();
    delivery::attempt(store, &st.cipher, sinks, due, 1).await;
    delivery::by_id(store, &delivery_id).await?.ok_or_else(|| ApiError::internal("test delivery vanished"))
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(
    store: &Store,
    c: &Caller,
    id: &str,
    status: Option<DeliveryStatus>,
    limit: i64,
    offset: i64,
) -> ApiResult<(Vec<Delivery>, i64)> {
    let w = visible(store, c, id).await?;
    let mut q = Where::new();
    q.and("webhook_id = ?", Arg::S(w.id));
    if let Some(s) = status {
        q.and("status = ?", Arg::S(s.as_str().into()));
    }
    let (rows, total) =
        fetch_page(store, delivery::COLS, "alarm_webhook_deliveries", &q, "created_ms DESC, id DESC", limit, offset)
            .await?;
    Ok((rows.iter().map(delivery::row_to_view).collect::<StoreResult<_>>()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(parse_url(" https://example.com/hook?x=1 ").ok().as_deref(), Some("https://example.com/hook?x=1"));
        assert!(parse_url("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://exa mple.com/",
            "https://example.com/a\nb",
            "https://example.com/a\u{0}b",
            "https://example.com/#frag",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://",
            "http://:80/",
            "not a url",
        ] {
            let e = parse_url(bad).err().map(|e| (e.code, e.field));
            assert_eq!(e, Some((Code::BadRequest, Some("url".to_string()))), "{bad:?}");
        }
        assert!(parse_url(&format!("https://example.com/{}", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn audit_target_drops_the_query() {
        assert_eq!(audit_target("https://example.com:8443/in/hook?token=s3cret"), "https://example.com:8443/in/hook");
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_domains(&["transport".into()]).is_ok());
        assert!(check_domains(&["atlantis".into()]).is_err());
        assert!(check_kinds(&["Over Speed".into()]).is_err());
        assert_eq!(check_kinds(&["b".into(), "a".into(), "b".into()]).ok(), Some(vec!["a".into(), "b".into()]));
        assert!(check_kinds(&vec!["k".to_string(); MAX_FILTER_ENTRIES + 1]).is_err());
    }

    #[test]
    fn secrets_are_256_bits_and_fresh() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_eq!(a.len(), "whsec_".len() + 64);
        assert_ne!(a, b);
    }
}
