//! `master mirror …`, `master publish`, `follower mirror …`.

use super::super::output::{Render, bytes};
use super::fact;
use crate::follower::mirrors::MirrorsReport as FollowerMirrors;
use crate::master::mirror::{MirrorsReport, PublishAllReport};
use std::fmt::Write;

impl Render for MirrorsReport {
    fn render(&self) -> String {
        if self.mirrors.is_empty() {
            return "no mirror (add one with `codexport master mirror add DEST --url URL`)\n"
                .into();
        }
        let mut out = String::new();
        for m in &self.mirrors {
            writeln!(out, "{}", m.name).ok();
            fact(&mut out, "  writes to", &m.dest);
            fact(&mut out, "  read at", &m.url);
            fact(
                &mut out,
                "  heads last",
                format!("{} days", m.head_ttl_secs / 86_400),
            );
        }
        out
    }
}

impl Render for PublishAllReport {
    fn render(&self) -> String {
        if self.mirrors.is_empty() {
            return "no mirror to publish to (add one with `codexport master mirror add`)\n".into();
        }
        let mut out = String::new();
        for m in &self.mirrors {
            match (&m.report, &m.error) {
                (Some(r), _) if r.unchanged => {
                    writeln!(out, "{}: revision {} already published", m.mirror, r.number).ok();
                }
                (Some(r), _) => {
                    writeln!(
                        out,
                        "{}: revision {} published ({} packs, {} uploaded{}; {} followers can read it)",
                        m.mirror,
                        r.number,
                        r.packs,
                        bytes(r.bytes_uploaded),
                        if r.new_key { ", new content key" } else { "" },
                        r.recipients
                    )
                    .ok();
                }
                (None, Some(e)) => {
                    writeln!(out, "{}: failed: {e}", m.mirror).ok();
                }
                (None, None) => {}
            }
        }
        out
    }
}

impl Render for FollowerMirrors {
    fn render(&self) -> String {
        let mut out = String::new();
        if self.learned.is_empty() && self.manual.is_empty() {
            return "no mirror: this follower syncs from the master only\n".into();
        }
        for u in &self.learned {
            fact(&mut out, "from master", u);
        }
        for u in &self.manual {
            fact(&mut out, "added", u);
        }
        out
    }
}
