//! Integrity check (re-hash every object, check reachability) and garbage collection.

use super::pack::Location;
use super::{ObjectSource, Store, StoreError};
use crate::object::{EntryKind, ObjectId, ObjectKind};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// One object that failed the check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadObject {
    pub id: ObjectId,
    pub problem: String,
}

/// What `fsck` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    pub objects: u64,
    pub bytes: u64,
    pub reachable: u64,
    pub unreachable: u64,
    pub bad: Vec<BadObject>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty()
    }
}

/// Re-hashes every object and walks everything reachable from refs and the revision log.
pub fn fsck(store: &Store) -> Result<FsckReport, StoreError> {
    let reader = store.read()?;
    let objects = reader.objects()?;
    let mut report = FsckReport {
        objects: objects.len() as u64,
        ..FsckReport::default()
    };
    let mut bad: Vec<BadObject> = objects
        .par_iter()
        .filter_map(|(id, loc)| {
            check_object(&reader, id, loc)
                .err()
                .map(|problem| BadObject { id: *id, problem })
        })
        .collect();
    report.bytes = objects.iter().map(|(_, l)| l.len).sum();
    let index: HashMap<ObjectId, Location> = objects.into_iter().collect();
    let broken: HashSet<ObjectId> = bad.iter().map(|b| b.id).collect();

    let mut walk = Reachability {
        reader: &reader,
        index: &index,
        broken: &broken,
        seen: HashSet::new(),
        bad: &mut bad,
    };
    for (kind, id, from) in roots(&reader)? {
        walk.visit(kind, id, &from);
    }
    let seen = walk.seen;
    report.reachable = seen.len() as u64;
    report.unreachable = index.keys().filter(|id| !seen.contains(*id)).count() as u64;
    bad.sort_by_key(|b| b.id);
    bad.dedup_by(|a, b| a.id == b.id && a.problem == b.problem);
    report.bad = bad;
    Ok(report)
}

fn check_object(reader: &super::Reader<'_>, id: &ObjectId, loc: &Location) -> Result<(), String> {
    let bytes = reader
        .read_object_at(loc)
        .map_err(|e| format!("unreadable: {e}"))?;
    let actual = loc.kind.id_of(&bytes);
    if actual != *id {
        return Err(format!("{} content hashes to {actual}", loc.kind.as_str()));
    }
    loc.kind
        .validate(&bytes)
        .map_err(|e| format!("{} does not decode: {e}", loc.kind.as_str()))
}

/// Revisions named by refs, the revision log and the served head.
fn roots(reader: &super::Reader<'_>) -> Result<Vec<(ObjectKind, ObjectId, String)>, StoreError> {
    let mut out: Vec<_> = reader
        .refs()?
        .into_iter()
        .map(|(name, id)| (ObjectKind::Revision, id, format!("ref {name}")))
        .collect();
    for e in reader.log()? {
        out.push((ObjectKind::Revision, e.id, format!("revision {}", e.number)));
    }
    if let Some(head) = reader.head()? {
        out.push((
            ObjectKind::Revision,
            head.body.revision,
            "the signed head".to_owned(),
        ));
    }
    for a in reader.applies()? {
        let from = format!("apply {}", a.seq);
        out.push((ObjectKind::Revision, a.revision, from.clone()));
        out.push((ObjectKind::Tree, a.merged, from));
    }
    Ok(out)
}

/// The walk from the roots: what is reachable, and what is missing or mislabelled on the way.
struct Reachability<'a, 'r> {
    reader: &'a super::Reader<'r>,
    index: &'a HashMap<ObjectId, Location>,
    /// Objects that failed their own check (not walked into).
    broken: &'a HashSet<ObjectId>,
    seen: HashSet<ObjectId>,
    bad: &'a mut Vec<BadObject>,
}

impl Reachability<'_, '_> {
    fn visit(&mut self, kind: ObjectKind, id: ObjectId, from: &str) {
        if !self.seen.insert(id) {
            return;
        }
        let Some(loc) = self.index.get(&id) else {
            self.bad.push(BadObject {
                id,
                problem: format!("missing, referenced by {from}"),
            });
            return;
        };
        if loc.kind != kind {
            self.bad.push(BadObject {
                id,
                problem: format!(
                    "is a {}, {from} expects a {}",
                    loc.kind.as_str(),
                    kind.as_str()
                ),
            });
            return;
        }
        if self.broken.contains(&id) {
            return;
        }
        if kind == ObjectKind::Tree {
            if let Ok(tree) = self.reader.tree(&id) {
                self.check_sizes(&tree, &format!("tree {}", id.short()));
            }
        }
        let from = match kind {
            ObjectKind::Revision => self.reader.revision(&id).map_or_else(
                |_| "a revision".to_owned(),
                |r| format!("revision {}", r.number),
            ),
            ObjectKind::Tree => format!("tree {}", id.short()),
            ObjectKind::Chunks => format!("chunk list {}", id.short()),
            ObjectKind::Blob => return,
        };
        if let Ok(children) = self.reader.children(kind, &id) {
            for (k, child) in children {
                self.visit(k, child, &from);
            }
        }
    }

    /// Each file entry's declared size must be its content's: the blob's, or the chunks'.
    fn check_sizes(&mut self, tree: &crate::object::Tree, from: &str) {
        for e in tree.entries().iter().filter(|e| e.kind != EntryKind::Tree) {
            let found = if e.chunked {
                self.reader.chunk_list(&e.id).ok().map(|l| l.size())
            } else {
                self.index.get(&e.id).map(|l| l.size)
            };
            if let Some(found) = found.filter(|&n| n != e.size) {
                self.bad.push(BadObject {
                    id: e.id,
                    problem: format!(
                        "{from} declares {} bytes for {:?}, its content has {found}",
                        e.size,
                        e.name.as_str(),
                    ),
                });
            }
        }
    }
}

/// How many objects are reachable from a revision (itself included), and their own sizes
/// added (uncompressed): the figures a signed head carries.
pub fn closure(src: &impl ObjectSource, revision: ObjectId) -> Result<(u64, u64), StoreError> {
    let mut seen = HashSet::new();
    let mut count = 0;
    let mut bytes = 0;
    let mut stack = vec![(ObjectKind::Revision, revision)];
    while let Some((kind, id)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let loc = src.locate(&id)?.ok_or(StoreError::MissingObject { id })?;
        count += 1;
        bytes += loc.size;
        stack.extend(src.children(kind, &id)?);
    }
    Ok((count, bytes))
}

/// Sets damaged objects aside: drops them from the index (their bytes stay in a pack until
/// `gc`), forgets the stat-cache entries that name them (so a master hashes those files and
/// stores them again), and marks the store for repair (so a follower's next sync fetches
/// them again). Returns how many were set aside.
pub fn set_aside(store: &Store, bad: &[BadObject]) -> Result<u64, StoreError> {
    let ids: HashSet<ObjectId> = bad.iter().map(|b| b.id).collect();
    let stat = store.read()?.stat_cache()?;
    let mut w = store.write()?;
    let mut removed = 0;
    for id in &ids {
        if w.has(id)? {
            w.remove_object(id)?;
            removed += 1;
        }
    }
    w.forget_stat_entries(
        stat.iter()
            .filter(|(_, e)| ids.contains(&e.id))
            .map(|(p, _)| p.as_str()),
    )?;
    if !ids.is_empty() {
        w.set_meta(super::meta::REPAIR, &[1])?;
    }
    w.commit()?;
    Ok(removed)
}

/// What `gc` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub revisions_dropped: u64,
    pub objects_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Keeps the newest `keep` revisions of the log, everything refs, the head and the apply
/// history (rollback points) name, objects of an unfinished fetch, and the extra revisions a
/// caller holds; removes the rest and rewrites packs.
pub fn gc(
    store: &mut Store,
    keep: usize,
    extra_roots: &[ObjectId],
) -> Result<GcReport, StoreError> {
    let mut report = GcReport {
        bytes_before: store.disk_bytes()?,
        ..GcReport::default()
    };
    let (live, dropped, objects) = {
        let reader = store.read()?;
        let log = reader.log()?;
        let cut = log.len().saturating_sub(keep.max(1));
        let dropped: Vec<u64> = log[..cut].iter().map(|e| e.number).collect();
        let mut roots: Vec<ObjectId> = log[cut..].iter().map(|e| e.id).collect();
        roots.extend(reader.refs()?.into_iter().map(|(_, id)| id));
        roots.extend(reader.head()?.map(|h| h.body.revision));
        roots.extend_from_slice(extra_roots);
        let mut live = HashSet::new();
        let mut stack: Vec<(ObjectKind, ObjectId)> = roots
            .into_iter()
            .map(|id| (ObjectKind::Revision, id))
            .collect();
        // Rollback points.
        for a in reader.applies()? {
            stack.push((ObjectKind::Revision, a.revision));
            stack.push((ObjectKind::Tree, a.merged));
        }
        // Verified objects of an unfinished fetch: the next fetch counts on them.
        for id in reader.partial(usize::MAX)? {
            live.insert(id);
        }
        while let Some((kind, id)) = stack.pop() {
            if !live.insert(id) || !reader.has(&id)? {
                continue;
            }
            stack.extend(reader.children(kind, &id)?);
        }
        (live, dropped, reader.objects()?)
    };
    let old_packs = store.packs().list()?;
    let mut writer = store.write()?;
    for n in &dropped {
        writer.remove_log(*n)?;
    }
    report.revisions_dropped = dropped.len() as u64;
    let mut appender = store.packs().fresh_appender()?;
    for (id, loc) in &objects {
        if live.contains(id) {
            let stored = store.packs().read(loc)?;
            let new_loc =
                appender.append(loc.kind, id.as_bytes(), loc.compression, &stored, loc.size)?;
            writer.relocate(id, new_loc)?;
        } else {
            writer.remove_object(id)?;
            report.objects_removed += 1;
        }
    }
    appender.finish()?;
    writer.commit()?;
    for n in old_packs {
        let p = store.packs().path(n);
        std::fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
    }
    store.packs().forget();
    store.compact()?;
    report.bytes_after = store.disk_bytes()?;
    Ok(report)
}
