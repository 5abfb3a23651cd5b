//! The pure parts of the FHIR R4 server: values and search semantics, no IO. The store and the
//! HTTP interactions build on them.

pub mod bundle;
pub mod datetime;
pub mod index;
pub mod ndjson;
pub mod query;
pub mod search;
pub mod validate;
