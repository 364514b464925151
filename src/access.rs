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
}
