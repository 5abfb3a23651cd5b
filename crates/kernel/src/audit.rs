//! The audit log: append-only and hash-chained with SM3 (GM/T 0004-2012).
//!
//! Every write, every read of personal or sensitive data, every login and failed login and every
//! permission change appends a record: who, when, from where, what, outcome. Each record's hash
//! covers the previous record's hash, so editing, deleting or reordering any record breaks the
//! chain at that point, and `wuqing audit verify` names it. Records never hold secrets or
//! identifier numbers; callers put ids and masked values in `detail`.

use crate::access::Caller;
use crate::store::{Arg, Store, StoreResult, Where, col, fetch_page, now_ms};
use serde::Serialize;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused by access control.
    Denied,
    /// Failed (bad credentials, invalid input).
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub name: String,
    pub role: Option<String>,
    pub org_id: Option<String>,
    pub source_ip: Option<String>,
}

impl Actor {
    pub fn of(c: &Caller) -> Self {
        Actor {
            user_id: Some(c.user_id.clone()),
            name: c.username.clone(),
            role: Some(c.role.as_str().to_string()),
            org_id: Some(c.org_id.clone()),
            source_ip: c.source_ip.clone(),
        }
    }
    /// A command run on the server itself (`wuqing user …`).
    pub fn cli(what: &str) -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "root".into());
        Actor { name: format!("cli:{who}"), source_ip: Some(format!("local:{what}")), ..Default::default() }
    }
    pub fn anonymous(source_ip: Option<String>, attempted: &str) -> Self {
        Actor { name: attempted.to_string(), source_ip, ..Default::default() }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: Actor,
    /// e.g. `login`, `user.create`, `user.read`, `user.reveal`, `org.update`.
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(actor: Actor, action: &str, target_kind: &str, target_id: Option<&str>, outcome: Outcome) -> Self {
        Event {
            actor,
            action: action.into(),
            target_kind: target_kind.into(),
            target_id: target_id.map(str::to_string),
            outcome,
            detail: serde_json::Value::Null,
        }
    }
    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }
}

/// A stored record, as the audit administrator reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Record {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor_id: Option<String>,
    pub actor: String,
    pub role: Option<String>,
    pub org_id: Option<String>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub hash: String,
}

#[allow(clippy::too_many_arguments)]
fn link_hash(
    prev: &str,
    seq: i64,
    at_ms: i64,
    actor_id: &Option<String>,
    actor: &str,
    role: &Option<String>,
    org_id: &Option<String>,
    source_ip: &Option<String>,
    action: &str,
    target_kind: &str,
    target_id: &Option<String>,
    outcome: &str,
    detail: &str,
) -> String {
    // A JSON array is an unambiguous encoding of the fields in a fixed order.
    let body = serde_json::json!([
        prev,
        seq,
        at_ms,
        actor_id,
        actor,
        role,
        org_id,
        source_ip,
        action,
        target_kind,
        target_id,
        outcome,
        detail
    ]);
    crate::crypto::sm3_hex(body.to_string().as_bytes())
}

/// Appends within the caller's transaction, so the record commits with the change it records.
pub async fn append(store: &Store, tx: &mut Transaction<'static, Any>, ev: &Event) -> StoreResult<i64> {
    let head = sqlx::query(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{}", store.for_update()))
        .fetch_one(&mut **tx)
        .await?;
    let prev_seq: i64 = col(&head, "seq")?;
    let prev_hash: String = col(&head, "hash")?;
    let seq = prev_seq + 1;
    let at_ms = now_ms();
    let detail = ev.detail.to_string();
    let a = &ev.actor;
    let outcome = ev.outcome.as_str();
    let hash = link_hash(
        &prev_hash,
        seq,
        at_ms,
        &a.user_id,
        &a.name,
        &a.role,
        &a.org_id,
        &a.source_ip,
        &ev.action,
        &ev.target_kind,
        &ev.target_id,
        outcome,
        &detail,
    );
    sqlx::query(&store.sql(
        "INSERT INTO audit_log (seq, at_ms, actor_id, actor, role, org_id, source_ip, action, target_kind, target_id, \
         outcome, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    ))
    .bind(seq)
    .bind(at_ms)
    .bind(a.user_id.clone())
    .bind(a.name.clone())
    .bind(a.role.clone())
    .bind(a.org_id.clone())
    .bind(a.source_ip.clone())
    .bind(ev.action.clone())
    .bind(ev.target_kind.clone())
    .bind(ev.target_id.clone())
    .bind(outcome)
    .bind(detail)
    .bind(prev_hash)
    .bind(hash.clone())
    .execute(&mut **tx)
    .await?;
    sqlx::query(&store.sql("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1"))
        .bind(seq)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    metrics::counter!("wuqing_audit_records_total", "outcome" => outcome).increment(1);
    Ok(seq)
}

/// Appends in a transaction of its own (reads, logins, refusals), returning once it is
/// committed. Concurrent calls are group-committed: one transaction, and one fsync, carries every
/// record that arrived while the previous batch was being written.
pub async fn record(store: &Store, ev: Event) -> StoreResult<i64> {
    let (reply, rx) = tokio::sync::oneshot::channel();
    let queue = store.audit_queue.get_or_init(|| spawn_batcher(store.clone())).clone();
    match queue.send(Job { ev, reply }).await {
        Ok(()) => {
            rx.await.unwrap_or_else(|_| Err(crate::store::StoreError::Unavailable("audit writer stopped".into())))
        }
        // The writer belonged to a runtime that has ended (tests that reuse a store): write directly.
        Err(tokio::sync::mpsc::error::SendError(job)) => {
            let mut tx = store.begin().await?;
            let seq = append(store, &mut tx, &job.ev).await?;
            tx.commit().await?;
            Ok(seq)
        }
    }
}

/// A record waiting for the group commit, and where to say it is durable.
pub struct Job {
    ev: Event,
    reply: tokio::sync::oneshot::Sender<StoreResult<i64>>,
}

const MAX_BATCH: usize = 256;

fn spawn_batcher(store: Store) -> tokio::sync::mpsc::Sender<Job> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(4 * MAX_BATCH);
    // The writer lives as long as the runtime that first recorded through this store.
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let result = write_batch(&store, &batch).await;
            metrics::histogram!("wuqing_audit_batch_size").record(batch.len() as f64);
            match result {
                Ok(seqs) => {
                    for (job, seq) in batch.drain(..).zip(seqs) {
                        let _ = job.reply.send(Ok(seq));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::error!(error = %msg, records = batch.len(), "audit batch failed");
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Err(crate::store::StoreError::Unavailable(msg.clone())));
                    }
                }
            }
        }
    });
    tx
}

async fn write_batch(store: &Store, batch: &[Job]) -> StoreResult<Vec<i64>> {
    let mut tx = store.begin().await?;
    let mut seqs = Vec::with_capacity(batch.len());
    for job in batch {
        seqs.push(append(store, &mut tx, &job.ev).await?);
    }
    tx.commit().await?;
    Ok(seqs)
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    pub checked: i64,
    /// The first record whose link does not hold, if any.
    pub first_broken: Option<i64>,
    pub reason: Option<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Recomputes every link, in pages, and checks the head.
pub async fn verify(store: &Store) -> StoreResult<Verification> {
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1i64;
    let mut checked = 0i64;
    loop {
        let rows = sqlx::query(&store.sql(
            "SELECT seq, at_ms, actor_id, actor, role, org_id, source_ip, action, target_kind, target_id, outcome, detail, \
             prev_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 2000",
        ))
        .bind(expected_seq)
        .fetch_all(store.reader())
        .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let seq: i64 = col(r, "seq")?;
            let broken =
                |reason: &str| Verification { checked, first_broken: Some(seq), reason: Some(reason.to_string()) };
            if seq != expected_seq {
                return Ok(Verification {
                    checked,
                    first_broken: Some(expected_seq),
                    reason: Some(format!("record {expected_seq} is missing")),
                });
            }
            let stored_prev: String = col(r, "prev_hash")?;
            if stored_prev != prev {
                return Ok(broken("its link to the previous record does not match"));
            }
            let h = link_hash(
                &prev,
                seq,
                col(r, "at_ms")?,
                &col(r, "actor_id")?,
                &col::<String>(r, "actor")?,
                &col(r, "role")?,
                &col(r, "org_id")?,
                &col(r, "source_ip")?,
                &col::<String>(r, "action")?,
                &col::<String>(r, "target_kind")?,
                &col(r, "target_id")?,
                &col::<String>(r, "outcome")?,
                &col::<String>(r, "detail")?,
            );
            let stored: String = col(r, "hash")?;
            if h != stored {
                return Ok(broken("its content does not match its hash"));
            }
            prev = stored;
            expected_seq += 1;
            checked += 1;
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(store.reader()).await?;
    let head_seq: i64 = col(&head, "seq")?;
    let head_hash: String = col(&head, "hash")?;
    if head_seq != checked || head_hash != prev {
        return Ok(Verification {
            checked,
            first_broken: Some(checked + 1),
            reason: Some(format!(
                "the log ends at record {checked} but its head says {head_seq}: records were removed"
            )),
        });
    }
    Ok(Verification { checked, first_broken: None, reason: None })
}

/// Filters for the audit query.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// Newest first.
pub async fn query(store: &Store, f: &Filter) -> StoreResult<(Vec<Record>, i64)> {
    let mut w = Where::new();
    for (column, value) in [
        ("actor", &f.actor),
        ("action", &f.action),
        ("target_kind", &f.target_kind),
        ("target_id", &f.target_id),
        ("outcome", &f.outcome),
    ] {
        if let Some(v) = value {
            w.and(&format!("{column} = ?"), Arg::S(v.clone()));
        }
    }
    if let Some(v) = f.from_ms {
        w.and("at_ms >= ?", Arg::I(v));
    }
    if let Some(v) = f.to_ms {
        w.and("at_ms < ?", Arg::I(v));
    }
    let cols =
        "seq, at_ms, actor_id, actor, role, org_id, source_ip, action, target_kind, target_id, outcome, detail, hash";
    let (rows, total) = fetch_page(store, cols, "audit_log", &w, "seq DESC", f.limit, f.offset).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let detail: String = col(&r, "detail")?;
        out.push(Record {
            seq: col(&r, "seq")?,
            at: crate::store::ms_to_rfc3339(col(&r, "at_ms")?),
            actor_id: col(&r, "actor_id")?,
            actor: col(&r, "actor")?,
            role: col(&r, "role")?,
            org_id: col(&r, "org_id")?,
            source_ip: col(&r, "source_ip")?,
            action: col(&r, "action")?,
            target_kind: col(&r, "target_kind")?,
            target_id: col(&r, "target_id")?,
            outcome: col(&r, "outcome")?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            hash: col(&r, "hash")?,
        });
    }
    Ok((out, total))
}
