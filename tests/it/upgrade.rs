//! A store written by the first release of the format (format 1: a master with two revisions
//! and a follower that applied both, made by that version's binary and committed as
//! `tests/fixtures/format1-store.tar.gz`) keeps working: every revision, log entry and
//! rollback point is still there.

use crate::util::run_in;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The fixture's two homes, extracted into a temporary folder.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1-store.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "extract {}", archive.display());
    let (m, f) = (dir.path().join("master"), dir.path().join("follower"));
    (dir, m, f)
}

fn json(home: &Path, args: &[&str]) -> serde_json::Value {
    let r = run_in(home, &[&["--json"][..], args].concat());
    assert!(r.ok(), "{args:?}: {}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn a_format_1_master_store_keeps_its_history_and_publishes_again() {
    let (_dir, m, _f) = fixture();
    let log = json(&m, &["log"]);
    assert_eq!(log["revisions"].as_array().unwrap().len(), 2, "{log}");
    let old = run_in(&m, &["show", "1", "AGENTS.md"]);
    assert_eq!(old.stdout, "# Agents\nBe brief.\n");
    assert!(run_in(&m, &["fsck"]).ok());
    // A rebuild publishes the same files in the current encoding.
    let r = json(&m, &["master", "rebuild"]);
    assert_eq!(r["number"], 3, "{r}");
    assert_eq!(json(&m, &["log"])["revisions"].as_array().unwrap().len(), 3);
    assert!(run_in(&m, &["fsck"]).ok());
}

#[test]
fn a_format_1_follower_keeps_its_rollback_points() {
    let (_dir, _m, f) = fixture();
    let log = json(&f, &["log"]);
    assert_eq!(log["applies"].as_array().unwrap().len(), 2, "{log}");
    assert!(run_in(&f, &["fsck"]).ok());
    // The state file of that version (ids as arrays of numbers) is still read.
    let state = fs::read_to_string(f.join(".codexport/follower-state.json")).unwrap();
    assert!(state.contains('['), "the fixture's state file is the old form: {state}");
    let rolled = json(&f, &["rollback", "1"]);
    assert_eq!(rolled["number"], 1, "{rolled}");
    assert_eq!(
        fs::read_to_string(f.join(".codex/AGENTS.md")).unwrap(),
        "# Agents\nBe brief.\n"
    );
    let back = json(&f, &["apply"]);
    assert_eq!(back["number"], 2, "{back}");
    assert_eq!(
        fs::read_to_string(f.join(".codex/AGENTS.md")).unwrap(),
        "# Agents\nBe brief. Revision 2.\n"
    );
    assert_eq!(
        fs::metadata(f.join(".codex/auth.json")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v = run_in(&f, &["verify"]);
    assert!(v.ok(), "{}", v.stdout);
}
