//! Backups of drifted files, taken before an apply replaces or deletes them.

use super::CheckoutError;
use crate::object::RelPath;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Copies drifted files (symlinks as symlinks) to a fresh `<state dir>/backups/<UTC time>`.
pub(super) fn backup(
    codex_dir: &Path,
    state_dir: &Path,
    drifted: &[RelPath],
) -> Result<Option<PathBuf>, CheckoutError> {
    if drifted.is_empty() {
        return Ok(None);
    }
    let parent = state_dir.join(crate::paths::state::BACKUPS);
    fs::create_dir_all(&parent).map_err(|e| CheckoutError::io(&parent, e))?;
    let stamp = crate::time::Utc::from_ms(crate::time::now_ms()).compact();
    let mut root = parent.join(&stamp);
    let mut n = 1;
    loop {
        match fs::create_dir(&root) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                root = parent.join(format!("{stamp}-{n}"));
                n += 1;
            }
            Err(e) => return Err(CheckoutError::io(&root, e)),
        }
    }
    for rel in drifted {
        let from = rel.to_path(codex_dir);
        let to = rel.to_path(&root);
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir).map_err(|e| CheckoutError::io(dir, e))?;
        }
        let meta = fs::symlink_metadata(&from).map_err(|e| CheckoutError::io(&from, e))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&from).map_err(|e| CheckoutError::io(&from, e))?;
            symlink(target, &to).map_err(|e| CheckoutError::io(&to, e))?;
        } else {
            fs::copy(&from, &to).map_err(|e| CheckoutError::io(&from, e))?;
        }
    }
    Ok(Some(root))
}
