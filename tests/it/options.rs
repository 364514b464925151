//! Error-handling options: dry run, invalid-row policy, ratio, duplicates.

use crate::helpers::{Opts, lines_with, profile, spawn_app};

const MIXED: &str = "email;civility\na@x.ch;MR\nb@x.ch;DR\nc@x.ch;MRS\nd@x.ch;MISS\n";

#[tokio::test]
async fn a_dry_run_reports_the_real_counts_and_writes_no_contact() {
    let app = spawn_app().await;
    app.import(&app.write("seed.csv", "email;civility\na@x.ch;MRS\n"), &Default::default()).await;
    let path = app.write("mixed.csv", MIXED);
    let p = profile("lists: [news]\n");

    let dry = app.import_with(&path, &p, Opts { dry_run: true, ..Opts::default() }).await;
    assert_eq!(dry.status.as_str(), "dry_run");
    assert!(dry.dry_run);
    assert_eq!(app.contact_count().await, 1);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["civility"], "MRS");
    assert!(app.list_members("news").await.is_empty());

    let real = app.import(&path, &p).await;
    assert_eq!(dry.counts, real.counts);
    assert_eq!(dry.by_code, real.by_code);
    assert_eq!((real.counts.inserted, real.counts.updated, real.counts.rejected), (2, 1, 1));
}

#[tokio::test]
async fn a_dry_run_for_a_tenant_without_contacts_finds_the_same_duplicates_and_warnings_as_the_import() {
    let app = spawn_app().await;
    // Staged narrow (no address is known yet): duplicates, warnings and
    // rejections must come out as the real import's.
    let csv = "email;civility;display\na@x.ch;MR;A\nb@x.ch;;B\n A@X.ch;MRS;\nc@x.ch;DR;C\nd@x.ch;MISS;\n";
    let path = app.write("dups.csv", csv);
    let dry = app.import_with(&path, &Default::default(), Opts { dry_run: true, ..Opts::default() }).await;
    assert_eq!(app.contact_count().await, 0);
    let real = app.import(&path, &Default::default()).await;
    assert_eq!(dry.counts, real.counts);
    assert_eq!(dry.by_code, real.by_code);
    let shown = |r: &dropfeed::report::Report| r.messages.iter().map(|m| (m.line, m.code.clone())).collect::<Vec<_>>();
    assert_eq!(shown(&dry), shown(&real));
    assert_eq!(real.by_code.get("email.duplicate_in_file"), Some(&1));
    assert_eq!((real.counts.inserted, real.counts.rejected), (3, 2));
}

#[tokio::test]
async fn above_the_invalid_ratio_nothing_is_written_and_the_run_is_aborted() {
    let app = spawn_app().await;
    let report = app.import(&app.write("mixed.csv", MIXED), &profile("max_invalid_ratio: 0.2\nlists: [news]\n")).await;
    assert_eq!(report.status.as_str(), "aborted");
    assert_eq!(report.counts.rejected, 1);
    assert_eq!(report.counts.inserted, 0);
    assert!(report.error.as_deref().unwrap().contains("mixed.csv"), "{:?}", report.error);
    assert_eq!(report.by_code.get("file.invalid_ratio"), Some(&1));
    assert_eq!(lines_with(&report, "civility.unknown"), vec![3]);
    assert_eq!(app.contact_count().await, 0);
    assert!(app.list_members("news").await.is_empty());

    let under = app.import(&app.write("mixed2.csv", MIXED), &profile("max_invalid_ratio: 0.25\n")).await;
    assert_eq!(under.status.as_str(), "succeeded_with_warnings");
    assert_eq!(under.counts.inserted, 3);
}

#[tokio::test]
async fn on_invalid_row_abort_stops_at_the_first_bad_line_and_writes_nothing() {
    let app = spawn_app().await;
    let report = app.import(&app.write("mixed.csv", MIXED), &profile("on_invalid_row: abort\n")).await;
    assert_eq!(report.status.as_str(), "aborted");
    assert!(report.error.as_deref().unwrap().contains("line 3"), "{:?}", report.error);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn duplicates_keep_the_last_line_by_default_and_report_the_others() {
    let app = spawn_app().await;
    let body = "email;first_name\na@x.ch;One\nb@x.ch;Bee\n A@X.CH ;Two\na@x.ch;Three\n";
    let report = app.import(&app.write("dup.csv", body), &Default::default()).await;
    assert_eq!(lines_with(&report, "email.duplicate_in_file"), vec![2, 4]);
    assert_eq!((report.counts.inserted, report.counts.rejected), (2, 2));
    assert_eq!(app.contact("a@x.ch").await.unwrap()["first_name"], "Three");
    assert!(report.messages[0].message.contains("5"), "names the kept line: {}", report.messages[0].message);
}

#[tokio::test]
async fn duplicates_first_keeps_the_first_line() {
    let app = spawn_app().await;
    let body = "email;first_name\na@x.ch;One\na@x.ch;Two\n";
    let report = app.import(&app.write("dup.csv", body), &profile("duplicates_in_file: first\n")).await;
    assert_eq!(lines_with(&report, "email.duplicate_in_file"), vec![3]);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["first_name"], "One");
}

#[tokio::test]
async fn twenty_one_mapped_columns_import_twenty_and_report_the_rest() {
    let app = spawn_app().await;
    let header: Vec<String> =
        std::iter::once("email".to_string()).chain((1..=20).map(|i| format!("attribute.a{i}"))).collect();
    let row: Vec<String> = std::iter::once("a@x.ch".to_string()).chain((1..=20).map(|i| format!("v{i}"))).collect();
    let path = app.write("wide.csv", format!("{}\n{}\n", header.join(";"), row.join(";")));
    let report = app.import(&path, &Default::default()).await;
    assert_eq!(report.columns.ignored_beyond_limit, vec!["attribute.a20"]);
    assert_eq!(report.by_code.get("mapping.too_many_columns"), Some(&1));
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!(a["attributes"].as_object().unwrap().len(), 19);
}
