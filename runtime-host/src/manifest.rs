//! `spin.toml` (manifest version 2): the subset runtime-host runs.
//!
//! Every table is `deny_unknown_fields`, so a key we do not implement (a key-value store, an sqlite
//! database, a static-response route, ...) fails at load naming the key instead of being silently
//! ignored: a component that would work on Spin must not half-work here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outbound_hosts::{AllowedHostsError, AllowedPattern};
use crate::routing::{RouteError, RouteSpec};
use crate::template::{self, Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}; check the path given with -f and its permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid manifest {path}: it is not a Spin manifest (version 2) TOML document")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("unsupported spin_manifest_version {0}: runtime-host reads version 2")]
    Version(i64),
    #[error("[[trigger.{trigger}]] refers to component {component:?}, which is not defined")]
    UnknownComponent { trigger: String, component: String },
    #[error("invalid variable name {name:?}: {reason}")]
    VariableName { name: String, reason: String },
    #[error(
        "variable {0:?} must have either a default or `required = true`, not both and not neither"
    )]
    VariableDeclaration(String),
    #[error("component {component:?}: variable {variable:?}: {source}")]
    ComponentVariable {
        component: String,
        variable: String,
        source: TemplateError,
    },
    #[error(
        "component {component:?}: variable {variable:?} refers to application variable {reference:?}, which is not declared in [variables]"
    )]
    UndeclaredReference {
        component: String,
        variable: String,
        reference: String,
    },
    #[error("component {component:?}: allowed_outbound_hosts: {source}")]
    AllowedHosts {
        component: String,
        source: AllowedHostsError,
    },
    #[error("[[trigger.http]] for component {component:?}: {source}")]
    Route {
        component: String,
        source: RouteError,
    },
    #[error(
        "[[trigger.redis]] for component {0:?} has no address, and [application.trigger.redis] sets none"
    )]
    RedisAddress(String),
    #[error("component {component:?}: files: {reason}")]
    Files { component: String, reason: String },
    #[error("component id {0:?} is invalid: use lowercase letters, digits and '-' (kebab-case)")]
    ComponentId(String),
}

/// The parsed, validated manifest with paths made absolute.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub application: Application,
    pub variables: BTreeMap<String, VariableDecl>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    pub components: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: ApplicationTriggers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTriggers {
    #[serde(default)]
    pub redis: Option<ApplicationRedis>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRedis {
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(default)]
    redis: Vec<RawRedisTrigger>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[serde(default)]
    id: Option<String>,
    route: RawRoute,
    component: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private(PrivateRoute),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateRoute {
    private: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    #[serde(default)]
    id: Option<String>,
    channel: String,
    component: String,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    pub id: Option<String>,
    /// `None` for a private component: reachable only through service chaining.
    pub route: Option<RouteSpec>,
    pub component: String,
}

#[derive(Debug, Clone)]
pub struct RedisTrigger {
    pub id: Option<String>,
    pub channel: String,
    pub component: String,
    /// The trigger's own address, else the application's.
    pub address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    pub source: PathBuf,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<FileMount>,
    #[serde(default)]
    pub build: Option<BuildDecl>,
}

/// `files` entries: a path (file or directory) relative to the manifest, mounted at the same path
/// under `/`, or an explicit `{ source, destination }` directory mount.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    Path(String),
    Mapping(FileMapping),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMapping {
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    pub command: BuildCommand,
    #[serde(default)]
    pub workdir: Option<String>,
    /// Only meaningful to `spin watch`; accepted so Spin manifests load unchanged.
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BuildCommand {
    One(String),
    Many(Vec<String>),
}

impl BuildCommand {
    pub fn commands(&self) -> Vec<&str> {
        match self {
            BuildCommand::One(c) => vec![c.as_str()],
            BuildCommand::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Self::parse(&text, path, &dir)
    }

    /// Parses and validates; `dir` is what relative `source` and `files` paths are relative to.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|source| ManifestError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::Version(raw.spin_manifest_version));
        }

        for (name, decl) in &raw.variables {
            template::validate_name(name).map_err(|reason| ManifestError::VariableName {
                name: name.clone(),
                reason,
            })?;
            if decl.required == decl.default.is_some() {
                return Err(ManifestError::VariableDeclaration(name.clone()));
            }
        }

        let mut components = BTreeMap::new();
        for (id, mut decl) in raw.component {
            validate_component_id(&id)?;
            for (name, value) in &decl.variables {
                template::validate_name(name).map_err(|reason| ManifestError::VariableName {
                    name: format!("{id}.{name}"),
                    reason,
                })?;
                let template =
                    Template::parse(value).map_err(|source| ManifestError::ComponentVariable {
                        component: id.clone(),
                        variable: name.clone(),
                        source,
                    })?;
                for reference in template.references() {
                    if !raw.variables.contains_key(reference) {
                        return Err(ManifestError::UndeclaredReference {
                            component: id.clone(),
                            variable: name.clone(),
                            reference: reference.to_owned(),
                        });
                    }
                }
            }
            for host in &decl.allowed_outbound_hosts {
                validate_allowed_host(host, &raw.variables).map_err(|source| {
                    ManifestError::AllowedHosts {
                        component: id.clone(),
                        source,
                    }
                })?;
            }
            for mount in &decl.files {
                validate_file_mount(&id, mount)?;
            }
            if decl.source.is_relative() {
                decl.source = dir.join(&decl.source);
            }
            components.insert(id, decl);
        }

        let mut http_triggers = Vec::new();
        for t in raw.trigger.http {
            if !components.contains_key(&t.component) {
                return Err(ManifestError::UnknownComponent {
                    trigger: "http".into(),
                    component: t.component,
                });
            }
            let route = match t.route {
                RawRoute::Path(p) => {
                    Some(RouteSpec::parse(&p).map_err(|source| ManifestError::Route {
                        component: t.component.clone(),
                        source,
                    })?)
                }
                RawRoute::Private(PrivateRoute { private: true }) => None,
                RawRoute::Private(PrivateRoute { private: false }) => {
                    return Err(ManifestError::Route {
                        component: t.component.clone(),
                        source: RouteError::PrivateFalse,
                    });
                }
            };
            http_triggers.push(HttpTrigger {
                id: t.id,
                route,
                component: t.component,
            });
        }

        let app_redis = raw
            .application
            .trigger
            .redis
            .as_ref()
            .map(|r| r.address.clone());
        let mut redis_triggers = Vec::new();
        for t in raw.trigger.redis {
            if !components.contains_key(&t.component) {
                return Err(ManifestError::UnknownComponent {
                    trigger: "redis".into(),
                    component: t.component,
                });
            }
            let address = match t.address.or_else(|| app_redis.clone()) {
                Some(a) => a,
                None => return Err(ManifestError::RedisAddress(t.component)),
            };
            redis_triggers.push(RedisTrigger {
                id: t.id,
                channel: t.channel,
                component: t.component,
                address,
            });
        }

        Ok(Manifest {
            path: path.to_owned(),
            dir: dir.to_owned(),
            application: raw.application,
            variables: raw.variables,
            http_triggers,
            redis_triggers,
            components,
        })
    }
}

/// An `allowed_outbound_hosts` entry, checked as Spin checks it at load. A literal entry must be
/// a valid pattern. A template names application variables (not the component's); when every
/// one it names has a default, the entry the defaults give must be valid. Anything else (a
/// variable without a default, one that is not declared) is only known when the app runs, and
/// an entry that cannot be rendered then fails the component's connections, not the start.
fn validate_allowed_host(
    host: &str,
    variables: &BTreeMap<String, VariableDecl>,
) -> Result<(), AllowedHostsError> {
    let template = Template::parse_unchecked(host).map_err(AllowedHostsError::Template)?;
    if template.is_literal() {
        return AllowedPattern::parse(host).map(drop);
    }
    let Ok(rendered) = template.render(|name| variables.get(name)?.default.clone()) else {
        return Ok(());
    };
    if crate::outbound_hosts::allows_nothing(&rendered) {
        return Ok(());
    }
    AllowedPattern::parse(&rendered)
        .map(drop)
        .map_err(|e| AllowedHostsError::InvalidWithDefaults {
            template: host.to_owned(),
            rendered,
            reason: Box::new(e),
        })
}

fn validate_component_id(id: &str) -> Result<(), ManifestError> {
    let ok = id.split('-').all(|word| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }) && id.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(ManifestError::ComponentId(id.to_owned()))
    }
}

fn validate_file_mount(component: &str, mount: &FileMount) -> Result<(), ManifestError> {
    let fail = |reason: String| ManifestError::Files {
        component: component.to_owned(),
        reason,
    };
    match mount {
        FileMount::Path(p) => {
            if p.contains(['*', '?', '[']) {
                return Err(fail(format!(
                    "glob patterns ({p:?}) are not supported by runtime-host; name a file or directory"
                )));
            }
            if Path::new(p).is_absolute() || p.split('/').any(|s| s == "..") {
                return Err(fail(format!(
                    "{p:?} must be relative to the manifest and stay inside it"
                )));
            }
        }
        FileMount::Mapping(m) => {
            if !m.destination.starts_with('/') {
                return Err(fail(format!(
                    "destination {:?} must be absolute",
                    m.destination
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("spin.toml"), Path::new("/app"))
    }

    const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"t\"\n";

    #[test]
    fn loads_the_project_manifest() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spin.toml");
        let m = Manifest::load(&path).expect("the repository's spin.toml loads");
        assert_eq!(m.components.len(), 3);
        assert!(
            m.http_triggers
                .iter()
                .any(|t| t.component == "auth" && t.route.is_none())
        );
        // A template, rendered with the app's variables when the trigger starts (app.rs).
        assert_eq!(m.redis_triggers[0].address, "{{ notifier_redis_url }}");
        assert!(
            m.components["gateway"].source.is_absolute()
                || m.components["gateway"].source.starts_with("..")
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let cases = [
            (
                "top level",
                format!(
                    "{HEADER}[component.a]\nsource = \"a.wasm\"\nkey_value_stores = [\"default\"]\n"
                ),
                "key_value_stores",
            ),
            (
                "application",
                format!("{HEADER}colour = \"red\"\n"),
                "colour",
            ),
            (
                "trigger",
                format!(
                    "{HEADER}[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = {{ type = \"wagi\" }}\n[component.a]\nsource = \"a.wasm\"\n"
                ),
                "executor",
            ),
            (
                "variable",
                format!("{HEADER}[variables]\nx = {{ default = \"1\", sneaky = true }}\n"),
                "sneaky",
            ),
            (
                "trigger kind",
                format!("{HEADER}[[trigger.mqtt]]\ncomponent = \"a\"\n"),
                "mqtt",
            ),
            ("top-level key", format!("{HEADER}[oci]\nx = 1\n"), "oci"),
        ];
        for (what, text, key) in cases {
            // serde names the key; its error is the source, printed with the chain.
            let err = format!("{:#}", anyhow::Error::from(parse(&text).expect_err(what)));
            assert!(err.contains(key), "{what}: {err:?} should name {key}");
        }
    }

    #[test]
    fn private_routes_and_paths() {
        let m = parse(&format!(
            "{HEADER}[[trigger.http]]\nroute = \"/api/...\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"b\"\n[component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"/abs/b.wasm\"\n"
        ))
        .expect("valid");
        assert!(m.http_triggers[0].route.is_some());
        assert!(m.http_triggers[1].route.is_none());
        assert_eq!(m.components["a"].source, Path::new("/app/a.wasm"));
        assert_eq!(m.components["b"].source, Path::new("/abs/b.wasm"));
    }

    #[test]
    fn invalid_manifests_fail_with_a_reason() {
        let cases = [
            (
                "version",
                "spin_manifest_version = 1\n[application]\nname = \"t\"\n".to_string(),
                "version",
            ),
            (
                "unknown component",
                format!("{HEADER}[[trigger.http]]\nroute = \"/\"\ncomponent = \"nope\"\n"),
                "nope",
            ),
            (
                "private false",
                format!(
                    "{HEADER}[[trigger.http]]\nroute = {{ private = false }}\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n"
                ),
                "private",
            ),
            (
                "required and default",
                format!("{HEADER}[variables]\nx = {{ default = \"1\", required = true }}\n"),
                "\"x\"",
            ),
            (
                "neither",
                format!("{HEADER}[variables]\nx = {{ secret = true }}\n"),
                "\"x\"",
            ),
            (
                "bad variable name",
                format!("{HEADER}[variables]\nBad = {{ default = \"1\" }}\n"),
                "Bad",
            ),
            (
                "undeclared reference",
                format!(
                    "{HEADER}[component.a]\nsource = \"a.wasm\"\n[component.a.variables]\nv = \"{{{{ missing }}}}\"\n"
                ),
                "missing",
            ),
            (
                "bad host",
                format!(
                    "{HEADER}[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"example.com\"]\n"
                ),
                "scheme",
            ),
            (
                "host template whose defaults give an invalid entry",
                format!(
                    "{HEADER}[variables]\nh = {{ default = \"a/b/c\" }}\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"http://{{{{ h }}}}\"]\n"
                ),
                "using default variable value(s) with template \"http://{{ h }}\" results in invalid config \"http://a/b/c\"",
            ),
            (
                "host template that does not close",
                format!(
                    "{HEADER}[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"http://{{{{ h\"]\n"
                ),
                "unclosed",
            ),
            (
                "redis without address",
                format!(
                    "{HEADER}[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n"
                ),
                "address",
            ),
            (
                "glob files",
                format!(
                    "{HEADER}[component.a]\nsource = \"a.wasm\"\nfiles = [\"static/*.html\"]\n"
                ),
                "glob",
            ),
            (
                "component id",
                format!("{HEADER}[component.Big_One]\nsource = \"a.wasm\"\n"),
                "Big_One",
            ),
            (
                "route",
                format!(
                    "{HEADER}[[trigger.http]]\nroute = \"/a/.../b\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n"
                ),
                "/a/.../b",
            ),
        ];
        for (what, text, needle) in cases {
            let err = parse(&text).expect_err(what).to_string();
            assert!(
                err.contains(needle),
                "{what}: {err:?} should contain {needle:?}"
            );
        }
    }

    #[test]
    fn allowed_host_templates_name_application_variables_as_in_spin() {
        // Spin 3.x loads all of these; the first is its runtime test
        // `outbound-mysql-variable-permission`. What cannot be rendered at load (no default, an
        // undeclared or invalid name) is left to the component's first connection.
        for (what, variables, entry) in [
            (
                "app variable, no component variable",
                "mysql_host = { default = \"localhost\" }",
                "mysql://{{ mysql_host }}:3306",
            ),
            (
                "required app variable",
                "h = { required = true }",
                "mysql://{{ h }}",
            ),
            ("undeclared", "", "mysql://{{ nowhere }}"),
            ("not a variable name", "", "mysql://{{ Not-A-Name }}"),
        ] {
            let m = parse(&format!(
                "{HEADER}[variables]\n{variables}\n[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"{entry}\"]\n"
            ));
            assert!(m.is_ok(), "{what}: {:?}", m.err().map(|e| e.to_string()));
        }
    }

    #[test]
    fn redis_trigger_address_falls_back_to_the_application() {
        let m = parse(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n[application.trigger.redis]\naddress = \"redis://app:6379\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"a\"\n[[trigger.redis]]\nchannel = \"d\"\ncomponent = \"a\"\naddress = \"redis://own:6379\"\n[component.a]\nsource = \"a.wasm\"\n"
        )
        .expect("valid");
        assert_eq!(m.redis_triggers[0].address, "redis://app:6379");
        assert_eq!(m.redis_triggers[1].address, "redis://own:6379");
    }
}
