//! What is on disk at a managed path: the one `lstat` walk over its parent directories, the
//! stat fields the checkout index compares, and the content as a tree would name it.

use super::CheckoutError;
use crate::object::{EntryKind, ObjectId, RelPath};
use crate::roots::RootDirs;
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The stat fields that tell a file was left alone since it was last looked at (git's and
/// restic's trick), with its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    /// Permission bits (`mode & 0o7777`) and the file type, as `st_mode` has them.
    pub mode: u32,
}

impl Stat {
    pub fn of(meta: &fs::Metadata) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Self {
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
            mode: meta.mode(),
        }
    }

    /// The permission bits alone.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// A file or symlink, named as the tree would name it, with its stat.
    Blob(EntryKind, ObjectId, Stat),
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

/// The tree's kind for a file of this mode: the owner's exec bit, as the snapshot records it.
pub(super) fn file_kind(mode: u32) -> EntryKind {
    if mode & 0o100 != 0 {
        EntryKind::Executable
    } else {
        EntryKind::File
    }
}

/// What is at the `lstat`ed `path`, hashing a file's or link's content.
pub(super) fn found_with(path: &Path, meta: &fs::Metadata) -> Result<Found, CheckoutError> {
    let io_err = |e| CheckoutError::io(path, e);
    let ft = meta.file_type();
    let stat = Stat::of(meta);
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(io_err)?;
        Ok(Found::Blob(
            EntryKind::Symlink,
            blake3::hash(target.as_os_str().as_bytes()).into(),
            stat,
        ))
    } else if ft.is_file() {
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(File::open(path).map_err(io_err)?)
            .map_err(io_err)?;
        Ok(Found::Blob(
            file_kind(meta.mode()),
            hasher.finalize().into(),
            stat,
        ))
    } else if ft.is_dir() {
        Ok(Found::Dir)
    } else {
        Ok(Found::Special)
    }
}

/// What the directories above a target are.
#[derive(Debug)]
pub(super) enum Parents {
    /// All real directories.
    Dirs,
    /// One is missing (so is the target).
    Missing,
    /// One is not a real directory (a symlink, file or special file): writing below it could
    /// escape its root or fail. Its path in the tree of roots and its absolute path.
    Blocked(RelPath, PathBuf),
}

/// The file a path of the tree of roots names; the plan refused every path outside the
/// roots, so this always finds one.
pub(super) fn abs(dirs: &RootDirs, path: &RelPath) -> PathBuf {
    dirs.abs(path)
        .expect("planned paths lie in a root (plan checks every path)")
}

/// The one walk over the directories between a root's folder and `rel` (a path of the tree
/// of roots), with `lstat`, remembering (in `known`, by path) those found to be real
/// directories. A root's own folder is where the user keeps that root (it may be a link) and
/// is not looked at. With `create`, a missing directory is made (and its parent recorded
/// there, as its entries changed) instead of ending the walk as [`Parents::Missing`].
pub(super) fn parents(
    dirs: &RootDirs,
    rel: &RelPath,
    known: &mut HashSet<String>,
    mut create: Option<&mut BTreeSet<PathBuf>>,
) -> Result<Parents, CheckoutError> {
    let parts: Vec<&str> = rel.components().collect();
    let Some((root, _)) = dirs.locate(rel) else {
        return Ok(Parents::Missing);
    };
    let mut prefix = parts[0].to_owned();
    let mut abs = root.to_path_buf();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        prefix.push('/');
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
        if !meta.is_dir() || meta.file_type().is_symlink() {
            let prefix = RelPath::new(&prefix).expect("a prefix of a valid path is valid");
            return Ok(Parents::Blocked(prefix, abs));
        }
        known.insert(prefix.clone());
    }
    Ok(Parents::Dirs)
}
