//! The master's file watcher: notices changes to the selected parts of every root
//! (`~/.codex`, `~/.agents/skills`) and to the master's settings, and asks for a new snapshot
//! once things have settled.
//!
//! Codex rewrites its runtime state (`sessions/`, `history.jsonl`, databases) all the time
//! while it runs; those paths are not selected, so their events are dropped here instead of
//! waking the snapshotter. Relevant events are debounced: the callback runs once after a
//! quiet period, on the watcher's own thread, and events arriving while it runs cause one
//! more call after it returns. A root that does not exist yet (`~/.agents/skills` before the
//! first skill) is watched through its nearest existing parent and watched itself as soon as
//! it appears, before the snapshot that takes it.

use crate::roots::Root;
use crate::snapshot::select::{Extra, Selection};
use miette::Diagnostic;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
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
    _inner: Arc<Mutex<RecommendedWatcher>>,
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

/// A place to watch: a root's folder, or the target of one of its followed top-level links.
#[derive(Debug, Clone)]
pub struct Place {
    pub path: PathBuf,
    pub root: &'static Root,
    /// Empty for the root's folder itself; the link's name for a followed link's target.
    pub name: String,
}

/// What decides whether an event is relevant: the places, the roots not there yet, the
/// settings file, and the master's extra entries (as the last snapshot read them).
struct Relevance {
    places: Vec<Place>,
    /// Root folders that do not exist yet: an event on them or on a folder above them counts.
    pending: Vec<PathBuf>,
    settings: Option<PathBuf>,
    extra: Arc<RwLock<Extra>>,
}

/// Watches every place (a root's folder recursively, so top-level entries created later are
/// seen too; a followed link's target folder recursively, a file through its folder), and
/// the settings file, and calls `on_change` on a dedicated thread after `debounce` of quiet
/// following relevant changes. Changes are relevant when their path is selected for
/// snapshots (every prefix of it passes its root's selection, with the master's `extra`
/// entries), when they touch the settings file, or when the OS reports that events were
/// lost. A required root that is missing fails; a missing optional one is waited for.
pub fn watch(
    places: &[Place],
    settings: Option<&Path>,
    extra: Arc<RwLock<Extra>>,
    debounce: Duration,
    mut on_change: impl FnMut() + Send + 'static,
) -> Result<Watcher, WatchError> {
    // Capacity 1: while the callback runs, any number of events coalesce into one pending
    // wake-up, which is all the "call again" needs.
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let mut spots = places.to_vec();
    // Some backends (FSEvents) report canonical paths; accept both spellings.
    for p in places {
        if let Ok(canonical) = p.path.canonicalize() {
            if canonical != p.path {
                spots.push(Place {
                    path: canonical,
                    ..p.clone()
                });
            }
        }
    }
    let state = Arc::new(Mutex::new(Relevance {
        places: spots,
        pending: Vec::new(),
        settings: settings.map(Path::to_path_buf),
        extra,
    }));
    let events = tx.clone();
    let seen = Arc::clone(&state);
    let inner = notify::recommended_watcher(move |res: notify::Result<Event>| {
        // An error may mean lost events: snapshot again to be safe.
        let relevant = match &res {
            Err(_) => true,
            Ok(ev) => seen.lock().is_ok_and(|s| is_relevant(ev, &s)),
        };
        if relevant {
            let _ = events.try_send(());
        }
    })
    .map_err(|source| WatchError::Start {
        path: places.first().map(|p| p.path.clone()).unwrap_or_default(),
        source,
    })?;
    let inner = Arc::new(Mutex::new(inner));
    {
        // The relevance state is never locked while the OS watcher is asked for something:
        // its event thread locks it to judge events, and may be waiting on us.
        let mut w = inner.lock().expect("not shared yet");
        let mut pending = Vec::new();
        for place in places {
            let start_err = |source| WatchError::Start {
                path: place.path.clone(),
                source,
            };
            if place.name.is_empty() {
                if place.path.is_dir() || place.root.required {
                    w.watch(&place.path, RecursiveMode::Recursive)
                        .map_err(start_err)?;
                } else {
                    pending.push(place.path.clone());
                }
                continue;
            }
            // A file is watched through its folder: editors replace files by renaming.
            let (at, mode) = if place.path.is_dir() {
                (place.path.as_path(), RecursiveMode::Recursive)
            } else {
                let parent = place.path.parent().unwrap_or(&place.path);
                (parent, RecursiveMode::NonRecursive)
            };
            w.watch(at, mode).map_err(|source| WatchError::Start {
                path: at.to_path_buf(),
                source,
            })?;
        }
        if let Some(file) = settings {
            let folder = file.parent().unwrap_or(file);
            w.watch(folder, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError::Start {
                    path: folder.to_path_buf(),
                    source,
                })?;
        }
        if let Ok(mut s) = state.lock() {
            s.pending = pending;
        }
        arm_pending(&mut w, &state);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stop);
    let worker_inner = Arc::clone(&inner);
    std::thread::Builder::new()
        .name("codexport-watch".into())
        .spawn(move || {
            debounce_loop(&rx, debounce, &worker_stop, move || {
                // A root that appeared is watched before the snapshot that takes it.
                if let Ok(mut w) = worker_inner.lock() {
                    arm_pending(&mut w, &state);
                }
                on_change();
            });
        })
        .map_err(WatchError::Thread)?;
    Ok(Watcher {
        _inner: inner,
        stop,
        wake: tx,
    })
}

/// Watches each pending root that now exists (recursively, and no longer pending), and the
/// nearest existing folder above each one still missing (not recursively: only its own
/// entries say that the way to the root is being made).
fn arm_pending(w: &mut RecommendedWatcher, state: &Mutex<Relevance>) {
    let pending = state.lock().map(|s| s.pending.clone()).unwrap_or_default();
    let mut still = Vec::new();
    for root in pending {
        if root.is_dir() && w.watch(&root, RecursiveMode::Recursive).is_ok() {
            continue;
        }
        if let Some(above) = root.ancestors().skip(1).find(|a| a.is_dir()) {
            // Watching a folder twice is harmless; a failure leaves the root pending.
            let _ = w.watch(above, RecursiveMode::NonRecursive);
        }
        still.push(root);
    }
    if let Ok(mut s) = state.lock() {
        s.pending = still;
    }
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

/// Whether an event touches something a snapshot would take, or the settings.
fn is_relevant(event: &Event, state: &Relevance) -> bool {
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        // Reads (Codex loading its config) change nothing; a write being closed does.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    let extra = state.extra.read().map(|e| e.clone()).unwrap_or_default();
    event.paths.iter().any(|p| {
        state.settings.as_deref() == Some(p.as_path())
            || state
                .pending
                .iter()
                .any(|root| root.starts_with(p) || p.starts_with(root))
            || path_is_relevant(p, &state.places, &extra)
    })
}

/// Whether `path` lies under a place and is selected: every prefix of its path in the root
/// must be selected, exactly as the snapshot walk decides. A place itself (deleted or
/// moved) counts as relevant.
fn path_is_relevant(path: &Path, places: &[Place], extra: &Extra) -> bool {
    let Some((place, rel)) = places
        .iter()
        .find_map(|p| path.strip_prefix(&p.path).ok().map(|rel| (p, rel)))
    else {
        return false;
    };
    let selection = Selection {
        root: place.root,
        extra: (place.root.name == crate::roots::CODEX.name).then_some(extra),
    };
    let mut prefix = place.name.clone();
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
        if !selection.is_selected(&prefix) {
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

    fn codex_at(dir: &Path) -> Vec<Place> {
        vec![Place {
            path: dir.to_path_buf(),
            root: crate::roots::CODEX,
            name: String::new(),
        }]
    }

    fn no_extra() -> Arc<RwLock<Extra>> {
        Arc::new(RwLock::new(Extra::default()))
    }

    fn started(dir: &Path) -> (Watcher, Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let w = watch(&codex_at(dir), None, no_extra(), DEBOUNCE, move || {
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
        let _w = watch(
            &codex_at(dir.path()),
            None,
            no_extra(),
            DEBOUNCE,
            move || {
                calls += 1;
                let _ = tx.send(calls);
                if calls == 1 {
                    std::thread::sleep(Duration::from_millis(1500));
                }
            },
        )
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
        match watch(&codex_at(&missing), None, no_extra(), DEBOUNCE, || {}) {
            Err(WatchError::Start { path, .. }) => assert_eq!(path, missing),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("watching a missing directory succeeded"),
        }
    }

    #[test]
    fn a_missing_optional_root_is_watched_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let codex = home.join(".codex");
        fs::create_dir(&codex).unwrap();
        let skills = home.join(".agents/skills");
        let mut places = codex_at(&codex);
        places.push(Place {
            path: skills.clone(),
            root: &crate::roots::ROOTS[1],
            name: String::new(),
        });
        let (tx, rx) = mpsc::channel();
        let _w = watch(&places, None, no_extra(), DEBOUNCE, move || {
            let _ = tx.send(());
        })
        .unwrap();
        fs::write(home.join("unrelated.txt"), "x").unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(600)).is_err());
        fs::create_dir_all(skills.join("review")).unwrap();
        expect_call(&rx, "creating ~/.agents/skills");
        fs::write(skills.join("review/SKILL.md"), "---\nname: review\n---\n").unwrap();
        expect_call(&rx, "a skill inside the new root");
        fs::write(skills.join("review/SKILL.md"), "changed").unwrap();
        expect_call(&rx, "an edit inside the new root");
    }

    #[test]
    fn the_settings_file_and_included_entries_are_relevant() {
        let dir = tempfile::tempdir().unwrap();
        let codex = dir.path().join(".codex");
        let state = dir.path().join(".codexport");
        fs::create_dir_all(codex.join("notes")).unwrap();
        fs::create_dir_all(&state).unwrap();
        let extra = no_extra();
        let (tx, rx) = mpsc::channel();
        let settings = state.join("master.toml");
        let _w = watch(
            &codex_at(&codex),
            Some(&settings),
            Arc::clone(&extra),
            DEBOUNCE,
            move || {
                let _ = tx.send(());
            },
        )
        .unwrap();
        fs::write(codex.join("notes/a.md"), "x").unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(600)).is_err(),
            "notes/ is not taken yet"
        );
        fs::write(state.join("store.redb"), "x").unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(600)).is_err(),
            "other state files"
        );
        fs::write(&settings, "include = [\"notes\"]\n").unwrap();
        expect_call(&rx, "writing the settings");
        extra.write().unwrap().include.push("notes".into());
        fs::write(codex.join("notes/a.md"), "y").unwrap();
        expect_call(&rx, "a change in an included folder");
    }

    #[test]
    fn relevance_rules() {
        let root = PathBuf::from("/h/.codex");
        let codex = crate::roots::CODEX;
        let places = vec![
            Place {
                path: root.clone(),
                root: codex,
                name: String::new(),
            },
            // Stow-style links: a followed folder, and a followed file.
            Place {
                path: PathBuf::from("/dots/codex-skills"),
                root: codex,
                name: "skills".into(),
            },
            Place {
                path: PathBuf::from("/dots/AGENTS.md"),
                root: codex,
                name: "AGENTS.md".into(),
            },
            Place {
                path: PathBuf::from("/h/.agents/skills"),
                root: &crate::roots::ROOTS[1],
                name: String::new(),
            },
        ];
        let roots = Relevance {
            places,
            pending: vec![PathBuf::from("/h/.later/skills")],
            settings: Some(PathBuf::from("/h/.codexport/master.toml")),
            extra: no_extra(),
        };
        let ev = |kind, p: &str| Event::new(kind).add_path(root.join(p));
        let create = EventKind::Create(CreateKind::File);
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(is_relevant(&ev(create, "config.toml"), &roots));
        assert!(is_relevant(&ev(modify, "skills/a/cache/x"), &roots));
        assert!(is_relevant(&ev(modify, "agents/reviewer.toml"), &roots));
        assert!(is_relevant(&ev(modify, ""), &roots));
        assert!(!is_relevant(&ev(modify, "sessions/x.jsonl"), &roots));
        assert!(!is_relevant(&ev(modify, "history.jsonl"), &roots));
        assert!(!is_relevant(&ev(modify, "skills/.system/x"), &roots));
        assert!(!is_relevant(&ev(modify, "plugins/cache/m/p/1/x"), &roots));
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
        assert!(is_relevant(
            &at("/h/.agents/skills/review/SKILL.md"),
            &roots
        ));
        assert!(is_relevant(&at("/h/.agents/skills/.hidden/x"), &roots));
        assert!(is_relevant(&at("/h/.codexport/master.toml"), &roots));
        assert!(!is_relevant(&at("/h/.codexport/store.redb"), &roots));
        assert!(
            is_relevant(&at("/h/.later"), &roots),
            "on the way to a pending root"
        );
        assert!(!is_relevant(&at("/h/.bashrc"), &roots));
        let rescan = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(is_relevant(&rescan, &roots));
    }
}
