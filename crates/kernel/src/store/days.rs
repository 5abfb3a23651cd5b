//! Tables partitioned by UTC day on PostgreSQL (`PARTITION BY RANGE (device_ms)`, a default
//! partition for anything outside the days created): positions, observations. The partition of
//! day `d` (days since the epoch) is `<table>_d<d>`. Retention drops whole partitions, which
//! costs nothing however many rows they hold, instead of deleting rows one by one.
//!
//! Table names come from code, never from input.

use super::{Backend, Store, StoreResult, col};
use std::ops::RangeInclusive;

/// One UTC day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The partition of `table` holding UTC day `day`.
pub fn partition_name(table: &str, day: i64) -> String {
    format!("{table}_d{day}")
}

/// Creates the partitions of `days` that do not exist yet (PostgreSQL; nothing on SQLite). A
/// day whose rows already sit in the default partition (a device clock far off) cannot get its
/// own partition: logged, and its rows stay where they are.
pub async fn create(store: &Store, table: &str, days: RangeInclusive<i64>) {
    if store.backend() != Backend::Postgres {
        return;
    }
    for d in days {
        let name = partition_name(table, d);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM ({}) TO ({})",
            d * DAY_MS,
            (d + 1) * DAY_MS
        );
        if let Err(e) = sqlx::query(&sql).execute(store.reader()).await {
            tracing::warn!(partition = %name, error = %e, "could not create a day partition");
        }
    }
}

/// Whether the partition of `day` exists.
pub async fn exists(store: &Store, table: &str, day: i64) -> StoreResult<bool> {
    if store.backend() != Backend::Postgres {
        return Ok(false);
    }
    let name = partition_name(table, day);
    Ok(sqlx::query_scalar(&format!("SELECT to_regclass('{name}') IS NOT NULL")).fetch_one(store.reader()).await?)
}

/// Drops the day partitions of `table` that end at or before `cutoff_ms`; returns their days.
pub async fn drop_before(store: &Store, table: &str, cutoff_ms: i64) -> StoreResult<Vec<i64>> {
    if store.backend() != Backend::Postgres {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
    )
    .bind(table)
    .fetch_all(store.reader())
    .await?;
    let prefix = format!("{table}_d");
    let mut dropped = Vec::new();
    for r in rows {
        let name: String = col(&r, "name")?;
        let Some(day) = name.strip_prefix(&prefix).and_then(|d| d.parse::<i64>().ok()) else { continue };
        if (day + 1) * DAY_MS <= cutoff_ms {
            sqlx::query(&format!("DROP TABLE IF EXISTS {name}")).execute(store.reader()).await?;
            tracing::info!(partition = %name, "day partition dropped by retention");
            dropped.push(day);
        }
    }
    Ok(dropped)
}
