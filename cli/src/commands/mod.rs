//! One module per group of commands; `run` dispatches.

mod account;
mod download;
mod jobs;
mod upload;

use url::Url;

use crate::api_client::ApiClient;
use crate::cli_args::{Cli, Command};
use crate::config_store::{CredentialStore, server_key};
use crate::errors::CliError;
use crate::output::Output;

/// What every command needs.
pub struct Context {
    pub server: Url,
    pub out: Output,
    pub store: CredentialStore,
}

impl Context {
    pub fn server_key(&self) -> String {
        server_key(&self.server)
    }

    /// A client without a token (sign up, log in).
    pub fn anonymous(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(self.server.clone(), None)?)
    }

    /// A client with this server's stored token, or "not logged in".
    pub fn authed(&self) -> anyhow::Result<ApiClient> {
        let key = self.server_key();
        let session = self
            .store
            .load(&key)?
            .ok_or_else(|| CliError::NotLoggedIn {
                server: key.clone(),
                reason: "not logged in".into(),
            })?;
        if session.is_expired() {
            return Err(CliError::NotLoggedIn {
                server: key,
                reason: "your session has expired".into(),
            }
            .into());
        }
        Ok(ApiClient::new(self.server.clone(), Some(session.token))?)
    }
}

pub fn parse_server(raw: &str) -> Result<Url, CliError> {
    let url = Url::parse(raw).map_err(|e| {
        CliError::Usage(format!(
            "'{raw}' is not a server URL ({e}); use e.g. --server https://vid2mp3.example.com"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(CliError::Usage(format!(
            "'{raw}' is not an http:// or https:// URL"
        )));
    }
    Ok(url)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        server: parse_server(&cli.server)?,
        out: Output::new(cli.json),
        store: CredentialStore::in_user_config_dir()?,
    };
    match cli.command {
        Command::Signup(args) => account::sign_up(&ctx, &args).await,
        Command::Login(args) => account::log_in(&ctx, &args).await,
        Command::Logout => account::log_out(&ctx),
        Command::Upload {
            files,
            profile,
            wait,
            output_dir,
        } => upload::upload(&ctx, &files, profile, wait, output_dir.as_deref()).await,
        Command::Jobs { limit, all } => jobs::list(&ctx, limit, all).await,
        Command::Status { job } => jobs::status(&ctx, &job).await,
        Command::Delete { job } => jobs::delete(&ctx, &job).await,
        Command::Download { job, output } => {
            download::download_command(&ctx, &job, output.as_deref()).await
        }
    }
}
