//! `codexport sync`: the newest valid head from the master and the mirrors (asked at once),
//! then one fetch of exactly the missing objects from where that head came from.

use super::apply::{self, ApplyReport, Target};
use super::state::{
    LastOutcome, LastSync, Mirror, accepted_number, clear_repair, hold, needs_repair,
};
use super::{FETCHED, FollowerConfig, FollowerError, config, meta, mirrors};
use crate::fsutil::StateLock;
use crate::object::mirror::HeadFile;
use crate::object::{ObjectId, SignedHead};
use crate::paths::Paths;
use crate::progress::Progress;
use crate::store::diff::{count, tree_diff};
use crate::store::{LogEntry, ObjectSource, Store, fsck};
use crate::transport::client::Client;
use crate::transport::wire::{
    FetchRequest, Frame, FrameReader, MAX_PARTIAL, StreamError, WireObject,
};
use std::io::Read;
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
    /// Where the head (and the objects) came from: `master`, or a mirror's URL.
    pub source: String,
    /// Why the mirror list could not be brought up to date this time (retried next sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors_error: Option<String>,
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
        source: result.as_ref().ok().map(|r| r.source.clone()),
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
    let (head, source, mirrors_error) = newest_head(paths, cfg, client, started, opts.timeout)?;
    if nothing_to_do(paths, &head, opts) {
        let mut report = current_report(cfg, &head, started);
        report.source = source.label();
        report.mirrors_error = mirrors_error;
        return Ok(report);
    }
    let store = Store::open_waiting(
        &paths.state_dir,
        opts.timeout.saturating_sub(started.elapsed()),
    )?;
    apply::recover_interrupted(paths, &store)?;
    let mut report = sync_locked(paths, &store, cfg, (client, &source), &head, opts, started)?;
    report.mirrors_error = mirrors_error;
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
        source: MASTER.to_owned(),
        mirrors_error: None,
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

/// How long the master is waited for once a mirror has given a valid head.
const MASTER_GRACE: Duration = Duration::from_millis(1500);

/// The label of the master as a source.
pub const MASTER: &str = "master";

/// Where a head, and then the objects of its revision, come from.
enum Source {
    Master,
    Mirror { client: Client, file: Box<HeadFile> },
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::Master => MASTER.to_owned(),
            Source::Mirror { client, .. } => client.base().to_owned(),
        }
    }
}

/// Asks the master and every mirror for their head at once and takes the newest valid one
/// (the master's on a tie): a sleeping master costs nothing while a mirror answers. Fails
/// with the master's error when no source gives a valid head. Also brings the mirror list
/// up to date when the master says it changed (the third value: why that failed).
fn newest_head(
    paths: &Paths,
    cfg: &FollowerConfig,
    client: &Client,
    started: Instant,
    timeout: Duration,
) -> Result<(SignedHead, Source, Option<String>), FollowerError> {
    let urls = mirrors::urls(paths, cfg);
    // The master is asked on a thread of its own: once a mirror has answered, a master that
    // does not (a sleeping laptop whose address swallows packets) is waited for only
    // briefly, so the mirror's head leaves time to fetch within the deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (cfg, client) = (cfg.clone(), client.clone());
        std::thread::spawn(move || {
            let _ = tx.send(verified_head(&cfg, &client));
        });
    }
    let from_mirrors: Vec<Result<(Client, HeadFile), FollowerError>> =
        std::thread::scope(|scope| {
            let asked: Vec<_> = urls
                .iter()
                .map(|url| {
                    scope.spawn(move || -> Result<(Client, HeadFile), FollowerError> {
                        let mirror = Client::until(url, None, started, timeout)?;
                        let file = mirrors::head(&mirror)?;
                        check_head(cfg, &file.head)?;
                        Ok((mirror, file))
                    })
                })
                .collect();
            asked
                .into_iter()
                .map(|h| h.join().expect("a head request never panics"))
                .collect()
        });
    let master = if from_mirrors.iter().any(Result::is_ok) {
        rx.recv_timeout(MASTER_GRACE).unwrap_or_else(|_| {
            Err(FollowerError::Stream(format!(
                "the master at {} did not answer within {} ms of a mirror",
                cfg.master_url,
                MASTER_GRACE.as_millis()
            )))
        })
    } else {
        rx.recv().expect("the master's head thread always answers")
    };
    let mut best: Option<(SignedHead, Source)> = None;
    let mut mirrors_error = None;
    let master_error = match master {
        Ok((head, tag)) => {
            if let Some(tag) = tag {
                mirrors_error = mirrors::update_from_master(paths, cfg, client, &tag)
                    .err()
                    .map(|e| e.to_string());
            }
            best = Some((head, Source::Master));
            None
        }
        Err(e) => Some(e),
    };
    // A mirror behind what this follower accepted is only stale while another source
    // answers; alone, its head is refused as a replay, as the master's would be.
    let accepted = Mirror::load(paths).and_then(|m| m.accepted);
    let mut refused_by_mirror = None;
    for answer in from_mirrors {
        let (mirror, file) = match answer {
            Ok(a) => a,
            // What a mirror that answered said (a head it holds expired, say) tells more
            // than a master that cannot be reached.
            Err(e) => {
                if !matches!(e, FollowerError::Client(_)) && refused_by_mirror.is_none() {
                    refused_by_mirror = Some(e);
                }
                continue;
            }
        };
        let number = file.head.body.number;
        let newer = best.as_ref().is_none_or(|(b, _)| number > b.body.number);
        let stale = accepted.is_some_and(|a| number < a) && best.is_some();
        if newer && !stale {
            best = Some((
                file.head.clone(),
                Source::Mirror {
                    client: mirror,
                    file: Box::new(file),
                },
            ));
        }
    }
    match (best, master_error, refused_by_mirror) {
        (Some((head, source)), _, _) => Ok((head, source, mirrors_error)),
        (None, Some(FollowerError::Client(unreachable)), mirror) => {
            Err(mirror.unwrap_or(FollowerError::Client(unreachable)))
        }
        (None, Some(e), _) => Err(e),
        (None, None, _) => Err(FollowerError::NoHead),
    }
}

/// Fetches the master's head and checks its signature, key and expiry; with the master's
/// mirror-list tag.
fn verified_head(
    cfg: &FollowerConfig,
    client: &Client,
) -> Result<(SignedHead, Option<String>), FollowerError> {
    let (bytes, tag) = client.head()?.ok_or(FollowerError::NoHead)?;
    let head = SignedHead::decode(&bytes).map_err(FollowerError::BadHead)?;
    check_head(cfg, &head)?;
    Ok((head, tag))
}

/// Checks a head's key and expiry (its signature was checked when it was decoded).
fn check_head(cfg: &FollowerConfig, head: &SignedHead) -> Result<(), FollowerError> {
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
    Ok(())
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
    let (head, _) = verified_head(cfg, client)?;
    let r = store.read()?;
    check_number(&head, accepted_number(&r)?, r.get_ref(FETCHED)?)?;
    Ok(head)
}

fn sync_locked(
    paths: &Paths,
    store: &Store,
    cfg: &FollowerConfig,
    (client, source): (&Client, &Source),
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
        source: source.label(),
        mirrors_error: None,
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
        let (objects, bytes, wire) = match source {
            Source::Master => fetch_objects(store, client, &head, opts)?,
            Source::Mirror { client, file } => {
                let progress = Progress::new(opts.progress, head.body.objects, head.body.bytes);
                let fetched = mirrors::fetch(store, paths, client, file, &progress);
                progress.finish();
                fetched?
            }
        };
        (report.objects, report.object_bytes, report.wire_bytes) = (objects, bytes, wire);
    }
    accept(store, &head, fetched, &source.label())?;
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
    let received = receive(store, &mut frames, &progress, |e| stream_error(client, e));
    progress.finish();
    let (objects, bytes) = received?;
    Ok((objects, bytes, wire.load(Ordering::Relaxed)))
}

/// Stores the objects of a frame stream, verifying each (expanded, hashed, decoded) and
/// keeping it as it came; commits in batches, so whatever was verified before a failure is
/// kept. Returns the objects stored and their bytes.
pub(super) fn receive<R: Read>(
    store: &Store,
    frames: &mut FrameReader<R>,
    progress: &Progress,
    stream_error: impl Fn(&StreamError) -> FollowerError,
) -> Result<(u64, u64), FollowerError> {
    let mut writer = store.write()?;
    let (mut objects, mut bytes, mut batch_objects, mut batch_bytes) = (0u64, 0u64, 0u64, 0u64);
    let outcome = loop {
        let frame = match frames.next_frame() {
            Ok(f) => f,
            Err(e) => break Err(stream_error(&e)),
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
    outcome?;
    Ok((objects, bytes))
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
    source: &str,
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
    w.set_meta(meta::SOURCE, source.as_bytes())?;
    w.set_meta(meta::REPAIR, &[])?;
    w.clear_partial()?;
    w.commit()?;
    Ok(())
}
