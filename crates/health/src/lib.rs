//! The district's health data platform (健康医疗大数据管理平台, 智能医疗与健康 三(一)–(四)).
//!
//! So far: [`linkage`], the record linkage of the master patient index (患者主索引): blocking,
//! field comparison and Fellegi–Sunter scoring with weights estimated by EM; [`synth`], the
//! synthetic district's residents and their duplicates as other institutions register them;
//! [`fhir`], the pure parts of the FHIR R4 server (date and time values as ranges, search
//! parameter values and how they match). The index's store,
//! the FHIR R4 server, consent and the trusted EMR build on it (issue 9).

pub mod access;
pub mod consent;
pub mod fhir;
pub mod fhir_api;
pub mod generate;
pub mod import;
pub mod linkage;
pub mod mpi;
pub mod records;
pub mod retention;
pub mod schema;
pub mod synth;
pub mod trust;

use async_trait::async_trait;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;

/// The health module: the FHIR server at `/fhir` over the resource store.
#[derive(Clone, Default)]
pub struct HealthModule {
    pub keys: records::Keys,
}

#[async_trait]
impl Module for HealthModule {
    fn name(&self) -> &'static str {
        "health"
    }

    fn migrations(&self) -> Vec<Migration> {
        schema::migrations()
    }

    fn mounts(&self) -> Vec<(&'static str, axum::Router<AppState>)> {
        vec![("/fhir", fhir_api::router(self.keys.clone()))]
    }
}
