//! Commercial cryptography (商用密码) for the kernel: SM3 hashes, SM4-GCM field encryption, blind
//! indexes for looking encrypted identifiers up, and the masking of identifiers in views.
//!
//! The field key lives in a key file (or the config), never in the database: a stolen database
//! file holds only ciphertext.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sm3::{Digest, Sm3};
use std::path::Path;
use zeroize::Zeroizing;

/// SM4 in GCM mode, 96-bit nonces (GM/T 0002 block cipher, NIST SP 800-38D mode).
type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, U12>;

const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("ciphertext is malformed or was tampered with")]
    Tampered,
}

/// SM3 digest as lowercase hex.
pub fn sm3_hex(data: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sm3::digest(data))
}

/// Encrypts and decrypts personal identifiers at rest.
#[derive(Clone)]
pub struct FieldCipher {
    cipher: Sm4Gcm,
    index_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(SM4-GCM, key hidden)")
    }
}

impl FieldCipher {
    pub fn from_key(key: &[u8; 16]) -> Self {
        let cipher = Sm4Gcm::new(GenericArray::from_slice(key));
        // A separate key for blind indexes, derived so that index values reveal nothing about
        // the encryption key.
        let mut h = Sm3::new();
        h.update(b"wuqing blind index v1");
        h.update(key);
        Self { cipher, index_key: Zeroizing::new(h.finalize().to_vec()) }
    }

    /// Reads the key from `hex` if given, else from `path`, creating that file (mode 0600) with
    /// a fresh random key when it does not exist.
    pub fn load_or_create(hex: Option<&str>, path: &Path) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        let text = match hex {
            Some(h) => Zeroizing::new(h.to_string()),
            None => {
                if !path.exists() {
                    let mut key = Zeroizing::new([0u8; 16]);
                    rand::rngs::OsRng.fill_bytes(key.as_mut());
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                    }
                    write_private(path, data_encoding::HEXLOWER.encode(key.as_ref()).as_bytes())
                        .map_err(|e| err(e.to_string()))?;
                    tracing::info!(path = %path.display(), "created a new field-encryption key; back it up with the database");
                }
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?)
            }
        };
        let bytes =
            data_encoding::HEXLOWER_PERMISSIVE.decode(text.trim().as_bytes()).map_err(|_| err("not hex".into()))?;
        let key: [u8; 16] =
            bytes.as_slice().try_into().map_err(|_| err("must hold 16 bytes (32 hex digits)".into()))?;
        Ok(Self::from_key(&key))
    }

    /// `version || nonce || ciphertext+tag`.
    pub fn encrypt(&self, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self.cipher.encrypt(GenericArray::from_slice(&nonce), plaintext.as_bytes()).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn decrypt(&self, blob: &[u8]) -> Result<String, CryptoError> {
        if blob.len() < 1 + 12 + 16 || blob[0] != FORMAT_V1 {
            return Err(CryptoError::Tampered);
        }
        let pt = self
            .cipher
            .decrypt(GenericArray::from_slice(&blob[1..13]), &blob[13..])
            .map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Tampered)
    }

    /// A keyed hash (HMAC-SM3) of a normalised identifier, for equality look-ups.
    pub fn blind_index(&self, value: &str) -> String {
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sm3> as Mac>::new_from_slice(&self.index_key).expect("hmac takes any key length");
        mac.update(value.trim().to_uppercase().as_bytes());
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    }
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// A citizen identity number (居民身份证号码), GB 11643-1999: 17 digits and a check character.
#[derive(Clone, PartialEq, Eq)]
pub struct CitizenId(String);

impl std::fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CitizenId({})", mask_citizen_id(&self.0))
    }
}

impl CitizenId {
    /// Parses and checks the GB 11643-1999 check character (ISO 7064 MOD 11-2) and the birth
    /// date (a real calendar date from 1800 on). The region code (the first six digits) is not
    /// checked: codes change (武清县 120222 became 武清区 120114 in 2000) and old ones stay on
    /// cards; [`CitizenId::region`] gives it to whoever wants to check it softly.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim().to_uppercase();
        let b = s.as_bytes();
        if b.len() != 18 {
            return Err("a citizen ID has 18 characters");
        }
        if !b[..17].iter().all(u8::is_ascii_digit) {
            return Err("the first 17 characters of a citizen ID are digits");
        }
        if Some(b[17]) != Self::check_character(&s[..17]) {
            return Err("the check character of the citizen ID is wrong");
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
        let (year, month, day) = (num(6..10), num(10..12), num(12..14));
        if year < 1800 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year as i32, month) {
            return Err("the birth date in the citizen ID is impossible");
        }
        Ok(Self(s))
    }

    /// The check character (ISO 7064 MOD 11-2) of the first 17 digits; `None` unless `first17`
    /// is 17 ASCII digits.
    pub fn check_character(first17: &str) -> Option<u8> {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let b = first17.as_bytes();
        if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sum: u32 = b.iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
        Some(b"10X98765432"[(sum % 11) as usize])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The administrative region code of the place of registration (e.g. 120114 武清区).
    pub fn region(&self) -> &str {
        &self.0[..6]
    }

    /// The birth date as (year, month, day).
    pub fn birth_date(&self) -> (i32, u32, u32) {
        let num = |r: std::ops::Range<usize>| self.0[r].parse::<u32>().unwrap_or(0);
        (num(6..10) as i32, num(10..12), num(12..14))
    }

    /// Male when the sequence number (the 17th digit) is odd.
    pub fn is_male(&self) -> bool {
        self.0.as_bytes()[16] % 2 == 1
    }
}

/// Days in a month of the Gregorian calendar (0 for a month outside 1..=12).
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

/// `120114199001011234` → `120114********1234`.
pub fn mask_citizen_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// `13912345678` → `139****5678`.
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// A mainland mobile number: 11 digits starting with 1.
pub fn parse_phone(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err("a mobile number has 11 digits and starts with 1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sm3_standard_vector() {
        // GM/T 0004-2012 appendix A.1: SM3("abc").
        assert_eq!(sm3_hex(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    }

    #[test]
    fn sm4_block_standard_vector() {
        // GM/T 0002-2012 appendix A.1: one block with key = plaintext = 0123456789abcdeffedcba9876543210.
        use sm4::cipher::{BlockEncrypt, KeyInit as _};
        let k = data_encoding::HEXLOWER.decode(b"0123456789abcdeffedcba9876543210").expect("hex");
        let c = sm4::Sm4::new_from_slice(&k).expect("key");
        let mut block = GenericArray::clone_from_slice(&k);
        c.encrypt_block(&mut block);
        assert_eq!(data_encoding::HEXLOWER.encode(&block), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn field_cipher_round_trip_and_tamper() {
        let c = FieldCipher::from_key(&[7u8; 16]);
        let ct = c.encrypt("11010519491231002X");
        assert!(!String::from_utf8_lossy(&ct).contains("11010519491231002X"));
        assert_eq!(c.decrypt(&ct).expect("decrypt"), "11010519491231002X");
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(c.decrypt(&bad).is_err());
        assert!(c.decrypt(&[]).is_err());
        // Two encryptions of one value differ (random nonce), the blind index does not.
        assert_ne!(c.encrypt("x"), c.encrypt("x"));
        assert_eq!(c.blind_index("11010519491231002x"), c.blind_index("11010519491231002X"));
    }

    #[test]
    fn citizen_id_check_character() {
        // The example of GB 11643-1999 itself.
        assert!(CitizenId::parse("11010519491231002X").is_ok());
        assert!(CitizenId::parse("110105194912310021").is_err());
        assert!(CitizenId::parse("11010519491331002X").is_err());
        assert!(CitizenId::parse("short").is_err());
        let id = CitizenId::parse("11010519491231002x").unwrap();
        assert_eq!((id.region(), id.birth_date(), id.is_male()), ("110105", (1949, 12, 31), false));
        // Real calendar dates: 29 February only in leap years (each with its own check character).
        let with_date = |date: &str| {
            let first = format!("120114{date}123");
            let check = CitizenId::check_character(&first).unwrap() as char;
            CitizenId::parse(&format!("{first}{check}"))
        };
        assert!(with_date("20000229").is_ok(), "2000 is a leap year");
        assert!(with_date("19000229").is_err(), "1900 is not");
        assert!(with_date("19800431").is_err());
        assert!(with_date("17991231").is_err());
        assert!(with_date("19800101").unwrap().is_male(), "sequence 123: odd");
        assert_eq!(CitizenId::check_character("1234"), None);
        assert_eq!(mask_citizen_id("11010519491231002X"), "110105********002X");
        assert_eq!(mask_phone("13912345678"), "139****5678");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("keys/field.key");
        let a = FieldCipher::load_or_create(None, &p).expect("create");
        let b = FieldCipher::load_or_create(None, &p).expect("reuse");
        assert_eq!(b.decrypt(&a.encrypt("v")).expect("same key"), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        }
    }

    proptest! {
        #[test]
        fn masking_never_panics_and_keeps_length(s in "\\PC{0,30}") {
            prop_assert_eq!(mask_citizen_id(&s).chars().count(), s.chars().count());
            prop_assert_eq!(mask_phone(&s).chars().count(), s.chars().count());
            let _ = CitizenId::parse(&s);
        }
    }
}
