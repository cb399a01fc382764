//! The server's limits as the README states them, checked on a running master fast enough
//! for the debug `cargo test`: the header-read timeout, the per-address connection cap, and
//! hostile `/v2/enroll` requests (the one route without a credential). The attacks at scale
//! are in `hostile.rs`.

use crate::hostile::{addr_of, connect_from, runtime, status_of};
use crate::util::{Home, Master, enroll, master_home};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` from `from` and returns the answer's status (`None`: reset or closed).
async fn status_from(from: &str, to: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = connect_from(from, to).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut answer))
        .await
        .ok()?
        .ok()?;
    status_of(&answer)
}

/// Each limit, in one run against one master.
#[test]
fn server_limits_hold_and_enroll_refuses_hostile_bodies() {
    let m = master_home();
    let master = Master::start(&m, false);
    let to = addr_of(&master);
    let rt = runtime();
    rt.block_on(async {
        // A silent connection is closed at the header-read timeout (10 s).
        let mut silent = connect_from("127.0.0.1", to).await.unwrap();
        let opened = Instant::now();

        // 40 connections from one address: 32 stay open, the rest are reset at once.
        let mut crowd = Vec::new();
        for _ in 0..40 {
            crowd.push(connect_from("127.0.0.4", to).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut open = 0;
        for s in &crowd {
            let mut b = [0u8; 1];
            if tokio::time::timeout(Duration::from_millis(20), s.peek(&mut b))
                .await
                .is_err()
            {
                open += 1;
            }
        }
        assert_eq!(open, 32, "the per-address cap is 32");
        // Another address is served meanwhile.
        let health = b"GET /v2/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert_eq!(status_from("127.0.0.1", to, health).await, Some(200));

        // Hostile enroll bodies.
        let enroll_as = |body: &str, length: usize| {
            format!(
                "POST /v2/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{body}"
            )
            .into_bytes()
        };
        let enroll = |body: &str| enroll_as(body, body.len());
        let big = format!("{{\"token\":\"{}\",\"name\":\"x\"}}", "a".repeat(5000));
        let unknown = format!("{{\"token\":\"cxt1_{}\",\"name\":\"x\"}}", "00".repeat(32));
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("a 5 KB body", enroll(&big), 413),
            ("1 GiB announced, nothing sent", enroll_as("", 1 << 30), 413),
            ("not JSON", enroll("{token"), 400),
            ("wrong types", enroll("{\"token\":1,\"name\":[]}"), 400),
            ("no fields", enroll("{}"), 400),
            ("an unknown token", enroll(&unknown), 410),
            ("a malformed token", enroll("{\"token\":\"\\u0000\",\"name\":\"\"}"), 410),
        ];
        for (case, request, want) in cases {
            let got = status_from("127.0.0.1", to, &request).await;
            assert_eq!(got, Some(want), "{case}");
        }

        let mut b = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut b)).await;
        let lived = opened.elapsed();
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "{closed:?}");
        eprintln!("a silent connection was closed after {:.1} s", lived.as_secs_f64());
        assert!(
            lived > Duration::from_secs(9) && lived < Duration::from_secs(12),
            "{lived:?}"
        );
    });
    // The master still enrolls and serves a real follower.
    let f = Home::new();
    enroll(&m, &master, &f);
    assert_eq!(f.json(&["sync"])["result"], "current");
}
