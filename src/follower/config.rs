//! The follower's enrollment: `follower.toml` (master URL, pinned key) and its credential.

use super::FollowerError;
use crate::object::Fingerprint;
use crate::paths::Paths;
use std::path::PathBuf;

/// What `follower join` pinned.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    pub master_url: String,
    pub fingerprint: Fingerprint,
    pub master_key: [u8; 32],
    pub name: String,
    pub enrolled_ms: i64,
}

pub fn config_path(paths: &Paths) -> PathBuf {
    paths.state(crate::paths::state::FOLLOWER_CONFIG)
}

pub fn credential_path(paths: &Paths) -> PathBuf {
    paths.state(crate::paths::state::CREDENTIAL)
}

impl FollowerConfig {
    /// Loads the enrollment, or `NotEnrolled`.
    pub fn load(paths: &Paths) -> Result<Self, FollowerError> {
        let path = config_path(paths);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FollowerError::NotEnrolled);
            }
            Err(e) => return Err(FollowerError::Io { path, source: e }),
        };
        let bad = |what: &str| FollowerError::BadConfig {
            path: path.clone(),
            what: what.to_owned(),
        };
        let doc = crate::toml_doc::parse(&text).map_err(|e| bad(&e))?;
        let s = |k: &str| {
            doc.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("missing {k}")))
        };
        let master_key = crate::object::id::decode_hex::<32>(&s("master_key")?)
            .ok_or_else(|| bad("master_key is not 64 hex digits"))?;
        let fingerprint: Fingerprint = s("fingerprint")?
            .parse()
            .map_err(|_| bad("fingerprint is not 40 hex digits"))?;
        if Fingerprint::of_key(&master_key) != fingerprint {
            return Err(bad("master_key does not match fingerprint"));
        }
        Ok(Self {
            master_url: s("master_url")?,
            fingerprint,
            master_key,
            name: s("name")?,
            enrolled_ms: doc
                .get("enrolled_ms")
                .and_then(toml_edit::Item::as_integer)
                .unwrap_or(0),
        })
    }

    /// Writes `follower.toml` atomically, keeping comments a user added to an existing one.
    pub fn save(&self, paths: &Paths) -> Result<(), FollowerError> {
        let path = config_path(paths);
        let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| crate::toml_doc::parse(&t).ok())
            .unwrap_or_else(|| {
                "# codexport follower enrollment, written by `codexport follower join`.\n"
                    .parse()
                    .expect("a comment is valid TOML")
            });
        doc["master_url"] = toml_edit::value(self.master_url.clone());
        doc["fingerprint"] = toml_edit::value(self.fingerprint.to_string());
        doc["master_key"] = toml_edit::value(crate::object::id::hex(&self.master_key));
        doc["name"] = toml_edit::value(self.name.clone());
        doc["enrolled_ms"] = toml_edit::value(self.enrolled_ms);
        crate::fsutil::write_atomic(&path, doc.to_string().as_bytes(), 0o600)
            .map_err(|e| FollowerError::Io { path, source: e })
    }
}

/// The follower's credential, checked for its form here: a damaged file is this machine's
/// problem, not the master refusing it.
pub fn load_credential(paths: &Paths) -> Result<String, FollowerError> {
    let path = credential_path(paths);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FollowerError::NotEnrolled);
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(FollowerError::DamagedCredential { path });
        }
        Err(e) => return Err(FollowerError::Io { path, source: e }),
    };
    if crate::transport::link::parse_secret(&text, crate::transport::link::CREDENTIAL_PREFIX)
        .is_none()
    {
        return Err(FollowerError::DamagedCredential { path });
    }
    Ok(text)
}

pub fn save_credential(paths: &Paths, credential: &str) -> Result<(), FollowerError> {
    let path = credential_path(paths);
    crate::fsutil::write_atomic(&path, format!("{credential}\n").as_bytes(), 0o600)
        .map_err(|e| FollowerError::Io { path, source: e })
}
