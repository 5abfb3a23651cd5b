//! Road transport monitoring (道路运输车辆动态监控, 智能交通 三(一)(三)): the registry of vehicles and
//! their JT/T 808 terminals, scoped to the enterprises that own them. The gateway, live positions
//! and track playback build on it.
//!
//! A vertical slice: `model` (types built by parsing), `registry` (service and queries), `api`
//! (routes), `demo` (what `serve --demo` seeds).

pub mod alerting;
pub mod api;
pub mod assessment;
pub mod basemap;
pub mod command;
pub mod demo;
pub mod gateway;
pub mod import;
pub mod ingest;
pub mod live;
pub mod model;
pub mod positions;
pub mod processor;
pub mod registry;
pub mod rules_api;
pub mod stream;
pub mod writer;

use async_trait::async_trait;
use kernel::demo::DemoContext;
use kernel::http::AppState;
use kernel::module::Module;
use kernel::store::{Backend, Migration};
use utoipa_axum::router::OpenApiRouter;

/// The transport module: its live state lives as long as the platform.
#[derive(Clone, Default)]
pub struct TransportModule {
    pub live: live::LiveMap,
    pub connections: gateway::Connections,
    /// Where the JT/T 808 gateway listens; `None`: no gateway.
    pub jt808: Option<std::net::SocketAddr>,
    pub gateway: gateway::GatewayConfig,
    /// Drive the demo's simulated terminals against the gateway (`serve --demo`).
    pub simulate: bool,
    /// Run the transport rules and raise their alarms (needs the alarms module beside it).
    pub alerting: bool,
    /// How often the rules task ticks, saves and re-reads profiles (shorter in tests).
    pub alerting_intervals: alerting::Intervals,
    /// The address the gateway actually bound (port 0 in tests picks one).
    pub bound: std::sync::Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    /// How the gateway's position storage fares: commits, failures, episodes of trouble.
    pub storage: writer::StorageHealth,
}

impl TransportModule {
    /// Without a gateway (tests, API-only nodes).
    pub fn new() -> Self {
        Self::default()
    }

    /// With the JT/T 808 gateway listening on `addr`.
    pub fn with_gateway(addr: std::net::SocketAddr) -> Self {
        Self { jt808: Some(addr), ..Self::default() }
    }

    /// The API's live state: from the registry and each vehicle's newest stored position, the
    /// registry re-read every minute, and (scaled out) the positions and presence other nodes
    /// announce.
    async fn start_live(
        &self,
        state: &AppState,
        shutdown: kernel::platform::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        // One index seek per vehicle, so start-up does not grow with months of stored positions.
        let mut offset = 0;
        loop {
            let (page, _) = registry::all_vehicles(&state.store, 500, offset).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as i64;
            for v in &page {
                self.live.register(v);
                if let Some(p) = positions::latest(&state.store, &v.id).await? {
                    self.live.update_position(&p);
                }
            }
        }
        // Every minute the registry is read again: vehicles registered or changed on another node
        // (this node's API registers its own at once) join the live state.
        let mut tasks = vec![{
            let (live, store, stop) = (self.live.clone(), state.store.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            let mut offset = 0;
                            loop {
                                match registry::all_vehicles(&store, 500, offset).await {
                                    Ok((page, _)) if !page.is_empty() => {
                                        offset += page.len() as i64;
                                        page.iter().for_each(|v| live.register(v));
                                    }
                                    Ok(_) => break,
                                    Err(e) => {
                                        tracing::warn!(error = %e, "re-reading the vehicle registry failed");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
            })
        }];
        if state.cluster.is_some() {
            tasks.push(tokio::spawn(live::follow(state.clone(), self.live.clone(), shutdown)));
        }
        Ok(tasks)
    }

    /// The JT/T 808 gateway on `addr`, and the demo's terminals driven against it.
    async fn start_gateway(
        &self,
        state: &AppState,
        addr: std::net::SocketAddr,
        shutdown: kernel::platform::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut tasks = vec![];
        // A busy port must not stop the platform (the demo runs on machines where anything
        // may hold 6808): the gateway is then off, and says so.
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let local = listener.local_addr()?;
                let _ = self.bound.set(local);
                tracing::info!(addr = %local, "jt808 gateway listening");
                let gw = gateway::Gateway::new(
                    state.clone(),
                    self.live.clone(),
                    self.connections.clone(),
                    self.gateway.clone(),
                    self.storage.clone(),
                );
                let stop = shutdown.clone();
                tasks.push(tokio::spawn(async move { gw.serve(listener, stop).await }));
                if let Some(cluster) = &state.cluster {
                    let (cluster, conns, stop) = (cluster.clone(), self.connections.clone(), shutdown.clone());
                    tasks.push(tokio::spawn(gateway::serve_connection_lists(cluster, conns, stop)));
                }
                if self.simulate {
                    let target = if local.ip().is_unspecified() {
                        std::net::SocketAddr::from(([127, 0, 0, 1], local.port()))
                    } else {
                        local
                    };
                    tasks.extend(demo::drive_fleet(state, target, shutdown.clone()).await?);
                }
            }
            Err(e) => tracing::error!(%addr, error = %e, "jt808 gateway disabled: cannot listen"),
        }
        Ok(tasks)
    }
}

use kernel::store::days::{self, DAY_MS};

/// How long after a UTC day ends its partition is compacted: most blind-area uploads of that
/// day have arrived by then (later ones are still stored, into the compacted index).
const COMPACT_AFTER_MS: i64 = 3_600_000;

/// PostgreSQL: rebuilds the primary key of each closed day's partition once. While a day is
/// written, every vehicle appends at its own place in the index, so leaf pages split and stay
/// half full, and a vehicle's entries end up on pages scattered over the file: a cold track
/// read is a hundred random reads. Rebuilt (`REINDEX … CONCURRENTLY`: reads and late writes go
/// on meanwhile) the index is packed and in key order, so a vehicle's day is a few consecutive
/// pages. Each day is done once (`transport_compacted_days`); a rebuild that a crash
/// interrupted leaves an invalid index behind, which is dropped first.
async fn compact_closed_days(store: &kernel::store::Store, now: i64) -> anyhow::Result<()> {
    let last_closed = (now - COMPACT_AFTER_MS).div_euclid(DAY_MS) - 1;
    for d in [last_closed - 1, last_closed] {
        compact_day(store, d).await?;
    }
    Ok(())
}

/// Rebuilds the primary key of the partition of UTC day `day` (days since the epoch) unless it
/// was done before; `false` when there is nothing to do (SQLite, no such partition, done).
pub async fn compact_day(store: &kernel::store::Store, day: i64) -> anyhow::Result<bool> {
    let Some(pg) = store.pg() else { return Ok(false) };
    let name = format!("transport_positions_d{day}");
    let exists: bool = sqlx::query_scalar(&format!("SELECT to_regclass('{name}') IS NOT NULL")).fetch_one(pg).await?;
    let done: Option<i64> = sqlx::query_scalar("SELECT done_ms FROM transport_compacted_days WHERE day = $1")
        .bind(day)
        .fetch_optional(pg)
        .await?;
    if !exists || done.is_some() {
        return Ok(false);
    }
    let leftovers: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = '{name}'::regclass AND NOT indisvalid"
    ))
    .fetch_all(pg)
    .await?;
    for index in leftovers {
        tracing::warn!(index = %index, "dropping an index a broken rebuild left behind");
        sqlx::raw_sql(&format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")).execute(pg).await?;
    }
    let began = std::time::Instant::now();
    sqlx::raw_sql(&format!("REINDEX INDEX CONCURRENTLY {name}_pkey")).execute(pg).await?;
    sqlx::raw_sql(&format!("VACUUM (ANALYZE) {name}")).execute(pg).await?;
    sqlx::query("INSERT INTO transport_compacted_days (day, done_ms) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
        .bind(day)
        .bind(kernel::store::now_ms())
        .execute(pg)
        .await?;
    tracing::info!(partition = %name, seconds = began.elapsed().as_secs_f64(), "position partition compacted");
    Ok(true)
}

/// Retention: positions older than the kernel's telemetry retention (≥ 6 months by default, as
/// the regulation asks) are removed. On PostgreSQL positions are partitioned by UTC day: whole
/// partitions are dropped, and the partitions of the coming days are created ahead of the data.
pub async fn maintain_positions(state: &AppState) -> anyhow::Result<()> {
    let retention = state.config.raw.telemetry.retention_days;
    let now = kernel::store::now_ms();
    let cutoff = now - i64::from(retention) * DAY_MS;
    let store = &state.store;
    if store.backend() == Backend::Postgres {
        let today = now.div_euclid(DAY_MS);
        days::create(store, "transport_positions", today..=today + 2).await;
        // A track is read from the primary key's index alone only where the visibility map
        // says the table's page is all-visible; autovacuum sets it only after a fifth of a
        // partition has been added. Vacuum yesterday's and today's partitions every hour:
        // pages already all-visible are skipped, so each run costs about the last hour's rows.
        for d in [today - 1, today] {
            if days::exists(store, "transport_positions", d).await? {
                let name = days::partition_name("transport_positions", d);
                sqlx::raw_sql(&format!("VACUUM (ANALYZE) {name}")).execute(store.reader()).await?;
            }
        }
        compact_closed_days(store, now).await?;
        for day in days::drop_before(store, "transport_positions", cutoff).await? {
            sqlx::query("DELETE FROM transport_compacted_days WHERE day = $1")
                .bind(day)
                .execute(store.reader())
                .await?;
        }
    }
    let mut n = 0;
    if store.backend() == Backend::Postgres {
        // What is left past the dropped partitions (the default partition, today's): pruned by
        // device time.
        let mut tx = store.begin().await?;
        n = sqlx::query("DELETE FROM transport_positions WHERE device_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
    } else {
        // SQLite has no index on device time alone (the table is clustered by vehicle): a plain
        // DELETE by time scans every stored position while holding the one writer (11 s at
        // 100 M positions, and every write waits). Per vehicle it is an index range, and a short
        // transaction per page of vehicles lets the gateway's commits in between.
        let sql = store.sql("DELETE FROM transport_positions WHERE vehicle_id = $1 AND device_ms < $2").into_owned();
        let mut offset = 0;
        loop {
            let (page, _) = registry::all_vehicles(store, 200, offset).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as i64;
            let mut tx = store.begin().await?;
            for v in &page {
                n += sqlx::query(&sql).bind(v.id.as_str()).bind(cutoff).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        }
    }
    if n > 0 {
        tracing::info!(removed = n, retention_days = retention, "position retention applied");
    }
    Ok(())
}

#[async_trait]
impl Module for TransportModule {
    fn name(&self) -> &'static str {
        "transport"
    }

    fn migrations(&self) -> Vec<Migration> {
        vec![
            Migration {
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
            },
            // Positions: clustered by vehicle and time, so that a track is one range scan.
            Migration {
                module: "transport",
                version: 2,
                name: "positions (sqlite)",
                only: Some(Backend::Sqlite),
                sql: "CREATE TABLE transport_positions (vehicle_id TEXT NOT NULL, device_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, \
                      lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, altitude_m BIGINT NOT NULL, speed_dkmh BIGINT NOT NULL, heading BIGINT NOT NULL, \
                      alarm BIGINT NOT NULL, status BIGINT NOT NULL, mileage_hm BIGINT NULL, extras BLOB NULL, \
                      PRIMARY KEY (vehicle_id, device_ms)) WITHOUT ROWID",
            },
            Migration {
                module: "transport",
                version: 2,
                name: "positions (postgres)",
                only: Some(Backend::Postgres),
                sql: "CREATE TABLE transport_positions (vehicle_id TEXT NOT NULL, device_ms BIGINT NOT NULL, received_ms BIGINT NOT NULL, \
                      lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, altitude_m BIGINT NOT NULL, speed_dkmh BIGINT NOT NULL, heading BIGINT NOT NULL, \
                      alarm BIGINT NOT NULL, status BIGINT NOT NULL, mileage_hm BIGINT NULL, extras BLOB NULL, \
                      PRIMARY KEY (vehicle_id, device_ms)) PARTITION BY RANGE (device_ms);\n\
                      CREATE TABLE transport_positions_default PARTITION OF transport_positions DEFAULT",
            },
            Migration {
                module: "transport",
                version: 3,
                name: "terminal authentication codes",
                only: None,
                sql: "ALTER TABLE transport_terminals ADD COLUMN auth_code_hash TEXT NULL",
            },
            // PostgreSQL keeps rows in arrival order (a heap), so a vehicle's day is 2 880 rows on
            // as many pages, spread among every other vehicle's. Carrying the track's columns in
            // the primary key's index makes the track an index-only scan of a few dozen
            // consecutive leaf pages. (SQLite's table is already clustered by vehicle and time.)
            Migration {
                module: "transport",
                version: 4,
                name: "positions: track columns in the primary key (postgres)",
                only: Some(Backend::Postgres),
                sql: "ALTER TABLE transport_positions DROP CONSTRAINT transport_positions_pkey;\n\
                      ALTER TABLE transport_positions ADD CONSTRAINT transport_positions_pkey PRIMARY KEY (vehicle_id, device_ms) \
                      INCLUDE (received_ms, lat, lon, altitude_m, speed_dkmh, heading, alarm, status, mileage_hm)",
            },
            // Which closed days' partitions have had their index rebuilt (`maintain_positions`).
            Migration {
                module: "transport",
                version: 5,
                name: "compacted position days (postgres)",
                only: Some(Backend::Postgres),
                sql: "CREATE TABLE transport_compacted_days (day BIGINT PRIMARY KEY, done_ms BIGINT NOT NULL)",
            },
            // The rules engine's state (`alerting`), so that a restart keeps the driving clocks.
            Migration {
                module: "transport",
                version: 6,
                name: "rules engine state",
                only: None,
                sql: "CREATE TABLE transport_rules_state (id BIGINT PRIMARY KEY, snapshot TEXT NOT NULL, saved_ms BIGINT NOT NULL)",
            },
            // Assessment figures (`assessment`): one row per vehicle and local day it reported, and
            // which closed days have been computed.
            Migration {
                module: "transport",
                version: 7,
                name: "assessment vehicle-days",
                only: None,
                sql: "CREATE TABLE transport_assessment_days (vehicle_id TEXT NOT NULL, day BIGINT NOT NULL, points BIGINT NOT NULL, \
                      qualified BIGINT NOT NULL, drift BIGINT NOT NULL, mileage_m DOUBLE NOT NULL, incomplete_m DOUBLE NOT NULL, \
                      first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL, computed_ms BIGINT NOT NULL, PRIMARY KEY (vehicle_id, day));\n\
                      CREATE INDEX transport_assessment_days_day ON transport_assessment_days(day);\n\
                      CREATE TABLE transport_assessment_computed (day BIGINT PRIMARY KEY, vehicles BIGINT NOT NULL, computed_ms BIGINT NOT NULL)",
            },
        ]
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        api::routes()
            .merge(assessment::routes())
            .merge(basemap::routes())
            .merge(import::routes())
            .merge(rules_api::routes())
            .layer(axum::Extension(self.live.clone()))
            .layer(axum::Extension(self.connections.clone()))
    }

    async fn start(
        &self,
        state: &AppState,
        shutdown: kernel::platform::CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let roles = state.config.roles;
        let scaled_out = state.cluster.is_some();
        if let Some(cluster) = &state.cluster {
            // The stream the gateways write to and the processors read: created (or checked)
            // by whichever node starts first.
            cluster.ready(writer::STREAM).await?;
            // Commands for terminals held by other gateways go over NATS.
            self.connections.set_cluster(cluster.clone());
        }
        let mut tasks = vec![];
        if roles.api {
            tasks.extend(self.start_live(state, shutdown.clone()).await?);
        }
        if roles.gateway {
            if let Some(addr) = self.jt808 {
                tasks.extend(self.start_gateway(state, addr, shutdown.clone()).await?);
            }
        }
        if !roles.processor {
            return Ok(tasks);
        }
        if scaled_out {
            let (st, live, conns, every) =
                (state.clone(), self.live.clone(), self.connections.clone(), self.alerting_intervals);
            tasks.push(tokio::spawn(processor::run(st, live, conns, self.alerting, every, shutdown.clone())));
        } else if self.alerting {
            let every = self.alerting_intervals;
            tasks.push(tokio::spawn(alerting::run(state.clone(), self.connections.clone(), every, shutdown.clone())));
        }
        tasks.push(tokio::spawn(assessment::run(state.store.clone(), state.config.node.clone(), shutdown.clone())));
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        // Once an hour across the processors (partitions dropped, indexes rebuilt).
                        let every = std::time::Duration::from_secs(3600);
                        match kernel::cluster::due(&st.store, "transport.positions.maintain", &st.config.node, every).await {
                            Ok(true) => if let Err(e) = maintain_positions(&st).await {
                                tracing::warn!(error = %e, "position retention failed");
                            },
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "position retention not scheduled"),
                        }
                    },
                }
            }
        }));
        Ok(tasks)
    }

    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        demo::seed(state, demo).await
    }
}
