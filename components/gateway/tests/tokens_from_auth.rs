//! The contract between auth and the gateway: what auth signs and publishes, the gateway accepts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use vid2mp3_auth::tokens::TokenSigner;
use vid2mp3_contracts::UserId;
use vid2mp3_gateway::token_check::{TokenError, TokenVerifier};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signer(seed: u8, kid: &str) -> TokenSigner {
    let der = SigningKey::from_bytes(&[seed; 32]).to_pkcs8_der().unwrap();
    TokenSigner::new(kid, &STANDARD.encode(der.as_bytes())).unwrap()
}

#[test]
fn a_token_auth_issues_is_accepted_with_the_keys_auth_publishes() {
    let auth = signer(3, "2026-11");
    let jwks = serde_json::to_string(&auth.jwks()).unwrap();
    let verifier = TokenVerifier::from_jwks(&jwks).unwrap();
    let user = UserId::new();
    let token = auth
        .issue(user, "ada@example.com", now(), 900, uuid::Uuid::now_v7())
        .unwrap();
    let claims = verifier
        .verify_header(Some(&format!("Bearer {token}")), now())
        .unwrap();
    assert_eq!(claims.sub, user);
    assert_eq!(claims.email, "ada@example.com");
}

#[test]
fn a_token_from_a_retired_key_is_refused_once_its_key_is_unpublished() {
    let retired = signer(4, "2026-10");
    let current = signer(5, "2026-11");
    let verifier =
        TokenVerifier::from_jwks(&serde_json::to_string(&current.jwks()).unwrap()).unwrap();
    let token = retired
        .issue(
            UserId::new(),
            "ada@example.com",
            now(),
            900,
            uuid::Uuid::now_v7(),
        )
        .unwrap();
    assert_eq!(verifier.verify(&token, now()), Err(TokenError::Invalid));
}
