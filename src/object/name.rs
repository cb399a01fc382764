//! Validated names: one tree entry name, and a relative path made of them.

use super::DecodeError;
use std::fmt;

/// Longest entry name accepted, in bytes (the common filesystem limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest relative path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// One path component: non-empty UTF-8, at most 255 bytes, without `/`, `\`, NUL, `.` or `..`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct EntryName(String);

impl EntryName {
    pub fn new(name: impl Into<String>) -> Result<Self, DecodeError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_name(name: &str) -> Result<(), DecodeError> {
    let why = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "a dot directory"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 255 bytes"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(DecodeError::BadName {
        name: name.chars().take(80).collect(),
        why,
    })
}

impl<'de> serde::Deserialize<'de> for EntryName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EntryName::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A relative path inside the codex dir: `/`-separated `EntryName`s, never absolute, never
/// `..`. Built once at the edge (user input, walked files) and trusted inside.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    pub fn new(path: &str) -> Result<Self, DecodeError> {
        let trimmed = path.trim_matches('/');
        if trimmed.len() > MAX_PATH_LEN {
            return Err(DecodeError::TooLarge {
                what: "path",
                limit: MAX_PATH_LEN as u64,
            });
        }
        if path.starts_with('/') {
            return Err(DecodeError::BadName {
                name: path.chars().take(80).collect(),
                why: "absolute",
            });
        }
        if trimmed.is_empty() {
            return Ok(Self(String::new()));
        }
        for part in trimmed.split('/') {
            check_name(part)?;
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The empty path: the root of a tree.
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn join(&self, name: &EntryName) -> Self {
        if self.0.is_empty() {
            Self(name.0.clone())
        } else {
            Self(format!("{}/{}", self.0, name.0))
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The first component, if any.
    pub fn first(&self) -> Option<&str> {
        self.components().next()
    }

    /// The first component and the path below it (`a/b/c` → `a`, `b/c`).
    pub fn split_first(&self) -> Option<(&str, RelPath)> {
        let first = self.first()?;
        let rest = self.0[first.len()..].trim_start_matches('/');
        Some((first, Self(rest.to_owned())))
    }

    /// This path below the folder `dir` (a valid path: `dir` is one).
    pub fn under(&self, dir: &RelPath) -> Self {
        match (dir.is_root(), self.is_root()) {
            (true, _) => self.clone(),
            (false, true) => dir.clone(),
            (false, false) => Self(format!("{}/{}", dir.0, self.0)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This path below `base` on the local filesystem.
    pub fn to_path(&self, base: &std::path::Path) -> std::path::PathBuf {
        let mut p = base.to_path_buf();
        for c in self.components() {
            p.push(c);
        }
        p
    }
}

/// Paths read back (from the journal, from JSON) are validated like any other input.
impl<'de> serde::Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelPath::new(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", &"x".repeat(256)] {
            assert!(EntryName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", ".hidden", "ünï cødé.md", "...", &"x".repeat(255)] {
            assert!(EntryName::new(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn rel_paths_refuse_escapes() {
        assert!(RelPath::new("/etc/passwd").is_err());
        assert!(RelPath::new("skills/../../x").is_err());
        assert!(RelPath::new("a//b").is_err());
        let p = RelPath::new("skills/x/SKILL.md").unwrap();
        assert_eq!(p.first(), Some("skills"));
        assert_eq!(p.components().count(), 3);
        assert!(RelPath::new("").unwrap().is_root());
    }
}
