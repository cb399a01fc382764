//! The one way codexport parses TOML into an editable document: it never panics and never
//! prints a panic message.
//!
//! toml_edit 0.23 panics on some malformed input instead of returning an error
//! (toml-rs/toml#1100: `==\n[.` hits "all items have spans", `={=<=u==` "setting a value
//! should set a prefix"). Such a panic is caught here and becomes a parse error, so a bad file
//! is refused with a clear message rather than fatal, and the default panic hook is kept quiet
//! for the parse so no Rust panic text (or backtrace) reaches the user first.

use std::cell::Cell;
use std::sync::Once;
use toml_edit::DocumentMut;

thread_local! {
    /// Set while this thread parses inside the guard: its panics are expected and silent.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that stays silent for guarded parses and hands
/// every other panic to the hook that was there before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Parses TOML text into an editable document; a malformed text is an error saying why.
pub fn parse(text: &str) -> Result<DocumentMut, String> {
    install_quiet_hook();
    GUARDED.with(|g| g.set(true));
    let parsed = std::panic::catch_unwind(|| text.parse::<DocumentMut>());
    GUARDED.with(|g| g.set(false));
    match parsed {
        Ok(parsed) => parsed.map_err(|e| e.to_string()),
        Err(_) => Err(
            "TOML parse error: the text is not valid TOML (the parser gave up on it)".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    /// Found by the fuzz targets: toml_edit 0.23 panics on these; they must be parse errors.
    #[test]
    fn parser_panics_are_parse_errors() {
        for bad in ["==\n[.", "={=<=u=="] {
            let err = super::parse(bad).unwrap_err();
            assert!(err.contains("TOML parse error"), "{bad:?}: {err}");
        }
        assert!(super::parse("a = 1\n").is_ok());
    }
}
