//! Where things live: the codex dir, and the whole layout of codexport's state dir
//! (`~/.codexport`) in one place. Every file codexport keeps is named here.

use std::path::{Path, PathBuf};

/// Names inside the state dir. Lower layers that are handed only the state dir (the store,
/// checkout) join these; everything else asks [`Paths`].
pub mod state {
    /// The master's ed25519 signing key (0600).
    pub const MASTER_KEY: &str = "master.key";
    /// The redb database: object index, refs, logs, tables (see store-format.md).
    pub const STORE_DB: &str = "store.redb";
    /// Append-only pack files holding object bytes.
    pub const PACKS: &str = "packs";
    /// Serialises syncs and applies of one follower.
    pub const LOCK: &str = "lock";
    /// The master snapshot's time stamp (the filesystem's "now", for racily clean files).
    pub const SNAPSHOT_STAMP: &str = "snapshot.stamp";
    /// The commit point of an unfinished apply.
    pub const JOURNAL: &str = "journal.json";
    /// Where an apply's staged files go, written before they are (see `checkout::stage`).
    pub const STAGING_INTENT: &str = "staging.json";
    /// What the last apply wrote at every managed path, with its stat (a cache).
    pub const CHECKOUT_INDEX: &str = "checkout-index";
    /// The checkout index's time stamp (the filesystem's "now" when it was written).
    pub const CHECKOUT_STAMP: &str = "checkout.stamp";
    /// Copies of local edits taken before an apply replaced them, one folder per apply.
    pub const BACKUPS: &str = "backups";
    /// Logs: `hook.log`, and `mcp/<name>.log`.
    pub const LOGS: &str = "logs";
    /// The follower's enrollment: master URL and pinned key.
    pub const FOLLOWER_CONFIG: &str = "follower.toml";
    /// The follower's credential (0600).
    pub const CREDENTIAL: &str = "credential";
    /// What the store says about the master, for the no-change fast path.
    pub const FOLLOWER_STATE: &str = "follower-state.json";
    /// The last sync's time and result, for `status`.
    pub const LAST_SYNC: &str = "last-sync.json";
    /// The follower's overlay: settings, local MCP servers, local skills, overrides.
    pub const LOCAL_TOML: &str = "local.toml";
    pub const LOCAL_MCPS: &str = "mcps.local.toml";
    /// Local skills for `~/.codex/skills`…
    pub const LOCAL_SKILLS: &str = "skills";
    /// …and for `~/.agents/skills`.
    pub const LOCAL_AGENT_SKILLS: &str = "agent-skills";
    pub const OVERRIDES: &str = "overrides";
    /// codexport's installed session-start hook entry.
    pub const HOOK_TOML: &str = "hook.toml";
    /// The applied revision's MCP manifest, read by `mcp run` without the store.
    pub const MCP_APPLIED: &str = "mcp/manifest.json";
    /// Hydrated MCP artifacts (installed packages, copied sources).
    pub const MCP_ARTIFACTS: &str = "mcp-artifacts";
    /// The master's mirrors: where each is and where followers read it.
    pub const MIRRORS_CONFIG: &str = "mirrors.toml";
    /// The master's per-mirror state (`<name>.json`: content key, published packs; 0600)
    /// and the packs being built (`tmp/`).
    pub const MIRRORS: &str = "mirrors";
    /// The follower's X25519 secret key, to which mirrors wrap their content key (0600).
    pub const MIRROR_KEY: &str = "mirror.key";
    /// The signed list of mirror URLs the master handed this follower.
    pub const MIRROR_LIST: &str = "mirror-list";
    /// Mirror packs being downloaded (`<hash>.part`, resumed with Range requests).
    pub const MIRROR_DOWNLOADS: &str = "mirror-downloads";
    /// The master's own settings: extra top-level entries of `~/.codex` to take or leave.
    pub const MASTER_TOML: &str = "master.toml";
    /// What the last plugin reconcile found: each enabled plugin and whether it installed.
    pub const PLUGINS_STATE: &str = "plugins.json";
    /// Serialises plugin installs (`codex plugin add`) of one follower.
    pub const PLUGINS_LOCK: &str = "plugins.lock";
    /// The mirrors' content keys this follower unwrapped, by epoch (0600): a mirror's
    /// keyring is read once per content key, not at every sync.
    pub const MIRROR_CONTENT_KEYS: &str = "mirror-content-keys.json";
}

/// What this machine is to codexport, told by the files in its state dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It holds a master key.
    Master,
    /// It enrolled with a master.
    Follower,
    /// Neither yet.
    None,
}

/// The folders one invocation works on. Everything is under `home` unless `--codex-dir` (or
/// `$CODEX_HOME`) points elsewhere, so tests and demos run on temporary homes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub codex_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    /// Relative folders are made absolute (against the current directory) once, here: the
    /// tools codexport runs (Codex, npm) start elsewhere, and revisions record these paths.
    pub fn new(home: PathBuf, codex_dir: Option<PathBuf>) -> Self {
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let home = absolute(home);
        let codex_dir = codex_dir.map_or_else(|| home.join(".codex"), absolute);
        let state_dir = home.join(".codexport");
        Self {
            home,
            codex_dir,
            state_dir,
        }
    }

    /// The user's home: `$HOME`, else the current directory.
    pub fn default_home() -> PathBuf {
        std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
    }

    /// Whether the codex dir is the default one under the home.
    pub fn default_codex_dir(&self) -> bool {
        self.codex_dir == self.home.join(".codex")
    }

    /// Master if it holds a master key, follower if it enrolled.
    pub fn role(&self) -> Role {
        if self.master_key().exists() {
            Role::Master
        } else if self.state(state::FOLLOWER_CONFIG).exists() {
            Role::Follower
        } else {
            Role::None
        }
    }

    /// A named file of the state dir (see [`state`]).
    pub fn state(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }

    pub fn master_key(&self) -> PathBuf {
        self.state(state::MASTER_KEY)
    }

    pub fn store_db(&self) -> PathBuf {
        self.state(state::STORE_DB)
    }

    pub fn logs(&self) -> PathBuf {
        self.state(state::LOGS)
    }

    /// A codex-dir file by its relative name (`config.toml`, `hooks.json`).
    pub fn codex(&self, name: &str) -> PathBuf {
        self.codex_dir.join(name)
    }

    /// Where every root of [`crate::roots::ROOTS`] lies on this machine.
    pub fn roots(&self) -> crate::roots::RootDirs {
        crate::roots::RootDirs::new(&self.home, &self.codex_dir)
    }
}

/// Environment variable naming the codex binary (otherwise `codex` on PATH).
pub const CODEX_BIN_ENV: &str = "CODEXPORT_CODEX_BIN";

/// The Codex CLI that codexport asks (hook trust) and runs (plugin installs):
/// `$CODEXPORT_CODEX_BIN`, else `codex` on PATH.
pub fn codex_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(CODEX_BIN_ENV).filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("codex"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This machine's host name: recorded in revisions, and a follower's default name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "master".to_owned())
}

/// Shows `path` with the home replaced by `~`, for messages.
pub fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}
