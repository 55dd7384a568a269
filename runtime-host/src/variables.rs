//! Application variables and component variable templates, resolved once at start.
//!
//! A value comes, highest priority first, from `--variable name=value`, the environment
//! (`SPIN_VARIABLE_<NAME>`), then the manifest default. A required variable with no value fails
//! the start naming it. Components see only their own `[component.x.variables]`, rendered from
//! the application values; secret values are wrapped so that `Debug` cannot print them.

use std::collections::{BTreeMap, HashMap};

// A variable's value never reaches a log: the project's one secret type.
use vid2mp3_contracts::Secret;

use crate::manifest::Manifest;
use crate::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum VariablesError {
    #[error(
        "required variable {0:?} has no value: pass --variable {0}=VALUE or set SPIN_VARIABLE_{upper}",
        upper = .0.to_ascii_uppercase()
    )]
    MissingRequired(String),
    #[error("--variable {0:?} is not declared in the manifest's [variables]")]
    UnknownOverride(String),
    #[error("template refers to undefined variable {0:?}")]
    Undefined(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// One component's variables, fully rendered.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    values: BTreeMap<String, Secret>,
}

impl ComponentVariables {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(Secret::expose)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// The application's variables with their resolved values.
#[derive(Debug, Clone, Default)]
pub struct ResolvedVariables {
    app: BTreeMap<String, Secret>,
    components: HashMap<String, ComponentVariables>,
}

impl ResolvedVariables {
    /// `overrides` are the `--variable` pairs; `env` looks up `SPIN_VARIABLE_*`.
    pub fn resolve(
        manifest: &Manifest,
        overrides: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, VariablesError> {
        for (name, _) in overrides {
            if !manifest.variables.contains_key(name) {
                return Err(VariablesError::UnknownOverride(name.clone()));
            }
        }
        let mut app = BTreeMap::new();
        for (name, decl) in &manifest.variables {
            let from_flag = overrides
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone());
            let value = from_flag
                .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())))
                .or_else(|| decl.default.clone())
                .ok_or_else(|| VariablesError::MissingRequired(name.clone()))?;
            app.insert(name.clone(), Secret::new(value));
        }
        let mut components = HashMap::new();
        for (id, decl) in &manifest.components {
            let mut values = BTreeMap::new();
            for (name, text) in &decl.variables {
                // The manifest validated these templates at load.
                let template =
                    Template::parse(text).map_err(|_| VariablesError::Undefined(name.clone()))?;
                let value =
                    template.render(|n| app.get(n).map(|s: &Secret| s.expose().to_owned()))?;
                values.insert(name.clone(), Secret::new(value));
            }
            components.insert(id.clone(), ComponentVariables { values });
        }
        Ok(Self { app, components })
    }

    pub fn component(&self, id: &str) -> ComponentVariables {
        self.components.get(id).cloned().unwrap_or_default()
    }

    pub fn app_value(&self, name: &str) -> Option<&str> {
        self.app.get(name).map(Secret::expose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
greeting = { default = "hello" }
api_key = { required = true, secret = true }
[component.a]
source = "a.wasm"
[component.a.variables]
message = "{{ greeting }}, world"
key = "{{api_key}}"
[component.b]
source = "b.wasm"
"#,
            Path::new("spin.toml"),
            Path::new("/"),
        )
        .expect("valid manifest")
    }

    #[test]
    fn priority_is_flag_then_env_then_default() {
        let m = manifest();
        let env = |k: &str| match k {
            "SPIN_VARIABLE_API_KEY" => Some("from-env".to_owned()),
            "SPIN_VARIABLE_GREETING" => Some("hi".to_owned()),
            _ => None,
        };
        let r = ResolvedVariables::resolve(&m, &[], env).expect("resolves");
        assert_eq!(r.app_value("api_key"), Some("from-env"));
        assert_eq!(r.component("a").get("message"), Some("hi, world"));

        let flags = vec![("api_key".to_owned(), "from-flag".to_owned())];
        let r = ResolvedVariables::resolve(&m, &flags, env).expect("resolves");
        assert_eq!(r.component("a").get("key"), Some("from-flag"));

        let r = ResolvedVariables::resolve(&m, &flags, |_| None).expect("resolves");
        assert_eq!(r.component("a").get("message"), Some("hello, world"));
    }

    #[test]
    fn missing_required_names_the_variable() {
        let err = ResolvedVariables::resolve(&manifest(), &[], |_| None)
            .expect_err("api_key is required");
        assert!(err.to_string().contains("\"api_key\""), "{err}");
        assert!(err.to_string().contains("SPIN_VARIABLE_API_KEY"), "{err}");
    }

    #[test]
    fn unknown_override_is_rejected() {
        let flags = vec![("nope".to_owned(), "x".to_owned())];
        assert!(matches!(
            ResolvedVariables::resolve(&manifest(), &flags, |_| None),
            Err(VariablesError::UnknownOverride(n)) if n == "nope"
        ));
    }

    #[test]
    fn components_see_only_their_own_and_secrets_do_not_print() {
        let flags = vec![("api_key".to_owned(), "s3cr3t".to_owned())];
        let r = ResolvedVariables::resolve(&manifest(), &flags, |_| None).expect("resolves");
        assert_eq!(r.component("b").get("message"), None);
        assert_eq!(
            r.component("a").get("greeting"),
            None,
            "app variables are not component variables"
        );
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }
}
