//! `runtime-host up`'s flags that spin-operator's `spinImage` executor and tools rely on, each with
//! Spin's meaning, through the binary: `--component-id`, `--runtime-config-file`, `-f` naming a
//! directory, and `-f` naming a registry reference, pulled from a real OCI registry (Debian's
//! `docker-registry`, started by the test on a free loopback port and pushed to by the test).

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempManifest, client, http_probe};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use vid2mp3_test_support_core::unique_name;

/// A manifest with the probe fixture twice: `a` on `/a/...` and `b` on `/b/...`, and a required
/// variable `token` that `a` sees as `secret_token`.
fn two_probes(source: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "flags"
[variables]
token = {{ required = true, secret = true }}
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "{source}"
[component.a.variables]
secret_token = "{{{{ token }}}}"
[component.b]
source = "{source}"
"#
    )
}

struct Host {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Host {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
}

fn command(args: &[&str], env: &[(&str, &str)]) -> (Command, PathBuf) {
    let log = std::env::temp_dir().join(unique_name("rh-flags-log-"));
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runtime-host"));
    cmd.arg("up")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    (cmd, log)
}

/// Starts `runtime-host up ARGS` and waits for its `Serving` line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Host {
    let (mut cmd, log) = command(args, env);
    let mut child = cmd.spawn().expect("runtime-host binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let base = match line.trim().strip_prefix("Serving ") {
        Some(base) => base.to_owned(),
        None => {
            let _ = child.kill();
            panic!(
                "runtime-host {args:?} did not start: {line:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        }
    };
    Host { child, base, log }
}

/// Runs `runtime-host up ARGS`, which must fail at start; returns its log.
fn fails_to_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let (mut cmd, log_path) = command(args, env);
    let mut child = cmd.spawn().expect("runtime-host binary");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("runtime-host {args:?} was expected to fail but is still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        !status.success(),
        "runtime-host {args:?} started; log:\n{log}"
    );
    log
}

#[tokio::test]
async fn component_id_runs_only_the_named_components_and_refuses_unknown_ones() {
    let manifest = TempManifest::new(&two_probes(&http_probe()));
    let path = manifest.path.display().to_string();
    let token = [("SPIN_VARIABLE_TOKEN", "t")];

    let host = start(&["-f", &path, "--component-id", "b"], &token);
    assert_eq!(
        host.get("/b/?op=env&name=X").await,
        (200, "<unset>".into()),
        "b runs"
    );
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await.0,
        404,
        "a's route is gone"
    );
    drop(host);

    // Repeatable, and -c is its short form, as in Spin.
    let host = start(&["-f", &path, "-c", "a", "--component-id", "b"], &token);
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "t".into())
    );
    drop(host);

    let log = fails_to_start(&["-f", &path, "--component-id", "nope"], &token);
    assert!(
        log.contains("\"nope\"") && log.contains("a, b"),
        "names the id and the components:\n{log}"
    );
}

#[tokio::test]
async fn runtime_config_file_supplies_variables_and_refuses_what_it_cannot_honour() {
    let manifest = TempManifest::new(&two_probes(&http_probe()));
    let path = manifest.path.display().to_string();
    let dir = std::env::temp_dir().join(unique_name("rh-runtime-config-"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        file.display().to_string()
    };

    // A static provider answers when nothing else does; an env provider listed first wins over it;
    // --variable wins over both; a key runtime-host lacks is named in a warning.
    let config = write(
        "static.toml",
        "[[variables_provider]]\ntype = \"env\"\nprefix = \"MYAPP\"\n[[variables_provider]]\ntype = \"static\"\nvalues = { token = \"from-static\" }\n[key_value_store.default]\ntype = \"spin\"\n",
    );
    let host = start(&["-f", &path, "--runtime-config-file", &config], &[]);
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "from-static".into())
    );
    assert!(
        host.log().contains("[key_value_store] has no effect"),
        "{}",
        host.log()
    );
    drop(host);
    let host = start(
        &["-f", &path, "--runtime-config-file", &config],
        &[
            ("MYAPP_TOKEN", "from-env"),
            ("SPIN_VARIABLE_TOKEN", "from-default-env"),
        ],
    );
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "from-env".into())
    );
    drop(host);
    let host = start(
        &[
            "-f",
            &path,
            "--runtime-config-file",
            &config,
            "--variable",
            "token=from-flag",
        ],
        &[("MYAPP_TOKEN", "from-env")],
    );
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "from-flag".into())
    );
    drop(host);

    // What spin-operator mounts at /runtime-config.toml: the operator's SPIN_VARIABLE_* arrive
    // through Spin's default environment provider.
    let operator = write(
        "operator.toml",
        "[[config_provider]]\ntype = 'env'\nprefix = 'SPIN_VARIABLE_'\n",
    );
    let host = start(
        &["-f", &path, "--runtime-config-file", &operator],
        &[("SPIN_VARIABLE_TOKEN", "from-operator")],
    );
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "from-operator".into())
    );
    drop(host);

    for (text, needle) in [
        (
            "[[variables_provider]]\ntype = \"vault\"\nurl = \"http://vault\"\ntoken = \"t\"\nmount = \"m\"\n",
            "\"vault\"",
        ),
        (
            "[outbound_networking]\nblock_networks = [\"private\"]\n",
            "[outbound_networking]",
        ),
        (
            "surprise = true\n",
            "unused runtime config key(s): surprise",
        ),
    ] {
        let config = write("refused.toml", text);
        let log = fails_to_start(
            &["-f", &path, "--runtime-config-file", &config],
            &[("SPIN_VARIABLE_TOKEN", "t")],
        );
        assert!(log.contains(needle), "{needle}:\n{log}");
    }
    let log = fails_to_start(
        &[
            "-f",
            &path,
            "--runtime-config-file",
            &dir.join("missing.toml").display().to_string(),
        ],
        &[("SPIN_VARIABLE_TOKEN", "t")],
    );
    assert!(log.contains("missing.toml"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn from_names_a_directory_holding_spin_toml() {
    let manifest = TempManifest::new(&two_probes(&http_probe()));
    let dir = manifest.path.parent().expect("dir").display().to_string();
    let host = start(&["-f", &dir], &[("SPIN_VARIABLE_TOKEN", "dir")]);
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "dir".into())
    );
    drop(host);
    let empty = std::env::temp_dir().join(unique_name("rh-empty-dir-"));
    std::fs::create_dir_all(&empty).unwrap();
    let log = fails_to_start(&["-f", &empty.display().to_string()], &[]);
    assert!(log.contains("has no spin.toml"), "{log}");
    std::fs::remove_dir_all(&empty).unwrap();
    let log = fails_to_start(&["-f", "no/such/spin.toml"], &[]);
    assert!(log.contains("not found"), "{log}");
}

/// Debian's `docker-registry` (the CNCF distribution registry) on a free loopback port, with its
/// storage in a temp directory; stopped and removed on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl Registry {
    fn start() -> Registry {
        let binary = Path::new("/usr/bin/docker-registry");
        assert!(
            binary.is_file(),
            "{} is not installed: apt-get install docker-registry (scripts/test installs it)",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(unique_name("rh-registry-"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yml");
        let mut f = std::fs::File::create(&config).unwrap();
        write!(
            f,
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            dir.join("data").display()
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(binary)
            .args(["serve", &config.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry");
        let registry = Registry {
            child,
            dir,
            address,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {} within 30 s: {}",
                registry.address,
                std::fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Pushes an image whose layers hold `files` (path in the image, content): the first file in a
    /// gzip layer, the rest in a plain tar layer, as buildah and Docker make them.
    async fn push(
        &self,
        repository: &str,
        files: &[(&str, Vec<u8>)],
        config_media_type: &str,
    ) -> String {
        let reference = format!("{}/{repository}", self.address);
        let (first, rest) = files.split_at(1);
        let gzip = {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&tar_of(first)).unwrap();
            encoder.finish().unwrap()
        };
        let layers = vec![
            ImageLayer::oci_v1_gzip(gzip, None),
            ImageLayer::oci_v1(tar_of(rest), None),
        ];
        let config = Config::new(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec(),
            config_media_type.to_owned(),
            None,
        );
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        });
        client
            .push(
                &Reference::try_from(reference.as_str()).unwrap(),
                &layers,
                config,
                &RegistryAuth::Anonymous,
                None,
            )
            .await
            .expect("push to the test registry");
        reference
    }

    /// The registry's stored copy of a blob (its filesystem driver's layout).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, data.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// The app image as deploy/images/spin-app.Dockerfile lays it out: /spin.toml, and the component at
/// the relative path spin.toml names.
fn app_files() -> Vec<(&'static str, Vec<u8>)> {
    let manifest = two_probes("target/wasm32-wasip2/component/fixture_http_probe.wasm");
    let wasm = std::fs::read(http_probe()).expect("the probe fixture: scripts/build-components");
    vec![
        ("spin.toml", manifest.into_bytes()),
        (
            "target/wasm32-wasip2/component/fixture_http_probe.wasm",
            wasm,
        ),
    ]
}

fn complete_apps(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("apps"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join(".runtime-host-complete").is_file())
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_pulls_an_app_image_from_a_registry_once() {
    let registry = Registry::start();
    let reference = registry
        .push(
            "vid2mp3/app:1.0",
            &app_files(),
            "application/vnd.oci.image.config.v1+json",
        )
        .await;
    let cache = std::env::temp_dir().join(unique_name("rh-pull-cache-"));
    let cache_arg = cache.display().to_string();
    let args = [
        "-f",
        reference.as_str(),
        "--cache-dir",
        cache_arg.as_str(),
        "--component-id",
        "a",
    ];
    let env = [("SPIN_VARIABLE_TOKEN", "pulled")];

    let host = start(&args, &env);
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "pulled".into())
    );
    assert_eq!(
        host.get("/b/?op=env&name=X").await.0,
        404,
        "--component-id applies to pulled apps too"
    );
    assert!(host.log().contains("pulled app image"), "{}", host.log());
    drop(host);
    assert_eq!(complete_apps(&cache), 1);

    // The same image again: nothing but the manifest is fetched.
    let host = start(&args, &env);
    assert_eq!(
        host.get("/a/?op=var&name=secret_token").await,
        (200, "pulled".into())
    );
    assert!(
        host.log().contains("app image already pulled"),
        "{}",
        host.log()
    );
    drop(host);
    assert_eq!(complete_apps(&cache), 1);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_refuses_tampered_layers_oversized_images_and_spin_artifacts() {
    let registry = Registry::start();
    let files = app_files();
    let cache = std::env::temp_dir().join(unique_name("rh-refused-cache-"));
    let cache_arg = cache.display().to_string();

    // Too big: refused from the manifest's sizes, before any layer is fetched.
    let reference = registry
        .push(
            "vid2mp3/app:big",
            &files,
            "application/vnd.oci.image.config.v1+json",
        )
        .await;
    let log = fails_to_start(
        &[
            "-f",
            &reference,
            "--cache-dir",
            &cache_arg,
            "--max-pull-bytes",
            "1000",
        ],
        &[],
    );
    assert!(
        log.contains("larger than the pull limit of 1000 bytes"),
        "{log}"
    );
    assert_eq!(complete_apps(&cache), 0);

    // A layer whose stored bytes no longer match its digest (same length, one byte changed).
    let manifest: serde_json::Value = {
        let tag_link = registry.dir.join(
            "data/docker/registry/v2/repositories/vid2mp3/app/_manifests/tags/big/current/link",
        );
        let digest = std::fs::read_to_string(tag_link).expect("the registry's tag link");
        serde_json::from_slice(&std::fs::read(registry.blob_file(digest.trim())).unwrap()).unwrap()
    };
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let blob = registry.blob_file(layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let log = fails_to_start(&["-f", &reference, "--cache-dir", &cache_arg], &[]);
    assert!(
        log.contains(layer) && log.contains("digest"),
        "names the layer and its digest:\n{log}"
    );
    assert_eq!(complete_apps(&cache), 0, "nothing half-pulled is kept");
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("apps"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial files left: {:?}",
        leftovers.iter().map(|e| e.path()).collect::<Vec<_>>()
    );

    // Spin's own artifact (`spin registry push`): recognised, refused with what to do instead.
    let artifact = registry
        .push(
            "vid2mp3/artifact:1",
            &files,
            "application/vnd.fermyon.spin.application.v1+config",
        )
        .await;
    let log = fails_to_start(&["-f", &artifact, "--cache-dir", &cache_arg], &[]);
    assert!(log.contains("Spin OCI artifact"), "{log}");

    // An image without /spin.toml.
    let no_manifest = registry
        .push(
            "vid2mp3/empty:1",
            &files[1..],
            "application/vnd.oci.image.config.v1+json",
        )
        .await;
    let log = fails_to_start(&["-f", &no_manifest, "--cache-dir", &cache_arg], &[]);
    assert!(log.contains("holds no /spin.toml"), "{log}");

    // A registry that is not there.
    drop(registry);
    let log = fails_to_start(&["-f", &reference, "--cache-dir", &cache_arg], &[]);
    assert!(log.contains("cannot pull"), "{log}");
    let _ = std::fs::remove_dir_all(&cache);
}
