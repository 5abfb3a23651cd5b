//! The processor of a scaled-out platform (`bus.url` set, role `processor`) for sensor readings:
//! what the gateways put on the JetStream stream of readings ([`crate::ingest::STREAM`]) is
//! stored, published on the bus and run through the sensor rules here, one partition of devices
//! at a time (`kernel::cluster`), as the transport processor does for positions.
//!
//! For each partition it holds, a processor
//! 1. takes the partition's durable consumer over (delivery resumes at the first message not
//!    acknowledged, in stream order),
//! 2. restores the partition's rules state (`iot_rules_state`, row 1000 + partition) and
//!    replays the stored readings of its devices newer than the last the state holds of each
//!    (for a device the state does not know, from a while before it was saved) ([`catch_up`]),
//!    so that what the previous owner stored and acknowledged after its last save still counts
//!    towards an episode,
//! 3. then, batch by batch: commits the samples (idempotent by device, metric and device time),
//!    publishes them on the bus (`iot.reading.<code>`: the health records' monitoring, API
//!    nodes), runs them through the engine, records the alarms (one per episode), and only then
//!    acknowledges the messages to JetStream,
//! 4. saves the state every `save_every` and when the partition is released.

use crate::alerting::{self, Devices};
use crate::ingest::{Published, STREAM};
use alarms::engines;
use async_nats::jetstream::AckKind;
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::{Store, StoreResult, now_ms};
use kernel::versioned;
use rules::{Engine, Event, RuleSet};
use std::time::Duration;

/// The group of processors sharing the reading partitions (`cluster_members`).
pub const GROUP: &str = "iot.readings";
/// Messages taken into one commit at most.
const BATCH: usize = 500;
/// Row of `iot_rules_state` holding partition `p`'s state: `PARTITION_STATE + p`.
const PARTITION_STATE: i64 = 1000;
/// How far before the saved state the catch-up reads the stored readings of a device the state
/// does not know (a save every minute).
const CATCH_UP_BEFORE: Duration = Duration::from_secs(10 * 60);
/// Readings of one device replayed at most on catching up.
const CATCH_UP_MAX: i64 = 20_000;

/// Runs the processor role for readings until `shutdown`.
pub async fn run(state: AppState, rules: RuleSet, save_every: Duration, shutdown: CancellationToken) {
    let Some(cluster) = state.cluster.clone() else { return };
    let work: kernel::cluster::PartitionWork = {
        let state = state.clone();
        std::sync::Arc::new(move |p, stop| {
            let (state, rules) = (state.clone(), rules.clone());
            Box::pin(async move { partition(state, rules, save_every, p, stop).await })
        })
    };
    kernel::cluster::share_partitions(
        state.store.clone(),
        state.config.store_url.clone(),
        GROUP,
        cluster.node.clone(),
        cluster.partitions,
        work,
        shutdown,
    )
    .await;
}

/// Processes partition `p` until `stop`; returns once its state is saved.
async fn partition(state: AppState, rules: RuleSet, save_every: Duration, p: u32, stop: CancellationToken) {
    let Some(cluster) = state.cluster.clone() else { return };
    let mut messages = match cluster.partition_messages(STREAM, p).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "reading partition not taken");
            return;
        }
    };
    let store = &state.store;
    let mut published = state.bus.subscribe(&versioned::subject(crate::rules_api::DOCUMENT)).ok();
    let mut seen = None;
    let rules = alerting::newer_rules(store, &mut seen).await.unwrap_or(rules);
    let row = PARTITION_STATE + i64::from(p);
    let (mut engine, saved_ms) = engines::restore_at(store, alerting::STATE_TABLE, row, rules).await;
    let mut devices = Devices::new();
    let partitions = cluster.partitions;
    let mine = |d: &str| kernel::cluster::partition_of(d, partitions) == p;
    match catch_up(store, &mut engine, &mut devices, saved_ms, mine).await {
        Ok((events, n)) => {
            if n > 0 {
                tracing::info!(partition = p, readings = n, "partition sensor rules caught up with stored readings");
            }
            for (device, events) in events {
                alerting::record(&state, &devices, &device, events).await;
            }
        }
        Err(e) => tracing::warn!(partition = p, error = %e, "partition sensor rules did not catch up"),
    }
    let mut save = tokio::time::interval(save_every);
    save.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            batch = kernel::cluster::next_batch(&mut messages, BATCH) => {
                let Some(batch) = batch else {
                    tracing::warn!(partition = p, "reading consumer ended");
                    break;
                };
                if !process(&state, &mut engine, &mut devices, batch, &stop).await {
                    break;
                }
            }
            m = engines::next_or_never(&mut published) => {
                if m.is_none() {
                    published = None;
                }
                if let Some(r) = alerting::newer_rules(store, &mut seen).await {
                    engine.set_rules(r);
                }
            }
            _ = save.tick() => {
                if let Some(r) = alerting::newer_rules(store, &mut seen).await {
                    engine.set_rules(r);
                }
                if let Err(e) = engines::save_snapshot_at(store, alerting::STATE_TABLE, row, &engine).await {
                    tracing::warn!(partition = p, error = %e, "partition sensor rules state not saved");
                }
            }
        }
    }
    if let Err(e) = engines::save_snapshot_at(store, alerting::STATE_TABLE, row, &engine).await {
        tracing::warn!(partition = p, error = %e, "partition sensor rules state not saved at release");
    }
}

/// Stores a batch, announces it, runs it through the rules, then acknowledges it; `false` when
/// `stop` came before the batch was stored (it is left unacknowledged for the next owner).
async fn process(
    state: &AppState,
    engine: &mut Engine,
    devices: &mut Devices,
    batch: Vec<async_nats::jetstream::Message>,
    stop: &CancellationToken,
) -> bool {
    let mut msgs: Vec<Published> = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for m in batch {
        match serde_json::from_slice::<Published>(&m.payload) {
            Ok(p) => {
                msgs.push(p);
                keep.push(m);
            }
            Err(e) => {
                metrics::counter!("wuqing_iot_stream_unreadable_total").increment(1);
                tracing::warn!(subject = %m.subject, error = %e, "reading on the stream not understood: dropped");
                let _ = m.ack_with(AckKind::Term).await;
            }
        }
    }
    if !kernel::cluster::commit_held(&keep, stop, "readings", || crate::ingest::store(state, &msgs)).await {
        return false;
    }
    let samples: usize = msgs.iter().map(|m| m.samples.len()).sum();
    metrics::counter!("wuqing_iot_samples_stored_total", "via" => "stream").increment(samples as u64);
    for m in msgs {
        crate::ingest::announce(state, &m).await;
        let (device, events) = alerting::observe(engine, devices, m);
        alerting::record(state, devices, &device, events).await;
    }
    kernel::cluster::ack_all(&keep).await;
    true
}

/// Replays through `engine` the stored readings of the devices `mine` selects that are newer
/// than the newest it took of each (a device it does not know: from a while before the state
/// was saved); returns the events by device and how many readings were replayed.
async fn catch_up(
    store: &Store,
    engine: &mut Engine,
    devices: &mut Devices,
    saved_ms: Option<i64>,
    mine: impl Fn(&str) -> bool,
) -> StoreResult<(Vec<(String, Vec<Event>)>, usize)> {
    let from = saved_ms.unwrap_or_else(now_ms) - CATCH_UP_BEFORE.as_millis() as i64;
    let (mut out, mut n) = (Vec::new(), 0);
    let mut offset = 0;
    loop {
        let page = crate::registry::all_devices(store, 500, offset).await?;
        if page.is_empty() {
            return Ok((out, n));
        }
        offset += page.len() as i64;
        for d in page.iter().filter(|d| mine(&d.id)) {
            let from = engine.newest_reading_ms(&d.id).map_or(from, |n| n + 1);
            let stored = kernel::telemetry::range(store, &d.code, None, from, i64::MAX, CATCH_UP_MAX).await?;
            if stored.is_empty() {
                continue;
            }
            n += stored.len();
            let samples = stored
                .into_iter()
                .filter_map(|o| match o.value {
                    kernel::telemetry::Value::Number { value } => {
                        Some(crate::payload::Sample { metric: o.kind, device_ms: o.device_ms, value })
                    }
                    _ => None,
                })
                .collect();
            let (device, events) = alerting::observe(engine, devices, Published::of(d, now_ms(), samples));
            if !events.is_empty() {
                out.push((device, events));
            }
        }
    }
}
