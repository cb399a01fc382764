//! The master's identity and publishing: its ed25519 key, `init`, `rebuild`, and the signed
//! head that followers trust.

use crate::object::{Fingerprint, SignedHead};
use crate::paths::Paths;
use crate::snapshot::{self, SnapshotError, SnapshotOptions, SnapshotReport};
use crate::store::{ObjectSource, Store, StoreError};
use ed25519_dalek::SigningKey;
use miette::Diagnostic;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// How long a signed head is valid. A running server re-signs well before expiry; a follower
/// refuses a head past it (a frozen or replayed master cannot pin followers to old content).
pub const HEAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum MasterError {
    #[error("this machine is already a master (key at {})", path.display())]
    #[diagnostic(
        code(codexport::usage::already_master),
        help(
            "run `codexport master rebuild` to snapshot again; `codexport status` shows the master's state"
        )
    )]
    AlreadyInitialised { path: PathBuf },
    #[error("this machine is not a master: no key at {}", path.display())]
    #[diagnostic(
        code(codexport::usage::not_master),
        help("run `codexport master init` first")
    )]
    NotInitialised { path: PathBuf },
    #[error("the master key {} is readable by other users (mode {mode:o})", path.display())]
    #[diagnostic(code(codexport::trust::key_mode), help("run `chmod 600 {}`; if other users could read it, rotate the key", path.display()))]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("the master key {} is malformed", path.display())]
    #[diagnostic(
        code(codexport::trust::key_malformed),
        help("restore the key from a backup; a new key means re-enrolling every follower")
    )]
    KeyMalformed { path: PathBuf },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::master::io),
        help("check permissions and free space of the codexport state directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

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
            std::fs::create_dir_all(dir).map_err(io)?;
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

/// What `master init` did.
#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub role: &'static str,
    pub fingerprint: String,
    pub snapshot: SnapshotReport,
}

/// Creates the key and the store and records the first revision. If the codex dir is
/// missing, nothing is created.
pub fn init(paths: &Paths) -> Result<InitReport, MasterError> {
    if paths.master_key().exists() {
        return Err(MasterError::AlreadyInitialised {
            path: paths.master_key(),
        });
    }
    // Walk first so a missing or unreadable codex dir leaves no key and no store behind.
    snapshot::walk::walk(&paths.codex_dir)?;
    let store = Store::open_or_create(&paths.state_dir)?;
    let key = MasterKey::create(&paths.master_key())?;
    let snapshot = match rebuild_with(&store, paths, &key) {
        Ok(s) => s,
        Err(e) => {
            // Undo the half-made identity so `init` can simply be run again.
            let _ = std::fs::remove_file(paths.master_key());
            return Err(e);
        }
    };
    Ok(InitReport {
        role: "master",
        fingerprint: key.fingerprint().to_string(),
        snapshot,
    })
}

/// Snapshots again; a new revision only if something changed. Also re-signs a head that is
/// past half its validity.
pub fn rebuild(paths: &Paths) -> Result<SnapshotReport, MasterError> {
    let key = MasterKey::load(&paths.master_key())?;
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    rebuild_with(&store, paths, &key)
}

/// Snapshot with an open store and loaded key (what the server's watcher calls).
pub fn rebuild_with(
    store: &Store,
    paths: &Paths,
    key: &MasterKey,
) -> Result<SnapshotReport, MasterError> {
    let report = snapshot::snapshot(
        store,
        &SnapshotOptions {
            codex_dir: paths.codex_dir.clone(),
            stamp_dir: paths.state_dir.clone(),
            host: crate::paths::host_name(),
            home: paths.home.clone(),
            signer: Some(key.signing_key()),
            head_ttl: HEAD_TTL,
            mcp: Some(&|w: &mut crate::store::Writer<'_>, config: &[u8]| {
                let ctx = crate::mcp::infer::ExportContext {
                    home: &paths.home,
                    codex_dir: &paths.codex_dir,
                    path: std::env::var_os("PATH"),
                    env: &|name| std::env::var(name).ok(),
                };
                crate::mcp::infer::export(w, &String::from_utf8_lossy(config), &ctx)
            }),
        },
    )?;
    refresh_head(store, key, false)?;
    Ok(report)
}

/// Re-signs the head for the current revision if it is missing, signed by another key, past
/// half its validity, or `force` is set. Returns the head served now.
pub fn refresh_head(
    store: &Store,
    key: &MasterKey,
    force: bool,
) -> Result<Option<SignedHead>, MasterError> {
    let (head, current) = {
        let r = store.read()?;
        (r.head()?, r.get_ref(crate::store::refs::MASTER_HEAD)?)
    };
    let Some(rev_id) = current else {
        return Ok(head);
    };
    let now = crate::time::now_ms() / 1000;
    let fresh = head.as_ref().is_some_and(|h| {
        h.body.revision == rev_id
            && h.body.master_key == key.public_key()
            && h.body.expires_at - now > (HEAD_TTL.as_secs() / 2) as i64
    });
    if fresh && !force {
        return Ok(head);
    }
    let mut w = store.write()?;
    let rev = w.revision(&rev_id)?;
    let (objects, bytes) = crate::store::fsck::closure(&w, rev_id)?;
    let signed = snapshot::head_body(
        key.signing_key(),
        rev_id,
        rev.number,
        objects,
        bytes,
        HEAD_TTL,
    )
    .sign(key.signing_key());
    w.set_head(&signed)?;
    w.commit()?;
    Ok(Some(signed))
}
