//! Sends the email for each finished job, delivered by the converter's relay over Redis.
//!
//! The relay publishes each `JobEvent` (contracts) on `vid2mp3.job-events` and acks its AMQP
//! message only once this component has written the event's delivery ack; until then it
//! republishes. So each event is delivered at least once, and [`handle`] makes sure it is emailed
//! at most once per job and outcome: [`event`] reads it, [`email`] writes the email,
//! [`sent_log`] claims and records it in MySQL, [`mail_api`] sends it, [`delivery_ack`] tells
//! the relay. [`config`] reads the Spin variables.
//!
//! Account emails from auth (confirmation links) arrive on a second channel, told apart by their
//! `account_email` field: [`account_mail`] writes and sends them, [`account_sent_log`] makes sure
//! each goes out once. Erasures (an account was deleted) arrive on that channel too:
//! [`account_erasure`] removes the rows that name the address and acks to auth.

mod account_erasure;
mod account_mail;
mod account_sent_log;
mod config;
mod delivery_ack;
mod email;
mod event;
mod handle;
mod mail_api;
mod sent_log;

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    handle_message(&message)
}

/// Handles one message from either channel, with the settings from this instance's Spin
/// variables: the component's whole behaviour, which the export above hands every message to.
pub fn handle_message(message: &[u8]) -> anyhow::Result<()> {
    if vid2mp3_contracts::account_erasure::is_erasure(message) {
        let config = config::load(|name| spin_sdk::variables::get(name).map_err(|e| e.to_string()))
            .map_err(|e| anyhow::anyhow!("notifier: erasure: {e}"))?;
        let line = account_erasure::handle(
            message,
            config.db_url.expose(),
            config.redis_url.expose(),
            &config.redis_key_prefix,
        )
        // The host gets this as text (a WIT error string), so the chain is flattened here.
        .map_err(|e| {
            anyhow::anyhow!(
                "notifier: erasure failed: {}",
                vid2mp3_contracts::error_chain(&e)
            )
        })?;
        println!("{line}");
        return Ok(());
    }
    if account_mail::is_account_email(message) {
        let report = account_mail::handle(
            message,
            || {
                let config =
                    config::load(|name| spin_sdk::variables::get(name).map_err(|e| e.to_string()))
                        .map_err(|e| e.to_string())?;
                Ok(account_mail::AccountEnv {
                    log: account_sent_log::MySqlAccountLog::new(config.db_url.expose()),
                    mailer: mail_api::HttpMailer { api: config.mail },
                    public_base_url: config.public_base_url,
                })
            },
            uuid::Uuid::new_v4,
        );
        if report.outcome.is_failure() {
            anyhow::bail!(report.log_line())
        }
        println!("{}", report.log_line());
        return Ok(());
    }
    let report = handle::handle(
        message,
        || {
            let config =
                config::load(|name| spin_sdk::variables::get(name).map_err(|e| e.to_string()))
                    .map_err(|e| e.to_string())?;
            Ok(handle::Env {
                sent_log: sent_log::MySqlSentLog::new(config.db_url.expose()),
                mailer: mail_api::HttpMailer { api: config.mail },
                acks: delivery_ack::RedisAcks::new(
                    config.redis_url.expose(),
                    &config.redis_key_prefix,
                ),
                public_base_url: config.public_base_url,
            })
        },
        uuid::Uuid::new_v4,
    );
    if report.needs_redelivery() {
        // The relay redelivers because no ack was written, not because of this error; it only
        // tells the host that the message failed. spin-sdk prints the error to stderr, so the
        // log line is the error's text: still one line per event.
        anyhow::bail!(report.log_line())
    }
    println!("{}", report.log_line());
    Ok(())
}
