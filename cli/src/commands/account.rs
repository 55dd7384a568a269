//! signup, login, logout.

use std::io::BufRead;

use anyhow::Context as _;
use serde_json::json;

use super::Context;
use crate::cli_args::CredentialArgs;
use crate::config_store::{StoredSession, now_secs};
use crate::errors::CliError;

fn read_email(args: &CredentialArgs) -> anyhow::Result<String> {
    if let Some(e) = &args.email {
        return Ok(e.trim().to_owned());
    }
    if args.password_stdin {
        // stdin carries the password; the email cannot come from there too.
        return Err(CliError::Usage("--password-stdin needs --email EMAIL".into()).into());
    }
    eprint!("Email: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the email")?;
    let email = line.trim().to_owned();
    if email.is_empty() {
        return Err(CliError::Usage("no email given; use --email EMAIL".into()).into());
    }
    Ok(email)
}

fn read_password(args: &CredentialArgs, confirm: bool) -> anyhow::Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let no_tty = |e: std::io::Error| {
        CliError::Usage(format!(
            "cannot read the password from a terminal ({e}); pipe it in with --password-stdin"
        ))
    };
    let password = rpassword::prompt_password("Password: ").map_err(no_tty)?;
    if confirm {
        let again = rpassword::prompt_password("Password again: ").map_err(no_tty)?;
        if again != password {
            return Err(CliError::Usage("the passwords differ; nothing was created".into()).into());
        }
    }
    Ok(password)
}

pub async fn sign_up(ctx: &Context, args: &CredentialArgs) -> anyhow::Result<()> {
    let email = read_email(args)?;
    let password = read_password(args, true)?;
    let account = ctx.anonymous()?.sign_up(&email, &password).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&account);
    } else {
        ctx.out.note(&format!(
            "Account {} created; now log in: vid2mp3 login --email {email}",
            account["email"].as_str().unwrap_or(&email)
        ));
    }
    Ok(())
}

pub async fn log_in(ctx: &Context, args: &CredentialArgs) -> anyhow::Result<()> {
    let email = read_email(args)?;
    let password = read_password(args, false)?;
    let mut session = ctx.anonymous()?.log_in(&email, &password).await?;
    let token = session["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's session has no token: {session}"))?
        .to_owned();
    let expires_at = session["expires_in"].as_u64().map(|s| now_secs() + s);
    ctx.store.save(
        &ctx.server_key(),
        StoredSession {
            token,
            email: Some(email.clone()),
            expires_at,
        },
    )?;
    if ctx.out.is_json() {
        // The token stays in the credentials file: stdout ends up in logs and CI output.
        if let Some(obj) = session.as_object_mut() {
            obj.remove("token");
            obj.insert(
                "credentials_file".into(),
                json!(ctx.store.path().display().to_string()),
            );
        }
        ctx.out.json_value(&session);
    } else {
        ctx.out.note(&format!(
            "Logged in to {} as {email}; session kept in {}",
            ctx.server_key(),
            ctx.store.path().display()
        ));
    }
    Ok(())
}

pub fn log_out(ctx: &Context) -> anyhow::Result<()> {
    let had = ctx.store.remove(&ctx.server_key())?;
    if ctx.out.is_json() {
        ctx.out
            .json_value(&json!({"server": ctx.server_key(), "logged_out": had}));
    } else if had {
        ctx.out.note(&format!("Logged out of {}", ctx.server_key()));
    } else {
        ctx.out.note(&format!(
            "Not logged in to {}; nothing to do",
            ctx.server_key()
        ));
    }
    Ok(())
}
