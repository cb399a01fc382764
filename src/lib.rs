//! codexport: keep one trusted OpenAI Codex setup identical across machines.
//!
//! The master snapshots the selected parts of `~/.codex` into a content-addressed store and
//! signs each revision's head; followers fetch only the objects they lack, verify every one,
//! merge the master's tree with their own overlay, and check the result out atomically.
//!
//! The modules form one-way layers (see ARCHITECTURE.md), lowest first: the foundations
//! ([`object`], [`time`], [`paths`], [`roots`]) → [`store`] → [`snapshot`], [`checkout`] → [`overlay`]
//! → [`transport`] → [`master`], [`follower`] → [`mcp`], [`hook`], [`service`], [`status`].
//! The command line is the binary's, not library API: [`run_cli`] runs it.

pub mod checkout;
mod cli;
pub mod follower;
mod fsutil;
pub mod hook;
pub mod master;
pub mod mcp;
pub mod object;
pub mod overlay;
mod pathmap;
pub mod paths;
mod progress;
pub mod roots;
pub mod seal;
pub mod service;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod time;
mod toml_doc;
pub mod transport;

pub use follower::{SyncOptions, SyncOutcome, SyncReport, sync};
pub use object::{EntryKind, Fingerprint, ObjectId, RelPath, Revision, SignedHead, Tree};
pub use paths::{Paths, Role};
pub use status::{StatusReport, status};
pub use store::Store;

/// Parses the process's arguments and runs the command; returns the exit code (0 ok, 1
/// failure, 2 usage or trust error).
pub fn run_cli() -> i32 {
    use clap::Parser;
    cli::run(cli::Cli::parse())
}
