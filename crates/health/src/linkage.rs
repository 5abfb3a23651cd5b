//! Record linkage for the master patient index (患者主索引): which records, arriving without a
//! reliable identifier, belong to the same person.
//!
//! Three steps, after Fellegi and Sunter (1969):
//! - **Blocking** ([`Index::candidates`]): only records sharing a key with the incoming one are
//!   compared (the identity number; the birth date; the phonetic codes of both names, in either
//!   order; the family name's code with the birth year; at a postcode, the given name's code,
//!   the family name's code or the house number).
//!   A key shared by too many records is skipped: it tells nothing.
//! - **Comparison** ([`compare`]): each field of a pair is scored as agreeing, partly agreeing
//!   (a typo, a close spelling, day and month swapped) or disagreeing, or missing on either side.
//! - **Scoring** ([`Model`]): each level of each field has a probability among true matches (m)
//!   and among non-matches (u); a pair's weight is the sum of log2(m/u) over its fields, and its
//!   match probability follows from the share of matches among candidates. The m and u are
//!   estimated from the candidate pairs themselves by EM, so no labelled data is needed; a
//!   missing field weighs nothing.
//!
//! [`Thresholds`] turn the probability into a [`Decision`]: a match is linked, a possible match
//! goes to the review queue, a non-match starts a new person. [`decide`] adds the one
//! deterministic rule: an equal, valid citizen ID links unless names, birth date or sex say it
//! was someone else's.
//!
//! Names written in Han characters are also compared by their toneless pinyin: a homophone
//! (张伟 and 张玮, the commonest slip of a pinyin input method), a traditional form (張) or the
//! name written in pinyin on another document (Zhang Wei) agrees partly; family names take their
//! surname reading (单 Shan, 曾 Zeng, 解 Xie). Han names are blocked by their pinyin, Latin ones
//! by Soundex.

use std::collections::{HashMap, HashSet};

/// Administrative sex as recorded (FHIR administrative-gender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

/// What linkage compares of a person. An empty string is a missing value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    /// Family name (姓).
    pub family_name: String,
    /// Given name (名).
    pub given_name: String,
    pub sex: Option<Sex>,
    /// Birth date as (year, month, day).
    pub birth_date: Option<(i32, u32, u32)>,
    /// An identity number: the citizen ID (居民身份证号码) here, a national identifier elsewhere.
    pub id_number: String,
    pub phone: String,
    pub street_number: String,
    /// The address line: road, estate, building.
    pub address: String,
    /// Sub-district or town (街道, 镇), or suburb.
    pub locality: String,
    pub postcode: String,
    /// Province or state.
    pub region: String,
}

/// The compared fields, in the order of a [`Levels`] vector.
pub const FIELDS: [&str; 11] = [
    "family_name",
    "given_name",
    "birth_date",
    "id_number",
    "phone",
    "street_number",
    "address",
    "locality",
    "postcode",
    "region",
    "sex",
];
const NFIELDS: usize = FIELDS.len();

/// How a field of a pair compares.
pub const DISAGREE: u8 = 0;
pub const PARTIAL: u8 = 1;
pub const AGREE: u8 = 2;
/// Missing on either side: weighs nothing.
pub const MISSING: u8 = 3;
const NLEVELS: usize = 3;

/// One level per field of [`FIELDS`].
pub type Levels = [u8; NFIELDS];

/// A person in the form comparison and blocking use: normalised once.
#[derive(Debug, Clone)]
pub struct Prepared {
    family: String,
    given: String,
    family_code: String,
    given_code: String,
    /// Toneless pinyin without spaces for Han names; the letters, lower case, for others.
    family_py: String,
    given_py: String,
    birth: Option<(i32, u32, u32)>,
    id: String,
    /// The identity number is a citizen ID whose check character and birth date are right.
    id_valid: bool,
    phone: String,
    street_number: String,
    address: String,
    locality: String,
    postcode: String,
    region: String,
    sex: Option<Sex>,
}

/// Lower case, outer spaces trimmed, inner runs of white space one space.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Only the digits (and a citizen ID's check character X), upper case.
fn digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit() || *c == 'x' || *c == 'X').map(|c| c.to_ascii_uppercase()).collect()
}

/// Surnames whose reading differs from the character's usual one (姓氏读音).
const SURNAME_READINGS: [(char, &str); 24] = [
    ('单', "shan"),
    ('曾', "zeng"),
    ('解', "xie"),
    ('仇', "qiu"),
    ('查', "zha"),
    ('区', "ou"),
    ('朴', "piao"),
    ('乐', "yue"),
    ('盖', "ge"),
    ('缪', "miao"),
    ('召', "shao"),
    ('翟', "zhai"),
    ('秘', "bi"),
    ('覃', "qin"),
    ('种', "chong"),
    ('员', "yun"),
    ('繁', "po"),
    ('柏', "bai"),
    ('宓', "fu"),
    ('牟', "mou"),
    ('能', "nai"),
    ('长', "zhang"),
    ('尉', "yu"),
    ('万', "wan"),
];

fn is_han(c: char) -> bool {
    pinyin::ToPinyin::to_pinyin(&c).is_some()
}

/// The toneless pinyin of a name, syllables run together (`张伟` → `zhangwei`); `surname` reads
/// its first character as a family name. A name without Han characters gives its letters in
/// lower case (`Zhang Wei` → `zhangwei`).
pub fn name_pinyin(name: &str, surname: bool) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if let Some(p) = pinyin::ToPinyin::to_pinyin(&c) {
            let reading =
                if surname && i == 0 { SURNAME_READINGS.iter().find(|(s, _)| *s == c).map(|(_, r)| *r) } else { None };
            out.push_str(reading.unwrap_or(p.plain()));
        } else if c.is_alphabetic() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// American Soundex of a name written in Latin letters; a name in other scripts is its own code.
/// Empty for an empty name.
pub fn soundex(name: &str) -> String {
    let letters: Vec<char> = name.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return String::new();
    }
    if !letters.iter().all(char::is_ascii_alphabetic) {
        return letters.into_iter().collect();
    }
    fn code(c: char) -> u8 {
        match c.to_ascii_lowercase() {
            'b' | 'f' | 'p' | 'v' => b'1',
            'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => b'2',
            'd' | 't' => b'3',
            'l' => b'4',
            'm' | 'n' => b'5',
            'r' => b'6',
            'h' | 'w' => 0, // transparent: letters on both sides with one code count once
            _ => b'0',      // vowels separate equal codes
        }
    }
    let mut out = vec![letters[0].to_ascii_uppercase() as u8];
    let mut last = code(letters[0]);
    for &c in &letters[1..] {
        let k = code(c);
        if k == 0 {
            continue;
        }
        if k != b'0' && k != last {
            out.push(k);
            if out.len() == 4 {
                break;
            }
        }
        last = k;
    }
    out.resize(4, b'0');
    String::from_utf8(out).unwrap_or_default()
}

impl Prepared {
    pub fn new(p: &Person) -> Self {
        let family = norm(&p.family_name);
        let given = norm(&p.given_name);
        let (family_py, given_py) = (name_pinyin(&family, true), name_pinyin(&given, false));
        // Han names block by their pinyin (Soundex would put zhang, zheng and zhong together).
        let code = |name: &str, py: &str| if name.chars().any(is_han) { py.to_string() } else { soundex(name) };
        Prepared {
            family_code: code(&family, &family_py),
            given_code: code(&given, &given_py),
            family_py,
            given_py,
            family,
            given,
            birth: p.birth_date,
            id: digits(&p.id_number),
            id_valid: kernel::crypto::CitizenId::parse(&p.id_number).is_ok(),
            phone: digits(&p.phone),
            street_number: norm(&p.street_number),
            address: norm(&p.address),
            locality: norm(&p.locality),
            postcode: digits(&p.postcode),
            region: norm(&p.region),
            sex: p.sex.filter(|s| *s != Sex::Unknown),
        }
    }

    /// The blocking keys of this record.
    fn keys(&self) -> Vec<String> {
        let mut k = vec![];
        if self.id.len() >= 5 {
            k.push(format!("i:{}", self.id));
        }
        if let Some((y, m, d)) = self.birth {
            k.push(format!("d:{y:04}{m:02}{d:02}"));
        }
        let (f, g) = (&self.family_code, &self.given_code);
        // Both names in either order (family and given names are sometimes swapped): by their
        // pinyin (a Han name and its pinyin spelling meet here), and by Soundex for Latin names.
        let pair = |a: &String, b: &String| if a <= b { format!("{a}:{b}") } else { format!("{b}:{a}") };
        if !self.family_py.is_empty() && !self.given_py.is_empty() {
            k.push(format!("q:{}", pair(&self.family_py, &self.given_py)));
        }
        if !f.is_empty() && !g.is_empty() && (*f != self.family_py || *g != self.given_py) {
            k.push(format!("n:{}", pair(f, g)));
        }
        if let (false, Some((y, ..))) = (f.is_empty(), self.birth) {
            k.push(format!("y:{f}:{y}"));
        }
        if !self.postcode.is_empty() {
            if !g.is_empty() {
                k.push(format!("p:{}:{g}", self.postcode));
            }
            // The household: a family name at a postcode, a house number at a postcode.
            if !f.is_empty() {
                k.push(format!("h:{}:{f}", self.postcode));
            }
            if !self.street_number.is_empty() {
                k.push(format!("s:{}:{}", self.postcode, self.street_number));
            }
        }
        k
    }
}

/// Jaro–Winkler at or above this is a partial agreement of names and address words.
const CLOSE: f64 = 0.88;

/// Names: equal, or the same pinyin (homophone, traditional form, pinyin spelling), or close in
/// Latin letters.
fn name_level(a: &str, b: &str, a_py: &str, b_py: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        MISSING
    } else if a == b {
        AGREE
    } else if !a_py.is_empty() && a_py == b_py {
        PARTIAL
    } else if a.chars().any(is_han) || b.chars().any(is_han) {
        // One character of a two-character name differs: another name.
        DISAGREE
    } else {
        text_level(a, b)
    }
}

fn text_level(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        MISSING
    } else if a == b {
        AGREE
    } else if strsim::jaro_winkler(a, b) >= CLOSE {
        PARTIAL
    } else {
        DISAGREE
    }
}

/// Exact, or within `typos` edits (a transposition is one), for numbers.
fn number_level(a: &str, b: &str, typos: usize) -> u8 {
    if a.is_empty() || b.is_empty() {
        MISSING
    } else if a == b {
        AGREE
    } else if strsim::damerau_levenshtein(a, b) <= typos {
        PARTIAL
    } else {
        DISAGREE
    }
}

fn exact_level<T: PartialEq>(a: Option<T>, b: Option<T>) -> u8 {
    match (a, b) {
        (Some(a), Some(b)) if a == b => AGREE,
        (Some(_), Some(_)) => DISAGREE,
        _ => MISSING,
    }
}

fn date_level(a: Option<(i32, u32, u32)>, b: Option<(i32, u32, u32)>) -> u8 {
    let (Some(x), Some(y)) = (a, b) else { return MISSING };
    if x == y {
        return AGREE;
    }
    let same = [x.0 == y.0, x.1 == y.1, x.2 == y.2].iter().filter(|s| **s).count();
    let swapped = x.0 == y.0 && x.1 == y.2 && x.2 == y.1;
    let (sx, sy) = (format!("{:04}{:02}{:02}", x.0, x.1, x.2), format!("{:04}{:02}{:02}", y.0, y.1, y.2));
    if swapped || same == 2 || strsim::damerau_levenshtein(&sx, &sy) <= 1 { PARTIAL } else { DISAGREE }
}

/// Compares two prepared records field by field.
pub fn compare(a: &Prepared, b: &Prepared) -> Levels {
    let mut l = [MISSING; NFIELDS];
    l[0] = name_level(&a.family, &b.family, &a.family_py, &b.family_py);
    l[1] = name_level(&a.given, &b.given, &a.given_py, &b.given_py);
    // Family and given names swapped: both count as partial agreements.
    let crossed = [
        name_level(&a.family, &b.given, &a.family_py, &b.given_py),
        name_level(&a.given, &b.family, &a.given_py, &b.family_py),
    ];
    if l[0] == DISAGREE && l[1] == DISAGREE && crossed.iter().all(|c| matches!(*c, PARTIAL | AGREE)) {
        l[0] = PARTIAL;
        l[1] = PARTIAL;
    }
    l[2] = date_level(a.birth, b.birth);
    l[3] = number_level(&a.id, &b.id, if a.id.len().min(b.id.len()) >= 7 { 2 } else { 1 });
    l[4] = number_level(&a.phone, &b.phone, 1);
    l[5] = number_level(&a.street_number, &b.street_number, 1);
    l[6] = text_level(&a.address, &b.address);
    l[7] = text_level(&a.locality, &b.locality);
    l[8] = number_level(&a.postcode, &b.postcode, 1);
    l[9] = text_level(&a.region, &b.region);
    if l[9] == PARTIAL {
        // Regions are codes or short names: close is not the same.
        l[9] = DISAGREE;
    }
    l[10] = exact_level(a.sex, b.sex);
    l
}

/// Blocks a key may hold before it is skipped (a common birth date in a large index).
const MAX_BLOCK: usize = 1000;

/// Occurrences of the values of one field.
#[derive(Debug, Default)]
struct Counts {
    by_value: HashMap<String, u64>,
    /// Σ count²: two records that agree on this field agree, on average, on a value held by
    /// Σ count² / Σ count records.
    sum_sq: u64,
    total: u64,
}

impl Counts {
    fn add(&mut self, v: &str) {
        if v.is_empty() {
            return;
        }
        let c = self.by_value.entry(v.to_string()).or_default();
        self.sum_sq += 2 * *c + 1;
        *c += 1;
        self.total += 1;
    }

    /// log2 of how much rarer `v` is than the value an agreeing pair typically shares: positive
    /// for a rare name, negative for 王伟; 0 for a value the index does not hold or an empty one.
    fn rarity(&self, v: &str) -> f64 {
        match self.by_value.get(v) {
            Some(&c) if c > 0 && self.total > 0 => {
                let typical = self.sum_sq as f64 / self.total as f64;
                (typical / c as f64).log2().clamp(-RARITY_BOUND, RARITY_BOUND)
            }
            _ => 0.0,
        }
    }
}

/// Value-specific adjustments stay within ± this many bits: a name held once in a small index
/// says less than its count suggests.
const RARITY_BOUND: f64 = 6.0;

/// Records indexed by their blocking keys.
#[derive(Debug, Default)]
pub struct Index {
    records: Vec<Prepared>,
    blocks: HashMap<String, Vec<u32>>,
    /// How many records carry each family name and each given name, for value-specific weights.
    family_counts: Counts,
    given_counts: Counts,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record; returns its position.
    pub fn insert(&mut self, p: &Person) -> usize {
        let prepared = Prepared::new(p);
        let i = self.records.len();
        for k in prepared.keys() {
            self.blocks.entry(k).or_default().push(i as u32);
        }
        self.family_counts.add(&prepared.family);
        self.given_counts.add(&prepared.given);
        self.records.push(prepared);
        i
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Prepared> {
        self.records.get(i)
    }

    /// The value-specific part of a pair's weight (after Winkler's frequency-based matching): where
    /// the names agree exactly, agreeing on a rare name counts more than agreeing on a common
    /// one, by how much rarer than the typical agreeing value the record's name is in this index.
    /// 0 where they do not agree.
    pub fn rarity(&self, p: &Prepared, levels: &Levels) -> f64 {
        let mut adj = 0.0;
        if levels[0] == AGREE {
            adj += self.family_counts.rarity(&p.family);
        }
        if levels[1] == AGREE {
            adj += self.given_counts.rarity(&p.given);
        }
        adj
    }

    /// The records that share a useful blocking key with `p`, each once, in index order.
    pub fn candidates(&self, p: &Prepared) -> Vec<usize> {
        let mut seen = HashSet::new();
        for k in p.keys() {
            if let Some(b) = self.blocks.get(&k).filter(|b| b.len() <= MAX_BLOCK) {
                seen.extend(b.iter().map(|i| *i as usize));
            }
        }
        let mut v: Vec<usize> = seen.into_iter().collect();
        v.sort_unstable();
        v
    }
}

/// Fellegi–Sunter parameters: per field and level the probability among matches (`m`) and
/// non-matches (`u`), and the share of matches among the pairs compared (`p`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub m: [[f64; NLEVELS]; NFIELDS],
    pub u: [[f64; NLEVELS]; NFIELDS],
    pub p: f64,
}

/// Keeps probabilities off 0 and 1, where a log weight would be infinite.
const FLOOR: f64 = 1e-6;

impl Default for Model {
    /// A starting point for EM: agreement likely among matches, disagreement among the rest.
    fn default() -> Self {
        Self { m: [[0.05, 0.15, 0.80]; NFIELDS], u: [[0.80, 0.15, 0.05]; NFIELDS], p: 0.1 }
    }
}

impl Model {
    /// Estimates the model from comparison patterns with their counts by expectation
    /// maximisation (conditional independence of the fields given the match status).
    pub fn estimate(patterns: &[(Levels, u64)], iterations: usize) -> Model {
        let mut model = Model::default();
        let total: f64 = patterns.iter().map(|(_, c)| *c as f64).sum();
        if total == 0.0 {
            return model;
        }
        for _ in 0..iterations {
            let mut m = [[0.0; NLEVELS]; NFIELDS];
            let mut u = [[0.0; NLEVELS]; NFIELDS];
            let mut matches = 0.0;
            for (levels, count) in patterns {
                let g = model.probability(levels) * *count as f64;
                let h = *count as f64 - g;
                matches += g;
                for (f, &l) in levels.iter().enumerate() {
                    if (l as usize) < NLEVELS {
                        m[f][l as usize] += g;
                        u[f][l as usize] += h;
                    }
                }
            }
            for f in 0..NFIELDS {
                let (sm, su): (f64, f64) = (m[f].iter().sum(), u[f].iter().sum());
                for l in 0..NLEVELS {
                    if sm > 0.0 {
                        model.m[f][l] = (m[f][l] / sm).clamp(FLOOR, 1.0 - FLOOR);
                    }
                    if su > 0.0 {
                        model.u[f][l] = (u[f][l] / su).clamp(FLOOR, 1.0 - FLOOR);
                    }
                }
            }
            model.p = (matches / total).clamp(FLOOR, 1.0 - FLOOR);
        }
        model
    }

    /// The pair's weight: the sum of log2(m/u) of its fields' levels (missing fields add 0).
    pub fn weight(&self, levels: &Levels) -> f64 {
        levels
            .iter()
            .enumerate()
            .filter(|(_, l)| (**l as usize) < NLEVELS)
            .map(|(f, l)| (self.m[f][*l as usize] / self.u[f][*l as usize]).log2())
            .sum()
    }

    /// The probability that the pair is a match, given its levels and the share of matches.
    pub fn probability(&self, levels: &Levels) -> f64 {
        self.probability_adjusted(levels, 0.0)
    }

    /// As [`Model::probability`] with `adjust` bits added to the weight (value-specific weights,
    /// [`Index::rarity`]).
    pub fn probability_adjusted(&self, levels: &Levels, adjust: f64) -> f64 {
        let odds = self.weight(levels) + adjust + (self.p / (1.0 - self.p)).log2();
        // 2^odds / (1 + 2^odds), computed without overflow.
        if odds >= 0.0 { 1.0 / (1.0 + (-odds).exp2()) } else { odds.exp2() / (1.0 + odds.exp2()) }
    }
}

/// What is done with a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Linked to the same person.
    Match,
    /// To the review queue: a person decides.
    Possible,
    NoMatch,
}

/// Match probabilities at which a pair is linked, or sent to review.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub link_at: f64,
    pub review_at: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { link_at: 0.9, review_at: 0.1 }
    }
}

impl Thresholds {
    pub fn decide(&self, probability: f64) -> Decision {
        if probability >= self.link_at {
            Decision::Match
        } else if probability >= self.review_at {
            Decision::Possible
        } else {
            Decision::NoMatch
        }
    }
}

/// The decision on a pair and its match probability. A valid citizen ID (check character and
/// birth date right) equal on both sides links the pair whatever the weights say, unless the
/// family name, the birth date or the sex disagree: then it is more likely someone else's ID
/// typed into the record (a newborn registered under the mother's, a relative's card) and the
/// weights decide.
/// `adjust` is added to the pair's weight ([`Index::rarity`], or 0).
pub fn decide(
    model: &Model,
    t: &Thresholds,
    a: &Prepared,
    b: &Prepared,
    levels: &Levels,
    adjust: f64,
) -> (Decision, f64) {
    let p = model.probability_adjusted(levels, adjust);
    let verified =
        a.id_valid && b.id_valid && a.id == b.id && [levels[0], levels[2], levels[10]].iter().all(|l| *l != DISAGREE);
    if verified { (Decision::Match, p.max(t.link_at)) } else { (t.decide(p), p) }
}

/// Counts of equal comparison patterns: what [`Model::estimate`] takes.
pub fn tally(levels: impl IntoIterator<Item = Levels>) -> Vec<(Levels, u64)> {
    let mut counts: HashMap<Levels, u64> = HashMap::new();
    for l in levels {
        *counts.entry(l).or_default() += 1;
    }
    let mut v: Vec<(Levels, u64)> = counts.into_iter().collect();
    v.sort_unstable();
    v
}

/// Links pairs one to one: the highest weights first, each record at most once on each side.
/// Takes (left, right, weight) and returns the pairs kept.
pub fn one_to_one(mut pairs: Vec<(usize, usize, f64)>) -> Vec<(usize, usize, f64)> {
    pairs.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let (mut left, mut right) = (HashSet::new(), HashSet::new());
    let mut kept = vec![];
    for (a, b, w) in pairs {
        if !left.contains(&a) && !right.contains(&b) {
            left.insert(a);
            right.insert(b);
            kept.push((a, b, w));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn person(family: &str, given: &str, birth: (i32, u32, u32), id: &str) -> Person {
        Person {
            family_name: family.into(),
            given_name: given.into(),
            birth_date: Some(birth),
            id_number: id.into(),
            ..Person::default()
        }
    }

    #[test]
    fn soundex_follows_the_american_rules() {
        // The classic examples (Knuth, The Art of Computer Programming vol. 3; US National
        // Archives' rules: H and W do not separate equal codes, vowels do).
        for (name, code) in [
            ("Robert", "R163"),
            ("Rupert", "R163"),
            ("Rubin", "R150"),
            ("Ashcraft", "A261"),
            ("Ashcroft", "A261"),
            ("Tymczak", "T522"),
            ("Pfister", "P236"),
            ("Honeyman", "H555"),
            ("Lee", "L000"),
        ] {
            assert_eq!(soundex(name), code, "{name}");
        }
        assert_eq!(soundex(""), "");
    }

    #[test]
    fn han_names_compare_by_pinyin_homophones_variants_and_spellings_agree_partly() {
        assert_eq!(name_pinyin("张伟", false), "zhangwei");
        assert_eq!(name_pinyin("单", true), "shan", "a surname's own reading");
        assert_eq!(name_pinyin("单", false), "dan");
        assert_eq!(name_pinyin("Zhang Wei", false), "zhangwei");
        let p = |f: &str, g: &str| {
            Prepared::new(&Person { family_name: f.into(), given_name: g.into(), ..Person::default() })
        };
        let a = p("张", "伟");
        assert_eq!(&compare(&a, &p("张", "伟"))[..2], &[AGREE, AGREE]);
        assert_eq!(&compare(&a, &p("张", "玮"))[..2], &[AGREE, PARTIAL], "a homophone");
        assert_eq!(&compare(&a, &p("張", "偉"))[..2], &[PARTIAL, PARTIAL], "traditional forms");
        assert_eq!(&compare(&a, &p("zhang", "wei"))[..2], &[PARTIAL, PARTIAL], "written in pinyin");
        assert_eq!(&compare(&a, &p("张", "强"))[..2], &[AGREE, DISAGREE]);
        assert_eq!(&compare(&a, &p("伟", "张"))[..2], &[PARTIAL, PARTIAL], "swapped");
        assert_eq!(&compare(&p("单", "丽"), &p("Shan", "Li"))[..2], &[PARTIAL, PARTIAL]);
        // Han names block by pinyin: the homophone, the traditional form and the pinyin
        // spelling share the name key.
        let mut idx = Index::new();
        let i = idx.insert(&Person { family_name: "张".into(), given_name: "伟".into(), ..Person::default() });
        idx.insert(&Person { family_name: "郑".into(), given_name: "伟".into(), ..Person::default() });
        for (f, g) in [("张", "玮"), ("張", "偉"), ("Zhang", "Wei"), ("wei", "zhang")] {
            assert_eq!(idx.candidates(&p(f, g)), vec![i], "{f} {g}");
        }
    }

    #[test]
    fn fields_compare_as_agree_partial_disagree_or_missing() {
        let a = Prepared::new(&person("Neumann", "Michaela", (1915, 11, 11), "5304218"));
        let same = compare(&a, &a);
        assert!(same[..4].iter().all(|l| *l == AGREE), "{same:?}");
        assert_eq!(same[4], MISSING, "no phone on either side");

        let b = Prepared::new(&person("neuman", "michela", (1915, 11, 11), "5304281"));
        let l = compare(&a, &b);
        assert_eq!(&l[..4], &[PARTIAL, PARTIAL, AGREE, PARTIAL], "typos and a transposed pair of digits");

        let swapped = Prepared::new(&person("Michaela", "Neumann", (1915, 11, 11), ""));
        let l = compare(&a, &swapped);
        assert_eq!(&l[..4], &[PARTIAL, PARTIAL, AGREE, MISSING], "names swapped");

        let other = Prepared::new(&person("Painter", "Courtney", (1916, 12, 14), "4066625"));
        assert_eq!(&compare(&a, &other)[..4], &[DISAGREE, DISAGREE, DISAGREE, DISAGREE]);
    }

    #[test]
    fn dates_with_a_typo_or_day_and_month_swapped_agree_partly() {
        let d = |x| date_level(Some((1980, 3, 7)), Some(x));
        assert_eq!(d((1980, 3, 7)), AGREE);
        assert_eq!(d((1980, 7, 3)), PARTIAL);
        assert_eq!(d((1980, 3, 8)), PARTIAL);
        assert_eq!(d((1981, 3, 7)), PARTIAL);
        assert_eq!(d((1979, 12, 7)), DISAGREE);
        assert_eq!(date_level(None, Some((1980, 3, 7))), MISSING);
    }

    #[test]
    fn blocking_finds_a_record_through_any_one_key() {
        let mut idx = Index::new();
        let target = idx.insert(&person("Neumann", "Michaela", (1915, 11, 11), "5304218"));
        for k in 0..50 {
            idx.insert(&person("Smith", &format!("Ann{k}"), (1970, 1, (k % 28) + 1), &format!("9{k:06}")));
        }
        // Only the identity number in common.
        let q = Prepared::new(&person("Nxyz", "Qrst", (2001, 2, 3), "5304218"));
        assert_eq!(idx.candidates(&q), vec![target]);
        // Only the birth date.
        let q = Prepared::new(&person("Nxyz", "Qrst", (1915, 11, 11), ""));
        assert_eq!(idx.candidates(&q), vec![target]);
        // Only the names, swapped and misspelt.
        let q = Prepared::new(&person("Mikaela", "Newman", (2001, 2, 3), ""));
        assert_eq!(idx.candidates(&q), vec![target]);
        // Nothing in common.
        let q = Prepared::new(&person("Zhang", "Wei", (2001, 2, 3), "1"));
        assert!(idx.candidates(&q).is_empty());
    }

    /// EM on synthetic pairs whose truth is known recovers which levels mean a match: agreeing
    /// fields weigh positive, disagreeing ones negative, and the match share comes out near the
    /// one generated.
    #[test]
    fn em_learns_weights_that_separate_matches_from_the_rest() {
        let mut rng = 12345u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 1000) as f64 / 1000.0
        };
        let mut pairs = vec![];
        for i in 0..20_000 {
            let is_match = i % 10 == 0;
            let mut l = [MISSING; NFIELDS];
            for level in l.iter_mut().take(4) {
                let r = next();
                *level = if is_match {
                    if r < 0.85 {
                        AGREE
                    } else if r < 0.95 {
                        PARTIAL
                    } else {
                        DISAGREE
                    }
                } else if r < 0.03 {
                    AGREE
                } else if r < 0.10 {
                    PARTIAL
                } else {
                    DISAGREE
                };
            }
            pairs.push((l, is_match));
        }
        let model = Model::estimate(&tally(pairs.iter().map(|(l, _)| *l)), 50);
        assert!((model.p - 0.1).abs() < 0.02, "{}", model.p);
        for f in 0..4 {
            assert!(model.m[f][AGREE as usize] / model.u[f][AGREE as usize] > 10.0, "{model:?}");
            assert!(model.m[f][DISAGREE as usize] < model.u[f][DISAGREE as usize], "{model:?}");
        }
        let t = Thresholds::default();
        let wrong = pairs.iter().filter(|(l, m)| (t.decide(model.probability(l)) == Decision::Match) != *m).count();
        assert!(wrong < pairs.len() / 50, "{wrong} misclassified");
    }

    #[test]
    fn an_equal_valid_citizen_id_links_unless_the_person_plainly_differs() {
        // 11010519491231002X: the example of GB 11643 itself (a woman born 1949-12-31).
        let base = Person {
            family_name: "王".into(),
            given_name: "芳".into(),
            sex: Some(Sex::Female),
            birth_date: Some((1949, 12, 31)),
            id_number: "11010519491231002X".into(),
            ..Person::default()
        };
        let moved = Person { given_name: "方".into(), address: "新华路1号".into(), ..base.clone() };
        let model = Model::default();
        let t = Thresholds { link_at: 0.999_999, review_at: 0.5 };
        let (a, b) = (Prepared::new(&base), Prepared::new(&moved));
        assert_eq!(decide(&model, &t, &a, &b, &compare(&a, &b), 0.0).0, Decision::Match);
        // The mother's ID on her newborn's record: another person.
        let newborn =
            Person {
                given_name: "小宝".into(), sex: Some(Sex::Male), birth_date: Some((2026, 1, 2)), ..base.clone()
            };
        let c = Prepared::new(&newborn);
        assert_ne!(decide(&model, &t, &a, &c, &compare(&a, &c), 0.0).0, Decision::Match);
        // An ID with a wrong check character proves nothing.
        let bad = Person { id_number: "110105194912310021".into(), ..base.clone() };
        let (x, y) = (Prepared::new(&bad), Prepared::new(&Person { given_name: "方".into(), ..bad.clone() }));
        let (d, p) = decide(&model, &t, &x, &y, &compare(&x, &y), 0.0);
        assert_eq!((d, p), (t.decide(model.probability(&compare(&x, &y))), model.probability(&compare(&x, &y))));
    }

    #[test]
    fn agreeing_on_a_rare_name_weighs_more_than_on_a_common_one() {
        let mut idx = Index::new();
        for k in 0..200 {
            idx.insert(&person("王", "伟", (1970, 1, (k % 28) + 1), ""));
        }
        idx.insert(&person("欧阳", "翠花", (1970, 1, 1), ""));
        for k in 0..50 {
            idx.insert(&person("李", &format!("名{k}"), (1970, 2, 1), ""));
        }
        let agree = [AGREE; NFIELDS];
        let common = idx.rarity(&Prepared::new(&person("王", "伟", (1970, 1, 1), "")), &agree);
        let rare = idx.rarity(&Prepared::new(&person("欧阳", "翠花", (1970, 1, 1), "")), &agree);
        assert!(common < 0.0 && rare > 0.0, "common {common}, rare {rare}");
        assert!(rare <= 2.0 * RARITY_BOUND);
        let mut disagree = agree;
        disagree[0] = DISAGREE;
        disagree[1] = PARTIAL;
        assert_eq!(idx.rarity(&Prepared::new(&person("欧阳", "翠花", (1970, 1, 1), "")), &disagree), 0.0);
        assert_eq!(idx.rarity(&Prepared::new(&person("", "", (1970, 1, 1), "")), &agree), 0.0, "unknown values");
    }

    #[test]
    fn one_to_one_keeps_the_best_pair_of_each_record() {
        let kept = one_to_one(vec![(0, 0, 5.0), (0, 1, 9.0), (1, 1, 7.0), (1, 0, 4.0), (2, 2, -1.0)]);
        assert_eq!(kept, vec![(0, 1, 9.0), (1, 0, 4.0), (2, 2, -1.0)]);
    }

    proptest! {
        #[test]
        fn comparison_is_symmetric_and_total(
            a in "[a-z ]{0,12}", b in "[a-z ]{0,12}", c in "[0-9]{0,9}", d in "[0-9]{0,9}",
            y in 1900i32..2030, m in 1u32..13, day in 1u32..29,
        ) {
            let p = Person { family_name: a.clone(), given_name: b.clone(), id_number: c.clone(),
                birth_date: Some((y, m, day)), postcode: d.clone(), ..Person::default() };
            let q = Person { family_name: b, given_name: a, id_number: d, postcode: c, ..Person::default() };
            let (pp, qq) = (Prepared::new(&p), Prepared::new(&q));
            prop_assert_eq!(compare(&pp, &qq), compare(&qq, &pp));
            let w = Model::default().probability(&compare(&pp, &qq));
            prop_assert!((0.0..=1.0).contains(&w));
        }
    }
}
