//! MCP servers: export every definition on the master, run them on followers through
//! `codexport mcp run <name>`, which hydrates the server's artifact once and then execs it.

pub mod infer;
pub mod manifest;
pub mod repair;
pub mod run;

use miette::Diagnostic;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum McpError {
    #[error("No managed MCP named {name}.")]
    #[diagnostic(
        code(codexport::usage::mcp_unknown),
        help(
            "Run `codexport sync --apply` first; `codexport mcp list` shows the managed servers."
        )
    )]
    Unknown { name: String },
    #[error("No MCP manifest has been applied on this machine.")]
    #[diagnostic(
        code(codexport::usage::mcp_no_manifest),
        help("Run `codexport sync --apply` first.")
    )]
    NoManifest,
    #[error("the applied MCP manifest is unreadable: {what}")]
    #[diagnostic(
        code(codexport::mcp::manifest),
        help("run `codexport apply` to write it again")
    )]
    BadManifest { what: String },
    #[error(
        "{name} is a URL MCP server; Codex connects to it directly and there is nothing to run"
    )]
    #[diagnostic(
        code(codexport::usage::mcp_url),
        help(
            "remove `codexport mcp run` from its config; `codexport apply` writes URL servers with their url"
        )
    )]
    UrlServer { name: String },
    #[error("MCP launcher program not found: {program}.")]
    #[diagnostic(
        code(codexport::mcp::missing_program),
        help(
            "Install it on this follower or add it to PATH, then run `codexport mcp repair {name}`."
        )
    )]
    ProgramMissing { program: String, name: String },
    #[error("preparing MCP {name} failed at `{step}`: {why}")]
    #[diagnostic(
        code(codexport::mcp::hydrate),
        help(
            "see ~/.codexport/logs/mcp/{name}.log, fix the cause (network, registry access, disk space), then run `codexport mcp repair {name}`"
        )
    )]
    Step {
        name: String,
        step: String,
        why: String,
    },
    #[error("cannot start {program}: {source}")]
    #[diagnostic(
        code(codexport::mcp::exec),
        help(
            "check that the program exists and is executable; `codexport mcp repair` prepares servers again"
        )
    )]
    Exec {
        program: String,
        source: std::io::Error,
    },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::mcp::io),
        help("check permissions and free space of ~/.codexport")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(crate::store::StoreError),
}

impl McpError {
    /// Names the server in a missing-program error.
    pub(crate) fn for_server(self, name: &str) -> Self {
        match self {
            McpError::ProgramMissing { program, name: n } if n.is_empty() => {
                McpError::ProgramMissing {
                    program,
                    name: name.to_owned(),
                }
            }
            other => other,
        }
    }
}
