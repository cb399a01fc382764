//! A progress bar for long transfers and snapshots, drawn on stderr only when it is a
//! terminal (so logs, pipes and `--json` output stay clean).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

const TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, {eta})";

/// Counts objects and bytes done against known totals. Shareable across threads (`&self`).
pub struct Progress {
    bar: ProgressBar,
    objects: AtomicU64,
    total_objects: u64,
}

impl Progress {
    /// A bar over `total_bytes`, also showing objects done out of `total_objects`. Hidden
    /// unless `enabled` and stderr is a terminal.
    pub fn new(enabled: bool, total_objects: u64, total_bytes: u64) -> Self {
        let bar = if enabled && std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(TEMPLATE)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(format!("0/{total_objects} objects"));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            objects: AtomicU64::new(0),
            total_objects,
        }
    }

    /// Records `objects` more objects and `bytes` more bytes done.
    pub fn inc(&self, objects: u64, bytes: u64) {
        let done = self.objects.fetch_add(objects, Ordering::Relaxed) + objects;
        if !self.bar.is_hidden() {
            self.bar
                .set_message(format!("{done}/{} objects", self.total_objects));
        }
        self.bar.inc(bytes);
    }

    /// Removes the bar from the terminal; the caller prints its own summary.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_is_hidden_and_counts() {
        let p = Progress::new(false, 3, 300);
        assert!(p.bar.is_hidden());
        p.inc(1, 100);
        p.inc(2, 200);
        assert_eq!(p.objects.load(Ordering::Relaxed), 3);
        assert_eq!(p.bar.position(), 300);
        p.finish();
    }
}
