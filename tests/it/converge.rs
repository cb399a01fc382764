//! A follower always ends equal to its merged tree: drift of every kind is repaired by
//! `sync --apply` (and `apply`), `verify` says what differs, overlay edits are noticed
//! without a new revision, secrets stay owner-only, and caches never overrule the store.

use crate::util::{Home, Master, pair_with, settle};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

fn pair() -> (Home, Master, Home) {
    pair_with(|_| {})
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn read(h: &Home, rel: &str) -> String {
    fs::read_to_string(h.codex().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The paths `verify --json` lists (its exit code must be 1 when any).
fn differing(h: &Home) -> Vec<String> {
    let r = h.run(&["--json", "verify"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("verify: {e}\n{}\n{}", r.stdout, r.stderr));
    let paths: Vec<String> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(r.code, i32::from(!paths.is_empty()), "{}", r.stdout);
    assert_eq!(v["equal"], paths.is_empty());
    paths
}

#[test]
fn drift_of_every_kind_is_listed_by_verify_and_repaired_by_sync_apply() {
    let (_m, _master, f) = pair();
    assert!(differing(&f).is_empty());
    let codex = f.codex();
    // Deleted, edited, made readable, replaced by a folder, replaced by a link.
    fs::remove_file(codex.join("AGENTS.md")).unwrap();
    fs::write(codex.join("prompts/fix.md"), "my edit\n").unwrap();
    fs::set_permissions(codex.join("auth.json"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(codex.join("skills/alpha/SKILL.md")).unwrap();
    fs::create_dir(codex.join("skills/alpha/SKILL.md")).unwrap();
    fs::write(
        codex.join("skills/alpha/SKILL.md/mine.txt"),
        "kept in the backup",
    )
    .unwrap();
    fs::remove_file(codex.join("skills/alpha/deep/er/still/file.txt")).unwrap();
    symlink(
        "/etc/hostname",
        codex.join("skills/alpha/deep/er/still/file.txt"),
    )
    .unwrap();
    // A whole managed folder deleted.
    fs::remove_dir_all(codex.join("skills/ünïcødé 技能")).unwrap();

    let mut listed = differing(&f);
    listed.sort();
    assert_eq!(
        listed,
        [
            "codex/AGENTS.md",
            "codex/auth.json",
            "codex/prompts/fix.md",
            "codex/skills/alpha/SKILL.md",
            "codex/skills/alpha/deep/er/still/file.txt",
            "codex/skills/ünïcødé 技能/SKILL.md",
        ]
    );
    let status = f.json(&["status"]);
    assert_eq!(status["drift"].as_array().unwrap().len(), 6, "{status}");

    // No new revision: sync --apply alone puts everything back.
    let r = f.json(&["sync", "--apply"]);
    assert_eq!(r["result"], "current", "{r}");
    let a = &r["apply"];
    assert_eq!(a["result"], "applied", "{r}");
    assert_eq!(a["restored"], 6, "{r}");
    assert!(differing(&f).is_empty());
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    assert_eq!(read(&f, "prompts/fix.md"), "Fix it.\n");
    assert_eq!(mode(&codex.join("auth.json")), 0o600);
    assert_eq!(read(&f, "skills/alpha/SKILL.md"), "---\nname: alpha\n---\n");
    assert_eq!(read(&f, "skills/alpha/deep/er/still/file.txt"), "deep\n");
    assert!(codex.join("skills/ünïcødé 技能/SKILL.md").is_file());
    // What was the follower's is in the backup: the edit, the folder, the link.
    // Backups keep each root's files under its name.
    let backup = &Path::new(a["backup_dir"].as_str().unwrap()).join("codex");
    assert_eq!(
        fs::read_to_string(backup.join("prompts/fix.md")).unwrap(),
        "my edit\n"
    );
    assert_eq!(
        fs::read_to_string(backup.join("skills/alpha/SKILL.md/mine.txt")).unwrap(),
        "kept in the backup"
    );
    assert_eq!(
        fs::read_link(backup.join("skills/alpha/deep/er/still/file.txt")).unwrap(),
        Path::new("/etc/hostname")
    );
    // Converged: the next run has nothing to do.
    let again = f.json(&["sync", "--apply"]);
    assert!(
        again["apply"].is_null() || again["apply"]["result"] == "unchanged",
        "{again}"
    );
}

#[test]
fn apply_and_rollback_to_the_same_revision_repair_drift_too() {
    let (_m, _master, f) = pair();
    fs::remove_file(f.codex().join("AGENTS.md")).unwrap();
    let a = f.json(&["apply"]);
    assert_eq!(a["result"], "applied", "{a}");
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    fs::write(f.codex().join("AGENTS.md"), "edited").unwrap();
    let r = f.run(&["rollback", "1"]);
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    assert!(
        !r.stdout.contains("held at"),
        "rolling back to the newest revision holds nothing: {}",
        r.stdout
    );
}

#[test]
fn a_file_where_the_tree_has_a_folder_is_backed_up_and_the_join_completes() {
    let (_m, _master, f) = pair_with(|f| {
        f.write("skills", "an old file named skills");
    });
    assert!(f.codex().join("skills/alpha/SKILL.md").is_file());
    let backups: Vec<_> = fs::read_dir(f.state().join("backups")).unwrap().collect();
    assert_eq!(backups.len(), 1);
    let kept = backups[0].as_ref().unwrap().path().join("codex/skills");
    assert_eq!(
        fs::read_to_string(kept).unwrap(),
        "an old file named skills"
    );
    assert!(differing(&f).is_empty());
}

#[test]
fn overlay_edits_take_effect_at_sync_apply_without_a_new_revision() {
    let (_m, _master, f) = pair();
    let state = f.state();
    // A local MCP server, a local skill, an override.
    fs::write(
        state.join("mcps.local.toml"),
        "[mcp_servers.mine]\ncommand = \"${home}/bin/mine\"\n",
    )
    .unwrap();
    fs::create_dir_all(state.join("skills/local-one")).unwrap();
    fs::write(
        state.join("skills/local-one/SKILL.md"),
        "---\nname: local-one\n---\n",
    )
    .unwrap();
    fs::create_dir_all(state.join("overrides/prompts")).unwrap();
    fs::write(
        state.join("overrides/prompts/fix.md"),
        "this follower's prompt\n",
    )
    .unwrap();
    let r = f.json(&["sync", "--apply"]);
    assert_eq!(r["result"], "current");
    assert_eq!(r["apply"]["result"], "applied", "{r}");
    let config = read(&f, "config.toml");
    assert!(
        config.contains(&format!("command = \"{}/bin/mine\"", f.home.display())),
        "{config}"
    );
    assert!(f.codex().join("skills/local-one/SKILL.md").is_file());
    assert_eq!(read(&f, "prompts/fix.md"), "this follower's prompt\n");

    // A local.toml change: a path variable used by the local server.
    fs::write(
        state.join("mcps.local.toml"),
        "[mcp_servers.mine]\ncommand = \"${tools}/mine\"\n",
    )
    .unwrap();
    fs::write(
        state.join("local.toml"),
        "[pathVariables]\ntools = \"/opt/tools\"\n",
    )
    .unwrap();
    f.json(&["sync", "--apply"]);
    assert!(read(&f, "config.toml").contains("command = \"/opt/tools/mine\""));

    // A broken overlay file fails sync --apply as apply does, and writes nothing.
    fs::write(
        state.join("mcps.local.toml"),
        "[mcp_servers.mine\ncommand = 1\n",
    )
    .unwrap();
    let before = read(&f, "config.toml");
    for cmd in [&["sync", "--apply"][..], &["apply"]] {
        let r = f.run(&[&["--json"][..], cmd].concat());
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.stdout);
        let e: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(e["error"]["code"], "codexport::usage::bad_toml", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mcps.local.toml"),
            "{e}"
        );
    }
    assert_eq!(read(&f, "config.toml"), before);
    // The session hook logs it and exits 0, printing nothing.
    let h = f.run(&["hook", "run"]);
    assert_eq!((h.code, h.stdout.as_str()), (0, ""));
    let log = fs::read_to_string(state.join("logs/hook.log")).unwrap();
    assert!(log.contains("mcps.local.toml"), "{log}");
}

/// Every mode under `dir`, for paths whose group or other bits are set.
fn readable_by_others(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.permissions().mode() & 0o077 != 0 {
            out.push(format!(
                "{} {:o}",
                p.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

#[test]
fn secrets_stay_owner_only_on_master_and_follower() {
    let (m, _master, f) = pair_with(|f| {
        // A follower's own stricter copy of a managed file keeps its mode.
        f.write("AGENTS.md", "# Agents\n");
        fs::set_permissions(
            f.codex().join("AGENTS.md"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    });
    assert_eq!(mode(&f.codex().join("auth.json")), 0o600);
    assert_eq!(mode(&f.codex().join("AGENTS.md")), 0o600);
    // The master's auth.json made readable, a private prompt, a new AGENTS.md: a credential
    // stays owner-only whatever its mode on the master.
    fs::set_permissions(
        m.codex().join("auth.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    m.write("auth.json", "{\"auth_mode\":\"apikey\"}");
    let private = m.write("prompts/private.md", "mine only\n");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    m.write("AGENTS.md", "# Agents v2\n");
    settle();
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    assert_eq!(read(&f, "auth.json"), "{\"auth_mode\":\"apikey\"}");
    assert_eq!(mode(&f.codex().join("auth.json")), 0o600);
    assert_eq!(mode(&f.codex().join("prompts/private.md")), 0o600);
    assert_eq!(read(&f, "AGENTS.md"), "# Agents v2\n");
    assert_eq!(
        mode(&f.codex().join("AGENTS.md")),
        0o600,
        "stricter mode kept"
    );
    assert_eq!(mode(&f.codex().join("prompts/fix.md")), 0o644);
    // Nothing under ~/.codexport is readable by others, on either side.
    for h in [&m, &f] {
        let open = readable_by_others(&h.state());
        assert!(open.is_empty(), "readable by others: {open:?}");
    }
}

#[test]
fn an_older_installation_is_tightened_on_first_use() {
    let (_m, _master, f) = pair();
    let state = f.state();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(state.join("store.redb"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(state.join("packs"), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!readable_by_others(&state).is_empty());
    f.json(&["log"]);
    assert!(readable_by_others(&state).is_empty());
}

#[test]
fn a_cache_that_disagrees_with_the_store_is_rewritten_not_trusted() {
    let (m, _master, f) = pair();
    let path = f.state().join("follower-state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    state["accepted"] = 99.into();
    fs::write(&path, state.to_string()).unwrap();
    let r = f.run(&["--json", "sync", "--apply"]);
    assert!(
        r.ok(),
        "an inflated cache must not block syncs: {}",
        r.stdout
    );
    m.write("AGENTS.md", "# Agents v2\n");
    settle();
    m.json(&["master", "rebuild"]);
    let r = f.json(&["sync", "--apply"]);
    assert_eq!(r["result"], "fetched", "{r}");
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(state["accepted"], 2, "rewritten from the store: {state}");
    // Ids in JSON state files are hex.
    assert!(
        state["fetched"].as_str().is_some_and(|s| s.len() == 64),
        "{state}"
    );
}

#[test]
fn stow_style_links_on_the_master_travel_as_files() {
    let (_m, _master, f) = pair_with(|_| {});
    drop(f);
    // A fresh master whose config.toml and skills/ are links into a dotfiles folder.
    let m = Home::new();
    m.realistic();
    let dots = m.home.join("dotfiles/codex");
    fs::create_dir_all(dots.join("skills/stowed")).unwrap();
    fs::write(
        dots.join("skills/stowed/SKILL.md"),
        "---\nname: stowed\n---\n",
    )
    .unwrap();
    fs::rename(m.codex().join("config.toml"), dots.join("config.toml")).unwrap();
    symlink(dots.join("config.toml"), m.codex().join("config.toml")).unwrap();
    fs::remove_dir_all(m.codex().join("skills")).unwrap();
    symlink(dots.join("skills"), m.codex().join("skills")).unwrap();
    settle();
    let init = m.run(&["master", "init"]);
    assert!(init.ok(), "{}", init.stderr);
    assert!(
        init.stdout.contains("followed     config.toml")
            && init.stdout.contains("followed     skills"),
        "{}",
        init.stdout
    );
    let master = Master::start(&m, false);
    let f = Home::new();
    crate::util::enroll(&m, &master, &f);
    let a = f.json(&["apply"]);
    assert_eq!(a["result"], "applied", "{a}");
    let config = f.codex().join("config.toml");
    assert!(
        fs::symlink_metadata(&config).unwrap().is_file(),
        "a regular file"
    );
    assert!(read(&f, "config.toml").contains("model = \"gpt-5-codex\""));
    assert!(
        fs::symlink_metadata(f.codex().join("skills"))
            .unwrap()
            .is_dir(),
        "a real folder"
    );
    assert!(f.codex().join("skills/stowed/SKILL.md").is_file());
}

#[test]
fn a_master_link_turned_into_a_folder_replaces_the_followers_link() {
    let (m, _master, f) = pair();
    // skills/alpha-link is a link inside the codex dir: it travels as a link.
    let link = f.codex().join("skills/alpha-link");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_file(m.codex().join("skills/alpha-link")).unwrap();
    m.write(
        "skills/alpha-link/SKILL.md",
        "---\nname: now a folder\n---\n",
    );
    settle();
    m.json(&["master", "rebuild"]);
    let r = f.run(&["--json", "sync", "--apply"]);
    assert!(r.ok(), "{}", r.stdout);
    assert!(fs::symlink_metadata(&link).unwrap().is_dir());
    assert_eq!(
        read(&f, "skills/alpha-link/SKILL.md"),
        "---\nname: now a folder\n---\n"
    );
    // The link's target (the alpha skill) was not written through.
    assert!(
        !f.codex()
            .join("skills/alpha/SKILL.md/..")
            .join("x")
            .exists()
    );
    assert_eq!(read(&f, "skills/alpha/SKILL.md"), "---\nname: alpha\n---\n");
}

/// The first pack file holding `needle`, with its offset.
fn find_in_packs(state: &Path, needle: &[u8]) -> (std::path::PathBuf, usize) {
    for e in fs::read_dir(state.join("packs")).unwrap() {
        let p = e.unwrap().path();
        let bytes = fs::read(&p).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (p, at);
        }
    }
    panic!("{} not in any pack", String::from_utf8_lossy(needle));
}

#[test]
fn rotted_store_bytes_never_reach_the_codex_dir_and_are_fetched_again() {
    let (_m, _master, f) = pair();
    let (pack, at) = find_in_packs(&f.state(), b"# Agents\n");
    let mut bytes = fs::read(&pack).unwrap();
    bytes[at] ^= 0x20;
    fs::write(&pack, bytes).unwrap();
    fs::remove_file(f.codex().join("AGENTS.md")).unwrap();
    let r = f.run(&["--json", "sync", "--apply"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let e: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(e["error"]["code"], "codexport::store::damaged", "{e}");
    let id = blake3::hash(b"# Agents\n").to_hex().to_string();
    assert!(e["error"]["message"].as_str().unwrap().contains(&id), "{e}");
    assert!(
        !f.codex().join("AGENTS.md").exists(),
        "rotted bytes written"
    );
    assert!(!f.state().join("journal.json").exists());
    // fsck names it and sets it aside; the next sync fetches it again and repairs.
    let fsck = f.run(&["fsck"]);
    assert_eq!(fsck.code, 1);
    assert!(fsck.stderr.contains(&id), "{}", fsck.stderr);
    let r = f.json(&["sync", "--apply"]);
    assert_eq!(r["apply"]["result"], "applied", "{r}");
    assert_eq!(read(&f, "AGENTS.md"), "# Agents\n");
    assert!(f.run(&["fsck"]).ok());
}

#[test]
fn bad_toml_never_prints_a_panic() {
    let (m, _master, f) = pair();
    // Inputs on which the TOML parser itself panics.
    m.write("config.toml", "==\n[.");
    settle();
    let r = crate::util::run_env(&m.home, &["master", "rebuild"], &[("RUST_BACKTRACE", "1")]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let r = crate::util::run_env(&f.home, &["sync", "--apply"], &[("RUST_BACKTRACE", "1")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("backtrace"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("not valid TOML"), "{}", r.stderr);
}

#[test]
fn status_prints_what_it_can_when_a_managed_path_cannot_be_compared() {
    let (_m, _master, f) = pair();
    let agents = f.codex().join("AGENTS.md");
    fs::remove_file(&agents).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&agents)
        .status()
        .unwrap();
    assert!(made.success());
    let r = f.run(&["--json", "status"]);
    assert!(r.ok(), "status must not die: {}", r.stderr);
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(s["drift"].is_null(), "{s}");
    assert!(
        s["drift_error"].as_str().unwrap().contains("AGENTS.md"),
        "{s}"
    );
    assert_eq!(
        s["remote"]["reachable"], true,
        "the rest is still reported: {s}"
    );
    let human = f.run(&["status"]);
    assert!(human.stdout.contains("not checked"), "{}", human.stdout);
}
