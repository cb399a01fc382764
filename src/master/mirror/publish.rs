//! Publishing a revision to a mirror, crash-safe and idempotent: sealed, content-named packs
//! and the keyring first (a file already there is not sent again), the signed `head` file
//! last, the local state after it. A publish killed at any point leaves the mirror serving the previous
//! head, whose packs are all still there.
//!
//! Each publish adds a delta pack (the objects its revision added since the last one
//! published). A checkpoint pack (a whole closure) starts a new chain when there is none,
//! when a follower was revoked (a new content key: nothing after the revocation is sealed
//! under a key it holds), after 16 deltas, or when the deltas grew past half the closure,
//! so a cold follower downloads a bounded amount. The checkpoint is of the revision
//! published before, and this revision's delta follows it: a follower that was current
//! downloads only what changed, checkpoint or not.

use super::build::{BuiltPack, build_pack};
use super::dest::Dest;
use super::{MirrorConfig, MirrorError, keys};
use crate::master::{MasterKey, access};
use crate::object::id::{decode_hex, hex};
use crate::object::mirror::{
    Binding, HEAD_FILE, HeadFile, Index, KEYS, Keyring, PACKS, PackRef, Wrapped,
};
use crate::object::signed::Signed;
use crate::object::{HeadBody, ObjectId};
use crate::paths::Paths;
use crate::seal::{self, ContentKey};
use crate::store::{ObjectSource, Store, fsck, refs};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Test hook (environment variable): exit after uploading the packs, before the head.
pub const CRASH_BEFORE_HEAD: &str = "CODEXPORT_CRASH_BEFORE_MIRROR_HEAD";
/// Deltas after a checkpoint before the next one.
const MAX_DELTAS: usize = 16;

/// How to publish.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    /// Re-sign and rewrite the head file even when the published one is still fresh (a
    /// head far from its expiry for a master that will sleep); packs are written only where
    /// the mirror lacks them.
    pub refresh: bool,
}

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    pub mirror: String,
    pub url: String,
    pub number: u64,
    /// Packs written this time, and their bytes.
    pub packs_uploaded: u64,
    pub bytes_uploaded: u64,
    /// Packs the mirror's index names.
    pub packs: u64,
    /// A new content key was made (first publish, or a follower was revoked).
    pub new_key: bool,
    /// Followers the content key is wrapped to.
    pub recipients: u64,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    /// Nothing needed writing.
    pub unchanged: bool,
}

/// The per-mirror state: the content key of the current epoch and the packs published.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct State {
    epoch: Option<Epoch>,
    chain: Vec<StoredPack>,
    /// Pack hashes of the index before the last one (kept by `prune` a while longer, for
    /// followers still downloading them).
    #[serde(default)]
    previous: Vec<String>,
    /// The keyring the published head names (64 hex), and the one before it (kept by
    /// `prune` as long as the previous packs).
    #[serde(default)]
    keyring: Option<String>,
    #[serde(default)]
    previous_keyring: Option<String>,
    published: Option<Published>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Epoch {
    /// 32 hex digits.
    id: String,
    /// 64 hex digits: the content key (this file is owner-only).
    key: String,
    /// The followers the key is wrapped to: name → their X25519 key (64 hex).
    recipients: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredPack {
    hash: String,
    size: u64,
    objects: u64,
    bytes: u64,
    from: u64,
    to: u64,
    /// The revision ids at both ends (`from_revision` absent for a checkpoint), so a pack
    /// missing from the mirror can be made again, byte for byte.
    from_revision: Option<String>,
    to_revision: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Published {
    number: u64,
    revision: String,
    expires_at: i64,
}

pub(super) fn state_path(paths: &Paths, name: &str) -> PathBuf {
    paths
        .state(crate::paths::state::MIRRORS)
        .join(format!("{name}.json"))
}

fn load_state(paths: &Paths, name: &str) -> Result<State, MirrorError> {
    let path = state_path(paths, name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MirrorError::Config {
            path,
            what: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(MirrorError::Io { path, source }),
    }
}

fn save_state(paths: &Paths, name: &str, state: &State) -> Result<(), MirrorError> {
    let path = state_path(paths, name);
    let dir = path.parent().expect("in the mirrors folder");
    crate::fsutil::create_private_dir_all(dir).map_err(|source| MirrorError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let bytes = serde_json::to_vec_pretty(state).expect("the state serializes");
    crate::fsutil::write_atomic(&path, &bytes, 0o600)
        .map_err(|source| MirrorError::Io { path, source })
}

/// The revision number last published to the mirror `name`, and its head's expiry.
pub fn published(paths: &Paths, name: &str) -> Option<(u64, i64)> {
    let state = load_state(paths, name).ok()?;
    state.published.map(|p| (p.number, p.expires_at))
}

fn pack_name(hash: &str) -> String {
    format!("{PACKS}/{hash}.cxp")
}

fn keyring_name(hash: &str) -> String {
    format!("{KEYS}/{hash}.cxk")
}

impl StoredPack {
    fn to_ref(&self) -> Option<PackRef> {
        Some(PackRef {
            hash: decode_hex::<32>(&self.hash)?,
            size: self.size,
            objects: self.objects,
            bytes: self.bytes,
            from: self.from,
            to: self.to,
        })
    }
}

/// Publishes the master's newest revision to `mirror`.
pub fn publish(
    paths: &Paths,
    store: &Store,
    key: &MasterKey,
    mirror: &MirrorConfig,
    opts: PublishOptions,
) -> Result<PublishReport, MirrorError> {
    prepare(paths, store, key, mirror, opts)?.upload()
}

/// A publish whose packs are built (in local files) and whose head file is signed: what is
/// left needs the mirror, not the store.
pub struct Prepared {
    paths: Paths,
    name: String,
    dest: Dest,
    uploads: Vec<BuiltPack>,
    /// The keyring file the head names, when the mirror lacks it: (name, bytes).
    keyring: Option<(String, Vec<u8>)>,
    head: Option<HeadFile>,
    state: State,
    report: PublishReport,
}

impl Prepared {
    /// Uploads the packs and the keyring, then the head file, then records the state.
    pub fn upload(mut self) -> Result<PublishReport, MirrorError> {
        for built in std::mem::take(&mut self.uploads) {
            let sent = self.dest.put_file(&pack_name(&built.hash), &built.file);
            let _ = std::fs::remove_file(&built.file);
            sent?;
            self.report.packs_uploaded += 1;
            self.report.bytes_uploaded += built.size;
        }
        if let Some((name, bytes)) = self.keyring.take() {
            self.dest.put_bytes(&name, &bytes)?;
            self.report.bytes_uploaded += bytes.len() as u64;
        }
        if let Some(head) = &self.head {
            // Test hook: die as a killed publish would, with the packs uploaded and the head
            // not yet written.
            if std::env::var_os(CRASH_BEFORE_HEAD).is_some() {
                std::process::exit(3);
            }
            self.dest.put_bytes(HEAD_FILE, &head.encode())?;
            save_state(&self.paths, &self.name, &self.state)?;
        }
        Ok(self.report)
    }
}

/// What a publish needs from the store about the revision it publishes.
struct Facts {
    rev_id: ObjectId,
    number: u64,
    /// The closure's objects and bytes (as the head declares them).
    closure: (u64, u64),
    /// Enrolled, non-revoked followers with a mirror key: name → key (hex).
    recipients: BTreeMap<String, String>,
}

fn facts(store: &Store) -> Result<Facts, MirrorError> {
    let r = store.read()?;
    let rev_id = r
        .get_ref(refs::MASTER_HEAD)?
        .ok_or(MirrorError::NoRevision)?;
    let active: Vec<String> = access::list_followers(&r)?
        .into_iter()
        .filter(|f| !f.is_revoked())
        .map(|f| f.name)
        .collect();
    Ok(Facts {
        rev_id,
        number: r.revision(&rev_id)?.number,
        closure: fsck::closure(&r, rev_id)?,
        recipients: keys(&r)?
            .into_iter()
            .filter(|(name, _)| active.contains(name))
            .map(|(name, k)| (name, hex(&k)))
            .collect(),
    })
}

/// Starts a new epoch (a new content key, a new chain) when there is none or a follower
/// left the recipients (revoked) or changed its key; recorded before anything is sealed
/// under it. Returns whether it did.
fn rotate_epoch(
    paths: &Paths,
    name: &str,
    state: &mut State,
    recipients: &BTreeMap<String, String>,
) -> Result<bool, MirrorError> {
    let rotate = match &state.epoch {
        None => true,
        Some(e) => e
            .recipients
            .iter()
            .any(|(name, k)| recipients.get(name) != Some(k)),
    };
    if rotate {
        state.epoch = Some(Epoch {
            id: hex(&random::<16>()),
            key: hex(ContentKey::generate().as_bytes()),
            recipients: recipients.clone(),
        });
        state.chain.clear();
        save_state(paths, name, state)?;
    }
    Ok(rotate)
}

/// Makes again the packs of `chain` the mirror lacks (the same bytes, from the store); if one
/// cannot be made as it was, empties the chain (a checkpoint starts it again).
fn repair_chain(
    store: &Store,
    dest: &Dest,
    key: &ContentKey,
    chain: &mut Vec<StoredPack>,
    tmp: &Path,
    uploads: &mut Vec<BuiltPack>,
) -> Result<(), MirrorError> {
    let mut missing = Vec::new();
    for p in chain.iter() {
        if !dest.exists(&pack_name(&p.hash))? {
            missing.push(p.clone());
        }
    }
    for p in missing {
        let from = p
            .from_revision
            .as_deref()
            .and_then(|s| s.parse::<ObjectId>().ok());
        let remade = match p.to_revision.parse::<ObjectId>() {
            Ok(to) => build_pack(store, key, from, to, tmp)?,
            Err(_) => None,
        };
        match remade {
            Some(built) if built.hash == p.hash => uploads.push(built),
            _ => {
                chain.clear();
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Adds the pack of this revision to `chain`: a delta from the chain's last revision; or,
/// when a checkpoint is due (see the module docs), a new chain: a checkpoint of the revision
/// published before this one, then this revision's delta from it, so that a follower that
/// was current still downloads only what changed. Without such a revision (the first
/// publish, or one gone from the store) the checkpoint is of this revision alone.
/// `published` is the revision published last, for a chain that was emptied (a new key).
fn extend_chain(
    (store, dest, key): (&Store, &Dest, &ContentKey),
    chain: &mut Vec<StoredPack>,
    published: Option<(ObjectId, u64)>,
    f: &Facts,
    tmp: &Path,
    uploads: &mut Vec<BuiltPack>,
) -> Result<(), MirrorError> {
    let delta_bytes: u64 = chain.iter().skip(1).map(|p| p.bytes).sum();
    let last = chain.last().map_or(published, |p| {
        p.to_revision.parse::<ObjectId>().ok().map(|id| (id, p.to))
    });
    let prev = match last {
        Some((id, number)) if number < f.number && store.read()?.has(&id)? => Some((id, number)),
        _ => None,
    };
    let due = chain.is_empty() || chain.len() > MAX_DELTAS || delta_bytes * 2 > f.closure.1;
    if prev.is_none() || due {
        chain.clear();
    }
    let mut add = |from: Option<(ObjectId, u64)>, to: (ObjectId, u64)| {
        let built =
            build_pack(store, key, from.map(|f| f.0), to.0, tmp)?.ok_or(MirrorError::NoRevision)?;
        chain.push(StoredPack {
            hash: built.hash.clone(),
            size: built.size,
            objects: built.objects,
            bytes: built.bytes,
            from: from.map_or(0, |f| f.1),
            to: to.1,
            from_revision: from.map(|f| f.0.to_string()),
            to_revision: to.0.to_string(),
        });
        if dest.exists(&pack_name(&built.hash))? {
            let _ = std::fs::remove_file(&built.file);
        } else {
            uploads.push(built);
        }
        Ok::<(), MirrorError>(())
    };
    if let (Some(prev), true) = (prev, due) {
        add(None, prev)?;
    }
    add(prev, (f.rev_id, f.number))
}

/// The chain the head will name: the published one, whole on the mirror (what it lacks made
/// again) and ending at this revision; with the packs to upload.
fn whole_chain(
    (store, dest, key): (&Store, &Dest, &ContentKey),
    state: &State,
    f: &Facts,
    tmp: &Path,
) -> Result<(Vec<StoredPack>, Vec<BuiltPack>), MirrorError> {
    let mut chain = state.chain.clone();
    let mut uploads = Vec::new();
    repair_chain(store, dest, key, &mut chain, tmp, &mut uploads)?;
    if chain.last().is_none_or(|p| p.to != f.number) {
        let published = state
            .published
            .as_ref()
            .and_then(|p| Some((p.revision.parse::<ObjectId>().ok()?, p.number)));
        extend_chain(
            (store, dest, key),
            &mut chain,
            published,
            f,
            tmp,
            &mut uploads,
        )?;
    }
    Ok((chain, uploads))
}

/// Reads the store and builds what `mirror` lacks; the store is not needed afterwards.
pub fn prepare(
    paths: &Paths,
    store: &Store,
    key: &MasterKey,
    mirror: &MirrorConfig,
    opts: PublishOptions,
) -> Result<Prepared, MirrorError> {
    let dest = Dest::open(&mirror.dest)?;
    let mut state = load_state(paths, &mirror.name)?;
    let f = facts(store)?;
    let rotated = rotate_epoch(paths, &mirror.name, &mut state, &f.recipients)?;
    let epoch = state.epoch.clone().expect("set by rotate_epoch");
    let content_key = ContentKey::from_bytes(decode_hex::<32>(&epoch.key).ok_or_else(|| {
        MirrorError::Config {
            path: state_path(paths, &mirror.name),
            what: "the content key is not 64 hex digits".into(),
        }
    })?);

    let tmp = paths.state(crate::paths::state::MIRRORS).join("tmp");
    let (chain, uploads) = whole_chain((store, &dest, &content_key), &state, &f, &tmp)?;
    let mut report = PublishReport {
        mirror: mirror.name.clone(),
        url: mirror.url.clone(),
        number: f.number,
        packs_uploaded: 0,
        bytes_uploaded: 0,
        packs: chain.len() as u64,
        new_key: rotated,
        recipients: f.recipients.len() as u64,
        expires_at: state.published.as_ref().map_or(0, |p| p.expires_at),
        unchanged: false,
    };

    let now = crate::time::now_secs();
    let fresh = state.published.as_ref().is_some_and(|p| {
        p.number == f.number && p.expires_at - now > (mirror.head_ttl_secs / 2) as i64
    });
    let same_chain = chain.len() == state.chain.len()
        && chain
            .iter()
            .zip(&state.chain)
            .all(|(a, b)| a.hash == b.hash);
    let keyring_there = match &state.keyring {
        Some(hash) => dest.exists(&keyring_name(hash))?,
        None => false,
    };
    let unchanged = fresh
        && same_chain
        && !rotated
        && epoch.recipients == f.recipients
        && !opts.refresh
        && uploads.is_empty()
        && keyring_there
        && dest.exists(HEAD_FILE)?;
    let mut keyring_upload = None;
    let head = if unchanged {
        report.unchanged = true;
        None
    } else {
        let (head, keyring) = head_file(
            key,
            &content_key,
            &epoch,
            &f,
            &chain,
            mirror.head_ttl_secs as i64,
        );
        report.expires_at = head.head.body.expires_at;
        if !same_chain {
            state.previous = state.chain.iter().map(|p| p.hash.clone()).collect();
        }
        let hash = hex(&head.binding.body.keyring);
        if !dest.exists(&keyring_name(&hash))? {
            keyring_upload = Some((keyring_name(&hash), keyring));
        }
        if state.keyring.as_ref() != Some(&hash) {
            state.previous_keyring = state.keyring.replace(hash);
        }
        state.chain = chain;
        state.published = Some(Published {
            number: report.number,
            revision: head.head.body.revision.to_string(),
            expires_at: report.expires_at,
        });
        state.epoch = Some(Epoch {
            recipients: f.recipients,
            ..epoch
        });
        Some(head)
    };
    Ok(Prepared {
        paths: paths.clone(),
        name: mirror.name.clone(),
        dest,
        uploads,
        keyring: keyring_upload,
        head,
        state,
        report,
    })
}

/// The signed head file of a publish, and the encoding of the keyring it names.
fn head_file(
    key: &MasterKey,
    content_key: &ContentKey,
    epoch: &Epoch,
    f: &Facts,
    chain: &[StoredPack],
    ttl_secs: i64,
) -> (HeadFile, Vec<u8>) {
    let epoch_id = decode_hex::<16>(&epoch.id).unwrap_or_default();
    let index = Index {
        revision: f.rev_id,
        number: f.number,
        packs: chain.iter().filter_map(StoredPack::to_ref).collect(),
    };
    let sealed_index = seal::seal_bytes(content_key, &index.encode());
    let keyring = Keyring {
        epoch: epoch_id,
        recipients: f
            .recipients
            .values()
            .filter_map(|k| decode_hex::<32>(k))
            .filter_map(|recipient| {
                seal::wrap(content_key, &recipient, &epoch_id).map(|(ephemeral, sealed)| Wrapped {
                    recipient,
                    ephemeral,
                    sealed,
                })
            })
            .collect(),
    }
    .encode();
    let now = crate::time::now_secs();
    let head = HeadBody {
        master_key: key.public_key(),
        revision: f.rev_id,
        number: f.number,
        issued_at: now,
        expires_at: now.saturating_add(ttl_secs),
        objects: f.closure.0,
        bytes: f.closure.1,
    }
    .sign(key.signing_key());
    let binding = Signed::sign(
        Binding {
            master_key: key.public_key(),
            revision: f.rev_id,
            number: f.number,
            index: *blake3::hash(&sealed_index).as_bytes(),
            keyring: *blake3::hash(&keyring).as_bytes(),
            epoch: epoch_id,
        },
        key.signing_key(),
    );
    (
        HeadFile {
            head,
            binding,
            index: sealed_index,
        },
        keyring,
    )
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

/// What `prune` removed from a mirror.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PruneReport {
    pub mirror: String,
    pub packs_removed: u64,
    pub keyrings_removed: u64,
}

/// Removes the packs neither the current index nor the one before it names, and the
/// keyrings neither the current head nor the one before it names (the second phase: a
/// follower that read the previous head a moment ago still finds its files).
pub fn prune(paths: &Paths, mirror: &MirrorConfig) -> Result<PruneReport, MirrorError> {
    let dest = Dest::open(&mirror.dest)?;
    let state = load_state(paths, &mirror.name)?;
    let keep: std::collections::HashSet<String> = state
        .chain
        .iter()
        .map(|p| pack_name(&p.hash))
        .chain(state.previous.iter().map(|h| pack_name(h)))
        .chain(
            [&state.keyring, &state.previous_keyring]
                .into_iter()
                .flatten()
                .map(|h| keyring_name(h)),
        )
        .collect();
    let mut removed = [0u64; 2];
    if state.published.is_some() {
        for (count, (folder, suffix)) in removed.iter_mut().zip([(PACKS, ".cxp"), (KEYS, ".cxk")]) {
            for name in dest.list(folder)? {
                if name.ends_with(suffix) && !keep.contains(&name) {
                    dest.delete(&name)?;
                    *count += 1;
                }
            }
        }
    }
    let tmp = paths.state(crate::paths::state::MIRRORS).join("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(PruneReport {
        mirror: mirror.name.clone(),
        packs_removed: removed[0],
        keyrings_removed: removed[1],
    })
}
