//! The JT/T 808 terminal simulator and load generator: virtual vehicles that drive along the
//! roads of Wuqing and talk to a gateway over real TCP exactly as field terminals do (register,
//! authenticate, report, retransmit, reconnect, back-fill, answer commands).
//!
//! `drive` and `roads` are pure; `terminal` does the IO. Used by `wuqing sim`, by `serve --demo`
//! (which drives a few hundred demo vehicles in-process) and by the benchmarks.

pub mod drive;
pub mod roads;
pub mod terminal;

pub use drive::{Behaviour, Driver};
pub use terminal::{SimTerminal, Stats, run};
