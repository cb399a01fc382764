//! Static mirrors, as a follower reads them: the URLs the master handed it (signed) and
//! those added by hand, the head file of each, the keyring (once per content key: the key
//! is remembered), and the sealed packs a sync needs.
//!
//! A mirror is untrusted storage. Its head is checked exactly like the master's (pinned
//! key, signature, expiry, replay) and binds the index and keyring by hash; every pack is
//! checked against the hash the signed index gives before it is opened, and every object in
//! it against its id.

use super::{FollowerConfig, FollowerError};
use crate::object::id::{decode_hex, hex};
use crate::object::mirror::{HEAD_FILE, HeadFile, Index, MirrorList, PackRef, list_tag, pack_name};
use crate::paths::{Paths, state};
use crate::seal::{self, ContentKey, RecipientSecret};
use crate::transport::client::Client;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Largest head file read (its index names at most 4,096 packs).
const MAX_HEAD_FILE: u64 = 1 << 20;
/// Largest keyring read (about 113 bytes per follower, at most 65,536 of them).
const MAX_KEYRING_FILE: u64 = 16 << 20;
/// Content keys remembered (the newest; one per mirror and key change).
const REMEMBERED_KEYS: usize = 16;
/// Packs downloaded at once.
const PARALLEL: usize = 4;

/// This follower's mirror key pair, made on first use.
pub fn secret(paths: &Paths) -> Result<RecipientSecret, FollowerError> {
    let path = paths.state(state::MIRROR_KEY);
    match fs::read_to_string(&path) {
        Ok(text) => decode_hex::<32>(text.trim())
            .map(RecipientSecret::from_bytes)
            .ok_or(FollowerError::BadConfig {
                path,
                what: "the mirror key is not 64 hex digits".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let secret = RecipientSecret::generate();
            crate::fsutil::write_atomic(
                &path,
                format!("{}\n", hex(&secret.to_bytes())).as_bytes(),
                0o600,
            )
            .map_err(|source| FollowerError::Io { path, source })?;
            Ok(secret)
        }
        Err(source) => Err(FollowerError::Io { path, source }),
    }
}

/// The mirror URLs the master handed this follower, if its signature holds.
pub fn learned(paths: &Paths, cfg: &FollowerConfig) -> Vec<String> {
    fs::read(paths.state(state::MIRROR_LIST))
        .ok()
        .and_then(|b| MirrorList::decode_signed(&b).ok())
        .filter(|l| l.body.master_key == cfg.master_key)
        .map(|l| l.body.urls)
        .unwrap_or_default()
}

/// The mirrors added by hand (`mirrors = [...]` in follower.toml).
pub fn manual(paths: &Paths) -> Vec<String> {
    let text = fs::read_to_string(super::config::config_path(paths)).unwrap_or_default();
    crate::toml_doc::parse(&text)
        .ok()
        .and_then(|doc| {
            doc.get("mirrors").and_then(|v| v.as_array()).map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Every mirror to ask: the learned ones, then those added by hand.
pub fn urls(paths: &Paths, cfg: &FollowerConfig) -> Vec<String> {
    let mut all = learned(paths, cfg);
    for u in manual(paths) {
        if !all.contains(&u) {
            all.push(u);
        }
    }
    all
}

/// Adds (or with `remove`, removes) a mirror URL by hand; returns the hand-added list.
pub fn edit_manual(paths: &Paths, url: &str, remove: bool) -> Result<Vec<String>, FollowerError> {
    let url = url.trim_end_matches('/');
    let path = super::config::config_path(paths);
    let http = url.starts_with("http://") || url.starts_with("https://");
    if !(remove || http) {
        return Err(FollowerError::BadConfig {
            path,
            what: format!("{url:?} is not an http(s) URL of a mirror"),
        });
    }
    FollowerConfig::load(paths)?;
    let text = fs::read_to_string(&path).map_err(|source| FollowerError::Io {
        path: path.clone(),
        source,
    })?;
    let mut doc = crate::toml_doc::parse(&text).map_err(|what| FollowerError::BadConfig {
        path: path.clone(),
        what,
    })?;
    let mut list = manual(paths);
    list.retain(|u| u != url);
    if !remove {
        list.push(url.to_owned());
    }
    let mut array = toml_edit::Array::new();
    for u in &list {
        array.push(u.as_str());
    }
    doc["mirrors"] = toml_edit::value(array);
    crate::fsutil::write_atomic(&path, doc.to_string().as_bytes(), 0o600)
        .map_err(|source| FollowerError::Io { path, source })?;
    Ok(list)
}

/// After a head from the master: when the master's tag differs from this follower's (a
/// new list, or a key the master does not hold yet), registers the key and stores the
/// signed list it answers.
pub fn update_from_master(
    paths: &Paths,
    cfg: &FollowerConfig,
    client: &Client,
    master_tag: &str,
) -> Result<(), FollowerError> {
    let secret = secret(paths)?;
    let public = secret.public();
    if list_tag(&learned(paths, cfg), Some(&public)) == master_tag {
        return Ok(());
    }
    let bytes = client.mirrors(&public)?;
    let list = MirrorList::decode_signed(&bytes).map_err(FollowerError::BadHead)?;
    if list.body.master_key != cfg.master_key {
        return Err(FollowerError::FingerprintMismatch {
            expected: cfg.fingerprint.to_string(),
            got: crate::object::Fingerprint::of_key(&list.body.master_key).to_string(),
        });
    }
    let path = paths.state(state::MIRROR_LIST);
    crate::fsutil::write_atomic(&path, &bytes, 0o600)
        .map_err(|source| FollowerError::Io { path, source })
}

/// A mirror's head file, decoded (signatures and bindings checked; the key, expiry and
/// number are the caller's checks, as for the master's head).
pub fn head(client: &Client) -> Result<HeadFile, FollowerError> {
    HeadFile::decode(&small_file(client, HEAD_FILE, MAX_HEAD_FILE)?).map_err(FollowerError::BadHead)
}

/// A whole small file of a mirror, at most `limit` bytes of it.
fn small_file(client: &Client, name: &str, limit: u64) -> Result<Vec<u8>, FollowerError> {
    let url = format!("{}/{name}", client.base());
    let Some((body, _)) = client.mirror_file(name, 0)? else {
        return Err(FollowerError::MirrorMissing { url });
    };
    let mut bytes = Vec::new();
    body.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| FollowerError::Stream(format!("{url}: {e}")))?;
    Ok(bytes)
}

/// Fetches from a mirror what this follower lacks of the revision `file` names: the sealed
/// packs after the last revision it holds (downloaded in parallel, resumed where an earlier
/// attempt stopped), each checked and opened, its objects verified into the store.
/// Returns (objects stored, their bytes, bytes downloaded).
pub fn fetch(
    store: &crate::store::Store,
    paths: &Paths,
    client: &Client,
    file: &HeadFile,
    progress: &crate::progress::Progress,
) -> Result<(u64, u64, u64), FollowerError> {
    let url = client.base().to_owned();
    let damaged = |what: String| FollowerError::MirrorDamaged {
        url: url.clone(),
        what,
    };
    let (key, index) = open_index(paths, client, file)?;
    if index.revision != file.head.body.revision || index.number != file.head.body.number {
        return Err(damaged("the index is of another revision".into()));
    }
    let held: std::collections::HashSet<u64> =
        store.read()?.log()?.iter().map(|e| e.number).collect();
    let needed: Vec<PackRef> = index.needed(|n| held.contains(&n)).to_vec();
    let dir = paths.state(state::MIRROR_DOWNLOADS);
    crate::fsutil::create_private_dir_all(&dir).map_err(|source| FollowerError::Io {
        path: dir.clone(),
        source,
    })?;
    let downloads: Vec<Result<(PathBuf, u64), FollowerError>> = std::thread::scope(|scope| {
        let mut results = Vec::new();
        for batch in needed.chunks(PARALLEL) {
            let handles: Vec<_> = batch
                .iter()
                .map(|p| scope.spawn(|| download(client, &dir, p)))
                .collect();
            results.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a download thread never panics")),
            );
        }
        results
    });
    let (mut objects, mut bytes, mut wire) = (0, 0, 0);
    for (pack, downloaded) in needed.iter().zip(downloads) {
        let (path, got) = downloaded?;
        wire += got;
        let sealed = fs::File::open(&path)
            .and_then(|f| seal::Opener::new(&key, io::BufReader::new(f)))
            .map_err(|e| damaged(format!("pack {}: {e}", hex(&pack.hash))))?;
        let mut frames = crate::transport::wire::FrameReader::new(sealed, pack.objects, pack.bytes)
            .map_err(|e| damaged(format!("pack {}: {e}", hex(&pack.hash))))?;
        let (o, b) = super::sync::receive(store, &mut frames, progress, |e| {
            damaged(format!("pack {}: {e}", hex(&pack.hash)))
        })?;
        objects += o;
        bytes += b;
        let _ = fs::remove_file(&path);
    }
    Ok((objects, bytes, wire))
}

/// The content key of the head file's epoch and the index it opens: with the key this
/// follower remembers for that epoch, else with the key unwrapped from the keyring the head
/// names (one more request, once per epoch), which is then remembered.
fn open_index(
    paths: &Paths,
    client: &Client,
    file: &HeadFile,
) -> Result<(ContentKey, Index), FollowerError> {
    let url = client.base();
    let epoch = file.binding.body.epoch;
    let open = |key: &ContentKey| -> Result<Index, String> {
        let plain = seal::open_bytes(key, &file.index)
            .map_err(|e| format!("the index does not open: {e}"))?;
        Index::decode(&plain).map_err(|e| format!("the index: {e}"))
    };
    // A remembered key that does not open the index (a damaged state file) is read again.
    let known = remembered(paths)
        .into_iter()
        .find(|k| k.epoch == hex(&epoch))
        .and_then(|k| decode_hex::<32>(&k.key));
    if let Some(key) = known.map(ContentKey::from_bytes) {
        if let Ok(index) = open(&key) {
            return Ok((key, index));
        }
    }
    let bytes = small_file(client, &file.keyring_name(), MAX_KEYRING_FILE)?;
    let keyring = file
        .keyring(&bytes)
        .map_err(|e| FollowerError::MirrorDamaged {
            url: url.to_owned(),
            what: format!("the keyring: {e}"),
        })?;
    let secret = secret(paths)?;
    let key = keyring
        .for_recipient(&secret.public())
        .and_then(|w| seal::unwrap(&secret, &w.ephemeral, &w.sealed, &epoch))
        .ok_or_else(|| FollowerError::MirrorLocked {
            url: url.to_owned(),
        })?;
    let index = open(&key).map_err(|what| FollowerError::MirrorDamaged {
        url: url.to_owned(),
        what,
    })?;
    remember(paths, &epoch, &key)?;
    Ok((key, index))
}

/// A content key this follower unwrapped, in `mirror-content-keys.json` (oldest first).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RememberedKey {
    /// 32 hex digits.
    epoch: String,
    /// 64 hex digits.
    key: String,
}

fn remembered(paths: &Paths) -> Vec<RememberedKey> {
    fs::read(paths.state(state::MIRROR_CONTENT_KEYS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Remembers the content key of `epoch` (the newest [`REMEMBERED_KEYS`] are kept).
fn remember(paths: &Paths, epoch: &[u8; 16], key: &ContentKey) -> Result<(), FollowerError> {
    let epoch = hex(epoch);
    let mut all = remembered(paths);
    all.retain(|k| k.epoch != epoch);
    all.push(RememberedKey {
        epoch,
        key: hex(key.as_bytes()),
    });
    let excess = all.len().saturating_sub(REMEMBERED_KEYS);
    all.drain(..excess);
    let path = paths.state(state::MIRROR_CONTENT_KEYS);
    let json = serde_json::to_vec(&all).expect("strings serialize");
    crate::fsutil::write_atomic(&path, &json, 0o600)
        .map_err(|source| FollowerError::Io { path, source })
}

/// Downloads one pack into `dir`, resuming a partial download; checks its size and hash.
/// Returns the file and the bytes that crossed the wire.
fn download(client: &Client, dir: &Path, pack: &PackRef) -> Result<(PathBuf, u64), FollowerError> {
    let name = pack_name(&pack.hash);
    let url = format!("{}/{name}", client.base());
    let path = dir.join(format!("{}.part", hex(&pack.hash)));
    let io_err = |source| FollowerError::Io {
        path: path.clone(),
        source,
    };
    let have = fs::metadata(&path).map_or(0, |m| m.len());
    let mut wire = 0;
    if have != pack.size {
        let from = if have > pack.size { 0 } else { have };
        let Some((mut body, ranged)) = client.mirror_file(&name, from)? else {
            return Err(FollowerError::MirrorMissing { url });
        };
        let mut out = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(ranged && from > 0)
            .truncate(!(ranged && from > 0))
            .open(&path)
            .map_err(io_err)?;
        let allowed = pack.size - if ranged { from } else { 0 };
        // One byte more than the pack may hold: a longer file is refused below.
        wire = io::copy(&mut (&mut body).take(allowed + 1), &mut out)
            .map_err(|e| FollowerError::Stream(format!("{url}: {e}")))?;
        out.flush().map_err(io_err)?;
    }
    let mut hasher = blake3::Hasher::new();
    let len = io::copy(&mut fs::File::open(&path).map_err(io_err)?, &mut hasher).map_err(io_err)?;
    if len != pack.size || hasher.finalize().as_bytes() != &pack.hash {
        let _ = fs::remove_file(&path);
        return Err(FollowerError::MirrorDamaged {
            url,
            what: if len < pack.size {
                format!("the pack ended after {len} of {} bytes", pack.size)
            } else {
                "the pack is not the one the master signed".into()
            },
        });
    }
    Ok((path, wire))
}

/// What `follower mirror list` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorsReport {
    /// Named by the master (signed).
    pub learned: Vec<String>,
    /// Added by hand.
    pub manual: Vec<String>,
}

pub fn report(paths: &Paths) -> Result<MirrorsReport, FollowerError> {
    let cfg = FollowerConfig::load(paths)?;
    Ok(MirrorsReport {
        learned: learned(paths, &cfg),
        manual: manual(paths),
    })
}
