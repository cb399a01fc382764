//! `hook install` (with its warnings) and `hook run` (which never prints on stdout).

use super::Global;
use super::output::Output;
use crate::hook::{self, Trust};
use crate::paths::Paths;
use std::path::Path;

/// `--timeout-ms` of `hook run`: a hook must never fail on its arguments, so anything that
/// is not a number means the default.
#[allow(clippy::unnecessary_wraps)] // clap's value_parser wants a Result
pub fn lenient_ms(s: &str) -> Result<u64, std::convert::Infallible> {
    Ok(s.trim().parse().unwrap_or(hook::DEFAULT_TIMEOUT_MS))
}

pub fn install(paths: &Paths, exe: &Path, timeout_ms: u64) -> miette::Result<Output> {
    let r = hook::install(paths, exe, timeout_ms)?;
    match r.trust {
        Trust::Trusted => {}
        Trust::Failed => {
            let why = r.trust_error.as_deref().unwrap_or("unknown error");
            eprintln!(
                "warning: the hook is installed but Codex does not trust it yet ({why}).\nOpen Codex once and accept the codexport hook under /hooks; until then Codex skips it."
            );
        }
        Trust::NoCodex => {
            eprintln!(
                "warning: no codex binary found (looked for `codex` on PATH and $CODEXPORT_CODEX_BIN), so the hook is installed but not trusted yet.\nOpen Codex once and accept the codexport hook under /hooks; until then Codex skips it."
            );
        }
    }
    Ok(Output::of(&r))
}

/// `hook run`: never prints on stdout, always returns 0. Anything that goes wrong, panics
/// included, ends up in the log or on stderr.
pub fn run(global: &Global, timeout_ms: u64) -> i32 {
    let paths = global.paths();
    let _ = std::panic::catch_unwind(|| hook::run(&paths, timeout_ms));
    0
}
