//! The HTTP side of protocol v1: routes, limits, and the object stream of `/v1/fetch`.
//!
//! Who may do what is not decided here: every request is handed to a [`Backend`] (the
//! master), which authenticates it and names the store to stream from. This layer serves
//! nothing but what the backend returns and the objects negotiation selects from its store;
//! never a path of the filesystem.

use super::negotiate::send_missing;
use super::wire::{FetchRequest, FrameWriter, MAX_REQUEST_BYTES, StreamTotals};
use super::{Health, PROTOCOL_VERSION};
use crate::store::{Store, StoreError};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Fetch streams served at once; more get 503 and retry.
const MAX_CONCURRENT_FETCHES: usize = 64;
/// How long a request may take to arrive and be answered (headers; streaming bodies go on).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the HTTP layer asks of the master. Every method may block (it runs on a blocking
/// thread) and answers a refusal as an [`ApiError`].
pub trait Backend: Send + Sync + 'static {
    /// The master's public identity, for `/v1/health`.
    fn health(&self) -> Health;
    /// Exchanges a join token for a follower credential: `(credential, enrolled name)`.
    fn enroll(&self, token: &str, name: &str) -> Result<(String, String), ApiError>;
    /// The encoded signed head for the follower holding `credential`; `None` before the
    /// first revision.
    fn head(&self, credential: &str) -> Result<Option<Vec<u8>>, ApiError>;
    /// Authenticates a fetch of `req.want` and names where to stream it from.
    fn fetch(&self, credential: &str, req: &FetchRequest) -> Result<FetchSource, ApiError>;
    /// A stream ended (sent whole, or stopped with the reason).
    fn fetched(&self, source: &FetchSource, result: Result<StreamTotals, String>);
}

/// What one fetch streams from, and for whom.
pub struct FetchSource {
    pub store: Arc<Store>,
    /// The follower's enrolled name, for logs.
    pub follower: String,
    /// The wanted revision's number.
    pub number: u64,
}

/// Why a request was refused; answered as its status and `{"error": {"code", "message"}}`.
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

    /// No credential, or one the master does not know.
    pub fn credential(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "credential", message)
    }

    /// The follower was revoked.
    pub fn revoked(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "revoked", message)
    }

    /// A join token that is unknown, used or expired.
    pub fn token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "token", message)
    }

    /// Something the master does not have (a revision, a head).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Try again shortly.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy { .. } => Self::busy("the master's store is busy; retry"),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

struct Shared<B> {
    backend: Arc<B>,
    fetches: Arc<Semaphore>,
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
            ApiError::credential(
                "this endpoint needs a follower credential (Authorization: Bearer …)",
            )
        })
}

async fn health<B: Backend>(State(st): State<Arc<Shared<B>>>) -> impl IntoResponse {
    axum::Json(st.backend.health())
}

#[derive(serde::Deserialize)]
struct EnrollRequest {
    token: String,
    name: String,
}

async fn enroll<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    axum::Json(req): axum::Json<EnrollRequest>,
) -> Result<Response, ApiError> {
    let backend = st.backend.clone();
    let (credential, name) = blocking(move || backend.enroll(&req.token, &req.name)).await?;
    Ok(axum::Json(serde_json::json!({"credential": credential, "name": name})).into_response())
}

async fn head<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let backend = st.backend.clone();
    let head = blocking(move || backend.head(&credential))
        .await?
        .ok_or_else(|| ApiError::not_found("no_head", "the master has no revision yet"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], head).into_response())
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

/// Writes the zstd-compressed object stream of `req` into `tx`.
fn stream_objects(
    source: &FetchSource,
    req: &FetchRequest,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
) -> Result<StreamTotals, Box<dyn std::error::Error>> {
    let reader = source.store.read()?;
    let encoder = zstd::Encoder::new(
        ChannelWriter {
            tx,
            buf: Vec::new(),
        },
        3,
    )?;
    let mut frames = FrameWriter::new(encoder)?;
    let totals = send_missing(&reader, req, &mut frames)?;
    let (encoder, _) = frames.finish()?;
    let mut sink = encoder.finish()?;
    sink.flush()?;
    Ok(totals)
}

async fn fetch<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let req = FetchRequest::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let permit = st
        .fetches
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("too many syncs at once; retry shortly"))?;
    let backend = st.backend.clone();
    let req2 = req.clone();
    let source = blocking(move || backend.fetch(&credential, &req2)).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(8);
    let backend = st.backend.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let result = stream_objects(&source, &req, tx.clone()).map_err(|e| e.to_string());
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(io::Error::other(e.clone())));
        }
        backend.fetched(&source, result);
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

fn router<B: Backend>(backend: Arc<B>) -> Router {
    let shared = Arc::new(Shared {
        backend,
        fetches: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
    });
    Router::new()
        .route("/v1/health", get(health::<B>))
        .route("/v1/enroll", post(enroll::<B>))
        .route("/v1/head", get(head::<B>))
        .route("/v1/fetch", post(fetch::<B>))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(shared)
}

/// The health answer of a master with this key.
pub fn health_of(master_key: &[u8; 32]) -> Health {
    Health {
        service: "codexport".to_owned(),
        protocol: u64::from(PROTOCOL_VERSION),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        master_key: crate::object::id::hex(master_key),
        fingerprint: crate::object::Fingerprint::of_key(master_key).to_string(),
    }
}

/// Serves `backend` on `listener` until `shutdown` completes.
pub async fn serve<B: Backend>(
    backend: Arc<B>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Small answers (a head, a one-file fetch) must not wait behind the peer's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(backend))
        .with_graceful_shutdown(shutdown)
        .await
}
