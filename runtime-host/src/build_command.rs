//! `runtime-host build`: runs each component's `[component.x.build]` commands, like `spin build`.

use std::process::Command;

use crate::manifest::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "component {component:?}: cannot run {command:?}; check that its program is installed and on PATH"
    )]
    Spawn {
        component: String,
        command: String,
        source: std::io::Error,
    },
    #[error("component {component:?}: {command:?} failed with {status}")]
    Failed {
        component: String,
        command: String,
        status: std::process::ExitStatus,
    },
}

/// Runs the build commands of `only` (or of every component), in the manifest's directory or the
/// build's `workdir`, with inherited stdio so the compiler's output reaches the user.
pub fn build(manifest: &Manifest, only: &[String]) -> Result<usize, BuildError> {
    let mut built = 0;
    for (id, component) in &manifest.components {
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        let Some(build) = &component.build else {
            tracing::info!(component = %id, "no build command");
            continue;
        };
        let dir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        for command in build.command.commands() {
            tracing::info!(component = %id, command, "building");
            let status = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&dir)
                .status()
                .map_err(|source| BuildError::Spawn {
                    component: id.clone(),
                    command: command.to_owned(),
                    source,
                })?;
            if !status.success() {
                return Err(BuildError::Failed {
                    component: id.clone(),
                    command: command.to_owned(),
                    status,
                });
            }
        }
        built += 1;
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest(dir: &Path, command: &str) -> Manifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"b\"\n[component.one]\nsource = \"one.wasm\"\n[component.one.build]\ncommand = {command:?}\nwatch = [\"src/**/*.rs\"]\n[component.two]\nsource = \"two.wasm\"\n"
        );
        Manifest::parse(&text, &dir.join("spin.toml"), dir).expect("valid manifest")
    }

    #[test]
    fn runs_build_commands_in_the_manifest_dir_and_reports_failures() {
        let dir = std::env::temp_dir().join(format!("rh-build-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let built = build(&manifest(&dir, "echo built > marker.txt"), &[]).expect("build succeeds");
        assert_eq!(built, 1, "only `one` has a build section");
        assert_eq!(
            std::fs::read_to_string(dir.join("marker.txt"))
                .expect("marker")
                .trim(),
            "built"
        );

        let err =
            build(&manifest(&dir, "exit 3"), &[]).expect_err("a failing command fails the build");
        assert!(
            matches!(&err, BuildError::Failed { component, .. } if component == "one"),
            "{err}"
        );

        assert_eq!(
            build(&manifest(&dir, "exit 3"), &["two".to_owned()]).expect("filtered"),
            0
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
