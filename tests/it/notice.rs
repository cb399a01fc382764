//! Nothing new goes unnoticed: the master names top-level entries of `~/.codex` that it
//! neither takes nor knows as runtime state, and its own settings (`~/.codexport/master.toml`,
//! edited by `master include` / `master exclude` or by hand) take or leave them.

use crate::util::{Home, Master, enroll, settle};
use std::fs;

fn not_synced(v: &serde_json::Value) -> Vec<String> {
    v["not_synced"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// A realistic `~/.codex` with a setup folder and a file codexport does not know, and the
/// runtime state this Codex release writes.
fn master_with_unknown_entries() -> Home {
    let m = Home::new();
    m.realistic();
    m.write("notes/today.md", "my notes\n");
    m.write("themes.json", "{}");
    for runtime in [
        "goals_1.sqlite",
        "queue_1.sqlite-wal",
        "thread-writer-locks/x",
        ".tmp/marketplaces/m/x",
        ".sandbox_migration",
        "plugins/cache/m/p/1.0.0/x",
    ] {
        m.write(runtime, "runtime");
    }
    settle();
    m
}

#[test]
fn init_rebuild_and_status_name_what_is_not_synced() {
    let m = master_with_unknown_entries();
    let init = m.json(&["master", "init"]);
    assert_eq!(
        not_synced(&init["snapshot"]),
        ["notes/", "themes.json", "unlisted.txt"],
        "{init}"
    );
    // The reasons are in the report too, runtime state among the known ones.
    let left = init["snapshot"]["left_out"].as_array().unwrap();
    let plugins = left.iter().find(|l| l["name"] == "plugins").unwrap();
    assert_eq!(plugins["unknown"], false);
    assert!(
        plugins["why"]
            .as_str()
            .unwrap()
            .contains("codex plugin add")
    );
    let text = m.run(&["master", "rebuild"]);
    assert!(
        text.stdout.contains(
            "not synced: notes/ — add it with `include = [\"notes\"]` in the master's settings"
        ),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("goals_1.sqlite"), "{}", text.stdout);
    let status = m.json(&["status"]);
    assert_eq!(
        not_synced(&status),
        ["notes/", "themes.json", "unlisted.txt"]
    );
    assert!(
        m.run(&["status"])
            .stdout
            .contains("not synced: themes.json")
    );
}

#[test]
fn the_masters_settings_include_and_exclude_top_level_entries() {
    let m = master_with_unknown_entries();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    let f = Home::new();
    enroll(&m, &master, &f);
    f.json(&["sync", "--apply"]);
    assert!(!f.codex().join("notes").exists());

    // `master include` edits the settings and publishes at once.
    let inc = m.json(&["master", "include", "notes", "themes*"]);
    assert_eq!(
        inc["settings"]["include"],
        serde_json::json!(["notes", "themes*"])
    );
    assert_eq!(inc["snapshot"]["number"], 2, "{inc}");
    assert_eq!(not_synced(&inc["snapshot"]), ["unlisted.txt"]);
    f.json(&["sync", "--apply"]);
    assert_eq!(
        fs::read_to_string(f.codex().join("notes/today.md")).unwrap(),
        "my notes\n"
    );
    assert!(f.codex().join("themes.json").exists());

    // A hand edit (comments kept by the next `master exclude`) leaves an entry the table
    // takes; the follower's copy goes.
    let settings = m.state().join("master.toml");
    let text = fs::read_to_string(&settings).unwrap();
    fs::write(&settings, format!("# what this master shares\n{text}")).unwrap();
    let exc = m.json(&["master", "exclude", "AGENTS.md"]);
    assert_eq!(exc["snapshot"]["number"], 3, "{exc}");
    let text = fs::read_to_string(&settings).unwrap();
    assert!(
        text.starts_with("# what this master shares\n")
            && text.contains("exclude = [\"AGENTS.md\"]"),
        "{text}"
    );
    let left = exc["snapshot"]["left_out"].as_array().unwrap();
    let agents = left.iter().find(|l| l["name"] == "AGENTS.md").unwrap();
    assert!(
        agents["why"].as_str().unwrap().contains("master.toml"),
        "{agents}"
    );
    assert_eq!(
        agents["unknown"], false,
        "an excluded entry is known, not a notice"
    );
    f.json(&["sync", "--apply"]);
    assert!(!f.codex().join("AGENTS.md").exists());
    assert!(f.run(&["verify"]).ok());

    // Including what `exclude` lists moves it back.
    let back = m.json(&["master", "include", "AGENTS.md"]);
    assert_eq!(back["settings"]["moved"], serde_json::json!(["AGENTS.md"]));
    assert_eq!(back["settings"]["exclude"], serde_json::json!([]));

    // Bad settings: a clear error that says what to do, and nothing recorded.
    fs::write(&settings, "include = [\"a/b\"]\n").unwrap();
    let r = m.run(&["--json", "master", "rebuild"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let e: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(e["error"]["code"], "codexport::usage::bad_master_settings");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("top-level"),
        "{e}"
    );
    assert!(
        e["error"]["help"].as_str().unwrap().contains("include"),
        "{e}"
    );
    let r = m.run(&["master", "include", "x/y"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        fs::read_to_string(&settings).unwrap(),
        "include = [\"a/b\"]\n"
    );
    assert_eq!(m.json(&["log"])["revisions"].as_array().unwrap().len(), 4);
    drop(master);
}

#[test]
fn master_serve_publishes_when_the_settings_change() {
    let m = master_with_unknown_entries();
    m.json(&["master", "init"]);
    let master = Master::start(&m, true);
    fs::write(m.state().join("master.toml"), "include = [\"notes\"]\n").unwrap();
    let started = std::time::Instant::now();
    loop {
        let log = m.json(&["log"]);
        if log["revisions"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no revision after the settings changed: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let shown = m.json(&["show", "HEAD", "notes/today.md"]);
    assert_eq!(shown["content"], "my notes\n");
    // A change in the included folder is seen by the watcher too.
    m.write("notes/today.md", "more notes\n");
    let started = std::time::Instant::now();
    while m.json(&["show", "HEAD", "notes/today.md"])["content"] != "more notes\n" {
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(master);
}
