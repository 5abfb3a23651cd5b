//! Payload decoders: bytes a device published → samples. The platform's own convention
//! (`wuqing-json`) and SenML JSON (RFC 8428) are built in; a vendor's format is one more
//! [`Decoder`] in [`DECODERS`], chosen per device by its `format`.
//!
//! # The `wuqing-json` convention
//! One message is a JSON object, or an array of them (a batch, oldest first is not required):
//!
//! ```json
//! {"ts": 1764489600000, "readings": {"temperature": 4.2, "humidity": 71}}
//! ```
//!
//! - `ts`: when the device measured, Unix milliseconds or an RFC 3339 string; absent, the
//!   time of receipt.
//! - `readings`: metric → finite number. Metric names are 1–64 of `a-z 0-9 _ .`
//!   (`temperature`, `bp_systolic`, `pm25`, `water_level`); the unit follows from the name and is
//!   documented with each sensor rule.
//!
//! Bounds, so that one device cannot exhaust the server: at most [`MAX_PAYLOAD`] bytes and
//! [`MAX_SAMPLES`] samples per message; device times from 2000 up to five minutes ahead of the
//! server clock.

use serde_json::Value;

/// Largest payload accepted, bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Most samples in one message.
pub const MAX_SAMPLES: usize = 500;
/// Earliest device time accepted: 2000-01-01T00:00:00Z.
const MIN_MS: i64 = 946_684_800_000;
/// Device clocks may run this far ahead of the server's.
const FUTURE_MS: i64 = 5 * 60_000;

/// One measured value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub metric: String,
    /// Device time, Unix ms (UTC).
    pub device_ms: i64,
    pub value: f64,
}

/// Why a payload was refused (the message names the place, never echoes the payload).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is larger than {MAX_PAYLOAD} bytes")]
    TooLarge,
    #[error("payload is not JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("more than {MAX_SAMPLES} samples")]
    TooMany,
    #[error("no samples")]
    Empty,
    #[error("metric {0:?}: 1 to 64 of a-z, 0-9, '_', '.'")]
    Metric(String),
    #[error("{0}: not a finite number")]
    Value(String),
    #[error("{0}: device time out of range (2000 up to 5 minutes ahead)")]
    Time(String),
}

/// A payload format.
pub trait Decoder: Send + Sync {
    /// The name devices are registered with (`format`).
    fn name(&self) -> &'static str;
    /// Decodes one message received at `received_ms`.
    fn decode(&self, payload: &[u8], received_ms: i64) -> Result<Vec<Sample>, DecodeError>;
}

/// The built-in decoders.
pub static DECODERS: &[&dyn Decoder] = &[&WuqingJson, &SenMl];

/// The decoder of a format, if there is one.
pub fn decoder(format: &str) -> Option<&'static dyn Decoder> {
    DECODERS.iter().copied().find(|d| d.name() == format)
}

/// The names of the built-in formats.
pub fn formats() -> Vec<&'static str> {
    DECODERS.iter().map(|d| d.name()).collect()
}

/// Whether a metric name is acceptable.
pub fn valid_metric(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 64
        && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

fn parse(payload: &[u8]) -> Result<Value, DecodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge);
    }
    serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))
}

fn check_time(at: &str, ms: i64, received_ms: i64) -> Result<i64, DecodeError> {
    if ms < MIN_MS || ms > received_ms.saturating_add(FUTURE_MS) {
        return Err(DecodeError::Time(at.to_string()));
    }
    Ok(ms)
}

fn push(out: &mut Vec<Sample>, metric: &str, device_ms: i64, v: &Value, at: &str) -> Result<(), DecodeError> {
    if !valid_metric(metric) {
        return Err(DecodeError::Metric(metric.chars().take(64).collect()));
    }
    let value = v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| DecodeError::Value(at.to_string()))?;
    if out.len() >= MAX_SAMPLES {
        return Err(DecodeError::TooMany);
    }
    out.push(Sample { metric: metric.to_string(), device_ms, value });
    Ok(())
}

/// The platform's own JSON convention (see the module documentation).
pub struct WuqingJson;

impl WuqingJson {
    fn entry(v: &Value, at: &str, received_ms: i64, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
        let Value::Object(o) = v else {
            return Err(DecodeError::Shape(format!("{at}: expected an object with \"readings\"")));
        };
        for k in o.keys() {
            if k != "ts" && k != "readings" {
                return Err(DecodeError::Shape(format!(
                    "{at}: unknown field {:?}",
                    k.chars().take(32).collect::<String>()
                )));
            }
        }
        let ms = match o.get("ts") {
            None | Some(Value::Null) => received_ms,
            Some(Value::Number(n)) => {
                let ms = n.as_i64().ok_or_else(|| DecodeError::Time(format!("{at}.ts")))?;
                check_time(&format!("{at}.ts"), ms, received_ms)?
            }
            Some(Value::String(s)) => {
                let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| DecodeError::Time(format!("{at}.ts")))?;
                let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                    .map_err(|_| DecodeError::Time(format!("{at}.ts")))?;
                check_time(&format!("{at}.ts"), ms, received_ms)?
            }
            Some(_) => return Err(DecodeError::Time(format!("{at}.ts"))),
        };
        let Some(Value::Object(readings)) = o.get("readings") else {
            return Err(DecodeError::Shape(format!("{at}.readings: expected an object of metric: number")));
        };
        for (metric, v) in readings {
            push(out, metric, ms, v, &format!("{at}.readings.{}", metric.chars().take(64).collect::<String>()))?;
        }
        Ok(())
    }
}

impl Decoder for WuqingJson {
    fn name(&self) -> &'static str {
        "wuqing-json"
    }

    fn decode(&self, payload: &[u8], received_ms: i64) -> Result<Vec<Sample>, DecodeError> {
        let v = parse(payload)?;
        let mut out = Vec::new();
        match &v {
            Value::Array(items) => {
                if items.len() > MAX_SAMPLES {
                    return Err(DecodeError::TooMany);
                }
                for (i, item) in items.iter().enumerate() {
                    Self::entry(item, &format!("[{i}]"), received_ms, &mut out)?;
                }
            }
            other => Self::entry(other, "$", received_ms, &mut out)?,
        }
        if out.is_empty() {
            return Err(DecodeError::Empty);
        }
        Ok(out)
    }
}

/// SenML JSON (RFC 8428): an array of records with `n` (name), `v` (value), `t` (time,
/// seconds) and the base fields `bn`, `bt`, `bv`. A record's time is `bt + t` (RFC 8428 §4.5.3:
/// values below 2³⁰ are relative to now, which is taken as the time of receipt). Names are
/// `bn + n`; the result must be a valid metric name, so base names such as `urn:dev:…` are
/// not supported (register the device instead). Only numeric values (`v`) are taken; `vs`,
/// `vb` and `vd` records are refused.
pub struct SenMl;

impl Decoder for SenMl {
    fn name(&self) -> &'static str {
        "senml-json"
    }

    fn decode(&self, payload: &[u8], received_ms: i64) -> Result<Vec<Sample>, DecodeError> {
        let Value::Array(records) = parse(payload)? else {
            return Err(DecodeError::Shape("$: a SenML pack is an array of records".into()));
        };
        if records.len() > MAX_SAMPLES {
            return Err(DecodeError::TooMany);
        }
        let (mut bn, mut bt, mut bv) = (String::new(), 0.0_f64, 0.0_f64);
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let at = format!("[{i}]");
            let Value::Object(o) = r else {
                return Err(DecodeError::Shape(format!("{at}: a record is an object")));
            };
            if let Some(b) = o.get("bn") {
                bn = b.as_str().ok_or_else(|| DecodeError::Shape(format!("{at}.bn: a string")))?.to_string();
            }
            if let Some(b) = o.get("bt") {
                bt = b.as_f64().filter(|f| f.is_finite()).ok_or_else(|| DecodeError::Time(format!("{at}.bt")))?;
            }
            if let Some(b) = o.get("bv") {
                bv = b.as_f64().filter(|f| f.is_finite()).ok_or_else(|| DecodeError::Value(format!("{at}.bv")))?;
            }
            if o.contains_key("vs") || o.contains_key("vb") || o.contains_key("vd") {
                return Err(DecodeError::Shape(format!("{at}: only numeric values (v) are taken")));
            }
            let Some(v) = o.get("v") else {
                if o.contains_key("n") {
                    return Err(DecodeError::Shape(format!("{at}: a named record needs a value v")));
                }
                continue; // a record of base fields only
            };
            let n = o.get("n").map(|n| n.as_str().unwrap_or("\u{0}")).unwrap_or("");
            let name = format!("{bn}{n}");
            let t = match o.get("t") {
                None => 0.0,
                Some(t) => t.as_f64().filter(|f| f.is_finite()).ok_or_else(|| DecodeError::Time(format!("{at}.t")))?,
            };
            let secs = bt + t;
            let ms =
                if secs.abs() < f64::from(1u32 << 30) { received_ms as f64 + secs * 1000.0 } else { secs * 1000.0 };
            if !ms.is_finite() || ms < MIN_MS as f64 || ms > (received_ms + FUTURE_MS) as f64 {
                return Err(DecodeError::Time(format!("{at}.t")));
            }
            let value = v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| DecodeError::Value(format!("{at}.v")))?;
            push(&mut out, &name, ms.round() as i64, &Value::from(bv + value), &format!("{at}.v"))?;
        }
        if out.is_empty() {
            return Err(DecodeError::Empty);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_764_489_600_000; // 2025-11-30T08:00:00Z

    #[test]
    fn one_object_and_a_batch() {
        let s = WuqingJson.decode(br#"{"ts": 1764489000000, "readings": {"temperature": 4.25, "humidity": 71}}"#, NOW);
        let s = s.unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().any(|x| x.metric == "temperature" && x.value == 4.25 && x.device_ms == 1_764_489_000_000));
        let b = WuqingJson
            .decode(br#"[{"ts": "2025-11-30T15:59:00+08:00", "readings": {"t": 1}}, {"readings": {"t": 2}}]"#, NOW)
            .unwrap();
        assert_eq!(b[0].device_ms, NOW - 60_000);
        assert_eq!(b[1].device_ms, NOW, "no ts: the time of receipt");
    }

    #[test]
    fn refusals_name_the_place() {
        let e = |p: &[u8]| WuqingJson.decode(p, NOW).unwrap_err().to_string();
        assert!(e(b"not json").contains("not JSON"));
        assert!(e(br#"{"readings": {"Temp": 1}}"#).contains("Temp"));
        assert!(e(br#"{"readings": {"t": "hot"}}"#).contains("$.readings.t"));
        assert!(e(br#"{"ts": 1, "readings": {"t": 1}}"#).contains("$.ts"));
        assert!(e(br#"{"ts": 1864489600000, "readings": {"t": 1}}"#).contains("out of range"), "far future");
        assert!(e(br#"{"readings": {}}"#).contains("no samples"));
        assert!(e(br#"{"reading": {"t": 1}}"#).contains("unknown field"));
        assert!(e(br#"[1]"#).contains("[0]"));
        let big = format!("[{}]", vec![r#"{"readings":{"t":1}}"#; MAX_SAMPLES + 1].join(","));
        assert!(e(big.as_bytes()).contains("more than"));
        assert_eq!(WuqingJson.decode(&vec![b' '; MAX_PAYLOAD + 1], NOW), Err(DecodeError::TooLarge));
    }

    /// RFC 8428 §5.1.2's example pack, with its names made metric names.
    #[test]
    fn senml_base_fields_and_relative_times() {
        let p = br#"[{"bn":"supply_","bt":1.276020076001e+09,"bv":0,"n":"voltage","v":120.1},
                    {"n":"current","t":-5,"v":1.2},{"n":"current","t":-4,"v":1.3}]"#;
        // Received at the pack's own time, so nothing lies in the future.
        let now_s = 1_276_020_076_001_i64;
        let s = SenMl.decode(p, now_s).unwrap();
        assert_eq!(s[0].metric, "supply_voltage");
        assert_eq!(s[0].device_ms, 1_276_020_076_001);
        assert_eq!(s[1].device_ms, 1_276_020_071_001);
        let rel = SenMl.decode(br#"[{"n":"temperature","v":21.5,"t":-60}]"#, NOW).unwrap();
        assert_eq!(rel[0].device_ms, NOW - 60_000, "a small time is relative to now");
        assert!(SenMl.decode(br#"[{"n":"door","vb":true}]"#, NOW).is_err());
        assert!(SenMl.decode(br#"{"n":"t","v":1}"#, NOW).is_err());
        assert!(SenMl.decode(br#"[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","v":23.1}]"#, NOW).is_err());
    }

    #[test]
    fn formats_are_found_by_name() {
        assert_eq!(decoder("wuqing-json").map(|d| d.name()), Some("wuqing-json"));
        assert_eq!(decoder("senml-json").map(|d| d.name()), Some("senml-json"));
        assert!(decoder("vendor-x").is_none());
    }

    proptest! {
        /// Arbitrary bytes never panic any decoder; accepted samples respect every bound.
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for d in DECODERS {
                if let Ok(s) = d.decode(&bytes, NOW) {
                    prop_assert!(!s.is_empty() && s.len() <= MAX_SAMPLES);
                    for x in s {
                        prop_assert!(valid_metric(&x.metric) && x.value.is_finite());
                        prop_assert!(x.device_ms >= MIN_MS && x.device_ms <= NOW + FUTURE_MS);
                    }
                }
            }
        }

        /// Well-formed messages decode to exactly their readings.
        #[test]
        fn round_trip(vals in proptest::collection::btree_map("[a-z][a-z0-9_]{0,10}", -1e6f64..1e6, 1..20), dt in 0i64..86_400_000) {
            let ts = NOW - dt;
            let body = serde_json::json!({"ts": ts, "readings": vals}).to_string();
            let s = WuqingJson.decode(body.as_bytes(), NOW).unwrap();
            prop_assert_eq!(s.len(), vals.len());
            for x in s {
                prop_assert_eq!(x.device_ms, ts);
                // serde_json's default float parsing may differ from the printed value in the last bit.
                let want = vals.get(&x.metric).copied().unwrap_or(f64::NAN);
                prop_assert!((x.value - want).abs() <= want.abs() * 1e-15, "{} != {}", x.value, want);
            }
        }
    }
}
