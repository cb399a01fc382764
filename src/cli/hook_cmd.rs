//! `hook install`, `hook uninstall`, `hook run`.

use super::Global;
use super::output::Output;
use crate::hook;
use crate::paths::{Paths, tilde};
use std::fmt::Write;

/// `--timeout-ms` of `hook run`: a hook must never fail on its arguments, so anything that
/// is not a number means the default.
#[allow(clippy::unnecessary_wraps)]
pub fn lenient_ms(s: &str) -> Result<u64, std::convert::Infallible> {
    Ok(s.trim().parse().unwrap_or(hook::DEFAULT_TIMEOUT_MS))
}

pub fn install(paths: &Paths, timeout_ms: u64) -> miette::Result<Output> {
    let exe = std::env::current_exe().map_err(|e| hook::HookError::Io {
        path: "the running codexport executable".into(),
        source: e,
    })?;
    let r = hook::install(paths, &exe, timeout_ms)?;
    let mut human = format!(
        "installed    codexport's SessionStart hook in {}\ncommand      {}\ntimeout      {} ms (Codex allows {} s)\n",
        tilde(&paths.codex_dir.join("hooks.json"), &paths.home),
        r.entry.command,
        timeout_ms,
        r.entry.timeout
    );
    match r.trust {
        "trusted" => {
            writeln!(
                human,
                "trusted      {}",
                r.trust_key.as_deref().unwrap_or("")
            )
            .ok();
        }
        "failed" => {
            let why = r.trust_error.as_deref().unwrap_or("unknown error");
            eprintln!(
                "warning: the hook is installed but Codex does not trust it yet ({why}).\nOpen Codex once and accept the codexport hook under /hooks; until then Codex skips it."
            );
        }
        _ => {
            eprintln!(
                "warning: no codex binary found (looked for `codex` on PATH and $CODEXPORT_CODEX_BIN), so the hook is installed but not trusted yet.\nOpen Codex once and accept the codexport hook under /hooks; until then Codex skips it."
            );
        }
    }
    Ok(Output::new(&r, human))
}

pub fn uninstall(paths: &Paths) -> miette::Result<Output> {
    let r = hook::uninstall(paths)?;
    let human = if r.removed == 0 && !r.hook_toml_removed {
        "codexport's hook was not installed; nothing changed\n".to_owned()
    } else {
        format!(
            "removed codexport's hook ({} handler(s)); other hooks are untouched\n",
            r.removed
        )
    };
    Ok(Output::new(&r, human))
}

/// `hook run`: never prints on stdout, always returns 0. Anything that goes wrong, panics
/// included, ends up in the log or on stderr.
pub fn run(global: &Global, timeout_ms: u64) -> i32 {
    let paths = global.paths();
    let _ = std::panic::catch_unwind(|| hook::run(&paths, timeout_ms));
    0
}

/// For the dispatcher's exhaustive match (`cli::run` handles `hook run` before dispatch).
pub fn run_output(global: &Global, timeout_ms: u64) -> Output {
    run(global, timeout_ms);
    Output::new(&serde_json::json!({}), "")
}
