//! Webhook secrets and signatures, in the Standard Webhooks shape: a secret `whsec_<base64 of
//! 24 random bytes>`, and `webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
//! where the key is the secret's decoded bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret starts with (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the system's random source failed: {0}")]
    Random(getrandom::Error),
    #[error("a stored webhook secret is damaged (not whsec_<base64>)")]
    BadSecret,
}

/// A new secret.
pub fn new_secret() -> Result<String, SignError> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key).map_err(SignError::Random)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` value for one delivery.
pub fn signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Result<String, SignError> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .ok_or(SignError::BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError::BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its secret, id, timestamp, body and
    /// the signature it gives), so a receiver using any of its libraries verifies ours.
    #[test]
    fn signs_like_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret = new_secret().unwrap();
        let base = signature(&secret, "id", 1, b"{}").unwrap();
        assert_ne!(base, signature(&secret, "id2", 1, b"{}").unwrap());
        assert_ne!(base, signature(&secret, "id", 2, b"{}").unwrap());
        assert_ne!(base, signature(&secret, "id", 1, b"{ }").unwrap());
        assert_ne!(
            base,
            signature(&new_secret().unwrap(), "id", 1, b"{}").unwrap()
        );
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 32);
        assert!(matches!(
            signature("not-a-secret", "id", 1, b""),
            Err(SignError::BadSecret)
        ));
    }
}
