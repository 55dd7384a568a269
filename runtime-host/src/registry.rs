//! `up -f <registry reference>`: pull an application image from an OCI registry.
//!
//! The image is the kind `deploy/images/spin-app.Dockerfile` makes and containerd-shim-spin runs:
//! ordinary filesystem layers (tar, optionally gzip) that hold `/spin.toml` and every component at
//! the path spin.toml names. The layers are unpacked in order into a directory named after the
//! manifest's digest under the cache directory, and `spin.toml` is loaded from there, so a second
//! start of the same image downloads nothing but the manifest. Spin's own artifact format (what
//! `spin registry push` makes) is recognised and refused with a message saying so.
//!
//! Bounds: every layer's digest and size are checked before anything is unpacked; the layers'
//! bytes on the wire and unpacked are each limited (`--max-pull-bytes`); only regular files and
//! directories are unpacked, never outside the app directory. Registries on loopback are spoken to
//! over plain HTTP (as Docker and containerd do); `--insecure` does so for every registry (Spin's
//! `-k`). Pulls are anonymous.

use std::io::{Read, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

/// The config media type of Spin's OCI artifact (`spin registry push`).
const SPIN_ARTIFACT_CONFIG: &str = "application/vnd.fermyon.spin.application.v1+config";
const LAYER_TAR: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
];
const LAYER_TAR_GZIP: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];
/// The file a complete app directory holds; its absence means an interrupted unpack.
const COMPLETE_MARKER: &str = ".runtime-host-complete";

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(
        "{0:?} is not a registry reference; write it as registry/name:tag or registry/name@digest"
    )]
    Reference(String, #[source] oci_client::ParseError),
    #[error("cannot pull {reference}; check the reference and that its registry is reachable")]
    Registry {
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error(
        "{reference} is a Spin OCI artifact (`spin registry push`), which runtime-host does not read; push an image with /spin.toml and the components as files (deploy/images/spin-app.Dockerfile)"
    )]
    SpinArtifact { reference: String },
    #[error(
        "{reference}: layer {digest} has media type {media_type:?}; runtime-host unpacks tar and tar+gzip layers"
    )]
    LayerType {
        reference: String,
        digest: String,
        media_type: String,
    },
    #[error(
        "{reference} is larger than the pull limit of {limit} bytes ({what}); raise --max-pull-bytes if the image is meant to be this big"
    )]
    TooLarge {
        reference: String,
        limit: u64,
        what: String,
    },
    /// A layer failed one of our own checks (digest, size, entry type); the message is the finding.
    #[error("{reference}: layer {digest}: {message}")]
    Layer {
        reference: String,
        digest: String,
        message: String,
    },
    #[error(
        "{reference}: layer {digest} could not be downloaded; check that the registry is reachable and try again"
    )]
    LayerDownload {
        reference: String,
        digest: String,
        #[source]
        source: LayerDownloadError,
    },
    #[error(
        "{reference}: layer {digest}: {path} could not be written or read; check the cache directory (--cache-dir) and its free space"
    )]
    LayerFile {
        reference: String,
        digest: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{reference}: layer {digest} is not a readable tar archive; rebuild and push the image"
    )]
    LayerArchive {
        reference: String,
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{reference}: unpacking layer {digest} stopped unexpectedly; try again")]
    Unpacker {
        reference: String,
        digest: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(
        "{reference} holds no /spin.toml; the app image must have the manifest at its root (deploy/images/spin-app.Dockerfile)"
    )]
    NoManifest { reference: String },
    #[error(
        "cache directory {path} cannot be used; check that it is writable, or choose another with --cache-dir"
    )]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pulling {reference} took longer than {0:?}", .limit)]
    Timeout { reference: String, limit: Duration },
}

/// Why a layer's bytes did not arrive: the registry refused the request, or the stream broke.
#[derive(Debug, thiserror::Error)]
pub enum LayerDownloadError {
    #[error("the registry refused the blob request")]
    Request(#[source] oci_client::errors::OciDistributionError),
    #[error("the connection broke while the blob was streaming")]
    Stream(#[source] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Plain HTTP to every registry (Spin's `--insecure`); loopback registries always use it.
    pub insecure: bool,
    /// Where pulled apps are unpacked, one directory per manifest digest.
    pub cache_dir: PathBuf,
    /// Most bytes the layers may have, compressed on the wire and again unpacked.
    pub max_bytes: u64,
    /// The whole pull, manifest and layers.
    pub timeout: Duration,
}

impl PullOptions {
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            insecure: false,
            cache_dir,
            max_bytes: 1 << 30,
            timeout: Duration::from_secs(600),
        }
    }
}

/// Where pulled apps go unless `--cache-dir` says otherwise: `$XDG_CACHE_HOME/runtime-host`,
/// else `$HOME/.cache/runtime-host`, else the temp directory's `runtime-host-cache`.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    match base {
        Some(base) => base.join("runtime-host"),
        None => std::env::temp_dir().join("runtime-host-cache"),
    }
}

/// Spin's heuristic (`spin_oci::is_probably_oci_reference`) for telling a registry reference from a
/// file path that does not exist: it must parse, and a reference that the parser could only read
/// as Docker Hub's `latest` without saying so looks more like a path.
pub fn is_probably_reference(source: &str) -> bool {
    let Ok(reference) = Reference::try_from(source) else {
        return false;
    };
    if reference.tag() != Some("latest") || source.ends_with(":latest") {
        return true;
    }
    // Docker Hub filled in by the parser, though the text never named it: probably a path.
    !reference.registry().contains("docker") || source.contains("docker")
}

/// Pulls `source` (unless this image is already unpacked in the cache) and returns the path of
/// its `spin.toml`.
pub async fn pull(source: &str, options: &PullOptions) -> Result<PathBuf, PullError> {
    let reference =
        Reference::try_from(source).map_err(|e| PullError::Reference(source.to_owned(), e))?;
    let whole = reference.whole();
    tokio::time::timeout(options.timeout, pull_reference(&reference, options))
        .await
        .map_err(|_| PullError::Timeout {
            reference: whole,
            limit: options.timeout,
        })?
}

async fn pull_reference(
    reference: &Reference,
    options: &PullOptions,
) -> Result<PathBuf, PullError> {
    let name = reference.whole();
    let registry_error = |source| PullError::Registry {
        reference: name.clone(),
        source,
    };
    let client = client_for(reference, options.insecure);
    let (manifest, manifest_digest) = client
        .pull_image_manifest(reference, &RegistryAuth::Anonymous)
        .await
        .map_err(registry_error)?;
    if manifest.config.media_type == SPIN_ARTIFACT_CONFIG {
        return Err(PullError::SpinArtifact { reference: name });
    }

    let app_dir = options
        .cache_dir
        .join("apps")
        .join(manifest_digest.replace(':', "_"));
    if app_dir.join(COMPLETE_MARKER).is_file() {
        tracing::info!(reference = %name, digest = %manifest_digest, dir = %app_dir.display(), "app image already pulled");
        return manifest_in(&app_dir, &name);
    }

    // Everything the manifest declares is checked before a byte of a layer is fetched.
    let mut declared: u64 = 0;
    for layer in &manifest.layers {
        layer_compression(reference, layer)?;
        declared = declared.saturating_add(u64::try_from(layer.size).unwrap_or(u64::MAX));
    }
    if declared > options.max_bytes {
        return Err(PullError::TooLarge {
            reference: name,
            limit: options.max_bytes,
            what: format!("its layers declare {declared} bytes"),
        });
    }

    let cache_error = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| PullError::Cache { path, source }
    };
    let apps = options.cache_dir.join("apps");
    std::fs::create_dir_all(&apps).map_err(cache_error(&apps))?;
    let partial = apps.join(format!(".partial-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&partial).map_err(cache_error(&partial))?;
    let result = async {
        let mut unpacked_budget = options.max_bytes;
        for layer in &manifest.layers {
            let blob = partial.with_extension(format!("{}.blob", layer.digest.replace(':', "_")));
            let fetched = fetch_layer(&client, reference, layer, &blob).await;
            let unpacked = match fetched {
                Ok(()) => {
                    let digest = layer.digest.clone();
                    let (reference, layer, blob, partial) = (
                        reference.clone(),
                        layer.clone(),
                        blob.clone(),
                        partial.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        unpack_layer(&reference, &layer, &blob, &partial, unpacked_budget)
                    })
                    .await
                    .unwrap_or_else(|source| {
                        Err(PullError::Unpacker {
                            reference: name.clone(),
                            digest,
                            source,
                        })
                    })
                }
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&blob);
            unpacked_budget -= unpacked?;
        }
        std::fs::File::create(partial.join(COMPLETE_MARKER)).map_err(cache_error(&partial))?;
        Ok::<(), PullError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    // Another process may have finished the same digest meanwhile; either copy is complete.
    if std::fs::rename(&partial, &app_dir).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
        if !app_dir.join(COMPLETE_MARKER).is_file() {
            return Err(PullError::Cache {
                path: app_dir,
                source: std::io::Error::other("could not move the unpacked app into place"),
            });
        }
    }
    tracing::info!(reference = %name, digest = %manifest_digest, bytes = declared, dir = %app_dir.display(), "pulled app image");
    manifest_in(&app_dir, &name)
}

fn manifest_in(app_dir: &Path, reference: &str) -> Result<PathBuf, PullError> {
    let manifest = app_dir.join("spin.toml");
    if manifest.is_file() {
        Ok(manifest)
    } else {
        Err(PullError::NoManifest {
            reference: reference.to_owned(),
        })
    }
}

fn client_for(reference: &Reference, insecure: bool) -> Client {
    let registry = reference.resolve_registry().to_owned();
    let protocol = if insecure {
        ClientProtocol::Http
    } else if is_loopback(&registry) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: Some(Box::new(resolve_platform)),
        connect_timeout: Some(Duration::from_secs(30)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientConfig::default()
    })
}

/// `host[:port]` naming this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// From an image index: the `wasi/wasm` entry (what `docker buildx --platform wasi/wasm` makes of
/// the app image), else this machine's platform (what a plain build makes).
fn resolve_platform(entries: &[ImageIndexEntry]) -> Option<String> {
    entries
        .iter()
        .find(|e| e.platform.as_ref().is_some_and(|p| p.os == "wasi"))
        .map(|e| e.digest.clone())
        .or_else(|| oci_client::client::current_platform_resolver(entries))
}

#[derive(Debug, Clone, Copy)]
enum Compression {
    None,
    Gzip,
}

fn layer_compression(
    reference: &Reference,
    layer: &OciDescriptor,
) -> Result<Compression, PullError> {
    if LAYER_TAR.contains(&layer.media_type.as_str()) {
        Ok(Compression::None)
    } else if LAYER_TAR_GZIP.contains(&layer.media_type.as_str()) {
        Ok(Compression::Gzip)
    } else {
        Err(PullError::LayerType {
            reference: reference.whole(),
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        })
    }
}

/// Streams one layer to `path`, refusing more bytes than the descriptor declares and any content
/// whose sha256 is not the descriptor's digest.
async fn fetch_layer(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    path: &Path,
) -> Result<(), PullError> {
    let fail = |message: String| PullError::Layer {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        message,
    };
    let want = layer
        .digest
        .strip_prefix("sha256:")
        .ok_or_else(|| fail("only sha256 digests are supported".into()))?
        .to_owned();
    let declared = u64::try_from(layer.size).map_err(|_| fail("negative size".into()))?;
    let download = |source| PullError::LayerDownload {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        source,
    };
    let file_error = |source| PullError::LayerFile {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        path: path.to_owned(),
        source,
    };
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .map_err(|e| download(LayerDownloadError::Request(e)))?
        .stream;
    let mut file = std::fs::File::create(path).map_err(file_error)?;
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| download(LayerDownloadError::Stream(e)))?;
        received += chunk.len() as u64;
        if received > declared {
            return Err(fail(format!(
                "the registry sent more than the {declared} bytes the manifest declares"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(file_error)?;
    }
    if received != declared {
        return Err(fail(format!(
            "received {received} bytes, the manifest declares {declared}"
        )));
    }
    let got = hex::encode(hasher.finalize());
    if got != want {
        return Err(fail(format!("content has digest sha256:{got}")));
    }
    Ok(())
}

/// Unpacks a verified layer into `dir`; returns the bytes written, at most `budget`.
fn unpack_layer(
    reference: &Reference,
    layer: &OciDescriptor,
    blob: &Path,
    dir: &Path,
    budget: u64,
) -> Result<u64, PullError> {
    let fail = |message: String| PullError::Layer {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        message,
    };
    let archive_error = |source| PullError::LayerArchive {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        source,
    };
    let file = std::fs::File::open(blob).map_err(|source| PullError::LayerFile {
        reference: reference.whole(),
        digest: layer.digest.clone(),
        path: blob.to_owned(),
        source,
    })?;
    let reader: Box<dyn Read> = match layer_compression(reference, layer)? {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
    };
    let mut archive = tar::Archive::new(reader);
    let mut written: u64 = 0;
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let path = entry.path().map_err(archive_error)?.into_owned();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // An OCI whiteout deletes what an earlier layer put at that path.
        if let Some(deleted) = file_name.strip_prefix(".wh.") {
            if deleted != ".wh..opq" {
                let target = dir.join(path.with_file_name(deleted));
                if target.starts_with(dir)
                    && !path
                        .components()
                        .any(|c| c == std::path::Component::ParentDir)
                {
                    let _ =
                        std::fs::remove_file(&target).or_else(|_| std::fs::remove_dir_all(&target));
                }
            }
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                written = written.saturating_add(entry.size());
                if written > budget {
                    return Err(PullError::TooLarge {
                        reference: reference.whole(),
                        limit: budget,
                        what: "unpacked".into(),
                    });
                }
            }
            tar::EntryType::Directory => {}
            other => {
                return Err(fail(format!(
                    "{} is a {other:?} entry; an app image holds only files and directories",
                    path.display()
                )));
            }
        }
        // unpack_in refuses absolute paths and `..`, so nothing lands outside `dir`.
        let inside = entry
            .unpack_in(dir)
            .map_err(|source| PullError::LayerFile {
                reference: reference.whole(),
                digest: layer.digest.clone(),
                path: dir.join(&path),
                source,
            })?;
        if !inside {
            return Err(fail(format!("{} points outside the image", path.display())));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_told_from_paths_as_spin_does() {
        for yes in [
            "127.0.0.1:5000/vid2mp3/spin-app:dev",
            "registry.example.com/vid2mp3/spin-app:0.1.0",
            "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/library/app",
            "app:latest",
        ] {
            assert!(is_probably_reference(yes), "{yes}");
        }
        for no in ["spin.toml", "apps/spin.toml", "Not A Reference!", ""] {
            assert!(!is_probably_reference(no), "{no}");
        }
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for yes in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "registry.example.com",
            "10.0.0.1:5000",
            "[2001:db8::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[tokio::test]
    async fn a_bad_reference_keeps_the_parser_error_as_its_source() {
        let options = PullOptions::new(std::env::temp_dir());
        let Err(e) = pull("Not A Reference!", &options).await else {
            panic!("an unparsable reference was pulled");
        };
        assert!(matches!(e, PullError::Reference(..)), "{e:?}");
        let source = std::error::Error::source(&e).expect("the parser's error is kept");
        assert!(source.is::<oci_client::ParseError>(), "{source:?}");
        assert!(e.to_string().contains("registry/name:tag"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_registry_keeps_the_client_error_as_its_source() {
        // A loopback port nobody listens on: the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut options = PullOptions::new(std::env::temp_dir());
        options.timeout = Duration::from_secs(30);
        let Err(e) = pull(&format!("127.0.0.1:{port}/nobody/app:1"), &options).await else {
            panic!("pulled from a registry that is not there");
        };
        assert!(matches!(e, PullError::Registry { .. }), "{e:?}");
        let source = std::error::Error::source(&e).expect("the client's error is kept");
        assert!(
            source.is::<oci_client::errors::OciDistributionError>(),
            "{source:?}"
        );
        assert!(e.to_string().starts_with("cannot pull"), "{e}");
    }

    #[test]
    fn a_layer_that_is_not_an_archive_keeps_the_read_error_as_its_source() {
        let dir = std::env::temp_dir().join(format!("registry-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let blob = dir.join("layer.blob");
        std::fs::write(&blob, b"this is not gzip at all").expect("the blob");
        let layer = OciDescriptor {
            media_type: LAYER_TAR_GZIP[0].to_owned(),
            digest: "sha256:00".to_owned(),
            size: 23,
            ..OciDescriptor::default()
        };
        let reference = Reference::try_from("127.0.0.1:5000/app:1").expect("a reference");
        let result = unpack_layer(&reference, &layer, &blob, &dir.join("app"), 1 << 20);
        let _ = std::fs::remove_dir_all(&dir);
        let Err(e) = result else {
            panic!("garbage was unpacked");
        };
        assert!(matches!(e, PullError::LayerArchive { .. }), "{e:?}");
        let source = std::error::Error::source(&e).expect("the read error is kept");
        assert!(source.is::<std::io::Error>(), "{source:?}");
    }

    #[test]
    fn the_default_cache_is_under_the_user_cache() {
        let dir = default_cache_dir();
        assert!(
            dir.ends_with("runtime-host") || dir.ends_with("runtime-host-cache"),
            "{}",
            dir.display()
        );
    }
}
