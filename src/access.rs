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

/// Password checks admitted at once. Each holds 19 MiB and a core for
/// about 50 ms: unbounded, 100 logins at once took the server to 1.9 GB in
/// 512 blocking threads. One runs per core, a few per core wait their
/// turn, and beyond that a login is refused at once (`Busy`) rather than
/// queued without end.
pub struct HashGate {
    running: tokio::sync::Semaphore,
    admitted: std::sync::atomic::AtomicUsize,
    max_admitted: usize,
}

/// Too many password checks are waiting: try again in a moment.
#[derive(Debug, thiserror::Error)]
#[error("too many logins are being checked: try again in a moment")]
pub struct Busy;

impl HashGate {
    pub fn new(cores: usize, waiting_per_core: usize) -> HashGate {
        let cores = cores.max(1);
        HashGate {
            running: tokio::sync::Semaphore::new(cores),
            admitted: std::sync::atomic::AtomicUsize::new(0),
            max_admitted: cores * (1 + waiting_per_core),
        }
    }

    /// The gate of this process: one check per core, four waiting per core.
    pub fn global() -> &'static HashGate {
        static GATE: std::sync::LazyLock<HashGate> =
            std::sync::LazyLock::new(|| HashGate::new(std::thread::available_parallelism().map_or(1, |n| n.get()), 4));
        &GATE
    }

    /// `verify_password`, on a blocking thread once a core is free.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        use std::sync::atomic::Ordering;
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        // Released however this ends, the caller's cancellation included.
        struct Leave<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.admitted);
        let Ok(_turn) = self.running.acquire().await else { return Err(Busy) };
        Ok(tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false))
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
