//! Transport: the HTTP protocol between master and followers (v2, paths under `/v2/`).
//!
//! A sync is two round trips whatever the library size: `GET /v2/head` (signed), then one
//! `POST /v2/fetch` that streams exactly the missing objects. The server serves nothing but
//! store objects and the signed head; every endpoint but `/v2/health` needs a follower
//! credential.

pub mod accept;
pub mod client;
pub mod link;
pub mod negotiate;
pub mod server;
mod stall;
pub mod streams;
pub mod wire;

/// Protocol version, the `v2` in every path. Version 2 sends objects as stored (compressed
/// once) and knows chunked files. `GET /v1/health` stays, so either side of a mismatch can
/// tell which version the other speaks.
pub const PROTOCOL_VERSION: u32 = 2;
/// Default port, as in the original tool.
pub const DEFAULT_PORT: u16 = 17342;

/// `GET /v2/health`: who the master is, before any credential is spent. Carries the public
/// key, so a follower checks it against the join link's fingerprint before enrolling.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Health {
    #[serde(default)]
    pub service: String,
    pub protocol: u64,
    pub version: String,
    /// The master's ed25519 public key, hex.
    pub master_key: String,
    pub fingerprint: String,
}
