//! SFTP sources against a real OpenSSH sshd on a loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use dropfeed::source::{self, Endpoint, Session, SourceConfig, SourceSpec};
use secrecy::SecretString;

use crate::helpers::{connect_err, noise, sha256_hex};
use crate::servers::sshd::SshServer;

/// Password auth, host key pinned: the configuration most feeds use.
fn config(server: &SshServer) -> SourceConfig {
    SourceConfig {
        endpoint: Endpoint::parse(&server.url()).unwrap(),
        password: Some(SecretString::from(server.password.clone())),
        private_key: None,
        key_passphrase: None,
        host_key: Some(server.host_key_fingerprint.clone()),
        known_hosts: None,
        tls_ca_file: None,
        tls_fingerprint: None,
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn password_auth_lists_the_folders_regular_files_with_sizes_and_mtimes() {
    let server = SshServer::start();
    let a = server.put("a.csv", "email\nx@example.com\n");
    server.put("b.csv", "");
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    std::fs::File::options().write(true).open(&a).unwrap().set_modified(when).unwrap();
    std::fs::create_dir(server.root.join("processed.csv")).unwrap();
    std::os::unix::fs::symlink(&a, server.root.join("link.csv")).unwrap();

    let mut session = source::connect(&config(&server)).await.expect("password login");
    let mut files = session.list().await.expect("list");
    files.sort_by(|x, y| x.name.cmp(&y.name));

    let seen: Vec<(&str, u64)> = files.iter().map(|f| (f.name.as_str(), f.size)).collect();
    assert_eq!(seen, [("a.csv", 20), ("b.csv", 0)], "directories and links are left out");
    assert_eq!(files[0].mtime.map(|t| t.to_rfc3339()).as_deref(), Some("2026-01-01T00:00:00+00:00"));
    assert!(files[1].mtime.is_some());
}

#[tokio::test]
async fn key_auth_with_a_passphrase_logs_in_and_reports_the_pinned_fingerprint() {
    let server = SshServer::start();
    server.put("a.csv", "email\n");
    let mut cfg = config(&server);
    cfg.password = None;
    cfg.private_key = Some(server.key_path.clone());
    cfg.key_passphrase = Some(SecretString::from(server.key_passphrase.clone()));

    let mut session = source::connect(&cfg).await.expect("key login");
    assert_eq!(session.server_fingerprint(), Some(server.host_key_fingerprint.clone()));
    assert_eq!(session.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn key_auth_with_a_wrong_passphrase_is_an_auth_failure_that_does_not_quote_it() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    cfg.password = None;
    cfg.private_key = Some(server.key_path.clone());
    cfg.key_passphrase = Some(SecretString::from("Not-The-Phrase-55".to_owned()));

    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.auth", "{err}");
    assert!(!format!("{err} {err:?}").contains("Not-The-Phrase-55"), "{err:?}");
}

#[tokio::test]
async fn a_feed_resolved_from_its_spec_logs_in_with_a_password_file() {
    let server = SshServer::start();
    let password_file = server.scratch().join("password");
    std::fs::write(&password_file, format!("{}\n", server.password)).unwrap();
    let spec = SourceSpec {
        url: server.url(),
        password_env: None,
        password_file: Some(password_file),
        private_key_file: None,
        private_key_passphrase_env: None,
        host_key: Some(server.host_key_fingerprint.clone()),
        known_hosts: None,
        tls_ca_file: None,
        tls_fingerprint: None,
        pattern: "*.csv".into(),
        connect_timeout_secs: 5,
        io_timeout_secs: 20,
    };
    let mut session = source::connect(&SourceConfig::resolve(&spec).unwrap()).await.expect("login");
    assert_eq!(session.list().await.unwrap(), []);
}

#[tokio::test]
async fn fetch_streams_a_multi_mib_file_into_the_spool_with_its_sha256() {
    let server = SshServer::start();
    // Not a multiple of any read size: the last short read must count too.
    let content = noise(5 * 1024 * 1024 + 12_345, 1);
    server.put("big.csv", &content);
    let spool = tempfile::tempdir().unwrap();
    let dest = spool.path().join("big.csv.part");
    std::fs::write(&dest, "stale content from an earlier attempt that is longer than nothing").unwrap();

    let mut session = source::connect(&config(&server)).await.unwrap();
    let fetched = session.fetch("big.csv", &dest).await.expect("fetch");

    assert_eq!(fetched.size, content.len() as u64);
    assert_eq!(fetched.sha256, sha256_hex(&content));
    assert!(std::fs::read(&dest).unwrap() == content, "the spool file holds exactly the remote bytes");
    // The session stays usable after a large transfer.
    assert_eq!(session.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn fetching_a_missing_file_is_a_remote_error_naming_it() {
    let server = SshServer::start();
    let spool = tempfile::tempdir().unwrap();
    let mut session = source::connect(&config(&server)).await.unwrap();
    let err = session.fetch("nope.csv", &spool.path().join("x")).await.unwrap_err();
    assert_eq!(err.code(), "source.remote", "{err}");
    assert!(err.to_string().contains("nope.csv"), "{err}");
}

#[tokio::test]
async fn rename_moves_into_a_subfolder_made_by_ensure_dir_then_exists_and_delete_agree() {
    let server = SshServer::start();
    server.put("a.csv", "one");
    server.put("b.csv", "two");
    let mut s = source::connect(&config(&server)).await.unwrap();

    assert!(!s.exists("processed").await.unwrap());
    s.ensure_dir("processed").await.expect("mkdir");
    s.ensure_dir("processed").await.expect("an existing folder is fine");
    assert!(server.root.join("processed").is_dir());

    s.rename("a.csv", "processed/a.csv").await.expect("rename");
    assert!(!s.exists("a.csv").await.unwrap());
    assert!(s.exists("processed/a.csv").await.unwrap());
    assert_eq!(std::fs::read_to_string(server.root.join("processed/a.csv")).unwrap(), "one");
    assert_eq!(s.list().await.unwrap().len(), 1, "only b.csv is left in the folder");

    // Never overwrite: a second file of the same name stays where it was.
    server.put("a.csv", "newer");
    let err = s.rename("a.csv", "processed/a.csv").await.unwrap_err();
    assert_eq!(err.code(), "source.remote", "{err}");
    assert_eq!(std::fs::read_to_string(server.root.join("processed/a.csv")).unwrap(), "one");

    s.delete("b.csv").await.expect("delete");
    assert!(!s.exists("b.csv").await.unwrap());
    assert!(!server.root.join("b.csv").exists());
    assert_eq!(s.delete("b.csv").await.unwrap_err().code(), "source.remote");
}

#[tokio::test]
async fn ensure_dir_refuses_a_name_taken_by_a_file() {
    let server = SshServer::start();
    server.put("processed", "a file, not a folder");
    let mut s = source::connect(&config(&server)).await.unwrap();
    let err = s.ensure_dir("processed").await.unwrap_err();
    assert_eq!(err.code(), "source.remote", "{err}");
}

#[tokio::test]
async fn a_wrong_pinned_host_key_is_refused_before_any_authentication() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    cfg.host_key = Some(wrong.into());
    // A wrong password too: had it been tried, this would be an auth error.
    cfg.password = Some(SecretString::from("Wrong-Password-12".to_owned()));

    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.host_key_mismatch", "{err}");
    let text = err.to_string();
    assert!(text.contains(wrong) && text.contains(&server.host_key_fingerprint), "{text}");
    let log = server.log();
    assert!(!log.contains("Failed password") && !log.contains("Accepted"), "no login was attempted:\n{log}");
}

#[tokio::test]
async fn without_pin_or_known_hosts_the_host_is_unknown_and_its_fingerprint_is_shown() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    cfg.host_key = None;

    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.host_key_unknown", "{err}");
    assert!(err.to_string().contains(&server.host_key_fingerprint), "{err}");
    assert!(!server.log().contains("Accepted"), "no trust on first use");
}

/// Some other host's real ed25519 key.
const OTHER_HOST_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHS1w7xxzPKjYCjoAo0cWxOFbtdx5K9dXnFstQGODt4R";

#[tokio::test]
async fn a_known_hosts_file_vouches_for_the_server() {
    let server = SshServer::start();
    let known_hosts = server.scratch().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "# written by the test\n[example.org]:22 {other}\n[127.0.0.1]:{port} {key}\n",
            other = OTHER_HOST_KEY,
            port = server.port,
            key = server.host_public_key
        ),
    )
    .unwrap();
    let mut cfg = config(&server);
    cfg.host_key = None;
    cfg.known_hosts = Some(known_hosts);

    let session = source::connect(&cfg).await.expect("known host");
    assert_eq!(session.server_fingerprint(), Some(server.host_key_fingerprint.clone()));
}

#[tokio::test]
async fn a_known_hosts_file_with_another_key_for_the_host_is_a_mismatch() {
    let server = SshServer::start();
    let known_hosts = server.scratch().join("known_hosts");
    let other = OTHER_HOST_KEY;
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {other}\n", server.port)).unwrap();
    let mut cfg = config(&server);
    cfg.host_key = None;
    cfg.known_hosts = Some(known_hosts.clone());
    assert_eq!(connect_err(&cfg).await.code(), "source.host_key_mismatch");

    // A file that knows other hosts only leaves this one unknown.
    std::fs::write(&known_hosts, format!("[127.0.0.1]:1 {other}\n")).unwrap();
    assert_eq!(connect_err(&cfg).await.code(), "source.host_key_unknown");
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_failure_that_never_shows_the_password() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    let password = "Wrong-Password-98";
    cfg.password = Some(SecretString::from(password.to_owned()));

    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.auth", "{err}");
    assert!(!err.is_transient());
    let shown = format!("{err} {err:?} {cfg:?}");
    assert!(!shown.contains(password) && !shown.contains(&server.password), "{shown}");
    assert!(err.to_string().contains(&server.user), "{err}");
}

#[tokio::test]
async fn a_missing_private_key_file_is_named_rather_than_reported_as_a_refused_login() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    cfg.password = None;
    cfg.private_key = Some(PathBuf::from("/nonexistent/dropfeed/id_ed25519"));
    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.secret", "{err}");
    assert!(err.to_string().contains("/nonexistent/dropfeed/id_ed25519"), "{err}");
}

#[tokio::test]
async fn a_closed_port_is_a_quick_transient_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = SourceConfig {
        endpoint: Endpoint::parse(&format!("sftp://nobody@127.0.0.1:{port}/drop")).unwrap(),
        password: Some(SecretString::from("x".to_owned())),
        ..config_without_server()
    };
    cfg.host_key = None;

    let started = Instant::now();
    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.connect", "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_server_that_never_greets_times_out() {
    // Accepted by the kernel's backlog, never answered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = SourceConfig {
        endpoint: Endpoint::parse(&format!("sftp://nobody@127.0.0.1:{port}/drop")).unwrap(),
        io_timeout: Duration::from_millis(500),
        ..config_without_server()
    };

    let started = Instant::now();
    let err = connect_err(&cfg).await;
    assert_eq!(err.code(), "source.timeout", "{err}");
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(listener);
}

#[tokio::test]
async fn a_server_that_stops_answering_mid_session_times_out() {
    let server = SshServer::start();
    let mut cfg = config(&server);
    cfg.io_timeout = Duration::from_secs(1);
    let mut session = source::connect(&cfg).await.unwrap();

    server.signal_sessions("STOP");
    let started = Instant::now();
    let result = session.list().await;
    let waited = started.elapsed();
    server.signal_sessions("CONT");

    let err = result.unwrap_err();
    assert_eq!(err.code(), "source.timeout", "{err}");
    assert!(err.is_transient());
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "waited {waited:?}");
}

fn config_without_server() -> SourceConfig {
    crate::helpers::password_source("sftp://nobody@127.0.0.1:1/drop", "x", Duration::from_secs(5))
}

/// Throughput against OpenSSH's own client on loopback, median of five
/// alternating rounds (the machine is shared). Not part of the normal run:
/// `cargo test --release --test it sftp_fetch_throughput -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark: run explicitly"]
async fn sftp_fetch_throughput_is_close_to_openssh() {
    let server = SshServer::start();
    let size = 150 * 1000 * 1000;
    server.put("big.csv", noise(size, 2));
    let out = tempfile::tempdir().unwrap();
    let batch = out.path().join("batch");
    std::fs::write(&batch, format!("get {}/big.csv {}\n", server.folder, out.path().join("openssh").display()))
        .unwrap();
    let mut cfg = config(&server);
    cfg.password = None;
    cfg.private_key = Some(server.plain_key_path.clone());
    // The long-distance case of bench/transfer.sh: both clients go through the proxy.
    let proxy = crate::helpers::DelayProxy::from_env(server.port, false);
    let port;
    (cfg.endpoint, port) = crate::helpers::through(&proxy, &server.url(), server.port);

    let (mut openssh, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let started = Instant::now();
        let status = std::process::Command::new("sftp")
            .args(["-q", "-b"])
            .arg(&batch)
            .arg("-i")
            .arg(&server.plain_key_path)
            .args(["-P", &port.to_string()])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .arg(format!("{}@127.0.0.1", server.user))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        openssh.push(size as f64 / 1e6 / started.elapsed().as_secs_f64());

        // Connecting counts, as it does for the `sftp` command.
        let started = Instant::now();
        let mut session = source::connect(&cfg).await.unwrap();
        let fetched = session.fetch("big.csv", &out.path().join("ours")).await.unwrap();
        ours.push(size as f64 / 1e6 / started.elapsed().as_secs_f64());
        assert_eq!(fetched.size, size as u64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (openssh, ours) = (median(&mut openssh), median(&mut ours));
    println!(
        "150 MB, median of 5: openssh sftp {openssh:.0} MB/s, dropfeed fetch {ours:.0} MB/s, ratio {:.2}",
        ours / openssh
    );
    assert!(ours / openssh >= 0.8, "fetch is more than 20% slower than openssh");
}
