//! Checkout on a follower: merge with the overlay, apply atomically, drift, rollback,
//! crashes, and the real Codex CLI reading the result.

use crate::util::{Home, Master, run_in, settle};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A master serving on loopback and a follower that joined with --apply, with runtime state
/// and a user's own file that codexport must never touch.
fn pair() -> (Home, Master, Home) {
    crate::util::pair_with(|f| {
        f.write("sessions/2026/a.jsonl", "{}");
        f.write("history.jsonl", "{\"local\":1}");
        f.write("installation_id", "follower-id");
        f.write("notes-of-mine.txt", "mine");
    })
}

fn read(h: &Home, rel: &str) -> String {
    fs::read_to_string(h.codex().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn untouched(f: &Home) {
    assert_eq!(read(f, "history.jsonl"), "{\"local\":1}");
    assert_eq!(read(f, "installation_id"), "follower-id");
    assert_eq!(read(f, "notes-of-mine.txt"), "mine");
    assert!(f.codex().join("sessions/2026/a.jsonl").exists());
}

#[test]
fn first_apply_writes_the_merged_setup_and_nothing_else() {
    let (m, _master, f) = pair();
    untouched(&f);
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    assert_eq!(
        read(&f, "skills/alpha/cache/kept.md"),
        "inside a skill, cache/ is kept\n"
    );
    let mode = fs::metadata(f.codex().join("skills/alpha/scripts/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "exec bits kept");
    assert_eq!(
        fs::read_link(f.codex().join("skills/alpha-link")).unwrap(),
        Path::new("alpha")
    );
    let config = read(&f, "config.toml");
    let (mh, fh) = (m.home.display().to_string(), f.home.display().to_string());
    assert!(
        config.contains("# master config"),
        "comments kept: {config}"
    );
    assert!(
        config.contains(&format!("[projects.\"{fh}/src\"]")),
        "{config}"
    );
    assert!(!config.contains(&mh), "no master path left: {config}");
    let doc: toml_edit::DocumentMut = config.parse().unwrap();
    assert!(doc["mcp_servers"]["web"].get("env").is_none());
    // Command servers start through the launcher, which restores env from the manifest.
    assert_eq!(
        doc["mcp_servers"]["fs"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>(),
        ["mcp", "run", "fs"]
    );
    assert!(
        doc["mcp_servers"]["fs"]["command"]
            .as_str()
            .unwrap()
            .ends_with("codexport")
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(f.state().join("mcp/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["manifest"]["servers"]["fs"]["env"]["TOKEN"],
        "secret"
    );
    assert_eq!(
        fs::metadata(f.state().join("mcp/manifest.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !f.codex().join("sessions/2026/11/x.jsonl").exists(),
        "master runtime state never travels"
    );
    let status = f.json(&["status"]);
    assert_eq!(status["applied"]["number"], 1);
    assert_eq!(status["drift"].as_array().unwrap().len(), 0, "{status}");
}

#[test]
fn changes_deletes_drift_readonly_and_rules_merge() {
    let (m, _master, f) = pair();
    // Codex on the follower appends an approval; the user edits a managed prompt.
    let rules = f.codex().join("rules/default.rules");
    let mut text = read(&f, "rules/default.rules");
    text.push_str("prefix_rule(pattern=[\"cargo\", \"test\"], decision=\"allow\")\n");
    fs::write(&rules, text).unwrap();
    fs::write(f.codex().join("prompts/fix.md"), "my local edit\n").unwrap();
    fs::set_permissions(
        f.codex().join("AGENTS.md"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let drift: Vec<String> = f.json(&["status"])["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drift, ["codex/prompts/fix.md"]);

    m.write("rules/default.rules", "prefix_rule(pattern=[\"ls\"], decision=\"allow\")\nprefix_rule(pattern=[\"rg\"], decision=\"allow\")\n");
    m.write("prompts/fix.md", "Fix it, master version 2.\n");
    m.write("AGENTS.md", "# Agents v2\n");
    fs::remove_file(m.codex().join("hooks.json")).unwrap();
    m.json(&["master", "rebuild"]);

    let dry = f.json(&["apply", "--dry-run"]);
    assert_eq!(dry["result"], "planned");
    assert_eq!(
        read(&f, "AGENTS.md"),
        "# Agents\n",
        "a dry run changes nothing"
    );

    let s = f.json(&["sync", "--apply"]);
    let a = &s["apply"];
    assert_eq!(a["result"], "applied", "{s}");
    assert_eq!(a["drift"], serde_json::json!(["codex/prompts/fix.md"]));
    let backup = Path::new(a["backup_dir"].as_str().unwrap()).join("codex/prompts/fix.md");
    assert_eq!(fs::read_to_string(backup).unwrap(), "my local edit\n");
    assert_eq!(read(&f, "prompts/fix.md"), "Fix it, master version 2.\n");
    assert_eq!(
        read(&f, "AGENTS.md"),
        "# Agents v2\n",
        "read-only files are replaced"
    );
    assert!(
        !f.codex().join("hooks.json").exists(),
        "a managed file the master removed is deleted"
    );
    assert_eq!(
        read(&f, "rules/default.rules"),
        "prefix_rule(pattern=[\"ls\"], decision=\"allow\")\nprefix_rule(pattern=[\"rg\"], decision=\"allow\")\nprefix_rule(pattern=[\"cargo\", \"test\"], decision=\"allow\")\n"
    );
    untouched(&f);
    let log = f.json(&["log"]);
    assert_eq!(log["applies"][0]["drift"], 1);
}

#[test]
fn overlay_mcps_skills_and_overrides() {
    let (m, _master, f) = pair();
    fs::write(f.state().join("mcps.local.toml"), "[mcp_servers.fs]\ncommand = \"local-fs\"\n\n[mcp_servers.mine]\ncommand = \"${home}/bin/mine\"\n").unwrap();
    let before = read(&f, "config.toml");
    let r = f.run(&["apply"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Local MCP conflicts with canonical names: fs")
            && r.stderr.contains("allowMcpOverrides"),
        "{}",
        r.stderr
    );
    assert_eq!(
        read(&f, "config.toml"),
        before,
        "nothing written on a conflict"
    );

    fs::write(
        f.state().join("local.toml"),
        "# my settings\nallowMcpOverrides = [\"fs\"]\n",
    )
    .unwrap();
    let skill = f.state().join("skills/alpha/SKILL.md");
    fs::create_dir_all(skill.parent().unwrap()).unwrap();
    fs::write(&skill, "local alpha").unwrap();
    let r = f.run(&["apply"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Local skills conflict with canonical skills: alpha"),
        "{}",
        r.stderr
    );

    fs::remove_dir_all(f.state().join("skills/alpha")).unwrap();
    fs::create_dir_all(f.state().join("skills/mine")).unwrap();
    fs::write(f.state().join("skills/mine/SKILL.md"), "my skill").unwrap();
    fs::create_dir_all(f.state().join("overrides/prompts")).unwrap();
    fs::write(
        f.state().join("overrides/prompts/fix.md"),
        "follower's own prompt",
    )
    .unwrap();
    f.json(&["apply"]);
    let doc: toml_edit::DocumentMut = read(&f, "config.toml").parse().unwrap();
    assert_eq!(
        doc["mcp_servers"]["fs"]["command"].as_str(),
        Some("local-fs")
    );
    assert_eq!(
        doc["mcp_servers"]["mine"]["command"].as_str().unwrap(),
        format!("{}/bin/mine", f.home.display())
    );
    assert_eq!(read(&f, "skills/mine/SKILL.md"), "my skill");
    assert_eq!(read(&f, "prompts/fix.md"), "follower's own prompt");
    // Later master changes keep the overlay on top.
    m.write("AGENTS.md", "# v3\n");
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    assert_eq!(read(&f, "prompts/fix.md"), "follower's own prompt");
    assert_eq!(read(&f, "skills/mine/SKILL.md"), "my skill");
    // Removing the local skill removes it from ~/.codex (codexport wrote it).
    fs::remove_dir_all(f.state().join("skills/mine")).unwrap();
    f.json(&["apply"]);
    assert!(!f.codex().join("skills/mine").exists());
}

#[test]
fn rollback_holds_until_the_master_publishes() {
    let (m, _master, f) = pair();
    m.write("AGENTS.md", "# v2\n");
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    assert_eq!(read(&f, "AGENTS.md"), "# v2\n");
    let diff = f.json(&["diff", "1", "--patch"]);
    assert!(
        diff["patches"][0]["patch"]
            .as_str()
            .unwrap()
            .contains("-# v2"),
        "{diff}"
    );
    f.json(&["rollback", "1"]);
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    let held = f.json(&["sync", "--apply"]);
    assert_eq!(held["held_at"], 2, "{held}");
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    m.write("AGENTS.md", "# v3\n");
    m.json(&["master", "rebuild"]);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied");
    assert_eq!(read(&f, "AGENTS.md"), "# v3\n");
    // Rollback points survive gc.
    f.json(&["gc", "--keep", "1"]);
    f.json(&["rollback", "1"]);
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    assert!(f.run(&["fsck"]).ok());
}

#[test]
fn concurrent_sync_and_apply_are_serialised() {
    let (m, _master, f) = pair();
    m.write("AGENTS.md", "# concurrent\n");
    m.json(&["master", "rebuild"]);
    let home = f.home.clone();
    let t = std::thread::spawn(move || run_in(&home, &["sync", "--apply"]));
    let a = f.run(&["apply"]);
    let s = t.join().unwrap();
    assert!(s.ok(), "{}", s.stderr);
    assert!(
        a.ok() || a.stderr.contains("Run `codexport sync`") || a.stderr.contains("busy"),
        "{}",
        a.stderr
    );
    assert_eq!(read(&f, "AGENTS.md"), "# concurrent\n");
    assert!(f.run(&["fsck"]).ok());
}

/// Every managed path equals the old or the new tree's content.
fn old_or_new(
    f: &Home,
    old: &std::collections::BTreeMap<String, String>,
    new: &std::collections::BTreeMap<String, String>,
) -> bool {
    let mut all_new = true;
    for path in old.keys().chain(new.keys()) {
        let now = fs::read_to_string(f.codex().join(path)).ok();
        let (o, n) = (old.get(path), new.get(path));
        assert!(
            now.as_ref() == o || now.as_ref() == n,
            "{path} is neither old nor new: {now:?}"
        );
        all_new &= now.as_ref() == n;
    }
    all_new
}

fn contents(h: &Home, paths: &[String]) -> std::collections::BTreeMap<String, String> {
    paths
        .iter()
        .filter_map(|p| {
            fs::read_to_string(h.codex().join(p))
                .ok()
                .map(|c| (p.clone(), c))
        })
        .collect()
}

#[test]
fn crash_at_every_step_then_recovery() {
    let (m, _master, f) = pair();
    let paths: Vec<String> = (0..30).map(|i| format!("prompts/p{i:02}.md")).collect();
    for p in &paths {
        m.write(p, format!("{p} v1\n"));
    }
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    let mut step = 0;
    loop {
        // A new master revision: half the files change, a few are deleted.
        for (i, p) in paths.iter().enumerate() {
            match i % 3 {
                0 => m.write(p, format!("{p} step {step}\n")),
                1 if i < 10 => {
                    let _ = fs::remove_file(m.codex().join(p));
                    m.codex().join(p)
                }
                _ => m.codex().join(p),
            };
        }
        m.json(&["master", "rebuild"]);
        let old = contents(&f, &paths);
        let crashed = crate::util::codexport()
            .arg("--home")
            .arg(&f.home)
            .args(["sync", "--apply"])
            .env("CODEXPORT_CRASH_BEFORE_STEP", step.to_string())
            .output()
            .unwrap();
        let finished = crashed.status.success();
        let new = contents(&m, &paths);
        old_or_new(&f, &old, &new);
        // The next command finishes or undoes it.
        let st = f.json(&["status"]);
        assert!(st["role"] == "follower");
        let done = f.json(&["apply"]);
        assert!(
            done["result"] == "applied" || done["result"] == "unchanged",
            "{done}"
        );
        assert!(
            old_or_new(&f, &old, &new),
            "after recovery every path is new (step {step})"
        );
        assert!(!f.codex().join(".codexport-staging").exists());
        if finished {
            break;
        }
        step += 1;
        // Restore files deleted on the master so later rounds have work to do.
        for p in &paths {
            if !m.codex().join(p).exists() {
                m.write(p, format!("{p} back\n"));
            }
        }
    }
    assert!(step > 5, "the crash loop covered {step} steps");
    assert!(f.run(&["fsck"]).ok());
}

/// The content of big file `i` in round `round`.
fn big_file(i: usize, round: &str) -> String {
    format!("{i} {round} {}\n", "y".repeat(2000))
}

/// Waits for the journal of a running apply; returns its puts, in the order the apply
/// renames them into place.
fn journal_puts(journal: &Path, apply: &mut std::process::Child) -> Vec<String> {
    loop {
        if let Ok(text) = fs::read_to_string(journal) {
            if let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) {
                return j["ops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|op| op["op"] == "put")
                    // Paths of the tree of roots; the test's files are all in ~/.codex.
                    .map(|op| {
                        let path = op["path"].as_str().unwrap();
                        path.strip_prefix("codex/").unwrap().to_owned()
                    })
                    .collect();
            }
        }
        assert!(
            apply.try_wait().unwrap().is_none(),
            "the apply ended before its journal was seen"
        );
        std::thread::yield_now();
    }
}

/// SIGKILL once the apply has renamed its first file into place and before its last: the
/// journal (written after staging, removed after the last rename) proves where the kill
/// landed. Every file is whole (old or new, byte for byte), and the next command finishes.
#[test]
fn kill_9_during_a_large_apply() {
    const FILES: usize = 3000;
    let m = Home::new();
    m.realistic();
    for i in 0..FILES {
        m.write(&format!("skills/big/f{i:04}.md"), big_file(i, "old"));
    }
    settle();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    let f = Home::new();
    crate::util::enroll(&m, &master, &f);
    f.json(&["apply"]);
    for i in 0..FILES {
        m.write(&format!("skills/big/f{i:04}.md"), big_file(i, "new"));
    }
    settle();
    m.json(&["master", "rebuild"]);
    assert_eq!(f.json(&["sync"])["result"], "fetched");

    let journal = f.state().join("journal.json");
    let mut child = crate::util::codexport()
        .arg("--home")
        .arg(&f.home)
        .arg("apply")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let puts = journal_puts(&journal, &mut child);
    let new_of = |rel: &str| -> String {
        let i: usize = rel.trim_start_matches("skills/big/f")[..4].parse().unwrap();
        big_file(i, "new")
    };
    let (first, last) = (&puts[0], &puts[puts.len() - 1]);
    while fs::read_to_string(f.codex().join(first)).ok() != Some(new_of(first)) {
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        journal.exists(),
        "the kill landed after the journal was removed"
    );
    assert_ne!(
        fs::read_to_string(f.codex().join(last)).unwrap(),
        new_of(last),
        "the kill landed after the last rename"
    );
    let mut renamed = 0;
    for i in 0..FILES {
        let rel = format!("skills/big/f{i:04}.md");
        let now = fs::read_to_string(f.codex().join(&rel)).unwrap();
        if now == big_file(i, "new") {
            renamed += 1;
        } else {
            assert_eq!(now, big_file(i, "old"), "torn file {rel}");
        }
    }
    eprintln!("killed with {renamed} of {FILES} files renamed into place");
    assert!(renamed > 0 && renamed < FILES);

    let done = f.json(&["apply"]);
    assert!(
        done["result"] == "applied" || done["result"] == "unchanged",
        "{done}"
    );
    for i in 0..FILES {
        assert_eq!(
            read(&f, &format!("skills/big/f{i:04}.md")),
            big_file(i, "new")
        );
    }
    assert!(!journal.exists());
    assert!(!f.codex().join(".codexport-staging").exists());
    assert!(f.run(&["fsck"]).ok());
}

#[test]
fn real_codex_cli_reads_the_applied_config() {
    let (_m, _master, f) = pair();
    fs::write(
        f.state().join("mcps.local.toml"),
        "[mcp_servers.localonly]\ncommand = \"echo\"\nargs = [\"hi\"]\n",
    )
    .unwrap();
    f.json(&["apply"]);
    let codex = match crate::tools::codex_cli() {
        Ok(codex) => codex,
        Err(why) => codexport_dev::skip!("real_codex_cli_reads_the_applied_config", why),
    };
    let out = std::process::Command::new(&codex)
        .args(["mcp", "list", "--json"])
        .env("CODEX_HOME", f.codex())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "codex mcp list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in ["fs", "web", "localonly"] {
        assert!(names.contains(&want), "{want} missing from {list}");
    }
    let web = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert!(web.to_string().contains("127.0.0.1"), "{web}");
    let doctor = std::process::Command::new(&codex)
        .arg("doctor")
        .env("CODEX_HOME", f.codex())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout).to_string()
        + &String::from_utf8_lossy(&doctor.stderr);
    assert!(
        text.contains("Codex Doctor"),
        "codex doctor did not run:\n{text}"
    );
    assert!(
        !text.contains("config could not be loaded"),
        "codex doctor reports a config problem:\n{text}"
    );
}
