//! Transport: the HTTP protocol between master and followers (v1, paths under `/v1/`).
//!
//! A sync is two round trips whatever the library size: `GET /v1/head` (signed), then one
//! `POST /v1/fetch` that streams exactly the missing objects. The server serves nothing but
//! store objects and the signed head; every endpoint but `/v1/health` needs a follower
//! credential.

pub mod client;
pub mod negotiate;
pub mod server;
pub mod wire;

/// Protocol version, the `v1` in every path.
pub const PROTOCOL_VERSION: u32 = 1;
/// Default port, as in the original tool.
pub const DEFAULT_PORT: u16 = 17342;
