//! Which objects a follower lacks: the closure of the wanted revision minus everything
//! reachable from the revisions it has complete and the loose objects it kept. Equal
//! subtree ids are skipped whole, so the work follows the size of the change, not of the
//! library.

use super::wire::{FetchRequest, FrameWriter, StreamTotals};
use crate::object::{EntryKind, ObjectId, ObjectKind};
use crate::store::{ObjectSource, StoreError};
use std::collections::HashSet;
use std::io::Write;

/// Why the server could not produce a stream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Every object id reachable from the given complete revisions (absent ones are ignored).
fn have_set(src: &impl ObjectSource, have: &[ObjectId]) -> Result<HashSet<ObjectId>, StoreError> {
    let mut set = HashSet::new();
    for rev_id in have {
        if !matches!(src.locate(rev_id)?, Some(loc) if loc.kind == ObjectKind::Revision)
            || !set.insert(*rev_id)
        {
            continue;
        }
        let rev = src.revision(rev_id)?;
        let mut stack: Vec<ObjectId> = rev.children().map(|(_, id)| id).collect();
        while let Some(tree_id) = stack.pop() {
            if !set.insert(tree_id) {
                continue;
            }
            for e in src.tree(&tree_id)?.entries() {
                if e.kind == EntryKind::Tree {
                    stack.push(e.id);
                } else {
                    set.insert(e.id);
                }
            }
        }
    }
    Ok(set)
}

/// Streams, in post-order, every object of `req.want`'s closure the follower lacks.
pub fn send_missing<W: Write>(
    src: &impl ObjectSource,
    req: &FetchRequest,
    out: &mut FrameWriter<W>,
) -> Result<StreamTotals, SendError> {
    let mut skip = have_set(src, &req.have)?;
    skip.extend(req.partial.iter().copied());
    let mut totals = StreamTotals::default();
    emit(
        src,
        ObjectKind::Revision,
        req.want,
        &mut skip,
        out,
        &mut totals,
    )?;
    Ok(totals)
}

fn emit<W: Write>(
    src: &impl ObjectSource,
    kind: ObjectKind,
    id: ObjectId,
    skip: &mut HashSet<ObjectId>,
    out: &mut FrameWriter<W>,
    totals: &mut StreamTotals,
) -> Result<(), SendError> {
    if !skip.insert(id) {
        return Ok(());
    }
    let (found, bytes) = src.get_required(&id)?;
    if found != kind {
        return Err(StoreError::WrongKind {
            id,
            expected: kind.as_str(),
            found: found.as_str(),
        }
        .into());
    }
    match kind {
        ObjectKind::Blob => {}
        ObjectKind::Tree => {
            let tree = crate::object::Tree::decode(&bytes)
                .map_err(|source| StoreError::BadObject { id, source })?;
            for e in tree.entries() {
                emit(src, e.kind.object_kind(), e.id, skip, out, totals)?;
            }
        }
        ObjectKind::Revision => {
            let rev = crate::object::Revision::decode(&bytes)
                .map_err(|source| StoreError::BadObject { id, source })?;
            for (k, child) in rev.children() {
                emit(src, k, child, skip, out, totals)?;
            }
        }
    }
    out.object(kind, &id, &bytes)?;
    totals.objects += 1;
    totals.bytes += bytes.len() as u64;
    Ok(())
}
