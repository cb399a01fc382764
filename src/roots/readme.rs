//! README's "What is synced" table, rendered from the root table, so the two cannot drift:
//! a test compares README.md with [`synced_table`] and rewrites it when asked
//! (`CODEXPORT_WRITE_README=1 cargo test --lib roots::readme`).

use super::{Action, ROOTS, Root};

/// The markdown table of every root: where it is, what is taken, and what is never taken
/// (grouped by the reason).
pub fn synced_table() -> String {
    let mut out =
        String::from("| root | in a revision | taken | never taken |\n|---|---|---|---|\n");
    for root in ROOTS {
        out.push_str(&row(root));
    }
    out
}

fn row(root: &Root) -> String {
    let code = |p: &str| format!("`{p}`");
    let taken: Vec<String> = root
        .selection
        .iter()
        .filter(|r| r.action == Action::Include)
        .map(|r| {
            if r.pattern == "*" {
                "everything".to_owned()
            } else {
                code(r.pattern)
            }
        })
        .collect();
    // Reasons in the order they first appear, each with its patterns.
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for r in root
        .selection
        .iter()
        .filter(|r| r.action == Action::Exclude)
    {
        match groups.iter_mut().find(|(why, _)| *why == r.why) {
            Some((_, patterns)) => patterns.push(code(r.pattern)),
            None => groups.push((r.why, vec![code(r.pattern)])),
        }
    }
    let never = if groups.is_empty() {
        "—".to_owned()
    } else {
        groups
            .iter()
            .map(|(why, patterns)| format!("{} ({why})", patterns.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "| `{}`: {} | `{}/` | {} | {} |\n",
        root.shown,
        root.about,
        root.name,
        taken.join(", "),
        never
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markers around the generated table in README.md.
    const BEGIN: &str = "<!-- synced:begin (generated from src/roots/; CODEXPORT_WRITE_README=1 cargo test --lib roots::readme) -->";
    const END: &str = "<!-- synced:end -->";

    /// README.md with the text between the markers replaced by `table`; `None` when a marker
    /// is missing.
    fn with_table(readme: &str, table: &str) -> Option<String> {
        let start = readme.find(BEGIN)? + BEGIN.len();
        let end = start + readme[start..].find(END)?;
        Some(format!("{}\n{table}{}", &readme[..start], &readme[end..]))
    }

    /// README's table is the one the code renders; `CODEXPORT_WRITE_README=1` rewrites it.
    #[test]
    fn readme_lists_what_the_root_table_selects() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let want = with_table(&readme, &synced_table())
            .unwrap_or_else(|| panic!("README.md lacks the markers {BEGIN} … {END}"));
        if std::env::var_os("CODEXPORT_WRITE_README").is_some_and(|v| v == "1") {
            std::fs::write(&path, want).unwrap();
            return;
        }
        assert!(
            readme == want,
            "README.md's \"What is synced\" table differs from the root table; regenerate it with CODEXPORT_WRITE_README=1 cargo test --lib roots::readme"
        );
    }

    #[test]
    fn every_rule_is_in_the_table() {
        let table = synced_table();
        for root in ROOTS {
            assert!(table.contains(root.shown), "{}", root.name);
            for r in root.selection {
                if r.pattern != "*" {
                    assert!(table.contains(&format!("`{}`", r.pattern)), "{}", r.pattern);
                }
                if r.action == Action::Exclude {
                    assert!(table.contains(r.why), "{}", r.why);
                }
            }
        }
        let fake = "a\nBEFORE".replace("BEFORE", &format!("{BEGIN}\nold\n{END}\nz"));
        assert_eq!(
            with_table(&fake, "new\n").unwrap(),
            format!("a\n{BEGIN}\nnew\n{END}\nz")
        );
    }
}
