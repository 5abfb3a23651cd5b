//! `wuqing`: the platform binary. Glue only: parse the command line, load the configuration,
//! open the platform with its modules, run the chosen command.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kernel::access::{Classification, Role};
use kernel::audit::Actor;
use kernel::config::{Config, Overrides, RawConfig};
use kernel::platform::CancellationToken;
use kernel::platform::Platform;
use std::path::PathBuf;
use std::sync::Arc;
use wuqing::modules;

/// `--jt808 ADDR` or `--jt808 off`.
fn parse_jt808(s: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if s == "off" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e| anyhow::anyhow!("--jt808 {s:?}: an address such as 0.0.0.0:6808, or off ({e})"))
}

#[derive(Parser)]
#[command(name = "wuqing", version, about = "智慧武清平台 Wuqing Smart District Platform")]
struct Cli {
    /// TOML configuration file (then WUQING__SECTION__KEY environment variables apply).
    #[arg(long, global = true, env = "WUQING_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (embedded database, keys, files); default ./data.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the platform.
    Serve {
        /// Seed and run the demo district.
        #[arg(long)]
        demo: bool,
        /// HTTP listen address (default 127.0.0.1:8080).
        #[arg(long)]
        http: Option<String>,
        /// JT/T 808 terminal gateway address, or `off`.
        #[arg(long, default_value = "0.0.0.0:6808")]
        jt808: String,
        /// MQTT device endpoint address, or `off` (default: [mqtt] listen, 0.0.0.0:1883). A busy
        /// port is logged and the platform runs without the endpoint.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Applies migrations and exits.
    Migrate,
    /// Manages user accounts on the server (the only way to create administrators).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Writes a consistent copy of the embedded database (safe while the server runs).
    Backup {
        /// Destination file; default DATA_DIR/backups/wuqing-<time>.db.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Drives simulated JT/T 808 terminals against a gateway (demo, tests, load).
    Sim {
        #[command(subcommand)]
        cmd: SimCmd,
    },
    /// Shows configuration.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// The health data platform.
    Health {
        #[command(subcommand)]
        cmd: HealthCmd,
    },
    /// Checks the database's integrity (SQLite `integrity_check`; PostgreSQL `amcheck` on every
    /// B-tree index); exits non-zero on a fault. For after a crash, and before a backup is trusted.
    Check,
}

#[derive(Subcommand)]
enum HealthCmd {
    /// Writes a synthetic district as FHIR R4 NDJSON, one file per resource type
    /// (Organization, Patient, Condition, Encounter, Observation): believable residents with
    /// valid citizen IDs, hypertension and diabetes near the national prevalence, a year of
    /// visits. Never real people.
    Generate {
        /// Residents to generate.
        #[arg(long, default_value_t = 1000)]
        residents: usize,
        /// Seed: the same seed gives the same district.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The year of the visits (residents are born up to it).
        #[arg(long, default_value_t = 2026)]
        year: i32,
        /// Directory to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks FHIR R4 NDJSON files (one resource per line) before they are sent: every line's
    /// structure, cardinality and codes, reported by file, line and path; exits non-zero if any
    /// line is invalid.
    Validate {
        /// NDJSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Loads FHIR R4 NDJSON files into the store as one institution's records (Bulk Data
    /// import): valid lines stored, sealed with the institution's key and audited in batches;
    /// invalid lines reported by file, line and path. Resources keep their ids; load Patients
    /// before the records that refer to them.
    Import {
        /// The institution the records belong to: its organisation id or its name.
        #[arg(long)]
        org: String,
        /// NDJSON files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Checks every stored version of every record against its digest chain and its seal
    /// (SM3, SM2); exits non-zero when any was changed outside the platform.
    Verify,
    /// The institutions' signing keys (SM2): without a subcommand, lists the published
    /// verifying keys.
    Keys {
        #[command(subcommand)]
        cmd: Option<KeysCmd>,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Retires an institution's signing key and puts a new one in its place (generated, or the
    /// institution's own from a file). Seals made before stay verifiable with the retired key.
    /// A running server takes the new key up within a minute.
    Rotate {
        /// The institution: its organisation id or its exact name.
        #[arg(long)]
        org: String,
        /// A file holding the SM2 private key as 64 hexadecimal digits (the 32-byte scalar of
        /// GM/T 0003), instead of a generated key. The file is read, never copied or logged.
        #[arg(long)]
        private_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Creates a user; prints the generated initial password, which must be changed at first login.
    Add {
        username: String,
        #[arg(long)]
        role: String,
        /// Organisation id (default: the root organisation).
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// public, internal, sensitive or confidential.
        #[arg(long, default_value = "internal")]
        clearance: String,
    },
    /// Sets a new generated initial password; the user must change it at next login.
    Passwd { username: String },
    /// Locks an account and ends its sessions.
    Lock { username: String },
    /// Unlocks an account (also after failed logins).
    Unlock { username: String },
}

#[derive(Subcommand)]
enum SimCmd {
    /// Runs terminals with the given phone numbers (they must be bound to vehicles).
    Run {
        /// Gateway address; several separated by commas: terminals are spread over them and
        /// fall back to the next when theirs goes away (a backup server, JT/T 808 0x0017).
        #[arg(long, default_value = "127.0.0.1:6808", value_delimiter = ',')]
        gateway: Vec<std::net::SocketAddr>,
        /// A range of phone numbers, e.g. 13900000001-13900000020.
        #[arg(long)]
        phones: String,
        /// Milliseconds between position reports of one terminal.
        #[arg(long, default_value_t = 10_000)]
        interval_ms: u64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        /// Drive at this multiple of the road speed (1.3: a speeding scenario).
        #[arg(long, default_value_t = 1.0)]
        speed_factor: f64,
        /// Never rest (a fatigue scenario).
        #[arg(long)]
        no_rest: bool,
        /// Write every acknowledged report (`phone device_seconds`) to this file at the end.
        #[arg(long)]
        ack_log: Option<PathBuf>,
        /// Scenario file (TOML): chosen vehicles speed, never rest, go offline or leave their
        /// route at given times; see examples/scenarios/demo.toml.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Each terminal starts with this many seconds of fixes (one a second, at most 10 000) not
        /// yet uploaded, as after a long blind area, and uploads them as 0x0704 batches first:
        /// the ingest benchmark's heaviest load.
        #[arg(long, default_value_t = 0)]
        backlog_s: usize,
        /// A ladder of report intervals in milliseconds, e.g. 2000,1000,500: the same
        /// connections change their pace every --step-seconds (the first step uses the first
        /// value instead of --interval-ms); the run ends after the last step unless --seconds
        /// says otherwise.
        #[arg(long, value_delimiter = ',')]
        steps_ms: Vec<u64>,
        /// Seconds of each step of --steps-ms.
        #[arg(long, default_value_t = 60)]
        step_seconds: u64,
    },
    /// Holds one authenticated connection per phone that only sends heartbeats and answers
    /// commands: how many connections a gateway holds, and at what memory.
    Hold {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:6808")]
        gateway: std::net::SocketAddr,
        /// A range of phone numbers, e.g. 13700000000-13700008999 (bound to vehicles).
        #[arg(long)]
        phones: String,
        /// Local address to connect from, e.g. 127.0.0.2, so that several clients each have
        /// their own ephemeral ports.
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
        /// Seconds between heartbeats (0x0002) of one terminal.
        #[arg(long, default_value_t = 60)]
        heartbeat_s: u64,
        /// New connections per second at most.
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        /// Registrations and authentications in flight at most (a storm after a network blip:
        /// as many as there are terminals).
        #[arg(long, default_value_t = 256)]
        handshakes: usize,
        /// Stop after this many seconds (default: hold until Ctrl-C or SIGTERM).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// One terminal that reports every interval and measures how long each acknowledgement
    /// takes (while other load or misbehaving connections run); prints percentiles at the end.
    Probe {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:6808")]
        gateway: std::net::SocketAddr,
        /// The probe's phone (bound to a vehicle).
        #[arg(long)]
        phone: String,
        /// Milliseconds between reports.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
        /// Seconds a report may wait for its acknowledgement before it counts as unanswered.
        #[arg(long, default_value_t = 10)]
        wait_s: u64,
        /// Stop after this many seconds (default: until Ctrl-C or SIGTERM).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Misbehaving connections: `silent` (connect, then nothing), `partial` (a frame's start,
    /// then nothing), `huge` (1 MiB without delimiters, or one 1 MiB frame), `flood` (an
    /// authenticated terminal reporting back to back, or at --rate a second). Each is kept until
    /// the gateway closes it; prints how many it closed.
    Abuse {
        /// Gateway address.
        #[arg(long, default_value = "127.0.0.1:6808")]
        gateway: std::net::SocketAddr,
        /// silent, partial, huge or flood.
        #[arg(long)]
        kind: sim::Abuse,
        /// How many connections (silent, partial, huge).
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Phones of the flooding terminals (bound to vehicles), e.g. 13700000000-13700000009.
        #[arg(long)]
        phones: Option<String>,
        /// Frames per second of each flooding terminal (0: as fast as it can).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Local address to connect from.
        #[arg(long)]
        source_ip: Option<std::net::IpAddr>,
        /// Stop after this many seconds (default: until Ctrl-C, SIGTERM or all closed).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Checks that every report in an ack log (from `sim run --ack-log`) is in the store.
    Verify {
        #[arg(long)]
        ack_log: PathBuf,
        /// Also check that every alarm the stored positions of those terminals imply (replayed
        /// through a fresh rules engine in device-time order) was raised.
        #[arg(long)]
        alarms: bool,
    },
    /// Registers COUNT vehicles with bound terminals 1370000nnnn for load tests, in an
    /// enterprise named "负载测试企业 (load test)". Run on the server, like `user add`.
    Provision {
        #[arg(long)]
        count: u32,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recomputes the SM3 hash chain and reports the first broken link.
    Verify,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Prints the effective configuration, secrets masked.
    Print,
}

fn load_config(cli: &Cli, http: Option<String>) -> anyhow::Result<Config> {
    let raw = RawConfig::load(cli.config.as_deref())?;
    Ok(raw.check(&Overrides { data_dir: cli.data_dir.clone(), http })?)
}

fn init_tracing(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.raw.log.level));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.raw.log.format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let http = match &cli.cmd {
        Cmd::Serve { http, .. } => http.clone(),
        _ => None,
    };
    let cfg = load_config(&cli, http)?;
    if let Cmd::Config { cmd: ConfigCmd::Print } = &cli.cmd {
        print!("{}", cfg.print_masked());
        return Ok(());
    }
    init_tracing(&cfg);
    if let Cmd::Health { cmd: HealthCmd::Generate { residents, seed, year, out } } = &cli.cmd {
        return health_generate(*residents, *seed, *year, out);
    }
    if let Cmd::Health { cmd: HealthCmd::Validate { files } } = &cli.cmd {
        return health_validate(files);
    }
    if matches!(
        cli.cmd,
        Cmd::Serve { .. } | Cmd::Sim { cmd: SimCmd::Run { .. } | SimCmd::Hold { .. } | SimCmd::Abuse { .. } }
    ) {
        raise_open_files_limit();
    }
    if let Cmd::Sim {
        cmd:
            SimCmd::Run {
                gateway,
                phones,
                interval_ms,
                seconds,
                speed_factor,
                no_rest,
                ack_log,
                scenario,
                backlog_s,
                steps_ms,
                step_seconds,
            },
    } = &cli.cmd
    {
        if steps_ms.contains(&0) || (!steps_ms.is_empty() && *step_seconds == 0) {
            bail!("--steps-ms takes intervals of at least 1 ms, and --step-seconds at least 1");
        }
        let ladder = (!steps_ms.is_empty()).then(|| (steps_ms.clone(), *step_seconds));
        let opts = SimOpts {
            interval_ms: steps_ms.first().copied().unwrap_or(*interval_ms),
            seconds: seconds.or(ladder.as_ref().map(|(s, secs)| s.len() as u64 * secs)),
            ladder,
            speed_factor: *speed_factor,
            no_rest: *no_rest,
            scenario: scenario.clone(),
            backlog_s: *backlog_s,
        };
        return sim_run(gateway, phones, opts, ack_log.as_deref()).await;
    }
    if let Cmd::Sim { cmd: SimCmd::Hold { gateway, phones, source_ip, heartbeat_s, rate, handshakes, seconds } } =
        &cli.cmd
    {
        let cfg = sim::HoldConfig {
            gateway: *gateway,
            source_ip: *source_ip,
            heartbeat: std::time::Duration::from_secs(*heartbeat_s),
            connects_per_sec: *rate,
            handshakes: *handshakes,
        };
        return sim_hold(cfg, phones, *seconds).await;
    }
    if let Cmd::Sim { cmd: SimCmd::Probe { gateway, phone, interval_ms, wait_s, seconds } } = &cli.cmd {
        return sim_probe(*gateway, phone, *interval_ms, *wait_s, *seconds).await;
    }
    if let Cmd::Sim { cmd: SimCmd::Abuse { gateway, kind, count, phones, rate, source_ip, seconds } } = &cli.cmd {
        let phones = match (kind, phones) {
            (sim::Abuse::Flood, Some(p)) => phone_range(p)?,
            (sim::Abuse::Flood, None) => bail!("--kind flood needs --phones (terminals bound to vehicles)"),
            _ => vec![String::new(); *count],
        };
        return sim_abuse(*gateway, *source_ip, *kind, phones, *rate, *seconds).await;
    }
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let (jt808, mqtt, demo) = match &cli.cmd {
        Cmd::Serve { jt808, mqtt, demo, .. } => {
            if let Some(m) = mqtt.as_deref().filter(|m| *m != "off") {
                m.parse::<std::net::SocketAddr>()
                    .map_err(|e| anyhow::anyhow!("--mqtt {m:?}: an address such as 0.0.0.0:1883, or off ({e})"))?;
            }
            (parse_jt808(jt808)?, mqtt.clone(), *demo)
        }
        _ => (None, None, false),
    };
    let platform = Platform::open(cfg, modules(jt808, mqtt, demo)).await?;
    match cli.cmd {
        Cmd::Serve { demo, .. } => serve(platform, demo).await,
        Cmd::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Cmd::User { cmd } => user(&platform, cmd).await,
        Cmd::Check => {
            let r = platform.state.store.integrity_check().await?;
            println!("database integrity: {r}");
            if r != "ok" && !r.starts_with("skipped") {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Audit { cmd: AuditCmd::Verify } => {
            let v = kernel::audit::verify(&platform.state.store).await?;
            if v.ok() {
                println!("audit chain ok: {} records verified", v.checked);
                Ok(())
            } else {
                println!(
                    "audit chain BROKEN at record {}: {} ({} records verified before it)",
                    v.first_broken.unwrap_or_default(),
                    v.reason.unwrap_or_default(),
                    v.checked
                );
                std::process::exit(1);
            }
        }
        Cmd::Backup { out } => {
            let dest = match out {
                Some(p) => p,
                None => {
                    let dir = platform.state.config.data_dir.join("backups");
                    std::fs::create_dir_all(&dir)?;
                    let ts = time_stamp();
                    dir.join(format!("wuqing-{ts}.db"))
                }
            };
            platform.state.store.backup_to(&dest).await?;
            println!("backup written to {}", dest.display());
            println!(
                "the field-encryption key is not in the backup: keep {} with it",
                platform.state.config.key_file().display()
            );
            Ok(())
        }
        Cmd::Health { cmd: HealthCmd::Import { org, files } } => health_import(&platform, &org, &files).await,
        Cmd::Health { cmd: HealthCmd::Verify } => health_verify(&platform).await,
        Cmd::Health { cmd: HealthCmd::Keys { cmd } } => health_keys(&platform, cmd).await,
        Cmd::Config { .. } | Cmd::Health { .. } => Ok(()),
        Cmd::Sim { cmd: SimCmd::Provision { count } } => provision(&platform, count).await,
        Cmd::Sim { cmd: SimCmd::Run { .. } | SimCmd::Hold { .. } | SimCmd::Probe { .. } | SimCmd::Abuse { .. } } => {
            Ok(())
        }
        Cmd::Sim { cmd: SimCmd::Verify { ack_log, alarms } } => verify_acks(&platform, &ack_log, alarms).await,
    }
}

/// Vehicles and bound terminals for load tests.
async fn provision(platform: &Platform, count: u32) -> anyhow::Result<()> {
    use transport::registry::{NewTerminal, NewVehicle, insert_terminal, insert_vehicle, set_binding};
    let st = &platform.state;
    let name = "负载测试企业 (load test)";
    let (found, _) = kernel::orgs::list(&st.store, &kernel::access::Scope::All, None, Some(name), 1, 0).await?;
    let org = match found.into_iter().next() {
        Some(o) => o.id,
        None => {
            let root = root_org(platform).await?;
            kernel::orgs::create(
                &st.store,
                &st.orgs,
                Actor::cli("sim provision"),
                kernel::orgs::NewOrganisation {
                    parent_id: Some(root),
                    name: name.into(),
                    name_en: "Load test enterprise".into(),
                    kind: kernel::orgs::OrgKind::Enterprise,
                    domain: "transport".into(),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .id
        }
    };
    let mut made = 0;
    for i in 0..count {
        let phone = format!("1370{i:07}");
        let p = transport::model::TerminalPhone::parse(&phone).map_err(|e| anyhow::anyhow!(e))?;
        if transport::registry::terminal_by_phone(&st.store, &p).await?.is_some() {
            continue;
        }
        let v = insert_vehicle(
            &st.store,
            Actor::cli("sim provision"),
            &org,
            NewVehicle {
                org_id: None,
                plate: format!("津L{}{:04}", (b'A' + (i / 10_000 % 24) as u8) as char, i % 10_000),
                plate_colour: transport::model::PlateColour::Yellow,
                class: transport::model::VehicleClass::HeavyGoods,
                vin: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let t = insert_terminal(
            &st.store,
            Actor::cli("sim provision"),
            &org,
            NewTerminal { org_id: None, phone, terminal_id: String::new(), maker: String::new(), model: String::new() },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        set_binding(&st.store, Actor::cli("sim provision"), &t, Some(&v.id))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        made += 1;
    }
    println!("provisioned {made} vehicles with terminals 13700000000-1370{:07} in {name}", count.saturating_sub(1));
    Ok(())
}

/// Parses `13900000001-13900000020` (or one number).
fn phone_range(s: &str) -> anyhow::Result<Vec<String>> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (x, y): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    if y < x || y - x >= 200_000 {
        bail!("--phones {s}: a range of at most 200000 numbers, low-high");
    }
    Ok((x..=y).map(|n| n.to_string()).collect())
}

struct SimOpts {
    interval_ms: u64,
    seconds: Option<u64>,
    /// Report intervals (ms) one after another, and the seconds of each.
    ladder: Option<(Vec<u64>, u64)>,
    speed_factor: f64,
    no_rest: bool,
    scenario: Option<PathBuf>,
    backlog_s: usize,
}

/// Raises the soft limit on open files to the hard one: every terminal connection is a file.
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let lim = getrlimit(Resource::Nofile);
        if lim.current == lim.maximum {
            return;
        }
        // An unlimited hard limit is not accepted as a soft one everywhere (macOS): a million is plenty.
        let target = Some(lim.maximum.unwrap_or(1 << 20));
        match setrlimit(Resource::Nofile, Rlimit { current: target, maximum: lim.maximum }) {
            Ok(()) => tracing::debug!(from = ?lim.current, to = ?target, "open files limit raised"),
            Err(e) => tracing::warn!(error = %e, limit = ?lim.current, "open files limit not raised"),
        }
    }
}

/// `wuqing sim verify`: every acknowledged report must be in the store.
async fn verify_acks(platform: &Platform, log: &std::path::Path, alarms: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let st = &platform.state;
    let mut vehicles: std::collections::HashMap<String, String> = Default::default();
    let (mut checked, mut lost) = (0u64, 0u64);
    for line in text.lines() {
        let Some((phone, secs)) = line.split_once(' ') else { continue };
        let secs: i64 = secs.trim().parse()?;
        if !vehicles.contains_key(phone) {
            let p = transport::model::TerminalPhone::parse(phone).map_err(|e| anyhow::anyhow!(e))?;
            let t = transport::registry::terminal_by_phone(&st.store, &p)
                .await?
                .with_context(|| format!("no terminal {phone}"))?;
            vehicles.insert(phone.to_string(), t.vehicle_id.with_context(|| format!("terminal {phone} is not bound"))?);
        }
        let vid = &vehicles[phone];
        let found = transport::positions::range(&st.store, vid, secs * 1000, secs * 1000 + 1, 1).await?;
        checked += 1;
        if found.is_empty() {
            lost += 1;
            if lost <= 10 {
                println!("lost: {phone} at {}", kernel::store::ms_to_rfc3339(secs * 1000));
            }
        }
    }
    println!("acknowledged reports checked {checked}, lost {lost}");
    let missing = if alarms { verify_alarms(platform, vehicles.values()).await? } else { 0 };
    if lost > 0 || missing > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The alarms that the stored positions of these vehicles imply, each looked up on the desk by
/// kind and start; returns how many are missing or on the desk twice.
async fn verify_alarms<'a>(platform: &Platform, vehicles: impl Iterator<Item = &'a String>) -> anyhow::Result<u64> {
    let store = &platform.state.store;
    let (mut implied, mut missing, mut raised, mut duplicated) = (0u64, 0u64, 0u64, 0u64);
    for vid in vehicles {
        let expected = transport::alerting::implied_episodes(store, vid).await?;
        let on_desk = alarms::service::episodes_of(store, transport::alerting::DOMAIN, vid).await?;
        let n = on_desk.len();
        let present: std::collections::HashSet<(String, i64)> = on_desk.into_iter().collect();
        // One alarm per episode: the same kind and start twice is a duplicate.
        if present.len() < n {
            duplicated += (n - present.len()) as u64;
            println!("alarm duplicated: vehicle {vid} has {n} alarms for {} episodes", present.len());
        }
        raised += n as u64;
        for (kind, start) in expected {
            implied += 1;
            if !present.contains(&(kind.clone(), start)) {
                missing += 1;
                if missing <= 10 {
                    println!("alarm missing: {kind} of vehicle {vid} from {}", kernel::store::ms_to_rfc3339(start));
                }
            }
        }
    }
    println!(
        "alarms implied by the stored positions {implied}, missing {missing}, duplicated {duplicated} \
         ({raised} on the desk for these vehicles)"
    );
    Ok(missing + duplicated)
}

/// `wuqing health generate`: NDJSON files of a synthetic district.
fn health_generate(residents: usize, seed: u64, year: i32, out: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    if !(1900..=2100).contains(&year) {
        bail!("--year {year}: between 1900 and 2100");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files: std::collections::BTreeMap<String, std::io::BufWriter<std::fs::File>> = Default::default();
    let mut failed: Option<std::io::Error> = None;
    let counts = health::generate::district(residents, seed, year, |kind, resource| {
        if failed.is_some() {
            return;
        }
        let file = match files.entry(kind.to_string()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                match std::fs::File::create(out.join(format!("{kind}.ndjson"))) {
                    Ok(f) => e.insert(std::io::BufWriter::new(f)),
                    Err(err) => {
                        failed = Some(err);
                        return;
                    }
                }
            }
        };
        if let Err(err) = serde_json::to_writer(&mut *file, &resource)
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
        {
            failed = Some(err);
        }
    });
    if let Some(e) = failed {
        return Err(e).with_context(|| format!("writing to {}", out.display()));
    }
    for (kind, mut f) in files {
        f.flush().with_context(|| format!("writing {kind}.ndjson"))?;
    }
    println!(
        "{} organizations, {} patients, {} conditions, {} encounters, {} observations written to {}",
        counts.organizations,
        counts.patients,
        counts.conditions,
        counts.encounters,
        counts.observations,
        out.display()
    );
    Ok(())
}

/// `wuqing health validate`: every line of every file checked; at most 20 problems printed per
/// file, all counted.
fn health_validate(files: &[PathBuf]) -> anyhow::Result<()> {
    use health::fhir::ndjson::{self, Line};
    let mut invalid_total = 0usize;
    for path in files {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let (mut valid, mut invalid) = (std::collections::BTreeMap::<String, usize>::new(), 0usize);
        ndjson::read(std::io::BufReader::new(f), |n, line| match line {
            Line::Valid { resource_type, .. } => *valid.entry(resource_type).or_default() += 1,
            Line::Invalid { issues } => {
                invalid += 1;
                if invalid <= 20 {
                    for i in issues.iter().take(5) {
                        println!("{}:{n}: {} {}: {}", path.display(), i.code, i.path, i.diagnostics);
                    }
                }
            }
        })
        .with_context(|| format!("reading {}", path.display()))?;
        let counts: Vec<String> = valid.iter().map(|(t, c)| format!("{c} {t}")).collect();
        println!(
            "{}: {} valid ({}), {invalid} invalid",
            path.display(),
            valid.values().sum::<usize>(),
            if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
        );
        invalid_total += invalid;
    }
    if invalid_total > 0 {
        bail!("{invalid_total} invalid lines");
    }
    Ok(())
}

fn records_of(platform: &Platform) -> health::records::Records {
    health::records::Records::new(platform.state.store.clone(), platform.state.cipher.clone())
}

/// `wuqing health import`.
async fn health_import(platform: &Platform, org: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let records = records_of(platform);
    let Some((org_id, org_name)) = records.organisation(org).await? else {
        bail!("no organisation {org:?}: give its id or its exact name")
    };
    let author = health::records::Author { user_id: "cli".into(), name: "wuqing health import".into(), org_id };
    let mut report = health::import::Report::default();
    for path in files {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let before = report.total();
        let name = path.display().to_string();
        health::import::import(
            &records,
            &author,
            kernel::audit::Actor::cli("health import"),
            &name,
            std::io::BufReader::with_capacity(1 << 20, f),
            health::import::Options { mpi: None, batch: health::import::BULK_BATCH },
            &mut report,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        println!("{name}: {} stored", report.total() - before);
    }
    for (src, line, i) in &report.problems {
        println!("{src}:{line}: {} {}: {}", i.code, i.path, i.diagnostics);
    }
    if report.total() > 0 {
        records.refresh_statistics().await?;
    }
    let secs = report.seconds.max(1e-9);
    println!(
        "{} resources stored for {org_name} in {:.1} s ({:.0}/s), {} invalid lines",
        report.total(),
        report.seconds,
        report.total() as f64 / secs,
        report.invalid
    );
    if report.invalid > 0 {
        bail!("{} invalid lines were not stored", report.invalid);
    }
    Ok(())
}

/// `wuqing health keys [rotate]`.
async fn health_keys(platform: &Platform, cmd: Option<KeysCmd>) -> anyhow::Result<()> {
    let records = records_of(platform);
    if let Some(KeysCmd::Rotate { org, private_key }) = cmd {
        let Some((org_id, org_name)) = records.organisation(&org).await? else {
            bail!("no organisation {org:?}: give its id or its exact name")
        };
        let secret = match private_key {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let key =
                    health::trust::signing_key_from_hex(health::trust::DEFAULT_USER_ID, &text).ok_or_else(|| {
                        anyhow::anyhow!("{}: not an SM2 private key as 64 hexadecimal digits", path.display())
                    })?;
                Some(key)
            }
        };
        let id = records
            .keys
            .rotate(
                &platform.state.store,
                &platform.state.cipher,
                &org_id,
                secret,
                kernel::audit::Actor::cli("health keys rotate"),
            )
            .await?;
        println!("{org_name}: new signing key {id}; the previous one is retired and still verifies its seals");
    }
    for k in health::records::public_keys(&platform.state.store).await? {
        let state = k.retired.map(|r| format!("retired {r}")).unwrap_or_else(|| "in use".into());
        println!("{}  {}  created {}  {}  {}", k.id, k.org_id, k.created, state, k.public_key);
    }
    Ok(())
}

/// `wuqing health verify`.
async fn health_verify(platform: &Platform) -> anyhow::Result<()> {
    let records = records_of(platform);
    let (checked, broken) = records
        .verify_all(|rt, id, v| {
            println!("BROKEN {rt}/{id} version {}: {}", v.version, v.problem.as_deref().unwrap_or(""))
        })
        .await?;
    if broken > 0 {
        println!("{broken} of {checked} versions fail verification: changed outside the platform");
        std::process::exit(1);
    }
    println!("{checked} versions verified: digest chains and seals intact");
    Ok(())
}

/// `wuqing sim run`: no store needed, only the gateway.
async fn sim_run(
    gateways: &[std::net::SocketAddr],
    phones: &str,
    o: SimOpts,
    ack_log: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let SimOpts { interval_ms, seconds, ladder, speed_factor, no_rest, scenario, backlog_s } = o;
    let phones = phone_range(phones)?;
    let plans = match &scenario {
        Some(path) => sim::Scenario::load(path)?.plans(&phones)?,
        None => Default::default(),
    };
    let stats = Arc::new(if ack_log.is_some() { sim::Stats::with_ack_log() } else { sim::Stats::default() });
    let stop = CancellationToken::new();
    let behaviour = sim::Behaviour { speed_factor, no_rest, ..Default::default() };
    let mut tasks = vec![];
    let n = phones.len();
    for (i, phone) in phones.into_iter().enumerate() {
        let road = &sim::roads::ROADS[i % sim::roads::ROADS.len()];
        let mut driver = sim::Driver::new(road, (i as f64 * 0.137).fract(), behaviour);
        if let Some(plan) = plans.get(&phone) {
            driver = driver.with_plan(*plan);
        }
        let term = sim::SimTerminal {
            phone,
            v2019: i % 2 == 1,
            driver,
            interval: std::time::Duration::from_millis(interval_ms.max(10)),
            plate: String::new(),
            // A synthetic driver's card, inserted after each authentication (0x0702), so that
            // the live map's drivers are exercised too.
            card: Some(sim::DriverCard {
                name: format!("测试驾驶员{i:05}"),
                certificate: format!("120104198001{i:06}"),
                issuer: "天津市武清区交通运输局".into(),
                valid_until: [0x20, 0x30, 0x12, 0x31],
                id_card: None,
            }),
        };
        let (st, s, gws) = (stats.clone(), stop.clone(), gateways.to_vec());
        // Spread the starts over one interval so that reports do not arrive in lockstep.
        let delay = std::time::Duration::from_millis(interval_ms.max(10) * i as u64 / n as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim::run_across(&gws, i, term, st, s, backlog_s).await
        }));
    }
    let started = std::time::Instant::now();
    let s = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        s.cancel();
    });
    if let Some((steps, secs)) = ladder {
        let (st, s) = (stats.clone(), stop.clone());
        tokio::spawn(async move {
            for (i, ms) in steps.into_iter().enumerate() {
                st.pace_ms.store(ms.max(1), Relaxed);
                println!("step {} interval_ms {ms} from {}s", i + 1, started.elapsed().as_secs());
                tokio::select! {
                    _ = s.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(secs)) => {}
                }
            }
        });
    }
    let mut last = (0u64, started);
    // Acknowledgement latency of live reports over the whole run, beside each interval's.
    let mut whole = sim::LatencyCounts::default();
    let ms = |d: Option<std::time::Duration>| d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        let acked = stats.acked.load(Relaxed);
        let rate = (acked - last.0) as f64 / last.1.elapsed().as_secs_f64();
        last = (acked, std::time::Instant::now());
        let lat = stats.ack_latency.take();
        whole.add(&lat);
        println!(
            "{:>6.0}s  terminals {n}  interval_ms {}  connects {}  authenticated {}  sent {}  acked {acked}  \
             refused {}  batches {}  acked/s {rate:.0}  ack ms p50 {} p99 {}",
            started.elapsed().as_secs_f64(),
            match stats.pace_ms.load(Relaxed) {
                0 => interval_ms,
                ms => ms,
            },
            stats.connects.load(Relaxed),
            stats.authenticated.load(Relaxed),
            stats.sent.load(Relaxed),
            stats.refused.load(Relaxed),
            stats.batches.load(Relaxed),
            ms(lat.quantile(0.5)),
            ms(lat.quantile(0.99)),
        );
        if seconds.is_some_and(|sec| started.elapsed().as_secs() >= sec) {
            stop.cancel();
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    println!("acked {} of {} sent", stats.acked.load(Relaxed), stats.sent.load(Relaxed));
    whole.add(&stats.ack_latency.take());
    println!(
        "live reports acknowledged in ms: p50 {} p90 {} p99 {} max {} ({} timed)",
        ms(whole.quantile(0.5)),
        ms(whole.quantile(0.9)),
        ms(whole.quantile(0.99)),
        ms(whole.quantile(1.0)),
        whole.count()
    );
    if let (Some(path), Some(log)) = (ack_log, &stats.ack_log) {
        let lines: String =
            log.lock().map(|l| l.iter().map(|(p, t)| format!("{p} {t}\n")).collect()).unwrap_or_default();
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
        println!("ack log written to {}", path.display());
    }
    Ok(())
}

/// `wuqing sim hold`: connections that only heartbeat, for the connections benchmark.
async fn sim_hold(cfg: sim::HoldConfig, phones: &str, seconds: Option<u64>) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    if let Some(ip) = cfg.source_ip {
        if ip.is_ipv4() != cfg.gateway.is_ipv4() {
            bail!("--source-ip {ip} and --gateway {} must both be IPv4 or both IPv6", cfg.gateway);
        }
    }
    let phones = phone_range(phones)?;
    let n = phones.len();
    let stats = Arc::new(sim::HoldStats::default());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        s.cancel();
    });
    let task = tokio::spawn(sim::hold_all(cfg, phones, stats.clone(), stop.clone()));
    let started = std::time::Instant::now();
    loop {
        // Every second: the storm benchmark times how long all take to come back.
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        println!(
            "{:>6.0}s  established {} of {n}  connects {}  failures {}  drops {}  heartbeats {}  commands {}",
            started.elapsed().as_secs_f64(),
            stats.established.load(Relaxed),
            stats.connects.load(Relaxed),
            stats.failures.load(Relaxed),
            stats.drops.load(Relaxed),
            stats.heartbeats.load(Relaxed),
            stats.commands.load(Relaxed),
        );
        if seconds.is_some_and(|sec| started.elapsed().as_secs() >= sec) {
            stop.cancel();
        }
    }
    let _ = task.await;
    println!("held {n} terminals; {} connections made", stats.connects.load(Relaxed));
    Ok(())
}

/// `wuqing sim probe`: one terminal's acknowledgement latency.
async fn sim_probe(
    gateway: std::net::SocketAddr,
    phone: &str,
    interval_ms: u64,
    wait_s: u64,
    seconds: Option<u64>,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        match seconds {
            Some(sec) => tokio::select! {
                _ = wait_for_signal() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(sec)) => {}
            },
            None => wait_for_signal().await,
        }
        s.cancel();
    });
    let r = sim::probe::measure(
        gateway,
        phone,
        std::time::Duration::from_millis(interval_ms.max(1)),
        std::time::Duration::from_secs(wait_s.max(1)),
        stop,
    )
    .await;
    let ms = |q: f64| r.quantile(q).map_or("-".to_string(), |v| format!("{v:.1}"));
    println!(
        "probe {phone}: sent {} acked {} unanswered {} connects {} latency ms p50 {} p99 {} max {}",
        r.sent,
        r.acked,
        r.unanswered,
        r.connects,
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    Ok(())
}

/// `wuqing sim abuse`: misbehaving connections, for the storm benchmark.
async fn sim_abuse(
    gateway: std::net::SocketAddr,
    source_ip: Option<std::net::IpAddr>,
    kind: sim::Abuse,
    phones: Vec<String>,
    rate: u32,
    seconds: Option<u64>,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let n = phones.len();
    let stats = Arc::new(sim::AbuseStats::default());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        s.cancel();
    });
    let mut task = tokio::spawn(sim::abuse_all(gateway, source_ip, kind, phones, rate, stats.clone(), stop.clone()));
    let started = std::time::Instant::now();
    let line = |st: &sim::AbuseStats| {
        format!(
            "{:>6.0}s  {kind:?} {n}: opened {}  failed {}  closed by the gateway {}  sent {}",
            started.elapsed().as_secs_f64(),
            st.opened.load(Relaxed),
            st.failed.load(Relaxed),
            st.closed.load(Relaxed),
            st.sent.load(Relaxed),
        )
    };
    loop {
        tokio::select! {
            _ = &mut task => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        println!("{}", line(&stats));
        if seconds.is_some_and(|sec| started.elapsed().as_secs() >= sec) {
            stop.cancel();
        }
    }
    println!("{}", line(&stats));
    Ok(())
}

fn time_stamp() -> String {
    let ms = kernel::store::now_ms();
    kernel::store::ms_to_rfc3339(ms).replace([':', '-'], "").replace('T', "-").trim_end_matches('Z').to_string()
}

async fn serve(platform: Platform, demo: bool) -> anyhow::Result<()> {
    if demo {
        let created = platform.seed_demo().await?;
        let path = platform.state.config.data_dir.join("demo-accounts.txt");
        if !created.is_empty() {
            kernel::platform::write_demo_accounts(&path, &created)?;
        }
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                println!("\n智慧武清平台 demo district is ready. Demo logins (also in {}):", path.display());
                for line in s.lines().filter(|l| !l.starts_with('#')) {
                    println!("  {line}");
                }
                println!("Administrators enrol a TOTP second factor at first login (POST /api/auth/totp/setup).");
                let devices = platform.state.config.data_dir.join("demo-devices.txt");
                if devices.exists() {
                    println!("Demo sensors' MQTT/HTTP credentials: {}", devices.display());
                }
            }
            Err(_) => println!("demo already seeded; its logins were in {} (missing now)", path.display()),
        }
    }
    let scheme = if platform.state.config.tls.is_some() { "https" } else { "http" };
    if console::built() {
        println!("\nConsole (控制台): {scheme}://{}/", platform.state.config.http);
    } else {
        println!("\nConsole not built into this binary (cd web && npm ci && npm run build, then build again)");
    }
    println!("API docs: {scheme}://{}/api/docs\n", platform.state.config.http);
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        s.cancel();
    });
    platform.serve(shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn user(platform: &Platform, cmd: UserCmd) -> anyhow::Result<()> {
    let st = &platform.state;
    let find = |u: String| async move {
        kernel::users::by_username(&st.store, &u).await?.with_context(|| format!("no user {u:?}"))
    };
    match cmd {
        UserCmd::Add { username, role, org, name, clearance } => {
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role {role:?}; one of: {}", Role::ALL.map(|r| r.as_str()).join(", "));
            };
            let Some(clearance) = Classification::parse(&clearance) else {
                bail!("unknown clearance {clearance:?}; one of public, internal, sensitive, confidential");
            };
            let org_id = match org {
                Some(o) => o,
                None => root_org(platform).await?,
            };
            let created = kernel::users::create(
                &st.store,
                &st.cipher,
                st.auth.get().password_min_length,
                Actor::cli("user add"),
                kernel::users::NewUser {
                    display_name: name.unwrap_or_else(|| username.clone()),
                    username,
                    org_id,
                    role,
                    clearance,
                    password: None,
                    phone: None,
                    citizen_id: None,
                },
                kernel::users::CreateOptions { no_forced_change: false, allow_admin_roles: true },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("created {} ({}) id {}", created.user.username, role.as_str(), created.user.id);
            println!("initial password (change it at first login): {}", created.initial_password.unwrap_or_default());
        }
        UserCmd::Passwd { username } => {
            let u = find(username).await?;
            let pw = kernel::access::password::generate();
            kernel::users::set_password(
                &st.store,
                Actor::cli("user passwd"),
                &u,
                &pw,
                st.auth.get().password_min_length,
                true,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            kernel::auth::revoke_all_for_user(&st.store, &u.id).await?;
            println!("new initial password for {} (change it at next login): {pw}", u.username);
        }
        UserCmd::Lock { username } => {
            let u = find(username).await?;
            kernel::users::set_locked(&st.store, Actor::cli("user lock"), &u.id, true)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("locked {}", u.username);
        }
        UserCmd::Unlock { username } => {
            let u = find(username).await?;
            kernel::users::set_locked(&st.store, Actor::cli("user unlock"), &u.id, false)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("unlocked {}", u.username);
        }
    }
    Ok(())
}

/// The root organisation, created ("Wuqing District") when the store has none.
async fn root_org(platform: &Platform) -> anyhow::Result<String> {
    let st = &platform.state;
    let (orgs, _) =
        kernel::orgs::list(&st.store, &kernel::access::Scope::All, Some(kernel::orgs::OrgKind::District), None, 1, 0)
            .await?;
    if let Some(o) = orgs.into_iter().next() {
        return Ok(o.id);
    }
    let o = kernel::orgs::create(
        &st.store,
        &st.orgs,
        Actor::cli("user add"),
        kernel::orgs::NewOrganisation {
            parent_id: None,
            name: "天津市武清区人民政府".into(),
            name_en: "Wuqing District People's Government".into(),
            kind: kernel::orgs::OrgKind::District,
            domain: "government".into(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(o.id)
}
