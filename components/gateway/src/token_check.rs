//! Checking access tokens locally, with auth's public key: no call to auth per request.
//!
//! The algorithm is pinned to EdDSA, so `alg: none`, HS256 "signed" with the public key as the
//! secret, and every other algorithm confusion fail before any signature math. The key is picked
//! by `kid` among the keys auth publishes, so keys can rotate without a gateway restart losing
//! tokens signed by the previous one.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use vid2mp3_contracts::claims::{Claims, TOKEN_AUDIENCE, TOKEN_ISSUER};

/// Clock difference tolerated between auth and the gateway.
const LEEWAY_SECS: u64 = 5;

/// Why a request's token was not accepted. Every variant answers 401; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this needs a token: send 'Authorization: Bearer <token>' (log in to get one)")]
    Missing,
    #[error("the Authorization header must be 'Bearer <token>'")]
    NotBearer,
    #[error("the token is not valid; log in again")]
    Invalid,
    #[error("the token has expired; log in again")]
    Expired,
    #[error("the token is not valid yet; check this machine's clock")]
    NotYetValid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("the public key set is not JSON of the form {{\"keys\": [...]}}: {0}")]
    Unreadable(String),
    #[error("the public key set has no Ed25519 signing key")]
    NoUsableKey,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    kty: String,
    crv: Option<String>,
    kid: Option<String>,
    x: Option<String>,
}

/// The public keys tokens may be signed with, by key id.
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl TokenVerifier {
    /// From the JWKS document auth publishes (`{"keys": [{"kty": "OKP", "crv": "Ed25519", ...}]}`).
    /// Keys of other types are skipped; at least one Ed25519 key with an id must remain.
    pub fn from_jwks(json: &str) -> Result<TokenVerifier, KeySetError> {
        let set: KeySet =
            serde_json::from_str(json).map_err(|e| KeySetError::Unreadable(e.to_string()))?;
        let mut keys = HashMap::new();
        for key in set.keys {
            let (Some(kid), Some(x)) = (key.kid, key.x) else {
                continue;
            };
            if key.kty != "OKP" || key.crv.as_deref() != Some("Ed25519") {
                continue;
            }
            if let Ok(decoding) = DecodingKey::from_ed_components(&x) {
                keys.insert(kid, decoding);
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[TOKEN_ISSUER]);
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(TokenVerifier { keys, validation })
    }

    /// The claims of the token in an `Authorization` header value, if it is one of ours and
    /// current. `now` is seconds since the Unix epoch.
    pub fn verify_header(
        &self,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<Claims, TokenError> {
        let value = authorization.ok_or(TokenError::Missing)?.trim();
        if value.is_empty() {
            return Err(TokenError::Missing);
        }
        let (scheme, token) = value.split_once(' ').ok_or(TokenError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::NotBearer);
        }
        self.verify(token.trim(), now)
    }

    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        // The header is read unverified only to choose the key; the signature check follows.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::Invalid)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    _ => TokenError::Invalid,
                }
            })?;
        // jsonwebtoken does not look at `iat`; a token issued in the future was not issued by a
        // correct auth.
        if data.claims.iat > now.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};
    use vid2mp3_contracts::UserId;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    struct Auth {
        signing: SigningKey,
        kid: &'static str,
    }

    impl Auth {
        fn new(seed: u8, kid: &'static str) -> Auth {
            Auth {
                signing: SigningKey::from_bytes(&[seed; 32]),
                kid,
            }
        }

        fn jwk(&self) -> serde_json::Value {
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes()),
            })
        }

        fn sign(&self, claims: &serde_json::Value) -> String {
            let der = self.signing.to_pkcs8_der().unwrap();
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.to_owned());
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
                .unwrap()
        }
    }

    fn claims(iat: u64, exp: u64) -> serde_json::Value {
        serde_json::json!({
            "sub": UserId::new().to_string(), "email": "ada@example.com", "iat": iat, "exp": exp,
            "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE, "jti": uuid::Uuid::now_v7().to_string(),
        })
    }

    fn verifier(keys: &[&Auth]) -> TokenVerifier {
        let set = serde_json::json!({"keys": keys.iter().map(|a| a.jwk()).collect::<Vec<_>>()});
        TokenVerifier::from_jwks(&set.to_string()).unwrap()
    }

    fn unsigned(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn a_current_token_from_auth_is_accepted() {
        let auth = Auth::new(1, "k1");
        let token = auth.sign(&claims(now(), now() + 600));
        let got = verifier(&[&auth])
            .verify_header(Some(&format!("Bearer {token}")), now())
            .unwrap();
        assert_eq!(got.email, "ada@example.com");
    }

    #[test]
    fn keys_rotate_by_kid() {
        let old = Auth::new(1, "old");
        let new = Auth::new(2, "new");
        let v = verifier(&[&old, &new]);
        assert!(
            v.verify(&old.sign(&claims(now(), now() + 60)), now())
                .is_ok()
        );
        assert!(
            v.verify(&new.sign(&claims(now(), now() + 60)), now())
                .is_ok()
        );
    }

    #[test]
    fn garbage_authorization_headers_are_refused() {
        let v = verifier(&[&Auth::new(1, "k1")]);
        assert_eq!(v.verify_header(None, now()), Err(TokenError::Missing));
        assert_eq!(
            v.verify_header(Some("   "), now()),
            Err(TokenError::Missing)
        );
        for bad in [
            "Basic YWRhOnB3",
            "Bearer",
            "token-without-scheme",
            "Bearer a.b",
            "Bearer ....",
            "Bearer \u{0}\u{1}",
        ] {
            let got = v.verify_header(Some(bad), now());
            assert!(
                matches!(got, Err(TokenError::NotBearer | TokenError::Invalid)),
                "{bad:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let ours = Auth::new(1, "k1");
        // Same kid, different key: an attacker who guessed our key id.
        let theirs = Auth::new(7, "k1");
        let token = theirs.sign(&claims(now(), now() + 600));
        assert_eq!(
            verifier(&[&ours]).verify(&token, now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let auth = Auth::new(1, "k1");
        let token = unsigned(
            serde_json::json!({"alg": "none", "kid": "k1"}),
            &claims(now(), now() + 600),
            b"",
        );
        assert_eq!(
            verifier(&[&auth]).verify(&token, now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn hs256_with_the_public_key_as_secret_is_refused() {
        let auth = Auth::new(1, "k1");
        let public_x = auth.jwk()["x"].as_str().unwrap().to_owned();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        for secret in [
            public_x.as_bytes().to_vec(),
            auth.signing.verifying_key().to_bytes().to_vec(),
        ] {
            let token = jsonwebtoken::encode(
                &header,
                &claims(now(), now() + 600),
                &EncodingKey::from_secret(&secret),
            )
            .unwrap();
            assert_eq!(
                verifier(&[&auth]).verify(&token, now()),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let auth = Auth::new(1, "k1");
        let v = verifier(&[&auth]);
        let expired = auth.sign(&claims(now() - 7200, now() - 3600));
        assert_eq!(v.verify(&expired, now()), Err(TokenError::Expired));
        let future = auth.sign(&claims(now() + 3600, now() + 7200));
        assert_eq!(v.verify(&future, now()), Err(TokenError::NotYetValid));
        let mut not_before = claims(now(), now() + 7200);
        not_before["nbf"] = (now() + 3600).into();
        assert_eq!(
            v.verify(&auth.sign(&not_before), now()),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn wrong_issuer_audience_or_missing_claims_are_refused() {
        let auth = Auth::new(1, "k1");
        let v = verifier(&[&auth]);
        let mut wrong_iss = claims(now(), now() + 600);
        wrong_iss["iss"] = "someone-else".into();
        assert_eq!(
            v.verify(&auth.sign(&wrong_iss), now()),
            Err(TokenError::Invalid)
        );
        let mut wrong_aud = claims(now(), now() + 600);
        wrong_aud["aud"] = "another-api".into();
        assert_eq!(
            v.verify(&auth.sign(&wrong_aud), now()),
            Err(TokenError::Invalid)
        );
        let mut no_exp = claims(now(), now() + 600);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify(&auth.sign(&no_exp), now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let auth = Auth::new(1, "k1");
        let token = auth.sign(&claims(now(), now() + 600));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(now(), now() + 600);
        forged["email"] = "mallory@example.com".into();
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert_eq!(
            verifier(&[&auth]).verify(&parts.join("."), now()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn key_sets_without_a_usable_key_are_refused() {
        assert!(matches!(
            TokenVerifier::from_jwks("nope"),
            Err(KeySetError::Unreadable(_))
        ));
        assert_eq!(
            TokenVerifier::from_jwks(r#"{"keys": []}"#).err(),
            Some(KeySetError::NoUsableKey)
        );
        let rsa_only = r#"{"keys": [{"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]}"#;
        assert_eq!(
            TokenVerifier::from_jwks(rsa_only).err(),
            Some(KeySetError::NoUsableKey)
        );
    }
}
