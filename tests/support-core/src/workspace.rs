//! Finding what the build produced: the workspace, its target directory, the Wasm components.

use std::path::PathBuf;

/// The repository's root (where spin.toml is).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // This crate lives at tests/support.
    manifest_dir
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// The virtualenv `scripts/services install` puts the Python tools in (`VID2MP3_VENV`, else
/// `VID2MP3_CACHE/venv`, else `~/.cache/vid2mp3/venv`).
pub fn tools_venv() -> PathBuf {
    if let Some(v) = std::env::var_os("VID2MP3_VENV") {
        return PathBuf::from(v);
    }
    let cache = match std::env::var_os("VID2MP3_CACHE") {
        Some(c) => PathBuf::from(c),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/root/.cache"))
            .join("vid2mp3"),
    };
    cache.join("venv")
}

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    // A test binary sits in <target>/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The built component of a workspace package (`vid2mp3-gateway` → `vid2mp3_gateway.wasm`).
pub fn wasm_component(package: &str) -> anyhow::Result<PathBuf> {
    let path = target_dir()
        .join("wasm32-wasip2")
        .join("component")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !path.is_file() {
        anyhow::bail!(
            "{} is not built; build the Wasm components first: scripts/build-components",
            path.display()
        );
    }
    Ok(path)
}
