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
use crate::object::{ObjectId, ObjectKind};
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
/// Chunk lists are opened, so the chunks a follower holds are never sent again, whichever
/// file or revision they came with.
fn have_set(src: &impl ObjectSource, have: &[ObjectId]) -> Result<HashSet<ObjectId>, StoreError> {
    let mut set = HashSet::new();
    for rev_id in have {
        if !matches!(src.locate(rev_id)?, Some(loc) if loc.kind == ObjectKind::Revision) {
            continue;
        }
        let mut stack = vec![(ObjectKind::Revision, *rev_id)];
        while let Some((kind, id)) = stack.pop() {
            if set.insert(id) && kind != ObjectKind::Blob {
                stack.extend(src.children(kind, &id)?);
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
/// the tree, chunk list or revision naming them), with its location. Reads only trees,
/// chunk lists and revisions.
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
    for (k, child) in src.children(kind, &id)? {
        walk(src, k, child, skip, out)?;
    }
    out.push(Planned { id, location });
    Ok(())
}

/// Streams the planned objects from `files`, as stored (nothing is compressed again). Each
/// object is re-hashed on its way out (a compressed one is expanded for that), so a rotted
/// pack byte stops the stream instead of reaching a follower (which would refuse it).
pub fn send_planned<W: Write>(
    files: &PackFiles,
    planned: &[Planned],
    out: &mut FrameWriter<W>,
) -> Result<StreamTotals, SendError> {
    let mut totals = StreamTotals::default();
    for p in planned {
        let loc = &p.location;
        let stored = files.read(loc)?;
        let damaged = || StoreError::Damaged {
            id: p.id,
            kind: loc.kind.as_str(),
        };
        let own = loc
            .compression
            .expand(&stored, loc.size)
            .map_err(|_| damaged())?;
        if loc.kind.id_of(&own) != p.id {
            return Err(damaged().into());
        }
        drop(own);
        out.object(loc.kind, &p.id, loc.compression, &stored, loc.size)?;
        totals.objects += 1;
        totals.bytes += loc.size;
    }
    Ok(totals)
}
