//! `merge_config` on arbitrary master config.toml text and `mcps.local.toml` text (split at
//! the first NUL byte; no NUL means no local file), with a fixed follower context. It must
//! never panic, and a merge it accepts must be valid TOML: a follower's Codex reads it. Each
//! input is merged twice, with and without an MCP launcher and master host.
#![no_main]

use codexport::overlay::config::{ConfigContext, merge_config};
use codexport::overlay::hooks::TrustMove;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::{Once, OnceLock};

/// What the follower's Codex wrote itself: projects and hooks trust entries to keep.
const CURRENT: &str = r#"model = "gpt-5"
[projects."/home/f/mine"]
trust_level = "trusted"
[projects."/home/f/src/app"]
trust_level = "trusted"
[hooks.state."/home/f/.codex/hooks.json:session_start:0:0"]
trusted_hash = "sha256:ab"
"#;
const PREVIOUS_MASTER: &str = r#"[projects."/home/f/src/app"]
trust_level = "trusted"
"#;

fn context() -> &'static ConfigContext {
    static CTX: OnceLock<ConfigContext> = OnceLock::new();
    CTX.get_or_init(|| ConfigContext {
        master_home: "/home/m".into(),
        master_codex_dir: "/home/m/.codex".into(),
        home: "/home/f".into(),
        codex_dir: "/home/f/.codex".into(),
        path_variables: BTreeMap::from([
            ("data".to_owned(), "/srv/data".to_owned()),
            ("code".to_owned(), "/home/f/code".to_owned()),
            ("odd".to_owned(), "C:\\Program Files\\\"x\" 'y'".to_owned()),
        ]),
        master_host: Some("master.example.ts.net".into()),
        local_mcps: None,
        allow_mcp_overrides: vec!["fs".into()],
        current: Some(CURRENT.into()),
        previous_master: Some(PREVIOUS_MASTER.into()),
        launcher: Some("/home/f/.local/bin/codexport".into()),
        hooks_json_path: "/home/f/.codex/hooks.json".into(),
        trust_moves: vec![
            TrustMove {
                from: "session_start:0:0".into(),
                to: Some("session_start:1:0".into()),
            },
            TrustMove {
                from: "stop:0:0".into(),
                to: None,
            },
        ],
        ..ConfigContext::default()
    })
}

/// toml_edit 0.23's parser panics on some malformed input (toml-rs/toml#1100); codexport
/// catches that panic and refuses the text as a parse error. libFuzzer's panic hook aborts
/// on every panic before anything can catch it, so a panic raised inside toml_edit's parser
/// is let unwind here; one that codexport failed to catch still reaches libFuzzer's own
/// `catch_unwind` and aborts. Every other panic goes to libFuzzer's hook as usual.
fn let_parser_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parser = info
                .location()
                .is_some_and(|l| l.file().contains("toml_edit") && l.file().contains("/parser/"));
            if !in_parser {
                libfuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_parser_panics_unwind();
    let (master, local) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(master) = std::str::from_utf8(master) else {
        return;
    };
    let local = match local.map(std::str::from_utf8) {
        Some(Ok(text)) => Some(text.to_owned()),
        Some(Err(_)) => return,
        None => None,
    };
    let with_launcher = ConfigContext {
        local_mcps: local,
        ..context().clone()
    };
    // Without the launcher, command servers keep their env and cwd; without a master host,
    // loopback URLs stay.
    let plain = ConfigContext {
        launcher: None,
        master_host: None,
        ..with_launcher.clone()
    };
    for ctx in [with_launcher, plain] {
        let Ok(merged) = merge_config(master, &ctx) else {
            continue;
        };
        let problem =
            match std::panic::catch_unwind(|| merged.text.parse::<toml_edit::DocumentMut>()) {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the TOML parser panics on it".to_owned(),
            };
        panic!(
            "the merge produced invalid TOML ({problem}):\n--- master\n{master}\n--- local\n{:?}\n--- launcher {:?}\n--- merged\n{}",
            ctx.local_mcps, ctx.launcher, merged.text
        );
    }
});
