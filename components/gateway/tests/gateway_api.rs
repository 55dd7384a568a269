//! The gateway and auth as clients use them: spin.toml under runtime-host, real MariaDB and
//! Redis. (Uploads that reach storage, downloads and the whole flow are in tests/ at the root.)

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use serde_json::{Value, json};
use vid2mp3_test_support::{Platform, PlatformBuilder, TokenKeys};

async fn platform() -> Platform {
    PlatformBuilder::new()
        .start()
        .await
        .expect("the platform starts")
}

#[tokio::test]
async fn health_and_the_openapi_document() {
    let p = platform().await;
    let r = client().get(p.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(p.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/users",
        "/api/v1/users/confirmation",
        "/api/v1/users/confirmation-email",
        "/api/v1/sessions",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/mp3",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    // Readiness without a converter: MySQL and Redis answer, storage does not.
    let r = client().get(p.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let (_, body) = json_checked(r, "Readiness").await;
    assert_eq!(
        body["checks"],
        json!({"mysql": "ok", "redis": "ok", "storage": "unavailable"})
    );
    let (status, code) =
        error_code(client().get(p.url("/nothing/here")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

#[tokio::test]
async fn sign_up_log_in_and_the_course_login() {
    let p = platform().await;
    let email = email(&p, "Ada");
    let r = client()
        .post(p.url("/api/v1/users"))
        .json(&json!({"email": format!("  {}  ", email.to_uppercase()), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, accepted) = json_checked(r, "CheckInbox").await;
    assert_eq!(status, 202);
    assert_eq!(accepted["email"], email.to_lowercase(), "normalized");

    // Not confirmed yet: the right password is refused with what to do.
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_checked(r, "Error").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "email_not_confirmed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirm"),
        "{body}"
    );
    let token = p
        .confirmation_token(&email)
        .await
        .expect("the link arrives");
    let r = client()
        .post(p.url("/api/v1/users/confirmation"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let (status, account) = json_checked(r, "Account").await;
    assert_eq!(status, 200);
    assert_eq!(account["email"], email.to_lowercase());

    // The same address again, in any case: the same 202 answer, still one row, and the
    // confirmed password unchanged (its owner gets an "already registered" email instead).
    let r = client()
        .post(p.url("/api/v1/users"))
        .json(&json!({"email": email, "password": "another long password"}))
        .send()
        .await
        .unwrap();
    let (status, again) = json_checked(r, "CheckInbox").await;
    assert_eq!((status, &again), (202, &accepted));
    assert_eq!(count_rows(&p.auth_db, "users").await, 1);
    let notice = p
        .mailbox
        .take_message(
            &email,
            "You already have a vid2mp3 account",
            std::time::Duration::from_secs(30),
        )
        .await
        .expect("the owner is told");
    assert!(!notice.text.contains("confirm#token="), "{}", notice.text);

    // JSON log-in.
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (status, session) = json_checked(r, "Session").await;
    assert_eq!(status, 200);
    assert_eq!(session["account"]["id"], account["id"]);
    let token = session["token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], account["id"]);
    assert_eq!(claims["iss"], "vid2mp3-auth");
    assert_eq!(claims["aud"], "vid2mp3-api");
    for claim in ["iat", "exp", "jti", "email"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], "test-key");

    // HTTP Basic on the API, and the course's `curl -X POST -u EMAIL:PASSWORD /login`.
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .basic_auth(&email, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(p.url("/login"))
        .basic_auth(&email, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bare = r.text().await.unwrap();
    assert_eq!(bare.split('.').count(), 3, "a bare JWT: {bare}");
    // It works as a bearer token.
    let r = client()
        .get(p.url("/api/v1/jobs"))
        .bearer_auth(&bare)
        .send()
        .await
        .unwrap();
    let (status, page) = json_checked(r, "JobPage").await;
    assert_eq!(status, 200);
    assert_eq!(page, json!({"jobs": [], "next_cursor": null}));
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_look_the_same() {
    let p = platform().await;
    let email = email(&p, "grace");
    sign_up(&p, &email).await;
    let wrong = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    let unknown = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": "nobody-here@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (s1, b1) = json_checked(wrong, "Error").await;
    let (s2, b2) = json_checked(unknown, "Error").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2, "the same words whether or not the account exists");
    // The course's login without credentials.
    let r = client().post(p.url("/login")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"vid2mp3\"");
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_retry_after() {
    let p = PlatformBuilder::new()
        .variable("login_failures_per_account", "3")
        .start()
        .await
        .unwrap();
    let email = email(&p, "throttled");
    sign_up(&p, &email).await;
    let attempt = |password: &'static str| {
        client()
            .post(p.url("/api/v1/sessions"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("a wrong password!").await.unwrap().status(), 401);
    }
    let r = attempt(PASSWORD).await.unwrap();
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(r).await, (429, "too_many_requests".into()));
    // Another account from the same address is not locked by this one's failures.
    let other = email_for_other(&p).await;
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": other, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn email_for_other(p: &Platform) -> String {
    let e = email(p, "other");
    sign_up(p, &e).await;
    e
}

#[tokio::test]
async fn bad_sign_ups_are_clear_and_store_nothing() {
    let p = platform().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", "{\"email\": ".into(), 400),
        ("not an object", "[1,2]".into(), 400),
        (
            "missing password",
            json!({"email": "a@example.com"}).to_string(),
            400,
        ),
        (
            "missing email",
            json!({"password": PASSWORD}).to_string(),
            400,
        ),
        (
            "not an email",
            json!({"email": "nobody", "password": PASSWORD}).to_string(),
            400,
        ),
        (
            "overlong email",
            json!({"email": long_email, "password": PASSWORD}).to_string(),
            400,
        ),
        (
            "short password",
            json!({"email": "a@example.com", "password": "short"}).to_string(),
            400,
        ),
        (
            "overlong password",
            json!({"email": "a@example.com", "password": "x".repeat(129)}).to_string(),
            400,
        ),
        (
            "SQL in the email",
            json!({"email": "x'); DROP TABLE users; --@example.com", "password": PASSWORD})
                .to_string(),
            400,
        ),
        (
            "huge body",
            format!("{{\"email\": \"{}\"}}", "a".repeat(20_000)),
            413,
        ),
    ];
    for (what, body, want) in cases {
        let r = client()
            .post(p.url("/api/v1/users"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, b) = json_checked(r, "Error").await;
        assert_eq!(status, want, "{what}: {b}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(
            !message.to_lowercase().contains("sql") && !message.contains("INSERT"),
            "{what}: {message}"
        );
    }
    assert_eq!(
        count_rows(&p.auth_db, "users").await,
        0,
        "nothing was stored"
    );
    // SQL metacharacters that are part of a valid address are stored as text, not run (and
    // the address gets its link).
    let tricky = format!("o'brien+{}@example.com", uuid::Uuid::new_v4().simple());
    sign_up(&p, &tricky).await;
    assert_eq!(count_rows(&p.auth_db, "users").await, 1);
}

/// A token with the given header and claims, signed by `sign`.
fn forge(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn ed25519_signer(keys: &TokenKeys) -> impl Fn(&[u8]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let der = STANDARD.decode(&keys.private_key_base64).unwrap();
    let seed: [u8; 32] = der[16..].try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    move |data| key.sign(data).to_bytes().to_vec()
}

#[tokio::test]
async fn every_bad_token_is_refused() {
    let p = platform().await;
    let token = user_token(&p, "tokens").await;
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let now = claims["iat"].as_u64().unwrap();
    let ours = ed25519_signer(&p.keys);
    let foreign_keys = TokenKeys::generate("test-key");
    let foreign = ed25519_signer(&foreign_keys);
    let eddsa = json!({"alg": "EdDSA", "typ": "JWT", "kid": "test-key"});
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let public_key_secret = {
        let jwks: Value = serde_json::from_str(&p.keys.jwks).unwrap();
        URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap()
    };
    let hs256 = |data: &[u8]| {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&public_key_secret).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    };
    let mut tampered = token.clone();
    tampered.replace_range(
        tampered.len() - 5..tampered.len() - 4,
        if tampered.ends_with('A') { "B" } else { "A" },
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty", Some(String::new())),
        ("garbage", Some("Bearer not-a-token".into())),
        ("not bearer", Some(format!("Token {token}"))),
        (
            "basic",
            Some(format!("Basic {}", STANDARD.encode("a@b.co:pw"))),
        ),
        ("tampered", Some(format!("Bearer {tampered}"))),
        (
            "alg none",
            Some(format!(
                "Bearer {}",
                forge(json!({"alg": "none", "typ": "JWT"}), &claims, |_| Vec::new(
                ))
            )),
        ),
        (
            "HS256 with the public key",
            Some(format!(
                "Bearer {}",
                forge(
                    json!({"alg": "HS256", "typ": "JWT", "kid": "test-key"}),
                    &claims,
                    hs256
                )
            )),
        ),
        (
            "another key",
            Some(format!(
                "Bearer {}",
                forge(eddsa.clone(), &claims, &foreign)
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                forge(eddsa.clone(), &with("exp", json!(now - 3600)), &ours)
            )),
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                forge(eddsa.clone(), &with("nbf", json!(now + 3600)), &ours)
            )),
        ),
        (
            "wrong issuer",
            Some(format!(
                "Bearer {}",
                forge(eddsa.clone(), &with("iss", json!("someone-else")), &ours)
            )),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                forge(eddsa.clone(), &with("aud", json!("another-api")), &ours)
            )),
        ),
    ];
    for (what, header) in cases {
        let mut req = client().get(p.url("/api/v1/jobs"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"), "{what}");
        assert_eq!(error_code(r).await, (401, "unauthorized".into()), "{what}");
    }
    // The genuine token still works: the refusals were about the tokens.
    let r = client()
        .get(p.url("/api/v1/jobs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn ids_that_are_not_ids_and_jobs_that_are_not_yours() {
    let p = platform().await;
    let token = user_token(&p, "ids").await;
    let get = |path: String| client().get(p.url(&path)).bearer_auth(&token).send();
    for bad in ["123", "not-a-uuid", "%27%20OR%201%3D1"] {
        let (status, code) = error_code(get(format!("/api/v1/jobs/{bad}")).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{bad}");
    }
    let unknown = uuid::Uuid::now_v7();
    for path in [
        format!("/api/v1/jobs/{unknown}"),
        format!("/api/v1/jobs/{unknown}/mp3"),
    ] {
        assert_eq!(
            error_code(get(path.clone()).await.unwrap()).await,
            (404, "not_found".into()),
            "{path}"
        );
    }
    let r = client()
        .delete(p.url(&format!("/api/v1/jobs/{unknown}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    for fid in ["", "xyz", "65f0c0ffee65f0c0ffee65f"] {
        let r = get(format!("/download?fid={fid}")).await.unwrap();
        assert_eq!(r.status(), 400, "fid {fid:?}");
    }
    let r = get("/download".into()).await.unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = get("/api/v1/jobs?limit=0".into()).await.unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
    let r = get("/api/v1/jobs?cursor=garbage".into()).await.unwrap();
    assert_eq!(error_code(r).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn uploads_refused_before_anything_is_stored() {
    // No converter runs: each of these must be refused by the gateway itself.
    let p = PlatformBuilder::new()
        .variable("max_upload_bytes", "4096")
        .start()
        .await
        .unwrap();
    let token = user_token(&p, "uploader").await;
    let mp4_head = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10".to_vec();
    let form = |parts: &[(&str, &str, &[u8])], close: bool| {
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: video/mp4\r\n\r\n").as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        if close {
            body.extend_from_slice(b"--XyZ--\r\n");
        }
        body
    };
    let multipart = "multipart/form-data; boundary=XyZ";
    let mut big = mp4_head.clone();
    big.resize(5000, 0);
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        (
            "JSON is not media",
            "/api/v1/jobs",
            "application/json",
            b"{}".to_vec(),
            415,
        ),
        ("no content type", "/api/v1/jobs", "", mp4_head.clone(), 415),
        ("an image", "/api/v1/jobs", "video/mp4", png.clone(), 415),
        (
            "text as video",
            "/api/v1/jobs",
            "video/mp4",
            b"just some text, not a video".to_vec(),
            415,
        ),
        ("empty body", "/api/v1/jobs", "video/mp4", Vec::new(), 400),
        (
            "over the limit",
            "/api/v1/jobs",
            "video/mp4",
            big.clone(),
            413,
        ),
        (
            "multipart without a file",
            "/upload",
            multipart,
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XyZ--\r\n".to_vec(),
            400,
        ),
        (
            "multipart image",
            "/upload",
            multipart,
            form(&[("file", "x.png", &png)], true),
            415,
        ),
        (
            "multipart empty file",
            "/upload",
            multipart,
            form(&[("file", "x.mp4", b"")], true),
            400,
        ),
        (
            "truncated multipart",
            "/upload",
            multipart,
            b"--XyZ\r\nContent-Disposition: form-da".to_vec(),
            400,
        ),
        (
            "multipart over the limit",
            "/upload",
            multipart,
            form(&[("file", "x.mp4", &big)], true),
            413,
        ),
        (
            "bad profile",
            "/api/v1/jobs?profile=ultra",
            "video/mp4",
            mp4_head.clone(),
            400,
        ),
    ];
    for (what, path, content_type, body, want) in cases {
        let mut req = client().post(p.url(path)).bearer_auth(&token).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let r = req.send().await.unwrap();
        let (status, b) = json_checked(r, "Error").await;
        assert_eq!(status, want, "{what}: {b}");
    }
    // And without a token, nothing is even read.
    let r = client()
        .post(p.url("/upload"))
        .header("content-type", multipart)
        .body(form(&[("file", "a.mp4", &mp4_head)], true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        count_rows(&p.gateway_db, "jobs").await,
        0,
        "no job was recorded"
    );
}
