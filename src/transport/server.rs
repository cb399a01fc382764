//! The HTTP side of protocol v2: routes, request limits, fair streaming of `/v2/fetch`.
//!
//! Who may do what is not decided here: every request is handed to a [`Backend`] (the
//! master), which authenticates it and names what to stream. This layer serves nothing but
//! what the backend returns and the objects negotiation selects from its store; never a path
//! of the filesystem.
//!
//! Hostile clients are held off in layers: the accept loop (`accept.rs`) caps connections
//! and times out slow request heads; here, the credential is checked from the headers before
//! a single body byte is read, and bodies are read with a limit sized to the request kind
//! ([`MAX_ENROLL_BYTES`], [`MAX_REQUEST_BYTES`]); fetch streams are shared out per follower
//! (`streams.rs`), and a revoked follower's streams are ended within
//! [`REVOCATION_CHECK`] (the revocation is written by another process, `master followers
//! revoke`, so the server asks the backend about the followers that have streams open).
//!
//! Memory under unauthenticated requests stays bounded: such a request never gets past the
//! headers (enroll, which has no credential, reads at most [`MAX_ENROLL_BYTES`]), so each
//! connection holds at most hyper's buffer (`Limits::max_buf_size`, 64 KiB) plus that, and
//! connections are capped (`Limits::max_connections`, 768): under 768 × 100 KiB ≈ 75 MiB
//! above an idle master, whatever the mix. An authenticated fetch reads its body only once
//! it holds a stream slot and a permit, so at most `MAX_CONCURRENT_FETCHES` (64) bodies of at
//! most [`MAX_REQUEST_BYTES`] are read at once.

use super::accept::{self, ConnCtl, Limits};
use super::negotiate::{Planned, SendError, send_planned};
use super::streams::{ChannelWriter, StreamConfig, StreamRegistry, spawn_stream};
use super::wire::{FetchRequest, FrameWriter, MAX_REQUEST_BYTES, StreamTotals};
use super::{Health, PROTOCOL_VERSION};
use crate::store::StoreError;
use crate::store::pack::PackFiles;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Fetch streams served at once, all followers together; more get 503 and retry.
const MAX_CONCURRENT_FETCHES: usize = 64;
/// How long a request may take to arrive and be answered (its body included; a streamed
/// answer goes on, bounded by the stream's own send timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `/v2/enroll` body: a join token and a follower name, as JSON.
pub const MAX_ENROLL_BYTES: usize = 4 << 10;
/// How often the followers with open streams are checked for a revocation.
pub const REVOCATION_CHECK: Duration = Duration::from_secs(1);

/// What the HTTP layer asks of the master. Every method may block (it runs on a blocking
/// thread) and answers a refusal as an [`ApiError`].
pub trait Backend: Send + Sync + 'static {
    /// The master's public identity, for `/v2/health`.
    fn health(&self) -> Health;
    /// Exchanges a join token for a follower credential: `(credential, enrolled name)`.
    fn enroll(&self, token: &str, name: &str) -> Result<(String, String), ApiError>;
    /// The enrolled follower holding `credential`, refused when unknown or revoked. Called
    /// from the headers alone, before any body byte is read, so it must be cheap.
    fn authenticate(&self, credential: &str) -> Result<String, ApiError>;
    /// The encoded signed head for the follower holding `credential` and the tag of its
    /// mirror list (see [`super::client::MIRRORS_HEADER`]); `None` before the first
    /// revision.
    fn head(&self, credential: &str) -> Result<Option<(Vec<u8>, String)>, ApiError>;
    /// Records the follower's mirror key and returns the signed list of mirror URLs.
    fn mirrors(&self, credential: &str, key: [u8; 32]) -> Result<Vec<u8>, ApiError>;
    /// Authenticates a fetch of `req.want` and plans it: what to send, read from where. The
    /// source must not keep the store open (the stream may last as long as the follower
    /// takes to read it).
    fn fetch(&self, credential: &str, req: &FetchRequest) -> Result<FetchSource, ApiError>;
    /// A stream ended (sent whole, or stopped with the reason).
    fn fetched(&self, source: &FetchSource, result: Result<StreamTotals, String>);
    /// Which of `followers` (all with streams open) may no longer fetch: revoked or gone.
    fn revoked(&self, followers: &[String]) -> Vec<String>;
}

/// What one fetch streams, and for whom.
pub struct FetchSource {
    /// The objects to send, in order.
    pub planned: Vec<Planned>,
    /// Open handles of the packs that hold them.
    pub files: PackFiles,
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
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
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

    /// The request belongs to another protocol version.
    pub fn upgrade_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UPGRADE_REQUIRED, "protocol", message)
    }

    /// Try again shortly.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message).retry_after(2)
    }

    /// This follower already has its share of streams open: it should wait for one to end.
    pub fn too_many_streams(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message).retry_after(5)
    }

    /// A request body over the limit of its route.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is limited to {limit} bytes"),
        )
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
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

struct Shared<B> {
    backend: Arc<B>,
    fetches: Arc<Semaphore>,
    streams: Arc<StreamRegistry>,
    config: StreamConfig,
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

/// Reads a request body of at most `limit` bytes: 413 as soon as the declared length is
/// over, or once that many bytes arrived (a chunked body stops there).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("reading the request: {inner}"))
        }
    })
}

async fn health<B: Backend>(State(st): State<Arc<Shared<B>>>) -> impl IntoResponse {
    axum::Json(st.backend.health())
}

/// The body of `POST /v2/enroll`.
#[derive(Debug, serde::Deserialize)]
pub struct EnrollRequest {
    /// The join token (`cxt1_…`), checked by the backend.
    pub token: String,
    /// The name the follower asks for; the backend sanitizes it.
    pub name: String,
}

/// Decodes an enroll body (JSON; at most [`MAX_ENROLL_BYTES`], checked by the caller).
pub fn parse_enroll(body: &[u8]) -> Result<EnrollRequest, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("not an enroll request: {e}")))
}

/// The one route without a credential (the join token is in the body): its body is small.
async fn enroll<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, MAX_ENROLL_BYTES).await?;
    let req = parse_enroll(&bytes)?;
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
    let (head, tag) = blocking(move || backend.head(&credential))
        .await?
        .ok_or_else(|| ApiError::not_found("no_head", "the master has no revision yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::HeaderName::from_static(super::client::MIRRORS_HEADER),
                tag,
            ),
        ],
        head,
    )
        .into_response())
}

/// The body of `POST /v2/mirrors`.
#[derive(Debug, serde::Deserialize)]
struct MirrorsRequest {
    /// The follower's X25519 public key for mirrors, 64 hex digits.
    key: String,
}

/// `POST /v2/mirrors`: the credential first, then a small body (the follower's mirror key);
/// answers the signed mirror list.
async fn mirrors<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let backend = st.backend.clone();
    let checked = credential.clone();
    blocking(move || backend.authenticate(&checked)).await?;
    let bytes = read_body(&headers, body, MAX_ENROLL_BYTES).await?;
    let req: MirrorsRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("not a mirrors request: {e}")))?;
    let key = crate::object::id::decode_hex::<32>(&req.key)
        .ok_or_else(|| ApiError::bad_request("the mirror key is not 64 hex digits"))?;
    let backend = st.backend.clone();
    let list = blocking(move || backend.mirrors(&credential, key)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], list).into_response())
}

/// Writes the object stream of `source` into `sink`, each object as stored.
fn stream_objects(source: &FetchSource, sink: ChannelWriter) -> Result<StreamTotals, SendError> {
    let mut frames = FrameWriter::new(sink)?;
    let totals = send_planned(&source.files, &source.planned, &mut frames)?;
    let (mut sink, _) = frames.finish()?;
    sink.flush()?;
    Ok(totals)
}

/// `POST /v2/fetch`: the credential first (from the headers), then this follower's share
/// of streams and a global permit, and only then the body.
async fn fetch<B: Backend>(
    State(st): State<Arc<Shared<B>>>,
    Extension(conn): Extension<ConnCtl>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let credential = bearer(&headers)?;
    let backend = st.backend.clone();
    let presented = credential.clone();
    let follower = blocking(move || backend.authenticate(&presented)).await?;
    let slot = st.streams.try_open(&follower).ok_or_else(|| {
        ApiError::too_many_streams(format!(
            "follower {follower} already has {} fetch streams open; retry when one ends",
            st.config.per_follower
        ))
    })?;
    let permit = st
        .fetches
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("too many syncs at once; retry shortly"))?;
    let bytes = read_body(&headers, body, MAX_REQUEST_BYTES).await?;
    let req = FetchRequest::decode(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    drop(bytes);
    let backend = st.backend.clone();
    let source = blocking(move || backend.fetch(&credential, &req)).await?;
    let backend = st.backend.clone();
    let body = spawn_stream(&st.config, slot, conn, move |sink| {
        let _permit = permit;
        let result = stream_objects(&source, sink);
        backend.fetched(
            &source,
            result.as_ref().copied().map_err(ToString::to_string),
        );
        result.map(|_| ()).map_err(|e| match e {
            SendError::Io(e) => e,
            SendError::Store(e) => io::Error::other(e.to_string()),
        })
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-codexport-stream")],
        body,
    )
        .into_response())
}

/// Any other path of protocol 1: an answer such a follower prints as it is.
async fn older_protocol() -> ApiError {
    ApiError::upgrade_required(format!(
        "this master speaks protocol {PROTOCOL_VERSION} (codexport {}); install the same codexport version on this follower",
        env!("CARGO_PKG_VERSION")
    ))
}

fn router<B: Backend>(shared: Arc<Shared<B>>) -> Router {
    Router::new()
        .route("/v2/health", get(health::<B>))
        // Followers of protocol 1 ask here first; they read `protocol` and say what to do.
        .route("/v1/health", get(health::<B>))
        .route("/v1/enroll", post(older_protocol))
        .route("/v1/head", get(older_protocol))
        .route("/v1/fetch", post(older_protocol))
        .route("/v2/enroll", post(enroll::<B>))
        .route("/v2/head", get(head::<B>))
        .route("/v2/fetch", post(fetch::<B>))
        .route("/v2/mirrors", post(mirrors::<B>))
        // A backstop for any body extractor added later; the routes above read their bodies
        // with their own, smaller limits.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(shared)
}

/// Ends the streams of followers revoked meanwhile: every [`REVOCATION_CHECK`], while any
/// stream is open, asks the backend about the followers that have one.
async fn watch_revocations<B: Backend>(shared: Arc<Shared<B>>) {
    let mut tick = tokio::time::interval(REVOCATION_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let open = shared.streams.followers();
        if open.is_empty() {
            continue;
        }
        let backend = shared.backend.clone();
        let Ok(revoked) = tokio::task::spawn_blocking(move || backend.revoked(&open)).await else {
            continue;
        };
        for name in revoked {
            let n = shared.streams.revoke(&name);
            eprintln!("codexport serve: follower {name} was revoked; ended its {n} open streams");
        }
    }
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

/// Serves `backend` on `listener` within `limits`, sharing streams by `config`, until
/// `shutdown` completes.
pub async fn serve<B: Backend>(
    backend: Arc<B>,
    listener: tokio::net::TcpListener,
    limits: Limits,
    config: StreamConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        backend,
        fetches: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
        streams: StreamRegistry::new(config.per_follower),
        config,
    });
    let revocations = tokio::spawn(watch_revocations(shared.clone()));
    let stats = Arc::new(accept::Stats::default());
    let result = accept::serve(listener, router(shared), limits, stats, shutdown).await;
    revocations.abort();
    result
}
