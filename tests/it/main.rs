//! The single integration-test binary: real files, real processes, temporary homes.

mod bench_cmd;
mod checkout;
mod cli;
mod mcp;
mod mitm;
mod snapshot;
mod sync;
mod util;
