//! A value that must never reach a log (a password, a token, a URL with a password in it).

use std::fmt;

/// `Debug` prints a placeholder and there is no `Display`, so a secret cannot end up in a log line
/// or an error message by accident; [`Secret::expose`] is the one way to its text, at the place
/// that sends it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("mysql://gateway:hunter2@db/vid2mp3_gateway");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
        assert_eq!(
            secret.expose(),
            "mysql://gateway:hunter2@db/vid2mp3_gateway"
        );
        assert!(!secret.is_empty());
        assert!(Secret::default().is_empty());
    }
}
