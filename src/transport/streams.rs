//! Fair fetch streams: a cap on the streams each follower has open at once, a producer that
//! gives up on a follower that stops reading, and revocation that ends all of one follower's
//! streams at once.
//!
//! One follower that opened many streams of a large revision and never read them used to
//! take every permit of the master (all other followers got 503) and gigabytes of memory.
//! Now each follower has at most [`StreamConfig::per_follower`] streams (the next gets 429
//! with `Retry-After`), each stream buffers at most `depth × chunk` bytes in the process, and
//! a chunk that cannot be queued within [`StreamConfig::send_timeout`] drops the stream and
//! its connection. So the memory a stalled follower holds is bounded in size and in time.
//!
//! When hyper's socket is blocked it stops polling the response body, so ending the body
//! cannot end a stalled stream: both the stall and a revocation kill the connection through
//! its [`ConnCtl`] instead. A stream that is cut ends without the final chunk (or with a
//! reset), so a follower can never take a cut stream for a complete one.

use super::accept::ConnCtl;
use axum::body::{Body, Bytes};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How streams are shared out.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Streams one follower may have open at once.
    pub per_follower: usize,
    /// Bytes per body chunk.
    pub chunk: usize,
    /// Chunks queued between the producer and the socket.
    pub depth: usize,
    /// A chunk that cannot be queued within this means the follower stopped reading: the
    /// stream and its connection are dropped. It also sets a minimum rate of about
    /// `chunk / send_timeout` (6.4 KB/s with the defaults).
    pub send_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            per_follower: 2,
            chunk: 64 << 10,
            depth: 4,
            send_timeout: Duration::from_secs(10),
        }
    }
}

struct Entry {
    open: usize,
    generation: u64,
    revoked: CancellationToken,
}

#[derive(Default)]
struct Inner {
    followers: HashMap<String, Entry>,
    next_generation: u64,
}

/// The open streams, per follower.
pub struct StreamRegistry {
    per_follower: usize,
    inner: Mutex<Inner>,
}

/// One open stream of one follower; gives its place back when dropped. Shared by the
/// producer and the response body, so the place is held until both are gone (a follower
/// cannot pile up finished but unread answers).
pub struct StreamSlot {
    registry: Arc<StreamRegistry>,
    follower: String,
    generation: u64,
    revoked: CancellationToken,
    /// Cancelled when the slot is dropped (the stream is over): ends its watcher task.
    ended: CancellationToken,
}

impl StreamRegistry {
    pub fn new(per_follower: usize) -> Arc<Self> {
        Arc::new(Self {
            per_follower,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the stream registry is never poisoned: no panic while held")
    }

    /// A place for one more stream of `follower`, or `None` when it has its share open.
    pub fn try_open(self: &Arc<Self>, follower: &str) -> Option<Arc<StreamSlot>> {
        let mut inner = self.lock();
        let next = inner.next_generation;
        let entry = inner
            .followers
            .entry(follower.to_owned())
            .or_insert_with(|| Entry {
                open: 0,
                generation: next,
                revoked: CancellationToken::new(),
            });
        if entry.open >= self.per_follower {
            return None;
        }
        entry.open += 1;
        let slot = StreamSlot {
            registry: self.clone(),
            follower: follower.to_owned(),
            generation: entry.generation,
            revoked: entry.revoked.clone(),
            ended: CancellationToken::new(),
        };
        inner.next_generation += 1;
        Some(Arc::new(slot))
    }

    /// Ends every open stream of `follower` now; returns how many there were.
    pub fn revoke(&self, follower: &str) -> usize {
        match self.lock().followers.remove(follower) {
            Some(e) => {
                e.revoked.cancel();
                e.open
            }
            None => 0,
        }
    }

    /// The followers with streams open.
    pub fn followers(&self) -> Vec<String> {
        self.lock().followers.keys().cloned().collect()
    }

    /// How many streams `follower` has open.
    pub fn open(&self, follower: &str) -> usize {
        self.lock().followers.get(follower).map_or(0, |e| e.open)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.ended.cancel();
        let mut inner = self.registry.lock();
        if let Some(e) = inner.followers.get_mut(&self.follower) {
            // A revocation removed the old entry; a newer one is not ours to count down.
            if e.generation == self.generation {
                e.open -= 1;
                if e.open == 0 {
                    inner.followers.remove(&self.follower);
                }
            }
        }
    }
}

/// `Write` for a blocking producer: fixed-size chunks into a bounded channel, each send
/// bounded in time and abandoned on revocation.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    chunk: usize,
    send_timeout: Duration,
    revoked: CancellationToken,
    rt: Handle,
}

fn revoked_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "the follower was revoked")
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.revoked.is_cancelled() {
            return Err(revoked_error());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk),
        ));
        let (tx, revoked, limit) = (&self.tx, &self.revoked, self.send_timeout);
        // Handle::block_on is allowed here: the producer runs on a blocking thread.
        self.rt.block_on(async move {
            tokio::select! {
                biased;
                () = revoked.cancelled() => Err(revoked_error()),
                r = tokio::time::timeout(limit, tx.send(Ok(chunk))) => match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the follower went away")),
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the follower stopped reading")),
                },
            }
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Take at most what fills the chunk, so chunks stay `chunk` bytes however large a
        // write is (callers use write_all) and a stream holds at most depth × chunk.
        let n = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Starts a streamed response: `produce` runs on a blocking thread and writes into a
/// [`ChannelWriter`] (flushing it at the end). Returns the body.
///
/// A producer error ends the body with an error (hyper then aborts the response without its
/// final chunk); a follower that stopped reading, or one revoked, loses its connection.
pub fn spawn_stream<F>(cfg: &StreamConfig, slot: Arc<StreamSlot>, conn: ConnCtl, produce: F) -> Body
where
    F: FnOnce(ChannelWriter) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(cfg.depth);
    // A revocation must end the stream even when nobody polls the body (the follower does
    // not read, or the producer is done and the rest sits in buffers): kill the connection.
    {
        let (revoked, ended) = (slot.revoked.clone(), slot.ended.clone());
        let kill = conn.token().clone();
        tokio::spawn(async move {
            tokio::select! {
                () = revoked.cancelled() => kill.cancel(),
                () = kill.cancelled() => {}
                () = ended.cancelled() => {}
            }
        });
    }
    let errors = tx.clone();
    let writer = ChannelWriter {
        tx,
        buf: Vec::with_capacity(cfg.chunk),
        chunk: cfg.chunk,
        send_timeout: cfg.send_timeout,
        revoked: slot.revoked.clone(),
        rt: Handle::current(),
    };
    let producer_slot = slot.clone();
    tokio::task::spawn_blocking(move || {
        let _slot = producer_slot;
        if let Err(e) = produce(writer) {
            match e.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::PermissionDenied => conn.kill(),
                io::ErrorKind::BrokenPipe => {}
                // No room for the error in the queue: a reset says the same.
                _ => {
                    if errors.try_send(Err(e)).is_err() {
                        conn.kill();
                    }
                }
            }
        }
    });
    let stream = futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        rx.recv().await.map(|item| (item, (rx, slot)))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_follower_has_its_share_and_revocation_frees_it() {
        let reg = StreamRegistry::new(2);
        let a1 = reg.try_open("a").unwrap();
        let _a2 = reg.try_open("a").unwrap();
        assert!(reg.try_open("a").is_none(), "a has its share");
        let _b = reg.try_open("b").unwrap();
        assert_eq!(reg.open("a"), 2);
        let mut names = reg.followers();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(reg.revoke("a"), 2);
        assert!(a1.revoked.is_cancelled());
        // A new stream after the revocation is counted apart from the old ones.
        let _new = reg.try_open("a").unwrap();
        drop(a1);
        assert_eq!(
            reg.open("a"),
            1,
            "an old slot does not count down a new entry"
        );
    }

    #[test]
    fn writes_are_cut_into_chunks_of_a_fixed_size() {
        // Multi-threaded: Handle::block_on of a current-thread runtime drives no timers.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let mut w = ChannelWriter {
            tx,
            buf: Vec::new(),
            chunk: 4,
            send_timeout: Duration::from_millis(50),
            revoked: CancellationToken::new(),
            rt: rt.handle().clone(),
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                w.write_all(b"0123456789").unwrap();
                w.flush().unwrap();
                // The queue holds 8 chunks; the follower reads none: the 9th times out.
                for _ in 0..5 {
                    w.write_all(b"abcd").unwrap();
                }
                let e = w.write_all(b"abcd").unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            });
        });
        let sizes: Vec<usize> = (0..3)
            .map(|_| rx.try_recv().unwrap().unwrap().len())
            .collect();
        assert_eq!(sizes, [4, 4, 2]);
    }
}
