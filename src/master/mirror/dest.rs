//! Where a mirror's files are written: a folder (served by any web server) or an object
//! store (`s3://bucket/prefix`: S3 and what speaks its API, R2, MinIO…), through one small
//! blocking interface. Names are `/`-separated and relative to the destination.

use super::MirrorError;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Upload parts of this size (S3's minimum part is 5 MiB).
const PART: usize = 8 << 20;

/// A parsed mirror destination.
pub enum Dest {
    Folder(PathBuf),
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        url: String,
        runtime: tokio::runtime::Runtime,
    },
}

impl Dest {
    /// Parses `dest`: a folder path, or `s3://bucket[/prefix]` with credentials, region and
    /// endpoint from the standard AWS environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`…).
    pub fn open(dest: &str) -> Result<Self, MirrorError> {
        let bad = |why: String| MirrorError::BadDest {
            dest: dest.to_owned(),
            why,
        };
        if let Some(rest) = dest.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket named".into()));
            }
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            // The endpoint variable the AWS tools read; object_store reads AWS_ENDPOINT.
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                builder = builder.with_endpoint(endpoint);
            }
            let store = builder.build().map_err(|e| bad(e.to_string()))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| bad(e.to_string()))?;
            return Ok(Dest::Store {
                store: Arc::new(store),
                prefix: prefix.trim_matches('/').to_owned(),
                url: dest.to_owned(),
                runtime,
            });
        }
        if let Some((scheme, _)) = dest.split_once("://") {
            return Err(bad(format!(
                "{scheme}:// is not a destination this build writes to"
            )));
        }
        let path = Path::new(dest);
        if !path.is_absolute() {
            return Err(bad("a folder destination must be an absolute path".into()));
        }
        Ok(Dest::Folder(path.to_owned()))
    }

    fn key(prefix: &str, name: &str) -> StorePath {
        if prefix.is_empty() {
            StorePath::from(name)
        } else {
            StorePath::from(format!("{prefix}/{name}"))
        }
    }

    fn failed(&self, name: &str, e: impl std::fmt::Display) -> MirrorError {
        MirrorError::Upload {
            dest: self.to_string(),
            what: format!("{name}: {e}"),
        }
    }

    /// Whether `name` is there (a content-named file that is there is complete: it was
    /// renamed or committed into place whole).
    pub fn exists(&self, name: &str) -> Result<bool, MirrorError> {
        match self {
            Dest::Folder(dir) => Ok(dir.join(name).is_file()),
            Dest::Store {
                store,
                prefix,
                runtime,
                ..
            } => match runtime.block_on(store.head(&Self::key(prefix, name))) {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.failed(name, e)),
            },
        }
    }

    /// Writes `name` from a local file, whole or not at all.
    pub fn put_file(&self, name: &str, file: &Path) -> Result<(), MirrorError> {
        match self {
            Dest::Folder(dir) => {
                let target = dir.join(name);
                let parent = target.parent().expect("names have a folder");
                fs::create_dir_all(parent).map_err(|e| self.failed(name, e))?;
                let tmp =
                    tempfile::NamedTempFile::new_in(parent).map_err(|e| self.failed(name, e))?;
                fs::copy(file, tmp.path()).map_err(|e| self.failed(name, e))?;
                finish_folder_file(tmp, &target).map_err(|e| self.failed(name, e))
            }
            Dest::Store {
                store,
                prefix,
                runtime,
                ..
            } => runtime.block_on(async {
                let upload = store
                    .put_multipart(&Self::key(prefix, name))
                    .await
                    .map_err(|e| self.failed(name, e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                let mut input = fs::File::open(file).map_err(|e| self.failed(name, e))?;
                let mut buf = vec![0u8; PART];
                loop {
                    let n = input.read(&mut buf).map_err(|e| self.failed(name, e))?;
                    if n == 0 {
                        break;
                    }
                    // At most two parts in flight: memory stays bounded at any pack size.
                    writer
                        .wait_for_capacity(2)
                        .await
                        .map_err(|e| self.failed(name, e))?;
                    writer.write(&buf[..n]);
                }
                writer.finish().await.map_err(|e| self.failed(name, e))?;
                Ok(())
            }),
        }
    }

    /// Writes (or replaces) `name` with `bytes`, atomically.
    pub fn put_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), MirrorError> {
        match self {
            Dest::Folder(dir) => {
                let target = dir.join(name);
                let parent = target.parent().expect("names have a folder");
                fs::create_dir_all(parent).map_err(|e| self.failed(name, e))?;
                let mut tmp =
                    tempfile::NamedTempFile::new_in(parent).map_err(|e| self.failed(name, e))?;
                io::Write::write_all(&mut tmp, bytes).map_err(|e| self.failed(name, e))?;
                finish_folder_file(tmp, &target).map_err(|e| self.failed(name, e))
            }
            Dest::Store {
                store,
                prefix,
                runtime,
                ..
            } => runtime
                .block_on(store.put(&Self::key(prefix, name), PutPayload::from(bytes.to_vec())))
                .map(|_| ())
                .map_err(|e| self.failed(name, e)),
        }
    }

    /// Names of the files under `folder` (one level), relative to the destination.
    pub fn list(&self, folder: &str) -> Result<Vec<String>, MirrorError> {
        match self {
            Dest::Folder(dir) => {
                let mut out = Vec::new();
                match fs::read_dir(dir.join(folder)) {
                    Ok(entries) => {
                        for e in entries {
                            let e = e.map_err(|e| self.failed(folder, e))?;
                            if let Some(n) = e.file_name().to_str() {
                                out.push(format!("{folder}/{n}"));
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.failed(folder, e)),
                }
                Ok(out)
            }
            Dest::Store {
                store,
                prefix,
                runtime,
                ..
            } => runtime.block_on(async {
                use futures_util::StreamExt;
                let base = Self::key(prefix, folder);
                let mut listing = store.list(Some(&base));
                let mut out = Vec::new();
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| self.failed(folder, e))?;
                    if let Some(n) = meta.location.filename() {
                        out.push(format!("{folder}/{n}"));
                    }
                }
                Ok(out)
            }),
        }
    }

    pub fn delete(&self, name: &str) -> Result<(), MirrorError> {
        match self {
            Dest::Folder(dir) => match fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.failed(name, e)),
                _ => Ok(()),
            },
            Dest::Store {
                store,
                prefix,
                runtime,
                ..
            } => match runtime.block_on(store.delete(&Self::key(prefix, name))) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.failed(name, e)),
            },
        }
    }
}

/// Gives a finished temporary file its final mode (web servers read it: everything in it is
/// sealed), syncs it and renames it into place.
fn finish_folder_file(tmp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(target).map_err(|e| e.error)?;
    if let Some(parent) = target.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Folder(p) => write!(f, "{}", p.display()),
            Dest::Store { url, .. } => f.write_str(url),
        }
    }
}
