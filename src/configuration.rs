//! Daemon and CLI settings: `config/dropfeed.yaml`, then `DROPFEED_*`
//! environment variables (`__` between levels), then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "config/dropfeed.yaml";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/dropfeed";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_database_url")]
    pub database_url: String,
    #[serde(default = "default_spool")]
    pub spool_dir: PathBuf,
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default)]
    pub http: HttpSettings,
    /// Read now, used by the report mailer.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub scheduler: SchedulerSettings,
    /// Feed files applied when the daemon starts (as `feed apply` would).
    #[serde(default)]
    pub feeds_dir: Option<PathBuf>,
    /// Copies of the files feeds took, for `runs release` and `runs replay`.
    #[serde(default)]
    pub archive: ArchiveSettings,
    /// Completion reports by e-mail.
    #[serde(default)]
    pub report: ReportSettings,
    /// The API (and the console to come): served by `dropfeed serve`, and by
    /// `dropfeed run` when set.
    #[serde(default)]
    pub console: Option<ConsoleSettings>,
    /// What a feed applied through the API or the console may name of this
    /// server's secrets, files and network (`feed_policy.rs`).
    #[serde(default)]
    pub feed_policy: FeedPolicy,
}

/// The server's secrets, files and network are the operator's: a feed that
/// support applies through the API or the console names only what is
/// granted here. Feeds applied with the CLI or from `feeds_dir` are the
/// operator's own and are not limited.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedPolicy {
    /// `password_env` and `private_key_passphrase_env` must start with this,
    /// then the tenant's slug in capitals (`-` as `_`) and `_`:
    /// `DROPFEED_FEED_ACME_SFTP_PASSWORD` for tenant `acme`.
    pub secret_env_prefix: String,
    /// `password_file`, `private_key_file`, `known_hosts` and `tls_ca_file`
    /// must lie under `<secret_dir>/<tenant>/`; none may be named when unset.
    pub secret_dir: Option<PathBuf>,
    /// `file://` folders must lie under one of these; none when empty.
    pub file_roots: Vec<PathBuf>,
    /// When set, the host of an `sftp://` or `ftp(s)://` source must match
    /// one of these globs (`*.example.com`, `192.0.2.10`).
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for FeedPolicy {
    fn default() -> Self {
        FeedPolicy {
            secret_env_prefix: "DROPFEED_FEED_".into(),
            secret_dir: None,
            file_roots: Vec::new(),
            allowed_hosts: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Address of the API and console; `/metrics` and health stay on `http.bind`.
    #[serde(default = "default_console_bind")]
    pub bind: String,
    /// How people reach it (links in report e-mails, secure cookies).
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a console session lasts without being used.
    #[serde(default = "default_session_days")]
    pub session_days: u32,
    /// How long a client may take to send its request's headers, leave an
    /// upload idle, or leave an answer unread, before it is cut off.
    #[serde(default = "default_client_timeout")]
    pub client_timeout_secs: u64,
    /// Reverse proxies (addresses or networks, `10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client. Without them every request seems
    /// to come from the proxy, and one person's failed logins would hold
    /// back everyone behind it; from any other peer the header is ignored,
    /// or a client could name any address it likes.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl ConsoleSettings {
    /// `trusted_proxies` as networks; an entry that is neither an address
    /// nor a network is an error naming it.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("console.trusted_proxies: {p:?} is not an address or a network"))
            })
            .collect()
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            bind: default_console_bind(),
            public_url: None,
            session_days: default_session_days(),
            client_timeout_secs: default_client_timeout(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_client_timeout() -> u64 {
    60
}

fn default_session_days() -> u32 {
    7
}

fn default_console_bind() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// The largest rejects file attached to a report e-mail (SPEC §8.3); a
    /// larger one is linked (or named), not attached. 5 MB is 6.8 MB once in
    /// base64, under the 10 MB many mail servers accept.
    pub max_attachment_bytes: u64,
    /// `console.public_url`, copied here at load: reports link to their run.
    #[serde(skip)]
    pub public_url: Option<String>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { max_attachment_bytes: 5_000_000, public_url: None }
    }
}

impl ReportSettings {
    /// The console's page of run `id`, when the console has a public address.
    pub fn run_url(&self, id: uuid::Uuid) -> Option<String> {
        self.public_url.as_deref().map(|base| format!("{}/runs/{id}", base.trim_end_matches('/')))
    }

    /// Where the rejects file of run `id` is downloaded (a logged-in browser
    /// or a token).
    pub fn rejects_url(&self, id: uuid::Uuid) -> Option<String> {
        self.public_url.as_deref().map(|base| format!("{}/api/v1/runs/{id}/rejects.csv", base.trim_end_matches('/')))
    }
}

/// Scheduler knobs (the `scheduler:` block of the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// How often due feeds are looked for.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// A claim lasts this long and is renewed every third of it while the
    /// poll runs; a daemon that dies loses its feeds after at most this.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// After a failed poll (server unreachable), try again this soon rather
    /// than at the next scheduled time.
    #[serde(default = "default_retry_secs")]
    pub retry_after_secs: u64,
    /// Connection attempts per poll for transient errors, with backoff.
    #[serde(default = "default_attempts")]
    pub connect_attempts: usize,
    /// On shutdown, how long polls in hand may run on before being abandoned
    /// (rolled back; the file is taken again next time).
    #[serde(default = "default_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Connections at once to one server (host:port), across all feeds.
    #[serde(default = "default_per_server")]
    pub max_connections_per_server: usize,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            tick_ms: default_tick_ms(),
            lease_secs: default_lease_secs(),
            retry_after_secs: default_retry_secs(),
            connect_attempts: default_attempts(),
            shutdown_grace_secs: default_grace_secs(),
            max_connections_per_server: default_per_server(),
        }
    }
}

fn default_tick_ms() -> u64 {
    1000
}
fn default_lease_secs() -> u64 {
    60
}
fn default_retry_secs() -> u64 {
    300
}
fn default_attempts() -> usize {
    3
}
fn default_grace_secs() -> u64 {
    20
}
fn default_per_server() -> usize {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    /// `file:///var/lib/dropfeed/archive` or `s3://bucket/prefix`. Default:
    /// the folder `dir`, else `<spool_dir>/archive`. With several replicas on
    /// separate hosts, object storage they all reach.
    #[serde(default)]
    pub url: Option<String>,
    /// The local folder (before `url` existed); not with `url`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Days a file is kept (0: only held files, until purged after a day).
    #[serde(default = "default_archive_days")]
    pub days: u32,
    /// The S3-compatible store of an `s3://` url.
    #[serde(default)]
    pub s3: Option<S3Settings>,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings { url: None, dir: None, days: default_archive_days(), s3: None }
    }
}

fn default_archive_days() -> u32 {
    14
}

/// An S3-compatible store. Keys come from the environment or from files,
/// never from the configuration itself (as a feed's passwords).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// `https://s3.example.net` (a self-hosted store); none: AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    #[serde(default)]
    pub access_key_id_file: Option<PathBuf>,
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    /// Default: yes with an `endpoint` (self-hosted stores), no for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl S3Settings {
    pub fn access_key_id(&self) -> Result<secrecy::SecretString, String> {
        secret("access_key_id", &self.access_key_id_env, &self.access_key_id_file)
    }

    pub fn secret_access_key(&self) -> Result<secrecy::SecretString, String> {
        secret("secret_access_key", &self.secret_access_key_env, &self.secret_access_key_file)
    }
}

/// A secret named by `<name>_env` or `<name>_file`; messages name the
/// variable or file, never the value.
fn secret(name: &str, env: &Option<String>, file: &Option<PathBuf>) -> Result<secrecy::SecretString, String> {
    match (env, file) {
        (Some(var), None) => {
            env_secret(var).ok_or_else(|| format!("archive.s3.{name}_env: the environment variable {var} is not set"))
        }
        (None, Some(path)) => file_secret(path)
            .map_err(|e| format!("archive.s3.{name}_file: cannot read {}: {}", path.display(), e.kind())),
        (Some(_), Some(_)) => Err(format!("archive.s3: give {name}_env or {name}_file, not both")),
        (None, None) => Err(format!("archive.s3: give {name}_env or {name}_file")),
    }
}

/// The secret an environment variable holds; `None` when it is not set.
pub fn env_secret(var: &str) -> Option<secrecy::SecretString> {
    std::env::var(var).ok().map(secrecy::SecretString::from)
}

/// The secret a file holds, without its final line break (files written by
/// editors and `echo` end with one).
pub fn file_secret(path: &Path) -> std::io::Result<secrecy::SecretString> {
    let text = std::fs::read_to_string(path)?;
    Ok(secrecy::SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(default = "default_bind")]
    pub bind: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { bind: default_bind() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the password: the password
    /// itself never sits in a file.
    #[serde(default)]
    pub password_env: Option<String>,
    pub from: String,
}

/// Bounds that keep one hostile file from exhausting the service. A file
/// beyond one of them is refused whole (nothing written), with the rule and
/// the line; a cell beyond `max_field_bytes` rejects its row only.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Messages stored per run; beyond it only the counts per code are kept.
    pub max_messages_per_run: i64,
    /// Size of a file as dropped (before any decompression).
    pub max_file_bytes: u64,
    /// One record, quoted line breaks included: a longer one is never held
    /// in memory whole.
    pub max_line_bytes: u64,
    /// One cell.
    pub max_field_bytes: usize,
    /// Columns of the header.
    pub max_columns: usize,
    /// Data lines of one file.
    pub max_rows: u64,
    /// Entries of a zip archive (directories included).
    pub max_archive_entries: u64,
    /// The file unpacked from a zip archive (a zip bomb stops here); also the
    /// parts of an .xlsx once inflated, and the CSV a workbook is written as.
    pub max_unpacked_bytes: u64,
    /// A workbook (.xlsx, .xls) as dropped or unpacked: calamine holds its
    /// shared strings (an .xls: all of it) in memory, so workbooks get a
    /// smaller bound than CSV files, which are streamed.
    pub max_workbook_bytes: u64,
    /// The shared strings of an .xlsx (`xl/sharedStrings.xml`) once
    /// inflated: calamine holds them all, at about three times their XML
    /// size, and a 1.8 MB workbook can hold 700 MB of them.
    pub max_shared_strings_bytes: u64,
    /// Bytes one tenant's uploads (the API's and the Analyser's) may hold
    /// on the spool at once; beyond, an upload is refused (507).
    pub max_spool_bytes_per_tenant: u64,
    /// Bytes all uploads may hold on the spool at once.
    pub max_spool_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_messages_per_run: 1_000_000,
            max_file_bytes: 2 << 30,
            max_line_bytes: 1 << 20,
            max_field_bytes: 64 << 10,
            max_columns: 500,
            max_rows: 20_000_000,
            max_archive_entries: 16,
            max_unpacked_bytes: 4 << 30,
            max_workbook_bytes: 100 << 20,
            max_shared_strings_bytes: 64 << 20,
            max_spool_bytes_per_tenant: 4 << 30,
            max_spool_bytes: 16 << 30,
        }
    }
}

fn default_database_url() -> String {
    DEFAULT_DATABASE_URL.into()
}
fn default_spool() -> PathBuf {
    PathBuf::from("/var/lib/dropfeed/spool")
}
fn default_workers() -> usize {
    4
}
fn default_bind() -> String {
    "127.0.0.1:9187".into()
}
fn default_smtp_port() -> u16 {
    25
}

/// Loads settings from `path` (which must exist) or, when `None`, from
/// `config/dropfeed.yaml` if present, then applies `DROPFEED_*` variables.
pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
    let file = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
    };
    let mut value = match &file {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read config {}", p.display()))?;
            if text.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_saphyr::from_str::<serde_json::Value>(&text)
                    .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", p.display()))?
            }
        }
        None => serde_json::json!({}),
    };
    apply_env(&mut value, std::env::vars());
    let shown = file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(defaults)".into());
    let mut settings: Settings = serde_json::from_value(value).with_context(|| format!("invalid config {shown}"))?;
    settings.report.public_url = settings.console.as_ref().and_then(|c| c.public_url.clone());
    if let Some(console) = &settings.console {
        console.trusted_networks().map_err(|e| anyhow::anyhow!("invalid config {shown}: {e}"))?;
    }
    Ok(settings)
}

/// The top-level keys of `Settings`: the only ones `DROPFEED_*` variables set.
const SETTINGS_KEYS: [&str; 12] = [
    "database_url",
    "spool_dir",
    "workers",
    "http",
    "smtp",
    "limits",
    "scheduler",
    "feeds_dir",
    "archive",
    "report",
    "console",
    "feed_policy",
];

/// `DROPFEED_HTTP__BIND=0.0.0.0:9187` sets `http.bind`. Values are read as
/// YAML scalars so numbers stay numbers.
fn apply_env(value: &mut serde_json::Value, vars: impl Iterator<Item = (String, String)>) {
    for (key, raw) in vars {
        let Some(path) = key.strip_prefix("DROPFEED_") else { continue };
        if path == "LOG_FORMAT" {
            continue; // read by telemetry, not a settings key
        }
        let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
        // Other DROPFEED_* variables are not settings: they may hold a feed's
        // secret (password_env), and must neither be read here nor refused.
        if !SETTINGS_KEYS.contains(&parts[0].as_str()) {
            continue;
        }
        let scalar = serde_saphyr::from_str::<serde_json::Value>(&raw)
            .ok()
            .filter(|v| !v.is_object() && !v.is_array() && !v.is_null())
            .unwrap_or(serde_json::Value::String(raw));
        let mut node = &mut *value;
        for (i, part) in parts.iter().enumerate() {
            if !node.is_object() {
                *node = serde_json::json!({});
            }
            let map = node.as_object_mut().expect("made an object above");
            if i + 1 == parts.len() {
                map.insert(part.clone(), scalar.clone());
                break;
            }
            node = map.entry(part.clone()).or_insert_with(|| serde_json::json!({}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_override_nested_keys() {
        let mut v = serde_json::json!({"http": {"bind": "127.0.0.1:1"}, "workers": 2});
        let vars = [
            ("DROPFEED_HTTP__BIND".to_string(), "0.0.0.0:9187".to_string()),
            ("DROPFEED_WORKERS".to_string(), "8".to_string()),
            ("OTHER".to_string(), "x".to_string()),
            ("DROPFEED_ACME_SFTP_PASSWORD".to_string(), "secret".to_string()),
        ];
        apply_env(&mut v, vars.into_iter());
        let s: Settings = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.http.bind, "0.0.0.0:9187");
        assert_eq!(s.workers, 8);
        assert!(!serde_json::to_string(&v).unwrap().contains("secret"), "feed secrets are not settings");
    }

    #[test]
    fn the_example_config_file_loads() {
        let s = load(Some(Path::new("config/dropfeed.yaml"))).unwrap();
        assert!(s.database_url.starts_with("postgres://"));
    }
}
