//! Reports the memory one tracked vehicle costs (run with `--nocapture` to see the figures).

use rules::{Engine, Fix, Profile, RuleSet};

#[test]
fn per_vehicle_state_is_small() {
    let mut e = Engine::new(RuleSet::default());
    e.set_profile("津C12345", Profile::new("coach", "ent"));
    let t0 = 1_704_096_000_000; // 2024-01-01 16:00 local
    for i in 0..240 {
        let fix = Fix {
            device_ms: t0 + i * 30_000,
            lat: 39.38,
            lon: 117.04 + i as f64 * 0.0002,
            speed_kmh: 60.0,
            heading: 90,
            acc_on: true,
            valid: true,
            alarm_bits: 0,
        };
        e.observe_fix("津C12345", fix);
    }
    let m = e.memory("津C12345").expect("tracked");
    println!("per-vehicle state: {} bytes inline + {} bytes heap = {} bytes", m.inline, m.heap, m.inline + m.heap);
    assert!(m.inline + m.heap < 2048, "{m:?}");
}
