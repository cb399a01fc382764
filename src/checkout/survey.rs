//! The read-only half of an apply: what is on disk at each target, drift from the tree, and
//! the pre-flight survey that refuses a plan before anything is written.

use super::{CheckoutError, STAGING_NAME};
use super::plan::{Op, Plan};
use crate::object::{EntryKind, ObjectId, RelPath};
use crate::store::ObjectSource;
use crate::store::diff::walk_files;
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Managed files (paths of `tree`, files only) whose content on disk differs from the tree
/// (edited, deleted or replaced locally).
pub fn drift(
    src: &impl ObjectSource,
    codex_dir: &Path,
    tree: ObjectId,
) -> Result<Vec<RelPath>, CheckoutError> {
    let mut known = HashSet::new();
    let mut out = Vec::new();
    for (path, entry) in walk_files(src, tree)? {
        let same = match parents(codex_dir, &path, &mut known, None)? {
            Parents::Dirs => found(&path.to_path(codex_dir))? == Found::Blob(entry.kind, entry.id),
            // A symlinked or missing directory, or a file where a directory was: replaced.
            Parents::Symlink(_) | Parents::Missing | Parents::Blocked(..) => false,
        };
        if !same {
            out.push(path);
        }
    }
    Ok(out)
}

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    Missing,
    /// A file or symlink, named as the tree would name it.
    Blob(EntryKind, ObjectId),
    Dir,
    Special,
}

/// `lstat`, with a missing path (or a file where a parent directory should be) as `None`.
pub(super) fn lstat(path: &Path) -> Result<Option<fs::Metadata>, CheckoutError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(CheckoutError::io(path, e)),
    }
}

pub(super) fn found(path: &Path) -> Result<Found, CheckoutError> {
    let Some(meta) = lstat(path)? else {
        return Ok(Found::Missing);
    };
    let io_err = |e| CheckoutError::io(path, e);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(io_err)?;
        Ok(Found::Blob(
            EntryKind::Symlink,
            blake3::hash(target.as_os_str().as_bytes()).into(),
        ))
    } else if ft.is_file() {
        // The owner's exec bit, as the snapshot records it.
        let kind = if meta.mode() & 0o100 != 0 {
            EntryKind::Executable
        } else {
            EntryKind::File
        };
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(File::open(path).map_err(io_err)?)
            .map_err(io_err)?;
        Ok(Found::Blob(kind, hasher.finalize().into()))
    } else if ft.is_dir() {
        Ok(Found::Dir)
    } else {
        Ok(Found::Special)
    }
}

/// What the directories above a target are.
pub(super) enum Parents {
    /// All real directories.
    Dirs,
    /// One is missing (so is the target).
    Missing,
    /// One is a symlink: writing below it could escape the codex dir.
    Symlink(PathBuf),
    /// One is a file (or special file): its relative path and its absolute path.
    Blocked(String, PathBuf),
}

/// The one walk over the directories between `codex_dir` and `rel`, with `lstat`,
/// remembering (in `known`, by relative path) those found to be real directories. With
/// `create`, a missing directory is made (and its parent recorded there, as its entries
/// changed) instead of ending the walk as [`Parents::Missing`].
pub(super) fn parents(
    codex_dir: &Path,
    rel: &RelPath,
    known: &mut HashSet<String>,
    mut create: Option<&mut BTreeSet<PathBuf>>,
) -> Result<Parents, CheckoutError> {
    let parts: Vec<&str> = rel.components().collect();
    let mut prefix = String::new();
    let mut abs = codex_dir.to_path_buf();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        abs.push(part);
        if known.contains(&prefix) {
            continue;
        }
        let meta = match (lstat(&abs)?, create.as_deref_mut()) {
            (Some(m), _) => m,
            (None, None) => return Ok(Parents::Missing),
            (None, Some(touched)) => {
                match fs::create_dir(&abs) {
                    Ok(()) => {
                        if let Some(parent) = abs.parent() {
                            touched.insert(parent.to_owned());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(CheckoutError::io(&abs, e)),
                }
                fs::symlink_metadata(&abs).map_err(|e| CheckoutError::io(&abs, e))?
            }
        };
        if meta.file_type().is_symlink() {
            return Ok(Parents::Symlink(abs));
        }
        if !meta.is_dir() {
            return Ok(Parents::Blocked(prefix, abs));
        }
        known.insert(prefix.clone());
    }
    Ok(Parents::Dirs)
}

/// A file as a tree names it.
type Blob = (EntryKind, ObjectId);

/// The (kind, id) an op expects before it runs, and the one it leaves.
fn expected(op: &Op) -> (Option<Blob>, Option<Blob>) {
    match op {
        Op::Put { kind, id, old, .. } => (*old, Some((*kind, *id))),
        Op::Delete { old, .. } => (Some(*old), None),
    }
}

/// Inspects every target before anything is written: returns the drifted paths, and refuses
/// (with nothing touched) a plan that could only fail halfway.
pub(super) fn survey(codex_dir: &Path, plan: &Plan) -> Result<Vec<RelPath>, CheckoutError> {
    let deletes: HashSet<&str> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Delete { path, .. } => Some(path.as_str()),
            Op::Put { .. } => None,
        })
        .collect();
    let stale: HashSet<&str> = plan.stale_dirs.iter().map(RelPath::as_str).collect();
    let mut known = HashSet::new();
    let mut drifted = Vec::new();
    for op in &plan.ops {
        let rel = op.path();
        if rel.is_root() || rel.first() == Some(STAGING_NAME) {
            return Err(CheckoutError::Reserved {
                path: rel.to_string(),
            });
        }
        let is_put = matches!(op, Op::Put { .. });
        match parents(codex_dir, rel, &mut known, None)? {
            Parents::Dirs => {}
            Parents::Missing => continue,
            Parents::Symlink(path) => return Err(CheckoutError::Escape { path }),
            // A file where a directory of a put must go is fine only if a delete removes it.
            Parents::Blocked(prefix, path) => {
                if is_put && !deletes.contains(prefix.as_str()) {
                    return Err(CheckoutError::InTheWay { path });
                }
                continue;
            }
        }
        let abs = rel.to_path(codex_dir);
        let (old, new) = expected(op);
        match found(&abs)? {
            Found::Missing => {}
            Found::Blob(kind, id) => {
                let here = Some((kind, id));
                if here != old && here != new {
                    drifted.push(rel.clone());
                }
            }
            // A delete never removes a directory; a put may replace only one that the
            // deletes and stale-directory removals empty.
            Found::Dir => {
                if is_put && !vacated(&abs, rel.as_str(), &deletes, &stale)? {
                    return Err(CheckoutError::DirNotEmpty { path: abs });
                }
            }
            Found::Special => {
                if is_put {
                    return Err(CheckoutError::Special { path: abs });
                }
            }
        }
    }
    Ok(drifted)
}

/// Whether the directory `abs` (relative path `rel`) is empty once the plan's deletes and
/// stale-directory removals have run.
fn vacated(
    abs: &Path,
    rel: &str,
    deletes: &HashSet<&str>,
    stale: &HashSet<&str>,
) -> Result<bool, CheckoutError> {
    let io_err = |e| CheckoutError::io(abs, e);
    for entry in fs::read_dir(abs).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Ok(false);
        };
        let child = format!("{rel}/{name}");
        if entry.file_type().map_err(io_err)?.is_dir() {
            if !stale.contains(child.as_str()) || !vacated(&entry.path(), &child, deletes, stale)? {
                return Ok(false);
            }
        } else if !deletes.contains(child.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}
