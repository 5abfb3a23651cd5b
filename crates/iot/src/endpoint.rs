//! The platform's own MQTT endpoint for devices (MQTT 3.1.1), so that `serve --demo` needs no
//! broker and so that **a PUBACK means the reading is stored**: a general-purpose broker
//! acknowledges on receipt and keeps messages in memory, which would break that promise.
//!
//! What it does, and no more: a device connects with its code as user name and its secret as
//! password (CONNACK 4 otherwise; 5 when disabled), publishes to `<prefix>/<code>/telemetry` at
//! QoS 0, 1 or 2, pings, disconnects. A publish is decoded with the device's format, stored,
//! and only then acknowledged (PUBACK for QoS 1, PUBREC for QoS 2). A payload that cannot be
//! decoded is counted, logged and acknowledged (resending would not mend it); a store failure
//! closes the connection without an acknowledgement, so the device sends again. Publishing to
//! another topic closes the connection (MQTT 3.1.1 §3.3.5 leaves the server that choice).
//! Subscriptions are refused (SUBACK 0x80): there are no downlinks yet. A second connection of
//! the same device takes over and closes the first (§3.1.4). Retained messages and wills are
//! not kept.
//!
//! Each connection is its own task: a misbehaving device (garbage, oversized packets, silence
//! past its keep-alive) loses its own connection and nothing else.

use crate::ingest::{self, Via};
use crate::registry::{DeviceCache, Refusal};
use bytes::BytesMut;
use kernel::http::AppState;
use rumqttc::mqttbytes::v4::{self, ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, SubAck, UnsubAck};
use rumqttc::mqttbytes::{self, QoS};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest MQTT packet accepted (a payload bound plus its topic and header).
pub const MAX_PACKET: usize = crate::payload::MAX_PAYLOAD + 1024;
/// Time allowed between accepting a connection and its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence allowed when the device asked for no keep-alive.
const IDLE_MAX: Duration = Duration::from_secs(30 * 60);
/// Most devices connected at once.
const MAX_CONNECTIONS: usize = 20_000;

/// Shared by the endpoint's connections.
#[derive(Clone)]
pub struct Endpoint {
    state: AppState,
    devices: DeviceCache,
    prefix: String,
    /// Open sessions by device code, for take-over.
    sessions: Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// Binds the endpoint. A busy port or a bad address is logged and the platform runs on
/// without it (`None`).
pub async fn bind(listen: &str) -> Option<TcpListener> {
    if listen == "off" {
        return None;
    }
    match TcpListener::bind(listen).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(listen, error = %e,
                "MQTT device endpoint not started (set [mqtt] listen to a free address, or off)");
            None
        }
    }
}

/// The TLS acceptor of the server's certificate and key (`[server] tls_cert`, `tls_key`), without
/// the HTTP ALPN protocols (an MQTT client offering `mqtt` must not be refused for them).
pub async fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let mut server = (*cfg.get_inner()).clone();
    server.alpn_protocols.clear();
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server)))
}

impl Endpoint {
    pub fn new(state: AppState, devices: DeviceCache, prefix: &str) -> Self {
        Self {
            state,
            devices,
            prefix: prefix.to_string(),
            sessions: Arc::default(),
            next: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    /// Accepts connections until `shutdown`; with `tls`, each is a TLS session first (MQTT over
    /// TLS, port 8883 by convention), so that secrets and readings never cross the network in
    /// clear.
    pub async fn run(self, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, shutdown: CancellationToken) {
        if let Ok(a) = listener.local_addr() {
            tracing::info!(addr = %a, tls = tls.is_some(), "MQTT device endpoint listening");
        }
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "MQTT accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                metrics::counter!("wuqing_iot_mqtt_refused_total", "reason" => "capacity").increment(1);
                drop(sock);
                continue;
            };
            let me = self.clone();
            let stop = shutdown.child_token();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                match tls {
                    None => me.connection(sock, peer, stop).await,
                    Some(acceptor) => match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(tls_sock)) => me.connection(tls_sock, peer, stop).await,
                        Ok(Err(e)) => me.bad(peer, &format!("TLS handshake failed: {e}")),
                        Err(_) => me.bad(peer, "no TLS handshake in time"),
                    },
                }
                drop(permit);
            });
        }
    }

    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut sock: S,
        peer: SocketAddr,
        stop: CancellationToken,
    ) {
        let mut buf = BytesMut::with_capacity(4096);
        // CONNECT first.
        let connect = match tokio::time::timeout(CONNECT_TIMEOUT, read_packet(&mut sock, &mut buf)).await {
            Ok(Ok(Some(Packet::Connect(c)))) => c,
            Ok(Err(ReadError::Protocol(mqttbytes::Error::InvalidProtocolLevel(_)))) => {
                let _ =
                    send(&mut sock, |b| ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false).write(b)).await;
                return;
            }
            Ok(Ok(Some(_))) => return self.bad(peer, "first packet is not CONNECT"),
            Ok(Ok(None)) => return,
            Ok(Err(e)) => return self.bad(peer, &e.to_string()),
            Err(_) => return self.bad(peer, "no CONNECT in time"),
        };
        let (user, pass) = match &connect.login {
            Some(l) => (l.username.clone(), l.password.clone()),
            None => (String::new(), String::new()),
        };
        let device = match self.devices.authenticate(&self.state.store, &user, &pass).await {
            Ok(Ok(d)) => d,
            Ok(Err(why)) => {
                let code = if why == Refusal::Disabled {
                    ConnectReturnCode::NotAuthorized
                } else {
                    ConnectReturnCode::BadUserNamePassword
                };
                metrics::counter!("wuqing_iot_mqtt_refused_total", "reason" => "credentials").increment(1);
                tracing::warn!(%peer, "MQTT connection refused: bad credentials or disabled device");
                let _ = send(&mut sock, |b| ConnAck::new(code, false).write(b)).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "MQTT connection refused: device not read");
                let _ = send(&mut sock, |b| ConnAck::new(ConnectReturnCode::ServiceUnavailable, false).write(b)).await;
                return;
            }
        };
        if send(&mut sock, |b| ConnAck::new(ConnectReturnCode::Success, false).write(b)).await.is_err() {
            return;
        }
        let session = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut s) = self.sessions.lock() {
            if let Some((_, old)) = s.insert(device.code.clone(), (session, stop.clone())) {
                old.cancel();
            }
        }
        metrics::gauge!("wuqing_iot_mqtt_connections").increment(1.0);
        let keep = match connect.keep_alive {
            0 => IDLE_MAX,
            k => Duration::from_millis(u64::from(k) * 1500),
        };
        let topic = format!("{}/{}/telemetry", self.prefix, device.code);
        let outcome = self.session(&mut sock, &mut buf, &device, &topic, keep, &stop).await;
        if let Err(why) = outcome {
            tracing::info!(device = %device.code, %peer, why, "MQTT connection closed");
        }
        metrics::gauge!("wuqing_iot_mqtt_connections").decrement(1.0);
        if let Ok(mut s) = self.sessions.lock() {
            if s.get(&device.code).is_some_and(|(id, _)| *id == session) {
                s.remove(&device.code);
            }
        }
    }

    fn bad(&self, peer: SocketAddr, why: &str) {
        metrics::counter!("wuqing_iot_mqtt_refused_total", "reason" => "protocol").increment(1);
        tracing::warn!(%peer, why, "MQTT connection closed before CONNECT completed");
    }

    /// The connected session; `Ok` on a clean DISCONNECT or shutdown, `Err(why)` otherwise.
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sock: &mut S,
        buf: &mut BytesMut,
        device: &crate::registry::Device,
        topic: &str,
        keep: Duration,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        loop {
            let p = tokio::select! {
                _ = stop.cancelled() => return Err("taken over by a newer connection, or shutdown".into()),
                r = tokio::time::timeout(keep, read_packet(sock, buf)) => match r {
                    Err(_) => return Err("keep-alive expired".into()),
                    Ok(Ok(Some(p))) => p,
                    Ok(Ok(None)) => return Err("closed by the device".into()),
                    Ok(Err(e)) => {
                        metrics::counter!("wuqing_iot_messages_refused_total", "via" => "mqtt", "reason" => "malformed packet").increment(1);
                        return Err(format!("malformed packet: {e}"));
                    }
                },
            };
            match p {
                Packet::Publish(p) => {
                    if p.topic != topic {
                        ingest::refused(Via::Mqtt, &device.code, "publish outside the device's topic");
                        return Err("publish outside the device's topic".into());
                    }
                    match ingest::decode(device, &p.payload) {
                        Ok(samples) => {
                            if let Err(e) = ingest::accept(&self.state, device, samples, Via::Mqtt).await {
                                // Not acknowledged: the device sends it again on its next connection.
                                tracing::warn!(error = %e, "sensor readings not stored");
                                return Err("store unavailable".into());
                            }
                        }
                        Err(e) => ingest::refused(Via::Mqtt, &device.code, &e.to_string()),
                    }
                    let pkid = p.pkid;
                    let sent = match p.qos {
                        QoS::AtMostOnce => Ok(()),
                        QoS::AtLeastOnce => send(sock, |b| PubAck::new(pkid).write(b)).await,
                        QoS::ExactlyOnce => send(sock, |b| PubRec::new(pkid).write(b)).await,
                    };
                    sent.map_err(|e| e.to_string())?;
                }
                Packet::PubRel(r) => send(sock, |b| PubComp::new(r.pkid).write(b)).await.map_err(|e| e.to_string())?,
                Packet::PingReq => send(sock, |b| v4::PingResp.write(b)).await.map_err(|e| e.to_string())?,
                Packet::Subscribe(s) => {
                    let codes = vec![v4::SubscribeReasonCode::Failure; s.filters.len()];
                    send(sock, |b| SubAck::new(s.pkid, codes).write(b)).await.map_err(|e| e.to_string())?
                }
                Packet::Unsubscribe(u) => {
                    send(sock, |b| UnsubAck::new(u.pkid).write(b)).await.map_err(|e| e.to_string())?
                }
                Packet::Disconnect => return Ok(()),
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {}
                Packet::Connect(_) => return Err("a second CONNECT".into()),
                Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                    return Err("a server-to-client packet from a client".into());
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(mqttbytes::Error),
}

/// Reads one packet; `None` when the peer closed cleanly between packets.
async fn read_packet<S: AsyncRead + Unpin>(sock: &mut S, buf: &mut BytesMut) -> Result<Option<Packet>, ReadError> {
    loop {
        match next_packet(buf) {
            Ok(Some(p)) => return Ok(Some(p)),
            Ok(None) => {}
            Err(e) => return Err(ReadError::Protocol(e)),
        }
        if sock.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()))
            };
        }
    }
}

/// One packet from the front of `buf`, if it holds a whole one. Pure, for the tests and the
/// fuzz target.
pub fn next_packet(buf: &mut BytesMut) -> Result<Option<Packet>, mqttbytes::Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    match v4::read(buf, MAX_PACKET) {
        Ok(p) => Ok(Some(p)),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn send<S: AsyncWrite + Unpin>(
    sock: &mut S,
    write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>,
) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(16);
    write(&mut out).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    sock.write_all(&out).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_and_whole_packets() {
        let mut whole = BytesMut::new();
        let mut p = v4::Publish::new("wuqing/dev-1/telemetry", QoS::AtLeastOnce, b"{}".to_vec());
        p.pkid = 1;
        p.write(&mut whole).unwrap();
        let mut b = BytesMut::from(&whole[..whole.len() - 1]);
        assert!(next_packet(&mut b).unwrap().is_none(), "incomplete: wait for more");
        b.extend_from_slice(&whole[whole.len() - 1..]);
        assert!(matches!(next_packet(&mut b).unwrap(), Some(Packet::Publish(_))));
        assert!(b.is_empty());
    }

    #[test]
    fn oversized_packets_are_refused_before_they_arrive() {
        // A fixed header announcing 1 MB: refused on the header alone.
        let mut b = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x40][..]);
        assert!(next_packet(&mut b).is_err());
    }

    proptest! {
        /// Arbitrary bytes never panic the reader, and it always consumes or waits.
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = BytesMut::from(&bytes[..]);
            for _ in 0..300 {
                let before = b.len();
                match next_packet(&mut b) {
                    Ok(Some(_)) => prop_assert!(b.len() < before),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
