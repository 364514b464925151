//! FTP and FTPS sources with suppaftp (async, rustls): plain FTP, explicit TLS
//! (AUTH TLS) and implicit TLS, the server certificate checked against the
//! system roots, a CA file or a pinned SHA-256 fingerprint.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use suppaftp::list::ListParser;
use suppaftp::tokio::{AsyncTlsConnector, ImplAsyncFtpStream, TokioTlsStream};
use suppaftp::types::{FileType, Response};
use suppaftp::{FtpError, FtpResult, Mode};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{Fetched, Kind, RemoteFile, Session, SourceConfig, SourceError, SpoolPipeline, SpoolWriter, join};

/// Downloads are read in chunks this large: few wake-ups and hash updates per
/// MiB, and the spool writer buffers as much before writing.
const CHUNK: usize = 1 << 20;

type Ftp = ImplAsyncFtpStream<FtpTls>;

/// One logged-in FTP or FTPS connection, sitting in the drop folder.
pub struct FtpSession {
    /// Boxed: suppaftp's client is large, and sessions of all kinds share an enum.
    ftp: Box<Ftp>,
    ctx: Ctx,
    /// The server lists with MLSD/MLST (RFC 3659) rather than only LIST.
    mlsd: bool,
    /// The server tells exact modification times (MDTM).
    mdtm: bool,
    /// `SHA256:<hex>` of the certificate the server presented (FTPS only).
    fingerprint: Option<String>,
    /// Implicit FTPS only: the task carrying the control connection.
    _relay: Option<RelayGuard>,
}

/// What every operation needs besides the connection: kept in its own field so
/// that an operation can borrow both at once.
struct Ctx {
    endpoint: String,
    io_timeout: Duration,
    /// The drop folder; the session's working directory.
    folder: String,
    /// Set when a reply was cut short (timeout, lost connection): the control
    /// channel is then out of step, only a new session can be trusted.
    broken: bool,
}

impl FtpSession {
    pub async fn connect(cfg: &SourceConfig) -> Result<FtpSession, SourceError> {
        let ep = &cfg.endpoint;
        let ctx =
            Ctx { endpoint: ep.to_string(), io_timeout: cfg.io_timeout, folder: ep.folder.clone(), broken: false };
        let tls = match ep.kind {
            Kind::Ftp => None,
            Kind::Ftps | Kind::FtpsImplicit => Some(TlsSetup::new(cfg).map_err(|detail| ctx.tls(detail))?),
            Kind::Sftp | Kind::File => {
                return Err(SourceError::Config { detail: format!("{} is not an ftp or ftps source", ctx.endpoint) });
            }
        };
        let mut ctx = ctx;

        let connecting = TcpStream::connect((ep.host.as_str(), ep.port));
        let tcp = match tokio::time::timeout(cfg.connect_timeout, connecting).await {
            Err(_) => return Err(ctx.timeout("connecting")),
            Ok(Err(e)) => return Err(ctx.connect_error(e.to_string())),
            Ok(Ok(tcp)) => tcp,
        };
        // Commands and replies are small and strictly alternate: no Nagle delays.
        let _ = tcp.set_nodelay(true);
        let server_ip = tcp.peer_addr().map_err(|e| ctx.connect_error(e.to_string()))?.ip();

        let mut relay = None;
        let greeted = match (&tls, ep.kind) {
            (Some(tls), Kind::FtpsImplicit) => {
                let name = server_name(&ep.host).map_err(|detail| ctx.tls(detail))?;
                let secured = ctx.within("starting tls", tls.connector.connect(name, tcp)).await?;
                let secured = secured.map_err(|e| tls.handshake_error(&ctx, e.to_string()))?;
                let (control, guard) = ctx
                    .within("starting tls", implicit_relay(secured))
                    .await?
                    .map_err(|e| ctx.connect_error(format!("cannot relay the implicit tls connection: {e}")))?;
                relay = Some(guard);
                ctx.within("reading the greeting", Ftp::connect_with_stream(control)).await?
            }
            _ => ctx.within("reading the greeting", Ftp::connect_with_stream(tcp)).await?,
        };
        let ftp = greeted.map_err(|e| ctx.fail("connect to", "", e))?;

        let connect_timeout = cfg.connect_timeout;
        let mut ftp = ftp.passive_stream_builder(move |offered: SocketAddr| {
            // Data connections always go to the host of the control connection: a
            // PASV reply naming another address is a NAT mistake or an FTP bounce,
            // and EPSV behind the implicit-TLS relay would name the relay.
            let target = SocketAddr::new(server_ip, offered.port());
            Box::pin(async move {
                match tokio::time::timeout(connect_timeout, TcpStream::connect(target)).await {
                    Ok(connected) => connected.map_err(FtpError::ConnectionError),
                    Err(_) => Err(FtpError::ConnectionError(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no data connection to {target} within {}s", connect_timeout.as_secs()),
                    ))),
                }
            })
        });

        let mut fingerprint = None;
        if let Some(tls) = &tls {
            let connector = Connector {
                tls: tls.connector.clone(),
                // Implicit: the control connection is already secured by the relay.
                pass_through: AtomicBool::new(ep.kind == Kind::FtpsImplicit),
            };
            let secured = ctx.within("starting tls", ftp.into_secure(connector, &ep.host)).await?;
            ftp = match secured {
                Ok(ftp) => ftp,
                Err(FtpError::UnexpectedResponse(reply)) => {
                    return Err(ctx.tls(format!("the server refused tls: {}", reply_text(&reply))));
                }
                Err(FtpError::SecureError(e)) => return Err(tls.handshake_error(&ctx, e)),
                Err(e) => return Err(ctx.fail("start tls with", "", e)),
            };
            fingerprint = tls.presented();
        }

        let anonymous = ep.user.eq_ignore_ascii_case("anonymous") || ep.user.eq_ignore_ascii_case("ftp");
        let password = match &cfg.password {
            Some(secret) => secret.expose_secret(),
            None if anonymous => "anonymous@",
            None => "",
        };
        match ctx.within("logging in", ftp.login(ep.user.as_str(), password)).await? {
            Ok(()) => {}
            Err(FtpError::UnexpectedResponse(reply)) if reply_code(&reply) == 530 => {
                let text = reply_text(&reply).to_ascii_lowercase();
                // vsftpd and others refuse USER in clear text with 530 too; that
                // is no wrong password and needs ftps://, so say so.
                if tls.is_none() && ["encrypt", "tls", "ssl", "secure"].iter().any(|w| text.contains(w)) {
                    return Err(ctx.tls(format!("the server requires tls, use ftps:// ({})", reply_text(&reply))));
                }
                return Err(SourceError::Auth { endpoint: ctx.endpoint.clone(), user: ep.user.clone() });
            }
            Err(e) => return Err(ctx.fail("log in to", "", e)),
        }

        let features = match ctx.within("reading the features", ftp.feat()).await? {
            Ok(features) => features,
            Err(FtpError::ConnectionError(e)) => {
                return Err(ctx.fail("read the features of", "", FtpError::ConnectionError(e)));
            }
            // FEAT is optional (RFC 2389): no list means no extension.
            Err(_) => Default::default(),
        };
        let has = |name: &str| features.keys().any(|k| k.eq_ignore_ascii_case(name));
        ftp.set_mode(if has("EPSV") { Mode::ExtendedPassive } else { Mode::Passive });
        let (mlsd, mdtm) = (has("MLST"), has("MDTM"));

        ctx.within("setting binary mode", ftp.transfer_type(FileType::Binary))
            .await?
            .map_err(|e| ctx.fail("set binary mode on", "", e))?;
        let folder = ctx.folder.clone();
        ctx.within("opening the folder", ftp.cwd(&folder)).await?.map_err(|e| ctx.fail("open", "", e))?;

        Ok(FtpSession { ftp: Box::new(ftp), ctx, mlsd, mdtm, fingerprint, _relay: relay })
    }

    async fn list_with_list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        let lines = self.ctx.within("listing", self.ftp.list(None)).await?.map_err(|e| self.ctx.fail("list", "", e))?;
        let mut files = Vec::new();
        for line in &lines {
            // Other lines ("total 12", odd formats) are not files we could fetch.
            let Ok(entry) = ListParser::parse_posix(line).or_else(|_| ListParser::parse_dos(line)) else { continue };
            if entry.is_file() {
                files.push(RemoteFile { name: entry.name().to_owned(), size: entry.size() as u64, mtime: None });
            }
        }
        // LIST times are local to the server and to the minute at best; MDTM is UTC to the second.
        if self.mdtm {
            for file in &mut files {
                file.mtime = match self.ctx.within("reading modification times", self.ftp.mdtm(&file.name)).await? {
                    Ok(time) => Some(time.and_utc()),
                    // Gone since the listing, or refused: the caller sees no time.
                    Err(FtpError::UnexpectedResponse(_)) => None,
                    Err(e) => return Err(self.ctx.fail("read the modification time of", &file.name, e)),
                };
            }
        }
        Ok(files)
    }

    /// Whether `path` names something, through MLST or SIZE, then CWD for folders.
    async fn probe(&mut self, path: &str) -> Result<bool, SourceError> {
        if self.mlsd {
            return match self.ctx.within("checking a path", self.ftp.mlst(Some(path))).await? {
                Ok(_) => Ok(true),
                Err(FtpError::UnexpectedResponse(reply)) if is_not_found(&reply) => Ok(false),
                Err(e) => Err(self.ctx.fail("check", path, e)),
            };
        }
        match self.ctx.within("checking a path", self.ftp.size(path)).await? {
            Ok(_) => return Ok(true),
            // 550 for folders and missing files alike, 5xx when SIZE is unknown.
            Err(FtpError::UnexpectedResponse(reply)) if reply_code(&reply) >= 500 => {}
            Err(e) => return Err(self.ctx.fail("check", path, e)),
        }
        if self.mdtm {
            match self.ctx.within("checking a path", self.ftp.mdtm(path)).await? {
                Ok(_) => return Ok(true),
                Err(FtpError::UnexpectedResponse(reply)) if reply_code(&reply) >= 500 => {}
                Err(e) => return Err(self.ctx.fail("check", path, e)),
            }
        }
        match self.ctx.within("checking a path", self.ftp.cwd(path)).await? {
            Ok(()) => {
                let folder = self.ctx.folder.clone();
                self.ctx.within("checking a path", self.ftp.cwd(&folder)).await?.map_err(|e| {
                    // The session now sits in the wrong folder: relative paths would be wrong.
                    self.ctx.broken = true;
                    self.ctx.fail("return to", "", e)
                })?;
                Ok(true)
            }
            Err(FtpError::UnexpectedResponse(reply)) if is_not_found(&reply) => Ok(false),
            Err(e) => Err(self.ctx.fail("check", path, e)),
        }
    }
}

impl Session for FtpSession {
    async fn list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        if !self.mlsd {
            return self.list_with_list().await;
        }
        let lines = self.ctx.within("listing", self.ftp.mlsd(None)).await?.map_err(|e| self.ctx.fail("list", "", e))?;
        Ok(lines.iter().filter_map(|line| parse_mlsd_line(line)).collect())
    }

    async fn fetch(&mut self, name: &str, dest: &Path) -> Result<Fetched, SourceError> {
        // The spool file first: failing here leaves no transfer half open.
        let spool = SpoolWriter::create(dest)?;
        let mut download = self
            .ctx
            .within("starting a download", self.ftp.retr_as_stream(name))
            .await?
            .map_err(|e| self.ctx.fail("fetch", name, e))?;

        // This task receives; hashing and writing run on threads of their own.
        let mut pipeline = SpoolPipeline::start(spool, CHUNK);
        let mut received = Ok(());
        let mut writer_failed = false;
        'transfer: loop {
            let mut chunk = pipeline.buffer();
            let mut filled = 0;
            while filled < CHUNK {
                match tokio::time::timeout(self.ctx.io_timeout, download.read(&mut chunk[filled..])).await {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => filled += n,
                    Ok(Err(e)) => {
                        received = Err(self.ctx.fail("fetch", name, FtpError::ConnectionError(e)));
                        break 'transfer;
                    }
                    Err(_) => {
                        received = Err(self.ctx.timeout("downloading"));
                        break 'transfer;
                    }
                }
            }
            if filled == 0 {
                break;
            }
            if !pipeline.send(chunk, filled).await {
                // The writer stopped on an error, reported below.
                writer_failed = true;
                break;
            }
        }
        if received.is_ok() && !writer_failed {
            // Reads the server's 226 while the last chunks are written.
            received = self
                .ctx
                .within("finishing a download", download.finish())
                .await
                .and_then(|finished| finished.map_err(|e| self.ctx.fail("fetch", name, e)));
        } else {
            // Closes the data connection; the server's reply to it is read
            // before the next command.
            drop(download);
        }
        // A failed download leaves a partial file, removed by the caller.
        let path = dest.display().to_string();
        let written = tokio::task::spawn_blocking(move || pipeline.finish())
            .await
            .map_err(|e| SourceError::Spool { path, detail: format!("the spool writer stopped: {e}") });
        received?;
        written?
    }

    async fn ensure_dir(&mut self, dir: &str) -> Result<(), SourceError> {
        match self.ctx.within("creating a folder", self.ftp.mkdir(dir)).await? {
            Ok(()) => Ok(()),
            // Already there is the usual reason (550, or 521 on some servers).
            Err(FtpError::UnexpectedResponse(reply)) if reply_code(&reply) >= 500 => {
                if self.probe(dir).await? {
                    Ok(())
                } else {
                    Err(self.ctx.fail("create", dir, FtpError::UnexpectedResponse(reply)))
                }
            }
            Err(e) => Err(self.ctx.fail("create", dir, e)),
        }
    }

    async fn exists(&mut self, path: &str) -> Result<bool, SourceError> {
        self.probe(path).await
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), SourceError> {
        match self.ctx.within("renaming", self.ftp.rename(from, to)).await? {
            Ok(()) => Ok(()),
            Err(e) => {
                let both = format!("{} to {}", join(&self.ctx.folder, from), join(&self.ctx.folder, to));
                Err(self.ctx.fail_at("rename", both, e))
            }
        }
    }

    async fn delete(&mut self, name: &str) -> Result<(), SourceError> {
        self.ctx.within("deleting", self.ftp.rm(name)).await?.map_err(|e| self.ctx.fail("delete", name, e))
    }

    fn server_fingerprint(&self) -> Option<String> {
        self.fingerprint.clone()
    }
}

impl Ctx {
    /// Runs one exchange with the server under the io timeout. A timeout
    /// leaves the control channel out of step: the session is then broken.
    async fn within<T>(&mut self, doing: &str, exchange: impl Future<Output = T>) -> Result<T, SourceError> {
        if self.broken {
            return Err(self.connect_error(
                "the connection was left unusable by an earlier failure, a new session is needed".into(),
            ));
        }
        match tokio::time::timeout(self.io_timeout, exchange).await {
            Ok(done) => Ok(done),
            Err(_) => Err(self.timeout(doing)),
        }
    }

    fn timeout(&mut self, doing: &str) -> SourceError {
        self.broken = true;
        SourceError::Timeout { endpoint: self.endpoint.clone(), doing: doing.to_owned() }
    }

    fn connect_error(&self, detail: String) -> SourceError {
        SourceError::Connect { endpoint: self.endpoint.clone(), detail }
    }

    fn tls(&self, detail: String) -> SourceError {
        SourceError::Tls { endpoint: self.endpoint.clone(), detail }
    }

    /// The error of `op` on `path` (relative to the folder; empty for the folder itself).
    fn fail(&mut self, op: &'static str, path: &str, e: FtpError) -> SourceError {
        let path = if path.is_empty() { self.folder.clone() } else { join(&self.folder, path) };
        self.fail_at(op, path, e)
    }

    fn fail_at(&mut self, op: &'static str, path: String, e: FtpError) -> SourceError {
        let endpoint = self.endpoint.clone();
        match e {
            FtpError::ConnectionError(e) if e.kind() == io::ErrorKind::TimedOut => {
                self.broken = true;
                SourceError::Timeout { endpoint, doing: format!("trying to {op} {path}") }
            }
            FtpError::ConnectionError(e) => {
                self.broken = true;
                SourceError::Connect { endpoint, detail: format!("connection lost while trying to {op} {path}: {e}") }
            }
            FtpError::SecureError(detail) => SourceError::Tls { endpoint, detail: secure_detail(&detail) },
            FtpError::UnexpectedResponse(reply) => match reply_code(&reply) {
                // 522/534: the server wants TLS it did not get, e.g. vsftpd's
                // require_ssl_reuse when the data connection did not resume the session.
                522 | 534 => {
                    SourceError::Tls { endpoint, detail: format!("cannot {op} {path}: {}", reply_text(&reply)) }
                }
                // Service closing, no data connection, transfer aborted: worth a retry.
                421 | 425 | 426 => {
                    SourceError::Connect { endpoint, detail: format!("cannot {op} {path}: {}", reply_text(&reply)) }
                }
                _ => SourceError::Remote { endpoint, op, path, detail: reply_text(&reply) },
            },
            FtpError::BadResponse => {
                self.broken = true;
                SourceError::Remote { endpoint, op, path, detail: "the server sent a malformed reply".into() }
            }
            other => SourceError::Remote { endpoint, op, path, detail: other.to_string().to_lowercase() },
        }
    }
}

/// The text of a reply on one line, code included ("550 Failed to open file.").
fn reply_text(reply: &Response) -> String {
    String::from_utf8_lossy(&reply.body).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// suppaftp wraps TLS errors once per layer ("Secure error: Secure error: ...").
fn secure_detail(raw: &str) -> String {
    let mut detail = raw;
    while let Some(rest) = detail.strip_prefix("Secure error: ") {
        detail = rest;
    }
    detail.to_owned()
}

/// The reply code as sent: suppaftp's `Status` knows only some codes and
/// turns the others (521, 522, 534...) into 0.
fn reply_code(reply: &Response) -> u32 {
    match reply.body.get(..3).and_then(|code| std::str::from_utf8(code).ok()).and_then(|code| code.parse().ok()) {
        Some(code) => code,
        None => reply.status.code(),
    }
}

fn is_not_found(reply: &Response) -> bool {
    matches!(reply_code(reply), 450 | 550 | 553)
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} cannot be checked against a certificate: {e}"))
}

/// One MLSD entry (`type=file;size=12;modify=20260101120000; name`) when it is a regular file.
fn parse_mlsd_line(line: &str) -> Option<RemoteFile> {
    let (facts, name) = match line.strip_prefix(' ') {
        Some(name) => ("", name),
        // Facts end with ";" and a space; the name may contain either.
        None => line.split_once("; ")?,
    };
    let (mut is_file, mut size, mut mtime) = (false, None, None);
    for fact in facts.split(';') {
        let Some((key, value)) = fact.split_once('=') else { continue };
        match key.to_ascii_lowercase().as_str() {
            "type" => is_file = value.eq_ignore_ascii_case("file"),
            "size" => size = value.parse::<u64>().ok(),
            "modify" => mtime = parse_mlsd_time(value),
            _ => {}
        }
    }
    (is_file && !name.is_empty()).then(|| RemoteFile { name: name.to_owned(), size: size.unwrap_or(0), mtime })
}

/// `YYYYMMDDHHMMSS[.sss]`, always UTC (RFC 3659 §2.3).
fn parse_mlsd_time(value: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let time = NaiveDateTime::parse_from_str(seconds, "%Y%m%d%H%M%S").ok()?.and_utc();
    let digits: String = fraction.chars().take(9).collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(time);
    }
    let nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    Some(time + chrono::Duration::nanoseconds(nanos))
}

/// `SHA256:` and the lower-case hex of the SHA-256 of a DER certificate.
fn fingerprint_of(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("SHA256:{hex}")
}

/// A pin as support writes it: `SHA256:` then 64 hex digits (any case, `:`
/// separators allowed, as `openssl x509 -fingerprint -sha256` prints) or base64.
fn parse_fingerprint(raw: &str) -> Result<[u8; 32], String> {
    let invalid = || {
        format!(
            "invalid tls_fingerprint {raw:?}: expected SHA256: followed by the 64 hex digits (or base64) \
             of the SHA-256 of the server certificate"
        )
    };
    let trimmed = raw.trim();
    let body = match trimmed.split_at_checked(7) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case("sha256:") => rest,
        _ => trimmed,
    };
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut pin = [0u8; 32];
        for (byte, pair) in pin.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        return Ok(pin);
    }
    let decoded =
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(body.trim_end_matches('=')).map_err(|_| invalid())?;
    decoded.try_into().map_err(|_| invalid())
}

/// The TLS client of one session: one `ClientConfig` for the control and all
/// data connections, so that data connections resume the control connection's
/// TLS session (servers such as vsftpd refuse them otherwise).
struct TlsSetup {
    connector: TlsConnector,
    pin: Option<[u8; 32]>,
    seen: Arc<Mutex<Seen>>,
}

impl TlsSetup {
    fn new(cfg: &SourceConfig) -> Result<TlsSetup, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let pin = cfg.tls_fingerprint.as_deref().map(parse_fingerprint).transpose()?;
        let trust = match pin {
            Some(pin) => Trust::Pin(pin),
            None => {
                let mut roots = RootCertStore::empty();
                let mut own = Vec::new();
                if let Some(path) = &cfg.tls_ca_file {
                    let unreadable = |e: &dyn fmt::Display| format!("cannot read the ca file {}: {e}", path.display());
                    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                        let cert = cert.map_err(|e| unreadable(&e))?;
                        roots.add(cert.clone()).map_err(|e| {
                            format!("the ca file {} holds an unusable certificate: {e}", path.display())
                        })?;
                        own.push(cert);
                    }
                    if roots.is_empty() {
                        return Err(format!("the ca file {} holds no certificate", path.display()));
                    }
                } else {
                    let native = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(native.certs);
                    if roots.is_empty() {
                        return Err("no system root certificates found: set tls_ca_file or tls_fingerprint".into());
                    }
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot use the root certificates: {e}"))?;
                Trust::Roots { webpki, own }
            }
        };
        let verifier = Arc::new(Verifier { trust, provider: provider.clone(), seen: seen.clone() });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up tls: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsSetup { connector: TlsConnector::from(Arc::new(config)), pin, seen })
    }

    /// The fingerprint of the certificate the server last presented.
    fn presented(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|seen| seen.fingerprint.clone())
    }

    /// A failed handshake, with what the server presented when the certificate
    /// was the problem: support can check it and pin it.
    fn handshake_error(&self, ctx: &Ctx, raw: String) -> SourceError {
        let seen = self.seen.lock().map(|seen| seen.clone()).unwrap_or_default();
        let detail = match (self.pin, seen.fingerprint, seen.refusal) {
            (Some(pin), Some(actual), _) if actual != fingerprint_of(&pin) => format!(
                "the server certificate {actual} does not match the pinned tls_fingerprint {}",
                fingerprint_of(&pin)
            ),
            (None, Some(actual), Some(refusal)) => format!(
                "{refusal}: the server presented {actual}; trust its ca with tls_ca_file or pin it with tls_fingerprint"
            ),
            _ => secure_detail(&raw),
        };
        ctx.tls(detail)
    }
}

/// What the verifier saw of the server certificate, for messages and `server_fingerprint`.
#[derive(Debug, Clone, Default)]
struct Seen {
    fingerprint: Option<String>,
    /// Why it was refused, in words.
    refusal: Option<String>,
}

/// A certificate refusal in words support can act on.
fn describe_refusal(e: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(e) = e else { return e.to_string() };
    match e {
        CertificateError::UnknownIssuer => "the server certificate is not signed by a trusted ca".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server certificate has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server certificate is not valid yet".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the server certificate is not valid for this host name".into()
        }
        CertificateError::ApplicationVerificationFailure => "the server certificate is not the pinned one".into(),
        // webpki's CaUsedAsEndEntity, for a certificate made by `openssl req -x509`.
        other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "the server certificate is a self-signed ca certificate".into()
        }
        other => format!("the server certificate was refused ({other:?})"),
    }
}

#[derive(Debug)]
enum Trust {
    /// `own`: the certificates of the CA file, also trusted as themselves.
    Roots {
        webpki: Arc<WebPkiServerVerifier>,
        own: Vec<CertificateDer<'static>>,
    },
    Pin([u8; 32]),
}

/// Checks the server certificate and records what it saw.
#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Seen>>,
}

impl Verifier {
    fn verify(
        &self,
        digest: &[u8; 32],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Pin(pin) if digest == pin => Ok(ServerCertVerified::assertion()),
            Trust::Pin(_) => Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)),
            Trust::Roots { webpki, own } => {
                match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                    Ok(verified) => Ok(verified),
                    // A self-signed server certificate given as the CA file: `openssl
                    // req -x509` marks it CA:TRUE, which webpki refuses for a server.
                    // Trusting exactly that certificate is what was asked for.
                    Err(_) if own.iter().any(|cert| cert.as_ref() == end_entity.as_ref()) => {
                        Ok(ServerCertVerified::assertion())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let verdict = self.verify(&digest, end_entity, intermediates, server_name, ocsp_response, now);
        if let Ok(mut seen) = self.seen.lock() {
            seen.fingerprint = Some(fingerprint_of(&digest));
            seen.refusal = verdict.as_ref().err().map(describe_refusal);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// suppaftp's TLS hook: secures the data connections (and the control
/// connection of explicit FTPS) with the session's connector.
struct Connector {
    tls: TlsConnector,
    /// Implicit FTPS: the first call is for the control connection, which the
    /// relay has already secured; it is passed through as is.
    pass_through: AtomicBool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl AsyncTlsConnector for Connector {
    type Stream = FtpTls;

    // Written out as `async_trait` would expand it: the crate is not a dependency.
    fn connect<'a, 'b, 'async_trait>(
        &'a self,
        domain: &'b str,
        stream: TcpStream,
    ) -> Pin<Box<dyn Future<Output = FtpResult<FtpTls>> + Send + 'async_trait>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if self.pass_through.swap(false, Ordering::AcqRel) {
                return Ok(FtpTls::Relayed(stream));
            }
            let name = server_name(domain).map_err(FtpError::SecureError)?;
            match self.tls.connect(name, stream).await {
                Ok(secured) => Ok(FtpTls::Tls(Box::new(secured))),
                Err(e) => Err(FtpError::SecureError(e.to_string())),
            }
        })
    }
}

/// The stream suppaftp runs over once TLS is on.
#[derive(Debug)]
enum FtpTls {
    Tls(Box<TlsStream<TcpStream>>),
    /// The control connection of implicit FTPS: plain TCP to the relay task,
    /// which holds the TLS connection to the server.
    Relayed(TcpStream),
}

impl AsyncRead for FtpTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FtpTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            FtpTls::Relayed(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for FtpTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            FtpTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            FtpTls::Relayed(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FtpTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            FtpTls::Relayed(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            FtpTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            FtpTls::Relayed(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl TokioTlsStream for FtpTls {
    type InnerStream = FtpTls;

    fn tcp_stream(self) -> FtpResult<TcpStream> {
        match self {
            FtpTls::Tls(s) => Ok(s.into_inner().0),
            FtpTls::Relayed(s) => Ok(s),
        }
    }

    fn get_ref(&self) -> &TcpStream {
        match self {
            FtpTls::Tls(s) => s.get_ref().0,
            FtpTls::Relayed(s) => s,
        }
    }

    fn mut_ref(&mut self) -> &mut FtpTls {
        self
    }
}

/// Stops the relay task with the session (or a connect that failed half-way).
struct RelayGuard(AbortHandle);

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Implicit FTPS: suppaftp only reads a greeting in clear text before TLS (its
/// implicit connect needs the crate's `deprecated` feature), so the TLS
/// connection to the server is carried by a task, and suppaftp talks to the
/// task over a loopback socket. The control channel is small; data
/// connections are secured directly by `Connector`.
async fn implicit_relay(server: TlsStream<TcpStream>) -> io::Result<(TcpStream, RelayGuard)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let control = TcpStream::connect(listener.local_addr()?).await?;
    let ours = control.local_addr()?;
    let inner = loop {
        let (socket, peer) = listener.accept().await?;
        // Anything else on this machine that raced to the port is turned away.
        if peer == ours {
            break socket;
        }
    };
    let _ = control.set_nodelay(true);
    let _ = inner.set_nodelay(true);
    let task = tokio::spawn(async move {
        if let Err(e) = relay(inner, server).await {
            tracing::debug!(error = %e, "implicit ftps relay ended");
        }
    });
    Ok((control, RelayGuard(task.abort_handle())))
}

/// Longest greeting line the relay passes on.
const MAX_LINE: u64 = 8 * 1024;

async fn relay(client: TcpStream, server: TlsStream<TcpStream>) -> io::Result<()> {
    let mut server = BufReader::new(server);
    let mut client = BufReader::new(client);
    let mut line = Vec::new();
    // The greeting, up to its last line ("220 ..." after any "220-...").
    loop {
        line.clear();
        if (&mut server).take(MAX_LINE).read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        client.get_mut().write_all(&line).await?;
        if line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' ' {
            break;
        }
    }
    // suppaftp then asks for TLS with AUTH; it is on already, so answer here.
    line.clear();
    if (&mut client).take(MAX_LINE).read_until(b'\n', &mut line).await? == 0 {
        return Ok(());
    }
    if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"AUTH ") {
        client.get_mut().write_all(b"234 TLS is on already (implicit FTPS)\r\n").await?;
    } else {
        server.get_mut().write_all(&line).await?;
        server.get_mut().flush().await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_as_hex_with_or_without_colons_and_as_base64() {
        let digest: [u8; 32] = core::array::from_fn(|i| (i * 7 + 0xa0) as u8);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let colons = digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        for pin in [format!("SHA256:{hex}"), format!("sha256:{colons}"), hex.to_uppercase(), format!("SHA256:{b64}")] {
            assert_eq!(parse_fingerprint(&pin), Ok(digest), "{pin}");
        }
        assert_eq!(fingerprint_of(&digest), format!("SHA256:{hex}"));
        assert!(parse_fingerprint("SHA256:abcd").is_err());
        assert!(parse_fingerprint(&format!("MD5:{hex}")).is_err());
    }

    #[test]
    fn refused_tls_session_reuse_is_source_tls_and_lost_connections_are_transient() {
        let mut ctx = Ctx {
            endpoint: "ftps://u@h:21/in".into(),
            io_timeout: Duration::from_secs(1),
            folder: "/in".into(),
            broken: false,
        };
        let reply = |text: &str| FtpError::UnexpectedResponse(Response::new(suppaftp::Status::Unknown, text.into()));
        let err = ctx.fail("list", "", reply("522 SSL connection failed: session reuse required\r\n"));
        assert_eq!(err.code(), "source.tls", "{err}");
        assert!(err.to_string().contains("session reuse required"), "{err}");
        let err = ctx.fail("fetch", "a.csv", reply("550 Failed to open file.\r\n"));
        assert_eq!((err.code(), err.to_string().contains("/in/a.csv")), ("source.remote", true), "{err}");
        assert!(!ctx.broken);
        let err = ctx.fail("fetch", "a.csv", FtpError::ConnectionError(io::ErrorKind::ConnectionReset.into()));
        assert!(err.is_transient() && ctx.broken, "{err}");
    }

    #[test]
    fn mlsd_lines_give_regular_files_with_utc_times() {
        let file =
            parse_mlsd_line("type=file;Size=1234;modify=20261122045501.250;UNIX.mode=0644; my file;1.csv").unwrap();
        assert_eq!(file.name, "my file;1.csv");
        assert_eq!(file.size, 1234);
        let expected = NaiveDateTime::parse_from_str("2026-11-22 04:55:01.250", "%Y-%m-%d %H:%M:%S%.3f").unwrap();
        assert_eq!(file.mtime, Some(expected.and_utc()));
        assert!(parse_mlsd_line("type=dir;modify=20261122045501; processed").is_none());
        assert!(parse_mlsd_line("type=cdir; .").is_none());
        assert!(parse_mlsd_line("type=OS.unix=symlink;size=3; link.csv").is_none());
        assert_eq!(parse_mlsd_line("type=file;size=0; empty.csv").unwrap().mtime, None);
    }
}
