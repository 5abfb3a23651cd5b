//! Passwords: argon2id hashes and the complexity policy of 等保 2.0 (GB/T 22239-2019, 8.1.4.1 a:
//! identification with complexity requirements and periodic change).

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;

/// The largest memory cost a stored hash may ask for (256 MiB), so that a forged hash in the
/// database cannot make a login allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;

std::thread_local! {
    /// argon2's working memory (19 MiB with the default parameters), kept by each thread that
    /// hashes and reused: see [`workers`].
    static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Computes the raw argon2 output into `out` in this thread's reusable memory.
fn raw_hash(argon: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    let n = argon.params().block_count();
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < n {
            blocks.resize(n, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..n]).is_ok()
    })
}

/// Hashes with argon2id and the crate's recommended parameters (m = 19 MiB, t = 2, p = 1), as a
/// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let argon = Argon2::default();
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else { return String::new() };
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    if !raw_hash(&argon, password.as_bytes(), salt_bytes, &mut out) {
        return String::new();
    }
    let (Ok(params), Ok(output)) = (ParamsString::try_from(argon.params()), Output::new(&out)) else {
        return String::new();
    };
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Constant-time verification; a malformed stored hash verifies nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(h) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else { return false };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&h) else { return false };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    raw_hash(&Argon2::new(algorithm, version, params), password.as_bytes(), salt_bytes, &mut out)
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// The argon2 threads: one per core, started on first use, each computing one hash at a time, so
/// fifty logins at once queue instead of thrashing fifty 19 MiB hashes over two cores (which
/// makes every one of them slow). Each keeps its 19 MiB of argon2 memory ([`BLOCKS`]): allocated
/// and freed per hash on tokio's blocking pool, glibc kept up to 58 MB of it per thread arena
/// (a freed block of that size raises its mmap threshold, so the next one comes from and stays
/// in the arena): 64 logins took a fresh demo server from 237 MB to 485 MB.
fn workers() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static W: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    W.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let started = (0..n)
            .filter(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("argon2-{i}"))
                    .spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            match job {
                                // A panicking job drops its answer (the caller sees a failure); the
                                // thread goes on.
                                Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                                Err(_) => return,
                            }
                        }
                    })
                    .is_ok()
            })
            .count();
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Runs `f` on an argon2 thread (on tokio's blocking pool if none could be started); `None` if
/// it panicked.
async fn on_hash_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let Some(tx) = workers() else {
        return tokio::task::spawn_blocking(f).await.ok();
    };
    let (answer, rx) = tokio::sync::oneshot::channel();
    tx.send(Box::new(move || drop(answer.send(f())))).ok()?;
    rx.await.ok()
}

/// [`hash`] off the async threads, one at a time per core.
pub async fn hash_async(password: String) -> String {
    on_hash_thread(move || hash(&password)).await.unwrap_or_default()
}

/// [`verify`] off the async threads, one at a time per core.
pub async fn verify_async(password: String, stored: String) -> bool {
    on_hash_thread(move || verify(&password, &stored)).await.unwrap_or(false)
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

    /// Our PHC strings and the argon2 crate's own are interchangeable.
    #[test]
    fn hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("Correct-Horse-9");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"Correct-Horse-9", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"Correct-Horse-8", &parsed).is_err());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default().hash_password(b"Correct-Horse-9", &salt).unwrap().to_string();
        assert!(verify("Correct-Horse-9", &theirs));
        assert!(!verify("Correct-Horse-8", &theirs));
        // Other parameters, as a hash stored by an older version might carry.
        let params = Params::new(8 * 1024, 3, 1, Some(32)).unwrap();
        let older =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"Old-Pass-77", &salt).unwrap();
        assert!(verify("Old-Pass-77", &older.to_string()));
        // A stored hash asking for more memory than the bound verifies nothing.
        let huge = ours.replace("m=19456", "m=4194304");
        assert!(!verify("Correct-Horse-9", &huge));
    }

    #[tokio::test]
    async fn hashes_run_on_the_argon2_threads() {
        let h = hash_async("Correct-Horse-9".into()).await;
        assert!(verify_async("Correct-Horse-9".into(), h.clone()).await);
        assert!(!verify_async("Wrong-Horse-9".into(), h).await);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let names = futures::future::join_all(
            (0..4 * cores).map(|_| on_hash_thread(|| std::thread::current().name().map(String::from))),
        )
        .await;
        let names: std::collections::BTreeSet<String> =
            names.into_iter().map(|n| n.flatten().unwrap_or_default()).collect();
        assert!(names.len() <= cores && names.iter().all(|n| n.starts_with("argon2-")), "{names:?}");
        // A panicking job is a failure for its caller, and the threads go on.
        assert_eq!(on_hash_thread(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(on_hash_thread(|| 7).await, Some(7));
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
