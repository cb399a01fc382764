//! The master's accept loop (it replaces `axum::serve`, which has no header timeout, no
//! connection cap and no way to end one connection from outside).
//!
//! What it guarantees, each against an attack measured on loopback (docs/reliability.md):
//! - **Header-read timeout.** hyper's http1 builder gets a timer and
//!   [`Limits::header_read_timeout`]: a request head that has not fully arrived by then closes
//!   the connection. hyper arms the same timer whenever it waits for a head, so it is also the
//!   keep-alive idle timeout. Without a timer hyper silently skips its own default, which is
//!   why slow-loris connections used to live for ever.
//! - **Connection caps.** At most [`Limits::max_per_ip`] open connections per source address
//!   (followers on a tailnet each have their own address, so one attacking address cannot
//!   crowd them out) and [`Limits::max_connections`] in total, sized below the open-file limit
//!   so the store, the watcher and blocking threads always find a descriptor. At the total cap
//!   the oldest connection that has not yet sent a complete request head is evicted (a slow
//!   loris; a real follower sends its head within milliseconds). Refused connections are
//!   reset (SO_LINGER 0): one syscall, no task, no TIME_WAIT.
//! - **Accept errors back off.** EMFILE/ENFILE leave the connection in the backlog and the
//!   listener readable, so retrying at once would spin a core; the loop sleeps
//!   [`Limits::accept_backoff`] and logs at most once every 10 s.
//! - **A kill switch per connection** ([`ConnCtl`], in every request's extensions next to
//!   `ConnectInfo`): a stalled or revoked stream drops its connection at once, whatever hyper
//!   is doing with the response.
//! - **Write stalls end.** Every connection's socket is wrapped in a [`StallGuard`].
//! - **Shutdown is bounded.** After the shutdown future, in-flight requests get
//!   [`Limits::shutdown_grace`]; whatever is left (a half-sent head holds hyper's graceful
//!   shutdown for ever) is then dropped.
//!
//! It never reads a request body and never decides who may do what: that is `server.rs`.

use super::stall::StallGuard;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connection limits of the master. The defaults are what `master serve` runs with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections in total. [`Limits::fit_to_open_files`] lowers it below the open-file
    /// limit.
    pub max_connections: usize,
    /// Open connections per source address (IPv4-mapped IPv6 counts as IPv4).
    pub max_per_ip: usize,
    /// A whole request head must arrive within this; also the keep-alive idle limit.
    pub header_read_timeout: Duration,
    /// A response write that makes no progress for this long drops the connection.
    pub write_stall_timeout: Duration,
    /// After the shutdown signal: how long in-flight requests may still finish.
    pub shutdown_grace: Duration,
    /// Pause after EMFILE/ENFILE (and unexpected accept errors) instead of spinning.
    pub accept_backoff: Duration,
    /// hyper's read and write buffer ceiling, which is also the largest request head.
    pub max_buf_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 768,
            max_per_ip: 32,
            header_read_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            accept_backoff: Duration::from_millis(100),
            max_buf_size: 64 << 10,
        }
    }
}

/// Descriptors kept free for everything but connections (the store and its packs, the
/// watcher, blocking threads, stdio).
const RESERVED_FDS: u64 = 128;

impl Limits {
    /// Lowers the total cap so that [`RESERVED_FDS`] descriptors of the soft open-file limit
    /// stay free (call after [`raise_open_file_limit`]).
    pub fn fit_to_open_files(mut self) -> Self {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let room = soft.saturating_sub(RESERVED_FDS).max(16);
        self.max_connections = self.max_connections.min(room as usize);
        self
    }
}

/// The highest soft open-file limit asked for when the hard limit is unlimited (Linux caps at
/// fs.nr_open, macOS at kern.maxfilesperproc).
const OPEN_FILES_CEILING: u64 = 1 << 20;

/// Raises the soft open-file limit (RLIMIT_NOFILE) to the hard limit, which a service manager
/// or `ulimit -Hn` sets; the soft default (1,024 under systemd) is what a slow-loris attack
/// used to exhaust. Returns the soft limit before and after; never lowers it.
pub fn raise_open_file_limit() -> io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let target = maximum.map_or(OPEN_FILES_CEILING, |m| m.min(OPEN_FILES_CEILING));
    if current.is_none_or(|c| c >= target) {
        return Ok((current, current));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum,
        },
    )?;
    Ok((current, getrlimit(Resource::Nofile).current))
}

/// What the loop did, for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub evicted: AtomicU64,
    pub accept_errors: AtomicU64,
    pub killed: AtomicU64,
}

/// One connection's kill switch, in every request's extensions. [`ConnCtl::kill`] drops the
/// connection at once (reset, buffers freed) whatever its response is doing; the token is
/// also cancelled when the connection ends, so tasks waiting on it finish.
#[derive(Debug, Clone)]
pub struct ConnCtl {
    pub peer: SocketAddr,
    kill: CancellationToken,
}

impl ConnCtl {
    pub fn kill(&self) {
        self.kill.cancel();
    }

    pub fn token(&self) -> &CancellationToken {
        &self.kill
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections that have not completed a request head yet, oldest first.
    pending: BTreeMap<u64, CancellationToken>,
    next_seq: u64,
}

/// The open connections, counted per source address.
struct Tracker {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

/// A connection's place in the [`Tracker`], given back on drop.
struct Slot {
    tracker: Arc<Tracker>,
    ip: IpAddr,
    seq: u64,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .expect("connection counts are never poisoned: no panic while held")
    }

    /// A place for a connection from `ip`, or `None` when it is over a cap. At the total cap
    /// the oldest connection without a complete request head is evicted to make room.
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        kill: &CancellationToken,
        stats: &Stats,
    ) -> Option<Slot> {
        let mut c = self.lock();
        // Per address first: a source over its own cap never evicts anyone.
        if c.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return None;
        }
        if c.total >= self.max_total {
            // The evicted connection gives its place back as its task ends (at once), so the
            // total may overshoot by the evictions in flight.
            let (_, victim) = c.pending.pop_first()?;
            victim.cancel();
            stats.evicted.fetch_add(1, Relaxed);
        }
        *c.per_ip.entry(ip).or_insert(0) += 1;
        c.total += 1;
        let seq = c.next_seq;
        c.next_seq += 1;
        c.pending.insert(seq, kill.clone());
        Some(Slot {
            tracker: self.clone(),
            ip,
            seq,
        })
    }

    fn head_complete(&self, seq: u64) {
        self.lock().pending.remove(&seq);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.tracker.lock();
        c.pending.remove(&self.seq);
        c.total -= 1;
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
    )
}

/// Errors about one pending connection (its peer gave up): accept the next.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What every connection task needs; built once per [`serve`].
struct Shared {
    http: hyper::server::conn::http1::Builder,
    graceful: GracefulShutdown,
    router: Router,
    tracker: Arc<Tracker>,
    stats: Arc<Stats>,
    limits: Limits,
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets
/// in-flight requests finish for [`Limits::shutdown_grace`] and drops whatever is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper skips its header timeout silently (and panics at
    // serve_connection when one is set explicitly).
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(limits.max_buf_size);
    let shared = Shared {
        http,
        graceful: GracefulShutdown::new(),
        router,
        tracker: Arc::new(Tracker {
            max_total: limits.max_connections,
            max_per_ip: limits.max_per_ip,
            counts: Mutex::new(Counts::default()),
        }),
        stats,
        limits,
    };
    let hard_stop = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_log = None::<tokio::time::Instant>;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                shared.stats.accept_errors.fetch_add(1, Relaxed);
                let now = tokio::time::Instant::now();
                if last_log.is_none_or(|t| now - t > Duration::from_secs(10)) {
                    let what = if is_fd_exhaustion(&e) {
                        " (out of file descriptors)"
                    } else {
                        ""
                    };
                    eprintln!("codexport serve: accepting failed{what}: {e}; backing off");
                    last_log = Some(now);
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(shared.limits.accept_backoff) => continue,
                }
            }
        };
        let kill = hard_stop.child_token();
        let ip = peer.ip().to_canonical();
        match shared.tracker.admit(ip, &kill, &shared.stats) {
            Some(slot) => spawn_connection(&shared, tcp, peer, slot, kill),
            None => {
                shared.stats.refused.fetch_add(1, Relaxed);
                let _ = tcp.set_zero_linger();
                drop(tcp);
            }
        }
    }
    // Stop accepting: from here the kernel refuses new connections.
    drop(listener);
    if tokio::time::timeout(shared.limits.shutdown_grace, shared.graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("codexport serve: grace period over; dropping the remaining connections");
        hard_stop.cancel();
    }
    Ok(())
}

fn spawn_connection(
    sh: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    kill: CancellationToken,
) {
    sh.stats.accepted.fetch_add(1, Relaxed);
    // Small answers (a head, a one-file fetch) must not wait behind the peer's delayed ACK.
    let _ = tcp.set_nodelay(true);
    let io = TokioIo::new(StallGuard::new(
        tcp,
        sh.limits.write_stall_timeout,
        kill.clone(),
    ));
    let ctl = ConnCtl { peer, kill };
    let ext = ctl.clone();
    let (seq, head_seen) = (slot.seq, Arc::new(AtomicBool::new(false)));
    let tracker = sh.tracker.clone();
    // The same as `into_make_service_with_connect_info::<SocketAddr>()`, plus the kill switch.
    let svc = sh
        .router
        .clone()
        .map_request(move |mut req: Request<Incoming>| {
            // Runs once hyper has parsed a complete request head.
            if !head_seen.swap(true, Relaxed) {
                tracker.head_complete(seq);
            }
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(ext.clone());
            req
        });
    let conn = sh.http.serve_connection(io, TowerToHyperService::new(svc));
    let conn = sh.graceful.watch(conn);
    let stats = sh.stats.clone();
    tokio::spawn(async move {
        let _slot = slot;
        // Ends the watchers of this connection (stream revocation links) when it closes.
        let _cancel_on_exit = ctl.kill.clone().drop_guard();
        tokio::select! {
            _ = conn => {}
            () = ctl.kill.cancelled() => {
                stats.killed.fetch_add(1, Relaxed);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(total: usize, per_ip: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            max_total: total,
            max_per_ip: per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    #[test]
    fn caps_per_address_and_in_total_evicting_the_oldest_pending() {
        let (t, stats) = (tracker(3, 2), Stats::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let tokens: Vec<CancellationToken> = (0..5).map(|_| CancellationToken::new()).collect();
        let s0 = t.admit(a, &tokens[0], &stats).unwrap();
        let _s1 = t.admit(a, &tokens[1], &stats).unwrap();
        assert!(
            t.admit(a, &tokens[2], &stats).is_none(),
            "over the cap of a"
        );
        let s2 = t.admit(b, &tokens[2], &stats).unwrap();
        t.head_complete(s0.seq);
        // Full: the oldest connection without a head (tokens[1]) makes room, not s0.
        let _s3 = t.admit(b, &tokens[3], &stats).unwrap();
        assert!(tokens[1].is_cancelled() && !tokens[0].is_cancelled());
        assert_eq!(stats.evicted.load(Relaxed), 1);
        drop((s0, s2));
        assert_eq!(t.lock().per_ip.get(&b), Some(&1));
        // IPv4-mapped IPv6 is the same source.
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(mapped.to_canonical(), a);
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit};
        let (_, after) = raise_open_file_limit().unwrap();
        let hard = getrlimit(Resource::Nofile).maximum;
        let target = hard.map_or(OPEN_FILES_CEILING, |h| h.min(OPEN_FILES_CEILING));
        assert!(after.is_none_or(|a| a >= target), "{after:?} < {target}");
        let fitted = Limits::default().fit_to_open_files();
        assert!(fitted.max_connections <= 768 && fitted.max_connections >= 16);
    }
}
