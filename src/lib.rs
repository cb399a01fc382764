//! codexport: keep one trusted OpenAI Codex setup identical across machines.
//!
//! Layers, lowest first: `object` (encodings, ids) ← `store` (redb + packs) ← `snapshot` ←
//! `cli`. A lower module never imports a higher one.

pub mod bench;
pub mod checkout;
pub mod cli;
pub mod follower;
pub mod fsutil;
pub mod hook;
pub mod library;
pub mod master;
pub mod mcp;
pub mod object;
pub mod overlay;
pub mod paths;
pub mod pathmap;
pub mod progress;
pub mod sample;
pub mod service;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod time;
pub mod toml_doc;
pub mod transport;
