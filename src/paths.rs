//! Where things live: the codex dir and codexport's state dir under one home.

use std::path::{Path, PathBuf};

/// The folders one invocation works on. Everything is under `home` unless `--codex-dir`
/// points elsewhere, so tests and demos run on temporary homes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub codex_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn new(home: PathBuf, codex_dir: Option<PathBuf>) -> Self {
        let codex_dir = codex_dir.unwrap_or_else(|| home.join(".codex"));
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

    /// The master's private key file (0600).
    pub fn master_key(&self) -> PathBuf {
        self.state_dir.join("master.key")
    }

    pub fn store_db(&self) -> PathBuf {
        crate::store::Store::db_path(&self.state_dir)
    }

    pub fn state(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }
}

/// Shows `path` with the home replaced by `~`, for messages.
pub fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}
