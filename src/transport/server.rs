//! `master serve`: the axum server. Serves the signed head and streams missing objects to
//! enrolled followers; never serves a path of the filesystem.
//!
//! redb admits one process per database, so the server opens the store only while requests
//! (or a rebuild) need it and lets it close when idle: `master rebuild`, `log` and the other
//! master commands then wait briefly instead of failing while the service runs.

use super::negotiate::send_missing;
use super::wire::{FetchRequest, FrameWriter, MAX_REQUEST_BYTES};
use crate::access;
use crate::master::{self, MasterKey};
use crate::object::ObjectKind;
use crate::paths::Paths;
use crate::store::{ObjectSource, Store, StoreError};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use miette::Diagnostic;
use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc};

/// Fetch streams served at once; more get 503 and retry.
const MAX_CONCURRENT_FETCHES: usize = 64;
/// How long a request may take to arrive and be answered (headers; streaming bodies go on).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for the store while another process holds it.
const STORE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(
        code(codexport::serve::bind),
        help(
            "choose another --port, or stop the process using it (`codexport master service status`)"
        )
    )]
    Bind { addr: String, source: io::Error },
    #[error("the server failed: {0}")]
    #[diagnostic(
        code(codexport::serve::io),
        help("see the messages above; restart `codexport master serve`")
    )]
    Io(#[from] io::Error),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Master(#[from] master::MasterError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Watch(#[from] crate::watch::WatchError),
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub paths: Paths,
    pub host: String,
    pub port: u16,
    pub watch: bool,
}

/// The store, opened on demand and closed when the last user drops it.
pub struct SharedStore {
    dir: PathBuf,
    slot: Mutex<Weak<Store>>,
}

impl SharedStore {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            slot: Mutex::new(Weak::new()),
        }
    }

    /// The open store (blocking: call from a blocking thread).
    pub fn get(&self) -> Result<Arc<Store>, StoreError> {
        let mut slot = self
            .slot
            .lock()
            .expect("store slot is never poisoned: no panic while held");
        if let Some(store) = slot.upgrade() {
            return Ok(store);
        }
        let store = Arc::new(Store::open_waiting(&self.dir, STORE_WAIT)?);
        *slot = Arc::downgrade(&store);
        Ok(store)
    }
}

struct AppState {
    store: SharedStore,
    key: MasterKey,
    paths: Paths,
    fetches: Arc<Semaphore>,
    /// Last contact per follower, flushed to the store periodically (not per request: the
    /// head request is on every follower's session-start path).
    seen: Mutex<HashMap<String, (i64, Option<u64>)>>,
}

impl AppState {
    fn note_seen(&self, name: &str, revision: Option<u64>) {
        let mut seen = self
            .seen
            .lock()
            .expect("seen map is never poisoned: no panic while held");
        let entry = seen.entry(name.to_owned()).or_insert((0, None));
        entry.0 = crate::time::now_ms();
        if revision.is_some() {
            entry.1 = revision;
        }
    }

    fn flush_seen(&self) {
        let updates: Vec<(String, i64, Option<u64>)> = {
            let mut seen = self
                .seen
                .lock()
                .expect("seen map is never poisoned: no panic while held");
            seen.drain().map(|(k, (t, r))| (k, t, r)).collect()
        };
        if updates.is_empty() {
            return;
        }
        let result = self
            .store
            .get()
            .map_err(|e| e.to_string())
            .and_then(|s| access::record_seen(&s, &updates).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!("codexport serve: could not record follower activity: {e}");
        }
    }
}

/// An error answer: status plus `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the master's store is busy; retry",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<access::AccessError> for ApiError {
    fn from(e: access::AccessError) -> Self {
        let code = e.code().map(|c| c.to_string()).unwrap_or_default();
        let (status, short) = if code.contains("revoked") {
            (StatusCode::FORBIDDEN, "revoked")
        } else if code.contains("token") {
            (StatusCode::GONE, "token")
        } else if code.contains("credential") {
            (StatusCode::UNAUTHORIZED, "credential")
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        };
        Self::new(status, short, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "credential",
                "this endpoint needs a follower credential (Authorization: Bearer …)",
            )
        })
}

async fn health(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "service": "codexport",
        "protocol": super::PROTOCOL_VERSION,
        "version": env!("CARGO_PKG_VERSION"),
        "master_key": crate::object::id::hex(&st.key.public_key()),
        "fingerprint": st.key.fingerprint().to_string(),
    }))
}

#[derive(serde::Deserialize)]
struct EnrollRequest {
    token: String,
    name: String,
}

async fn enroll(
    State(st): State<Arc<AppState>>,
    axum::Json(req): axum::Json<EnrollRequest>,
) -> Result<Response, ApiError> {
    let st2 = st.clone();
    let (credential, record) = blocking(move || {
        let store = st2.store.get()?;
        Ok(access::redeem_token(&store, &req.token, &req.name)?)
    })
    .await?;
    eprintln!("codexport serve: enrolled follower {}", record.name);
    Ok(
        axum::Json(serde_json::json!({"credential": credential, "name": record.name}))
            .into_response(),
    )
}

async fn head(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let st2 = st.clone();
    let head = blocking(move || {
        let store = st2.store.get()?;
        let follower = access::authenticate(&store.read()?, &credential)?;
        st2.note_seen(&follower.name, None);
        master::refresh_head(&store, &st2.key, false).map_err(ApiError::internal)
    })
    .await?;
    let head = head.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_head",
            "the master has no revision yet",
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        head.encode(),
    )
        .into_response())
}

/// Sends written bytes to the response body in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 64 << 10;

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(Self::CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "follower went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

async fn fetch(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let req = FetchRequest::decode(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let permit = st.fetches.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many syncs at once; retry shortly",
        )
    })?;
    let st2 = st.clone();
    let req2 = req.clone();
    let (store, follower, number) = blocking(move || {
        let store = st2.store.get()?;
        let reader = store.read()?;
        let follower = access::authenticate(&reader, &credential)?;
        match reader.locate(&req2.want)? {
            Some(loc) if loc.kind == ObjectKind::Revision => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_revision",
                    format!("the master has no revision {}", req2.want),
                ));
            }
        }
        let number = reader.revision(&req2.want)?.number;
        drop(reader);
        Ok((store, follower, number))
    })
    .await?;
    st.note_seen(&follower.name, Some(number));
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(8);
    let name = follower.name.clone();
    let st3 = st.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let result = (|| -> Result<super::wire::StreamTotals, Box<dyn std::error::Error>> {
            let reader = store.read()?;
            let encoder = zstd::Encoder::new(
                ChannelWriter {
                    tx: tx.clone(),
                    buf: Vec::new(),
                },
                3,
            )?;
            let mut frames = FrameWriter::new(encoder)?;
            let totals = send_missing(&reader, &req, &mut frames)?;
            let (encoder, _) = frames.finish()?;
            let mut sink = encoder.finish()?;
            sink.flush()?;
            Ok(totals)
        })();
        match result {
            Ok(t) => {
                eprintln!(
                    "codexport serve: sent revision {number} to {name}: {} objects, {} bytes",
                    t.objects, t.bytes
                );
                // Fetches are rare: record who has which revision at once.
                st3.flush_seen();
            }
            Err(e) => {
                eprintln!("codexport serve: stream to {name} stopped: {e}");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-codexport-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/head", get(head))
        .route("/v1/fetch", post(fetch))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes. Publishes a fresh revision first and,
/// with `opts.watch`, after every settled change of the codex dir.
pub async fn serve(
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let key = MasterKey::load(&opts.paths.master_key())?;
    let state = Arc::new(AppState {
        store: SharedStore::new(opts.paths.state_dir.clone()),
        key,
        paths: opts.paths.clone(),
        fetches: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
        seen: Mutex::new(HashMap::new()),
    });
    {
        let st = state.clone();
        tokio::task::spawn_blocking(move || publish(&st))
            .await
            .map_err(io::Error::other)??;
    }
    let _watcher = if opts.watch {
        let st = state.clone();
        Some(crate::watch::watch(
            &opts.paths.codex_dir,
            Duration::from_millis(300),
            move || {
                if let Err(e) = publish(&st) {
                    eprintln!("codexport serve: rebuild failed: {e:?}");
                }
            },
        )?)
    } else {
        None
    };
    let flusher = {
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || st.flush_seen()).await;
            }
        })
    };
    // Small answers (a head, a one-file fetch) must not wait behind the peer's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    flusher.abort();
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || st.flush_seen()).await;
    Ok(())
}

/// Snapshots the codex dir and signs the head for whatever is current.
fn publish(st: &AppState) -> Result<(), master::MasterError> {
    let store = st.store.get()?;
    let report = master::rebuild_with(&store, &st.paths, &st.key)?;
    if report.created {
        let c = report.changes;
        eprintln!(
            "codexport serve: published revision {} (+{} ~{} -{})",
            report.number.unwrap_or(0),
            c.added,
            c.modified,
            c.removed
        );
    }
    for w in &report.warnings {
        eprintln!("codexport serve: warning: {w}");
    }
    Ok(())
}

/// Runs `master serve` in the foreground until SIGINT or SIGTERM.
pub fn run(opts: ServeOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", opts.host, opts.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let local = listener.local_addr()?;
        println!(
            "codexport master serving on http://{local} (protocol v{})",
            super::PROTOCOL_VERSION
        );
        io::stdout().flush()?;
        serve(opts, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("codexport serve: shutting down");
}
