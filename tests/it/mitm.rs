//! A man in the middle for sync tests: forwards to the real master and alters answers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// How the proxy alters traffic.
#[derive(Clone, Debug)]
pub enum Mode {
    Pass,
    /// Flip one bit of the head at this byte offset.
    FlipHead(usize),
    /// Serve these head bytes instead of the master's.
    ReplaceHead(Vec<u8>),
    /// Flip a byte inside the first blob of the object stream (its id unchanged).
    CorruptBlob,
    /// Cut the decompressed object stream after this many bytes.
    Truncate(usize),
}

pub struct Mitm {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    _runtime: tokio::runtime::Runtime,
}

struct Ctx {
    upstream: String,
    mode: Arc<Mutex<Mode>>,
    http: reqwest::Client,
}

impl Mitm {
    pub fn start(upstream: &str, mode: Mode) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let ctx = Arc::new(Ctx { upstream: upstream.to_owned(), mode: mode.clone(), http: reqwest::Client::new() });
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(ctx);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, mode, _runtime: runtime }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

async fn forward(State(ctx): State<Arc<Ctx>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let url = format!("{}{}", ctx.upstream, uri.path());
    let mut req = ctx.http.request(method, &url).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let ctype = resp.headers().get("content-type").cloned();
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    let mode = ctx.mode.lock().unwrap().clone();
    if status.is_success() {
        match (&mode, uri.path()) {
            (Mode::FlipHead(i), "/v1/head") => bytes[*i] ^= 1,
            (Mode::ReplaceHead(h), "/v1/head") => bytes.clone_from(h),
            (Mode::CorruptBlob, "/v1/fetch") => {
                let mut plain = zstd::decode_all(&bytes[..]).unwrap();
                // Frames start after the 5-byte header: [kind][len u32][id 32][bytes].
                let mut at = 5;
                while at < plain.len() && plain[at] != 0 {
                    let len = u32::from_le_bytes(plain[at + 1..at + 5].try_into().unwrap()) as usize;
                    if plain[at] == 1 && len > 0 {
                        plain[at + 37] ^= 0x55;
                        break;
                    }
                    at += 37 + len;
                }
                bytes = zstd::encode_all(&plain[..], 3).unwrap();
            }
            (Mode::Truncate(n), "/v1/fetch") => {
                let mut plain = zstd::decode_all(&bytes[..]).unwrap();
                plain.truncate(*n);
                bytes = zstd::encode_all(&plain[..], 3).unwrap();
            }
            _ => {}
        }
    }
    let mut out = (status, bytes).into_response();
    if let Some(ct) = ctype {
        out.headers_mut().insert("content-type", ct);
    }
    out
}
