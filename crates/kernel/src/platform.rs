//! Opening and running the platform: store, migrations, keys, bus, modules, HTTP server and
//! graceful shutdown. The binary calls this; tests call it too.

use crate::bus::LocalBus;
use crate::config::Config;
use crate::crypto::FieldCipher;
use crate::demo::{DemoAccount, DemoContext};
use crate::http::AppState;
use crate::module::Module;
use crate::orgs::OrgTree;
use crate::store::Store;
use anyhow::Context;
use async_trait::async_trait;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
pub use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

/// The kernel as a module: its tables, routes and demo organisations and users.
pub struct KernelModule;

#[async_trait]
impl Module for KernelModule {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn migrations(&self) -> Vec<crate::store::Migration> {
        crate::migrations::all()
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        crate::http::kernel_routes()
    }
    async fn seed_demo(&self, state: &AppState, demo: &mut DemoContext) -> anyhow::Result<()> {
        crate::demo::seed_kernel(state, demo).await
    }
    async fn start(
        &self,
        state: &AppState,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        // The security policy: the newest published version now, and each one announced later
        // (by this node or another).
        if let Some(v) = state.auth.reload(&state.store).await? {
            tracing::info!(version = v, "security policy applied");
        }
        let mut published = state.bus.subscribe(&crate::versioned::subject(crate::policy::DOCUMENT))?;
        let (policy, store, stop) = (state.auth.clone(), state.store.clone(), shutdown.clone());
        let follow = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    m = published.next() => {
                        if m.is_none() { break }
                        match policy.reload(&store).await {
                            Ok(Some(v)) => tracing::info!(version = v, "security policy applied"),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "reading the security policy failed"),
                        }
                    }
                }
            }
        });
        if !state.config.roles.processor {
            return Ok(vec![follow]);
        }
        // Retention: purge observations past the configured age, hourly.
        let store = state.store.clone();
        let node = state.config.node.clone();
        let days = state.config.raw.telemetry.retention_days;
        Ok(vec![
            follow,
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => {
                            let every = std::time::Duration::from_secs(3600);
                            if !matches!(crate::cluster::due(&store, "kernel.telemetry.purge", &node, every).await, Ok(true)) {
                                continue;
                            }
                            match crate::telemetry::purge(&store, days).await {
                                Ok(n) if n > 0 => tracing::info!(purged = n, retention_days = days, "telemetry retention applied"),
                                Ok(_) => {}
                                Err(e) => tracing::warn!(error = %e, "telemetry retention failed"),
                            }
                        },
                    }
                }
            }),
        ])
    }
}

/// How often histogram samples are folded into their summaries when nobody scrapes `/metrics`.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// One Prometheus recorder per process, however many times the platform is opened (tests).
///
/// The recorder keeps every histogram sample until something drains it: a scrape of `/metrics`,
/// or the upkeep that `install` would spawn and `install_recorder` does not. A district without
/// Prometheus never scrapes, so the samples (one per group commit, per request, …) piled up
/// without bound: in the hour's soak (130 commits a second) the process outside SQLite grew
/// 8.5 MB an hour from minute 40 without the upkeep, 0.1 MB with it. A thread of its own (not a
/// task: the recorder outlives any one runtime in tests) runs the upkeep every few seconds.
fn metrics_handle() -> PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let h = match PrometheusBuilder::new().install_recorder() {
            Ok(h) => h,
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        let upkeep = h.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics upkeep thread not started: histograms grow until /metrics is scraped");
        }
        h
    })
    .clone()
}

/// An opened platform: migrated store, keys loaded, modules registered.
pub struct Platform {
    pub state: AppState,
    pub modules: Vec<Arc<dyn Module>>,
}

impl Platform {
    /// Opens the store, applies every module's migrations, loads the field key. The kernel
    /// module is always first; `modules` are the domains.
    pub async fn open(config: Config, domains: Vec<Arc<dyn Module>>) -> anyhow::Result<Platform> {
        let mut modules: Vec<Arc<dyn Module>> = vec![Arc::new(KernelModule)];
        modules.extend(domains);
        let store = Store::open(&config.store_url, config.raw.store.max_connections)
            .await
            .with_context(|| format!("opening the store at {}", crate::config::mask_url_password(&config.store_url)))?;
        let store = match config.raw.store.read_url.as_str() {
            "" => store,
            url => store
                .with_replica(url, config.raw.store.max_connections)
                .with_context(|| format!("opening the read replica at {}", crate::config::mask_url_password(url)))?,
        };
        let migrations: Vec<_> = modules.iter().flat_map(|m| m.migrations()).collect();
        store.migrate(&migrations).await.context("applying migrations")?;
        let cipher = FieldCipher::load_or_create(config.raw.security.field_key.as_deref(), &config.key_file())
            .context("loading the field-encryption key")?;
        let (bus, cluster): (Arc<dyn crate::bus::Bus>, _) = if config.raw.bus.url.is_empty() {
            (Arc::new(LocalBus::new(config.raw.bus.capacity)), None)
        } else {
            let nats = crate::bus::NatsBus::connect(
                &config.raw.bus.url,
                &config.raw.bus.namespace,
                config.raw.bus.capacity,
                &config.node,
            )
            .await
            .with_context(|| {
                format!("connecting to NATS at {}", crate::config::mask_url_password(&config.raw.bus.url))
            })?;
            let cluster = crate::cluster::Cluster::new(nats.client().clone(), &config);
            tracing::info!(node = %config.node, roles = %config.roles, "scaled out over NATS JetStream");
            (Arc::new(nats), Some(cluster))
        };
        let state = AppState {
            store,
            cipher,
            auth: crate::policy::Policy::new(&config.raw.security),
            orgs: OrgTree::default(),
            bus,
            cluster,
            metrics: metrics_handle(),
            openapi: Arc::new(OnceLock::new()),
            config: Arc::new(config),
        };
        Ok(Platform { state, modules })
    }

    /// The HTTP application.
    pub fn router(&self) -> axum::Router {
        if !self.state.config.roles.api {
            return crate::http::node_app(self.state.clone());
        }
        crate::http::app(self.state.clone(), &self.modules)
    }

    /// Seeds the demo district (idempotent); returns the accounts created this time (empty when
    /// it was seeded before).
    pub async fn seed_demo(&self) -> anyhow::Result<Vec<DemoAccount>> {
        let mut ctx = DemoContext::default();
        for m in &self.modules {
            m.seed_demo(&self.state, &mut ctx).await.with_context(|| format!("seeding the demo of {}", m.name()))?;
        }
        Ok(ctx.accounts)
    }

    /// Serves HTTP until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = vec![];
        for m in &self.modules {
            tasks.extend(
                m.start(&self.state, shutdown.clone()).await.with_context(|| format!("starting {}", m.name()))?,
            );
        }
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        let addr = self.state.config.http;
        match self.state.config.tls.clone() {
            None => {
                let listener =
                    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding HTTP to {addr}"))?;
                tracing::info!(addr = %listener.local_addr()?, "http listening");
                let s = shutdown.clone();
                axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await?;
            }
            Some((cert, key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                    .await
                    .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                let s = shutdown.clone();
                tokio::spawn(async move {
                    s.cancelled().await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                });
                tracing::info!(addr = %addr, "https listening");
                axum_server::bind_rustls(addr, tls).handle(handle).serve(app).await?;
            }
        }
        shutdown.cancel();
        for t in tasks {
            let _ = t.await;
        }
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Writes the demo logins to `path` (mode 0600), one `role username password` a line.
pub fn write_demo_accounts(path: &std::path::Path, accounts: &[DemoAccount]) -> std::io::Result<()> {
    let mut s = String::from("# Demo accounts of the Wuqing platform: role username password\n");
    for a in accounts {
        s.push_str(&format!("{} {} {}\n", a.role.as_str(), a.username, a.password));
    }
    crate::crypto::write_private(path, s.as_bytes())
}
