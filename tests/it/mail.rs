//! Completion reports and alerts delivered to a real SMTP listener.

use std::sync::Arc;

use dropfeed::clock::SystemClock;
use dropfeed::mail::Mailer;

use crate::feeds::app_with_feed;
use crate::helpers::{spawn_app, stderr, stdout};
use crate::servers::smtp::{SmtpServer, config_for};

fn mailer_for(port: u16) -> Mailer {
    let s = dropfeed::configuration::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: Some("none".into()),
        username: None,
        password_env: None,
        from: "dropfeed <noreply@example.com>".into(),
    };
    Mailer::from_settings(&s).unwrap()
}

#[tokio::test]
async fn a_rejects_file_over_the_attachment_limit_is_named_in_the_mail_not_attached_and_runs_rejects_prints_it() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start();
    let config = app.write("dropfeed.yaml", format!("{}report:\n  max_attachment_bytes: 2000\n", smtp.config_yaml()));
    // 100 rejected lines of about 60 bytes: 6 KB, over the 2 KB limit.
    let mut csv = String::from("email;first_name\n");
    for i in 0..100 {
        csv.push_str(&format!("not-an-address-{i};Anne\n"));
    }
    csv.push_str("ok@x.ch;Anne\n");
    let file = app.write("big_rejects.csv", csv);
    let args = ["--config", config.to_str().unwrap(), "import", "acme", file.to_str().unwrap()];
    let out = app.cli(&[&args[..], &["--report-to", "crm@acme.example", "--format", "json"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = report["run_id"].as_str().unwrap().to_owned();

    let mails = smtp.wait_for(1);
    let m = &mails[0];
    assert!(m.attachments().is_empty(), "a partial rejects file would be fixed and dropped as if whole");
    let text = m.text();
    assert!(
        text.contains("100 lignes rejetées") && text.contains(&format!("dropfeed runs rejects {run_id}")),
        "{text}"
    );

    // Support prints the whole file: the header, then every rejected line.
    let out = app.cli(&["runs", "rejects", &run_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rejects = stdout(&out);
    let mut lines = rejects.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next(), Some("email;first_name;ligne;motif"));
    assert_eq!(lines.clone().count(), 100);
    assert!(lines.next().unwrap().starts_with("not-an-address-0;Anne;2;"), "{rejects}");
}

#[tokio::test]
async fn a_manual_import_mails_the_report_with_the_rejected_lines_attached() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start();
    let config = app.write("dropfeed.yaml", smtp.config_yaml());
    let file = app.write(
        "contacts_20261121.csv",
        "email;civility;first_name;phone\na@x.ch;MR;Anne;+41 79 555 01 00\nbad-address;MR;=HYPERLINK(\"http://evil\");+41 1\nc@x.ch;<b>DR</b>;Chloé;\n",
    );
    let out = app.cli(&[
        "--config",
        config.to_str().unwrap(),
        "import",
        "acme",
        file.to_str().unwrap(),
        "--report-to",
        "crm@acme.example",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deliveries"][0]["status"], "sent", "{report}");

    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to(), vec!["crm@acme.example"]);
    let subject = m.subject();
    assert!(
        subject.contains("acme") && subject.contains("contacts_20261121.csv") && subject.contains("2 rejetés"),
        "{subject}"
    );
    let text = m.text();
    assert!(text.contains("SHA-256") && text.contains("civility.unknown — 1 ligne(s)"), "{text}");
    assert!(text.contains("ligne 4, civility, « <b>DR</b> »"), "{text}");
    assert!(m.html().contains("&lt;b&gt;DR&lt;/b&gt;"), "values are escaped in HTML");
    let attachments = m.attachments();
    assert_eq!(attachments.len(), 1);
    let (name, bytes) = &attachments[0];
    assert_eq!(name, "rejets-contacts_20261121.csv");
    let csv = String::from_utf8(bytes.clone()).unwrap();
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next(), Some("email;civility;first_name;phone;ligne;motif"));
    let first = lines.next().unwrap();
    assert!(first.starts_with("bad-address;MR;\"'=HYPERLINK(\"\"http://evil\"\")\";'+41 1;3;"), "{first}");
    assert!(lines.next().unwrap().starts_with("c@x.ch;<b>DR</b>;Chloé;;4;Civilité inconnue"));

    // The customer fixes the rejects file and drops it again: it imports cleanly.
    // A formula is no name (cell.formula): it is replaced too.
    let fixed = csv
        .replace("bad-address", "b@x.ch")
        .replace("<b>DR</b>", "MRS")
        .replace("\"'=HYPERLINK(\"\"http://evil\"\")\"", "Bea");
    let fixed_path = app.write("fixed.csv", fixed);
    let again = app.cli(&["import", "acme", fixed_path.to_str().unwrap(), "--format", "json"]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["counts"]["rejected"], 0, "{again}");
    assert_eq!(app.contact("b@x.ch").await.unwrap()["first_name"], "Bea");
}

#[tokio::test]
async fn a_report_that_cannot_be_sent_is_kept_and_retried_and_the_import_still_succeeds() {
    let app = spawn_app().await;
    let port = SmtpServer::reserve_port();
    let config = app.write("dropfeed.yaml", config_for(port));
    let file = app.write("f.csv", "email\na@x.ch\n");
    let out = app.cli(&[
        "--config",
        config.to_str().unwrap(),
        "import",
        "acme",
        file.to_str().unwrap(),
        "--report-to",
        "crm@acme.example",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(app.contact_count().await, 1);
    let run_id = app.scalar_text("SELECT id::text FROM runs").await;
    let shown = stdout(&app.cli(&["runs", "show", &run_id]));
    assert!(shown.contains("report to crm@acme.example: pending") && shown.contains("attempt 1"), "{shown}");

    let smtp = SmtpServer::start_on(port);
    let later = chrono::Utc::now() + chrono::Duration::minutes(2);
    let d = dropfeed::notify::deliver_due(&app.pool, &mailer_for(port), later, 10, None).await.unwrap();
    assert_eq!(d.sent, 1);
    assert_eq!(smtp.wait_for(1).len(), 1);
    let shown = stdout(&app.cli(&["runs", "show", &run_id]));
    assert!(shown.contains("report to crm@acme.example: sent"), "{shown}");
}

#[tokio::test]
async fn a_bad_smtp_configuration_is_refused_when_the_daemon_starts() {
    let app = spawn_app().await;
    let config = app.write(
        "bad.yaml",
        "smtp:\n  host: 127.0.0.1\n  port: 25\n  security: ssl3\n  from: \"x <noreply@example.com>\"\n",
    );
    let out = app.cli(&["--config", config.to_str().unwrap(), "run"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("security \"ssl3\""), "{}", stderr(&out));
    let config = app.write("bad2.yaml", "smtp:\n  host: 127.0.0.1\n  from: \"not an address\"\n");
    let out = app.cli(&["--config", config.to_str().unwrap(), "run"]);
    assert!(stderr(&out).contains("not an address"), "{}", stderr(&out));
}

#[tokio::test]
async fn feed_reports_follow_report_on_and_a_missing_file_is_alerted_once_a_day() {
    let (app, drop) = app_with_feed(
        "expect_file_by: \"04:00\"\nreport:\n  to: [crm@acme.example]\n  on: [failure, missing]\n  language: en\n",
    )
    .await;
    let smtp = SmtpServer::start();
    let mut daemon = app.daemon(Arc::new(SystemClock), "mailer");
    daemon.mailer = Some(mailer_for(smtp.port));
    let feed = app.feed("nightly-contacts").await;

    std::fs::write(drop.join("contacts_1.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    daemon.run_once(&feed, false).await.unwrap();
    std::fs::write(drop.join("contacts_2.csv"), "courriel;prenom\nb@x.ch;Bob\n").unwrap();
    daemon.run_once(&feed, false).await.unwrap();
    daemon.deliver_mail().await;
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "success is not in report.on, failure is");
    assert!(mails[0].subject().contains("nightly-contacts: failed"), "{}", mails[0].subject());

    // Next day, 05:00 in Zurich, nothing has arrived.
    let now = chrono::Utc::now() + chrono::Duration::days(1);
    let zurich: chrono_tz::Tz = "Europe/Zurich".parse().unwrap();
    let local = now.with_timezone(&zurich).date_naive().and_hms_opt(5, 0, 0).unwrap();
    let at = local.and_local_timezone(zurich).unwrap().with_timezone(&chrono::Utc);
    assert_eq!(dropfeed::notify::check_missing(&app.pool, at).await.unwrap(), 1);
    assert_eq!(dropfeed::notify::check_missing(&app.pool, at + chrono::Duration::minutes(30)).await.unwrap(), 0);
    dropfeed::notify::deliver_due(&app.pool, daemon.mailer.as_ref().unwrap(), at, 10, None).await.unwrap();
    let mails = smtp.wait_for(2);
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.subject().contains("no file received")));
}

#[tokio::test]
async fn an_unreachable_drop_folder_is_alerted_once_however_many_polls_fail() {
    let (app, drop) = app_with_feed("report:\n  to: [ops@acme.example]\n  on: [failure]\n").await;
    std::fs::remove_dir_all(&drop).unwrap();
    let smtp = SmtpServer::start();
    let mut daemon = app.daemon(Arc::new(SystemClock), "alerts");
    daemon.mailer = Some(mailer_for(smtp.port));
    let permits = Arc::new(tokio::sync::Semaphore::new(1));
    for _ in 0..3 {
        sqlx::query("UPDATE feeds SET next_run_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        daemon.tick(&permits, &tracker, &tokio_util::sync::CancellationToken::new()).await.unwrap();
        tracker.close();
        tracker.wait().await;
    }
    let feed = app.feed("nightly-contacts").await;
    assert_eq!(feed.last_status.as_deref(), Some("source.connect"));
    assert!(feed.next_run_at < chrono::Utc::now() + chrono::Duration::minutes(6), "retried soon, not tomorrow");
    daemon.deliver_mail().await;
    let mails = smtp.wait_for(1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(smtp.messages().len(), 1, "one alert for three failed polls");
    let text = mails[0].text();
    assert!(mails[0].subject().contains("échec de la récupération"), "{}", mails[0].subject());
    assert!(text.contains("source.connect") && text.contains("outbox"), "{text}");
}

#[tokio::test]
async fn a_held_night_is_reported_to_the_failure_recipients_with_why_and_how_to_release_it() {
    let (app, drop) =
        app_with_feed("max_row_drop_ratio: 0.4\nreport:\n  to: [crm@acme.example]\n  on: [failure]\n  language: en\n")
            .await;
    let smtp = SmtpServer::start();
    let mut daemon = app.daemon(Arc::new(SystemClock), "mailer");
    daemon.mailer = Some(mailer_for(smtp.port));
    let feed = app.feed("nightly-contacts").await;
    std::fs::write(drop.join("contacts_1.csv"), crate::helpers::numbered_contacts(10)).unwrap();
    daemon.run_once(&feed, false).await.unwrap();
    std::fs::write(drop.join("contacts_2.csv"), crate::helpers::numbered_contacts(3)).unwrap();
    daemon.run_once(&feed, false).await.unwrap();
    daemon.deliver_mail().await;
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "the first night succeeded and success is not in report.on");
    assert!(mails[0].subject().contains("held"), "{}", mails[0].subject());
    let text = mails[0].text();
    assert!(text.contains("guard.row_drop") && text.contains("3 / 10"), "{text}");
    assert!(text.contains("dropfeed runs release"), "{text}");
}

#[tokio::test]
async fn with_a_public_url_the_report_links_its_run_and_a_large_rejects_file_is_a_download_link() {
    let app = spawn_app().await;
    let smtp = SmtpServer::start();
    let config = app.write(
        "dropfeed.yaml",
        format!(
            "{}report:\n  max_attachment_bytes: 2000\nconsole:\n  public_url: https://imports.example.com/\n",
            smtp.config_yaml()
        ),
    );
    let mut csv = String::from("email;first_name\n");
    for i in 0..100 {
        csv.push_str(&format!("not-an-address-{i};Anne\n"));
    }
    let file = app.write("big_rejects.csv", csv);
    let args = ["--config", config.to_str().unwrap(), "import", "acme", file.to_str().unwrap()];
    let out = app.cli(&[&args[..], &["--report-to", "crm@acme.example", "--format", "json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = report["run_id"].as_str().unwrap().to_owned();

    let mails = smtp.wait_for(1);
    let m = &mails[0];
    assert!(m.attachments().is_empty());
    let text = m.text();
    assert!(text.contains(&format!("https://imports.example.com/runs/{run_id}")), "{text}");
    let download = format!("https://imports.example.com/api/v1/runs/{run_id}/rejects.csv");
    assert!(text.contains(&download), "{text}");
    assert!(m.html().contains(&format!("<a href=\"{download}\">")), "{}", m.html());
}
