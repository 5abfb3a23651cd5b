//! Configuration: one typed tree, loaded in layers (defaults, a TOML file, `WUQING__SECTION__KEY`
//! environment variables), unknown keys rejected, then checked into [`Config`] before anything
//! starts.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The raw configuration as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Where the embedded database, keys and files live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub security: SecurityConfig,
    pub telemetry: TelemetryConfig,
    pub bus: BusConfig,
    pub node: NodeConfig,
    pub log: LogConfig,
    pub mqtt: MqttConfig,
    pub console: ConsoleConfig,
    pub files: FilesConfig,
}

/// The file store (`crate::files`): evidence, archives, documents attached to records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Where the blobs live (content-addressed, `ab/cd/<sha256>`). Empty: `DATA_DIR/files`.
    /// Back it up with the database: a row without its blob cannot be served.
    pub dir: Option<PathBuf>,
    /// Largest file accepted, in bytes (larger uploads are refused with 413).
    pub max_bytes: u64,
    /// Media types accepted. Each must be one the store can recognise by its content
    /// (`crate::files::KINDS`): a declared type is never trusted on its own.
    pub allowed_types: Vec<String>,
}
impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: 20 * 1024 * 1024,
            allowed_types: crate::files::KINDS.iter().map(|k| k.media_type.to_string()).collect(),
        }
    }
}

/// The web console's settings that the browser reads (`GET /api/console/settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Raster tiles under the maps: an `https://` XYZ template with `{z}`, `{x}` and `{y}`
    /// (天地图: `https://t0.tianditu.gov.cn/vec_w/wmts?…&tk=KEY`, with its annotation layer as a
    /// second service if wanted). Empty: the maps draw only the district's own roads and boundary,
    /// which needs no internet. Its origin is added to the console's Content-Security-Policy.
    pub map_tile_url: String,
    /// Attribution shown on the map for those tiles (the provider's terms usually require it).
    pub map_tile_attribution: String,
    /// Where the maps open, `[lon, lat]` (WGS-84), and at which zoom.
    pub map_center: [f64; 2],
    pub map_zoom: f64,
}
impl Default for ConsoleConfig {
    fn default() -> Self {
        // Yangcun, the district's seat.
        Self {
            map_tile_url: String::new(),
            map_tile_attribution: String::new(),
            map_center: [117.05, 39.39],
            map_zoom: 10.0,
        }
    }
}
impl ConsoleConfig {
    /// The tile service's origin (`https://host[:port]`), for the Content-Security-Policy.
    pub fn tile_origin(&self) -> Option<&str> {
        let rest = self.map_tile_url.strip_prefix("https://")?;
        let end = rest.find('/').unwrap_or(rest.len());
        Some(&self.map_tile_url[..8 + end])
    }
}

/// MQTT: the platform's own device endpoint (devices connect with their registered credentials;
/// a PUBACK means the reading is stored) and, optionally, an external broker (Mosquitto, EMQX)
/// whose device topics the platform subscribes to and where alarm changes are published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// The device endpoint's listen address, or `off`. If the port is taken the platform still
    /// starts, logs a warning and runs without it.
    pub listen: String,
    /// MQTT over TLS, with the server's certificate (`[server] tls_cert`, `tls_key`); used only
    /// when those are set. An address or `off`; a busy port is logged and skipped.
    pub tls_listen: String,
    /// External broker, `mqtt://host:port` (empty: none).
    pub broker: String,
    /// User name and password at the external broker (empty: anonymous).
    pub broker_username: String,
    pub broker_password: String,
    /// Client id at the external broker; its session is persistent, so readings published while
    /// the platform was down are delivered when it returns.
    pub client_id: String,
    /// First topic level: devices publish to `<prefix>/<device>/telemetry`; alarm changes go to
    /// `<prefix>/alarms/<domain>/<kind>` at the external broker.
    pub topic_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address.
    pub http: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds a request may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// PEM certificate chain; with `tls_key`, HTTP is served over TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://…`; empty means `sqlite://DATA_DIR/wuqing.db`.
    pub url: String,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// A PostgreSQL read replica (`postgres://…`, a hot standby of `url`); empty: none. History
    /// reads that tolerate the replica's lag (track playback, sensor series) go there; anything
    /// read in order to write stays on the primary.
    pub read_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// File holding the field-encryption key (hex, 32 bytes). Empty: `DATA_DIR/keys/field.key`,
    /// created on first start.
    pub key_file: Option<PathBuf>,
    /// The key itself (hex), instead of a file. A secret: masked by `config print`.
    pub field_key: Option<String>,
    pub lockout_threshold: u32,
    pub lockout_minutes: u32,
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
    /// Require a TOTP second factor for the three administrators (等保 2.0 level 3).
    pub admin_totp: bool,
    pub password_min_length: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Observations older than this are purged. The regulation asks ≥ 6 months for vehicle
    /// monitoring data (道路运输车辆动态监督管理办法).
    pub retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Messages a subscriber may have pending before publishers wait.
    pub capacity: usize,
    /// Empty: the in-process bus (one server). `nats://host:port[,nats://…]`: NATS, with
    /// JetStream carrying the observations from gateways to processors (scale-out).
    pub url: String,
    /// Partitions of the observation streams: each device belongs to one (by a hash of its id),
    /// and each partition is processed by one processor at a time. Fixed for the life of a
    /// stream; more partitions than processors lets the load spread (16 serves 8 processors).
    pub partitions: u32,
    /// Copies JetStream keeps of each stream (1 on a single NATS server, 3 on a cluster).
    pub replicas: u32,
    /// The deployment's name at NATS: first token of its subjects (`<namespace>.bus.…`,
    /// `<namespace>.js.…`) and of its streams' names, so that several deployments (production
    /// and training, or tests) can share one NATS.
    pub namespace: String,
}

/// What this process does (`[node] roles`). A single server runs all three.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Any of `gateway` (JT/T 808 and MQTT ingress), `processor` (storage of observations,
    /// rules, alarms, the modules' background work) and `api` (HTTP and the console). Anything
    /// short of all three needs `bus.url` (NATS) and a PostgreSQL store.
    pub roles: Vec<String>,
    /// This node's name in logs and in the cluster's table of processors; empty: the host name
    /// and process id.
    pub name: String,
}

/// The roles of a node, checked from [`NodeConfig::roles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub gateway: bool,
    pub processor: bool,
    pub api: bool,
}

impl Roles {
    /// Every role: the single-server default.
    pub const ALL: Roles = Roles { gateway: true, processor: true, api: true };

    /// Whether this node does everything (and then needs no NATS).
    pub fn all(&self) -> bool {
        *self == Self::ALL
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [(self.gateway, "gateway"), (self.processor, "processor"), (self.api, "api")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join("+"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// An `EnvFilter` directive, e.g. `info` or `kernel=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            security: SecurityConfig::default(),
            telemetry: TelemetryConfig::default(),
            bus: BusConfig::default(),
            node: NodeConfig::default(),
            log: LogConfig::default(),
            mqtt: MqttConfig::default(),
            console: ConsoleConfig::default(),
            files: FilesConfig::default(),
        }
    }
}
impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:1883".into(),
            tls_listen: "0.0.0.0:8883".into(),
            broker: String::new(),
            broker_username: String::new(),
            broker_password: String::new(),
            client_id: "wuqing-platform".into(),
            topic_prefix: "wuqing".into(),
        }
    }
}
impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: "127.0.0.1:8080".into(),
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            tls_cert: None,
            tls_key: None,
        }
    }
}
impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 8, read_url: String::new() }
    }
}
impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            key_file: None,
            field_key: None,
            lockout_threshold: 5,
            lockout_minutes: 15,
            session_idle_minutes: 30,
            session_max_hours: 12,
            admin_totp: true,
            password_min_length: 10,
        }
    }
}
impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { retention_days: 183 }
    }
}
impl Default for BusConfig {
    fn default() -> Self {
        Self { capacity: 1024, url: String::new(), partitions: 16, replicas: 1, namespace: "wuqing".into() }
    }
}
impl Default for NodeConfig {
    fn default() -> Self {
        Self { roles: vec!["gateway".into(), "processor".into(), "api".into()], name: String::new() }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: "text".into() }
    }
}

/// Overrides given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub http: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The checked configuration: every value parsed and validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub store_url: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub roles: Roles,
    /// This node's name (`[node] name`, else host name and process id).
    pub node: String,
}

impl RawConfig {
    /// Loads defaults, then `file` (if any), then `WUQING__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Load(format!("file {} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("WUQING__").split("__").lowercase(true));
        fig.extract::<RawConfig>().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Load(msgs.join("; "))
        })
    }

    /// Validates into a [`Config`].
    pub fn check(mut self, ov: &Overrides) -> Result<Config, ConfigError> {
        if let Some(d) = &ov.data_dir {
            self.data_dir = d.clone();
        }
        if let Some(h) = &ov.http {
            self.server.http = h.clone();
        }
        let http: SocketAddr = self.server.http.parse().map_err(|e| ConfigError::Invalid {
            key: "server.http",
            reason: format!("{:?} is not an address: {e}", self.server.http),
        })?;
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "server.body_limit_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        let store_url = if self.store.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("wuqing.db").display())
        } else {
            self.store.url.clone()
        };
        if !(store_url.starts_with("sqlite:")
            || store_url.starts_with("postgres://")
            || store_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "store.url",
                reason: "must start with sqlite:// or postgres://".into(),
            });
        }
        if self.store.max_connections == 0 {
            return Err(ConfigError::Invalid { key: "store.max_connections", reason: "must be > 0".into() });
        }
        let pg = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
        let replica_ok = pg(&self.store.read_url) && pg(&store_url);
        if !self.store.read_url.is_empty() && !replica_ok {
            return Err(ConfigError::Invalid {
                key: "store.read_url",
                reason: "a read replica is a postgres:// URL, beside a PostgreSQL store.url".into(),
            });
        }
        let s = &self.security;
        if s.lockout_threshold == 0 || s.lockout_minutes == 0 {
            return Err(ConfigError::Invalid {
                key: "security.lockout_threshold",
                reason: "lock-out threshold and minutes must be > 0".into(),
            });
        }
        if s.password_min_length < 8 {
            return Err(ConfigError::Invalid {
                key: "security.password_min_length",
                reason: "must be at least 8 (等保 2.0 password complexity)".into(),
            });
        }
        if s.session_idle_minutes == 0 || s.session_max_hours == 0 {
            return Err(ConfigError::Invalid {
                key: "security.session_idle_minutes",
                reason: "session limits must be > 0".into(),
            });
        }
        if let Some(k) = &s.field_key {
            let ok = k.len() == 32 && k.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "security.field_key",
                    reason: "must be 32 hex digits (a 128-bit SM4 key)".into(),
                });
            }
        }
        if self.telemetry.retention_days == 0 {
            return Err(ConfigError::Invalid { key: "telemetry.retention_days", reason: "must be > 0".into() });
        }
        if self.bus.capacity == 0 {
            return Err(ConfigError::Invalid { key: "bus.capacity", reason: "must be > 0".into() });
        }
        if !self.bus.url.is_empty()
            && !self.bus.url.split(',').all(|u| {
                u.trim().strip_prefix("nats://").is_some_and(|hp| {
                    let hp = hp.rsplit_once('@').map_or(hp, |(_, hp)| hp);
                    hp.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
                })
            })
        {
            return Err(ConfigError::Invalid {
                key: "bus.url",
                reason: "empty, or nats://host:port (several separated by commas)".into(),
            });
        }
        if !(1..=1024).contains(&self.bus.partitions) {
            return Err(ConfigError::Invalid { key: "bus.partitions", reason: "1 to 1024".into() });
        }
        let ns = &self.bus.namespace;
        if ns.is_empty()
            || ns.len() > 32
            || !ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ConfigError::Invalid { key: "bus.namespace", reason: "1 to 32 of a-z 0-9 _".into() });
        }
        if !(1..=5).contains(&self.bus.replicas) {
            return Err(ConfigError::Invalid { key: "bus.replicas", reason: "1 to 5".into() });
        }
        let mut roles = Roles { gateway: false, processor: false, api: false };
        for r in &self.node.roles {
            match r.as_str() {
                "gateway" => roles.gateway = true,
                "processor" => roles.processor = true,
                "api" => roles.api = true,
                other => {
                    return Err(ConfigError::Invalid {
                        key: "node.roles",
                        reason: format!("{other:?}: gateway, processor or api"),
                    });
                }
            }
        }
        if roles == (Roles { gateway: false, processor: false, api: false }) {
            return Err(ConfigError::Invalid { key: "node.roles", reason: "at least one role".into() });
        }
        if !roles.all() && self.bus.url.is_empty() {
            return Err(ConfigError::Invalid {
                key: "node.roles",
                reason: "a node with only some roles needs the others on other nodes: set bus.url (NATS)".into(),
            });
        }
        if !self.bus.url.is_empty() && store_url.starts_with("sqlite:") {
            return Err(ConfigError::Invalid {
                key: "bus.url",
                reason: "a scaled-out platform's nodes share one PostgreSQL store: set store.url".into(),
            });
        }
        if !roles.all() && store_url.starts_with("sqlite:") {
            return Err(ConfigError::Invalid {
                key: "node.roles",
                reason: "nodes with separate roles share one PostgreSQL store: set store.url".into(),
            });
        }
        let node_ok = self.node.name.len() <= 64
            && self.node.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !node_ok {
            return Err(ConfigError::Invalid { key: "node.name", reason: "at most 64 of a-z A-Z 0-9 - _ .".into() });
        }
        let node = if self.node.name.is_empty() {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let host: String =
                host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(48).collect();
            format!("{}-{}", if host.is_empty() { "node" } else { &host }, std::process::id())
        } else {
            self.node.name.clone()
        };
        let m = &self.mqtt;
        if m.listen != "off" && m.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "mqtt.listen",
                reason: format!("{:?}: an address or off", m.listen),
            });
        }
        if m.tls_listen != "off" && m.tls_listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "mqtt.tls_listen",
                reason: format!("{:?}: an address or off", m.tls_listen),
            });
        }
        if !m.broker.is_empty() {
            let ok = m.broker.strip_prefix("mqtt://").is_some_and(|hp| {
                hp.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            });
            if !ok {
                return Err(ConfigError::Invalid { key: "mqtt.broker", reason: "must be mqtt://host:port".into() });
            }
        }
        if m.client_id.is_empty() || m.client_id.len() > 23 {
            return Err(ConfigError::Invalid { key: "mqtt.client_id", reason: "1 to 23 characters".into() });
        }
        let prefix_ok = !m.topic_prefix.is_empty()
            && m.topic_prefix.len() <= 64
            && m.topic_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'/')
            && !m.topic_prefix.starts_with('/')
            && !m.topic_prefix.ends_with('/');
        if !prefix_ok {
            return Err(ConfigError::Invalid {
                key: "mqtt.topic_prefix",
                reason: "1 to 64 of a-z A-Z 0-9 _ - /".into(),
            });
        }
        let c = &self.console;
        if !c.map_tile_url.is_empty() {
            let host_ok = c.tile_origin().is_some_and(|o| {
                o.len() > 8 && o[8..].bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
            let placeholders = ["{z}", "{x}", "{y}"].iter().all(|p| c.map_tile_url.contains(p));
            if !host_ok
                || !placeholders
                || c.map_tile_url.chars().any(|ch| ch.is_whitespace() || ch == '\'' || ch == '"')
            {
                return Err(ConfigError::Invalid {
                    key: "console.map_tile_url",
                    reason: "an https:// URL template with {z}, {x} and {y}, without spaces or quotes".into(),
                });
            }
        }
        let [lon, lat] = c.map_center;
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(ConfigError::Invalid { key: "console.map_center", reason: "[lon, lat] in degrees".into() });
        }
        if !(0.0..=22.0).contains(&c.map_zoom) {
            return Err(ConfigError::Invalid { key: "console.map_zoom", reason: "0 to 22".into() });
        }
        let f = &self.files;
        if !(1..=crate::files::MAX_BYTES_LIMIT).contains(&f.max_bytes) {
            return Err(ConfigError::Invalid {
                key: "files.max_bytes",
                reason: format!("1 to {} bytes", crate::files::MAX_BYTES_LIMIT),
            });
        }
        if f.allowed_types.is_empty() {
            return Err(ConfigError::Invalid { key: "files.allowed_types", reason: "name at least one type".into() });
        }
        if let Some(t) = f.allowed_types.iter().find(|t| crate::files::kind_of(t).is_none()) {
            let known: Vec<&str> = crate::files::KINDS.iter().map(|k| k.media_type).collect();
            return Err(ConfigError::Invalid {
                key: "files.allowed_types",
                reason: format!("{t:?} is not a type the store recognises; known: {}", known.join(", ")),
            });
        }
        if f.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err(ConfigError::Invalid { key: "files.dir", reason: "a directory, or leave it out".into() });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid { key: "log.format", reason: "must be text or json".into() });
        }
        let tls = match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "server.tls_cert",
                    reason: "tls_cert and tls_key go together".into(),
                });
            }
        };
        Ok(Config { data_dir: self.data_dir.clone(), http, store_url, tls, roles, node, raw: self })
    }
}

impl Config {
    /// The effective configuration as TOML, secrets masked.
    pub fn print_masked(&self) -> String {
        let mut raw = self.raw.clone();
        if raw.security.field_key.is_some() {
            raw.security.field_key = Some("********".into());
        }
        raw.store.url = mask_url_password(&self.store_url);
        raw.store.read_url = mask_url_password(&raw.store.read_url);
        raw.bus.url = raw.bus.url.split(',').map(mask_url_password).collect::<Vec<_>>().join(",");
        if !raw.mqtt.broker_password.is_empty() {
            raw.mqtt.broker_password = "********".into();
        }
        toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// Where the field key lives when it is kept in a file.
    pub fn key_file(&self) -> PathBuf {
        self.raw.security.key_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("field.key"))
    }

    /// Where the file store keeps its blobs.
    pub fn files_dir(&self) -> PathBuf {
        self.raw.files.dir.clone().unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// A configuration for tests: everything default under `data_dir`.
    pub fn for_tests(data_dir: &Path) -> Config {
        let mut raw = RawConfig { data_dir: data_dir.to_path_buf(), ..RawConfig::default() };
        // Tests that want the device endpoint give it a port-0 address themselves.
        raw.mqtt.listen = "off".into();
        raw.mqtt.tls_listen = "off".into();
        #[allow(clippy::expect_used)]
        raw.check(&Overrides::default()).expect("default config is valid")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:********@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nhttp = \"127.0.0.1:1\"\nhtp = 3\n").expect("write");
        let err = RawConfig::load(Some(&f)).expect_err("unknown key");
        assert!(err.to_string().contains("htp"), "{err}");
    }

    #[test]
    fn file_layer_and_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[security]\nlockout_threshold = 3\n").expect("write");
        let raw = RawConfig::load(Some(&f)).expect("load");
        assert_eq!(raw.security.lockout_threshold, 3);
        let cfg = raw
            .check(&Overrides { data_dir: Some("/tmp/x".into()), http: Some("0.0.0.0:9000".into()) })
            .expect("check");
        assert_eq!(cfg.http.port(), 9000);
        assert_eq!(cfg.store_url, "sqlite:///tmp/x/wuqing.db");
    }

    #[test]
    fn roles_and_the_bus_are_checked_together() {
        let key = |tweak: fn(&mut RawConfig)| {
            let mut raw = RawConfig::default();
            tweak(&mut raw);
            raw.check(&Overrides::default()).err().map(|e| e.to_string())
        };
        let all = RawConfig::default().check(&Overrides::default()).expect("default");
        assert!(all.roles.all());
        assert_eq!(all.roles.to_string(), "gateway+processor+api");
        // A node with some roles needs NATS and PostgreSQL; NATS needs PostgreSQL.
        let e = key(|r| r.node.roles = vec!["gateway".into()]).expect("no bus");
        assert!(e.contains("node.roles") && e.contains("bus.url"), "{e}");
        let e = key(|r| r.bus.url = "nats://127.0.0.1:4222".into()).expect("sqlite");
        assert!(e.contains("bus.url") && e.contains("PostgreSQL"), "{e}");
        let e = key(|r| r.node.roles = vec!["balancer".into()]).expect("unknown role");
        assert!(e.contains("\"balancer\""), "{e}");
        assert!(key(|r| r.node.roles = vec![]).expect("none").contains("at least one"));
        assert!(key(|r| r.bus.url = "http://x:1".into()).expect("scheme").contains("bus.url"));
        assert!(key(|r| r.bus.namespace = "Has.Dots".into()).expect("ns").contains("bus.namespace"));
        assert!(key(|r| r.bus.partitions = 0).expect("partitions").contains("bus.partitions"));
        assert!(key(|r| r.node.name = "a b".into()).expect("name").contains("node.name"));
        // A read replica is PostgreSQL's, beside a PostgreSQL store.
        let e = key(|r| r.store.read_url = "postgres://replica/wuqing".into()).expect("sqlite store");
        assert!(e.contains("store.read_url"), "{e}");
        let e = key(|r| {
            r.store.url = "postgres://db/wuqing".into();
            r.store.read_url = "sqlite:///tmp/replica.db".into();
        })
        .expect("sqlite replica");
        assert!(e.contains("store.read_url"), "{e}");
        let mut raw = RawConfig::default();
        raw.node.roles = vec!["processor".into()];
        raw.node.name = "proc-1".into();
        raw.bus.url = "nats://a:4222, nats://user:secret@b:4222".into();
        raw.store.url = "postgres://u:pw@db/wuqing".into();
        let cfg = raw.check(&Overrides::default()).expect("processor");
        assert_eq!((cfg.roles.gateway, cfg.roles.processor, cfg.roles.api), (false, true, false));
        assert_eq!(cfg.node, "proc-1");
        let printed = cfg.print_masked();
        assert!(!printed.contains("secret") && !printed.contains(":pw@"), "{printed}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let raw =
            RawConfig { server: ServerConfig { http: "nowhere".into(), ..Default::default() }, ..Default::default() };
        let e = raw.check(&Overrides::default()).expect_err("bad addr");
        assert!(e.to_string().contains("server.http"));
    }

    #[test]
    fn files_types_must_be_recognisable() {
        let cfg =
            RawConfig::default().check(&Overrides { data_dir: Some("/tmp/x".into()), http: None }).expect("check");
        assert_eq!(cfg.files_dir(), PathBuf::from("/tmp/x/files"));
        assert!(cfg.raw.files.allowed_types.iter().any(|t| t == "application/pdf"));
        let mut raw = RawConfig::default();
        raw.files.allowed_types = vec!["application/pdf".into(), "text/html".into()];
        let e = raw.check(&Overrides::default()).expect_err("html cannot be checked");
        assert!(e.to_string().contains("files.allowed_types") && e.to_string().contains("text/html"), "{e}");
        let mut raw = RawConfig::default();
        raw.files.max_bytes = 0;
        assert!(raw.check(&Overrides::default()).is_err());
    }

    #[test]
    fn secrets_are_masked() {
        let mut raw = RawConfig::default();
        raw.security.field_key = Some("00112233445566778899aabbccddeeff".into());
        raw.store.url = "postgres://root:hunter2@127.0.0.1/test".into();
        let cfg = raw.check(&Overrides::default()).expect("check");
        let p = cfg.print_masked();
        assert!(!p.contains("hunter2") && !p.contains("00112233"), "{p}");
    }
}
