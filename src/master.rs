//! The master: its identity (an ed25519 key), its settings (extra entries of `~/.codex` to
//! take or leave), publishing revisions of its roots with a signed head, who may fetch them (join tokens, follower credentials), and the daemon
//! `master serve` that serves followers, watches `~/.codex` and re-signs the head.
//!
//! Never reads a follower's state; never serves a path of the filesystem.

pub mod access;
pub mod key;
pub mod link;
pub mod mirror;
pub mod publish;
pub mod serve;
pub mod settings;
pub mod tailscale;
pub mod watch;

pub use key::MasterKey;
pub use publish::{
    HEAD_TTL, InitReport, McpExport, SettingsChange, change_settings, init, rebuild, rebuild_with,
    refresh_head,
};

use crate::snapshot::SnapshotError;
use crate::store::StoreError;
use miette::Diagnostic;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum MasterError {
    #[error("this machine is already a master (key at {})", path.display())]
    #[diagnostic(
        code(codexport::usage::already_master),
        help(
            "run `codexport master rebuild` to snapshot again; `codexport status` shows the master's state"
        )
    )]
    AlreadyInitialised { path: PathBuf },
    #[error("this machine is not a master: no key at {}", path.display())]
    #[diagnostic(
        code(codexport::usage::not_master),
        help("run `codexport master init` first")
    )]
    NotInitialised { path: PathBuf },
    #[error("the master key {} is readable by other users (mode {mode:o})", path.display())]
    #[diagnostic(code(codexport::trust::key_mode), help("run `chmod 600 {}`; if other users could read it, rotate the key", path.display()))]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("the master key {} is malformed", path.display())]
    #[diagnostic(
        code(codexport::trust::key_malformed),
        help("restore the key from a backup; a new key means re-enrolling every follower")
    )]
    KeyMalformed { path: PathBuf },
    #[error("{} is invalid: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_master_settings),
        help(
            "fix the file (include = [\"name\"], exclude = [\"name\"]: top-level names of ~/.codex, `*` for any run of characters); nothing was recorded"
        )
    )]
    BadSettings { path: PathBuf, what: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::master::io),
        help("check permissions and free space of the codexport state directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Access(access::AccessError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Link(#[from] crate::transport::link::LinkError),
}
