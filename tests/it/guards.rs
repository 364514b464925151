//! Guards against a bad night: a feed file with far fewer rows than usual,
//! or withdrawing many consents, is held; `runs release` imports it once a
//! person has looked; `runs replay` re-imports an archived file.

use std::sync::Arc;

use dropfeed::clock::SystemClock;
use dropfeed::pickup::FileOutcome;

use crate::feeds::{app_with_feed_of, feed_yaml};
use crate::helpers::{TestApp, spawn_app, stderr, stdout};

const PROFILE: &str =
    "columns:\n  email: email\n  first_name: first_name\n  news: consent.newsletter\nlists: [nightly]\n";

fn night(n: usize, unsubscribed: usize) -> String {
    let mut s = "email;first_name;news\n".to_owned();
    for i in 0..n {
        s.push_str(&format!("p{i}@x.ch;Anne;{}\n", if i < unsubscribed { "FALSE" } else { "TRUE" }));
    }
    s
}

async fn app_with_guarded_feed(guards: &str) -> (TestApp, std::path::PathBuf) {
    app_with_feed_of(PROFILE, "email;first_name;news\ns@x.ch;Sam;TRUE\n", guards).await
}

async fn poll(app: &TestApp) -> dropfeed::pickup::PollReport {
    let feed = app.feed("nightly-contacts").await;
    app.daemon(Arc::new(SystemClock), "test").run_once(&feed, false).await.expect("poll")
}

fn held_run(report: &dropfeed::pickup::PollReport) -> uuid::Uuid {
    match &report.files[..] {
        [(_, FileOutcome::Held { run_id })] => *run_id,
        other => panic!("expected one held file: {other:?}"),
    }
}

#[tokio::test]
async fn a_night_with_30_percent_of_the_usual_rows_is_held_and_released_by_a_person() {
    let (app, drop) = app_with_guarded_feed("max_row_drop_ratio: 0.4\n").await;
    std::fs::write(drop.join("contacts_1.csv"), night(100, 0)).unwrap();
    assert_eq!(poll(&app).await.imported(), 1);

    std::fs::write(drop.join("contacts_2.csv"), night(30, 0).replace("Anne", "Zoé")).unwrap();
    let run_id = held_run(&poll(&app).await);
    let shown = app.cli(&["runs", "show", &run_id.to_string(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(report["status"], "held");
    assert_eq!(report["by_code"]["guard.row_drop"], 1);
    assert!(report["error"].as_str().unwrap().contains("30 / 100"), "{report}");
    assert_eq!(app.scalar("SELECT count(*) FROM contacts WHERE first_name = 'Zoé'").await, 0, "nothing written");
    assert!(drop.join("failed/contacts_2.csv").exists(), "a held file leaves the drop folder");
    assert_eq!(app.feed("nightly-contacts").await.last_status.as_deref(), Some("held_files"));
    assert!(poll(&app).await.files.is_empty(), "a held file is not taken again");

    let out = app.cli(&["runs", "release", &run_id.to_string(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let released: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(released["status"], "succeeded");
    assert_eq!(released["counts"]["updated"], 30);
    assert_eq!(released["rerun_of"], run_id.to_string());
    assert_eq!(app.scalar("SELECT count(*) FROM contacts WHERE first_name = 'Zoé'").await, 30);

    let again = app.cli(&["runs", "release", &run_id.to_string()]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already released"), "{}", stderr(&again));
}

#[tokio::test]
async fn a_file_withdrawing_too_many_consents_is_held_and_a_normal_one_is_not() {
    let (app, drop) = app_with_guarded_feed("max_unsubscribe_ratio: 0.2\n").await;
    std::fs::write(drop.join("contacts_1.csv"), night(50, 0)).unwrap();
    assert_eq!(poll(&app).await.imported(), 1);
    std::fs::write(drop.join("contacts_2.csv"), night(50, 5)).unwrap();
    assert_eq!(poll(&app).await.imported(), 1, "10 % of unsubscriptions pass");
    std::fs::write(drop.join("contacts_3.csv"), night(50, 25)).unwrap();
    // By hand, as support would: a held file fails the command.
    let out = app.cli(&["feed", "run", "acme/nightly-contacts", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let polled: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(polled["files"][0][1]["outcome"], "held", "{polled}");
    let run_id: uuid::Uuid = polled["files"][0][1]["run_id"].as_str().unwrap().parse().unwrap();
    let report = dropfeed::store::runs::report(&app.pool, run_id, None).await.unwrap().unwrap();
    assert_eq!(report.by_code.get("guard.unsubscribe"), Some(&1));
    assert!(report.error.as_deref().unwrap().contains("consent.newsletter: 20 / 45"), "{:?}", report.error);
    let still = app.scalar("SELECT count(*) FROM contacts WHERE consents->>'newsletter' = 'true'").await;
    assert_eq!(still, 45, "nothing written");
}

#[tokio::test]
async fn a_failed_run_is_replayed_from_the_archive_with_the_current_profile_and_an_applied_one_needs_force() {
    let (app, drop) = app_with_guarded_feed("").await;
    // The customer renamed a column: strict header drift refuses the file.
    std::fs::write(drop.join("contacts_1.csv"), night(10, 0).replace(";news", ";newsletter")).unwrap();
    let report = poll(&app).await;
    let [(_, FileOutcome::Refused { run_id, .. })] = &report.files[..] else { panic!("{report:?}") };
    let failed = run_id.to_string();

    // Support fixes the profile; the replay takes its new version.
    let fixed = PROFILE.replace("news: consent", "newsletter: consent");
    app.save_profile("nightly", &fixed, "email;first_name;newsletter\ns@x.ch;Sam;TRUE\n").await;
    let out = app.cli(&["runs", "replay", &failed, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let replayed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(replayed["counts"]["inserted"], 10);
    assert_eq!(replayed["profile"]["version"], 2);
    let new_run = replayed["run_id"].as_str().unwrap().to_owned();

    let out = app.cli(&["runs", "replay", &new_run]);
    assert!(!out.status.success(), "an applied run is not replayed without --force");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = app.cli(&["runs", "replay", &new_run, "--force", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let forced: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((forced["counts"]["inserted"].as_i64(), forced["counts"]["unchanged"].as_i64()), (Some(0), Some(10)));
}

#[tokio::test]
async fn a_replay_whose_archived_copy_is_gone_says_so_and_imports_nothing() {
    let (app, drop) = app_with_guarded_feed("").await;
    std::fs::write(drop.join("contacts_1.csv"), night(3, 0).replace(";news", ";x")).unwrap();
    let report = poll(&app).await;
    let [(_, FileOutcome::Refused { run_id, .. })] = &report.files[..] else { panic!("{report:?}") };
    std::fs::remove_dir_all(app.archive_dir()).unwrap();
    let out = app.cli(&["runs", "replay", &run_id.to_string()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("archived copy of contacts_1.csv"), "{}", stderr(&out));
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 2, "the sample's dry run and the failed run only");
}

#[tokio::test]
async fn guards_out_of_range_are_refused_when_the_feed_is_applied() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, "email;first_name;news\ns@x.ch;Sam;TRUE\n").await;
    let out = app.apply_feed(&feed_yaml("nightly-contacts", app.dir.path(), "max_row_drop_ratio: 1.5\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_row_drop_ratio 1.5"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_replace_list_night_removes_the_members_the_export_dropped_and_a_truncated_export_is_held_instead() {
    let replace = "columns:\n  email: email\n  first_name: first_name\nmode: replace_list\nlists: [newsletter]\n";
    let (app, drop) = app_with_feed_of(replace, "email;first_name\ns@x.ch;Sam\n", "max_row_drop_ratio: 0.5\n").await;
    let nightly = |n: usize, from: usize| {
        let mut s = "email;first_name\n".to_owned();
        (from..from + n).for_each(|i| s.push_str(&format!("p{i}@x.ch;Anne\n")));
        s
    };
    std::fs::write(drop.join("contacts_1.csv"), nightly(10, 0)).unwrap();
    assert_eq!(poll(&app).await.imported(), 1);
    // Two customers unsubscribed from the list, one joined.
    std::fs::write(drop.join("contacts_2.csv"), nightly(9, 2)).unwrap();
    assert_eq!(poll(&app).await.imported(), 1);
    let members = app.list_members("newsletter").await;
    assert_eq!(members.len(), 9);
    assert!(!members.contains(&"p0@x.ch".to_owned()) && members.contains(&"p10@x.ch".to_owned()));
    let removed = app.scalar("SELECT removed_from_list FROM runs WHERE file_name = 'contacts_2.csv'").await;
    assert_eq!(removed, 2);
    // The export broke off after 3 lines: replacing would empty the list.
    std::fs::write(drop.join("contacts_3.csv"), nightly(3, 2)).unwrap();
    held_run(&poll(&app).await);
    assert_eq!(app.list_members("newsletter").await, members, "a held night removes nobody");
    assert_eq!(app.contact_count().await, 11, "contacts are never deleted");
}
