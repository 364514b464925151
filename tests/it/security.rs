//! Tenant isolation, and secrets: no password reaches a log line (at trace
//! level), an error, a run, a report or alert, `feed show` or `/metrics`.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use dropfeed::domain::{ReportLanguage, TenantSlug};
use dropfeed::store::tenants;

use crate::feeds::{PROFILE, SAMPLE};
use crate::helpers::{TestApp, sigterm, spawn_app, stderr, stdout};
use crate::servers::smtp::SmtpServer;
use crate::servers::sshd::SshServer;

const WRONG_PASSWORD: &str = "Wr0ng-sftp-secret-9f3a";
const SMTP_PASSWORD: &str = "Smtp-secret-77c1e";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn start(app: &TestApp, config: &std::path::Path, sftp_password: &str, log: &str) -> Child {
    let log = std::fs::File::create(app.dir.path().join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--config", config.to_str().unwrap(), "--log-format", "json", "run"])
        .env_remove("DATABASE_URL")
        .env("DROPFEED_TEST_SECRET_SFTP_PW", sftp_password)
        .env("DROPFEED_TEST_SECRET_SMTP_PW", SMTP_PASSWORD)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_for(app: &TestApp, sql: &'static str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.scalar(sql).await == 0 {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_runs_reports_feed_show_or_metrics() {
    let server = SshServer::start();
    let smtp = SmtpServer::start();
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let feed = format!(
        "tenant: acme\nname: sftp-nightly\nsource:\n  url: {}\n  password_env: DROPFEED_TEST_SECRET_SFTP_PW\n  \
         host_key: \"{}\"\n  pattern: \"contacts_*.csv\"\n  connect_timeout_secs: 5\n\
         schedule:\n  cron: \"* * * * * *\"\n  timezone: Europe/Zurich\npickup:\n  min_age_secs: 0\n  stable_secs: 0\n\
         profile: nightly\nreport:\n  to: [crm@acme.example]\n  on: [success, warnings, failure]\n",
        server.url(),
        server.host_key_fingerprint
    );
    let out = app.apply_feed(&feed);
    assert!(out.status.success(), "{}", stderr(&out));
    server.put("contacts_20261201.csv", "email;first_name\na@x.ch;Anne\nbad;Bob\n");
    let port = free_port();
    let config = app.write(
        "dropfeed.yaml",
        format!(
            "database_url: {}\nspool_dir: {}\nworkers: 1\nhttp:\n  bind: 127.0.0.1:{port}\n\
             smtp:\n  host: 127.0.0.1\n  port: {}\n  security: none\n  username: dropfeed\n  \
             password_env: DROPFEED_TEST_SECRET_SMTP_PW\n  from: \"dropfeed <noreply@example.com>\"\n\
             scheduler:\n  tick_ms: 100\n  retry_after_secs: 1\n  connect_attempts: 1\n",
            app.db_url,
            app.dir.path().join("spool").display(),
            smtp.port
        ),
    );

    // A wrong password first: the poll fails and is alerted.
    let mut daemon = start(&app, &config, WRONG_PASSWORD, "wrong.log");
    wait_for(&app, "SELECT count(*) FROM feeds WHERE last_error IS NOT NULL", "the failed poll").await;
    wait_for(&app, "SELECT count(*) FROM notifications WHERE kind = 'alert' AND attempts > 0", "the alert").await;
    let mut seen = vec![http_get(port, "/metrics")];
    sigterm(&mut daemon);
    // Then the right one: the file is imported and reported.
    let mut daemon = start(&app, &config, &server.password, "right.log");
    wait_for(&app, "SELECT count(*) FROM runs WHERE feed IS NOT NULL", "the import").await;
    wait_for(&app, "SELECT count(*) FROM notifications WHERE kind = 'report' AND attempts > 0", "the report").await;
    seen.push(http_get(port, "/metrics"));
    sigterm(&mut daemon);

    for log in ["wrong.log", "right.log"] {
        let text = std::fs::read_to_string(app.dir.path().join(log)).unwrap();
        assert!(text.lines().count() > 10, "{log}: the daemon logged at trace level");
        seen.push(text);
    }
    for args in [&["feed", "show", "acme/sftp-nightly"][..], &["feed", "list"], &["runs", "list", "--format", "json"]] {
        let out = app.cli(args);
        seen.push(format!("{}{}", stdout(&out), stderr(&out)));
    }
    let runs: Vec<String> = sqlx::query_scalar("SELECT id::text FROM runs").fetch_all(&app.pool).await.unwrap();
    for id in &runs {
        let out = app.cli(&["runs", "show", id, "--format", "json"]);
        seen.push(format!("{}{}", stdout(&out), stderr(&out)));
    }
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', subject, body_text, body_html, last_error) FROM notifications
         UNION ALL SELECT concat_ws(' ', spec::text, last_error) FROM feeds
         UNION ALL SELECT concat_ws(' ', error, options::text) FROM runs",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    seen.extend(stored);
    seen.extend(smtp.messages().iter().map(|m| m.text()));

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secrets = [
        WRONG_PASSWORD.to_owned(),
        server.password.clone(),
        SMTP_PASSWORD.to_owned(),
        // The SMTP dialogue sends them encoded (AUTH PLAIN, AUTH LOGIN).
        b64(&format!("\0dropfeed\0{SMTP_PASSWORD}")),
        b64(SMTP_PASSWORD),
    ];
    for text in &seen {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret leaked into:\n{}", &text[..text.len().min(2000)]);
        }
    }
}

#[tokio::test]
async fn a_tenants_feeds_and_imports_never_read_or_write_another_tenants_data() {
    let app = spawn_app().await;
    let beta = tenants::add(
        &app.pool,
        tenants::NewTenant {
            slug: TenantSlug::parse("beta").unwrap(),
            name: "Beta".into(),
            timezone: "Europe/Zurich".into(),
            language: ReportLanguage::Fr,
            extra_languages: vec![],
            report_to: vec![],
        },
    )
    .await
    .unwrap();
    // Beta's contact, list and profile.
    let b = app.write("beta.csv", "email;first_name\nshared@x.ch;Bea\nonly-beta@x.ch;Ben\n");
    let out = app.cli(&["import", "beta", b.to_str().unwrap(), "--list", "vip", "--save-profile", "nightly"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Acme's feed naming Beta's profile is refused: profiles are per tenant.
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let out = app.apply_feed(&crate::feeds::feed_yaml("nightly-contacts", &drop, ""));
    assert!(!out.status.success(), "a feed of acme replayed beta's profile");
    assert!(stderr(&out).contains("nightly"), "{}", stderr(&out));

    // Acme imports the same address into a list of the same name.
    let a = app.write("acme.csv", "email;first_name\nshared@x.ch;Ann\n");
    let out = app.cli(&["import", "acme", a.to_str().unwrap(), "--list", "vip"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.slug, c.email, c.first_name FROM contacts c JOIN tenants t ON t.id = c.tenant_id ORDER BY 1, 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let rows: Vec<(&str, &str, &str)> = rows.iter().map(|(t, e, f)| (t.as_str(), e.as_str(), f.as_str())).collect();
    assert_eq!(
        rows,
        vec![("acme", "shared@x.ch", "Ann"), ("beta", "only-beta@x.ch", "Ben"), ("beta", "shared@x.ch", "Bea")]
    );
    // Each tenant's list holds its own contacts only.
    let members: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT lt.slug, ct.slug, c.email FROM list_members m JOIN lists l ON l.id = m.list_id
         JOIN tenants lt ON lt.id = l.tenant_id JOIN contacts c ON c.id = m.contact_id
         JOIN tenants ct ON ct.id = c.tenant_id ORDER BY 1, 3",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(members.iter().all(|(list, contact, _)| list == contact), "{members:?}");
    assert_eq!(members.len(), 3);
    // Acme's export holds acme's contacts only.
    let export = stdout(&app.cli(&["contacts", "export", "acme"]));
    assert!(export.contains("shared@x.ch") && !export.contains("only-beta") && !export.contains("Bea"), "{export}");
    assert_eq!(beta.slug.as_str(), "beta");
}
