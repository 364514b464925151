//! Lists: `mode: replace_list` (seed 000, replace the old list with the new
//! file) and the `list list` / `list delete` commands.

use crate::helpers::{Opts, profile, spawn_app, stderr, stdout};

const REPLACE: &str = "columns:\n  email: email\n  first_name: first_name\nmode: replace_list\nlists: [newsletter]\n";

#[tokio::test]
async fn replace_list_makes_the_list_exactly_the_files_valid_contacts_and_keeps_the_others_as_contacts() {
    let app = spawn_app().await;
    let first = app.write("first.csv", "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\nc@x.ch;Chloé\n");
    let report = app.import(&first, &profile(REPLACE)).await;
    assert_eq!((report.counts.inserted, report.counts.removed_from_list), (3, 0));

    // b leaves the list, d joins it, a bad line (e) is not a member.
    let second =
        app.write("second.csv", "email;first_name\na@x.ch;Anne\nc@x.ch;Chloé\nd@x.ch;Dora\nnot-an-email;Eve\n");
    let report = app.import(&second, &profile(REPLACE)).await;
    assert_eq!(report.status.as_str(), "succeeded_with_warnings", "{:?}", report.error);
    assert_eq!(
        (report.counts.inserted, report.counts.unchanged, report.counts.rejected, report.counts.removed_from_list),
        (1, 2, 1, 1)
    );
    assert_eq!(app.list_members("newsletter").await, vec!["a@x.ch", "c@x.ch", "d@x.ch"]);
    assert_eq!(app.contact_count().await, 4, "b@x.ch is still a contact");
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["counts"]["removed_from_list"], 1);
}

#[tokio::test]
async fn a_dry_run_of_replace_list_counts_the_removals_and_removes_nothing() {
    let app = spawn_app().await;
    app.import(&app.write("first.csv", "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n"), &profile(REPLACE)).await;
    let second = app.write("second.csv", "email;first_name\na@x.ch;Anne\n");
    let report = app.import_with(&second, &profile(REPLACE), Opts { dry_run: true, ..Opts::default() }).await;
    assert_eq!(report.counts.removed_from_list, 1);
    assert_eq!(app.list_members("newsletter").await, vec!["a@x.ch", "b@x.ch"]);
}

#[tokio::test]
async fn replace_list_other_lists_are_untouched_and_an_aborted_file_removes_nobody() {
    let app = spawn_app().await;
    let both = "columns:\n  email: email\nlists: [newsletter, vip]\n";
    app.import(&app.write("all.csv", "email\na@x.ch\nb@x.ch\n"), &profile(both)).await;
    let strict = format!("{REPLACE}max_invalid_ratio: 0.1\n");
    let bad = app.write("bad.csv", "email;first_name\na@x.ch;Anne\nnope;X\n");
    let report = app.import(&bad, &profile(&strict)).await;
    assert_eq!(report.status.as_str(), "aborted");
    assert_eq!(app.list_members("newsletter").await, vec!["a@x.ch", "b@x.ch"], "nothing removed when aborted");
    let report = app.import(&app.write("good.csv", "email;first_name\na@x.ch;Anne\n"), &profile(REPLACE)).await;
    assert_eq!(report.counts.removed_from_list, 1);
    assert_eq!(app.list_members("vip").await, vec!["a@x.ch", "b@x.ch"], "only the profile's lists are replaced");
}

#[tokio::test]
async fn replace_list_without_a_list_is_refused_when_the_profile_is_read() {
    let err = dropfeed::profile::Profile::from_yaml("mode: replace_list\n", "p.yaml").unwrap_err().to_string();
    assert!(err.contains("p.yaml") && err.contains("replace_list"), "{err}");
}

#[tokio::test]
async fn list_list_shows_member_counts_and_list_delete_removes_the_list_but_not_its_contacts() {
    let app = spawn_app().await;
    let file = app.write("c.csv", "email\na@x.ch\nb@x.ch\n");
    let out = app.cli(&["import", "acme", file.to_str().unwrap(), "--list", "newsletter", "--list", "vip"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value =
        serde_json::from_str(&stdout(&app.cli(&["list", "list", "acme", "--format", "json"]))).unwrap();
    assert_eq!(shown[0]["name"], "newsletter");
    assert_eq!(shown[0]["members"], 2);

    let out = app.cli(&["list", "delete", "acme", "newsletter"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 memberships removed"), "{}", stdout(&out));
    assert!(app.list_members("newsletter").await.is_empty());
    assert_eq!(app.list_members("vip").await.len(), 2);
    assert_eq!(app.contact_count().await, 2);
    let text = stdout(&app.cli(&["list", "list", "acme"]));
    assert!(!text.contains("newsletter") && text.contains("vip"), "{text}");

    let out = app.cli(&["list", "delete", "acme", "newsletter"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no list \"newsletter\""), "{}", stderr(&out));
}
