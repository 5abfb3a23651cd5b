//! A probe terminal: one connection that sends the fixes it is told to and waits for each
//! 0x8001, for latency measurements (`crates/transport/examples/alarm_latency.rs`).

use crate::terminal::{Link, SimError};
use jt808::Message;
use jt808::location::{AlarmFlags, DeciKmh, Heading, Location, LocationFix, MicroDegrees, StatusFlags};
use jt808::time::UtcTime;
use std::net::SocketAddr;
use std::time::Duration;

/// One registered and authenticated terminal.
pub struct Probe {
    link: Link,
}

impl Probe {
    /// Connects as `phone` (2013 edition), registers and authenticates.
    pub async fn connect(gateway: SocketAddr, phone: &str) -> Result<Self, SimError> {
        let mut link = Link::open(gateway, None, phone, false, 4096).await?;
        let mut code = None;
        link.handshake(phone, false, "", &mut code).await?;
        Ok(Self { link })
    }

    /// Sends a fixed, ACC-on report at device time `t_s` (Unix seconds) and waits for the
    /// platform's acknowledgement (which the gateway sends once the report is stored).
    pub async fn report(&mut self, t_s: i64, lat: f64, lon: f64, speed_kmh: f64) -> Result<(), SimError> {
        let loc = Location::new(LocationFix {
            alarm: AlarmFlags::empty(),
            status: StatusFlags::POSITIONED | StatusFlags::ACC_ON,
            latitude: MicroDegrees((lat * 1e6).round() as i32),
            longitude: MicroDegrees((lon * 1e6).round() as i32),
            altitude_m: 5,
            speed: DeciKmh((speed_kmh * 10.0).round() as u16),
            heading: Heading(90),
            time: Some(UtcTime(t_s)),
        });
        let s = self.link.send(&Message::Location(loc)).await?;
        loop {
            match self.link.recv(Duration::from_secs(30)).await? {
                (_, Message::PlatformResponse(r)) if r.reply_serial == s => {
                    return if r.result == 0 { Ok(()) } else { Err(SimError::Refused("report")) };
                }
                _ => {}
            }
        }
    }
}

/// What a probe saw over a measurement.
#[derive(Debug, Default, Clone)]
pub struct ProbeReport {
    pub sent: u64,
    pub acked: u64,
    /// Reports not answered within the wait (the probe then reconnects).
    pub unanswered: u64,
    /// Connections made, the first included.
    pub connects: u64,
    /// Acknowledgement latency of every acknowledged report, milliseconds, in order.
    pub latencies_ms: Vec<f64>,
}

impl ProbeReport {
    /// The `q` quantile (0–1) of the latencies, nearest rank; `None` without any.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut v = self.latencies_ms.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// Reports every `interval` (a new device second each time) until `shutdown`, waiting at most
/// `wait` for each acknowledgement, reconnecting after a report is not answered or the link
/// fails: the acknowledgement latency a well-behaved terminal sees while others misbehave.
pub async fn measure(
    gateway: SocketAddr,
    phone: &str,
    interval: Duration,
    wait: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> ProbeReport {
    let mut r = ProbeReport::default();
    let mut probe: Option<Probe> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // Device times from a day ago upwards: distinct, never colliding with the probe's next run.
    let mut t = t0 - 86_400;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return r,
            _ = tick.tick() => {}
        }
        let p = match probe.as_mut() {
            Some(p) => p,
            None => {
                let connected = tokio::select! {
                    _ = shutdown.cancelled() => return r,
                    c = tokio::time::timeout(wait, Probe::connect(gateway, phone)) => c,
                };
                match connected {
                    Ok(Ok(p)) => {
                        r.connects += 1;
                        probe.insert(p)
                    }
                    _ => continue,
                }
            }
        };
        t += 1;
        let sent = std::time::Instant::now();
        r.sent += 1;
        let answered = tokio::select! {
            _ = shutdown.cancelled() => return r,
            a = tokio::time::timeout(wait, p.report(t, 39.38, 117.04, 40.0)) => a,
        };
        match answered {
            Ok(Ok(())) => {
                r.acked += 1;
                r.latencies_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            _ => {
                r.unanswered += 1;
                probe = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProbeReport;

    #[test]
    fn quantiles_are_nearest_rank() {
        let r = ProbeReport { latencies_ms: (1..=100).rev().map(f64::from).collect(), ..Default::default() };
        assert_eq!(r.quantile(0.5), Some(50.0));
        assert_eq!(r.quantile(0.99), Some(99.0));
        assert_eq!(r.quantile(1.0), Some(100.0));
        assert_eq!(r.quantile(0.0), Some(1.0));
        assert_eq!(ProbeReport::default().quantile(0.5), None);
    }
}
