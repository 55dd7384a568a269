//! Access tokens: EdDSA (Ed25519) JWTs signed with auth's private key, and the public key set
//! (JWKS) the gateway verifies them with. Only auth ever holds the private key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use vid2mp3_contracts::UserId;
use vid2mp3_contracts::claims::{Claims, TOKEN_AUDIENCE, TOKEN_ISSUER};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the signing key is not base64 of an Ed25519 private key in PKCS#8 DER \
         (make one with: openssl genpkey -algorithm ed25519 -outform DER | base64 -w0)"
    )]
    Unreadable,
    #[error("the key id must be 1 to 64 letters, digits, '-', '_' or '.'")]
    BadKeyId,
}

#[derive(Debug, thiserror::Error)]
#[error("signing the token failed")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// Auth's signing key and its id (`kid`); rotating keys means a new id.
pub struct TokenSigner {
    key_id: String,
    encoding_key: EncodingKey,
    public_key: [u8; 32],
}

impl TokenSigner {
    /// `private_key_base64`: base64 (standard alphabet) of the PKCS#8 DER private key.
    pub fn new(key_id: &str, private_key_base64: &str) -> Result<TokenSigner, KeyError> {
        let valid_id = !key_id.is_empty()
            && key_id.len() <= 64
            && key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_id {
            return Err(KeyError::BadKeyId);
        }
        let der = STANDARD
            .decode(private_key_base64.trim())
            .map_err(|_| KeyError::Unreadable)?;
        let signing = SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::Unreadable)?;
        Ok(TokenSigner {
            key_id: key_id.to_owned(),
            encoding_key: EncodingKey::from_ed_der(&der),
            public_key: signing.verifying_key().to_bytes(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A token for `user`, valid from `now` (seconds since the epoch) for `lifetime_secs`.
    pub fn issue(
        &self,
        user: UserId,
        email: &str,
        now: u64,
        lifetime_secs: u64,
        token_id: uuid::Uuid,
    ) -> Result<String, SignError> {
        let claims = Claims {
            sub: user,
            email: email.to_owned(),
            iat: now,
            exp: now.saturating_add(lifetime_secs),
            iss: TOKEN_ISSUER.to_owned(),
            aud: TOKEN_AUDIENCE.to_owned(),
            jti: token_id,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding_key).map_err(SignError)
    }

    /// The public key set to publish (RFC 7517 / RFC 8037 `OKP` keys).
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![PublicJwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                key_use: "sig",
                kid: self.key_id.clone(),
                x: URL_SAFE_NO_PAD.encode(self.public_key),
            }],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub key_use: &'static str,
    pub kid: String,
    pub x: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// A fixed test key (PKCS#8 DER, base64), generated for these tests only.
    fn test_key() -> String {
        // PKCS#8 v1 wrapping of a 32-byte Ed25519 seed: a fixed 16-byte prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend((1u8..=32).collect::<Vec<u8>>());
        STANDARD.encode(der)
    }

    fn validation() -> Validation {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[TOKEN_ISSUER]);
        v.set_audience(&[TOKEN_AUDIENCE]);
        v
    }

    #[test]
    fn tokens_verify_with_the_published_key_and_carry_the_claims() {
        let signer = TokenSigner::new("2026-11", &test_key()).unwrap();
        let user = UserId::new();
        let now = 4_000_000_000 - 3600;
        let token = signer
            .issue(user, "ada@example.com", now, 3600, uuid::Uuid::nil())
            .unwrap();

        let jwks = signer.jwks();
        let key = DecodingKey::from_ed_components(&jwks.keys[0].x).unwrap();
        let mut v = validation();
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(&token, &key, &v).unwrap();
        assert_eq!(data.header.kid.as_deref(), Some("2026-11"));
        assert_eq!(data.header.alg, Algorithm::EdDSA);
        assert_eq!(data.claims.sub, user);
        assert_eq!(data.claims.email, "ada@example.com");
        assert_eq!(data.claims.exp - data.claims.iat, 3600);
    }

    #[test]
    fn another_key_does_not_verify() {
        let signer = TokenSigner::new("a", &test_key()).unwrap();
        let token = signer
            .issue(
                UserId::new(),
                "ada@example.com",
                4_000_000_000,
                60,
                uuid::Uuid::nil(),
            )
            .unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let key = DecodingKey::from_ed_components(
            &URL_SAFE_NO_PAD.encode(other.verifying_key().to_bytes()),
        )
        .unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&token, &key, &validation()).is_err());
    }

    #[test]
    fn bad_keys_and_key_ids_are_refused() {
        assert!(matches!(
            TokenSigner::new("k", "not base64!"),
            Err(KeyError::Unreadable)
        ));
        assert!(matches!(
            TokenSigner::new("k", &STANDARD.encode([0u8; 48])),
            Err(KeyError::Unreadable)
        ));
        assert!(matches!(
            TokenSigner::new("", &test_key()),
            Err(KeyError::BadKeyId)
        ));
        assert!(matches!(
            TokenSigner::new("a/b", &test_key()),
            Err(KeyError::BadKeyId)
        ));
    }
}
