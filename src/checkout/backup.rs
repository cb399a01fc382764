//! Backups of what an apply replaces or removes that codexport did not write (local edits,
//! things in the way), taken before the apply commits. Backups hold copies of credentials,
//! so they are owner-only.

use super::CheckoutError;
use crate::object::RelPath;
use crate::roots::RootDirs;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Copies each path (files, symlinks as symlinks, folders whole) from its root's folder to a
/// fresh `<state dir>/backups/<UTC time>/<root>/<path>`; returns that folder and every file
/// written there.
pub(super) fn backup(
    dirs: &RootDirs,
    state_dir: &Path,
    paths: &[&RelPath],
) -> Result<Option<(PathBuf, Vec<PathBuf>)>, CheckoutError> {
    if paths.is_empty() {
        return Ok(None);
    }
    let parent = state_dir.join(crate::paths::state::BACKUPS);
    crate::fsutil::create_private_dir_all(&parent).map_err(|e| CheckoutError::io(&parent, e))?;
    let stamp = crate::time::Utc::from_ms(crate::time::now_ms()).compact();
    let mut root = parent.join(&stamp);
    let mut n = 1;
    loop {
        match fs::DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                root = parent.join(format!("{stamp}-{n}"));
                n += 1;
            }
            Err(e) => return Err(CheckoutError::io(&root, e)),
        }
    }
    let mut written = Vec::new();
    for rel in paths {
        let to = rel.to_path(&root);
        if let Some(dir) = to.parent() {
            crate::fsutil::create_private_dir_all(dir).map_err(|e| CheckoutError::io(dir, e))?;
        }
        copy(&super::disk::abs(dirs, rel), &to, &mut written)?;
    }
    Ok(Some((root, written)))
}

/// Copies `from` to `to` without following symlinks: a folder recursively, a file
/// owner-only (keeping its owner bits), a symlink as a symlink. Special files are skipped.
fn copy(from: &Path, to: &Path, written: &mut Vec<PathBuf>) -> Result<(), CheckoutError> {
    let meta = fs::symlink_metadata(from).map_err(|e| CheckoutError::io(from, e))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(from).map_err(|e| CheckoutError::io(from, e))?;
        symlink(target, to).map_err(|e| CheckoutError::io(to, e))?;
        written.push(to.to_owned());
    } else if ft.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(to)
            .map_err(|e| CheckoutError::io(to, e))?;
        for entry in fs::read_dir(from).map_err(|e| CheckoutError::io(from, e))? {
            let entry = entry.map_err(|e| CheckoutError::io(from, e))?;
            copy(&entry.path(), &to.join(entry.file_name()), written)?;
        }
    } else if ft.is_file() {
        let mut src = fs::File::open(from).map_err(|e| CheckoutError::io(from, e))?;
        let mut dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.permissions().mode() & 0o700 | 0o600)
            .open(to)
            .map_err(|e| CheckoutError::io(to, e))?;
        io::copy(&mut src, &mut dst).map_err(|e| CheckoutError::io(from, e))?;
        written.push(to.to_owned());
    }
    Ok(())
}
