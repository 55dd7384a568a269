//! Email addresses as accounts know them: validated, then normalized so one person cannot hold
//! two accounts by changing the case of their address.

use std::fmt;

/// The longest address SMTP can carry (RFC 5321: 254 octets in a path).
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an email address is required")]
    Missing,
    #[error("the email address is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("'{0}' is not an email address like name@example.com")]
    Invalid(String),
}

/// A valid address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Missing);
        }
        if trimmed.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        // Lower-casing the local part is not what RFC 5321 promises, but it is what every mail
        // provider people use does, and it is what stops "Ada@x" and "ada@x" being two accounts.
        let normalized = trimmed.to_lowercase();
        let invalid = || EmailError::Invalid(trimmed.chars().take(80).collect());
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalized,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| invalid())?;
        // A bare host ("ada@localhost") cannot receive the notification email.
        if !parsed.domain().contains('.') {
            return Err(invalid());
        }
        Ok(Email(parsed.email().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.com"
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert_eq!(Email::parse("   "), Err(EmailError::Missing));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "ada@@example.com",
            "ada lovelace@example.com",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "'; DROP TABLE users; --@example.com",
            "ada@example.com\r\nBcc: all@example.com",
        ] {
            assert!(
                matches!(Email::parse(bad), Err(EmailError::Invalid(_))),
                "{bad:?} was accepted"
            );
        }
    }
}
