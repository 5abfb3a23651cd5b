//! The JT/T 808 terminal simulator and load generator: virtual vehicles that drive along the
//! roads of Wuqing and talk to a gateway over real TCP exactly as field terminals do (register,
//! authenticate, report, retransmit, reconnect, back-fill, answer commands).
//!
//! `drive`, `roads` and `scenario` (scenario files) are pure; `terminal`, `hold` (connections
//! that only heartbeat, for the connections benchmark), `probe` (one terminal's acknowledgement
//! latency) and `abuse` (misbehaving connections, for the storm benchmark) do the IO. Used by `wuqing sim`, by
//! `serve --demo` (which drives a few hundred demo vehicles in-process) and by the benchmarks.

pub mod abuse;
pub mod drive;
pub mod hold;
pub mod probe;
pub mod roads;
pub mod scenario;
pub mod terminal;

pub use abuse::{Abuse, AbuseStats, abuse_all};
pub use drive::{Behaviour, Driver};
pub use hold::{HoldConfig, HoldStats, hold_all};
pub use jt808::message::DriverCard;
pub use scenario::{Plan, Scenario, ScenarioError};
pub use terminal::{
    Latency, LatencyCounts, MAX_PENDING, SimError, SimTerminal, Stats, run, run_across, run_with_backlog,
};
