//! Credentials (SPEC §8.1): passwords hashed with argon2id, API tokens made
//! of 256 random bits, named by their first 12 characters and checked by
//! their SHA-256 in constant time.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// Characters of a token that name it (`token list`, `token revoke`).
pub const PREFIX_LEN: usize = 12;
/// Shortest password a person may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("a password needs at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AccessError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(buf)
}

/// A password for a new account, printed once: 128 random bits.
pub fn generate_password() -> Result<SecretString, AccessError> {
    let bytes = random_bytes::<16>()?;
    Ok(SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The argon2id hash (PHC string, OWASP's parameters: 19 MiB, 2 passes) of a
/// password a person chose or was given.
pub fn hash_password(password: &SecretString) -> Result<String, AccessError> {
    if password.expose_secret().chars().count() < MIN_PASSWORD_LEN {
        return Err(AccessError::WeakPassword);
    }
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| AccessError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

/// Whether `password` is the one `hash` was made from (argon2 compares in
/// constant time). A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// `verify_password` in `memory`, the blocks argon2 works in, kept by the
/// caller from one check to the next: allocating and freeing 19 MiB per
/// check left the allocator's heap holding 17 MiB per check made at once.
pub fn verify_password_in(password: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let Ok(params) = argon2::Params::try_from(&parsed) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else { return false };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    memory.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..]).is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Password checks admitted at once. Each holds 19 MiB and a core for
/// about 50 ms: unbounded, 100 logins at once took the server to 1.9 GB in
/// 512 blocking threads. Checks run on a few threads of their own, one per
/// core (always the same threads, so the allocator's per-thread arenas that
/// keep the freed 19 MiB are few too), a few per core wait their turn, and
/// beyond that a login is refused at once (`Busy`) rather than queued
/// without end.
pub struct HashGate {
    jobs: std::sync::mpsc::Sender<Check>,
    admitted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max_admitted: usize,
}

/// One password to check, and where its answer goes.
struct Check {
    password: String,
    hash: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// Too many password checks are waiting: try again in a moment.
#[derive(Debug, thiserror::Error)]
#[error("too many logins are being checked: try again in a moment")]
pub struct Busy;

impl HashGate {
    pub fn new(threads: usize, waiting_per_thread: usize) -> HashGate {
        use std::sync::atomic::Ordering;
        let threads = threads.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Check>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let admitted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..threads {
            let (queue, admitted) = (queue.clone(), admitted.clone());
            let worker = move || {
                // This thread's argon2 memory, reused by every check it makes.
                let mut memory = Vec::new();
                loop {
                    // The gate gone, its sender is too: the thread ends.
                    let next = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(check) = next else { return };
                    // A caller that left (its client hung up) costs nothing more.
                    if !check.answer.is_closed() {
                        let _ = check.answer.send(verify_password_in(&check.password, &check.hash, &mut memory));
                    }
                    admitted.fetch_sub(1, Ordering::SeqCst);
                }
            };
            if let Err(e) = std::thread::Builder::new().name(format!("password-check-{i}")).spawn(worker) {
                tracing::error!("cannot start a password-check thread: {e}");
            }
        }
        HashGate { jobs, admitted, max_admitted: threads * (1 + waiting_per_thread) }
    }

    /// The gate of this process: one thread per core, four waiting per core.
    pub fn global() -> &'static HashGate {
        static GATE: std::sync::LazyLock<HashGate> =
            std::sync::LazyLock::new(|| HashGate::new(std::thread::available_parallelism().map_or(1, |n| n.get()), 4));
        &GATE
    }

    /// `verify_password`, on the gate's threads, once one is free.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        use std::sync::atomic::Ordering;
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        if self.jobs.send(Check { password, hash, answer }).is_err() {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        // The thread that takes it gives its place back, answered or not.
        answered.await.map_err(|_| Busy)
    }
}

/// A new API token: `dft_` and 43 URL-safe characters (256 random bits).
pub struct NewToken {
    pub token: SecretString,
    pub prefix: String,
    pub sha256: Vec<u8>,
}

pub fn generate_token() -> Result<NewToken, AccessError> {
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let token = format!("dft_{body}");
    let prefix = token[..PREFIX_LEN].to_owned();
    let sha256 = token_sha256(&token);
    Ok(NewToken { token: SecretString::from(token), prefix, sha256 })
}

pub fn token_sha256(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// The prefix that names `token`, if it has the shape of one.
pub fn token_prefix(token: &str) -> Option<&str> {
    (token.starts_with("dft_") && token.len() > PREFIX_LEN && token.is_ascii()).then(|| &token[..PREFIX_LEN])
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn token_matches(token: &str, stored: &[u8]) -> bool {
    token_sha256(token).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_another_does_not() {
        let pw = SecretString::from("correct horse battery".to_owned());
        let hash = hash_password(&pw).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn a_check_in_reused_memory_agrees_with_the_plain_one() {
        let hash = hash_password(&SecretString::from("correct horse battery".to_owned())).unwrap();
        let mut memory = Vec::new();
        for _ in 0..2 {
            assert!(verify_password_in("correct horse battery", &hash, &mut memory));
            assert!(!verify_password_in("correct horse battery!", &hash, &mut memory));
        }
        assert!(!verify_password_in("x", "not a hash", &mut memory));
        assert!(!verify_password_in("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$", &mut memory));
    }

    #[test]
    fn a_short_password_is_refused() {
        assert!(matches!(hash_password(&SecretString::from("short".to_owned())), Err(AccessError::WeakPassword)));
    }

    #[test]
    fn a_token_is_named_by_its_prefix_and_checked_by_its_hash() {
        let t = generate_token().unwrap();
        let token = t.token.expose_secret();
        assert_eq!(token.len(), 4 + 43);
        assert_eq!(token_prefix(token), Some(t.prefix.as_str()));
        assert!(token_matches(token, &t.sha256));
        let other = generate_token().unwrap();
        assert!(!token_matches(other.token.expose_secret(), &t.sha256));
        assert_eq!(token_prefix("Bearer x"), None);
    }

    #[tokio::test]
    async fn password_checks_beyond_the_gates_room_are_refused_at_once_not_queued() {
        let hash = hash_password(&SecretString::from("correct horse battery".to_owned())).unwrap();
        // One running, one waiting: of ten at once, eight are refused.
        let gate = HashGate::new(1, 1);
        let checks = (0..10).map(|_| gate.verify("correct horse battery".into(), hash.clone()));
        let outcomes = futures_util::future::join_all(checks).await;
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Ok(true))).count(), 2);
        assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 8);
        // Once they are done, the gate admits again.
        assert!(matches!(gate.verify("wrong".into(), hash).await, Ok(false)));
    }
}
