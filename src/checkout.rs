//! Checkout: plans and applies merged trees into the codex dir. Never writes outside the codex
//! dir; never deletes a path codexport did not write.

pub mod apply;
mod backup;
pub mod journal;
pub mod plan;
mod steps;
mod survey;

pub use apply::{CheckoutError, ExecOptions, ExecReport, drift, execute, recover};
pub use journal::Journal;
pub use plan::{Op, Plan, plan};
