//! Passwords: the policy a new one must meet, and argon2id hashing and verification.
//!
//! Only hashes (PHC strings) are stored. Verification runs the same argon2id work whether or
//! not the account exists, so neither the answer nor its timing tells an attacker which email
//! addresses have accounts.

use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHash, PasswordHasher, PasswordVerifier};

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Long enough for any passphrase; the cap keeps a megabyte "password" from being hashed.
pub const MAX_PASSWORD_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("the password must not be your email address")]
    SameAsEmail,
    #[error("the password must not be one character repeated")]
    OneRepeatedCharacter,
}

/// What a new password must be. No composition rules (they push people to predictable
/// patterns); length and the obvious guesses instead.
pub fn check_policy(password: &str, email: &str) -> Result<(), PolicyError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PolicyError::TooLong);
    }
    let lowered = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or(email);
    if lowered == email || lowered == local_part {
        return Err(PolicyError::SameAsEmail);
    }
    let mut all = password.chars();
    if let Some(first) = all.next()
        && all.all(|c| c == first)
    {
        return Err(PolicyError::OneRepeatedCharacter);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the argon2 costs are invalid; check the password hash cost settings")]
    Params(#[source] argon2::Error),
    #[error("hashing the password failed")]
    Hash(#[source] argon2::password_hash::Error),
}

/// argon2id with fixed costs. Memory cost in KiB, time cost in passes, one lane (components run
/// single-threaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub passes: u32,
}

impl HashCost {
    fn hasher(self) -> Result<Argon2<'static>, HashError> {
        let params =
            Params::new(self.memory_kib, self.passes, 1, None).map_err(HashError::Params)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// A PHC string (`$argon2id$v=19$m=...`) for storing.
pub fn hash_password(password: &str, cost: HashCost) -> Result<String, HashError> {
    let hasher = cost.hasher()?;
    hasher
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(HashError::Hash)
}

/// Whether `password` matches `stored` (a PHC string). With `stored = None` (no such account) the
/// same work is done against a hash of the same cost, and the answer is false.
pub fn verify_password(password: &str, stored: Option<&str>, cost: HashCost) -> bool {
    match stored.map(PasswordHash::new) {
        Some(Ok(hash)) => match cost.hasher() {
            // The stored hash's own parameters are used: hashes made before a cost change still verify.
            Ok(hasher) => hasher.verify_password(password.as_bytes(), &hash).is_ok(),
            Err(_) => false,
        },
        // An unreadable stored hash must not log anyone in, and must cost the same as a miss.
        Some(Err(_)) | None => {
            let _ = hash_password(password, cost);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests hash with a tiny cost: what they check does not depend on it.
    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        passes: 1,
    };

    #[test]
    fn the_policy_names_what_is_wrong() {
        let email = "ada@example.com";
        assert_eq!(check_policy("short", email), Err(PolicyError::TooShort));
        assert_eq!(
            check_policy(&"xy".repeat(65), email),
            Err(PolicyError::TooLong)
        );
        assert_eq!(
            check_policy("ADA@EXAMPLE.COM", email),
            Err(PolicyError::SameAsEmail)
        );
        assert_eq!(
            check_policy("aaaaaaaaaaaa", email),
            Err(PolicyError::OneRepeatedCharacter)
        );
        assert_eq!(check_policy("correct horse battery staple", email), Ok(()));
        // Characters, not bytes: ten accented letters are ten characters.
        assert_eq!(check_policy("éàüöçñøåßæ", email), Ok(()));
    }

    #[test]
    fn a_hash_verifies_only_its_password() {
        let stored = hash_password("correct horse battery staple", CHEAP).unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(verify_password(
            "correct horse battery staple",
            Some(&stored),
            CHEAP
        ));
        assert!(!verify_password(
            "correct horse battery stapl",
            Some(&stored),
            CHEAP
        ));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let a = hash_password("correct horse battery staple", CHEAP).unwrap();
        let b = hash_password("correct horse battery staple", CHEAP).unwrap();
        assert_ne!(a, b, "salts must differ");
    }

    #[test]
    fn missing_or_corrupt_hashes_never_verify() {
        assert!(!verify_password("anything at all", None, CHEAP));
        assert!(!verify_password(
            "anything at all",
            Some("plaintext-password"),
            CHEAP
        ));
    }
}
