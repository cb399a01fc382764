//! Crash loops: a crash at every step of an apply, and during recovery, leaves each
//! managed path old or new, and recovery finishes or undoes the apply.

use super::*;
use std::os::unix::fs::symlink;

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
        let (tree_old, new) = crash_trees();
        let t_old = tree_of(&fx.store, &tree_old);
        let t_new = tree_of(&fx.store, &new);
        // Every run starts from a copy of one applied old tree (cheaper than applying anew).
        let template = fx.tmp.path().join("template");
        let state = fx.tmp.path().join("template-state");
        fx.apply_in(&template, &state, None, t_old, &ExecOptions::default())
            .unwrap();
        fs::write(template.join(UNMANAGED.0), UNMANAGED.1).unwrap();
        // Local drift the converging apply repairs: a file deleted, one edited, a whole
        // managed folder removed. "Old" is what the disk holds, not the old tree.
        fs::remove_file(template.join("d00/f01")).unwrap();
        fs::write(template.join("d00/f02"), "edited here").unwrap();
        fs::remove_dir_all(template.join("d02")).unwrap();
        let (mut old, _) = read_disk(&template);
        old.remove(UNMANAGED.0);
        // Planned against the template; every copy of it holds the same.
        let plan = plan(
            &fx.store.read().unwrap(),
            &template,
            Some(t_old),
            t_new,
            None,
        )
        .unwrap();
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
    let counts = c.plan.counts();
    assert!(
        counts.added > 10 && counts.updated > 50 && counts.deleted > 40 && counts.restored > 10,
        "{counts:?}"
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
