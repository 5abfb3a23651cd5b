//! The one path by which positions enter: stored (committed) first, then the live state and the
//! bus see them. A caller that acknowledges a terminal does so after this returns.

use crate::live::LiveMap;
use crate::positions::{self, Position};
use kernel::http::AppState;
use kernel::store::StoreResult;
use serde::Serialize;
use std::borrow::Borrow;
use std::sync::Arc;

/// What goes on the bus for each stored position.
#[derive(Serialize)]
struct Published<'a> {
    vehicle_id: &'a str,
    position: &'a Position,
}

/// Bus subject of a vehicle's positions: `transport.position.<vehicle id>`.
pub fn subject(vehicle_id: &str) -> String {
    format!("transport.position.{vehicle_id}")
}

/// Stores a batch durably, then updates the live state and publishes each position. Returns how
/// many were new (retransmissions are counted once).
pub async fn ingest<P: Borrow<Position>>(state: &AppState, live: &LiveMap, batch: &[P]) -> StoreResult<u64> {
    let n = positions::store_batch(&state.store, batch).await?;
    for p in batch {
        let p: &Position = p.borrow();
        live.update_position(p);
        if let Ok(json) = serde_json::to_vec(&Published { vehicle_id: &p.vehicle_id, position: p }) {
            if let Err(e) = state.bus.publish(&subject(&p.vehicle_id), Arc::from(json)).await {
                tracing::warn!(error = %e, "position not published");
            }
        }
    }
    Ok(n)
}
