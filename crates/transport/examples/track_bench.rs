//! Track-query benchmark over a large position store (used by `bench/track-query.sh`).
//!
//! `fill`: gives every vehicle in the registry `--per-vehicle` positions, one every
//! `--interval-s` seconds, ending now, written the way the gateway writes them
//! ([`transport::positions::store_batch`], one transaction per batch) and in the order they would
//! arrive: hour by hour, every vehicle's hour in turn, so a vehicle's rows are spread over the
//! file as they are in production. Prints the fill rate. Skips vehicles that already have rows.
//!
//! `query`: runs `--queries` track queries of 24 hours of a random vehicle at a random time in the
//! filled range (what `GET /api/transport/vehicles/{id}/track` does below HTTP: the range read and
//! the summary), and prints the latency percentiles.
//!
//! `cargo run --release -p wuqing-transport --example track_bench -- fill|query STORE_URL [N]`

use kernel::store::{Store, now_ms};
use std::time::Instant;
use transport::positions::{self, Position, STATUS_ACC, STATUS_FIXED};

/// A small deterministic generator (xorshift64*): the benchmark needs no cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One vehicle's motion: drives around Wuqing with stops, heading changes and an odometer.
struct Mover {
    lat: f64,
    lon: f64,
    heading: f64,
    speed: f64,
    stop_left_s: i64,
    odo_km: f64,
}

impl Mover {
    fn step(&mut self, rng: &mut Rng, dt_s: i64) {
        if self.stop_left_s > 0 {
            self.stop_left_s -= dt_s;
            self.speed = 0.0;
            return;
        }
        if rng.unit() < 0.01 {
            self.stop_left_s = 300 + (rng.unit() * 1800.0) as i64;
        }
        self.speed = (self.speed + (rng.unit() - 0.5) * 20.0).clamp(10.0, 90.0);
        self.heading = (self.heading + (rng.unit() - 0.5) * 40.0).rem_euclid(360.0);
        let d_m = self.speed / 3.6 * dt_s as f64;
        self.lat += d_m * self.heading.to_radians().cos() / 111_195.0;
        self.lon += d_m * self.heading.to_radians().sin() / (111_195.0 * self.lat.to_radians().cos());
        // Stay around the district: turn back towards the centre when far out.
        if (self.lat - 39.38).abs() > 0.25 || (self.lon - 117.04).abs() > 0.3 {
            self.heading = (self.heading + 180.0).rem_euclid(360.0);
        }
        self.odo_km += d_m / 1000.0;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: track_bench fill STORE_URL PER_VEHICLE [INTERVAL_S=30] | query STORE_URL [QUERIES=2000]";
    let (Some(cmd), Some(url)) = (args.get(1), args.get(2)) else { anyhow::bail!(usage) };
    let store = Store::open(url, 4).await?;
    let (vehicles, total) = transport::registry::all_vehicles(&store, 1_000_000, 0).await?;
    anyhow::ensure!(total > 0, "no vehicles in the registry: provision some first (`wuqing sim provision`)");
    let mut ids: Vec<String> = vehicles.into_iter().map(|v| v.id).collect();
    ids.sort();
    match cmd.as_str() {
        "fill" => {
            let per: i64 = args.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            let interval_s: i64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(30);
            fill(&store, &ids, per, interval_s).await
        }
        "query" => {
            let n: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2000);
            query(&store, &ids, n).await
        }
        _ => anyhow::bail!(usage),
    }
}

async fn fill(store: &Store, ids: &[String], per: i64, interval_s: i64) -> anyhow::Result<()> {
    let mut todo = vec![];
    for id in ids {
        if positions::range(store, id, 0, i64::MAX, 1).await?.is_empty() {
            todo.push(id.clone());
        }
    }
    println!("vehicles {} (to fill {}), {per} positions each every {interval_s} s", ids.len(), todo.len());
    let end = now_ms() - now_ms() % 1000;
    let start = end - per * interval_s * 1000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut movers: Vec<Mover> = todo
        .iter()
        .map(|_| Mover {
            lat: 39.38 + (rng.unit() - 0.5) * 0.2,
            lon: 117.04 + (rng.unit() - 0.5) * 0.3,
            heading: rng.unit() * 360.0,
            speed: 40.0,
            stop_left_s: 0,
            odo_km: 10_000.0 + rng.unit() * 50_000.0,
        })
        .collect();
    // On PostgreSQL every day within retention has its partition in production (the hourly
    // maintenance creates them ahead of the data); create those of the filled range likewise,
    // named as `maintain_positions` names them, rather than fill the default partition.
    if store.backend() == kernel::store::Backend::Postgres {
        const DAY: i64 = 86_400_000;
        for d in start.div_euclid(DAY)..=end.div_euclid(DAY) {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS transport_positions_d{d} PARTITION OF transport_positions \
                 FOR VALUES FROM ({}) TO ({})",
                d * DAY,
                (d + 1) * DAY
            ))
            .execute(store.reader())
            .await?;
        }
    }
    let per_block = (3_600 / interval_s).max(1);
    let (began, mut written) = (Instant::now(), 0u64);
    let mut k = 0;
    while k < per {
        let n = per_block.min(per - k);
        let mut batch = Vec::with_capacity(todo.len() * n as usize);
        for (id, m) in todo.iter().zip(movers.iter_mut()) {
            for i in k..k + n {
                m.step(&mut rng, interval_s);
                let t = start + i * interval_s * 1000;
                let mut status = STATUS_FIXED;
                if m.speed > 0.0 {
                    status |= STATUS_ACC;
                }
                batch.push(Position {
                    vehicle_id: id.clone(),
                    device_ms: t,
                    received_ms: t + 800,
                    lat: (m.lat * 1e6).round() / 1e6,
                    lon: (m.lon * 1e6).round() / 1e6,
                    altitude_m: 5,
                    speed_kmh: (m.speed * 10.0).round() / 10.0,
                    heading: m.heading as u16 % 360,
                    alarm: 0,
                    status,
                    mileage_km: Some((m.odo_km * 10.0).round() / 10.0),
                    extras: vec![],
                });
            }
        }
        // The gateway commits a few thousand at a time; the fill uses larger transactions.
        for chunk in batch.chunks(50_000) {
            written += positions::store_batch(store, chunk).await?;
        }
        k += n;
        let secs = began.elapsed().as_secs_f64();
        println!(
            "{:>7.0}s  {written} positions  {:.0}/s  ({:.1} % of the hours)",
            secs,
            written as f64 / secs,
            100.0 * k as f64 / per as f64
        );
    }
    println!("filled {written} positions in {:.0} s", began.elapsed().as_secs_f64());
    // In production the hourly maintenance has vacuumed every past day's partition (see
    // `maintain_positions`), which lets a track be read from the index alone: do the same here.
    if store.backend() == kernel::store::Backend::Postgres {
        let t = Instant::now();
        sqlx::raw_sql("VACUUM (ANALYZE) transport_positions").execute(store.reader()).await?;
        println!("vacuumed in {:.0} s", t.elapsed().as_secs_f64());
        // And each closed day's index has been rebuilt once (`transport::compact_day`).
        const DAY: i64 = 86_400_000;
        for d in start.div_euclid(DAY)..now_ms().div_euclid(DAY) {
            let t = Instant::now();
            if transport::compact_day(store, d).await? {
                println!("day {d}: index rebuilt in {:.0} s", t.elapsed().as_secs_f64());
            }
        }
    }
    Ok(())
}

async fn query(store: &Store, ids: &[String], n: usize) -> anyhow::Result<()> {
    // The filled range: from the oldest to the newest position of the first vehicle.
    let first = positions::range(store, &ids[0], 0, i64::MAX, 1).await?;
    let Some(oldest) = first.first().map(|p| p.device_ms) else { anyhow::bail!("no positions: fill first") };
    let newest = now_ms();
    anyhow::ensure!(newest - oldest > 86_400_000, "less than a day of positions: fill more");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transport_positions").fetch_one(store.reader()).await?;
    println!("store: {count} positions, {} vehicles", ids.len());
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut lat_us, mut rows) = (Vec::with_capacity(n), 0usize);
    for _ in 0..n {
        let id = &ids[(rng.next() % ids.len() as u64) as usize];
        let from = oldest + (rng.unit() * (newest - oldest - 86_400_000) as f64) as i64;
        let t = Instant::now();
        let points = positions::range(store, id, from, from + 86_400_000, 200_000).await?;
        let summary = positions::summarise(&points, 5.0);
        lat_us.push(t.elapsed().as_micros() as u64);
        rows += summary.points;
    }
    lat_us.sort_unstable();
    let pct = |p: f64| lat_us[((lat_us.len() as f64 * p).ceil() as usize).clamp(1, lat_us.len()) - 1] as f64 / 1000.0;
    println!(
        "{n} queries of 24 h, {} positions each on average: p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        rows / n.max(1),
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
