//! Shared by the gateway's tests: a client for the running platform and the OpenAPI check.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::Value;
use vid2mp3_test_support::Platform;

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// A strong enough password for the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// An address of the platform's mailbox (its mail is read through Mailpit and removed with it).
pub fn email(p: &Platform, tag: &str) -> String {
    p.mailbox.address_for(tag)
}

/// Signs up and confirms the address with the link from its confirmation email.
pub async fn sign_up(p: &Platform, email: &str) {
    p.sign_up_confirmed(email, PASSWORD)
        .await
        .expect("sign up and confirm");
}

/// A session for `email` (which must be confirmed); the token.
pub async fn log_in(p: &Platform, email: &str) -> String {
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("log in");
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.expect("session JSON");
    session["token"].as_str().expect("a token").to_owned()
}

/// Signs up, confirms and logs in; the token.
pub async fn user_token(p: &Platform, tag: &str) -> String {
    let email = email(p, tag);
    sign_up(p, &email).await;
    log_in(p, &email).await
}

/// Status and JSON body, after checking the body against the OpenAPI document's schema for it.
pub async fn json_checked(r: Response, schema: &str) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON body");
    assert_conforms(&body, schema);
    (status, body)
}

/// The error code of an error answer (checked against the `Error` schema).
pub async fn error_code(r: Response) -> (u16, String) {
    let (status, body) = json_checked(r, "Error").await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// `value` must match `components/schemas/<name>` of the gateway's OpenAPI document.
pub fn assert_conforms(value: &Value, name: &str) {
    let doc: Value =
        serde_json::from_str(vid2mp3_gateway::api::OPENAPI_JSON).expect("openapi.json is JSON");
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "does not match {name}: {errors:?}\n{value:#}"
    );
}

/// Rows in a MySQL table of one of the platform's databases.
pub async fn count_rows(db: &vid2mp3_test_support::MySqlDatabase, table: &str) -> u64 {
    use mysql_async::prelude::Queryable;
    let pool = db.pool().expect("pool");
    let mut conn = pool.get_conn().await.expect("connection");
    let n: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .expect("count");
    drop(conn);
    pool.disconnect().await.ok();
    n.unwrap_or(0)
}
