//! upload [--wait]: stream each file to the API, then optionally follow and download.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::io::ReaderStream;
use vid2mp3_contracts::LoudnessTarget;

use super::Context;
use super::download::{download_to, mp3_name, require_done};
use crate::api_client::{ApiClient, JobOptions};
use crate::cli_args::Profile;
use crate::errors::CliError;
use crate::exit_code::ExitStatus;
use crate::media_type;
use crate::progress::{conversion_bar, transfer_bar};

/// Big enough for throughput, small enough that the bar moves smoothly.
const READ_CHUNK: usize = 256 * 1024;
const POLL_EVERY: Duration = Duration::from_millis(500);

/// What the job is asked to do besides converting; `None` leaves each to the server's default.
#[derive(Debug, Clone, Copy)]
pub struct JobSettings<'a> {
    pub profile: Option<Profile>,
    pub loudness: Option<LoudnessTarget>,
    /// Each job's own webhook (`--callback-url`).
    pub callback_url: Option<&'a str>,
}

pub async fn upload(
    ctx: &Context,
    files: &[std::path::PathBuf],
    settings: JobSettings<'_>,
    wait: bool,
    output_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let api = ctx.authed()?;
    if let Some(dir) = output_dir
        && !dir.is_dir()
    {
        return Err(CliError::Usage(format!("{} is not a directory", dir.display())).into());
    }
    // Every file is tried; the first failure decides the exit code. Only failures that doom
    // the rest too (no session, no server) stop early.
    let mut first_error: Option<anyhow::Error> = None;
    for file in files {
        match upload_one(ctx, &api, file, settings, wait, output_dir).await {
            Ok(()) => {}
            Err(e) => {
                let fatal = matches!(
                    ExitStatus::for_error(&e),
                    ExitStatus::NotLoggedIn | ExitStatus::Unavailable
                );
                let e = e.context(format!("{}", file.display()));
                if fatal || files.len() == 1 {
                    return Err(first_error.unwrap_or(e));
                }
                eprintln!("error: {e:#}");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn upload_one(
    ctx: &Context,
    api: &ApiClient,
    path: &Path,
    settings: JobSettings<'_>,
    wait: bool,
    output_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::Usage(format!("{} is not a file name", path.display())))?
        .to_owned();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(CliError::Usage(format!("{} is not a file", path.display())).into());
    }
    let len = meta.len();
    let content_type = media_type::for_upload(path);

    // The file is read in chunks as the request goes out; each chunk moves the bar.
    let bar = transfer_bar(Some(len), &name);
    let counting = bar.clone();
    let stream = ReaderStream::with_capacity(file, READ_CHUNK).inspect(move |chunk| {
        if let Ok(c) = chunk {
            counting.inc(c.len() as u64);
        }
    });
    let result = api
        .upload(
            reqwest::Body::wrap_stream(stream),
            len,
            &name,
            &content_type,
            JobOptions {
                profile: settings.profile.map(Profile::as_str),
                loudness: settings.loudness,
                callback_url: settings.callback_url,
            },
        )
        .await;
    bar.finish_and_clear();
    let job = result?;
    let id = job["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's job has no id: {job}"))?
        .to_owned();
    if let Some(secret) = job["callback_secret"].as_str()
        && !ctx.out.is_json()
    {
        ctx.out.note(&format!(
            "Job {id}'s callback is signed with {secret} (keep it now: it is not shown again)"
        ));
    }
    if !wait {
        if ctx.out.is_json() {
            ctx.out.json_value(&job);
        } else {
            ctx.out.note(&format!("Uploaded {name}: job {id} (queued)"));
            ctx.out.text(&id);
        }
        return Ok(());
    }
    ctx.out
        .note(&format!("Uploaded {name}: job {id}; converting"));
    let job = follow(api, &id, &name).await?;
    require_done(&id, &job)?;
    let target = output_dir.unwrap_or(Path::new(".")).join(mp3_name(&name));
    let done = download_to(api, &id, &target, false).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&job);
    } else {
        ctx.out.note(&format!(
            "Saved {} ({})",
            done.path.display(),
            indicatif::HumanBytes(done.bytes)
        ));
        ctx.out.text(&done.path.display().to_string());
    }
    Ok(())
}

/// Polls the job until it is done or failed, showing its progress; its last state.
async fn follow(api: &ApiClient, id: &str, name: &str) -> anyhow::Result<Value> {
    let bar = conversion_bar(name);
    loop {
        let job = api.job(id).await?;
        let percent = job["progress_percent"].as_u64().unwrap_or(0).min(100);
        bar.set_position(percent);
        match job["status"].as_str() {
            Some("done") | Some("failed") => {
                bar.finish_and_clear();
                return Ok(job);
            }
            _ => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}
