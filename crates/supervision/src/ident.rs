//! The unified social credit code (统一社会信用代码, GB 32100-2015) that identifies every
//! enterprise: 18 characters — registration authority (1), organisation category (1), the
//! registering authority's administrative division (6), the organisation code of GB 11714-1997
//! (9, with its own check character) and a check character over the first 17 (ISO 7064 style,
//! modulus 31). The alphabet is the digits and the capitals other than I, O, S, V and Z.

/// GB 32100-2015 table 3: the code's 31 characters, in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100-2015 5.3: the weights of positions 1 to 17 (3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// GB 11714-1997: the weights of the organisation code's first eight characters.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// The check character of the first 17 characters (all in the alphabet).
pub fn uscc_check(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (b, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*b)? * w;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// The organisation code's check character (GB 11714-1997): 0–9 or X.
fn org_code_check(first8: &[u8]) -> Option<u8> {
    let mut sum = 0;
    for (b, w) in first8.iter().zip(ORG_WEIGHTS) {
        // Digits are their value, capitals A–Z are 10–35.
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        c => b'0' + c as u8,
    })
}

/// Why a string is not a unified social credit code, in the words shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsccError {
    Length,
    Character,
    OrgCode,
    Check,
}

impl std::fmt::Display for UsccError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UsccError::Length => "a unified social credit code has 18 characters (统一社会信用代码为18位)",
            UsccError::Character => {
                "digits and capital letters other than I, O, S, V, Z only (仅含数字和除I、O、S、V、Z外的大写字母)"
            }
            UsccError::OrgCode => {
                "the organisation code in positions 9–17 does not check (第9至17位组织机构代码校验不符)"
            }
            UsccError::Check => "the check character does not match: a character was mistyped (校验码不符，请核对)",
        })
    }
}

/// Parses a unified social credit code: trimmed, upper-cased, checked.
pub fn parse_uscc(s: &str) -> Result<String, UsccError> {
    let s = s.trim().to_uppercase();
    let b = s.as_bytes();
    if s.chars().count() != 18 || b.len() != 18 {
        return Err(UsccError::Length);
    }
    if b.iter().any(|c| value(*c).is_none()) {
        return Err(UsccError::Character);
    }
    if org_code_check(&b[8..16]) != Some(b[16]) {
        return Err(UsccError::OrgCode);
    }
    if uscc_check(&b[..17]) != Some(b[17]) {
        return Err(UsccError::Check);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Codes published in the national enterprise credit information system (国家企业信用信息
    /// 公示系统) for well-known companies, and GB 32100-2015's own example.
    const REAL: &[&str] =
        &["91350100M000100Y43", "914403001922038216", "9144030071526726XG", "91330100716105852F", "91110000802100433B"];

    #[test]
    fn published_codes_check() {
        for c in REAL {
            assert_eq!(parse_uscc(c).as_deref(), Ok(*c));
            assert_eq!(parse_uscc(&format!(" {} ", c.to_lowercase())).as_deref(), Ok(*c), "trimmed and upper-cased");
        }
    }

    #[test]
    fn each_kind_of_mistake_is_named() {
        assert_eq!(parse_uscc("91350100M000100Y4"), Err(UsccError::Length));
        assert_eq!(parse_uscc("91350100M000100YI3"), Err(UsccError::Character));
        assert_eq!(parse_uscc("91350100M000100Y42"), Err(UsccError::Check));
        // Positions 9–17 changed together so that only the organisation code fails.
        assert_eq!(parse_uscc("91350100M000100Y53").unwrap_err(), UsccError::OrgCode);
        assert_eq!(parse_uscc("９１３５０１００Ｍ０００１００Ｙ４３"), Err(UsccError::Length));
    }

    fn org_code() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(b"0123456789ABCDEFGHJKLMNPQRTUWXY".to_vec()), 8).prop_map(|mut v| {
            let c = org_code_check(&v).unwrap();
            v.push(c);
            v
        })
    }

    proptest! {
        /// Any code built by the rules checks, and any single changed character is caught.
        #[test]
        fn built_codes_check_and_one_typo_fails(
            head in prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), 8),
            org in org_code(),
            pos in 0usize..18,
            with in prop::sample::select(ALPHABET.to_vec()),
        ) {
            let mut b = head;
            b.extend(org);
            let check = uscc_check(&b).unwrap();
            b.push(check);
            let code = String::from_utf8(b.clone()).unwrap();
            prop_assert_eq!(parse_uscc(&code), Ok(code.clone()));
            prop_assume!(b[pos] != with);
            b[pos] = with;
            prop_assert!(parse_uscc(&String::from_utf8(b).unwrap()).is_err());
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_uscc(&s);
        }
    }
}
