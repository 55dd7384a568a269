//! `runtime-host up|build`, shaped like `spin up` / `spin build`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use runtime_host::app_source::AppSource;
use runtime_host::registry::{PullOptions, default_cache_dir};
use runtime_host::{ClientLimits, UpOptions, build_command, manifest::Manifest};

#[derive(Parser)]
#[command(
    name = "runtime-host",
    version,
    about = "Run spin.toml's components on wasmtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the application's triggers.
    // Boxed: the up flags outweigh `build`'s by far (clippy::large_enum_variant).
    Up(Box<UpArgs>),
    /// Run each component's build command.
    Build {
        #[arg(
            short = 'f',
            long = "from",
            alias = "file",
            default_value = "spin.toml"
        )]
        manifest: PathBuf,
        /// Only these components (repeatable).
        #[arg(short = 'c', long = "component-id")]
        components: Vec<String>,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application: a manifest file, a directory holding spin.toml, or a registry
    /// reference (an image with /spin.toml and the components as files), as `spin up -f`.
    #[arg(
        short = 'f',
        long = "from",
        alias = "file",
        default_value = "spin.toml"
    )]
    from: String,
    /// Run only this component and its triggers (repeatable), as `spin up --component-id`.
    #[arg(short = 'c', long = "component-id")]
    component_ids: Vec<String>,
    /// Spin's runtime configuration file (variable providers, max_instance_memory).
    #[arg(long = "runtime-config-file")]
    runtime_config_file: Option<PathBuf>,
    /// Speak plain HTTP to the registry (registries on loopback always get it).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Where pulled app images are unpacked [default: $XDG_CACHE_HOME/runtime-host].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Most bytes an app image's layers may have, compressed and again unpacked.
    #[arg(long, default_value_t = 1 << 30)]
    max_pull_bytes: u64,
    /// Address of the HTTP trigger; port 0 picks a free port (logged).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Environment variable for every component, KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_parser = key_value)]
    env: Vec<(String, String)>,
    /// Application variable, name=value (repeatable); overrides SPIN_VARIABLE_<NAME>.
    #[arg(long = "variable", value_parser = key_value)]
    variables: Vec<(String, String)>,
    /// Seconds a request may go without progress (a body frame read or written) before it
    /// is stopped; a streaming upload or download may take longer in all. Per message, the
    /// whole handler's limit.
    #[arg(long, default_value_t = 60)]
    request_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 10 << 30)]
    max_request_body_bytes: u64,
    /// Largest MySQL or Redis result a component may receive, in bytes; a larger one is
    /// refused with Spin's "query result exceeds limit" error (Spin's limit: 128 MiB).
    #[arg(long, default_value_t = runtime_host::runtime::DEFAULT_MAX_RESULT_BYTES)]
    max_result_bytes: usize,
    #[command(flatten)]
    client_limits: ClientLimits,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

fn main() -> anyhow::Result<()> {
    // wasmtime builds an error ("future dropped") whenever a store is dropped, i.e. once per
    // request, and with RUST_BACKTRACE=1 in the environment std captures a backtrace for each
    // (measured: ~7 % of a hello request's host CPU). Trap logs keep the wasm backtrace, which is
    // wasmtime's own; only the host-side std capture is skipped unless asked for explicitly, and
    // panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first statement of main, before tokio or anything else has started a thread,
        // so nothing can be reading the environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Build {
            manifest,
            components,
        } => {
            let manifest = Manifest::load(&manifest)?;
            let n = build_command::build(&manifest, &components)?;
            tracing::info!(components = n, "build finished");
            Ok(())
        }
        Command::Up(args) => {
            let UpArgs {
                from,
                component_ids,
                runtime_config_file,
                insecure,
                cache_dir,
                max_pull_bytes,
                listen,
                env,
                variables,
                request_timeout_secs,
                max_request_body_bytes,
                client_limits,
                max_result_bytes,
            } = *args;
            let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
            runtime.block_on(async move {
                let mut pull = PullOptions::new(cache_dir.unwrap_or_else(default_cache_dir));
                pull.insecure = insecure;
                pull.max_bytes = max_pull_bytes;
                let manifest = AppSource::infer(&from)?.manifest_path(&pull).await?;
                let mut options = UpOptions::new(manifest);
                options.components = component_ids;
                options.runtime_config = runtime_config_file;
                options.listen = listen;
                options.env = env;
                options.variables = variables;
                options.request_timeout = Duration::from_secs(request_timeout_secs);
                options.max_request_body_bytes = max_request_body_bytes;
                options.client_limits = client_limits;
                options.max_result_bytes = max_result_bytes;
                let app = runtime_host::start(options).await?;
                if let Some(addr) = app.http_addr {
                    // A line on stdout that scripts and e2e tests can wait for.
                    println!("Serving http://{addr}");
                }
                wait_for_signal().await?;
                tracing::info!("signal received; shutting down");
                app.shutdown().await;
                Ok(())
            })
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
