//! Where feed files come from: SFTP, FTP/FTPS and local folders behind one
//! small trait (list, fetch into the spool, rename, delete).

pub mod ftp;
pub mod local;
pub mod sftp;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::configuration::{env_secret, file_secret};
pub use crate::domain::source::{Endpoint, Kind, SourceSpec};

/// A file in the drop folder, as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    /// Modification time; `None` when the server cannot tell.
    pub mtime: Option<DateTime<Utc>>,
}

/// What a download produced in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
}

/// Everything needed to open a session, secrets resolved.
pub struct SourceConfig {
    pub endpoint: Endpoint,
    pub password: Option<SecretString>,
    pub private_key: Option<PathBuf>,
    pub key_passphrase: Option<SecretString>,
    pub host_key: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_fingerprint: Option<String>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are never printed, not even their length.
        f.debug_struct("SourceConfig").field("endpoint", &self.endpoint.to_string()).finish_non_exhaustive()
    }
}

impl SourceConfig {
    /// Resolves a spec: parses the URL and reads the referenced secrets.
    pub fn resolve(spec: &SourceSpec) -> Result<SourceConfig, SourceError> {
        let endpoint = Endpoint::parse(&spec.url).map_err(|detail| SourceError::Config { detail })?;
        let from_env = |var: &String| {
            env_secret(var).ok_or_else(|| SourceError::Secret {
                name: var.clone(),
                detail: "environment variable is not set".into(),
            })
        };
        let password = match (&spec.password_env, &spec.password_file) {
            (Some(var), _) => Some(from_env(var)?),
            (None, Some(path)) => Some(file_secret(path).map_err(|e| SourceError::Secret {
                name: path.display().to_string(),
                detail: format!("cannot read the password file: {}", e.kind()),
            })?),
            (None, None) => None,
        };
        let key_passphrase = spec.private_key_passphrase_env.as_ref().map(from_env).transpose()?;
        Ok(SourceConfig {
            endpoint,
            password,
            private_key: spec.private_key_file.clone(),
            key_passphrase,
            host_key: spec.host_key.clone(),
            known_hosts: spec.known_hosts.clone(),
            tls_ca_file: spec.tls_ca_file.clone(),
            tls_fingerprint: spec.tls_fingerprint.clone(),
            connect_timeout: Duration::from_secs(spec.connect_timeout_secs.max(1)),
            io_timeout: Duration::from_secs(spec.io_timeout_secs.max(1)),
        })
    }
}

/// Why talking to a source failed. Messages name the endpoint (user, host,
/// port, folder) and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid source: {detail}")]
    Config { detail: String },
    #[error("secret {name}: {detail}")]
    Secret { name: String, detail: String },
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("timed out while {doing} on {endpoint}")]
    Timeout { endpoint: String, doing: String },
    #[error("host key of {endpoint} does not match the pinned one: expected {expected}, the server presented {actual}")]
    HostKeyMismatch { endpoint: String, expected: String, actual: String },
    #[error(
        "host key of {endpoint} is not pinned: the server presented {actual}; set host_key (or known_hosts) in the feed"
    )]
    HostKeyUnknown { endpoint: String, actual: String },
    #[error("authentication failed for user {user} on {endpoint}")]
    Auth { endpoint: String, user: String },
    #[error("tls with {endpoint} failed: {detail}")]
    Tls { endpoint: String, detail: String },
    #[error("cannot {op} {path} on {endpoint}: {detail}")]
    Remote { endpoint: String, op: &'static str, path: String, detail: String },
    #[error("cannot write the spool file {path}: {detail}")]
    Spool { path: String, detail: String },
}

impl SourceError {
    /// The rule code reported in runs, alerts and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Config { .. } => "source.config",
            SourceError::Secret { .. } => "source.secret",
            SourceError::Connect { .. } => "source.connect",
            SourceError::Timeout { .. } => "source.timeout",
            SourceError::HostKeyMismatch { .. } => "source.host_key_mismatch",
            SourceError::HostKeyUnknown { .. } => "source.host_key_unknown",
            SourceError::Auth { .. } => "source.auth",
            SourceError::Tls { .. } => "source.tls",
            SourceError::Remote { .. } => "source.remote",
            SourceError::Spool { .. } => "source.spool",
        }
    }

    /// Worth retrying with backoff: the network, not the configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Connect { .. } | SourceError::Timeout { .. })
    }
}

/// One connection to a drop folder. Names are relative to the folder;
/// `to` in `rename` may contain one `/` (a subfolder such as `processed/x`).
pub trait Session: Send {
    /// Regular files of the folder (not directories, not links).
    fn list(&mut self) -> impl Future<Output = Result<Vec<RemoteFile>, SourceError>> + Send;
    /// Streams `name` into `dest` (created or truncated), hashing on the way.
    fn fetch(&mut self, name: &str, dest: &Path) -> impl Future<Output = Result<Fetched, SourceError>> + Send;
    /// Creates a subfolder of the drop folder if it does not exist.
    fn ensure_dir(&mut self, dir: &str) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Whether `path` (relative to the folder) exists.
    fn exists(&mut self, path: &str) -> impl Future<Output = Result<bool, SourceError>> + Send;
    fn rename(&mut self, from: &str, to: &str) -> impl Future<Output = Result<(), SourceError>> + Send;
    fn delete(&mut self, name: &str) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// The server's identity as support pins it (`SHA256:...`), when it has one.
    fn server_fingerprint(&self) -> Option<String>;
}

/// A session of any kind: enum dispatch keeps the trait free of boxing.
pub enum AnySession {
    Local(local::LocalSession),
    Sftp(sftp::SftpSession),
    Ftp(ftp::FtpSession),
}

/// Opens a session on the source.
pub async fn connect(cfg: &SourceConfig) -> Result<AnySession, SourceError> {
    match cfg.endpoint.kind {
        Kind::File => Ok(AnySession::Local(local::LocalSession::open(cfg)?)),
        Kind::Sftp => Ok(AnySession::Sftp(sftp::SftpSession::connect(cfg).await?)),
        Kind::Ftp | Kind::Ftps | Kind::FtpsImplicit => Ok(AnySession::Ftp(ftp::FtpSession::connect(cfg).await?)),
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnySession::Local($s) => $e,
            AnySession::Sftp($s) => $e,
            AnySession::Ftp($s) => $e,
        }
    };
}

impl Session for AnySession {
    async fn list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        dispatch!(self, s => s.list().await)
    }
    async fn fetch(&mut self, name: &str, dest: &Path) -> Result<Fetched, SourceError> {
        dispatch!(self, s => s.fetch(name, dest).await)
    }
    async fn ensure_dir(&mut self, dir: &str) -> Result<(), SourceError> {
        dispatch!(self, s => s.ensure_dir(dir).await)
    }
    async fn exists(&mut self, path: &str) -> Result<bool, SourceError> {
        dispatch!(self, s => s.exists(path).await)
    }
    async fn rename(&mut self, from: &str, to: &str) -> Result<(), SourceError> {
        dispatch!(self, s => s.rename(from, to).await)
    }
    async fn delete(&mut self, name: &str) -> Result<(), SourceError> {
        dispatch!(self, s => s.delete(name).await)
    }
    fn server_fingerprint(&self) -> Option<String> {
        dispatch!(self, s => s.server_fingerprint())
    }
}

/// The hashing and writing stages of a download, each on a thread of its
/// own: the task or thread that receives (socket reads, libssh2's
/// decryption) does only that, and each buffer goes to the hasher, then to
/// the writer, then back for reuse. With hashing and writing on one thread,
/// that thread was the slowest stage (plain FTP on loopback at 0.67x curl;
/// with the pipeline, 0.92-0.96x).
pub struct SpoolPipeline {
    to_hasher: tokio::sync::mpsc::Sender<(Vec<u8>, usize)>,
    recycled: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    hasher: std::thread::JoinHandle<Sha256>,
    writer: std::thread::JoinHandle<Result<SpoolWriter, SourceError>>,
    buffer_size: usize,
}

impl SpoolPipeline {
    pub fn start(spool: SpoolWriter, buffer_size: usize) -> SpoolPipeline {
        let (to_hasher, mut hasher_rx) = tokio::sync::mpsc::channel::<(Vec<u8>, usize)>(2);
        let (to_writer, writer_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(2);
        let (recycle, recycled) = tokio::sync::mpsc::unbounded_channel();
        let hasher = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            while let Some((buf, len)) = hasher_rx.blocking_recv() {
                hasher.update(&buf[..len]);
                if to_writer.send((buf, len)).is_err() {
                    break; // the writer failed: `finish` says why
                }
            }
            hasher
        });
        let writer = std::thread::spawn(move || {
            let mut spool = spool;
            for (buf, len) in writer_rx {
                spool.write_unhashed(&buf[..len])?;
                let _ = recycle.send(buf);
            }
            Ok(spool)
        });
        SpoolPipeline { to_hasher, recycled, hasher, writer, buffer_size }
    }

    /// A buffer to fill: one the writer handed back, or a new one.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.recycled.try_recv().unwrap_or_else(|_| vec![0u8; self.buffer_size])
    }

    /// Hands on the first `len` bytes of `buf`; false once the writer failed.
    pub async fn send(&self, buf: Vec<u8>, len: usize) -> bool {
        self.to_hasher.send((buf, len)).await.is_ok()
    }

    /// `send` from a blocking thread.
    pub fn send_blocking(&self, buf: Vec<u8>, len: usize) -> bool {
        self.to_hasher.blocking_send((buf, len)).is_ok()
    }

    /// Waits for the last buffers to be hashed and written (blocks: call it
    /// from a blocking thread).
    pub fn finish(self) -> Result<Fetched, SourceError> {
        drop(self.to_hasher);
        let hasher = self.hasher.join().expect("the hashing thread does not panic");
        self.writer.join().expect("the spool writer does not panic")?.finish_with(hasher)
    }
}

/// A spool file being written: counts and hashes every byte on the way, so
/// the SHA-256 is known when the download ends, without a second read.
pub struct SpoolWriter {
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    size: u64,
    path: PathBuf,
}

impl SpoolWriter {
    pub fn create(path: &Path) -> Result<SpoolWriter, SourceError> {
        let file = std::fs::File::create(path)
            .map_err(|e| SourceError::Spool { path: path.display().to_string(), detail: e.to_string() })?;
        Ok(SpoolWriter {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            size: 0,
            path: path.into(),
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), SourceError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|e| SourceError::Spool { path: self.path.display().to_string(), detail: e.to_string() })
    }

    /// Writes without hashing, for a caller that hashes the same bytes on
    /// another thread (`finish_with` then takes its hash).
    pub fn write_unhashed(&mut self, chunk: &[u8]) -> Result<(), SourceError> {
        self.size += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|e| SourceError::Spool { path: self.path.display().to_string(), detail: e.to_string() })
    }

    /// `finish` for `write_unhashed`: the hash of the bytes comes from the caller.
    pub fn finish_with(mut self, hasher: Sha256) -> Result<Fetched, SourceError> {
        self.hasher = hasher;
        self.finish()
    }

    /// Flushes the buffer and returns size and hash. No fsync: the copy is
    /// read back at once by this process, and after a crash the remote file,
    /// left in place until the import commits, is fetched again.
    pub fn finish(mut self) -> Result<Fetched, SourceError> {
        let spool =
            |e: std::io::Error| SourceError::Spool { path: self.path.display().to_string(), detail: e.to_string() };
        self.file.flush().map_err(spool)?;
        let digest = self.hasher.finalize();
        Ok(Fetched { size: self.size, sha256: digest.iter().map(|b| format!("{b:02x}")).collect() })
    }
}

/// Joins a folder and a relative name with exactly one `/`.
pub fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        return name.to_owned();
    }
    format!("{}/{}", folder.trim_end_matches('/'), name.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_endpoints_without_secrets() {
        let e = Endpoint::parse("sftp://ingest@sftp.acme.example:2222/outbox").unwrap();
        assert_eq!(
            (e.kind, e.host.as_str(), e.port, e.user.as_str(), e.folder.as_str()),
            (Kind::Sftp, "sftp.acme.example", 2222, "ingest", "/outbox")
        );
        assert_eq!(Endpoint::parse("ftps+implicit://u@h/x").unwrap().port, 990);
        assert_eq!(Endpoint::parse("ftp://h").unwrap().user, "anonymous");
        assert_eq!(Endpoint::parse("file:///srv/drop/acme").unwrap().folder, "/srv/drop/acme");
        let err = Endpoint::parse("sftp://u:secret@h/x").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(Endpoint::parse("http://h/x").is_err());
    }

    #[test]
    fn errors_name_the_endpoint_but_never_the_password() {
        let spec = SourceSpec {
            url: "sftp://ingest@h:22/outbox".into(),
            password_env: Some("DROPFEED_TEST_UNSET_VAR".into()),
            password_file: None,
            private_key_file: None,
            private_key_passphrase_env: None,
            host_key: None,
            known_hosts: None,
            tls_ca_file: None,
            tls_fingerprint: None,
            pattern: "*.csv".into(),
            connect_timeout_secs: 1,
            io_timeout_secs: 1,
        };
        let err = SourceConfig::resolve(&spec).unwrap_err();
        assert_eq!(err.code(), "source.secret");
        assert!(err.to_string().contains("DROPFEED_TEST_UNSET_VAR"));
    }
}
