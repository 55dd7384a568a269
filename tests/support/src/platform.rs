//! The whole platform for one test: spin.toml under runtime-host (gateway, auth, notifier) with
//! databases, a Redis prefix and Redis channels (job events, account emails) of the test's own,
//! and — when the test needs uploads — the converter binary on its own Mongo database and
//! RabbitMQ vhost. [`Platform::sign_up_confirmed`] makes an account the way a person does:
//! sign up, open the link from the confirmation email (read through Mailpit's API), confirm.
//!
//! Everything is real; only the names are private to the test, so tests run in parallel. Each
//! service logs in as an account of its own, with what it has in production and no more: a
//! MySQL account per database ([`MySqlDatabase::service_url`]) and a Redis user per service
//! confined to the test's prefix and channel ([`RedisNamespace::service_users`]).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use vid2mp3_migrations::Service;

use crate::{
    ClientLimits, Mailbox, MongoDatabase, MySqlDatabase, RabbitVhost, RedisNamespace, RedisUsers,
    SpinApp, SpinAppBuilder, target_dir, unique_name,
};

/// A fresh Ed25519 key pair in the forms auth and the gateway take.
pub struct TokenKeys {
    pub key_id: String,
    /// base64 of the PKCS#8 DER private key (auth's `token_signing_key`).
    pub private_key_base64: String,
    /// The JWKS document (the gateway's `token_public_keys`).
    pub jwks: String,
}

impl TokenKeys {
    pub fn generate(key_id: &str) -> TokenKeys {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        // PKCS#8 v1 for Ed25519 (RFC 8410): a fixed prefix, then the 32-byte seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": key_id,
            "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
        }]});
        TokenKeys {
            key_id: key_id.to_owned(),
            private_key_base64: STANDARD.encode(der),
            jwks: jwks.to_string(),
        }
    }
}

/// What a test wants of the platform.
pub struct PlatformBuilder {
    converter: bool,
    variables: Vec<(String, String)>,
    converter_env: Vec<(String, String)>,
    client_limits: Option<ClientLimits>,
}

impl Default for PlatformBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PlatformBuilder {
    pub fn new() -> PlatformBuilder {
        PlatformBuilder {
            converter: false,
            variables: Vec::new(),
            converter_env: Vec::new(),
            client_limits: None,
        }
    }

    /// runtime-host's client limits instead of [`crate::app_client_limits`]'s.
    pub fn client_limits(mut self, limits: ClientLimits) -> PlatformBuilder {
        self.client_limits = Some(limits);
        self
    }

    /// Also run the converter (storage API, worker, relay) on the test's own Mongo database and
    /// RabbitMQ vhost.
    pub fn with_converter(mut self) -> PlatformBuilder {
        self.converter = true;
        self
    }

    /// Overrides a spin.toml variable.
    pub fn variable(mut self, name: &str, value: impl Into<String>) -> PlatformBuilder {
        self.variables.push((name.to_owned(), value.into()));
        self
    }

    /// Adds an environment variable for the converter.
    pub fn converter_env(mut self, name: &str, value: impl Into<String>) -> PlatformBuilder {
        self.converter_env.push((name.to_owned(), value.into()));
        self
    }

    pub async fn start(self) -> anyhow::Result<Platform> {
        // The components' stderr and runtime-host's request lines, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .try_init();
        let auth_db = MySqlDatabase::migrated(Service::Auth).await?;
        let gateway_db = MySqlDatabase::migrated(Service::Gateway).await?;
        let notifier_db = MySqlDatabase::migrated(Service::Notifier).await?;
        let redis = RedisNamespace::create().await?;
        let channel = unique_name("vid2mp3.job-events.test-");
        let account_channel = unique_name("vid2mp3.account-emails.test-");
        let redis_users = redis
            .service_users(&[
                (
                    vid2mp3_contracts::messages::JOB_EVENTS_CHANNEL,
                    channel.as_str(),
                ),
                (
                    vid2mp3_contracts::account_email::ACCOUNT_EMAILS_CHANNEL,
                    account_channel.as_str(),
                ),
            ])
            .await?;
        let mailbox = Mailbox::create().await?;
        let keys = TokenKeys::generate("test-key");
        // As long and varied as `openssl rand -base64 32`: both sides refuse a weak token.
        let storage_token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let storage_port = free_port()?;
        let storage_url = format!("http://127.0.0.1:{storage_port}");

        let mut converter = None;
        let mut mongo = None;
        let mut rabbit = None;
        if self.converter {
            let db = MongoDatabase::create().await?;
            let vhost = RabbitVhost::create().await?;
            let binary = target_dir().join("debug").join("vid2mp3-converter");
            if !binary.is_file() {
                anyhow::bail!(
                    "{} is not built; build it first: cargo build -p vid2mp3-converter",
                    binary.display()
                );
            }
            let log =
                std::env::temp_dir().join(format!("{}.log", unique_name("vid2mp3-converter-")));
            let mut env = vec![
                ("VID2MP3_MONGO_URL".to_owned(), db.url().to_owned()),
                ("VID2MP3_MONGO_DB".to_owned(), db.name().to_owned()),
                ("VID2MP3_AMQP_URL".to_owned(), vhost.amqp_url().to_owned()),
                (
                    "VID2MP3_REDIS_URL".to_owned(),
                    redis_users.url("converter").to_owned(),
                ),
                (
                    "VID2MP3_REDIS_KEY_PREFIX".to_owned(),
                    redis.prefix().to_owned(),
                ),
                (
                    "VID2MP3_STORAGE_LISTEN".to_owned(),
                    format!("127.0.0.1:{storage_port}"),
                ),
                ("VID2MP3_STORAGE_TOKEN".to_owned(), storage_token.clone()),
                ("VID2MP3_JOB_EVENTS_CHANNEL".to_owned(), channel.clone()),
                ("RUST_LOG".to_owned(), "info".to_owned()),
            ];
            env.extend(self.converter_env.iter().cloned());
            let mut process = ConverterProcess {
                child: None,
                binary,
                env,
                log,
                storage_url: storage_url.clone(),
                storage_token: storage_token.clone(),
            };
            process.spawn()?;
            converter = Some(process);
            mongo = Some(db);
            rabbit = Some(vhost);
        }

        // The trigger keeps spin.toml's address, `{{ notifier_redis_url }}`.
        let mut app = SpinAppBuilder::from_workspace_manifest()?
            .rename_redis_channel(vid2mp3_contracts::messages::JOB_EVENTS_CHANNEL, &channel)
            .rename_redis_channel(
                vid2mp3_contracts::account_email::ACCOUNT_EMAILS_CHANNEL,
                &account_channel,
            )
            .variable("account_emails_channel", &account_channel)
            .variable("auth_db_url", auth_db.service_url())
            .variable("gateway_db_url", gateway_db.service_url())
            .variable("notifier_db_url", notifier_db.service_url())
            .variable("mysql_host", auth_db.server_host()?)
            .variable("redis_host", redis.server_host()?)
            .variable("gateway_redis_url", redis_users.url("gateway"))
            .variable("auth_redis_url", redis_users.url("auth"))
            .variable("notifier_redis_url", redis_users.url("notifier"))
            .variable("redis_key_prefix", redis.prefix())
            .variable("token_signing_key", &keys.private_key_base64)
            .variable("token_key_id", &keys.key_id)
            .variable("token_public_keys", &keys.jwks)
            .variable("storage_url", &storage_url)
            .variable("storage_token", &storage_token)
            .variable("mail_api_url", mailbox.mailpit_url())
            // Tests hash many passwords; the cost does not change what they check.
            .variable("password_hash_memory_kib", "8192")
            .variable("password_hash_passes", "1");
        for (name, value) in &self.variables {
            app = app.variable(name, value.clone());
        }
        if let Some(limits) = self.client_limits {
            app = app.client_limits(limits);
        }
        let app = app.start().await?;
        let platform = Platform {
            app,
            keys,
            auth_db,
            gateway_db,
            notifier_db,
            redis_users,
            redis,
            mailbox,
            mongo,
            rabbit,
            converter,
            channel,
            account_channel,
        };
        if let Some(c) = &platform.converter {
            c.wait_until_healthy().await?;
        }
        Ok(platform)
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The converter, run as its real binary; killed on drop.
pub struct ConverterProcess {
    child: Option<Child>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    pub storage_url: String,
    pub storage_token: String,
}

impl ConverterProcess {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        let ready = format!("{}/readyz", self.storage_url);
        if crate::http_ok(&ready, Duration::from_secs(60))
            .await
            .is_err()
        {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            anyhow::bail!(
                "the converter did not become ready within 60 s; the end of its log ({}):\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// The running process's id, to read its memory from /proc.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The converter's log so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process gets no chance to finish or requeue anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same settings and waits until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_until_healthy().await
    }
}

impl Drop for ConverterProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The running platform and every isolated resource it uses.
pub struct Platform {
    pub app: SpinApp,
    pub keys: TokenKeys,
    pub auth_db: MySqlDatabase,
    pub gateway_db: MySqlDatabase,
    pub notifier_db: MySqlDatabase,
    /// Each service's Redis user (dropped before the namespace it is confined to).
    pub redis_users: RedisUsers,
    pub redis: RedisNamespace,
    pub mailbox: Mailbox,
    pub mongo: Option<MongoDatabase>,
    pub rabbit: Option<RabbitVhost>,
    pub converter: Option<ConverterProcess>,
    /// The Redis channel job events travel on for this test.
    pub channel: String,
    /// The Redis channel auth publishes account emails on for this test.
    pub account_channel: String,
}

/// The subject of a confirmation email (the notifier's `account_mail`).
pub const CONFIRMATION_SUBJECT: &str = "Confirm your email address";
/// How long a helper waits for a confirmation email.
const CONFIRMATION_WAIT: Duration = Duration::from_secs(30);

/// The token of the first confirmation link (`.../confirm#token=...`) in a text (an email, or
/// the link itself).
pub fn confirmation_token_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("/confirm#token=")?;
    let token: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The first confirmation link (`http...://.../confirm#token=...`) in an email's text.
pub fn confirmation_link_in(text: &str) -> Option<String> {
    let token = confirmation_token_in(text)?;
    let end = text.find("/confirm#token=")?;
    let start = text[..end].rfind("http")?;
    Some(format!("{}/confirm#token={token}", &text[start..end]))
}

impl Platform {
    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// Waits for the confirmation email to `email` (any address on this Mailpit), takes it out
    /// of Mailpit, and returns its link (`<public_base_url>/confirm#token=...`).
    pub async fn confirmation_link(&self, email: &str) -> anyhow::Result<String> {
        let mail = self
            .mailbox
            .take_message(email, CONFIRMATION_SUBJECT, CONFIRMATION_WAIT)
            .await?;
        confirmation_link_in(&mail.text)
            .with_context(|| format!("the confirmation email has no link: {}", mail.text))
    }

    /// The token of the confirmation email to `email` (taken out of Mailpit).
    pub async fn confirmation_token(&self, email: &str) -> anyhow::Result<String> {
        let link = self.confirmation_link(email).await?;
        confirmation_token_in(&link).with_context(|| format!("no token in {link}"))
    }

    /// Confirms `email` as its owner would: the link from the confirmation email, redeemed with
    /// `POST /api/v1/users/confirmation`.
    pub async fn confirm_account(&self, email: &str) -> anyhow::Result<()> {
        let token = self.confirmation_token(email).await?;
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/users/confirmation"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await?;
        let status = r.status();
        anyhow::ensure!(
            status == 200,
            "confirming {email} answered {status}: {}",
            r.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Signs `email` up (`202`) and confirms it: an account that can log in.
    pub async fn sign_up_confirmed(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/users"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await?;
        let status = r.status();
        anyhow::ensure!(
            status == 202,
            "signing up {email} answered {status}: {}",
            r.text().await.unwrap_or_default()
        );
        self.confirm_account(email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_tokens_are_found_in_an_email() {
        let text = "Hello,\n\nopen this link:\n\nhttp://127.0.0.1:3000/confirm#token=Ab-_9z\n\nWith the \
                    command-line client: vid2mp3 confirm 'http://127.0.0.1:3000/confirm#token=Ab-_9z'";
        assert_eq!(
            confirmation_link_in(text).as_deref(),
            Some("http://127.0.0.1:3000/confirm#token=Ab-_9z")
        );
        assert_eq!(confirmation_token_in(text).as_deref(), Some("Ab-_9z"));
        assert_eq!(confirmation_link_in("no link here"), None);
    }
}
