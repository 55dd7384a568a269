//! A mail address of the test's own on Mailpit, and the messages that reached it.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// An address `<unique>@vid2mp3.test`, and as many more as a test needs
/// (`<unique>.<tag>@vid2mp3.test`, [`Mailbox::address_for`]); the messages to all of them are
/// deleted from Mailpit when this drops.
#[derive(Debug)]
pub struct Mailbox {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    /// `t-<16 hex digits>`: in every address of this mailbox, and in no other.
    id: String,
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
        let id = unique_name("t-");
        let mailbox = Mailbox {
            _watchdog: Watchdog::arm(),
            address: format!("{id}@vid2mp3.test"),
            id,
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

    /// Another address of this mailbox, `<unique>.<tag>@vid2mp3.test` (the tag lower-cased, and
    /// cut to letters, digits and '-'). Its mail is not among [`Mailbox::messages`], which are
    /// the main address's; [`Mailbox::take_message`] reads it.
    pub fn address_for(&self, tag: &str) -> String {
        let tag: String = tag
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(32)
            .collect();
        format!("{}.{tag}@vid2mp3.test", self.id)
    }

    /// Mailpit's base URL (its send API is `<url>/api/v1/send`).
    pub fn mailpit_url(&self) -> &str {
        &self.mailpit_url
    }

    /// Every message addressed to this mailbox's main address so far, oldest first.
    pub async fn messages(&self) -> anyhow::Result<Vec<MailMessage>> {
        let address = self.address.clone();
        self.messages_to(&address).await
    }

    /// Every message addressed to exactly `address` (any address on this Mailpit), oldest first.
    pub async fn messages_to(&self, address: &str) -> anyhow::Result<Vec<MailMessage>> {
        let found: SearchResult = self
            .client
            .get(format!("{}/api/v1/search", self.mailpit_url))
            .query(&[("query", format!("to:\"{address}\""))])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut messages = Vec::with_capacity(found.messages.len());
        // Mailpit lists newest first; its `to:` also matches longer addresses containing this one.
        for summary in found.messages.iter().rev() {
            let message = self.message(&summary.id).await?;
            if message.to.iter().any(|a| a.eq_ignore_ascii_case(address)) {
                messages.push(message);
            }
        }
        Ok(messages)
    }

    /// Waits for a message to exactly `address` whose subject contains `subject`, deletes it
    /// from Mailpit and returns it: a helper's email (a confirmation link) is then not counted
    /// among the ones a test checks. Works for any address on this Mailpit.
    pub async fn take_message(
        &self,
        address: &str,
        subject: &str,
        timeout: Duration,
    ) -> anyhow::Result<MailMessage> {
        let deadline = Instant::now() + timeout;
        let address = address.to_lowercase();
        loop {
            let found: SearchResult = self
                .client
                .get(format!("{}/api/v1/search", self.mailpit_url))
                .query(&[("query", format!("to:\"{address}\""))])
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for summary in found.messages.iter().rev() {
                let message = self.message(&summary.id).await?;
                let to_this = message.to.iter().any(|a| a.eq_ignore_ascii_case(&address));
                if to_this && message.subject.contains(subject) {
                    self.client
                        .delete(format!("{}/api/v1/messages", self.mailpit_url))
                        .json(&serde_json::json!({"IDs": [message.id]}))
                        .send()
                        .await?
                        .error_for_status()?;
                    return Ok(message);
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "no message \"{subject}\" reached {address} within {timeout:?} \
                     (is the notifier subscribed to the account-emails channel?)"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn message(&self, id: &str) -> anyhow::Result<MailMessage> {
        let full: Full = self
            .client
            .get(format!("{}/api/v1/message/{id}", self.mailpit_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(MailMessage {
            id: full.id,
            from: full.from.address,
            to: full.to.into_iter().map(|a| a.address).collect(),
            subject: full.subject,
            text: full.text,
            html: full.html,
        })
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
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let url = format!("{}/api/v1/search", self.mailpit_url);
        // Mailpit's `to:` matches a part of an address: the id covers every address of this box.
        let query = format!("to:\"{}\"", self.id);
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
