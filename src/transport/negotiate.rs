//! Which objects a follower lacks: the closure of the wanted revision minus everything
//! reachable from the revisions it has complete and the loose objects it kept. Equal
//! subtree ids are skipped whole, so the work follows the size of the change, not of the
//! library.
//!
//! A fetch is answered in two steps. [`plan`] walks the trees with the store open and lists
//! what to send with where each object lives; [`send_planned`] then streams those objects
//! from open pack handles ([`PackFiles`]), after the store is closed. A follower that reads
//! slowly therefore never keeps the master's database open.

use super::wire::{FetchRequest, FrameWriter, StreamTotals};
use crate::object::{EntryKind, ObjectId, ObjectKind};
use crate::store::pack::{Location, PackFiles};
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

/// One object to send, and where its bytes are.
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    pub id: ObjectId,
    pub location: Location,
}

/// Every object of `req.want`'s closure the follower lacks, in post-order (children before
/// the tree or revision naming them), with its location. Reads only trees and revisions.
pub fn plan(src: &impl ObjectSource, req: &FetchRequest) -> Result<Vec<Planned>, StoreError> {
    let mut skip = have_set(src, &req.have)?;
    skip.extend(req.partial.iter().copied());
    let mut out = Vec::new();
    walk(src, ObjectKind::Revision, req.want, &mut skip, &mut out)?;
    Ok(out)
}

fn walk(
    src: &impl ObjectSource,
    kind: ObjectKind,
    id: ObjectId,
    skip: &mut HashSet<ObjectId>,
    out: &mut Vec<Planned>,
) -> Result<(), StoreError> {
    if !skip.insert(id) {
        return Ok(());
    }
    let location = src.locate(&id)?.ok_or(StoreError::MissingObject { id })?;
    if location.kind != kind {
        return Err(StoreError::WrongKind {
            id,
            expected: kind.as_str(),
            found: location.kind.as_str(),
        });
    }
    match kind {
        ObjectKind::Blob => {}
        ObjectKind::Tree => {
            for e in src.tree(&id)?.entries() {
                walk(src, e.kind.object_kind(), e.id, skip, out)?;
            }
        }
        ObjectKind::Revision => {
            for (k, child) in src.revision(&id)?.children() {
                walk(src, k, child, skip, out)?;
            }
        }
    }
    out.push(Planned { id, location });
    Ok(())
}

/// Streams the planned objects from `files`. Each object is re-hashed on its way out, so a
/// rotted pack byte stops the stream instead of reaching a follower (which would refuse it).
pub fn send_planned<W: Write>(
    files: &PackFiles,
    planned: &[Planned],
    out: &mut FrameWriter<W>,
) -> Result<StreamTotals, SendError> {
    let mut totals = StreamTotals::default();
    for p in planned {
        let kind = p.location.kind;
        let bytes = files.read(&p.location)?;
        if kind.id_of(&bytes) != p.id {
            return Err(StoreError::Damaged {
                id: p.id,
                kind: kind.as_str(),
            }
            .into());
        }
        out.object(kind, &p.id, &bytes)?;
        totals.objects += 1;
        totals.bytes += bytes.len() as u64;
    }
    Ok(totals)
}
