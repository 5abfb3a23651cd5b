//! Transport supervision (运输行业监管, 智能交通 三(三) 一 and 四): the transport bureau's records
//! of the road transport enterprises it supervises. This first part keeps each enterprise's
//! profile (`enterprises`) with its unified social credit code checked (`ident`); licences,
//! practitioners, hazards and their rectification, credit, penalties and documents build on it.

pub mod api;
pub mod demo;
pub mod enterprises;
pub mod ident;

use async_trait::async_trait;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;
use utoipa_axum::router::OpenApiRouter;

/// The supervision module: its tables, routes and demo profiles.
#[derive(Clone, Copy, Default)]
pub struct SupervisionModule;

#[async_trait]
impl Module for SupervisionModule {
    fn name(&self) -> &'static str {
        "supervision"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![Migration {
            module: "supervision",
            version: 1,
            name: "enterprise profiles",
            only: None,
            sql: "CREATE TABLE supervision_enterprises (
    org_id TEXT PRIMARY KEY REFERENCES organisations(id),
    uscc TEXT NOT NULL UNIQUE,
    business_scope TEXT NOT NULL,
    licence_no TEXT NOT NULL,
    licence_valid_until TEXT NOT NULL,
    safety_officer TEXT NOT NULL,
    monitoring_staff BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
)",
        }]
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        api::routes()
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        demo::seed(state, demo).await
    }
}
