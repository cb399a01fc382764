//! A counting TCP relay on loopback: a benchmark puts it between a client and a server
//! that keeps no log of its own (`master serve`) to count the HTTP requests and the bytes
//! that cross, both ways, headers included, as an access log would.
//!
//! Every accepted connection is relayed to `127.0.0.1:<target>`; when the target does not
//! answer (a server stopped for a while), the client's connection is closed at once.
//! Requests are counted by their request line's `HTTP/1.1` in the client's bytes. Nothing
//! is written anywhere.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What crossed a relay so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Crossed {
    /// Connections relayed to the target.
    pub connections: u64,
    /// HTTP/1.1 requests the clients sent.
    pub requests: u64,
    /// Bytes from the clients to the target.
    pub up: u64,
    /// Bytes from the target to the clients.
    pub down: u64,
}

impl std::ops::Sub for Crossed {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            connections: self.connections - o.connections,
            requests: self.requests - o.requests,
            up: self.up - o.up,
            down: self.down - o.down,
        }
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

/// A running relay; stops accepting when dropped (relayed connections finish on their own).
pub struct Relay {
    port: u16,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Listens on a free loopback port and relays to `127.0.0.1:target`.
    pub fn start(target: u16) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let relay = Self {
            port,
            counters: Arc::default(),
            stop: Arc::default(),
        };
        let (counters, stop) = (relay.counters.clone(), relay.stop.clone());
        std::thread::Builder::new()
            .name("relay-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    // A target that is down: the client sees its connection closed.
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                        continue;
                    };
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    pipe(client, server, &counters);
                }
            })?;
        Ok(relay)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What crossed so far.
    pub fn crossed(&self) -> Crossed {
        let c = &self.counters;
        Crossed {
            connections: c.connections.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            up: c.up.load(Ordering::Relaxed),
            down: c.down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies both ways on two threads, counting; each direction's end is passed on.
fn pipe(client: TcpStream, server: TcpStream, counters: &Arc<Counters>) {
    let halves = client
        .try_clone()
        .and_then(|c| Ok((c, server.try_clone()?)));
    let Ok((client2, server2)) = halves else {
        return;
    };
    let up = counters.clone();
    let down = counters.clone();
    std::thread::spawn(move || copy(client, server, &up, true));
    std::thread::spawn(move || copy(server2, client2, &down, false));
}

fn copy(mut from: TcpStream, mut to: TcpStream, counters: &Counters, upward: bool) {
    const REQUEST_LINE_END: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = vec![0u8; 64 << 10];
    // The end of the previous read, so a request line cut between two reads is counted.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Counted before they are passed on: once the other side has them, they show.
        if upward {
            counters.up.fetch_add(n as u64, Ordering::Relaxed);
            tail.extend_from_slice(&buf[..n]);
            let found = tail
                .windows(REQUEST_LINE_END.len())
                .filter(|w| *w == REQUEST_LINE_END)
                .count();
            counters.requests.fetch_add(found as u64, Ordering::Relaxed);
            let keep = tail.len().min(REQUEST_LINE_END.len() - 1);
            tail.drain(..tail.len() - keep);
        } else {
            counters.down.fetch_add(n as u64, Ordering::Relaxed);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_bytes_both_ways() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap().port();
        let answer = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = [0u8; 64];
            let mut read = 0;
            // Two requests, the second split in two writes by the client.
            while read < 2 * "GET /a HTTP/1.1\r\n\r\n".len() {
                read += s.read(&mut got[read..]).unwrap();
            }
            s.write_all(b"0123456789").unwrap();
        });
        let relay = Relay::start(target).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", relay.port())).unwrap();
        c.write_all(b"GET /a HTTP/1.1\r\n\r\nGET /a HT").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        c.write_all(b"TP/1.1\r\n\r\n").unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        answer.join().unwrap();
        assert_eq!(back, b"0123456789");
        let crossed = relay.crossed();
        assert_eq!(
            crossed,
            Crossed {
                connections: 1,
                requests: 2,
                up: 38,
                down: 10
            }
        );
        assert_eq!(crossed - crossed, Crossed::default());
    }

    #[test]
    fn a_target_that_is_down_closes_the_client() {
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let relay = Relay::start(gone).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", relay.port())).unwrap();
        let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n");
        let mut back = Vec::new();
        let _ = c.read_to_end(&mut back);
        assert!(back.is_empty());
        assert_eq!(relay.crossed().connections, 0);
    }
}
