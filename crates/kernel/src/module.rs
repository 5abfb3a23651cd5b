//! The seam through which a domain crate joins the platform: its migrations, routes (with their
//! OpenAPI paths), demo data and background tasks (bus subscriptions, gateways). Adding a domain
//! touches the binary in one line: one more entry in its module list.

use crate::http::AppState;
use crate::store::Migration;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// A short stable name (`kernel`, `transport`, `health`); also the migration namespace.
    fn name(&self) -> &'static str;

    /// The module's migrations, applied at start in version order.
    fn migrations(&self) -> Vec<Migration> {
        vec![]
    }

    /// The module's HTTP routes under `/api`, documented with utoipa.
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    /// Routers mounted outside `/api`, each under a prefix of the module's own (`/fhir`): for a
    /// protocol with its own media type, error format and capability document (FHIR answers
    /// OperationOutcomes and publishes a CapabilityStatement, not OpenAPI). They sit behind the
    /// same layers as `/api` (body limit, time-out, panic catcher, refusal audit, metrics) and
    /// must answer unknown paths under their prefix themselves (a fallback): those never reach
    /// the console.
    fn mounts(&self) -> Vec<(&'static str, axum::Router<AppState>)> {
        vec![]
    }

    /// Files served outside `/api` (the web console), if this module has them. The first module
    /// that answers serves every path that is not a route.
    fn console(&self) -> Option<std::sync::Arc<dyn crate::http::Console>> {
        None
    }

    /// Seeds the demo district; must be idempotent (called at every `serve --demo`).
    async fn seed_demo(&self, _state: &AppState, _demo: &mut crate::demo::DemoContext) -> anyhow::Result<()> {
        Ok(())
    }

    /// Starts the module's background tasks; they stop when `shutdown` is cancelled.
    async fn start(
        &self,
        _state: &AppState,
        _shutdown: CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        Ok(vec![])
    }
}
