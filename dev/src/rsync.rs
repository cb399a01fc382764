//! The rsync baseline: an rsync daemon on loopback serving one folder read-only, and the
//! client commands the benchmarks time against codexport's follower.
//!
//! A copy is compared with `follower join --apply` only when it is as durable: the client
//! copy is followed by `sync -f DEST` (syncfs of the destination's filesystem, the barrier
//! codexport's apply uses), see [`sync_fs`]. rsync runs with or without `-z`
//! ([`RsyncDaemon::client`]): codexport's objects travel compressed, so a report shows both or
//! says which it used. Nothing here installs rsync; callers check for it first
//! ([`crate::bench::baseline_tool`]).

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rsync --daemon` on 127.0.0.1, serving one folder as the module `codex`;
/// killed when dropped.
#[derive(Debug)]
pub struct RsyncDaemon {
    child: Child,
    port: u16,
}

impl RsyncDaemon {
    /// Starts a daemon serving `served` read-only, its config and log in `scratch` (an
    /// existing directory). Waits until it accepts connections.
    pub fn start(scratch: &Path, served: &Path) -> io::Result<Self> {
        let meta = fs::metadata(scratch)?;
        let conf = scratch.join("rsyncd.conf");
        fs::write(
            &conf,
            format!(
                "address = 127.0.0.1\nuse chroot = no\nuid = {}\ngid = {}\nlog file = {}\n\n[codex]\npath = {}\nread only = yes\n",
                meta.uid(),
                meta.gid(),
                scratch.join("rsyncd.log").display(),
                served.display()
            ),
        )?;
        let port = free_port()?;
        let child = Command::new("rsync")
            .args(["--daemon", "--no-detach", "--port", &port.to_string()])
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let daemon = Self { child, port };
        if wait_for_port(port) {
            Ok(daemon)
        } else {
            Err(io::Error::other(format!(
                "the rsync daemon did not listen on 127.0.0.1:{port} within 5 s"
            )))
        }
    }

    /// `rsync://127.0.0.1:PORT/codex/`: the served folder's content.
    pub fn url(&self) -> String {
        format!("rsync://127.0.0.1:{}/codex/", self.port)
    }

    /// `rsync -a [-z] --delete --stats URL DEST/`: copies the served folder's content into
    /// `dest`, compressing on the wire with `compress`.
    pub fn client(&self, dest: &Path, compress: bool) -> Command {
        let mut to = dest.as_os_str().to_owned();
        to.push("/");
        let mut c = Command::new("rsync");
        c.arg(if compress { "-az" } else { "-a" })
            .args(["--delete", "--stats", &self.url()])
            .arg(to);
        c
    }
}

impl Drop for RsyncDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sync -f DIR`: makes everything written on `dir`'s filesystem durable (syncfs), as
/// codexport's apply does before its commit.
pub fn sync_fs(dir: &Path) -> Command {
    let mut c = Command::new("sync");
    c.arg("-f").arg(dir);
    c
}

/// "Total bytes sent" + "Total bytes received" of `rsync --stats` output.
pub fn wire_bytes(stats: &str) -> u64 {
    let field = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.chars().filter(char::is_ascii_digit).collect::<String>())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("Total bytes sent:") + field("Total bytes received:")
}

/// A port nothing listens on now (the daemon binds it just after).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether something accepts connections on 127.0.0.1:`port` within 5 s.
pub fn wait_for_port(port: u16) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_of_stats() {
        let stats = "Number of files: 3\nTotal bytes sent: 1,234\nTotal bytes received: 56,789\n";
        assert_eq!(wire_bytes(stats), 58_023);
        assert_eq!(wire_bytes("nothing"), 0);
    }

    #[test]
    fn a_daemon_copy_is_the_folder() {
        if crate::bench::find_tool("rsync").is_err() {
            crate::skip!("the rsync daemon test", "rsync is not installed");
        }
        let dir = tempfile::tempdir().unwrap();
        let (served, dest) = (dir.path().join("served"), dir.path().join("dest"));
        fs::create_dir_all(served.join("a")).unwrap();
        fs::write(served.join("a/f"), b"content").unwrap();
        let daemon = RsyncDaemon::start(dir.path(), &served).unwrap();
        for compress in [false, true] {
            let out = daemon.client(&dest, compress).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            assert!(wire_bytes(&String::from_utf8_lossy(&out.stdout)) > 0);
            assert_eq!(fs::read(dest.join("a/f")).unwrap(), b"content");
        }
        assert!(sync_fs(&dest).status().unwrap().success());
    }
}
