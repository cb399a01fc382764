//! Backups of drifted files, taken before an apply replaces or deletes them.

use super::apply::CheckoutError;
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
    let parent = state_dir.join("backups");
    fs::create_dir_all(&parent).map_err(|e| CheckoutError::io(&parent, e))?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let stamp = utc_stamp(secs);
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

/// `YYYYmmddTHHMMSSZ` for seconds since the epoch.
fn utc_stamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::time::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }
}
