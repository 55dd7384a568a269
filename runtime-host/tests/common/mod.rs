//! Shared by runtime-host's integration tests: what is runtime-host's own (its fixtures, an app
//! in a temp dir, the probe manifest). The services, readiness polling and unique names come
//! from `vid2mp3-test-support-core`, which (unlike `vid2mp3-test-support`) does not depend on
//! runtime-host.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runtime_host::{RunningApp, UpOptions};
use vid2mp3_test_support_core::{ServiceUrls, unique_name, wasm_component};

/// The `.wasm` of a fixture (or real) component built with `--profile component`.
pub fn component_wasm(crate_name: &str) -> PathBuf {
    wasm_component(crate_name).unwrap_or_else(|e| {
        panic!(
            "{e} (or: cargo build --target wasm32-wasip2 --profile component -p fixture-http-probe \
             -p fixture-redis-probe)"
        )
    })
}

pub fn http_probe() -> String {
    component_wasm("fixture_http_probe").display().to_string()
}

pub fn redis_probe() -> String {
    component_wasm("fixture_redis_probe").display().to_string()
}

/// A connection to the shared Redis for a test's own keys. Its reply timeout is long enough
/// for the large values some tests write while the machine is busy (redis-rs's default is
/// half a second).
pub async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    redis::Client::open(ServiceUrls::from_env().redis)
        .expect("redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("redis (scripts/services start)")
}

/// A manifest written to its own temp dir (removed on drop).
pub struct TempManifest {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl TempManifest {
    pub fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_name("rh-test-"));
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

/// A value for a query string: everything but RFC 3986's unreserved characters is escaped.
pub fn percent_encode(s: &str) -> String {
    const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
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
