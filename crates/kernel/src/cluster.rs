//! Scale-out over NATS JetStream and PostgreSQL (`bus.url` set): what the domains share to run
//! gateways and processors on several nodes without a cluster of our own.
//!
//! - Observations travel from the gateway that received them to the processor that stores them
//!   on a JetStream stream ([`Cluster::stream`]): file storage, work-queue retention (a message
//!   is kept until a processor acknowledges it, which it does after its commit), the stream's
//!   duplicate window keyed by device and device time (a terminal's retransmission through
//!   another gateway is stored once in the stream too).
//! - Subjects are partitioned by device ([`partition_of`]): `<prefix>.<partition>.<device>`.
//!   Each partition has one durable consumer, consumed by one processor at a time, so a
//!   device's observations are processed in order by one engine.
//! - Which processor holds which partition is decided by PostgreSQL session advisory locks
//!   ([`share_partitions`]): a processor that dies (SIGKILL, power loss) loses its connection
//!   and with it its locks, and the others claim its partitions within a few seconds. The live
//!   processors of a group (rows of `cluster_members`, refreshed every [`HEARTBEAT`]) share the
//!   partitions evenly: one that joins is given its share as the others release theirs.
//!
//! A partition's new owner starts from the durable consumer's first unacknowledged message (the
//! consumer is recreated at each claim, so nothing the old owner held in flight is delivered out
//! of order) and from the domain's saved state of the partition; writes are idempotent (keyed by
//! device and device time), so what the old owner committed but did not acknowledge is seen
//! twice and stored once.

use crate::bus::BusError;
use crate::config::Config;
use crate::store::{Store, now_ms};
use async_nats::jetstream;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a processor says it is alive and rebalances.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A member not seen for this long is gone: its share goes to the others.
const MEMBER_TTL_MS: i64 = 10_000;

/// The NATS side of a node of a scaled-out platform.
#[derive(Clone)]
pub struct Cluster {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// This node's name.
    pub node: String,
    /// Partitions of every observation stream (`bus.partitions`).
    pub partitions: u32,
    /// Copies of each stream (`bus.replicas`).
    pub replicas: u32,
    /// The deployment's name at NATS (`bus.namespace`).
    pub namespace: String,
    /// The streams this node has created or checked ([`Cluster::ready`]).
    ready: Arc<std::sync::RwLock<std::collections::HashSet<String>>>,
}

impl Cluster {
    /// With the client the bus already holds (one connection per node).
    pub fn new(client: async_nats::Client, config: &Config) -> Self {
        let js = jetstream::new(client.clone());
        Self {
            client,
            js,
            node: config.node.clone(),
            partitions: config.raw.bus.partitions,
            replicas: config.raw.bus.replicas,
            namespace: config.raw.bus.namespace.clone(),
            ready: Arc::default(),
        }
    }

    /// Makes sure the stream of `kind` exists ([`Cluster::stream`]) before this node first
    /// publishes to it; at once afterwards. (A demo seeded before the modules start publishes
    /// before any stream was created.)
    pub async fn ready(&self, kind: &str) -> anyhow::Result<()> {
        if self.ready.read().is_ok_and(|r| r.contains(kind)) {
            return Ok(());
        }
        // Two callers at once both check: creating or checking a stream is idempotent.
        self.stream(kind).await?;
        if let Ok(mut r) = self.ready.write() {
            r.insert(kind.to_string());
        }
        Ok(())
    }

    /// The stream of observations of `kind` (`positions`): `<NAMESPACE>_<KIND>`.
    pub fn stream_name(&self, kind: &str) -> String {
        format!("{}_{}", self.namespace, kind).to_uppercase()
    }

    /// Subjects of the stream of `kind` start with this: `<namespace>.js.<kind>`.
    fn prefix(&self, kind: &str) -> String {
        format!("{}.js.{kind}", self.namespace)
    }

    /// Creates the stream of observations of `kind` (work-queue retention, file storage, a
    /// two-minute duplicate window), or checks the one there: a stream created with another
    /// number of partitions is refused, since devices would then change partition and two
    /// processors could hold one device's observations at once.
    pub async fn stream(&self, kind: &str) -> anyhow::Result<jetstream::stream::Stream> {
        let (name, prefix) = (self.stream_name(kind), self.prefix(kind));
        let name = name.as_str();
        let description = format!("wuqing observations; partitions={}", self.partitions);
        let config = jetstream::stream::Config {
            name: name.to_string(),
            description: Some(description.clone()),
            subjects: vec![format!("{prefix}.>")],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.replicas as usize,
            duplicate_window: Duration::from_secs(120),
            // A processor-less outage of a week at most; then the oldest go (and their terminals
            // were answered: the operator is warned by the stream's size long before).
            max_age: Duration::from_secs(7 * 86_400),
            ..Default::default()
        };
        let mut stream =
            self.js.get_or_create_stream(config).await.map_err(|e| anyhow::anyhow!("stream {name}: {e}"))?;
        let info = stream.info().await.map_err(|e| anyhow::anyhow!("stream {name}: {e}"))?;
        if info.config.description.as_deref() != Some(description.as_str()) {
            anyhow::bail!(
                "stream {name} was created as {:?}, this node is configured with bus.partitions = {}: \
                 every node must use the same number",
                info.config.description.clone().unwrap_or_default(),
                self.partitions
            );
        }
        Ok(stream)
    }

    /// The subject of one device's observations of `kind`: `<namespace>.js.<kind>.<partition>.<device>`.
    pub fn subject(&self, kind: &str, device: &str) -> String {
        format!("{}.{}.{device}", self.prefix(kind), partition_of(device, self.partitions))
    }

    /// Takes over partition `p` of `stream`: its durable consumer is recreated, so that delivery
    /// starts from the first message not acknowledged (work-queue retention keeps exactly those)
    /// in stream order, whatever the previous owner had in flight.
    pub async fn take_partition(
        &self,
        stream: &jetstream::stream::Stream,
        kind: &str,
        p: u32,
    ) -> anyhow::Result<jetstream::consumer::Consumer<jetstream::consumer::pull::Config>> {
        let prefix = self.prefix(kind);
        let name = format!("{}-{p}", stream.cached_info().config.name.to_lowercase());
        match stream.delete_consumer(&name).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => tracing::debug!(consumer = %name, error = %e, "old consumer not deleted"),
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: format!("{prefix}.{p}.>"),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: 20_000,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))?;
        Ok(consumer)
    }
}

impl Cluster {
    /// Publishes each `(device, message id, body)` to its partition's subject of the stream of
    /// `kind` (created first if this node has not yet), with the id as `Nats-Msg-Id` (JetStream drops a copy within its duplicate
    /// window), and waits for every acknowledgement of the stream. Returns how many were new.
    pub async fn publish_all(
        &self,
        kind: &str,
        items: impl IntoIterator<Item = (String, String, Vec<u8>)>,
    ) -> Result<u64, String> {
        self.ready(kind).await.map_err(|e| e.to_string())?;
        let mut acks = Vec::new();
        for (device, id, body) in items {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let ack = self
                .js
                .publish_with_headers(self.subject(kind, &device), headers, body.into())
                .await
                .map_err(|e| e.to_string())?;
            acks.push(ack);
        }
        let mut new = 0;
        for ack in acks {
            new += u64::from(!ack.await.map_err(|e| e.to_string())?.duplicate);
        }
        Ok(new)
    }

    /// The messages of partition `p` of the stream of `kind`, from its first unacknowledged
    /// one ([`Cluster::stream`], [`Cluster::take_partition`]).
    pub async fn partition_messages(&self, kind: &str, p: u32) -> anyhow::Result<jetstream::consumer::pull::Stream> {
        let stream = self.stream(kind).await?;
        let consumer = self.take_partition(&stream, kind, p).await?;
        consumer.messages().await.map_err(|e| anyhow::anyhow!("{kind} partition {p}: {e}"))
    }
}

/// The next batch of a partition's messages: waits for one, then takes what else has arrived,
/// up to `max`. `None` when the consumer has ended.
pub async fn next_batch(
    messages: &mut jetstream::consumer::pull::Stream,
    max: usize,
) -> Option<Vec<jetstream::Message>> {
    use futures::{FutureExt, StreamExt};
    let mut next = Some(messages.next().await?);
    let mut batch = Vec::with_capacity(64);
    while let Some(m) = next.take() {
        match m {
            Ok(m) => batch.push(m),
            Err(e) => tracing::debug!(error = %e, "partition consumer"),
        }
        if batch.len() >= max {
            break;
        }
        next = messages.next().now_or_never().flatten();
    }
    Some(batch)
}

/// Runs `commit` until it succeeds, with back-off, keeping `held` messages from redelivery to
/// another consumer meanwhile (JetStream holds them until the store is back). `false` when
/// `stop` came first: the messages are left unacknowledged for the partition's next owner.
pub async fn commit_held<F, Fut, E>(
    held: &[jetstream::Message],
    stop: &CancellationToken,
    what: &str,
    mut commit: F,
) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(50);
    let mut progress = std::time::Instant::now();
    loop {
        match commit().await {
            Ok(()) => return true,
            Err(e) => {
                metrics::counter!("wuqing_cluster_commit_failures_total", "what" => what.to_string()).increment(1);
                tracing::warn!(error = %e, what, messages = held.len(), "messages from the stream not stored: retrying");
                if progress.elapsed() > Duration::from_secs(20) {
                    for m in held {
                        let _ = m.ack_with(jetstream::AckKind::Progress).await;
                    }
                    progress = std::time::Instant::now();
                }
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Acknowledges processed messages to the stream (a lost acknowledgement means the message
/// comes again, and is stored once).
pub async fn ack_all(held: &[jetstream::Message]) {
    for m in held {
        if let Err(e) = m.ack().await {
            tracing::debug!(error = %e, "message not acknowledged to the stream: it comes again, stored once");
        }
    }
}

/// Connects the node's NATS client (see [`crate::bus::connect`]).
pub async fn connect(config: &Config) -> Result<async_nats::Client, BusError> {
    crate::bus::connect(&config.raw.bus.url, &config.node).await
}

/// The partition of a device: FNV-1a (64 bits) of its id, modulo the partitions. Stable across
/// releases and platforms: it decides which subject, consumer and processor a device's
/// observations go to.
pub fn partition_of(device: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// The work of one partition: runs until `stop` is cancelled and returns once its state is
/// saved (the next owner starts from it).
pub type PartitionWork = Arc<dyn Fn(u32, CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Owned {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Shares the partitions of `group` among the live processors: claims this node's share with
/// PostgreSQL advisory locks on a connection of its own, runs `work` for each partition held,
/// releases partitions beyond its share (after their work returned) and everything at
/// `shutdown`. Rebalances every [`HEARTBEAT`]. Needs PostgreSQL (`store_url`).
pub async fn share_partitions(
    store: Store,
    store_url: String,
    group: &'static str,
    node: String,
    partitions: u32,
    work: PartitionWork,
    shutdown: CancellationToken,
) {
    let key = partition_of(group, u32::MAX) as i32;
    let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
    let mut conn: Option<sqlx::PgConnection> = None;
    // Where this node starts looking, so that processors starting together try different ones.
    let start = partition_of(&node, partitions);
    // Heard by the others before claiming anything: processors started together then share
    // from the start instead of the first taking everything and handing half back.
    if let Err(e) = heartbeat(&store, group, &node, 0).await {
        tracing::warn!(group, error = %e, "cluster heartbeat failed");
    }
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(HEARTBEAT) => {}
    }
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Work that ended by itself (a failure it could not ride out) gives its partition back.
        let ended: Vec<u32> = owned.iter().filter(|(_, o)| o.task.is_finished()).map(|(p, _)| *p).collect();
        for p in ended {
            owned.remove(&p);
            tracing::warn!(group, partition = p, "partition work ended: released");
            if let Some(c) = conn.as_mut() {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(key).bind(p as i32).execute(c).await;
            }
        }
        if conn.is_none() {
            match <sqlx::PgConnection as sqlx::Connection>::connect(&store_url).await {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!(group, error = %e, "partition locks: no connection"),
            }
        }
        // The locks live as long as this connection: if it failed, another processor may hold
        // our partitions already, so their work stops at once.
        let alive = match conn.as_mut() {
            Some(c) => sqlx::query("SELECT 1").execute(c).await.is_ok(),
            None => false,
        };
        if !alive {
            if !owned.is_empty() {
                tracing::warn!(group, partitions = owned.len(), "partition locks lost: stopping their work");
                stop_all(&mut owned).await;
            }
            conn = None;
        }
        // The fair share is `floor` or one more. A member below `floor` (one that just joined)
        // is given partitions: the others release theirs down to `floor` and leave free ones
        // to it. Otherwise every free partition is claimed at once, whatever the shares: those
        // of a processor that died are free as soon as its connection is gone, long before its
        // membership row expires.
        let (floor, others_wanting) = match heartbeat(&store, group, &node, owned.len()).await {
            Ok(members) => {
                let floor = (partitions as usize) / members.len().max(1);
                let wanting = members.iter().any(|(n, held)| *n != node && (*held as usize) < floor);
                (floor, wanting)
            }
            Err(e) => {
                tracing::warn!(group, error = %e, "cluster heartbeat failed");
                (owned.len(), false)
            }
        };
        if let Some(c) = conn.as_mut() {
            if others_wanting && owned.len() > floor {
                // Down to the share at once: each partition's work stops (and saves) in
                // parallel, then the locks go.
                let excess: Vec<(u32, Owned)> = (floor..owned.len()).filter_map(|_| owned.pop_last()).collect();
                for (_, o) in &excess {
                    o.stop.cancel();
                }
                for (p, o) in excess {
                    let _ = o.task.await;
                    let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                        .bind(key)
                        .bind(p as i32)
                        .execute(&mut *c)
                        .await;
                    tracing::info!(group, partition = p, "partition released to another processor");
                }
            }
            // While another member is short of its share, this one takes nothing beyond its own.
            let room = if others_wanting { floor.saturating_sub(owned.len()) } else { partitions as usize };
            if room > 0 {
                let held: Vec<i32> = owned.keys().map(|p| *p as i32).collect();
                // Free partitions, this node's starting point first; locked as they are read.
                let got: Result<Vec<i32>, _> = sqlx::query_scalar(
                    "SELECT p FROM (SELECT p FROM generate_series(0, $2 - 1) AS p WHERE p <> ALL($3) \
                     ORDER BY (p - $4 + $2) % $2 LIMIT $5) AS candidates WHERE pg_try_advisory_lock($1, p)",
                )
                .bind(key)
                .bind(partitions as i32)
                .bind(&held)
                .bind(start as i32)
                .bind(room as i64)
                .fetch_all(&mut *c)
                .await;
                match got {
                    Ok(claimed) => {
                        for p in claimed {
                            let p = p as u32;
                            let stop = shutdown.child_token();
                            let task = tokio::spawn(work(p, stop.clone()));
                            owned.insert(p, Owned { stop, task });
                            tracing::info!(group, partition = p, "partition claimed");
                        }
                    }
                    Err(e) => tracing::warn!(group, error = %e, "partition locks not taken"),
                }
            }
        }
        metrics::gauge!("wuqing_cluster_partitions_owned", "group" => group).set(owned.len() as f64);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    stop_all(&mut owned).await;
    // The locks go with the connection; the row, so that the others take the share at once.
    drop(conn);
    let _ = sqlx::query(&store.sql("DELETE FROM cluster_members WHERE group_name = $1 AND node = $2"))
        .bind(group)
        .bind(node.as_str())
        .execute(store.reader())
        .await;
}

async fn stop_all(owned: &mut BTreeMap<u32, Owned>) {
    for o in owned.values() {
        o.stop.cancel();
    }
    for (_, o) in std::mem::take(owned) {
        let _ = o.task.await;
    }
}

/// Says this node is alive in `group`; returns the live members with the partitions each holds.
async fn heartbeat(
    store: &Store,
    group: &str,
    node: &str,
    owned: usize,
) -> crate::store::StoreResult<Vec<(String, i64)>> {
    sqlx::query(&store.sql(
        "INSERT INTO cluster_members (group_name, node, seen_ms, partitions) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_name, node) DO UPDATE SET seen_ms = excluded.seen_ms, partitions = excluded.partitions",
    ))
    .bind(group)
    .bind(node)
    .bind(now_ms())
    .bind(owned as i64)
    .execute(store.reader())
    .await?;
    members(store, group).await
}

/// The members of `group` seen lately: (node, partitions held), for the status page.
pub async fn members(store: &Store, group: &str) -> crate::store::StoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        &store.sql("SELECT node, partitions FROM cluster_members WHERE group_name = $1 AND seen_ms > $2 ORDER BY node"),
    )
    .bind(group)
    .bind(now_ms() - MEMBER_TTL_MS)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(|r| Ok((crate::store::col(r, "node")?, crate::store::col(r, "partitions")?))).collect()
}

/// Whether the periodic job `name` is due and this node is to run it: true for one caller per
/// period `every` across every node of the deployment (the first to move the job's last run
/// forward), false for the others. Hourly housekeeping on several processors is thus done once;
/// on a single server it is simply the job's clock.
pub async fn due(store: &Store, name: &str, node: &str, every: Duration) -> crate::store::StoreResult<bool> {
    let now = now_ms();
    sqlx::query(
        &store.sql("INSERT INTO cluster_jobs (name, last_ms, node) VALUES ($1, 0, '') ON CONFLICT (name) DO NOTHING"),
    )
    .bind(name)
    .execute(store.reader())
    .await?;
    // Nine tenths of the period: a node whose timer fires a little early still gets its turn.
    let before = now - (every.as_millis() as i64) * 9 / 10;
    let mut tx = store.begin().await?;
    let n = sqlx::query(&store.sql("UPDATE cluster_jobs SET last_ms = $1, node = $2 WHERE name = $3 AND last_ms < $4"))
        .bind(now)
        .bind(node)
        .bind(name)
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// Marks the job `name` done for good: [`due`] is false for it from now on, on every node. For
/// one-off jobs (a day's checks: `due` with the job's day in its name and a lease as period,
/// so that another node takes over if the first fails or dies before it is done).
pub async fn finished(store: &Store, name: &str) -> crate::store::StoreResult<()> {
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql("UPDATE cluster_jobs SET last_ms = $1 WHERE name = $2"))
        .bind(FINISHED_MS)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the job `name` was marked [`finished`].
pub async fn is_finished(store: &Store, name: &str) -> crate::store::StoreResult<bool> {
    let last: Option<i64> = sqlx::query_scalar(&store.sql("SELECT last_ms FROM cluster_jobs WHERE name = $1"))
        .bind(name)
        .fetch_optional(store.reader())
        .await?;
    Ok(last == Some(FINISHED_MS))
}

/// `last_ms` of a finished job: later than any period reaches.
const FINISHED_MS: i64 = i64::MAX / 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the reference test vector).
        assert_eq!(partition_of("a", u32::MAX), (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32);
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[partition_of(&uuid::Uuid::now_v7().to_string(), 16) as usize] += 1;
            let _ = i;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
        assert_eq!(partition_of("x", 1), 0);
    }
}
