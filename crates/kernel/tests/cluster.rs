//! Scale-out pieces against the real services: the bus over NATS between two nodes, and the
//! partitions shared among processors through PostgreSQL advisory locks. Each test skips (with
//! the reason printed) where `WUQING_TEST_NATS` or `WUQING_TEST_PG` is not set.

use kernel::bus::{Bus, NatsBus};
use kernel::cluster::{PartitionWork, share_partitions};
use kernel::platform::CancellationToken;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn next(sub: &mut kernel::bus::Subscription) -> Option<kernel::bus::Message> {
    tokio::time::timeout(Duration::from_secs(5), sub.next()).await.ok().flatten()
}

#[tokio::test]
async fn nats_bus_carries_announcements_between_nodes_once() {
    let Some(url) = kernel::testing::nats_url() else { return };
    let ns = format!("t{}", uuid::Uuid::now_v7().simple());
    let a = NatsBus::connect(&url, &ns, 16, "a").await.expect("node a");
    let b = NatsBus::connect(&url, &ns, 16, "b").await.expect("node b");
    // Another deployment on the same NATS hears nothing of this one.
    let other = NatsBus::connect(&url, "someone_else", 16, "c").await.expect("node c");
    let mut on_a = a.subscribe("alarms.>").expect("subscribe a");
    let mut on_b = b.subscribe("alarms.>").expect("subscribe b");
    let mut on_b_narrow = b.subscribe("alarms.transport.*").expect("subscribe b narrow");
    let mut on_other = other.subscribe("alarms.>").expect("subscribe c");
    // The NATS subscriptions are made in the background: wait until b hears a probe.
    let mut ready = false;
    for _ in 0..50 {
        a.publish("alarms.probe.x", Arc::from(&b"probe"[..])).await.expect("publish");
        if tokio::time::timeout(Duration::from_millis(100), on_b.next()).await.is_ok() {
            ready = true;
            break;
        }
    }
    assert!(ready, "node b never heard node a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), on_b.next()).await {}
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), on_a.next()).await {}
    a.publish("alarms.transport.speeding", Arc::from(&b"1"[..])).await.expect("publish");
    // The publisher's own subscriber hears it once (locally, not again from NATS).
    let m = next(&mut on_a).await.expect("a hears its own");
    assert_eq!(&*m.payload, b"1");
    // The other node hears it once on each matching subscription, with the subject as published.
    let m = next(&mut on_b).await.expect("b hears a");
    assert_eq!(m.subject, "alarms.transport.speeding");
    assert_eq!(next(&mut on_b_narrow).await.expect("b narrow").subject, "alarms.transport.speeding");
    b.publish("alarms.health.x", Arc::from(&b"2"[..])).await.expect("publish");
    assert_eq!(&*next(&mut on_a).await.expect("a hears b").payload, b"2");
    assert_eq!(&*next(&mut on_b).await.expect("b hears its own").payload, b"2");
    // Nothing twice, nothing across deployments.
    assert!(tokio::time::timeout(Duration::from_millis(300), on_a.next()).await.is_err(), "a heard a copy");
    assert!(tokio::time::timeout(Duration::from_millis(300), on_b.next()).await.is_err(), "b heard a copy");
    assert!(tokio::time::timeout(Duration::from_millis(100), on_other.next()).await.is_err(), "leak across namespaces");
    // Bad subjects are refused as on the local bus.
    assert!(a.publish("alarms..x", Arc::from(&b""[..])).await.is_err());
    assert!(a.subscribe("a.>.b").is_err());
}

/// Which processor holds which partition, as the work functions report it.
type Holders = Arc<Mutex<Vec<(String, u32, bool)>>>;

fn work(name: &str, log: Holders) -> PartitionWork {
    let name = name.to_string();
    Arc::new(move |p, stop: CancellationToken| {
        let (name, log) = (name.clone(), log.clone());
        Box::pin(async move {
            log.lock().expect("log").push((name.clone(), p, true));
            stop.cancelled().await;
            log.lock().expect("log").push((name, p, false));
        })
    })
}

/// The partitions each processor holds now, from the log of starts and stops.
fn held(log: &Holders) -> std::collections::BTreeMap<String, BTreeSet<u32>> {
    let mut m: std::collections::BTreeMap<String, BTreeSet<u32>> = Default::default();
    for (name, p, on) in log.lock().expect("log").iter() {
        let set = m.entry(name.clone()).or_default();
        if *on {
            set.insert(*p);
        } else {
            set.remove(p);
        }
    }
    m
}

async fn eventually(
    what: &str,
    log: &Holders,
    ok: impl Fn(&std::collections::BTreeMap<String, BTreeSet<u32>>) -> bool,
) {
    for _ in 0..150 {
        if ok(&held(log)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:?}", held(log));
}

#[tokio::test]
async fn postgres_partitions_are_shared_and_taken_over() {
    let Some(base) = kernel::testing::pg_url() else { return };
    let url = kernel::testing::fresh_pg_database(&base).await;
    let store = kernel::store::Store::open(&url, 4).await.expect("store");
    use kernel::module::Module;
    store.migrate(&kernel::platform::KernelModule.migrations()).await.expect("migrate");
    let log: Holders = Arc::default();
    let n = 8;
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = tokio::spawn(share_partitions(
        store.clone(),
        url.clone(),
        "test.group",
        "a".into(),
        n,
        work("a", log.clone()),
        stop_a.clone(),
    ));
    // Alone, a holds every partition.
    eventually("a alone holds all", &log, |h| h.get("a").is_some_and(|s| s.len() == n as usize)).await;
    let b = tokio::spawn(share_partitions(
        store.clone(),
        url.clone(),
        "test.group",
        "b".into(),
        n,
        work("b", log.clone()),
        stop_b.clone(),
    ));
    // Two share evenly, and no partition is held by both at any moment of the log.
    eventually("a and b share", &log, |h| {
        h.get("a").is_some_and(|s| s.len() == 4) && h.get("b").is_some_and(|s| s.len() == 4)
    })
    .await;
    let mut now: std::collections::BTreeMap<u32, String> = Default::default();
    for (name, p, on) in log.lock().expect("log").iter() {
        if *on {
            assert!(now.insert(*p, name.clone()).is_none(), "partition {p} held twice");
        } else {
            now.remove(p);
        }
    }
    // b stops: its work ends first, then a takes everything.
    stop_b.cancel();
    b.await.expect("b");
    eventually("a takes b's share", &log, |h| {
        h.get("a").is_some_and(|s| s.len() == n as usize) && h.get("b").is_some_and(|s| s.is_empty())
    })
    .await;
    stop_a.cancel();
    a.await.expect("a");
    assert!(held(&log).values().all(|s| s.is_empty()), "work left running after shutdown");
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cluster_members").fetch_one(store.reader()).await.expect("count");
    assert_eq!(left, 0, "members leave their row at shutdown");
}

#[tokio::test]
async fn a_periodic_job_is_due_for_one_node_per_period() {
    use kernel::module::Module;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let store = kernel::store::Store::open(&url, 2).await.expect("store");
    store.migrate(&kernel::platform::KernelModule.migrations()).await.expect("migrate");
    let hour = Duration::from_secs(3600);
    assert!(kernel::cluster::due(&store, "job", "a", hour).await.expect("due"), "first run is due");
    assert!(!kernel::cluster::due(&store, "job", "b", hour).await.expect("due"), "another node within the hour");
    assert!(!kernel::cluster::due(&store, "job", "a", hour).await.expect("due"), "the same node within the hour");
    assert!(kernel::cluster::due(&store, "other", "b", hour).await.expect("due"), "jobs are separate");
    // A period already over: due again.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(kernel::cluster::due(&store, "job", "b", Duration::ZERO).await.expect("due"));
    // A one-off job (a day's checks) with a lease: finished, it is due for nobody, ever.
    assert!(!kernel::cluster::is_finished(&store, "day.1").await.expect("read"));
    assert!(kernel::cluster::due(&store, "day.1", "a", Duration::ZERO).await.expect("due"));
    kernel::cluster::finished(&store, "day.1").await.expect("finish");
    assert!(kernel::cluster::is_finished(&store, "day.1").await.expect("read"));
    assert!(!kernel::cluster::due(&store, "day.1", "b", Duration::ZERO).await.expect("due"));
    assert!(!kernel::cluster::is_finished(&store, "job").await.expect("read"));
}
