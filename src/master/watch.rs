//! The master's file watcher: notices changes to the selected parts of `~/.codex` and asks
//! for a new snapshot once things have settled.
//!
//! Codex rewrites its runtime state (`sessions/`, `history.jsonl`, databases) all the time
//! while it runs; those paths are not selected, so their events are dropped here instead of
//! waking the snapshotter. Relevant events are debounced: the callback runs once after a
//! quiet period, on the watcher's own thread, and events arriving while it runs cause one
//! more call after it returns.

use crate::snapshot::select::is_selected;
use miette::Diagnostic;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};
use thiserror::Error;

/// A burst of changes that never goes quiet (a tool rewriting a selected file in a loop)
/// still gets a call after this many debounce periods, so snapshots are not starved.
const MAX_DELAY_FACTOR: u32 = 10;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum WatchError {
    #[error("cannot watch {} for changes: {source}", path.display())]
    #[diagnostic(
        code(codexport::watch::start),
        help(
            "check that the directory exists and is readable; on Linux, if the inotify watch limit was reached, raise it with `sysctl fs.inotify.max_user_watches=524288`"
        )
    )]
    Start {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("cannot start the file watcher thread: {0}")]
    #[diagnostic(
        code(codexport::watch::thread),
        help("the system is out of threads or memory; free some and retry")
    )]
    Thread(std::io::Error),
}

/// A running watcher. Dropping it stops watching; a callback already running finishes, and
/// no new one starts.
pub struct Watcher {
    /// Kept for its `Drop`, which ends the OS-level watch and the event thread.
    _inner: RecommendedWatcher,
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Full means a wake-up is already pending, which does the same.
        let _ = self.wake.try_send(());
    }
}

/// A place watched, and the relative path in the codex dir its events stand for.
#[derive(Debug, Clone)]
struct Root {
    path: PathBuf,
    /// Empty for the codex dir itself; the link's name for a followed link's target.
    name: String,
}

/// Watches `codex_dir` recursively (so top-level entries created later are seen too), and
/// the targets of `followed` top-level links (`(target, name)`: a folder recursively, a
/// file through its folder), and calls `on_change` on a dedicated thread after `debounce`
/// of quiet following relevant changes. Changes are relevant when their path is selected
/// for snapshots (every prefix of it passes [`is_selected`]), or when the OS reports that
/// events were lost.
pub fn watch(
    codex_dir: &Path,
    followed: &[(PathBuf, String)],
    debounce: Duration,
    on_change: impl FnMut() + Send + 'static,
) -> Result<Watcher, WatchError> {
    // Capacity 1: while the callback runs, any number of events coalesce into one pending
    // wake-up, which is all the "call again" needs.
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let mut roots = vec![Root {
        path: codex_dir.to_path_buf(),
        name: String::new(),
    }];
    // Some backends (FSEvents) report canonical paths; accept both spellings.
    if let Ok(canonical) = codex_dir.canonicalize() {
        if canonical != codex_dir {
            roots.push(Root {
                path: canonical,
                name: String::new(),
            });
        }
    }
    roots.extend(followed.iter().map(|(target, name)| Root {
        path: target.clone(),
        name: name.clone(),
    }));
    let watched = roots.clone();
    let events = tx.clone();
    let start_err = |source| WatchError::Start {
        path: codex_dir.to_path_buf(),
        source,
    };
    let mut inner = notify::recommended_watcher(move |res: notify::Result<Event>| {
        // An error may mean lost events: snapshot again to be safe.
        if res.as_ref().map_or(true, |ev| is_relevant(ev, &roots)) {
            let _ = events.try_send(());
        }
    })
    .map_err(start_err)?;
    inner
        .watch(codex_dir, RecursiveMode::Recursive)
        .map_err(start_err)?;
    for root in watched.iter().filter(|r| !r.name.is_empty()) {
        // A file is watched through its folder: editors replace files by renaming.
        let (place, mode) = if root.path.is_dir() {
            (root.path.as_path(), RecursiveMode::Recursive)
        } else {
            let parent = root.path.parent().unwrap_or(&root.path);
            (parent, RecursiveMode::NonRecursive)
        };
        inner
            .watch(place, mode)
            .map_err(|source| WatchError::Start {
                path: place.to_path_buf(),
                source,
            })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("codexport-watch".into())
        .spawn(move || debounce_loop(&rx, debounce, &worker_stop, on_change))
        .map_err(WatchError::Thread)?;
    Ok(Watcher {
        _inner: inner,
        stop,
        wake: tx,
    })
}

/// Waits for a change, then for `debounce` of quiet (at most `MAX_DELAY_FACTOR` periods),
/// then calls `on_change`; repeats until stopped.
fn debounce_loop(
    rx: &Receiver<()>,
    debounce: Duration,
    stop: &AtomicBool,
    mut on_change: impl FnMut(),
) {
    let cap = debounce.saturating_mul(MAX_DELAY_FACTOR);
    loop {
        if rx.recv().is_err() || stop.load(Ordering::SeqCst) {
            return;
        }
        let first = Instant::now();
        loop {
            let left = cap.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(debounce.min(left)) {
                Ok(()) if stop.load(Ordering::SeqCst) => return,
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        on_change();
    }
}

/// Whether an event touches something a snapshot would take.
fn is_relevant(event: &Event, roots: &[Root]) -> bool {
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        // Reads (Codex loading its config) change nothing; a write being closed does.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    event.paths.iter().any(|p| path_is_relevant(p, roots))
}

/// Whether `path` lies under a root and is selected: every prefix of its relative path must
/// be selected, exactly as the snapshot walk decides. The root itself (deleted or moved)
/// counts as relevant.
fn path_is_relevant(path: &Path, roots: &[Root]) -> bool {
    let Some((root, rel)) = roots
        .iter()
        .find_map(|r| path.strip_prefix(&r.path).ok().map(|rel| (r, rel)))
    else {
        return false;
    };
    let mut prefix = root.name.clone();
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return false;
        };
        let Some(name) = name.to_str() else {
            // Not UTF-8: not a name the selection (or the snapshot) takes.
            return false;
        };
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(name);
        if !is_selected(&prefix) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind};
    use std::fs;
    use std::sync::mpsc::Receiver;

    const DEBOUNCE: Duration = Duration::from_millis(100);
    const WAIT: Duration = Duration::from_secs(5);

    fn started(dir: &Path) -> (Watcher, Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let w = watch(dir, &[], DEBOUNCE, move || {
            let _ = tx.send(());
        })
        .unwrap();
        (w, rx)
    }

    /// Waits for a call, then for the calls of the same burst to end.
    fn expect_call(rx: &Receiver<()>, what: &str) {
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no call after {what}"));
        while rx.recv_timeout(Duration::from_millis(400)).is_ok() {}
    }

    #[test]
    fn create_modify_delete_in_selected_roots() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("skills")).unwrap();
        fs::write(dir.path().join("config.toml"), "a = 1\n").unwrap();
        let (_w, rx) = started(dir.path());

        fs::write(dir.path().join("skills/new.md"), "x").unwrap();
        expect_call(&rx, "create");
        fs::write(dir.path().join("config.toml"), "a = 2\n").unwrap();
        expect_call(&rx, "modify");
        fs::remove_file(dir.path().join("skills/new.md")).unwrap();
        expect_call(&rx, "delete");
        fs::create_dir_all(dir.path().join("skills/deep/er")).unwrap();
        expect_call(&rx, "mkdir");
        fs::write(dir.path().join("skills/deep/er/SKILL.md"), "y").unwrap();
        expect_call(&rx, "write in a new subdirectory");
    }

    #[test]
    fn unselected_changes_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("skills/.system")).unwrap();
        let (_w, rx) = started(dir.path());
        fs::create_dir_all(dir.path().join("sessions/2026/01")).unwrap();
        for i in 0..5 {
            fs::write(
                dir.path().join(format!("sessions/2026/01/s{i}.jsonl")),
                "{}",
            )
            .unwrap();
            fs::write(dir.path().join("history.jsonl"), format!("{i}\n")).unwrap();
            fs::write(dir.path().join("state_5.sqlite"), [i]).unwrap();
            fs::write(dir.path().join("skills/.system/bundled.md"), [i]).unwrap();
        }
        assert!(
            rx.recv_timeout(Duration::from_secs(1)).is_err(),
            "called for unselected paths"
        );
    }

    #[test]
    fn root_created_after_start_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        let (_w, rx) = started(dir.path());
        fs::create_dir(dir.path().join("prompts")).unwrap();
        expect_call(&rx, "creating prompts/");
        fs::write(dir.path().join("prompts/review.md"), "review").unwrap();
        expect_call(&rx, "writing prompts/review.md");
    }

    #[test]
    fn change_during_slow_callback_calls_again() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut calls = 0;
        let _w = watch(dir.path(), &[], DEBOUNCE, move || {
            calls += 1;
            let _ = tx.send(calls);
            if calls == 1 {
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
        .unwrap();
        fs::write(dir.path().join("AGENTS.md"), "one").unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1);
        // The first call is sleeping now.
        fs::write(dir.path().join("AGENTS.md"), "two").unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 2);
    }

    #[test]
    fn dropping_stops_calls() {
        let dir = tempfile::tempdir().unwrap();
        let (w, rx) = started(dir.path());
        fs::write(dir.path().join("AGENTS.md"), "one").unwrap();
        drop(w);
        fs::write(dir.path().join("AGENTS.md"), "two").unwrap();
        // The first write may have been seen before the drop, but no call starts after it.
        assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn watching_a_missing_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        match watch(&missing, &[], DEBOUNCE, || {}) {
            Err(WatchError::Start { path, .. }) => assert_eq!(path, missing),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("watching a missing directory succeeded"),
        }
    }

    #[test]
    fn relevance_rules() {
        let root = PathBuf::from("/h/.codex");
        let roots = [
            Root {
                path: root.clone(),
                name: String::new(),
            },
            // Stow-style links: a followed folder, and a followed file.
            Root {
                path: PathBuf::from("/dots/codex-skills"),
                name: "skills".into(),
            },
            Root {
                path: PathBuf::from("/dots/AGENTS.md"),
                name: "AGENTS.md".into(),
            },
        ];
        let ev = |kind, p: &str| Event::new(kind).add_path(root.join(p));
        let create = EventKind::Create(CreateKind::File);
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(is_relevant(&ev(create, "config.toml"), &roots));
        assert!(is_relevant(&ev(modify, "skills/a/cache/x"), &roots));
        assert!(is_relevant(&ev(modify, ""), &roots));
        assert!(!is_relevant(&ev(modify, "sessions/x.jsonl"), &roots));
        assert!(!is_relevant(&ev(modify, "history.jsonl"), &roots));
        assert!(!is_relevant(&ev(modify, "skills/.system/x"), &roots));
        assert!(!is_relevant(&ev(modify, "unknown.txt"), &roots));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!is_relevant(&ev(open, "config.toml"), &roots));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(is_relevant(&ev(closed, "config.toml"), &roots));
        let outside = Event::new(modify).add_path(PathBuf::from("/elsewhere/config.toml"));
        assert!(!is_relevant(&outside, &roots));
        let at = |p: &str| Event::new(modify).add_path(PathBuf::from(p));
        assert!(is_relevant(&at("/dots/codex-skills/a/SKILL.md"), &roots));
        assert!(!is_relevant(&at("/dots/codex-skills/.system/x"), &roots));
        assert!(is_relevant(&at("/dots/AGENTS.md"), &roots));
        assert!(!is_relevant(&at("/dots/README.md"), &roots));
        let rescan = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(is_relevant(&rescan, &roots));
    }
}
