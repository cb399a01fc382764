//! Checkout: plans and applies merged trees of roots into the roots' folders (`~/.codex`,
//! `~/.agents/skills`, see [`crate::roots`]), with one plan, one journal and one index for
//! all of them. Never writes outside the roots' folders; never deletes a path codexport did
//! not write.

pub mod apply;
mod backup;
pub mod disk;
pub mod index;
pub mod journal;
pub mod plan;
pub mod stage;
mod steps;

pub use apply::{ExecOptions, ExecReport, execute, recover};
pub use index::Index;
pub use journal::Journal;
pub use plan::{Op, Plan, plan};

use crate::store::StoreError;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the staging dir inside the codex dir; no plan may write below it.
pub const STAGING_NAME: &str = ".codexport-staging";

/// Why an apply (or its recovery) stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum CheckoutError {
    #[error("an earlier apply was interrupted and is not finished yet (journal {})", path.display())]
    #[diagnostic(
        code(codexport::checkout::pending),
        help(
            "run `codexport apply`, which finishes the interrupted apply first, then run the command again"
        )
    )]
    JournalPending { path: PathBuf },
    #[error("{} is a symlink; codexport never writes through a symlinked directory", path.display())]
    #[diagnostic(
        code(codexport::checkout::escape),
        help(
            "replace the symlink with a real directory (or remove it) and run the command again; nothing was written through it"
        )
    )]
    Escape { path: PathBuf },
    #[error("{} is a file codexport does not manage, but the new tree needs a directory there", path.display())]
    #[diagnostic(
        code(codexport::checkout::in_the_way),
        help("move the file somewhere else and run the command again")
    )]
    InTheWay { path: PathBuf },
    #[error("{} is a directory holding files codexport does not manage, but the new tree has a file there", path.display())]
    #[diagnostic(
        code(codexport::checkout::dir_not_empty),
        help("move the directory's contents somewhere else and run the command again")
    )]
    DirNotEmpty { path: PathBuf },
    #[error("{} is not a regular file, directory or symlink", path.display())]
    #[diagnostic(
        code(codexport::checkout::special),
        help(
            "remove it (a socket, fifo or device has no place in the codex dir) and run the command again"
        )
    )]
    Special { path: PathBuf },
    #[error("the plan writes {path:?}, which is reserved for codexport's own staging")]
    #[diagnostic(
        code(codexport::checkout::reserved),
        help("remove that path from the master's codex dir and take a new snapshot")
    )]
    Reserved { path: String },
    #[error("the tree has {path:?}, which lies in no root this codexport knows")]
    #[diagnostic(
        code(codexport::checkout::outside_roots),
        help(
            "the master runs a newer codexport (with a root this one lacks); install the same version on both machines"
        )
    )]
    OutsideRoots { path: String },
    #[error("the plan puts the tree {path:?} as a file")]
    #[diagnostic(
        code(codexport::checkout::bad_plan),
        help("this is a bug in codexport; please report it with the output of `codexport log`")
    )]
    BadPlan { path: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::checkout::io),
        help(
            "check permissions and free space of the codex dir and the codexport state dir; the next run finishes or undoes this apply"
        )
    )]
    Io { path: PathBuf, source: io::Error },
    #[error("the apply journal {} is damaged: {source}", path.display())]
    #[diagnostic(
        code(codexport::checkout::journal_corrupt),
        help(
            "move the journal aside and run the command again; codexport then re-applies the whole tree, backing up any file that differs"
        )
    )]
    JournalCorrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the apply journal {} has version {found}; this codexport reads version {}", path.display(), journal::VERSION)]
    #[diagnostic(
        code(codexport::checkout::journal_version),
        help("finish the apply with the codexport version that started it, then run this one")
    )]
    JournalVersion { path: PathBuf, found: u32 },
    #[error("the apply journal is for the folder {}, not {}", found.display(), expected.display())]
    #[diagnostic(
        code(codexport::checkout::journal_other_dir),
        help(
            "run the command again with the codex dir (and home) the interrupted apply was writing"
        )
    )]
    JournalOtherDir { expected: PathBuf, found: PathBuf },
    #[error("injected crash before step {step}")]
    #[diagnostic(
        code(codexport::checkout::injected_crash),
        help("a test hook stopped the apply; run recovery to finish or undo it")
    )]
    InjectedCrash { step: usize },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

impl CheckoutError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        CheckoutError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
