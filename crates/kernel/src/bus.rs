//! The event bus: subjects in NATS syntax (`telemetry.vehicle.13900000001`, wildcards `*` for one
//! token and `>` for the rest), bounded queues with back-pressure. In-process by default; a NATS
//! JetStream implementation satisfies the same trait when the platform scales out.

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
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, subject: &str, payload: Arc<[u8]>) -> Result<(), BusError> {
        if !valid_subject(subject, false) {
            return Err(BusError::Subject(subject.to_string()));
        }
        let targets: Vec<mpsc::Sender<Message>> = {
            let mut g = self.subs.write().map_err(|_| BusError::Closed)?;
            g.retain(|s| !s.tx.is_closed());
            g.iter().filter(|s| matches(&s.pattern, subject)).map(|s| s.tx.clone()).collect()
        };
        let msg = Message { subject: subject.to_string(), payload };
        for t in targets {
            // A subscriber that went away is not the publisher's failure.
            let _ = t.send(msg.clone()).await;
        }
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
