//! The real `spin.toml`, run in-process by runtime-host, for tests of the components.
//!
//! Tests run the manifest that ships, not a copy of it: the only changes are the ones a test
//! needs to stay isolated from tests running beside it (its own Redis channel, its own
//! databases through variables), and each is made explicitly by the test.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use runtime_host::{ClientLimits, RunningApp, UpOptions};

use crate::{target_dir, workspace_root};

/// runtime-host's client limits as `scripts/up` sets them for this app: the defaults, with the
/// gateway's health and readiness routes allowed the reserved slots.
pub fn app_client_limits() -> ClientLimits {
    ClientLimits {
        priority_routes: vec!["/healthz".into(), "/readyz".into()],
        ..ClientLimits::default()
    }
}

/// What a test changes in the shipped manifest before starting it.
pub struct SpinAppBuilder {
    manifest: toml::Table,
    variables: Vec<(String, String)>,
    max_request_body_bytes: Option<u64>,
    client_limits: ClientLimits,
}

impl SpinAppBuilder {
    /// The repository's `spin.toml`, with each component's `source` pointing into the target
    /// directory this test was built with.
    pub fn from_workspace_manifest() -> anyhow::Result<Self> {
        let path = workspace_root().join("spin.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut manifest: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let target = target_dir();
        if let Some(components) = manifest
            .get_mut("component")
            .and_then(toml::Value::as_table_mut)
        {
            for (id, component) in components.iter_mut() {
                let Some(source) = component.get("source").and_then(toml::Value::as_str) else {
                    continue;
                };
                let relative = source.strip_prefix("target/").unwrap_or(source);
                let wasm = target.join(relative);
                if !wasm.is_file() {
                    anyhow::bail!(
                        "component {id}: {} is not built; build the Wasm components first: scripts/build-components",
                        wasm.display()
                    );
                }
                component
                    .as_table_mut()
                    .context("a component is a table")?
                    .insert("source".into(), wasm.display().to_string().into());
            }
        }
        Ok(Self {
            manifest,
            variables: Vec::new(),
            max_request_body_bytes: None,
            client_limits: app_client_limits(),
        })
    }

    /// Sets an application variable, as `--variable name=value` would.
    pub fn variable(mut self, name: &str, value: impl Into<String>) -> Self {
        self.variables.push((name.to_owned(), value.into()));
        self
    }

    /// Points every Redis trigger at `address` and renames `channel` to `test_channel`.
    pub fn redis_channel(mut self, address: &str, channel: &str, test_channel: &str) -> Self {
        if let Some(app) = self
            .manifest
            .get_mut("application")
            .and_then(|a| a.get_mut("trigger"))
            .and_then(|t| t.get_mut("redis"))
            .and_then(toml::Value::as_table_mut)
        {
            app.insert("address".into(), address.into());
        }
        self.rename_redis_channel(channel, test_channel)
    }

    /// Renames the Redis triggers' `channel` to `test_channel`, leaving their address as
    /// spin.toml has it (a variable the test sets).
    pub fn rename_redis_channel(mut self, channel: &str, test_channel: &str) -> Self {
        if let Some(triggers) = self
            .manifest
            .get_mut("trigger")
            .and_then(|t| t.get_mut("redis"))
            .and_then(toml::Value::as_array_mut)
        {
            for trigger in triggers.iter_mut().filter_map(toml::Value::as_table_mut) {
                if trigger.get("channel").and_then(toml::Value::as_str) == Some(channel) {
                    trigger.insert("channel".into(), test_channel.into());
                }
            }
        }
        self
    }

    pub fn max_request_body_bytes(mut self, limit: u64) -> Self {
        self.max_request_body_bytes = Some(limit);
        self
    }

    /// Replaces the client limits (start from [`app_client_limits`]).
    pub fn client_limits(mut self, limits: ClientLimits) -> Self {
        self.client_limits = limits;
        self
    }

    /// Writes the manifest to a temp dir and serves it on a free loopback port.
    pub async fn start(self) -> anyhow::Result<SpinApp> {
        let dir = std::env::temp_dir().join(crate::unique_name("vid2mp3-spin-app-"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("spin.toml");
        std::fs::write(&path, toml::to_string(&self.manifest)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let mut options = UpOptions::new(&path);
        options.listen = ([127, 0, 0, 1], 0).into();
        options.variables = self.variables;
        // Only what the test set: a developer's SPIN_VARIABLE_* must not change a test.
        options.variable_env = Arc::new(|_| None);
        if let Some(limit) = self.max_request_body_bytes {
            options.max_request_body_bytes = limit;
        }
        options.client_limits = self.client_limits;
        let app = match runtime_host::start(options).await {
            Ok(app) => app,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.context("starting spin.toml under runtime-host"));
            }
        };
        let base = app
            .http_addr
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_default();
        Ok(SpinApp {
            app: Some(app),
            base,
            dir,
        })
    }
}

/// spin.toml running under runtime-host; stopped and its temp dir removed on drop.
pub struct SpinApp {
    app: Option<RunningApp>,
    base: String,
    dir: PathBuf,
}

impl SpinApp {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops taking requests and waits for the ones in flight.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

impl Drop for SpinApp {
    fn drop(&mut self) {
        // An app not stopped explicitly goes away with the test's runtime; the files go now.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
