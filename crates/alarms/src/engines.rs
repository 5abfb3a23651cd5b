//! What every domain's rules task shares around the `rules` engine: its severities as the desk's,
//! and its state saved to and restored from the domain's one-row table, so that a restart keeps
//! driving clocks and open episodes.

use crate::model::Severity;
use kernel::bus::{Message, Subscription};
use kernel::store::{Store, StoreResult, col, now_ms};
use rules::{Engine, EngineSnapshot};

/// The engine's five severities are the desk's five.
pub fn severity(s: rules::Severity) -> Severity {
    match s {
        rules::Severity::Info => Severity::Notice,
        rules::Severity::Low => Severity::Minor,
        rules::Severity::Medium => Severity::Moderate,
        rules::Severity::High => Severity::Major,
        rules::Severity::Critical => Severity::Critical,
    }
}

/// The snapshot saved in `table` (`id BIGINT PRIMARY KEY, snapshot TEXT, saved_ms BIGINT`) and
/// when it was saved; `None` when there is none, or when it is of an older engine (logged: the
/// task starts afresh rather than not at all).
pub async fn load_snapshot(store: &Store, table: &'static str) -> StoreResult<Option<(EngineSnapshot, i64)>> {
    load_snapshot_at(store, table, 1).await
}

/// As [`load_snapshot`], of the row `id` (one per partition when scaled out).
pub async fn load_snapshot_at(
    store: &Store,
    table: &'static str,
    id: i64,
) -> StoreResult<Option<(EngineSnapshot, i64)>> {
    let row = sqlx::query(&store.sql(&format!("SELECT snapshot, saved_ms FROM {table} WHERE id = $1")))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = col(&row, "snapshot")?;
    let saved_ms: i64 = col(&row, "saved_ms")?;
    match serde_json::from_str(&text) {
        Ok(s) => Ok(Some((s, saved_ms))),
        Err(e) => {
            tracing::warn!(table, error = %e, "rules state not restored: starting with empty state");
            Ok(None)
        }
    }
}

/// The engine of `rules` with the state saved in `table` at row `id`, and when it was saved; a
/// fresh engine (logged) when there is none or it cannot be read.
pub async fn restore_at(store: &Store, table: &'static str, id: i64, rules: rules::RuleSet) -> (Engine, Option<i64>) {
    match load_snapshot_at(store, table, id).await {
        Ok(Some((s, saved))) => (Engine::restore(rules, s), Some(saved)),
        Ok(None) => (Engine::new(rules), None),
        Err(e) => {
            tracing::warn!(table, id, error = %e, "rules state not read: starting empty");
            (Engine::new(rules), None)
        }
    }
}

/// Saves the engine's state in `table`, replacing the previous snapshot.
pub async fn save_snapshot(store: &Store, table: &'static str, engine: &Engine) -> anyhow::Result<()> {
    save_snapshot_at(store, table, 1, engine).await
}

/// As [`save_snapshot`], in the row `id`.
pub async fn save_snapshot_at(store: &Store, table: &'static str, id: i64, engine: &Engine) -> anyhow::Result<()> {
    let text = serde_json::to_string(&engine.snapshot())?;
    let mut tx = store.begin().await?;
    sqlx::query(&store.sql(&format!(
        "INSERT INTO {table} (id, snapshot, saved_ms) VALUES ($3, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, saved_ms = excluded.saved_ms"
    )))
    .bind(text)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The next message of an optional subscription; never, when there is none (for `select!`).
pub async fn next_or_never(sub: &mut Option<Subscription>) -> Option<Message> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
