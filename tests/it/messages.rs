//! Errors a user trips on say what is wrong and what to do, and never lose a join token.

use crate::util::{Home, Master, master_home, pair_with};
use std::fs;

fn error_of(h: &Home, args: &[&str]) -> (i32, serde_json::Value) {
    let r = h.run(&[&["--json"][..], args].concat());
    let v = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

#[test]
fn a_one_millisecond_timeout_names_its_budget() {
    let (_m, _master, f) = pair_with(|_| {});
    let (code, e) = error_of(&f, &["sync", "--timeout-ms", "1"]);
    assert_eq!(code, 1, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("within 1 ms"), "{msg}");
}

#[test]
fn a_damaged_local_credential_is_reported_as_local() {
    let (_m, _master, f) = pair_with(|_| {});
    fs::write(f.state().join("credential"), "cxc1_not-hex\n").unwrap();
    let (code, e) = error_of(&f, &["sync"]);
    assert_eq!(code, 2, "{e}");
    assert_eq!(
        e["error"]["code"], "codexport::usage::damaged_credential",
        "{e}"
    );
    assert!(
        !e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("master refused")
    );
}

#[test]
fn a_url_where_no_master_answers_is_named_as_such() {
    let (_m, master, f) = pair_with(|_| {});
    crate::sync_point_at(&f, &format!("{}/some/path", master.url));
    let (code, e) = error_of(&f, &["sync"]);
    assert_eq!(code, 1, "{e}");
    assert_eq!(e["error"]["code"], "codexport::net::not_a_master", "{e}");
}

#[test]
fn a_malformed_hook_toml_says_how_to_rewrite_it() {
    let (_m, _master, f) = pair_with(|_| {});
    fs::write(f.state().join("hook.toml"), "command = 3\n").unwrap();
    let (code, e) = error_of(&f, &["apply"]);
    assert_eq!(code, 2, "{e}");
    assert_eq!(e["error"]["code"], "codexport::usage::bad_hook_toml", "{e}");
    assert!(
        e["error"]["help"]
            .as_str()
            .unwrap()
            .contains("hook install"),
        "{e}"
    );
}

#[test]
fn a_broken_codex_dir_does_not_spend_the_join_token() {
    let m = master_home();
    let master = Master::start(&m, false);
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let link = link["link"].as_str().unwrap();
    for broken in ["file", "dangling"] {
        let f = Home::new();
        match broken {
            "file" => fs::write(f.codex(), "not a folder").unwrap(),
            _ => std::os::unix::fs::symlink(f.home.join("nowhere"), f.codex()).unwrap(),
        }
        let (code, e) = error_of(&f, &["follower", "join", "--apply", link]);
        assert_eq!(code, 2, "{broken}: {e}");
        assert_eq!(
            e["error"]["code"], "codexport::usage::codex_dir_unusable",
            "{e}"
        );
    }
    // The same link still works.
    let f = Home::new();
    let joined = f.json(&["follower", "join", "--apply", link]);
    assert_eq!(joined["sync"]["apply"]["result"], "applied", "{joined}");
}

#[test]
fn a_link_must_live_at_least_an_hour() {
    let m = master_home();
    let r = m.run(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--expires-hours",
        "0",
    ]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("expires-hours"), "{}", r.stderr);
}
