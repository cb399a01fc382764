//! codexport: keep one trusted OpenAI Codex setup identical across machines.
//!
//! Layers, lowest first: `object` (encodings, ids) ← `store` (redb + packs) ← `snapshot` ←
//! `cli`. A lower module never imports a higher one.

pub mod access;
pub mod checkout;
pub mod cli;
pub mod follower;
pub mod fsutil;
pub mod hook;
pub mod master;
pub mod mcp;
pub mod object;
pub mod overlay;
pub mod paths;
pub mod progress;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod transport;
pub mod watch;
