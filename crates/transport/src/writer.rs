//! The group-commit writer of positions, shared by every connection of the gateway: one
//! transaction carries every report that arrived while the previous one was being written, and
//! each caller hears back only once its positions are committed.

use crate::ingest;
use crate::live::LiveMap;
use crate::positions::Position;
use kernel::http::AppState;
use kernel::store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

type Job = (Vec<Position>, oneshot::Sender<StoreResult<u64>>);

/// The group-commit writer of positions, shared by every connection.
#[derive(Clone)]
pub struct PositionWriter {
    tx: mpsc::Sender<Job>,
}

impl PositionWriter {
    /// Starts the writer; it ends when every handle is dropped.
    pub fn start(state: AppState, live: LiveMap) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(512);
            while rx.recv_many(&mut jobs, 512).await > 0 {
                let all: Vec<&Position> = jobs.iter().flat_map(|(p, _)| p.iter()).collect();
                let result = ingest::ingest(&state, &live, &all).await;
                metrics::histogram!("wuqing_jt808_commit_positions").record(all.len() as f64);
                for (_, reply) in jobs.drain(..) {
                    let r = match &result {
                        Ok(n) => Ok(*n),
                        Err(e) => Err(StoreError::Unavailable(e.to_string())),
                    };
                    let _ = reply.send(r);
                }
            }
        });
        Self { tx }
    }

    /// Stores positions; returns once they are committed.
    pub async fn write(&self, positions: Vec<Position>) -> StoreResult<u64> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((positions, reply))
            .await
            .map_err(|_| StoreError::Unavailable("position writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("position writer stopped".into()))?
    }
}
