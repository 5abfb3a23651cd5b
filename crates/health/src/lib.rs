//! The district's health data platform (健康医疗大数据管理平台, 智能医疗与健康 三(一)–(四)).
//!
//! So far: [`linkage`], the record linkage of the master patient index (患者主索引): blocking,
//! field comparison and Fellegi–Sunter scoring with weights estimated by EM; [`synth`], the
//! synthetic district's residents and their duplicates as other institutions register them;
//! [`fhir`], the pure parts of the FHIR R4 server (date and time values as ranges, search
//! parameter values and how they match). The index's store,
//! the FHIR R4 server, consent and the trusted EMR build on it (issue 9).

pub mod access;
pub mod appointment;
pub mod appointment_api;
pub mod appointment_demo;
pub mod care_demo;
pub mod consent;
pub mod contract;
pub mod contract_api;
pub mod demo;
pub mod fhir;
pub mod fhir_api;
pub mod generate;
pub mod health_api;
pub mod import;
pub mod linkage;
pub mod monitoring;
pub mod monitoring_demo;
pub mod mpi;
pub mod mpi_api;
pub mod mpi_store;
pub mod recognition;
pub mod recognition_api;
pub mod records;
pub mod referral;
pub mod referral_api;
pub mod remote;
pub mod remote_api;
pub mod retention;
pub mod rx;
pub mod rx_api;
pub mod schema;
pub mod synth;
pub mod trust;
pub mod worklist_api;

use async_trait::async_trait;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;

/// The health module: the FHIR server at `/fhir` over the resource store.
#[derive(Clone)]
pub struct HealthModule {
    pub keys: records::Keys,
    pub mpi: mpi_store::MpiState,
    /// Seed the demo district's health records (`serve --demo`); tests that build their own
    /// records turn it off.
    pub demo_records: bool,
    /// Feed the demo's simulated home devices (`serve --demo`).
    pub simulate: bool,
    /// Run the chronic-disease monitoring task (home-device readings → record → worklist).
    pub monitoring: bool,
}

impl Default for HealthModule {
    fn default() -> Self {
        Self {
            keys: Default::default(),
            mpi: Default::default(),
            demo_records: true,
            simulate: false,
            monitoring: true,
        }
    }
}

#[async_trait]
impl Module for HealthModule {
    fn name(&self) -> &'static str {
        "health"
    }

    fn migrations(&self) -> Vec<Migration> {
        schema::migrations()
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        mpi_api::routes()
            .merge(health_api::routes(self.keys.clone()))
            .merge(referral_api::routes(self.keys.clone()))
            .merge(contract_api::routes(self.keys.clone()))
            .merge(rx_api::routes())
            .merge(worklist_api::routes(self.keys.clone()))
            .merge(appointment_api::routes(self.keys.clone()))
            .merge(remote_api::routes(self.keys.clone()))
            .merge(recognition_api::routes(self.keys.clone()))
    }

    fn mounts(&self) -> Vec<(&'static str, axum::Router<AppState>)> {
        vec![("/fhir", fhir_api::router(self.keys.clone(), self.mpi.clone()))]
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut kernel::demo::DemoContext) -> anyhow::Result<()> {
        let records =
            records::Records { store: state.store.clone(), cipher: state.cipher.clone(), keys: self.keys.clone() };
        if !self.demo_records {
            return Ok(());
        }
        demo::seed(state, demo, &records, &self.mpi).await?;
        care_demo::seed(state, demo, &records, &self.keys).await?;
        monitoring_demo::seed(state, demo, &records, &self.keys).await?;
        appointment_demo::seed(state, demo, &self.keys).await?;
        appointment_demo::seed_remote(state, &records, &self.keys).await
    }

    async fn start(
        &self,
        state: &AppState,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let records =
            records::Records { store: state.store.clone(), cipher: state.cipher.clone(), keys: self.keys.clone() };
        let mut tasks = vec![];
        if self.monitoring && state.config.roles.processor {
            let (st, r, stop) = (state.clone(), records.clone(), shutdown.clone());
            tasks.push(tokio::spawn(monitoring::run(st, r, std::time::Duration::from_secs(60), stop)));
        }
        if self.simulate && self.demo_records && state.config.roles.processor {
            tasks.push(tokio::spawn(monitoring_demo::feed(state.clone(), shutdown.clone())));
        }
        let mpi = self.mpi.clone();
        let loader = tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = mpi.ensure(&records) => if let Err(e) = r {
                    tracing::error!(error = %e, "could not load the master patient index");
                },
            }
        });
        tasks.push(loader);
        Ok(tasks)
    }
}
