//! codexport's workshop: what its benchmarks, its demo and its integration tests need, and
//! its users never do.
//!
//! - [`library`]: a deterministic generator of a realistic Codex skill library (the input of
//!   every benchmark, `codexport bench gen-library`, and the large-library tests).
//! - [`sample`]: the small sample `~/.codex` that `codexport demo` syncs.
//! - [`bench`]: medians, the lstat and read+hash baselines, a result table, CPU times of
//!   processes, and the lookup of baseline tools (rsync, git).
//! - [`measure`]: whole processes' wall time, CPU time and peak memory (GNU time), and a
//!   running process's CPU time and peak memory (/proc).
//! - [`rsync`]: an rsync daemon on loopback and the client commands timed against it.
//! - [`skip`]: skips that fail under CI and are shown elsewhere (the `skip!` macro).
//! - [`relay`]: a counting TCP relay, for the requests and bytes that reach a server with
//!   no access log of its own.
//! - [`static_server`]: nginx over a folder and moto's S3 server, for mirrors.
//! - [`serve`]: one way to start `codexport master serve` on a loopback port and learn its
//!   address, shared by the demo, `codexport bench sync`, the benchmarks and the tests.
//!
//! This crate never depends on the `codexport` library (the product depends on it, for its
//! `bench` and `demo` commands): it drives the product only through its binary, whose path
//! the caller passes in. It never installs anything and never writes outside the directories
//! it is handed (and the temporary directories of its own tests).

pub mod bench;
pub mod library;
pub mod measure;
pub mod relay;
pub mod rsync;
pub mod sample;
pub mod serve;
pub mod skip;
pub mod static_server;
