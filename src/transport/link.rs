//! Join links: the `codexport://join?…` text a follower enrols from, and the master URL
//! it names.

use super::DEFAULT_PORT;
use crate::object::Fingerprint;
use reqwest::Url;
use std::fmt;
use std::str::FromStr;

/// The only link version this build writes and reads.
pub const LINK_VERSION: u32 = 1;
/// Text prefix of a join token: lets a human (and a secret scanner) tell what it is.
pub const TOKEN_PREFIX: &str = "cxt1_";
/// Text prefix of a follower credential.
pub const CREDENTIAL_PREFIX: &str = "cxc1_";

/// Why a link or a master host was refused.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum LinkError {
    #[error("bad join link: {problem}")]
    #[diagnostic(
        code(codexport::usage::bad_link),
        help(
            "copy the whole link printed by `codexport master link`, in quotes (it looks like codexport://join?host=…&fingerprint=…&token=…)"
        )
    )]
    BadLink { problem: String },
    #[error("bad master host {host:?}: {problem}")]
    #[diagnostic(
        code(codexport::usage::bad_host),
        help(
            "pass a host name, an IP address, or a URL such as https://master.example.ts.net:8443"
        )
    )]
    BadHost { host: String, problem: String },
}

/// The 32 secret bytes of `prefix` + 64 hex digits, or `None` if `text` is not of that form
/// (join tokens and follower credentials are both written so).
pub fn parse_secret(text: &str, prefix: &str) -> Option<[u8; 32]> {
    crate::object::id::decode_hex::<32>(text.trim().strip_prefix(prefix)?)
}

/// Everything a follower needs to enrol: where the master is, which key to trust, and a
/// single-use token. Its text form is
/// `codexport://join?host=H&port=P&fingerprint=F&token=T&protocol=http&version=1`.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinLink {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub fingerprint: Fingerprint,
    pub token: Option<String>,
    pub https: bool,
}

impl fmt::Debug for JoinLink {
    /// Like the derived form but without the token, which is a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinLink")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("fingerprint", &self.fingerprint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("https", &self.https)
            .finish()
    }
}

impl JoinLink {
    /// A link to a master given as a host name, an IP address, `host:port`, `[v6]:port`, or
    /// a URL such as `https://master.example.ts.net:8443`. A port or scheme written in
    /// `host_or_url` wins over `port`; a URL without a port means its scheme's default
    /// (80 or 443), as it would in a browser.
    pub fn for_host(
        host_or_url: &str,
        port: u16,
        fingerprint: Fingerprint,
        token: Option<String>,
    ) -> Result<Self, LinkError> {
        let text = host_or_url.trim();
        let bad = |problem: &str| LinkError::BadHost {
            host: text.to_owned(),
            problem: problem.to_owned(),
        };
        let (host, port, https) = if text.contains("://") {
            let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
            let https = match url.scheme() {
                "http" => false,
                "https" => true,
                other => return Err(bad(&format!("scheme {other:?} is not http or https"))),
            };
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad("a user name or password does not belong in it"));
            }
            if url.path() != "/" && !url.path().is_empty()
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(bad("it must not have a path, query or fragment"));
            }
            let host = url.host_str().ok_or_else(|| bad("it has no host"))?;
            let port = url.port_or_known_default().unwrap_or(port);
            (unbracket(host).to_owned(), port, https)
        } else {
            let (host, written_port) = split_host_port(text).map_err(|p| bad(&p))?;
            (host.to_owned(), written_port.unwrap_or(port), false)
        };
        check_host(&host, port).map_err(|p| bad(&p))?;
        Ok(Self {
            host,
            port,
            fingerprint,
            token,
            https,
        })
    }

    /// The master's base URL, e.g. `http://laptop.example.ts.net:17342`.
    pub fn master_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}:{}", bracket(&self.host), self.port)
    }
}

/// `[h]` for an IPv6 address, `h` otherwise.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address has no port.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing `]` after the IPv6 address".to_owned())?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(parse_port(p)?))),
                None => Err(format!("unexpected {after:?} after the address")),
            },
        };
    }
    match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(parse_port(port)?))),
        _ => Ok((text, None)),
    }
}

/// Checks that `host` makes a valid URL with `port` (so a client can connect to it).
fn check_host(host: &str, port: u16) -> Result<(), String> {
    if host.is_empty() {
        return Err("it is empty".to_owned());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@[]\\".contains(c))
    {
        return Err("it contains a character not allowed in a host name".to_owned());
    }
    let url =
        Url::parse(&format!("http://{}:{port}/", bracket(host))).map_err(|e| e.to_string())?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it is not a host name or IP address".to_owned());
    }
    Ok(())
}

impl fmt::Display for JoinLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.to_string();
        let fingerprint = self.fingerprint.to_string();
        let mut params = vec![
            ("host", self.host.as_str()),
            ("port", port.as_str()),
            ("fingerprint", fingerprint.as_str()),
        ];
        if let Some(token) = &self.token {
            params.push(("token", token.as_str()));
        }
        params.push(("protocol", if self.https { "https" } else { "http" }));
        params.push(("version", "1"));
        let url = Url::parse_with_params("codexport://join", &params).map_err(|_| fmt::Error)?;
        f.write_str(url.as_str())
    }
}

impl FromStr for JoinLink {
    type Err = LinkError;

    /// Parses a link strictly: scheme `codexport`, target `join`, `host` and `fingerprint`
    /// required, `port` defaulting to 17342, `protocol` `http` or `https`, `version` 1 if
    /// given. Unknown parameters are ignored (so a newer master can add some).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: String| LinkError::BadLink { problem };
        let url = Url::parse(s.trim()).map_err(|e| bad(format!("it is not a URL ({e})")))?;
        if url.scheme() != "codexport" {
            return Err(bad(format!(
                "it starts with {:?}, not codexport://",
                url.scheme()
            )));
        }
        let is_join = match url.host_str() {
            Some(h) => h == "join" && matches!(url.path(), "" | "/"),
            None => url.path() == "join",
        };
        if !is_join {
            return Err(bad(
                "it is not a join link (expected codexport://join?…)".into()
            ));
        }

        let mut host = None;
        let mut port = None;
        let mut fingerprint = None;
        let mut token = None;
        let mut protocol = None;
        let mut version = None;
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "host" => &mut host,
                "port" => &mut port,
                "fingerprint" => &mut fingerprint,
                "token" => &mut token,
                "protocol" => &mut protocol,
                "version" => &mut version,
                _ => continue,
            };
            if slot.is_some() {
                return Err(bad(format!("parameter {key:?} appears twice")));
            }
            *slot = Some(value.into_owned());
        }

        if let Some(v) = version {
            if v.parse::<u32>().ok() != Some(LINK_VERSION) {
                return Err(bad(format!(
                    "link version {v:?} is not supported (this codexport reads version {LINK_VERSION}); upgrade codexport"
                )));
            }
        }
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("the host parameter is missing".into()))?;
        let host = unbracket(&host).to_owned();
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(format!("port {p:?} is not a number from 1 to 65535")))?,
        };
        check_host(&host, port).map_err(|p| bad(format!("host {host:?}: {p}")))?;
        let fingerprint = fingerprint
            .ok_or_else(|| bad("the fingerprint parameter is missing".into()))?
            .parse::<Fingerprint>()
            .map_err(|_| bad("the fingerprint is not 40 hex digits".into()))?;
        if let Some(t) = &token {
            if parse_secret(t, TOKEN_PREFIX).is_none() {
                return Err(bad(format!(
                    "the token is not {TOKEN_PREFIX} followed by 64 hex digits (was the link cut short?)"
                )));
            }
        }
        let https = match protocol.as_deref() {
            None | Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(bad(format!("protocol {other:?} is not http or https")));
            }
        };
        Ok(Self {
            host,
            port,
            fingerprint,
            token,
            https,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint::of_key(&[3; 32])
    }

    #[test]
    fn link_round_trip() {
        let token = format!("cxt1_{}", "0f".repeat(32));
        let link = JoinLink {
            host: "laptop.example.ts.net".into(),
            port: 17342,
            fingerprint: fp(),
            token: Some(token.clone()),
            https: false,
        };
        let text = link.to_string();
        assert_eq!(
            text,
            format!(
                "codexport://join?host=laptop.example.ts.net&port=17342&fingerprint={}&token={token}&protocol=http&version=1",
                fp()
            )
        );
        assert_eq!(text.parse::<JoinLink>().unwrap(), link);
        assert_eq!(link.master_url(), "http://laptop.example.ts.net:17342");
        assert!(
            !format!("{link:?}").contains(&token),
            "Debug leaks the token"
        );

        let v6 = JoinLink {
            host: "fd7a:115c::1".into(),
            port: 8443,
            fingerprint: fp(),
            token: None,
            https: true,
        };
        let text = v6.to_string();
        assert!(
            text.contains("protocol=https") && !text.contains("token="),
            "{text}"
        );
        assert_eq!(text.parse::<JoinLink>().unwrap(), v6);
        assert_eq!(v6.master_url(), "https://[fd7a:115c::1]:8443");
    }

    #[test]
    fn link_defaults_and_unknown_parameters() {
        let text = format!("codexport://join?host=h&fingerprint={}&future=1", fp());
        let link: JoinLink = text.parse().unwrap();
        assert_eq!(link.port, DEFAULT_PORT);
        assert!(!link.https && link.token.is_none());
        // The opaque form and surrounding whitespace.
        let opaque = format!("  codexport:join?host=h&fingerprint={}\n", fp());
        assert_eq!(opaque.parse::<JoinLink>().unwrap(), link);
    }

    #[test]
    fn link_parse_errors_name_the_problem() {
        let f = fp();
        let cases = [
            ("not a url".to_owned(), "not a URL"),
            (
                format!("https://join?host=h&fingerprint={f}"),
                "not codexport://",
            ),
            (
                format!("codexport://other?host=h&fingerprint={f}"),
                "not a join link",
            ),
            (
                format!("codexport://join/x?host=h&fingerprint={f}"),
                "not a join link",
            ),
            (
                format!("codexport://join?fingerprint={f}"),
                "host parameter is missing",
            ),
            (
                format!("codexport://join?host=&fingerprint={f}"),
                "host parameter is missing",
            ),
            (
                "codexport://join?host=h".to_owned(),
                "fingerprint parameter is missing",
            ),
            (
                "codexport://join?host=h&fingerprint=abc".to_owned(),
                "40 hex digits",
            ),
            (
                format!("codexport://join?host=h&port=0&fingerprint={f}"),
                "port \"0\"",
            ),
            (
                format!("codexport://join?host=h&port=70000&fingerprint={f}"),
                "port \"70000\"",
            ),
            (
                format!("codexport://join?host=h&fingerprint={f}&protocol=ftp"),
                "protocol \"ftp\"",
            ),
            (
                format!("codexport://join?host=h&fingerprint={f}&version=2"),
                "version \"2\"",
            ),
            (
                format!("codexport://join?host=h&fingerprint={f}&token=cxt1_ab"),
                "token is not",
            ),
            (
                format!("codexport://join?host=h&host=i&fingerprint={f}"),
                "\"host\" appears twice",
            ),
            (
                format!("codexport://join?host=a%20b&fingerprint={f}"),
                "host \"a b\"",
            ),
        ];
        for (text, expected) in cases {
            match text.parse::<JoinLink>() {
                Err(e @ LinkError::BadLink { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(expected), "{text}: {msg}");
                    let code = miette::Diagnostic::code(&e).unwrap().to_string();
                    assert!(code.contains("::usage::"), "{code}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn for_host_forms() {
        let f = fp();
        let url = |h: &str| JoinLink::for_host(h, 17342, f, None).map(|l| l.master_url());
        assert_eq!(url("laptop").unwrap(), "http://laptop:17342");
        assert_eq!(url(" 100.64.0.1 ").unwrap(), "http://100.64.0.1:17342");
        assert_eq!(url("laptop:9000").unwrap(), "http://laptop:9000");
        assert_eq!(url("::1").unwrap(), "http://[::1]:17342");
        assert_eq!(url("[::1]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(
            url("https://x.ts.net:8443").unwrap(),
            "https://x.ts.net:8443"
        );
        assert_eq!(url("https://x.ts.net/").unwrap(), "https://x.ts.net:443");
        assert_eq!(url("http://[fd7a::1]:80").unwrap(), "http://[fd7a::1]:80");
        let link = JoinLink::for_host("https://x.ts.net:8443", 1, f, Some("t".into())).unwrap();
        assert_eq!(
            (link.host.as_str(), link.port, link.https),
            ("x.ts.net", 8443, true)
        );
        for bad in [
            "",
            "ftp://x",
            "https://x.ts.net/path",
            "https://u:p@x",
            "laptop:0",
            "laptop:http",
            "a b",
            "[::1",
        ] {
            assert!(
                matches!(url(bad), Err(LinkError::BadHost { .. })),
                "{bad}: {:?}",
                url(bad)
            );
        }
    }
}
