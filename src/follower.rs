//! The follower: enrollment (`follower join`) and `sync`, which fetches the master's newest
//! signed revision, verifying the key, signature, expiry, revision number and every object.
//!
//! Never moves the fetched ref before the whole closure is stored; never accepts a head
//! signed by another key or numbered below the last one accepted.

pub mod apply;
pub mod config;
pub mod diff;
pub mod join;
pub mod mirrors;
pub mod plugins;
pub mod rollback;
pub mod state;
pub mod status;
pub mod sync;
pub mod verify;

pub use config::FollowerConfig;
pub use sync::{SyncOptions, SyncOutcome, SyncReport, sync};

use crate::transport::client::ClientError;
use miette::Diagnostic;
use std::path::PathBuf;
use thiserror::Error;

/// Keys of follower facts in `meta-v1`.
pub mod meta {
    /// u64 LE: the highest revision number accepted from the master.
    pub const ACCEPTED: &str = "follower/accepted";
    /// The last accepted signed head, encoded.
    pub const HEAD: &str = "follower/head";
    /// u64 LE: after `rollback`, the fetched revision number the follower is held below;
    /// empty when not held.
    pub const HOLD: &str = "follower/hold";
    /// Where the fetched revision came from: `master`, or a mirror's URL.
    pub const SOURCE: &str = "follower/source";
    /// JSON list: `${names}` in the last applied config.toml that no variable defines.
    pub const UNKNOWN_VARIABLES: &str = "follower/unknown_variables";
    /// See [`crate::store::meta::REPAIR`]: the next sync fetches what the fetched revision
    /// lacks.
    pub const REPAIR: &str = crate::store::meta::REPAIR;
}

/// Ref naming the newest completely fetched revision.
pub const FETCHED: &str = "follower/fetched";

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum FollowerError {
    #[error("This machine is not enrolled.")]
    #[diagnostic(
        code(codexport::usage::not_enrolled),
        help(
            "Run `codexport follower join <link>` first (get a link on the master with `codexport master link`)."
        )
    )]
    NotEnrolled,
    #[error("follower join needs {what}")]
    #[diagnostic(
        code(codexport::usage::join_args),
        help(
            "pass the link printed by `codexport master link`, or --master URL --fingerprint FP --token T"
        )
    )]
    MissingJoinArg { what: &'static str },
    #[error("this machine is a master; a master does not follow another")]
    #[diagnostic(
        code(codexport::usage::is_master),
        help("run follower commands on another machine, or use a different --home")
    )]
    IsMaster,
    #[error("Master fingerprint mismatch. Expected {expected}, got {got}.")]
    #[diagnostic(
        code(codexport::trust::fingerprint),
        help(
            "the server is not the master this machine trusts; nothing was stored. If the master's key really changed, run `codexport follower join <new link> --reset-trust`"
        )
    )]
    FingerprintMismatch { expected: String, got: String },
    #[error("already enrolled with the master {url} (fingerprint {fingerprint})")]
    #[diagnostic(
        code(codexport::trust::enrolled),
        help("to trust a different master on purpose, add --reset-trust")
    )]
    AlreadyEnrolled { url: String, fingerprint: String },
    #[error("the master's head is not validly signed: {0}")]
    #[diagnostic(
        code(codexport::trust::signature),
        help(
            "someone altered the head in transit or the server is not the master; nothing was accepted"
        )
    )]
    BadHead(crate::object::DecodeError),
    #[error("the master's head expired at {expired} (now {now})")]
    #[diagnostic(
        code(codexport::trust::expired),
        help(
            "a stale head can pin followers to old content; make sure `codexport master serve` runs on the master (it re-signs heads), or run `codexport master rebuild` there"
        )
    )]
    HeadExpired { expired: String, now: String },
    #[error(
        "refused a replayed older head: revision {got} is older than revision {accepted} already accepted"
    )]
    #[diagnostic(
        code(codexport::trust::replay),
        help(
            "the master (or someone in between) served an old head; to go back on purpose use `codexport rollback <rev>`"
        )
    )]
    Replayed { got: u64, accepted: u64 },
    #[error("the master signed two different revisions with number {number}")]
    #[diagnostic(
        code(codexport::trust::equivocation),
        help(
            "the master's store was reset or forked; check the master, then re-enroll with --reset-trust if intended"
        )
    )]
    Equivocation { number: u64 },
    #[error("object {id} does not match its id (corrupted in transit or by the server)")]
    #[diagnostic(
        code(codexport::trust::object),
        help(
            "nothing was moved; run `codexport sync` again, and check the master with `codexport fsck`"
        )
    )]
    CorruptObject { id: String },
    #[error("the object stream was refused: {0}")]
    #[diagnostic(
        code(codexport::sync::stream),
        help(
            "objects verified so far are kept; run `codexport sync` again to fetch only the rest"
        )
    )]
    Stream(String),
    #[error("revision {id} is incomplete after the fetch: {what}")]
    #[diagnostic(
        code(codexport::sync::incomplete),
        help("run `codexport sync` again; if it persists, run `codexport fsck` on the master")
    )]
    Incomplete { id: String, what: String },
    #[error("the mirror at {url} has no head file")]
    #[diagnostic(
        code(codexport::mirror::missing),
        help(
            "the mirror is empty or misses files: on the master, `codexport master publish` writes what is missing"
        )
    )]
    MirrorMissing { url: String },
    #[error(
        "this follower cannot read the mirror at {url}: its key is not in the mirror's keyring"
    )]
    #[diagnostic(
        code(codexport::mirror::locked),
        help(
            "sync once while the master is reachable: it learns this follower's key and wraps the mirror's key to it at its next publish. A revoked follower cannot read what was published after its revocation"
        )
    )]
    MirrorLocked { url: String },
    #[error("the mirror at {url} holds something the master did not sign: {what}")]
    #[diagnostic(
        code(codexport::mirror::damaged),
        help(
            "nothing from it was accepted; run `codexport sync` again (objects verified so far are kept), and on the master `codexport master publish` repairs the mirror"
        )
    )]
    MirrorDamaged { url: String, what: String },
    #[error("the master has no revision yet")]
    #[diagnostic(
        code(codexport::sync::empty),
        help("run `codexport master init` on the master")
    )]
    NoHead,
    #[error("{} is malformed: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::follower_config),
        help("fix the file, or enroll again with `codexport follower join <link>`")
    )]
    BadConfig { path: PathBuf, what: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::follower::io),
        help("check permissions and free space of the codexport state directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write into {root} ({}): {why}", path.display())]
    #[diagnostic(
        code(codexport::usage::codex_dir_unusable),
        help(
            "make it a folder (move aside what is there; for the codex dir, --codex-dir or $CODEX_HOME can point elsewhere), then run the command again; the join token was not used, so the same link still works"
        )
    )]
    CodexDirUnusable {
        /// The root, as shown (`~/.codex`).
        root: &'static str,
        path: PathBuf,
        why: &'static str,
    },
    #[error("this follower's credential file {} is damaged", path.display())]
    #[diagnostic(
        code(codexport::usage::damaged_credential),
        help(
            "the file is not a credential codexport wrote (cxc1_ and 64 hex digits); get a new link with `codexport master link` on the master and run `codexport follower join <link>` here"
        )
    )]
    DamagedCredential { path: PathBuf },
    #[error("the record of the interrupted apply in {} is unreadable: {what}", path.display())]
    #[diagnostic(
        code(codexport::checkout::journal_record),
        help(
            "the apply itself was finished; run `codexport apply` to record the codex dir's state again"
        )
    )]
    BadJournalRecord { path: PathBuf, what: String },
    #[error("the MCP manifest of revision {number} is malformed: {what}")]
    #[diagnostic(
        code(codexport::mcp::bad_manifest),
        help(
            "the master wrote a manifest this codexport cannot read; update codexport on both machines, then `codexport master rebuild` on the master"
        )
    )]
    BadMcpManifest { number: u64, what: String },
    #[error("nothing has been fetched yet")]
    #[diagnostic(
        code(codexport::usage::nothing_fetched),
        help("run `codexport sync` first")
    )]
    NothingFetched,
    #[error(transparent)]
    #[diagnostic(transparent)]
    Overlay(#[from] crate::overlay::OverlayError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Checkout(#[from] crate::checkout::CheckoutError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rev(#[from] crate::store::rev::RevError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] crate::fsutil::LockError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Link(#[from] crate::transport::link::LinkError),
}
