//! Positions (定位数据): stored as a time series per vehicle, queried as tracks with their
//! distance, stops and maximum speed, exported as CSV or GPX.
//!
//! A position is stored once: a terminal that retransmits a report it sent before (because it
//! never heard the acknowledgement) is deduplicated on (vehicle, device time).

use kernel::store::{Store, StoreResult, col, ms_to_rfc3339, rusqlite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// JT/T 808-2019 table 24, status bit 0: ACC (ignition) on.
pub const STATUS_ACC: u32 = 1 << 0;
/// Status bit 1: the fix is valid (positioned).
pub const STATUS_FIXED: u32 = 1 << 1;

/// One position report of one vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    #[serde(skip)]
    pub vehicle_id: String,
    /// When the terminal took the fix (ms since the epoch, UTC).
    pub device_ms: i64,
    pub received_ms: i64,
    /// WGS-84 degrees, south and west negative.
    pub lat: f64,
    pub lon: f64,
    /// Metres above sea level.
    pub altitude_m: i32,
    /// km/h, in the terminal's 0.1 km/h resolution.
    pub speed_kmh: f64,
    /// 0–359°, 0 = north.
    pub heading: u16,
    /// Alarm flags (JT/T 808 table 24).
    pub alarm: u32,
    /// Status flags (JT/T 808 table 25).
    pub status: u32,
    /// Odometer (additional item 0x01), km.
    pub mileage_km: Option<f64>,
    /// The additional items as received, for later decoding of vendor items.
    #[serde(skip)]
    pub extras: Vec<u8>,
}

impl Position {
    pub fn acc_on(&self) -> bool {
        self.status & STATUS_ACC != 0
    }
}

const COLS: &str =
    "vehicle_id, device_ms, received_ms, lat, lon, altitude_m, speed_dkmh, heading, alarm, status, mileage_hm, extras";
const NCOLS: usize = 12;
/// Rows per INSERT: 80 × 12 = 960 parameters, inside SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 80;

/// Stores positions (owned or borrowed) in one transaction and returns how many were new; returns
/// once committed.
pub async fn store_batch<P: std::borrow::Borrow<Position>>(store: &Store, batch: &[P]) -> StoreResult<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    if let Some(pg) = store.pg() {
        return store_batch_pg(pg, batch).await;
    }
    let mut tx = store.begin().await?;
    let mut inserted = 0;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO transport_positions ({COLS}) VALUES {} ON CONFLICT (vehicle_id, device_ms) DO NOTHING",
            store.values_placeholders(chunk.len(), NCOLS)
        );
        let sql = store.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let p: &Position = p.borrow();
            q = q
                .bind(p.vehicle_id.as_str())
                .bind(p.device_ms)
                .bind(p.received_ms)
                .bind(p.lat)
                .bind(p.lon)
                .bind(i64::from(p.altitude_m))
                .bind((p.speed_kmh * 10.0).round() as i64)
                .bind(i64::from(p.heading))
                .bind(i64::from(p.alarm))
                .bind(i64::from(p.status))
                .bind(p.mileage_km.map(|m| (m * 10.0).round() as i64))
                .bind(if p.extras.is_empty() { None } else { Some(p.extras.as_slice()) });
        }
        inserted += q.execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    metrics::counter!("wuqing_positions_stored_total").increment(inserted);
    Ok(inserted)
}

/// PostgreSQL: the whole batch as one statement of twelve arrays (`UNNEST`), instead of a
/// multi-row `VALUES` of 80 rows × 12 parameters per statement: one parse, one plan, one round
/// trip per batch.
async fn store_batch_pg<P: std::borrow::Borrow<Position>>(pg: &sqlx::PgPool, batch: &[P]) -> StoreResult<u64> {
    let n = batch.len();
    let (mut vid, mut dev, mut rec) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut lat, mut lon, mut alt) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut spd, mut hdg, mut alarm) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut status, mut mil, mut extras) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for p in batch {
        let p: &Position = p.borrow();
        vid.push(p.vehicle_id.as_str());
        dev.push(p.device_ms);
        rec.push(p.received_ms);
        lat.push(p.lat);
        lon.push(p.lon);
        alt.push(i64::from(p.altitude_m));
        spd.push((p.speed_kmh * 10.0).round() as i64);
        hdg.push(i64::from(p.heading));
        alarm.push(i64::from(p.alarm));
        status.push(i64::from(p.status));
        mil.push(p.mileage_km.map(|m| (m * 10.0).round() as i64));
        extras.push(if p.extras.is_empty() { None } else { Some(p.extras.as_slice()) });
    }
    let inserted = sqlx::query(&format!(
        "INSERT INTO transport_positions ({COLS}) SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], \
         $4::float8[], $5::float8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], \
         $12::bytea[]) ON CONFLICT (vehicle_id, device_ms) DO NOTHING"
    ))
    .bind(vid)
    .bind(dev)
    .bind(rec)
    .bind(lat)
    .bind(lon)
    .bind(alt)
    .bind(spd)
    .bind(hdg)
    .bind(alarm)
    .bind(status)
    .bind(mil)
    .bind(extras)
    .execute(pg)
    .await?
    .rows_affected();
    metrics::counter!("wuqing_positions_stored_total").increment(inserted);
    Ok(inserted)
}

/// A position in the units it is stored in (speed in 0.1 km/h, odometer in 0.1 km, flags and
/// small numbers as BIGINT): every reader fills one, and the conversion lives here once.
struct Stored {
    vehicle_id: String,
    device_ms: i64,
    received_ms: i64,
    lat: f64,
    lon: f64,
    altitude_m: i64,
    speed_dkmh: i64,
    heading: i64,
    alarm: i64,
    status: i64,
    mileage_hm: Option<i64>,
}

impl Stored {
    fn into_position(self, extras: Vec<u8>) -> Position {
        Position {
            vehicle_id: self.vehicle_id,
            device_ms: self.device_ms,
            received_ms: self.received_ms,
            lat: self.lat,
            lon: self.lon,
            altitude_m: self.altitude_m as i32,
            speed_kmh: self.speed_dkmh as f64 / 10.0,
            heading: self.heading as u16,
            alarm: self.alarm as u32,
            status: self.status as u32,
            mileage_km: self.mileage_hm.map(|m| m as f64 / 10.0),
            extras,
        }
    }
}

/// A position from a row of `COLS` (`with_extras`) or `TRACK_COLS`.
fn row_to_position(r: &sqlx::any::AnyRow, with_extras: bool) -> StoreResult<Position> {
    let stored = Stored {
        vehicle_id: col(r, "vehicle_id")?,
        device_ms: col(r, "device_ms")?,
        received_ms: col(r, "received_ms")?,
        lat: col(r, "lat")?,
        lon: col(r, "lon")?,
        altitude_m: col(r, "altitude_m")?,
        speed_dkmh: col(r, "speed_dkmh")?,
        heading: col(r, "heading")?,
        alarm: col(r, "alarm")?,
        status: col(r, "status")?,
        mileage_hm: col(r, "mileage_hm")?,
    };
    let extras = if with_extras { col::<Option<Vec<u8>>>(r, "extras")?.unwrap_or_default() } else { Vec::new() };
    Ok(stored.into_position(extras))
}

/// The columns a track needs: all but the raw additional items.
const TRACK_COLS: &str =
    "vehicle_id, device_ms, received_ms, lat, lon, altitude_m, speed_dkmh, heading, alarm, status, mileage_hm";

/// Positions of a vehicle with device time in `[from, to)`, oldest first, at most `limit`, without
/// their raw additional items (`extras` is empty): what a track needs, and on PostgreSQL exactly
/// what the primary key's index carries, so the read never visits the table.
pub async fn range(
    store: &Store,
    vehicle_id: &str,
    from_ms: i64,
    to_ms: i64,
    limit: i64,
) -> StoreResult<Vec<Position>> {
    let sql = format!(
        "SELECT {TRACK_COLS} FROM transport_positions WHERE vehicle_id = $1 AND device_ms >= $2 AND device_ms < $3 \
         ORDER BY device_ms LIMIT $4"
    );
    if let Some(pg) = store.pg() {
        // Native rows: sqlx's `Any` driver converts every value of every row on the way.
        let rows = sqlx::query(&sql).bind(vehicle_id).bind(from_ms).bind(to_ms).bind(limit).fetch_all(pg).await?;
        return Ok(rows.iter().map(pg_track_position).collect::<Result<_, _>>()?);
    }
    // On SQLite, a day of one vehicle is thousands of rows: read them directly (see
    // `Store::sqlite_read`), a tenth of the cost of sqlx's row-by-row hand-over.
    let vid = vehicle_id.to_string();
    let direct_sql = store.sql(&sql).into_owned();
    let direct = store
        .sqlite_read(move |c| {
            let mut stmt = c.prepare_cached(&direct_sql)?;
            let rows = stmt.query_map(rusqlite::params![vid, from_ms, to_ms, limit], |r| {
                let stored = Stored {
                    vehicle_id: r.get(0)?,
                    device_ms: r.get(1)?,
                    received_ms: r.get(2)?,
                    lat: r.get(3)?,
                    lon: r.get(4)?,
                    altitude_m: r.get(5)?,
                    speed_dkmh: r.get(6)?,
                    heading: r.get(7)?,
                    alarm: r.get(8)?,
                    status: r.get(9)?,
                    mileage_hm: r.get(10)?,
                };
                Ok(stored.into_position(Vec::new()))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await;
    if let Some(result) = direct {
        return result;
    }
    // An in-memory SQLite store (tests) has no second connection to read through.
    let rows = sqlx::query(&store.sql(&sql))
        .bind(vehicle_id.to_string())
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(store.reader())
        .await?;
    rows.iter().map(|r| row_to_position(r, false)).collect()
}

/// A track row (`TRACK_COLS`) as PostgreSQL sends it.
fn pg_track_position(r: &sqlx::postgres::PgRow) -> Result<Position, sqlx::Error> {
    use sqlx::Row;
    let stored = Stored {
        vehicle_id: r.try_get(0)?,
        device_ms: r.try_get(1)?,
        received_ms: r.try_get(2)?,
        lat: r.try_get(3)?,
        lon: r.try_get(4)?,
        altitude_m: r.try_get(5)?,
        speed_dkmh: r.try_get(6)?,
        heading: r.try_get(7)?,
        alarm: r.try_get(8)?,
        status: r.try_get(9)?,
        mileage_hm: r.try_get(10)?,
    };
    Ok(stored.into_position(Vec::new()))
}

/// The newest position of a vehicle, if it has any (an index seek, however long its history).
pub async fn latest(store: &Store, vehicle_id: &str) -> StoreResult<Option<Position>> {
    let sql = store
        .sql(&format!("SELECT {COLS} FROM transport_positions WHERE vehicle_id = $1 ORDER BY device_ms DESC LIMIT 1"))
        .into_owned();
    let row = sqlx::query(&sql).bind(vehicle_id).fetch_optional(store.reader()).await?;
    row.as_ref().map(|r| row_to_position(r, true)).transpose()
}

/// Great-circle distance in metres (haversine, mean Earth radius 6 371 008.8 m).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().asin()
}

/// A stop: the vehicle stayed within a small radius at (near) zero speed for a while.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stop {
    pub from: String,
    pub to: String,
    pub minutes: f64,
    pub lat: f64,
    pub lon: f64,
}

/// What a track playback shows beside the points.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrackSummary {
    pub points: usize,
    /// Sum of the great-circle legs between valid fixes, metres.
    pub distance_m: f64,
    /// Odometer difference (additional item 0x01) when the terminal reports it, km.
    pub mileage_km: Option<f64>,
    pub max_speed_kmh: f64,
    pub stops: Vec<Stop>,
}

/// Below this speed a vehicle counts as standing (GNSS noise makes a parked vehicle "move").
const STANDING_KMH: f64 = 3.0;
/// A standing vehicle may drift this far (GNSS noise) and still be at the same stop.
const STOP_RADIUS_M: f64 = 50.0;

/// Distance, odometer mileage, maximum speed and the stops of at least `stop_minutes`.
pub fn summarise(points: &[Position], stop_minutes: f64) -> TrackSummary {
    let valid: Vec<&Position> = points.iter().filter(|p| p.status & STATUS_FIXED != 0 || p.lat != 0.0).collect();
    let total_m: f64 = valid.windows(2).map(|w| distance_m(w[0].lat, w[0].lon, w[1].lat, w[1].lon)).sum();
    let odo: Vec<f64> = points.iter().filter_map(|p| p.mileage_km).collect();
    let mileage_km = match (odo.first(), odo.last()) {
        (Some(a), Some(b)) if b >= a => Some(((b - a) * 10.0).round() / 10.0),
        _ => None,
    };
    let max_speed_kmh = points.iter().map(|p| p.speed_kmh).fold(0.0, f64::max);
    let mut stops = vec![];
    let mut i = 0;
    while i < valid.len() {
        if valid[i].speed_kmh >= STANDING_KMH {
            i += 1;
            continue;
        }
        let start = valid[i];
        let mut j = i;
        while j + 1 < valid.len()
            && valid[j + 1].speed_kmh < STANDING_KMH
            && distance_m(start.lat, start.lon, valid[j + 1].lat, valid[j + 1].lon) <= STOP_RADIUS_M
        {
            j += 1;
        }
        let minutes = (valid[j].device_ms - start.device_ms) as f64 / 60_000.0;
        if minutes >= stop_minutes {
            stops.push(Stop {
                from: ms_to_rfc3339(start.device_ms),
                to: ms_to_rfc3339(valid[j].device_ms),
                minutes: (minutes * 10.0).round() / 10.0,
                lat: start.lat,
                lon: start.lon,
            });
        }
        i = j + 1;
    }
    TrackSummary { points: points.len(), distance_m: total_m.round(), mileage_km, max_speed_kmh, stops }
}

/// At most `max` points for drawing a long range: the first and last, every point with an alarm,
/// and in each of the remaining buckets the point of highest speed (so peaks are not lost).
pub fn downsample(points: &[Position], max: usize) -> Vec<Position> {
    if points.len() <= max || max < 3 {
        return points.to_vec();
    }
    let mut keep = vec![false; points.len()];
    keep[0] = true;
    keep[points.len() - 1] = true;
    for (i, p) in points.iter().enumerate() {
        if p.alarm != 0 {
            keep[i] = true;
        }
    }
    let budget = max.saturating_sub(keep.iter().filter(|k| **k).count()).max(1);
    let bucket = points.len().div_ceil(budget);
    for start in (0..points.len()).step_by(bucket) {
        let end = (start + bucket).min(points.len());
        if let Some((i, _)) =
            points[start..end].iter().enumerate().max_by(|a, b| a.1.speed_kmh.total_cmp(&b.1.speed_kmh))
        {
            keep[start + i] = true;
        }
    }
    points.iter().zip(keep).filter(|(_, k)| *k).map(|(p, _)| p.clone()).collect()
}

/// CSV with a header line; times in RFC 3339 UTC.
pub fn to_csv(plate: &str, points: &[Position]) -> String {
    let mut s = String::from("plate,time,lat,lon,altitude_m,speed_kmh,heading,acc,alarm,status,mileage_km\n");
    for p in points {
        s.push_str(&format!(
            "{},{},{:.6},{:.6},{},{:.1},{},{},{},{},{}\n",
            csv_field(plate),
            ms_to_rfc3339(p.device_ms),
            p.lat,
            p.lon,
            p.altitude_m,
            p.speed_kmh,
            p.heading,
            u8::from(p.acc_on()),
            p.alarm,
            p.status,
            p.mileage_km.map(|m| format!("{m:.1}")).unwrap_or_default()
        ));
    }
    s
}

/// Quotes a CSV field and defuses spreadsheet formulas (a field starting with = + - @).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// GPX 1.1 with one track.
pub fn to_gpx(plate: &str, points: &[Position]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"Wuqing platform\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n",
    );
    s.push_str(&format!("<trk><name>{}</name><trkseg>\n", xml_escape(plate)));
    for p in points {
        s.push_str(&format!(
            "<trkpt lat=\"{:.6}\" lon=\"{:.6}\"><ele>{}</ele><time>{}</time></trkpt>\n",
            p.lat,
            p.lon,
            p.altitude_m,
            ms_to_rfc3339(p.device_ms)
        ));
    }
    s.push_str("</trkseg></trk>\n</gpx>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t_min: f64, lat: f64, lon: f64, speed: f64) -> Position {
        Position {
            vehicle_id: "v".into(),
            device_ms: (t_min * 60_000.0) as i64,
            received_ms: 0,
            lat,
            lon,
            altitude_m: 5,
            speed_kmh: speed,
            heading: 90,
            alarm: 0,
            status: STATUS_FIXED | STATUS_ACC,
            mileage_km: None,
            extras: vec![],
        }
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is 111.2 km on the mean sphere.
        let d = distance_m(39.0, 117.0, 40.0, 117.0);
        assert!((d - 111_195.0).abs() < 5.0, "{d}");
        assert_eq!(distance_m(39.38, 117.04, 39.38, 117.04), 0.0);
    }

    #[test]
    fn stops_need_their_minimum_duration_and_tolerate_gnss_drift() {
        let mut pts = vec![p(0.0, 39.38, 117.00, 40.0), p(1.0, 39.38, 117.01, 40.0)];
        // Standing 12 minutes, drifting a few metres.
        for i in 0..=12 {
            pts.push(p(2.0 + i as f64, 39.38, 117.0200 + (i % 2) as f64 * 0.00003, 0.0));
        }
        pts.push(p(15.0, 39.38, 117.03, 35.0));
        // Standing 4 minutes: not a stop at a 5-minute threshold.
        for i in 0..=4 {
            pts.push(p(16.0 + i as f64, 39.38, 117.04, 0.0));
        }
        pts.push(p(21.0, 39.38, 117.05, 50.0));
        let s = summarise(&pts, 5.0);
        assert_eq!(s.stops.len(), 1, "{:?}", s.stops);
        assert_eq!(s.stops[0].minutes, 12.0);
        assert_eq!(s.max_speed_kmh, 50.0);
        // Five legs of 0.01° of longitude at 39.38° N ≈ 860 m each.
        assert!((s.distance_m - 4300.0).abs() < 60.0, "{}", s.distance_m);
    }

    #[test]
    fn downsampling_keeps_ends_alarms_and_peaks() {
        let mut pts: Vec<Position> =
            (0..10_000).map(|i| p(i as f64 / 60.0, 39.38, 117.0 + i as f64 * 1e-5, 40.0)).collect();
        pts[5_000].speed_kmh = 130.0;
        pts[7_777].alarm = 2;
        let d = downsample(&pts, 500);
        assert!(d.len() <= 502, "{}", d.len());
        assert_eq!(d.first(), pts.first());
        assert_eq!(d.last(), pts.last());
        assert!(d.iter().any(|x| x.speed_kmh == 130.0));
        assert!(d.iter().any(|x| x.alarm == 2));
        assert!(d.windows(2).all(|w| w[0].device_ms < w[1].device_ms));
    }

    #[test]
    fn exports() {
        let pts = vec![p(0.0, 39.38, 117.04, 12.3)];
        let csv = to_csv("=津C80100", &pts);
        assert!(
            csv.lines().nth(1).unwrap().starts_with("'=津C80100,1970-01-01T00:00:00Z,39.380000,117.040000,5,12.3,90,1"),
            "{csv}"
        );
        let gpx = to_gpx("津C<80100>", &pts);
        assert!(
            gpx.contains("<name>津C&lt;80100&gt;</name>")
                && gpx.contains("<trkpt lat=\"39.380000\" lon=\"117.040000\">")
        );
    }
}
