//! How commands print: one JSON object with `--json`, readable lines otherwise, nothing with
//! `--quiet`; errors as miette reports or `{"error": {...}}`.

use serde::Serialize;

/// A report's text form, for people. Its JSON form is the report's serde serialisation, so
/// both come from the same value.
pub trait Render {
    fn render(&self) -> String;
}

/// What a command produced: the same data for machines and for people.
pub struct Output {
    pub json: serde_json::Value,
    pub human: String,
    /// The exit code: 0, or 1 for an answer that is "no" (`verify` found differences).
    pub code: i32,
}

impl Output {
    pub fn new(data: &impl Serialize, human: impl Into<String>) -> Self {
        Self {
            json: serde_json::to_value(data).expect("command reports serialise to JSON"),
            human: human.into(),
            code: 0,
        }
    }

    /// A report, rendered once as JSON and once as text.
    pub fn of(report: &(impl Serialize + Render)) -> Self {
        Self::new(report, report.render())
    }

    pub fn print(&self, json: bool, quiet: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json).expect("a JSON value serialises")
            );
        } else if !quiet && !self.human.is_empty() {
            print!("{}", self.human);
            if !self.human.ends_with('\n') {
                println!();
            }
        }
    }
}

/// Exit code for an error: 2 for usage and trust errors, 1 for every other failure.
pub fn exit_code(err: &miette::Report) -> i32 {
    let code = err.code().map(|c| c.to_string()).unwrap_or_default();
    if code.contains("::usage::") || code.contains("::trust::") {
        2
    } else {
        1
    }
}

/// The `--json` form of an error, with a stable `code`.
pub fn error_json(err: &miette::Report) -> serde_json::Value {
    let code = err
        .code()
        .map_or_else(|| "codexport::error".to_owned(), |c| c.to_string());
    let mut causes = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    serde_json::json!({
        "error": {
            "code": code,
            "message": err.to_string(),
            "help": err.help().map(|h| h.to_string()),
            "causes": causes,
        }
    })
}

/// `1.5 KiB`-style sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub use crate::time::format_ms as time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
