//! `spawn_app`: a fresh database with migrations and one tenant, plus helpers
//! to write files, import them and read what was written.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::NaiveDate;
use dropfeed::domain::{ReportLanguage, TenantSlug};
use dropfeed::import;
use dropfeed::profile::Profile;
use dropfeed::report::Report;
use dropfeed::store::{self, runs, tenants};
use sqlx::{PgPool, Row};

pub struct TestApp {
    pub pool: PgPool,
    pub db_url: String,
    pub tenant: tenants::Tenant,
    pub dir: tempfile::TempDir,
}

/// The server tests run against; `TEST_DATABASE_URL` overrides it.
fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_language(ReportLanguage::Fr).await
}

pub async fn spawn_app_with_language(language: ReportLanguage) -> TestApp {
    spawn_app_on(&server_url(), language).await
}

/// A test app on the PostgreSQL server at `server` (`postgres://user@host:port`).
pub async fn spawn_app_on(server: &str, language: ReportLanguage) -> TestApp {
    let name = format!("dropfeed_test_{}", uuid::Uuid::now_v7().simple());
    let db_url = format!("{}/{name}", server.trim_end_matches('/'));
    let pool = store::migrate(&db_url).await.expect("test database");
    let tenant = tenants::add(
        &pool,
        tenants::NewTenant {
            slug: TenantSlug::parse("acme").unwrap(),
            name: "Acme".into(),
            timezone: "Europe/Zurich".into(),
            language,
            extra_languages: vec!["DE".into()],
            report_to: vec![],
        },
    )
    .await
    .expect("tenant");
    TestApp { pool, db_url, tenant, dir: tempfile::tempdir().unwrap() }
}

/// The fixed "today" of the tests (birthdate rule).
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

pub fn profile(yaml: &str) -> Profile {
    Profile::from_yaml(yaml, "test profile").expect("test profile parses")
}

#[derive(Default)]
pub struct Opts {
    pub dry_run: bool,
    pub save_as: Option<String>,
    pub profile_ref: Option<dropfeed::report::ProfileRef>,
    /// Messages stored for the run (1,000,000 when `None`).
    pub max_messages: Option<i64>,
    /// Limits of the import (the defaults when `None`).
    pub limits: Option<dropfeed::configuration::Limits>,
}

impl TestApp {
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    pub async fn import(&self, path: &Path, profile: &Profile) -> Report {
        self.import_with(path, profile, Opts::default()).await
    }

    pub async fn import_with(&self, path: &Path, profile: &Profile, opts: Opts) -> Report {
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let limits = dropfeed::configuration::Limits {
            max_messages_per_run: opts.max_messages.unwrap_or(1_000_000),
            ..opts.limits.unwrap_or_default()
        };
        let request = import::Request {
            save_as: opts.save_as,
            dry_run: opts.dry_run,
            today: today(),
            ..import::Request::manual(
                self.tenant.clone(),
                path.to_path_buf(),
                file_name,
                (profile.clone(), opts.profile_ref),
                limits,
            )
        };
        let run_id = import::run(&self.pool, request).await.expect("import runs");
        runs::report(&self.pool, run_id, None).await.unwrap().expect("report")
    }

    pub async fn clear_contacts(&self) {
        sqlx::raw_sql("TRUNCATE contacts, list_members").execute(&self.pool).await.unwrap();
    }

    pub async fn contact_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&self.pool).await.unwrap()
    }

    /// One stored contact as JSON (all columns), or None.
    pub async fn contact(&self, email: &str) -> Option<serde_json::Value> {
        sqlx::query("SELECT to_jsonb(c) AS j FROM contacts c WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .map(|r| r.get("j"))
    }

    pub async fn list_members(&self, list: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT c.email FROM list_members m JOIN lists l ON l.id = m.list_id JOIN contacts c ON c.id = m.contact_id
             WHERE l.name = $1 ORDER BY c.email",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Runs the real binary against this app's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[])
    }

    /// The archive the test daemon keeps files in (see `daemon`).
    pub fn archive_dir(&self) -> PathBuf {
        self.dir.path().join("spool/archive")
    }

    /// `cli` with more environment variables, and the test daemon's archive.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_dropfeed"))
            .args(args)
            .envs(env.iter().copied())
            .env("DROPFEED_ARCHIVE__DIR", self.archive_dir())
            .env("DATABASE_URL", &self.db_url)
            .env_remove("RUST_LOG")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("dropfeed runs")
    }
}

impl TestApp {
    /// Saves a profile under `name` by importing (dry run) a one-line sample.
    pub async fn save_profile(&self, name: &str, yaml: &str, sample: &str) {
        let path = self.write(&format!("sample-{name}.csv"), sample);
        let report = self
            .import_with(&path, &profile(yaml), Opts { dry_run: true, save_as: Some(name.into()), ..Opts::default() })
            .await;
        assert!(report.profile.is_some(), "profile saved: {:?}", report.error);
    }

    /// Applies a feed YAML through the CLI, as support would.
    pub fn apply_feed(&self, yaml: &str) -> Output {
        let path = self.write(&format!("feed-{}.yaml", uuid::Uuid::now_v7().simple()), yaml);
        self.cli(&["feed", "apply", path.to_str().unwrap()])
    }

    pub async fn feed(&self, name: &str) -> dropfeed::store::feeds::FeedRow {
        dropfeed::store::feeds::find(&self.pool, "acme", name).await.unwrap().expect("feed exists")
    }

    /// A daemon on this app's database with the given clock.
    pub fn daemon(&self, clock: std::sync::Arc<dyn dropfeed::clock::Clock>, owner: &str) -> dropfeed::daemon::Daemon {
        dropfeed::daemon::Daemon {
            pool: self.pool.clone(),
            clock,
            owner: owner.into(),
            workers: 2,
            spool_dir: self.dir.path().join("spool"),
            archive: dropfeed::archive::Archive::local(&self.archive_dir(), 14).unwrap(),
            limits: dropfeed::configuration::Limits { max_messages_per_run: 1000, ..Default::default() },
            report: Default::default(),
            scheduler: dropfeed::configuration::SchedulerSettings {
                tick_ms: 50,
                lease_secs: 30,
                retry_after_secs: 300,
                connect_attempts: 1,
                shutdown_grace_secs: 5,
                max_connections_per_server: 2,
            },
            servers: std::sync::Arc::new(dropfeed::pickup::ServerLimits::new(2)),
            mailer: None,
        }
    }

    pub async fn scalar_text(&self, sql: &'static str) -> String {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// The rejected lines of a report for one rule code.
pub fn lines_with(report: &Report, code: &str) -> Vec<i64> {
    report.messages.iter().filter(|m| m.code == code).map(|m| m.line).collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Opens a source session that must fail, and returns why.
pub async fn connect_err(cfg: &dropfeed::source::SourceConfig) -> dropfeed::source::SourceError {
    match dropfeed::source::connect(cfg).await {
        Ok(_) => panic!("connecting to {} should have failed", cfg.endpoint),
        Err(e) => e,
    }
}

/// `email;first_name` and `n` contacts `p0@x.ch` … (a file of a few MB).
pub fn numbered_contacts(n: usize) -> String {
    std::iter::once("email;first_name\n".to_owned()).chain((0..n).map(|i| format!("p{i}@x.ch;Anne\n"))).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A source config with a password and nothing else (no key, no pin, no CA).
pub fn password_source(url: &str, password: &str, io_timeout: std::time::Duration) -> dropfeed::source::SourceConfig {
    dropfeed::source::SourceConfig {
        endpoint: dropfeed::source::Endpoint::parse(url).expect("test url parses"),
        password: Some(secrecy::SecretString::from(password.to_owned())),
        private_key: None,
        key_passphrase: None,
        host_key: None,
        known_hosts: None,
        tls_ca_file: None,
        tls_fingerprint: None,
        connect_timeout: std::time::Duration::from_secs(5),
        io_timeout,
    }
}

/// Bytes that do not compress and do not repeat with any power-of-two
/// period (xorshift), so a chunk written twice or out of order changes the hash.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `bench/delay_proxy.py` in front of a loopback server: every byte arrives
/// `one_way_ms` later each way, for the transfer benchmarks' long-distance
/// case (`BENCH_ONE_WAY_MS`). Killed on drop.
pub struct DelayProxy {
    pub port: u16,
    child: std::process::Child,
}

impl DelayProxy {
    /// The proxy the benchmark asks for, if `BENCH_ONE_WAY_MS` is set.
    pub fn from_env(target_port: u16, ftp: bool) -> Option<DelayProxy> {
        let ms: f64 = std::env::var("BENCH_ONE_WAY_MS").ok()?.parse().expect("BENCH_ONE_WAY_MS: milliseconds");
        Some(DelayProxy::start(target_port, ms, ftp))
    }

    /// A proxy adding `ms` milliseconds each way in front of `target_port`.
    pub fn start(target_port: u16, ms: f64, ftp: bool) -> DelayProxy {
        DelayProxy::spawn(target_port, ms, if ftp { &["--ftp"][..] } else { &[] })
    }

    /// An FTP proxy (no delay) that cuts the first data connection once
    /// `after` bytes came from the server.
    pub fn cutting_ftp_data(target_port: u16, after: usize) -> DelayProxy {
        DelayProxy::spawn(target_port, 0.0, &["--ftp", "--cut-data-after", &after.to_string()])
    }

    fn spawn(target_port: u16, ms: f64, options: &[&str]) -> DelayProxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/delay_proxy.py");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(script).args(["0", &target_port.to_string(), &ms.to_string()]).args(options);
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("start the delay proxy");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("the proxy's port");
        println!("through a proxy adding {ms} ms each way (port {port} -> {target_port})");
        DelayProxy { port, child }
    }
}

/// `url` with `port` replaced by the proxy's, when there is one, and the port
/// a client should use.
pub fn through(proxy: &Option<DelayProxy>, url: &str, port: u16) -> (dropfeed::source::Endpoint, u16) {
    let to = proxy.as_ref().map_or(port, |p| p.port);
    let url = url.replace(&format!(":{port}/"), &format!(":{to}/"));
    (dropfeed::source::Endpoint::parse(&url).expect("test url"), to)
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy that cuts its first `cuts` connections once `after` bytes
/// have come from the server (a link that drops mid-download); later
/// connections pass whole.
/// It runs on its own runtime: the code under test may block the test's.
pub struct CutProxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl CutProxy {
    pub fn start(target: u16, after: usize, cuts: usize) -> CutProxy {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = cut.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((client, _)) = listener.accept().await {
                let limit = (connections.fetch_add(1, Ordering::SeqCst) < cuts).then_some(after);
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                    });
                    let mut buf = vec![0u8; 64 << 10];
                    let mut sent = 0;
                    loop {
                        let n = match from_server.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if limit.is_some_and(|l| sent + n > l) {
                            counter.fetch_add(1, Ordering::SeqCst);
                            break; // both halves dropped: the connection is cut
                        }
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                    up.abort();
                });
            }
        });
        CutProxy { port, cut, runtime: Some(runtime) }
    }

    /// Connections cut so far.
    pub fn cut(&self) -> usize {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Held by the tests that run the daemon binary for minutes on this 2-core
/// machine (crash trials, replicas): run side by side they starved each
/// other past their deadlines. Other tests still run beside them.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// SIGTERM, as systemd stops the service; waits for the process to exit.
pub fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait().expect("the process exits")
}
