//! signup, confirm, resend-confirmation, login, logout, delete-account.

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
    let accepted = ctx.anonymous()?.sign_up(&email, &password).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&accepted);
    } else {
        let email = accepted["email"].as_str().unwrap_or(&email);
        ctx.out.note(&format!(
            "Check your inbox at {email}: open the link in the email we sent (or run \
             `vid2mp3 confirm 'LINK'`), then log in: vid2mp3 login --email {email}\n\
             No email after a few minutes? vid2mp3 resend-confirmation --email {email}"
        ));
    }
    Ok(())
}

/// The token of a confirmation link (`.../confirm#token=TOKEN`), or the argument itself when it
/// is a bare token.
pub fn token_of(link: &str) -> Result<String, CliError> {
    let link = link.trim().trim_matches(['\'', '"']);
    let token = match link.split_once("#token=") {
        Some((_, token)) => token,
        None if !link.contains(['/', ':', '#', '?']) => link,
        None => {
            return Err(CliError::Usage(
                "that is not a confirmation link: copy the whole link from the email \
                 (it ends in #token=...)"
                    .into(),
            ));
        }
    };
    let token = token.split(['&', ' ']).next().unwrap_or_default();
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CliError::Usage(
            "the link's token is cut off or changed: copy the whole link from the email".into(),
        ));
    }
    Ok(token.to_owned())
}

pub async fn confirm(ctx: &Context, link: &str) -> anyhow::Result<()> {
    let token = token_of(link)?;
    let account = ctx.anonymous()?.confirm(&token).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&account);
    } else {
        let email = account["email"].as_str().unwrap_or("your address");
        ctx.out.note(&format!(
            "Confirmed {email}; now log in: vid2mp3 login --email {email}"
        ));
    }
    Ok(())
}

pub async fn send_link_again(ctx: &Context, args: &CredentialArgs) -> anyhow::Result<()> {
    let email = read_email(args)?;
    let password = read_password(args, false)?;
    let accepted = ctx.anonymous()?.send_link_again(&email, &password).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&accepted);
    } else {
        ctx.out.note(
            accepted["message"]
                .as_str()
                .unwrap_or("if the account waits for confirmation, a new link is on its way"),
        );
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

/// Whether a confirmation answer is the word asked for.
fn confirms_deletion(answer: &str) -> bool {
    answer.trim() == "delete"
}

pub async fn delete_account(ctx: &Context, yes: bool, password_stdin: bool) -> anyhow::Result<()> {
    if password_stdin && !yes {
        return Err(CliError::Usage(
            "--password-stdin needs --yes: stdin carries the password, so it cannot answer \
             the confirmation too; nothing was deleted"
                .into(),
        )
        .into());
    }
    let client = ctx.authed()?;
    let key = ctx.server_key();
    if !yes {
        let who = ctx
            .store
            .load(&key)?
            .and_then(|s| s.email)
            .unwrap_or_else(|| "this account".into());
        eprint!(
            "This deletes {who} on {key} with every job, video and mp3; it cannot be undone.\n\
             Type 'delete' to go on: "
        );
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the confirmation")?;
        if !confirms_deletion(&line) {
            return Err(CliError::Usage(
                "not confirmed (type 'delete', or pass --yes); nothing was deleted".into(),
            )
            .into());
        }
    }
    let password = read_password(
        &CredentialArgs {
            email: None,
            password_stdin,
        },
        false,
    )?;
    client.delete_account(&password).await?;
    // The token opens nothing any more; keeping it would only make every command say so.
    ctx.store.remove(&key)?;
    if ctx.out.is_json() {
        ctx.out
            .json_value(&json!({"server": key, "account_deleted": true}));
    } else {
        ctx.out.note(&format!(
            "Deleted your account on {key} and everything of it; logged out"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_word_confirms_a_deletion() {
        assert!(confirms_deletion("delete\n"));
        assert!(confirms_deletion("  delete "));
        for no in ["", "\n", "y", "yes", "DELETE", "delete it"] {
            assert!(!confirms_deletion(no), "{no:?}");
        }
    }

    #[test]
    fn a_link_or_a_bare_token_gives_the_token() {
        let token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
        for given in [
            format!("http://127.0.0.1:3000/confirm#token={token}"),
            format!("'https://vid2mp3.example/confirm#token={token}'"),
            format!("  {token}  "),
        ] {
            assert_eq!(token_of(&given).unwrap(), token, "{given}");
        }
        for bad in [
            "http://127.0.0.1:3000/confirm",
            "http://127.0.0.1:3000/confirm#token=",
            "http://127.0.0.1:3000/confirm#token=abc<def",
        ] {
            let e = token_of(bad).unwrap_err().to_string();
            assert!(e.contains("link"), "{bad}: {e}");
        }
    }
}
