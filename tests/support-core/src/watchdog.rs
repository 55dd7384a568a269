//! A bound on how long a test may hold its resources. A test that waits forever (a broker that
//! blocks publishers when the disk fills, a server that never answers) would otherwise stall the
//! whole suite until CI's own limit and say nothing about why. When the bound passes, the
//! watchdog names the test, prints what the backing services last logged and how much disk is
//! left, and ends the test binary with a failure; `cargo test --no-fail-fast` goes on with the
//! next binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::workspace::workspace_root;

/// Longest a test may run, overridable with `VID2MP3_TEST_HANG_SECS`. The slowest test (100
/// concurrent uploads end to end) takes about two minutes here; a slower machine gets five times
/// that before a run counts as hung.
const DEFAULT_LIMIT: Duration = Duration::from_secs(600);

/// The exit status of a test binary ended by the watchdog (as `timeout(1)` uses).
const HUNG_EXIT_CODE: i32 = 124;

/// Lines of each service log shown when a test hangs.
const LOG_TAIL_LINES: usize = 20;

/// Disarmed when dropped, which is when the resource holding it is released.
#[derive(Debug)]
pub struct Watchdog {
    disarm: Sender<()>,
}

impl Watchdog {
    /// Arms a watchdog for the test running on this thread (libtest names the thread after the
    /// test; `#[tokio::test]` polls the test body on that same thread).
    pub fn arm() -> Watchdog {
        let limit = std::env::var("VID2MP3_TEST_HANG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(DEFAULT_LIMIT, Duration::from_secs);
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        Watchdog::arm_with(limit, test, |test, limit| {
            report_hang(&test, limit);
            std::process::exit(HUNG_EXIT_CODE);
        })
    }

    fn arm_with(
        limit: Duration,
        test: String,
        on_hang: impl FnOnce(String, Duration) + Send + 'static,
    ) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let watcher = std::thread::Builder::new()
            .name(format!("watchdog {test}"))
            .spawn(move || {
                // A disconnect is a disarm too: the handle was dropped.
                if let Err(RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                    on_hang(test, limit);
                }
            });
        if let Err(error) = watcher {
            eprintln!("could not start a test watchdog: {error}");
        }
        Watchdog { disarm }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.disarm.send(());
    }
}

fn report_hang(test: &str, limit: Duration) {
    eprintln!(
        "\nHUNG: `{test}` still held its test resources after {} s; ending this test binary \
         (raise VID2MP3_TEST_HANG_SECS if this machine is just slow).",
        limit.as_secs()
    );
    let disk = std::process::Command::new("df")
        .args(["-h", "/"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("df failed: {e}"));
    eprintln!("disk space (RabbitMQ blocks publishers when it runs low):\n{disk}");
    let logs = workspace_root().join(".data").join("logs");
    for name in [
        "rabbitmq/vid2mp3@localhost.log",
        "rabbitmq.log",
        "mongo.log",
        "mysql.log",
        "redis.log",
        "mailpit.log",
    ] {
        print_tail(&logs.join(name));
    }
}

fn print_tail(path: &Path) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    let mut tail = std::collections::VecDeque::with_capacity(LOG_TAIL_LINES);
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if tail.len() == LOG_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    eprintln!("--- last lines of {} ---", path.display());
    for line in tail {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_only_when_held_past_its_limit() {
        let (fired, hangs) = mpsc::channel();
        let held = {
            let fired = fired.clone();
            Watchdog::arm_with(Duration::from_millis(50), "held".into(), move |test, _| {
                let _ = fired.send(test);
            })
        };
        let released = Watchdog::arm_with(
            Duration::from_millis(50),
            "released".into(),
            move |test, _| {
                let _ = fired.send(test);
            },
        );
        drop(released);
        assert_eq!(
            hangs.recv_timeout(Duration::from_secs(10)).as_deref(),
            Ok("held")
        );
        // The released one never fires: both senders are gone once its thread has ended.
        drop(held);
        assert_eq!(
            hangs.recv_timeout(Duration::from_secs(1)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
