//! Property tests: `decode(encode(m)) == m` for every message in every edition it
//! exists in, and escape → unescape for any bytes.

use jt808::area::{CircleArea, Point, PolygonArea, RectangleArea, Route, RoutePoint, SetAreas, SpeedLimit, TimeWindow};
use jt808::framing::{escape_into, unescape_into};
use jt808::location::{DeciKmh, Heading, MicroDegrees};
use jt808::message::{
    Attributes, AuthExtension, Authenticate, CanData, CanFrame, Contact, DriverCard, DriverIdentity, GeneralResponse,
    LocationBatch, MultimediaEvent, MultimediaUpload, Parameter, Register, RegisterResponse, TextMessage, ids,
};
use jt808::time::BcdTime;
use jt808::{
    AdditionalItem, AlarmFlags, ChecksumPolicy, Decoder, Header, Location, LocationFix, Message, Packet, Phone,
    StatusFlags, UtcTime, Version,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Text that GBK can carry, with Chinese characters, no NUL.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 ;,.@津京沪粤测试张三]{{0,{max}}}")).expect("regex")
}

/// ASCII for fixed-width fields.
fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Z0-9-]{{0,{max}}}")).expect("regex")
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// Instants whose GMT+8 year is 2000–2099.
fn time() -> impl Strategy<Value = Option<UtcTime>> {
    prop::option::of((946_656_000i64..4_102_415_000).prop_map(UtcTime))
}

fn fix() -> impl Strategy<Value = LocationFix> {
    (
        any::<u32>(),
        any::<u32>(),
        -90_000_000i32..=90_000_000,
        -180_000_000i32..=180_000_000,
        any::<u16>(),
        any::<u16>(),
        0u16..360,
        time(),
    )
        .prop_map(|(alarm, status, lat, lon, alt, speed, heading, time)| {
            let mut status = StatusFlags::from_bits_retain(status);
            if lat != 0 {
                status.set(StatusFlags::SOUTH, lat < 0);
            }
            if lon != 0 {
                status.set(StatusFlags::WEST, lon < 0);
            }
            LocationFix {
                alarm: AlarmFlags::from_bits_retain(alarm),
                status,
                latitude: MicroDegrees(lat),
                longitude: MicroDegrees(lon),
                altitude_m: alt,
                speed: DeciKmh(speed),
                heading: Heading(heading),
                time,
            }
        })
}

const STANDARD_ITEMS: &[u8] = &[1, 2, 3, 4, 5, 6, 0x11, 0x12, 0x13, 0x25, 0x2a, 0x2b, 0x30, 0x31];

#[derive(Debug, Clone)]
enum ItemSpec {
    Typed(AdditionalItem<'static>),
    Other(u8, Vec<u8>),
}

fn item() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![
        any::<u32>().prop_map(|v| ItemSpec::Typed(AdditionalItem::Mileage(v))),
        any::<u16>().prop_map(|v| ItemSpec::Typed(AdditionalItem::Fuel(v))),
        any::<u16>().prop_map(|v| ItemSpec::Typed(AdditionalItem::RecorderSpeed(v))),
        any::<u16>().prop_map(|v| ItemSpec::Typed(AdditionalItem::AlarmEventId(v))),
        any::<[u8; 30]>().prop_map(|v| ItemSpec::Typed(AdditionalItem::TirePressure(v))),
        any::<i16>().prop_map(|v| ItemSpec::Typed(AdditionalItem::CarriageTemperature(v))),
        Just(ItemSpec::Typed(AdditionalItem::Overspeed { location_type: 0, area_id: None })),
        (1u8.., any::<u32>())
            .prop_map(|(t, a)| ItemSpec::Typed(AdditionalItem::Overspeed { location_type: t, area_id: Some(a) })),
        (any::<u8>(), any::<u32>(), any::<u8>()).prop_map(|(t, a, d)| ItemSpec::Typed(AdditionalItem::AreaEntryExit {
            location_type: t,
            area_id: a,
            direction: d
        })),
        (any::<u32>(), any::<u16>(), any::<u8>()).prop_map(|(s, t, r)| ItemSpec::Typed(
            AdditionalItem::SegmentDriveTime { segment_id: s, drive_time_s: t, result: r }
        )),
        any::<u32>().prop_map(|v| ItemSpec::Typed(AdditionalItem::ExtendedSignals(v))),
        any::<u16>().prop_map(|v| ItemSpec::Typed(AdditionalItem::IoStatus(v))),
        any::<u32>().prop_map(|v| ItemSpec::Typed(AdditionalItem::Analog(v))),
        any::<u8>().prop_map(|v| ItemSpec::Typed(AdditionalItem::SignalStrength(v))),
        any::<u8>().prop_map(|v| ItemSpec::Typed(AdditionalItem::Satellites(v))),
        (any::<u8>().prop_filter("vendor id", |id| !STANDARD_ITEMS.contains(id)), bytes(20))
            .prop_map(|(id, v)| ItemSpec::Other(id, v)),
    ]
}

fn location(max_items: usize) -> impl Strategy<Value = Location> {
    (fix(), vec(item(), 0..=max_items)).prop_map(|(fix, items)| {
        let mut l = Location::new(fix);
        for i in items {
            let r = match &i {
                ItemSpec::Typed(t) => l.push_item(t),
                ItemSpec::Other(id, v) => l.push_item(&AdditionalItem::Other { id: *id, value: v }),
            };
            assert!(r.is_ok());
        }
        l
    })
}

fn params() -> impl Strategy<Value = Vec<Parameter>> {
    vec((any::<u32>(), bytes(12)).prop_map(|(id, value)| Parameter { id, value }), 0..8)
}

fn bcd_time() -> impl Strategy<Value = BcdTime> {
    vec(0u8..100, 6).prop_map(|v| {
        let mut a = [0u8; 6];
        for (o, x) in a.iter_mut().zip(v) {
            *o = ((x / 10) << 4) | (x % 10);
        }
        BcdTime(a)
    })
}

fn window() -> impl Strategy<Value = Option<TimeWindow>> {
    prop::option::of((bcd_time(), bcd_time()).prop_map(|(start, end)| TimeWindow { start, end }))
}

fn speed(v19: bool) -> impl Strategy<Value = Option<SpeedLimit>> {
    prop::option::of((any::<u16>(), any::<u8>(), any::<u16>()).prop_map(move |(m, d, n)| SpeedLimit {
        max_kmh: m,
        duration_s: d,
        night_max_kmh: v19.then_some(n),
    }))
}

fn point() -> impl Strategy<Value = Point> {
    (any::<u32>(), any::<u32>()).prop_map(|(lat, lon)| Point { lat, lon })
}

/// Attribute words whose bits 0–1 agree with the optional fields.
fn fix_attr(a: u16, w: bool, s: bool) -> u16 {
    (a & !3) | u16::from(w) | (u16::from(s) << 1)
}

fn name(v19: bool) -> impl Strategy<Value = Option<String>> {
    text(8).prop_map(move |n| v19.then_some(n))
}

fn message(v: Version) -> BoxedStrategy<Message> {
    let v19 = v == Version::V2019;
    let general = (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(s, i, r)| GeneralResponse {
        reply_serial: s,
        reply_id: i,
        result: r,
    });
    let ids4 = || vec(any::<u32>(), 0..10);
    let (wm, wmo, wid) = match v {
        Version::V2011 => (5, 8, 7),
        Version::V2013 => (5, 20, 7),
        Version::V2019 => (11, 30, 30),
    };
    let register = (any::<u16>(), any::<u16>(), ascii(wm), ascii(wmo), ascii(wid), any::<u8>(), text(5)).prop_map(
        |(province, city, maker, model, terminal_id, plate_color, plate)| {
            Message::Register(Register { province, city, maker, model, terminal_id, plate_color, plate })
        },
    );
    if v == Version::V2011 {
        return register.boxed();
    }
    let circle = (any::<u32>(), any::<u16>(), point(), any::<u32>(), window(), speed(v19), name(v19)).prop_map(
        |(id, a, center, radius_m, window, speed, name)| CircleArea {
            id,
            attributes: fix_attr(a, window.is_some(), speed.is_some()),
            center,
            radius_m,
            window,
            speed,
            name,
        },
    );
    let rect = (any::<u32>(), any::<u16>(), point(), point(), window(), speed(v19), name(v19)).prop_map(
        |(id, a, top_left, bottom_right, window, speed, name)| RectangleArea {
            id,
            attributes: fix_attr(a, window.is_some(), speed.is_some()),
            top_left,
            bottom_right,
            window,
            speed,
            name,
        },
    );
    let polygon = (any::<u32>(), any::<u16>(), window(), speed(v19), vec(point(), 0..10), name(v19)).prop_map(
        |(id, a, window, speed, vertices, name)| PolygonArea {
            id,
            attributes: fix_attr(a, window.is_some(), speed.is_some()),
            window,
            speed,
            vertices,
            name,
        },
    );
    let route_point = (
        any::<u32>(),
        any::<u32>(),
        point(),
        any::<u8>(),
        any::<u8>(),
        prop::option::of((any::<u16>(), any::<u16>())),
        speed(v19),
    )
        .prop_map(|(point_id, segment_id, point, width_m, a, drive_time, speed)| RoutePoint {
            point_id,
            segment_id,
            point,
            width_m,
            attributes: (a & !3) | u8::from(drive_time.is_some()) | (u8::from(speed.is_some()) << 1),
            drive_time,
            speed,
        });
    let route = (any::<u32>(), any::<u16>(), window(), vec(route_point, 0..6), name(v19)).prop_map(
        |(id, a, window, points, name)| Route {
            id,
            attributes: (a & !1) | u16::from(window.is_some()),
            window,
            points,
            name,
        },
    );
    let bcd4 = vec(0u8..100, 4).prop_map(|v| {
        let mut a = [0u8; 4];
        for (o, x) in a.iter_mut().zip(v) {
            *o = ((x / 10) << 4) | (x % 10);
        }
        a
    });
    let card = (text(6), ascii(20), text(10), bcd4, ascii(18)).prop_map(
        move |(name, certificate, issuer, valid_until, id)| DriverCard {
            name,
            certificate,
            issuer,
            valid_until,
            id_card: v19.then_some(id),
        },
    );
    let driver = (any::<u8>(), time(), prop::option::of(any::<u8>()), prop::option::of(card)).prop_map(
        |(status, time, read_result, card)| {
            let card = if read_result == Some(0) { card } else { None };
            Message::DriverIdentity(DriverIdentity { status, time, read_result, card })
        },
    );
    let media = (any::<u32>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(
        |(media_id, media_type, format, event, channel)| MultimediaEvent {
            media_id,
            media_type,
            format,
            event,
            channel,
        },
    );
    let can_time = vec(0u8..100, 5).prop_map(|v| {
        let mut a = [0u8; 5];
        for (o, x) in a.iter_mut().zip(v) {
            *o = ((x / 10) << 4) | (x % 10);
        }
        a
    });
    let iccid = proptest::string::string_regex("[0-9]{20}").expect("regex");
    prop_oneof![
        general.clone().prop_map(Message::TerminalResponse),
        general.prop_map(Message::PlatformResponse),
        Just(Message::Heartbeat),
        Just(Message::Logout),
        Just(Message::ServerTimeRequest),
        time().prop_map(|time| Message::ServerTimeResponse { time }),
        (any::<u16>(), vec(any::<u16>(), 0..40))
            .prop_map(|(first_serial, packet_ids)| { Message::ResendRequest { first_serial, packet_ids } }),
        register,
        (any::<u16>(), any::<u8>(), text(20)).prop_map(|(reply_serial, result, auth_code)| {
            Message::RegisterResponse(RegisterResponse { reply_serial, result, auth_code })
        }),
        (text(20), ascii(15), ascii(20)).prop_map(move |(auth_code, imei, software_version)| {
            Message::Authenticate(Authenticate {
                auth_code,
                v2019: v19.then_some(AuthExtension { imei, software_version }),
            })
        }),
        params().prop_map(Message::SetParameters),
        Just(Message::QueryAllParameters),
        (any::<u16>(), params())
            .prop_map(|(reply_serial, parameters)| { Message::ParametersResponse { reply_serial, parameters } }),
        (any::<u8>(), text(30)).prop_map(|(command, parameters)| Message::TerminalControl { command, parameters }),
        ids4().prop_map(Message::QueryParameters),
        Just(Message::QueryAttributes),
        (any::<u16>(), ascii(5), ascii(20), ascii(7), iccid, text(10), text(10), any::<u8>(), any::<u8>()).prop_map(
            |(terminal_type, maker, model, terminal_id, iccid, hardware_version, firmware_version, gnss, comm)| {
                Message::Attributes(Attributes {
                    terminal_type,
                    maker,
                    model,
                    terminal_id,
                    iccid,
                    hardware_version,
                    firmware_version,
                    gnss,
                    comm,
                })
            }
        ),
        (any::<u8>(), any::<u8>()).prop_map(|(kind, result)| Message::UpgradeResult { kind, result }),
        location(8).prop_map(Message::Location),
        Just(Message::QueryLocation),
        (any::<u16>(), location(4))
            .prop_map(|(reply_serial, location)| { Message::LocationResponse { reply_serial, location } }),
        (any::<u16>(), any::<u32>())
            .prop_map(|(interval_s, validity_s)| { Message::TemporaryTracking { interval_s, validity_s } }),
        (any::<u16>(), any::<u32>()).prop_map(|(alarm_serial, a)| Message::ConfirmAlarm {
            alarm_serial,
            alarms: AlarmFlags::from_bits_retain(a)
        }),
        Just(Message::LinkCheck),
        (any::<u8>(), any::<u8>(), text(40)).prop_map(move |(flags, t, text)| Message::TextMessage(TextMessage {
            flags,
            text_type: v19.then_some(t),
            text
        })),
        (any::<u8>(), ascii(20)).prop_map(|(monitor, phone)| Message::CallBack { monitor, phone }),
        (any::<u8>(), vec((any::<u8>(), ascii(12), text(6)), 0..5)).prop_map(|(kind, c)| {
            Message::SetPhonebook {
                kind,
                contacts: c.into_iter().map(|(flag, phone, name)| Contact { flag, phone, name }).collect(),
            }
        }),
        (any::<u8>(), vec(circle, 0..4)).prop_map(|(mode, areas)| Message::SetCircleAreas(SetAreas { mode, areas })),
        ids4().prop_map(Message::DeleteCircleAreas),
        (any::<u8>(), vec(rect, 0..4)).prop_map(|(mode, areas)| Message::SetRectangleAreas(SetAreas { mode, areas })),
        ids4().prop_map(Message::DeleteRectangleAreas),
        polygon.prop_map(Message::SetPolygonArea),
        ids4().prop_map(Message::DeletePolygonAreas),
        route.prop_map(Message::SetRoute),
        ids4().prop_map(Message::DeleteRoutes),
        driver,
        (any::<u8>(), vec(location(3), 0..5))
            .prop_map(|(kind, locations)| Message::LocationBatch(LocationBatch { kind, locations })),
        (can_time, vec((any::<u32>(), any::<[u8; 8]>()), 0..10)).prop_map(|(receive_time, f)| {
            Message::CanData(CanData {
                receive_time,
                frames: f.into_iter().map(|(id, data)| CanFrame { id, data }).collect(),
            })
        }),
        media.clone().prop_map(Message::MultimediaEvent),
        (media, fix(), bytes(200)).prop_map(|(event, fix, data)| Message::MultimediaUpload(MultimediaUpload {
            event,
            fix,
            data
        })),
        (any::<u32>(), vec(any::<u16>(), 0..20))
            .prop_map(|(media_id, retransmit)| { Message::MultimediaUploadResponse { media_id, retransmit } }),
        (any::<u8>(), bytes(100)).prop_map(|(kind, data)| Message::UplinkPassthrough { kind, data }),
        (any::<u8>(), bytes(100)).prop_map(|(kind, data)| Message::DownlinkPassthrough { kind, data }),
        (any::<u16>().prop_filter("unknown id", |id| !ids::TYPED.contains(id)), bytes(100))
            .prop_map(|(msg_id, body)| Message::Raw { msg_id, body }),
    ]
    .boxed()
}

fn header(v: Version) -> impl Strategy<Value = Header> {
    let width = if v == Version::V2019 { 10 } else { 6 };
    (vec(any::<u8>(), width), any::<u16>(), any::<u8>()).prop_map(move |(phone, serial, pv)| {
        let phone = Phone::from_bcd(&phone);
        let mut h = Header::new(0, phone, serial);
        h.version = v;
        h.protocol_version = if v == Version::V2019 { pv } else { 0 };
        h
    })
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![Just(Version::V2011), Just(Version::V2013), Just(Version::V2019)]
        .prop_flat_map(|v| (header(v), message(v)))
        .prop_map(|(mut header, message)| {
            header.msg_id = message.msg_id();
            Packet { header, message }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(p in packet()) {
        let frame = jt808::encode(&p).expect("encodes");
        prop_assert_eq!(jt808::decode(&frame), Ok(p));
    }

    #[test]
    fn escape_then_unescape_is_identity(
        content in vec(prop_oneof![Just(0x7eu8), Just(0x7d), Just(0x01), Just(0x02), any::<u8>()], 0..300)
    ) {
        let mut framed = Vec::new();
        escape_into(&content, &mut framed);
        prop_assert_eq!(framed.first(), Some(&0x7e));
        prop_assert_eq!(framed.last(), Some(&0x7e));
        let inner = &framed[1..framed.len() - 1];
        prop_assert!(!inner.contains(&0x7e));
        let mut back = Vec::new();
        unescape_into(inner, &mut back).expect("unescapes");
        prop_assert_eq!(back, content);
    }

    #[test]
    fn location_view_matches_owned(l in location(10)) {
        let mut body = Vec::new();
        Message::Location(l.clone()).encode(Version::V2013, &mut body).expect("encodes");
        let view = jt808::LocationView::parse(&body).expect("parses");
        prop_assert_eq!(view.to_owned(), l);
    }

    #[test]
    fn any_bytes_decode_without_panic(mut frame in vec(any::<u8>(), 0..200)) {
        let _ = Decoder::new(ChecksumPolicy::Lenient).packet(&mut frame);
    }

    #[test]
    fn any_body_of_any_id_decodes_without_panic(id in prop::sample::select(ids::TYPED), body in bytes(300)) {
        for v in [Version::V2011, Version::V2013, Version::V2019] {
            if let Ok(m) = Message::decode(id, v, &body) {
                // What decodes re-encodes and decodes to the same value.
                let mut out = Vec::new();
                if m.encode(v, &mut out).is_ok() {
                    prop_assert_eq!(Message::decode(id, v, &out), Ok(m));
                }
            }
        }
    }
}
