//! Feeds on local (`file://`) drop folders: registration, pickup rules,
//! at-most-once, disposal of remote files.

use std::sync::Arc;

use dropfeed::clock::SystemClock;
use dropfeed::pickup::FileOutcome;

use crate::helpers::{TestApp, spawn_app, stderr, stdout};

pub const PROFILE: &str = "columns:\n  email: email\n  first_name: first_name\nmode: upsert\nlists: [nightly]\n";
pub const SAMPLE: &str = "email;first_name\nsample@x.ch;Sam\n";

pub fn feed_yaml(name: &str, folder: &std::path::Path, extra: &str) -> String {
    format!(
        "tenant: acme\nname: {name}\nsource:\n  url: file://{}\n  pattern: \"contacts_*.csv\"\n\
         schedule:\n  cron: \"0 30 2 * * *\"\n  timezone: Europe/Zurich\n\
         pickup:\n  min_age_secs: 0\n  stable_secs: 0\nprofile: nightly\n{extra}",
        folder.display()
    )
}

/// An app with the `nightly` profile and a feed over a fresh drop folder.
pub async fn app_with_feed(extra: &str) -> (TestApp, std::path::PathBuf) {
    app_with_feed_of(PROFILE, SAMPLE, extra).await
}

/// `app_with_feed` with the `nightly` profile saved from `profile` and `sample`.
pub async fn app_with_feed_of(profile: &str, sample: &str, extra: &str) -> (TestApp, std::path::PathBuf) {
    let app = spawn_app().await;
    app.save_profile("nightly", profile, sample).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let out = app.apply_feed(&feed_yaml("nightly-contacts", &drop, extra));
    assert!(out.status.success(), "{}", stderr(&out));
    (app, drop)
}

async fn run_once(app: &TestApp) -> dropfeed::pickup::PollReport {
    let feed = app.feed("nightly-contacts").await;
    app.daemon(Arc::new(SystemClock), "test").run_once(&feed, false).await.expect("poll")
}

#[tokio::test]
async fn a_nightly_file_is_imported_moved_to_processed_and_not_taken_again() {
    let (app, drop) = app_with_feed("").await;
    std::fs::write(drop.join("contacts_20261121.csv"), "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n").unwrap();
    std::fs::write(drop.join("notes.txt"), "not a contact file").unwrap();

    let report = run_once(&app).await;
    assert_eq!(report.imported(), 1, "{report:?}");
    assert!(!drop.join("contacts_20261121.csv").exists());
    assert!(drop.join("processed/contacts_20261121.csv").exists());
    assert!(drop.join("notes.txt").exists(), "files outside the pattern are not touched");
    assert_eq!(app.contact_count().await, 2);
    assert_eq!(app.list_members("nightly").await, vec!["a@x.ch", "b@x.ch"]);
    let runs = stdout(&app.cli(&["runs", "list", "--feed", "nightly-contacts", "--format", "json"]));
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["feed"], "nightly-contacts");

    let again = run_once(&app).await;
    assert_eq!(again.imported(), 0, "{again:?}");
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE feed IS NOT NULL").await, 1);
}

#[tokio::test]
async fn the_same_content_under_another_name_is_not_imported_again() {
    let (app, drop) = app_with_feed("").await;
    let body = "email;first_name\na@x.ch;Anne\n";
    std::fs::write(drop.join("contacts_1.csv"), body).unwrap();
    assert_eq!(run_once(&app).await.imported(), 1);
    std::fs::write(drop.join("contacts_2.csv"), body).unwrap();
    let report = run_once(&app).await;
    assert!(matches!(report.files[0].1, FileOutcome::Duplicate { .. }), "{report:?}");
    assert!(drop.join("processed/contacts_2.csv").exists());
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE feed IS NOT NULL").await, 1);
}

#[tokio::test]
async fn a_file_younger_than_min_age_or_without_its_done_marker_waits_and_its_marker_follows_it() {
    let (app, drop) = app_with_feed("").await;
    let yaml = feed_yaml("nightly-contacts", &drop, "").replace("min_age_secs: 0", "min_age_secs: 3600");
    assert!(app.apply_feed(&yaml).status.success());
    std::fs::write(drop.join("contacts_1.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    let report = run_once(&app).await;
    assert!(matches!(&report.files[0].1, FileOutcome::Waiting { reason } if reason.contains("min_age")), "{report:?}");
    assert!(drop.join("contacts_1.csv").exists());

    let yaml = feed_yaml("nightly-contacts", &drop, "")
        .replace("done_marker: false", "")
        .replace("  stable_secs: 0\n", "  stable_secs: 0\n  done_marker: true\n");
    assert!(app.apply_feed(&yaml).status.success());
    let report = run_once(&app).await;
    assert!(matches!(&report.files[0].1, FileOutcome::Waiting { reason } if reason.contains(".done")), "{report:?}");
    std::fs::write(drop.join("contacts_1.csv.done"), "").unwrap();
    assert_eq!(run_once(&app).await.imported(), 1);
    // The marker goes where its file went.
    assert!(!drop.join("contacts_1.csv.done").exists());
    assert!(drop.join("processed/contacts_1.csv.done").exists());
}

#[tokio::test]
async fn a_file_still_growing_during_the_stability_window_is_left_for_the_next_poll() {
    let (app, drop) = app_with_feed("").await;
    let yaml = feed_yaml("nightly-contacts", &drop, "").replace("stable_secs: 0", "stable_secs: 2");
    assert!(app.apply_feed(&yaml).status.success());
    let path = drop.join("contacts_1.csv");
    std::fs::write(&path, "email;first_name\na@x.ch;Anne\n").unwrap();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"b@x.ch\n").unwrap();
    });
    let report = run_once(&app).await;
    writer.await.unwrap();
    assert!(matches!(&report.files[0].1, FileOutcome::Waiting { reason } if reason.contains("changing")), "{report:?}");
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn a_refused_file_goes_to_failed_with_a_failed_run() {
    let (app, drop) = app_with_feed("").await;
    std::fs::write(drop.join("contacts_1.csv"), "courriel;prenom\na@x.ch;Anne\n").unwrap();
    let report = run_once(&app).await;
    assert!(matches!(&report.files[0].1, FileOutcome::Refused { status, .. } if status == "failed"), "{report:?}");
    assert!(drop.join("failed/contacts_1.csv").exists());
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn several_files_are_imported_oldest_first_and_a_taken_name_gets_a_timestamp() {
    let (app, drop) = app_with_feed("").await;
    std::fs::create_dir_all(drop.join("processed")).unwrap();
    std::fs::write(drop.join("processed/contacts_b.csv"), "already there").unwrap();
    std::fs::write(drop.join("contacts_b.csv"), "email;first_name\na@x.ch;Second\n").unwrap();
    std::fs::write(drop.join("contacts_a.csv"), "email;first_name\na@x.ch;First\n").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options().write(true).open(drop.join("contacts_b.csv")).unwrap().set_modified(old).unwrap();
    let report = run_once(&app).await;
    assert_eq!(report.imported(), 2);
    let names: Vec<&str> = report.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["contacts_b.csv", "contacts_a.csv"], "oldest (by mtime) first");
    assert_eq!(app.contact("a@x.ch").await.unwrap()["first_name"], "First");
    let moved: Vec<String> = std::fs::read_dir(drop.join("processed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(moved.len(), 3, "{moved:?}");
    assert!(moved.iter().any(|n| n.starts_with("contacts_b_") && n.ends_with("Z.csv")), "{moved:?}");
}

#[tokio::test]
async fn feed_apply_is_idempotent_and_refuses_bad_feeds_naming_file_and_key() {
    let (app, drop) = app_with_feed("").await;
    let yaml = feed_yaml("nightly-contacts", &drop, "");
    let out = app.apply_feed(&yaml);
    assert!(stdout(&out).contains("acme/nightly-contacts: unchanged"), "{}", stdout(&out));

    for (bad, needle) in [
        (yaml.replace("profile: nightly", "profile: nightly\nunknown_key: 1"), "unknown_key"),
        (yaml.replace("0 30 2 * * *", "0 30 25 * * *"), "schedule"),
        (yaml.replace("Europe/Zurich", "Mars/Olympus"), "Mars/Olympus"),
        (yaml.replace("profile: nightly", "profile: nope"), "profile"),
        (yaml.replace("tenant: acme", "tenant: nobody"), "tenant nobody not found"),
    ] {
        let out = app.apply_feed(&bad);
        assert!(!out.status.success(), "{needle}");
        let err = stderr(&out);
        assert!(err.contains(needle) && err.contains(".yaml"), "{needle}: {err}");
    }
    let list = stdout(&app.cli(&["feed", "list"]));
    assert!(list.contains("acme/nightly-contacts") && list.contains("active"), "{list}");
    assert!(app.cli(&["feed", "pause", "acme/nightly-contacts"]).status.success());
    assert!(app.feed("nightly-contacts").await.paused);
    assert!(app.cli(&["feed", "resume", "acme/nightly-contacts"]).status.success());
    let test = stdout(&app.cli(&["feed", "test", "acme/nightly-contacts"]));
    assert!(test.contains("0 file(s) match"), "{test}");
}

#[tokio::test]
async fn feed_run_through_the_cli_imports_and_prints_what_it_did() {
    let (app, drop) = app_with_feed("").await;
    std::fs::write(drop.join("contacts_1.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    let dry = app.cli(&["feed", "run", "acme/nightly-contacts", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("dry_run"), "{}", stdout(&dry));
    assert!(drop.join("contacts_1.csv").exists(), "a dry run moves nothing");
    assert_eq!(app.contact_count().await, 0);
    let out = app.cli(&["feed", "run", "acme/nightly-contacts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported"), "{}", stdout(&out));
    assert_eq!(app.contact_count().await, 1);
}
