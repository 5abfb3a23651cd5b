//! The demo district's transport: vehicles of the demo enterprises, each with a JT/T 808
//! terminal. Terminals 13900000001–13900000020 are bound to demo vehicles so that a real terminal
//! or an independent simulator can be pointed at the demo.

use crate::model::{PlateColour, VehicleClass};
use crate::registry::{self, NewTerminal, NewVehicle};
use kernel::audit::Actor;
use kernel::demo::{DemoContext, is_seeded, mark_seeded};
use kernel::http::AppState;

/// (enterprise key, class, plate colour, plate prefix, count)
const FLEETS: &[(&str, VehicleClass, PlateColour, &str, u32)] = &[
    ("shunda", VehicleClass::DangerousGoods, PlateColour::Yellow, "津C8", 40),
    ("jingjin_coach", VehicleClass::Coach, PlateColour::Yellow, "津C6", 30),
    ("wuqing_bus", VehicleClass::CityBus, PlateColour::Yellow, "津C5", 80),
    ("yangcun_taxi", VehicleClass::Taxi, PlateColour::Blue, "津CT", 50),
];

/// Demo terminals driven by the in-process simulator: every one not in 13900000001–13900000020.
pub const SIMULATED_PREFIX: &str = "138";

pub async fn seed(state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
    if is_seeded(state, "transport").await? {
        return Ok(());
    }
    let actor = Actor::cli("demo");
    let mut n = 0u32;
    for (org_key, class, colour, prefix, count) in FLEETS {
        let org_id =
            demo.orgs.get(*org_key).cloned().ok_or_else(|| anyhow::anyhow!("demo organisation {org_key} missing"))?;
        for i in 0..*count {
            n += 1;
            let digits = 7 - prefix.chars().count();
            let plate = format!("{prefix}{:0digits$}", 100 + i * 37 % 900 + (i * 37 / 900) * 1000, digits = digits);
            let v = registry::insert_vehicle(
                &state.store,
                actor.clone(),
                &org_id,
                NewVehicle { org_id: None, plate, plate_colour: *colour, class: *class, vin: None },
            )
            .await
            .map_err(|e| anyhow::anyhow!("demo vehicle: {}", e.message))?;
            // 13900000001–13900000020 for real terminals and outside simulators; 13800000xxx for the rest.
            let phone = if n <= 20 { format!("139{n:08}") } else { format!("138{n:08}") };
            let t = registry::insert_terminal(
                &state.store,
                actor.clone(),
                &org_id,
                NewTerminal {
                    org_id: None,
                    phone,
                    terminal_id: format!("WQ{n:05}"),
                    maker: "70111".into(),
                    model: "WQ-808".into(),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("demo terminal: {}", e.message))?;
            registry::set_binding(&state.store, actor.clone(), &t, Some(&v.id))
                .await
                .map_err(|e| anyhow::anyhow!("demo binding: {}", e.message))?;
        }
    }
    mark_seeded(state, "transport", "1").await?;
    Ok(())
}

/// The IC card of the demo's `i`-th driver: an invented name and certificate number (18
/// characters, the shape of a qualification certificate that carries the citizen ID; no real
/// person's).
fn demo_card(i: usize) -> jt808::message::DriverCard {
    const SURNAMES: &[&str] =
        &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡"];
    const GIVEN: &[&str] =
        &["伟", "磊", "军", "勇", "杰", "涛", "强", "斌", "波", "辉", "建国", "志刚", "海峰", "国庆"];
    jt808::message::DriverCard {
        name: format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[(i / SURNAMES.len() + i) % GIVEN.len()]),
        certificate: format!("12011419{:02}0101{:04}", 70 + i % 30, 1000 + i),
        issuer: "天津市交通运输委员会".into(),
        valid_until: [0x20, 0x29, 0x12, 0x31],
        id_card: None,
    }
}

/// Drives the demo's simulated terminals against the gateway at `gateway`, over real TCP, until
/// `shutdown`: trucks and coaches on the expressways and national roads, buses with their stops
/// and taxis in Yangcun's streets.
pub async fn drive_fleet(
    state: &AppState,
    gateway: std::net::SocketAddr,
    shutdown: kernel::platform::CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use sim::{Behaviour, Driver, SimTerminal, roads::ROADS};
    let rows = sqlx::query(&state.store.sql(
        "SELECT t.phone AS phone, v.class AS class, v.id AS vehicle_id FROM transport_terminals t JOIN transport_vehicles v ON v.id = t.vehicle_id \
         WHERE t.phone LIKE $1 ORDER BY t.phone",
    ))
    .bind(format!("{SIMULATED_PREFIX}%"))
    .fetch_all(state.store.reader())
    .await?;
    let stats = std::sync::Arc::new(sim::Stats::default());
    let mut tasks = vec![];
    for (i, r) in rows.iter().enumerate() {
        let phone: String = kernel::store::col(r, "phone")?;
        let class: String = kernel::store::col(r, "class")?;
        let vehicle_id: String = kernel::store::col(r, "vehicle_id")?;
        let class = VehicleClass::parse(&class).unwrap_or(VehicleClass::HeavyGoods);
        let (roads, behaviour): (&[usize], Behaviour) = match class {
            VehicleClass::DangerousGoods | VehicleClass::HeavyGoods => (&[0, 1, 2, 7, 5], Behaviour::default()),
            VehicleClass::Coach | VehicleClass::TouristCoach => (&[0, 1], Behaviour::default()),
            VehicleClass::CityBus | VehicleClass::SchoolBus => {
                (&[3, 4, 5, 6, 2], Behaviour { stop_every_m: 700.0, stop_secs: 40.0, ..Default::default() })
            }
            VehicleClass::Taxi => (&[3, 4, 6, 5], Behaviour::default()),
        };
        let road = &ROADS[roads[i % roads.len()]];
        // The demo's drivers keep to their class's limit (the night limit, for passenger
        // vehicles) however fast their road's traffic goes: the alarm desk then shows the
        // scenario vehicles' violations, not the whole fleet's.
        let mut behaviour = behaviour;
        if let Some(limits) = rules::RuleSet::builtin_classes().get(class.as_str()) {
            if let Some(limit) = limits.speed_limit_kmh {
                let lawful = if limits.night_speed == Some(true) { limit * 0.8 } else { limit };
                // The driver varies its speed by up to 8 % around road speed × factor.
                behaviour.speed_factor = (0.97 * lawful / (road.speed_kmh * 1.08)).min(1.0);
            }
        }
        // After a restart each vehicle goes on from its last report, rather than jumping to its
        // starting point (which the rules would rightly call a position drift).
        let driver = match crate::positions::latest(&state.store, &vehicle_id).await? {
            Some(p) => Driver::resume(road, (p.lat, p.lon), p.mileage_km, behaviour),
            None => Driver::new(road, (i as f64 * 0.137).fract(), behaviour),
        };
        let term = SimTerminal {
            phone,
            v2019: i % 2 == 1,
            driver,
            interval: std::time::Duration::from_secs(10),
            plate: String::new(),
            card: Some(demo_card(i)),
        };
        let (st, stop) = (stats.clone(), shutdown.clone());
        // Staggered, so that two hundred terminals do not register in the same millisecond.
        let delay = std::time::Duration::from_millis(50 * i as u64);
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            sim::run(gateway, term, st, stop).await
        }));
    }
    tracing::info!(terminals = rows.len(), %gateway, "demo fleet driving");
    Ok(tasks)
}
