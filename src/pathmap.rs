//! Mapping paths of the master's machine to this machine's: a path under the master's codex
//! dir or home becomes the same path under the follower's. Used by the config merge and by
//! the MCP launcher, which must agree on every mapped path.

/// Maps paths under the master's codex dir and home to `to_codex` and `to_home`. The codex
/// dir goes first: it usually lies inside the home.
pub fn rewrite_paths(
    s: &str,
    from_home: &str,
    from_codex: &str,
    to_home: &str,
    to_codex: &str,
) -> String {
    let mut out = s.to_owned();
    for (from, to) in [(from_codex, to_codex), (from_home, to_home)] {
        if !from.is_empty() {
            out = replace_path_prefix(&out, from, to);
        }
    }
    out
}

/// Replaces `from` where it is a whole path prefix (followed by `/`, `\`, a quote, a space,
/// `:`, `;`, or the end), so `/home/mx` is not taken for `/home/m`.
pub fn replace_path_prefix(s: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let after = &rest[i + from.len()..];
        let boundary = after.is_empty() || after.starts_with(['/', '\\', '"', '\'', ' ', ':', ';']);
        out.push_str(&rest[..i]);
        out.push_str(if boundary { to } else { from });
        rest = after;
        // A Windows master path mapped to a Unix follower: the rest of that path uses `/`.
        if boundary && from.contains('\\') && !to.contains('\\') {
            let end = rest.find(['"', '\'', ' ', ';']).unwrap_or(rest.len());
            out.push_str(&rest[..end].replace('\\', "/"));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_prefixes_only() {
        assert_eq!(
            rewrite_paths(
                "/home/m/.codex/x /home/m/y /home/mx",
                "/home/m",
                "/home/m/.codex",
                "/u/f",
                "/u/f/.codex"
            ),
            "/u/f/.codex/x /u/f/y /home/mx"
        );
        assert_eq!(
            replace_path_prefix("C:\\Users\\m\\src\\a b", "C:\\Users\\m", "/u/f"),
            "/u/f/src/a b"
        );
    }
}
