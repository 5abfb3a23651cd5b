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
    ("shunda", VehicleClass::DangerousGoods, PlateColour::Yellow, "津C8", 8),
    ("jingjin_coach", VehicleClass::Coach, PlateColour::Yellow, "津C6", 6),
    ("wuqing_bus", VehicleClass::CityBus, PlateColour::Yellow, "津C5", 8),
    ("yangcun_taxi", VehicleClass::Taxi, PlateColour::Blue, "津CT", 6),
];

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
            let plate = format!("{prefix}{:0digits$}", 100 + i * 37 % 900, digits = digits);
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
