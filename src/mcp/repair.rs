//! `mcp list` and `mcp repair`: the managed servers of the applied revision, whether each
//! is ready to start, and preparing them ahead of a Codex session.

use super::McpError;
use super::manifest::Artifact;
use super::run::{self, hydrated};
use crate::paths::Paths;

/// One managed server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct McpRow {
    pub name: String,
    /// The artifact's kind (`npm`, `uv`, `node-source`, …).
    pub kind: &'static str,
    pub artifact: Artifact,
    /// Ready to start without installing anything.
    pub hydrated: bool,
    pub note: String,
}

/// Every managed server of the applied revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct McpList {
    pub servers: Vec<McpRow>,
}

pub fn list(paths: &Paths) -> Result<McpList, McpError> {
    let applied = run::load(paths)?;
    let servers = applied
        .manifest
        .servers
        .iter()
        .map(|(name, s)| McpRow {
            name: name.clone(),
            kind: s.artifact.kind(),
            artifact: s.artifact.clone(),
            hydrated: hydrated(paths, &applied, name, s),
            note: s.note.clone(),
        })
        .collect();
    Ok(McpList { servers })
}

/// One server `repair` could not prepare.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairFailure {
    pub name: String,
    pub error: String,
}

/// What `mcp repair` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairReport {
    pub ready: Vec<String>,
    pub failed: Vec<RepairFailure>,
}

/// Prepares every managed server (or only `only`) so the first Codex session does not wait
/// for installs. A failure of one server does not stop the others.
pub fn repair(paths: &Paths, only: Option<&str>) -> Result<RepairReport, McpError> {
    let applied = run::load(paths)?;
    if let Some(name) = only {
        if !applied.manifest.servers.contains_key(name) {
            return Err(McpError::Unknown {
                name: name.to_owned(),
            });
        }
    }
    let mut report = RepairReport {
        ready: Vec::new(),
        failed: Vec::new(),
    };
    for (name, s) in applied
        .manifest
        .servers
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o == n.as_str()))
        .filter(|(_, s)| !matches!(s.artifact, Artifact::Url))
    {
        match run::hydrate(paths, &applied, name, s) {
            Ok(()) => report.ready.push(name.clone()),
            Err(e) => report.failed.push(RepairFailure {
                name: name.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(report)
}
