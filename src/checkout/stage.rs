//! Staging: the new content of every put, written next to its destination before the
//! commit point.
//!
//! Each file is staged as `.codexport-staged-<op index>` in the deepest directory on the way
//! to its destination that is (or, made now, becomes) a real directory: normally its own
//! folder, so the final rename stays inside one directory. Where the way is blocked (a file
//! or a symlink the plan removes after the commit), the file waits in the last real
//! directory before it; the rename is then across directories of the same filesystem, still
//! atomic. Files are created with their final mode and written in parallel, large raw pieces
//! copied in the kernel (see [`ObjectSource::copy_to_file`]).
//!
//! Where each file goes, and which directories staging makes, is decided first and written
//! down (the intent, `<state dir>/staging.json`) before anything is created, so an apply
//! interrupted before its commit is undone exactly: [`undo`] removes the staged files and
//! the directories made for them, and nothing else.

use super::CheckoutError;
use super::disk::lstat;
use super::plan::{Op, Plan, mode_for};
use crate::object::{EntryKind, ObjectId, RelPath};
use crate::roots::RootDirs;
use crate::store::{ObjectSource, WriteError};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

/// Names of staged files start with this; no plan may write such a name.
pub const STAGED_PREFIX: &str = ".codexport-staged-";

/// Version of the intent file's layout: 2 names every root's folder; version 1 (one codex
/// dir, placements relative to it) is still read.
const INTENT_VERSION: u32 = 2;

/// Where the puts of a plan are staged. Kept in the intent and in the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    /// Op index → the directory holding that put's staged file, as a path of the tree of
    /// roots (a root's name for its folder itself).
    pub staged_in: BTreeMap<usize, String>,
    /// Directories staging creates, parents first (paths of the tree of roots).
    pub created: Vec<String>,
}

impl Placement {
    /// The staged file of the put at `index`, if that put is placed (in a known root).
    pub fn staged_file(&self, dirs: &RootDirs, index: usize) -> Option<PathBuf> {
        self.staged_in
            .get(&index)
            .and_then(|dir| staged_file(dirs, dir, index))
    }

    /// The same placement written by a codexport before roots (paths relative to the codex
    /// dir, `""` for the codex dir itself), moved under the Codex root.
    pub fn under_codex_root(mut self) -> Self {
        let under = |dir: &String| {
            if dir.is_empty() {
                crate::roots::CODEX.name.to_owned()
            } else {
                format!("{}/{dir}", crate::roots::CODEX.name)
            }
        };
        self.staged_in.values_mut().for_each(|d| *d = under(d));
        self.created = self.created.iter().map(under).collect();
        self
    }
}

fn staged_file(dirs: &RootDirs, dir: &str, index: usize) -> Option<PathBuf> {
    let dir = RelPath::new(dir).ok()?;
    let mut p = dirs.abs(&dir).or_else(|| {
        // A root's folder itself.
        dir.first().and_then(|r| dirs.get(r)).map(Path::to_path_buf)
    })?;
    p.push(format!("{STAGED_PREFIX}{index}"));
    Some(p)
}

/// What a directory on the way to a destination is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// A real directory, there now or made by staging.
    Dir,
    /// Not a real directory (a file, a symlink, anything else): staging stops before it.
    Blocked,
}

/// Decides where each put is staged (see the module docs), with one `lstat` per directory.
/// Creates nothing; each root's folder is there already (made before staging).
pub fn place(dirs: &RootDirs, plan: &Plan) -> Result<Placement, CheckoutError> {
    let mut ways: HashMap<String, Way> = HashMap::new();
    let mut placement = Placement::default();
    for (i, op) in plan.ops.iter().enumerate() {
        let Op::Put { path, .. } = op else { continue };
        let parts: Vec<&str> = path.components().collect();
        let mut at = parts[0].to_owned();
        for part in &parts[1..parts.len() - 1] {
            let next = format!("{at}/{part}");
            let way = match ways.get(&next) {
                Some(w) => *w,
                None => {
                    let abs = dirs
                        .abs(&RelPath::new(&next).expect("a prefix of a valid path is valid"))
                        .expect("planned paths lie in a root");
                    let w = match lstat(&abs)? {
                        Some(m) if m.is_dir() && !m.file_type().is_symlink() => Way::Dir,
                        Some(_) => Way::Blocked,
                        None => {
                            placement.created.push(next.clone());
                            Way::Dir
                        }
                    };
                    ways.insert(next.clone(), w);
                    w
                }
            };
            if way == Way::Blocked {
                break;
            }
            at = next;
        }
        placement.staged_in.insert(i, at);
    }
    Ok(placement)
}

/// The intent: what staging is about to create, written (durably) before it does.
#[derive(serde::Serialize, serde::Deserialize)]
struct Intent {
    version: u32,
    /// Version 1: the one folder everything was staged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codex_dir: Option<PathBuf>,
    /// Version 2: each root's folder, by name.
    #[serde(default)]
    roots: BTreeMap<String, PathBuf>,
    placement: Placement,
}

impl Intent {
    /// The roots' folders and the placement, whichever version wrote it.
    fn read(self) -> Option<(RootDirs, Placement)> {
        match (self.version, self.codex_dir) {
            (1, Some(codex)) => Some((
                RootDirs::from_dirs([(crate::roots::CODEX, codex)]),
                self.placement.under_codex_root(),
            )),
            (INTENT_VERSION, _) => Some((RootDirs::from_names(&self.roots), self.placement)),
            _ => None,
        }
    }
}

fn intent_path(state_dir: &Path) -> PathBuf {
    state_dir.join(crate::paths::state::STAGING_INTENT)
}

/// Records the placement before anything is staged.
pub fn write_intent(
    state_dir: &Path,
    dirs: &RootDirs,
    placement: &Placement,
) -> Result<(), CheckoutError> {
    let p = intent_path(state_dir);
    let intent = Intent {
        version: INTENT_VERSION,
        codex_dir: None,
        roots: dirs.by_name(),
        placement: placement.clone(),
    };
    let bytes =
        serde_json::to_vec(&intent).map_err(|e| CheckoutError::io(&p, io::Error::other(e)))?;
    crate::fsutil::write_atomic(&p, &bytes, 0o600).map_err(|e| CheckoutError::io(&p, e))
}

/// Forgets the intent (the apply committed, or was undone).
pub fn remove_intent(state_dir: &Path) -> Result<(), CheckoutError> {
    let p = intent_path(state_dir);
    match fs::remove_file(&p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CheckoutError::io(&p, e)),
        _ => Ok(()),
    }
}

/// Undoes staging that never reached its commit: removes the staged files and the
/// directories made for them (those still empty), then the intent. Nothing else in the
/// roots' folders is touched.
pub fn undo(state_dir: &Path, dirs: &RootDirs) -> Result<(), CheckoutError> {
    let p = intent_path(state_dir);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CheckoutError::io(&p, e)),
    };
    // An unreadable intent (a crash while writing it, before anything was staged) has
    // nothing to undo.
    let intent = serde_json::from_slice::<Intent>(&bytes)
        .ok()
        .and_then(Intent::read);
    if let Some((recorded, placement)) = intent {
        if recorded.same_as(dirs) {
            remove_staged(dirs, &placement)?;
            for dir in placement.created.iter().rev() {
                let Some(abs) = RelPath::new(dir).ok().and_then(|d| dirs.abs(&d)) else {
                    continue;
                };
                if lstat(&abs)?.is_some_and(|m| m.is_dir() && !m.file_type().is_symlink()) {
                    // Left in place when something else was put in it meanwhile.
                    let _ = fs::remove_dir(&abs);
                }
            }
        }
    }
    remove_intent(state_dir)
}

/// Removes the staged files of `placement` that are still there (a staged file is always a
/// file or a symlink: never followed).
pub fn remove_staged(dirs: &RootDirs, placement: &Placement) -> Result<(), CheckoutError> {
    for &index in placement.staged_in.keys() {
        let Some(f) = placement.staged_file(dirs, index) else {
            continue;
        };
        match fs::remove_file(&f) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(CheckoutError::io(&f, e)),
        }
    }
    Ok(())
}

/// Makes the directories of `placement`, parents first.
pub fn make_dirs(dirs: &RootDirs, placement: &Placement) -> Result<(), CheckoutError> {
    for dir in &placement.created {
        let Some(abs) = RelPath::new(dir).ok().and_then(|d| dirs.abs(&d)) else {
            return Err(CheckoutError::BadPlan { path: dir.clone() });
        };
        match fs::create_dir(&abs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CheckoutError::io(&abs, e)),
        }
    }
    Ok(())
}

/// One put to stage.
struct Job<'p> {
    index: usize,
    path: &'p RelPath,
    kind: EntryKind,
    id: ObjectId,
    mode: u32,
}

/// Writes the staged files of the first `limit` puts of `plan` (in op order) on all cores;
/// returns the staged paths.
pub fn write<S: ObjectSource + Sync>(
    src: &S,
    dirs: &RootDirs,
    plan: &Plan,
    placement: &Placement,
    limit: usize,
) -> Result<Vec<PathBuf>, CheckoutError> {
    let jobs: Vec<Job<'_>> = plan
        .ops
        .iter()
        .enumerate()
        .filter_map(|(index, op)| match op {
            Op::Put {
                path,
                kind,
                id,
                mode,
                private,
                ..
            } => Some(Job {
                index,
                path,
                kind: *kind,
                id: *id,
                mode: mode.unwrap_or_else(|| mode_for(path, *kind, *private, None)),
            }),
            Op::Delete { .. } => None,
        })
        .take(limit)
        .collect();
    jobs.par_iter()
        .map(|job| {
            let dst =
                placement
                    .staged_file(dirs, job.index)
                    .ok_or_else(|| CheckoutError::BadPlan {
                        path: job.path.to_string(),
                    })?;
            write_one(src, job, &dst)?;
            Ok(dst)
        })
        .collect()
}

fn write_one(src: &impl ObjectSource, job: &Job<'_>, dst: &Path) -> Result<(), CheckoutError> {
    let io_err = |e| CheckoutError::io(dst, e);
    match job.kind {
        EntryKind::Symlink => {
            // Re-hashed as it leaves the store: rotted bytes never reach the codex dir.
            let target = src.blob(&job.id)?;
            replace_leftover(dst, || symlink(OsStr::from_bytes(&target), dst)).map_err(io_err)
        }
        EntryKind::File | EntryKind::Executable => {
            // Created with its final mode: a private file is never readable by others, not
            // even while staged. Read access is for checking a kernel copy (see
            // `copy_to_file`).
            let file = replace_leftover(dst, || {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(job.mode)
                    .open(dst)
            })
            .map_err(io_err)?;
            src.copy_to_file(&job.id, &file).map_err(|e| match e {
                WriteError::Store(e) => CheckoutError::from(e),
                WriteError::Io(e) => io_err(e),
            })
        }
        EntryKind::Tree => Err(CheckoutError::BadPlan {
            path: job.path.to_string(),
        }),
    }
}

/// Runs `create`; a leftover of an earlier, unrecorded attempt in the way is removed first.
fn replace_leftover<T>(dst: &Path, create: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(dst)?;
            create()
        }
        other => other,
    }
}
