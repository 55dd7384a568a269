//! `vid2mp3-converter`: the converter sidecar's command line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use vid2mp3_converter::config::{Config, parse_roles};
use vid2mp3_converter::service;
use vid2mp3_converter::transcode::{
    DecodePath, FailureKind, Id3Version, LoudnessTarget, MediaInput, Profile, TagOptions,
    TranscodeError, TranscodeOptions, transcode,
};

#[derive(Parser)]
#[command(
    name = "vid2mp3-converter",
    version,
    about = "The vid2mp3 converter sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a local video or audio file to mp3 with the production pipeline.
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// standard (VBR V2, q5), fast (VBR V2, q7), cbr128 or cbr192.
        #[arg(long, default_value = "standard")]
        profile: Profile,
        /// Wall-clock limit for the ffmpeg fallback decoder, in seconds.
        #[arg(long, default_value_t = 600)]
        ffmpeg_timeout: u64,
        /// LAME instances at once (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Level to a target loudness (EBU R128): speech (-16 LUFS), music (-14), broadcast
        /// (-23) or whole LUFS from -30 to -10; true peak at most -1 dBTP.
        // `--loudness -20` as well as `--loudness=-20`: a target in LUFS is negative.
        #[arg(long, value_name = "TARGET", allow_negative_numbers = true)]
        loudness: Option<LoudnessTarget>,
        /// The ID3v2 version of the tag: 2.4, or 2.3 for players that read nothing newer.
        #[arg(long, default_value = "2.4", value_name = "VERSION")]
        id3_version: Id3Version,
        /// No cover from a video frame (a picture the source carries is still used).
        #[arg(long)]
        no_frame_cover: bool,
    },
    /// Run the service: storage API, video worker and event relay (configured from VID2MP3_*).
    Serve {
        /// Which roles this process runs (comma-separated): storage, worker, relay, webhook.
        #[arg(
            long,
            env = "VID2MP3_ROLES",
            default_value = "storage,worker,relay,webhook"
        )]
        roles: String,
    },
}

/// Exit status for a failure that will not go away by retrying (not media, no audio, ...).
const EXIT_PERMANENT: u8 = 2;
/// Exit status for a failure of the environment (I/O, ffmpeg missing, timeout).
const EXIT_TRANSIENT: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve { roles } = &cli.command {
        return serve(roles);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // symphonia's probe warns about the 4 bytes before every MP4's `ftyp`: noise.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,symphonia_core::formats::probe=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { .. } => ExitCode::FAILURE,
        Command::Convert {
            input,
            output,
            profile,
            ffmpeg_timeout,
            workers,
            loudness,
            id3_version,
            no_frame_cover,
        } => {
            let mut opts = TranscodeOptions {
                profile,
                workers,
                loudness,
                tags: TagOptions {
                    version: id3_version,
                    frame_cover: !no_frame_cover,
                    file_name: input.file_name().map(|n| n.to_string_lossy().into_owned()),
                },
                ..TranscodeOptions::default()
            };
            opts.ffmpeg.timeout = Duration::from_secs(ffmpeg_timeout);
            match convert(&input, &output, &opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let kind = e.downcast_ref::<TranscodeError>().map(TranscodeError::kind);
                    let code = e
                        .downcast_ref::<TranscodeError>()
                        .map_or("io", TranscodeError::code);
                    eprintln!("error [{code}]: {e:#}");
                    match kind {
                        Some(FailureKind::Permanent) => ExitCode::from(EXIT_PERMANENT),
                        _ => ExitCode::from(EXIT_TRANSIENT),
                    }
                }
            }
        }
    }
}

/// `serve`: logs one line per request and per job, stops gracefully on SIGTERM or SIGINT.
fn serve(roles: &str) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new("info,symphonia_core::formats::probe=error,lapin=warn,mongodb=warn")
        }))
        .with_writer(std::io::stderr)
        .init();
    let result = (|| -> anyhow::Result<()> {
        let mut config = Config::from_env()?;
        config.roles = parse_roles(roles)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(async move {
            let running = service::start(config).await?;
            let shutdown = running.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stop signal received; shutting down gracefully");
                shutdown.cancel();
            });
            running.wait().await
        })
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "serve failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers only Ctrl-C through tokio's own handler is left.
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Converts into `OUTPUT.partial` and renames on success, so a failed run leaves no mp3 behind.
fn convert(input: &Path, output: &Path, opts: &TranscodeOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut media = MediaInput::open_file(input)
        .map_err(TranscodeError::Input)
        .with_context(|| format!("opening {}", input.display()))?;
    let mut partial_name = output.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let mut file = fs::File::create(&partial)
        .map_err(TranscodeError::Output)
        .with_context(|| format!("creating {}", partial.display()))?;
    let report = match transcode(&mut media, &mut file, opts) {
        Ok(r) => r,
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    drop(file);
    fs::rename(&partial, output)
        .map_err(TranscodeError::Output)
        .with_context(|| format!("renaming to {}", output.display()))?;
    let decoder = match &report.decoder {
        DecodePath::Native { codec } => format!("native {codec}"),
        DecodePath::Ffmpeg { reason } => format!("ffmpeg ({reason})"),
    };
    let wall = started.elapsed().as_secs_f64();
    let levelled = match &report.levelling {
        Some(l) => format!(
            "; loudness {:.1} LUFS, true peak {:.1} dBTP, gain {:+.1} dB{} (target {})",
            l.measured.integrated_lufs,
            l.measured.true_peak_dbtp,
            l.gain_db,
            match l.limited_by {
                Some(limit) => format!(", limited by {limit:?}"),
                None => String::new(),
            },
            l.target
        ),
        None => String::new(),
    };
    println!(
        "{}: {:?} via {decoder}; {} Hz{} × {} ch, {} samples ({:.3} s), {} frames, {} bytes, {} in {:.3} s ({:.0}× realtime); {}{levelled}",
        output.display(),
        report.container,
        report.sample_rate,
        if report.sample_rate == report.source_rate {
            String::new()
        } else {
            format!(" (from {} Hz)", report.source_rate)
        },
        report.channels,
        report.samples,
        report.duration_secs(),
        report.frames,
        report.bytes,
        opts.profile,
        wall,
        report.duration_secs() / wall.max(1e-9),
        report.tag,
    );
    Ok(())
}
