//! The trusted EMR's seals (可信电子病历): every stored version of a clinical resource is hashed
//! with SM3 (GB/T 32905) over its canonical JSON and the previous version's digest, and the digest
//! is signed with the institution's SM2 key (GB/T 32918, GM/T 0003; the user ID of GM/T 0009,
//! `1234567812345678`, unless configured). A change made outside the API breaks the digest of
//! that version and of every later one; a forged seal fails the signature.
//!
//! Canonical JSON is RFC 8785 (JCS): no white space, object members sorted by their names' UTF-16
//! code units, strings with the minimal escapes, numbers as ECMAScript writes them.

use serde_json::Value;
use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm3::{Digest, Sm3};

/// The SM2 user ID (distinguishing identifier) when none is configured (GM/T 0009).
pub const DEFAULT_USER_ID: &str = "1234567812345678";

/// RFC 8785 canonical form of a JSON value.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            let s = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), ..) if i.unsigned_abs() < (1 << 53) => i.to_string(),
                (_, Some(u), _) if u < (1 << 53) => u.to_string(),
                (.., Some(f)) => es_number(f),
                _ => "null".to_string(),
            };
            out.extend_from_slice(s.as_bytes());
        }
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            let mut members: Vec<(&String, &Value)> = o.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A finite double as ECMAScript's Number::toString writes it (ECMA-262 §6.1.6.1.20), from the
/// shortest digits that round-trip.
pub fn es_number(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return "0".to_string();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    // f = 0.d1d2…dk × 10^n
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e >= 0 { "+" } else { "-" };
        let mantissa = if k == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{mantissa}e{sign}{}", e.abs())
    };
    if f < 0.0 { format!("-{body}") } else { body }
}

/// The digest of one version: SM3 over its canonical JSON followed by the previous version's
/// digest (nothing for the first).
pub fn digest(resource: &Value, previous: Option<&[u8; 32]>) -> [u8; 32] {
    let mut h = Sm3::new();
    h.update(canonical_json(resource));
    if let Some(p) = previous {
        h.update(p);
    }
    h.finalize().into()
}

/// A version's seal: its digest and the SM2 signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub digest: [u8; 32],
    /// r ‖ s, 64 bytes.
    pub signature: [u8; 64],
}

/// Why a version does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("the content differs from what was sealed")]
    Digest,
    #[error("the signature does not verify with the institution's key")]
    Signature,
}

/// Seals a version with the institution's key.
pub fn seal(key: &SigningKey, resource: &Value, previous: Option<&[u8; 32]>) -> Seal {
    let d = digest(resource, previous);
    let sig: Signature = key.sign(&d);
    Seal { digest: d, signature: sig.to_bytes() }
}

/// Checks a version against its seal.
pub fn verify(key: &VerifyingKey, resource: &Value, previous: Option<&[u8; 32]>, s: &Seal) -> Result<(), Broken> {
    if digest(resource, previous) != s.digest {
        return Err(Broken::Digest);
    }
    let sig = Signature::from_bytes(&s.signature).map_err(|_| Broken::Signature)?;
    key.verify(&s.digest, &sig).map_err(|_| Broken::Signature)
}

/// The root one signature covers when a request writes several versions at once (a
/// transaction, an import): SM3 over a label, the institution, the time and the versions'
/// digests in sorted order (so that the order they are read back in does not matter).
pub fn root(org_id: &str, at_ms: i64, digests: &[[u8; 32]]) -> [u8; 32] {
    let mut sorted = digests.to_vec();
    sorted.sort_unstable();
    let mut h = Sm3::new();
    h.update(b"wuqing seal v1\0");
    h.update(org_id.as_bytes());
    h.update([0u8]);
    h.update(at_ms.to_be_bytes());
    for d in &sorted {
        h.update(d);
    }
    h.finalize().into()
}

/// Signs a root with the institution's key: r ‖ s.
pub fn sign_root(key: &SigningKey, root: &[u8; 32]) -> [u8; 64] {
    let sig: Signature = key.sign(root);
    sig.to_bytes()
}

/// Whether `signature` (r ‖ s) is the key's signature over `root`.
pub fn verify_root(key: &VerifyingKey, root: &[u8; 32], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else { return false };
    Signature::from_bytes(&bytes).is_ok_and(|sig| key.verify(root, &sig).is_ok())
}

/// A verifying key from its published form (SEC1 hex).
pub fn verifying_key_from_hex(user_id: &str, hex: &str) -> Option<VerifyingKey> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<_>>()?;
    VerifyingKey::from_sec1_bytes(user_id, &bytes).ok()
}

/// A new signing key for an institution, from the operating system's randomness.
pub fn new_key(user_id: &str) -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        // Zero or at least the group order is not a key: draw again (about 2^-32 of draws).
        if let Ok(k) = SigningKey::from_slice(user_id, &bytes) {
            return k;
        }
    }
}

/// A signing key given as the hex of its 32-byte private scalar (GM/T 0003); `None` when the
/// text is not 64 hex digits or not a valid scalar (zero, or not below the group order).
pub fn signing_key_from_hex(user_id: &str, hex: &str) -> Option<SigningKey> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<_>>()?;
    SigningKey::from_slice(user_id, &bytes).ok()
}

/// The published form of a verifying key: SEC1 uncompressed, hex.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    key.to_sec1_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Numbers of RFC 8785 appendix B and ECMAScript's Number::toString.
    #[test]
    fn a_private_key_is_read_from_hex_or_refused() {
        let key = new_key(DEFAULT_USER_ID);
        let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let back = signing_key_from_hex(DEFAULT_USER_ID, &format!("{hex}\n")).unwrap();
        assert_eq!(public_key_hex(back.verifying_key()), public_key_hex(key.verifying_key()));
        assert!(signing_key_from_hex(DEFAULT_USER_ID, &"0".repeat(64)).is_none(), "zero is not a key");
        assert!(signing_key_from_hex(DEFAULT_USER_ID, &"f".repeat(64)).is_none(), "above the group order");
        assert!(signing_key_from_hex(DEFAULT_USER_ID, &hex[..62]).is_none());
        assert!(signing_key_from_hex(DEFAULT_USER_ID, &format!("{}zz", &hex[..62])).is_none());
    }

    #[test]
    fn numbers_are_written_as_ecmascript_does() {
        for (f, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e23, "1e+23"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (4.5, "4.5"),
            (0.002, "0.002"),
            (333333333.3333333, "333333333.3333333"),
            (9007199254740991.0, "9007199254740991"),
            (295147905179352830000.0, "295147905179352830000"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-1.5, "-1.5"),
            (123456789012345680000.0, "123456789012345680000"),
        ] {
            assert_eq!(es_number(f), s, "{f:e}");
        }
    }

    #[test]
    fn canonical_json_sorts_members_and_escapes_minimally() {
        let v = json!({ "b": [1, 2.5, true, null], "a": "é\n\u{1}\"", "\u{fb33}": 1, "\u{1f600}": 2, "\u{20ac}": 3, "c": { "z": 1, "y": {} } });
        // In UTF-16 U+1F600 is the surrogate pair D83D DE00: it sorts after U+20AC but before
        // U+FB33, though its code point is the larger (RFC 8785 §3.2.3).
        let want = "{\"a\":\"é\\n\\u0001\\\"\",\"b\":[1,2.5,true,null],\"c\":{\"y\":{},\"z\":1},\"\u{20ac}\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}";
        assert_eq!(String::from_utf8(canonical_json(&v)).unwrap(), want);
        // Member order and white space of the input do not matter.
        let a: Value = serde_json::from_str("{ \"x\" : 1 , \"w\":[ 1 ] }").unwrap();
        let b: Value = serde_json::from_str("{\"w\":[1],\"x\":1}").unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
    }

    /// A signature made by OpenSSL (`openssl pkeyutl -sign -digest sm3 -pkeyopt
    /// distid:example@rustcrypto.org` over "testing"), the test vector of the RustCrypto sm2
    /// crate's tests: our verification accepts it and refuses it altered.
    #[test]
    fn an_openssl_signature_verifies() {
        let hex = |s: &str| {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>()
        };
        let pk = hex(
            "0408D77AE04C01CC4C1104360DD8AF6B6F7DF334283D7C1A6AFD5652407B87BEE5014E2A57C36C150D16324DC664E31E6432359609C4E79847A5B161C8C7364C8A",
        );
        let sig = hex(concat!(
            "d1dcccedd9fb785e0f67c16b7c52901625c0b69de9bca2144acc7be713cad2fc",
            "f7d1eae6e3a157b36c65f672f738ca8b46298bf149a6510072c431b49cd88b1c"
        ));
        let vk = VerifyingKey::from_sec1_bytes("example@rustcrypto.org", &pk).unwrap();
        let s = Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(b"testing", &s).is_ok());
        assert!(vk.verify(b"testinG", &s).is_err());
        let other_id = VerifyingKey::from_sec1_bytes(DEFAULT_USER_ID, &pk).unwrap();
        assert!(other_id.verify(b"testing", &s).is_err(), "the user ID is part of what is signed");
    }

    #[test]
    fn a_chain_of_versions_detects_a_change_and_a_forgery() {
        let key = new_key(DEFAULT_USER_ID);
        let vk = key.verifying_key().clone();
        let v1 = json!({ "resourceType": "Observation", "id": "o1", "meta": { "versionId": "1" }, "status": "final", "code": { "text": "血压" } });
        let v2 = json!({ "resourceType": "Observation", "id": "o1", "meta": { "versionId": "2" }, "status": "amended", "code": { "text": "血压" } });
        let s1 = seal(&key, &v1, None);
        let s2 = seal(&key, &v2, Some(&s1.digest));
        assert_eq!(verify(&vk, &v1, None, &s1), Ok(()));
        assert_eq!(verify(&vk, &v2, Some(&s1.digest), &s2), Ok(()));
        // Edited in the database: this version's digest breaks.
        let mut edited = v1.clone();
        edited["status"] = json!("cancelled");
        assert_eq!(verify(&vk, &edited, None, &s1), Err(Broken::Digest));
        // Version 1 replaced with its seal recomputed by someone without the key: the signature fails.
        let forged = Seal { digest: digest(&edited, None), signature: s1.signature };
        assert_eq!(verify(&vk, &edited, None, &forged), Err(Broken::Signature));
        // …and version 2, chained to the real version 1, no longer verifies after the forged one.
        assert_eq!(verify(&vk, &v2, Some(&forged.digest), &s2), Err(Broken::Digest));
        // Another institution's key does not verify these seals.
        let other = new_key(DEFAULT_USER_ID);
        assert_eq!(verify(other.verifying_key(), &v1, None, &s1), Err(Broken::Signature));
        assert_eq!(public_key_hex(&vk).len(), 130);
    }

    proptest! {
        #[test]
        fn es_numbers_read_back_as_the_same_double(bits in any::<u64>()) {
            let f = f64::from_bits(bits);
            if f.is_finite() {
                let s = es_number(f);
                prop_assert_eq!(s.parse::<f64>().unwrap(), if f == 0.0 { 0.0 } else { f });
            }
        }
    }
}
