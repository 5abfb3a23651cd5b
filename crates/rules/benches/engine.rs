//! `observe_fix` on a realistic stream: 5 000 vehicles of all seven classes reporting
//! round-robin every 30 s (device time), driving east at varied speeds through four areas (with
//! limits and geofence alarms), all transport rules on.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rules::{Area, Engine, Event, Fix, Profile, RuleSet, Shape};

const VEHICLES: usize = 5_000;
const CLASSES: [&str; 7] =
    ["dangerous_goods", "coach", "tourist_coach", "school_bus", "city_bus", "taxi", "heavy_goods"];

fn area(id: &str, shape: Shape, limit: Option<f64>) -> Area {
    Area {
        id: id.into(),
        shape,
        speed_limit_kmh: limit,
        alarm_enter: true,
        alarm_leave: true,
        dwell_max_min: Some(30),
        classes: vec![],
        enterprises: vec![],
    }
}

fn engine() -> Engine {
    let mut r = RuleSet::default();
    r.areas.push(area("town", Shape::Circle { lat: 39.38, lon: 117.05, radius_m: 3000.0 }, Some(50.0)));
    r.areas.push(area("depot", Shape::Rectangle { north: 39.40, south: 39.39, east: 117.10, west: 117.08 }, None));
    r.areas.push(area(
        "reserve",
        Shape::Polygon {
            points: vec![[39.30, 117.2], [39.45, 117.2], [39.47, 117.3], [39.40, 117.35], [39.30, 117.3]],
        },
        Some(60.0),
    ));
    r.areas.push(area("school", Shape::Circle { lat: 39.36, lon: 117.15, radius_m: 500.0 }, Some(30.0)));
    let mut e = Engine::new(r);
    for v in 0..VEHICLES {
        e.set_profile(&format!("v{v}"), Profile::new(CLASSES[v % CLASSES.len()], &format!("e{}", v % 40)));
    }
    e
}

struct Stream {
    ids: Vec<String>,
    next: usize,
    round: i64,
}

impl Stream {
    fn fix(&mut self) -> (usize, Fix) {
        let v = self.next;
        self.next += 1;
        if self.next == self.ids.len() {
            self.next = 0;
            self.round += 1;
        }
        let speed = 30.0 + (v % 9) as f64 * 10.0;
        let fix = Fix {
            device_ms: 1_704_096_000_000 + self.round * 30_000 + v as i64,
            lat: 39.30 + (v % 200) as f64 * 0.001,
            lon: 117.0 + (self.round as f64 * speed / 120.0 / 86.0) % 0.4,
            speed_kmh: speed,
            heading: 90,
            acc_on: true,
            valid: true,
            alarm_bits: 0,
        };
        (v, fix)
    }
}

fn bench(c: &mut Criterion) {
    let mut e = engine();
    let mut s = Stream { ids: (0..VEHICLES).map(|v| format!("v{v}")).collect(), next: 0, round: 0 };
    let mut out: Vec<Event> = Vec::with_capacity(64);
    // Warm up: every vehicle seen a few times.
    for _ in 0..VEHICLES * 3 {
        let (v, f) = s.fix();
        e.observe_fix_into(&s.ids[v], f, &mut out);
        out.clear();
    }
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("observe_fix", |b| {
        b.iter(|| {
            let (v, f) = s.fix();
            e.observe_fix_into(&s.ids[v], black_box(f), &mut out);
            black_box(out.len());
            out.clear();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
