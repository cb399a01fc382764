//! `master init`, `master rebuild`, `bench gen-library`.

use super::output::{Output, bytes};
use crate::master;
use crate::paths::{Paths, tilde};
use crate::snapshot::SnapshotReport;
use std::fmt::Write;
use std::path::Path;

pub fn init(paths: &Paths) -> miette::Result<Output> {
    let report = master::init(paths)?;
    let s = &report.snapshot;
    let mut human = String::new();
    writeln!(human, "role         master").ok();
    writeln!(
        human,
        "codex dir    {}",
        tilde(&paths.codex_dir, &paths.home)
    )
    .ok();
    writeln!(human, "fingerprint  {}", report.fingerprint).ok();
    writeln!(
        human,
        "revision     {} ({})",
        s.number.unwrap_or(0),
        s.revision.as_deref().map_or("-", |r| &r[..12])
    )
    .ok();
    writeln!(human, "files        {} ({})", s.files, bytes(s.bytes)).ok();
    warnings(&mut human, s);
    Ok(Output::new(&report, human))
}

pub fn rebuild(paths: &Paths) -> miette::Result<Output> {
    let s = master::rebuild(paths)?;
    let mut human = String::new();
    let id = s.revision.as_deref().map_or("-", |r| &r[..12]);
    if s.created {
        let c = s.changes;
        writeln!(
            human,
            "new revision {} ({id}): +{} ~{} -{}, {} files, {}",
            s.number.unwrap_or(0),
            c.added,
            c.modified,
            c.removed,
            s.files,
            bytes(s.bytes)
        )
        .ok();
    } else {
        writeln!(
            human,
            "no change: revision {} ({id}) is current",
            s.number.unwrap_or(0)
        )
        .ok();
    }
    warnings(&mut human, &s);
    Ok(Output::new(&s, human))
}

fn warnings(human: &mut String, s: &SnapshotReport) {
    for w in &s.warnings {
        eprintln!("warning: {w}");
        let _ = human;
    }
}

pub fn gen_library(dir: &Path, files: usize, seed: u64) -> miette::Result<Output> {
    let stats =
        codexport_dev::library::generate(dir, &codexport_dev::library::LibrarySpec { files, seed })
            .map_err(|e| {
                miette::miette!(
                    code = "codexport::bench::io",
                    help = "choose a writable directory",
                    "cannot write the library into {}: {e}",
                    dir.display()
                )
            })?;
    let human = format!(
        "generated {} files in {} skills ({}) in {}\n",
        stats.files,
        stats.skills,
        bytes(stats.bytes),
        dir.display()
    );
    Ok(Output::new(&stats, human))
}
