//! The live WebSocket over a real socket: snapshot, changes within the caller's scope, bbox moves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use transport::TransportModule;
use transport::positions::{Position, STATUS_ACC, STATUS_FIXED};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr, token: &str, query: &str) -> Ws {
    let mut req = format!("ws://{addr}/api/transport/stream?interval_ms=200{query}").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("upgrade").0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["vehicles"].as_array().unwrap().iter().map(|x| x["vehicle_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn stream_sends_scoped_changes_and_follows_the_map() {
    let module = TransportModule::new();
    let app = TestApp::spawn_with(Backend::Sqlite, vec![Arc::new(module.clone())], |_| {}).await.unwrap();
    let st = app.platform.state.clone();
    let _tasks = module.start(&st, kernel::platform::CancellationToken::new()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(
        async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await },
    );

    let shunda = app.login("shunda.zhao").await;
    let bus = app.login("bus.sun").await;
    let mut a = connect(addr, &shunda, "").await;
    let mut b = connect(addr, &bus, "").await;
    let snap = next_json(&mut a).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(ids(&snap).len(), 40, "the operator's own fleet");
    let snap_b = next_json(&mut b).await;
    assert_eq!(ids(&snap_b).len(), 80);
    let vid = ids(&snap)[0].clone();

    let p = Position {
        vehicle_id: vid.clone(),
        device_ms: kernel::store::now_ms(),
        received_ms: kernel::store::now_ms(),
        lat: 39.38,
        lon: 117.04,
        altitude_m: 5,
        speed_kmh: 42.0,
        heading: 180,
        alarm: 0,
        status: STATUS_ACC | STATUS_FIXED,
        mileage_km: None,
        extras: vec![],
    };
    transport::ingest::ingest(&st, &module.live, &[p]).await.unwrap();
    let ch = next_json(&mut a).await;
    assert_eq!(ch["type"], "changes");
    assert_eq!(ids(&ch), vec![vid.clone()]);
    assert_eq!(ch["vehicles"][0]["position"]["speed_kmh"], 42.0);

    // The other enterprise hears nothing of it: its next message is the reply to its own request.
    b.send(Message::Text(r#"{"bbox":[117.0,39.0,118.0,40.0]}"#.into())).await.unwrap();
    let snap_b = next_json(&mut b).await;
    assert_eq!(snap_b["type"], "snapshot");
    assert!(ids(&snap_b).is_empty(), "no bus positions inside the box yet");

    // Moving the map away from the vehicle: an empty snapshot; a bad message: an error, not a hang-up.
    a.send(Message::Text(r#"{"bbox":[100.0,30.0,101.0,31.0]}"#.into())).await.unwrap();
    assert!(ids(&next_json(&mut a).await).is_empty());
    a.send(Message::Text("{\"bbox\": \"nonsense\"}".into())).await.unwrap();
    assert_eq!(next_json(&mut a).await["type"], "error");
    a.send(Message::Text(r#"{"bbox":null}"#.into())).await.unwrap();
    assert_eq!(ids(&next_json(&mut a).await).len(), 40);

    // Without credentials there is no upgrade.
    let req = format!("ws://{addr}/api/transport/stream").into_client_request().unwrap();
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}
