//! A feed's source as its YAML writes it (`source:`), and the endpoint its
//! URL parses into once: where the files are, never the secrets themselves.
//! The transports in `source/` open sessions on them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `source:` block of a feed, as written in its YAML. Secrets are
/// referenced (environment variable, file), never written here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// `sftp://user@host:22/folder`, `ftp://`, `ftps://` (explicit TLS),
    /// `ftps+implicit://`, or `file:///folder`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_passphrase_env: Option<String>,
    /// SFTP: the server's host key, `SHA256:<base64>` as `ssh-keygen -lf` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// SFTP: or a known_hosts file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// FTPS: trust this CA (PEM) instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// FTPS: or pin the server certificate, `SHA256:<hex or base64>` of its DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// Glob on file names.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Longest wait for any single read or reply.
    #[serde(default = "default_io_timeout")]
    pub io_timeout_secs: u64,
}

fn default_pattern() -> String {
    "*.csv".into()
}
fn default_connect_timeout() -> u64 {
    30
}
fn default_io_timeout() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sftp,
    Ftp,
    /// Explicit TLS (AUTH TLS on the control connection).
    Ftps,
    FtpsImplicit,
    File,
}

/// Where to connect, without any secret: safe to log and to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The drop folder on the server (or local path for `file://`).
    pub folder: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            Kind::Sftp => "sftp",
            Kind::Ftp => "ftp",
            Kind::Ftps => "ftps",
            Kind::FtpsImplicit => "ftps+implicit",
            Kind::File => return write!(f, "file://{}", self.folder),
        };
        write!(f, "{scheme}://{}@{}:{}{}", self.user, self.host, self.port, self.folder)
    }
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("invalid source url: {e}"))?;
        if url.password().is_some() {
            return Err("the source url must not contain a password: use password_env or password_file".into());
        }
        let (kind, default_port) = match url.scheme() {
            "sftp" => (Kind::Sftp, 22),
            "ftp" => (Kind::Ftp, 21),
            "ftps" => (Kind::Ftps, 21),
            "ftps+implicit" => (Kind::FtpsImplicit, 990),
            "file" => (Kind::File, 0),
            other => return Err(format!("unsupported scheme {other:?}: use sftp, ftp, ftps, ftps+implicit or file")),
        };
        let folder = percent_decode(url.path());
        if kind == Kind::File {
            if folder.is_empty() || folder == "/" && url.host_str().is_some() {
                return Err("file:// urls need an absolute folder, e.g. file:///srv/drop/acme".into());
            }
            return Ok(Endpoint { kind, host: String::new(), port: 0, user: String::new(), folder });
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the source url has no host")?.to_owned();
        let user = if url.username().is_empty() { "anonymous".to_owned() } else { percent_decode(url.username()) };
        let folder = if folder.is_empty() { "/".to_owned() } else { folder };
        Ok(Endpoint { kind, host, port: url.port().unwrap_or(default_port), user, folder })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.replace('+', "%2B").as_bytes()).map(|(k, v)| format!("{k}{v}")).collect::<String>()
}
