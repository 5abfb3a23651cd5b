//! Road transport monitoring (道路运输车辆动态监控, 智能交通 三(一)(三)): the registry of vehicles and
//! their JT/T 808 terminals, scoped to the enterprises that own them. The gateway, live positions
//! and track playback build on it.
//!
//! A vertical slice: `model` (types built by parsing), `registry` (service and queries), `api`
//! (routes), `demo` (what `serve --demo` seeds).

pub mod api;
pub mod demo;
pub mod model;
pub mod registry;

use async_trait::async_trait;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;
use utoipa_axum::router::OpenApiRouter;

/// The transport module.
pub struct TransportModule;

#[async_trait]
impl Module for TransportModule {
    fn name(&self) -> &'static str {
        "transport"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![Migration {
            module: "transport",
            version: 1,
            name: "vehicles and terminals",
            only: None,
            sql: r#"
CREATE TABLE transport_vehicles (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    plate TEXT NOT NULL,
    plate_colour TEXT NOT NULL,
    class TEXT NOT NULL,
    vin TEXT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX transport_vehicles_plate ON transport_vehicles(plate, plate_colour);
CREATE INDEX transport_vehicles_org ON transport_vehicles(org_id);
CREATE TABLE transport_terminals (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    phone TEXT NOT NULL UNIQUE,
    terminal_id TEXT NOT NULL DEFAULT '',
    maker TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    vehicle_id TEXT NULL UNIQUE REFERENCES transport_vehicles(id),
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX transport_terminals_org ON transport_terminals(org_id)
"#,
        }]
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        api::routes()
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        demo::seed(state, demo).await
    }
}
