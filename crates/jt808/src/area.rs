//! Areas and routes, 0x8600–0x8607 (JT/T 808-2019 §8.36–§8.43, tables 59–70).
//!
//! Attribute bit 0 says whether start and end times follow, bit 1 whether a speed
//! limit follows; on encode these two bits are set from the presence of the
//! optional fields so the body can never disagree with itself. 2019 adds a night
//! speed limit and a name.

use crate::error::Result;
use crate::header::Version;
use crate::time::BcdTime;
use crate::wire::{Put, Reader, count_u8, count_u16};

const HAS_TIME: u16 = 1 << 0;
const HAS_SPEED: u16 = 1 << 1;

/// Validity window of an area or route (BCD, 00 fields are wildcards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeWindow {
    /// Start.
    pub start: BcdTime,
    /// End.
    pub end: BcdTime,
}

/// A speed limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpeedLimit {
    /// Highest speed, km/h.
    pub max_kmh: u16,
    /// Time over the limit before an alarm, s.
    pub duration_s: u8,
    /// 2019: night-time highest speed, km/h.
    pub night_max_kmh: Option<u16>,
}

/// A point in millionths of a degree; the hemisphere is in the area attribute
/// (bits 6 and 7 in 2013 circle/rectangle tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Point {
    /// Latitude, 1e-6 degree.
    pub lat: u32,
    /// Longitude, 1e-6 degree.
    pub lon: u32,
}

fn read_point(r: &mut Reader<'_>) -> Result<Point> {
    Ok(Point { lat: r.u32("area.latitude")?, lon: r.u32("area.longitude")? })
}

fn write_point(p: Point, out: &mut Vec<u8>) {
    out.put_u32(p.lat);
    out.put_u32(p.lon);
}

fn read_window(r: &mut Reader<'_>, present: bool) -> Result<Option<TimeWindow>> {
    if !present {
        return Ok(None);
    }
    Ok(Some(TimeWindow {
        start: BcdTime::read(r.array("area.start_time")?, "area.start_time")?,
        end: BcdTime::read(r.array("area.end_time")?, "area.end_time")?,
    }))
}

fn write_window(w: &Option<TimeWindow>, out: &mut Vec<u8>) -> Result<()> {
    if let Some(w) = w {
        // BcdTime values are only built from checked input or by the caller: check again.
        BcdTime::read(w.start.0, "area.start_time")?;
        BcdTime::read(w.end.0, "area.end_time")?;
        out.put(&w.start.0);
        out.put(&w.end.0);
    }
    Ok(())
}

fn read_speed(r: &mut Reader<'_>, present: bool, v: Version) -> Result<Option<SpeedLimit>> {
    if !present {
        return Ok(None);
    }
    Ok(Some(SpeedLimit {
        max_kmh: r.u16("area.max_speed")?,
        duration_s: r.u8("area.overspeed_duration")?,
        night_max_kmh: if v == Version::V2019 { Some(r.u16("area.night_max_speed")?) } else { None },
    }))
}

fn write_speed(s: &Option<SpeedLimit>, v: Version, out: &mut Vec<u8>) {
    if let Some(s) = s {
        out.put_u16(s.max_kmh);
        out.put_u8(s.duration_s);
        if v == Version::V2019 {
            out.put_u16(s.night_max_kmh.unwrap_or(0));
        }
    }
}

fn read_name(r: &mut Reader<'_>, v: Version) -> Result<Option<String>> {
    if v == Version::V2019 { Ok(Some(r.gbk_u16("area.name")?)) } else { Ok(None) }
}

fn write_name(name: &Option<String>, v: Version, out: &mut Vec<u8>) -> Result<()> {
    if v == Version::V2019 {
        out.put_gbk_u16(name.as_deref().unwrap_or(""), "area.name")?;
    }
    Ok(())
}

fn attr(base: u16, time: bool, speed: bool) -> u16 {
    (base & !(HAS_TIME | HAS_SPEED)) | if time { HAS_TIME } else { 0 } | if speed { HAS_SPEED } else { 0 }
}

/// Shared by 0x8600 and 0x8602: the setting mode and the list of areas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SetAreas<A> {
    /// 0 replace, 1 append, 2 modify.
    pub mode: u8,
    /// Areas.
    pub areas: Vec<A>,
}

/// An area shape that can be listed in 0x8600 or 0x8602.
pub(crate) trait AreaItem: Sized {
    /// Reads one area.
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self>;
    /// Writes one area.
    fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()>;
}

impl<A> SetAreas<A> {
    pub(crate) fn read(r: &mut Reader<'_>, v: Version) -> Result<Self>
    where
        A: AreaItem,
    {
        let mode = r.u8("areas.mode")?;
        let n = r.u8("areas.count")?;
        let mut areas = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            areas.push(A::read(r, v)?);
        }
        Ok(Self { mode, areas })
    }

    pub(crate) fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()>
    where
        A: AreaItem,
    {
        out.put_u8(self.mode);
        out.put_u8(count_u8(self.areas.len(), "areas.count")?);
        for a in &self.areas {
            a.write(v, out)?;
        }
        Ok(())
    }
}

/// A circular area (0x8600, 2019 table 60).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CircleArea {
    /// Area ID.
    pub id: u32,
    /// Attribute bits (bits 0 and 1 follow `window` and `speed`).
    pub attributes: u16,
    /// Centre.
    pub center: Point,
    /// Radius, m.
    pub radius_m: u32,
    /// Validity window.
    pub window: Option<TimeWindow>,
    /// Speed limit.
    pub speed: Option<SpeedLimit>,
    /// 2019: name.
    pub name: Option<String>,
}

impl AreaItem for CircleArea {
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self> {
        let id = r.u32("area.id")?;
        let attributes = r.u16("area.attributes")?;
        let center = read_point(r)?;
        let radius_m = r.u32("area.radius")?;
        let window = read_window(r, attributes & HAS_TIME != 0)?;
        let speed = read_speed(r, attributes & HAS_SPEED != 0, v)?;
        let name = read_name(r, v)?;
        Ok(Self { id, attributes, center, radius_m, window, speed, name })
    }

    fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        out.put_u32(self.id);
        out.put_u16(attr(self.attributes, self.window.is_some(), self.speed.is_some()));
        write_point(self.center, out);
        out.put_u32(self.radius_m);
        write_window(&self.window, out)?;
        write_speed(&self.speed, v, out);
        write_name(&self.name, v, out)
    }
}

/// A rectangular area (0x8602, 2019 table 63).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RectangleArea {
    /// Area ID.
    pub id: u32,
    /// Attribute bits.
    pub attributes: u16,
    /// Top-left corner.
    pub top_left: Point,
    /// Bottom-right corner.
    pub bottom_right: Point,
    /// Validity window.
    pub window: Option<TimeWindow>,
    /// Speed limit.
    pub speed: Option<SpeedLimit>,
    /// 2019: name.
    pub name: Option<String>,
}

impl AreaItem for RectangleArea {
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Self> {
        let id = r.u32("area.id")?;
        let attributes = r.u16("area.attributes")?;
        let top_left = read_point(r)?;
        let bottom_right = read_point(r)?;
        let window = read_window(r, attributes & HAS_TIME != 0)?;
        let speed = read_speed(r, attributes & HAS_SPEED != 0, v)?;
        let name = read_name(r, v)?;
        Ok(Self { id, attributes, top_left, bottom_right, window, speed, name })
    }

    fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        out.put_u32(self.id);
        out.put_u16(attr(self.attributes, self.window.is_some(), self.speed.is_some()));
        write_point(self.top_left, out);
        write_point(self.bottom_right, out);
        write_window(&self.window, out)?;
        write_speed(&self.speed, v, out);
        write_name(&self.name, v, out)
    }
}

/// A polygonal area (0x8604, 2019 table 65). In 2019 the night speed limit follows
/// the vertices, not the day limit (as read by yezhihao/jt808-server and
/// toggery/jt808 too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PolygonArea {
    /// Area ID.
    pub id: u32,
    /// Attribute bits.
    pub attributes: u16,
    /// Validity window.
    pub window: Option<TimeWindow>,
    /// Speed limit.
    pub speed: Option<SpeedLimit>,
    /// Vertices.
    pub vertices: Vec<Point>,
    /// 2019: name.
    pub name: Option<String>,
}

impl PolygonArea {
    pub(crate) fn read(r: &mut Reader<'_>, v: Version) -> Result<Self> {
        let id = r.u32("area.id")?;
        let attributes = r.u16("area.attributes")?;
        let window = read_window(r, attributes & HAS_TIME != 0)?;
        // 2019 table 65 puts the night limit after the vertices.
        let mut speed = read_speed(r, attributes & HAS_SPEED != 0, Version::V2013)?;
        let n = r.u16("area.vertex_count")?;
        let mut vertices = Vec::with_capacity(usize::from(n).min(r.remaining() / 8));
        for _ in 0..n {
            vertices.push(read_point(r)?);
        }
        if let (Some(s), Version::V2019) = (&mut speed, v) {
            s.night_max_kmh = Some(r.u16("area.night_max_speed")?);
        }
        let name = read_name(r, v)?;
        Ok(Self { id, attributes, window, speed, vertices, name })
    }

    pub(crate) fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        out.put_u32(self.id);
        out.put_u16(attr(self.attributes, self.window.is_some(), self.speed.is_some()));
        write_window(&self.window, out)?;
        write_speed(&self.speed, Version::V2013, out);
        out.put_u16(count_u16(self.vertices.len(), "area.vertex_count")?);
        for p in &self.vertices {
            write_point(*p, out);
        }
        if let (Some(s), Version::V2019) = (&self.speed, v) {
            out.put_u16(s.night_max_kmh.unwrap_or(0));
        }
        write_name(&self.name, v, out)
    }
}

/// One turning point of a route (2019 table 68).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoutePoint {
    /// Turning point ID.
    pub point_id: u32,
    /// Segment ID.
    pub segment_id: u32,
    /// Position.
    pub point: Point,
    /// Segment width, m.
    pub width_m: u8,
    /// Segment attribute bits (bits 0 and 1 follow `drive_time` and `speed`).
    pub attributes: u8,
    /// (too long, too short) driving time thresholds, s.
    pub drive_time: Option<(u16, u16)>,
    /// Speed limit.
    pub speed: Option<SpeedLimit>,
}

/// A route (0x8606, 2019 table 67).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Route {
    /// Route ID.
    pub id: u32,
    /// Attribute bits (bit 0 follows `window`).
    pub attributes: u16,
    /// Validity window.
    pub window: Option<TimeWindow>,
    /// Turning points.
    pub points: Vec<RoutePoint>,
    /// 2019: name.
    pub name: Option<String>,
}

impl Route {
    pub(crate) fn read(r: &mut Reader<'_>, v: Version) -> Result<Self> {
        let id = r.u32("route.id")?;
        let attributes = r.u16("route.attributes")?;
        let window = read_window(r, attributes & HAS_TIME != 0)?;
        let n = r.u16("route.point_count")?;
        let mut points = Vec::with_capacity(usize::from(n).min(r.remaining() / 18));
        for _ in 0..n {
            let point_id = r.u32("route.point_id")?;
            let segment_id = r.u32("route.segment_id")?;
            let point = read_point(r)?;
            let width_m = r.u8("route.width")?;
            let attributes = r.u8("route.segment_attributes")?;
            let drive_time = if attributes & 1 != 0 {
                Some((r.u16("route.max_drive_time")?, r.u16("route.min_drive_time")?))
            } else {
                None
            };
            let speed = read_speed(r, attributes & 2 != 0, v)?;
            points.push(RoutePoint { point_id, segment_id, point, width_m, attributes, drive_time, speed });
        }
        let name = read_name(r, v)?;
        Ok(Self { id, attributes, window, points, name })
    }

    pub(crate) fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        out.put_u32(self.id);
        out.put_u16((self.attributes & !HAS_TIME) | u16::from(self.window.is_some()));
        write_window(&self.window, out)?;
        out.put_u16(count_u16(self.points.len(), "route.point_count")?);
        for p in &self.points {
            out.put_u32(p.point_id);
            out.put_u32(p.segment_id);
            write_point(p.point, out);
            out.put_u8(p.width_m);
            let a = (p.attributes & !3) | u8::from(p.drive_time.is_some()) | (u8::from(p.speed.is_some()) << 1);
            out.put_u8(a);
            if let Some((max, min)) = p.drive_time {
                out.put_u16(max);
                out.put_u16(min);
            }
            write_speed(&p.speed, v, out);
        }
        write_name(&self.name, v, out)
    }
}

pub(crate) fn read_ids(r: &mut Reader<'_>) -> Result<Vec<u32>> {
    let n = r.u8("delete.count")?;
    let mut ids = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        ids.push(r.u32("delete.ids")?);
    }
    Ok(ids)
}

pub(crate) fn write_ids(ids: &[u32], out: &mut Vec<u8>) -> Result<()> {
    out.put_u8(count_u8(ids.len(), "delete.count")?);
    for id in ids {
        out.put_u32(*id);
    }
    Ok(())
}
