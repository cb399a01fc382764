//! Disk full during a fetch and during an apply, on a size-capped tmpfs: a clear error,
//! nothing half-written, and the next run after space is freed completes.

use crate::util::{Home, Master, run_in, settle};
use std::path::Path;
use std::process::Command;

/// A tmpfs of `mb` MiB at `dir`, unmounted on drop; `None` where mounting is not allowed.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mb: u32) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }

    fn resize(&self, mb: u32) {
        assert!(
            Command::new("mount")
                .args(["-o", &format!("remount,size={mb}m")])
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A master with ~6 MiB of skills, serving.
fn big_master() -> (Home, Master) {
    let m = Home::new();
    m.realistic();
    for i in 0..300 {
        // Distinct, incompressible content so the store really needs the space.
        let mut bytes = [0u8; 10_000];
        blake3::Hasher::new()
            .update(&u32::to_le_bytes(i))
            .finalize_xof()
            .fill(&mut bytes);
        let body = codexport::object::id::hex(&bytes);
        m.write(&format!("skills/big/f{i:03}.md"), body);
    }
    settle();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    (m, master)
}

#[test]
fn disk_full_during_fetch_then_recovery() {
    let (m, master) = big_master();
    let f = Home::new();
    let Some(fs) = Tmpfs::mount(&f.state(), 3) else {
        eprintln!(
            "SKIPPED disk_full_during_fetch_then_recovery: mounting a tmpfs is not allowed here"
        );
        return;
    };
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let r = f.run(&["follower", "join", link["link"].as_str().unwrap()]);
    assert_ne!(r.code, 0, "a 3 MiB state dir cannot hold 6 MiB");
    assert!(
        r.stderr.to_lowercase().contains("space") || r.stderr.contains("os error 28"),
        "the error says the disk is full: {}",
        r.stderr
    );
    fs.resize(64);
    let s = f.json(&["sync"]);
    assert_eq!(s["result"], "fetched", "{s}");
    assert!(f.run(&["fsck"]).ok());
}

#[test]
fn disk_full_during_apply_leaves_the_codex_dir_as_it_was() {
    let (m, master) = big_master();
    let f = Home::new();
    let codex = f.home.join("codex-on-tmpfs");
    let Some(fs) = Tmpfs::mount(&codex, 2) else {
        eprintln!(
            "SKIPPED disk_full_during_apply_leaves_the_codex_dir_as_it_was: mounting a tmpfs is not allowed here"
        );
        return;
    };
    std::fs::write(codex.join("history.jsonl"), "mine\n").unwrap();
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let codex_arg = codex.display().to_string();
    let join = run_in(
        &f.home,
        &[
            "--codex-dir",
            &codex_arg,
            "follower",
            "join",
            link["link"].as_str().unwrap(),
        ],
    );
    assert!(join.ok(), "{}", join.stderr);
    let r = run_in(&f.home, &["--codex-dir", &codex_arg, "apply"]);
    assert_ne!(r.code, 0, "2 MiB cannot hold 6 MiB");
    assert!(
        r.stderr.to_lowercase().contains("space") || r.stderr.contains("os error 28"),
        "{}",
        r.stderr
    );
    let names: Vec<String> = std::fs::read_dir(&codex)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["history.jsonl"],
        "nothing half-written, no staging left"
    );
    assert!(!f.state().join("journal.json").exists());
    fs.resize(64);
    let a = run_in(&f.home, &["--codex-dir", &codex_arg, "--json", "apply"]);
    assert!(a.ok(), "{}", a.stderr);
    assert!(codex.join("skills/big/f299.md").exists());
    assert_eq!(
        std::fs::read_to_string(codex.join("history.jsonl")).unwrap(),
        "mine\n"
    );
}
