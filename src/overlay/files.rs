//! The overlay's files on disk: reading local skills and overrides, and the cheap stamp a
//! sync compares to notice an overlay edit without reading anything.

use super::{LocalFile, OverlayError};
use crate::object::{EntryKind, EntryName, ObjectId, RelPath};
use crate::roots::ROOTS;
use std::path::Path;

/// The overlay folders of the state dir (local skills and overrides of every root).
fn overlay_dirs() -> impl Iterator<Item = &'static str> {
    ROOTS.iter().flat_map(|r| {
        r.merge
            .local_skills
            .map(|s| s.overlay)
            .into_iter()
            .chain(r.merge.overrides)
    })
}

/// A cheap fingerprint of the overlay as it is on disk: the stat of each of its files
/// (settings, local MCP servers, the installed hook, every local skill of every root and
/// every override). It
/// changes whenever one is written, added or removed, so a sync notices an overlay edit
/// without a new revision and without reading the files.
pub fn stamp(state_dir: &Path) -> ObjectId {
    use crate::paths::state;
    use std::os::unix::fs::MetadataExt;
    let mut hasher = blake3::Hasher::new_derive_key("codexport 2026-12-01 overlay stamp");
    let mut add = |path: &Path| {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            let fields = [
                m.size(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
                m.ctime() as u64,
                m.ctime_nsec() as u64,
                m.ino(),
                u64::from(m.mode()),
            ];
            hasher.update(path.as_os_str().as_encoded_bytes());
            for f in fields {
                hasher.update(&f.to_le_bytes());
            }
        }
    };
    for name in [state::LOCAL_TOML, state::LOCAL_MCPS, state::HOOK_TOML] {
        add(&state_dir.join(name));
    }
    for dir in overlay_dirs() {
        let mut stack = vec![state_dir.join(dir)];
        while let Some(p) = stack.pop() {
            add(&p);
            if let Ok(entries) = std::fs::read_dir(&p) {
                let mut children: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                children.sort();
                for c in children.into_iter().rev() {
                    if std::fs::symlink_metadata(&c).is_ok_and(|m| m.is_dir()) {
                        stack.push(c);
                    } else {
                        add(&c);
                    }
                }
            }
        }
    }
    ObjectId::from(hasher.finalize())
}

/// Every file below `dir` (symlinks as symlinks), with paths relative to it.
pub(super) fn read_files(dir: &Path) -> Result<Vec<LocalFile>, OverlayError> {
    let mut out = Vec::new();
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(out);
    }
    read_into(dir, &RelPath::root(), &mut out)?;
    Ok(out)
}

fn read_into(abs: &Path, rel: &RelPath, out: &mut Vec<LocalFile>) -> Result<(), OverlayError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &Path, e| OverlayError::Io {
        path: path.to_owned(),
        source: e,
    };
    for entry in std::fs::read_dir(abs).map_err(|e| io(abs, e))? {
        let entry = entry.map_err(|e| io(abs, e))?;
        let p = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| OverlayError::BadOverlayFile {
                path: p.clone(),
                what: "name is not UTF-8".into(),
            })?;
        let name = EntryName::new(name).map_err(|e| OverlayError::BadOverlayFile {
            path: p.clone(),
            what: e.to_string(),
        })?;
        let child = rel.join(&name);
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        if meta.is_dir() {
            read_into(&p, &child, out)?;
        } else if meta.file_type().is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            let target = std::fs::read_link(&p).map_err(|e| io(&p, e))?;
            out.push(LocalFile {
                path: child,
                kind: EntryKind::Symlink,
                private: false,
                bytes: target.as_os_str().as_bytes().to_vec(),
            });
        } else if meta.is_file() {
            let kind = if meta.permissions().mode() & 0o100 != 0 {
                EntryKind::Executable
            } else {
                EntryKind::File
            };
            out.push(LocalFile {
                path: child,
                kind,
                private: meta.permissions().mode() & 0o044 == 0,
                bytes: std::fs::read(&p).map_err(|e| io(&p, e))?,
            });
        }
    }
    Ok(())
}
