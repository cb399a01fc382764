//! `codexport sync`: head, then one fetch of exactly the missing objects.

use super::apply::{self, ApplyReport, Target};
use super::state::{
    LastOutcome, LastSync, Mirror, accepted_number, clear_repair, hold, needs_repair,
};
use super::{FETCHED, FollowerConfig, FollowerError, config, meta};
use crate::fsutil::StateLock;
use crate::object::{ObjectId, SignedHead};
use crate::paths::Paths;
use crate::progress::Progress;
use crate::store::diff::{count, tree_diff};
use crate::store::{LogEntry, ObjectSource, Store, fsck};
use crate::transport::client::Client;
use crate::transport::wire::{
    FetchRequest, Frame, FrameReader, MAX_PARTIAL, StreamError, WireObject,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// One deadline for the whole sync, lock wait included.
    pub timeout: Duration,
    /// Draw a progress bar (on a terminal only).
    pub progress: bool,
    /// Apply the fetched revision into the codex dir afterwards.
    pub apply: bool,
    /// With `apply` and nothing new (no revision, no overlay change): still compare every
    /// managed path with what was written (one `lstat` each) and repair drift. The
    /// session-start hook skips it to stay within its deadline.
    pub drift_check: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            progress: false,
            apply: false,
            drift_check: true,
        }
    }
}

/// Whether a sync found something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOutcome {
    /// The newest revision was already here.
    Current,
    /// A new revision was fetched and accepted.
    Fetched,
}

/// What a sync did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub result: SyncOutcome,
    pub master_url: String,
    pub number: u64,
    pub revision: ObjectId,
    /// Objects and their bytes received (decompressed) in this sync.
    pub objects: u64,
    pub object_bytes: u64,
    /// Bytes that crossed the wire (compressed).
    pub wire_bytes: u64,
    pub elapsed_ms: f64,
    /// With `apply`: what the apply did.
    pub apply: Option<ApplyReport>,
    /// Set when a rollback holds the follower at an older revision (see `codexport apply`).
    pub held_at: Option<u64>,
}

/// Revisions named as complete in a fetch request.
const HAVE_REVISIONS: usize = 32;
/// Verified objects are committed in batches this large, so an interrupted fetch keeps them.
const BATCH_BYTES: u64 = 8 << 20;
const BATCH_OBJECTS: u64 = 4096;

/// Fetches the master's newest head and its missing objects.
pub fn sync(paths: &Paths, opts: &SyncOptions) -> Result<SyncReport, FollowerError> {
    let started = Instant::now();
    let cfg = FollowerConfig::load(paths)?;
    let credential = config::load_credential(paths)?;
    let _lock = StateLock::acquire(&paths.state_dir, opts.timeout)?;
    let client = Client::until(&cfg.master_url, Some(credential), started, opts.timeout)?;
    let result = sync_with_lock(paths, &cfg, &client, opts, started);
    let (outcome, number, error) = match &result {
        Ok(r) => (
            match r.result {
                SyncOutcome::Current => LastOutcome::Current,
                SyncOutcome::Fetched => LastOutcome::Fetched,
            },
            Some(r.number),
            None,
        ),
        Err(e) => (LastOutcome::Error, None, Some(e.to_string())),
    };
    LastSync {
        time_ms: crate::time::now_ms(),
        result: outcome,
        number,
        error,
    }
    .record(paths);
    result
}

fn sync_with_lock(
    paths: &Paths,
    cfg: &FollowerConfig,
    client: &Client,
    opts: &SyncOptions,
    started: Instant,
) -> Result<SyncReport, FollowerError> {
    let head = verified_head(cfg, client)?;
    if nothing_to_do(paths, &head, opts) {
        return Ok(current_report(cfg, &head, started));
    }
    let store = Store::open_waiting(
        &paths.state_dir,
        opts.timeout.saturating_sub(started.elapsed()),
    )?;
    apply::recover_interrupted(paths, &store)?;
    let mut report = sync_locked(&store, cfg, client, &head, opts, started)?;
    if opts.apply {
        match hold(&store)? {
            Some(hold_at) if report.number <= hold_at => report.held_at = Some(hold_at),
            _ => {
                let applied = apply::apply_locked(
                    paths,
                    &store,
                    Target::Fetched,
                    false,
                    &crate::checkout::ExecOptions::default(),
                )?;
                report.apply = Some(applied);
            }
        }
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    }
    Mirror::refresh(paths, &store)?;
    Ok(report)
}

/// The fast path of every Codex session start: decides from the verified head and the small
/// state file, without opening the store, that there is nothing to fetch and (with `apply`)
/// nothing to write: no new revision, no overlay change, no interrupted apply, no damaged
/// object to fetch again, and (with `drift_check`) every managed path as it was written.
/// Any doubt (a cache that disagrees with the head included) means `false`: the store
/// decides.
fn nothing_to_do(paths: &Paths, head: &SignedHead, opts: &SyncOptions) -> bool {
    let Some(m) = Mirror::load(paths) else {
        return false;
    };
    if m.fetched != Some(head.body.revision)
        || m.accepted != Some(head.body.number)
        || m.repair
        || crate::checkout::journal::exists(&paths.state_dir).unwrap_or(true)
    {
        return false;
    }
    if !opts.apply {
        return true;
    }
    if m.applied != m.fetched || m.overlay != Some(crate::overlay::stamp(&paths.state_dir)) {
        return false;
    }
    if !opts.drift_check {
        return true;
    }
    m.merged
        .and_then(|tree| crate::checkout::Index::load(&paths.state_dir, &paths.roots(), tree))
        .is_some_and(|index| index.clean().unwrap_or(false))
}

fn current_report(cfg: &FollowerConfig, head: &SignedHead, started: Instant) -> SyncReport {
    SyncReport {
        result: SyncOutcome::Current,
        master_url: cfg.master_url.clone(),
        number: head.body.number,
        revision: head.body.revision,
        objects: 0,
        object_bytes: 0,
        wire_bytes: 0,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        apply: None,
        held_at: None,
    }
}

/// Fetches the head and checks its signature, key and expiry.
fn verified_head(cfg: &FollowerConfig, client: &Client) -> Result<SignedHead, FollowerError> {
    let bytes = client.head()?.ok_or(FollowerError::NoHead)?;
    let head = SignedHead::decode(&bytes).map_err(FollowerError::BadHead)?;
    if head.body.master_key != cfg.master_key {
        return Err(FollowerError::FingerprintMismatch {
            expected: cfg.fingerprint.to_string(),
            got: head.body.fingerprint().to_string(),
        });
    }
    let now = crate::time::now_secs();
    if head.body.expires_at < now {
        let t = |s: i64| crate::time::Utc::from_secs(s).to_string();
        return Err(FollowerError::HeadExpired {
            expired: t(head.body.expires_at),
            now: t(now),
        });
    }
    Ok(head)
}

/// Refuses a head numbered below the last accepted one, or another revision under it.
fn check_number(
    head: &SignedHead,
    accepted: Option<u64>,
    fetched: Option<ObjectId>,
) -> Result<(), FollowerError> {
    if let Some(accepted) = accepted {
        if head.body.number < accepted {
            return Err(FollowerError::Replayed {
                got: head.body.number,
                accepted,
            });
        }
        if head.body.number == accepted && fetched != Some(head.body.revision) {
            return Err(FollowerError::Equivocation { number: accepted });
        }
    }
    Ok(())
}

/// Fetches the signed head and verifies it against the pinned key, its expiry, and the last
/// number the store accepted.
pub fn fetch_head(
    store: &Store,
    cfg: &FollowerConfig,
    client: &Client,
) -> Result<SignedHead, FollowerError> {
    let head = verified_head(cfg, client)?;
    let r = store.read()?;
    check_number(&head, accepted_number(&r)?, r.get_ref(FETCHED)?)?;
    Ok(head)
}

fn sync_locked(
    store: &Store,
    cfg: &FollowerConfig,
    client: &Client,
    head: &SignedHead,
    opts: &SyncOptions,
    started: Instant,
) -> Result<SyncReport, FollowerError> {
    {
        let r = store.read()?;
        check_number(head, accepted_number(&r)?, r.get_ref(FETCHED)?)?;
    }
    let head = head.clone();
    let want = head.body.revision;
    let mut report = SyncReport {
        result: SyncOutcome::Current,
        master_url: cfg.master_url.clone(),
        number: head.body.number,
        revision: want,
        objects: 0,
        object_bytes: 0,
        wire_bytes: 0,
        elapsed_ms: 0.0,
        apply: None,
        held_at: None,
    };
    let (fetched, complete, repair) = {
        let r = store.read()?;
        let fetched = r.get_ref(FETCHED)?;
        let complete =
            fsck::closure(&r, want).is_ok_and(|c| c == (head.body.objects, head.body.bytes));
        (fetched, complete, needs_repair(&r)?)
    };
    if fetched == Some(want) && (complete || !repair) {
        if repair {
            clear_repair(store)?;
        }
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        return Ok(report);
    }
    if !complete {
        let (objects, bytes, wire) = fetch_objects(store, client, &head, opts)?;
        (report.objects, report.object_bytes, report.wire_bytes) = (objects, bytes, wire);
    }
    accept(store, &head, fetched)?;
    report.result = SyncOutcome::Fetched;
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

/// Streams the missing objects in, verifying each; commits verified objects in batches.
fn fetch_objects(
    store: &Store,
    client: &Client,
    head: &SignedHead,
    opts: &SyncOptions,
) -> Result<(u64, u64, u64), FollowerError> {
    let req = {
        let r = store.read()?;
        let mut have: Vec<ObjectId> = r
            .log()?
            .iter()
            .rev()
            .take(HAVE_REVISIONS)
            .map(|e| e.id)
            .collect();
        // After `fsck` set damaged objects aside, only revisions still whole are claimed, so
        // the master sends what went missing.
        let repair = needs_repair(&r)?;
        have.retain(|id| r.has(id).unwrap_or(false) && (!repair || fsck::closure(&r, *id).is_ok()));
        FetchRequest {
            want: head.body.revision,
            have,
            partial: r.partial(MAX_PARTIAL)?,
        }
    };
    let (stream, wire) = client.fetch(&req)?;
    let progress = Progress::new(opts.progress, head.body.objects, head.body.bytes);
    let mut frames = FrameReader::new(stream, head.body.objects, head.body.bytes)
        .map_err(|e| stream_error(client, &e))?;
    let mut writer = store.write()?;
    let (mut objects, mut bytes, mut batch_objects, mut batch_bytes) = (0u64, 0u64, 0u64, 0u64);
    let outcome = loop {
        let frame = match frames.next_frame() {
            Ok(f) => f,
            Err(e) => break Err(stream_error(client, &e)),
        };
        let object = match frame {
            Frame::End(_) => break Ok(()),
            Frame::Object(object) => object,
        };
        let (id, size) = (object.id, object.size);
        if !verified(&object) {
            break Err(FollowerError::CorruptObject { id: id.to_string() });
        }
        // Kept as it came: compressed once by the master, never again here.
        writer.put_stored(object.kind, id, object.compression, &object.stored, size)?;
        writer.add_partial(&id)?;
        objects += 1;
        bytes += size;
        batch_objects += 1;
        batch_bytes += size;
        progress.inc(1, size);
        if batch_objects >= BATCH_OBJECTS || batch_bytes >= BATCH_BYTES {
            writer.commit()?;
            writer = store.write()?;
            (batch_objects, batch_bytes) = (0, 0);
        }
    };
    // Whatever happened, keep what was verified.
    writer.commit()?;
    progress.finish();
    outcome?;
    Ok((objects, bytes, wire.load(Ordering::Relaxed)))
}

/// Whether a received object is what its id says: expanded, hashed and decoded.
fn verified(object: &WireObject) -> bool {
    object
        .compression
        .expand(&object.stored, object.size)
        .is_ok_and(|own| object.kind.id_of(&own) == object.id && object.kind.validate(&own).is_ok())
}

fn stream_error(client: &Client, e: &StreamError) -> FollowerError {
    if let Err(timeout) = client.remaining(client.base()) {
        return FollowerError::Client(timeout);
    }
    FollowerError::Stream(e.to_string())
}

/// Checks the closure against the head and moves the fetched ref, in one transaction.
fn accept(
    store: &Store,
    head: &SignedHead,
    previous: Option<ObjectId>,
) -> Result<(), FollowerError> {
    let want = head.body.revision;
    let mut w = store.write()?;
    let (objects, bytes) = fsck::closure(&w, want).map_err(|e| FollowerError::Incomplete {
        id: want.to_string(),
        what: e.to_string(),
    })?;
    if (objects, bytes) != (head.body.objects, head.body.bytes) {
        return Err(FollowerError::Incomplete {
            id: want.to_string(),
            what: format!(
                "{objects} objects / {bytes} bytes stored, the head declares {} / {}",
                head.body.objects, head.body.bytes
            ),
        });
    }
    let rev = w.revision(&want)?;
    let old_root = match previous {
        Some(p) if w.has(&p)? => {
            let old = w.revision(&p)?;
            Some(crate::store::roots::roots_tree(&mut w, &old)?)
        }
        _ => None,
    };
    let new_root = crate::store::roots::roots_tree(&mut w, &rev)?;
    let changes = count(&tree_diff(&w, old_root, Some(new_root))?);
    w.append_log(&LogEntry {
        number: rev.number,
        id: want,
        time_ms: rev.time_ms,
        files: rev.files,
        bytes: rev.bytes,
        objects,
        object_bytes: bytes,
        changes,
    })?;
    w.set_ref(FETCHED, want)?;
    w.set_meta(meta::ACCEPTED, &head.body.number.to_le_bytes())?;
    w.set_meta(meta::HEAD, &head.encode())?;
    w.set_meta(meta::REPAIR, &[])?;
    w.clear_partial()?;
    w.commit()?;
    Ok(())
}
