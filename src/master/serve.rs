//! `master serve`: the daemon. Publishes a revision at start and whenever `~/.codex`
//! settles, re-signs the head before it expires, serves followers over protocol v2, and
//! records when each follower was last seen.
//!
//! redb admits one process per database, so the daemon opens the store only while requests
//! (or a rebuild) need it and lets it close when idle: `master rebuild`, `log` and the other
//! master commands then wait briefly instead of failing while the service runs.

mod publisher;

use super::access::{self, AccessError};
use super::{MasterError, MasterKey, McpExport, mirror, publish, watch};
use crate::object::ObjectKind;
use crate::paths::Paths;
use crate::store::{ObjectSource, Store, StoreError};
use crate::transport::accept as http_accept;
use crate::transport::negotiate;
use crate::transport::server::{self as http, ApiError, Backend, FetchSource};
use crate::transport::wire::{FetchRequest, StreamTotals};
use crate::transport::{Health, PROTOCOL_VERSION};
use miette::Diagnostic;
use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use thiserror::Error;

/// How long a request waits for the store while another process holds it.
const STORE_WAIT: Duration = Duration::from_secs(10);
/// How often follower activity is written to the store.
const FLUSH_EVERY: Duration = Duration::from_secs(10);

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
    Master(#[from] MasterError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Watch(#[from] watch::WatchError),
}

/// Open connections per source address unless `--max-per-address` says otherwise: far more
/// than a follower uses (one or two), far fewer than an attacker needs.
pub const MAX_PER_ADDRESS: usize = 32;

/// How to serve.
#[derive(Clone)]
pub struct ServeOptions {
    pub paths: Paths,
    pub host: String,
    pub port: u16,
    pub watch: bool,
    /// Open connections allowed per source address ([`MAX_PER_ADDRESS`] by default).
    pub max_per_address: usize,
    /// The MCP export each published revision carries.
    pub mcp: Option<Arc<McpExport>>,
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

/// The running master: what the HTTP layer asks, and what the watcher and timers drive.
struct Daemon {
    store: SharedStore,
    key: MasterKey,
    paths: Paths,
    mcp: Option<Arc<McpExport>>,
    /// The master's settings as the last snapshot read them (the watcher's relevance).
    extra: Arc<std::sync::RwLock<crate::snapshot::select::Extra>>,
    /// Last contact per follower, flushed to the store periodically (not per request: the
    /// head request is on every follower's session-start path).
    seen: Mutex<HashMap<String, (i64, Option<u64>)>>,
    /// Wakes the mirror publisher (set once it runs).
    publisher: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Revoked { .. } => ApiError::revoked(e.to_string()),
            AccessError::TokenUnknown | AccessError::TokenExpired | AccessError::TokenUsed => {
                ApiError::token(e.to_string())
            }
            AccessError::BadCredential => ApiError::credential(e.to_string()),
            AccessError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

impl Daemon {
    fn wake_publisher(&self) {
        if let Some(wake) = self
            .publisher
            .lock()
            .expect("publisher slot is never poisoned: no panic while held")
            .as_ref()
        {
            let _ = wake.send(());
        }
    }

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

    /// Snapshots the codex dir and signs the head for whatever is current.
    fn publish(&self) -> Result<crate::snapshot::SnapshotReport, MasterError> {
        let settings = self.paths.state(crate::paths::state::MASTER_TOML);
        if let (Ok(now), Ok(mut extra)) = (super::settings::load(&settings), self.extra.write()) {
            *extra = now;
        }
        let store = self.store.get()?;
        let report = publish::rebuild_with(&store, &self.paths, &self.key, self.mcp.as_deref())?;
        if report.created {
            self.wake_publisher();
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
        Ok(report)
    }
}

impl Backend for Daemon {
    fn health(&self) -> Health {
        http::health_of(&self.key.public_key())
    }

    fn enroll(&self, token: &str, name: &str) -> Result<(String, String), ApiError> {
        let store = self.store.get()?;
        let (credential, record) = access::redeem_token(&store, token, name)?;
        eprintln!("codexport serve: enrolled follower {}", record.name);
        Ok((credential, record.name))
    }

    fn head(&self, credential: &str) -> Result<Option<(Vec<u8>, String)>, ApiError> {
        let store = self.store.get()?;
        let (follower, registered) = {
            let r = store.read()?;
            let follower = access::authenticate(&r, credential)?;
            let registered = mirror::keys(&r)?.remove(&follower.name);
            (follower, registered)
        };
        self.note_seen(&follower.name, None);
        let head = publish::refresh_head(&store, &self.key, false).map_err(ApiError::internal)?;
        let urls: Vec<String> = mirror::list(&self.paths)
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|m| m.url)
            .collect();
        let tag = mirror::list_tag(&urls, registered.as_ref());
        Ok(head.map(|h| (h.encode(), tag)))
    }

    fn mirrors(&self, credential: &str, key: [u8; 32]) -> Result<Vec<u8>, ApiError> {
        let store = self.store.get()?;
        let follower = access::authenticate(&store.read()?, credential)?;
        if mirror::register_key(&store, &follower.name, key)? {
            eprintln!(
                "codexport serve: follower {} gave its mirror key",
                follower.name
            );
            self.wake_publisher();
        }
        let list = mirror::signed_list(&self.paths, &self.key).map_err(ApiError::internal)?;
        Ok(list.encode())
    }

    fn authenticate(&self, credential: &str) -> Result<String, ApiError> {
        let store = self.store.get()?;
        Ok(access::authenticate(&store.read()?, credential)?.name)
    }

    fn fetch(&self, credential: &str, req: &FetchRequest) -> Result<FetchSource, ApiError> {
        let store = self.store.get()?;
        let reader = store.read()?;
        // Again, in the transaction that plans: a revocation since the headers counts.
        let follower = access::authenticate(&reader, credential)?;
        match reader.locate(&req.want)? {
            Some(loc) if loc.kind == ObjectKind::Revision => {}
            _ => {
                return Err(ApiError::not_found(
                    "unknown_revision",
                    format!("the master has no revision {}", req.want),
                ));
            }
        }
        let number = reader.revision(&req.want)?.number;
        let planned = negotiate::plan(&reader, req)?;
        let files = reader.pack_files(planned.iter().map(|p| &p.location))?;
        // The store closes once the last request using it is done: the stream reads from
        // `files` for as long as the follower takes, and holds nothing else.
        drop(reader);
        drop(store);
        self.note_seen(&follower.name, Some(number));
        Ok(FetchSource {
            planned,
            files,
            follower: follower.name,
            number,
        })
    }

    fn revoked(&self, followers: &[String]) -> Vec<String> {
        let check = || -> Result<Vec<String>, AccessError> {
            let store = self.store.get()?;
            let reader = store.read()?;
            let mut out = Vec::new();
            for name in followers {
                if !access::is_active(&reader, name)? {
                    out.push(name.clone());
                }
            }
            Ok(out)
        };
        check().unwrap_or_else(|e| {
            eprintln!("codexport serve: could not check for revoked followers: {e}");
            Vec::new()
        })
    }

    fn fetched(&self, source: &FetchSource, result: Result<StreamTotals, String>) {
        match result {
            Ok(t) => {
                eprintln!(
                    "codexport serve: sent revision {} to {}: {} objects, {} bytes",
                    source.number, source.follower, t.objects, t.bytes
                );
                // Fetches are rare: record who has which revision at once.
                self.flush_seen();
            }
            Err(e) => eprintln!(
                "codexport serve: stream to {} stopped: {e}",
                source.follower
            ),
        }
    }
}

/// Serves on `listener` until `shutdown` completes. Publishes a fresh revision first and,
/// with `opts.watch`, after every settled change of the codex dir.
pub async fn serve(
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let daemon = Arc::new(Daemon {
        store: SharedStore::new(opts.paths.state_dir.clone()),
        key: MasterKey::load(&opts.paths.master_key())?,
        paths: opts.paths.clone(),
        mcp: opts.mcp.clone(),
        extra: Arc::default(),
        seen: Mutex::new(HashMap::new()),
        publisher: Mutex::new(None),
    });
    // Started before the first publish, so that publish reaches the mirrors too.
    *daemon
        .publisher
        .lock()
        .expect("publisher slot is never poisoned: no panic while held") =
        Some(publisher::start(daemon.clone()));
    daemon.wake_publisher();
    let first = {
        let d = daemon.clone();
        tokio::task::spawn_blocking(move || d.publish())
            .await
            .map_err(io::Error::other)??
    };
    let _watcher = if opts.watch {
        let d = daemon.clone();
        // Every root's folder, and where the stow-style links the snapshot followed point (a
        // link added later is picked up when the service restarts, or by `master rebuild`).
        let mut places: Vec<watch::Place> = opts
            .paths
            .roots()
            .iter()
            .map(|(root, dir)| watch::Place {
                path: dir.to_path_buf(),
                root,
                name: String::new(),
            })
            .collect();
        places.extend(first.followed.iter().filter_map(|f| {
            crate::roots::by_name(f.root).map(|root| watch::Place {
                path: f.target.clone(),
                root,
                name: f.name.clone(),
            })
        }));
        Some(watch::watch(
            &places,
            Some(&opts.paths.state(crate::paths::state::MASTER_TOML)),
            Arc::clone(&daemon.extra),
            Duration::from_millis(300),
            move || {
                if let Err(e) = d.publish() {
                    eprintln!("codexport serve: rebuild failed: {e:?}");
                }
            },
        )?)
    } else {
        None
    };
    let flusher = {
        let d = daemon.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                let d = d.clone();
                let _ = tokio::task::spawn_blocking(move || d.flush_seen()).await;
            }
        })
    };
    let limits = http_accept::Limits {
        max_per_ip: opts.max_per_address.max(1),
        ..http_accept::Limits::default()
    }
    .fit_to_open_files();
    let streams = crate::transport::streams::StreamConfig::default();
    http::serve(daemon.clone(), listener, limits, streams, shutdown).await?;
    flusher.abort();
    let _ = tokio::task::spawn_blocking(move || daemon.flush_seen()).await;
    Ok(())
}

/// Runs `master serve` in the foreground until SIGINT or SIGTERM.
pub fn run(opts: ServeOptions) -> Result<(), ServeError> {
    // Before any thread starts, so every thread and child has it: the soft open-file limit
    // (1,024 by default) is what a flood of connections exhausts; the connection caps are
    // then sized from the raised limit.
    match http_accept::raise_open_file_limit() {
        Ok((Some(before), Some(after))) if after > before => {
            eprintln!("codexport serve: open-file limit raised from {before} to {after}");
        }
        Ok(_) => {}
        Err(e) => eprintln!("codexport serve: cannot raise the open-file limit: {e}"),
    }
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
        println!("codexport master serving on http://{local} (protocol v{PROTOCOL_VERSION})");
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
