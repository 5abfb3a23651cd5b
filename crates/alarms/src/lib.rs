//! Alarms (报警) of every domain and their handling (处置), the monitoring desk's work list.
//!
//! Rule engines (the transport rules now; cold chain, farms, pollution sources and wearables
//! later) raise alarms through [`service::raise`]: one alarm per episode of a condition on a
//! subject, updated rather than repeated while the condition lasts. The owning enterprise's
//! operators acknowledge, handle (with the action taken) and close them; regulators see every
//! alarm of their domain and supervise (督办) an enterprise's handling. Every step is stored with
//! who and when, audited, and published on the bus (`alarms.<domain>.<kind>`) for the desk's
//! WebSocket and the notification sinks.
//!
//! A vertical slice: `model`, `service` (no HTTP), `api` (`/api/alarms`), `stream` (the desk's
//! WebSocket), `sinks` (signed webhooks per organisation and the MQTT publication).

pub mod api;
pub mod engines;
pub mod model;
pub mod service;
pub mod sinks;
pub mod stream;

use async_trait::async_trait;
use kernel::module::Module;
use kernel::store::Migration;
use utoipa_axum::router::OpenApiRouter;

/// The alarms module.
#[derive(Clone, Default)]
pub struct AlarmsModule {
    /// The fan-out of changes to the desk's WebSocket.
    pub hub: stream::Hub,
    /// The notification sinks (webhooks, MQTT): their settings and shared parts.
    pub sinks: sinks::Sinks,
}

impl AlarmsModule {
    /// The module with other sink settings (tests shorten the webhook back-off).
    pub fn with_sink_settings(settings: sinks::SinkSettings) -> Self {
        Self { sinks: sinks::Sinks::new(settings), ..Self::default() }
    }
}

#[async_trait]
impl Module for AlarmsModule {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![
            Migration {
                module: "alarms",
                version: 1,
                name: "alarms and their handling steps",
                only: None,
                sql: "CREATE TABLE alarms (
    id TEXT PRIMARY KEY,
    episode_key TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity BIGINT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_label TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    status TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    ended_ms BIGINT NULL,
    triggers BIGINT NOT NULL,
    rule_version BIGINT NOT NULL,
    details TEXT NOT NULL,
    evidence TEXT NOT NULL,
    action TEXT NULL,
    supervised BIGINT NOT NULL,
    acknowledged_ms BIGINT NULL,
    handled_ms BIGINT NULL,
    closed_ms BIGINT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX alarms_org_started ON alarms(org_id, started_ms);
CREATE INDEX alarms_status_severity ON alarms(status, severity, started_ms);
CREATE INDEX alarms_subject ON alarms(subject_id, started_ms);
CREATE TABLE alarm_steps (
    alarm_id TEXT NOT NULL REFERENCES alarms(id),
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    step TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (alarm_id, seq)
)",
            },
            Migration {
                module: "alarms",
                version: 2,
                name: "alarm webhooks and their deliveries",
                only: None,
                // `alarm_id` has no foreign key: deliveries are a log purged after 30 days, and
                // a test event has no alarm.
                sql: "CREATE TABLE alarm_webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations(id),
    scope_role TEXT NOT NULL,
    description TEXT NOT NULL,
    url TEXT NOT NULL,
    secret_enc BLOB NOT NULL,
    min_severity BIGINT NOT NULL,
    domains TEXT NOT NULL,
    kinds TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX alarm_webhooks_org ON alarm_webhooks(org_id, created_ms);
CREATE TABLE alarm_webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES alarm_webhooks(id),
    alarm_id TEXT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_status_code BIGINT NULL,
    last_error TEXT NULL,
    created_ms BIGINT NOT NULL,
    delivered_ms BIGINT NULL
);
CREATE INDEX alarm_webhook_deliveries_due ON alarm_webhook_deliveries(status, next_attempt_ms);
CREATE INDEX alarm_webhook_deliveries_hook ON alarm_webhook_deliveries(webhook_id, created_ms)",
            },
            Migration {
                module: "alarms",
                version: 3,
                name: "the desk's order as an index",
                only: None,
                // The desk lists by severity, then oldest first. Without an index in that order
                // every page sorted all alarms in scope: 23 ms for 10 000 alarms on SQLite, and
                // 93 pages/s for 50 clients (bench/api.sh); with it a page reads 50 entries.
                sql: "CREATE INDEX alarms_desk_order ON alarms(severity DESC, started_ms, id)",
            },
            // Scaled out, every processor hears every alarm change: a change is queued once per
            // webhook whichever hears it first (the SHA-256 of the body names the change).
            Migration {
                module: "alarms",
                version: 4,
                name: "one delivery per change and webhook",
                only: None,
                sql: "ALTER TABLE alarm_webhook_deliveries ADD COLUMN change_sha256 TEXT NULL;\n\
                      CREATE UNIQUE INDEX alarm_webhook_deliveries_change ON alarm_webhook_deliveries(webhook_id, change_sha256)",
            },
        ]
    }

    fn routes(&self) -> OpenApiRouter<kernel::http::AppState> {
        api::routes()
            .merge(sinks::api::routes())
            .layer(axum::Extension(self.hub.clone()))
            .layer(axum::Extension(self.sinks.clone()))
    }

    async fn start(
        &self,
        state: &kernel::http::AppState,
        shutdown: kernel::platform::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let roles = state.config.roles;
        let mut tasks = vec![];
        // The desk's WebSocket on API nodes; the notification sinks on processors.
        if roles.api {
            tasks.push(tokio::spawn(self.hub.clone().run(state.bus.clone(), shutdown.clone())));
        }
        if roles.processor {
            let changes = state.bus.subscribe("alarms.>")?;
            tasks.push(tokio::spawn(sinks::delivery::intake(
                state.clone(),
                self.sinks.clone(),
                changes,
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(sinks::delivery::sender(state.clone(), self.sinks.clone(), shutdown.clone())));
            tasks.extend(sinks::mqtt::spawn(&state.config.raw.mqtt, state.bus.clone(), &self.sinks, shutdown));
        }
        Ok(tasks)
    }
}
