//! A private server leaves nothing behind: once its handle is dropped, no process it started is
//! left (the node, its helpers, its epmd), its ports are closed and its directory is gone — also
//! after it was killed or stopped and started again mid-test, as the outage tests do.

use std::path::Path;
use std::time::Duration;

use vid2mp3_test_support_core::PrivateServer;

/// Whether any process is in process group `group`.
fn group_exists(group: u32) -> bool {
    let group = libc::pid_t::try_from(group).expect("a process group id");
    // SAFETY: signal 0 only checks for existence; no memory is involved.
    unsafe { libc::kill(-group, 0) == 0 }
}

async fn listening(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .is_ok_and(|c| c.is_ok())
}

/// Processes whose environment or command line names `needle` (every process a private server
/// starts inherits its directory in some variable, or has its port on the command line).
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let read = |file: &str| std::fs::read(entry.path().join(file)).unwrap_or_default();
        let (cmdline, environ) = (read("cmdline"), read("environ"));
        let text = |b: &[u8]| String::from_utf8_lossy(b).replace('\0', " ");
        if text(&cmdline).contains(needle) || text(&environ).contains(needle) {
            found.push(format!("{pid}: {}", text(&cmdline)));
        }
    }
    found
}

fn assert_nothing_left(dir: &Path, group: u32, epmd_port: Option<u16>) {
    assert!(
        !group_exists(group),
        "a process of the server's group is left"
    );
    let dir = dir.to_string_lossy();
    let left = processes_naming(&dir);
    assert!(
        left.is_empty(),
        "processes started for {dir} are left: {left:?}"
    );
    if let Some(port) = epmd_port {
        // Trailing spaces: the NULs that end each argument and variable, so 4369 is not 43690.
        let left = processes_naming(&format!("-port {port} "));
        assert!(left.is_empty(), "the epmd on {port} is left: {left:?}");
        let left = processes_naming(&format!("ERL_EPMD_PORT={port} "));
        assert!(left.is_empty(), "an epmd for {port} is left: {left:?}");
    }
    assert!(!Path::new(dir.as_ref()).exists(), "{dir} is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_rabbitmq_node_and_its_epmd_are_gone_with_the_handle() -> anyhow::Result<()> {
    let mut node = PrivateServer::rabbitmq().await?;
    let dir = node.dir().to_owned();
    let port = node.port();
    let epmd_port = node.epmd_port().expect("an epmd of its own");
    let crashed = node.process_group().expect("running");

    // A crash takes the whole node (the wrapper script and the VM), not its epmd.
    node.kill().await.expect("the node exits");
    assert!(!group_exists(crashed), "part of the killed node is left");
    assert!(!node.answers().await);
    assert!(
        listening(epmd_port).await,
        "epmd outlives the node, as on a host"
    );

    node.start().await?;
    assert!(node.answers().await, "it starts again on the same port");
    let group = node.process_group().expect("running");
    drop(node);

    for port in [port, epmd_port] {
        assert!(!listening(port).await, "port {port} is still open");
    }
    assert_nothing_left(&dir, group, Some(epmd_port));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_secantusdb_is_gone_with_the_handle() -> anyhow::Result<()> {
    let mut mongo = PrivateServer::secantus().await?;
    let dir = mongo.dir().to_owned();
    let port = mongo.port();
    let stopped = mongo.process_group().expect("running");

    mongo.stop().await.expect("the server exits");
    assert!(!group_exists(stopped));
    assert!(!mongo.answers().await);
    mongo.start().await?;
    assert!(mongo.answers().await, "it starts again on the same port");
    let group = mongo.process_group().expect("running");
    drop(mongo);

    assert!(!listening(port).await, "port {port} is still open");
    assert_nothing_left(&dir, group, None);
    Ok(())
}
