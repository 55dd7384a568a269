//! `Authorization: Basic` as `curl -u EMAIL:PASSWORD` sends it (the course's login).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `(email, password)` from a Basic header; `None` when the header is not Basic or unreadable.
pub fn parse(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    // The password may contain ':'; the user id (an email) cannot.
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_curl_sends() {
        // curl -u 'ada@example.com:pa:ss word'
        let header = format!("Basic {}", STANDARD.encode("ada@example.com:pa:ss word"));
        assert_eq!(
            parse(&header),
            Some(("ada@example.com".into(), "pa:ss word".into()))
        );
    }

    #[test]
    fn garbage_is_none() {
        for h in [
            "",
            "Basic",
            "Basic !!!",
            "Bearer abc",
            "Basic Zm9v", /* "foo", no colon */
        ] {
            assert_eq!(parse(h), None, "{h}");
        }
    }
}
