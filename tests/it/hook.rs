//! The session-start hook (hooks.json merge, install, `hook run`), the master service files,
//! shell completions, and the real Codex CLI running the hook.

use crate::util::{Home, Master, Run, master_home};
use codexport::overlay::hooks::{self as hooks_merge, HookEntry, TrustMove};
use codexport::service::{self, Platform, ServiceSpec};
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ours() -> HookEntry {
    HookEntry::new(Path::new("/opt/code x/codexport"), 3000, "")
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// A follower's hooks.json with hooks of its own (keys in a deliberate, unsorted order).
const EXISTING: &str = r#"{
  "version": 2,
  "hooks": {
    "SessionStart": [
      {"matcher": "startup", "hooks": [{"type": "command", "command": "echo hello", "timeout": 5}]}
    ],
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [{"type": "command", "command": "check-bash"}]}
    ]
  },
  "aaa": true
}"#;

#[test]
fn merge_puts_ours_first_and_keeps_everything_else_in_order() {
    let entry = ours();
    assert_eq!(
        entry.command,
        "\"/opt/code x/codexport\" hook run --timeout-ms 3000"
    );
    assert_eq!(entry.timeout, 4, "ceil(3000 ms) + 1 s");
    let merged = hooks_merge::merge_hooks_json(Some(EXISTING.as_bytes()), Some(&entry)).unwrap();
    let text = String::from_utf8(merged.clone()).unwrap();
    let (v, h, a) = (
        text.find("\"version\"").unwrap(),
        text.find("\"hooks\"").unwrap(),
        text.find("\"aaa\"").unwrap(),
    );
    assert!(v < h && h < a, "top-level order kept:\n{text}");
    assert!(
        text.find("\"SessionStart\"").unwrap() < text.find("\"PreToolUse\"").unwrap(),
        "event order kept:\n{text}"
    );
    let doc = parse(&merged);
    let start = doc["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(start.len(), 2);
    assert_eq!(
        start[0],
        json!({"matcher": "startup|resume", "hooks": [{"type": "command", "command": entry.command, "timeout": 4}]})
    );
    assert_eq!(start[1]["hooks"][0]["command"], "echo hello");
    assert_eq!(
        doc["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
        "check-bash"
    );
    assert_eq!(doc["version"], 2);

    // Idempotent, and uninstall gives back the user's hooks exactly.
    assert_eq!(
        hooks_merge::merge_hooks_json(Some(&merged), Some(&entry)).unwrap(),
        merged
    );
    let removed = hooks_merge::merge_hooks_json(Some(&merged), None).unwrap();
    assert_eq!(parse(&removed), parse(EXISTING.as_bytes()));
    assert_eq!(
        hooks_merge::merge_hooks_json(Some(&removed), None).unwrap(),
        removed
    );
    // Nothing to do: the bytes stay as they are (the master's formatting survives).
    assert_eq!(
        hooks_merge::merge_hooks_json(Some(EXISTING.as_bytes()), None).unwrap(),
        EXISTING.as_bytes()
    );
    // No file yet.
    let fresh = hooks_merge::merge_hooks_json(None, Some(&entry)).unwrap();
    assert_eq!(
        parse(&fresh),
        json!({"hooks": {"SessionStart": [start[0].clone()]}})
    );
    assert!(fresh.ends_with(b"\n"));
}

#[test]
fn merge_strips_codexport_handlers_from_the_master_and_older_versions() {
    let master = r#"{"hooks":{"SessionStart":[
        {"matcher":"startup|resume","hooks":[{"type":"command","command":"\"/Users/m/.cargo/bin/codexport\" hook run --timeout-ms 3000","timeout":4}]},
        {"matcher":"startup","hooks":[{"type":"command","command":"codexport hook sync"},{"type":"command","command":"keep-me"}]},
        {"matcher":"resume","hooks":[]}
    ],"Stop":[{"hooks":[{"type":"command","command":"/usr/local/bin/codexport --home /x hook run"}]}]}}"#;
    let merged =
        parse(&hooks_merge::merge_hooks_json(Some(master.as_bytes()), Some(&ours())).unwrap());
    let start = merged["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(start.len(), 3, "{merged}");
    assert_eq!(start[0]["hooks"][0]["command"], ours().command);
    assert_eq!(
        start[1]["hooks"],
        json!([{"type": "command", "command": "keep-me"}]),
        "a shared group keeps its other handlers"
    );
    assert_eq!(
        start[2],
        json!({"matcher": "resume", "hooks": []}),
        "a group that was empty before is not ours to drop"
    );
    assert!(
        merged["hooks"].get("Stop").is_none(),
        "an event left empty by the strip goes: {merged}"
    );
    let without = parse(&hooks_merge::merge_hooks_json(Some(master.as_bytes()), None).unwrap());
    assert_eq!(
        without["hooks"]["SessionStart"].as_array().unwrap().len(),
        2
    );

    assert!(hooks_merge::is_codexport_command(
        "'/home/u/bin/codexport' hook run --timeout-ms 9"
    ));
    assert!(!hooks_merge::is_codexport_command("echo codexport"));
    assert!(!hooks_merge::is_codexport_command("hook run codexport"));
}

#[test]
fn merge_refuses_invalid_files() {
    for bad in [
        "{not json",
        "[1, 2]",
        "{\"hooks\": []}",
        "{\"hooks\": {\"SessionStart\": {}}}",
    ] {
        let err = hooks_merge::merge_hooks_json(Some(bad.as_bytes()), Some(&ours())).unwrap_err();
        let code = miette::Diagnostic::code(&err).unwrap().to_string();
        assert_eq!(code, "codexport::usage::bad_hooks_json", "{bad}: {err}");
    }
}

#[test]
fn trust_entries_move_with_their_handlers() {
    let entry = ours();
    let moves = hooks_merge::trust_key_moves(Some(EXISTING.as_bytes()), Some(&entry)).unwrap();
    assert_eq!(
        moves,
        vec![TrustMove {
            from: "session_start:0:0".into(),
            to: Some("session_start:1:0".into())
        }]
    );
    let installed = hooks_merge::merge_hooks_json(Some(EXISTING.as_bytes()), Some(&entry)).unwrap();
    // Installing again keeps our own trust (same handler) and the user's where it is.
    assert!(
        hooks_merge::trust_key_moves(Some(&installed), Some(&entry))
            .unwrap()
            .is_empty()
    );
    // Another timeout is another handler: its old trust goes.
    let other = HookEntry::new(Path::new("/opt/code x/codexport"), 9000, "");
    let moves = hooks_merge::trust_key_moves(Some(&installed), Some(&other)).unwrap();
    assert_eq!(
        moves,
        vec![TrustMove {
            from: "session_start:0:0".into(),
            to: None
        }]
    );
    let back = hooks_merge::trust_key_moves(Some(&installed), None).unwrap();
    assert_eq!(
        back,
        vec![
            TrustMove {
                from: "session_start:0:0".into(),
                to: None
            },
            TrustMove {
                from: "session_start:1:0".into(),
                to: Some("session_start:0:0".into())
            }
        ]
    );

    let path = "/h/.codex/hooks.json";
    let config = format!(
        "# mine\nmodel = \"m\"\n\n[hooks.state.\"{path}:session_start:0:0\"]\ntrusted_hash = \"sha256:user\"\n\n[hooks.state.\"{path}:pre_tool_use:0:0\"]\ntrusted_hash = \"sha256:bash\"\n"
    );
    let mut doc: toml_edit::DocumentMut = config.parse().unwrap();
    hooks_merge::move_trust_state(
        &mut doc,
        path,
        &hooks_merge::trust_key_moves(Some(EXISTING.as_bytes()), Some(&entry)).unwrap(),
    );
    let state = doc["hooks"]["state"].as_table().unwrap();
    assert!(state.get(&format!("{path}:session_start:0:0")).is_none());
    assert_eq!(
        state[&format!("{path}:session_start:1:0")]["trusted_hash"].as_str(),
        Some("sha256:user")
    );
    assert_eq!(
        state[&format!("{path}:pre_tool_use:0:0")]["trusted_hash"].as_str(),
        Some("sha256:bash")
    );
    assert!(
        doc.to_string().starts_with("# mine\nmodel = \"m\"\n"),
        "{doc}"
    );
}

#[test]
fn feature_flag_is_set_keeping_the_rest() {
    let text = "# top comment\nmodel = \"gpt\" # trailing\n\n[features]\nother = 1\n";
    let on = hooks_merge::enable_hooks_feature(text).unwrap();
    assert!(
        on.starts_with("# top comment\nmodel = \"gpt\" # trailing\n"),
        "{on}"
    );
    let doc: toml_edit::DocumentMut = on.parse().unwrap();
    assert_eq!(doc["features"]["hooks"].as_bool(), Some(true));
    assert_eq!(doc["features"]["other"].as_integer(), Some(1));
    assert_eq!(
        hooks_merge::enable_hooks_feature(&on).unwrap(),
        on,
        "idempotent"
    );
    let inline: toml_edit::DocumentMut =
        hooks_merge::enable_hooks_feature("features = { hooks = false, codex_hooks = false }\n")
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(inline["features"]["hooks"].as_bool(), Some(true));
    assert_eq!(inline["features"]["codex_hooks"].as_bool(), Some(true));
    let empty: toml_edit::DocumentMut = hooks_merge::enable_hooks_feature("")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(empty["features"]["hooks"].as_bool(), Some(true));
    assert!(hooks_merge::enable_hooks_feature("features = 3\n").is_err());
}

/// Runs the binary with extra environment and optional stdin, and times it.
fn run_env(
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (Run, Duration) {
    let mut cmd = crate::util::codexport();
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CODEXPORT_HOME")
        .env_remove("CODEXPORT_CODEX_BIN")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, started.elapsed())
}

fn hook_log(h: &Home) -> String {
    fs::read_to_string(h.state().join("logs/hook.log")).unwrap_or_default()
}

const SESSION_JSON: &str = r#"{"session_id":"s","transcript_path":"/t","cwd":"/","hook_event_name":"SessionStart","model":"m","permission_mode":"default","source":"startup"}"#;

/// Enrolls `h` with a master that is not there: a made-up key and `url`.
fn fake_enrollment(h: &Home, url: &str) {
    let key = [7u8; 32];
    let fp = codexport::object::Fingerprint::of_key(&key);
    fs::create_dir_all(h.state()).unwrap();
    fs::write(
        h.state().join("follower.toml"),
        format!("master_url = \"{url}\"\nfingerprint = \"{fp}\"\nmaster_key = \"{}\"\nname = \"f\"\nenrolled_ms = 0\n", codexport::object::id::hex(&key)),
    )
    .unwrap();
    fs::write(
        h.state().join("credential"),
        format!("cxc1_{}\n", "ab".repeat(32)),
    )
    .unwrap();
    drop(codexport::store::Store::open_or_create(&h.state()).unwrap());
}

#[test]
fn hook_run_keeps_its_deadline_against_a_master_that_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn); // accepted, never answered
        }
    });
    let f = Home::new();
    fake_enrollment(&f, &url);
    let (r, took) = run_env(
        &f.home,
        &["hook", "run", "--timeout-ms", "1500"],
        &[],
        Some(SESSION_JSON),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "",
        "a SessionStart hook's stdout goes to the model"
    );
    let log = hook_log(&f);
    assert!(
        took < Duration::from_millis(1500 + 1000),
        "took {took:?}: {log}"
    );
    assert!(
        took >= Duration::from_millis(1400),
        "it waited for the master until the deadline: {took:?}: {log}"
    );
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(" error ") && log.contains(&url), "{log}");

    // A dead port: logged at once, exit 0.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    fake_enrollment(&f, &dead_url);
    let (r, took) = run_env(&f.home, &["hook", "run"], &[], Some(SESSION_JSON));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        hook_log(&f)
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(" error ")),
        "{}",
        hook_log(&f)
    );

    // Another sync holds the lock past the deadline: logged, exit 0.
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(f.state().join("lock"))
        .unwrap();
    lock.lock().unwrap();
    let (r, took) = run_env(
        &f.home,
        &["hook", "run", "--timeout-ms", "600"],
        &[],
        Some(SESSION_JSON),
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(took < Duration::from_millis(600 + 1000), "{took:?}");
    let log = hook_log(&f);
    assert!(
        log.lines()
            .nth(2)
            .is_some_and(|l| l.contains(" error ")
                && l.contains("another codexport sync or apply is running")),
        "{log}"
    );
}

#[test]
fn hook_run_when_not_enrolled_or_misused_prints_nothing_and_exits_0() {
    let f = Home::new();
    let (r, took) = run_env(&f.home, &["hook", "run"], &[], Some(SESSION_JSON));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    assert!(took < Duration::from_secs(2));
    let log = hook_log(&f);
    assert!(
        log.contains(" error ") && log.contains("not enrolled"),
        "{log}"
    );
    // Odd arguments and --help never reach stdout or fail; stdin may stay open (a terminal).
    for args in [
        &["hook", "run", "--help"][..],
        &["hook", "run", "--timeout-ms", "soon", "--unknown", "x"],
        &["hook", "run", "-V"],
    ] {
        let (r, _) = run_env(&f.home, args, &[], None);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, ""),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(hook_log(&f).lines().count(), 4);
    let line = hook_log(&f).lines().next().unwrap().to_owned();
    let time = line.split(' ').next().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "UTC time first: {line}"
    );
}

#[test]
fn hook_install_refuses_a_master_and_an_unenrolled_machine() {
    let m = master_home();
    let before = read(&m.codex().join("hooks.json"));
    let (r, _) = run_env(&m.home, &["hook", "install"], &[], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("this machine is the master"),
        "{}",
        r.stderr
    );
    let f = Home::new();
    let (r, _) = run_env(&f.home, &["hook", "install"], &[], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not enrolled"), "{}", r.stderr);
    assert!(!f.codex().join("hooks.json").exists());
    assert_eq!(read(&m.codex().join("hooks.json")), before);
}

/// A master serving on loopback and an enrolled follower (applied).
fn pair() -> (Home, Master, Home) {
    crate::util::pair_with(|_| {})
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn hook_install_without_codex_is_idempotent_and_uninstall_keeps_other_hooks() {
    let (_m, _master, f) = pair();
    f.write("hooks.json", EXISTING);
    let no_codex = [("PATH", "/usr/bin:/bin")];
    let (r, _) = run_env(
        &f.home,
        &["--json", "hook", "install", "--timeout-ms", "2500"],
        &no_codex,
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("/hooks"),
        "tells the user to accept the hook in Codex: {}",
        r.stderr
    );
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["trust"], "no_codex");
    let hooks = read(&f.codex().join("hooks.json"));
    let doc = parse(hooks.as_bytes());
    let cmd = doc["hooks"]["SessionStart"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        cmd.starts_with(&format!(
            "\"{}\" hook run --timeout-ms 2500 --home ",
            env!("CARGO_BIN_EXE_codexport")
        )),
        "{cmd}"
    );
    assert_eq!(doc["hooks"]["SessionStart"][0]["hooks"][0]["timeout"], 4);
    assert_eq!(
        doc["hooks"]["SessionStart"][1]["hooks"][0]["command"],
        "echo hello"
    );
    let config = read(&f.codex().join("config.toml"));
    assert!(
        config.contains("# master config"),
        "the rest of config.toml stays: {config}"
    );
    let cdoc: toml_edit::DocumentMut = config.parse().unwrap();
    assert_eq!(cdoc["features"]["hooks"].as_bool(), Some(true));
    let entry = hooks_merge::installed(&f.state()).unwrap().unwrap();
    assert_eq!(entry.command, cmd);

    let (again, _) = run_env(
        &f.home,
        &["hook", "install", "--timeout-ms", "2500"],
        &no_codex,
        None,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(read(&f.codex().join("hooks.json")), hooks, "idempotent");
    assert_eq!(read(&f.codex().join("config.toml")), config, "idempotent");

    let (r, _) = run_env(&f.home, &["hook", "uninstall"], &[], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        parse(read(&f.codex().join("hooks.json")).as_bytes()),
        parse(EXISTING.as_bytes())
    );
    assert!(hooks_merge::installed(&f.state()).unwrap().is_none());

    // The server's key is not the pinned one: refused, logged, exit 0.
    let other = [9u8; 32];
    let toml = read(&f.state().join("follower.toml"));
    let mut doc: toml_edit::DocumentMut = toml.parse().unwrap();
    doc["master_key"] = toml_edit::value(codexport::object::id::hex(&other));
    doc["fingerprint"] =
        toml_edit::value(codexport::object::Fingerprint::of_key(&other).to_string());
    fs::write(f.state().join("follower.toml"), doc.to_string()).unwrap();
    let (r, _) = run_env(&f.home, &["hook", "run"], &[], Some(SESSION_JSON));
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    let log = hook_log(&f);
    assert!(
        log.contains(" error ")
            && log.contains("ms Master fingerprint mismatch.")
            && log.contains("[codexport::trust::fingerprint]"),
        "{log}"
    );
}

#[test]
fn service_files_for_each_platform() {
    let dir = tempfile::tempdir().unwrap();
    // A path that needs quoting everywhere: a space, systemd's % and $, a quote.
    let home = dir.path().join("my home %h $x");
    let bin = dir.path().join("bin dir");
    fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("codexport");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_codexport"), &exe).unwrap();
    let spec = ServiceSpec {
        exe: exe.clone(),
        home: home.clone(),
        codex_dir: None,
        port: 17400,
        path: Some("/usr/local/bin:/usr/bin:/bin".into()),
    };

    let unit = service::systemd_unit(&spec);
    let exec = format!(
        "ExecStart=\"{}/bin dir/codexport\" --home \"{}/my home %%h $$x\" master serve --port 17400",
        dir.path().display(),
        dir.path().display()
    );
    assert!(unit.lines().any(|l| l == exec), "{unit}");
    for line in [
        "Restart=on-failure",
        "RestartSec=5",
        "LimitNOFILE=65536",
        "WantedBy=default.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    let plan = service::install_plan(Platform::Systemd, &spec);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("loginctl enable-linger"))
    );
    assert_eq!(
        service::describe(&plan.steps[2]),
        "systemctl --user enable --now codexport-master.service"
    );
    verify_unit(dir.path(), &unit);

    let plist = service::launchd_plist(&spec, &home.join(".codexport/logs"));
    for want in [
        "<string>dev.codexport.master</string>",
        "<key>RunAtLoad</key>\n  <true/>",
        "<key>KeepAlive</key>\n  <true/>",
        "<string>--port</string>\n    <string>17400</string>",
    ] {
        assert!(plist.contains(want), "{want} missing:\n{plist}");
    }
    assert!(
        plist.contains(&format!(
            "<string>{}/.codexport/logs/master.err.log</string>",
            home.display()
        )),
        "{plist}"
    );
    check_plist(dir.path(), &plist, &spec.argv());
    assert_eq!(
        service::plist_path(&home),
        home.join("Library/LaunchAgents/dev.codexport.master.plist")
    );

    let win = ServiceSpec {
        exe: PathBuf::from(r"C:\Program Files\codexport\codexport.exe"),
        home: PathBuf::from(r"C:\Users\Ann Lee"),
        codex_dir: None,
        port: 17342,
        path: None,
    };
    assert_eq!(
        service::windows_task_command(&win),
        r#""C:\Program Files\codexport\codexport.exe" --home "C:\Users\Ann Lee" master serve --port 17342"#
    );
    let plan = service::install_plan(Platform::Windows, &win);
    let service::Step::Run { argv, .. } = &plan.steps[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        argv[..7],
        [
            "schtasks",
            "/Create",
            "/TN",
            "CodexportMaster",
            "/SC",
            "ONLOGON",
            "/TR"
        ]
    );
    assert_eq!(argv[8], "/F");
    assert!(
        matches!(&plan.steps[1], service::Step::Run { argv, .. } if argv == &["schtasks", "/Run", "/TN", "CodexportMaster"])
    );
}

/// `systemd-analyze verify` on the unit, where systemd is installed.
fn verify_unit(dir: &Path, unit: &str) {
    if let Err(why) = crate::tools::succeed(
        Command::new("systemd-analyze").arg("--version"),
        "systemd-analyze --version",
    ) {
        codexport_dev::skip!("systemd-analyze verify of the unit", why);
    }
    let path = dir.join(service::UNIT_NAME);
    fs::write(&path, unit).unwrap();
    let user = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&path)
        .output()
        .unwrap();
    let out = if user.status.success() {
        user
    } else {
        // Without a user session (CI, containers) the user manager cannot start; the system
        // one checks the same syntax, quoting and executable.
        eprintln!(
            "systemd-analyze verify --user unavailable ({}); using plain verify",
            String::from_utf8_lossy(&user.stderr).trim()
        );
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap()
    };
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{}\n{unit}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parses the plist with Python's plistlib, where python3 exists.
fn check_plist(dir: &Path, plist: &str, argv: &[String]) {
    let path = dir.join("agent.plist");
    fs::write(&path, plist).unwrap();
    let script =
        "import plistlib,sys,json; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps(d))";
    let out = match Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => codexport_dev::skip!("the plist parse", format!("python3: {e}")),
    };
    assert!(
        out.status.success(),
        "plistlib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["ProgramArguments"], json!(argv));
    assert_eq!(
        (d["RunAtLoad"].as_bool(), d["KeepAlive"].as_bool()),
        (Some(true), Some(true))
    );
}

#[test]
fn service_install_cli_dry_run_and_missing_systemctl() {
    let m = master_home();
    let (r, _) = run_env(
        &m.home,
        &[
            "master",
            "service",
            "install",
            "--dry-run",
            "--port",
            "17400",
        ],
        &[],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("master serve --port 17400")
            && r.stdout.contains("systemctl --user enable --now"),
        "{}",
        r.stdout
    );
    let unit = service::unit_path(&m.home);
    assert!(!unit.exists(), "a dry run writes nothing");
    let empty = tempfile::tempdir().unwrap();
    let (r, _) = run_env(
        &m.home,
        &["master", "service", "install"],
        &[("PATH", empty.path().to_str().unwrap())],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("`systemctl` is not available"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("systemctl --user daemon-reload"),
        "names what to run: {}",
        r.stderr
    );
    assert!(read(&unit).contains("master serve --port 17342"));
    let f = Home::new();
    let (r, _) = run_env(
        &f.home,
        &["master", "service", "install", "--dry-run"],
        &[],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn completions_bash() {
    let h = Home::new();
    let (r, _) = run_env(&h.home, &["completions", "bash"], &[], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("_codexport()") && r.stdout.contains("complete -F _codexport"),
        "{}",
        &r.stdout[..r.stdout.len().min(400)]
    );
    assert!(r.stdout.contains("hook") && r.stdout.contains("service"));
}

/// Waits for the real Codex to start a session (it runs SessionStart hooks before calling
/// the model, which fails offline), until `hook.log` has `lines` lines.
fn codex_session(codex: &Path, f: &Home, lines: usize) -> String {
    let mut child = Command::new(codex)
        .args(["exec", "--skip-git-repo-check", "say hi"])
        .env("CODEX_HOME", f.codex())
        .env("HOME", &f.home)
        .current_dir(&f.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while hook_log(f).lines().count() < lines && started.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::tools::stop_codex(&mut child);
    let log = hook_log(f);
    assert!(
        log.lines().count() >= lines,
        "codex exec did not run the hook within 60 s (log: {log:?})"
    );
    let line = log.lines().nth(lines - 1).unwrap().to_owned();
    eprintln!("hook.log after codex exec: {line}");
    line
}

#[test]
fn real_codex_runs_the_installed_hook() {
    let codex = match crate::tools::codex_cli() {
        Ok(codex) => codex,
        Err(why) => codexport_dev::skip!("real_codex_runs_the_installed_hook", why),
    };
    let (m, master, f) = pair();
    let bin = [("CODEXPORT_CODEX_BIN", codex.to_str().unwrap())];
    let (r, _) = run_env(&f.home, &["--json", "hook", "install"], &bin, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let key = format!(
        "{}:session_start:0:0",
        f.codex().join("hooks.json").display()
    );
    assert_eq!(
        (report["trust"].as_str(), report["trust_key"].as_str()),
        (Some("trusted"), Some(key.as_str())),
        "{report}"
    );
    let config: toml_edit::DocumentMut = read(&f.codex().join("config.toml")).parse().unwrap();
    assert!(
        config["hooks"]["state"][&key]["trusted_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let (again, _) = run_env(&f.home, &["hook", "install"], &bin, None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        read(&f.codex().join("config.toml")),
        config.to_string(),
        "installing twice changes nothing"
    );

    // A new master revision: Codex starting a session brings it in.
    m.write("AGENTS.md", "# Agents, from the hook\n");
    m.json(&["master", "rebuild"]);
    let line = codex_session(&codex, &f, 1);
    assert!(
        line.contains(" applied ") && line.contains("revision 2"),
        "{line}"
    );
    assert_eq!(
        read(&f.codex().join("AGENTS.md")),
        "# Agents, from the hook\n"
    );
    assert!(
        hooks_merge::merge_hooks_json(Some(read(&f.codex().join("hooks.json")).as_bytes()), None)
            .unwrap()
            != read(&f.codex().join("hooks.json")).into_bytes(),
        "the applied revision keeps the hook"
    );

    // The master goes away: Codex still starts, the hook logs the error within its deadline.
    master.stop();
    let line = codex_session(&codex, &f, 2);
    assert!(line.contains(" error "), "{line}");
    let ms: u64 = line
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches("ms")
        .parse()
        .unwrap();
    assert!(ms <= 3000 + 500, "{line}");
}

/// The merge keeps the installed hook first in hooks.json (and the feature flag on) when the
/// master's hooks.json changes; the master's own codexport handler is dropped.
#[test]
fn installed_hook_survives_a_master_hooks_json_change() {
    let (m, _master, f) = pair();
    let (r, _) = run_env(
        &f.home,
        &["hook", "install"],
        &[("PATH", "/usr/bin:/bin")],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ours = hooks_merge::installed(&f.state()).unwrap().unwrap();
    m.write(
        "hooks.json",
        r#"{"hooks":{"SessionStart":[{"matcher":"startup","hooks":[{"type":"command","command":"echo from-master","timeout":3}]},{"hooks":[{"type":"command","command":"codexport hook run"}]}]}}"#,
    );
    m.json(&["master", "rebuild"]);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied", "{s}");
    let doc = parse(read(&f.codex().join("hooks.json")).as_bytes());
    let start = doc["hooks"]["SessionStart"].as_array().unwrap();
    assert_eq!(start.len(), 2, "{doc}");
    assert_eq!(start[0]["hooks"][0]["command"], ours.command.as_str());
    assert_eq!(start[1]["hooks"][0]["command"], "echo from-master");
    let config: toml_edit::DocumentMut = read(&f.codex().join("config.toml")).parse().unwrap();
    assert_eq!(config["features"]["hooks"].as_bool(), Some(true));
    // Nothing left for the next apply to do.
    assert_eq!(f.json(&["diff"])["plan"]["ops"], json!([]), "stable merge");
}
