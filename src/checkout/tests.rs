//! Tests of the executor: real files in temp dirs, trees built in a temp store.

use super::*;
use crate::checkout::Index;
use crate::checkout::plan::Plan;
use crate::checkout::{CheckoutError, STAGING_NAME};
use crate::object::{EntryKind, EntryName, ObjectId, ObjectKind, Tree, TreeEntry};
use crate::roots::RootDirs;
use crate::store::StoreError;
use crate::store::{Store, Writer};
use miette::Diagnostic;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

/// What a managed path holds, in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    File(Vec<u8>),
    Exec(Vec<u8>),
    Link(String),
}

type Files = BTreeMap<String, Spec>;

fn file(s: &str) -> Spec {
    Spec::File(s.as_bytes().to_vec())
}

enum Node {
    Leaf(EntryKind, Vec<u8>),
    Dir(BTreeMap<String, Node>),
}

fn write_dir(w: &mut Writer<'_>, dir: &BTreeMap<String, Node>) -> (ObjectId, u64) {
    let mut entries = Vec::new();
    for (name, node) in dir {
        let (kind, id, size) = match node {
            Node::Leaf(kind, bytes) => (
                *kind,
                w.put(ObjectKind::Blob, bytes).unwrap(),
                bytes.len() as u64,
            ),
            Node::Dir(sub) => {
                let (id, size) = write_dir(w, sub);
                (EntryKind::Tree, id, size)
            }
        };
        entries.push(TreeEntry {
            name: EntryName::new(name.clone()).unwrap(),
            kind,
            id,
            size,
            private: false,
            chunked: false,
        });
    }
    let tree = Tree::new(entries).unwrap();
    (w.put_tree(&tree).unwrap(), tree.size())
}

/// The Codex root alone, at `codex`: the tests write trees of one root (paths below are
/// relative to it, and the wrappers below add and take off the root's name).
fn at(codex: &Path) -> RootDirs {
    RootDirs::from_dirs([(crate::roots::CODEX, codex.to_owned())])
}

/// `path` without the Codex root's name in front.
fn in_codex(path: &str) -> String {
    path.strip_prefix("codex/").unwrap_or(path).to_owned()
}

fn plan(
    src: &impl ObjectSource,
    codex: &Path,
    old: Option<ObjectId>,
    new: ObjectId,
    index: Option<&Index>,
) -> Result<Plan, CheckoutError> {
    crate::checkout::plan::plan(src, &at(codex), old, new, index)
}

/// [`super::execute`] into `codex`, with drift and backups shown relative to it.
fn execute<S: ObjectSource + Sync>(
    src: &S,
    codex: &Path,
    state: &Path,
    plan: &Plan,
    record: &serde_json::Value,
    opts: &ExecOptions,
) -> Result<ExecReport, CheckoutError> {
    let mut report = super::execute(src, &at(codex), state, plan, record, opts)?;
    report.drift = report.drift.iter().map(|p| in_codex(p)).collect();
    report.backup_dir = report.backup_dir.map(|d| d.join("codex"));
    Ok(report)
}

fn recover(codex: &Path, state: &Path) -> Result<Option<serde_json::Value>, CheckoutError> {
    super::recover(&at(codex), state).map(|r| r.map(|r| r.record))
}

fn recover_with(
    codex: &Path,
    state: &Path,
    steps: &mut Steps,
) -> Result<Option<serde_json::Value>, CheckoutError> {
    super::recover_with(&at(codex), state, steps).map(|r| r.map(|r| r.record))
}

/// Stores the tree of roots holding `files` in the Codex root and returns its id.
fn tree_of(store: &Store, files: &Files) -> ObjectId {
    let files: Files = files
        .iter()
        .map(|(p, s)| (format!("codex/{p}"), s.clone()))
        .collect();
    let mut root = BTreeMap::new();
    for (path, spec) in &files {
        let parts: Vec<&str> = path.split('/').collect();
        let mut dir = &mut root;
        for part in &parts[..parts.len() - 1] {
            let node = dir
                .entry((*part).to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            let Node::Dir(sub) = node else {
                panic!("{path}: a file is in the way")
            };
            dir = sub;
        }
        let leaf = match spec {
            Spec::File(b) => Node::Leaf(EntryKind::File, b.clone()),
            Spec::Exec(b) => Node::Leaf(EntryKind::Executable, b.clone()),
            Spec::Link(t) => Node::Leaf(EntryKind::Symlink, t.as_bytes().to_vec()),
        };
        dir.insert(parts[parts.len() - 1].to_string(), leaf);
    }
    let mut w = store.write().unwrap();
    let (id, _) = write_dir(&mut w, &root);
    w.commit().unwrap();
    id
}

/// Every file and symlink below `dir` (the staging dir excluded), and every directory.
fn read_disk(dir: &Path) -> (Files, BTreeSet<String>) {
    fn walk(abs: &Path, rel: &str, files: &mut Files, dirs: &mut BTreeSet<String>) {
        for entry in fs::read_dir(abs).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if rel.is_empty() && name == STAGING_NAME {
                continue;
            }
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.file_type().is_symlink() {
                let t = fs::read_link(entry.path()).unwrap();
                files.insert(child, Spec::Link(t.to_str().unwrap().to_string()));
            } else if meta.is_dir() {
                walk(&entry.path(), &child, files, dirs);
                dirs.insert(child);
            } else {
                let bytes = fs::read(entry.path()).unwrap();
                let spec = if meta.mode() & 0o100 != 0 {
                    Spec::Exec(bytes)
                } else {
                    Spec::File(bytes)
                };
                files.insert(child, spec);
            }
        }
    }
    let mut files = Files::new();
    let mut dirs = BTreeSet::new();
    walk(dir, "", &mut files, &mut dirs);
    (files, dirs)
}

/// The directories a set of files implies.
fn dirs_of(files: &Files) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in files.keys() {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            out.insert(parts[..i].join("/"));
        }
    }
    out
}

struct Fx {
    tmp: tempfile::TempDir,
    store: Store,
    codex: PathBuf,
    state: PathBuf,
}

fn fx() -> Fx {
    fx_in(tempfile::tempdir().unwrap())
}

/// A fixture in memory (tmpfs) where there is one: the crash loops create some 150,000 files,
/// which takes ~30 s on a busy ext4 and ~4 s on tmpfs. What they test (the order of renames,
/// deletes and journal writes) does not depend on the filesystem; the other tests run on the
/// ordinary temp dir, where syncfs has real work to do.
fn fast_fx() -> Fx {
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    fx_in(tmp.unwrap())
}

fn fx_in(tmp: tempfile::TempDir) -> Fx {
    let store = Store::open_or_create(&tmp.path().join("store")).unwrap();
    let codex = tmp.path().join("codex");
    let state = tmp.path().join("state");
    fs::create_dir_all(&codex).unwrap();
    fs::create_dir_all(&state).unwrap();
    Fx {
        tmp,
        store,
        codex,
        state,
    }
}

impl Fx {
    fn apply_in(
        &self,
        codex: &Path,
        state: &Path,
        old: Option<ObjectId>,
        new: ObjectId,
        opts: &ExecOptions,
    ) -> Result<ExecReport, CheckoutError> {
        let r = self.store.read().unwrap();
        let p = plan(&r, codex, old, new, None)?;
        execute(
            &r,
            codex,
            state,
            &p,
            &serde_json::json!({ "new": new.to_string() }),
            opts,
        )
    }

    fn apply(&self, old: Option<ObjectId>, new: ObjectId) -> Result<ExecReport, CheckoutError> {
        self.apply_in(&self.codex, &self.state, old, new, &ExecOptions::default())
    }

    /// Paths that differ from `tree` on disk (what `verify` lists).
    fn drift(&self, tree: ObjectId) -> Vec<String> {
        let r = self.store.read().unwrap();
        plan(&r, &self.codex, Some(tree), tree, None)
            .unwrap()
            .differences()
            .iter()
            .map(|(p, _)| in_codex(p.as_str()))
            .collect()
    }

    fn assert_clean(&self) {
        assert_clean(&self.codex, &self.state);
    }
}

fn assert_clean(codex: &Path, state: &Path) {
    assert!(
        !codex.join(STAGING_NAME).exists(),
        "staging dir left behind"
    );
    assert!(!journal::path(state).exists(), "journal left behind");
    assert!(
        !state.join(crate::paths::state::STAGING_INTENT).exists(),
        "staging intent left behind"
    );
    let (disk, _) = read_disk(codex);
    assert!(
        !disk
            .keys()
            .any(|p| p.contains(crate::checkout::stage::STAGED_PREFIX)),
        "a staged file left behind"
    );
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn code(e: &CheckoutError) -> String {
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

#[test]
fn first_apply_writes_every_file_with_exec_bits_and_symlinks() {
    let fx = fx();
    let files: Files = [
        ("config.toml", file("model = \"o3\"\n")),
        ("bin/run.sh", Spec::Exec(b"#!/bin/sh\necho hi\n".to_vec())),
        ("skills/a/SKILL.md", file("# A\n")),
        ("skills/current", Spec::Link("a".into())),
        ("empty", file("")),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let t = tree_of(&fx.store, &files);
    let report = fx.apply(None, t).unwrap();
    assert_eq!(report.written, 5);
    assert_eq!(report.deleted, 0);
    assert!(report.drift.is_empty());
    assert_eq!(report.backup_dir, None);
    // 5 staged writes, sync, commit, 5 renames, journal removal.
    assert_eq!(report.steps, 5 + 1 + 1 + 5 + 1);
    let (disk, dirs) = read_disk(&fx.codex);
    assert_eq!(disk, files);
    assert_eq!(dirs, dirs_of(&files));
    assert_eq!(mode(&fx.codex.join("config.toml")), 0o644);
    assert_eq!(mode(&fx.codex.join("bin/run.sh")), 0o755);
    assert!(
        fs::symlink_metadata(fx.codex.join("skills/current"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fx.drift(t).is_empty());
    fx.assert_clean();
    // Files are copies, never links to store objects.
    assert_eq!(
        fs::metadata(fx.codex.join("config.toml")).unwrap().nlink(),
        1
    );
}

#[test]
fn identical_trees_plan_nothing_and_execute_does_nothing() {
    let fx = fx();
    let files: Files = [("a".to_string(), file("1")), ("d/b".to_string(), file("2"))].into();
    let t = tree_of(&fx.store, &files);
    fx.apply(None, t).unwrap();
    let r = fx.store.read().unwrap();
    let p = plan(&r, &fx.codex, Some(t), t, None).unwrap();
    assert!(p.is_empty());
    let report = execute(
        &r,
        &fx.codex,
        &fx.state,
        &p,
        &serde_json::Value::Null,
        &ExecOptions::default(),
    )
    .unwrap();
    assert_eq!(report, ExecReport::default());
    assert_eq!(read_disk(&fx.codex).0, files);
    fx.assert_clean();
}

#[test]
fn updates_and_deletes_touch_only_managed_paths() {
    let fx = fx();
    let old: Files = [
        ("a", file("a1")),
        ("d/b", file("b1")),
        ("d/c", file("c1")),
        ("x/y/z", file("z1")),
        ("p/q/r", file("r1")),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let t1 = tree_of(&fx.store, &old);
    fx.apply(None, t1).unwrap();
    fs::write(fx.codex.join("mine.txt"), "unmanaged").unwrap();
    fs::write(fx.codex.join("d/mine"), "unmanaged too").unwrap();
    fs::write(fx.codex.join("p/q/keep"), "keeps p/q alive").unwrap();

    let mut new = old.clone();
    new.insert("a".into(), Spec::Exec(b"a2".to_vec()));
    new.remove("d/b");
    new.remove("x/y/z");
    new.remove("p/q/r");
    new.insert("e/f".into(), file("f1"));
    let t2 = tree_of(&fx.store, &new);
    let report = fx.apply(Some(t1), t2).unwrap();
    assert_eq!((report.written, report.deleted), (2, 3));
    assert!(report.drift.is_empty(), "{:?}", report.drift);

    let (disk, dirs) = read_disk(&fx.codex);
    let mut expected = new.clone();
    expected.insert("mine.txt".into(), file("unmanaged"));
    expected.insert("d/mine".into(), file("unmanaged too"));
    expected.insert("p/q/keep".into(), file("keeps p/q alive"));
    assert_eq!(disk, expected);
    // The empty stale dirs are gone; the one holding an unmanaged file stays.
    assert!(!dirs.contains("x") && !dirs.contains("x/y"));
    assert!(dirs.contains("p/q"));
    assert!(fx.drift(t2).is_empty());
    fx.assert_clean();
}

#[test]
fn drifted_files_are_backed_up_and_reported() {
    let fx = fx();
    let old: Files = [
        ("edited", file("v1")),
        ("deleted-later", file("d1")),
        ("link", Spec::Link("target-1".into())),
        ("untouched", file("u1")),
        ("removed-locally", file("gone")),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let t1 = tree_of(&fx.store, &old);
    fx.apply(None, t1).unwrap();

    fs::write(fx.codex.join("edited"), "my local edit").unwrap();
    fs::write(fx.codex.join("deleted-later"), "my other edit").unwrap();
    fs::remove_file(fx.codex.join("link")).unwrap();
    symlink("my-target", fx.codex.join("link")).unwrap();
    fs::remove_file(fx.codex.join("removed-locally")).unwrap();
    let mut listed = fx.drift(t1);
    listed.sort();
    assert_eq!(
        listed,
        ["deleted-later", "edited", "link", "removed-locally"]
    );

    let mut new = old.clone();
    new.insert("edited".into(), file("v2"));
    new.remove("deleted-later");
    new.insert("link".into(), Spec::Link("target-2".into()));
    new.insert("removed-locally".into(), file("back"));
    let t2 = tree_of(&fx.store, &new);
    let report = fx.apply(Some(t1), t2).unwrap();
    // A file deleted locally is not drift for a put: nothing to back up.
    assert_eq!(report.drift, ["deleted-later", "edited", "link"]);
    let backup = report.backup_dir.clone().unwrap();
    assert!(backup.starts_with(fx.state.join("backups")));
    let (saved, _) = read_disk(&backup);
    let expected: Files = [
        ("deleted-later".to_string(), file("my other edit")),
        ("edited".to_string(), file("my local edit")),
        ("link".to_string(), Spec::Link("my-target".into())),
    ]
    .into();
    assert_eq!(saved, expected);
    assert_eq!(read_disk(&fx.codex).0, new);
    fx.assert_clean();
}

#[test]
fn unmanaged_files_in_the_way_of_a_first_apply_are_backed_up() {
    let fx = fx();
    fs::write(fx.codex.join("config.toml"), "hand-written").unwrap();
    fs::write(fx.codex.join("same"), "same").unwrap();
    let files: Files = [
        ("config.toml".to_string(), file("managed")),
        ("same".to_string(), file("same")),
    ]
    .into();
    let t = tree_of(&fx.store, &files);
    let report = fx.apply(None, t).unwrap();
    assert_eq!(report.drift, ["config.toml"]);
    let saved = fs::read_to_string(report.backup_dir.unwrap().join("config.toml")).unwrap();
    assert_eq!(saved, "hand-written");
    assert_eq!(read_disk(&fx.codex).0, files);
}

#[test]
fn read_only_targets_are_replaced() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("ro".to_string(), file("v1"))].into());
    fx.apply(None, t1).unwrap();
    fs::set_permissions(fx.codex.join("ro"), fs::Permissions::from_mode(0o444)).unwrap();
    let t2 = tree_of(&fx.store, &[("ro".to_string(), file("v2"))].into());
    let report = fx.apply(Some(t1), t2).unwrap();
    // Only the permission changed locally, which is not drift; a stricter mode is kept.
    assert!(report.drift.is_empty());
    assert_eq!(fs::read_to_string(fx.codex.join("ro")).unwrap(), "v2");
    assert_eq!(mode(&fx.codex.join("ro")), 0o444);
}

#[test]
fn directories_become_files_and_files_become_directories() {
    let fx = fx();
    let old: Files = [("a/x", file("x")), ("a/sub/y", file("y")), ("b", file("b"))]
        .into_iter()
        .map(|(p, s)| (p.to_string(), s))
        .collect();
    let t1 = tree_of(&fx.store, &old);
    fx.apply(None, t1).unwrap();
    let new: Files = [
        ("a", file("a is a file now")),
        ("b/z", file("b is a dir now")),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let t2 = tree_of(&fx.store, &new);
    fx.apply(Some(t1), t2).unwrap();
    let (disk, dirs) = read_disk(&fx.codex);
    assert_eq!(disk, new);
    assert_eq!(dirs, dirs_of(&new));
    fx.assert_clean();

    // And back again.
    fx.apply(Some(t2), t1).unwrap();
    assert_eq!(read_disk(&fx.codex).0, old);
}

#[test]
fn a_directory_with_unmanaged_files_is_backed_up_then_replaced_by_a_file() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a/x".to_string(), file("x"))].into());
    fx.apply(None, t1).unwrap();
    fs::write(fx.codex.join("a/mine"), "mine").unwrap();
    let t2 = tree_of(&fx.store, &[("a".to_string(), file("file"))].into());
    let report = fx.apply(Some(t1), t2).unwrap();
    assert_eq!(report.drift, ["a"]);
    let backup = report.backup_dir.unwrap();
    assert_eq!(fs::read_to_string(backup.join("a/mine")).unwrap(), "mine");
    assert_eq!(read_disk(&fx.codex).0["a"], file("file"));
    fx.assert_clean();
}

#[test]
fn an_unmanaged_file_where_a_directory_must_go_is_backed_up_then_replaced() {
    let fx = fx();
    fs::write(fx.codex.join("skills"), "a file").unwrap();
    let t = tree_of(&fx.store, &[("skills/x".to_string(), file("x"))].into());
    let report = fx.apply(None, t).unwrap();
    assert_eq!(report.drift, ["skills"]);
    let backup = report.backup_dir.unwrap();
    assert_eq!(fs::read_to_string(backup.join("skills")).unwrap(), "a file");
    assert_eq!(read_disk(&fx.codex).0["skills/x"], file("x"));
    fx.assert_clean();
}

#[test]
fn a_symlinked_directory_inside_the_codex_dir_is_never_written_through() {
    let fx = fx();
    let outside = fx.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    symlink(&outside, fx.codex.join("skills")).unwrap();
    let t = tree_of(
        &fx.store,
        &[
            ("skills/x".to_string(), file("x")),
            ("ok".to_string(), file("ok")),
        ]
        .into(),
    );
    let report = fx.apply(None, t).unwrap();
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the codex dir"
    );
    // The link itself was backed up (as a link) and replaced by a real folder.
    assert_eq!(report.drift, ["skills"]);
    let saved = report.backup_dir.unwrap().join("skills");
    assert_eq!(fs::read_link(saved).unwrap(), outside);
    assert_eq!(read_disk(&fx.codex).0["skills/x"], file("x"));
    assert!(fx.codex.join("ok").exists());
    fx.assert_clean();
}

#[test]
fn a_symlinked_directory_inside_the_codex_dir_is_never_deleted_through() {
    // A managed directory swapped for a symlink to elsewhere.
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("s/x".to_string(), file("x"))].into());
    fx.apply(None, t1).unwrap();
    let outside = fx.tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("x"), "x").unwrap();
    fs::remove_dir_all(fx.codex.join("s")).unwrap();
    symlink(&outside, fx.codex.join("s")).unwrap();
    let t2 = tree_of(&fx.store, &[("other".to_string(), file("o"))].into());
    fx.apply(Some(t1), t2).unwrap();
    assert!(outside.join("x").exists(), "deleted through the link");
    // The tree has nothing at `s` any more: the follower's link is its own.
    assert!(
        fs::symlink_metadata(fx.codex.join("s"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(fx.codex.join("other").exists());
    fx.assert_clean();
}

#[test]
fn an_unfinished_apply_blocks_the_next_until_recovered() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a".to_string(), file("1"))].into());
    let t2 = tree_of(&fx.store, &[("a".to_string(), file("2"))].into());
    fx.apply(None, t1).unwrap();
    // Steps: stage 0, sync 1, commit 2, rename 3: crash right after the commit.
    let opts = ExecOptions {
        crash_before_step: Some(3),
    };
    let err = fx
        .apply_in(&fx.codex, &fx.state, Some(t1), t2, &opts)
        .unwrap_err();
    assert!(matches!(err, CheckoutError::InjectedCrash { step: 3 }));
    let err = fx.apply(Some(t1), t2).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::pending");
    let record = recover(&fx.codex, &fx.state).unwrap();
    assert_eq!(record, Some(serde_json::json!({ "new": t2.to_string() })));
    assert_eq!(fs::read_to_string(fx.codex.join("a")).unwrap(), "2");
    fx.assert_clean();
    assert_eq!(recover(&fx.codex, &fx.state).unwrap(), None);
}

#[test]
fn recovery_refuses_a_journal_of_another_codex_dir() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a".to_string(), file("1"))].into());
    let opts = ExecOptions {
        crash_before_step: Some(2 + 1),
    };
    fx.apply_in(&fx.codex, &fx.state, None, t1, &opts)
        .unwrap_err();
    let elsewhere = fx.tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let err = recover(&elsewhere, &fx.state).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::journal_other_dir");
    assert!(recover(&fx.codex, &fx.state).unwrap().is_some());
}

#[path = "tests_crash.rs"]
mod crash;

#[test]
fn a_failure_before_the_commit_leaves_the_codex_dir_and_no_staging() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a".to_string(), file("1"))].into());
    fx.apply(None, t1).unwrap();
    // A tree naming a blob the store lacks: staging fails on it.
    let missing = ObjectId::from_bytes([7; 32]);
    let entries = vec![
        TreeEntry {
            name: EntryName::new("a").unwrap(),
            kind: EntryKind::File,
            id: missing,
            size: 1,
            private: false,
            chunked: false,
        },
        TreeEntry {
            name: EntryName::new("b").unwrap(),
            kind: EntryKind::File,
            id: missing,
            size: 1,
            private: false,
            chunked: false,
        },
    ];
    let mut w = fx.store.write().unwrap();
    let codex = w.put_tree(&Tree::new(entries).unwrap()).unwrap();
    let t2 = crate::store::roots::wrap_codex_tree(&mut w, codex).unwrap();
    w.commit().unwrap();
    let err = fx.apply(Some(t1), t2).unwrap_err();
    assert!(
        matches!(err, CheckoutError::Store(StoreError::MissingObject { .. })),
        "{err:?}"
    );
    assert_eq!(
        read_disk(&fx.codex).0,
        [("a".to_string(), file("1"))].into()
    );
    fx.assert_clean();
}

/// An apply an older codexport committed (journal version 3: one codex dir, paths relative
/// to it) is finished by this one, under the Codex root, and said to be of that layout.
#[test]
fn a_journal_written_before_roots_is_finished_in_the_codex_dir() {
    let fx = fx();
    // Staged files are named by their op's index (the delete is ops[0]).
    fs::write(fx.codex.join(".codexport-staged-1"), "new").unwrap();
    fs::create_dir_all(fx.codex.join("skills/a")).unwrap();
    fs::write(fx.codex.join("skills/a/.codexport-staged-2"), "skill").unwrap();
    fs::write(fx.codex.join("gone"), "old").unwrap();
    let id = |b: &str| ObjectId::from(blake3::hash(b.as_bytes())).to_string();
    let journal = serde_json::json!({
        "version": 3,
        "codex_dir": fx.codex,
        "staging": fx.codex,
        "ops": [
            {"op": "delete", "path": "gone", "old": ["file", id("old")], "backup": false, "dir": false},
            {"op": "put", "path": "AGENTS.md", "kind": "file", "id": id("new"), "old": null,
             "private": false, "mode": 420, "why": "added", "backup": false},
            {"op": "put", "path": "skills/a/SKILL.md", "kind": "file", "id": id("skill"),
             "old": null, "private": false, "mode": 420, "why": "added", "backup": false},
        ],
        "stale_dirs": [],
        "new": id("tree"),
        "record": {"seq": 7},
        "placement": {"staged_in": {"1": "", "2": "skills/a"}, "created": []},
    });
    fs::write(
        journal::path(&fx.state),
        serde_json::to_vec(&journal).unwrap(),
    )
    .unwrap();
    let done = super::recover(&at(&fx.codex), &fx.state)
        .unwrap()
        .expect("rolled forward");
    assert!(done.legacy);
    assert_eq!(done.record, serde_json::json!({"seq": 7}));
    assert_eq!(
        fs::read_to_string(fx.codex.join("AGENTS.md")).unwrap(),
        "new"
    );
    assert_eq!(
        fs::read_to_string(fx.codex.join("skills/a/SKILL.md")).unwrap(),
        "skill"
    );
    assert!(!fx.codex.join("gone").exists());
    fx.assert_clean();
}
