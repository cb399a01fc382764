//! Tests of the executor: real files in temp dirs, trees built in a temp store.

use super::*;
use crate::checkout::plan::plan;
use crate::object::{EntryName, ObjectId, ObjectKind, Tree, TreeEntry};
use crate::store::{Store, Writer};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

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
        });
    }
    let tree = Tree::new(entries).unwrap();
    (w.put_tree(&tree).unwrap(), tree.size())
}

/// Stores the tree holding `files` and returns its id.
fn tree_of(store: &Store, files: &Files) -> ObjectId {
    let mut root = BTreeMap::new();
    for (path, spec) in files {
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
        let p = plan(&r, old, new).unwrap();
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

    fn drift(&self, tree: ObjectId) -> Vec<String> {
        let r = self.store.read().unwrap();
        drift(&r, &self.codex, tree)
            .unwrap()
            .iter()
            .map(ToString::to_string)
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
    let p = plan(&r, Some(t), t).unwrap();
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
    // Only the permission changed locally, which is not drift.
    assert!(report.drift.is_empty());
    assert_eq!(fs::read_to_string(fx.codex.join("ro")).unwrap(), "v2");
    assert_eq!(mode(&fx.codex.join("ro")), 0o644);
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
fn a_directory_with_unmanaged_files_is_not_replaced_by_a_file() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a/x".to_string(), file("x"))].into());
    fx.apply(None, t1).unwrap();
    fs::write(fx.codex.join("a/mine"), "mine").unwrap();
    let t2 = tree_of(&fx.store, &[("a".to_string(), file("file"))].into());
    let err = fx.apply(Some(t1), t2).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::dir_not_empty");
    // Refused before anything was touched.
    let (disk, _) = read_disk(&fx.codex);
    assert_eq!(disk.len(), 2);
    assert_eq!(disk["a/x"], file("x"));
    fx.assert_clean();
}

#[test]
fn an_unmanaged_file_where_a_directory_must_go_is_refused() {
    let fx = fx();
    fs::write(fx.codex.join("skills"), "a file").unwrap();
    let t = tree_of(&fx.store, &[("skills/x".to_string(), file("x"))].into());
    let err = fx.apply(None, t).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::in_the_way");
    assert_eq!(
        fs::read_to_string(fx.codex.join("skills")).unwrap(),
        "a file"
    );
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
    let err = fx.apply(None, t).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::escape");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the codex dir"
    );
    assert!(!fx.codex.join("ok").exists());
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
    let err = fx.apply(Some(t1), t2).unwrap_err();
    assert_eq!(code(&err), "codexport::checkout::escape");
    assert!(outside.join("x").exists());
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

/// The old and new trees of the crash test: ~200 files with updates, kind changes, deletes,
/// a directory turned into a file and a file turned into a directory.
fn crash_trees() -> (Files, Files) {
    let mut old = Files::new();
    for d in 0..10 {
        for f in 0..20 {
            let path = format!("d{d:02}/f{f:02}");
            let n = d * 20 + f;
            let spec = if n % 13 == 0 {
                Spec::Link(format!("../t{n}"))
            } else if n % 7 == 0 {
                Spec::Exec(format!("#!/bin/sh\n# {n}\n").into_bytes())
            } else {
                Spec::File(format!("old content {n}\n").repeat(n % 5 + 1).into_bytes())
            };
            old.insert(path, spec);
        }
    }
    old.insert("top".into(), file("top is a file"));
    let mut new = old.clone();
    for d in 0..8 {
        for f in 0..20 {
            let n = d * 20 + f;
            let path = format!("d{d:02}/f{f:02}");
            if n % 3 == 0 {
                new.insert(path, Spec::File(format!("new content {n}\n").into_bytes()));
            } else if n % 11 == 0 {
                if let Some(Spec::File(b)) = old.get(&path) {
                    new.insert(path, Spec::Exec(b.clone()));
                }
            } else if n % 17 == 0 {
                new.remove(&path);
            }
        }
    }
    new.retain(|p, _| !p.starts_with("d08/") && !p.starts_with("d09/"));
    new.insert("d08".into(), file("d08 is a file now"));
    new.remove("top");
    new.insert("top/inner".into(), file("top is a directory now"));
    for f in 0..10 {
        new.insert(format!("d10/n{f}"), file(&format!("added {f}")));
    }
    (old, new)
}

/// Copies a directory tree, keeping symlinks as symlinks and permission bits.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if meta.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The crash test's trees in a store, with one applied copy of the old tree to start from.
struct Crash {
    fx: Fx,
    old: Files,
    new: Files,
    t_old: ObjectId,
    t_new: ObjectId,
    plan: Plan,
    template: PathBuf,
}

/// A file no tree has, inside a managed directory: it must survive every run.
const UNMANAGED: (&str, &str) = ("d00/mine", "not codexport's");

impl Crash {
    fn new() -> Self {
        let fx = fast_fx();
        let (old, new) = crash_trees();
        let t_old = tree_of(&fx.store, &old);
        let t_new = tree_of(&fx.store, &new);
        let plan = plan(&fx.store.read().unwrap(), Some(t_old), t_new).unwrap();
        // Every run starts from a copy of one applied old tree (cheaper than applying anew).
        let template = fx.tmp.path().join("template");
        let state = fx.tmp.path().join("template-state");
        fx.apply_in(&template, &state, None, t_old, &ExecOptions::default())
            .unwrap();
        fs::write(template.join(UNMANAGED.0), UNMANAGED.1).unwrap();
        Self {
            fx,
            old,
            new,
            t_old,
            t_new,
            plan,
            template,
        }
    }

    /// A fresh codex dir holding the old tree, and an empty state dir.
    fn setup(&self, run: &str) -> (PathBuf, PathBuf) {
        let codex = self.fx.tmp.path().join(format!("codex-{run}"));
        let state = self.fx.tmp.path().join(format!("state-{run}"));
        copy_tree(&self.template, &codex);
        fs::create_dir_all(&state).unwrap();
        (codex, state)
    }

    fn run(
        &self,
        codex: &Path,
        state: &Path,
        crash: Option<usize>,
    ) -> Result<ExecReport, CheckoutError> {
        let opts = ExecOptions {
            crash_before_step: crash,
        };
        self.fx
            .apply_in(codex, state, Some(self.t_old), self.t_new, &opts)
    }

    fn puts(&self) -> usize {
        self.plan
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Put { .. }))
            .count()
    }

    /// Asserts the codex dir holds exactly `want` (plus the unmanaged file).
    fn exactly(codex: &Path, want: &Files, what: &str) {
        let (mut disk, dirs) = read_disk(codex);
        let unmanaged = disk.remove(UNMANAGED.0);
        assert_eq!(
            unmanaged,
            Some(file(UNMANAGED.1)),
            "{what}: unmanaged file lost"
        );
        assert!(disk == *want, "{what}: not exactly the expected tree");
        assert_eq!(dirs, dirs_of(want), "{what}: directories differ");
    }

    /// Asserts every managed path holds its old content or its new, never anything else.
    fn old_or_new(&self, codex: &Path, what: &str) {
        let (disk, _) = read_disk(codex);
        for path in self.old.keys().chain(self.new.keys()) {
            let here = disk.get(path);
            assert!(
                here == self.old.get(path) || here == self.new.get(path),
                "{what}: {path} is {here:?}, neither old nor new"
            );
        }
    }
}

#[test]
fn a_crash_at_any_step_leaves_old_or_new_and_recovery_finishes_or_undoes() {
    let c = Crash::new();
    let (added, updated, deleted) = c.plan.counts();
    assert!(
        added > 10 && updated > 50 && deleted > 40,
        "{:?}",
        c.plan.counts()
    );
    assert!(!c.plan.stale_dirs.is_empty());
    let commit_step = c.puts() + 1;

    // The full run, for the step count: stages, sync, commit, ops, stale dirs, journal removal.
    let (codex, state) = c.setup("full");
    let total = c.run(&codex, &state, None).unwrap().steps;
    Crash::exactly(&codex, &c.new, "uninterrupted");
    assert_eq!(
        total,
        c.puts() + 2 + c.plan.ops.len() + c.plan.stale_dirs.len() + 1
    );

    for k in 0..=total {
        let (codex, state) = c.setup(&k.to_string());
        let result = c.run(&codex, &state, Some(k));
        if k == total {
            result.unwrap();
        } else {
            assert!(
                matches!(result, Err(CheckoutError::InjectedCrash { step }) if step == k),
                "step {k}"
            );
        }
        c.old_or_new(&codex, &format!("step {k}, crashed"));
        let committed = journal::path(&state).exists();
        assert_eq!(
            committed,
            k > commit_step && k < total,
            "step {k}: journal presence"
        );
        let record = recover(&codex, &state).unwrap();
        assert_eq!(record.is_some(), committed, "step {k}");
        if committed || k == total {
            Crash::exactly(&codex, &c.new, &format!("step {k}, rolled forward"));
        } else {
            Crash::exactly(&codex, &c.old, &format!("step {k}, undone"));
        }
        assert_clean(&codex, &state);
        fs::remove_dir_all(&codex).unwrap();
        fs::remove_dir_all(&state).unwrap();
    }
}

#[test]
fn a_crash_during_recovery_is_recovered_too() {
    let c = Crash::new();
    // Recovery's steps: every delete, stale dir and put, then the journal removal.
    let recovery_steps = c.plan.ops.len() + c.plan.stale_dirs.len() + 1;
    for j in (0..recovery_steps).step_by(7).chain([recovery_steps - 1]) {
        let (codex, state) = c.setup(&format!("recovery-{j}"));
        // Crash right after the commit, then crash the recovery at step j.
        c.run(&codex, &state, Some(c.puts() + 2)).unwrap_err();
        let crashed = recover_with(&codex, &state, &mut Steps::new(Some(j), None));
        assert!(
            matches!(crashed, Err(CheckoutError::InjectedCrash { step }) if step == j),
            "recovery step {j}"
        );
        c.old_or_new(&codex, &format!("recovery step {j}, crashed"));
        assert!(recover(&codex, &state).unwrap().is_some());
        Crash::exactly(&codex, &c.new, &format!("recovery step {j}"));
        assert_clean(&codex, &state);
    }
}

#[test]
fn a_failure_before_the_commit_leaves_the_codex_dir_and_no_staging() {
    let fx = fx();
    let t1 = tree_of(&fx.store, &[("a".to_string(), file("1"))].into());
    fx.apply(None, t1).unwrap();
    // A tree naming a blob the store lacks: staging fails on it.
    let missing = ObjectId([7; 32]);
    let entries = vec![
        TreeEntry {
            name: EntryName::new("a").unwrap(),
            kind: EntryKind::File,
            id: missing,
            size: 1,
        },
        TreeEntry {
            name: EntryName::new("b").unwrap(),
            kind: EntryKind::File,
            id: missing,
            size: 1,
        },
    ];
    let mut w = fx.store.write().unwrap();
    let t2 = w.put_tree(&Tree::new(entries).unwrap()).unwrap();
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
