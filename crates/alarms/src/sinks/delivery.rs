//! Webhook deliveries: the intake that turns alarm changes into delivery rows, and the sender
//! that posts them, signed, with retries (see the `sinks` module doc for the wire format).
//!
//! A row is committed before its first attempt, so pending deliveries survive a restart. The
//! sender claims a due row by moving its next attempt past the attempt's time-out (a lease): a
//! sender that dies mid-attempt leaves the row to be tried again when the lease runs out.

use super::webhooks::{self, Delivery, DeliveryStatus, Record};
use super::{Change, Changes, SinkSettings, Sinks};
use hmac::{Hmac, Mac};
use kernel::bus::Subscription;
use kernel::crypto::FieldCipher;
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::{Store, StoreError, StoreResult, col, ms_to_rfc3339, now_ms};
use sha2::Sha256;
use sqlx::any::AnyRow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The longest `last_error` kept, in characters.
const MAX_ERROR: usize = 300;
/// Rows deleted per statement when purging (short transactions on SQLite's one writer).
const PURGE_BATCH: i64 = 1000;

pub(crate) const COLS: &str = "id, webhook_id, alarm_id, event, status, attempts, next_attempt_ms, last_status_code, \
     last_error, created_ms, delivered_ms";

pub(crate) fn row_to_view(r: &AnyRow) -> StoreResult<Delivery> {
    let status: String = col(r, "status")?;
    let status =
        DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?;
    let next: i64 = col(r, "next_attempt_ms")?;
    Ok(Delivery {
        id: col(r, "id")?,
        webhook_id: col(r, "webhook_id")?,
        alarm_id: col(r, "alarm_id")?,
        event: col(r, "event")?,
        status,
        attempts: col(r, "attempts")?,
        next_attempt_at: (status == DeliveryStatus::Pending).then(|| ms_to_rfc3339(next)),
        last_status_code: col(r, "last_status_code")?,
        last_error: col(r, "last_error")?,
        created_at: ms_to_rfc3339(col(r, "created_ms")?),
        delivered_at: col::<Option<i64>>(r, "delivered_ms")?.map(ms_to_rfc3339),
    })
}

pub(crate) async fn by_id(store: &Store, id: &str) -> StoreResult<Option<Delivery>> {
    let r = sqlx::query(&store.sql(&format!("SELECT {COLS} FROM alarm_webhook_deliveries WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(store.reader())
        .await?;
    r.as_ref().map(row_to_view).transpose()
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the `X-Wuqing-Signature` value.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length; this branch is never taken.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}

/// A delivery claimed for an attempt, with its webhook's target.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub body: String,
    pub attempts: i64,
    pub url: String,
    pub secret_enc: Vec<u8>,
    pub enabled: bool,
}

fn lease(s: &SinkSettings) -> i64 {
    i64::try_from((s.timeout + Duration::from_secs(60)).as_millis()).unwrap_or(i64::MAX / 4)
}

/// Queues a test event for `w`, already claimed (the caller attempts it at once).
pub(crate) async fn queue_test(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    w: &Record,
    s: &SinkSettings,
) -> StoreResult<Due> {
    let id = uuid::Uuid::now_v7().to_string();
    let event = "webhook.test";
    let body = super::body(event, "null");
    let now = now_ms();
    insert(store, tx, &id, &w.id, None, event, &body, now, now.saturating_add(lease(s)), None).await?;
    Ok(Due {
        id,
        webhook_id: w.id.clone(),
        event: event.into(),
        body,
        attempts: 0,
        url: w.url.clone(),
        secret_enc: w.secret_enc.clone(),
        enabled: true,
    })
}

/// Queues one delivery. `change` (the SHA-256 of the body) makes it one per change and webhook:
/// another processor that heard the same change and queued it first wins, and nothing is added.
#[allow(clippy::too_many_arguments)]
async fn insert(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    webhook_id: &str,
    alarm_id: Option<&str>,
    event: &str,
    body: &str,
    now: i64,
    next_attempt_ms: i64,
    change: Option<&str>,
) -> StoreResult<u64> {
    Ok(sqlx::query(&store.sql(
        "INSERT INTO alarm_webhook_deliveries (id, webhook_id, alarm_id, event, body, status, attempts, \
         next_attempt_ms, created_ms, change_sha256) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8) \
         ON CONFLICT (webhook_id, change_sha256) DO NOTHING",
    ))
    .bind(id.to_string())
    .bind(webhook_id.to_string())
    .bind(alarm_id.map(str::to_string))
    .bind(event.to_string())
    .bind(body.to_string())
    .bind(next_attempt_ms)
    .bind(now)
    .bind(change.map(str::to_string))
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Queues a change for every enabled webhook whose organisation's scope covers the alarm and
/// whose filter lets it through. Returns how many deliveries were queued.
pub(crate) async fn enqueue(st: &AppState, change: &Change, event: &str) -> StoreResult<usize> {
    let h = &change.head;
    let mut targets = vec![];
    for w in webhooks::enabled(&st.store).await? {
        if !w.wants(&h.domain, &h.kind, h.severity) {
            continue;
        }
        let scope = st.orgs.scope_for(&st.store, w.scope_role, &w.org_id).await?;
        if scope.contains(&h.org_id) {
            targets.push(w.id);
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }
    let body = change.body(event);
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(body.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let now = now_ms();
    let mut tx = st.store.begin().await?;
    let mut queued = 0;
    for w in &targets {
        let id = uuid::Uuid::now_v7().to_string();
        queued +=
            insert(&st.store, &mut tx, &id, w, Some(&h.id), event, &body, now, now, Some(&digest)).await? as usize;
    }
    tx.commit().await?;
    Ok(queued)
}

/// Reads alarm changes from `sub` (`alarms.>`, subscribed before the task starts so that no
/// change published meanwhile is missed) and queues their deliveries, until `shutdown`.
pub async fn intake(st: AppState, sinks: Sinks, sub: Subscription, shutdown: CancellationToken) {
    let mut changes = Changes::new(sub);
    while let Some((change, event)) = changes.next(&shutdown).await {
        match enqueue(&st, &change, event).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("wuqing_alarm_webhook_queued_total").increment(n as u64);
                sinks.wake();
            }
            Err(e) => {
                metrics::counter!("wuqing_alarm_webhook_queue_errors_total").increment(1);
                tracing::warn!(alarm = %change.head.id, error = %e, "webhook deliveries not queued");
            }
        }
    }
}

/// Pending deliveries due now, oldest due first, with their webhooks.
async fn due(store: &Store, now: i64, limit: usize) -> StoreResult<Vec<(Due, i64)>> {
    let rows = sqlx::query(&store.sql(
        "SELECT d.id, d.webhook_id, d.event, d.body, d.attempts, d.next_attempt_ms, w.url, w.secret_enc, w.enabled \
         FROM alarm_webhook_deliveries d JOIN alarm_webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_ms <= $1 ORDER BY d.next_attempt_ms, d.id LIMIT $2",
    ))
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(1))
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                Due {
                    id: col(r, "id")?,
                    webhook_id: col(r, "webhook_id")?,
                    event: col(r, "event")?,
                    body: col(r, "body")?,
                    attempts: col(r, "attempts")?,
                    url: col(r, "url")?,
                    secret_enc: col(r, "secret_enc")?,
                    enabled: col::<i64>(r, "enabled")? != 0,
                },
                col(r, "next_attempt_ms")?,
            ))
        })
        .collect()
}

/// Claims a due delivery: its next attempt moves past this attempt's lease, unless another
/// sender moved it first.
async fn claim(store: &Store, id: &str, seen_next: i64, s: &SinkSettings) -> StoreResult<bool> {
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql(
        "UPDATE alarm_webhook_deliveries SET next_attempt_ms = $1 WHERE id = $2 AND status = 'pending' \
         AND next_attempt_ms = $3",
    ))
    .bind(now_ms().saturating_add(lease(s)))
    .bind(id.to_string())
    .bind(seen_next)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

fn bounded(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(MAX_ERROR).collect()
}

/// What one attempt came to.
enum Outcome {
    Delivered(u16),
    /// An answer other than 2xx.
    Refused(u16),
    /// No answer: connection, TLS or time-out (the text names no URL and no secret).
    NoAnswer(String),
    /// Not sent at all (disabled webhook, unreadable secret): failed at once.
    Abandoned(&'static str),
}

async fn post(cipher: &FieldCipher, sinks: &Sinks, d: &Due) -> Outcome {
    if !d.enabled {
        return Outcome::Abandoned("webhook disabled");
    }
    let Ok(secret) = cipher.decrypt(&d.secret_enc) else { return Outcome::Abandoned("webhook secret unreadable") };
    let client = match sinks.client() {
        Ok(c) => c,
        Err(e) => return Outcome::NoAnswer(format!("http client unavailable: {e}")),
    };
    let ts = now_ms().div_euclid(1000);
    let sig = signature(&secret, ts, &d.body);
    drop(secret);
    let res = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Wuqing-Event", &d.event)
        .header("X-Wuqing-Delivery", &d.id)
        .header("X-Wuqing-Timestamp", ts.to_string())
        .header("X-Wuqing-Signature", sig)
        .body(d.body.clone())
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => Outcome::Delivered(r.status().as_u16()),
        Ok(r) => Outcome::Refused(r.status().as_u16()),
        Err(e) => {
            let e = e.without_url();
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            // The source chain says why (refused, DNS, TLS) without the URL.
            let mut why = String::new();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                why = s.to_string();
                src = s.source();
            }
            Outcome::NoAnswer(if why.is_empty() { what.to_string() } else { format!("{what}: {why}") })
        }
    }
}

/// Makes one attempt of `d` and records it: delivered, retried later, or failed after
/// `max_attempts`.
pub(crate) async fn attempt(store: &Store, cipher: &FieldCipher, sinks: &Sinks, d: Due, max_attempts: i64) {
    let outcome = post(cipher, sinks, &d).await;
    let attempts = d.attempts + 1;
    let now = now_ms();
    let retry_or_fail = if attempts >= max_attempts { DeliveryStatus::Failed } else { DeliveryStatus::Pending };
    let (status, code, error) = match &outcome {
        Outcome::Delivered(c) => (DeliveryStatus::Delivered, Some(i64::from(*c)), None),
        Outcome::Abandoned(why) => (DeliveryStatus::Failed, None, Some(why.to_string())),
        Outcome::Refused(c) => (retry_or_fail, Some(i64::from(*c)), Some(format!("answered {c}"))),
        Outcome::NoAnswer(e) => (retry_or_fail, None, Some(e.clone())),
    };
    let next = if status == DeliveryStatus::Pending {
        now.saturating_add(ms(sinks.settings().backoff(attempts)))
    } else {
        now
    };
    let delivered_ms = (status == DeliveryStatus::Delivered).then_some(now);
    let res = async {
        let mut tx = store.begin().await?;
        sqlx::query(&store.sql(
            "UPDATE alarm_webhook_deliveries SET status = $1, attempts = $2, next_attempt_ms = $3, \
             last_status_code = $4, last_error = $5, delivered_ms = $6 WHERE id = $7 AND status = 'pending'",
        ))
        .bind(status.as_str())
        .bind(attempts)
        .bind(next)
        .bind(code)
        .bind(error.as_deref().map(bounded))
        .bind(delivered_ms)
        .bind(d.id.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    }
    .await;
    if let Err(e) = res {
        // The lease runs out and the delivery is tried again: at least once, never lost.
        tracing::warn!(delivery = %d.id, error = %e, "webhook delivery outcome not recorded");
    }
    let label = match status {
        DeliveryStatus::Pending => "retry",
        other => other.as_str(),
    };
    metrics::counter!("wuqing_alarm_webhook_attempts_total", "outcome" => label).increment(1);
    match status {
        DeliveryStatus::Delivered => {
            metrics::counter!("wuqing_alarm_webhook_delivered_total").increment(1);
            tracing::debug!(delivery = %d.id, webhook = %d.webhook_id, attempts, "webhook delivered");
        }
        DeliveryStatus::Pending => {
            tracing::info!(delivery = %d.id, webhook = %d.webhook_id, attempts, status_code = ?code,
                error = error.as_deref().map(bounded).unwrap_or_default(), "webhook delivery failed, will retry");
        }
        DeliveryStatus::Failed => {
            metrics::counter!("wuqing_alarm_webhook_failed_total").increment(1);
            tracing::warn!(delivery = %d.id, webhook = %d.webhook_id, attempts, status_code = ?code,
                error = error.as_deref().map(bounded).unwrap_or_default(), "webhook delivery given up");
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Deletes delivered and failed deliveries older than the retention, in batches.
pub(crate) async fn purge(store: &Store, s: &SinkSettings) -> StoreResult<u64> {
    let before = now_ms().saturating_sub(ms(s.retention));
    let mut total = 0;
    loop {
        let mut tx = store.begin().await?;
        let n = sqlx::query(&store.sql(
            "DELETE FROM alarm_webhook_deliveries WHERE id IN (SELECT id FROM alarm_webhook_deliveries \
             WHERE status <> 'pending' AND created_ms < $1 LIMIT $2)",
        ))
        .bind(before)
        .bind(PURGE_BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        total += n;
        if n < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Posts due deliveries, a bounded number at once, and purges old ones, until `shutdown`.
pub async fn sender(st: AppState, sinks: Sinks, shutdown: CancellationToken) {
    let settings = sinks.settings().clone();
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut inflight = JoinSet::new();
    let mut next_purge = Instant::now();
    loop {
        while inflight.try_join_next().is_some() {}
        if Instant::now() >= next_purge {
            next_purge = Instant::now() + settings.purge_every;
            match purge(&st.store, &settings).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "old webhook deliveries purged"),
                Err(e) => tracing::warn!(error = %e, "webhook deliveries not purged"),
            }
        }
        let free = permits.available_permits();
        let mut full_batch = false;
        if free > 0 {
            match due(&st.store, now_ms(), free).await {
                Ok(rows) => {
                    // Another look at once only if a whole batch was taken (more may be due).
                    let mut claimed = 0;
                    for (d, seen_next) in rows {
                        let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                        match claim(&st.store, &d.id, seen_next, &settings).await {
                            Ok(true) => {
                                claimed += 1;
                                let (store, cipher, sinks) = (st.store.clone(), st.cipher.clone(), sinks.clone());
                                let max = settings.max_attempts;
                                inflight.spawn(async move {
                                    attempt(&store, &cipher, &sinks, d, max).await;
                                    drop(permit);
                                });
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(delivery = %d.id, error = %e, "webhook delivery not claimed"),
                        }
                    }
                    full_batch = claimed == free;
                }
                Err(e) => tracing::warn!(error = %e, "due webhook deliveries not read"),
            }
        }
        if full_batch {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sinks.woken() => {}
            _ = tokio::time::sleep(settings.poll) => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Let in-flight attempts finish and record their outcome (each is bounded by the time-out);
    // any cut short by a hard stop is tried again when its lease runs out.
    let drain = async { while inflight.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.timeout + Duration::from_secs(1), drain).await.is_err() {
        inflight.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_k
        assert_eq!(
            signature("whsec_k", 1_700_000_000, "{\"a\":1}"),
            "sha256=a252a4340d8bbbdbac8643a2812cc7d628ad79bfba544bff054ac2fa10f795a2"
        );
        assert_ne!(signature("whsec_j", 1_700_000_000, "{\"a\":1}"), signature("whsec_k", 1_700_000_000, "{\"a\":1}"));
    }

    #[test]
    fn errors_are_bounded_and_single_line() {
        let e = bounded(&format!("a\nb{}", "x".repeat(1000)));
        assert!(!e.contains('\n'));
        assert_eq!(e.chars().count(), MAX_ERROR);
    }
}
