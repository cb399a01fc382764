//! The master's identity: an ed25519 signing key in `~/.codexport/master.key` (0600).

use super::MasterError;
use crate::object::Fingerprint;
use ed25519_dalek::SigningKey;
use std::io::Write;
use std::path::Path;

/// The master's signing key.
pub struct MasterKey {
    key: SigningKey,
}

impl MasterKey {
    /// Creates a new key file (0600) that must not exist yet.
    pub fn create(path: &Path) -> Result<Self, MasterError> {
        let io = |e| MasterError::Io {
            path: path.to_owned(),
            source: e,
        };
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        if let Some(dir) = path.parent() {
            crate::fsutil::create_private_dir_all(dir).map_err(io)?;
        }
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        }
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => MasterError::AlreadyInitialised {
                path: path.to_owned(),
            },
            _ => io(e),
        })?;
        writeln!(file, "{}", crate::object::id::hex(&secret)).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Loads the key, refusing one that other users can read.
    pub fn load(path: &Path) -> Result<Self, MasterError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MasterError::NotInitialised {
                path: path.to_owned(),
            },
            _ => MasterError::Io {
                path: path.to_owned(),
                source: e,
            },
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MasterError::KeyExposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| MasterError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        let secret = crate::object::id::decode_hex::<32>(text.trim()).ok_or_else(|| {
            MasterError::KeyMalformed {
                path: path.to_owned(),
            }
        })?;
        Ok(Self {
            key: SigningKey::from_bytes(&secret),
        })
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_key(&self.public_key())
    }
}
