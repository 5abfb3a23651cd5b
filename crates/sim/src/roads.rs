//! Roads around Wuqing for the simulator (and, later, the offline base map): polylines with
//! approximate WGS-84 coordinates of the district's main roads, drawn from public maps at the
//! precision a demo needs (tens of metres), not survey data.

/// A named road: (Chinese name, English name, waypoints as (lat, lon)).
#[derive(Debug)]
pub struct Road {
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub points: &'static [(f64, f64)],
    /// Typical speed of traffic on it, km/h.
    pub speed_kmh: f64,
}

pub const ROADS: &[Road] = &[
    Road {
        name_zh: "京津塘高速公路（武清段）",
        name_en: "Jingjintang Expressway (Wuqing section)",
        points: &[
            (39.5205, 116.9080),
            (39.4700, 116.9640),
            (39.4305, 117.0060),
            (39.3890, 117.0490),
            (39.3480, 117.0930),
            (39.3020, 117.1450),
        ],
        speed_kmh: 90.0,
    },
    Road {
        name_zh: "京沪高速公路（武清段）",
        name_en: "Beijing–Shanghai Expressway (Wuqing section)",
        points: &[
            (39.5400, 117.1650),
            (39.4800, 117.1520),
            (39.4100, 117.1380),
            (39.3450, 117.1270),
            (39.2900, 117.1180),
        ],
        speed_kmh: 90.0,
    },
    Road {
        name_zh: "103国道（京津公路）",
        name_en: "National Road 103 (Beijing–Tianjin Road)",
        points: &[
            (39.5100, 116.9400),
            (39.4600, 116.9950),
            (39.4110, 117.0300),
            (39.3800, 117.0470),
            (39.3350, 117.0850),
            (39.2950, 117.1200),
        ],
        speed_kmh: 60.0,
    },
    Road {
        name_zh: "泉州路",
        name_en: "Quanzhou Road (Yangcun)",
        points: &[(39.3985, 117.0120), (39.3930, 117.0280), (39.3880, 117.0450), (39.3830, 117.0610)],
        speed_kmh: 40.0,
    },
    Road {
        name_zh: "雍阳西道",
        name_en: "Yongyang West Road (Yangcun)",
        points: &[(39.3760, 117.0010), (39.3775, 117.0200), (39.3790, 117.0400), (39.3805, 117.0590)],
        speed_kmh: 40.0,
    },
    Road {
        name_zh: "京滨大道",
        name_en: "Jingbin Avenue",
        points: &[(39.4400, 117.0800), (39.4050, 117.0700), (39.3700, 117.0620), (39.3300, 117.0560)],
        speed_kmh: 60.0,
    },
    Road {
        name_zh: "武清开发区主干道",
        name_en: "Wuqing Development Area trunk road",
        points: &[(39.3560, 117.0480), (39.3600, 117.0700), (39.3640, 117.0920), (39.3690, 117.1130)],
        speed_kmh: 50.0,
    },
    Road {
        name_zh: "112国道",
        name_en: "National Road 112",
        points: &[(39.4550, 116.9000), (39.4480, 117.0000), (39.4420, 117.1000), (39.4360, 117.2000)],
        speed_kmh: 60.0,
    },
];

/// A rough outline of Wuqing District as (lat, lon), clockwise from the north, for the offline
/// base map: drawn inside the district's published extent (116°46′–117°19′ E, 39°07′–39°42′ N,
/// 武清区人民政府 区情概况) at a few kilometres' precision. Not a legal boundary.
pub const BOUNDARY: &[(f64, f64)] = &[
    (39.700, 116.970),
    (39.660, 117.080),
    (39.600, 117.200),
    (39.520, 117.310),
    (39.420, 117.300),
    (39.330, 117.250),
    (39.240, 117.180),
    (39.150, 117.100),
    (39.130, 117.000),
    (39.200, 116.930),
    (39.280, 116.850),
    (39.380, 116.780),
    (39.500, 116.770),
    (39.600, 116.840),
    (39.670, 116.900),
];

/// Seats of some of the district's towns and sub-districts (approximate): (Chinese name, English
/// name, (lat, lon)).
pub const TOWNS: &[(&str, &str, (f64, f64))] = &[
    ("杨村街道", "Yangcun", (39.384, 117.050)),
    ("河西务镇", "Hexiwu", (39.610, 116.980)),
    ("王庆坨镇", "Wangqingtuo", (39.250, 116.930)),
    ("崔黄口镇", "Cuihuangkou", (39.530, 117.220)),
    ("大黄堡镇", "Dahuangbao", (39.400, 117.240)),
    ("汊沽港镇", "Chagugang", (39.330, 116.930)),
    ("梅厂镇", "Meichang", (39.450, 117.150)),
];
