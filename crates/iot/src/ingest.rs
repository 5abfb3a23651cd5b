//! The one path by which sensor readings enter: decoded samples are stored as kernel
//! observations (committed before this returns, so an acknowledgement after it means durable),
//! then published on the bus (`iot.reading.<code>`) for the sensor rules and anyone else.
//! Scaled out, "durable" is the JetStream stream's acknowledgement instead, and the processor
//! holding the device's partition stores and publishes ([`crate::processor`]).

use crate::payload::{DecodeError, Sample};
use crate::registry::Device;
use kernel::http::AppState;
use kernel::store::{StoreError, StoreResult, now_ms};
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

/// The stream of readings from gateways to processors (scale-out, `kernel::cluster`).
pub const STREAM: &str = "readings";

impl Published {
    /// One message of `device`, received now.
    pub fn of(device: &Device, received_ms: i64, samples: Vec<Sample>) -> Self {
        Published {
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
        }
    }

    /// The message's samples as kernel observations (source = the device's code).
    pub fn observations(&self) -> impl Iterator<Item = Observation> + '_ {
        self.samples.iter().map(|s| Observation {
            source: self.code.clone(),
            kind: s.metric.clone(),
            device_ms: s.device_ms,
            received_ms: self.received_ms,
            value: Value::Number { value: s.value },
        })
    }

    /// Its id in the stream's duplicate window: the device and its samples' times, so that a
    /// device's retransmission of the same message, through this gateway or another, is kept
    /// once.
    fn stream_id(&self) -> String {
        let first = self.samples.iter().map(|s| s.device_ms).min().unwrap_or(0);
        let last = self.samples.iter().map(|s| s.device_ms).max().unwrap_or(0);
        format!("{}:{first}:{last}:{}", self.device_id, self.samples.len())
    }
}

/// Accepts the samples of one message; on return they are durable. On a single server they are
/// stored, then published on the bus. Scaled out (`bus.url` set), they are put on the JetStream
/// stream of readings ([`STREAM`], partitioned by device) and the stream's acknowledgement is
/// the durability: a processor stores them and runs the rules ([`crate::processor`]), so a
/// gateway never waits on the database.
pub async fn accept(state: &AppState, device: &Device, samples: Vec<Sample>, via: Via) -> StoreResult<()> {
    let msg = Published::of(device, now_ms(), samples);
    let n = msg.samples.len() as u64;
    if let Some(cluster) = &state.cluster {
        let body = serde_json::to_vec(&msg).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        cluster
            .publish_all(STREAM, [(msg.device_id.clone(), msg.stream_id(), body)])
            .await
            .map_err(|e| StoreError::Unavailable(format!("jetstream: {e}")))?;
        metrics::counter!("wuqing_iot_samples_streamed_total", "via" => via.as_str()).increment(n);
        return Ok(());
    }
    store(state, std::slice::from_ref(&msg)).await?;
    metrics::counter!("wuqing_iot_samples_stored_total", "via" => via.as_str()).increment(n);
    announce(state, &msg).await;
    Ok(())
}

/// Stores the samples of `batch` in one transaction (durable on return; a sample already stored
/// is kept once).
pub async fn store(state: &AppState, batch: &[Published]) -> StoreResult<()> {
    let obs: Vec<Observation> = batch.iter().flat_map(Published::observations).collect();
    telemetry::insert_batch(&state.store, &obs).await
}

/// Publishes a stored message on the bus (`iot.reading.<code>`) for the sensor rules of a single
/// server, the health records' monitoring, and anyone else.
pub async fn announce(state: &AppState, msg: &Published) {
    match serde_json::to_vec(msg) {
        Ok(bytes) => {
            if let Err(e) = state.bus.publish(&format!("iot.reading.{}", msg.code), bytes.into()).await {
                tracing::warn!(error = %e, "stored readings not published on the bus");
            }
        }
        Err(e) => tracing::warn!(error = %e, "stored readings not serialised for the bus"),
    }
}
