//! The one path by which sensor readings enter: decoded samples are stored as kernel
//! observations (committed before this returns, so an acknowledgement after it means durable),
//! then published on the bus (`iot.reading.<code>`) for the sensor rules and anyone else.

use crate::payload::{DecodeError, Sample};
use crate::registry::Device;
use kernel::http::AppState;
use kernel::store::{StoreResult, now_ms};
use kernel::telemetry::{self, Observation, Value};
use serde::{Deserialize, Serialize};

/// What the bus carries for each stored message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub device_id: String,
    pub code: String,
    pub org_id: String,
    pub kind: String,
    pub name: String,
    /// `cold_store`, `patient`, … (see `registry::SubjectType`).
    pub subject_type: String,
    /// Whom or what it is bound to: a patient's id in the health records, for a patient.
    #[serde(default)]
    pub subject_id: String,
    pub subject_label: String,
    /// When the platform stored them (the observations' `received_ms`).
    #[serde(default)]
    pub received_ms: i64,
    pub samples: Vec<Sample>,
}

/// Where a message came from, for the counters.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Mqtt,
    Broker,
    Http,
    Demo,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Mqtt => "mqtt",
            Via::Broker => "broker",
            Via::Http => "http",
            Via::Demo => "demo",
        }
    }
}

/// Decodes a payload with the device's format.
pub fn decode(device: &Device, payload: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    let d = crate::payload::decoder(&device.format)
        .ok_or_else(|| DecodeError::Shape(format!("no decoder for format {:?}", device.format)))?;
    d.decode(payload, now_ms())
}

/// Counts and logs a refused message (never its payload: it may carry personal data).
pub fn refused(via: Via, code: &str, reason: &str) {
    metrics::counter!("wuqing_iot_messages_refused_total", "via" => via.as_str(), "reason" => reason.to_string())
        .increment(1);
    tracing::warn!(via = via.as_str(), device = code, reason, "sensor message refused");
}

/// Stores the samples of one message (durable on return), then publishes them.
pub async fn accept(state: &AppState, device: &Device, samples: Vec<Sample>, via: Via) -> StoreResult<()> {
    let received_ms = now_ms();
    let obs: Vec<Observation> = samples
        .iter()
        .map(|s| Observation {
            source: device.code.clone(),
            kind: s.metric.clone(),
            device_ms: s.device_ms,
            received_ms,
            value: Value::Number { value: s.value },
        })
        .collect();
    telemetry::insert_batch(&state.store, &obs).await?;
    metrics::counter!("wuqing_iot_samples_stored_total", "via" => via.as_str()).increment(obs.len() as u64);
    let msg = Published {
        device_id: device.id.clone(),
        code: device.code.clone(),
        org_id: device.org_id.clone(),
        kind: device.kind.clone(),
        name: device.name.clone(),
        subject_type: device.subject_type.as_str().to_string(),
        subject_id: device.subject_id.clone(),
        subject_label: device.subject_label.clone(),
        received_ms,
        samples,
    };
    match serde_json::to_vec(&msg) {
        Ok(bytes) => {
            if let Err(e) = state.bus.publish(&format!("iot.reading.{}", device.code), bytes.into()).await {
                tracing::warn!(error = %e, "stored readings not published on the bus");
            }
        }
        Err(e) => tracing::warn!(error = %e, "stored readings not serialised for the bus"),
    }
    Ok(())
}
