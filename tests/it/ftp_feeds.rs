//! Feeds over a real vsftpd: explicit FTPS with a pinned certificate end to
//! end, and no password in a trace-level JSON log.

use std::sync::Arc;

use dropfeed::clock::SystemClock;

use crate::feeds::{PROFILE, SAMPLE};
use crate::helpers::{DelayProxy, numbered_contacts, sha256_hex, spawn_app, stderr};
use crate::servers::vsftpd::{FtpServer, Tls};

fn ftp_feed(server: &FtpServer, secret: &str, tls: &str) -> String {
    ftp_feed_at(&server.url(), secret, tls)
}

fn ftp_feed_at(url: &str, secret: &str, tls: &str) -> String {
    format!(
        "tenant: acme\nname: ftp-nightly\nsource:\n  url: {}\n  {secret}\n{tls}  pattern: \"contacts_*.csv\"\n  connect_timeout_secs: 5\n  io_timeout_secs: 10\n\
         schedule:\n  cron: \"0 0 3 * * *\"\n  timezone: Europe/Zurich\npickup:\n  min_age_secs: 0\n  stable_secs: 1\nprofile: nightly\n",
        url
    )
}

#[tokio::test]
async fn a_nightly_file_on_ftps_with_a_pinned_certificate_is_imported_and_moved() {
    let server = FtpServer::start(Tls::Explicit);
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let pw = app.write("ftp-password", &server.password);
    let yaml = ftp_feed(
        &server,
        &format!("password_file: {}", pw.display()),
        &format!("  tls_fingerprint: \"{}\"\n", server.cert_fingerprint),
    );
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    server.put("contacts_20261121.csv", "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n");

    let feed = app.feed("ftp-nightly").await;
    let report = app.daemon(Arc::new(SystemClock), "ftp").run_once(&feed, false).await.unwrap();
    assert_eq!(report.imported(), 1, "{report:?}");
    assert_eq!(app.contact_count().await, 2);
    assert!(server.root.join("processed/contacts_20261121.csv").exists());
    assert!(!server.root.join("contacts_20261121.csv").exists());
    let again = app.daemon(Arc::new(SystemClock), "ftp").run_once(&feed, false).await.unwrap();
    assert_eq!(again.imported(), 0);
}

#[tokio::test]
async fn the_ftp_password_never_reaches_the_log_even_at_trace_level() {
    let server = FtpServer::start(Tls::None);
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let out = app.apply_feed(&ftp_feed(&server, "password_env: FEED_FTP_PASSWORD", ""));
    assert!(out.status.success(), "{}", stderr(&out));
    server.put("contacts_1.csv", "email;first_name\na@x.ch;Anne\n");
    let run = |password: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dropfeed"))
            .args(["--log-format", "json", "feed", "run", "acme/ftp-nightly"])
            .env("DATABASE_URL", &app.db_url)
            .env("FEED_FTP_PASSWORD", password)
            .env("RUST_LOG", "trace")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let wrong = "Wr0ng-but-still-secret-77";
    let out = run(wrong);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("authentication failed"), "{}", &err[err.len().saturating_sub(2000)..]);
    assert!(!err.contains(wrong), "the password was logged");
    let out = run(&server.password);
    assert!(out.status.success(), "{}", &stderr(&out)[..2000.min(stderr(&out).len())]);
    assert!(!stderr(&out).contains(&server.password), "the password was logged");
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn an_ftp_download_cut_midway_is_taken_again_at_the_next_poll_and_imported_once_with_its_hash() {
    let server = FtpServer::start(Tls::None);
    // The first data connection is cut after 1 MiB from the server.
    let proxy = DelayProxy::cutting_ftp_data(server.port, 1 << 20);
    let url = server.url().replace(&format!(":{}/", server.port), &format!(":{}/", proxy.port));
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let pw = app.write("ftp-password", &server.password);
    let out = app.apply_feed(&ftp_feed_at(&url, &format!("password_file: {}", pw.display()), ""));
    assert!(out.status.success(), "{}", stderr(&out));
    let content = numbered_contacts(100_000);
    server.put("contacts_20261201.csv", &content);
    let feed = app.feed("ftp-nightly").await;

    // Cut: an error, or a short download left waiting; nothing written either way.
    let cut = app.daemon(Arc::new(SystemClock), "ftp").run_once(&feed, false).await;
    let short = |r: &dropfeed::pickup::PollReport| matches!(&r.files[..], [(_, dropfeed::pickup::FileOutcome::Waiting { reason })] if reason.contains("changed during download"));
    assert!(cut.as_ref().map_or(true, short), "{cut:?}");
    assert_eq!(
        (app.contact_count().await, app.scalar("SELECT count(*) FROM runs WHERE feed IS NOT NULL").await),
        (0, 0)
    );
    assert!(server.root.join("contacts_20261201.csv").exists(), "left on the server");

    let again = app.daemon(Arc::new(SystemClock), "ftp").run_once(&feed, false).await.unwrap();
    assert_eq!(again.imported(), 1, "{again:?}");
    assert_eq!(app.contact_count().await, 100_000);
    let sha = app.scalar_text("SELECT file_sha256 FROM runs WHERE feed IS NOT NULL").await;
    assert_eq!(sha, sha256_hex(content.as_bytes()), "the run's hash is the whole file's");
    assert!(server.root.join("processed/contacts_20261201.csv").exists());
}
