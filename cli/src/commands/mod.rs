//! One module per group of commands; `run` dispatches.

mod account;
mod download;
mod jobs;
mod upload;
mod webhook;

use std::path::Path;

use reqwest::Certificate;
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
    /// CA certificates trusted besides the built-in roots (`--ca-cert`).
    pub extra_roots: Vec<Certificate>,
}

impl Context {
    pub fn server_key(&self) -> String {
        server_key(&self.server)
    }

    /// A client without a token (sign up, log in).
    pub fn anonymous(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(
            self.server.clone(),
            None,
            &self.extra_roots,
        )?)
    }

    /// Who is logged in to this server (their email), to keep uploads of two accounts apart.
    pub fn account_name(&self) -> anyhow::Result<String> {
        Ok(self
            .store
            .load(&self.server_key())?
            .and_then(|s| s.email)
            .unwrap_or_default())
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
        Ok(ApiClient::new(
            self.server.clone(),
            Some(session.token),
            &self.extra_roots,
        )?)
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

/// The certificates of a PEM file given with `--ca-cert` (at least one).
pub fn load_ca_certs(path: &Path) -> Result<Vec<Certificate>, CliError> {
    let pem = std::fs::read(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the CA certificates in {}: {e}",
            path.display()
        ))
    })?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a PEM file of certificates: {}",
            path.display(),
            crate::errors::ErrorChain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        server: parse_server(&cli.server)?,
        out: Output::new(cli.json),
        store: CredentialStore::in_user_config_dir()?,
        extra_roots: match &cli.ca_cert {
            Some(path) => load_ca_certs(path)?,
            None => Vec::new(),
        },
    };
    match cli.command {
        Command::Signup(args) => account::sign_up(&ctx, &args).await,
        Command::Confirm { link } => account::confirm(&ctx, &link).await,
        Command::ResendConfirmation(args) => account::send_link_again(&ctx, &args).await,
        Command::Login(args) => account::log_in(&ctx, &args).await,
        Command::Logout => account::log_out(&ctx),
        Command::Upload {
            files,
            profile,
            loudness,
            callback_url,
            wait,
            output_dir,
            no_resume,
        } => {
            let settings = upload::JobSettings {
                profile,
                loudness,
                callback_url: callback_url.as_deref(),
                fresh: no_resume,
            };
            upload::upload(&ctx, &files, settings, wait, output_dir.as_deref()).await
        }
        Command::Jobs { limit, all } => jobs::list(&ctx, limit, all).await,
        Command::Status { job } => jobs::status(&ctx, &job).await,
        Command::Delete { job } => jobs::delete(&ctx, &job).await,
        Command::DeleteAccount {
            yes,
            password_stdin,
        } => account::delete_account(&ctx, yes, password_stdin).await,
        Command::Download { job, output } => {
            download::download_command(&ctx, &job, output.as_deref()).await
        }
        Command::Webhook { action } => webhook::run(&ctx, action).await,
    }
}
