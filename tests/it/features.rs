//! One test per README feature that had none: each runs the real binary as a user would (on
//! temporary homes, loopback only) and checks what the README promises.

use crate::util::{Home, Master, Run, enroll, master_home, pair_with, settle};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the binary on `home` with extra environment variables.
fn run_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = crate::util::codexport()
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CODEXPORT_HOME")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `codexport demo --keep`: the whole round trip on temporary homes, which stay for a look.
#[test]
fn demo_runs_the_round_trip_it_describes() {
    let h = Home::new();
    let r = h.run(&["--json", "demo", "--keep"]);
    assert!(r.ok(), "{}\n{}", r.stdout, r.stderr);
    // The steps print their commands and outputs; the JSON summary comes last.
    for step in [
        "master init",
        "follower join --apply",
        "sync --apply",
        "rollback 1",
    ] {
        assert!(r.stdout.contains(step), "{step} missing:\n{}", r.stdout);
    }
    let last = r.stdout.rfind("\n{").expect("a JSON summary");
    let summary: serde_json::Value = serde_json::from_str(&r.stdout[last..]).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    let kept = Path::new(summary["kept"].as_str().unwrap()).to_owned();
    let prompt = "prompts/review.md";
    let master = read(&kept.join("master-home/.codex").join(prompt));
    let follower = read(&kept.join("follower-home/.codex").join(prompt));
    assert!(master.contains("correctness"), "{master}");
    assert_ne!(
        master, follower,
        "the follower was rolled back to revision 1"
    );
    fs::remove_dir_all(&kept).unwrap();
}

/// A follower of one master refuses another master's link unless `--reset-trust` says so.
#[test]
fn reset_trust_is_needed_to_follow_another_master() {
    let a = master_home();
    let master_a = Master::start(&a, false);
    let f = Home::new();
    enroll(&a, &master_a, &f);
    let b = master_home();
    b.write("AGENTS.md", "# master b\n");
    settle();
    b.json(&["master", "rebuild"]);
    let master_b = Master::start(&b, false);
    let link = b.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master_b.port(),
    ]);
    let link = link["link"].as_str().unwrap();
    let config = read(&f.state().join("follower.toml"));
    let refused = f.run(&["follower", "join", "--apply", link]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("already enrolled") && refused.stderr.contains("--reset-trust"),
        "{}",
        refused.stderr
    );
    assert_eq!(read(&f.state().join("follower.toml")), config, "unchanged");
    let joined = f.json(&["follower", "join", "--apply", "--reset-trust", link]);
    assert_eq!(joined["sync"]["apply"]["result"], "applied", "{joined}");
    assert_eq!(read(&f.codex().join("AGENTS.md")), "# master b\n");
    let fingerprint = b.json(&["status"])["fingerprint"].clone();
    assert_eq!(f.json(&["status"])["fingerprint"], fingerprint);
    assert_eq!(f.json(&["sync"])["result"], "current");
}

/// `[policies] "AGENTS.md" = "keep-local"`: the follower's edited copy stays while the
/// master's copy changes; a path without the policy is replaced (its edit backed up).
#[test]
fn keep_local_policy_keeps_the_followers_copy() {
    let (m, _master, f) = pair_with(|_| {});
    fs::write(
        f.state().join("local.toml"),
        "[policies]\n\"AGENTS.md\" = \"keep-local\"\n",
    )
    .unwrap();
    fs::write(f.codex().join("AGENTS.md"), "# mine\n").unwrap();
    fs::write(f.codex().join("prompts/fix.md"), "my fix\n").unwrap();
    m.write("AGENTS.md", "# the master's new agents\n");
    m.write("prompts/fix.md", "the master's new fix\n");
    settle();
    m.json(&["master", "rebuild"]);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied", "{s}");
    assert_eq!(read(&f.codex().join("AGENTS.md")), "# mine\n");
    assert_eq!(
        read(&f.codex().join("prompts/fix.md")),
        "the master's new fix\n"
    );
    let backups = f.state().join("backups");
    let backed_up: Vec<_> = fs::read_dir(&backups)
        .unwrap()
        .map(|d| d.unwrap().path().join("codex/prompts/fix.md"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(backed_up.len(), 1, "the replaced edit is backed up");
    assert_eq!(read(&backed_up[0]), "my fix\n");
}

/// `keepApplies = 2`: only the two newest applies stay as rollback points.
#[test]
fn keep_applies_prunes_old_rollback_points() {
    let (m, _master, f) = pair_with(|f| {
        fs::create_dir_all(f.state()).unwrap();
        fs::write(f.state().join("local.toml"), "keepApplies = 2\n").unwrap();
    });
    for round in 2..=5 {
        m.write("AGENTS.md", format!("# round {round}\n"));
        settle();
        m.json(&["master", "rebuild"]);
        assert_eq!(f.json(&["sync", "--apply"])["number"], round);
    }
    let log = f.json(&["log"]);
    let applied: Vec<u64> = log["applies"]
        .as_array()
        .unwrap_or_else(|| panic!("no applies in {log}"))
        .iter()
        .map(|a| a["number"].as_u64().unwrap())
        .collect();
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [4, 5], "{log}");
}

/// A local skill named like one of the master's is a conflict, until `allowSkillOverrides`
/// names it: then the local skill replaces the master's whole.
#[test]
fn allow_skill_overrides_lets_a_local_skill_replace_the_masters() {
    let (_m, _master, f) = pair_with(|_| {});
    let local = f.state().join("skills/alpha");
    fs::create_dir_all(&local).unwrap();
    fs::write(local.join("SKILL.md"), "---\nname: alpha, mine\n---\n").unwrap();
    let before = read(&f.codex().join("skills/alpha/SKILL.md"));
    let refused = f.run(&["apply"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("alpha") && refused.stderr.contains("allowSkillOverrides"),
        "{}",
        refused.stderr
    );
    assert_eq!(read(&f.codex().join("skills/alpha/SKILL.md")), before);
    fs::write(
        f.state().join("local.toml"),
        "allowSkillOverrides = [\"alpha\"]\n",
    )
    .unwrap();
    let applied = f.json(&["apply"]);
    assert_eq!(applied["result"], "applied", "{applied}");
    assert_eq!(
        read(&f.codex().join("skills/alpha/SKILL.md")),
        "---\nname: alpha, mine\n---\n"
    );
    assert!(
        !f.codex().join("skills/alpha/scripts/run.sh").exists(),
        "the master's skill is replaced whole"
    );
}

/// An `https://` master URL is spoken with TLS: against a plain-HTTP master the handshake
/// fails (nothing is sent in clear text and nothing is stored).
#[test]
fn an_https_master_url_is_spoken_with_tls() {
    let (_m, master, f) = pair_with(|_| {});
    let https = master.url.replace("http://", "https://");
    crate::sync_point_at(&f, &https);
    let r = f.run(&["sync"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let text = r.stderr.to_lowercase();
    // rustls's words for a reply that is not a TLS record.
    assert!(
        text.contains(&https) && text.contains("invalidcontenttype"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("cannot reach the master"), "{}", r.stderr);
}

/// `master service install`, `status` and `uninstall` with systemd, against a stand-in
/// `systemctl` that logs its arguments and answers as systemd does.
#[test]
fn service_status_and_uninstall_drive_systemd() {
    let m = master_home();
    let bin = m.home.join("fake-bin");
    fs::create_dir_all(&bin).unwrap();
    let log = m.home.join("systemctl.log");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {}\ncase \"$*\" in\n  *is-active*) echo active ;;\n  *is-enabled*) echo enabled ;;\nesac\n",
        log.display()
    );
    fs::write(bin.join("systemctl"), script).unwrap();
    fs::set_permissions(bin.join("systemctl"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let env = [("PATH", path.as_str())];
    let unit = codexport::service::unit_path(&m.home);

    let install = run_with(&m.home, &["master", "service", "install"], &env);
    assert!(install.ok(), "{}", install.stderr);
    assert!(unit.exists());
    let status = run_with(&m.home, &["--json", "master", "service", "status"], &env);
    assert!(status.ok(), "{}", status.stderr);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["installed"], true, "{s}");
    assert_eq!(s["state"], "active, enabled", "{s}");

    let uninstall = run_with(&m.home, &["master", "service", "uninstall"], &env);
    assert!(uninstall.ok(), "{}", uninstall.stderr);
    assert!(!unit.exists(), "the unit file is removed");
    let calls = read(&log);
    assert!(
        calls.contains("--user disable --now codexport-master.service"),
        "{calls}"
    );
    assert!(
        calls.lines().last() == Some("--user daemon-reload"),
        "{calls}"
    );
    let status = run_with(&m.home, &["--json", "master", "service", "status"], &env);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["installed"], false, "{s}");
}

/// The zsh completion script loads in a real zsh with compinit and registers itself.
#[test]
fn zsh_completions_load_in_zsh() {
    let h = Home::new();
    let r = h.run(&["completions", "zsh"]);
    assert!(r.ok(), "{}", r.stderr);
    let file = h.home.join("_codexport");
    fs::write(&file, &r.stdout).unwrap();
    let script = format!(
        "autoload -U compinit && compinit -u -D && source {} && print -r -- ${{+functions[_codexport]}} $_comps[codexport]",
        file.display()
    );
    let out = match Command::new("zsh").args(["-f", "-c", &script]).output() {
        Ok(out) => out,
        Err(e) => codexport_dev::skip!("zsh_completions_load_in_zsh", format!("zsh: {e}")),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 _codexport");
}

/// Every file below `dir` with its content hash.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((
                    rel,
                    blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// `bench gen-library DIR --files N --seed S` writes N files, the same ones for the same seed.
#[test]
fn bench_gen_library_is_deterministic() {
    let h = Home::new();
    let gen_into = |name: &str, seed: &str| {
        let dir = h.home.join(name);
        let r = h.run(&[
            "bench",
            "gen-library",
            dir.to_str().unwrap(),
            "--files",
            "60",
            "--seed",
            seed,
        ]);
        assert!(r.ok(), "{}", r.stderr);
        listing(&dir)
    };
    let one = gen_into("one", "3");
    assert_eq!(one.len(), 60);
    assert_eq!(gen_into("two", "3"), one, "same seed, same library");
    assert_ne!(gen_into("three", "4"), one, "another seed, another library");
}

/// The follower's credential is owner-only (0600), in an owner-only state dir.
#[test]
fn the_credential_file_is_owner_only() {
    let (_m, _master, f) = pair_with(|_| {});
    let credential = f.state().join("credential");
    assert!(read(&credential).trim().starts_with("cxc1_"));
    assert_eq!(mode(&credential), 0o600, "{:o}", mode(&credential));
    assert_eq!(mode(&f.state()), 0o700, "{:o}", mode(&f.state()));
}

/// Without `--host`, `master serve` listens on every address (0.0.0.0), so followers on the
/// tailnet reach it.
#[test]
fn master_serve_listens_on_all_addresses_by_default() {
    let m = master_home();
    let mut child = crate::util::codexport()
        .arg("--home")
        .arg(&m.home)
        .args(["master", "serve", "--port", "0", "--no-watch"])
        .env_remove("CODEXPORT_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let port = banner
        .split("http://0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    let health = port.as_ref().map(|p| {
        reqwest::blocking::get(format!("http://127.0.0.1:{p}/v2/health"))
            .and_then(reqwest::blocking::Response::error_for_status)
            .map(|_| ())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(port.is_some(), "{banner}");
    health.unwrap().unwrap();
}

/// Signed heads expire 7 days after signing; a running master re-signs once half of that has
/// passed. The clock is moved with the test hook `CODEXPORT_CLOCK_OFFSET_SECS`, on the
/// follower's side and on the master's.
#[test]
fn heads_expire_after_seven_days_and_a_running_master_re_signs() {
    const DAY: i64 = 86_400;
    let clock = codexport::time::CLOCK_OFFSET_ENV;
    let (m, master, f) = pair_with(|_| {});
    let first = crate::faults::head_of(&master, &f).body;
    let now = codexport::time::now_secs();
    assert!((first.expires_at - now - 7 * DAY).abs() < 60, "{first:?}");

    let days = |n: i64| (n * DAY).to_string();
    let fetched = fs::read(f.state().join("follower-state.json")).ok();
    let late = run_with(&f.home, &["sync", "--apply"], &[(clock, &days(8))]);
    assert_ne!(
        late.code, 0,
        "an 8-day-old head was accepted: {}",
        late.stdout
    );
    assert!(late.stderr.contains("expired"), "{}", late.stderr);
    assert_eq!(
        fs::read(f.state().join("follower-state.json")).ok(),
        fetched
    );
    let within = run_with(&f.home, &["--json", "sync"], &[(clock, &days(6))]);
    assert!(within.ok(), "a 6-day-old head is valid: {}", within.stderr);

    // The master four days later: past half the validity, so it signs the head again.
    master.stop();
    let options = codexport_dev::serve::ServeOptions::new().env(clock, days(4));
    let later = Master::spawn(&m, &options);
    crate::sync_point_at(&f, &later.url);
    let again = crate::faults::head_of(&later, &f).body;
    assert_eq!(
        (again.revision, again.number),
        (first.revision, first.number)
    );
    assert!(
        again.expires_at >= first.expires_at + 4 * DAY - 60,
        "not re-signed: {} then {}",
        first.expires_at,
        again.expires_at
    );
    let accepted = run_with(&f.home, &["--json", "sync"], &[(clock, &days(8))]);
    assert!(accepted.ok(), "{}", accepted.stderr);
    let s: serde_json::Value = serde_json::from_str(&accepted.stdout).unwrap();
    assert_eq!(s["result"], "current", "{s}");
}

/// `master init` reports each top-level name of `~/.codex` it left out, with the reason
/// from the selection table ("What is synced" in the README).
#[test]
fn init_reports_what_it_left_out_and_why() {
    let h = Home::new();
    h.realistic();
    h.write("archived_sessions/z.jsonl", "{}");
    settle();
    let init = h.json(&["master", "init"]);
    let left: std::collections::BTreeMap<String, String> = init["snapshot"]["left_out"]
        .as_array()
        .unwrap_or_else(|| panic!("no left_out in {init}"))
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (name, why) in [
        ("sessions", "Codex runtime state"),
        ("history.jsonl", "per-machine history"),
        ("state_5.sqlite", "Codex databases"),
        ("installation_id", "identifies this machine"),
        ("cache", "caches"),
        ("unlisted.txt", "not in the selection"),
    ] {
        assert_eq!(
            left.get(name).map(String::as_str),
            Some(why),
            "{name}: {left:?}"
        );
    }
    assert!(!left.contains_key("skills") && !left.contains_key("config.toml"));
}
