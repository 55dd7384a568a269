//! `--runtime-config-file`: Spin's runtime configuration TOML, as far as runtime-host can honour it.
//!
//! spin-operator mounts one at `/runtime-config.toml` for a `spinImage` executor; for a SpinApp
//! without key-value stores, SQLite databases or an LLM it holds only
//! `[[config_provider]] type = 'env' prefix = 'SPIN_VARIABLE_'`.
//!
//! What Spin 3.6.3 reads, and what runtime-host does with it:
//!
//! | key | here |
//! |---|---|
//! | `[[variables_provider]]` / `[[config_provider]]` (the old name; the first present wins) `type = "env"` (`prefix`, `dotenv_path`) and `type = "static"` (`values`) | honoured, in order, after `--variable` and before the default environment provider (`SPIN_VARIABLE_<NAME>`), which Spin always appends |
//! | `type = "vault"`, `type = "azure_key_vault"` providers | refused: runtime-host cannot reach them |
//! | `max_instance_memory` (bytes) | honoured: each instance's linear memories |
//! | `key_value_store`, `sqlite_database`, `llm_compute`, `state_dir`, `log_dir` | ignored with a warning naming them: runtime-host refuses manifests that use key-value stores, SQLite or LLMs, and logs to stderr |
//! | `outbound_networking`, `client_tls`, `outbound_http` | refused: they change what components may reach and how, which runtime-host would silently not do |
//! | anything else | refused as Spin does ("unused runtime config key(s)") |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Bytes a runtime config file may have; it is a handful of tables.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error(
        "cannot read runtime config file {path}; check the path given with --runtime-config-file"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runtime config file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("invalid runtime config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid runtime config file {path}{}: fix the TOML at the place named below", in_table(.table))]
    Toml {
        path: PathBuf,
        /// The table whose entries did not fit, when the file as a whole parsed.
        table: Option<&'static str>,
        // Boxed: toml's error is large, and every Result of this module carries this enum.
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error(
        "runtime config file {path}: [[{table}]] type {kind:?} is not supported by runtime-host (it reads \"env\" and \"static\" providers)"
    )]
    UnsupportedProvider {
        path: PathBuf,
        table: &'static str,
        kind: String,
    },
    #[error(
        "runtime config file {path}: [{key}] is not supported by runtime-host ({why}); remove it or run the app on Spin"
    )]
    Unsupported {
        path: PathBuf,
        key: String,
        why: &'static str,
    },
    #[error("runtime config file {path}: unused runtime config key(s): {keys}")]
    UnknownKeys { path: PathBuf, keys: String },
    #[error("runtime config file {path}: dotenv_path {dotenv}: {message}")]
    Dotenv {
        path: PathBuf,
        dotenv: PathBuf,
        message: String,
    },
    #[error(
        "runtime config file {path}: dotenv_path {dotenv} cannot be read; check that it exists and is a dotenv file (NAME=value lines)"
    )]
    DotenvRead {
        path: PathBuf,
        dotenv: PathBuf,
        #[source]
        source: DotenvError,
    },
}

/// What went wrong reading a dotenv file: the file itself, or a line in it.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("the file cannot be opened")]
    Open(#[source] std::io::Error),
    #[error("a line cannot be read")]
    Line(#[source] dotenvy::Error),
}

fn in_table(table: &Option<&'static str>) -> String {
    table.map(|t| format!(" in [[{t}]]")).unwrap_or_default()
}

/// One source of variable values, in the order Spin asks them.
#[derive(Debug, Clone)]
pub enum VariablesProvider {
    /// `{prefix}_{NAME}` from the environment (Spin joins them with `_` even when the prefix ends
    /// in one), then the dotenv file's entries under the same key.
    Env {
        prefix: String,
        dotenv: HashMap<String, String>,
    },
    /// Values given in the file itself.
    Static { values: HashMap<String, String> },
}

impl VariablesProvider {
    fn get(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            VariablesProvider::Env { prefix, dotenv } => {
                let key = format!("{prefix}_{}", name.to_ascii_uppercase());
                env(&key).or_else(|| dotenv.get(&key).cloned())
            }
            VariablesProvider::Static { values } => values.get(name).cloned(),
        }
    }
}

/// What a runtime config file asks of runtime-host.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfigFile {
    pub variables_providers: Vec<VariablesProvider>,
    pub max_instance_memory: Option<usize>,
    /// Keys that were accepted but have no effect here (logged at start).
    pub ignored: Vec<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawProvider {
    Env {
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        dotenv_path: Option<PathBuf>,
    },
    Static {
        values: HashMap<String, String>,
    },
    Vault {},
    AzureKeyVault {},
}

/// The prefix Spin's environment provider uses when none is configured.
const DEFAULT_ENV_PREFIX: &str = "SPIN_VARIABLE";

impl RuntimeConfigFile {
    pub fn load(path: &Path) -> Result<Self, RuntimeConfigError> {
        let read = |source| RuntimeConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_FILE_BYTES {
            return Err(RuntimeConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, RuntimeConfigError> {
        let parse_error = |message: String| RuntimeConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let toml_error = |table| {
            move |source| RuntimeConfigError::Toml {
                path: path.to_owned(),
                table,
                source: Box::new(source),
            }
        };
        let mut table: toml::Table = toml::from_str(text).map_err(toml_error(None))?;
        let mut config = RuntimeConfigFile::default();

        // Spin reads `variables_provider`, else the older `config_provider`; the other stays unused.
        let table_name = if table.contains_key("variables_provider") {
            "variables_provider"
        } else {
            "config_provider"
        };
        let unsupported = |kind: &str| RuntimeConfigError::UnsupportedProvider {
            path: path.to_owned(),
            table: table_name,
            kind: kind.to_owned(),
        };
        if let Some(value) = table.remove(table_name) {
            let raw: Vec<RawProvider> = value.try_into().map_err(toml_error(Some(table_name)))?;
            for provider in raw {
                config.variables_providers.push(match provider {
                    RawProvider::Env {
                        prefix,
                        dotenv_path,
                    } => VariablesProvider::Env {
                        prefix: prefix.unwrap_or_else(|| DEFAULT_ENV_PREFIX.to_owned()),
                        dotenv: match dotenv_path {
                            Some(dotenv) => read_dotenv(path, &dotenv)?,
                            None => HashMap::new(),
                        },
                    },
                    RawProvider::Static { values } => VariablesProvider::Static { values },
                    RawProvider::Vault {} => return Err(unsupported("vault")),
                    RawProvider::AzureKeyVault {} => return Err(unsupported("azure_key_vault")),
                });
            }
        }

        if let Some(value) = table.remove("max_instance_memory") {
            let bytes = value
                .as_integer()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    parse_error(format!(
                        "max_instance_memory must be a positive number of bytes, not {value}"
                    ))
                })?;
            config.max_instance_memory = Some(bytes);
        }

        for key in [
            "key_value_store",
            "sqlite_database",
            "llm_compute",
            "state_dir",
            "log_dir",
        ] {
            if table.remove(key).is_some() {
                config.ignored.push(key.to_owned());
            }
        }
        for (key, why) in [
            (
                "outbound_networking",
                "runtime-host does not block networks beyond allowed_outbound_hosts",
            ),
            (
                "client_tls",
                "runtime-host has no per-host client TLS settings",
            ),
            (
                "outbound_http",
                "runtime-host always pools outbound connections and does not cap them",
            ),
        ] {
            if table.contains_key(key) {
                return Err(RuntimeConfigError::Unsupported {
                    path: path.to_owned(),
                    key: key.to_owned(),
                    why,
                });
            }
        }
        if !table.is_empty() {
            return Err(RuntimeConfigError::UnknownKeys {
                path: path.to_owned(),
                keys: table.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(config)
    }

    /// The value of application variable `name` from the configured providers, first match first;
    /// `env` looks up the process environment.
    pub fn variable(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        self.variables_providers
            .iter()
            .find_map(|p| p.get(name, env))
    }
}

/// A dotenv file's entries; a relative path is relative to the working directory, as in Spin.
fn read_dotenv(
    config: &Path,
    dotenv: &Path,
) -> Result<HashMap<String, String>, RuntimeConfigError> {
    let fail = |message: String| RuntimeConfigError::Dotenv {
        path: config.to_owned(),
        dotenv: dotenv.to_owned(),
        message,
    };
    let read_error = |source| RuntimeConfigError::DotenvRead {
        path: config.to_owned(),
        dotenv: dotenv.to_owned(),
        source,
    };
    let size = std::fs::metadata(dotenv)
        .map_err(|e| read_error(DotenvError::Open(e)))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    dotenvy::from_path_iter(dotenv)
        .map_err(|e| read_error(DotenvError::Line(e)))?
        .map(|entry| entry.map_err(|e| read_error(DotenvError::Line(e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfigFile, RuntimeConfigError> {
        RuntimeConfigFile::parse(text, Path::new("/runtime-config.toml"))
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn what_spin_operator_writes_is_read() {
        // spin-operator v0.6.1's file for a SpinApp without stores (its own test's expectation).
        let config =
            parse("[[config_provider]]\ntype = 'env'\nprefix = 'SPIN_VARIABLE_'\n").unwrap();
        assert_eq!(config.variables_providers.len(), 1);
        assert!(config.ignored.is_empty());
        // Spin joins prefix and name with '_', so this provider looks up SPIN_VARIABLE__NAME and the
        // default provider (SPIN_VARIABLE_NAME, always last) is what finds the operator's values.
        let e = env(&[("SPIN_VARIABLE__REDIS_URL", "from-prefixed")]);
        assert_eq!(
            config.variable("redis_url", &e).as_deref(),
            Some("from-prefixed")
        );
        let e = env(&[("SPIN_VARIABLE_REDIS_URL", "plain")]);
        assert_eq!(config.variable("redis_url", &e), None);
    }

    #[test]
    fn env_and_static_providers_answer_in_order() {
        let config = parse(
            r#"
[[variables_provider]]
type = "env"
prefix = "APP"
[[variables_provider]]
type = "static"
values = { greeting = "static hello", other = "x" }
"#,
        )
        .unwrap();
        let e = env(&[("APP_GREETING", "env hello")]);
        assert_eq!(
            config.variable("greeting", &e).as_deref(),
            Some("env hello")
        );
        let none = env(&[]);
        assert_eq!(
            config.variable("greeting", &none).as_deref(),
            Some("static hello")
        );
        assert_eq!(config.variable("missing", &none), None);
        // An env provider without a prefix uses Spin's default one.
        let config = parse("[[variables_provider]]\ntype = \"env\"\n").unwrap();
        let e = env(&[("SPIN_VARIABLE_GREETING", "default prefix")]);
        assert_eq!(
            config.variable("greeting", &e).as_deref(),
            Some("default prefix")
        );
    }

    #[test]
    fn variables_provider_wins_over_config_provider() {
        let config = parse(
            "[[variables_provider]]\ntype = \"static\"\nvalues = { a = \"new\" }\n[[config_provider]]\ntype = \"static\"\nvalues = { a = \"old\" }\n",
        );
        // As in Spin, the older table is then an unused key.
        let e = config.unwrap_err().to_string();
        assert!(
            e.contains("unused runtime config key(s): config_provider"),
            "{e}"
        );
    }

    #[test]
    fn dotenv_files_are_read() {
        let dir = std::env::temp_dir().join(format!("rc-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dotenv = dir.join("vars.env");
        std::fs::write(&dotenv, "APP_TOKEN=from-dotenv\n").unwrap();
        let text = format!(
            "[[variables_provider]]\ntype = \"env\"\nprefix = \"APP\"\ndotenv_path = {:?}\n",
            dotenv.display().to_string()
        );
        let config = parse(&text).unwrap();
        let none = env(&[]);
        assert_eq!(
            config.variable("token", &none).as_deref(),
            Some("from-dotenv")
        );
        let e = env(&[("APP_TOKEN", "env wins")]);
        assert_eq!(config.variable("token", &e).as_deref(), Some("env wins"));
        let missing = text.replace("vars.env", "missing.env");
        let err = parse(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.env"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreachable_providers_are_refused_by_type() {
        for kind in ["vault", "azure_key_vault"] {
            let e = parse(&format!(
                "[[variables_provider]]\ntype = \"{kind}\"\nurl = \"x\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(&format!("{kind:?}")), "{e}");
        }
        let e = parse("[[variables_provider]]\ntype = \"magic\"\n").unwrap_err();
        assert!(
            matches!(
                e,
                RuntimeConfigError::Toml {
                    table: Some("variables_provider"),
                    ..
                }
            ),
            "{e:?}"
        );
        // The TOML error naming the unknown type is the source, printed with the chain.
        let chain = format!("{:#}", anyhow::Error::from(e));
        assert!(chain.contains("magic"), "{chain}");
    }

    #[test]
    fn max_instance_memory_is_honoured_and_checked() {
        let config = parse("max_instance_memory = 67108864\n").unwrap();
        assert_eq!(config.max_instance_memory, Some(64 << 20));
        for bad in [
            "max_instance_memory = -1",
            "max_instance_memory = \"64MB\"",
            "max_instance_memory = 0",
        ] {
            assert!(
                parse(bad)
                    .unwrap_err()
                    .to_string()
                    .contains("max_instance_memory"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sections_for_features_runtime_host_lacks_are_ignored_by_name() {
        let config = parse(
            "state_dir = '/state'\nlog_dir = ''\n[key_value_store.default]\ntype = 'redis'\nurl = 'redis://localhost:9000'\n[sqlite_database.default]\ntype = 'spin'\n[llm_compute]\ntype = 'spin'\n",
        )
        .unwrap();
        assert_eq!(
            config.ignored,
            [
                "key_value_store",
                "sqlite_database",
                "llm_compute",
                "state_dir",
                "log_dir"
            ]
        );
    }

    #[test]
    fn sections_that_would_change_networking_are_refused_by_name() {
        for (text, key) in [
            (
                "[outbound_networking]\nblock_networks = ['private']\n",
                "outbound_networking",
            ),
            (
                "[[client_tls]]\ncomponent_ids = ['a']\nhosts = ['x:443']\n",
                "client_tls",
            ),
            (
                "[outbound_http]\nmax_concurrent_requests = 4\n",
                "outbound_http",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(&format!("[{key}]")), "{e}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_toml_are_refused() {
        let e = parse("baz = 1\n").unwrap_err().to_string();
        assert!(e.contains("unused runtime config key(s): baz"), "{e}");
        let e = parse("[[config_provider]\n").unwrap_err().to_string();
        assert!(e.contains("invalid runtime config file"), "{e}");
        let e = parse("[[config_provider]]\nprefix = 'X'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config_provider"), "{e}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_parsing() {
        let path = std::env::temp_dir().join(format!("rc-big-{}.toml", std::process::id()));
        std::fs::write(&path, "#".repeat((MAX_FILE_BYTES + 1) as usize)).unwrap();
        let e = RuntimeConfigFile::load(&path).unwrap_err();
        assert!(matches!(e, RuntimeConfigError::TooLarge { .. }), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = RuntimeConfigFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("cannot read runtime config file"), "{e}");
    }
}
