//! Real servers a mirror lives behind, started on loopback for tests and benchmarks: nginx
//! over a folder, and moto's S3-compatible server. Each is killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released: another process could take it in between, which
/// the caller's start-up check then reports).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something answers HTTP on `port`.
fn wait_http(port: u16, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited at start: {status}"));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .is_ok()
            {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not answer on port {port} within 20 s"))
}

/// nginx serving a folder read-only on a loopback port, with its configuration, logs and
/// temporary files in a folder of its own.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile_dir::Dir,
}

impl Nginx {
    /// Starts `nginx` (from `PATH` or /usr/sbin) over `root`; `Err` names what is missing.
    pub fn start(root: &Path) -> Result<Self, String> {
        let bin = ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|b| {
                Command::new(b)
                    .arg("-v")
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            })
            .ok_or("nginx is not installed (Debian: nginx-light)")?;
        let dir = tempfile_dir::Dir::new("codexport-nginx").map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        // As root, nginx's workers run as `nobody` unless told otherwise, and could not read
        // a folder under a private temporary directory.
        let user = if rustix::process::geteuid().is_root() {
            "user root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  log_format counted '$remote_addr [$time_local] \"$request\" $status \
             $body_bytes_sent $request_length $bytes_sent';\n  \
             access_log {d}/access.log counted;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  default_type application/octet-stream;\n  \
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    \
             location = /head {{ add_header Cache-Control no-cache; }}\n    \
             location ~ ^/(packs|keys)/ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n  }}\n}}\n",
            d = dir.path.display(),
            root = root.display(),
        );
        let conf_path = dir.path.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(&dir.path)
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        if let Err(e) = wait_http(port, &mut child, "nginx") {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path.join("error.log")).unwrap_or_default();
            return Err(format!("{e}\n{log}"));
        }
        Ok(Self { child, port, dir })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests served so far (lines of the access log).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The requests served so far, with what each moved (parsed from the access log; a line
    /// that does not parse is left out).
    pub fn served(&self) -> Vec<Served> {
        self.requests()
            .iter()
            .filter_map(|l| Served::parse(l))
            .collect()
    }

    /// The process id of nginx's master process (its workers are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// One request as nginx logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The request line, such as `GET /head HTTP/1.1`.
    pub request: String,
    pub status: u16,
    /// The response body's bytes.
    pub body_bytes: u64,
    /// The request's bytes (request line, headers and body).
    pub request_bytes: u64,
    /// The response's bytes (status line, headers and body).
    pub sent_bytes: u64,
}

impl Served {
    /// Parses `ADDR [TIME] "REQUEST" STATUS BODY REQUEST_LENGTH BYTES_SENT`.
    fn parse(line: &str) -> Option<Self> {
        let (_, rest) = line.split_once(" \"")?;
        let (request, rest) = rest.split_once("\" ")?;
        let mut n = rest.split_whitespace().map(str::parse::<u64>);
        let mut next = || n.next()?.ok();
        Some(Self {
            request: request.to_owned(),
            status: u16::try_from(next()?).ok()?,
            body_bytes: next()?,
            request_bytes: next()?,
            sent_bytes: next()?,
        })
    }

    /// The path asked for.
    pub fn path(&self) -> &str {
        self.request.split_whitespace().nth(1).unwrap_or("")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3-compatible server (`moto_server`, from PyPI's `moto[server]`) on a loopback port.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    pub fn start() -> Result<Self, String> {
        let port = free_port().map_err(|e| e.to_string())?;
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("moto_server (pip install 'moto[server]'): {e}"))?;
        if let Err(e) = wait_http(port, &mut child, "moto_server") {
            let _ = child.kill();
            return Err(e);
        }
        Ok(Self { child, port })
    }

    /// The endpoint, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket whose objects anyone may read (followers read without credentials).
    pub fn public_bucket(&self, bucket: &str) -> Result<(), String> {
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        );
        http(self.port, "PUT", &format!("/{bucket}"), b"")?;
        http(
            self.port,
            "PUT",
            &format!("/{bucket}?policy"),
            policy.as_bytes(),
        )?;
        Ok(())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.0 request; `Err` unless the answer is 2xx.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .and_then(|()| s.write_all(body))
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let ok = answer
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{method} {path}: {}",
            answer.lines().next().unwrap_or("no answer")
        ))
    }
}

/// A temporary folder removed on drop (the dev crate has no tempfile dependency outside
/// its own tests).
mod tempfile_dir {
    use super::PathBuf;

    pub struct Dir {
        pub path: PathBuf,
    }

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Self> {
            let mut n = [0u8; 8];
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            n.copy_from_slice(&(seed as u64 ^ u64::from(std::process::id())).to_le_bytes());
            let path = std::env::temp_dir().join(format!("{prefix}-{}", u64::from_le_bytes(n)));
            std::fs::create_dir_all(&path)?;
            Ok(Self { path })
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Served;

    #[test]
    fn parses_the_counted_log_format() {
        let s = Served::parse(
            r#"127.0.0.1 [08/Dec/2026:10:00:00 +0000] "GET /packs/ab.cxp HTTP/1.1" 206 1000 180 1250"#,
        )
        .unwrap();
        assert_eq!(s.path(), "/packs/ab.cxp");
        assert_eq!(
            (s.status, s.body_bytes, s.request_bytes, s.sent_bytes),
            (206, 1000, 180, 1250)
        );
        assert_eq!(Served::parse("garbage"), None);
    }
}
