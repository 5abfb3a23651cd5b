//! Transport domain types, built by parsing: a value of these types is valid.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Vehicle class (车辆类型) as the supervision rules distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    /// 危险货物运输车辆
    DangerousGoods,
    /// 长途客运车辆 (班线客车)
    Coach,
    /// 旅游包车
    TouristCoach,
    /// 校车
    SchoolBus,
    /// 城市公交车
    CityBus,
    /// 出租汽车
    Taxi,
    /// 重型载货汽车、半挂牵引车
    HeavyGoods,
}

impl VehicleClass {
    pub const ALL: [VehicleClass; 7] = [
        Self::DangerousGoods,
        Self::Coach,
        Self::TouristCoach,
        Self::SchoolBus,
        Self::CityBus,
        Self::Taxi,
        Self::HeavyGoods,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DangerousGoods => "dangerous_goods",
            Self::Coach => "coach",
            Self::TouristCoach => "tourist_coach",
            Self::SchoolBus => "school_bus",
            Self::CityBus => "city_bus",
            Self::Taxi => "taxi",
            Self::HeavyGoods => "heavy_goods",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Chinese name first, English second.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Self::DangerousGoods => ("危险货物运输车", "Dangerous goods vehicle"),
            Self::Coach => ("班线客车", "Long-distance coach"),
            Self::TouristCoach => ("旅游包车", "Tourist coach"),
            Self::SchoolBus => ("校车", "School bus"),
            Self::CityBus => ("公交车", "City bus"),
            Self::Taxi => ("出租车", "Taxi"),
            Self::HeavyGoods => ("重型货车", "Heavy goods vehicle"),
        }
    }
}

/// Plate colour (车牌颜色), coded as JT/T 697.7-2014 and JT/T 808-2019 table 8 use it:
/// 1 blue, 2 yellow, 3 black, 4 white, 5 green, 9 other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlateColour {
    Blue,
    Yellow,
    Black,
    White,
    Green,
    Other,
}

impl PlateColour {
    pub const ALL: [PlateColour; 6] = [Self::Blue, Self::Yellow, Self::Black, Self::White, Self::Green, Self::Other];
    /// The JT/T 697.7 code carried in JT/T 808 registration.
    pub fn code(self) -> u8 {
        match self {
            Self::Blue => 1,
            Self::Yellow => 2,
            Self::Black => 3,
            Self::White => 4,
            Self::Green => 5,
            Self::Other => 9,
        }
    }
    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == c)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blue => "blue",
            Self::Yellow => "yellow",
            Self::Black => "black",
            Self::White => "white",
            Self::Green => "green",
            Self::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The provincial abbreviations that open a mainland plate (GA 36-2018).
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// A mainland vehicle plate number (号牌号码), e.g. 津A12345 or the new-energy 津AD12345.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Plate(String);

impl Plate {
    /// Province, issuing-authority letter, then 5 (ordinary) or 6 (new-energy) letters or digits
    /// (GA 36 leaves out I and O), optionally ending in 挂 (trailer) or 学 (learner).
    pub fn parse(s: &str) -> Result<Plate, &'static str> {
        let s = s.trim().to_uppercase();
        let chars: Vec<char> = s.chars().collect();
        let body_end = match chars.last() {
            Some('挂' | '学') => chars.len() - 1,
            _ => chars.len(),
        };
        if chars.is_empty() || !PROVINCES.contains(chars[0]) {
            return Err("a plate starts with a province abbreviation such as 津");
        }
        if chars.len() < 2 || !chars[1].is_ascii_uppercase() {
            return Err("the second character of a plate is the authority letter (A-Z)");
        }
        let rest = &chars[2..body_end];
        if !(rest.len() == 5 || rest.len() == 6) {
            return Err("a plate has 5 (or 6 for new-energy vehicles) characters after the letter");
        }
        if !rest.iter().all(|c| (c.is_ascii_uppercase() && *c != 'I' && *c != 'O') || c.is_ascii_digit()) {
            return Err("plate characters are digits and letters other than I and O");
        }
        Ok(Plate(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The terminal's phone number (终端手机号), its identity in every JT/T 808 header: up to 12
/// digits in 2011/2013 headers (BCD[6]), up to 20 in 2019 headers (BCD[10]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TerminalPhone(String);

impl TerminalPhone {
    pub fn parse(s: &str) -> Result<TerminalPhone, &'static str> {
        let s = s.trim();
        if (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            // Headers carry the number left-padded with zeros; store it without them.
            let t = s.trim_start_matches('0');
            Ok(TerminalPhone(if t.is_empty() { "0".into() } else { t.into() }))
        } else {
            Err("a terminal phone number has 1 to 20 digits")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plates() {
        assert_eq!(Plate::parse("津a12345").unwrap().as_str(), "津A12345");
        assert!(Plate::parse("津AD12345").is_ok(), "new-energy");
        assert!(Plate::parse("津A1234挂").is_err());
        assert!(Plate::parse("津A12345挂").is_ok());
        assert!(Plate::parse("津AI2345").is_err(), "no letter I");
        assert!(Plate::parse("XA12345").is_err());
        assert!(Plate::parse("津").is_err());
        assert!(Plate::parse("").is_err());
    }

    #[test]
    fn phones_drop_header_padding() {
        assert_eq!(TerminalPhone::parse("013900000001").unwrap().as_str(), "13900000001");
        assert_eq!(TerminalPhone::parse("00000000013900000001").unwrap().as_str(), "13900000001");
        assert!(TerminalPhone::parse("1390000000a").is_err());
        assert!(TerminalPhone::parse("123456789012345678901").is_err());
    }

    #[test]
    fn colour_codes_round_trip() {
        for c in PlateColour::ALL {
            assert_eq!(PlateColour::from_code(c.code()), Some(c));
        }
        assert_eq!(PlateColour::from_code(0), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,24}") {
            let _ = Plate::parse(&s);
            let _ = TerminalPhone::parse(&s);
        }
    }
}
