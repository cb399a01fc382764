//! The MCP manifest: every master MCP server definition with the artifact that runs it on a
//! follower. Stored as `manifest.json` in the revision's `mcp` tree, beside `sources/<name>`
//! trees of copied local sources (deduplicated and fetched incrementally like any tree).

use std::collections::BTreeMap;

/// Version of the manifest JSON.
pub const MANIFEST_VERSION: u32 = 1;
pub use crate::object::revision::{MCP_MANIFEST as MANIFEST_FILE, MCP_SOURCES as SOURCES_DIR};

/// How a follower obtains and starts a server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Artifact {
    /// An npm package at a pinned version; run `entry` (a file inside the package) with node,
    /// or as an executable when `node` is false.
    Npm {
        package: String,
        version: String,
        entry: String,
        node: bool,
    },
    /// A Python tool run with `uvx --from <from> <bin>`.
    Uv { from: String, bin: String },
    /// A copied Python project (in `sources/<name>`), run with `uvx --from <dir> <bin>`.
    PythonSource { bin: String },
    /// A copied node package (in `sources/<name>`): `npm install --omit=dev`, then node
    /// `entry` (relative to the package root).
    NodeSource { entry: String },
    /// Run the command as written (npx, bunx, uvx, system tools); paths are mapped.
    Command,
    /// A URL server: nothing to run.
    Url,
}

/// One exported server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Server {
    /// The master's `[mcp_servers.<name>]` table, as JSON.
    pub table: serde_json::Value,
    /// The command as the master ran it (after resolving PATH), and its arguments.
    pub command: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    pub artifact: Artifact,
    /// Why inference settled on this artifact (shown by `mcp list`).
    pub note: String,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source_home: String,
    pub source_codex_dir: String,
    /// Variables named in `CODEXPORT_EXPORT_ENV` on the master, with their values.
    pub export_env: BTreeMap<String, String>,
    pub servers: BTreeMap<String, Server>,
}

impl Artifact {
    pub fn kind(&self) -> &'static str {
        match self {
            Artifact::Npm { .. } => "npm",
            Artifact::Uv { .. } => "uv",
            Artifact::PythonSource { .. } => "python-source",
            Artifact::NodeSource { .. } => "node-source",
            Artifact::Command => "command",
            Artifact::Url => "url",
        }
    }
}
