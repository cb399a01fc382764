//! codexport: keep one trusted OpenAI Codex setup identical across machines.
//!
//! Layers, lowest first: `object` (encodings, ids) ← `store` (redb + packs) ← `snapshot` ←
//! `cli`. A lower module never imports a higher one.

pub mod bench;
pub mod cli;
pub mod library;
pub mod master;
pub mod object;
pub mod paths;
pub mod sample;
pub mod snapshot;
pub mod store;
pub mod follower;
pub mod fsutil;
pub mod transport;
pub mod access;
pub mod progress;
pub mod watch;
pub mod checkout;
pub mod overlay;
pub mod hook;
pub mod service;
pub mod mcp;
