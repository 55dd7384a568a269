//! The exit codes scripts rely on. Documented in `--help` and cli/README.md; changing a number
//! breaks someone's script, so they are fixed here and tested.

use crate::errors::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    Ok = 0,
    /// Usage errors and anything not covered below.
    Other = 1,
    /// Not logged in, session expired, token or password rejected (401/403).
    NotLoggedIn = 2,
    /// No such job (404), or it has no mp3 yet.
    NotFound = 3,
    /// The server refused the input (400, 409, 412, 413, 415, 416, 422).
    Refused = 4,
    /// The server or the network is unavailable (5xx, 423, 429, no connection, cut-off
    /// transfer or upload).
    Unavailable = 5,
    /// The conversion failed (reported by `upload --wait` and `download`).
    ConversionFailed = 6,
}

/// The text `--help` shows; the README has the same table.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  success
  1  usage error or other failure
  2  not logged in, session expired, token/password rejected, or address not confirmed (HTTP 401/403)
  3  job not found (HTTP 404), or it has no mp3 yet
  4  input refused by the server (HTTP 400/409/412/413/415/416/422)
  5  server or network unavailable (HTTP 5xx/423/429, no connection, transfer cut off)
  6  conversion failed (upload --wait, download)";

impl ExitStatus {
    pub fn for_http_status(status: u16) -> ExitStatus {
        match status {
            200..=299 => ExitStatus::Ok,
            401 | 403 => ExitStatus::NotLoggedIn,
            404 | 410 => ExitStatus::NotFound,
            400 | 409 | 412 | 413 | 415 | 416 | 422 => ExitStatus::Refused,
            423 | 429 | 500..=599 => ExitStatus::Unavailable,
            _ => ExitStatus::Other,
        }
    }

    pub fn for_cli_error(e: &CliError) -> ExitStatus {
        match e {
            CliError::Api { status, .. } => ExitStatus::for_http_status(*status),
            CliError::Unreachable { .. }
            | CliError::Incomplete { .. }
            | CliError::UnexpectedAnswer(_)
            | CliError::UploadInterrupted { .. } => ExitStatus::Unavailable,
            CliError::NotLoggedIn { .. } => ExitStatus::NotLoggedIn,
            CliError::ConversionFailed { .. } => ExitStatus::ConversionFailed,
            CliError::NoMp3Yet { .. } => ExitStatus::NotFound,
            CliError::Usage(_) => ExitStatus::Other,
        }
    }

    /// The first cause in the chain we know decides; a bare network error is "unavailable".
    pub fn for_error(e: &anyhow::Error) -> ExitStatus {
        for cause in e.chain() {
            if let Some(c) = cause.downcast_ref::<CliError>() {
                return ExitStatus::for_cli_error(c);
            }
            if let Some(r) = cause.downcast_ref::<reqwest::Error>() {
                return if r.is_builder() {
                    ExitStatus::Other
                } else {
                    ExitStatus::Unavailable
                };
            }
        }
        ExitStatus::Other
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_the_documented_codes() {
        let cases = [
            (200, 0),
            (202, 0),
            (204, 0),
            (400, 4),
            (401, 2),
            (403, 2),
            (404, 3),
            (409, 4),
            (412, 4),
            (413, 4),
            (415, 4),
            (416, 4),
            (422, 4),
            (423, 5),
            (429, 5),
            (500, 5),
            (502, 5),
            (503, 5),
            (504, 5),
            (418, 1),
        ];
        for (status, code) in cases {
            assert_eq!(
                ExitStatus::for_http_status(status).code(),
                code,
                "HTTP {status}"
            );
        }
    }

    #[test]
    fn client_errors_map_to_the_documented_codes() {
        let api = |status| CliError::Api {
            status,
            code: "x".into(),
            message: "m".into(),
        };
        let cases = [
            (api(401), 2),
            (api(404), 3),
            (api(415), 4),
            (api(503), 5),
            (
                CliError::Unreachable {
                    server: "s".into(),
                    reason: "r".into(),
                },
                5,
            ),
            (
                CliError::NotLoggedIn {
                    server: "s".into(),
                    reason: "r".into(),
                },
                2,
            ),
            (
                CliError::ConversionFailed {
                    job: "j".into(),
                    code: "no_audio".into(),
                    message: "m".into(),
                },
                6,
            ),
            (
                CliError::NoMp3Yet {
                    job: "j".into(),
                    status: "queued".into(),
                },
                3,
            ),
            (
                CliError::Incomplete {
                    path: "p".into(),
                    got: 1,
                    expected: 2,
                },
                5,
            ),
            (CliError::UnexpectedAnswer("a".into()), 5),
            (
                CliError::UploadInterrupted {
                    name: "n".into(),
                    percent: 40,
                    reason: "r".into(),
                },
                5,
            ),
            (CliError::Usage("u".into()), 1),
        ];
        for (e, code) in cases {
            assert_eq!(ExitStatus::for_cli_error(&e).code(), code, "{e:?}");
        }
    }

    #[test]
    fn the_code_is_found_through_anyhow_context() {
        let e = anyhow::Error::new(CliError::Api {
            status: 404,
            code: "not_found".into(),
            message: "no such job among yours".into(),
        })
        .context("showing job x");
        assert_eq!(ExitStatus::for_error(&e), ExitStatus::NotFound);
        assert_eq!(
            ExitStatus::for_error(&anyhow::anyhow!("something else")),
            ExitStatus::Other
        );
    }

    #[test]
    fn the_help_table_lists_every_code() {
        for code in 0..=6 {
            assert!(HELP_TABLE.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
