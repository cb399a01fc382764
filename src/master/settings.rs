//! The master's own settings, `~/.codexport/master.toml`: extra top-level entries of
//! `~/.codex` to take (a setup folder the selection table does not know) or to leave (one it
//! takes that this master keeps to itself).
//!
//! ```toml
//! include = ["notes", "themes-*"]   # taken, with everything below them
//! exclude = ["RTK.md"]              # left out, whatever the table says
//! ```
//!
//! Patterns are top-level names, `*` matching any run of characters. `exclude` wins over
//! everything, `include` over the table. `master include` and `master exclude` edit the file
//! with toml_edit, so comments and layout stay; a hand edit works as well.

use super::MasterError;
use crate::snapshot::select::Extra;
use std::path::Path;
use toml_edit::{Array, DocumentMut, Item};

/// The keys of the file.
const INCLUDE: &str = "include";
const EXCLUDE: &str = "exclude";

/// Reads the settings; a missing file means none.
pub fn load(path: &Path) -> Result<Extra, MasterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Extra::default()),
        Err(e) => {
            return Err(MasterError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    parse(&text).map_err(|what| MasterError::BadSettings {
        path: path.to_owned(),
        what,
    })
}

/// Parses the settings' text.
pub fn parse(text: &str) -> Result<Extra, String> {
    let doc = crate::toml_doc::parse(text)?;
    let mut extra = Extra::default();
    for (key, item) in doc.iter() {
        let list = match key {
            INCLUDE => &mut extra.include,
            EXCLUDE => &mut extra.exclude,
            other => {
                return Err(format!(
                    "unknown setting {other:?} (known: include, exclude)"
                ));
            }
        };
        *list = patterns(key, item)?;
    }
    Ok(extra)
}

fn patterns(key: &str, item: &Item) -> Result<Vec<String>, String> {
    let arr = item
        .as_array()
        .ok_or_else(|| format!("{key} must be a list of names, e.g. {key} = [\"notes\"]"))?;
    arr.iter()
        .map(|v| {
            let name = v
                .as_str()
                .ok_or_else(|| format!("{key} must hold only strings"))?;
            check_pattern(name).map_err(|why| format!("{key}: {name:?} {why}"))?;
            Ok(name.to_owned())
        })
        .collect()
}

/// A pattern is a top-level name of `~/.codex` (or a `*` glob of one).
fn check_pattern(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Err("is not a name")
    } else if name.contains('/') || name.contains('\\') {
        Err("is not a top-level name (no `/`: settings take or leave whole top-level entries)")
    } else if name.contains('\0') {
        Err("holds NUL")
    } else {
        Ok(())
    }
}

/// Which list [`edit`] adds names to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum List {
    Include,
    Exclude,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Include => INCLUDE,
            List::Exclude => EXCLUDE,
        }
    }

    fn other(self) -> Self {
        match self {
            List::Include => List::Exclude,
            List::Exclude => List::Include,
        }
    }
}

/// What [`edit`] changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Edited {
    pub list: List,
    /// Names added to `list`.
    pub added: Vec<String>,
    /// Names taken off the other list (a name cannot be in both).
    pub moved: Vec<String>,
    /// The settings as they are now.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Adds `names` to `list` (and takes them off the other one), editing the file with
/// toml_edit so its comments stay. Nothing is written when a name is refused or the file
/// is malformed.
pub fn edit(path: &Path, list: List, names: &[String]) -> Result<Edited, MasterError> {
    let bad = |what: String| MasterError::BadSettings {
        path: path.to_owned(),
        what,
    };
    for name in names {
        check_pattern(name).map_err(|why| bad(format!("{name:?} {why}")))?;
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(MasterError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    // The file as it is must be valid before anything is added to it.
    parse(&text).map_err(&bad)?;
    let mut doc: DocumentMut = crate::toml_doc::parse(&text).map_err(&bad)?;
    let mut moved = Vec::new();
    if let Some(other) = doc.get_mut(list.other().key()).and_then(Item::as_array_mut) {
        other.retain(|v| {
            let hit = v.as_str().is_some_and(|s| names.iter().any(|n| n == s));
            if hit {
                moved.push(v.as_str().unwrap_or_default().to_owned());
            }
            !hit
        });
    }
    if !doc.contains_key(list.key()) {
        doc.insert(list.key(), toml_edit::value(Array::new()));
    }
    let arr = doc[list.key()]
        .as_array_mut()
        .expect("checked by parse above, or just inserted");
    let mut added = Vec::new();
    for name in names {
        if !arr.iter().any(|v| v.as_str() == Some(name)) && !added.contains(name) {
            arr.push(name.as_str());
            added.push(name.clone());
        }
    }
    let out = doc.to_string();
    crate::fsutil::write_atomic(path, out.as_bytes(), 0o600).map_err(|e| MasterError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let now = parse(&out).map_err(bad)?;
    Ok(Edited {
        list,
        added,
        moved,
        include: now.include,
        exclude: now.exclude,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_reasons() {
        let e =
            parse("# mine\ninclude = [\"notes\", \"themes-*\"]\nexclude = [\"RTK.md\"]\n").unwrap();
        assert_eq!(e.include, ["notes", "themes-*"]);
        assert_eq!(e.exclude, ["RTK.md"]);
        assert_eq!(parse("").unwrap(), Extra::default());
        for (bad, says) in [
            ("include = \"notes\"", "list"),
            ("include = [\"a/b\"]", "top-level"),
            ("include = [1]", "strings"),
            ("includes = []", "unknown setting"),
            ("include = [\"\"]", "not a name"),
            ("==\n[.", "TOML parse error"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn edits_keep_comments_and_move_names_between_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.toml");
        std::fs::write(&path, "# my settings\nexclude = [\"notes\"] # not yet\n").unwrap();
        let e = edit(&path, List::Include, &["notes".into(), "themes".into()]).unwrap();
        assert_eq!(e.added, ["notes", "themes"]);
        assert_eq!(e.moved, ["notes"]);
        assert_eq!(e.include, ["notes", "themes"]);
        assert!(e.exclude.is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# my settings") && text.contains("# not yet"),
            "{text}"
        );
        let again = edit(&path, List::Include, &["notes".into()]).unwrap();
        assert!(again.added.is_empty());
        assert!(matches!(
            edit(&path, List::Exclude, &["a/b".into()]),
            Err(MasterError::BadSettings { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "nothing written"
        );
        std::fs::write(&path, "include = 3\n").unwrap();
        assert!(matches!(
            edit(&path, List::Include, &["x".into()]),
            Err(MasterError::BadSettings { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "include = 3\n");
    }
}
