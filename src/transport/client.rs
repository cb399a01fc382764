//! The follower's HTTP client: one total deadline across every request of a command.

use super::Health;
use super::wire::FetchRequest;
use miette::Diagnostic;
use reqwest::StatusCode;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot reach the master at {url}: {reason}")]
    #[diagnostic(
        code(codexport::net::unreachable),
        help(
            "check that `codexport master serve` runs on the master and that this machine reaches it (for Tailscale: `tailscale status`)"
        )
    )]
    Unreachable { url: String, reason: String },
    #[error("the master at {url} did not answer within {ms} ms")]
    #[diagnostic(
        code(codexport::net::timeout),
        help("retry, or raise --timeout-ms; a large first sync may need more time")
    )]
    Timeout { url: String, ms: u128 },
    #[error("the master refused the credential: {message}")]
    #[diagnostic(
        code(codexport::trust::credential),
        help("enroll again with a new link from `codexport master link`")
    )]
    BadCredential { message: String },
    #[error("the master revoked this follower: {message}")]
    #[diagnostic(
        code(codexport::trust::revoked),
        help(
            "ask the master's owner for a new link (`codexport master link`) and run `codexport follower join` again"
        )
    )]
    Revoked { message: String },
    #[error("the join token was refused: {message}")]
    #[diagnostic(
        code(codexport::usage::token),
        help("tokens are single-use and expire; ask for a new link with `codexport master link`")
    )]
    Token { message: String },
    #[error("the master answered {status} to {url}: {message}")]
    #[diagnostic(
        code(codexport::net::http),
        help("check the master's log (`codexport master serve` output)")
    )]
    Http {
        url: String,
        status: u16,
        /// The master's error code (`busy`, `unknown_revision`, …).
        code: String,
        message: String,
    },
    #[error("no codexport master answers at {url} (HTTP {status})")]
    #[diagnostic(
        code(codexport::net::not_a_master),
        help(
            "check the master URL in ~/.codexport/follower.toml (or the link): it is the address of `codexport master serve`, e.g. http://master.tailnet.ts.net:17342, without a path"
        )
    )]
    NotAMaster { url: String, status: u16 },
    #[error("the master at {url} speaks protocol {found}, this codexport speaks {supported}")]
    #[diagnostic(
        code(codexport::usage::protocol),
        help("install the same codexport version on master and follower")
    )]
    Protocol {
        url: String,
        found: u64,
        supported: u32,
    },
}

/// A client bound to one master and one deadline.
#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    credential: Option<String>,
    /// The whole budget, as the user gave it (what a timeout error names).
    budget: Duration,
    deadline: Instant,
}

/// Counts bytes as they are read (what crossed the wire, compressed).
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The encoded signed head and the master's mirror-list tag.
pub type HeadAnswer = (Vec<u8>, Option<String>);

/// Response header of `GET /v2/head`: a tag of the master's mirror list and of the mirror
/// key it holds for this follower; when it differs from the follower's own, the follower
/// asks `POST /v2/mirrors`.
pub const MIRRORS_HEADER: &str = "x-codexport-mirrors";

impl Client {
    pub fn new(
        base: &str,
        credential: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Self::until(base, credential, Instant::now(), timeout)
    }

    /// A client whose deadline is `budget` after `started` (a command's start: time spent
    /// before, waiting for a lock, counts too).
    pub fn until(
        base: &str,
        credential: Option<String>,
        started: Instant,
        budget: Duration,
    ) -> Result<Self, ClientError> {
        let timeout = (started + budget).saturating_duration_since(Instant::now());
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("codexport/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credential,
            budget,
            deadline: started + budget,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Time left before the deadline, or the timeout error.
    pub fn remaining(&self, url: &str) -> Result<Duration, ClientError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(ClientError::Timeout {
                url: url.to_owned(),
                ms: self.budget.as_millis(),
            });
        }
        Ok(self.deadline - now)
    }

    fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let mut req = req.timeout(self.remaining(url)?);
        if let Some(c) = &self.credential {
            req = req.bearer_auth(c);
        }
        let resp = req.send().map_err(|e| self.net_error(url, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        // A codexport master always answers `{"error": {"code", "message"}}`; anything else
        // is some other server (a wrong URL, a proxy).
        let error = resp.json::<serde_json::Value>().ok();
        let field = |k: &str| {
            error
                .as_ref()
                .and_then(|v| v["error"][k].as_str().map(str::to_owned))
        };
        let code = field("code").unwrap_or_default();
        if code.is_empty() && status == StatusCode::NOT_FOUND {
            return Err(self.older_master(url).unwrap_or(ClientError::NotAMaster {
                url: url.to_owned(),
                status: status.as_u16(),
            }));
        }
        let message = field("message").unwrap_or_else(|| status.to_string());
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::BadCredential { message },
            StatusCode::FORBIDDEN => ClientError::Revoked { message },
            StatusCode::GONE => ClientError::Token { message },
            _ => ClientError::Http {
                url: url.to_owned(),
                status: status.as_u16(),
                code,
                message,
            },
        })
    }

    /// A master of another protocol version, told by the health answer every version keeps
    /// at `/v1/health` (where a master of protocol 1 answers too).
    fn older_master(&self, url: &str) -> Option<ClientError> {
        let probe = format!("{}/v1/health", self.base);
        let timeout = self.remaining(url).ok()?;
        let health: Health = self
            .http
            .get(&probe)
            .timeout(timeout)
            .send()
            .ok()?
            .json()
            .ok()?;
        (health.protocol != u64::from(super::PROTOCOL_VERSION)).then(|| ClientError::Protocol {
            url: url.to_owned(),
            found: health.protocol,
            supported: super::PROTOCOL_VERSION,
        })
    }

    /// Maps a reqwest error to unreachable or timeout.
    pub fn net_error(&self, url: &str, e: &reqwest::Error) -> ClientError {
        if e.is_timeout() || Instant::now() >= self.deadline {
            ClientError::Timeout {
                url: url.to_owned(),
                ms: self.budget.as_millis(),
            }
        } else {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            ClientError::Unreachable {
                url: url.to_owned(),
                reason,
            }
        }
    }

    pub fn health(&self) -> Result<Health, ClientError> {
        let url = format!("{}/v2/health", self.base);
        let health: Health = self
            .send(self.http.get(&url), &url)?
            .json()
            .map_err(|e| self.net_error(&url, &e))?;
        if health.protocol != u64::from(super::PROTOCOL_VERSION) {
            return Err(ClientError::Protocol {
                url,
                found: health.protocol,
                supported: super::PROTOCOL_VERSION,
            });
        }
        Ok(health)
    }

    /// Exchanges a join token for a credential; returns (credential, enrolled name).
    pub fn enroll(&self, token: &str, name: &str) -> Result<(String, String), ClientError> {
        let url = format!("{}/v2/enroll", self.base);
        let v: serde_json::Value = self
            .send(
                self.http
                    .post(&url)
                    .json(&serde_json::json!({"token": token, "name": name})),
                &url,
            )?
            .json()
            .map_err(|e| self.net_error(&url, &e))?;
        match (v["credential"].as_str(), v["name"].as_str()) {
            (Some(c), Some(n)) => Ok((c.to_owned(), n.to_owned())),
            _ => Err(ClientError::NotAMaster { url, status: 200 }),
        }
    }

    /// The encoded signed head, or `None` if the master has no revision yet, with the
    /// master's tag of its mirror list ([`MIRRORS_HEADER`]).
    pub fn head(&self) -> Result<Option<HeadAnswer>, ClientError> {
        let url = format!("{}/v2/head", self.base);
        match self.send(self.http.get(&url), &url) {
            Ok(resp) => {
                let tag = resp
                    .headers()
                    .get(MIRRORS_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = resp.bytes().map_err(|e| self.net_error(&url, &e))?.to_vec();
                Ok(Some((bytes, tag)))
            }
            Err(ClientError::Http { code, .. }) if code == "no_head" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers this follower's mirror key (X25519, public) and returns the master's signed
    /// list of mirror URLs, encoded.
    pub fn mirrors(&self, key: &[u8; 32]) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v2/mirrors", self.base);
        let resp = self.send(
            self.http
                .post(&url)
                .json(&serde_json::json!({"key": crate::object::id::hex(key)})),
            &url,
        )?;
        Ok(resp.bytes().map_err(|e| self.net_error(&url, &e))?.to_vec())
    }

    /// GETs a file of a static mirror (`<base>/<name>`, no credential), from byte `from`
    /// on. `Ok(None)` when the mirror does not have it; the flag says whether the answer
    /// starts at `from` (a server that ignores the range sends the whole file).
    pub fn mirror_file(
        &self,
        name: &str,
        from: u64,
    ) -> Result<Option<(impl Read + use<>, bool)>, ClientError> {
        let url = format!("{}/{name}", self.base);
        let mut req = self.http.get(&url).timeout(self.remaining(&url)?);
        // A cache in front of the mirror must not hand out a stale head; everything else is
        // named by its hash and never changes, so a cache may answer for it.
        if name == crate::object::mirror::HEAD_FILE {
            req = req.header("cache-control", "no-cache");
        }
        if from > 0 {
            req = req.header("range", format!("bytes={from}-"));
        }
        let resp = req.send().map_err(|e| self.net_error(&url, &e))?;
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Ok(None),
            StatusCode::PARTIAL_CONTENT => Ok(Some((resp, true))),
            s if s.is_success() => Ok(Some((resp, from == 0))),
            s => Err(ClientError::Unreachable {
                url,
                reason: format!("the mirror answered {s}"),
            }),
        }
    }

    /// Starts the object stream; returns its reader and the wire byte counter.
    pub fn fetch(
        &self,
        req: &FetchRequest,
    ) -> Result<(impl Read + use<>, Arc<AtomicU64>), ClientError> {
        let url = format!("{}/v2/fetch", self.base);
        let resp = self.send(
            self.http
                .post(&url)
                .header("content-type", "application/x-codexport-fetch")
                .body(req.encode()),
            &url,
        )?;
        let count = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: resp,
            count: count.clone(),
        };
        Ok((
            std::io::BufReader::with_capacity(256 << 10, counting),
            count,
        ))
    }
}
