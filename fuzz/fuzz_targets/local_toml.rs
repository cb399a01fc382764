//! `LocalConfig::parse` on arbitrary text (a follower's `~/.codexport/local.toml`): never
//! panics, and what it accepts is usable.
#![no_main]

use codexport::overlay::LocalConfig;
use libfuzzer_sys::fuzz_target;
use std::sync::Once;

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
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = LocalConfig::parse(text) {
        assert!(cfg.keep_applies >= 1);
        for path in cfg.policies.keys() {
            let _ = cfg.policy(path);
        }
    }
});
