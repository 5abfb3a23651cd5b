//! No heap allocation on the common path (a fix that raises nothing), counted by a wrapping
//! global allocator (`stats_alloc`, so no `unsafe`). Runs without libtest (`harness = false`):
//! libtest's own thread allocates while a test runs.

use std::alloc::System;

use rules::{Engine, Fix, Profile, RuleSet};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let mut e = Engine::new(RuleSet::default());
    let ids: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    for id in &ids {
        e.set_profile(id, Profile::new("coach", "ent"));
    }
    let fix = |i: i64, v: usize| Fix {
        device_ms: 1_704_096_000_000 + i * 30_000,
        lat: 39.38 + v as f64 * 0.001,
        lon: 117.04 + i as f64 * 0.0002,
        speed_kmh: 60.0,
        heading: 90,
        acc_on: true,
        valid: true,
        alarm_bits: 0,
    };
    // Warm up: the first driving allocates the cumulative driving buckets.
    for i in 0..10 {
        for (v, id) in ids.iter().enumerate() {
            e.observe_fix(id, fix(i, v));
        }
    }
    let region = Region::new(GLOBAL);
    let mut events = 0;
    for i in 10..60 {
        for (v, id) in ids.iter().enumerate() {
            events += e.observe_fix(id, fix(i, v)).len();
        }
    }
    let stats = region.change();
    assert_eq!(events, 0);
    assert_eq!(stats.allocations, 0, "{stats:?}");
    println!("1 passed, 0 failed");
}
