//! Codex plugins on a follower.
//!
//! A plugin's settings travel in config.toml (`[plugins."<name>@<marketplace>"] enabled`,
//! `[marketplaces.<name>] source_type, source`, the source path mapped to this machine);
//! its payload does not: `~/.codex/plugins/` is Codex's cache, keyed by version, which Codex
//! replaces on upgrade and removes with `codex plugin remove`. So a plugin the applied
//! config.toml enables and this machine lacks is installed the way Codex installs it: for a
//! Git marketplace `codex plugin marketplace upgrade <marketplace>` first (Codex keeps a
//! snapshot of it, which a new machine lacks), then `codex plugin add <name>@<marketplace>`.
//!
//! Once: an installed plugin is never installed again, a failed one is retried only when
//! config.toml changes or on `codexport plugins repair`, and installs are serialised by a
//! lock (`~/.codexport/plugins.lock`). Each step is logged, like the MCP launcher's
//! hydration, to `~/.codexport/logs/plugins/<id>.log` (and stderr when asked). What could
//! not be installed is kept in `~/.codexport/plugins.json`, which `status` lists.

use super::FollowerError;
use crate::object::EntryName;
use crate::paths::Paths;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A plugin the applied config.toml enables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enabled {
    /// `<name>@<marketplace>`, as Codex names it.
    pub id: String,
    pub name: String,
    pub marketplace: String,
}

/// Where a plugin stands on this follower.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    /// Codex has it (its cache holds a version).
    Installed,
    /// Not installed yet.
    Missing,
    /// The last install for this config failed.
    Failed { error: String, time_ms: i64 },
}

/// One enabled plugin and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginStatus {
    pub id: String,
    #[serde(flatten)]
    pub state: State,
}

/// Every enabled plugin, and what this run installed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PluginsReport {
    pub plugins: Vec<PluginStatus>,
    /// Installed by this run.
    pub installed: Vec<String>,
    /// Where each plugin's install log is.
    pub logs: PathBuf,
}

impl PluginsReport {
    /// The plugins that are not installed, failed or not tried yet.
    pub fn not_installed(&self) -> impl Iterator<Item = &PluginStatus> {
        self.plugins.iter().filter(|p| p.state != State::Installed)
    }
}

/// How a reconcile runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReconcileOptions {
    /// Try again plugins whose install failed for this same config (`plugins repair`).
    pub retry_failed: bool,
    /// Mirror the install steps' output to stderr.
    pub echo: bool,
}

/// `~/.codexport/plugins.json`: the failures of the last attempts, for one config.toml.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Recorded {
    version: u32,
    /// blake3 of the config.toml the attempts were made for.
    config: String,
    failed: BTreeMap<String, Failure>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Failure {
    error: String,
    time_ms: i64,
}

const RECORD_VERSION: u32 = 1;

/// The applied config.toml: its text (empty when absent or unreadable).
fn config_text(paths: &Paths) -> String {
    std::fs::read_to_string(paths.codex("config.toml")).unwrap_or_default()
}

fn config_key(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// The plugins a config enables (`enabled = false` disables one; a table without the key is
/// enabled, as Codex reads it). An id that is not `<name>@<marketplace>` of plain names is
/// reported as failed by [`status`], never used as a path.
pub fn enabled(config: &str) -> Vec<Result<Enabled, String>> {
    let Ok(doc) = crate::toml_doc::parse(config) else {
        return Vec::new();
    };
    let Some(plugins) = doc.get("plugins").and_then(toml_edit::Item::as_table_like) else {
        return Vec::new();
    };
    plugins
        .iter()
        .filter(|(_, v)| {
            v.as_table_like()
                .and_then(|t| t.get("enabled"))
                .and_then(toml_edit::Item::as_bool)
                != Some(false)
        })
        .map(|(id, _)| parse_id(id))
        .collect()
}

/// `<name>@<marketplace>`, each part a plain file name (it names folders of Codex's cache).
fn parse_id(id: &str) -> Result<Enabled, String> {
    let bad = || id.to_owned();
    let (name, marketplace) = id.rsplit_once('@').ok_or_else(bad)?;
    EntryName::new(name).map_err(|_| bad())?;
    EntryName::new(marketplace).map_err(|_| bad())?;
    Ok(Enabled {
        id: id.to_owned(),
        name: name.to_owned(),
        marketplace: marketplace.to_owned(),
    })
}

/// Whether Codex has the plugin: its cache holds at least one version of it.
pub fn is_installed(codex_dir: &Path, p: &Enabled) -> bool {
    let dir = codex_dir
        .join("plugins")
        .join("cache")
        .join(&p.marketplace)
        .join(&p.name);
    std::fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_dir())))
    })
}

fn load_recorded(paths: &Paths) -> Recorded {
    std::fs::read(paths.state(crate::paths::state::PLUGINS_STATE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Recorded>(&b).ok())
        .filter(|r| r.version == RECORD_VERSION)
        .unwrap_or_default()
}

fn save_recorded(paths: &Paths, r: &Recorded) -> Result<(), FollowerError> {
    let path = paths.state(crate::paths::state::PLUGINS_STATE);
    let bytes = serde_json::to_vec_pretty(r).expect("the record serialises");
    crate::fsutil::write_atomic(&path, &bytes, 0o600)
        .map_err(|e| FollowerError::Io { path, source: e })
}

/// Where every enabled plugin stands, without installing anything (what `status` lists).
pub fn status(paths: &Paths) -> PluginsReport {
    let config = config_text(paths);
    let recorded = load_recorded(paths);
    let failures = if recorded.config == config_key(&config) {
        recorded.failed
    } else {
        BTreeMap::new()
    };
    let plugins = enabled(&config)
        .into_iter()
        .map(|p| match p {
            Ok(p) if is_installed(&paths.codex_dir, &p) => PluginStatus {
                id: p.id,
                state: State::Installed,
            },
            Ok(p) => PluginStatus {
                state: failures
                    .get(&p.id)
                    .map_or(State::Missing, |f| State::Failed {
                        error: f.error.clone(),
                        time_ms: f.time_ms,
                    }),
                id: p.id,
            },
            Err(id) => PluginStatus {
                state: State::Failed {
                    error: "not a plugin id of the form <name>@<marketplace>".into(),
                    time_ms: 0,
                },
                id,
            },
        })
        .collect();
    PluginsReport {
        plugins,
        installed: Vec::new(),
        logs: logs_dir(paths),
    }
}

/// Whether a reconcile has anything to do: an enabled plugin is missing and has not failed
/// for this config (the session-start hook asks, cheaply, before starting one).
pub fn pending(paths: &Paths) -> bool {
    // Most configs enable no plugin: no need to parse them on every session start.
    if !config_text(paths).contains("plugins") {
        return false;
    }
    status(paths)
        .plugins
        .iter()
        .any(|p| p.state == State::Missing)
}

fn logs_dir(paths: &Paths) -> PathBuf {
    paths.logs().join("plugins")
}

/// Installs every enabled plugin this follower lacks (see the module docs) and records the
/// failures. Takes the plugins lock.
pub fn reconcile(paths: &Paths, opts: ReconcileOptions) -> Result<PluginsReport, FollowerError> {
    let before = status(paths);
    let wanted = |p: &PluginStatus| match &p.state {
        State::Missing => true,
        State::Failed { .. } => opts.retry_failed,
        State::Installed => false,
    };
    if !before.plugins.iter().any(wanted) {
        return Ok(before);
    }
    let lock_path = paths.state(crate::paths::state::PLUGINS_LOCK);
    let lock = crate::fsutil::open_log(&lock_path).map_err(|e| FollowerError::Io {
        path: lock_path.clone(),
        source: e,
    })?;
    lock.lock().map_err(|e| FollowerError::Io {
        path: lock_path,
        source: e,
    })?;
    // Another run may have installed them while this one waited.
    let config = config_text(paths);
    let before = status(paths);
    let todo: Vec<Enabled> = enabled(&config)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|p| before.plugins.iter().any(|s| s.id == p.id && wanted(s)))
        .collect();
    let marketplaces = marketplaces(&config);
    let mut recorded = load_recorded(paths);
    if recorded.config != config_key(&config) {
        recorded = Recorded {
            version: RECORD_VERSION,
            config: config_key(&config),
            failed: BTreeMap::new(),
        };
    }
    let mut installed = Vec::new();
    let mut refreshed = std::collections::BTreeSet::new();
    for p in todo {
        let mut log = Log::open(paths, &p.id, opts.echo)?;
        let result = install(paths, &p, &marketplaces, &mut refreshed, &mut log);
        match result {
            Ok(()) => {
                log.line(&format!("{} is installed", p.id));
                recorded.failed.remove(&p.id);
                installed.push(p.id);
            }
            Err(error) => {
                log.line(&format!("{} could not be installed: {error}", p.id));
                recorded.failed.insert(
                    p.id,
                    Failure {
                        error,
                        time_ms: crate::time::now_ms(),
                    },
                );
            }
        }
    }
    save_recorded(paths, &recorded)?;
    let mut report = status(paths);
    report.installed = installed;
    Ok(report)
}

/// A configured marketplace: how Codex fetches it.
#[derive(Debug, Clone)]
struct Marketplace {
    source_type: String,
    source: String,
}

fn marketplaces(config: &str) -> BTreeMap<String, Marketplace> {
    let Ok(doc) = crate::toml_doc::parse(config) else {
        return BTreeMap::new();
    };
    let Some(table) = doc
        .get("marketplaces")
        .and_then(toml_edit::Item::as_table_like)
    else {
        return BTreeMap::new();
    };
    table
        .iter()
        .filter_map(|(name, v)| {
            let t = v.as_table_like()?;
            let text = |k: &str| {
                t.get(k)
                    .and_then(toml_edit::Item::as_str)
                    .map(str::to_owned)
            };
            Some((
                name.to_owned(),
                Marketplace {
                    source_type: text("source_type").unwrap_or_default(),
                    source: text("source").unwrap_or_default(),
                },
            ))
        })
        .collect()
}

/// Installs one plugin: checks what can be checked here first (Codex, a local marketplace's
/// folder), refreshes its Git marketplace once per run, then `codex plugin add`. The error is
/// what the user needs to fix it.
fn install(
    paths: &Paths,
    p: &Enabled,
    marketplaces: &BTreeMap<String, Marketplace>,
    refreshed: &mut std::collections::BTreeSet<String>,
    log: &mut Log,
) -> Result<(), String> {
    let codex = crate::paths::codex_binary().ok_or_else(|| {
        "no `codex` on PATH (or in $CODEXPORT_CODEX_BIN): install the Codex CLI, then run `codexport plugins repair`".to_owned()
    })?;
    match marketplaces.get(&p.marketplace) {
        Some(m) if m.source_type == "local" && !Path::new(&m.source).is_dir() => {
            return Err(format!(
                "the marketplace `{}` is the folder {} ([marketplaces.{}] source in config.toml), which this machine lacks: put a copy of it there, then run `codexport plugins repair`",
                p.marketplace, m.source, p.marketplace
            ));
        }
        Some(m) if m.source_type == "git" && refreshed.insert(p.marketplace.clone()) => {
            log.run(codex_command(&codex, paths).args([
                "plugin",
                "marketplace",
                "upgrade",
                &p.marketplace,
            ]))?;
            if is_installed(&paths.codex_dir, p) {
                // Codex installs the enabled plugins of a marketplace it refreshes.
                return Ok(());
            }
        }
        _ => {}
    }
    log.run(codex_command(&codex, paths).args(["plugin", "add", &p.id]))?;
    if is_installed(&paths.codex_dir, p) {
        Ok(())
    } else {
        Err(format!(
            "`codex plugin add {}` succeeded but Codex's cache holds no version of it",
            p.id
        ))
    }
}

/// `codex …` for this follower's home and codex dir.
fn codex_command(codex: &Path, paths: &Paths) -> Command {
    let mut cmd = Command::new(codex);
    cmd.env("HOME", &paths.home)
        .env("CODEX_HOME", &paths.codex_dir)
        .current_dir(&paths.home);
    cmd
}

/// `~/.codexport/logs/plugins/<id>.log`, mirrored to stderr when asked.
struct Log {
    file: std::fs::File,
    echo: bool,
}

impl Log {
    fn open(paths: &Paths, id: &str, echo: bool) -> Result<Self, FollowerError> {
        let path = logs_dir(paths).join(format!("{id}.log"));
        let file =
            crate::fsutil::open_log(&path).map_err(|e| FollowerError::Io { path, source: e })?;
        Ok(Self { file, echo })
    }

    fn line(&mut self, text: &str) {
        let line = format!(
            "{} codexport plugins: {text}\n",
            crate::time::format_ms(crate::time::now_ms())
        );
        if self.echo {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        let _ = self.file.write_all(line.as_bytes());
    }

    /// Runs one install step, its output into the log; the error names the step and ends
    /// with the last lines it printed.
    fn run(&mut self, cmd: &mut Command) -> Result<(), String> {
        let shown = format!(
            "codex {}",
            cmd.get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        self.line(&format!("running {shown}"));
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("`{shown}` could not start: {e}"))?;
        let mut tail = Vec::new();
        for line in out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .map_while(Result::ok)
        {
            let _ = writeln!(self.file, "{line}");
            // Codex's backtrace (`Stack backtrace:`, `  3: <unknown>`) says nothing to the user.
            let trimmed = line.trim();
            let noise = trimmed.is_empty()
                || trimmed == "Stack backtrace:"
                || trimmed.ends_with(": <unknown>");
            if !noise {
                if self.echo {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
                tail.push(line);
            }
        }
        if out.status.success() {
            return Ok(());
        }
        let last: Vec<String> = tail.into_iter().rev().take(3).collect::<Vec<_>>();
        let last: Vec<String> = last.into_iter().rev().collect();
        Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            last.join(" / ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_plugins_and_their_ids() {
        let config = "[plugins.\"hello@local\"]\nenabled = true\n[plugins.\"off@local\"]\nenabled = false\n[plugins.\"implicit@m\"]\n[plugins.\"../x@m\"]\nenabled = true\n";
        let got: Vec<Result<String, String>> = enabled(config)
            .into_iter()
            .map(|p| p.map(|p| p.id))
            .collect();
        assert_eq!(
            got,
            [
                Ok("hello@local".to_owned()),
                Ok("implicit@m".to_owned()),
                Err("../x@m".to_owned())
            ]
        );
        assert_eq!(enabled("not toml =").len(), 0);
        assert_eq!(enabled("model = \"x\"").len(), 0);
        let p = parse_id("a@b@c").unwrap();
        assert_eq!((p.name.as_str(), p.marketplace.as_str()), ("a@b", "c"));
        assert!(parse_id("nomarket").is_err());
    }

    #[test]
    fn installed_means_a_version_in_codexs_cache() {
        let dir = tempfile::tempdir().unwrap();
        let p = parse_id("hello@local").unwrap();
        assert!(!is_installed(dir.path(), &p));
        std::fs::create_dir_all(dir.path().join("plugins/cache/local/hello")).unwrap();
        assert!(!is_installed(dir.path(), &p));
        std::fs::create_dir_all(dir.path().join("plugins/cache/local/hello/1.2.3")).unwrap();
        assert!(is_installed(dir.path(), &p));
    }

    #[test]
    fn marketplaces_are_read_from_the_config() {
        let m = marketplaces(
            "[marketplaces.a]\nsource_type = \"git\"\nsource = \"https://x/y.git\"\n[marketplaces.b]\nsource_type = \"local\"\nsource = \"/srv/b\"\n",
        );
        assert_eq!(m["a"].source_type, "git");
        assert_eq!(m["b"].source, "/srv/b");
    }
}
