//! What one component runs with, resolved from the manifest at load: its id, variables,
//! outbound policy, environment and files. Shared (behind an `Arc`) by every instance of the
//! component and by the host interfaces that act for it, none of which needs the compiled code.

use std::path::PathBuf;
use std::sync::Arc;

use crate::outbound_hosts::AllowedHosts;
use crate::variables::ComponentVariables;

pub struct ComponentConfig {
    pub id: Arc<str>,
    pub variables: ComponentVariables,
    pub allowed_hosts: AllowedHosts,
    /// The manifest's `environment` followed by `--env`.
    pub environment: Vec<(String, String)>,
    /// Host directory preopened read-only at `/`, holding the component's `files`.
    pub files_root: Option<PathBuf>,
}
