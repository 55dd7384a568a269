//! What `up -f` names, with `spin up -f`'s meaning: a manifest file; a directory (its `spin.toml`);
//! or, when no such path exists and the text reads as one, a registry reference, pulled first
//! ([`crate::registry`]).

use std::path::{Path, PathBuf};

use crate::registry::{self, PullError, PullOptions};

#[derive(Debug, thiserror::Error)]
pub enum AppSourceError {
    #[error("directory {0} has no spin.toml; name the manifest file with -f")]
    NoManifestInDirectory(PathBuf),
    #[error(
        "file or directory {0:?} not found, and it does not read as a registry reference (e.g. registry.example.com/app:1.0)"
    )]
    NotFound(String),
    #[error(transparent)]
    Pull(#[from] PullError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// A `spin.toml` on disk.
    File(PathBuf),
    /// An image in a registry.
    Registry(String),
}

impl AppSource {
    /// Reads `-f` as Spin does: an existing path first, then a registry reference.
    pub fn infer(source: &str) -> Result<Self, AppSourceError> {
        let path = Path::new(source);
        if path.is_dir() {
            let manifest = path.join("spin.toml");
            return if manifest.is_file() {
                Ok(AppSource::File(manifest))
            } else {
                Err(AppSourceError::NoManifestInDirectory(path.to_owned()))
            };
        }
        if path.exists() {
            return Ok(AppSource::File(path.to_owned()));
        }
        if registry::is_probably_reference(source) {
            return Ok(AppSource::Registry(source.to_owned()));
        }
        Err(AppSourceError::NotFound(source.to_owned()))
    }

    /// The manifest to load: the file itself, or the pulled image's.
    pub async fn manifest_path(&self, pull: &PullOptions) -> Result<PathBuf, AppSourceError> {
        match self {
            AppSource::File(path) => Ok(path.clone()),
            AppSource::Registry(reference) => Ok(registry::pull(reference, pull).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_and_references_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("app-source-{}", std::process::id()));
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let manifest = dir.join("spin.toml");
        std::fs::write(&manifest, "").unwrap();
        let other = dir.join("other.toml");
        std::fs::write(&other, "").unwrap();

        let s = |p: &Path| p.display().to_string();
        assert_eq!(
            AppSource::infer(&s(&dir)).unwrap(),
            AppSource::File(manifest.clone())
        );
        assert_eq!(
            AppSource::infer(&s(&other)).unwrap(),
            AppSource::File(other.clone())
        );
        let e = AppSource::infer(&s(&empty)).unwrap_err();
        assert!(matches!(e, AppSourceError::NoManifestInDirectory(_)), "{e}");
        assert_eq!(
            AppSource::infer("127.0.0.1:5000/vid2mp3/spin-app:dev").unwrap(),
            AppSource::Registry("127.0.0.1:5000/vid2mp3/spin-app:dev".into())
        );
        // A missing relative path is not mistaken for Docker Hub's `latest`.
        let e = AppSource::infer("missing/spin.toml").unwrap_err();
        assert!(matches!(e, AppSourceError::NotFound(_)), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
