//! Stores written by earlier formats keep working: every revision, log entry and rollback
//! point is still there. Each fixture is a master with two revisions and a follower that
//! applied both, made by that version's binary: `tests/fixtures/format1-store.tar.gz` (the
//! first format) and `tests/fixtures/format2-store.tar.gz` (the second: uncompressed packs,
//! the 21-byte object index, version 2 trees; its 2.4 MB `skills/models/weights.bin` is one
//! blob there).

use crate::util::run_in;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The format 1 fixture's two homes, extracted into a temporary folder.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    fixture_of("format1-store.tar.gz")
}

/// A fixture's two homes, extracted into a temporary folder.
fn fixture_of(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
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
    assert!(
        state.contains('['),
        "the fixture's state file is the old form: {state}"
    );
    rolls_back_to_revision_1(&f);
    let back = json(&f, &["apply"]);
    assert_eq!(back["number"], 2, "{back}");
    assert_eq!(
        fs::read_to_string(f.join(".codex/AGENTS.md")).unwrap(),
        "# Agents\nBe brief. Revision 2.\n"
    );
    let v = run_in(&f, &["verify"]);
    assert!(v.ok(), "{}", v.stdout);
}

/// Serves the fixture's master (at home `m`, with this binary) and points its follower (at
/// home `f`) at it.
fn serve_to(m: &Path, f: &Path) -> codexport_dev::serve::ServingMaster {
    let master = codexport_dev::serve::spawn_master(
        env!("CARGO_BIN_EXE_codexport"),
        m,
        &codexport_dev::serve::ServeOptions::new(),
    )
    .unwrap();
    point_at(f, &master.url());
    master
}

/// Points the fixture's follower (at home `f`) at the master serving on `url`.
fn point_at(f: &Path, url: &str) {
    let toml = f.join(".codexport/follower.toml");
    let text = fs::read_to_string(&toml).unwrap();
    let start = text.find("master_url = ").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!("{}master_url = \"{url}\"{}", &text[..start], &text[end..]);
    fs::write(&toml, text).unwrap();
}

/// Rolls the fixture's follower back to its first revision, which puts the first AGENTS.md
/// back and keeps auth.json owner-only.
fn rolls_back_to_revision_1(f: &Path) {
    let rolled = json(f, &["rollback", "1"]);
    assert_eq!(rolled["number"], 1, "{rolled}");
    assert_eq!(
        fs::read_to_string(f.join(".codex/AGENTS.md")).unwrap(),
        "# Agents\nBe brief.\n"
    );
    let mode = fs::metadata(f.join(".codex/auth.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

const WEIGHTS: &str = "skills/models/weights.bin";

#[test]
fn a_format_2_master_store_is_upgraded_and_chunks_its_large_file() {
    let (_dir, m, _f) = fixture_of("format2-store.tar.gz");
    // Opening upgrades the index in place; the history is all there.
    let log = json(&m, &["log"]);
    assert_eq!(log["revisions"].as_array().unwrap().len(), 2, "{log}");
    assert!(run_in(&m, &["fsck"]).ok());
    let weights = fs::read(m.join(".codex").join(WEIGHTS)).unwrap();
    let old = run_in(&m, &["show", "1", WEIGHTS]);
    assert!(old.ok(), "{}", old.stderr);
    assert_eq!(old.stdout.as_bytes(), &weights[..], "revision 1 reads back");
    // A rebuild publishes version 3 trees: the large file becomes a chunk list.
    let r = json(&m, &["master", "rebuild"]);
    assert_eq!(r["number"], 3, "{r}");
    let shown = json(&m, &["show", "HEAD", WEIGHTS]);
    let chunks = shown["chunks"].as_array().expect("chunked now");
    let total: u64 = chunks.iter().map(|c| c["size"].as_u64().unwrap()).sum();
    assert_eq!(total, weights.len() as u64);
    assert!(run_in(&m, &["fsck"]).ok());
    // The older binary could not read this store any more, and would be told so: the
    // format byte moved on.
    let v = run_in(&m, &["--version"]);
    assert!(v.stdout.contains("store format 4"), "{}", v.stdout);
}

#[test]
fn a_format_2_pair_upgraded_together_syncs_and_rolls_back() {
    let (_dir, m, f) = fixture_of("format2-store.tar.gz");
    let log = json(&f, &["log"]);
    assert_eq!(log["applies"].as_array().unwrap().len(), 2, "{log}");
    assert!(run_in(&f, &["fsck"]).ok());
    // A new revision on the upgraded master, served by the new binary.
    fs::write(
        m.join(".codex/AGENTS.md"),
        "# Agents\nBe brief. Revision 3.\n",
    )
    .unwrap();
    assert_eq!(json(&m, &["master", "rebuild"])["number"], 3);
    let master = serve_to(&m, &f);
    let synced = json(&f, &["sync", "--apply"]);
    assert_eq!(synced["result"], "fetched", "{synced}");
    assert_eq!(
        fs::read_to_string(f.join(".codex/AGENTS.md")).unwrap(),
        "# Agents\nBe brief. Revision 3.\n"
    );
    assert_eq!(
        fs::read(f.join(".codex").join(WEIGHTS)).unwrap(),
        fs::read(m.join(".codex").join(WEIGHTS)).unwrap()
    );
    assert!(run_in(&f, &["verify"]).ok());
    // The rollback points made by the old version still work.
    rolls_back_to_revision_1(&f);
    assert!(run_in(&f, &["fsck"]).ok());
    drop(master);
}

/// A pair of the format before roots, upgraded: its rollback points (trees of the codex dir)
/// become trees of roots, a new root travels in the next revision, and rolling back to a
/// revision made before roots takes it away again.
#[test]
fn an_upgraded_pair_carries_a_new_root_and_rolls_back_past_it() {
    let (_dir, m, f) = fixture_of("format2-store.tar.gz");
    // The follower alone, upgraded, with nothing new: its checkout is what it was.
    assert!(run_in(&f, &["verify"]).ok());
    let applies = json(&f, &["log"])["applies"].as_array().unwrap().len();
    assert_eq!(applies, 2);
    // A revision made before roots reads as a tree of roots holding the codex dir.
    let top = json(&m, &["show", "1"]);
    let names: Vec<&str> = top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["codex"], "{top}");
    assert_eq!(
        json(&m, &["show", "1", "codex/AGENTS.md"])["content"],
        "# Agents\nBe brief.\n"
    );

    let skill = m.join(".agents/skills/review/SKILL.md");
    fs::create_dir_all(skill.parent().unwrap()).unwrap();
    fs::write(&skill, "---\nname: review\n---\n").unwrap();
    assert_eq!(json(&m, &["master", "rebuild"])["number"], 3);
    let master = serve_to(&m, &f);
    let synced = json(&f, &["sync", "--apply"]);
    assert_eq!(synced["apply"]["result"], "applied", "{synced}");
    let landed = f.join(".agents/skills/review/SKILL.md");
    assert_eq!(
        fs::read_to_string(&landed).unwrap(),
        "---\nname: review\n---\n"
    );
    assert!(run_in(&f, &["verify"]).ok());
    // Back to a rollback point the old version made: the new root's files go, the codex
    // dir is what it was then.
    rolls_back_to_revision_1(&f);
    assert!(!landed.exists(), "revision 1 had no ~/.agents/skills");
    let back = json(&f, &["apply"]);
    assert_eq!(back["number"], 3, "{back}");
    assert!(landed.exists());
    assert!(run_in(&f, &["fsck"]).ok());
    assert!(run_in(&m, &["fsck"]).ok());
    drop(master);
}
