//! The crash-safe executor of a [`Plan`].
//!
//! An apply runs in two halves around one commit point, the journal:
//!
//! 1. The plan (see [`super::plan`]) was made against the disk: it already knows what each
//!    target holds and which ones hold something codexport did not write there.
//! 2. Stage (see [`super::stage`]): where each new file goes is recorded first (the intent);
//!    then its content is copied out of the store next to its destination, in parallel,
//!    checked on the way: a damaged stored object stops the apply here. Store objects are
//!    copied, never hardlinked: users edit the codex dir.
//! 3. Back up what the plan marks (local edits, things in the way) to
//!    `<state dir>/backups/<UTC time>/<root>/<path>`.
//! 4. One durability barrier for everything staged (`syncfs`, not one fsync per file).
//! 5. Commit: write `<state dir>/journal.json`.
//! 6. Deletes, then stale directories, then puts (renames).
//! 7. Sync, remove the journal, remove the staging dir.
//!
//! A crash before 5 leaves every managed path untouched ([`recover`] removes the staged files
//! and the directories made for them, as the intent lists); a crash after it is finished by
//! [`recover`], which re-runs 6 and 7 idempotently. Either way each managed path ends as the
//! old tree or the new, never a torn mix. One plan and one journal cover every root, so the
//! roots move together.
//!
//! The caller holds the state dir's [`crate::fsutil::StateLock`] around these calls.

pub use super::steps::CRASH_ENV;

use super::backup::backup;
use super::disk::{Parents, abs, lstat, parents};
use super::journal::{self, Journal};
use super::plan::{Op, Plan};
use super::stage;
use super::steps::Steps;
use super::{CheckoutError, STAGING_NAME};
use crate::object::RelPath;
use crate::roots::RootDirs;
use crate::store::ObjectSource;
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// How to execute a plan.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Test hook: stop (return Err(CheckoutError::InjectedCrash)) right before step N, leaving
    /// everything as a real crash would (no cleanup). Steps are counted across: each staged
    /// file write, the staging sync, the journal commit, each rename/delete/rmdir, the
    /// journal removal.
    pub crash_before_step: Option<usize>,
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecReport {
    /// Files (and symlinks) renamed into place.
    pub written: u64,
    /// Files (and symlinks) removed.
    pub deleted: u64,
    /// Paths that held something codexport had not written there (local edits, files or
    /// folders in the way), backed up before being replaced or removed.
    pub drift: Vec<String>,
    /// Where the drifted files were backed up, if any were.
    pub backup_dir: Option<PathBuf>,
    /// Steps counted (see [`ExecOptions::crash_before_step`]).
    pub steps: usize,
}

/// Executes `plan` into the roots' folders, reading new content from `src`. See the module
/// docs for the steps; `record` is kept in the journal and handed back by [`recover`].
pub fn execute<S: ObjectSource + Sync>(
    src: &S,
    dirs: &RootDirs,
    state_dir: &Path,
    plan: &Plan,
    record: &serde_json::Value,
    opts: &ExecOptions,
) -> Result<ExecReport, CheckoutError> {
    if journal::exists(state_dir)? {
        return Err(CheckoutError::JournalPending {
            path: journal::path(state_dir),
        });
    }
    if plan.is_empty() {
        return Ok(ExecReport::default());
    }
    let abort = std::env::var(CRASH_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let mut steps = Steps::new(opts.crash_before_step, abort);

    // The folder of every root the plan writes into (`~/.agents/skills` may not exist yet).
    for root in plan_roots(plan) {
        if let Some(dir) = dirs.get(root) {
            fs::create_dir_all(dir).map_err(|e| CheckoutError::io(dir, e))?;
        }
    }
    let drifted: Vec<&RelPath> = plan
        .ops
        .iter()
        .filter(|op| op.backs_up())
        .map(Op::path)
        .collect();

    // Leftovers of an apply that never committed (an older version's staging dir).
    remove_staging(&dirs.codex().join(STAGING_NAME))?;
    stage::undo(state_dir, dirs)?;
    let placement = stage::place(dirs, plan)?;
    stage::write_intent(state_dir, dirs, &placement)?;
    journal::sync_dir(state_dir)?;
    let backup_dir = match prepare(src, dirs, state_dir, plan, &placement, &drifted, &mut steps) {
        Ok(dir) => dir,
        // A real failure before the commit cleans up after itself (an injected crash must
        // not: it stands for a crash).
        Err(e) => {
            if !matches!(e, CheckoutError::InjectedCrash { .. }) {
                let _ = stage::undo(state_dir, dirs);
            }
            return Err(e);
        }
    };

    steps.step()?;
    let journal = Journal {
        version: journal::VERSION,
        codex_dir: None,
        roots: dirs.by_name(),
        staging: PathBuf::new(),
        ops: plan.ops.clone(),
        stale_dirs: plan.stale_dirs.clone(),
        new: plan.new,
        record: record.clone(),
        placement: Some(placement),
    };
    journal::commit(state_dir, &journal)?;

    let done = roll_forward(&journal, dirs, &mut steps)?;
    finish(dirs, state_dir, &done.touched, &mut steps)?;
    Ok(ExecReport {
        written: done.written,
        deleted: done.deleted,
        drift: drifted.iter().map(ToString::to_string).collect(),
        backup_dir,
        steps: steps.next,
    })
}

/// The uncommitted half of an apply: stages every put, backs up the drifted files and makes
/// both durable. Returns the backup dir, if anything was backed up.
fn prepare<S: ObjectSource + Sync>(
    src: &S,
    roots: &RootDirs,
    state_dir: &Path,
    plan: &Plan,
    placement: &stage::Placement,
    drifted: &[&RelPath],
    steps: &mut Steps,
) -> Result<Option<PathBuf>, CheckoutError> {
    stage::make_dirs(roots, placement)?;
    // One step per staged file; they are written in parallel, so an injected crash stops
    // after as many as come before it.
    let puts = placement.staged_in.len();
    let allowed = steps.allowed(puts);
    let staged = stage::write(src, roots, plan, placement, allowed)?;
    steps.advance(allowed)?;
    if allowed < puts {
        steps.step()?;
    }
    let backed_up = backup(roots, state_dir, drifted)?;
    steps.step()?;
    let mut dirs: BTreeSet<PathBuf> = staged
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    for d in &placement.created {
        let made = RelPath::new(d).ok().and_then(|d| roots.abs(&d));
        if let Some(parent) = made.as_deref().and_then(Path::parent) {
            dirs.insert(parent.to_owned());
        }
    }
    for root in plan_roots(plan) {
        if let Some(dir) = roots.get(root) {
            barrier(dir, &staged, &dirs)?;
        }
    }
    if let Some((dir, files)) = &backed_up {
        let parents = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        barrier(dir, files, &parents)?;
    }
    Ok(backed_up.map(|(dir, _)| dir))
}

/// An apply finished by [`recover`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The caller's record, as handed to [`execute`].
    pub record: serde_json::Value,
    /// The journal was written by a codexport before roots: the trees its record names are
    /// the Codex dir itself, not trees of roots.
    pub legacy: bool,
}

/// Finishes an apply interrupted after its journal committed (rolls forward), or cleans up
/// one interrupted before (removes staging; the roots' folders were not touched). Returns the
/// journal's `record` when it rolled forward, so the caller can record the apply.
pub fn recover(dirs: &RootDirs, state_dir: &Path) -> Result<Option<Recovered>, CheckoutError> {
    recover_with(dirs, state_dir, &mut Steps::new(None, None))
}

fn recover_with(
    dirs: &RootDirs,
    state_dir: &Path,
    steps: &mut Steps,
) -> Result<Option<Recovered>, CheckoutError> {
    let Some(journal) = journal::load(state_dir)? else {
        remove_staging(&dirs.codex().join(STAGING_NAME))?;
        stage::undo(state_dir, dirs)?;
        return Ok(None);
    };
    let recorded = journal.dirs();
    // Only the roots the journal touches must agree (a root added since is not in it).
    for (root, dir) in recorded.iter() {
        let here = dirs.get(root.name).unwrap_or(Path::new(""));
        if !RootDirs::from_dirs([(root, dir.to_owned())])
            .same_as(&RootDirs::from_dirs([(root, here.to_owned())]))
        {
            return Err(CheckoutError::JournalOtherDir {
                expected: here.to_owned(),
                found: dir.to_owned(),
            });
        }
    }
    let done = roll_forward(&journal, &recorded, steps)?;
    finish(&recorded, state_dir, &done.touched, steps)?;
    Ok(Some(Recovered {
        legacy: journal.legacy(),
        record: journal.record,
    }))
}

/// The names of the roots a plan writes into or deletes from.
fn plan_roots(plan: &Plan) -> BTreeSet<&str> {
    plan.ops.iter().filter_map(|op| op.path().first()).collect()
}

/// Creates the missing directories above `rel`; anything but a real directory in the way
/// is an error. Directories it creates are added to `touched` (their parents change).
fn ensure_parents(
    dirs: &RootDirs,
    rel: &RelPath,
    known: &mut HashSet<String>,
    touched: &mut BTreeSet<PathBuf>,
) -> Result<(), CheckoutError> {
    match parents(dirs, rel, known, Some(touched))? {
        Parents::Dirs => Ok(()),
        Parents::Blocked(_, path) => match lstat(&path)? {
            Some(m) if m.file_type().is_symlink() => Err(CheckoutError::Escape { path }),
            _ => Err(CheckoutError::InTheWay { path }),
        },
        Parents::Missing => unreachable!("parents() creates missing directories when asked"),
    }
}

/// Makes everything written below `dir` durable: one `syncfs` of its filesystem, falling back
/// to fsyncing each of `files` and each of `dirs` (whose entries changed) where `syncfs` is
/// unavailable. Then fsyncs `dir` itself.
fn barrier(dir: &Path, files: &[PathBuf], dirs: &BTreeSet<PathBuf>) -> Result<(), CheckoutError> {
    let handle = File::open(dir).map_err(|e| CheckoutError::io(dir, e))?;
    // rustix wraps syncfs(2) safely (std has no syncfs, and this crate forbids unsafe code).
    if rustix::fs::syncfs(&handle).is_err() {
        for f in files {
            let meta = fs::symlink_metadata(f).map_err(|e| CheckoutError::io(f, e))?;
            if meta.is_file() {
                File::open(f)
                    .and_then(|h| h.sync_all())
                    .map_err(|e| CheckoutError::io(f, e))?;
            }
        }
        for d in dirs {
            journal::sync_dir(d)?;
        }
    }
    handle.sync_all().map_err(|e| CheckoutError::io(dir, e))
}

/// What the committed half of an apply did.
#[derive(Default)]
struct Done {
    written: u64,
    deleted: u64,
    /// Directories whose entries changed (for the fallback of the final barrier).
    touched: BTreeSet<PathBuf>,
}

impl Done {
    fn touch(&mut self, path: &Path) {
        if let Some(parent) = path.parent() {
            self.touched.insert(parent.to_owned());
        }
    }
}

/// Runs the journal's deletes, stale-directory removals and renames. Idempotent: a delete
/// whose target is gone is done, a put whose staged file is gone was renamed already.
fn roll_forward(
    journal: &Journal,
    dirs: &RootDirs,
    steps: &mut Steps,
) -> Result<Done, CheckoutError> {
    let mut done = Done::default();
    let mut known = HashSet::new();
    // Derived, not read from the journal: whatever the journal says, codexport only ever
    // renames its own staged files inside the roots (journals of version 1 and 2 staged in
    // one folder of the codex dir).
    let legacy = dirs.codex().join(STAGING_NAME);

    for op in &journal.ops {
        let Op::Delete { path, dir, .. } = op else {
            continue;
        };
        steps.step()?;
        // Never through a link or below a file: a delete of that one (planned before this)
        // removed what was there.
        if dirs.locate(path).is_none() {
            continue;
        }
        match parents(dirs, path, &mut known, None)? {
            Parents::Dirs => {}
            Parents::Missing | Parents::Blocked(..) => continue,
        }
        let abs = abs(dirs, path);
        let Some(meta) = lstat(&abs)? else { continue };
        let removed = if meta.is_dir() && !meta.file_type().is_symlink() {
            if !dir {
                continue;
            }
            // A folder in the way (backed up before the commit): removed whole, and with it
            // what this walk knew below it.
            known.retain(|k| k != path.as_str() && !k.starts_with(&format!("{path}/")));
            fs::remove_dir_all(&abs)
        } else {
            fs::remove_file(&abs)
        };
        match removed {
            Ok(()) => {
                done.deleted += 1;
                done.touch(&abs);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CheckoutError::io(&abs, e)),
        }
    }

    for dir in &journal.stale_dirs {
        steps.step()?;
        if dirs.locate(dir).is_none_or(|(_, rel)| rel.is_root()) {
            continue;
        }
        match parents(dirs, dir, &mut known, None)? {
            Parents::Dirs => {}
            Parents::Missing | Parents::Blocked(..) => continue,
        }
        let abs = abs(dirs, dir);
        if lstat(&abs)?.is_some_and(|m| m.is_dir()) && fs::remove_dir(&abs).is_ok() {
            // A directory left non-empty (unmanaged files in it) simply stays.
            known.remove(dir.as_str());
            done.touch(&abs);
        }
    }

    for (i, op) in journal.ops.iter().enumerate() {
        let Op::Put { path, .. } = op else { continue };
        steps.step()?;
        let staged = match &journal.placement {
            Some(placement) => {
                placement
                    .staged_file(dirs, i)
                    .ok_or_else(|| CheckoutError::BadPlan {
                        path: path.to_string(),
                    })?
            }
            None => journal::staged_path(&legacy, i),
        };
        if dirs.locate(path).is_none() {
            return Err(CheckoutError::OutsideRoots {
                path: path.to_string(),
            });
        }
        ensure_parents(dirs, path, &mut known, &mut done.touched)?;
        let abs = abs(dirs, path);
        if !rename_into_place(&staged, &abs, path, &mut known)? {
            continue;
        }
        done.written += 1;
        done.touch(&abs);
    }
    Ok(done)
}

/// Renames a staged file onto its destination; `false` when it was renamed already (an
/// interrupted run got that far). An empty directory in the way is removed first.
fn rename_into_place(
    staged: &Path,
    abs: &Path,
    path: &RelPath,
    known: &mut HashSet<String>,
) -> Result<bool, CheckoutError> {
    let first = match fs::rename(staged, abs) {
        Ok(()) => return Ok(true),
        Err(e) => e,
    };
    if lstat(staged)?.is_none() {
        return Ok(false);
    }
    match lstat(abs)? {
        Some(m) if m.is_dir() && !m.file_type().is_symlink() => match fs::remove_dir(abs) {
            Ok(()) => {
                known.remove(path.as_str());
            }
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                return Err(CheckoutError::DirNotEmpty {
                    path: abs.to_owned(),
                });
            }
            Err(e) => return Err(CheckoutError::io(abs, e)),
        },
        _ => return Err(CheckoutError::io(abs, first)),
    }
    fs::rename(staged, abs).map_err(|e| CheckoutError::io(abs, e))?;
    Ok(true)
}

/// Makes the renames durable, then removes the journal (the apply is finished) and the
/// staging dir.
fn finish(
    dirs: &RootDirs,
    state_dir: &Path,
    touched: &BTreeSet<PathBuf>,
    steps: &mut Steps,
) -> Result<(), CheckoutError> {
    // One syncfs per filesystem the roots are on (usually one); folders that are not there
    // (a root nothing was written to) have nothing to sync.
    let mut synced = false;
    for (_, dir) in dirs.iter() {
        if let Ok(handle) = File::open(dir) {
            synced |= rustix::fs::syncfs(&handle).is_ok();
        }
    }
    if !synced {
        for dir in touched {
            journal::sync_dir(dir)?;
        }
    }
    steps.step()?;
    journal::remove(state_dir)?;
    stage::remove_intent(state_dir)?;
    remove_staging(&dirs.codex().join(STAGING_NAME))
}

/// Removes a staging dir (never following a symlink in its place), if there is one.
fn remove_staging(staging: &Path) -> Result<(), CheckoutError> {
    let removed = match lstat(staging)? {
        None => return Ok(()),
        Some(m) if m.is_dir() => fs::remove_dir_all(staging),
        Some(_) => fs::remove_file(staging),
    };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CheckoutError::io(staging, e)),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
