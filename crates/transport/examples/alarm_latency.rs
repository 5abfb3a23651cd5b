//! End-to-end alarm latency: from a JT/T 808 frame leaving a terminal to the alarm it raises
//! arriving on the desk's WebSocket (`/api/alarms/stream`), measured on a running server
//! (`bench/alarm-latency.sh` runs it beside a load simulator).
//!
//! A probe terminal drives overspeed episodes in device time: a fix at 150 km/h, a second one
//! 61 s later (the overspeed rule counts after 60 s, so this frame raises the alarm), then one at
//! 20 km/h that ends it. The clock starts just before the second frame is written and stops when
//! the desk's socket delivers the raised alarm, so the figure includes the gateway, the group
//! commit, the bus, the rules task, the alarm's transaction and the WebSocket fan-out (and two
//! loopback hops).
//!
//! Usage: alarm_latency --http 127.0.0.1:8080 --gateway 127.0.0.1:6808 --user jt.liu
//!        --password P [--phone 13900000001] [--episodes 200]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// A plain HTTP/1.1 request (no client library: the example stays small).
async fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Value {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect to the API");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let b = body.unwrap_or("");
    req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON from {path}: {resp}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let http_addr: SocketAddr = arg("--http").unwrap_or("127.0.0.1:8080".into()).parse().unwrap();
    let gateway: SocketAddr = arg("--gateway").unwrap_or("127.0.0.1:6808".into()).parse().unwrap();
    let user = arg("--user").unwrap_or("jt.liu".into());
    let password = arg("--password").expect("--password");
    let phone = arg("--phone").unwrap_or("13900000001".into());
    let episodes: usize = arg("--episodes").unwrap_or("200".into()).parse().unwrap();

    let login = serde_json::json!({"username": user, "password": password}).to_string();
    let v = http(http_addr, "POST", "/api/auth/login", None, Some(&login)).await;
    let token = v["token"].as_str().unwrap_or_else(|| panic!("login refused: {v}")).to_string();
    let v = http(http_addr, "GET", &format!("/api/transport/terminals?phone={phone}"), Some(&token), None).await;
    let vehicle =
        v["items"][0]["vehicle_id"].as_str().unwrap_or_else(|| panic!("{phone} is not bound: {v}")).to_string();

    // The desk's socket: every raised speed alarm of the probe's vehicle, with its arrival time.
    let mut req = format!("ws://{http_addr}/api/alarms/stream").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("WebSocket");
    let (_, mut rx_ws) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (vehicle2, resyncs) = (vehicle.clone(), std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)));
    let resyncs2 = resyncs.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx_ws.next().await {
            let at = Instant::now();
            let Ok(text) = m.into_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
            if v["type"] == "resync" {
                resyncs2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let a = &v["alarm"];
            let speed = a["kind"] == "overspeed" || a["kind"] == "night_overspeed";
            if speed && a["subject"]["id"] == vehicle2.as_str() && a["ended_at"].is_null() && a["triggers"] == 1 {
                let _ = tx.send(at);
            }
        }
    });

    let mut probe = sim::probe::Probe::connect(gateway, &phone).await.expect("probe terminal");
    // Device time from six hours ago, 100 s an episode (gaps stay under the rules' 120 s).
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t0 = now_s - 6 * 3600;
    let (lat, mut lon, mut dir) = (39.38, 117.05, 1.0);
    let mut lat_ms = Vec::with_capacity(episodes);
    let mut ack_ms = Vec::with_capacity(episodes);
    let mut after_ack_ms = Vec::with_capacity(episodes);
    let mut missed = 0;
    for i in 0..episodes {
        let t = t0 + i as i64 * 100;
        probe.report(t, lat, lon, 150.0).await.expect("report");
        while rx.try_recv().is_ok() {}
        lon += dir * 0.0295;
        let sent = Instant::now();
        probe.report(t + 61, lat, lon, 150.0).await.expect("report");
        let acked = Instant::now();
        ack_ms.push(acked.duration_since(sent).as_secs_f64() * 1000.0);
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(at)) => {
                lat_ms.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                after_ack_ms.push(at.saturating_duration_since(acked).as_secs_f64() * 1000.0);
            }
            _ => missed += 1,
        }
        lon += dir * 0.0005;
        probe.report(t + 62, lat, lon, 20.0).await.expect("report");
        dir = -dir;
    }
    lat_ms.sort_by(|a, b| a.total_cmp(b));
    ack_ms.sort_by(|a, b| a.total_cmp(b));
    after_ack_ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  frame sent → 0x8001 (stored): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        percentile(&ack_ms, 50.0),
        percentile(&ack_ms, 90.0),
        percentile(&ack_ms, 99.0),
    );
    println!(
        "  0x8001 → desk WebSocket (bus, rules, alarm commit, fan-out): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        percentile(&after_ack_ms, 50.0),
        percentile(&after_ack_ms, 90.0),
        percentile(&after_ack_ms, 99.0),
    );
    println!(
        "alarm latency (frame sent → desk WebSocket), {} episodes: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; missed {missed}; resyncs {}",
        lat_ms.len(),
        percentile(&lat_ms, 50.0),
        percentile(&lat_ms, 90.0),
        percentile(&lat_ms, 99.0),
        lat_ms.last().copied().unwrap_or(f64::NAN),
        resyncs.load(std::sync::atomic::Ordering::Relaxed),
    );
}
