//! Static mirrors: copies of the master's newest revision on storage that is not ours (a
//! folder behind a web server, an S3 bucket behind a CDN), from which followers sync while
//! the master's machine sleeps.
//!
//! The master keeps, in `~/.codexport/mirrors.toml`, where each mirror is written and where
//! followers read it, and in `~/.codexport/mirrors/<name>.json` (0600) the mirror's content
//! key and which packs it holds. Publishing ([`publish`]) writes immutable, content-named,
//! sealed packs first and the signed `head` file last. Followers send their X25519 key to
//! the master ([`register_key`]); each publish wraps the content key to every follower that
//! is not revoked, and a revocation starts a new key.

mod build;
pub mod dest;
pub mod publish;

pub use publish::{Prepared, PruneReport, PublishOptions, PublishReport, prepare, prune, publish};

use crate::object::id::{decode_hex, hex};
use crate::object::mirror::MirrorList;
pub use crate::object::mirror::list_tag;
use crate::object::signed::Signed;
use crate::paths::Paths;
use crate::store::{Reader, Store, StoreError};
use miette::Diagnostic;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// How long a head published to a mirror stays valid unless `--head-ttl` says otherwise:
/// long enough for a master that is often offline.
pub const DEFAULT_HEAD_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// `meta-v1` key of the followers' mirror keys (JSON: name → 64 hex digits).
const KEYS_META: &str = "master/mirror-keys";

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum MirrorError {
    #[error("cannot use {dest:?} as a mirror: {why}")]
    #[diagnostic(
        code(codexport::mirror::dest),
        help(
            "give an absolute folder path, or s3://bucket/prefix (credentials, region and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL)"
        )
    )]
    BadDest { dest: String, why: String },
    #[error("{url:?} is not an http(s) URL")]
    #[diagnostic(
        code(codexport::mirror::url),
        help(
            "--url is where followers read the mirror: the web server over the folder, the bucket's public or website address, or a CDN in front of it"
        )
    )]
    BadUrl { url: String },
    #[error("a mirror named {name:?} already exists")]
    #[diagnostic(
        code(codexport::mirror::exists),
        help(
            "pick another --name, or remove it first with `codexport master mirror remove {name}`"
        )
    )]
    Exists { name: String },
    #[error("no mirror is named {name:?} ({known})")]
    #[diagnostic(
        code(codexport::mirror::unknown),
        help("`codexport master mirror list` shows the mirrors")
    )]
    Unknown { name: String, known: String },
    #[error("writing to the mirror {dest} failed: {what}")]
    #[diagnostic(
        code(codexport::mirror::upload),
        help(
            "check the destination's credentials and permissions; the mirror still serves what it served before. Run `codexport master publish` again: it uploads only what is missing"
        )
    )]
    Upload { dest: String, what: String },
    #[error("{} is malformed: {what}", path.display())]
    #[diagnostic(
        code(codexport::mirror::config),
        help("fix the file by hand, or remove it and add the mirrors again")
    )]
    Config { path: PathBuf, what: String },
    #[error("cannot use {}: {source}", path.display())]
    #[diagnostic(code(codexport::mirror::io), help("check the permissions of the path"))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the master has no revision to publish yet")]
    #[diagnostic(
        code(codexport::mirror::empty),
        help("run `codexport master init` first")
    )]
    NoRevision,
    #[error(transparent)]
    #[diagnostic(transparent)]
    Key(Box<super::MasterError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Access(#[from] super::access::AccessError),
}

/// One mirror, as `mirrors.toml` holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MirrorConfig {
    pub name: String,
    /// Where files are written: a folder, or `s3://bucket/prefix`.
    pub dest: String,
    /// Where followers read them over HTTP(S).
    pub url: String,
    /// Validity of the heads published there, in seconds.
    pub head_ttl_secs: u64,
}

fn config_path(paths: &Paths) -> PathBuf {
    paths.state(crate::paths::state::MIRRORS_CONFIG)
}

/// Every configured mirror, in the file's order.
pub fn list(paths: &Paths) -> Result<Vec<MirrorConfig>, MirrorError> {
    let path = config_path(paths);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(MirrorError::Io { path, source }),
    };
    let bad = |what: String| MirrorError::Config {
        path: path.clone(),
        what,
    };
    let doc = crate::toml_doc::parse(&text).map_err(bad)?;
    let Some(tables) = doc.get("mirror") else {
        return Ok(Vec::new());
    };
    let tables = tables
        .as_array_of_tables()
        .ok_or_else(|| bad("`mirror` is not an array of tables ([[mirror]])".into()))?;
    tables
        .iter()
        .map(|t| {
            let s = |k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("a [[mirror]] lacks `{k}`")))
            };
            let ttl = t
                .get("head_ttl_days")
                .and_then(toml_edit::Item::as_integer)
                .map_or(DEFAULT_HEAD_TTL.as_secs(), |d| d.max(1) as u64 * 86_400);
            Ok(MirrorConfig {
                name: s("name")?,
                dest: s("dest")?,
                url: s("url")?,
                head_ttl_secs: ttl,
            })
        })
        .collect()
}

/// A name for a mirror from its destination: the folder's or the bucket and prefix's.
fn default_name(dest: &str) -> String {
    let base = dest
        .strip_prefix("s3://")
        .map(|r| r.trim_matches('/').replace('/', "-"))
        .unwrap_or_else(|| {
            std::path::Path::new(dest)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mirror".into())
        });
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "mirror".into()
    } else {
        name
    }
}

/// Adds a mirror (checking that its destination can be opened); returns it.
pub fn add(
    paths: &Paths,
    dest: &str,
    url: &str,
    name: Option<&str>,
    head_ttl: Duration,
) -> Result<MirrorConfig, MirrorError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(MirrorError::BadUrl { url: url.into() });
    }
    dest::Dest::open(dest)?;
    let name = name.map_or_else(|| default_name(dest), str::to_owned);
    let mirrors = list(paths)?;
    if mirrors.iter().any(|m| m.name == name) {
        return Err(MirrorError::Exists { name });
    }
    let mirror = MirrorConfig {
        name,
        dest: dest.to_owned(),
        url: url.trim_end_matches('/').to_owned(),
        head_ttl_secs: head_ttl.as_secs().max(86_400),
    };
    let mut all = mirrors;
    all.push(mirror.clone());
    save(paths, &all)?;
    Ok(mirror)
}

/// Removes a mirror by name (its files stay where they are); returns it.
pub fn remove(paths: &Paths, name: &str) -> Result<MirrorConfig, MirrorError> {
    let mut all = list(paths)?;
    let Some(i) = all.iter().position(|m| m.name == name) else {
        let known: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
        return Err(MirrorError::Unknown {
            name: name.into(),
            known: if known.is_empty() {
                "no mirror is configured".into()
            } else {
                known.join(", ")
            },
        });
    };
    let removed = all.remove(i);
    save(paths, &all)?;
    let state = publish::state_path(paths, &removed.name);
    let _ = std::fs::remove_file(state);
    Ok(removed)
}

fn save(paths: &Paths, mirrors: &[MirrorConfig]) -> Result<(), MirrorError> {
    let path = config_path(paths);
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| crate::toml_doc::parse(&t).ok())
        .unwrap_or_else(|| {
            "# codexport mirrors, edited by `codexport master mirror add|remove`.\n"
                .parse()
                .expect("a comment is valid TOML")
        });
    let mut tables = toml_edit::ArrayOfTables::new();
    for m in mirrors {
        let mut t = toml_edit::Table::new();
        t["name"] = toml_edit::value(m.name.clone());
        t["dest"] = toml_edit::value(m.dest.clone());
        t["url"] = toml_edit::value(m.url.clone());
        t["head_ttl_days"] = toml_edit::value((m.head_ttl_secs / 86_400) as i64);
        tables.push(t);
    }
    doc["mirror"] = toml_edit::Item::ArrayOfTables(tables);
    crate::fsutil::write_atomic(&path, doc.to_string().as_bytes(), 0o600)
        .map_err(|source| MirrorError::Io { path, source })
}

/// The followers' X25519 keys for mirrors, by follower name.
pub fn keys(reader: &Reader<'_>) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
    decode_keys(reader.meta(KEYS_META)?)
}

fn decode_keys(bytes: Option<Vec<u8>>) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(BTreeMap::new());
    };
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: format!("the followers' mirror keys: {e}"),
        })?;
    Ok(map
        .into_iter()
        .filter_map(|(name, k)| decode_hex::<32>(&k).map(|k| (name, k)))
        .collect())
}

/// Records a follower's mirror key; true when it was new or changed.
pub fn register_key(store: &Store, follower: &str, key: [u8; 32]) -> Result<bool, StoreError> {
    if keys(&store.read()?)?.get(follower) == Some(&key) {
        return Ok(false);
    }
    // Read again inside the write transaction: followers registering at the same moment (a
    // team's machines starting their sessions) must not lose each other's keys.
    let mut w = store.write()?;
    let mut all = decode_keys(w.meta(KEYS_META)?)?;
    if all.get(follower) == Some(&key) {
        return Ok(false);
    }
    all.insert(follower.to_owned(), key);
    let json: BTreeMap<&String, String> = all.iter().map(|(n, k)| (n, hex(k))).collect();
    w.set_meta(
        KEYS_META,
        &serde_json::to_vec(&json).expect("a map of strings serializes"),
    )?;
    w.commit()?;
    Ok(true)
}

/// The signed list of mirror URLs followers are given.
pub fn signed_list(
    paths: &Paths,
    key: &super::MasterKey,
) -> Result<Signed<MirrorList>, MirrorError> {
    let urls = list(paths)?.into_iter().map(|m| m.url).collect();
    Ok(Signed::sign(
        MirrorList {
            master_key: key.public_key(),
            issued_at: crate::time::now_secs(),
            urls,
        },
        key.signing_key(),
    ))
}

/// What `master publish` did, per mirror.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishAllReport {
    pub mirrors: Vec<PublishOutcome>,
}

/// One mirror's publish: its report, or why it failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishOutcome {
    pub mirror: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<PublishReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PublishAllReport {
    pub fn failed(&self) -> usize {
        self.mirrors.iter().filter(|m| m.error.is_some()).count()
    }
}

/// `master publish`: the newest revision to every mirror (or the one named). The store is
/// open only while packs are built; uploads run without it.
pub fn publish_command(
    paths: &Paths,
    only: Option<&str>,
    opts: PublishOptions,
) -> Result<PublishAllReport, MirrorError> {
    let mut mirrors = list(paths)?;
    if let Some(name) = only {
        let known = mirrors
            .iter()
            .map(|m| m.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        mirrors.retain(|m| m.name == name);
        if mirrors.is_empty() {
            return Err(MirrorError::Unknown {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "no mirror is configured".into()
                } else {
                    known
                },
            });
        }
    }
    let key =
        super::MasterKey::load(&paths.master_key()).map_err(|e| MirrorError::Key(Box::new(e)))?;
    let prepared: Vec<(String, Result<Prepared, MirrorError>)> = {
        let store = Store::open_waiting(&paths.state_dir, Duration::from_secs(10))?;
        mirrors
            .iter()
            .map(|m| (m.name.clone(), prepare(paths, &store, &key, m, opts)))
            .collect()
    };
    let mirrors = prepared
        .into_iter()
        .map(|(mirror, p)| match p.and_then(Prepared::upload) {
            Ok(report) => PublishOutcome {
                mirror,
                report: Some(report),
                error: None,
            },
            Err(e) => PublishOutcome {
                mirror,
                report: None,
                error: Some(format!("{e}")),
            },
        })
        .collect();
    Ok(PublishAllReport { mirrors })
}

/// What `master mirror list` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorsReport {
    pub mirrors: Vec<MirrorConfig>,
}

/// Prunes every mirror (after `gc`); a mirror that cannot be reached is skipped with its
/// error.
pub fn prune_all(paths: &Paths) -> Vec<(String, Result<PruneReport, MirrorError>)> {
    list(paths)
        .unwrap_or_default()
        .iter()
        .map(|m| (m.name.clone(), prune(paths, m)))
        .collect()
}

/// A mirror as `status` shows it on the master: where it is, and what was last published.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorStatus {
    pub name: String,
    pub url: String,
    /// The revision number last published there, and when its head expires (UTC).
    pub published: Option<u64>,
    pub expires: Option<String>,
}

/// Every configured mirror and what this master last published to it (from its own state:
/// no request is made).
pub fn status(paths: &Paths) -> Vec<MirrorStatus> {
    list(paths)
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let published = publish::published(paths, &m.name);
            MirrorStatus {
                published: published.map(|(n, _)| n),
                expires: published.map(|(_, e)| crate::time::Utc::from_secs(e).to_string()),
                name: m.name,
                url: m.url,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_registered_at_the_same_moment_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let start = std::sync::Barrier::new(16);
        std::thread::scope(|scope| {
            for i in 0..16u8 {
                let (store, start) = (&store, &start);
                scope.spawn(move || {
                    start.wait();
                    assert!(register_key(store, &format!("f{i}"), [i; 32]).unwrap());
                });
            }
        });
        let all = keys(&store.read().unwrap()).unwrap();
        assert_eq!(all.len(), 16, "{all:?}");
        assert!(!register_key(&store, "f3", [3; 32]).unwrap(), "unchanged");
        assert!(register_key(&store, "f3", [9; 32]).unwrap(), "a new key");
        assert_eq!(keys(&store.read().unwrap()).unwrap()["f3"], [9; 32]);
    }
}
