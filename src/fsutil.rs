//! Small filesystem helpers: atomic file replacement and the state-dir lock.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Replaces `path` with `bytes` atomically (temp file in the same directory, sync, rename),
/// with the given permission bits.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, true)
}

/// Replaces `path` with `bytes` atomically but without a durability barrier: for caches,
/// which a crash may lose (they are rebuilt) but never leave half-written.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, false)
}

fn replace(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".codexport-")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(bytes)?;
    if sync {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` and any missing parents owner-only (0700). Folders that exist keep their
/// mode.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes the state dir owner-only: everything in it (the store, packs, backups holding
/// copies of credentials, logs, state files) stays private to the user. Created 0700 when
/// missing; an existing one whose mode lets others in (made by an earlier version) has
/// group and other bits taken off everything in it, once.
pub fn secure_state_dir(state_dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match fs::symlink_metadata(state_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() && m.mode() & 0o077 != 0 => make_private(state_dir),
        Ok(_) => Ok(()),
    }
}

/// Takes group and other permission bits off `dir` and everything below it (never following
/// a symlink).
pub fn make_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    strip_group_and_other(dir)?;
    let mode = fs::symlink_metadata(dir)?.mode();
    fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700))
}

/// Takes group and other permission bits off everything below `dir` (never following a
/// symlink).
fn strip_group_and_other(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            strip_group_and_other(&path)?;
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(meta.mode() & 0o700))?;
        }
    }
    Ok(())
}

/// Opens a log file for appending, owner-only, creating it and its folder (owner-only)
/// when missing.
pub fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        create_private_dir_all(dir)?;
    }
    File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Touches the file at `path` (owner-only) and returns its mtime in nanoseconds: the
/// filesystem's own "now", in its own timestamp granularity. A file whose mtime is not older
/// than it may still change within the same tick unseen (git's racily-clean rule).
pub fn filesystem_now(path: &Path) -> io::Result<i64> {
    use std::os::unix::fs::MetadataExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    // Truncating an empty file may not touch its mtime: write, then truncate.
    (&file).write_all(b"t")?;
    file.set_len(0)?;
    let meta = file.metadata()?;
    Ok(meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec()))
}

/// An exclusive lock on `<state dir>/lock`, held until dropped. Serialises syncs and
/// applies of one follower.
pub struct StateLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("another codexport sync or apply is running (lock {path})")]
    #[diagnostic(
        code(codexport::busy),
        help("wait for it to finish and run the command again")
    )]
    Busy { path: String },
    #[error("cannot open the lock file {path}: {source}")]
    #[diagnostic(
        code(codexport::lock::io),
        help("check permissions of the codexport state directory")
    )]
    Io { path: String, source: io::Error },
}

impl StateLock {
    /// Takes the lock, waiting up to `wait` for another holder.
    pub fn acquire(state_dir: &Path, wait: Duration) -> Result<Self, LockError> {
        let path = state_dir.join(crate::paths::state::LOCK);
        let io_err = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        create_private_dir_all(state_dir).map_err(io_err)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Busy {
                        path: path.display().to_string(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
    }
}
