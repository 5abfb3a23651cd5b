//! The supervision module's daily work, in Beijing days: the expiry notices (`expiry::notify`),
//! the escalation of overdue hazards (`hazards::escalate`) and the flags of missing monthly
//! archives (`archives::flag_missing`). Run at start and then once per
//! local day (checked hourly); a day whose work failed is tried again an hour later. Each job is
//! idempotent, so a restart or a second node repeats nothing.

use crate::dates::{midnight_ms, today_days};
use kernel::http::AppState;
use kernel::platform::CancellationToken;
use kernel::store::now_ms;
use std::time::Duration;

/// Every daily job for `today`; the first failure is reported after all have run.
pub async fn run_once(st: &AppState, today: i64) -> anyhow::Result<()> {
    let mut first_err = None;
    if let Err(e) = crate::expiry::notify(st, today).await {
        tracing::warn!(error = %e, "expiry notices not raised");
        first_err.get_or_insert(e);
    }
    if let Err(e) = crate::hazards::escalate(st, today).await {
        tracing::warn!(error = %e, "overdue hazards not escalated");
        first_err.get_or_insert(e);
    }
    if let Err(e) = crate::archives::flag_missing(st, today).await {
        tracing::warn!(error = %e, "missing monthly archives not flagged");
        first_err.get_or_insert(e);
    }
    first_err.map_or(Ok(()), Err)
}

/// The task, until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut done: Option<i64> = None;
    loop {
        let today = today_days();
        if done != Some(today) {
            // One processor does a day's work (`kernel::cluster`): the first to take the day's
            // lease; if it fails or dies, another takes the lease an hour later.
            let job = format!("supervision.daily.{today}");
            let lease = Duration::from_secs(3600);
            match kernel::cluster::due(&state.store, &job, &state.config.node, lease).await {
                Ok(true) => {
                    if run_once(&state, today).await.is_ok() {
                        match kernel::cluster::finished(&state.store, &job).await {
                            Ok(()) => done = Some(today),
                            Err(e) => tracing::warn!(error = %e, "daily checks done but not marked done"),
                        }
                    }
                }
                Ok(false) => {
                    if kernel::cluster::is_finished(&state.store, &job).await.unwrap_or(false) {
                        done = Some(today);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "daily checks not scheduled"),
            }
        }
        let to_midnight = midnight_ms(today_days() + 1) - now_ms() + 60_000;
        let wait = Duration::from_millis(to_midnight.clamp(1_000, 3_600_000) as u64);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
