//! Account emails from auth (contracts' `account_email`): read → write → claim → send → record.
//!
//! They arrive on their own channel (the notifier's second Redis trigger) and are told from job
//! events by their `account_email` field. Unlike job events nobody redelivers them and nothing is
//! acknowledged: a message that cannot be sent now is lost, and the log line says so; the person
//! asks for another link. Every text in these emails is ours: the only things from outside are
//! the address (validated at sign-up and here) and the token (checked to be URL-safe).

use serde_json::json;
use vid2mp3_contracts::account_email::{
    ACCOUNT_EMAIL_VERSION, AccountEmail, AccountEmailKind, KIND_FIELD, confirm_link,
};

use crate::account_sent_log::{AccountSentLog, Ending};
use crate::email::{Email, escape_html};
use crate::event::is_plausible_address;
use crate::mail_api::Mailer;

/// What a confirmation token may look like in a link: base64url, a sane length.
fn is_url_safe_token(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a message on a notifier channel is an account email (rather than a job event).
pub fn is_account_email(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get(KIND_FIELD).map(|_| ()))
        .is_some()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAccountEmail {
    #[error("not an account email message: {0}")]
    Unreadable(String),
    #[error("account email version {0} is not one this notifier reads")]
    Version(u32),
    #[error("the recipient is not a usable address")]
    BadRecipient,
    #[error("the confirmation token is not URL-safe")]
    BadToken,
}

pub fn parse(bytes: &[u8]) -> Result<AccountEmail, BadAccountEmail> {
    let message: AccountEmail = serde_json::from_slice(bytes).map_err(|e| {
        // serde's message can quote the input; the token must not reach a log.
        BadAccountEmail::Unreadable(format!("line {}, column {}", e.line(), e.column()))
    })?;
    if message.version != ACCOUNT_EMAIL_VERSION {
        return Err(BadAccountEmail::Version(message.version));
    }
    if !is_plausible_address(&message.to) {
        return Err(BadAccountEmail::BadRecipient);
    }
    if let AccountEmailKind::Confirm { token, .. } = &message.kind
        && !is_url_safe_token(token)
    {
        return Err(BadAccountEmail::BadToken);
    }
    Ok(message)
}

/// `2026-11-05 14:03 UTC`.
fn utc_minute(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The email for `message`, with links under `public_base_url` (no trailing slash).
pub fn render(message: &AccountEmail, public_base_url: &str) -> Email {
    let (subject, text, html) = match &message.kind {
        AccountEmailKind::Confirm { token, expires_at } => {
            let link = confirm_link(public_base_url, token);
            let until = utc_minute(*expires_at);
            let text = format!(
                "Hello,\n\n\
                 someone, we hope you, created a vid2mp3 account with this address. To confirm \
                 that the address is yours, open this link and press \"Confirm my address\":\n\n\
                 {link}\n\n\
                 With the command-line client: vid2mp3 confirm '{link}'\n\n\
                 The link works once, until {until}. After confirming, log in with the password \
                 you chose when you signed up.\n\n\
                 If you did not sign up, ignore this email: an unconfirmed account cannot be \
                 used, and we send this address nothing else.\n\n\
                 vid2mp3\n"
            );
            let html = format!(
                "<!DOCTYPE html>\n<html><body>\n\
                 <p>Hello,</p>\n\
                 <p>someone, we hope you, created a vid2mp3 account with this address. To confirm \
                 that the address is yours, open this link and press &ldquo;Confirm my address&rdquo;:</p>\n\
                 <p><a href=\"{link}\">Confirm my email address</a></p>\n\
                 <p>With the command-line client: <code>vid2mp3 confirm '{link}'</code></p>\n\
                 <p>The link works once, until {until}. After confirming, log in with the password \
                 you chose when you signed up.</p>\n\
                 <p>If you did not sign up, ignore this email: an unconfirmed account cannot be \
                 used, and we send this address nothing else.</p>\n\
                 <p>vid2mp3</p>\n\
                 </body></html>\n",
                link = escape_html(&link),
            );
            (
                "Confirm your email address for vid2mp3".to_owned(),
                text,
                html,
            )
        }
        AccountEmailKind::AlreadyRegistered => {
            let page = format!("{public_base_url}/");
            let text = format!(
                "Hello,\n\n\
                 someone, perhaps you, tried to create a vid2mp3 account with this address, \
                 which already has one. Nothing was changed: your password is the same.\n\n\
                 To use your account, log in at {page}\n\n\
                 If it was not you, you can ignore this email.\n\n\
                 vid2mp3\n"
            );
            let html = format!(
                "<!DOCTYPE html>\n<html><body>\n\
                 <p>Hello,</p>\n\
                 <p>someone, perhaps you, tried to create a vid2mp3 account with this address, \
                 which already has one. Nothing was changed: your password is the same.</p>\n\
                 <p>To use your account, <a href=\"{page}\">log in</a>.</p>\n\
                 <p>If it was not you, you can ignore this email.</p>\n\
                 <p>vid2mp3</p>\n\
                 </body></html>\n",
                page = escape_html(&page),
            );
            ("You already have a vid2mp3 account".to_owned(), text, html)
        }
    };
    Email {
        to: message.to.clone(),
        subject,
        text,
        html,
    }
}

/// What the handler needs once the message has been read.
pub struct AccountEnv<L, M> {
    pub log: L,
    pub mailer: M,
    pub public_base_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOutcome {
    Sent,
    /// Another replica holds the claim (it sends).
    Duplicate,
    /// Refused for good by the provider.
    Rejected,
    /// The mail API could not take it: lost (the person asks for another link).
    Lost,
    /// Unreadable: dropped.
    Dropped,
    StoreError,
    Misconfigured,
}

impl AccountOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountOutcome::Sent => "sent",
            AccountOutcome::Duplicate => "duplicate",
            AccountOutcome::Rejected => "rejected",
            AccountOutcome::Lost => "lost",
            AccountOutcome::Dropped => "dropped",
            AccountOutcome::StoreError => "store-error",
            AccountOutcome::Misconfigured => "misconfigured",
        }
    }

    /// Whether the trigger should report a failure (the log line is then the error).
    pub fn is_failure(self) -> bool {
        !matches!(self, AccountOutcome::Sent | AccountOutcome::Duplicate)
    }
}

/// How one account email ended: the log line (no address, no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    pub message_id: Option<uuid::Uuid>,
    pub kind: Option<&'static str>,
    pub outcome: AccountOutcome,
    pub provider_id: Option<String>,
    pub error: Option<String>,
}

impl AccountReport {
    fn new(message: Option<&AccountEmail>, outcome: AccountOutcome) -> Self {
        AccountReport {
            message_id: message.map(|m| m.message_id),
            kind: message.map(|m| m.kind.as_str()),
            outcome,
            provider_id: None,
            error: None,
        }
    }

    pub fn log_line(&self) -> String {
        json!({
            "component": "notifier",
            "msg": "account email",
            "message_id": self.message_id.map(|id| id.to_string()),
            "kind": self.kind,
            "outcome": self.outcome.as_str(),
            "provider_id": self.provider_id,
            "error": self.error,
        })
        .to_string()
    }
}

pub fn handle<L: AccountSentLog, M: Mailer>(
    bytes: &[u8],
    env: impl FnOnce() -> Result<AccountEnv<L, M>, String>,
    new_token: impl FnOnce() -> uuid::Uuid,
) -> AccountReport {
    let message = match parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            let mut report = AccountReport::new(None, AccountOutcome::Dropped);
            report.error = Some(e.to_string());
            return report;
        }
    };
    let env = match env() {
        Ok(env) => env,
        Err(e) => {
            let mut report = AccountReport::new(Some(&message), AccountOutcome::Misconfigured);
            report.error = Some(format!("{e}; the email is lost"));
            return report;
        }
    };
    let email = render(&message, &env.public_base_url);
    let token = new_token();
    let mut report = AccountReport::new(Some(&message), AccountOutcome::Sent);
    match env.log.claim(
        message.message_id,
        message.kind.as_str(),
        &message.to,
        token,
    ) {
        Err(e) => {
            report.outcome = AccountOutcome::StoreError;
            report.error = Some(format!("{e}; the email is lost"));
            return report;
        }
        Ok(false) => {
            report.outcome = AccountOutcome::Duplicate;
            return report;
        }
        Ok(true) => {}
    }
    let (ending, provider_id, detail) = match env.mailer.send(&email) {
        Ok(accepted) => (Ending::Sent, accepted.provider_id, None),
        Err(e) if e.is_permanent() => {
            report.outcome = AccountOutcome::Rejected;
            (Ending::Rejected, None, Some(e.to_string()))
        }
        Err(e) => {
            report.outcome = AccountOutcome::Lost;
            (
                Ending::Failed,
                None,
                Some(format!(
                    "{e}; the email is lost (the person can ask for another link)"
                )),
            )
        }
    };
    report.provider_id = provider_id.clone();
    report.error = detail.clone();
    if let Err(e) = env.log.finish(
        message.message_id,
        token,
        ending,
        provider_id.as_deref(),
        detail.as_deref(),
    ) {
        let note = format!("not recorded: {e}");
        report.error = Some(match report.error.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::account_sent_log::AccountLogError;
    use crate::mail_api::{Accepted, MailApiError};

    const BASE: &str = "https://vid2mp3.example";
    const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";

    fn confirm() -> AccountEmail {
        AccountEmail {
            version: ACCOUNT_EMAIL_VERSION,
            message_id: uuid::Uuid::now_v7(),
            to: "ada@example.com".into(),
            kind: AccountEmailKind::Confirm {
                token: TOKEN.into(),
                // 2026-11-06 14:03:20 UTC
                expires_at: 1_793_973_800,
            },
        }
    }

    fn bytes(message: &AccountEmail) -> Vec<u8> {
        serde_json::to_vec(message).unwrap()
    }

    #[derive(Default)]
    struct FakeLog {
        rows: RefCell<HashMap<uuid::Uuid, (uuid::Uuid, &'static str)>>,
        down: bool,
    }

    impl AccountSentLog for &FakeLog {
        fn claim(
            &self,
            message_id: uuid::Uuid,
            _: &str,
            _: &str,
            token: uuid::Uuid,
        ) -> Result<bool, AccountLogError> {
            if self.down {
                return Err(AccountLogError::Connect("refused".into()));
            }
            let mut rows = self.rows.borrow_mut();
            let row = rows.entry(message_id).or_insert((token, "sending"));
            Ok(row.0 == token)
        }

        fn finish(
            &self,
            message_id: uuid::Uuid,
            token: uuid::Uuid,
            ending: Ending,
            _: Option<&str>,
            _: Option<&str>,
        ) -> Result<(), AccountLogError> {
            if let Some(row) = self.rows.borrow_mut().get_mut(&message_id)
                && row.0 == token
            {
                row.1 = ending.state();
            }
            Ok(())
        }
    }

    #[derive(Default)]
    struct FakeMailer {
        sent: RefCell<Vec<Email>>,
        answer: Option<MailApiError>,
    }

    impl Mailer for &FakeMailer {
        fn send(&self, email: &Email) -> Result<Accepted, MailApiError> {
            if let Some(e) = self.answer.clone() {
                return Err(e);
            }
            self.sent.borrow_mut().push(email.clone());
            Ok(Accepted {
                provider_id: Some("p1".into()),
            })
        }
    }

    fn deliver(log: &FakeLog, mailer: &FakeMailer, bytes: &[u8]) -> AccountReport {
        handle(
            bytes,
            || {
                Ok(AccountEnv {
                    log,
                    mailer,
                    public_base_url: BASE.into(),
                })
            },
            uuid::Uuid::new_v4,
        )
    }

    #[test]
    fn account_emails_are_told_from_job_events() {
        assert!(is_account_email(&bytes(&confirm())));
        assert!(!is_account_email(br#"{"version":1,"status":"done"}"#));
        assert!(!is_account_email(b"not json"));
    }

    #[test]
    fn a_confirmation_email_links_to_the_page_with_the_token_in_the_fragment() {
        let email = render(&confirm(), BASE);
        assert_eq!(email.to, "ada@example.com");
        assert_eq!(email.subject, "Confirm your email address for vid2mp3");
        let link = format!("{BASE}/confirm#token={TOKEN}");
        for part in [&email.text, &email.html] {
            assert!(part.contains(&link), "{part}");
            assert!(part.contains("2026-11-06 14:03 UTC"), "{part}");
            assert!(part.contains("vid2mp3 confirm"), "{part}");
        }
        assert!(email.html.contains(&format!("<a href=\"{link}\">")));
    }

    #[test]
    fn the_already_registered_email_has_no_link_to_confirm_and_fixed_words() {
        let message = AccountEmail {
            kind: AccountEmailKind::AlreadyRegistered,
            ..confirm()
        };
        let email = render(&message, BASE);
        assert_eq!(email.subject, "You already have a vid2mp3 account");
        assert!(email.text.contains("already has one"));
        assert!(!email.text.contains("confirm#"));
    }

    #[test]
    fn each_message_is_sent_once_even_when_delivered_twice() {
        let (log, mailer) = (FakeLog::default(), FakeMailer::default());
        let message = bytes(&confirm());
        let first = deliver(&log, &mailer, &message);
        let second = deliver(&log, &mailer, &message);
        assert_eq!(first.outcome, AccountOutcome::Sent);
        assert_eq!(second.outcome, AccountOutcome::Duplicate);
        assert_eq!(mailer.sent.borrow().len(), 1);
        assert!(!second.outcome.is_failure());
    }

    #[test]
    fn a_mail_api_outage_loses_the_email_and_says_so() {
        let log = FakeLog::default();
        let mailer = FakeMailer {
            answer: Some(MailApiError::Unreachable {
                endpoint: "http://mail".into(),
                reason: "refused".into(),
            }),
            ..FakeMailer::default()
        };
        let message = confirm();
        let report = deliver(&log, &mailer, &bytes(&message));
        assert_eq!(report.outcome, AccountOutcome::Lost);
        assert!(report.outcome.is_failure());
        assert!(report.error.unwrap().contains("another link"));
        assert_eq!(log.rows.borrow()[&message.message_id].1, "failed");
    }

    #[test]
    fn bad_messages_are_dropped_and_never_logged_with_their_token() {
        let (log, mailer) = (FakeLog::default(), FakeMailer::default());
        let mut bad_token = serde_json::to_value(confirm()).unwrap();
        bad_token["token"] = json!("a\"><script>alert(1)</script>aaaaaaaaaaaa");
        let mut bad_to = serde_json::to_value(confirm()).unwrap();
        bad_to["to"] = json!("ada@example.com\r\nBcc: all@example.com");
        let mut bad_version = serde_json::to_value(confirm()).unwrap();
        bad_version["version"] = json!(2);
        let mut unknown_kind = serde_json::to_value(confirm()).unwrap();
        unknown_kind[KIND_FIELD] = json!("password_reset");
        for value in [bad_token, bad_to, bad_version, unknown_kind] {
            let report = deliver(&log, &mailer, value.to_string().as_bytes());
            assert_eq!(report.outcome, AccountOutcome::Dropped, "{value}");
            assert!(!report.log_line().contains(TOKEN), "{}", report.log_line());
        }
        assert!(mailer.sent.borrow().is_empty());
        assert!(log.rows.borrow().is_empty());
    }

    #[test]
    fn a_database_outage_sends_nothing() {
        let log = FakeLog {
            down: true,
            ..FakeLog::default()
        };
        let mailer = FakeMailer::default();
        let report = deliver(&log, &mailer, &bytes(&confirm()));
        assert_eq!(report.outcome, AccountOutcome::StoreError);
        assert!(mailer.sent.borrow().is_empty());
    }

    #[test]
    fn the_log_line_names_no_address_and_no_token() {
        let (log, mailer) = (FakeLog::default(), FakeMailer::default());
        let report = deliver(&log, &mailer, &bytes(&confirm()));
        let line = report.log_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["msg"], "account email");
        assert_eq!(value["kind"], "confirm");
        assert_eq!(value["outcome"], "sent");
        assert!(
            !line.contains("ada@example.com") && !line.contains(TOKEN),
            "{line}"
        );
    }
}
