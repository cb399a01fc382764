//! The command-line surface: revisions, show, errors and exit codes.
use std::os::unix::fs::PermissionsExt;

use crate::util::Home;

#[test]
fn rev_specs_resolve_everywhere() {
    let h = Home::new();
    h.realistic();
    h.json(&["master", "init"]);
    h.write("AGENTS.md", "# v2\n");
    h.json(&["master", "rebuild"]);
    let log = h.json(&["log"]);
    let first_id = log["revisions"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(h.json(&["show", "1", "AGENTS.md"])["content"], "# Agents\n");
    assert_eq!(h.json(&["show", "HEAD", "AGENTS.md"])["content"], "# v2\n");
    assert_eq!(
        h.json(&["show", &first_id[..8], "AGENTS.md"])["content"],
        "# Agents\n"
    );
    // The top level holds the roots; a path without one is in ~/.codex.
    let top = h.json(&["show", "HEAD"]);
    let roots: Vec<&str> = top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(roots, ["codex"], "no ~/.agents/skills in this home");
    let codex = h.json(&["show", "HEAD", "codex"]);
    let names: Vec<&str> = codex["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"skills") && names.contains(&"config.toml"));
    assert!(!names.contains(&"sessions"));
    assert_eq!(
        h.json(&["show", "HEAD", "codex/AGENTS.md"])["content"],
        "# v2\n"
    );
    assert_eq!(
        h.json(&["show", "1", "AGENTS.md"])["path"],
        "codex/AGENTS.md",
        "shown by its path in the tree of roots"
    );
    let link = h.run(&["show", "HEAD", "skills/alpha-link"]);
    assert_eq!(link.stdout.trim(), "-> alpha");

    let bad = h.run(&["show", "99"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("codexport log"), "{}", bad.stderr);
    let missing = h.run(&["show", "HEAD", "nope/x"]);
    assert_eq!(missing.code, 2);
    let escape = h.run(&["show", "HEAD", "../etc"]);
    assert_eq!(escape.code, 2);
}

#[test]
fn init_twice_and_commands_without_a_store() {
    let h = Home::new();
    let r = h.run(&["log"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("master init"), "{}", r.stderr);
    let j = h.run(&["--json", "log"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["error"]["code"], "codexport::store::missing");
    h.realistic();
    assert!(h.run(&["master", "init"]).ok());
    let again = h.run(&["master", "init"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("master rebuild"), "{}", again.stderr);
}

#[test]
fn status_reports_store_size_against_content() {
    let h = Home::new();
    h.realistic();
    h.json(&["master", "init"]);
    let s = h.json(&["status"]);
    assert_eq!(s["role"], "master");
    assert_eq!(s["revision"]["number"], 1);
    assert!(s["store"]["disk_bytes"].as_u64().unwrap() > 0);
    assert!(s["store"]["content_bytes"].as_u64().unwrap() > 0);
    let human = h.run(&["status"]).stdout;
    assert!(human.contains("on disk"), "{human}");
}

#[test]
fn quiet_prints_nothing_and_version_names_formats() {
    let h = Home::new();
    h.realistic();
    let r = h.run(&["-q", "master", "init"]);
    assert!(r.ok());
    assert!(r.stdout.is_empty());
    let v = h.run(&["--version"]);
    assert!(
        v.stdout.contains(&format!(
            "store format {}",
            codexport::object::FORMAT_VERSION
        )) && v.stdout.contains("protocol 2"),
        "{}",
        v.stdout
    );
}

#[test]
fn master_key_with_loose_mode_is_refused() {
    let h = Home::new();
    h.realistic();
    h.json(&["master", "init"]);
    std::fs::set_permissions(
        h.state().join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let r = h.run(&["master", "rebuild"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
}
