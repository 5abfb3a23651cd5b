//! Passwords: argon2id hashes and the complexity policy of 等保 2.0 (GB/T 22239-2019, 8.1.4.1 a:
//! identification with complexity requirements and periodic change).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

/// Hashes with argon2id and the crate's recommended parameters (m = 19 MiB, t = 2, p = 1).
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
}

/// Constant-time verification; a malformed stored hash verifies nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// At most one argon2 computation per core at a time: fifty logins at once then queue instead of
/// thrashing fifty 19 MiB hashes over two cores (which makes every one of them slow).
fn permits() -> &'static tokio::sync::Semaphore {
    static S: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)))
}

/// [`hash`] off the async threads, bounded by the number of cores.
pub async fn hash_async(password: String) -> String {
    let _permit = permits().acquire().await;
    tokio::task::spawn_blocking(move || hash(&password)).await.unwrap_or_default()
}

/// [`verify`] off the async threads, bounded by the number of cores.
pub async fn verify_async(password: String, stored: String) -> bool {
    let _permit = permits().acquire().await;
    tokio::task::spawn_blocking(move || verify(&password, &stored)).await.unwrap_or(false)
}

/// A hash of a password nobody knows, verified against when a user does not exist so that the
/// answer takes as long as for a user who does.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash("no such user, no such password"))
}

/// Checks the complexity policy: minimum length, at least three of four character classes
/// (lower, upper, digit, symbol), not containing the username.
pub fn check_policy(password: &str, username: &str, min_len: usize) -> Result<(), String> {
    let n = password.chars().count();
    if n < min_len {
        return Err(format!("the password needs at least {min_len} characters (密码长度至少{min_len}位)"));
    }
    if n > 128 {
        return Err("the password may have at most 128 characters".into());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|&&c| c).count() < 3 {
        return Err("the password needs three of: lower case, upper case, digits, symbols (密码须包含大写字母、小写字母、数字、符号中的三类)".into());
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("the password may not contain the username (密码不得包含用户名)".into());
    }
    Ok(())
}

/// A random password that meets the policy, for initial and demo accounts.
pub fn generate() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYM: &[u8] = b"-_.@#";
    let mut rng = rand::rngs::OsRng;
    let mut pick = |set: &[u8]| set[rng.gen_range(0..set.len())] as char;
    let mut s = String::new();
    for i in 0..14 {
        let set = match i % 7 {
            0 | 3 => UPPER,
            1 | 4 | 5 => LOWER,
            2 | 6 => DIGIT,
            _ => SYM,
        };
        s.push(pick(set));
    }
    s.insert(7, pick(SYM));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verify() {
        let h = hash("Correct-Horse-9");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-Horse-9", &h));
        assert!(!verify("correct-horse-9", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short1A", "u", 10).is_err());
        assert!(check_policy("alllowercaseletters", "u", 10).is_err());
        assert!(check_policy("Zhang-San-2024", "zhangsan", 10).is_ok());
        assert!(check_policy("zhangsan-2024X", "zhangsan", 10).is_err());
        for _ in 0..50 {
            let p = generate();
            assert!(check_policy(&p, "someone", 10).is_ok(), "{p}");
        }
    }
}
