//! A server process of the test's own — a SecantusDB (MongoDB wire protocol) or a RabbitMQ node —
//! on free loopback ports with a data directory of its own, which the test may stop, kill and
//! start again on the same port and data. "The server went away mid-run" is tested this way
//! without touching the shared services that other tests (and other people) use at the same time.
//!
//! The process runs in a process group of its own, so a stop reaches the helpers a server starts
//! (RabbitMQ's shell wrapper, the Erlang VM and its port programs), and a stop waits until every
//! process of the group is gone, not just the leader: RabbitMQ's wrapper script dies first and
//! leaves the VM to exit a moment later. A RabbitMQ node gets an epmd (Erlang's port mapper) of
//! its own, which this handle starts and owns: one the node started itself would daemonize out of
//! reach and outlive the test. Dropping the handle kills the group, then the epmd, and removes
//! the data directory; nothing the test started is left running.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::unique_name;
use crate::watchdog::Watchdog;

/// How long a server may take to answer after it was started. RabbitMQ boots in ~10 s on this
/// 2-core machine while a build runs beside it; the bound is several times that.
const START_LIMIT: Duration = Duration::from_secs(90);
/// How long a graceful stop may take before the group is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How long the rest of a process group may take to exit once it was killed (the init process
/// reaps what the leader left behind).
const GROUP_EXIT_LIMIT: Duration = Duration::from_secs(10);
/// How long epmd may take to listen.
const EPMD_START_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SecantusDb,
    RabbitMq,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SecantusDb => "SecantusDB",
            Kind::RabbitMq => "RabbitMQ",
        }
    }
}

/// A private server. See the module documentation.
#[derive(Debug)]
pub struct PrivateServer {
    /// Bounds the test that holds this server, like every other test resource.
    _watchdog: Watchdog,
    kind: Kind,
    port: u16,
    dir: PathBuf,
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    /// RabbitMQ: the epmd its node registers with, and its port. It runs for the handle's whole
    /// life, across stops and starts of the node, as a host's epmd outlives its nodes.
    epmd: Option<(u16, Child)>,
    child: Option<Child>,
}

impl PrivateServer {
    /// A SecantusDB (the MongoDB-wire server `scripts/services` runs), started and answering.
    /// The executable is `VID2MP3_SECANTUSD`, else `secantusd-py` in the tools venv that
    /// `scripts/services install` made (`VID2MP3_VENV`, as in `scripts/lib/common.sh`).
    pub async fn secantus() -> anyhow::Result<PrivateServer> {
        let program = secantusd()?;
        let [port] = free_ports::<1>()?;
        let dir = private_dir("secantus")?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let args = [
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--storage-path",
        ]
        .into_iter()
        .map(OsString::from)
        .chain([data.into_os_string()])
        .chain(["--log-level", "WARNING"].map(OsString::from))
        .collect();
        let mut server = PrivateServer {
            _watchdog: Watchdog::arm(),
            kind: Kind::SecantusDb,
            port,
            dir,
            program,
            args,
            envs: Vec::new(),
            epmd: None,
            child: None,
        };
        server.start().await?;
        Ok(server)
    }

    /// A RabbitMQ node of its own: its own node name, AMQP, distribution and epmd ports (and
    /// epmd process), mnesia directory and HOME (hence Erlang cookie); no plugins (no management
    /// API), default vhost `/` with the `guest` user. Started and answering AMQP.
    pub async fn rabbitmq() -> anyhow::Result<PrivateServer> {
        let program = std::env::var_os("VID2MP3_RABBITMQ_SERVER").map_or_else(
            || "/usr/lib/rabbitmq/bin/rabbitmq-server".into(),
            PathBuf::from,
        );
        anyhow::ensure!(
            program.is_file(),
            "{} is not installed; run `scripts/services install`",
            program.display()
        );
        let [port, dist_port, epmd_port] = free_ports::<3>()?;
        let dir = private_dir("rabbitmq")?;
        let home = dir.join("home");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        std::fs::write(dir.join("rabbitmq.conf"), "")?;
        std::fs::write(dir.join("rabbitmq-env.conf"), "")?;
        let node = format!("{}@localhost", unique_name("vid2mp3-t-"));
        let path = |p: &str| dir.join(p).into_os_string();
        let envs = vec![
            ("HOME".to_owned(), home.into_os_string()),
            ("RABBITMQ_NODENAME".to_owned(), node.into()),
            ("RABBITMQ_NODE_IP_ADDRESS".to_owned(), "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT".to_owned(), port.to_string().into()),
            (
                "RABBITMQ_DIST_PORT".to_owned(),
                dist_port.to_string().into(),
            ),
            ("ERL_EPMD_ADDRESS".to_owned(), "127.0.0.1".into()),
            ("ERL_EPMD_PORT".to_owned(), epmd_port.to_string().into()),
            (
                "RABBITMQ_CONF_ENV_FILE".to_owned(),
                path("rabbitmq-env.conf"),
            ),
            ("RABBITMQ_CONFIG_FILE".to_owned(), path("rabbitmq.conf")),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE".to_owned(),
                path("enabled_plugins"),
            ),
            ("RABBITMQ_MNESIA_BASE".to_owned(), path("mnesia")),
            ("RABBITMQ_LOG_BASE".to_owned(), path("log")),
            ("RABBITMQ_PID_FILE".to_owned(), path("rabbitmq.pid")),
        ];
        // Held by the handle from here on, so an epmd that fails to start is still cleaned up.
        let mut server = PrivateServer {
            _watchdog: Watchdog::arm(),
            kind: Kind::RabbitMq,
            port,
            dir,
            program,
            args: Vec::new(),
            envs,
            epmd: None,
            child: None,
        };
        server.epmd = Some((epmd_port, start_epmd(epmd_port, &server.dir)?));
        crate::listening(&format!("127.0.0.1:{epmd_port}"), EPMD_START_LIMIT)
            .await
            .map_err(|e| anyhow::anyhow!("the private epmd on port {epmd_port}: {e}"))?;
        server.start().await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// RabbitMQ: the port of the node's own epmd.
    pub fn epmd_port(&self) -> Option<u16> {
        self.epmd.as_ref().map(|(port, _)| *port)
    }

    /// The server's own directory (data, logs); removed with the handle.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The id of the running server's process group (its leader's pid), while it runs.
    pub fn process_group(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The client URL: `mongodb://127.0.0.1:PORT` or `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::SecantusDb => format!("mongodb://127.0.0.1:{}", self.port),
            Kind::RabbitMq => format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port),
        }
    }

    /// Whether the process is running (it may not answer yet).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the server (again: same port, same data) and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.is_running(),
            "{} is running already",
            self.kind.name()
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {} ({}): {e}",
                    self.kind.name(),
                    self.program.display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if self.answers().await {
                return Ok(());
            }
            if !self.is_running() {
                anyhow::bail!(
                    "{} exited while starting; its log ends:\n{}",
                    self.kind.name(),
                    tail(&self.log_path(), 20)
                );
            }
            if Instant::now() > deadline {
                self.kill().await;
                anyhow::bail!(
                    "{} did not answer on 127.0.0.1:{} within {} s; its log ends:\n{}",
                    self.kind.name(),
                    self.port,
                    START_LIMIT.as_secs(),
                    tail(&self.log_path(), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server as an operator does (SIGTERM: it finishes what it acknowledged) and
    /// waits until its whole process group has exited; kills it if it takes longer than 30 s.
    pub async fn stop(&mut self) -> Option<ExitStatus> {
        let group = self.process_group()?;
        signal_group(group, libc::SIGTERM);
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = self.try_reap() {
                if wait_for_group_exit(group, GROUP_EXIT_LIMIT).await {
                    return Some(status);
                }
                // The leader went but part of the group lingers: end it the hard way.
                signal_group(group, libc::SIGKILL);
                wait_for_group_exit(group, GROUP_EXIT_LIMIT).await;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill().await
    }

    /// Kills the server at once (SIGKILL to its process group) and waits until every process of
    /// the group has exited.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        let group = self.process_group()?;
        signal_group(group, libc::SIGKILL);
        let deadline = Instant::now() + STOP_LIMIT;
        let mut status = None;
        while Instant::now() < deadline {
            status = status.or_else(|| self.try_reap());
            if status.is_some() && !group_exists(group) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        status
    }

    /// Whether the server answers its protocol now.
    pub async fn answers(&self) -> bool {
        match self.kind {
            Kind::SecantusDb => mongo_answers(self.port).await,
            Kind::RabbitMq => amqp_answers(self.port).await,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn try_reap(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) => None,
            Err(_) => {
                self.child = None;
                None
            }
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = child.id();
            signal_group(group, libc::SIGKILL);
            let _ = child.wait();
            block_until_group_exit(group, GROUP_EXIT_LIMIT);
        }
        // Only once the node is gone: epmd is what it would register with on a restart.
        if let Some((_, mut epmd)) = self.epmd.take() {
            let _ = epmd.kill();
            let _ = epmd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `signal` to process group `group` (ignored when the group is gone or the id is not one).
fn signal_group(group: u32, signal: libc::c_int) {
    // A group id is a positive pid; 0 or one that does not fit would name other processes.
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    if group > 0 {
        // SAFETY: kill(2) takes plain integers; a negative pid names our own child's group.
        unsafe {
            libc::kill(-group, signal);
        }
    }
}

/// Whether any process (a zombie too) is still in process group `group`.
fn group_exists(group: u32) -> bool {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return false;
    };
    if group <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the group exists; no memory is involved. It fails with
    // ESRCH once the group is empty (and with EPERM only for another user's group, not ours).
    unsafe { libc::kill(-group, 0) == 0 }
}

/// Waits until process group `group` is empty; false if it is not within `limit`.
async fn wait_for_group_exit(group: u32, limit: Duration) -> bool {
    crate::eventually(limit, || async { (!group_exists(group)).then_some(()) })
        .await
        .is_some()
}

/// [`wait_for_group_exit`] for `Drop`, which cannot await.
fn block_until_group_exit(group: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while group_exists(group) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts an epmd in the foreground (not `-daemon`, which would detach it from us) in a process
/// group of its own, so stopping or killing the node leaves it running, as on a real host.
fn start_epmd(port: u16, dir: &Path) -> anyhow::Result<Child> {
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("epmd.log"))?;
    Command::new("epmd")
        .args(["-port", &port.to_string(), "-address", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start epmd (is Erlang installed?): {e}"))
}

fn secantusd() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("VID2MP3_SECANTUSD") {
        return Ok(PathBuf::from(path));
    }
    let venv = crate::workspace::tools_venv();
    let path = venv.join("bin").join("secantusd-py");
    anyhow::ensure!(
        path.is_file(),
        "{} is not installed; run `scripts/services install` (or set VID2MP3_SECANTUSD)",
        path.display()
    );
    Ok(path)
}

/// `N` distinct free loopback ports (all held while choosing, so they differ).
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn private_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique_name(&format!("vid2mp3-private-{what}-")));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn mongo_answers(port: u16) -> bool {
    let url = format!(
        "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000&directConnection=true"
    );
    let Ok(client) = mongodb::Client::with_uri_str(&url).await else {
        return false;
    };
    client
        .database("admin")
        .run_command(mongodb::bson::doc! {"ping": 1})
        .await
        .is_ok()
}

/// AMQP 0-9-1 answers its protocol header with `connection.start`, a method frame (type 1).
/// RabbitMQ opens its AMQP listener only once the node has booted.
async fn amqp_answers(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        let mut frame_type = [0u8; 1];
        stream.read_exact(&mut frame_type).await?;
        Ok::<_, std::io::Error>(frame_type[0] == 1)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::from("(no log)");
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
