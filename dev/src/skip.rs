//! Skips that cannot lie: a test or benchmark that needs something this machine lacks (a
//! tool, a tmpfs mount, a user without root's powers) either fails or says so where a person
//! sees it.
//!
//! libtest captures the output of a passing test, so an `eprintln!` before an early `return`
//! made a skipped test look passed. Under CI (`CI=true`), where everything a test needs is
//! installed by `.ci/run`, a skip is a failure: [`skipped`] panics naming what is missing.
//! Elsewhere it writes a `SKIPPED` line to the terminal (`/dev/tty`, which libtest does not
//! capture) or, without one, to stderr, and the test returns early.

use std::io::Write;

/// Whether this runs under CI: `CI` is `true` (or `1`), as CI services set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports that `what` is skipped because of `why`: panics under CI, otherwise writes the
/// notice where a person sees it (see the module comment) and returns.
pub fn skipped(what: &str, why: &str) {
    if in_ci() {
        let line = notice(what, why);
        panic!("{line} (CI=true: everything a test needs must be installed, so this fails)");
    }
    show(what, why);
}

/// Writes the `SKIPPED` notice to the terminal, or to stderr without one (no CI check: for
/// callers that decided already).
pub fn show(what: &str, why: &str) {
    let line = notice(what, why);
    let tty = std::fs::OpenOptions::new().write(true).open("/dev/tty");
    let shown = tty.and_then(|mut t| writeln!(t, "{line}")).is_ok();
    if !shown {
        eprintln!("{line}");
    }
}

fn notice(what: &str, why: &str) -> String {
    format!("SKIPPED {what}: {why}")
}

/// Skips the rest of the current test (or function returning `()`) with a visible notice, or
/// fails it under CI: `skip!("the uv part", "uv is not installed")`. See [`skipped`].
#[macro_export]
macro_rules! skip {
    ($what:expr, $why:expr) => {{
        $crate::skip::skipped(&$what, &$why);
        return;
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_what_and_why() {
        assert_eq!(
            notice("the rsync rows", "rsync is not installed"),
            "SKIPPED the rsync rows: rsync is not installed"
        );
    }
}
