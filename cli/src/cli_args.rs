//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use vid2mp3_contracts::LoudnessTarget;
use vid2mp3_contracts::loudness::BadLoudness;

#[derive(Debug, Parser)]
#[command(
    name = "vid2mp3",
    version,
    about = "Convert videos to mp3 with a vid2mp3 server: upload, follow, download.",
    after_help = crate::exit_code::HELP_TABLE
)]
pub struct Cli {
    /// The server's base URL (http or https).
    #[arg(
        long,
        global = true,
        env = "VID2MP3_SERVER",
        default_value = "http://127.0.0.1:3000"
    )]
    pub server: String,

    /// A PEM file of CA certificates to trust for an https server, besides the built-in
    /// Mozilla roots (a private or test CA, or a self-signed server certificate).
    #[arg(long, global = true, env = "VID2MP3_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Machine-readable output: the API's JSON on stdout, messages on stderr.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// Your email address (asked for when missing).
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from the first line of stdin instead of the terminal (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Profile {
    Standard,
    Fast,
    Cbr128,
    Cbr192,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Fast => "fast",
            Profile::Cbr128 => "cbr128",
            Profile::Cbr192 => "cbr192",
        }
    }
}

/// The server checks it again; checking here names the mistake before any byte is sent.
fn parse_loudness(text: &str) -> Result<LoudnessTarget, String> {
    text.parse().map_err(|e: BadLoudness| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account. The server emails a link to confirm the address; open it (or run
    /// `vid2mp3 confirm LINK`), then log in. Until then the account cannot log in.
    Signup(CredentialArgs),
    /// Confirm your email address with the link (or its token) from the confirmation email.
    Confirm {
        /// The link from the email (http.../confirm#token=...), or the token alone.
        link: String,
    },
    /// Ask for another confirmation link (the email and password you signed up with).
    ResendConfirmation(CredentialArgs),
    /// Log in and keep the session for this server (in your config dir, mode 0600).
    Login(CredentialArgs),
    /// Forget this server's session.
    Logout,
    /// Upload videos, one after the other, as resumable uploads: if a run is cut off (network
    /// down, Ctrl-C, the process killed), run the same command again and it goes on where the
    /// server's copy ends, as long as the file is unchanged and the server still has the upload
    /// (it removes unfinished uploads a day after their last piece). Unfinished uploads are
    /// recorded (URL and file size/time, never the token) in your config dir,
    /// vid2mp3/uploads/.
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The mp3's quality profile (the server's default is standard).
        #[arg(long, value_enum)]
        profile: Option<Profile>,
        /// Level the audio to a target loudness (EBU R128): speech (-16 LUFS), music (-14),
        /// broadcast (-23) or a whole number of LUFS from -30 to -10. Default: as recorded.
        // `--loudness -20` as well as `--loudness=-20`: a target in LUFS is negative.
        #[arg(long, value_name = "TARGET", value_parser = parse_loudness, allow_negative_numbers = true)]
        loudness: Option<LoudnessTarget>,
        /// POST each job's outcome to this https URL (instead of your account's webhook,
        /// `vid2mp3 webhook set`); the signing secret is printed once per job.
        #[arg(long, value_name = "URL")]
        callback_url: Option<String>,
        /// Follow each conversion to its end and download the mp3.
        #[arg(long)]
        wait: bool,
        /// Where --wait puts the mp3s (default: the current directory).
        #[arg(short = 'o', long = "output-dir")]
        output_dir: Option<PathBuf>,
        /// Do not resume an interrupted upload of a file: discard it (on the server too) and
        /// upload the file from the start.
        #[arg(long)]
        no_resume: bool,
    },
    /// List your jobs, newest first.
    Jobs {
        /// Jobs per page (1 to 100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        /// Every page, not only the first.
        #[arg(long)]
        all: bool,
    },
    /// Show a job's status.
    Status { job: String },
    /// Download a job's mp3; an interrupted download resumes where it stopped.
    Download {
        job: String,
        /// The file (or directory) to write; default: the original's name with .mp3.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Delete a job, its video and its mp3.
    Delete { job: String },
    /// Delete your account on this server: every job, video and mp3, and the record of the
    /// emails sent to you. Asks for your password and for a confirmation; cannot be undone.
    /// An interrupted deletion is finished by running it again.
    DeleteAccount {
        /// Do not ask for a confirmation (for scripts; the password is still needed).
        #[arg(long)]
        yes: bool,
        /// Read the password from the first line of stdin instead of the terminal (for
        /// scripts; needs --yes, since stdin cannot answer the confirmation too).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Your account's webhook: an https URL the server POSTs each job's outcome to (done or
    /// failed), signed with a secret shown once when you set it.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Set (or replace) the webhook; prints the new signing secret, which is not shown again.
    /// Deliveries carry webhook-id, webhook-timestamp and webhook-signature headers
    /// (Standard Webhooks: v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">).
    Set {
        /// An https:// URL on a public address, at most 2048 bytes, without user:password@.
        url: String,
    },
    /// Show the webhook's URL (never its secret).
    Show,
    /// Remove the webhook: no more deliveries.
    Remove,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload_loudness(args: &[&str]) -> Result<Option<LoudnessTarget>, String> {
        let argv = ["vid2mp3", "upload", "talk.mp4"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Upload { loudness, .. },
                ..
            }) => Ok(loudness),
            Ok(_) => Err("not an upload".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn webhook_commands_parse() {
        let cli =
            Cli::try_parse_from(["vid2mp3", "webhook", "set", "https://h.example/x"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Webhook {
                action: WebhookAction::Set { url }
            } if url == "https://h.example/x"
        ));
        assert!(Cli::try_parse_from(["vid2mp3", "webhook", "set"]).is_err());
        assert!(Cli::try_parse_from(["vid2mp3", "webhook", "show"]).is_ok());
        assert!(Cli::try_parse_from(["vid2mp3", "webhook", "remove"]).is_ok());
    }

    #[test]
    fn loudness_takes_a_preset_or_lufs_and_names_the_choices_otherwise() {
        assert_eq!(upload_loudness(&[]), Ok(None));
        assert_eq!(
            upload_loudness(&["--loudness", "speech"]),
            Ok(Some(LoudnessTarget::SPEECH))
        );
        assert_eq!(
            upload_loudness(&["--loudness=-20"]).map(|t| t.map(LoudnessTarget::lufs)),
            Ok(Some(-20))
        );
        assert_eq!(
            upload_loudness(&["--loudness", "-20"]).map(|t| t.map(LoudnessTarget::lufs)),
            Ok(Some(-20))
        );
        let error = upload_loudness(&["--loudness", "loud"]).unwrap_err();
        assert!(error.contains("speech (-16 LUFS)"), "{error}");
    }
}
