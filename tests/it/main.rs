//! The single integration-test binary: real files, real processes, temporary homes.

mod cli;
mod snapshot;
mod util;
