//! `vid2mp3-converter`: the converter sidecar's command line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use vid2mp3_converter::transcode::{
    DecodePath, FailureKind, MediaInput, Profile, TranscodeError, TranscodeOptions, transcode,
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
    },
}

/// Exit status for a failure that will not go away by retrying (not media, no audio, ...).
const EXIT_PERMANENT: u8 = 2;
/// Exit status for a failure of the environment (I/O, ffmpeg missing, timeout).
const EXIT_TRANSIENT: u8 = 3;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // symphonia's probe warns about the 4 bytes before every MP4's `ftyp`: noise.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,symphonia_core::formats::probe=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Convert {
            input,
            output,
            profile,
            ffmpeg_timeout,
            workers,
        } => {
            let mut opts = TranscodeOptions {
                profile,
                workers,
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
    println!(
        "{}: {:?} via {decoder}; {} Hz{} × {} ch, {} samples ({:.3} s), {} frames, {} bytes, {} in {:.3} s ({:.0}× realtime)",
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
    );
    Ok(())
}
