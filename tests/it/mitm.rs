//! A man in the middle for sync tests: forwards to the real master and alters answers.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Answer every fetch with 503 without asking the master (enroll without fetching).
    RefuseFetch,
    /// Answer every fetch with these bytes (a forged, already compressed stream).
    ReplaceFetch(Vec<u8>),
    /// Give the first blob of the stream this kind tag instead (its id and bytes unchanged).
    RetagBlob(u8),
    /// Answer every fetch with an endless stream of random blobs with correct ids.
    Endless,
    /// Send this many bytes of the master's (compressed) fetch answer, then drop the
    /// connection.
    CutAfter(usize),
}

pub struct Mitm {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    served: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

struct Ctx {
    upstream: String,
    mode: Arc<Mutex<Mode>>,
    /// Bytes produced by forged streams (`Endless`).
    served: Arc<AtomicU64>,
    http: reqwest::Client,
}

impl Mitm {
    pub fn start(upstream: &str, mode: Mode) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let served = Arc::new(AtomicU64::new(0));
        let ctx = Arc::new(Ctx {
            upstream: upstream.to_owned(),
            mode: mode.clone(),
            served: served.clone(),
            http: reqwest::Client::new(),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(ctx);
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            mode,
            served,
            _runtime: runtime,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Bytes an `Endless` stream produced so far (compressed; socket buffers included).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

async fn forward(
    State(ctx): State<Arc<Ctx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mode = ctx.mode.lock().unwrap().clone();
    if uri.path() == "/v2/fetch" {
        match &mode {
            Mode::RefuseFetch => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "fetch refused by the test proxy",
                )
                    .into_response();
            }
            Mode::ReplaceFetch(b) => return stream_response(Body::from(b.clone())),
            Mode::Endless => return stream_response(endless(ctx.served.clone())),
            _ => {}
        }
    }
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
    if status.is_success() {
        match (&mode, uri.path()) {
            (Mode::FlipHead(i), "/v2/head") => bytes[*i] ^= 1,
            (Mode::ReplaceHead(h), "/v2/head") => bytes.clone_from(h),
            (Mode::CorruptBlob, "/v2/fetch") => {
                bytes = alter_first_blob(&bytes, |frame| frame[FRAME_HEAD] ^= 0x55);
            }
            (Mode::RetagBlob(tag), "/v2/fetch") => {
                bytes = alter_first_blob(&bytes, |frame| frame[0] = *tag);
            }
            (Mode::Truncate(n), "/v2/fetch") => bytes.truncate(*n),
            (Mode::CutAfter(n), "/v2/fetch") => {
                bytes.truncate(*n);
                return stream_response(cut(bytes));
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

/// A 200 answer with the object stream's content type.
fn stream_response(body: Body) -> Response {
    let mut out = (StatusCode::OK, body).into_response();
    out.headers_mut().insert(
        "content-type",
        "application/x-codexport-stream".parse().unwrap(),
    );
    out
}

/// These bytes, then (once they had time to leave) a dropped connection.
fn cut(bytes: Vec<u8>) -> Body {
    use futures_util::StreamExt;
    let sent =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(bytes)) });
    let dropped = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Err(std::io::Error::other("connection cut by the test proxy"))
    });
    Body::from_stream(sent.chain(dropped))
}

/// Bytes of a frame's head: kind, compression, stored length, size, id.
const FRAME_HEAD: usize = 42;

/// Applies `f` to the first non-empty blob frame
/// (`[kind][compression][stored u32][size u32][id 32][stored bytes]`) of a stream.
fn alter_first_blob(stream: &[u8], f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut plain = stream.to_vec();
    // Frames start after the 5-byte header.
    let mut at = 5;
    while at < plain.len() && plain[at] != 0 {
        let len = u32::from_le_bytes(plain[at + 2..at + 6].try_into().unwrap()) as usize;
        if plain[at] == 1 && len > 0 {
            f(&mut plain[at..at + FRAME_HEAD + len]);
            break;
        }
        at += FRAME_HEAD + len;
    }
    plain
}

/// The stream header, then raw blob frames of 0.5-4.5 KiB of random bytes under their true
/// ids, forever.
fn endless(served: Arc<AtomicU64>) -> Body {
    let chunks = futures_util::stream::unfold(
        (0x9E37_79B9_7F4A_7C15_u64, true),
        move |(mut seed, first)| {
            let served = served.clone();
            async move {
                let mut plain = Vec::new();
                if first {
                    plain.extend_from_slice(b"CXST\x02");
                }
                for _ in 0..16 {
                    let len = 512 + (xorshift(&mut seed) % 4096) as usize;
                    let data: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
                    plain.extend_from_slice(&[1, 0]);
                    plain.extend_from_slice(&(len as u32).to_le_bytes());
                    plain.extend_from_slice(&(len as u32).to_le_bytes());
                    plain.extend_from_slice(blake3::hash(&data).as_bytes());
                    plain.extend_from_slice(&data);
                }
                let chunk = plain;
                served.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (seed, false)))
            }
        },
    );
    Body::from_stream(chunks)
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}
