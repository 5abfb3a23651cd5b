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
