//! Shared by runtime-host's integration tests: fixture lookup, manifests in temp dirs, services.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use runtime_host::{RunningApp, UpOptions};

/// The shared cargo target dir: `CARGO_TARGET_DIR`, else derived from this test binary
/// (`<target>/debug/deps/<test>`).
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("test binary lives in <target>/<profile>/deps")
}

/// The `.wasm` of a fixture (or real) component built with `--profile component`.
pub fn component_wasm(crate_name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip2/component")
        .join(format!("{crate_name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the wasm components first: scripts/build-components \
         (or: cargo build --target wasm32-wasip2 --profile component -p fixture-http-probe -p fixture-redis-probe)",
        path.display()
    );
    path
}

pub fn http_probe() -> String {
    component_wasm("fixture_http_probe").display().to_string()
}

pub fn redis_probe() -> String {
    component_wasm("fixture_redis_probe").display().to_string()
}

/// The tests' MySQL account (scripts/lib/common.sh exports it; by hand, the password
/// scripts/services made is read from .data/secrets/). It may create `vid2mp3_t_*` databases.
pub fn mysql_base_url() -> String {
    std::env::var("VID2MP3_MYSQL_URL").unwrap_or_else(|_| {
        let password = dev_password("mysql-vid2mp3_tests").unwrap_or_default();
        format!("mysql://vid2mp3_tests:{password}@127.0.0.1:3306")
    })
}

/// Redis as its admin user (the default user is disabled).
pub fn redis_url() -> String {
    std::env::var("VID2MP3_REDIS_URL").unwrap_or_else(|_| {
        match dev_password("redis-vid2mp3-admin") {
            Some(password) => format!("redis://vid2mp3-admin:{password}@127.0.0.1:6379"),
            None => "redis://127.0.0.1:6379".into(),
        }
    })
}

fn dev_password(name: &str) -> Option<String> {
    let data = std::env::var_os("VID2MP3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data"));
    let text =
        std::fs::read_to_string(data.join("secrets").join(format!("{name}.password"))).ok()?;
    Some(text.trim().to_owned()).filter(|p| !p.is_empty())
}

/// A connection to the shared Redis for a test's own keys. Its reply timeout is long enough
/// for the large values some tests write while the machine is busy (redis-rs's default is
/// half a second).
pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    redis::Client::open(redis_url())
        .expect("redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("redis (scripts/services start)")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A manifest written to its own temp dir (removed on drop).
pub struct TempManifest {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl TempManifest {
    pub fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("rh-test"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("spin.toml");
        std::fs::write(&path, text).expect("write manifest");
        Self { dir, path }
    }
}

impl Drop for TempManifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TestApp {
    pub app: Option<RunningApp>,
    pub base: String,
    _manifest: TempManifest,
}

impl TestApp {
    pub async fn start(manifest: &str) -> Self {
        Self::start_with(manifest, |_| {})
            .await
            .expect("app starts")
    }

    pub async fn start_with(
        manifest: &str,
        configure: impl FnOnce(&mut UpOptions),
    ) -> anyhow::Result<Self> {
        let m = TempManifest::new(manifest);
        let mut options = UpOptions::new(&m.path);
        options.listen = "127.0.0.1:0".parse().expect("addr");
        options.variable_env = Arc::new(|_| None);
        configure(&mut options);
        let app = runtime_host::start(options).await?;
        let base = format!("http://{}", app.http_addr.expect("http trigger listening"));
        Ok(Self {
            app: Some(app),
            base,
            _manifest: m,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = client().get(self.url(path)).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Polls `f` until it returns `Some`, for up to `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A value for a query string: everything but RFC 3986's unreserved characters is escaped.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A database of our own on the shared server, dropped at the end.
pub struct TempDatabase {
    pub name: String,
    admin: mysql_async::Pool,
}

impl TempDatabase {
    pub async fn create() -> Self {
        let admin = mysql_async::Pool::new(mysql_base_url().as_str());
        // The tests' account may create databases named vid2mp3_t_* only.
        let name = unique("vid2mp3_t_rh");
        let mut conn = admin
            .get_conn()
            .await
            .expect("MariaDB on VID2MP3_MYSQL_URL (start it with scripts/services start)");
        conn.query_drop(format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        Self { name, admin }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", mysql_base_url().trim_end_matches('/'), self.name)
    }

    pub async fn drop_now(self) {
        if let Ok(mut conn) = self.admin.get_conn().await {
            let _ = conn
                .query_drop(format!("DROP DATABASE IF EXISTS {}", self.name))
                .await;
        }
        let _ = self.admin.disconnect().await;
    }
}

/// An app of one `http-probe` component with its MySQL and Redis URLs as variables and
/// `allowed` as its outbound hosts.
pub fn probe_manifest(name: &str, mysql_url: &str, redis: &str, allowed: &[&str]) -> String {
    let hosts: Vec<String> = allowed.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "{name}"
[variables]
mysql_url = {{ default = "{mysql_url}" }}
redis_url = {{ default = "{redis}" }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{}"
allowed_outbound_hosts = [{}]
[component.probe.variables]
mysql_url = "{{{{ mysql_url }}}}"
redis_url = "{{{{ redis_url }}}}"
"#,
        http_probe(),
        hosts.join(", ")
    )
}
