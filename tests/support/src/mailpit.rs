//! A mail address of the test's own on Mailpit, and the messages that reached it.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// An address `<unique>@vid2mp3.test`; its messages are deleted from Mailpit when this drops.
#[derive(Debug)]
pub struct Mailbox {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    address: String,
    mailpit_url: String,
    client: reqwest::Client,
}

/// One message as Mailpit received it.
#[derive(Debug, Clone)]
pub struct MailMessage {
    pub id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Deserialize)]
struct SearchResult {
    messages: Vec<Summary>,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Deserialize)]
struct Address {
    #[serde(rename = "Address")]
    address: String,
}

#[derive(Deserialize)]
struct Full {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "From")]
    from: Address,
    #[serde(rename = "To")]
    to: Vec<Address>,
    #[serde(rename = "Subject")]
    subject: String,
    #[serde(rename = "Text")]
    text: String,
    #[serde(rename = "HTML")]
    html: String,
}

impl Mailbox {
    pub async fn create() -> anyhow::Result<Mailbox> {
        Mailbox::create_on(&ServiceUrls::from_env().mailpit).await
    }

    pub async fn create_on(mailpit_url: &str) -> anyhow::Result<Mailbox> {
        let mailbox = Mailbox {
            _watchdog: Watchdog::arm(),
            address: format!("{}@vid2mp3.test", unique_name("t-")),
            mailpit_url: mailpit_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        };
        mailbox
            .client
            .get(format!("{}/api/v1/info", mailbox.mailpit_url))
            .send()
            .await
            .map_err(|error| Unavailable {
                service: "Mailpit",
                script_name: "mailpit",
                address: address_of(mailpit_url),
                reason: error.to_string(),
            })?
            .error_for_status()?;
        Ok(mailbox)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Mailpit's base URL (its send API is `<url>/api/v1/send`).
    pub fn mailpit_url(&self) -> &str {
        &self.mailpit_url
    }

    /// Every message addressed to this mailbox so far, oldest first.
    pub async fn messages(&self) -> anyhow::Result<Vec<MailMessage>> {
        let found: SearchResult = self
            .client
            .get(format!("{}/api/v1/search", self.mailpit_url))
            .query(&[("query", self.query())])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut messages = Vec::with_capacity(found.messages.len());
        // Mailpit lists newest first.
        for summary in found.messages.iter().rev() {
            let full: Full = self
                .client
                .get(format!(
                    "{}/api/v1/message/{}",
                    self.mailpit_url, summary.id
                ))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            messages.push(MailMessage {
                id: full.id,
                from: full.from.address,
                to: full.to.into_iter().map(|a| a.address).collect(),
                subject: full.subject,
                text: full.text,
                html: full.html,
            });
        }
        Ok(messages)
    }

    /// Waits until at least `count` messages arrived, or fails after `timeout` saying how many did.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<MailMessage>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages().await?;
            if messages.len() >= count {
                return Ok(messages);
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} received {} message(s) within {timeout:?}, expected {count}",
                    self.address,
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn query(&self) -> String {
        format!("to:\"{}\"", self.address)
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let url = format!("{}/api/v1/search", self.mailpit_url);
        let query = self.query();
        run_to_completion(&format!("mail to {}", self.address), async move {
            reqwest::Client::new()
                .delete(url)
                .query(&[("query", query)])
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        });
    }
}
