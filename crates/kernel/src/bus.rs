//! The event bus: subjects in NATS syntax (`telemetry.vehicle.13900000001`, wildcards `*` for one
//! token and `>` for the rest), bounded queues with back-pressure. In-process by default
//! ([`LocalBus`]); with `bus.url` set, [`NatsBus`] carries the same messages between nodes.
//!
//! The bus carries *announcements* (a position was stored, an alarm changed, a document was
//! published, a terminal came online): what every interested node should hear, at most once, and
//! what a node that missed one can re-read from the store. Observations on their way from a
//! gateway to the processor that stores them do not travel here but on JetStream streams
//! (`crate::cluster`), which keep them until a processor has committed them.

use async_trait::async_trait;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// A message on the bus.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    pub payload: Arc<[u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {0:?}")]
    Subject(String),
    #[error("bus closed")]
    Closed,
    #[error("nats: {0}")]
    Nats(String),
}

/// A subscription: messages arrive in publish order per publisher.
pub struct Subscription {
    rx: mpsc::Receiver<Message>,
}

impl Subscription {
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes; waits while a matching subscriber's queue is full (back-pressure, never an
    /// unbounded queue).
    async fn publish(&self, subject: &str, payload: Arc<[u8]>) -> Result<(), BusError>;
    /// Subscribes to a subject pattern.
    fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError>;
}

/// Checks a subject or pattern: dot-separated non-empty tokens of printable ASCII without spaces.
pub fn valid_subject(s: &str, pattern: bool) -> bool {
    if s.is_empty() || s.len() > 256 {
        return false;
    }
    let toks: Vec<&str> = s.split('.').collect();
    toks.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && t.bytes().all(|b| b.is_ascii_graphic())
            && (pattern || (*t != "*" && *t != ">"))
            && (*t != ">" || i == toks.len() - 1)
    })
}

/// NATS subject matching.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

struct Sub {
    pattern: String,
    tx: mpsc::Sender<Message>,
}

/// The in-process bus.
#[derive(Clone)]
pub struct LocalBus {
    subs: Arc<RwLock<Vec<Sub>>>,
    capacity: usize,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        Self { subs: Arc::new(RwLock::new(vec![])), capacity: capacity.max(1) }
    }

    /// Delivers to the local subscribers whose pattern `only` is (when given) or that match.
    async fn deliver(&self, msg: Message, only: Option<&str>) -> Result<(), BusError> {
        let targets: Vec<mpsc::Sender<Message>> = {
            let mut g = self.subs.write().map_err(|_| BusError::Closed)?;
            g.retain(|s| !s.tx.is_closed());
            g.iter()
                .filter(|s| match only {
                    Some(p) => s.pattern == p,
                    None => matches(&s.pattern, &msg.subject),
                })
                .map(|s| s.tx.clone())
                .collect()
        };
        for t in targets {
            // A subscriber that went away is not the publisher's failure.
            let _ = t.send(msg.clone()).await;
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, subject: &str, payload: Arc<[u8]>) -> Result<(), BusError> {
        if !valid_subject(subject, false) {
            return Err(BusError::Subject(subject.to_string()));
        }
        self.deliver(Message { subject: subject.to_string(), payload }, None).await?;
        metrics::counter!("wuqing_bus_published_total").increment(1);
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        if !valid_subject(pattern, true) {
            return Err(BusError::Subject(pattern.to_string()));
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        self.subs.write().map_err(|_| BusError::Closed)?.push(Sub { pattern: pattern.to_string(), tx });
        Ok(Subscription { rx })
    }
}

/// Header naming the node a message came from, so that a node does not hear its own twice.
const ORIGIN: &str = "Wuqing-Origin";

/// The bus over NATS (core publish/subscribe): a publication reaches this node's subscribers at
/// once, in order and with back-pressure (as on [`LocalBus`]), and every other node's through
/// NATS. Each pattern a subscriber of this node asks for is subscribed at NATS once; messages
/// this node published come back from NATS and are dropped by their origin header. Delivery
/// between nodes is at most once: a node that was away re-reads the store, which stays the
/// truth.
#[derive(Clone)]
pub struct NatsBus {
    local: LocalBus,
    /// `<namespace>.bus.`, before every subject at NATS.
    prefix: Arc<str>,
    client: async_nats::Client,
    origin: Arc<str>,
    /// Patterns already subscribed at NATS.
    bridged: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl NatsBus {
    /// Connects (several URLs separated by commas: a cluster's seeds). The client reconnects by
    /// itself after a connection is lost; publications meanwhile are buffered by it.
    pub async fn connect(url: &str, namespace: &str, capacity: usize, node: &str) -> Result<Self, BusError> {
        let client = connect(url, node).await?;
        Ok(Self {
            local: LocalBus::new(capacity),
            prefix: Arc::from(format!("{namespace}.bus.")),
            client,
            origin: Arc::from(format!("{node}-{}", uuid::Uuid::now_v7().simple())),
            bridged: Arc::default(),
        })
    }

    /// The NATS connection, for JetStream.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    fn bridge(&self, pattern: &str) {
        let Ok(mut bridged) = self.bridged.lock() else { return };
        if !bridged.insert(pattern.to_string()) {
            return;
        }
        let (client, local, origin, pattern, prefix) =
            (self.client.clone(), self.local.clone(), self.origin.clone(), pattern.to_string(), self.prefix.clone());
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut sub = match client.subscribe(format!("{prefix}{pattern}")).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(%pattern, error = %e, "bus: NATS subscription failed: other nodes not heard");
                    return;
                }
            };
            while let Some(m) = sub.next().await {
                let mine =
                    m.headers.as_ref().and_then(|h| h.get(ORIGIN)).is_some_and(|o| o.as_str() == origin.as_ref());
                if mine {
                    continue;
                }
                let Some(subject) = m.subject.strip_prefix(prefix.as_ref()) else { continue };
                let msg = Message { subject: subject.to_string(), payload: Arc::from(&m.payload[..]) };
                if local.deliver(msg, Some(&pattern)).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A NATS connection named after the node (seen in the server's monitoring).
pub async fn connect(url: &str, node: &str) -> Result<async_nats::Client, BusError> {
    let urls: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>().map_err(|e| BusError::Nats(e.to_string())))
        .collect::<Result<_, _>>()?;
    async_nats::ConnectOptions::new()
        .name(format!("wuqing {node}"))
        .retry_on_initial_connect()
        .connection_timeout(std::time::Duration::from_secs(5))
        .event_callback(|e| async move {
            match e {
                async_nats::Event::Disconnected => tracing::warn!("nats: disconnected, reconnecting"),
                async_nats::Event::Connected => tracing::info!("nats: connected"),
                other => tracing::debug!(event = %other, "nats"),
            }
        })
        .connect(urls)
        .await
        .map_err(|e| BusError::Nats(e.to_string()))
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Arc<[u8]>) -> Result<(), BusError> {
        if !valid_subject(subject, false) {
            return Err(BusError::Subject(subject.to_string()));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ORIGIN, self.origin.as_ref());
        self.client
            .publish_with_headers(format!("{}{subject}", self.prefix), headers, bytes::Bytes::copy_from_slice(&payload))
            .await
            .map_err(|e| BusError::Nats(e.to_string()))?;
        self.local.deliver(Message { subject: subject.to_string(), payload }, None).await?;
        metrics::counter!("wuqing_bus_published_total").increment(1);
        Ok(())
    }

    fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        let sub = self.local.subscribe(pattern)?;
        self.bridge(pattern);
        Ok(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_matching_follows_nats() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.d"));
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(valid_subject("telemetry.vehicle.1", false));
        assert!(!valid_subject("a..b", true));
        assert!(!valid_subject("a.>.b", true));
        assert!(!valid_subject("a.*", false));
    }

    #[tokio::test]
    async fn delivers_in_order_and_applies_back_pressure() {
        let bus = LocalBus::new(2);
        let mut sub = bus.subscribe("t.>").expect("subscribe");
        let mut other = bus.subscribe("x.*").expect("subscribe");
        bus.publish("t.a", Arc::from(&b"1"[..])).await.expect("publish");
        bus.publish("t.b", Arc::from(&b"2"[..])).await.expect("publish");
        // The queue (capacity 2) is full: a third publish waits until the subscriber reads.
        let b2 = bus.clone();
        let pending = tokio::spawn(async move { b2.publish("t.c", Arc::from(&b"3"[..])).await });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        assert_eq!(&*sub.next().await.expect("msg").payload, b"1");
        pending.await.expect("join").expect("publish");
        assert_eq!(&*sub.next().await.expect("msg").payload, b"2");
        assert_eq!(sub.next().await.expect("msg").subject, "t.c");
        drop(other.rx.try_recv());
        assert!(other.rx.try_recv().is_err(), "x.* received nothing");
    }
}
