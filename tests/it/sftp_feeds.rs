//! Feeds over a real OpenSSH sshd: the nightly pickup end to end, a wrong
//! host key, a wrong password, and no secret in the JSON log.

use std::sync::Arc;

use dropfeed::clock::SystemClock;

use crate::feeds::{PROFILE, SAMPLE};
use crate::helpers::{CutProxy, DelayProxy, TestApp, numbered_contacts, sha256_hex, spawn_app, stderr, stdout};
use crate::servers::sshd::SshServer;

/// `secret` is the source's secret line, e.g. `password_file: /path`.
fn sftp_feed(server: &SshServer, host_key: &str, secret: &str) -> String {
    sftp_feed_at(&server.url(), host_key, secret)
}

/// The feed YAML with the server reached at `url` (through a proxy, say).
fn sftp_feed_at(url: &str, host_key: &str, secret: &str) -> String {
    format!(
        "tenant: acme\nname: sftp-nightly\nsource:\n  url: {}\n  {secret}\n  host_key: \"{host_key}\"\n  pattern: \"contacts_*.csv\"\n  connect_timeout_secs: 5\n  io_timeout_secs: 10\n\
         schedule:\n  cron: \"0 30 2 * * *\"\n  timezone: America/Montreal\npickup:\n  min_age_secs: 0\n  stable_secs: 1\nprofile: nightly\n",
        url
    )
}

async fn app_with_sftp_feed(server: &SshServer, host_key: &str, secret: Option<&str>) -> TestApp {
    app_with_sftp_feed_at(server, &server.url(), host_key, secret).await
}

async fn app_with_sftp_feed_at(server: &SshServer, url: &str, host_key: &str, secret: Option<&str>) -> TestApp {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let secret = match secret {
        Some(line) => line.to_owned(),
        None => {
            let pw = app.write("sftp-password", &server.password);
            format!("password_file: {}", pw.display())
        }
    };
    let out = app.apply_feed(&sftp_feed_at(url, host_key, &secret));
    assert!(out.status.success(), "{}", stderr(&out));
    app
}

#[tokio::test]
async fn a_nightly_file_on_sftp_is_imported_and_moved_to_processed_on_the_server() {
    let server = SshServer::start();
    let app = app_with_sftp_feed(&server, &server.host_key_fingerprint, None).await;
    server.put("contacts_20261121.csv", "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n");

    let feed = app.feed("sftp-nightly").await;
    let report = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert_eq!(report.imported(), 1, "{report:?}");
    assert_eq!(app.contact_count().await, 2);
    assert!(!server.root.join("contacts_20261121.csv").exists());
    assert!(server.root.join("processed/contacts_20261121.csv").exists());

    let again = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert_eq!(again.imported(), 0);
    server.put("contacts_20261122.csv", "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n");
    let dup = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert!(matches!(dup.files[0].1, dropfeed::pickup::FileOutcome::Duplicate { .. }), "{dup:?}");
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE feed = 'sftp-nightly'").await, 1);
}

#[tokio::test]
async fn an_xlsx_and_a_zipped_csv_dropped_on_sftp_are_imported_as_their_sheet_and_their_csv() {
    let server = SshServer::start();
    let app = spawn_app().await;
    app.save_profile("nightly", "columns:\n  email: email\n", "email\ns@x.ch\n").await;
    let pw = app.write("sftp-password", &server.password);
    let yaml = sftp_feed(&server, &server.host_key_fingerprint, &format!("password_file: {}", pw.display()))
        .replace("contacts_*.csv", "contacts_*");
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    server.put("contacts_20261121.xlsx", crate::workbooks::numbered_xlsx(3));
    server.put("contacts_20261122.zip", crate::workbooks::zipped(&[("export.csv", b"email\nz1@x.ch\nz2@x.ch\n")]));

    let feed = app.feed("sftp-nightly").await;
    let report = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert_eq!(report.imported(), 2, "{report:?}");
    assert_eq!(app.contact_count().await, 5);
    assert!(app.contact("p3@x.ch").await.is_some() && app.contact("z2@x.ch").await.is_some());
    assert!(server.root.join("processed/contacts_20261121.xlsx").exists());
    assert!(server.root.join("processed/contacts_20261122.zip").exists());
    let names: Vec<String> = sqlx::query_scalar("SELECT file_name FROM runs WHERE feed IS NOT NULL ORDER BY file_name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(names, vec!["contacts_20261121.xlsx", "contacts_20261122.zip"], "runs keep the dropped names");
}

#[tokio::test]
async fn a_wrong_host_key_is_refused_and_the_file_is_left_alone() {
    let server = SshServer::start();
    let app = app_with_sftp_feed(&server, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", None).await;
    server.put("contacts_1.csv", "email;first_name\na@x.ch;Anne\n");
    let out = app.cli(&["feed", "run", "acme/sftp-nightly"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does not match") && err.contains(&server.host_key_fingerprint), "{err}");
    assert!(server.root.join("contacts_1.csv").exists());
    assert_eq!(app.contact_count().await, 0);
    // Support reads the real fingerprint from `feed test` on the YAML file.
    let pw = app.write("pw", &server.password);
    let feed = sftp_feed(&server, "x", &format!("password_file: {}", pw.display()));
    let unpinned = app.write("unpinned.yaml", feed.replace("  host_key: \"x\"\n", ""));
    let out = app.cli(&["feed", "test", unpinned.to_str().unwrap()]);
    assert!(stderr(&out).contains(&server.host_key_fingerprint), "{}", stderr(&out));
}

#[tokio::test]
async fn a_wrong_password_fails_clearly_and_no_secret_reaches_the_json_log() {
    let server = SshServer::start();
    let secret = "Zq8-very-secret-pw-1234";
    let app =
        app_with_sftp_feed(&server, &server.host_key_fingerprint, Some("password_env: DROPFEED_TEST_SFTP_PW_3")).await;
    server.put("contacts_1.csv", "email;first_name\na@x.ch;Anne\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--log-format", "json", "feed", "run", "acme/sftp-nightly"])
        .env("DATABASE_URL", &app.db_url)
        .env("DROPFEED_TEST_SFTP_PW_3", secret)
        .env("RUST_LOG", "debug")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("authentication failed for user"), "{err}");
    let log_lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!log_lines.is_empty(), "json log lines on stderr: {err}");
    for line in &log_lines {
        serde_json::from_str::<serde_json::Value>(line).expect("each log line is JSON");
    }
    let key = std::fs::read_to_string(&server.key_path).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    for leaked in [secret, server.key_passphrase.as_str(), key_body] {
        assert!(!err.contains(leaked) && !stdout(&out).contains(leaked), "a secret leaked into the output");
    }
    let feed = app.feed("sftp-nightly").await;
    assert!(!feed.last_error.unwrap_or_default().contains(secret));
}

#[tokio::test]
async fn a_download_cut_midway_is_taken_again_at_the_next_poll_and_imported_once_with_its_hash() {
    let server = SshServer::start();
    // The first connection is cut after 1 MiB from the server, as a flaky link would.
    let proxy = CutProxy::start(server.port, 1 << 20, 1);
    let url = server.url().replace(&format!(":{}/", server.port), &format!(":{}/", proxy.port));
    let app = app_with_sftp_feed_at(&server, &url, &server.host_key_fingerprint, None).await;
    let content = numbered_contacts(100_000);
    server.put("contacts_20261201.csv", &content);
    let feed = app.feed("sftp-nightly").await;

    let cut = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await;
    assert!(cut.is_err(), "{cut:?}");
    assert_eq!(proxy.cut(), 1, "{cut:?}");
    assert_eq!(
        (app.contact_count().await, app.scalar("SELECT count(*) FROM runs WHERE feed IS NOT NULL").await),
        (0, 0)
    );
    assert!(server.root.join("contacts_20261201.csv").exists(), "left on the server");
    let spool: Vec<_> = std::fs::read_dir(app.dir.path().join("spool")).unwrap().collect();
    assert!(spool.is_empty(), "the partial download is removed");

    let again = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert_eq!(again.imported(), 1, "{again:?}");
    assert_eq!(app.contact_count().await, 100_000);
    let sha = app.scalar_text("SELECT file_sha256 FROM runs WHERE feed IS NOT NULL").await;
    assert_eq!(sha, sha256_hex(content.as_bytes()), "the run's hash is the whole file's");
    assert_eq!(app.scalar("SELECT count(*) FROM processed_files").await, 1);
    assert!(server.root.join("processed/contacts_20261201.csv").exists());
}

#[tokio::test]
async fn a_file_uploaded_slowly_over_sftp_is_taken_only_once_complete() {
    let server = SshServer::start();
    let app = app_with_sftp_feed(&server, &server.host_key_fingerprint, None).await;
    let path = server.put("contacts_20261201.csv", "email;first_name\n");
    // About 8 KB/s for 3 s, as a customer's slow link would upload it.
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        for batch in 0..12 {
            let lines: String = (0..100).map(|i| format!("p{batch}-{i}@x.ch;Anne\n")).collect();
            f.write_all(lines.as_bytes()).unwrap();
            f.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        std::time::Instant::now()
    });
    let feed = app.feed("sftp-nightly").await;
    let mut waited = 0;
    let imported_at = loop {
        let report = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
        if report.imported() == 1 {
            break std::time::Instant::now();
        }
        waited += 1;
        assert!(waited < 30, "never imported: {report:?}");
    };
    let finished = writer.join().unwrap();
    assert!(waited > 0, "taken at the first poll, while it was still growing");
    assert!(imported_at >= finished, "imported before the upload ended");
    assert_eq!(app.contact_count().await, 1200, "the whole file, not a prefix");
}

#[tokio::test]
async fn a_file_replaced_while_it_downloads_is_left_for_the_next_poll() {
    let server = SshServer::start();
    // 50 ms each way: the download of 8 MB takes long enough to replace the file under it.
    let proxy = DelayProxy::start(server.port, 50.0, false);
    let url = server.url().replace(&format!(":{}/", server.port), &format!(":{}/", proxy.port));
    let app = app_with_sftp_feed_at(&server, &url, &server.host_key_fingerprint, None).await;
    let version = |name: &str| -> String {
        std::iter::once("email;first_name\n".to_owned())
            .chain((0..300_000).map(|i| format!("p{i:06}@x.ch;{name}\n")))
            .collect()
    };
    let (first, second) = (version("Anne"), version("Lena"));
    assert_eq!(first.len(), second.len());
    let path = server.put("contacts_20261201.csv", &first);
    let spool = app.dir.path().join("spool");
    // As soon as the download starts, the customer's upload replaces the file:
    // same size, another modification time.
    let replacer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        // The download is a `.part` file in the poll's own sub-folder of the spool.
        let downloading = |dir: &std::path::Path| {
            std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
                let p = e.path();
                let part = |p: &std::path::Path| p.extension().is_some_and(|x| x == "part");
                part(&p) || std::fs::read_dir(&p).into_iter().flatten().flatten().any(|f| part(&f.path()))
            })
        };
        while !downloading(&spool) {
            assert!(std::time::Instant::now() < deadline, "the download never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let tmp = path.with_extension("upload");
        std::fs::write(&tmp, &second).unwrap();
        let other = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&tmp).unwrap().set_modified(other).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    });
    let feed = app.feed("sftp-nightly").await;
    let report = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    replacer.join().unwrap();
    assert!(
        matches!(&report.files[..], [(_, dropfeed::pickup::FileOutcome::Waiting { reason })] if reason.contains("changed during download")),
        "{report:?}"
    );
    assert_eq!(app.contact_count().await, 0);

    let again = app.daemon(Arc::new(SystemClock), "sftp").run_once(&feed, false).await.unwrap();
    assert_eq!(again.imported(), 1, "{again:?}");
    assert_eq!(app.contact("p000001@x.ch").await.unwrap()["first_name"], "Lena", "the new version, whole");
}

/// With one connection allowed per server, a feed whose import waits (its
/// tenant's lock is held here) has closed its session and given its slot
/// back: another tenant's feed on the same server is polled and imported
/// meanwhile, and the waiting file is moved once its import commits.
#[tokio::test]
async fn a_feed_on_the_same_server_is_imported_while_another_feeds_import_waits_with_one_connection_allowed() {
    let server = SshServer::start();
    let app = app_with_sftp_feed(&server, &server.host_key_fingerprint, None).await;
    assert!(app.cli(&["tenant", "add", "globex", "--name", "Globex"]).status.success());
    let (sample, mapping) = (app.write("globex.csv", SAMPLE), app.write("globex.yaml", PROFILE));
    let out = app.cli(&[
        "import",
        "globex",
        sample.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--save-profile",
        "nightly",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pw = app.write("sftp-password-globex", &server.password);
    let yaml = sftp_feed(&server, &server.host_key_fingerprint, &format!("password_file: {}", pw.display()))
        .replace("tenant: acme", "tenant: globex")
        .replace("contacts_*.csv", "globex_*.csv");
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    server.put("contacts_1.csv", "email;first_name\na@x.ch;Anne\n");
    server.put("globex_1.csv", "email;first_name\ng@x.ch;Gina\n");
    let acme = app.feed("sftp-nightly").await;
    let globex = dropfeed::store::feeds::find(&app.pool, "globex", "sftp-nightly").await.unwrap().expect("feed");
    let mut daemon = app.daemon(Arc::new(SystemClock), "sftp");
    daemon.servers = Arc::new(dropfeed::pickup::ServerLimits::new(1));

    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(1, $1::int)")
        .bind(app.tenant.id as i32)
        .execute(&mut *lock)
        .await
        .unwrap();
    let globex_meanwhile = async {
        // acme's poll has fetched its file and its import waits for the lock.
        while app
            .scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .await
            == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let report = tokio::time::timeout(std::time::Duration::from_secs(30), daemon.run_once(&globex, false))
            .await
            .expect("globex's poll waited for the slot of acme's import")
            .unwrap();
        assert_eq!(report.imported(), 1, "{report:?}");
        assert!(server.root.join("processed/globex_1.csv").exists());
        assert!(server.root.join("contacts_1.csv").exists(), "acme's file waits for its import");
        lock.commit().await.unwrap();
    };
    let (acme_report, ()) = tokio::join!(daemon.run_once(&acme, false), globex_meanwhile);
    assert_eq!(acme_report.unwrap().imported(), 1);
    assert!(server.root.join("processed/contacts_1.csv").exists(), "moved after the commit, on a new session");
    assert_eq!(app.contact_count().await, 3, "globex's sample and Gina, acme's Anne");
}
