//! TOTP second factor (RFC 6238 over RFC 4226 HOTP, HMAC-SHA1, 30 s steps, 6 digits), which every
//! authenticator app speaks.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

/// A fresh 160-bit secret, base32 as authenticator apps expect.
pub fn new_secret() -> String {
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    data_encoding::BASE32_NOPAD.encode(&b)
}

/// The `otpauth://` URI to show as a QR code.
pub fn uri(secret: &str, username: &str) -> String {
    format!("otpauth://totp/Wuqing:{username}?secret={secret}&issuer=Wuqing&algorithm=SHA1&digits=6&period=30")
}

fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    bin % 10u32.pow(digits)
}

/// The code for `unix_secs`.
pub fn code_at(secret: &str, unix_secs: u64) -> Option<String> {
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    Some(format!("{:06}", hotp(&key, unix_secs / 30, 6)))
}

/// Accepts the code of the current step or one step either side (clock drift).
pub fn verify(secret: &str, code: &str, unix_secs: u64) -> bool {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    [unix_secs.saturating_sub(30), unix_secs, unix_secs + 30]
        .iter()
        .any(|&t| code_at(secret, t).is_some_and(|c| c == code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 seed "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(hotp(key, t / 30, 8), want, "t={t}");
        }
    }

    #[test]
    fn verify_window() {
        let s = new_secret();
        let c = code_at(&s, 1_000_000).expect("code");
        assert!(verify(&s, &c, 1_000_000));
        assert!(verify(&s, &c, 1_000_029));
        assert!(!verify(&s, &c, 1_000_200));
        assert!(!verify(&s, "abc", 1_000_000));
    }
}
