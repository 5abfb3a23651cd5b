//! The processor of a scaled-out platform (`bus.url` set, role `processor`): the positions the
//! gateways put on the JetStream stream ([`crate::writer::STREAM`]) are stored and run through
//! the transport rules here, one partition of vehicles at a time (`kernel::cluster`).
//!
//! For each partition it holds, a processor
//! 1. takes the partition's durable consumer over (delivery resumes at the first message not
//!    acknowledged, in stream order),
//! 2. restores the partition's rules state (`transport_rules_state`, row 1000 + partition) and
//!    replays the positions of its vehicles stored after it ([`alerting::catch_up`]): what the
//!    previous owner committed but never acknowledged, or whose alarms it never recorded,
//! 3. then, batch by batch: commits the positions (idempotent by vehicle and device time, so a
//!    redelivered one is stored once), announces them on the bus (API nodes' live map and
//!    streams), runs them through the engine, records the alarms (one per episode), and only
//!    then acknowledges the messages to JetStream,
//! 4. saves the state every minute and when the partition is released (shutdown, rebalance),
//!    so that the next owner starts from it.
//!
//! A message that cannot be read is terminated (logged, never redelivered); a store that fails
//! is retried with back-off while the messages are kept (their acknowledgement deadline pushed
//! back), so JetStream holds the positions until the store is back.

use crate::alerting::{self, Intervals, VehicleInfo};
use crate::gateway::Connections;
use crate::live::LiveMap;
use crate::positions::Position;
use crate::writer::{OnStream, STREAM};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message as JsMessage;
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::now_ms;
use kernel::versioned;
use rules::Engine;
use std::collections::HashMap;

/// The group of processors sharing the position partitions (`cluster_members`).
pub const GROUP: &str = "transport.positions";
/// Messages taken into one commit at most.
const BATCH: usize = 1000;
/// Row of `transport_rules_state` holding partition `p`'s state: `PARTITION_STATE + p`.
const PARTITION_STATE: i64 = 1000;

/// Runs the processor role until `shutdown`: shares the partitions with the other processors
/// and processes those it holds.
pub async fn run(
    state: AppState,
    live: LiveMap,
    connections: Connections,
    alerting: bool,
    every: Intervals,
    shutdown: CancellationToken,
) {
    let Some(cluster) = state.cluster.clone() else { return };
    let work: kernel::cluster::PartitionWork = {
        let state = state.clone();
        std::sync::Arc::new(move |p, stop| {
            let (state, live, connections) = (state.clone(), live.clone(), connections.clone());
            Box::pin(async move { partition(state, live, connections, p, alerting, every, stop).await })
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

/// Processes partition `p` until `stop`; returns once its state is saved. Returns early (and
/// the partition is released, to be claimed again) if the stream or the consumer cannot be had.
async fn partition(
    state: AppState,
    live: LiveMap,
    connections: Connections,
    p: u32,
    alerting: bool,
    every: Intervals,
    stop: CancellationToken,
) {
    let Some(cluster) = state.cluster.clone() else { return };
    let mut messages = match cluster.partition_messages(STREAM, p).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "position partition not taken");
            return;
        }
    };
    let store = &state.store;
    let mut published = state.bus.subscribe(&versioned::subject(crate::rules_api::DOCUMENT)).ok();
    let mut seen = None;
    let rules = alerting::newer_rules(store, &mut seen).await.unwrap_or_default();
    let row = PARTITION_STATE + i64::from(p);
    let (mut engine, saved_ms) = alarms::engines::restore_at(store, alerting::STATE_TABLE, row, rules).await;
    let mut vehicles: HashMap<String, Option<VehicleInfo>> = HashMap::new();
    let partitions = cluster.partitions;
    if alerting {
        let mine = |v: &str| kernel::cluster::partition_of(v, partitions) == p;
        match alerting::catch_up(store, &mut engine, &mut vehicles, saved_ms, mine).await {
            Ok((events, n_vehicles, n_fixes)) => {
                tracing::info!(
                    partition = p,
                    vehicles = n_vehicles,
                    fixes = n_fixes,
                    events = events.len(),
                    "partition rules caught up with stored positions"
                );
                alerting::record(&state, &connections, &vehicles, events).await;
            }
            Err(e) => tracing::warn!(partition = p, error = %e, "partition rules did not catch up"),
        }
    }
    let mut tick = tokio::time::interval(every.tick);
    let mut save = tokio::time::interval(every.save);
    save.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            batch = kernel::cluster::next_batch(&mut messages, BATCH) => {
                let Some(batch) = batch else {
                    tracing::warn!(partition = p, "position consumer ended");
                    break;
                };
                if !process(&state, &live, &connections, alerting, &mut engine, &mut vehicles, batch, &stop).await {
                    break;
                }
            }
            _ = tick.tick(), if alerting => {
                let events = engine.tick(now_ms());
                alerting::record(&state, &connections, &vehicles, events).await;
            }
            m = alarms::engines::next_or_never(&mut published) => {
                if m.is_none() {
                    published = None;
                }
                if let Some(rules) = alerting::newer_rules(store, &mut seen).await {
                    engine.set_rules(rules);
                }
            }
            _ = save.tick() => {
                if let Some(rules) = alerting::newer_rules(store, &mut seen).await {
                    engine.set_rules(rules);
                }
                if alerting {
                    if let Err(e) = alarms::engines::save_snapshot_at(store, alerting::STATE_TABLE, row, &engine).await {
                        tracing::warn!(partition = p, error = %e, "partition rules state not saved");
                    }
                }
                if let Err(e) = alerting::refresh(store, &mut engine, &mut vehicles).await {
                    tracing::warn!(error = %e, "vehicle profiles not re-read");
                }
            }
        }
    }
    if alerting {
        if let Err(e) = alarms::engines::save_snapshot_at(store, alerting::STATE_TABLE, row, &engine).await {
            tracing::warn!(partition = p, error = %e, "partition rules state not saved at release");
        }
    }
}

/// Stores a batch, runs it through the rules, then acknowledges it; `false` when `stop` came
/// before the batch was stored (it is left unacknowledged for the next owner).
#[allow(clippy::too_many_arguments)]
async fn process(
    state: &AppState,
    live: &LiveMap,
    connections: &Connections,
    alerting: bool,
    engine: &mut Engine,
    vehicles: &mut HashMap<String, Option<VehicleInfo>>,
    batch: Vec<JsMessage>,
    stop: &CancellationToken,
) -> bool {
    let mut positions: Vec<Position> = Vec::with_capacity(batch.len());
    let mut keep = Vec::with_capacity(batch.len());
    for m in batch {
        match serde_json::from_slice::<OnStream>(&m.payload)
            .map_err(|e| e.to_string())
            .and_then(OnStream::into_position)
        {
            Ok(p) => {
                positions.push(p);
                keep.push(m);
            }
            Err(e) => {
                metrics::counter!("wuqing_transport_stream_unreadable_total").increment(1);
                tracing::warn!(subject = %m.subject, error = %e, "position on the stream not understood: dropped");
                let _ = m.ack_with(AckKind::Term).await;
            }
        }
    }
    let stored = kernel::cluster::commit_held(&keep, stop, "positions", || async {
        crate::ingest::ingest(state, live, &positions).await.map(|_| ())
    })
    .await;
    if !stored {
        return false;
    }
    if alerting {
        let mut events = Vec::new();
        for p in &positions {
            if alerting::know(&state.store, engine, vehicles, &p.vehicle_id).await {
                events.extend(engine.observe_fix(&p.vehicle_id, alerting::fix_of(p)));
            }
        }
        alerting::record(state, connections, vehicles, events).await;
    }
    kernel::cluster::ack_all(&keep).await;
    metrics::counter!("wuqing_transport_stream_processed_total").increment(keep.len() as u64);
    true
}
