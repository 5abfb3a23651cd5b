//! The live state of every vehicle (实时状态), kept in memory: the newest position, whether the
//! terminal is online, when it last reported. Reads never touch the database.

use crate::model::VehicleClass;
use crate::positions::Position;
use crate::registry::Vehicle;
use kernel::access::Scope;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

/// What the monitoring map shows of one vehicle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveVehicle {
    pub vehicle_id: String,
    pub org_id: String,
    pub plate: String,
    pub class: VehicleClass,
    pub online: bool,
    /// The newest position by device time, if any arrived.
    pub position: Option<Position>,
    /// RFC 3339 of the last message of any kind from the terminal.
    pub last_seen: Option<String>,
    /// The driver signed in on the terminal's IC card reader (0x0702), while the card is in.
    pub driver: Option<DriverOnDuty>,
    /// Increases with every change of this vehicle's live state (for streaming changes).
    pub version: u64,
}

/// A driver as the monitoring map shows them: the name on the card and the qualification
/// certificate number masked (it is often the citizen ID number).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct DriverOnDuty {
    pub name: String,
    pub certificate: String,
}

impl DriverOnDuty {
    pub fn new(name: &str, certificate: &str) -> Self {
        Self { name: name.to_owned(), certificate: kernel::crypto::mask_citizen_id(certificate) }
    }
}

/// Filters of the live list; `bbox` is `[min_lon, min_lat, max_lon, max_lat]`.
#[derive(Debug, Clone, Default)]
pub struct LiveFilter {
    pub org_id: Option<String>,
    pub class: Option<VehicleClass>,
    pub online: Option<bool>,
    pub bbox: Option<[f64; 4]>,
}

/// The live state, shared by the gateway (writer) and the API (readers).
#[derive(Clone, Default)]
pub struct LiveMap {
    inner: Arc<RwLock<HashMap<String, LiveVehicle>>>,
    /// The last version handed out; every change takes the next.
    clock: Arc<std::sync::atomic::AtomicU64>,
}

impl LiveMap {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The newest version handed out so far.
    pub fn version(&self) -> u64 {
        self.clock.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds or refreshes a vehicle's registry facts, keeping its live data. Only a change takes a
    /// new version (a periodic re-read of the registry sends streams nothing when nothing changed).
    pub fn register(&self, v: &Vehicle) {
        if let Ok(mut m) = self.inner.write() {
            let e = m.entry(v.id.clone()).or_insert_with(|| LiveVehicle {
                vehicle_id: v.id.clone(),
                org_id: v.org_id.clone(),
                plate: v.plate.clone(),
                class: v.class,
                online: false,
                position: None,
                last_seen: None,
                driver: None,
                version: 0,
            });
            if e.version == 0 || e.org_id != v.org_id || e.plate != v.plate || e.class != v.class {
                e.org_id = v.org_id.clone();
                e.plate = v.plate.clone();
                e.class = v.class;
                e.version = self.tick();
            }
        }
    }

    /// Takes a stored position; an older one (a late batch upload) does not replace a newer one.
    pub fn update_position(&self, p: &Position) {
        if let Ok(mut m) = self.inner.write() {
            if let Some(e) = m.get_mut(&p.vehicle_id) {
                if e.position.as_ref().is_none_or(|cur| cur.device_ms <= p.device_ms) {
                    e.position = Some(p.clone());
                    e.version = self.tick();
                }
                // Heard from now, whatever the position's own time (a late batch too).
                e.last_seen = Some(kernel::store::ms_to_rfc3339(p.received_ms));
            }
        }
    }

    /// Records that the vehicle's terminal connected (or spoke) or went away.
    pub fn set_online(&self, vehicle_id: &str, online: bool, at_ms: i64) {
        if let Ok(mut m) = self.inner.write() {
            if let Some(e) = m.get_mut(vehicle_id) {
                e.online = online;
                e.last_seen = Some(kernel::store::ms_to_rfc3339(at_ms));
                e.version = self.tick();
            }
        }
    }

    /// A driver's card was inserted (`Some`) or removed (`None`).
    pub fn set_driver(&self, vehicle_id: &str, driver: Option<DriverOnDuty>) {
        if let Ok(mut m) = self.inner.write() {
            if let Some(e) = m.get_mut(vehicle_id) {
                if e.driver != driver {
                    e.driver = driver;
                    e.version = self.tick();
                }
            }
        }
    }

    pub fn get(&self, vehicle_id: &str) -> Option<LiveVehicle> {
        self.inner.read().ok().and_then(|m| m.get(vehicle_id).cloned())
    }

    /// The vehicles in `scope` that pass `f`, ordered by plate.
    pub fn list(&self, scope: &Scope, f: &LiveFilter) -> Vec<LiveVehicle> {
        self.changed_since(scope, f, 0)
    }

    /// Like [`LiveMap::list`], only the vehicles whose state changed after version `since`.
    pub fn changed_since(&self, scope: &Scope, f: &LiveFilter, since: u64) -> Vec<LiveVehicle> {
        let Ok(m) = self.inner.read() else { return vec![] };
        let mut out: Vec<LiveVehicle> = m
            .values()
            .filter(|v| v.version > since)
            .filter(|v| scope.contains(&v.org_id))
            .filter(|v| f.org_id.as_ref().is_none_or(|o| *o == v.org_id))
            .filter(|v| f.class.is_none_or(|c| c == v.class))
            .filter(|v| f.online.is_none_or(|o| o == v.online))
            .filter(|v| match (&f.bbox, &v.position) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some([x0, y0, x1, y1]), Some(p)) => p.lon >= *x0 && p.lon <= *x1 && p.lat >= *y0 && p.lat <= *y1,
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.plate.cmp(&b.plate));
        out
    }
}

/// Scaled out: keeps this node's live state up with what the other nodes announce on the bus,
/// positions stored by the processors (`transport.position.<vehicle>`) and terminals coming and
/// going at the gateways (`transport.presence.<vehicle>`), drivers' cards inserted and removed
/// (`transport.driver.<vehicle>`, the certificate masked). Announcements missed (a restart, a
/// lost NATS connection) are made up by the next ones; the stored positions stay the truth.
pub async fn follow(state: kernel::http::AppState, live: LiveMap, shutdown: kernel::platform::CancellationToken) {
    #[derive(serde::Deserialize)]
    struct Stored {
        vehicle_id: String,
        position: Position,
    }
    #[derive(serde::Deserialize)]
    struct Presence {
        vehicle_id: String,
        online: bool,
        at: i64,
    }
    #[derive(serde::Deserialize)]
    struct Driver {
        vehicle_id: String,
        driver: Option<DriverOnDuty>,
    }
    let subscribed = (
        state.bus.subscribe("transport.position.>"),
        state.bus.subscribe("transport.presence.>"),
        state.bus.subscribe("transport.driver.>"),
    );
    let (mut positions, mut presence, mut drivers) = match subscribed {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            tracing::error!(error = %e, "live state does not follow the other nodes");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            m = positions.next() => match m {
                Some(m) => match serde_json::from_slice::<Stored>(&m.payload) {
                    Ok(s) => {
                        let mut p = s.position;
                        p.vehicle_id = s.vehicle_id;
                        live.update_position(&p);
                    }
                    Err(e) => tracing::debug!(error = %e, "position announcement not understood"),
                },
                None => break,
            },
            m = presence.next() => match m {
                Some(m) => match serde_json::from_slice::<Presence>(&m.payload) {
                    Ok(p) => live.set_online(&p.vehicle_id, p.online, p.at),
                    Err(e) => tracing::debug!(error = %e, "presence announcement not understood"),
                },
                None => break,
            },
            m = drivers.next() => match m {
                Some(m) => match serde_json::from_slice::<Driver>(&m.payload) {
                    Ok(d) => live.set_driver(&d.vehicle_id, d.driver),
                    Err(e) => tracing::debug!(error = %e, "driver announcement not understood"),
                },
                None => break,
            },
        }
    }
}
