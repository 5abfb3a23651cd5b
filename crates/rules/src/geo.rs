//! WGS-84 geometry for the rules: great-circle distance, shapes (circle, rectangle, polygon)
//! and the distance from a point to a polyline.
//!
//! Shapes are small (a district, a school zone, a depot), so containment in a rectangle or
//! polygon is decided on the latitude/longitude plane, and distances to a polyline on a local
//! equirectangular projection around the point: both are accurate to well under a metre at
//! these sizes. Nothing here handles the antimeridian; the platform serves one district in China.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle (haversine) distance in metres between two WGS-84 points given in degrees.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// An area's outline in WGS-84 degrees. Polygon and route points are `[lat, lon]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// Centre and radius.
    Circle {
        /// Centre latitude, degrees.
        lat: f64,
        /// Centre longitude, degrees.
        lon: f64,
        /// Radius, metres.
        radius_m: f64,
    },
    /// A latitude/longitude box (as JT/T 808 0x8602 rectangle areas are given).
    Rectangle {
        /// Northern edge latitude.
        north: f64,
        /// Southern edge latitude.
        south: f64,
        /// Eastern edge longitude.
        east: f64,
        /// Western edge longitude.
        west: f64,
    },
    /// A simple polygon, vertices `[lat, lon]` in order; closing edge implied.
    Polygon {
        /// Vertices, at least three.
        points: Vec<[f64; 2]>,
    },
}

impl Shape {
    /// Whether the point lies inside (boundary counts as inside for circles and rectangles).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        match self {
            Shape::Circle { lat: clat, lon: clon, radius_m } => haversine_m(*clat, *clon, lat, lon) <= *radius_m,
            Shape::Rectangle { north, south, east, west } => {
                lat <= *north && lat >= *south && lon <= *east && lon >= *west
            }
            Shape::Polygon { points } => point_in_polygon(points, lat, lon),
        }
    }

    /// Bounding box `(south, west, north, east)`, for a cheap rejection before `contains`.
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        match self {
            Shape::Circle { lat, lon, radius_m } => {
                let dlat = (radius_m / EARTH_RADIUS_M).to_degrees();
                let coslat = lat.to_radians().cos().abs().max(1e-6);
                let dlon = dlat / coslat;
                (lat - dlat, lon - dlon, lat + dlat, lon + dlon)
            }
            Shape::Rectangle { north, south, east, west } => (*south, *west, *north, *east),
            Shape::Polygon { points } => points
                .iter()
                .fold((f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY), |(s, w, n, e), p| {
                    (s.min(p[0]), w.min(p[1]), n.max(p[0]), e.max(p[1]))
                }),
        }
    }
}

/// Even-odd ray casting on the lat/lon plane. Points are `[lat, lon]`.
pub fn point_in_polygon(points: &[[f64; 2]], lat: f64, lon: f64) -> bool {
    let n = points.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (yi, xi) = (points[i][0], points[i][1]);
        let (yj, xj) = (points[j][0], points[j][1]);
        if (yi > lat) != (yj > lat) {
            let x = xi + (lat - yi) / (yj - yi) * (xj - xi);
            if lon < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Distances in metres from a point to each segment of a polyline (`[lat, lon]` vertices), on
/// an equirectangular projection centred at the point.
fn segment_distances(points: &[[f64; 2]], lat: f64, lon: f64) -> impl Iterator<Item = f64> + '_ {
    let k = EARTH_RADIUS_M.to_radians_factor();
    let coslat = lat.to_radians().cos();
    let project = move |p: &[f64; 2]| ((p[1] - lon) * coslat * k, (p[0] - lat) * k);
    points.windows(2).map(move |w| {
        let (ax, ay) = project(&w[0]);
        let (bx, by) = project(&w[1]);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        (ax + t * dx).hypot(ay + t * dy)
    })
}

/// Shortest distance in metres from a point to a polyline (`[lat, lon]` vertices), on an
/// equirectangular projection centred at the point. `INFINITY` for an empty polyline.
pub fn distance_to_polyline_m(points: &[[f64; 2]], lat: f64, lon: f64) -> f64 {
    match points {
        [] => f64::INFINITY,
        [only] => {
            let k = EARTH_RADIUS_M.to_radians_factor();
            let x = (only[1] - lon) * lat.to_radians().cos() * k;
            x.hypot((only[0] - lat) * k)
        }
        _ => segment_distances(points, lat, lon).fold(f64::INFINITY, f64::min),
    }
}

/// The index of the polyline's segment nearest to the point (the first on a tie); `None` for
/// fewer than two vertices.
pub fn nearest_segment(points: &[[f64; 2]], lat: f64, lon: f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, d) in segment_distances(points, lat, lon).enumerate() {
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

trait RadiansFactor {
    fn to_radians_factor(self) -> f64;
}

impl RadiansFactor for f64 {
    /// Metres per degree of arc on a sphere of this radius.
    fn to_radians_factor(self) -> f64 {
        self * std::f64::consts::PI / 180.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_one_degree_of_latitude_is_about_111_km() {
        let d = haversine_m(39.0, 117.0, 40.0, 117.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
    }

    #[test]
    fn the_nearest_segment_is_found() {
        let line = [[39.0, 117.0], [39.0, 117.1], [39.1, 117.1]];
        assert_eq!(nearest_segment(&line, 39.001, 117.05), Some(0));
        assert_eq!(nearest_segment(&line, 39.05, 117.101), Some(1));
        assert_eq!(nearest_segment(&line[..1], 39.0, 117.0), None);
    }

    #[test]
    fn polyline_distance_matches_haversine_off_a_vertex() {
        let line = [[39.0, 117.0], [39.0, 117.1]];
        let d = distance_to_polyline_m(&line, 39.001, 117.05);
        assert!((d - 111.2).abs() < 1.0, "{d}");
    }
}
