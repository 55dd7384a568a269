//! A RabbitMQ virtual host of the test's own: queues, exchanges and their messages are invisible
//! from every other vhost, so a test may declare the real queue names (`video`, `mp3`).

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// A vhost `vid2mp3-t-<unique>` that the `guest` user may use; deleted (with everything in it)
/// when this is dropped.
#[derive(Debug)]
pub struct RabbitVhost {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    name: String,
    amqp_url: String,
    management_url: String,
}

impl RabbitVhost {
    pub async fn create() -> anyhow::Result<RabbitVhost> {
        let urls = ServiceUrls::from_env();
        RabbitVhost::create_on(&urls.amqp, &urls.rabbitmq_management).await
    }

    /// `amqp_url` is any AMQP URL of the server (its vhost is replaced); `management_url` is the
    /// management API with credentials.
    pub async fn create_on(amqp_url: &str, management_url: &str) -> anyhow::Result<RabbitVhost> {
        let name = unique_name("vid2mp3-t-");
        let mut amqp = url::Url::parse(amqp_url)?;
        amqp.set_path(&format!("/{name}"));
        let vhost = RabbitVhost {
            _watchdog: Watchdog::arm(),
            name,
            amqp_url: amqp.to_string(),
            management_url: management_url.trim_end_matches('/').to_owned(),
        };
        let client = reqwest::Client::new();
        let unavailable = |error: reqwest::Error| Unavailable {
            service: "RabbitMQ",
            script_name: "rabbitmq",
            address: address_of(management_url),
            reason: error.to_string(),
        };
        let (base, user, password) = split_credentials(&vhost.management_url)?;
        client
            .put(format!("{base}/api/vhosts/{}", vhost.name))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()?;
        client
            .put(format!("{base}/api/permissions/{}/{user}", vhost.name))
            .basic_auth(&user, Some(&password))
            .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            .send()
            .await?
            .error_for_status()?;
        Ok(vhost)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `amqp://user:password@host:port/<vhost>`.
    pub fn amqp_url(&self) -> &str {
        &self.amqp_url
    }

    /// Messages ready in `queue`, from the management API (None when the queue does not exist).
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<Option<u64>> {
        let (base, user, password) = split_credentials(&self.management_url)?;
        let response = reqwest::Client::new()
            .get(format!("{base}/api/queues/{}/{queue}", self.name))
            .basic_auth(&user, Some(&password))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: serde_json::Value = response.error_for_status()?.json().await?;
        // Freshly declared queues have no statistics until the next collection tick.
        Ok(Some(body["messages_ready"].as_u64().unwrap_or(0)))
    }

    /// Whether the vhost exists on the server.
    pub async fn exists(&self) -> anyhow::Result<bool> {
        vhost_exists(&self.management_url, &self.name).await
    }
}

async fn vhost_exists(management_url: &str, name: &str) -> anyhow::Result<bool> {
    let (base, user, password) = split_credentials(management_url)?;
    let response = reqwest::Client::new()
        .get(format!("{base}/api/vhosts/{name}"))
        .basic_auth(&user, Some(&password))
        .send()
        .await?;
    Ok(response.status().is_success())
}

/// Whether a vhost of this name exists (for tests that check cleanup).
pub async fn rabbit_vhost_exists(name: &str) -> anyhow::Result<bool> {
    vhost_exists(&ServiceUrls::from_env().rabbitmq_management, name).await
}

/// reqwest wants credentials apart from the URL.
fn split_credentials(url: &str) -> anyhow::Result<(String, String, String)> {
    let mut parsed = url::Url::parse(url)?;
    let user = match parsed.username() {
        "" => "guest".to_owned(),
        name => name.to_owned(),
    };
    let password = parsed.password().unwrap_or("guest").to_owned();
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Ok((
        parsed.as_str().trim_end_matches('/').to_owned(),
        user,
        password,
    ))
}

impl Drop for RabbitVhost {
    fn drop(&mut self) {
        let name = self.name.clone();
        let management_url = self.management_url.clone();
        run_to_completion(&format!("RabbitMQ vhost {name}"), async move {
            let (base, user, password) = split_credentials(&management_url)?;
            reqwest::Client::new()
                .delete(format!("{base}/api/vhosts/{name}"))
                .basic_auth(&user, Some(&password))
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        });
    }
}
