//! Positions: ingest (durable, deduplicated), live state, track playback and its exports, scoped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use kernel::module::Module;
use kernel::testing::{Backend, TestApp};
use std::sync::Arc;
use transport::TransportModule;
use transport::positions::{Position, STATUS_ACC, STATUS_FIXED};

fn pos(vehicle: &str, t_ms: i64, lat: f64, lon: f64, speed: f64) -> Position {
    Position {
        vehicle_id: vehicle.into(),
        device_ms: t_ms,
        received_ms: t_ms + 500,
        lat,
        lon,
        altitude_m: 8,
        speed_kmh: speed,
        heading: 90,
        alarm: 0,
        status: STATUS_FIXED | STATUS_ACC,
        mileage_km: Some(1000.0 + (t_ms - 1_795_000_000_000) as f64 / 3_600_000.0 * speed),
        extras: vec![0x01, 0x04, 0, 0, 0x27, 0x10],
    }
}

async fn scenario(backend: Backend) {
    let module = TransportModule::new();
    let Some(app) = TestApp::spawn_with(backend, vec![Arc::new(module.clone())], |_| {}).await else { return };
    let st = &app.platform.state;
    let token = kernel::platform::CancellationToken::new();
    let _tasks = module.start(st, token.clone()).await.unwrap();

    let shunda = app.login("shunda.zhao").await;
    let (_, v) = app.get("/api/transport/vehicles?limit=1", &shunda).await;
    let vid = v["items"][0]["id"].as_str().unwrap().to_string();
    let plate = v["items"][0]["plate"].as_str().unwrap().to_string();

    // An hour of driving east at 60 km/h, one report a minute, with a 10-minute stop in the middle.
    let t0 = 1_795_000_000_000i64; // 2026-11-18T12:26:40Z
    let mut batch = vec![];
    let mut lon = 117.0;
    for m in 0..60 {
        let standing = (25..35).contains(&m);
        let speed = if standing { 0.0 } else { 60.0 };
        if !standing {
            lon += 0.0116; // ≈ 1 km at 39.38° N
        }
        batch.push(pos(&vid, t0 + m * 60_000, 39.38, lon, speed));
    }
    let n = transport::ingest::ingest(st, &module.live, &batch).await.unwrap();
    assert_eq!(n, 60);
    // A retransmission of the same reports is stored once.
    assert_eq!(transport::ingest::ingest(st, &module.live, &batch[..10]).await.unwrap(), 0);
    // A late batch (older reports uploaded after signal loss) does not move the live position back.
    transport::ingest::ingest(st, &module.live, &[pos(&vid, t0 - 3_600_000, 39.0, 116.0, 10.0)]).await.unwrap();

    let (s, v) = app.get("/api/transport/live", &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let me = v.as_array().unwrap().iter().find(|x| x["vehicle_id"] == vid.as_str()).unwrap();
    assert_eq!(me["position"]["device_ms"], t0 + 59 * 60_000);
    assert_eq!(v.as_array().unwrap().len(), 40, "only the operator's own fleet");
    let (_, v) = app.get("/api/transport/live?bbox=117.5,39.3,117.8,39.5", &shunda).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (_, v) = app.get("/api/transport/live?bbox=100,30,101,31", &shunda).await;
    assert!(v.as_array().unwrap().is_empty());
    let (s, v) = app.get("/api/transport/live?bbox=1,2,3", &shunda).await;
    assert_eq!((s, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("bbox")));

    // After a restart the live state comes back from the store: the newest report, not the late one.
    let restarted = TransportModule::new();
    let _more = restarted.start(st, token.clone()).await.unwrap();
    let back = restarted.live.get(&vid).expect("the vehicle is registered again");
    assert_eq!(back.position.map(|p| p.device_ms), Some(t0 + 59 * 60_000));

    // Track playback.
    let from = kernel::store::ms_to_rfc3339(t0);
    let to = kernel::store::ms_to_rfc3339(t0 + 3_600_000);
    let url = format!("/api/transport/vehicles/{vid}/track?from={from}&to={to}");
    let (s, v) = app.get(&url, &shunda).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["summary"]["points"], 60);
    assert_eq!(v["summary"]["max_speed_kmh"], 60.0);
    let d = v["summary"]["distance_m"].as_f64().unwrap();
    assert!((48_500.0..49_200.0).contains(&d), "49 moving legs of ~997 m: {d}");
    let stops = v["summary"]["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["minutes"], 9.0, "standing from minute 25 to 34");
    let (_, v) = app.get(&format!("{url}&max_points=10"), &shunda).await;
    assert!(v["downsampled"].as_bool().unwrap() && v["points"].as_array().unwrap().len() <= 12);

    let (s, csv) = app.get(&format!("{url}&format=csv"), &shunda).await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_string();
    assert_eq!(csv.lines().count(), 61);
    assert!(
        csv.lines().nth(1).unwrap().starts_with(&format!("{plate},{from},39.380000,117.011600,8,60.0,90,1")),
        "{csv}"
    );
    let (_, gpx) = app.get(&format!("{url}&format=gpx"), &shunda).await;
    assert_eq!(gpx.as_str().unwrap().matches("<trkpt").count(), 60);

    // Another enterprise cannot see the track; the regulator can.
    let bus = app.login("bus.sun").await;
    let (s, _) = app.get(&url, &bus).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let reg = app.login("jt.liu").await;
    let (s, _) = app.get(&url, &reg).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(Method::GET, &format!("/api/transport/vehicles/{vid}/track?from={to}&to={from}"), Some(&reg), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Retention removes what is older than the configured days (183 by default), keeps the rest;
    // on PostgreSQL the coming days' partitions exist after maintenance.
    let old = kernel::store::now_ms() - 400 * 86_400_000;
    transport::ingest::ingest(st, &module.live, &[pos(&vid, old, 39.0, 116.0, 10.0)]).await.unwrap();
    transport::maintain_positions(st).await.unwrap();
    let left = transport::positions::range(&st.store, &vid, 0, i64::MAX, 1000).await.unwrap();
    assert_eq!(left.len(), 61, "the old one went, the hour and the late report stayed");
    if st.store.backend() == kernel::store::Backend::Postgres {
        let parts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'transport_positions'",
        )
        .fetch_one(st.store.reader())
        .await
        .unwrap();
        assert!(parts >= 4, "default and three daily partitions, got {parts}");

        // The track's read is answered from the primary key's index alone (migration 4): with
        // sequential and bitmap scans ruled out, the plan is an index-only scan, not an index
        // scan that visits the table for every row.
        let pg = st.store.pg().unwrap();
        let mut tx = pg.begin().await.unwrap();
        for set in ["SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"] {
            sqlx::query(set).execute(&mut *tx).await.unwrap();
        }
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN SELECT vehicle_id, device_ms, received_ms, lat, lon, altitude_m, speed_dkmh, heading, alarm, \
             status, mileage_hm FROM transport_positions WHERE vehicle_id = $1 AND device_ms >= $2 AND device_ms < $3 \
             ORDER BY device_ms LIMIT 100",
        )
        .bind(&vid)
        .bind(t0)
        .bind(t0 + 3_600_000)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Only Scan"), "{plan}");
        tx.rollback().await.unwrap();

        // A closed day's partition has its index rebuilt once, an hour after the day ends; its
        // positions stay readable.
        let day = (kernel::store::now_ms() - 3_600_000) / 86_400_000 - 1;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS transport_positions_d{day} PARTITION OF transport_positions \
             FOR VALUES FROM ({}) TO ({})",
            day * 86_400_000,
            (day + 1) * 86_400_000
        ))
        .execute(pg)
        .await
        .unwrap();
        let noon = day * 86_400_000 + 43_200_000;
        transport::ingest::ingest(st, &module.live, &[pos(&vid, noon, 39.4, 117.1, 30.0)]).await.unwrap();
        transport::maintain_positions(st).await.unwrap();
        let done: Vec<i64> =
            sqlx::query_scalar("SELECT day FROM transport_compacted_days").fetch_all(pg).await.unwrap();
        assert_eq!(done, [day]);
        let valid: bool = sqlx::query_scalar(&format!(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'transport_positions_d{day}_pkey'::regclass"
        ))
        .fetch_one(pg)
        .await
        .unwrap();
        assert!(valid);
        let back = transport::positions::range(&st.store, &vid, noon, noon + 1, 10).await.unwrap();
        assert_eq!(back.len(), 1);
        transport::maintain_positions(st).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_compacted_days").fetch_one(pg).await.unwrap();
        assert_eq!(n, 1, "once");
    }
    token.cancel();
}

#[tokio::test]
async fn sqlite_positions_live_and_track() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_positions_live_and_track() {
    scenario(Backend::Postgres).await;
}
