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
