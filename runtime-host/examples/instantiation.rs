//! How long runtime-host takes to give a request its fresh instance: a measurement, not a test.
//!
//!   cargo run --release -p runtime-host --example instantiation -- [WASM] [ITERATIONS]
//!
//! Loads WASM (default: the http-probe fixture in the target dir) with the same engine, pooling
//! allocator and linker as `runtime-host up`, then, one after another, builds a store plus an
//! HTTP instance and drops them, ITERATIONS times (default 20000, after 1000 unmeasured). Prints
//! percentiles and a histogram of store + instantiate (what a request waits for before its
//! handler runs) and of the drop (paid after the response, returning the slots to the pool).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use runtime_host::manifest::Manifest;
use runtime_host::runtime::{InstantiationTiming, Runtime, RuntimeConfig};

const WARMUP: usize = 1000;

fn default_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip2/component/fixture_http_probe.wasm")
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let wasm = args.next().map(PathBuf::from).unwrap_or_else(default_wasm);
    let iterations: usize = match args.next() {
        Some(n) => n.parse().with_context(|| format!("{n:?} is not a count"))?,
        None => 20_000,
    };
    anyhow::ensure!(iterations > 0, "ITERATIONS must be positive");
    let wasm = wasm
        .canonicalize()
        .with_context(|| format!("{}: build it with scripts/build-components", wasm.display()))?;
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"instantiation\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n\
         [component.probe]\nsource = {:?}\n",
        wasm.display().to_string()
    );
    let dir = std::env::temp_dir();
    let manifest = Manifest::parse(&text, &dir.join("spin.toml"), &dir)?;
    let runtime = Runtime::load(&manifest, RuntimeConfig::default(), |_| None)?;
    let component = runtime
        .component("probe")
        .cloned()
        .context("the manifest's component is missing")?;

    // One worker thread: the figure is the cost of one instantiation, not of contention.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timings = tokio.block_on(measure(&runtime, &component, iterations))?;

    let mut ready: Vec<Duration> = timings.iter().map(|t| t.store + t.instantiate).collect();
    let mut instantiate: Vec<Duration> = timings.iter().map(|t| t.instantiate).collect();
    let mut store: Vec<Duration> = timings.iter().map(|t| t.store).collect();
    let mut dropped: Vec<Duration> = timings.iter().map(|t| t.drop).collect();
    println!(
        "{iterations} instantiations of {} (pooling allocator, {WARMUP} warm-up runs not counted)",
        wasm.display()
    );
    println!(
        "{:<26} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "µs", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    for (name, values) in [
        ("store + instantiate", &mut ready),
        ("  store (host state)", &mut store),
        ("  instantiate", &mut instantiate),
        ("drop (after response)", &mut dropped),
    ] {
        values.sort_unstable();
        let mean = values.iter().sum::<Duration>() / u32::try_from(values.len()).unwrap_or(1);
        println!(
            "{name:<26} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            micros(percentile(values, 0.50)),
            micros(percentile(values, 0.90)),
            micros(percentile(values, 0.99)),
            micros(percentile(values, 0.999)),
            micros(percentile(values, 1.0)),
            micros(mean),
        );
    }
    println!("histogram of store + instantiate:");
    histogram(&ready);
    Ok(())
}

async fn measure(
    runtime: &Arc<Runtime>,
    component: &Arc<runtime_host::runtime::LoadedComponent>,
    iterations: usize,
) -> anyhow::Result<Vec<InstantiationTiming>> {
    let mut timings = Vec::with_capacity(iterations);
    for i in 0..WARMUP + iterations {
        let timing = runtime.time_http_instantiation(component).await?;
        if i >= WARMUP {
            timings.push(timing);
        }
    }
    Ok(timings)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Counts per power-of-two microsecond bucket, with a bar scaled to the largest bucket.
fn histogram(sorted: &[Duration]) {
    let mut buckets: Vec<(u64, usize)> = Vec::new();
    for d in sorted {
        let upper = (d.as_micros() as u64 + 1).next_power_of_two();
        match buckets.last_mut() {
            Some((u, n)) if *u == upper => *n += 1,
            _ => buckets.push((upper, 1)),
        }
    }
    let widest = buckets.iter().map(|(_, n)| *n).max().unwrap_or(1);
    let mut below = 0;
    for (upper, n) in buckets {
        below += n;
        let bar = "#".repeat((n * 50).div_ceil(widest));
        println!(
            "  < {upper:>6} µs {n:>7} {:>6.2}% cum {bar}",
            100.0 * below as f64 / sorted.len() as f64
        );
    }
}
