//! SFTP sources with libssh2 (ssh2 crate), driven from blocking threads.
//!
//! libssh2 is a blocking library: the connection lives behind a mutex and
//! every operation moves to `spawn_blocking`, so the async callers never stall
//! a runtime thread on the network. The host key is checked right after the
//! handshake and before any credential leaves this process.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use ssh2::{CheckResult, ErrorCode, HashType, KnownHostFileKind, MethodType, RenameFlags};

use super::{Fetched, RemoteFile, Session, SourceConfig, SourceError, SpoolPipeline, SpoolWriter, join};

/// Size of each read of a remote file. libssh2 keeps up to four times the
/// buffer in flight (capped at 8 MiB), so the buffer size is what sets the
/// pipelining depth: small reads make it wait on a round trip per 30 kB.
/// Measured on loopback against OpenSSH's `sftp`: 1 and 2 MiB are on par,
/// 4 MiB costs more CPU for nothing. Neither a second thread for hashing nor
/// AES-GCM instead of libssh2's default chacha20-poly1305 made it faster
/// (GCM took a third more CPU), so the cipher choice is left to libssh2.
const READ_CHUNK: usize = 2 << 20;

/// `LIBSSH2_ERROR_TIMEOUT`: a blocking call waited longer than `set_timeout`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
/// `LIBSSH2_ERROR_SOCKET_TIMEOUT`.
const LIBSSH2_ERROR_SOCKET_TIMEOUT: i32 = -30;
/// `SSH_FX_NO_SUCH_FILE` and `SSH_FX_NO_SUCH_PATH`.
const FX_NO_SUCH_FILE: i32 = 2;
const FX_NO_SUCH_PATH: i32 = 10;

/// The libssh2 session and its SFTP channel; the channel borrows the session
/// internally, so both travel together.
struct Conn {
    session: ssh2::Session,
    sftp: ssh2::Sftp,
}

pub struct SftpSession {
    /// `None` only while being dropped.
    conn: Option<Arc<Mutex<Conn>>>,
    endpoint: String,
    folder: String,
    fingerprint: String,
}

impl SftpSession {
    pub async fn connect(cfg: &SourceConfig) -> Result<SftpSession, SourceError> {
        let endpoint = cfg.endpoint.to_string();
        let params = ConnectParams::from(cfg)?;
        let (conn, fingerprint) = tokio::task::spawn_blocking(move || params.open()).await.map_err(|e| {
            SourceError::Connect { endpoint: endpoint.clone(), detail: format!("connect task failed: {e}") }
        })??;
        Ok(SftpSession {
            conn: Some(Arc::new(Mutex::new(conn))),
            endpoint,
            folder: cfg.endpoint.folder.clone(),
            fingerprint,
        })
    }

    /// Runs `work` on a blocking thread with the connection locked.
    async fn run<T, F>(&self, op: &'static str, path: &str, work: F) -> Result<T, SourceError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &Ctx) -> Result<T, SourceError> + Send + 'static,
    {
        let failed =
            |detail: String| SourceError::Remote { endpoint: self.endpoint.clone(), op, path: path.to_owned(), detail };
        let conn = self.conn.clone().ok_or_else(|| failed("the session is closed".into()))?;
        let ctx = Ctx { endpoint: self.endpoint.clone(), op, path: path.to_owned() };
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means an earlier operation panicked half-way:
            // the protocol state is unknown, so the session is not reused.
            let guard = conn.lock().map_err(|_| ctx.detail("the session broke during an earlier operation"))?;
            work(&guard, &ctx)
        })
        .await
        .map_err(|e| failed(format!("worker task failed: {e}")))?
    }

    fn remote_path(&self, rel: &str) -> PathBuf {
        PathBuf::from(join(&self.folder, rel))
    }
}

impl Drop for SftpSession {
    fn drop(&mut self) {
        // Closing the channel and saying goodbye are network round trips:
        // keep them off the async threads when a runtime is around.
        let Some(conn) = self.conn.take() else { return };
        let close = move || {
            // Still shared only if a cancelled operation is running on its
            // thread: the last holder then drops it without the goodbye.
            let Ok(Ok(Conn { session, sftp })) = Arc::try_unwrap(conn).map(Mutex::into_inner) else { return };
            // The channel closes first; the session would not be there to
            // carry its close message after the disconnect.
            drop(sftp);
            let _ = session.disconnect(None, "dropfeed is done", None);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}

/// What an operation is about, to build its errors.
struct Ctx {
    endpoint: String,
    op: &'static str,
    path: String,
}

impl Ctx {
    fn detail(&self, detail: impl Into<String>) -> SourceError {
        SourceError::Remote {
            endpoint: self.endpoint.clone(),
            op: self.op,
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn timeout(&self) -> SourceError {
        SourceError::Timeout { endpoint: self.endpoint.clone(), doing: format!("{} {}", self.op, self.path) }
    }

    fn ssh(&self, e: ssh2::Error) -> SourceError {
        if is_timeout(&e) { self.timeout() } else { self.detail(describe(&e)) }
    }

    fn io(&self, e: std::io::Error) -> SourceError {
        if e.kind() == std::io::ErrorKind::TimedOut { self.timeout() } else { self.detail(lower_first(&e.to_string())) }
    }
}

impl Session for SftpSession {
    async fn list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        let folder = PathBuf::from(&self.folder);
        self.run("list", &self.folder, move |conn, ctx| {
            let entries = conn.sftp.readdir(&folder).map_err(|e| ctx.ssh(e))?;
            Ok(entries
                .into_iter()
                // readdir reports lstat attributes: links are not files here.
                .filter(|(_, stat)| stat.is_file())
                .filter_map(|(path, stat)| {
                    let name = path.file_name()?.to_str()?.to_owned();
                    let mtime = stat.mtime.and_then(|s| DateTime::<Utc>::from_timestamp(i64::try_from(s).ok()?, 0));
                    Some(RemoteFile { name, size: stat.size.unwrap_or(0), mtime })
                })
                .collect())
        })
        .await
    }

    async fn fetch(&mut self, name: &str, dest: &Path) -> Result<Fetched, SourceError> {
        let path = self.remote_path(name);
        let dest = dest.to_path_buf();
        self.run("read", name, move |conn, ctx| {
            let mut file = conn.sftp.open(&path).map_err(|e| ctx.ssh(e))?;
            // This thread reads (and libssh2 decrypts); hashing and writing
            // run on threads of their own.
            let mut pipeline = SpoolPipeline::start(SpoolWriter::create(&dest)?, READ_CHUNK);
            loop {
                let mut buf = pipeline.buffer();
                // A read may return less than asked (whatever replies have
                // arrived); zero is the end of the file.
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ctx.io(e)),
                };
                if !pipeline.send_blocking(buf, n) {
                    break; // the writer failed: `finish` says why
                }
            }
            pipeline.finish()
        })
        .await
    }

    async fn ensure_dir(&mut self, dir: &str) -> Result<(), SourceError> {
        let path = self.remote_path(dir);
        self.run("create folder", dir, move |conn, ctx| match conn.sftp.mkdir(&path, 0o755) {
            Ok(()) => Ok(()),
            // SFTP v3 servers answer a plain "failure" when it exists: look.
            Err(e) if is_timeout(&e) => Err(ctx.timeout()),
            Err(e) => match conn.sftp.stat(&path) {
                Ok(stat) if stat.is_dir() => Ok(()),
                Ok(_) => Err(ctx.detail("exists and is not a folder")),
                Err(_) => Err(ctx.ssh(e)),
            },
        })
        .await
    }

    async fn exists(&mut self, rel: &str) -> Result<bool, SourceError> {
        let path = self.remote_path(rel);
        self.run("stat", rel, move |conn, ctx| match conn.sftp.stat(&path) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(ctx.ssh(e)),
        })
        .await
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), SourceError> {
        let (src, dst) = (self.remote_path(from), self.remote_path(to));
        let label = format!("{from} to {to}");
        self.run("rename", &label, move |conn, ctx| {
            // No OVERWRITE flag: an existing target is an error, never
            // silently replaced (ssh2 sets every flag when given `None`).
            conn.sftp.rename(&src, &dst, Some(RenameFlags::empty())).map_err(|e| ctx.ssh(e))
        })
        .await
    }

    async fn delete(&mut self, name: &str) -> Result<(), SourceError> {
        let path = self.remote_path(name);
        self.run("delete", name, move |conn, ctx| conn.sftp.unlink(&path).map_err(|e| ctx.ssh(e))).await
    }

    fn server_fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.clone())
    }
}

/// Credentials to present once the server is trusted.
enum Credentials {
    Key { path: PathBuf, passphrase: Option<secrecy::SecretString> },
    Password(secrecy::SecretString),
}

/// What the blocking connect needs, owned so it can move to another thread.
struct ConnectParams {
    endpoint: String,
    host: String,
    port: u16,
    user: String,
    credentials: Credentials,
    host_key: Option<String>,
    known_hosts: Option<PathBuf>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl ConnectParams {
    fn from(cfg: &SourceConfig) -> Result<ConnectParams, SourceError> {
        let endpoint = cfg.endpoint.to_string();
        let credentials = match (&cfg.private_key, &cfg.password) {
            (Some(path), _) => Credentials::Key { path: path.clone(), passphrase: cfg.key_passphrase.clone() },
            (None, Some(password)) => Credentials::Password(password.clone()),
            (None, None) => {
                return Err(SourceError::Config {
                    detail: format!("{endpoint} needs a password or a private key file"),
                });
            }
        };
        // The url keeps IPv6 literals in brackets; sockets and known_hosts want them bare.
        let host = cfg.endpoint.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(ConnectParams {
            endpoint,
            host,
            port: cfg.endpoint.port,
            user: cfg.endpoint.user.clone(),
            credentials,
            host_key: cfg.host_key.clone(),
            known_hosts: cfg.known_hosts.clone(),
            connect_timeout: cfg.connect_timeout,
            io_timeout: cfg.io_timeout,
        })
    }

    fn connect_error(&self, detail: impl Into<String>) -> SourceError {
        SourceError::Connect { endpoint: self.endpoint.clone(), detail: detail.into() }
    }

    fn timeout(&self, doing: &str) -> SourceError {
        SourceError::Timeout { endpoint: self.endpoint.clone(), doing: doing.into() }
    }

    /// Connects, verifies the host key, authenticates and opens SFTP.
    fn open(self) -> Result<(Conn, String), SourceError> {
        let tcp = self.tcp()?;
        let mut session = ssh2::Session::new().map_err(|e| self.connect_error(describe(&e)))?;
        // Zero would mean "wait forever" to libssh2.
        session.set_timeout(u32::try_from(self.io_timeout.as_millis()).unwrap_or(u32::MAX).max(1));
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            if is_timeout(&e) {
                self.timeout("the ssh handshake")
            } else {
                self.connect_error(format!("ssh handshake failed: {}", describe(&e)))
            }
        })?;

        let fingerprint = self.verify_host_key(&session)?;
        self.authenticate(&session)?;

        let sftp = session.sftp().map_err(|e| {
            if is_timeout(&e) {
                self.timeout("opening the sftp channel")
            } else {
                self.connect_error(format!("the server refused the sftp subsystem: {}", describe(&e)))
            }
        })?;
        tracing::debug!(
            endpoint = %self.endpoint,
            host_key = %fingerprint,
            cipher = session.methods(MethodType::CryptSc).unwrap_or("?"),
            "sftp session open"
        );
        Ok((Conn { session, sftp }, fingerprint))
    }

    fn tcp(&self) -> Result<TcpStream, SourceError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.connect_error(format!("cannot resolve {}: {}", self.host, lower_first(&e.to_string()))))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, self.connect_timeout) {
                Ok(tcp) => {
                    // SFTP is request/response: do not hold small packets back.
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == std::io::ErrorKind::TimedOut => self.timeout("connecting"),
            Some(e) => self.connect_error(lower_first(&e.to_string())),
            None => self.connect_error(format!("{} has no address", self.host)),
        })
    }

    /// Checks the presented host key against the pin or the known_hosts
    /// file and returns its fingerprint. There is no trust on first use.
    fn verify_host_key(&self, session: &ssh2::Session) -> Result<String, SourceError> {
        let hash = session
            .host_key_hash(HashType::Sha256)
            .ok_or_else(|| self.connect_error("the server presented no host key"))?;
        let actual = format!("SHA256:{}", STANDARD_NO_PAD.encode(hash));
        let mismatch = |expected: String| SourceError::HostKeyMismatch {
            endpoint: self.endpoint.clone(),
            expected,
            actual: actual.clone(),
        };

        // A pin names one exact key: it decides alone, known_hosts or not.
        if let Some(pin) = &self.host_key {
            return if same_fingerprint(pin, &actual) { Ok(actual) } else { Err(mismatch(pin.trim().to_owned())) };
        }
        let Some(file) = &self.known_hosts else {
            return Err(SourceError::HostKeyUnknown { endpoint: self.endpoint.clone(), actual });
        };
        let unusable = |detail: String| SourceError::Config {
            detail: format!("known_hosts file {} for {}: {detail}", file.display(), self.endpoint),
        };
        let (key, _) = session.host_key().ok_or_else(|| self.connect_error("the server presented no host key"))?;
        let mut known = session.known_hosts().map_err(|e| unusable(describe(&e)))?;
        // libssh2 stops at the first line it cannot parse; say so rather than
        // treat the host as unknown.
        known.read_file(file, KnownHostFileKind::OpenSSH).map_err(|e| unusable(describe(&e)))?;
        match known.check_port(&self.host, self.port, key) {
            CheckResult::Match => Ok(actual),
            CheckResult::Mismatch => Err(mismatch(format!("the key in {}", file.display()))),
            CheckResult::NotFound => Err(SourceError::HostKeyUnknown { endpoint: self.endpoint.clone(), actual }),
            CheckResult::Failure => Err(unusable("libssh2 could not check the host key".into())),
        }
    }

    fn authenticate(&self, session: &ssh2::Session) -> Result<(), SourceError> {
        let result = match &self.credentials {
            Credentials::Key { path, passphrase } => {
                // A missing key file would otherwise read as a refused login.
                std::fs::metadata(path).map_err(|e| SourceError::Secret {
                    name: path.display().to_string(),
                    detail: format!("cannot read the private key file: {}", e.kind()),
                })?;
                session.userauth_pubkey_file(&self.user, None, path, passphrase.as_ref().map(|p| p.expose_secret()))
            }
            Credentials::Password(password) => session.userauth_password(&self.user, password.expose_secret()),
        };
        match result {
            Ok(()) if session.authenticated() => Ok(()),
            Err(e) if is_timeout(&e) => Err(self.timeout("authenticating")),
            // libssh2's messages may quote the key file's parse failure but
            // never the secret; the variant says all the operator needs.
            _ => Err(SourceError::Auth { endpoint: self.endpoint.clone(), user: self.user.clone() }),
        }
    }
}

/// Compares fingerprints as people paste them: spaces and base64 padding
/// are not significant.
fn same_fingerprint(pin: &str, actual: &str) -> bool {
    pin.trim().trim_end_matches('=') == actual
}

fn is_timeout(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT | LIBSSH2_ERROR_SOCKET_TIMEOUT))
}

fn is_not_found(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH))
}

fn describe(e: &ssh2::Error) -> String {
    lower_first(e.message())
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_compare_without_padding_or_surrounding_spaces() {
        let actual = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        assert!(same_fingerprint(actual, actual));
        assert!(same_fingerprint(&format!(" {actual}= \n"), actual));
        assert!(!same_fingerprint("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV", actual));
        assert!(!same_fingerprint("", actual));
    }

    #[test]
    fn error_details_start_lower_case() {
        assert_eq!(lower_first("Connection refused (os error 111)"), "connection refused (os error 111)");
        assert_eq!(lower_first(""), "");
    }
}
