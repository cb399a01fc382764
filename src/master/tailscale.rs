//! Finding a host name followers can reach: this machine's Tailscale name or address.

use super::access::AccessError;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long `tailscale status` may take.
const TAILSCALE_TIMEOUT: Duration = Duration::from_secs(3);

/// This machine's Tailscale DNS name (e.g. `laptop.example.ts.net`), which every follower on
/// the same tailnet can reach: asks `tailscale status --json`, waiting at most 3 s.
pub fn tailscale_host() -> Result<String, AccessError> {
    let no_host = |reason: String| AccessError::NoHost { reason };
    let mut command = Command::new("tailscale");
    command.args(["status", "--json"]);
    let (status, stdout) = match run_with_timeout(&mut command, TAILSCALE_TIMEOUT) {
        Ok(Some(done)) => done,
        Ok(None) => {
            return Err(no_host(format!(
                "`tailscale status` did not answer within {} s",
                TAILSCALE_TIMEOUT.as_secs()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(no_host("tailscale is not installed".into()));
        }
        Err(e) => return Err(no_host(format!("could not run tailscale: {e}"))),
    };
    let text = String::from_utf8_lossy(&stdout);
    // `tailscale status --json` exits non-zero when stopped but may still print JSON that
    // says why; prefer what the JSON says.
    match parse_tailscale_status(&text) {
        Ok(host) => Ok(host),
        Err(e) if status.success() => Err(e),
        Err(_) => Err(no_host(format!("`tailscale status` failed ({status})"))),
    }
}

/// The host name in `tailscale status --json` output: `Self.DNSName` without its trailing
/// dot, or else `Self`'s first Tailscale IP (IPv4 first) when MagicDNS gives no name.
pub fn parse_tailscale_status(json: &str) -> Result<String, AccessError> {
    let no_host = |reason: String| AccessError::NoHost { reason };
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        no_host(format!(
            "`tailscale status --json` printed unexpected output ({e})"
        ))
    })?;
    if let Some(state) = value.get("BackendState").and_then(|s| s.as_str()) {
        if state != "Running" {
            return Err(no_host(format!(
                "tailscale is not connected (state {state}); run `tailscale up`"
            )));
        }
    }
    let me = value
        .get("Self")
        .ok_or_else(|| no_host("`tailscale status --json` has no Self entry".into()))?;
    let dns = me
        .get("DNSName")
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    if !dns.is_empty() {
        return Ok(dns.to_owned());
    }
    let ips: Vec<&str> = me
        .get("TailscaleIPs")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|ip| ip.as_str()).collect())
        .unwrap_or_default();
    ips.iter()
        .find(|ip| !ip.contains(':'))
        .or_else(|| ips.first())
        .map(|ip| (*ip).to_owned())
        .ok_or_else(|| no_host("tailscale reports no DNS name or address for this machine".into()))
}

/// Runs `command` with stdout captured, killing it after `timeout`. `Ok(None)` means it
/// timed out. Stdout is read on a thread so a large output cannot fill the pipe and stall
/// the child.
fn run_with_timeout(
    command: &mut Command,
    timeout: Duration,
) -> std::io::Result<Option<(ExitStatus, Vec<u8>)>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // A read error leaves what was read; the exit status tells the rest.
            let _ = out.read_to_end(&mut buf);
            buf
        })
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() >= timeout {
            // Already exited or unkillable: either way, waiting below reaps it.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = reader
        .map(|r| r.join().unwrap_or_default())
        .unwrap_or_default();
    Ok(status.map(|s| (s, output)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailscale_json() {
        let json = r#"{"BackendState":"Running","Self":{"DNSName":"laptop.tail1234.ts.net.","TailscaleIPs":["100.64.0.1","fd7a::1"]},"Peer":{}}"#;
        assert_eq!(
            parse_tailscale_status(json).unwrap(),
            "laptop.tail1234.ts.net"
        );
        let no_dns = r#"{"BackendState":"Running","Self":{"DNSName":"","TailscaleIPs":["fd7a::1","100.64.0.1"]}}"#;
        assert_eq!(parse_tailscale_status(no_dns).unwrap(), "100.64.0.1");
        let v6 = r#"{"Self":{"TailscaleIPs":["fd7a::1"]}}"#;
        assert_eq!(parse_tailscale_status(v6).unwrap(), "fd7a::1");
        for (bad, expected) in [
            (
                r#"{"BackendState":"Stopped","Self":{"DNSName":"x."}}"#,
                "run `tailscale up`",
            ),
            (r#"{"BackendState":"Running"}"#, "no Self"),
            (r#"{"Self":{"DNSName":"."}}"#, "no DNS name"),
            ("not json", "unexpected output"),
        ] {
            match parse_tailscale_status(bad) {
                Err(e @ AccessError::NoHost { .. }) => {
                    assert!(e.to_string().contains(expected), "{e}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn run_with_timeout_captures_and_kills() {
        let (status, out) = run_with_timeout(
            Command::new("sh").args(["-c", "echo hello"]),
            Duration::from_secs(5),
        )
        .unwrap()
        .unwrap();
        assert!(status.success());
        assert_eq!(out, b"hello\n");
        let started = Instant::now();
        let timed_out =
            run_with_timeout(Command::new("sleep").arg("10"), Duration::from_millis(200)).unwrap();
        assert!(timed_out.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        let missing = run_with_timeout(
            &mut Command::new("codexport-no-such-program"),
            Duration::from_secs(1),
        );
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
