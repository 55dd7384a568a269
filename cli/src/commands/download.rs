//! download, and the download step of `upload --wait`.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::Context;
use crate::api_client::ApiClient;
use crate::errors::CliError;
use crate::progress::transfer_bar;
use crate::resume::{self, PartCheck, Plan, ResumeError};

/// What a finished download did.
pub struct Downloaded {
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes an earlier attempt had left in the `.part` and that were kept.
    pub resumed_from: u64,
}

impl Downloaded {
    pub fn to_json(&self, job: &str) -> Value {
        json!({"id": job, "path": self.path.display().to_string(), "bytes": self.bytes, "resumed_from": self.resumed_from})
    }
}

/// `song.mkv` → `song.mp3` (the gateway names it the same way).
pub fn mp3_name(original: &str) -> String {
    let base = Path::new(original)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("download");
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    format!("{stem}.mp3")
}

fn resume_error(e: ResumeError) -> anyhow::Error {
    match e {
        ResumeError::SizeMismatch {
            path,
            got,
            expected,
        } => CliError::Incomplete {
            path: path.display().to_string(),
            got,
            expected,
        }
        .into(),
        other => other.into(),
    }
}

/// Downloads job `id`'s mp3 to `target`, resuming from `target.part` when an earlier attempt
/// at this same mp3 left one; a `.part` of anything else is deleted, never extended.
pub async fn download_to(
    api: &ApiClient,
    id: &str,
    target: &Path,
    quiet: bool,
) -> anyhow::Result<Downloaded> {
    let part = resume::part_path(target);
    let mut existing = resume::existing_len(&part);
    let mut if_range = None;
    match resume::check_part(existing, resume::read_origin(&part).as_ref(), id) {
        PartCheck::Nothing => {}
        PartCheck::Resume { etag } => if_range = Some(etag),
        PartCheck::Foreign(reason) => {
            discard(&part, existing, &reason)?;
            existing = 0;
        }
    }
    let mut response = api
        .mp3(
            id,
            resume::range_header(existing).as_deref(),
            if_range.as_deref(),
        )
        .await?;
    let mut plan = plan_of(&response, existing)?;
    let mut discarded = false;
    if let (Plan::Append { .. }, Some(ours)) = (plan, &if_range) {
        // A server that ignores If-Range could send the rest of another file: check its tag.
        let theirs = etag_of(&response);
        if theirs.as_deref() != Some(ours.as_str()) {
            discard(
                &part,
                existing,
                &format!(
                    "it was started from the mp3 with ETag {ours}, but the server now sends {}",
                    theirs.as_deref().unwrap_or("one without an ETag")
                ),
            )?;
            discarded = true;
            plan = Plan::Discard;
        }
    } else if let Plan::Restart { .. } = plan
        && existing > 0
    {
        // The answer to Range + If-Range is the whole mp3: it is not the file the .part holds
        // the beginning of (or the server does not do ranges). open_part starts it over.
        eprintln!(
            "Discarding {} ({existing} bytes): the server sent the whole mp3, not the rest (the mp3 \
             is not the file the .part was started from); downloading job {id} from the start",
            part.display()
        );
    }
    if plan == Plan::Discard {
        if !discarded {
            // 416: a .part larger than the mp3 (or the server's idea of it changed).
            discard(&part, existing, "it does not fit the mp3 on the server")?;
        }
        existing = 0;
        response = api.mp3(id, None, None).await?;
        plan = plan_of(&response, existing)?;
        if plan == Plan::Discard {
            return Err(resume_error(ResumeError::UnexpectedRange(
                "416 without a Range".into(),
            )));
        }
    }
    let (offset, total) = match plan {
        Plan::Append { offset, total } => (offset, total),
        Plan::Restart { total } => (0, total),
        Plan::Complete { total } => (total, Some(total)),
        Plan::Discard => (0, None),
    };
    let resumed_from = offset;
    if offset > 0 && !quiet {
        eprintln!("Resuming {} from byte {offset}", target.display());
    }
    let file = resume::open_part(&part, plan).map_err(resume_error)?;
    if let Plan::Restart { .. } = plan {
        // A new .part: record which file it is, so only this one is ever resumed.
        match etag_of(&response).filter(|t| resume::is_strong_etag(t)) {
            Some(etag) => resume::write_origin(
                &part,
                &resume::PartOrigin {
                    job: id.to_owned(),
                    etag,
                },
            ),
            None => resume::remove_origin(&part),
        }
        .map_err(resume_error)?;
    }
    if !matches!(plan, Plan::Complete { .. }) {
        let mut file = tokio::fs::File::from_std(file);
        let bar = transfer_bar(total, &mp3_label(target));
        if quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_position(offset);
        let mut body = response.bytes_stream();
        let mut got = offset;
        let write_err = |e: std::io::Error| anyhow::anyhow!("writing {}: {e}", part.display());
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    // Keep what arrived: the next run resumes from it.
                    file.flush().await.ok();
                    bar.abandon();
                    return Err(anyhow::Error::new(api.transfer_error(&e)).context(format!(
                        "the download broke off after {got} bytes; run the same command again to resume"
                    )));
                }
            };
            file.write_all(&chunk).await.map_err(write_err)?;
            got += chunk.len() as u64;
            bar.set_position(got);
        }
        file.flush().await.map_err(write_err)?;
        file.sync_all().await.map_err(write_err)?;
        bar.finish_and_clear();
    }
    let bytes = resume::finish(&part, target, total).map_err(resume_error)?;
    // The record is of no use without its .part; a leftover one is harmless (it is replaced
    // when the next .part starts), so failing to delete it does not fail the download.
    if let Err(e) = resume::remove_origin(&part) {
        eprintln!("warning: {e}");
    }
    Ok(Downloaded {
        path: target.to_owned(),
        bytes,
        resumed_from,
    })
}

fn mp3_label(target: &Path) -> String {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Deletes a `.part` that is not known to be the start of this mp3, saying why.
fn discard(part: &Path, len: u64, reason: &str) -> anyhow::Result<()> {
    eprintln!(
        "Discarding {} ({len} bytes): {reason}; downloading from the start",
        part.display()
    );
    resume::remove_part(part).map_err(resume_error)
}

fn etag_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

fn plan_of(r: &reqwest::Response, existing: u64) -> anyhow::Result<Plan> {
    let header = |name| {
        r.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    let content_length = header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    resume::plan(
        r.status().as_u16(),
        existing,
        header(reqwest::header::CONTENT_RANGE),
        content_length,
    )
    .map_err(resume_error)
}

/// Fails unless the job has an mp3: a failed job is exit 6, an unfinished one exit 3.
pub fn require_done(id: &str, job: &Value) -> Result<(), CliError> {
    match job["status"].as_str().unwrap_or("") {
        "done" => Ok(()),
        "failed" => Err(CliError::ConversionFailed {
            job: id.to_owned(),
            code: job["error"]["code"].as_str().unwrap_or("failed").to_owned(),
            message: job["error"]["message"]
                .as_str()
                .unwrap_or("the conversion failed")
                .to_owned(),
        }),
        other => Err(CliError::NoMp3Yet {
            job: id.to_owned(),
            status: other.to_owned(),
        }),
    }
}

pub async fn download_command(
    ctx: &Context,
    id: &str,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let api = ctx.authed()?;
    let job = api.job(id).await?;
    require_done(id, &job)?;
    let name = mp3_name(job["original_name"].as_str().unwrap_or("download"));
    let target = match output {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p.to_owned(),
        None => PathBuf::from(name),
    };
    let done = download_to(&api, id, &target, false).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&done.to_json(id));
    } else {
        ctx.out.note(&format!(
            "Saved {} ({})",
            done.path.display(),
            indicatif::HumanBytes(done.bytes)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp3_names_follow_the_original() {
        assert_eq!(mp3_name("clip.mkv"), "clip.mp3");
        assert_eq!(mp3_name("my.talk.mp4"), "my.talk.mp3");
        assert_eq!(mp3_name("noext"), "noext.mp3");
        assert_eq!(mp3_name(".hidden"), ".hidden.mp3");
        // A name from the server never leads outside the chosen directory.
        assert_eq!(mp3_name("../../etc/x.mkv"), "x.mp3");
    }

    #[test]
    fn only_done_jobs_download() {
        assert!(require_done("j", &json!({"status": "done"})).is_ok());
        assert!(matches!(
            require_done("j", &json!({"status": "converting"})),
            Err(CliError::NoMp3Yet { .. })
        ));
        assert!(matches!(
            require_done("j", &json!({"status": "failed", "error": {"code": "no_audio", "message": "m"}})),
            Err(CliError::ConversionFailed { code, .. }) if code == "no_audio"
        ));
    }
}
