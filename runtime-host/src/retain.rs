//! `--component-id`: run only some of an application's components, as `spin up --component-id`
//! does (and as containerd-shim-spin does with `SPIN_COMPONENTS_TO_RETAIN`, which spin-operator sets
//! from a SpinApp's `components`).
//!
//! Spin's rules (v3.6.3, `spin_app::retain_components` with
//! `validate_service_chaining_for_components`): every named id must be a component of the app; a
//! retained component may not chain (`allowed_outbound_hosts` naming `http://<id>.spin.internal`)
//! to a component that is not retained, nor use wildcard chaining (`*.spin.internal`), since the
//! target would not be there; templated entries are not checked. What stays is each trigger whose
//! component is named, and the components those triggers use. Variables all stay: a required one
//! must still have a value, whichever components run.

use std::collections::BTreeSet;

use crate::manifest::Manifest;
use crate::outbound_hosts::SERVICE_CHAINING_SUFFIX;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetainError {
    #[error("--component-id {id:?}: the application has no such component (it has: {available})")]
    Unknown { id: String, available: String },
    #[error(
        "selected component {component:?} cannot use service chaining to unselected component {target:?} (allowed_outbound_hosts = [\"{entry}\"]): add --component-id {target}"
    )]
    ChainsToDropped {
        component: String,
        target: String,
        entry: String,
    },
    #[error(
        "selected component {component:?} cannot use wildcard service chaining (allowed_outbound_hosts = [\"{entry}\"]) when only some components run: name the targets one by one"
    )]
    WildcardChaining { component: String, entry: String },
}

/// The manifest with only `ids` and their triggers; every id must exist. An empty `ids` keeps all.
pub fn retain_components(mut manifest: Manifest, ids: &[String]) -> Result<Manifest, RetainError> {
    if ids.is_empty() {
        return Ok(manifest);
    }
    for id in ids {
        if !manifest.components.contains_key(id) {
            return Err(RetainError::Unknown {
                id: id.clone(),
                available: manifest
                    .components
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let selected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    // As Spin: only components that some trigger runs are checked (and kept).
    let triggered: BTreeSet<&str> = manifest
        .http_triggers
        .iter()
        .map(|t| t.component.as_str())
        .chain(manifest.redis_triggers.iter().map(|t| t.component.as_str()))
        .filter(|c| selected.contains(c))
        .collect();
    for component in &triggered {
        for entry in &manifest.components[*component].allowed_outbound_hosts {
            let Some(target) = chaining_target(entry) else {
                continue;
            };
            if target == "*" {
                return Err(RetainError::WildcardChaining {
                    component: (*component).to_owned(),
                    entry: entry.clone(),
                });
            }
            if !selected.contains(target) {
                return Err(RetainError::ChainsToDropped {
                    component: (*component).to_owned(),
                    target: target.to_owned(),
                    entry: entry.clone(),
                });
            }
        }
    }
    let keep: BTreeSet<String> = triggered.iter().map(|c| (*c).to_owned()).collect();
    manifest
        .http_triggers
        .retain(|t| keep.contains(&t.component));
    manifest
        .redis_triggers
        .retain(|t| keep.contains(&t.component));
    manifest.components.retain(|id, _| keep.contains(id));
    Ok(manifest)
}

/// `<id>` of an entry whose host is `<id>.spin.internal` (`*` for the wildcard); `None` for any
/// other host and for templated entries, which are not resolved yet (as in Spin).
fn chaining_target(entry: &str) -> Option<&str> {
    if entry.contains("{{") {
        return None;
    }
    let (_, rest) = entry.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // An IPv6 literal's colons never end in the suffix, so the first ':' is enough.
    let host = authority.split(':').next().unwrap_or(authority);
    host.strip_suffix(SERVICE_CHAINING_SUFFIX)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[application.trigger.redis]
address = "redis://127.0.0.1:6379"
[variables]
secret = { required = true }
[[trigger.http]]
route = "/..."
component = "gateway"
[[trigger.http]]
route = { private = true }
component = "auth"
[[trigger.redis]]
channel = "events"
component = "notifier"
[component.gateway]
source = "gateway.wasm"
allowed_outbound_hosts = ["http://auth.spin.internal", "redis://{{ host }}:6379"]
[component.gateway.variables]
host = "{{ secret }}"
[component.auth]
source = "auth.wasm"
[component.notifier]
source = "notifier.wasm"
allowed_outbound_hosts = ["http://*.spin.internal"]
[component.untriggered]
source = "lib.wasm"
"#;

    fn app() -> Manifest {
        Manifest::parse(APP, Path::new("spin.toml"), Path::new("/app")).expect("valid manifest")
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn keeps_the_named_components_and_only_their_triggers() {
        let m =
            retain_components(app(), &ids(&["gateway", "auth"])).expect("gateway chains to auth");
        assert_eq!(m.components.keys().collect::<Vec<_>>(), ["auth", "gateway"]);
        assert_eq!(m.http_triggers.len(), 2);
        assert!(m.redis_triggers.is_empty());
        assert!(m.variables.contains_key("secret"), "variables all stay");
    }

    #[test]
    fn no_ids_keeps_everything() {
        let m = retain_components(app(), &[]).expect("all");
        assert_eq!(m.components.len(), 4);
    }

    #[test]
    fn an_unknown_id_is_refused_naming_it_and_the_components() {
        let e = retain_components(app(), &ids(&["gateway", "auth", "nope"])).unwrap_err();
        assert!(
            matches!(&e, RetainError::Unknown { id, .. } if id == "nope"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("auth, gateway, notifier, untriggered"),
            "{e}"
        );
    }

    #[test]
    fn chaining_to_a_dropped_component_is_refused() {
        let e = retain_components(app(), &ids(&["gateway"])).unwrap_err();
        assert_eq!(
            e,
            RetainError::ChainsToDropped {
                component: "gateway".into(),
                target: "auth".into(),
                entry: "http://auth.spin.internal".into(),
            }
        );
        assert!(e.to_string().contains("--component-id auth"), "{e}");
    }

    #[test]
    fn wildcard_chaining_is_refused_when_selecting() {
        let e = retain_components(app(), &ids(&["notifier"])).unwrap_err();
        assert!(matches!(e, RetainError::WildcardChaining { .. }), "{e}");
    }

    #[test]
    fn a_component_without_a_trigger_is_dropped_even_when_named() {
        // Spin keeps the components of the retained triggers only.
        let m = retain_components(app(), &ids(&["auth", "untriggered"])).expect("valid ids");
        assert_eq!(m.components.keys().collect::<Vec<_>>(), ["auth"]);
    }

    #[test]
    fn chaining_targets_are_read_from_hosts() {
        for (entry, want) in [
            ("http://auth.spin.internal", Some("auth")),
            ("https://auth.spin.internal:443", Some("auth")),
            ("http://auth.spin.internal/path", Some("auth")),
            ("http://*.spin.internal", Some("*")),
            ("http://*.spin.internal:*", Some("*")),
            ("http://example.com", None),
            ("http://{{ x }}.spin.internal", None),
            ("http://spin.internal", None),
            ("not a url", None),
        ] {
            assert_eq!(chaining_target(entry), want, "{entry}");
        }
    }
}
