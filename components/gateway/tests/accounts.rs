//! Accounts under abuse, through the gateway and auth as clients reach them (spin.toml under
//! runtime-host, real MariaDB, Redis and Mailpit): the parallel-guess race, the sign-up flood,
//! a forwarded-for spoof from an untrusted peer and what a trusted proxy may say, and the email
//! confirmation's single-use, expiring, password-binding links.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use vid2mp3_test_support::{Platform, PlatformBuilder};

/// Sends `n` requests at once (each built by `make(i)`) and counts the answers by status.
async fn at_once(
    n: usize,
    make: impl Fn(usize) -> reqwest::RequestBuilder,
) -> std::collections::BTreeMap<u16, usize> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let request = make(i);
        set.spawn(async move {
            let r = request.send().await.expect("an answer");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("a JSON body");
            (status, body)
        });
    }
    let mut counts = std::collections::BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (status, body) = done.expect("the request task");
        if status == 429 {
            assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    counts
}

fn login(p: &Platform, email: &str, password: &str) -> reqwest::RequestBuilder {
    client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": password}))
}

async fn login_status(p: &Platform, email: &str, password: &str) -> u16 {
    login(p, email, password)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// One SQL value from auth's database, as text.
async fn auth_sql(p: &Platform, sql: &str) -> Vec<Vec<Option<String>>> {
    use mysql_async::prelude::Queryable;
    let pool = p.auth_db.pool().expect("pool");
    let mut conn = pool.get_conn().await.expect("connection");
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect("query");
    drop(conn);
    pool.disconnect().await.ok();
    rows.into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect()
}

/// The race: 60 wrong passwords for one account at once got 49 of them checked with a
/// limit of 10. Counted before the check, exactly the limit is checked (401), the rest are 429
/// without any password work; and then the per-address limit holds the same way over 60
/// different accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_parallel_guesses_get_exactly_the_limit_through() {
    let p = PlatformBuilder::new()
        .variable("login_failures_per_account", "10")
        .variable("login_failures_per_client", "25")
        .start()
        .await
        .expect("the platform starts");
    let victim = email(&p, "victim");
    sign_up(&p, &victim).await;

    let counts = at_once(60, |i| {
        login(&p, &victim, &format!("wrong guess number {i}"))
    })
    .await;
    assert_eq!(
        counts,
        [(401, 10), (429, 50)].into(),
        "one account, 60 guesses at once"
    );
    // Locked for the window, even for the right password; and nothing stored was touched.
    assert_eq!(login_status(&p, &victim, PASSWORD).await, 429);
    assert_eq!(
        auth_sql(
            &p,
            "SELECT COUNT(*) FROM users WHERE email_confirmed_at IS NOT NULL"
        )
        .await,
        vec![vec![Some("1".to_owned())]]
    );

    // The address has 10 of its 25 failures: 60 guesses at 60 other accounts get 15 through.
    let counts = at_once(60, |i| {
        login(&p, &format!("nobody-{i}@example.com"), "a guess for anyone")
    })
    .await;
    assert_eq!(
        counts,
        [(401, 15), (429, 45)].into(),
        "one address, 60 accounts at once"
    );
}

/// A right password takes its attempt back: someone who logs in often is never locked out by
/// their own successes, and a success does not reset the failures before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_passwords_do_not_count_and_do_not_reset_the_failures() {
    let p = PlatformBuilder::new()
        .variable("login_failures_per_account", "3")
        .start()
        .await
        .expect("the platform starts");
    let user = email(&p, "regular");
    sign_up(&p, &user).await;
    for _ in 0..5 {
        assert_eq!(login_status(&p, &user, PASSWORD).await, 200);
    }
    assert_eq!(login_status(&p, &user, "wrong password one").await, 401);
    assert_eq!(login_status(&p, &user, PASSWORD).await, 200);
    assert_eq!(login_status(&p, &user, "wrong password two").await, 401);
    assert_eq!(login_status(&p, &user, "wrong password six").await, 401);
    assert_eq!(login_status(&p, &user, PASSWORD).await, 429);
}

/// Sign-ups from one address are capped (counted before the argon2 work), the answer is the same
/// for a registered address and a new one, the registered account keeps its password, and no
/// address gets more than its cap of account emails however many sign-ups name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_flood_is_capped_and_tells_nobody_who_is_registered() {
    let p = PlatformBuilder::new()
        .variable("signups_per_client", "12")
        .variable("account_emails_per_address", "3")
        .start()
        .await
        .expect("the platform starts");
    let registered = p.mailbox.address().to_owned();
    sign_up(&p, &registered).await; // one of the 12
    let fresh = email(&p, "fresh");

    let mut set = JoinSet::new();
    for i in 0..40 {
        let target = if i % 2 == 0 { &registered } else { &fresh }.clone();
        let request = client()
            .post(p.url("/api/v1/users"))
            .json(&json!({"email": target, "password": format!("a new password {i:02}")}));
        set.spawn(async move {
            let r = request.send().await.expect("an answer");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("JSON");
            (target, status, body)
        });
    }
    let mut accepted = std::collections::HashMap::<String, usize>::new();
    let mut throttled = 0;
    let mut words = std::collections::HashSet::new();
    while let Some(done) = set.join_next().await {
        let (target, status, body) = done.unwrap();
        match status {
            202 => {
                assert_eq!(body["email"], target.as_str());
                // The same words for both, but for the address itself.
                words.insert(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .replace(&target, "ADDRESS"),
                );
                *accepted.entry(target).or_insert(0) += 1;
            }
            429 => {
                throttled += 1;
                assert_eq!(body["error"]["code"], "too_many_requests");
            }
            other => panic!("{other}: {body}"),
        }
    }
    let to_registered = accepted.get(&registered).copied().unwrap_or(0);
    let to_fresh = accepted.get(&fresh).copied().unwrap_or(0);
    assert_eq!(
        (to_registered + to_fresh, throttled),
        (11, 29),
        "12 sign-ups per address per window, one used before"
    );
    assert_eq!(words.len(), 1, "registered or not, one answer: {words:?}");

    // Nothing stored was lost or taken over: one row each, the registered password holds.
    assert_eq!(count_rows(&p.auth_db, "users").await, 2);
    assert_eq!(login_status(&p, &registered, PASSWORD).await, 200);
    assert_eq!(
        login_status(&p, &registered, "a new password 00").await,
        401
    );

    // Each address got exactly as many emails as sign-ups named it, up to the cap of 3 (the
    // registered one had its confirmation link already, so 2 more): the registered one a
    // fixed-text "you already have an account", the new one its links.
    let want_registered = to_registered.min(2);
    let want_fresh = to_fresh.min(3);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = p.mailbox.messages_to(&registered).await.unwrap();
        let f = p.mailbox.messages_to(&fresh).await.unwrap();
        if (r.len(), f.len()) == (want_registered, want_fresh) {
            assert!(
                r.iter()
                    .all(|m| m.subject == "You already have a vid2mp3 account"),
                "{r:?}"
            );
            assert!(
                f.iter()
                    .all(|m| m.subject.starts_with("Confirm your email"))
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "emails: {} to the registered address (want {want_registered}), {} to the new one (want {want_fresh})",
            r.len(),
            f.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And no more after a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        p.mailbox.messages_to(&registered).await.unwrap().len(),
        want_registered
    );
    assert_eq!(
        p.mailbox.messages_to(&fresh).await.unwrap().len(),
        want_fresh
    );
}

/// Without trusted proxies (the default), `X-Forwarded-For` and `Forwarded` from a client are
/// ignored: rotating spoofed addresses does not escape the per-address limit, and the counter
/// is the peer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let p = PlatformBuilder::new()
        .variable("login_failures_per_client", "3")
        .start()
        .await
        .expect("the platform starts");
    for i in 0..3 {
        let r = login(&p, &format!("spray-{i}@example.com"), "a guess for anyone")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .header("forwarded", format!("for=203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = login(&p, "spray-9@example.com", "a guess for anyone")
        .header("x-forwarded-for", "192.0.2.77")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "a new spoofed address is still the same client"
    );
    let keys = p.redis.keys().await.unwrap();
    let clients: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(":login:client:"))
        .collect();
    assert_eq!(clients.len(), 1, "{keys:?}");
    assert!(clients[0].ends_with(":127.0.0.1"), "{keys:?}");
}

/// Behind a trusted proxy (here: loopback, where the test's requests come from), the client is
/// the rightmost untrusted hop of `X-Forwarded-For`: each client its own counter, a spoofed
/// entry left of the proxy's changes nothing, and `Forwarded` (not the configured header) is
/// not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_counted_on_its_own() {
    let p = PlatformBuilder::new()
        .variable("login_failures_per_client", "2")
        .variable("trusted_proxies", "127.0.0.1/32, ::1")
        .start()
        .await
        .expect("the platform starts");
    let attempt = |xff: Option<&str>, forwarded: Option<&str>| {
        let mut r = login(&p, "someone@example.com", "a guess for anyone");
        if let Some(v) = xff {
            r = r.header("x-forwarded-for", v);
        }
        if let Some(v) = forwarded {
            r = r.header("forwarded", v);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(attempt(Some("198.51.100.7"), None).await, 401);
    assert_eq!(attempt(Some("198.51.100.7"), None).await, 401);
    assert_eq!(attempt(Some("198.51.100.7"), None).await, 429);
    // Another client behind the same proxy is not locked out by the first.
    assert_eq!(attempt(Some("198.51.100.8"), None).await, 401);
    // The first client forging an entry before the proxy's own: still the first client.
    assert_eq!(attempt(Some("6.6.6.6, 198.51.100.7"), None).await, 429);
    // Forwarded is not the configured header: the proxy itself is the client.
    assert_eq!(attempt(None, Some("for=203.0.113.5")).await, 401);
    let keys = p.redis.keys().await.unwrap();
    for client in ["198.51.100.7", "198.51.100.8", "127.0.0.1"] {
        assert!(
            keys.iter()
                .any(|k| k.ends_with(&format!(":login:client:{client}"))),
            "{client}: {keys:?}"
        );
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("6.6.6.6") || k.contains("203.0.113"))
    );
}

/// Links work once, never by a mere GET, bind the password chosen with them, expire, and are
/// kept only as a hash; bad tokens get clear errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_links_work_once_bind_their_password_and_expire() {
    let p = PlatformBuilder::new()
        .start()
        .await
        .expect("the platform starts");
    let ada = email(&p, "ada");
    let sign_up_with = |password: &'static str| {
        client()
            .post(p.url("/api/v1/users"))
            .json(&json!({"email": ada, "password": password}))
            .send()
    };
    assert_eq!(
        sign_up_with("first password 111").await.unwrap().status(),
        202
    );
    let first = p.confirmation_token(&ada).await.unwrap();
    assert_eq!(
        sign_up_with("second password 222").await.unwrap().status(),
        202
    );
    let second_link = p.confirmation_link(&ada).await.unwrap();
    assert_eq!(count_rows(&p.auth_db, "users").await, 1);

    // Before confirming: the latest password gets "confirm first", the other one is wrong.
    let r = login(&p, &ada, "second password 222").send().await.unwrap();
    assert_eq!(error_code(r).await, (403, "email_not_confirmed".to_owned()));
    assert_eq!(login_status(&p, &ada, "first password 111").await, 401);

    // A mail scanner fetches the link: the page, and nothing confirmed (the token is in the
    // fragment, which is never sent).
    let link_path = second_link
        .split_once("/confirm")
        .map(|(_, rest)| format!("/confirm{rest}"))
        .unwrap();
    let r = client().get(p.url(&link_path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<!doctype html>"));
    let r = client()
        .get(p.url("/api/v1/users/confirmation"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(login_status(&p, &ada, "second password 222").await, 403);

    // Stored as a hash only.
    let stored = auth_sql(
        &p,
        "SELECT token_sha256, password_hash FROM email_confirmations",
    )
    .await;
    assert_eq!(stored.len(), 2);
    for row in &stored {
        assert!(row.iter().flatten().all(|v| !v.contains(&first)));
    }

    // The first link confirms, with the first password.
    let confirm = |token: String| {
        client()
            .post(p.url("/api/v1/users/confirmation"))
            .json(&json!({ "token": token }))
            .send()
    };
    let r = confirm(first.clone()).await.unwrap();
    let (status, account) = json_checked(r, "Account").await;
    assert_eq!(
        (status, account["email"].as_str()),
        (200, Some(ada.as_str()))
    );
    assert_eq!(login_status(&p, &ada, "first password 111").await, 200);
    assert_eq!(login_status(&p, &ada, "second password 222").await, 401);
    // Single use; and the other link is worthless now.
    assert_eq!(
        error_code(confirm(first.clone()).await.unwrap()).await,
        (409, "conflict".to_owned())
    );
    let second = vid2mp3_test_support::confirmation_token_in(&second_link).unwrap();
    assert_eq!(
        error_code(confirm(second).await.unwrap()).await,
        (409, "conflict".to_owned())
    );

    // An expired link says so (its expiry moved into the past in auth's database).
    let bob = email(&p, "bob");
    let r = client()
        .post(p.url("/api/v1/users"))
        .json(&json!({"email": bob, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let bobs = p.confirmation_token(&bob).await.unwrap();
    auth_sql(
        &p,
        "UPDATE email_confirmations SET expires_at = CURRENT_TIMESTAMP(3) - INTERVAL 1 SECOND \
         WHERE used_at IS NULL",
    )
    .await;
    let r = confirm(bobs).await.unwrap();
    let (status, body) = json_checked(r, "Error").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    assert_eq!(login_status(&p, &bob, PASSWORD).await, 403);

    // Bad tokens: clear 400s, nothing confirmed.
    for bad in [
        json!({"token": ""}),
        json!({"token": "short"}),
        json!({"token": "x".repeat(44)}),
        json!({"token": "'; UPDATE users SET email_confirmed_at = NOW(); -- aaaaaaaaaa"}),
        json!({"token": "A".repeat(43)}),
        json!({"nothing": true}),
    ] {
        let r = client()
            .post(p.url("/api/v1/users/confirmation"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(r).await,
            (400, "bad_request".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(login_status(&p, &bob, PASSWORD).await, 403);
}

/// "Send the link again" needs the account's password, answers the same whatever happened, and
/// sends a link only to an account that waits for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_link_needs_the_password_and_answers_the_same_always() {
    let p = PlatformBuilder::new()
        .start()
        .await
        .expect("the platform starts");
    let carol = email(&p, "carol");
    let r = client()
        .post(p.url("/api/v1/users"))
        .json(&json!({"email": carol, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    p.confirmation_token(&carol).await.unwrap(); // the sign-up's own link, put aside
    let again = |email: &str, password: &str| {
        client()
            .post(p.url("/api/v1/users/confirmation-email"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let (status, wrong) = json_checked(
        again(&carol, "not the password").await.unwrap(),
        "CheckInbox",
    )
    .await;
    assert_eq!(status, 202);
    let (status, nobody) = json_checked(
        again("nobody-here@example.com", PASSWORD).await.unwrap(),
        "CheckInbox",
    )
    .await;
    assert_eq!(status, 202);
    let (status, right) = json_checked(again(&carol, PASSWORD).await.unwrap(), "CheckInbox").await;
    assert_eq!(status, 202);
    assert_eq!(wrong, right, "the same answer, right password or not");
    assert_eq!(
        nobody["message"]
            .as_str()
            .unwrap()
            .replace("nobody-here@example.com", "X"),
        right["message"].as_str().unwrap().replace(&carol, "X")
    );
    // Exactly one new link: the right password's; and it confirms.
    let token = p.confirmation_token(&carol).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(p.mailbox.messages_to(&carol).await.unwrap().is_empty());
    let r = client()
        .post(p.url("/api/v1/users/confirmation"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A confirmed account gets nothing more.
    assert_eq!(again(&carol, PASSWORD).await.unwrap().status(), 202);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(p.mailbox.messages_to(&carol).await.unwrap().is_empty());
    assert_eq!(login_status(&p, &carol, PASSWORD).await, 200);
}

/// Not a test (nothing passes or fails on time): how long a sign-up takes for a new address, an
/// unconfirmed one and a confirmed one, interleaved round by round, at the production argon2
/// cost. `components/gateway/bench/signup.sh` runs it; figures in docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: components/gateway/bench/signup.sh"]
async fn bench_sign_up_time_by_address_state() {
    let rounds: usize = std::env::var("VID2MP3_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let p = PlatformBuilder::new()
        .variable("password_hash_memory_kib", "19456")
        .variable("password_hash_passes", "2")
        .variable("signups_per_client", "100000")
        // Every sign-up mails, as each address an attacker probes for the first time does.
        .variable("account_emails_per_address", "100000")
        .start()
        .await
        .expect("the platform starts");
    let confirmed = email(&p, "confirmed");
    sign_up(&p, &confirmed).await;
    let unconfirmed = email(&p, "unconfirmed");
    let time_one = |address: String| {
        let request = client()
            .post(p.url("/api/v1/users"))
            .json(&json!({"email": address, "password": PASSWORD}));
        async move {
            let started = std::time::Instant::now();
            let r = request.send().await.expect("an answer");
            assert_eq!(r.status(), 202);
            let _ = r.bytes().await;
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    time_one(unconfirmed.clone()).await; // makes it exist, unconfirmed
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        // A different order each round, so a slow stretch of the machine hits all three.
        for k in 0..3 {
            let which = (round + k) % 3;
            let address = match which {
                0 => email(&p, &format!("new{round}")),
                1 => unconfirmed.clone(),
                _ => confirmed.clone(),
            };
            times[which].push(time_one(address).await);
        }
    }
    println!("sign-up wall time over {rounds} interleaved rounds (ms), argon2id m=19456 KiB t=2:");
    println!(
        "{:<26} {:>8} {:>8} {:>8}",
        "address", "median", "p90", "mean"
    );
    for (name, t) in ["new", "unconfirmed", "confirmed (registered)"]
        .iter()
        .zip(times.iter_mut())
    {
        t.sort_by(f64::total_cmp);
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        println!(
            "{name:<26} {:>8.1} {:>8.1} {:>8.1}",
            t[t.len() / 2],
            t[(t.len() * 9 / 10).min(t.len() - 1)],
            mean
        );
    }
}
