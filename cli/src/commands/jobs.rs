//! jobs, status, delete.

use serde_json::{Value, json};

use super::Context;
use crate::output::{human_bytes, jobs_table, short_time};

pub async fn list(ctx: &Context, limit: u32, all: bool) -> anyhow::Result<()> {
    let api = ctx.authed()?;
    let mut page = api.list_jobs(limit, None).await?;
    if all {
        let mut jobs: Vec<Value> = page["jobs"].as_array().cloned().unwrap_or_default();
        while let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) {
            page = api.list_jobs(limit, Some(&cursor)).await?;
            jobs.extend(page["jobs"].as_array().cloned().unwrap_or_default());
        }
        page = json!({"jobs": jobs, "next_cursor": null});
    }
    if ctx.out.is_json() {
        ctx.out.json_value(&page);
        return Ok(());
    }
    let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        ctx.out
            .note("No jobs yet; upload one: vid2mp3 upload VIDEO");
        return Ok(());
    }
    ctx.out.text(&jobs_table(&jobs));
    if page["next_cursor"].is_string() {
        ctx.out.note("(more jobs: use --all)");
    }
    Ok(())
}

pub fn describe(job: &Value) -> String {
    let s = |k: &str| job[k].as_str().unwrap_or("-").to_owned();
    let mut lines = vec![
        format!("id:        {}", s("id")),
        format!("name:      {}", s("original_name")),
        format!(
            "status:    {} ({}%)",
            s("status"),
            job["progress_percent"].as_u64().unwrap_or(0)
        ),
        format!("profile:   {}", s("profile")),
        format!(
            "video:     {}",
            human_bytes(job["video_size_bytes"].as_u64())
        ),
        format!("mp3:       {}", human_bytes(job["mp3_size_bytes"].as_u64())),
        format!("created:   {}", short_time(&s("created_at"))),
    ];
    if let Some(lufs) = job["loudness_lufs"].as_i64() {
        lines.push(format!("loudness:  levelled to {lufs} LUFS"));
    }
    if let Some(ms) = job["duration_ms"].as_u64() {
        lines.push(format!("duration:  {:.1} s", ms as f64 / 1000.0));
    }
    if let Some(e) = job["error"].as_object() {
        lines.push(format!(
            "error:     {} ({})",
            e.get("message").and_then(Value::as_str).unwrap_or("-"),
            e.get("code").and_then(Value::as_str).unwrap_or("-")
        ));
    }
    lines.join("\n")
}

pub async fn status(ctx: &Context, id: &str) -> anyhow::Result<()> {
    let job = ctx.authed()?.job(id).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&job);
    } else {
        ctx.out.text(&describe(&job));
    }
    Ok(())
}

pub async fn delete(ctx: &Context, id: &str) -> anyhow::Result<()> {
    ctx.authed()?.delete_job(id).await?;
    if ctx.out.is_json() {
        ctx.out.json_value(&json!({"id": id, "deleted": true}));
    } else {
        ctx.out.note(&format!("Deleted job {id}"));
    }
    Ok(())
}
