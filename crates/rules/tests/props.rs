//! Property tests: point-in-polygon against a brute-force reference, and the engine never
//! panics and is deterministic on arbitrary fix streams.

use proptest::prelude::*;
use rules::geo::point_in_polygon;
use rules::{Area, Engine, Fix, Profile, Route, RuleSet, SegmentLimit, Shape};

/// Reference for a convex polygon in counter-clockwise order: inside iff left of every edge.
/// Returns `None` when the point is too close to an edge to call.
fn convex_reference(points: &[[f64; 2]], lat: f64, lon: f64) -> Option<bool> {
    let mut inside = true;
    for i in 0..points.len() {
        let a = points[i];
        let b = points[(i + 1) % points.len()];
        // x = lon, y = lat
        let cross = (b[1] - a[1]) * (lat - a[0]) - (b[0] - a[0]) * (lon - a[1]);
        let len = ((b[1] - a[1]).powi(2) + (b[0] - a[0]).powi(2)).sqrt();
        if (cross / len).abs() < 1e-9 {
            return None;
        }
        inside &= cross > 0.0;
    }
    Some(inside)
}

proptest! {
    #[test]
    fn point_in_polygon_agrees_with_convex_reference(
        angles in proptest::collection::btree_set(0u32..3600, 3..12),
        radius in 0.001f64..0.5,
        (clat, clon) in (-60.0f64..60.0, -170.0f64..170.0),
        (plat, plon) in (-1.0f64..1.0, -1.0f64..1.0),
    ) {
        // Vertices on a circle in increasing angle: a convex polygon, counter-clockwise.
        let points: Vec<[f64; 2]> = angles
            .iter()
            .map(|&a| {
                let th = (f64::from(a) / 10.0).to_radians();
                [clat + radius * th.sin(), clon + radius * th.cos()]
            })
            .collect();
        let (lat, lon) = (clat + plat * radius * 1.2, clon + plon * radius * 1.2);
        if let Some(expected) = convex_reference(&points, lat, lon) {
            prop_assert_eq!(point_in_polygon(&points, lat, lon), expected);
        }
    }

    #[test]
    fn engine_never_panics_and_is_deterministic(
        fixes in proptest::collection::vec(arb_fix(), 0..200),
        ticks in proptest::collection::vec(any::<i64>(), 0..4),
    ) {
        let run = || {
            let mut e = engine();
            let mut out = Vec::new();
            for (i, f) in fixes.iter().enumerate() {
                let subject = if i % 3 == 0 { "a" } else { "b" };
                out.extend(e.observe_fix(subject, *f));
                if i % 50 == 49 {
                    out.extend(e.observe_batch("b", &fixes[i - 10..i]));
                }
                if let Some(t) = ticks.get(i % 7) {
                    if i % 7 == 0 {
                        out.extend(e.tick(*t));
                    }
                }
            }
            let snap = serde_json::to_string(&e.snapshot()).expect("snapshot serialises");
            (out, snap)
        };
        let (a, sa) = run();
        let (b, sb) = run();
        // Debug renderings: evidence may carry NaN, which is not equal to itself.
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        prop_assert_eq!(sa, sb);
    }
}

fn engine() -> Engine {
    let mut r = RuleSet::default();
    r.areas.push(Area {
        id: "p".into(),
        shape: Shape::Polygon { points: vec![[39.0, 117.0], [39.5, 117.0], [39.5, 117.5]] },
        speed_limit_kmh: Some(40.0),
        alarm_enter: true,
        alarm_leave: true,
        dwell_max_min: Some(1),
        classes: vec![],
        enterprises: vec![],
    });
    r.routes.push(Route {
        id: "r".into(),
        points: vec![[39.0, 117.0], [39.5, 117.5]],
        width_m: 100.0,
        segments: vec![SegmentLimit { index: 0, too_short_s: Some(60), too_long_s: Some(600) }],
    });
    let mut e = Engine::new(r);
    e.set_profile("a", Profile::new("dangerous_goods", "x").with_route("r"));
    e.set_profile("b", Profile::new("coach", "y"));
    e
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -200.0f64..200.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => any::<f64>(),
    ]
}

fn arb_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1_704_067_200_000i64..1_704_067_200_000 + 10 * 86_400_000,
        1 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
    ]
}

fn arb_fix() -> impl Strategy<Value = Fix> {
    (arb_time(), arb_f64(), arb_f64(), arb_f64(), any::<u16>(), any::<bool>(), any::<bool>(), any::<u32>()).prop_map(
        |(device_ms, lat, lon, speed_kmh, heading, acc_on, valid, alarm_bits)| Fix {
            device_ms,
            lat: if lat.is_finite() { 39.0 + lat / 400.0 } else { lat },
            lon: if lon.is_finite() { 117.0 + lon / 400.0 } else { lon },
            speed_kmh,
            heading,
            acc_on,
            valid,
            alarm_bits,
        },
    )
}
