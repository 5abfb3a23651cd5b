//! Values of FHIR R4 search parameters (R4 search §3.1.1) and how they match: comma-separated
//! alternatives with `\` escapes, date prefixes over periods, tokens as `system|code`, `_count`.

use super::datetime::{self, DateError, Kind, Period};
use time::UtcOffset;

/// A search value that cannot be understood; the server answers 400 with an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Date(#[from] DateError),
    #[error("unknown prefix {0:?}")]
    Prefix(String),
    #[error("empty value")]
    Empty,
    #[error("_count is a whole number")]
    Count,
}

/// Splits a parameter's value at commas not escaped (`a,b\,c` → `a`, `b,c`): the alternatives,
/// any of which may match. `\\`, `\|` and `\$` keep their backslash for the next step
/// ([`Token::parse`]); an escaped comma loses it.
pub fn alternatives(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(',') => out.last_mut().map_or((), |s| s.push(',')),
                Some(n) => {
                    if let Some(s) = out.last_mut() {
                        s.push('\\');
                        s.push(n);
                    }
                }
                None => out.last_mut().map_or((), |s| s.push('\\')),
            },
            ',' => out.push(String::new()),
            c => out.last_mut().map_or((), |s| s.push(c)),
        }
    }
    out
}

/// Removes the escapes of `\|`, `\$`, `\,` and `\\`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                if !matches!(n, '|' | '$' | ',' | '\\') {
                    out.push('\\');
                }
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The comparators of number, date and quantity searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// Starts after.
    Sa,
    /// Ends before.
    Eb,
    /// Approximately (within 10 % of the distance from now).
    Ap,
}

impl Prefix {
    /// The prefix of a value and the rest: two letters before a digit, or `eq` when there are none.
    pub fn split(v: &str) -> Result<(Prefix, &str), SearchError> {
        let b = v.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1].is_ascii_alphabetic() {
            let p = match &v[..2] {
                "eq" => Prefix::Eq,
                "ne" => Prefix::Ne,
                "gt" => Prefix::Gt,
                "lt" => Prefix::Lt,
                "ge" => Prefix::Ge,
                "le" => Prefix::Le,
                "sa" => Prefix::Sa,
                "eb" => Prefix::Eb,
                "ap" => Prefix::Ap,
                other => return Err(SearchError::Prefix(other.to_string())),
            };
            return Ok((p, &v[2..]));
        }
        Ok((Prefix::Eq, v))
    }
}

/// A date search value: its prefix and the period the value denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSearch {
    pub prefix: Prefix,
    pub period: Period,
}

impl DateSearch {
    /// Reads one alternative (`ge2013-01`, `2013-01-14T10:00`), a zone-less value in `zone`.
    pub fn parse(v: &str, zone: UtcOffset) -> Result<Self, SearchError> {
        let (prefix, rest) = Prefix::split(v)?;
        if rest.is_empty() {
            return Err(SearchError::Empty);
        }
        let (period, _) = datetime::parse(rest, Kind::Search, zone)?;
        Ok(Self { prefix, period })
    }

    /// Whether a resource's value, the period `target`, matches (R4 search §3.1.1.4.6: the
    /// parameter and the target are both ranges). `now_ms` serves `ap` only.
    pub fn matches(&self, target: &Period, now_ms: i64) -> bool {
        let p = &self.period;
        let within = p.contains(target);
        match self.prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            // The range above (below) the value overlaps the target.
            Prefix::Gt => target.end_ms > p.end_ms,
            Prefix::Lt => target.start_ms < p.start_ms,
            Prefix::Ge => target.end_ms > p.end_ms || within,
            Prefix::Le => target.start_ms < p.start_ms || within,
            Prefix::Sa => target.start_ms >= p.end_ms,
            Prefix::Eb => target.end_ms <= p.start_ms,
            Prefix::Ap => {
                // Widened by a tenth of its distance from now on each side.
                let gap = (now_ms - p.start_ms).abs().max((now_ms - p.end_ms).abs()) / 10;
                Period { start_ms: p.start_ms - gap, end_ms: p.end_ms + gap }.overlaps(target)
            }
        }
    }
}

/// Which code systems a token accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum System {
    /// `code`: any system.
    Any,
    /// `|code`: codes without a system.
    None,
    /// `system|code` or `system|`.
    Is(String),
}

/// A token search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub system: System,
    /// `None` for `system|`: any code of the system.
    pub code: Option<String>,
}

impl Token {
    /// Reads one alternative: `code`, `system|code`, `|code` or `system|`; `\|` is a bar
    /// inside the code or system.
    pub fn parse(v: &str) -> Result<Self, SearchError> {
        if v.is_empty() {
            return Err(SearchError::Empty);
        }
        let mut bar = None;
        let mut escaped = false;
        for (i, c) in v.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '|' => {
                    bar = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(i) = bar else { return Ok(Token { system: System::Any, code: Some(unescape(v)) }) };
        let (system, code) = (&v[..i], &v[i + 1..]);
        let system = if system.is_empty() { System::None } else { System::Is(unescape(system)) };
        let code = (!code.is_empty()).then(|| unescape(code));
        if system == System::None && code.is_none() {
            return Err(SearchError::Empty);
        }
        Ok(Token { system, code })
    }

    /// Whether a coding (its system, if any, and code) matches.
    pub fn matches(&self, system: Option<&str>, code: &str) -> bool {
        let system_ok = match &self.system {
            System::Any => true,
            System::None => system.is_none(),
            System::Is(s) => system == Some(s.as_str()),
        };
        system_ok && self.code.as_deref().is_none_or(|c| c == code)
    }
}

/// `_count`: the page size asked for, at most `max`; `default` when absent.
pub fn count(v: Option<&str>, default: usize, max: usize) -> Result<usize, SearchError> {
    match v {
        None => Ok(default.min(max)),
        Some(v) => v.trim().parse::<usize>().map(|n| n.min(max)).map_err(|_| SearchError::Count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::datetime::BEIJING;
    use proptest::prelude::*;

    fn period(s: &str) -> Period {
        datetime::parse(s, Kind::DateTime, BEIJING).unwrap().0
    }

    fn date(v: &str) -> DateSearch {
        DateSearch::parse(v, BEIJING).unwrap()
    }

    #[test]
    fn alternatives_split_at_unescaped_commas() {
        assert_eq!(alternatives("a,b\\,c,"), vec!["a", "b,c", ""]);
        assert_eq!(alternatives("http://loinc.org|8480-6"), vec!["http://loinc.org|8480-6"]);
        assert_eq!(alternatives("a\\|b,c\\\\"), vec!["a\\|b", "c\\\\"]);
    }

    #[test]
    fn prefixes_are_two_letters_before_the_value() {
        assert_eq!(Prefix::split("ge2013").unwrap(), (Prefix::Ge, "2013"));
        assert_eq!(Prefix::split("2013").unwrap(), (Prefix::Eq, "2013"));
        assert!(matches!(Prefix::split("xx2013"), Err(SearchError::Prefix(_))));
    }

    /// The examples of R4 search §3.1.1.4.6 and the prefix table of §3.1.1.4.
    #[test]
    fn date_prefixes_compare_periods_as_the_specification_says() {
        let now = period("2026-12-02T12:00:00+08:00").start_ms;
        let day = period("2013-01-14");
        let morning = period("2013-01-14T10:00:00+08:00");
        let next_day = period("2013-01-15");
        let year = period("2013");
        // eq: the target lies within the value's period.
        assert!(date("2013-01-14").matches(&morning, now));
        assert!(date("2013-01-14").matches(&day, now));
        assert!(!date("2013-01-14").matches(&next_day, now));
        assert!(!date("2013-01-14").matches(&year, now), "a year is not within a day");
        assert!(date("2013").matches(&day, now));
        assert!(date("ne2013-01-14").matches(&next_day, now));
        // gt, ge: the target reaches past the value's end (ge: or lies within).
        assert!(date("gt2013-01-14").matches(&next_day, now));
        assert!(!date("gt2013-01-14").matches(&morning, now));
        assert!(date("gt2013-01-14").matches(&year, now), "the year overlaps what follows the day");
        assert!(date("ge2013-01-14").matches(&morning, now));
        assert!(!date("ge2013-01-15").matches(&morning, now));
        // lt, le.
        assert!(date("lt2013-01-15").matches(&morning, now));
        assert!(!date("lt2013-01-14").matches(&morning, now));
        assert!(date("le2013-01-14").matches(&morning, now));
        // sa, eb: wholly after, wholly before.
        assert!(date("sa2013-01-14").matches(&next_day, now));
        assert!(!date("sa2013-01-14").matches(&year, now));
        assert!(date("eb2013-01-15").matches(&morning, now));
        assert!(!date("eb2013-01-14").matches(&morning, now));
        // ap: 2013 is 13.9 years before now, so ±1.4 years around it.
        assert!(date("ap2013-01-14").matches(&period("2014-03-01"), now));
        assert!(!date("ap2013-01-14").matches(&period("2016-01-01"), now));
        assert!(DateSearch::parse("ge", BEIJING).is_err());
        assert!(DateSearch::parse("ge2013-02-30", BEIJING).is_err());
    }

    #[test]
    fn tokens_take_system_and_code_in_each_form() {
        let loinc = Some("http://loinc.org");
        let t = Token::parse("http://loinc.org|8480-6").unwrap();
        assert!(t.matches(loinc, "8480-6") && !t.matches(None, "8480-6") && !t.matches(loinc, "8462-4"));
        let any = Token::parse("8480-6").unwrap();
        assert!(any.matches(loinc, "8480-6") && any.matches(None, "8480-6"));
        let none = Token::parse("|8480-6").unwrap();
        assert!(none.matches(None, "8480-6") && !none.matches(loinc, "8480-6"));
        let all = Token::parse("http://loinc.org|").unwrap();
        assert!(all.matches(loinc, "anything") && !all.matches(None, "x"));
        assert_eq!(
            Token::parse("a\\|b|c").unwrap(),
            Token { system: System::Is("a|b".into()), code: Some("c".into()) }
        );
        assert!(Token::parse("").is_err() && Token::parse("|").is_err());
    }

    #[test]
    fn count_is_bounded() {
        assert_eq!(count(None, 50, 1000), Ok(50));
        assert_eq!(count(Some("20"), 50, 1000), Ok(20));
        assert_eq!(count(Some("99999"), 50, 1000), Ok(1000));
        assert_eq!(count(Some("-1"), 50, 1000), Err(SearchError::Count));
    }

    proptest! {
        #[test]
        fn parsing_any_value_never_panics(v in "\\PC{0,40}") {
            for a in alternatives(&v) {
                let _ = Token::parse(&a);
                let _ = DateSearch::parse(&a, BEIJING);
            }
            let _ = count(Some(&v), 50, 1000);
        }

        #[test]
        fn ge_and_lt_split_every_target(y in 1990i32..2030, m in 1u32..13, ty in 1990i32..2030, tm in 1u32..13) {
            // A target within one month is either at or after the value's month start, or before it.
            let now = 0;
            let value = format!("{y:04}-{m:02}");
            let target = period(&format!("{ty:04}-{tm:02}-01T00:00:00+08:00"));
            let ge = date(&format!("ge{value}")).matches(&target, now);
            let lt = date(&format!("lt{value}")).matches(&target, now);
            prop_assert!(ge != lt);
        }
    }
}
