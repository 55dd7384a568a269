//! The public API fuzzed from its own OpenAPI document: schemathesis (PyPI, installed with the
//! project's Python tools from `scripts/install.list`) reads the document the platform
//! serves at `/api/v1/openapi.json`, generates requests for every operation, signed in as a real
//! user, and checks every answer: never a 5xx, and each status, content type, header and body as
//! the document says. Generation is deterministic and bounded in examples; the run is bounded in
//! time.
//!
//! Two runs: every operation with generated data (a generated job id is an unknown job), then
//! the operations on one job with the id of a real, converted job, so status and mp3 downloads
//! (with generated `Range` and `If-Range`) reach the code behind the 404.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{platform_with_user, upload_raw, wait_for_end};
use tokio::io::AsyncReadExt;
use vid2mp3_test_support::PlatformBuilder;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, make_mkv};

/// Test cases per operation in the fuzzing phase (the examples and coverage phases add a fixed
/// set per operation); `VID2MP3_FUZZ_MAX_EXAMPLES` raises it for a deeper run by hand. The cost
/// of the whole test is in docs/benchmarks.md.
const MAX_EXAMPLES: &str = "25";
/// Each schemathesis run; past it the run is killed and the test fails.
const TIME_LIMIT: Duration = Duration::from_secs(150);

/// What the suite checks (schemathesis names): no server error, and answers as documented.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// schemathesis in the project's virtualenv (`VID2MP3_VENV`, else `~/.cache/vid2mp3/venv`, as in
/// scripts/lib/common.sh).
fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("VID2MP3_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                        .join(".cache")
                });
            cache.join("vid2mp3").join("venv")
        });
    let binary = venv.join("bin").join("schemathesis");
    assert!(
        binary.is_file(),
        "{} is missing: install the project's Python tools (scripts/install test, which \
         scripts/test runs; they are pinned in scripts/install.list)",
        binary.display()
    );
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_every_generated_request_as_its_openapi_document_says() {
    let binary = schemathesis();
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let schema = p.url("/api/v1/openapi.json");

    run(&binary, &schema, &token, None, &[]).await;

    // A real job, converted, for the operations that take a job id.
    let scratch = Scratch::new();
    let video = scratch.path("fuzzed.mkv");
    make_mkv(&video, 2);
    let job = upload_raw(&p, &token, &video, "video/x-matroska").await;
    let id = job["id"].as_str().expect("the job's id").to_owned();
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(90)).await;
    assert_eq!(seen.last().expect("a state")["status"], "done");
    let config = scratch.path("schemathesis.toml");
    std::fs::write(&config, format!("[parameters]\n\"path.id\" = \"{id}\"\n"))
        .expect("schemathesis.toml");
    // Not DELETE: it would leave every later case a 404 (the first run covers its answers).
    run(
        &binary,
        &schema,
        &token,
        Some(&config),
        &[
            "--include-path-regex",
            r"^/api/v1/jobs/\{id\}",
            "--exclude-method",
            "DELETE",
        ],
    )
    .await;
    // The job the run was pointed at is still there and still whole.
    let (status, body) = common::job(&p, &token, &id).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")));
}

/// One schemathesis run that must pass; its summary goes to the test's output either way.
async fn run(binary: &Path, schema: &str, token: &str, config: Option<&Path>, extra: &[&str]) {
    let max_examples =
        std::env::var("VID2MP3_FUZZ_MAX_EXAMPLES").unwrap_or_else(|_| MAX_EXAMPLES.to_owned());
    let started = Instant::now();
    let mut command = tokio::process::Command::new(binary);
    if let Some(config) = config {
        command.arg("--config-file").arg(config);
    }
    command
        .arg("run")
        .arg(schema)
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &max_examples])
        // Generated the same way every run, and no example database kept between runs. Which
        // cases run can still vary a little: schemathesis reuses ids from the answers it gets.
        .arg("--generation-deterministic")
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--no-color", "--output-truncate", "false"])
        .args(extra)
        // Nothing of it lands in the checkout.
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let read_out = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let read_err = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let status = match tokio::time::timeout(TIME_LIMIT, child.wait()).await {
        Ok(status) => status.expect("waiting for schemathesis"),
        Err(_) => {
            let _ = child.kill().await;
            let out = read_out.await.unwrap_or_default();
            panic!(
                "schemathesis did not finish within {TIME_LIMIT:?}; what it printed:\n{}",
                tail(&out, 80)
            );
        }
    };
    let out = read_out.await.unwrap_or_default();
    let err = read_err.await.unwrap_or_default();
    eprintln!(
        "schemathesis {extra:?} took {:.1} s (--max-examples {max_examples}); its summary:\n{}",
        started.elapsed().as_secs_f64(),
        tail(&out, 40)
    );
    assert!(
        status.success(),
        "schemathesis failed ({status}; 1: it found answers the OpenAPI document does not allow, \
         2: it was called wrongly):\n{}\n{}",
        tail(&out, 200),
        tail(&err, 40)
    );
    // A run that tested nothing would also exit 0.
    assert!(
        out.contains(" passed") && !out.contains("Tested: 0"),
        "schemathesis ran no tests:\n{}",
        tail(&out, 60)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
