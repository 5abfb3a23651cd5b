//! `GET /api/transport/basemap`: the district's boundary, main roads and towns as GeoJSON
//! (RFC 7946, `[lon, lat]`), drawn by the console's maps under the vehicles, so that a map works
//! without internet or a tile service. The geometry is the simulator's (`sim::roads`): schematic,
//! at tens of metres to a few kilometres, not survey data.

use axum::http::header;
use axum::response::IntoResponse;
use kernel::error::{ApiResult, Problem};
use kernel::http::{AppState, Auth};
use serde_json::{Value, json};
use sim::roads::{BOUNDARY, ROADS, Road, TOWNS};
use std::sync::OnceLock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(basemap))
}

/// How the map draws a road: by what kind of road it is.
fn road_class(r: &Road) -> &'static str {
    if r.name_zh.contains("高速") {
        "expressway"
    } else if r.name_zh.contains("国道") || r.speed_kmh >= 60.0 {
        "national"
    } else {
        "urban"
    }
}

/// The feature collection (built once: it never changes while the binary runs).
pub fn collection() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let lonlat = |&(lat, lon): &(f64, f64)| json!([lon, lat]);
        let mut ring: Vec<Value> = BOUNDARY.iter().map(lonlat).collect();
        ring.push(lonlat(&BOUNDARY[0]));
        let mut features = vec![json!({
            "type": "Feature",
            "properties": { "kind": "boundary", "name_zh": "武清区", "name_en": "Wuqing District" },
            "geometry": { "type": "Polygon", "coordinates": [ring] },
        })];
        features.extend(ROADS.iter().map(|r| {
            json!({
                "type": "Feature",
                "properties": { "kind": "road", "road_class": road_class(r), "name_zh": r.name_zh, "name_en": r.name_en },
                "geometry": { "type": "LineString", "coordinates": r.points.iter().map(lonlat).collect::<Vec<_>>() },
            })
        }));
        features.extend(TOWNS.iter().map(|(zh, en, p)| {
            json!({
                "type": "Feature",
                "properties": { "kind": "town", "name_zh": zh, "name_en": en },
                "geometry": { "type": "Point", "coordinates": lonlat(p) },
            })
        }));
        json!({ "type": "FeatureCollection", "features": features })
    })
}

/// The district's base map for the console (any signed-in user: it is public geography).
#[utoipa::path(get, path = "/api/transport/basemap", tag = "transport",
    responses((status = 200, description = "GeoJSON FeatureCollection: boundary, roads (road_class), towns", content_type = "application/geo+json"),
        (status = 401, body = Problem)),
    security(("session" = []), ("bearer" = [])))]
async fn basemap(_caller: Auth) -> ApiResult<impl IntoResponse> {
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json"), (header::CACHE_CONTROL, "private, max-age=3600")],
        axum::Json(collection()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_road_lies_inside_the_boundary_and_the_ring_is_closed() {
        let doc = collection();
        let features = doc["features"].as_array().unwrap();
        let ring = features[0]["geometry"]["coordinates"][0].as_array().unwrap();
        assert_eq!(ring.first(), ring.last(), "a GeoJSON ring ends where it starts");
        let poly: Vec<(f64, f64)> = ring.iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).collect();
        // Ray casting: a point is inside when a ray from it crosses the ring an odd number of times.
        let inside = |x: f64, y: f64| {
            let mut c = false;
            for w in poly.windows(2) {
                let ((x1, y1), (x2, y2)) = (w[0], w[1]);
                if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
                    c = !c;
                }
            }
            c
        };
        for r in ROADS {
            for &(lat, lon) in r.points {
                assert!(inside(lon, lat), "{} at ({lat}, {lon}) is outside the district", r.name_en);
            }
        }
        for (_, en, (lat, lon)) in TOWNS {
            assert!(inside(*lon, *lat), "{en} is outside the district");
        }
        assert!(!inside(116.5, 39.4), "a point west of the district is outside");
        let classes: Vec<&str> = features.iter().filter_map(|f| f["properties"]["road_class"].as_str()).collect();
        assert!(classes.contains(&"expressway") && classes.contains(&"national") && classes.contains(&"urban"));
    }
}
