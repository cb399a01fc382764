//! Small filesystem helpers: atomic file replacement and the state-dir lock.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
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

/// Touches the file at `path` (owner-only) and returns its mtime in nanoseconds: the
/// filesystem's own "now", in its own timestamp granularity. A file whose mtime is not older
/// than it may still change within the same tick unseen (git's racily-clean rule).
pub fn filesystem_now(path: &Path) -> io::Result<i64> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
        fs::create_dir_all(state_dir).map_err(io_err)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
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
