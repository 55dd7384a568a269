//! One line for a log from an error and its sources, as anyhow's `{:#}` prints a chain; for
//! the components and the converter, which log errors whose causes are kept as sources.

use std::error::Error;

/// `error: source: source's source`. A source whose text the line already holds is skipped:
/// some errors still quote their source in their own message (e.g. the converter's
/// `TranscodeError::Input`).
pub fn error_chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = source.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the outer step failed")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("reading failed: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn the_sources_follow_the_message() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&e), "the outer step failed: disk on fire");
    }

    #[test]
    fn a_source_the_message_already_quotes_is_not_repeated() {
        let e = Quoting(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&e), "reading failed: disk on fire");
    }
}
