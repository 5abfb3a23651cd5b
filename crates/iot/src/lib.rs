//! Sensor ingestion (物联网接入), a facility every domain after transport uses: cold stores and
//! refrigerated bodies, farm plots, pollution sources, wearables, water gauges, fire IoT.
//!
//! - `registry`: devices with their kind, owner organisation, bound subject and a per-device
//!   credential (shown once, stored hashed).
//! - `payload`: decoders from bytes to samples (`wuqing-json`, SenML), one per device format.
//! - `ingest`: the one path readings take: stored as kernel observations (durable), then on the
//!   bus (`iot.reading.<code>`).
//! - `endpoint`: the platform's own MQTT 3.1.1 endpoint, where a PUBACK means stored.
//! - `broker`: the subscription to an external broker, acknowledged only after storing.
//! - `api`: `/api/iot` (devices, readings, HTTP ingestion, status).
//! - `rules_api`: `/api/iot/rules`, the sensor rules as a versioned document (`iot.rules`).
//! - `alerting`: readings through the `rules` engine's sensor thresholds → alarms (domain `iot`).
//! - `demo`: the demo district's sensors and their in-process feed.

pub mod alerting;
pub mod api;
pub mod broker;
pub mod demo;
pub mod endpoint;
pub mod ingest;
pub mod payload;
pub mod processor;
pub mod registry;
pub mod rules_api;

use async_trait::async_trait;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::Migration;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

/// What the routes and the tasks share.
#[derive(Clone, Default)]
pub struct IotShared {
    pub devices: registry::DeviceCache,
    pub broker: broker::BrokerState,
    /// Where the MQTT endpoint listens, once bound.
    pub listen: Arc<Mutex<Option<SocketAddr>>>,
    /// Where the MQTT-over-TLS endpoint listens, once bound.
    pub tls_listen: Arc<Mutex<Option<SocketAddr>>>,
}

impl IotShared {
    /// The MQTT endpoint's address, if it is listening.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.listen.lock().ok().and_then(|g| *g)
    }

    /// The MQTT-over-TLS endpoint's address, if it is listening.
    pub fn mqtts_addr(&self) -> Option<SocketAddr> {
        self.tls_listen.lock().ok().and_then(|g| *g)
    }
}

/// The IoT module.
#[derive(Clone)]
pub struct IotModule {
    pub shared: IotShared,
    /// The sensor rules (the built-in set by default).
    pub rules: rules::RuleSet,
    /// How often the rules' state is saved.
    pub save_every: Duration,
    /// Run the demo sensors' feed (`serve --demo`).
    pub simulate: bool,
    /// The MQTT endpoint's listen address, over the configuration's (tests: port 0).
    pub listen: Option<String>,
    /// The MQTT-over-TLS endpoint's listen address, over the configuration's.
    pub tls_listen: Option<String>,
}

impl Default for IotModule {
    fn default() -> Self {
        Self {
            shared: IotShared::default(),
            rules: alerting::builtin_rules(),
            save_every: Duration::from_secs(60),
            simulate: false,
            listen: None,
            tls_listen: None,
        }
    }
}

#[async_trait]
impl Module for IotModule {
    fn name(&self) -> &'static str {
        "iot"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![Migration {
            module: "iot",
            version: 1,
            name: "devices and the sensor rules' state",
            only: None,
            sql: "CREATE TABLE iot_devices (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_label TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX iot_devices_org ON iot_devices(org_id, code);
CREATE TABLE iot_rules_state (id BIGINT PRIMARY KEY, snapshot TEXT NOT NULL, saved_ms BIGINT NOT NULL)",
        }]
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        api::routes().merge(rules_api::routes()).layer(axum::Extension(self.shared.clone()))
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        demo::seed(state, demo).await
    }

    async fn start(
        &self,
        state: &AppState,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let cfg = &state.config.raw.mqtt;
        let mut tasks = Vec::new();
        let roles = state.config.roles;
        if let Some(cluster) = &state.cluster {
            // The stream the gateways write readings to and the processors read: created (or
            // checked) by whichever node starts first.
            cluster.ready(ingest::STREAM).await?;
        }
        if roles.processor {
            // Scaled out, each processor runs the rules of the device partitions it holds, as it
            // stores their readings; on a single server the rules hear the bus.
            let run = if state.cluster.is_some() {
                tokio::spawn(processor::run(state.clone(), self.rules.clone(), self.save_every, shutdown.clone()))
            } else {
                tokio::spawn(alerting::run(state.clone(), self.rules.clone(), self.save_every, shutdown.clone()))
            };
            tasks.push(run);
            if self.simulate {
                tasks.push(tokio::spawn(demo::feed(state.clone(), shutdown.clone())));
            }
        }
        // Devices' ingress (the MQTT endpoint, the external broker's subscription) on gateways.
        if !roles.gateway {
            return Ok(tasks);
        }
        let listen = self.listen.clone().unwrap_or_else(|| cfg.listen.clone());
        let ep = endpoint::Endpoint::new(state.clone(), self.shared.devices.clone(), &cfg.topic_prefix);
        if let Some(l) = endpoint::bind(&listen).await {
            if let Ok(mut g) = self.shared.listen.lock() {
                *g = l.local_addr().ok();
            }
            tasks.push(tokio::spawn(ep.clone().run(l, None, shutdown.clone())));
        }
        // MQTT over TLS with the server's certificate, when it has one.
        let tls_listen = self.tls_listen.clone().unwrap_or_else(|| cfg.tls_listen.clone());
        if let (Some((cert, key)), true) = (&state.config.tls, tls_listen != "off") {
            match endpoint::tls_acceptor(cert, key).await {
                Ok(acceptor) => {
                    if let Some(l) = endpoint::bind(&tls_listen).await {
                        if let Ok(mut g) = self.shared.tls_listen.lock() {
                            *g = l.local_addr().ok();
                        }
                        tasks.push(tokio::spawn(ep.run(l, Some(acceptor), shutdown.clone())));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "MQTT over TLS not started: the certificate or key was not read"),
            }
        }
        if !cfg.broker.is_empty() {
            tasks.push(tokio::spawn(broker::run(
                state.clone(),
                self.shared.devices.clone(),
                self.shared.broker.clone(),
                shutdown.clone(),
            )));
        }
        Ok(tasks)
    }
}
