//! A write-stall timeout for a connection: when a write (or flush) stays pending for
//! `limit` without any progress, it fails with `TimedOut`, and hyper drops the connection.
//! This bounds how long any response (streamed or not) can sit in our buffers for a peer
//! that stopped reading. Progress of one byte re-arms it, so it is a liveness check, not a
//! minimum rate (the per-chunk send timeout of the stream producer gives a minimum rate).
//!
//! When the connection is dropped after a stall or a kill (revocation, stalled producer,
//! hard stop), the socket is closed with SO_LINGER=0: an RST that frees the kernel send
//! buffer at once (up to 4 MiB autotuned) instead of an orphan that keeps retrying to
//! deliver it to a peer that does not read, and that the client cannot mistake for an end.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

pub struct StallGuard<T: Abort> {
    inner: T,
    limit: Duration,
    /// Armed while a write is pending; `None` while writes make progress.
    timer: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// Cancelled when the connection is killed: reset it on drop.
    kill: CancellationToken,
}

/// A transport that can be closed abortively.
pub trait Abort {
    fn abort(&self);
}

impl Abort for tokio::net::TcpStream {
    fn abort(&self) {
        let _ = self.set_zero_linger();
    }
}

impl<T: Abort> Drop for StallGuard<T> {
    fn drop(&mut self) {
        if self.stalled || self.kill.is_cancelled() {
            self.inner.abort();
        }
    }
}

impl<T: Abort> StallGuard<T> {
    pub fn new(inner: T, limit: Duration, kill: CancellationToken) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            stalled: false,
            kill,
        }
    }

    fn watch<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.timer.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(Instant::now() + limit))
                });
                ready!(timer.as_mut().poll(cx));
                self.stalled = true;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "peer stopped reading (write stalled)",
                )))
            }
        }
    }
}

impl<T: AsyncRead + Abort + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Abort + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}
