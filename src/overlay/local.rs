//! The follower's own settings: `~/.codexport/local.toml`.

use super::OverlayError;
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::roots::Policy;

/// Built-in policies of the Codex root (paths relative to it); `[policies]` in local.toml
/// adds to or overrides them.
pub const DEFAULT_POLICIES: &[(&str, Policy)] = crate::roots::CODEX.merge.policies;

/// Parsed `local.toml`. The file is only read, never rewritten, so its comments stay.
#[derive(Debug, Clone, Default)]
pub struct LocalConfig {
    pub allow_mcp_overrides: Vec<String>,
    pub allow_skill_overrides: Vec<String>,
    pub path_variables: BTreeMap<String, String>,
    pub policies: BTreeMap<String, Policy>,
    /// Rollback points kept (apply history entries whose trees survive `gc`).
    pub keep_applies: usize,
}

/// Default number of rollback points.
pub const DEFAULT_KEEP_APPLIES: usize = 20;

impl LocalConfig {
    /// Reads `local.toml`; a missing file means defaults.
    pub fn load(path: &Path) -> Result<Self, OverlayError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(OverlayError::Io {
                    path: path.to_owned(),
                    source: e,
                });
            }
        };
        Self::parse(&text).map_err(|what| OverlayError::BadLocal {
            path: path.to_owned(),
            what,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let doc = crate::toml_doc::parse(text)?;
        let mut cfg = LocalConfig {
            keep_applies: DEFAULT_KEEP_APPLIES,
            ..Self::default()
        };
        for (key, item) in doc.iter() {
            match key {
                "allowMcpOverrides" => cfg.allow_mcp_overrides = strings(key, item)?,
                "allowSkillOverrides" => cfg.allow_skill_overrides = strings(key, item)?,
                "pathVariables" => cfg.path_variables = string_table(key, item)?,
                "policies" => {
                    for (path, value) in string_table(key, item)? {
                        let policy = Policy::parse(&value).ok_or_else(|| format!("policies.{path:?} = {value:?}: use \"replace\", \"keep-local\" or \"append-local\""))?;
                        cfg.policies.insert(path, policy);
                    }
                }
                "keepApplies" => {
                    cfg.keep_applies = item
                        .as_integer()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n >= 1)
                        .ok_or("keepApplies must be a whole number of at least 1")?;
                }
                // Keys the original tool wrote; harmless.
                "role" | "masterUrl" | "masterFingerprint" | "lastRevision" | "codexDir"
                | "port" => {}
                other => {
                    return Err(format!(
                        "unknown setting {other:?} (known: allowMcpOverrides, allowSkillOverrides, pathVariables, policies, keepApplies)"
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// The policy of a managed path of the tree of roots: `[policies]` (paths relative to the
    /// Codex root) and each root's defaults.
    pub fn policy_of(&self, path: &crate::object::RelPath) -> Policy {
        let Some((root, rel)) = path
            .split_first()
            .and_then(|(n, rel)| crate::roots::by_name(n).map(|r| (r, rel)))
        else {
            return Policy::Replace;
        };
        if root.name == crate::roots::CODEX.name {
            return self.policy(rel.as_str());
        }
        root.merge
            .policies
            .iter()
            .find(|(p, _)| *p == rel.as_str())
            .map_or(Policy::Replace, |(_, p)| *p)
    }

    /// The policy of a path of the Codex root.
    pub fn policy(&self, path: &str) -> Policy {
        if let Some(p) = self.policies.get(path) {
            return *p;
        }
        DEFAULT_POLICIES
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(Policy::Replace, |(_, p)| *p)
    }
}

fn strings(key: &str, item: &toml_edit::Item) -> Result<Vec<String>, String> {
    let arr = item
        .as_array()
        .ok_or_else(|| format!("{key} must be a list of names, e.g. {key} = [\"name\"]"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} must hold only strings"))
        })
        .collect()
}

fn string_table(key: &str, item: &toml_edit::Item) -> Result<BTreeMap<String, String>, String> {
    let table = item
        .as_table_like()
        .ok_or_else(|| format!("[{key}] must be a table"))?;
    table
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.to_owned(), s.to_owned()))
                .ok_or_else(|| format!("{key}.{k} must be a string"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_settings_and_policies() {
        let cfg = LocalConfig::parse(
            "# mine\nallowMcpOverrides = [\"fs\"]\nkeepApplies = 5\n[pathVariables]\ncode = \"/srv/code\"\n[policies]\n\"AGENTS.md\" = \"keep-local\"\n",
        )
        .unwrap();
        assert_eq!(cfg.allow_mcp_overrides, ["fs"]);
        assert_eq!(cfg.keep_applies, 5);
        assert_eq!(cfg.path_variables["code"], "/srv/code");
        assert_eq!(cfg.policy("AGENTS.md"), Policy::KeepLocal);
        assert_eq!(cfg.policy("rules/default.rules"), Policy::AppendLocal);
        assert_eq!(cfg.policy("prompts/x.md"), Policy::Replace);
        assert_eq!(
            LocalConfig::parse("").unwrap().keep_applies,
            DEFAULT_KEEP_APPLIES
        );
    }

    #[test]
    fn bad_settings_say_what() {
        assert!(
            LocalConfig::parse("allowMcpOverrides = \"fs\"")
                .unwrap_err()
                .contains("list")
        );
        assert!(
            LocalConfig::parse("[policies]\nx = \"sometimes\"")
                .unwrap_err()
                .contains("keep-local")
        );
        assert!(
            LocalConfig::parse("typo = 1")
                .unwrap_err()
                .contains("unknown setting")
        );
    }

    /// Found by the `local_toml` fuzz target: toml_edit 0.23 panics on these; they must be
    /// parse errors.
    #[test]
    fn parser_panics_are_parse_errors() {
        for bad in ["==\n[.", "={=<=u=="] {
            assert!(
                LocalConfig::parse(bad)
                    .unwrap_err()
                    .contains("TOML parse error"),
                "{bad:?}"
            );
        }
    }
}
