//! Telemetry: every device reading is an [`Observation`], published on the bus and stored as a
//! time series with range queries and a retention period.

use crate::store::{Store, StoreResult, col, days, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    /// A scalar reading (temperature °C, pressure mmHg, …; the unit follows from `kind`).
    Number { value: f64 },
    /// A WGS-84 position.
    Position { lat: f64, lon: f64 },
    /// Anything else, as JSON text (bounded by the ingest path).
    Json { json: String },
}

/// One reading from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Observation {
    /// The device or subject: a terminal phone number, a sensor id.
    pub source: String,
    /// e.g. `position`, `temperature`, `bp_systolic`.
    pub kind: String,
    /// When the device measured it (ms since the epoch, UTC).
    pub device_ms: i64,
    /// When the platform received it.
    pub received_ms: i64,
    pub value: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ObservationError {
    #[error("source must have 1 to 64 printable characters")]
    Source,
    #[error("kind must have 1 to 64 characters of a-z, 0-9, '_', '.'")]
    Kind,
    #[error("latitude or longitude out of range")]
    Position,
    #[error("value is not a finite number")]
    NotFinite,
}

impl Observation {
    /// Checks the invariants every store and rule relies on.
    pub fn validate(&self) -> Result<(), ObservationError> {
        if self.source.is_empty() || self.source.len() > 64 || !self.source.chars().all(|c| !c.is_control()) {
            return Err(ObservationError::Source);
        }
        if self.kind.is_empty()
            || self.kind.len() > 64
            || !self.kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(ObservationError::Kind);
        }
        match &self.value {
            Value::Number { value } if !value.is_finite() => Err(ObservationError::NotFinite),
            Value::Position { lat, lon } if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon) => {
                Err(ObservationError::Position)
            }
            _ => Ok(()),
        }
    }
}

/// Stores a batch in one transaction; returns once it is committed (durable). An observation
/// already stored (same source, kind and device time: a retransmission, a redelivery) is kept
/// as first stored.
pub async fn insert_batch(store: &Store, batch: &[Observation]) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    // Multi-row inserts, 100 rows (800 parameters) a statement: well inside both backends' limits.
    for chunk in batch.chunks(100) {
        let sql = format!(
            "INSERT INTO observations (source, kind, device_ms, received_ms, value, lat, lon, payload) VALUES {} \
             ON CONFLICT (source, kind, device_ms) DO NOTHING",
            store.values_placeholders(chunk.len(), 8)
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for o in chunk {
            let (v, lat, lon, payload) = match &o.value {
                Value::Number { value } => (Some(*value), None, None, None),
                Value::Position { lat, lon } => (None, Some(*lat), Some(*lon), None),
                Value::Json { json } => (None, None, None, Some(json.clone())),
            };
            q = q
                .bind(o.source.clone())
                .bind(o.kind.clone())
                .bind(o.device_ms)
                .bind(o.received_ms)
                .bind(v)
                .bind(lat)
                .bind(lon)
                .bind(payload);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    metrics::counter!("wuqing_observations_stored_total").increment(batch.len() as u64);
    Ok(())
}

/// Observations of `source` (optionally of one `kind`) with device time in `[from, to)`, oldest
/// first, at most `limit`.
pub async fn range(
    store: &Store,
    source: &str,
    kind: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Observation>> {
    let mut sql = String::from(
        "SELECT source, kind, device_ms, received_ms, value, lat, lon, payload FROM observations \
         WHERE source = $1 AND device_ms >= $2 AND device_ms < $3",
    );
    if kind.is_some() {
        sql.push_str(" AND kind = $5");
    }
    sql.push_str(" ORDER BY device_ms LIMIT $4");
    let sql = store.sql(&sql).into_owned();
    let mut q = sqlx::query(&sql).bind(source.to_string()).bind(from_ms).bind(to_ms).bind(limit);
    if let Some(k) = kind {
        q = q.bind(k.to_string());
    }
    let rows = q.fetch_all(store.reader()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let value =
            match (col::<Option<f64>>(r, "value")?, col::<Option<f64>>(r, "lat")?, col::<Option<f64>>(r, "lon")?) {
                (Some(v), _, _) => Value::Number { value: v },
                (None, Some(lat), Some(lon)) => Value::Position { lat, lon },
                _ => Value::Json { json: col::<Option<String>>(r, "payload")?.unwrap_or_default() },
            };
        out.push(Observation {
            source: col(r, "source")?,
            kind: col(r, "kind")?,
            device_ms: col(r, "device_ms")?,
            received_ms: col(r, "received_ms")?,
            value,
        });
    }
    Ok(out)
}

/// Deletes observations older than `retention_days`; returns how many went. On PostgreSQL the
/// table is partitioned by UTC day: whole days past the retention are dropped (counted as
/// such, not by row), the partitions of the coming days are created ahead of the data, and
/// what remains older (the default partition, the day the cutoff falls in) is deleted by row.
pub async fn purge(store: &Store, retention_days: u32) -> StoreResult<u64> {
    let now = now_ms();
    let cutoff = now - i64::from(retention_days) * days::DAY_MS;
    let today = now.div_euclid(days::DAY_MS);
    days::create(store, "observations", today..=today + 2).await;
    let dropped = days::drop_before(store, "observations", cutoff).await?;
    if !dropped.is_empty() {
        tracing::info!(days = dropped.len(), retention_days, "observation days dropped");
    }
    let mut tx = store.begin().await?;
    let r =
        sqlx::query(&store.sql("DELETE FROM observations WHERE device_ms < $1")).bind(cutoff).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(r.rows_affected())
}
