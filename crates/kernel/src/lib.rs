//! The kernel of the Wuqing Smart District Platform (智慧武清平台): what every domain stands on.
//!
//! - [`config`]: the typed configuration tree and its layers;
//! - [`store`]: one code path over SQLite (embedded) and PostgreSQL, with migrations;
//! - [`access`], [`auth`], [`orgs`], [`users`]: roles, scopes, classification, sessions, tokens;
//! - [`audit`]: the SM3 hash-chained audit log;
//! - [`crypto`]: SM3/SM4 field encryption, blind indexes, masking;
//! - [`bus`], [`telemetry`]: the event bus and the observation time series;
//! - [`import`]: spreadsheet import (xlsx, CSV) with row-level errors, and templates;
//! - [`versioned`]: versioned configuration documents (optimistic publication, audited);
//! - [`files`]: the content-addressed file store (checked types, durable before recorded);
//! - [`http`], [`module`], [`platform`]: the HTTP scaffolding, the module seam, start-up.
//!
//! **API Boundary**: domain crates use this crate's public items; they never touch another
//! domain's tables.

pub mod access;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod files;
pub mod http;
pub mod import;
mod migrations;
pub mod module;
pub mod orgs;
pub mod platform;
pub mod policy;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;
pub mod versioned;

pub use error::{ApiError, ApiResult};
