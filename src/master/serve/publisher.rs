//! The daemon's mirror publisher: one background thread that publishes to every mirror
//! after each new revision, when a follower's mirror key is new, and every hour (so a head
//! past half its life is signed again while the master is up). Uploads run without the
//! store open: `master rebuild` and requests are not kept waiting by a slow upload.

use super::Daemon;
use crate::master::mirror::{self, PublishOptions};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// How often the publisher looks at the mirrors without being woken.
const EVERY: Duration = Duration::from_secs(3600);

/// Starts the publisher; send on the returned channel to wake it.
pub(super) fn start(daemon: Arc<Daemon>) -> Sender<()> {
    let (wake, woken) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("mirror-publisher".into())
        .spawn(move || {
            loop {
                match woken.recv_timeout(EVERY) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                // Wakes that came meanwhile are served by this round.
                while woken.try_recv().is_ok() {}
                publish_round(&daemon);
            }
        })
        .expect("a thread can be started");
    wake
}

fn publish_round(daemon: &Daemon) {
    let mirrors = match mirror::list(&daemon.paths) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("codexport serve: mirrors: {e}");
            return;
        }
    };
    for m in mirrors {
        let prepared = daemon
            .store
            .get()
            .map_err(mirror::MirrorError::from)
            .and_then(|store| {
                mirror::prepare(
                    &daemon.paths,
                    &store,
                    &daemon.key,
                    &m,
                    PublishOptions::default(),
                )
            });
        match prepared.and_then(mirror::Prepared::upload) {
            Ok(r) if r.unchanged => {}
            Ok(r) => eprintln!(
                "codexport serve: published revision {} to mirror {} ({} packs, {} bytes uploaded)",
                r.number, r.mirror, r.packs_uploaded, r.bytes_uploaded
            ),
            Err(e) => eprintln!(
                "codexport serve: publishing to mirror {} failed: {e}",
                m.name
            ),
        }
    }
}
