//! The roots: the folders of a user's agent setup that codexport carries, in one table.
//!
//! Each root has a name (its entry in a revision's tree of roots, see store-format.md), a
//! place on every machine, a selection table (what is taken at its top level) and its merge
//! rules (how a follower's overlay and its own files join the master's). Snapshot, merge,
//! checkout, the watcher and README's "What is synced" table all read this table: a root for
//! another agent (say `~/.claude`) is one more entry here, plus code for any file kind its
//! merge rules name that the existing rules do not cover.
//!
//! This module is data and pure functions: it never touches the filesystem.

pub mod agent_skills;
pub mod codex;
mod readme;

pub use readme::synced_table;

use crate::object::RelPath;
use std::path::{Path, PathBuf};

/// Whether a selection rule takes or leaves a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Include,
    Exclude,
}

/// One selection rule. A pattern without `/` matches a top-level name (`*` matches any run of
/// characters); a pattern with `/` matches that exact relative path. Exclusions win. Nothing
/// below the top level is excluded by a bare name, so a `cache/` folder inside a skill is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub pattern: &'static str,
    pub action: Action,
    pub why: &'static str,
}

pub(crate) const fn include(pattern: &'static str, why: &'static str) -> Rule {
    Rule {
        pattern,
        action: Action::Include,
        why,
    }
}

pub(crate) const fn exclude(pattern: &'static str, why: &'static str) -> Rule {
    Rule {
        pattern,
        action: Action::Exclude,
        why,
    }
}

/// Where a root lies on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The Codex dir: `--codex-dir`, else `$CODEX_HOME`, else `<home>/.codex`.
    CodexHome,
    /// A folder below the home (`/`-separated).
    Home(&'static str),
}

/// What happens to a follower's local edits of a managed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The master's content wins; a local edit is backed up first.
    Replace,
    /// Once the follower has the file, its copy is kept.
    KeepLocal,
    /// The master's lines, followed by the lines the follower added (Codex writes approvals
    /// into `rules/default.rules`).
    AppendLocal,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "replace" => Some(Policy::Replace),
            "keep-local" => Some(Policy::KeepLocal),
            "append-local" => Some(Policy::AppendLocal),
            _ => None,
        }
    }
}

/// Where a follower's local skills (a folder of its state dir, one subfolder per skill) land
/// in a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSkills {
    /// The overlay folder in the state dir (see [`crate::paths::state`]).
    pub overlay: &'static str,
    /// The folder of the root they land in (`""` for the root itself).
    pub into: &'static str,
}

/// How a follower merges a root: which files are Codex configuration, where local skills
/// land, and which files it co-owns. Each field names files of the root; the merge (in
/// `overlay`) owns what each kind of rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeRules {
    /// Codex's config.toml: paths mapped, MCP servers through the launcher, local MCP servers
    /// added, the entries Codex wrote on the follower kept.
    pub config: Option<&'static str>,
    /// Codex's hooks.json: codexport's session-start hook first, the master's own removed.
    pub hooks: Option<&'static str>,
    /// A folder of Codex config layers (`*.toml` directly in it, e.g. custom agents): master
    /// paths in the fields that hold paths are mapped, as in config.toml.
    pub config_layers: Option<&'static str>,
    /// Local skills of the overlay.
    pub local_skills: Option<LocalSkills>,
    /// The overlay folder whose files replace the master's at the same path of this root.
    pub overrides: Option<&'static str>,
    /// Files the follower co-owns by default; `[policies]` in local.toml adds to them.
    pub policies: &'static [(&'static str, Policy)],
}

/// One root of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    /// Its entry in a revision's tree of roots: a valid entry name.
    pub name: &'static str,
    /// Where it lies on each machine.
    pub place: Place,
    /// How README and messages show it (`~/.codex`).
    pub shown: &'static str,
    /// What it holds, for README.
    pub about: &'static str,
    /// The master must have it (a missing one fails the snapshot); an optional root that is
    /// missing or empty is simply not in the revision.
    pub required: bool,
    /// The selection table: the top-level names and exact paths taken or left out. Names no
    /// rule lists are left alone and, in a root with `notice_unlisted`, named by the master.
    pub selection: &'static [Rule],
    /// `master init`/`rebuild`/`status` name top-level entries that no rule lists (new Codex
    /// folders must not go unnoticed).
    pub notice_unlisted: bool,
    /// Credentials: written owner-only on every follower, whatever their mode on the master.
    pub secrets: &'static [&'static str],
    pub merge: MergeRules,
}

/// Every root, in the order snapshots walk them.
pub const ROOTS: &[Root] = &[codex::ROOT, agent_skills::ROOT];

/// The Codex dir's root: the first and required one. Revisions made before roots existed
/// hold this root alone, as their whole tree.
pub const CODEX: &Root = &codex::ROOT;

/// The root named `name`.
pub fn by_name(name: &str) -> Option<&'static Root> {
    ROOTS.iter().find(|r| r.name == name)
}

impl Root {
    /// The path of `rel` (relative to this root) in a tree of roots.
    pub fn path(&self, rel: &str) -> RelPath {
        RelPath::new(&format!("{}/{rel}", self.name))
            .expect("a root's name and its rule paths are valid")
    }

    /// Whether `rel` (relative to this root, `/`-separated) is a credential or lies in a
    /// credentials folder.
    pub fn is_secret(&self, rel: &str) -> bool {
        self.secrets
            .iter()
            .any(|s| rel == *s || rel.strip_prefix(s).is_some_and(|r| r.starts_with('/')))
    }

    /// This root's folder on a machine with this home and codex dir.
    pub fn dir(&self, home: &Path, codex_dir: &Path) -> PathBuf {
        match self.place {
            Place::CodexHome => codex_dir.to_owned(),
            Place::Home(rel) => rel.split('/').fold(home.to_owned(), |p, c| p.join(c)),
        }
    }
}

/// Whether a path of a tree of roots (`<root>/<path>`) is a credential of its root.
pub fn is_secret(path: &RelPath) -> bool {
    path.split_first()
        .and_then(|(root, rest)| by_name(root).map(|r| r.is_secret(rest.as_str())))
        .unwrap_or(false)
}

/// Where each root lies on this machine: maps paths of a tree of roots to the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDirs {
    dirs: Vec<(&'static Root, PathBuf)>,
}

impl RootDirs {
    /// Every root of the table, placed for this home and codex dir.
    pub fn new(home: &Path, codex_dir: &Path) -> Self {
        Self {
            dirs: ROOTS.iter().map(|r| (r, r.dir(home, codex_dir))).collect(),
        }
    }

    /// Roots at explicit folders (tests, and journals that recorded them).
    pub fn from_dirs(dirs: impl IntoIterator<Item = (&'static Root, PathBuf)>) -> Self {
        Self {
            dirs: dirs.into_iter().collect(),
        }
    }

    /// Each root and its folder, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Root, &Path)> + '_ {
        self.dirs.iter().map(|(r, p)| (*r, p.as_path()))
    }

    /// The folder of the root named `name`.
    pub fn get(&self, name: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(r, _)| r.name == name)
            .map(|(_, p)| p.as_path())
    }

    /// The codex dir.
    pub fn codex(&self) -> &Path {
        self.get(CODEX.name)
            .expect("every set of root dirs places the Codex root")
    }

    /// Where a path of a tree of roots lies: its root's folder and the path inside it, or
    /// `None` for the top level itself and for a name that is no root here.
    pub fn locate(&self, path: &RelPath) -> Option<(&Path, RelPath)> {
        let (first, rest) = path.split_first()?;
        self.get(first).map(|dir| (dir, rest))
    }

    /// The file a path of a tree of roots names on this machine (see [`RootDirs::locate`]).
    pub fn abs(&self, path: &RelPath) -> Option<PathBuf> {
        self.locate(path).map(|(dir, rest)| rest.to_path(dir))
    }

    /// The folders, by root name, as recorded in journals and indexes.
    pub fn by_name(&self) -> std::collections::BTreeMap<String, PathBuf> {
        self.dirs
            .iter()
            .map(|(r, p)| (r.name.to_owned(), p.clone()))
            .collect()
    }

    /// Rebuilds the placement recorded by [`RootDirs::by_name`]; names this codexport does not
    /// know are dropped (nothing of theirs can be in a tree it reads).
    pub fn from_names(names: &std::collections::BTreeMap<String, PathBuf>) -> Self {
        Self::from_dirs(
            ROOTS
                .iter()
                .filter_map(|r| names.get(r.name).map(|p| (r, p.clone()))),
        )
    }

    /// Whether both place every root at the same folder (after resolving links).
    pub fn same_as(&self, other: &RootDirs) -> bool {
        let same = |a: &Path, b: &Path| {
            a == b
                || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                }
        };
        self.dirs.len() == other.dirs.len()
            && self
                .dirs
                .iter()
                .all(|(r, p)| other.get(r.name).is_some_and(|q| same(p, q)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_names_are_valid_unique_entry_names() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROOTS {
            crate::object::EntryName::new(r.name).unwrap();
            assert!(seen.insert(r.name), "{} twice", r.name);
        }
        assert_eq!(ROOTS[0].name, CODEX.name);
        assert!(CODEX.required);
    }

    #[test]
    fn places_and_paths() {
        let dirs = RootDirs::new(Path::new("/h"), Path::new("/elsewhere/codex"));
        assert_eq!(dirs.codex(), Path::new("/elsewhere/codex"));
        assert_eq!(
            dirs.get("agents-skills"),
            Some(Path::new("/h/.agents/skills"))
        );
        let p = RelPath::new("agents-skills/review/SKILL.md").unwrap();
        assert_eq!(
            dirs.abs(&p),
            Some(PathBuf::from("/h/.agents/skills/review/SKILL.md"))
        );
        assert_eq!(dirs.abs(&RelPath::new("nope/x").unwrap()), None);
        assert_eq!(dirs.abs(&RelPath::root()), None);
        let back = RootDirs::from_names(&dirs.by_name());
        assert_eq!(back, dirs);
    }

    #[test]
    fn secrets_are_per_root() {
        assert!(is_secret(&RelPath::new("codex/auth.json").unwrap()));
        assert!(is_secret(&RelPath::new("codex/multi-auth/a.json").unwrap()));
        assert!(!is_secret(&RelPath::new("codex/multi-authx").unwrap()));
        assert!(!is_secret(
            &RelPath::new("agents-skills/auth.json").unwrap()
        ));
    }
}
