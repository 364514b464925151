//! The archive: the copy of every file a feed took, kept `archive.days`, from
//! which `runs release`, `runs replay` and the API's download read it. It
//! lives in a local folder (one host) or in S3-compatible object storage
//! (every replica, the CLI and `dropfeed serve` on any host reach it), both
//! behind `object_store`. Objects are keyed `<tenant id>/<sha256>` and their
//! hash is checked again whenever one is read back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::configuration::{ArchiveSettings, S3Settings};

/// The lease that lets one replica at a time purge the archive.
const PURGE_LEASE: &str = "archive.purge";
/// Upload part size: S3 wants at least 5 MiB per part; 16 MiB parts keep a
/// 1 GiB file to 64 requests, and at most `UPLOAD_PARTS_IN_FLIGHT` of them
/// are in memory at once.
const PART_BYTES: usize = 16 << 20;
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;
const READ_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store cannot be reached or refused the request: retried later,
    /// and no file is imported meanwhile.
    #[error("the archive {location} is unavailable: {detail}")]
    Unavailable { location: String, detail: String },
    #[error("{key} is not in the archive {location}")]
    Gone { location: String, key: String },
    /// The object's content no longer has the hash it is stored under.
    #[error("the archived copy {key} in {location} was altered (its SHA-256 is {actual}): refused")]
    Altered { location: String, key: String, actual: String },
    #[error("invalid archive settings: {0}")]
    Config(String),
}

impl ArchiveError {
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Unavailable { .. } => "archive.unavailable",
            ArchiveError::Gone { .. } => "archive.gone",
            ArchiveError::Altered { .. } => "archive.altered",
            ArchiveError::Config(_) => "archive.config",
        }
    }
}

/// Where archived files live and for how long.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// Where the objects are under the store's root (the folder, or the
    /// bucket's prefix).
    root: Key,
    /// The local folder, when the archive is one: files are hard-linked in.
    dir: Option<PathBuf>,
    /// Days a file is kept; 0 keeps only held files (their release needs them).
    pub days: u32,
    /// `file:///…` or `s3://bucket/prefix`, for messages (never a secret).
    pub location: String,
}

impl Archive {
    /// An archive in the local folder `dir` (made absolute).
    pub fn local(dir: &Path, days: u32) -> Result<Archive, ArchiveError> {
        let dir = std::path::absolute(dir).map_err(|e| ArchiveError::Config(format!("{}: {e}", dir.display())))?;
        let root = Key::from_absolute_path(&dir).map_err(|e| ArchiveError::Config(e.to_string()))?;
        Ok(Archive {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            root,
            location: format!("file://{}", dir.display()),
            dir: Some(dir),
            days,
        })
    }

    /// The archive the settings describe: `archive.url` (`file://` or
    /// `s3://`), else the legacy `archive.dir`, else `<spool_dir>/archive`.
    pub fn open(settings: &ArchiveSettings, spool_dir: &Path) -> Result<Archive, ArchiveError> {
        let Some(url) = &settings.url else {
            let dir = settings.dir.clone().unwrap_or_else(|| spool_dir.join("archive"));
            return Archive::local(&dir, settings.days);
        };
        let parsed = url::Url::parse(url).map_err(|e| ArchiveError::Config(format!("archive.url {url}: {e}")))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| ArchiveError::Config(format!("archive.url {url}: not a local path")))?;
                Archive::local(&dir, settings.days)
            }
            "s3" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    ArchiveError::Config(format!("archive.url {url}: give the bucket, as in s3://bucket/prefix"))
                })?;
                let s3 = settings.s3.as_ref().ok_or_else(|| {
                    ArchiveError::Config("archive.url is s3://: an archive.s3 block with its keys is needed".into())
                })?;
                let prefix = parsed.path().trim_matches('/');
                let root = Key::parse(prefix).map_err(|e| ArchiveError::Config(format!("archive.url {url}: {e}")))?;
                let store = s3_store(bucket, s3)?;
                let location =
                    if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
                Ok(Archive { store: Arc::new(store), root, dir: None, days: settings.days, location })
            }
            other => Err(ArchiveError::Config(format!("archive.url {url}: scheme {other}: is not file:// or s3://"))),
        }
    }

    /// `<root>/<tenant id>/<sha256>`; `None` unless `sha256` is 64 hex digits.
    fn key(&self, tenant_id: i64, sha256: &str) -> Option<Key> {
        // The hash is ours, but it names an object: refuse anything but hex.
        let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| self.root.clone().join(tenant_id.to_string()).join(sha256))
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Unavailable { location: self.location.clone(), detail: e.to_string() }
    }

    fn gone_or_unavailable(&self, key: &Key, e: object_store::Error) -> ArchiveError {
        match e {
            object_store::Error::NotFound { .. } => {
                ArchiveError::Gone { location: self.location.clone(), key: key.to_string() }
            }
            e => self.unavailable(e),
        }
    }

    /// Puts the downloaded file `from` in the archive under its hash. A local
    /// archive hard-links it (the spool and the archive on one file system),
    /// else copies it; object storage gets it by a streamed multipart upload,
    /// at most a few parts in memory. Always written again, even when the
    /// same content is there: the object's time is what retention reads.
    pub async fn keep(&self, tenant_id: i64, sha256: &str, from: &Path) -> Result<(), ArchiveError> {
        let key = self
            .key(tenant_id, sha256)
            .ok_or_else(|| ArchiveError::Config(format!("{sha256} is not a SHA-256 to archive a file under")))?;
        if let Some(dir) = &self.dir {
            let (dir, from) = (dir.clone(), from.to_path_buf());
            let sha256 = sha256.to_owned();
            return tokio::task::spawn_blocking(move || keep_local(&dir, tenant_id, &sha256, &from))
                .await
                .map_err(|e| self.unavailable(e))?
                .map_err(|e| self.unavailable(format!("cannot write {}: {e}", key)));
        }
        let mut file = tokio::fs::File::open(from).await.map_err(|e| self.unavailable(e))?;
        let mut upload = object_store::buffered::BufWriter::with_capacity(Arc::clone(&self.store), key, PART_BYTES)
            .with_max_concurrency(UPLOAD_PARTS_IN_FLIGHT);
        let copied = async {
            let mut buf = vec![0u8; READ_BYTES];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                upload.write_all(&buf[..n]).await?;
            }
        }
        .await;
        if let Err(e) = copied {
            // The parts sent so far are dropped by the store, not left to bill.
            let _ = upload.abort().await;
            return Err(self.unavailable(e));
        }
        // A failure here leaves an incomplete multipart upload, which the
        // bucket's lifecycle rule removes (README).
        upload.shutdown().await.map_err(|e| self.unavailable(e))
    }

    /// Removes a kept file no one will ask for: with `days` 0 only held
    /// files stay, for their `runs release`. Returns whether it was removed.
    pub async fn forget(&self, tenant_id: i64, sha256: &str, held: bool) -> Result<bool, ArchiveError> {
        if self.days > 0 || held {
            return Ok(false);
        }
        let Some(key) = self.key(tenant_id, sha256) else { return Ok(false) };
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// Copies the archived file into `to` (a spool file), checking that its
    /// content still has its hash: a file altered in the store is refused
    /// and `to` removed. Returns the size.
    pub async fn fetch(&self, tenant_id: i64, sha256: &str, to: &Path) -> Result<u64, ArchiveError> {
        let (_, mut body) = self.read(tenant_id, sha256).await?;
        let written = async {
            let mut out = tokio::fs::File::create(to).await.map_err(|e| self.unavailable(e))?;
            let mut size = 0;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| match e.into_inner().map(|e| e.downcast::<ArchiveError>()) {
                    Some(Ok(archive)) => *archive,
                    Some(Err(other)) => self.unavailable(other),
                    None => self.unavailable("read failed"),
                })?;
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(|e| self.unavailable(e))?;
            }
            out.flush().await.map_err(|e| self.unavailable(e))?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(to).await;
        }
        written
    }

    /// The archived file's size and content as a stream, for a download. The
    /// hash is checked as the bytes go by: an altered object ends the stream
    /// with an error (carrying [`ArchiveError::Altered`]) instead of its
    /// last chunk, so the client sees a broken transfer, never a whole file.
    pub async fn read(
        &self,
        tenant_id: i64,
        sha256: &str,
    ) -> Result<(u64, BoxStream<'static, std::io::Result<Bytes>>), ArchiveError> {
        let key = self
            .key(tenant_id, sha256)
            .ok_or_else(|| ArchiveError::Gone { location: self.location.clone(), key: sha256.to_owned() })?;
        let got = self.store.get(&key).await.map_err(|e| self.gone_or_unavailable(&key, e))?;
        let size = got.meta.size;
        let state = Verify {
            inner: got.into_stream().fuse(),
            hasher: Some(Sha256::new()),
            pending: None,
            expected: sha256.to_ascii_lowercase(),
            location: self.location.clone(),
            key: key.to_string(),
        };
        let stream = futures_util::stream::unfold(state, |mut s| async move {
            loop {
                match s.inner.next().await {
                    Some(Ok(chunk)) => {
                        let hasher = s.hasher.as_mut()?;
                        hasher.update(&chunk);
                        // One chunk held back: the last one goes out only
                        // once the whole content is checked, so a client
                        // that trusts Content-Length never gets a whole
                        // altered file.
                        if let Some(previous) = s.pending.replace(chunk) {
                            return Some((Ok(previous), s));
                        }
                    }
                    Some(Err(e)) => {
                        s.hasher = None;
                        s.pending = None;
                        let unavailable =
                            ArchiveError::Unavailable { location: s.location.clone(), detail: e.to_string() };
                        return Some((Err(std::io::Error::other(unavailable)), s));
                    }
                    None => {
                        let actual = hex(&s.hasher.take()?.finalize());
                        if actual == s.expected {
                            return s.pending.take().map(|last| (Ok(last), s));
                        }
                        s.pending = None;
                        let altered =
                            ArchiveError::Altered { location: s.location.clone(), key: s.key.clone(), actual };
                        tracing::error!(code = altered.code(), "{altered}");
                        return Some((Err(std::io::Error::other(altered)), s));
                    }
                }
            }
        });
        Ok((size, stream.boxed()))
    }

    /// Removes files archived more than `days` days before `now` (at least
    /// one day, so a held file survives the night it was held), except those
    /// of held runs not yet released, whatever their age. One replica at a
    /// time (a lease in PostgreSQL); returns `None` when another one holds it.
    pub async fn purge(&self, pool: &sqlx::PgPool, owner: &str, now: DateTime<Utc>) -> anyhow::Result<Option<usize>> {
        use anyhow::Context;
        if !crate::store::leases::take(pool, PURGE_LEASE, owner, 900.0).await.context("cannot take the purge lease")? {
            return Ok(None);
        }
        let purged = self.purge_unleased(pool, now).await;
        crate::store::leases::release(pool, PURGE_LEASE, owner).await.context("cannot release the purge lease")?;
        purged.map(Some)
    }

    async fn purge_unleased(&self, pool: &sqlx::PgPool, now: DateTime<Utc>) -> anyhow::Result<usize> {
        use anyhow::Context;
        let keep = chrono::Duration::days(i64::from(self.days.max(1)));
        let held: HashSet<(i64, String)> =
            crate::store::runs::held_files(pool).await.context("cannot read the held runs")?;
        let mut old = Vec::new();
        let mut listing = self.store.list(Some(&self.root));
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                // A local folder not made yet holds nothing.
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(self.unavailable(e).into()),
            };
            if now - meta.last_modified <= keep {
                continue;
            }
            let Some(mut parts) = meta.location.prefix_match(&self.root) else { continue };
            let (Some(tenant), Some(sha), None) = (parts.next(), parts.next(), parts.next()) else { continue };
            let Ok(tenant) = tenant.as_ref().parse::<i64>() else { continue };
            if !held.contains(&(tenant, sha.as_ref().to_owned())) {
                old.push(meta.location.clone());
            }
        }
        let mut removed = 0;
        for key in old {
            // Written again since it was listed (the same file taken anew)?
            // Then it is young again: a poll may be importing from it.
            match self.store.head(&key).await {
                Ok(meta) if now - meta.last_modified > keep => {}
                Ok(_) | Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.unavailable(e).into()),
            }
            match self.store.delete(&key).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.unavailable(e).into()),
            }
        }
        Ok(removed)
    }
}

impl crate::configuration::Settings {
    /// The archive these settings describe (nothing is reached yet).
    pub fn archive(&self) -> Result<Archive, ArchiveError> {
        if self.archive.url.is_some() && self.archive.dir.is_some() {
            return Err(ArchiveError::Config("give archive.url or archive.dir, not both".into()));
        }
        Archive::open(&self.archive, &self.spool_dir)
    }
}

/// The state of [`Archive::read`]'s verifying stream.
struct Verify {
    /// Fused: polled again after its end once the last chunk goes out.
    inner: futures_util::stream::Fuse<BoxStream<'static, object_store::Result<Bytes>>>,
    /// Taken at the end (or dropped on an error): the check runs once.
    hasher: Option<Sha256>,
    /// The chunk read last, sent when the next one arrives or the check passes.
    pending: Option<Bytes>,
    expected: String,
    location: String,
    key: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The local archive's `keep`: a hard link, else a copy under a name of its
/// own then renamed, so an archived file is whole or absent; its time set to
/// now, as retention reads the archiving time, not the upload's.
fn keep_local(dir: &Path, tenant_id: i64, sha256: &str, from: &Path) -> std::io::Result<()> {
    let folder = dir.join(tenant_id.to_string());
    crate::spool::create_private_dir(dir)?;
    crate::spool::create_private_dir(&folder)?;
    let to = folder.join(sha256);
    match std::fs::hard_link(from, &to) {
        Ok(()) => {}
        // The same content, archived by an earlier poll.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => {
            let part = folder.join(format!(".{sha256}.{}", uuid::Uuid::now_v7()));
            std::fs::copy(from, &part)?;
            std::fs::rename(&part, &to)?;
        }
    }
    std::fs::File::options().write(true).open(&to)?.set_modified(std::time::SystemTime::now())
}

/// The S3 client: path-style addressing unless told otherwise when an
/// endpoint is given (self-hosted stores), keys from the environment or
/// files, short retries so a store that is down fails the poll in seconds.
fn s3_store(bucket: &str, s3: &S3Settings) -> Result<object_store::aws::AmazonS3, ArchiveError> {
    // object_store's HTTP client is built on rustls without a bundled
    // provider: ring, as the FTP and SMTP clients use. Installing it twice
    // is refused harmlessly.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let key_id = s3.access_key_id().map_err(ArchiveError::Config)?;
    let secret = s3.secret_access_key().map_err(ArchiveError::Config)?;
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&s3.region)
        .with_access_key_id(secrecy::ExposeSecret::expose_secret(&key_id))
        .with_secret_access_key(secrecy::ExposeSecret::expose_secret(&secret))
        .with_retry(object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..Default::default()
        })
        .with_client_options(
            object_store::ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(300)),
        );
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    builder = builder.with_virtual_hosted_style_request(!s3.path_style.unwrap_or(s3.endpoint.is_some()));
    builder.build().map_err(|e| ArchiveError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_kept_file_is_read_back_by_its_hash_and_an_altered_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let archive = Archive::local(&root.path().join("archive"), 2).unwrap();
        let spool = root.path().join("download.part");
        let content = b"email\na@b.ch\n";
        std::fs::write(&spool, content).unwrap();
        let sha = hex(&Sha256::digest(content));
        archive.keep(7, &sha, &spool).await.unwrap();
        assert!(spool.exists(), "the download stays for the import");
        archive.keep(7, &sha, &spool).await.expect("kept again over the first copy");
        let kept = root.path().join("archive/7").join(&sha);
        assert_eq!(std::fs::read_dir(kept.parent().unwrap()).unwrap().count(), 1, "one file per content");

        let back = root.path().join("back");
        assert_eq!(archive.fetch(7, &sha, &back).await.unwrap(), content.len() as u64);
        assert_eq!(std::fs::read(&back).unwrap(), content);

        // Altered in place (a new inode: the spool's link keeps the old one).
        std::fs::remove_file(&kept).unwrap();
        std::fs::write(&kept, b"email\nz@b.ch\n").unwrap();
        let err = archive.fetch(7, &sha, &back).await.unwrap_err();
        assert_eq!(err.code(), "archive.altered", "{err}");
        assert!(!back.exists(), "nothing half-read is left");
        let err = archive.fetch(8, &sha, &back).await.unwrap_err();
        assert_eq!(err.code(), "archive.gone", "{err}");
    }

    #[tokio::test]
    async fn with_no_days_only_held_files_are_kept_and_names_must_be_hashes() {
        let root = tempfile::tempdir().unwrap();
        let archive = Archive::local(&root.path().join("archive"), 0).unwrap();
        let spool = root.path().join("download.part");
        std::fs::write(&spool, "x").unwrap();
        archive.keep(1, SHA, &spool).await.unwrap();
        let kept = root.path().join("archive/1").join(SHA);
        assert!(!archive.forget(1, SHA, true).await.unwrap() && kept.exists(), "a held file stays");
        assert!(archive.forget(1, SHA, false).await.unwrap() && !kept.exists(), "an imported one goes");
        let err = archive.keep(1, "../../etc/passwd", &spool).await.unwrap_err();
        assert_eq!(err.code(), "archive.config");
        let err = archive.fetch(1, "../../etc/passwd", &root.path().join("back")).await.unwrap_err();
        assert_eq!(err.code(), "archive.gone", "a name that is no hash is never read");
    }

    #[test]
    fn settings_name_the_store_and_refuse_what_cannot_work() {
        let spool = Path::new("/var/lib/dropfeed/spool");
        let mut settings = ArchiveSettings::default();
        assert_eq!(Archive::open(&settings, spool).unwrap().location, "file:///var/lib/dropfeed/spool/archive");
        settings.url = Some("file:///srv/archive".into());
        assert_eq!(Archive::open(&settings, spool).unwrap().location, "file:///srv/archive");
        settings.url = Some("s3://bucket/nightly".into());
        let err = Archive::open(&settings, spool).unwrap_err();
        assert!(err.to_string().contains("archive.s3 block"), "{err}");
        settings.url = Some("ftp://host/x".into());
        assert!(Archive::open(&settings, spool).unwrap_err().to_string().contains("is not file:// or s3://"));
    }
}
