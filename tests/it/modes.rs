//! The three modes on a second file overlapping the first.

use crate::helpers::{TestApp, lines_with, profile, spawn_app};

const FIRST: &str =
    "email;first_name;town;postal_code\na@x.ch;Anne;Genève;1204\nb@x.ch;Bruno;Lyon;69002\nc@x.ch;Chloé;Paris;75011\n";
/// b changes, c is identical, d is new.
const SECOND: &str = "email;first_name;town;postal_code\nB@x.ch;Bruno;Lausanne;1003\nc@x.ch;Chloé;Paris;75011\nd@x.ch;Denis;Zürich;8001\n";

async fn first_import(app: &TestApp) -> uuid::Uuid {
    let report = app.import(&app.write("first.csv", FIRST), &profile("mode: upsert\nlists: [all]\n")).await;
    assert_eq!(report.counts.inserted, 3);
    report.run_id
}

#[tokio::test]
async fn upsert_inserts_new_updates_changed_and_leaves_identical_rows_untouched() {
    let app = spawn_app().await;
    let first_run = first_import(&app).await;
    let c_before = app.contact("c@x.ch").await.unwrap();

    let report = app.import(&app.write("second.csv", SECOND), &profile("mode: upsert\nlists: [vip]\n")).await;

    let c = &report.counts;
    assert_eq!((c.rows, c.inserted, c.updated, c.unchanged, c.rejected), (3, 1, 1, 1, 0));
    assert_eq!(report.status.as_str(), "succeeded");
    let b = app.contact("b@x.ch").await.unwrap();
    assert_eq!(b["town"], "Lausanne");
    assert_eq!(b["created_by_run"], first_run.to_string());
    assert_eq!(b["updated_by_run"], report.run_id.to_string());
    let c_after = app.contact("c@x.ch").await.unwrap();
    assert_eq!(c_after["updated_at"], c_before["updated_at"], "an unchanged row must not touch updated_at");
    assert_eq!(c_after["updated_by_run"], first_run.to_string());
    assert_eq!(app.list_members("vip").await, vec!["b@x.ch", "c@x.ch", "d@x.ch"]);
    assert_eq!(app.list_members("all").await, vec!["a@x.ch", "b@x.ch", "c@x.ch"]);
}

#[tokio::test]
async fn insert_only_skips_known_addresses_and_reports_each_as_email_exists() {
    let app = spawn_app().await;
    first_import(&app).await;
    let report = app.import(&app.write("second.csv", SECOND), &profile("mode: insert_only\n")).await;
    let c = &report.counts;
    assert_eq!((c.inserted, c.updated, c.unchanged, c.skipped_existing, c.rejected), (1, 0, 0, 2, 0));
    assert_eq!(lines_with(&report, "email.exists"), vec![2, 3]);
    assert_eq!(app.contact("b@x.ch").await.unwrap()["town"], "Lyon");
    assert_eq!(app.contact_count().await, 4);
}

#[tokio::test]
async fn update_only_updates_known_addresses_and_skips_new_ones() {
    let app = spawn_app().await;
    first_import(&app).await;
    let report = app.import(&app.write("second.csv", SECOND), &profile("mode: update_only\n")).await;
    let c = &report.counts;
    assert_eq!((c.inserted, c.updated, c.unchanged, c.skipped_new, c.rejected), (0, 1, 1, 1, 0));
    assert_eq!(lines_with(&report, "email.unknown"), vec![4]);
    assert!(app.contact("d@x.ch").await.is_none());
    assert_eq!(app.contact("b@x.ch").await.unwrap()["town"], "Lausanne");
}

#[tokio::test]
async fn every_row_lands_in_exactly_one_outcome() {
    let app = spawn_app().await;
    first_import(&app).await;
    let body = format!("{SECOND}bad;X;Y;1\nd@x.ch;Denis;Zürich;8001\n");
    let report = app.import(&app.write("second.csv", body), &profile("mode: upsert\n")).await;
    let c = &report.counts;
    assert_eq!(c.rows, 5);
    assert_eq!(c.inserted + c.updated + c.unchanged + c.skipped_existing + c.skipped_new + c.rejected, c.rows);
}

#[tokio::test]
async fn empty_cells_keep_stored_values_unless_the_profile_says_clear() {
    let app = spawn_app().await;
    first_import(&app).await;
    let body = "email;first_name;town;postal_code\na@x.ch;;;\n";
    let keep = app.import(&app.write("keep.csv", body), &profile("empty_cells: keep\n")).await;
    assert_eq!((keep.counts.unchanged, keep.counts.warnings), (1, 0), "{:?}", keep.messages);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["town"], "Genève");

    let clear = app.import(&app.write("clear.csv", body), &profile("empty_cells: clear\n")).await;
    assert_eq!((clear.counts.updated, clear.counts.warnings), (1, 1));
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!(a["town"], serde_json::Value::Null);
    assert_eq!(a["first_name"], "-");
    assert_eq!(lines_with(&clear, "name.empty"), vec![2]);
}

#[tokio::test]
async fn consents_criteria_and_attributes_merge_into_the_stored_ones() {
    let app = spawn_app().await;
    let p = profile(
        "columns:\n  email: email\n  seg: criteria.segment\n  nl: consent.newsletter\n  sms: consent.sms\n  id: attribute.customer_id\n\
         criteria:\n  segment: [GOLD, SILVER]\n",
    );
    app.import(&app.write("a.csv", "email;seg;nl;sms;id\na@x.ch;GOLD;T;f;C1\n"), &p).await;
    let report = app.import(&app.write("b.csv", "email;seg;nl;sms;id\na@x.ch;;FALSE;;\n"), &p).await;
    assert_eq!(report.counts.updated, 1);
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!(a["criteria"], serde_json::json!({"segment": "GOLD"}));
    assert_eq!(a["consents"], serde_json::json!({"newsletter": false, "sms": false}));
    assert_eq!(a["attributes"], serde_json::json!({"customer_id": "C1"}));
}

#[tokio::test]
async fn an_updated_contact_keeps_the_stored_values_of_its_empty_cells_unless_clear() {
    let app = spawn_app().await;
    let p = "columns:\n  email: email\n  civ: civility\n  first: first_name\n  lang: language\n  town: town\n  \
             cp: postal_code\n  nl: consent.newsletter\n  sms: consent.sms\n";
    let first = "email;civ;first;lang;town;cp;nl;sms\na@x.ch;MRS;Anne;EN;Genève;1204;T;T\n";
    app.import(&app.write("first.csv", first), &profile(p)).await;
    // The town changes; civility, first name, language and sms are empty.
    let second = "email;civ;first;lang;town;cp;nl;sms\na@x.ch;;;;Lausanne;1003;F;\n";
    let keep = app.import(&app.write("keep.csv", second), &profile(&format!("{p}empty_cells: keep\n"))).await;
    assert_eq!(keep.counts.updated, 1, "{:?}", keep.error);
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!((&a["civility"], &a["first_name"], &a["language"]), (&"MRS".into(), &"Anne".into(), &"EN".into()));
    assert_eq!(
        (&a["town"], &a["consents"]),
        (&"Lausanne".into(), &serde_json::json!({"newsletter": false, "sms": true}))
    );
    assert_eq!(keep.counts.warnings, 0, "nothing was corrected: {:?}", keep.messages);

    let third = "email;civ;first;lang;town;cp;nl;sms\na@x.ch;;;;Sion;1950;;\n";
    let clear = app.import(&app.write("clear.csv", third), &profile(&format!("{p}empty_cells: clear\n"))).await;
    assert_eq!(clear.counts.updated, 1);
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!((&a["civility"], &a["first_name"], &a["language"]), (&"UNDEFINED".into(), &"-".into(), &"FR".into()));
    assert_eq!((&a["town"], &a["consents"]), (&"Sion".into(), &serde_json::json!({})));
}
