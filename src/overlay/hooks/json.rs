//! `~/.codex/hooks.json` as an order-keeping JSON tree, and the pure edit that puts
//! codexport's SessionStart handler first (and takes stale ones out).
//!
//! serde_json's own `Value` sorts object keys unless its `preserve_order` feature is on,
//! which would change every JSON output of the crate; this small tree keeps the user's order
//! without that.

use super::{HookEntry, MATCHER};
use crate::overlay::OverlayError;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

/// A JSON value whose objects keep their keys in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            entries.push((k, v));
        }
        Ok(Json::Object(entries))
    }
}

/// Whether a handler's command runs codexport's hook (this version's `hook run`, or the
/// `hook sync` of the Node tool it replaces).
pub fn is_codexport_command(command: &str) -> bool {
    command.find("codexport").is_some_and(|i| {
        let rest = &command[i + "codexport".len()..];
        rest.contains(" hook run") || rest.contains(" hook sync")
    })
}

/// Where one handler sits: event name as in the file, group index, handler index.
type Position = (String, usize, usize);

/// A handler of the old file and where it sits afterwards (`None`: removed).
pub(crate) struct Placement {
    pub old: Position,
    pub new: Option<(usize, usize)>,
    /// The removed handler is exactly the entry being inserted (same command, timeout and
    /// matcher), so Codex's trust in it still holds at its new place.
    pub same_as_ours: bool,
}

fn parse(bytes: &[u8]) -> Result<Json, OverlayError> {
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| OverlayError::BadHooksJson {
        what: e.to_string(),
    })?;
    if !matches!(doc, Json::Object(_)) {
        return Err(OverlayError::BadHooksJson {
            what: "the top level is not a JSON object".into(),
        });
    }
    if doc
        .get("hooks")
        .is_some_and(|h| !matches!(h, Json::Object(_)))
    {
        return Err(OverlayError::BadHooksJson {
            what: "\"hooks\" is not an object".into(),
        });
    }
    Ok(doc)
}

fn handler_matches(handler: &Json, ours: &HookEntry, matcher: Option<&str>) -> bool {
    let timeout = match handler.get("timeout") {
        Some(Json::Number(n)) => n.as_u64(),
        _ => None,
    };
    matcher == Some(MATCHER)
        && handler.get("command").and_then(Json::as_str) == Some(ours.command.as_str())
        && timeout == Some(ours.timeout)
}

/// Removes codexport handlers everywhere, dropping groups (and events) they leave empty;
/// records where every handler went.
fn strip(doc: &mut Json, ours: Option<&HookEntry>, placements: &mut Vec<Placement>) -> bool {
    let mut changed = false;
    let Some(Json::Object(events)) = doc.get_mut("hooks") else {
        return false;
    };
    events.retain_mut(|(event, groups)| {
        let Json::Array(groups) = groups else {
            return true;
        };
        let before = groups.len();
        let mut old_group = 0;
        let mut kept_groups = 0;
        groups.retain_mut(|group| {
            let gi = old_group;
            old_group += 1;
            let matcher = group
                .get("matcher")
                .and_then(Json::as_str)
                .map(str::to_owned);
            let Some(Json::Array(handlers)) = group.get_mut("hooks") else {
                kept_groups += 1;
                return true;
            };
            let had = handlers.len();
            let mut hi = 0;
            let mut kept = 0;
            handlers.retain(|h| {
                let cmd = h.get("command").and_then(Json::as_str).unwrap_or("");
                let ours_now = is_codexport_command(cmd);
                let same_as_ours =
                    ours_now && ours.is_some_and(|o| handler_matches(h, o, matcher.as_deref()));
                let new = (!ours_now).then_some((kept_groups, kept));
                placements.push(Placement {
                    old: (event.clone(), gi, hi),
                    new,
                    same_as_ours,
                });
                hi += 1;
                kept += usize::from(!ours_now);
                !ours_now
            });
            changed |= handlers.len() != had;
            let keep = !(had > 0 && handlers.is_empty());
            if !keep {
                // The group is gone: handlers recorded with its index have no place.
                for p in placements
                    .iter_mut()
                    .filter(|p| p.old.0 == *event && p.old.1 == gi)
                {
                    p.new = None;
                }
            }
            kept_groups += usize::from(keep);
            keep
        });
        !(before > 0 && groups.is_empty())
    });
    changed
}

/// The value under `key`, added at the end (with `default`) when missing.
fn entry<'a>(
    obj: &'a mut Vec<(String, Json)>,
    key: &str,
    default: impl FnOnce() -> Json,
) -> &'a mut Json {
    let i = match obj.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            obj.push((key.to_owned(), default()));
            obj.len() - 1
        }
    };
    &mut obj[i].1
}

/// The group codexport inserts.
fn our_group(ours: &HookEntry) -> Json {
    Json::Object(vec![
        ("matcher".into(), Json::String(MATCHER.into())),
        (
            "hooks".into(),
            Json::Array(vec![Json::Object(vec![
                ("type".into(), Json::String("command".into())),
                ("command".into(), Json::String(ours.command.clone())),
                ("timeout".into(), Json::Number(ours.timeout.into())),
            ])]),
        ),
    ])
}

/// The edited document, whether anything changed, and where each old handler went.
pub(crate) fn edit(
    existing: Option<&[u8]>,
    ours: Option<&HookEntry>,
) -> Result<(Json, bool, Vec<Placement>), OverlayError> {
    let mut doc = match existing {
        Some(bytes) => parse(bytes)?,
        None => Json::Object(Vec::new()),
    };
    let mut placements = Vec::new();
    let mut changed = strip(&mut doc, ours, &mut placements);
    if let Some(ours) = ours {
        let bad = |what: &str| OverlayError::BadHooksJson {
            what: what.to_owned(),
        };
        let Json::Object(top) = &mut doc else {
            return Err(bad("the top level is not a JSON object"));
        };
        let Json::Object(events) = entry(top, "hooks", || Json::Object(Vec::new())) else {
            return Err(bad("\"hooks\" is not an object"));
        };
        let Json::Array(groups) = entry(events, "SessionStart", || Json::Array(Vec::new())) else {
            return Err(bad("\"hooks\".\"SessionStart\" is not an array"));
        };
        groups.insert(0, our_group(ours));
        for p in &mut placements {
            if p.old.0 == "SessionStart" {
                if let Some((g, _)) = &mut p.new {
                    *g += 1;
                }
            }
        }
        changed = true;
    }
    Ok((doc, changed, placements))
}

/// Serialises the way codexport always writes hooks.json: two-space indents, final newline.
pub(crate) fn to_bytes(doc: &Json) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// CamelCase event name → the snake_case Codex uses in trust keys (`SessionStart` →
/// `session_start`).
pub(crate) fn snake(event: &str) -> String {
    let mut out = String::with_capacity(event.len() + 4);
    for (i, c) in event.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
