//! A synthetic district (合成人口): believable residents of Wuqing for the demo, the tests and the
//! linkage benchmark, never real people. Deterministic for a seed.
//!
//! Residents live in households (a couple, their children, sometimes a grandparent; twins now
//! and then) that share an address and a family name, so that the index meets the hard cases of
//! real data: relatives with one address, namesakes (张伟 is the commonest name in China), twins.
//! Citizen IDs are valid (GB 11643 check character, real dates); people born before 2000 carry
//! 武清县's code 120222, later ones 武清区's 120114, and one in ten was registered elsewhere in
//! Tianjin.
//!
//! [`duplicate`] writes the same person as another institution's registration desk would:
//! homophones of a given name (the commonest slip of a pinyin input method), traditional
//! characters, the name in pinyin, a missing or mistyped citizen ID, day and month swapped, a new
//! phone, an abbreviated or new address.

use crate::linkage::{Person, Sex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Family names with rough weights (per mille of the population; the commonest of northern China,
/// after the 2020 census's name report, rounded; the rest of the population spread over the
/// remainder of the list).
const FAMILY_NAMES: [(&str, u32); 40] = [
    ("王", 90),
    ("李", 85),
    ("张", 80),
    ("刘", 70),
    ("陈", 35),
    ("杨", 35),
    ("赵", 30),
    ("孙", 25),
    ("马", 22),
    ("周", 18),
    ("吴", 16),
    ("徐", 15),
    ("朱", 14),
    ("高", 14),
    ("郭", 14),
    ("何", 8),
    ("林", 8),
    ("胡", 10),
    ("郑", 10),
    ("韩", 12),
    ("冯", 9),
    ("于", 12),
    ("董", 10),
    ("曹", 9),
    ("田", 9),
    ("宋", 8),
    ("邓", 6),
    ("许", 7),
    ("魏", 7),
    ("吕", 6),
    ("苏", 6),
    ("贾", 7),
    ("丁", 6),
    ("崔", 7),
    ("姜", 6),
    ("范", 6),
    ("石", 7),
    ("单", 3),
    ("曾", 3),
    ("解", 2),
];

/// Characters of given names, by sex; a given name is one or two of them.
const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "斌",
    "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "建", "国", "志", "海", "东", "文", "亮", "峰",
    "博", "晨",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "燕", "玲", "桂", "丹", "萍", "红", "玉", "兰", "琳",
    "慧", "婷", "雪", "梅", "颖", "倩", "莉", "晶", "佳", "欣", "悦", "瑶", "怡", "璐", "琪", "薇", "洁", "媛", "楠",
    "阳", "晓",
];

/// Homophones (same toneless pinyin) a desk clerk's input method offers beside a given-name
/// character: the wrong one is picked now and then.
const HOMOPHONES: [(&str, &str); 24] = [
    ("伟", "玮"),
    ("伟", "炜"),
    ("磊", "垒"),
    ("军", "君"),
    ("勇", "永"),
    ("杰", "洁"),
    ("涛", "韬"),
    ("明", "铭"),
    ("华", "桦"),
    ("飞", "菲"),
    ("斌", "彬"),
    ("宇", "雨"),
    ("静", "婧"),
    ("丽", "莉"),
    ("娟", "鹃"),
    ("霞", "侠"),
    ("燕", "艳"),
    ("玲", "琳"),
    ("丹", "单"),
    ("红", "虹"),
    ("玉", "钰"),
    ("婷", "亭"),
    ("颖", "莹"),
    ("晶", "静"),
];

/// Simplified → traditional, for records typed from old or Hong Kong/Taiwan documents.
const TRADITIONAL: [(char, char); 20] = [
    ('张', '張'),
    ('刘', '劉'),
    ('陈', '陳'),
    ('杨', '楊'),
    ('赵', '趙'),
    ('孙', '孫'),
    ('马', '馬'),
    ('郑', '鄭'),
    ('吴', '吳'),
    ('许', '許'),
    ('伟', '偉'),
    ('丽', '麗'),
    ('红', '紅'),
    ('国', '國'),
    ('华', '華'),
    ('飞', '飛'),
    ('龙', '龍'),
    ('东', '東'),
    ('艳', '艷'),
    ('兰', '蘭'),
];

/// Wuqing's 6 sub-districts (街道) and 24 towns (镇).
pub const LOCALITIES: [&str; 30] = [
    "杨村街道",
    "下朱庄街道",
    "东蒲洼街道",
    "黄庄街道",
    "徐官屯街道",
    "运河西街道",
    "梅厂镇",
    "大碱厂镇",
    "崔黄口镇",
    "大良镇",
    "下伍旗镇",
    "南蔡村镇",
    "大孟庄镇",
    "泗村店镇",
    "河西务镇",
    "城关镇",
    "东马圈镇",
    "黄花店镇",
    "石各庄镇",
    "王庆坨镇",
    "汊沽港镇",
    "河北屯镇",
    "上马台镇",
    "大王古庄镇",
    "陈咀镇",
    "豆张庄镇",
    "曹子里镇",
    "大黄堡镇",
    "高村镇",
    "白古屯镇",
];

const ROADS: [&str; 12] = [
    "泉州路",
    "雍阳西道",
    "京津公路",
    "杨王公路",
    "东蒲洼路",
    "翠亨路",
    "振华路",
    "前进道",
    "光明道",
    "富民道",
    "和平里",
    "新华路",
];

/// Region codes of the place of registration: 武清县 before 2000, 武清区 since; other districts
/// of Tianjin (和平 120101, 河北 120105, 北辰 120113, 宝坻 120115) for those who moved in.
const WUQING_COUNTY: &str = "120222";
const WUQING_DISTRICT: &str = "120114";
const ELSEWHERE: [&str; 4] = ["120101", "120105", "120113", "120115"];

/// A synthetic resident.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub citizen_id: String,
    pub family_name: String,
    pub given_name: String,
    pub sex: Sex,
    pub birth_date: (i32, u32, u32),
    pub phone: String,
    /// Road and number, e.g. 泉州路12号.
    pub address: String,
    pub locality: String,
    /// Residents of one household share it.
    pub household: u32,
}

impl Resident {
    /// As the index's linkage sees a registration of this resident.
    pub fn person(&self) -> Person {
        Person {
            family_name: self.family_name.clone(),
            given_name: self.given_name.clone(),
            sex: Some(self.sex),
            birth_date: Some(self.birth_date),
            id_number: self.citizen_id.clone(),
            phone: self.phone.clone(),
            address: self.address.clone(),
            locality: self.locality.clone(),
            region: "天津市".into(),
            ..Person::default()
        }
    }
}

fn pick_family(rng: &mut StdRng) -> &'static str {
    FAMILY_NAMES.choose_weighted(rng, |(_, w)| *w).map(|(n, _)| *n).unwrap_or("王")
}

fn given_name(rng: &mut StdRng, sex: Sex) -> String {
    let pool = if sex == Sex::Male { GIVEN_MALE } else { GIVEN_FEMALE };
    let n = if rng.gen_bool(0.35) { 1 } else { 2 };
    (0..n).map(|_| *pool.choose(rng).unwrap_or(&"明")).collect()
}

fn birth(rng: &mut StdRng, from: i32, to: i32) -> (i32, u32, u32) {
    let y = rng.gen_range(from..=to.max(from));
    let m = rng.gen_range(1..=12);
    let d = rng.gen_range(1..=kernel::crypto::days_in_month(y, m));
    (y, m, d)
}

/// A valid citizen ID: region, birth date, a sequence number whose last digit is odd for men,
/// and the check character.
fn citizen_id(rng: &mut StdRng, (y, m, d): (i32, u32, u32), sex: Sex) -> String {
    let region = if rng.gen_bool(0.1) {
        ELSEWHERE.choose(rng).copied().unwrap_or(WUQING_DISTRICT)
    } else if y < 2000 {
        WUQING_COUNTY
    } else {
        WUQING_DISTRICT
    };
    let seq = rng.gen_range(0..500) * 2 + u32::from(sex == Sex::Male);
    let first = format!("{region}{y:04}{m:02}{d:02}{seq:03}");
    let check = kernel::crypto::CitizenId::check_character(&first).map_or('0', char::from);
    format!("{first}{check}")
}

fn phone(rng: &mut StdRng) -> String {
    let prefix = ["138", "139", "135", "136", "150", "151", "186", "187", "155", "133", "189", "177"];
    format!("{}{:08}", prefix.choose(rng).unwrap_or(&"138"), rng.gen_range(0..100_000_000u32))
}

/// `n` residents in households, deterministic for `seed`, born up to `year`.
pub fn residents(n: usize, seed: u64, year: i32) -> Vec<Resident> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Resident> = Vec::with_capacity(n);
    let mut household = 0u32;
    while out.len() < n {
        household += 1;
        let locality = LOCALITIES.choose(&mut rng).copied().unwrap_or(LOCALITIES[0]);
        let address = format!("{}{}号", ROADS.choose(&mut rng).copied().unwrap_or(ROADS[0]), rng.gen_range(1..300));
        let family = pick_family(&mut rng);
        let home_phone = phone(&mut rng);
        let parent_birth = birth(&mut rng, year - 85, year - 22);
        let add = |rng: &mut StdRng, out: &mut Vec<Resident>, family: &str, sex: Sex, b: (i32, u32, u32)| {
            if out.len() >= n {
                return;
            }
            let own_phone = if b.0 <= year - 16 && rng.gen_bool(0.8) { phone(rng) } else { home_phone.clone() };
            out.push(Resident {
                citizen_id: citizen_id(rng, b, sex),
                family_name: family.to_string(),
                given_name: given_name(rng, sex),
                sex,
                birth_date: b,
                phone: own_phone,
                address: address.clone(),
                locality: locality.to_string(),
                household,
            });
        };
        // Head of household; a spouse of another family (two years apart or so); children with
        // the father's family name; now and then twins or a grandparent.
        add(&mut rng, &mut out, family, Sex::Male, parent_birth);
        if rng.gen_bool(0.8) {
            let (y, ..) = parent_birth;
            let spouse = birth(&mut rng, y - 3, y + 3);
            let other = pick_family(&mut rng);
            add(&mut rng, &mut out, other, Sex::Female, spouse);
            if parent_birth.0 + 22 <= year {
                let children = rng.gen_range(0..=2);
                for _ in 0..children {
                    let b = birth(&mut rng, (parent_birth.0 + 22).min(year), (parent_birth.0 + 38).min(year));
                    let sex = if rng.gen_bool(0.51) { Sex::Male } else { Sex::Female };
                    add(&mut rng, &mut out, family, sex, b);
                    if rng.gen_bool(0.02) {
                        add(&mut rng, &mut out, family, sex, b); // a twin
                    }
                }
            }
        }
        if rng.gen_bool(0.15) {
            let b = birth(&mut rng, parent_birth.0 - 32, parent_birth.0 - 20);
            add(&mut rng, &mut out, family, Sex::Female, b);
        }
    }
    out
}

/// The pinyin of a Han name for a record typed from a passport or a foreign document.
fn romanised(name: &str, surname: bool) -> String {
    let py = crate::linkage::name_pinyin(name, surname);
    let mut c = py.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The same resident as another institution registered them, with the slips of real registration
/// desks. Deterministic for `seed`.
pub fn duplicate(r: &Resident, seed: u64) -> Person {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut p = r.person();
    p.region.clear();
    // Names: a homophone (15 %), traditional characters (3 %), pinyin (4 %).
    let roll = rng.gen_range(0..100);
    if roll < 15 {
        let options: Vec<&str> = HOMOPHONES.iter().filter(|(a, _)| p.given_name.contains(a)).map(|(_, b)| *b).collect();
        let from: Vec<&str> = HOMOPHONES.iter().filter(|(a, _)| p.given_name.contains(a)).map(|(a, _)| *a).collect();
        if let (Some(to), Some(from)) = (options.first(), from.first()) {
            p.given_name = p.given_name.replacen(from, to, 1);
        }
    } else if roll < 18 {
        let trad =
            |s: &str| s.chars().map(|c| TRADITIONAL.iter().find(|(a, _)| *a == c).map_or(c, |(_, t)| *t)).collect();
        p.family_name = trad(&p.family_name);
        p.given_name = trad(&p.given_name);
    } else if roll < 22 {
        p.family_name = romanised(&r.family_name, true);
        p.given_name = romanised(&r.given_name, false);
    }
    // Citizen ID: missing (35 %), a digit mistyped (4 %), two digits transposed (2 %).
    let roll = rng.gen_range(0..100);
    if roll < 35 {
        p.id_number.clear();
    } else if roll < 39 {
        let mut b = p.id_number.into_bytes();
        let i = rng.gen_range(0..17);
        b[i] = b'0' + (b[i] - b'0' + rng.gen_range(1..10)) % 10;
        p.id_number = String::from_utf8(b).unwrap_or_default();
    } else if roll < 41 {
        let mut b = p.id_number.into_bytes();
        let i = rng.gen_range(6..16);
        b.swap(i, i + 1);
        p.id_number = String::from_utf8(b).unwrap_or_default();
    }
    // Birth date: missing (3 %), day and month swapped where that is a date (3 %), a digit off (2 %).
    let roll = rng.gen_range(0..100);
    let (y, m, d) = r.birth_date;
    if roll < 3 {
        p.birth_date = None;
    } else if roll < 6 && d <= 12 {
        p.birth_date = Some((y, d, m));
    } else if roll < 8 {
        let day = if d < 28 { d + 1 } else { d - 1 };
        p.birth_date = Some((y, m, day));
    }
    // Phone: missing (25 %), another number (10 %), a digit mistyped (3 %).
    let roll = rng.gen_range(0..100);
    if roll < 25 {
        p.phone.clear();
    } else if roll < 35 {
        p.phone = phone(&mut rng);
    } else if roll < 38 {
        let mut b = p.phone.into_bytes();
        let i = rng.gen_range(3..11);
        b[i] = b'0' + (b[i] - b'0' + 1) % 10;
        p.phone = String::from_utf8(b).unwrap_or_default();
    }
    // Address: missing (20 %), without 号 (20 %), moved elsewhere (10 %).
    let roll = rng.gen_range(0..100);
    if roll < 20 {
        p.address.clear();
        p.locality.clear();
    } else if roll < 40 {
        p.address = p.address.trim_end_matches('号').to_string();
    } else if roll < 50 {
        p.address = format!("{}{}号", ROADS.choose(&mut rng).copied().unwrap_or(ROADS[0]), rng.gen_range(1..300));
        p.locality = LOCALITIES.choose(&mut rng).copied().unwrap_or(LOCALITIES[0]).to_string();
    }
    if rng.gen_bool(0.1) {
        p.sex = None;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::crypto::CitizenId;

    #[test]
    fn residents_have_valid_ids_matching_their_birth_and_sex_and_live_in_households() {
        let rs = residents(5_000, 7, 2026);
        assert_eq!(rs.len(), 5_000);
        for r in &rs {
            let id = CitizenId::parse(&r.citizen_id).unwrap_or_else(|e| panic!("{}: {e}", r.citizen_id));
            assert_eq!(id.birth_date(), r.birth_date);
            assert_eq!(id.is_male(), r.sex == Sex::Male);
            let region = id.region();
            if region.starts_with("1202") || region == "120114" {
                assert_eq!(region == WUQING_COUNTY, r.birth_date.0 < 2000, "{region} {:?}", r.birth_date);
            }
            assert!(r.birth_date.0 <= 2026 && r.birth_date.0 >= 1900);
            assert_eq!(r.phone.len(), 11);
        }
        let households = rs.iter().map(|r| r.household).max().unwrap_or(0) as usize;
        assert!(households < rs.len() / 2, "{households} households for {} residents", rs.len());
        let ids: std::collections::HashSet<&str> = rs.iter().map(|r| r.citizen_id.as_str()).collect();
        assert!(ids.len() > rs.len() * 99 / 100, "citizen IDs nearly all distinct");
        assert_eq!(residents(50, 7, 2026), residents(50, 7, 2026), "deterministic");
        // Namesakes exist, as they do in a real district.
        let mut names = std::collections::HashMap::<String, u32>::new();
        for r in &rs {
            *names.entry(format!("{}{}", r.family_name, r.given_name)).or_default() += 1;
        }
        assert!(names.values().any(|c| *c >= 3));
    }

    #[test]
    fn duplicates_differ_the_way_registration_desks_do() {
        let rs = residents(2_000, 11, 2026);
        let dups: Vec<Person> = rs.iter().enumerate().map(|(i, r)| duplicate(r, i as u64)).collect();
        let share = |f: &dyn Fn(&Resident, &Person) -> bool| {
            rs.iter().zip(&dups).filter(|(r, d)| f(r, d)).count() as f64 / rs.len() as f64
        };
        let no_id = share(&|_, d| d.id_number.is_empty());
        assert!((0.3..0.4).contains(&no_id), "{no_id}");
        let bad_id = share(&|r, d| !d.id_number.is_empty() && d.id_number != r.citizen_id);
        assert!((0.03..0.09).contains(&bad_id), "{bad_id}");
        let renamed = share(&|r, d| d.given_name != r.given_name);
        assert!((0.08..0.3).contains(&renamed), "{renamed}");
        assert!(dups.iter().any(|d| d.family_name.is_ascii()), "some names in pinyin");
    }
}
