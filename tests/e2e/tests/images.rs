//! The container images, built by `deploy/images/build` and run with podman the way Kubernetes
//! runs them, against the services on this machine:
//!
//! - the converter image answers `/readyz` (read-only root filesystem, `/tmp` a tmpfs, uid 10001);
//! - the Spin app image is pushed to a registry of the test's own (Debian's `docker-registry`),
//!   and the runtime-host image, started with exactly the arguments spin-operator v0.6.1 gives a
//!   `spinImage` executor's container and the runtime config it mounts at /runtime-config.toml,
//!   pulls it and passes the course's curl flow: sign up, confirm, log in, `curl -F` upload, the email, the
//!   download. The notifier runs in a second runtime-host container, as the second SpinApp.
//!
//! Host networking reaches the services on loopback; the test's Redis is a private
//! `redis-server`, since the notifier's channel is fixed in the image's spin.toml.
//!
//! Ignored by a plain `cargo test`: it needs the images. `scripts/test` builds them and runs it:
//!   deploy/images/build && cargo test --workspace --test images -- --ignored

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use vid2mp3_migrations::Service;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, decoded_samples, make_mkv};
use vid2mp3_test_support::{
    CONFIRMATION_SUBJECT, Mailbox, MongoDatabase, MySqlDatabase, RabbitVhost, ServiceUrls,
    TokenKeys, confirmation_token_in, eventually, listening, unique_name,
};

const TAG: &str = "dev";
/// What spin-operator v0.6.1 writes into the runtime config Secret for a SpinApp without key-value
/// stores, SQLite databases or an LLM (internal/runtimeconfig, checked by its controller test).
const OPERATOR_RUNTIME_CONFIG: &str =
    "[[config_provider]]\ntype = 'env'\nprefix = 'SPIN_VARIABLE_'\n";

/// buildah/podman settings of scripts/lib/containers.sh: the project's own store and config.
fn podman() -> Command {
    let cache = std::env::var_os("VID2MP3_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("vid2mp3")))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/vid2mp3")
        });
    let containers = std::env::var_os("VID2MP3_CONTAINERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("containers"));
    let mut cmd = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        cmd.env("CONTAINERS_CONF", containers.join("containers.conf"));
    }
    if std::env::var_os("CONTAINERS_STORAGE_CONF").is_none() {
        cmd.env("CONTAINERS_STORAGE_CONF", containers.join("storage.conf"));
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A container started with `podman run -d`; its log is printed and it is removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn start(what: &str, args: &[&str]) -> Container {
        let name = unique_name(&format!("vid2mp3-test-{what}-"));
        run(podman().args(["run", "-d", "--name", &name]).args(args));
        Container { name }
    }

    fn logs(&self) -> String {
        let out = podman()
            .args(["logs", &self.name])
            .output()
            .expect("podman logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn running(&self) -> bool {
        podman()
            .args(["inspect", "--format", "{{.State.Running}}", &self.name])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of container {} ---\n{}", self.name, self.logs());
        }
        let _ = podman().args(["rm", "-f", "-t", "5", &self.name]).output();
    }
}

/// A child process killed on drop, with a temp directory removed with it.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait_for_port(address: &str, what: &str) {
    if let Err(e) = listening(address, Duration::from_secs(30)).await {
        panic!("{what}: {e}");
    }
}

/// Debian's docker-registry on a free loopback port.
async fn registry() -> (Daemon, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let dir = std::env::temp_dir().join(unique_name("vid2mp3-registry-"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", &config.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (apt-get install docker-registry; scripts/test installs it)");
    let daemon = Daemon { child, dir };
    wait_for_port(&address, "docker-registry").await;
    (daemon, address)
}

/// A Redis of the test's own: the image's notifier subscribes to a fixed channel name.
async fn private_redis() -> (Daemon, String) {
    let port = free_port();
    let dir = std::env::temp_dir().join(unique_name("vid2mp3-redis-"));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/services install redis)");
    let daemon = Daemon { child, dir };
    let address = format!("127.0.0.1:{port}");
    wait_for_port(&address, "redis-server").await;
    (daemon, format!("redis://{address}"))
}

fn image(name: &str) -> String {
    let image = format!("localhost/vid2mp3/{name}:{TAG}");
    let exists = podman()
        .args(["image", "exists", &image])
        .status()
        .expect("podman (apt-get install podman; scripts/test installs it)");
    assert!(
        exists.success(),
        "{image} is not built: deploy/images/build"
    );
    image
}

fn host_port(url: &str) -> String {
    let url = url::Url::parse(url).expect("a URL");
    format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port_or_known_default().expect("a port")
    )
}

async fn wait_until_ok(url: &str, what: &str, container: &Container) {
    let answered = eventually(Duration::from_secs(120), || async {
        if let Ok(r) = client().get(url).send().await
            && r.status().is_success()
        {
            return Some(());
        }
        assert!(container.running(), "{what} exited:\n{}", container.logs());
        None
    })
    .await;
    assert!(
        answered.is_some(),
        "{what} did not answer {url} within 120 s:\n{}",
        container.logs()
    );
}

fn curl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--max-time",
            "120",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the images from deploy/images/build and podman; scripts/test runs it"]
async fn the_images_run_the_course_flow_with_runtime_host_as_the_spin_image_executor() {
    assert!(
        TcpListener::bind("0.0.0.0:80").is_ok(),
        "port 80 is taken on this machine; spin-operator's spinImage container listens on 0.0.0.0:80 and this test runs it on the host's network"
    );
    let converter_image = image("converter");
    let runtime_host_image = image("runtime-host");
    let app_image = image("spin-app");

    // The services, each the test's own.
    let urls = ServiceUrls::from_env();
    let auth_db = MySqlDatabase::migrated(Service::Auth)
        .await
        .expect("auth db");
    let gateway_db = MySqlDatabase::migrated(Service::Gateway)
        .await
        .expect("gateway db");
    let notifier_db = MySqlDatabase::migrated(Service::Notifier)
        .await
        .expect("notifier db");
    let mongo = MongoDatabase::create().await.expect("mongo db");
    let vhost = RabbitVhost::create().await.expect("rabbitmq vhost");
    let mailbox = Mailbox::create().await.expect("mailbox");
    let (_redis, redis_url) = private_redis().await;
    let keys = TokenKeys::generate("images-test");
    // As long and varied as `openssl rand -base64 32`: both sides refuse a weak token.
    let storage_token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let storage_port = free_port();
    let storage_url = format!("http://127.0.0.1:{storage_port}");

    // The app image in a registry, as a cluster would pull it.
    let (_registry, registry) = registry().await;
    let app_reference = format!("{registry}/vid2mp3/spin-app:{TAG}");
    run(podman().args([
        "push",
        "--quiet",
        "--tls-verify=false",
        &app_image,
        &format!("docker://{app_reference}"),
    ]));

    // The converter: its Deployment's settings (read-only root, /tmp writable, non-root).
    let converter_env = [
        ("VID2MP3_MONGO_URL", mongo.url().to_owned()),
        ("VID2MP3_MONGO_DB", mongo.name().to_owned()),
        ("VID2MP3_AMQP_URL", vhost.amqp_url().to_owned()),
        ("VID2MP3_REDIS_URL", redis_url.clone()),
        (
            "VID2MP3_STORAGE_LISTEN",
            format!("127.0.0.1:{storage_port}"),
        ),
        ("VID2MP3_STORAGE_TOKEN", storage_token.clone()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut args: Vec<String> = [
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "all",
    ]
    .map(str::to_owned)
    .to_vec();
    for (k, v) in &converter_env {
        args.extend(["-e".into(), format!("{k}={v}")]);
    }
    args.push(converter_image);
    let converter = Container::start(
        "converter",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_until_ok(
        &format!("{storage_url}/readyz"),
        "the converter container",
        &converter,
    )
    .await;
    let user = run(podman().args(["exec", &converter.name, "id", "-u"]));
    assert_eq!(
        String::from_utf8_lossy(&user.stdout).trim(),
        "10001",
        "the converter runs as uid 10001"
    );

    // The two SpinApps' containers as spin-operator makes them for a `spinImage` executor:
    // SPIN_VARIABLE_* from the SpinApp's variables, the runtime config mounted at
    // /runtime-config.toml, and exactly its arguments.
    let scratch = Scratch::new();
    let runtime_config = scratch.path("runtime-config.toml");
    std::fs::write(&runtime_config, OPERATOR_RUNTIME_CONFIG).unwrap();
    let variables = [
        // The private Redis has no users: every component's URL is the same unauthenticated one.
        ("redis_host", host_port(&redis_url)),
        ("gateway_redis_url", redis_url.clone()),
        ("auth_redis_url", redis_url.clone()),
        ("notifier_redis_url", redis_url.clone()),
        ("redis_key_prefix", unique_name("vid2mp3-images:")),
        ("mysql_host", host_port(&urls.mysql)),
        // Each component as its own MySQL account, as in production.
        ("auth_db_url", auth_db.service_url().to_owned()),
        ("gateway_db_url", gateway_db.service_url().to_owned()),
        ("notifier_db_url", notifier_db.service_url().to_owned()),
        ("token_signing_key", keys.private_key_base64.clone()),
        ("token_key_id", keys.key_id.clone()),
        ("token_public_keys", keys.jwks.clone()),
        ("storage_url", storage_url.clone()),
        ("storage_token", storage_token.clone()),
        ("mail_api_url", mailbox.mailpit_url().to_owned()),
        ("public_base_url", "http://127.0.0.1:80".to_owned()),
        // The test hashes few passwords; the cost does not change what it checks.
        ("password_hash_memory_kib", "8192".to_owned()),
        ("password_hash_passes", "1".to_owned()),
    ];
    let spin_image_container = |what: &str, components: &[&str]| {
        let mut args: Vec<String> = [
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "all",
            // Port 80 as uid 10001: a pod's network namespace allows it; the host's needs the capability.
            "--cap-add",
            "NET_BIND_SERVICE",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend([
            "-v".into(),
            format!("{}:/runtime-config.toml:ro", runtime_config.display()),
            "-e".into(),
            "RUST_LOG=info".into(),
            // The image serves metrics on 0.0.0.0:9464, each pod in its own network namespace;
            // the two containers share the host's, so each takes a free port instead.
            "-e".into(),
            "RUNTIME_HOST_METRICS_LISTEN=127.0.0.1:0".into(),
        ]);
        for (name, value) in &variables {
            args.extend([
                "-e".into(),
                format!("SPIN_VARIABLE_{}={value}", name.to_ascii_uppercase()),
            ]);
        }
        args.push(runtime_host_image.clone());
        // spin-operator v0.6.1, internal/controller/spinapp_controller.go, the spinImage branch.
        args.extend(
            [
                "up",
                "--listen",
                "0.0.0.0:80",
                "-f",
                app_reference.as_str(),
                "--runtime-config-file",
                "/runtime-config.toml",
            ]
            .map(str::to_owned),
        );
        for component in components {
            args.extend(["--component-id".into(), (*component).to_owned()]);
        }
        Container::start(what, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let http = spin_image_container("http", &["gateway", "auth"]);
    let notifier = spin_image_container("notifier", &["notifier"]);
    wait_until_ok(
        "http://127.0.0.1:80/readyz",
        "the runtime-host container (gateway + auth)",
        &http,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !notifier.logs().contains("redis trigger subscribed") {
        assert!(
            notifier.running(),
            "the notifier container exited:\n{}",
            notifier.logs()
        );
        assert!(
            Instant::now() < deadline,
            "the notifier never subscribed:\n{}",
            notifier.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(http.logs().contains("pulled app image"), "{}", http.logs());

    // The course's flow, with curl.
    let email = mailbox.address().to_owned();
    let r = client()
        .post("http://127.0.0.1:80/api/v1/users")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(
        r.status(),
        202,
        "sign up: {}",
        r.text().await.unwrap_or_default()
    );
    // Only confirmed accounts log in: the link from the confirmation email, redeemed as the page does.
    let mail = mailbox
        .take_message(&email, CONFIRMATION_SUBJECT, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("no confirmation email: {e}\nnotifier:\n{}", notifier.logs()));
    let token = confirmation_token_in(&mail.text).expect("the confirmation email has a link");
    let r = client()
        .post("http://127.0.0.1:80/api/v1/users/confirmation")
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("confirm");
    assert_eq!(
        r.status(),
        200,
        "confirm: {}",
        r.text().await.unwrap_or_default()
    );
    make_mkv(&scratch.path("video.mkv"), 3);
    let jwt = curl(
        &scratch.0,
        &[
            "-X",
            "POST",
            "http://127.0.0.1:80/login",
            "-u",
            &format!("{email}:{PASSWORD}"),
        ],
    );
    assert_eq!(jwt.split('.').count(), 3, "the bare JWT: {jwt}");
    curl(
        &scratch.0,
        &[
            "-X",
            "POST",
            "-F",
            "file=@./video.mkv",
            "-H",
            &format!("Authorization: Bearer {jwt}"),
            "http://127.0.0.1:80/upload",
        ],
    );
    let mail = mailbox
        .wait_for(1, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no email: {e}\nnotifier:\n{}\nconverter:\n{}",
                notifier.logs(),
                converter.logs()
            )
        });
    let fid = fid_in(&mail[0].text).expect("the email gives the mp3's fid");
    curl(
        &scratch.0,
        &[
            "--output",
            "out.mp3",
            "-X",
            "GET",
            "-H",
            &format!("Authorization: Bearer {jwt}"),
            &format!("http://127.0.0.1:80/download?fid={fid}"),
        ],
    );
    assert_eq!(
        decoded_samples(&scratch.path("out.mp3")),
        decoded_samples(&scratch.path("video.mkv")),
        "the mp3 holds exactly the source's samples"
    );
}
