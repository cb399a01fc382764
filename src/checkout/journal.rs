//! The apply journal: `<state dir>/journal.json`, written once every new file is staged and
//! synced. Its presence is the commit point of an apply: with it, an interrupted apply is
//! finished (rolled forward) by [`super::apply::recover`]; without it, the roots' folders
//! were not touched and only the staged files need removing.

use super::CheckoutError;
use super::plan::Op;
use crate::object::{ObjectId, RelPath};
use crate::roots::RootDirs;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Version of the journal's layout written; a journal of a version not read is refused, not
/// guessed at. Versions 1 (ops without modes, reasons or backups), 2 (one staging folder)
/// and 3 (one codex dir, paths relative to it) are read too: their missing fields take their
/// defaults and their paths are moved under the Codex root (see [`Journal::under_codex_root`]).
pub const VERSION: u32 = 4;
const READABLE: &[u32] = &[1, 2, 3, VERSION];

/// Everything needed to finish an apply without the store: the staged files hold the new
/// content, the ops say where each one goes and what to delete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    pub version: u32,
    /// Versions 1 to 3: the codex dir the apply wrote into (paths are relative to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex_dir: Option<PathBuf>,
    /// Version 4: each root's folder, by name (paths are paths of the tree of roots);
    /// recovery refuses other folders.
    #[serde(default)]
    pub roots: BTreeMap<String, PathBuf>,
    /// Versions 1 and 2 staged every file in one folder, the put at `ops[i]` as `i`; recovery
    /// of such a journal always uses `<codex dir>/.codexport-staging`. Later versions place
    /// files by `placement`.
    #[serde(default)]
    pub staging: PathBuf,
    /// The plan's ops: deletes first, then puts.
    pub ops: Vec<Op>,
    /// Directories of the old tree that the new one lacks, deepest first.
    pub stale_dirs: Vec<RelPath>,
    /// The merged tree the codex dir holds once the apply is finished.
    pub new: ObjectId,
    /// The caller's record of the apply, handed back by recovery so it can be recorded.
    pub record: serde_json::Value,
    /// Where each put's file was staged (version 3); `None` in journals of versions 1 and 2.
    #[serde(default)]
    pub placement: Option<super::stage::Placement>,
}

impl Journal {
    /// The roots' folders the apply writes into.
    pub fn dirs(&self) -> RootDirs {
        RootDirs::from_names(&self.roots)
    }

    /// A journal of versions 1 to 3 (one codex dir, paths relative to it) as this version
    /// reads it: every path moved under the Codex root. `legacy` tells the caller that the
    /// `record` names trees of that older layout too.
    fn under_codex_root(mut self) -> Result<Self, String> {
        let codex = crate::roots::CODEX.name;
        let under =
            |p: &RelPath| RelPath::new(&format!("{codex}/{p}")).map_err(|e| format!("{p}: {e}"));
        for op in &mut self.ops {
            match op {
                Op::Put { path, .. } | Op::Delete { path, .. } => *path = under(path)?,
            }
        }
        self.stale_dirs = self
            .stale_dirs
            .iter()
            .map(under)
            .collect::<Result<_, _>>()?;
        self.placement = self
            .placement
            .map(super::stage::Placement::under_codex_root);
        let dir = self.codex_dir.take().unwrap_or_default();
        self.roots = BTreeMap::from([(codex.to_owned(), dir)]);
        Ok(self)
    }

    /// Whether it was written by a codexport before roots (its `record` names trees of the
    /// Codex dir itself).
    pub fn legacy(&self) -> bool {
        self.version < VERSION
    }
}

/// The staged file of the op at `index` in a journal of version 1 or 2.
pub fn staged_path(staging: &Path, index: usize) -> PathBuf {
    staging.join(index.to_string())
}

/// Where the journal lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(crate::paths::state::JOURNAL)
}

/// Whether a journal exists (an apply is committed but unfinished).
pub fn exists(state_dir: &Path) -> Result<bool, CheckoutError> {
    let p = path(state_dir);
    match std::fs::symlink_metadata(&p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CheckoutError::io(&p, e)),
    }
}

/// Writes the journal atomically and durably: once this returns, the apply is committed.
pub fn commit(state_dir: &Path, journal: &Journal) -> Result<(), CheckoutError> {
    let p = path(state_dir);
    let bytes = serde_json::to_vec_pretty(journal)
        .map_err(|e| CheckoutError::io(&p, io::Error::other(e)))?;
    crate::fsutil::write_atomic(&p, &bytes, 0o600).map_err(|e| CheckoutError::io(&p, e))?;
    sync_dir(state_dir)
}

/// Just the version of a journal of any layout.
#[derive(serde::Deserialize)]
struct Versioned {
    version: u32,
}

/// Reads the journal, if there is one.
pub fn load(state_dir: &Path) -> Result<Option<Journal>, CheckoutError> {
    let p = path(state_dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CheckoutError::io(&p, e)),
    };
    // Peek at the version first, so a newer layout is reported as such rather than as damage.
    let found = serde_json::from_slice::<Versioned>(&bytes)
        .map_err(|source| CheckoutError::JournalCorrupt {
            path: p.clone(),
            source,
        })?
        .version;
    if !READABLE.contains(&found) {
        return Err(CheckoutError::JournalVersion { path: p, found });
    }
    let journal: Journal =
        serde_json::from_slice(&bytes).map_err(|source| CheckoutError::JournalCorrupt {
            path: p.clone(),
            source,
        })?;
    if found == VERSION {
        return Ok(Some(journal));
    }
    journal
        .under_codex_root()
        .map(Some)
        .map_err(|what| CheckoutError::JournalCorrupt {
            path: p,
            source: <serde_json::Error as serde::de::Error>::custom(what),
        })
}

/// Removes the journal durably: once this returns, the apply is finished.
pub fn remove(state_dir: &Path) -> Result<(), CheckoutError> {
    let p = path(state_dir);
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CheckoutError::io(&p, e)),
    }
    sync_dir(state_dir)
}

/// Makes a directory's entries (a rename, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CheckoutError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| CheckoutError::io(dir, e))
}
