//! upload [--wait]: send each file as a resumable (tus) upload, then optionally follow the
//! job and download its mp3. An upload cut off (network, or this process killed) is resumed
//! by the next run for the same file, from the server's offset.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::ProgressBar;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use url::Url;
use vid2mp3_contracts::LoudnessTarget;

use super::Context;
use super::download::{download_to, mp3_name, require_done};
use crate::api_client::ApiClient;
use crate::cli_args::Profile;
use crate::errors::CliError;
use crate::exit_code::ExitStatus;
use crate::media_type;
use crate::progress::{conversion_bar, transfer_bar};
use crate::tus::{JobOptions, PatchError, TusClient, is_transient, upload_metadata};
use crate::upload_state::{Lookup, UploadKey, UploadRecord, UploadStateStore};

/// Big enough for throughput, small enough that the bar moves smoothly.
const READ_CHUNK: usize = 256 * 1024;
const POLL_EVERY: Duration = Duration::from_millis(500);
/// One PATCH: a failure costs at most this much to send again (the server keeps what arrived,
/// but a proxy may not pass on a cut-off body).
const PIECE_BYTES: u64 = 16 * 1024 * 1024;
/// Failed attempts in a row (no byte further) before the command gives up and says to resume.
const MAX_TRIES_WITHOUT_PROGRESS: u32 = 5;
/// Doubled after each failure, up to 16 times this.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What the job is asked to do besides converting; `None` leaves each to the server's default.
#[derive(Debug, Clone, Copy)]
pub struct JobSettings<'a> {
    pub profile: Option<Profile>,
    pub loudness: Option<LoudnessTarget>,
    /// Each job's own webhook (`--callback-url`).
    pub callback_url: Option<&'a str>,
    /// `--no-resume`: discard an interrupted upload of the same file and start over.
    pub fresh: bool,
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
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(CliError::Usage(format!("{} is not a file", path.display())).into());
    }
    let content_type = media_type::for_upload(path);
    let key = UploadKey::for_file(&ctx.server_key(), &ctx.account_name()?, path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if key.size == 0 {
        return Err(CliError::Usage(format!("{} is empty", path.display())).into());
    }
    let states = UploadStateStore::in_user_config_dir()?;
    let tus = TusClient::new(api);

    let mut upload = if settings.fresh {
        forget_earlier_upload(ctx, &tus, &states, &key, &name).await?;
        None
    } else {
        find_earlier_upload(ctx, &tus, &states, &key, &name).await?
    };
    let mut callback_secret = None;
    let (upload_url, id, mut offset) = match upload.take() {
        Some(found) => found,
        None => {
            let metadata = upload_metadata(
                &name,
                &content_type,
                JobOptions {
                    profile: settings.profile.map(Profile::as_str),
                    loudness: settings.loudness,
                    callback_url: settings.callback_url,
                },
            );
            let created = tus.create(key.size, &metadata).await?;
            // Recorded before the first byte goes out: a run killed from here on can be resumed.
            states.save(
                &key,
                &UploadRecord::new(&key, created.upload_url.as_str(), &created.id),
            )?;
            if let Some(secret) = &created.callback_secret {
                // Shown now, not at the end: the secret is never sent again, and this run may
                // be cut off before the upload is finished.
                ctx.out.note(&format!(
                    "Job {}'s callback is signed with {secret} (keep it now: it is not shown again)",
                    created.id
                ));
            }
            callback_secret = created.callback_secret;
            (created.upload_url, created.id, 0)
        }
    };

    let bar = transfer_bar(Some(key.size), &name);
    bar.set_position(offset);
    let sent = send_rest(&tus, &upload_url, path, &name, key.size, &mut offset, &bar).await;
    bar.finish_and_clear();
    if let Err(e) = sent {
        if is_refusal(&e) {
            // Refused for good (not media, too large, ...): the upload is of no use, and
            // resuming it would only be refused again.
            discard(&tus, upload_url.as_str()).await;
            states.remove(&key)?;
        } else if matches!(e, CliError::Api { status: 404, .. }) {
            states.remove(&key)?;
        }
        return Err(e.into());
    }
    let mut job = finished_job(api, &tus, &upload_url, &id, &name, key.size).await?;
    states.remove(&key)?;
    if let (Some(secret), Some(fields)) = (&callback_secret, job.as_object_mut()) {
        // `--json` printed the creation's secret with the job before uploads were resumable.
        fields
            .entry("callback_secret")
            .or_insert_with(|| Value::String(secret.clone()));
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

/// An earlier, unfinished upload of exactly this file that the server still has: its URL, id
/// and the server's offset. Anything else recorded for the file is cleared away with a note.
async fn find_earlier_upload(
    ctx: &Context,
    tus: &TusClient<'_>,
    states: &UploadStateStore,
    key: &UploadKey,
    name: &str,
) -> anyhow::Result<Option<(Url, String, u64)>> {
    let record = match states.lookup(key) {
        Lookup::None => return Ok(None),
        Lookup::Unreadable { path, reason } => {
            ctx.out.note(&format!(
                "Ignoring the unreadable upload record {} ({reason}); uploading {name} from the start",
                path.display()
            ));
            return Ok(None);
        }
        Lookup::Changed(record) => {
            ctx.out.note(&format!(
                "{name} changed since its upload was interrupted; uploading it from the start"
            ));
            discard(tus, &record.upload_url).await;
            states.remove(key)?;
            return Ok(None);
        }
        Lookup::Resumable(record) => record,
    };
    let url = Url::parse(&record.upload_url).ok();
    let progress = match &url {
        Some(url) => tus.progress(url).await?,
        None => None,
    };
    match (url, progress) {
        (Some(url), Some(p)) if p.length == key.size && p.offset <= p.length => {
            ctx.out.note(&format!(
                "Resuming {name} at {}% ({} of {})",
                percent(p.offset, key.size),
                indicatif::HumanBytes(p.offset),
                indicatif::HumanBytes(key.size)
            ));
            Ok(Some((url, record.id, p.offset)))
        }
        (url, progress) => {
            ctx.out.note(&format!(
                "The interrupted upload of {name} is gone from the server (expired or removed); uploading it from the start"
            ));
            if let (Some(_), Some(_)) = (&url, progress) {
                // Known to the server but not as this file: of no use to anyone.
                discard(tus, &record.upload_url).await;
            }
            states.remove(key)?;
            Ok(None)
        }
    }
}

/// `--no-resume`: an earlier unfinished upload of the file is terminated on the server (its
/// bytes count against the account's storage) and forgotten.
async fn forget_earlier_upload(
    ctx: &Context,
    tus: &TusClient<'_>,
    states: &UploadStateStore,
    key: &UploadKey,
    name: &str,
) -> anyhow::Result<()> {
    if let Lookup::Resumable(record) | Lookup::Changed(record) = states.lookup(key) {
        ctx.out.note(&format!(
            "Discarding the interrupted upload of {name}; uploading it from the start"
        ));
        discard(tus, &record.upload_url).await;
    }
    states.remove(key)?;
    Ok(())
}

/// Best effort: an upload nobody terminates expires on the server anyway. A piece cut off a
/// moment ago (the run before this one was killed) may still hold it (423) for a few seconds.
async fn discard(tus: &TusClient<'_>, upload_url: &str) {
    let Ok(url) = Url::parse(upload_url) else {
        return;
    };
    for _ in 0..DISCARD_TRIES {
        match tus.terminate(&url).await {
            Err(CliError::Api { status: 423, .. }) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return,
        }
    }
}

/// 423 answers a discard waits through (half a second each).
const DISCARD_TRIES: u32 = 30;

/// A refusal of the upload itself, which trying again would not change (unlike 401/403, which
/// a new log-in fixes, and 423/429, which pass).
fn is_refusal(e: &CliError) -> bool {
    matches!(e, CliError::Api { status, .. }
        if (400..500).contains(status) && !matches!(status, 401 | 403 | 404 | 423 | 429))
}

fn percent(offset: u64, len: u64) -> u64 {
    (offset.saturating_mul(100) / len.max(1)).min(100)
}

/// Sends the file from `offset` on, one piece per PATCH; after a transient failure it asks the
/// server where it stands and goes on from there, giving up after a few tries without progress.
async fn send_rest(
    tus: &TusClient<'_>,
    upload_url: &Url,
    path: &Path,
    name: &str,
    len: u64,
    offset: &mut u64,
    bar: &ProgressBar,
) -> Result<(), CliError> {
    let mut retry = Retry::new();
    // After a resume or a failure, an empty piece first: a piece cut off a moment ago may still
    // hold the upload on the server (423), and a whole piece sent into that refusal would be
    // read to its end for nothing.
    let mut probe = *offset > 0;
    while *offset < len {
        let piece = if probe {
            0
        } else {
            PIECE_BYTES.min(len - *offset)
        };
        let body = piece_body(path, *offset, piece, bar).await?;
        let failure = match tus.patch(upload_url, *offset, body, piece).await {
            Ok(same) if probe && same == *offset => {
                probe = false;
                continue;
            }
            Ok(new_offset) if new_offset > *offset && new_offset <= len => {
                *offset = new_offset;
                bar.set_position(new_offset);
                retry.progressed();
                continue;
            }
            Ok(other) => CliError::UnexpectedAnswer(format!(
                "the server answered a piece at offset {} with offset {other}",
                *offset
            )),
            Err(PatchError::Conflict { offset: Some(at) }) if at <= len => {
                // Another run of this command got further (or the server kept less): go on
                // from the server's offset.
                *offset = at;
                bar.set_position(at);
                retry.attempt(name, percent(at, len), "the server's offset differed")?;
                continue;
            }
            Err(PatchError::Conflict { .. }) => {
                CliError::UnexpectedAnswer("the server refused the upload's offset".into())
            }
            Err(PatchError::Failed(e)) if is_transient(&e) => e,
            Err(PatchError::Failed(e)) => return Err(e),
        };
        retry.attempt(name, percent(*offset, len), &failure.to_string())?;
        retry.wait().await;
        *offset = server_offset(tus, upload_url, name, len, *offset).await?;
        bar.set_position(*offset);
        probe = true;
    }
    Ok(())
}

/// The server's offset after a failure; a transient failure of the HEAD itself keeps the
/// offset we had (the next PATCH will tell).
async fn server_offset(
    tus: &TusClient<'_>,
    upload_url: &Url,
    name: &str,
    len: u64,
    ours: u64,
) -> Result<u64, CliError> {
    match tus.progress(upload_url).await {
        Ok(Some(p)) if p.length == len && p.offset <= len => Ok(p.offset),
        Ok(Some(p)) => Err(CliError::UnexpectedAnswer(format!(
            "the server says the upload of {name} is {} bytes long, the file is {len}",
            p.length
        ))),
        Ok(None) => Err(CliError::UploadInterrupted {
            name: name.to_owned(),
            percent: percent(ours, len),
            reason: "the server no longer has the upload (expired or removed); it will start over"
                .into(),
        }),
        Err(e) if is_transient(&e) => Ok(ours),
        Err(e) => Err(e),
    }
}

/// `piece` bytes of the file from `offset`, read as they are sent (never the whole piece in
/// memory); each chunk moves the bar.
async fn piece_body(
    path: &Path,
    offset: u64,
    piece: u64,
    bar: &ProgressBar,
) -> Result<reqwest::Body, CliError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))?;
    file.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let counting = bar.clone();
    let stream = ReaderStream::with_capacity(file.take(piece), READ_CHUNK).inspect(move |chunk| {
        if let Ok(c) = chunk {
            counting.inc(c.len() as u64);
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// Once every byte is on the server: the job. If the server kept the bytes but could not queue
/// the job (its answer to the last piece was lost, or a 503), the empty PATCH at the end asks
/// it to finish.
async fn finished_job(
    api: &ApiClient,
    tus: &TusClient<'_>,
    upload_url: &Url,
    id: &str,
    name: &str,
    len: u64,
) -> Result<Value, CliError> {
    let mut retry = Retry::new();
    loop {
        let failure = match api.job(id).await {
            Ok(job) => return Ok(job),
            Err(CliError::Api { status: 404, .. }) => {
                match tus
                    .patch(upload_url, len, reqwest::Body::from(Vec::new()), 0)
                    .await
                {
                    Ok(_) => {
                        // Counted too: a server that keeps saying "finished" without a job
                        // must not keep us here.
                        retry.attempt(name, 100, "the job did not appear")?;
                        continue;
                    }
                    Err(PatchError::Failed(e)) if is_transient(&e) => e,
                    Err(PatchError::Failed(e)) => return Err(e),
                    Err(PatchError::Conflict { .. }) => {
                        return Err(CliError::UnexpectedAnswer(format!(
                            "the server has not all of {name} although it said so"
                        )));
                    }
                }
            }
            Err(e) if is_transient(&e) => e,
            Err(e) => return Err(e),
        };
        retry.attempt(name, 100, &failure.to_string())?;
        retry.wait().await;
    }
}

/// Attempts without progress, and the growing pause between them.
struct Retry {
    failures: u32,
}

impl Retry {
    fn new() -> Retry {
        Retry { failures: 0 }
    }

    fn progressed(&mut self) {
        self.failures = 0;
    }

    /// Counts a failed attempt; the error that ends the upload after too many in a row.
    fn attempt(&mut self, name: &str, percent: u64, reason: &str) -> Result<(), CliError> {
        self.failures += 1;
        if self.failures > MAX_TRIES_WITHOUT_PROGRESS {
            return Err(CliError::UploadInterrupted {
                name: name.to_owned(),
                percent,
                reason: format!(
                    "{MAX_TRIES_WITHOUT_PROGRESS} tries without progress; last: {reason}"
                ),
            });
        }
        Ok(())
    }

    async fn wait(&self) {
        let exp = self.failures.saturating_sub(1).min(4);
        tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(exp)).await;
    }
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
