//! Small filesystem helpers: atomic file replacement and the state-dir lock.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Replaces `path` with `bytes` atomically (temp file in the same directory, sync, rename),
/// with the given permission bits.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
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
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
