//! Seed 001's mass update: export `[old]`/`[new]` pairs, edit some `[new]`
//! cells, import the file back as `kind: mass_update`.

use dropfeed::export::{self, OldNew};
use dropfeed::store::{contacts::Filter, profiles};
use serde_json::json;

use crate::helpers::{Opts, TestApp, lines_with, profile, spawn_app, stderr, stdout};

const CONTACTS: &str = "email;first_name;criteria.segment;criteria.tier;consent.newsletter;consent.sms\n\
                        a@x.ch;Anne;GOLD;T1;T;F\n\
                        b@x.ch;Bruno;SILVER;T2;F;\n\
                        c@x.ch;Chloé;;T1;T;T\n";

/// Declared in the saved profile `nightly`: a mass update accepts these codes.
const NIGHTLY: &str = "criteria:\n  segment: [GOLD, SILVER, BRONZE]\n  tier: [T1, T2]\n";

/// Imports the three contacts (saving `nightly`), returns the run id.
async fn seeded() -> (TestApp, String) {
    let app = spawn_app().await;
    let path = app.write("contacts.csv", CONTACTS);
    let report =
        app.import_with(&path, &profile(NIGHTLY), Opts { save_as: Some("nightly".into()), ..Opts::default() }).await;
    assert_eq!(report.counts.inserted, 3, "{:?}", report.messages);
    (app, report.run_id.to_string())
}

async fn export(app: &TestApp, kind: OldNew) -> String {
    let declared: Vec<String> =
        profiles::declared_criteria(&app.pool, app.tenant.id).await.unwrap().into_iter().map(|c| c.code).collect();
    let filter = Filter { tenant_id: app.tenant.id, list: None, created_by_run: None };
    let mut out = Vec::new();
    export::write_contacts(&app.pool, &filter, Some((kind, &declared)), &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

/// `csv` with the cell of `email`'s line in `column` set to `value`.
fn edit(csv: &str, email: &str, column: &str, value: &str) -> String {
    let mut rows: Vec<Vec<String>> = csv.lines().map(|l| l.split(';').map(String::from).collect()).collect();
    let col = rows[0].iter().position(|h| h == column).unwrap_or_else(|| panic!("no {column} in {:?}", rows[0]));
    let row = rows.iter_mut().find(|r| r[0] == email).expect("the contact's line");
    row[col] = value.into();
    rows.iter().map(|r| r.join(";") + "\n").collect()
}

fn mass_update() -> dropfeed::profile::Profile {
    profile("kind: mass_update\n")
}

#[tokio::test]
async fn the_criteria_export_has_email_id_and_old_new_pairs_prefilled_with_the_stored_values() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Criteria).await;
    let id = |email: &'static str| {
        let pool = app.pool.clone();
        async move {
            let id: i64 = sqlx::query_scalar("SELECT id FROM contacts WHERE email = $1")
                .bind(email)
                .fetch_one(&pool)
                .await
                .unwrap();
            id
        }
    };
    let (a, b, c) = (id("a@x.ch").await, id("b@x.ch").await, id("c@x.ch").await);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("email;id;[old] criteria.segment;[new] criteria.segment;[old] criteria.tier;[new] criteria.tier")
    );
    assert_eq!(lines.next(), Some(format!("a@x.ch;{a};GOLD;GOLD;T1;T1").as_str()));
    assert_eq!(lines.nth(1), Some(format!("c@x.ch;{c};;;T1;T1").as_str()));
    let consents = export(&app, OldNew::Consents).await;
    assert!(
        consents.starts_with(&format!(
            "email;id;[old] consent.newsletter;[new] consent.newsletter;[old] consent.sms;[new] consent.sms\n\
             a@x.ch;{a};TRUE;TRUE;FALSE;FALSE\nb@x.ch;{b};FALSE;FALSE;;\n"
        )),
        "{consents}"
    );
}

#[tokio::test]
async fn edited_new_cells_change_exactly_those_values_and_are_counted() {
    let (app, first_run) = seeded().await;
    let csv = export(&app, OldNew::Criteria).await;
    let csv = edit(&csv, "a@x.ch", "[new] criteria.segment", "BRONZE");
    let csv = edit(&csv, "c@x.ch", "[new] criteria.segment", "GOLD");

    let report = app.import(&app.write("edited.csv", csv), &mass_update()).await;

    let c = &report.counts;
    assert_eq!((c.rows, c.updated, c.unchanged, c.rejected, c.inserted, c.conflicts), (3, 2, 1, 0, 0, 0));
    assert_eq!(report.status.as_str(), "succeeded", "{:?}", report.messages);
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!(a["criteria"], json!({"segment": "BRONZE", "tier": "T1"}));
    assert_eq!(a["updated_by_run"], report.run_id.to_string());
    assert_eq!(a["consents"], json!({"newsletter": true, "sms": false}), "consents are not in the file");
    assert_eq!(app.contact("c@x.ch").await.unwrap()["criteria"], json!({"segment": "GOLD", "tier": "T1"}));
    let b = app.contact("b@x.ch").await.unwrap();
    assert_eq!(b["criteria"], json!({"segment": "SILVER", "tier": "T2"}));
    assert_eq!(b["updated_by_run"], first_run, "an unchanged line writes nothing");
}

/// `csv` opened in a spreadsheet and saved as .xlsx: numbers and TRUE/FALSE
/// become number and boolean cells, as Excel reads them.
fn as_spreadsheet(csv: &str) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (row, line) in csv.lines().enumerate() {
        for (col, cell) in line.split(';').enumerate() {
            let (row, col) = (row as u32, col as u16);
            if let Ok(number) = cell.parse::<f64>() {
                sheet.write_number(row, col, number).unwrap();
            } else if let "TRUE" | "FALSE" = cell {
                sheet.write_boolean(row, col, cell == "TRUE").unwrap();
            } else if !cell.is_empty() {
                sheet.write_string(row, col, cell).unwrap();
            }
        }
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn an_export_edited_in_a_spreadsheet_and_saved_as_xlsx_imports_back() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Consents).await;
    let csv = edit(&csv, "a@x.ch", "[new] consent.newsletter", "FALSE");
    let path = app.dir.path().join("consents.xlsx");
    std::fs::write(&path, as_spreadsheet(&csv)).unwrap();

    let report = app.import(&path, &mass_update()).await;

    let c = &report.counts;
    assert_eq!((c.rows, c.updated, c.unchanged, c.conflicts), (3, 1, 2, 0), "{:?}", report.messages);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["consents"], json!({"newsletter": false, "sms": false}));
    assert_eq!(app.contact("b@x.ch").await.unwrap()["consents"], json!({"newsletter": false}));
}

#[tokio::test]
async fn a_line_whose_stored_value_changed_since_the_export_is_a_conflict_and_writes_nothing() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Criteria).await;
    // After the export, the nightly import moves a to SILVER.
    let nightly = "email;criteria.segment\na@x.ch;SILVER\n";
    app.import(&app.write("nightly.csv", nightly), &profile(NIGHTLY)).await;
    // The customer edits a's segment and tier, and b's tier.
    let csv = edit(&csv, "a@x.ch", "[new] criteria.segment", "BRONZE");
    let csv = edit(&csv, "a@x.ch", "[new] criteria.tier", "T2");
    let csv = edit(&csv, "b@x.ch", "[new] criteria.tier", "T1");

    let report = app.import(&app.write("edited.csv", csv), &mass_update()).await;

    let c = &report.counts;
    assert_eq!((c.updated, c.unchanged, c.rejected, c.conflicts), (1, 1, 1, 1), "{:?}", report.messages);
    assert_eq!(lines_with(&report, "update.conflict"), vec![2]);
    let m = report.messages.iter().find(|m| m.code == "update.conflict").unwrap();
    assert_eq!(
        (m.column.as_deref(), m.value.as_deref(), m.severity.as_str()),
        (Some("[old] criteria.segment"), Some("GOLD"), "error")
    );
    assert!(m.message.contains("criteria.segment") && m.message.contains("SILVER"), "{}", m.message);
    assert_eq!(report.status.as_str(), "succeeded_with_warnings");
    assert_eq!(
        app.contact("a@x.ch").await.unwrap()["criteria"],
        json!({"segment": "SILVER", "tier": "T1"}),
        "none of the conflicting line's values is applied, not even its tier"
    );
    assert_eq!(app.contact("b@x.ch").await.unwrap()["criteria"], json!({"segment": "SILVER", "tier": "T1"}));
}

#[tokio::test]
async fn a_line_whose_stored_value_changed_since_the_export_is_a_conflict_even_in_a_pair_left_as_exported() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Criteria).await;
    let since = "email;criteria.segment\na@x.ch;SILVER\nb@x.ch;BRONZE\n";
    app.import(&app.write("nightly.csv", since), &profile(NIGHTLY)).await;
    // a's line is edited elsewhere, b's is left exactly as exported.
    let csv = edit(&csv, "a@x.ch", "[new] criteria.tier", "T2");

    let report = app.import(&app.write("edited.csv", csv), &mass_update()).await;

    assert_eq!((report.counts.updated, report.counts.conflicts), (0, 2), "{:?}", report.messages);
    assert_eq!(lines_with(&report, "update.conflict"), vec![2, 3]);
    assert_eq!(app.contact("b@x.ch").await.unwrap()["criteria"]["segment"], "BRONZE");
    let stored = app.contact("a@x.ch").await.unwrap()["criteria"].clone();
    assert_eq!(stored["segment"], "SILVER", "the newer value stays");
    assert_ne!(stored["tier"], "T2", "nothing of the line is applied");
}

#[tokio::test]
async fn an_unknown_criteria_code_and_a_bad_consent_value_are_rejected_with_their_codes() {
    let (app, _) = seeded().await;
    let body = "email;[old] criteria.segment;[new] criteria.segment;[old]consent.sms;[new]consent.sms\n\
                a@x.ch;GOLD;PLATINUM;FALSE;FALSE\n\
                b@x.ch;SILVER;SILVER;;yes\n\
                c@x.ch;;BRONZE;TRUE;TRUE\n\
                not-an-address;;GOLD;;\n";

    let report = app.import(&app.write("bad.csv", body), &mass_update()).await;

    assert_eq!(lines_with(&report, "criteria.unknown"), vec![2]);
    assert_eq!(lines_with(&report, "consent.value"), vec![3]);
    assert_eq!(lines_with(&report, "email.format"), vec![5]);
    let c = &report.counts;
    assert_eq!((c.rows, c.rejected, c.updated), (4, 3, 1));
    assert_eq!(app.contact("a@x.ch").await.unwrap()["criteria"]["segment"], "GOLD");
    assert_eq!(app.contact("b@x.ch").await.unwrap()["consents"], json!({"newsletter": false}));
    assert_eq!(app.contact("c@x.ch").await.unwrap()["criteria"]["segment"], "BRONZE");
}

#[tokio::test]
async fn consents_accept_t_and_f_and_an_empty_new_cell_removes_the_value() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Consents).await;
    let csv = edit(&csv, "a@x.ch", "[new] consent.newsletter", "F");
    let csv = edit(&csv, "b@x.ch", "[new] consent.sms", "t");
    let csv = edit(&csv, "c@x.ch", "[new] consent.newsletter", "");

    let report = app.import(&app.write("consents.csv", csv), &mass_update()).await;

    assert_eq!((report.counts.updated, report.counts.rejected), (3, 0), "{:?}", report.messages);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["consents"], json!({"newsletter": false, "sms": false}));
    assert_eq!(app.contact("b@x.ch").await.unwrap()["consents"], json!({"newsletter": false, "sms": true}));
    assert_eq!(app.contact("c@x.ch").await.unwrap()["consents"], json!({"sms": true}));
}

#[tokio::test]
async fn an_empty_new_criterion_clears_it_and_an_untouched_export_updates_nothing() {
    let (app, _) = seeded().await;
    let before = app.contact("a@x.ch").await.unwrap();
    for kind in [OldNew::Criteria, OldNew::Consents] {
        let report = app.import(&app.write("untouched.csv", export(&app, kind).await), &mass_update()).await;
        let c = &report.counts;
        assert_eq!((c.rows, c.updated, c.unchanged, c.rejected), (3, 0, 3, 0), "{kind:?}: {:?}", report.messages);
    }
    assert_eq!(app.contact("a@x.ch").await.unwrap()["updated_at"], before["updated_at"]);

    let csv = edit(&export(&app, OldNew::Criteria).await, "a@x.ch", "[new] criteria.segment", "");
    let report = app.import(&app.write("cleared.csv", csv), &mass_update()).await;
    assert_eq!(report.counts.updated, 1);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["criteria"], json!({"tier": "T1"}));
}

#[tokio::test]
async fn a_dry_run_reports_the_real_counts_and_writes_nothing() {
    let (app, first_run) = seeded().await;
    let csv = edit(&export(&app, OldNew::Criteria).await, "a@x.ch", "[new] criteria.segment", "BRONZE");
    let path = app.write("edited.csv", csv);

    let dry = app.import_with(&path, &mass_update(), Opts { dry_run: true, ..Opts::default() }).await;

    assert_eq!(dry.status.as_str(), "dry_run");
    assert_eq!((dry.counts.updated, dry.counts.unchanged), (1, 2));
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!((&a["criteria"]["segment"], &a["updated_by_run"]), (&json!("GOLD"), &json!(first_run)));
    let real = app.import(&path, &mass_update()).await;
    assert_eq!(real.counts, dry.counts);
}

#[tokio::test]
async fn unknown_addresses_and_repeated_lines_are_skipped_and_every_line_lands_once() {
    let (app, _) = seeded().await;
    let body = "email;[old] criteria.tier;[new] criteria.tier\n\
                a@x.ch;T1;T2\n\
                z@x.ch;T1;T2\n\
                b@x.ch;T2;T1\n\
                A@x.ch;T1;T1\n";

    let report = app.import(&app.write("f.csv", body), &mass_update()).await;

    assert_eq!(lines_with(&report, "email.unknown"), vec![3]);
    let unknown = report.messages.iter().find(|m| m.code == "email.unknown").unwrap();
    assert!(unknown.message.contains("z@x.ch") && unknown.message.contains("en masse"), "{}", unknown.message);
    assert_eq!(lines_with(&report, "email.duplicate_in_file"), vec![2], "the last line wins by default");
    let c = &report.counts;
    assert_eq!((c.skipped_new, c.rejected, c.updated, c.unchanged), (1, 1, 1, 1));
    assert_eq!(c.inserted + c.updated + c.unchanged + c.skipped_existing + c.skipped_new + c.rejected, c.rows);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["criteria"]["tier"], "T1");
    assert!(app.contact("z@x.ch").await.is_none(), "a mass update creates no contact");
}

#[tokio::test]
async fn a_conflict_aborts_the_file_when_on_invalid_row_is_abort() {
    let (app, _) = seeded().await;
    let csv = export(&app, OldNew::Criteria).await;
    app.import(&app.write("nightly.csv", "email;criteria.segment\na@x.ch;SILVER\n"), &profile(NIGHTLY)).await;
    let csv = edit(&csv, "a@x.ch", "[new] criteria.segment", "BRONZE");
    let csv = edit(&csv, "b@x.ch", "[new] criteria.tier", "T1");

    let report =
        app.import(&app.write("edited.csv", csv), &profile("kind: mass_update\non_invalid_row: abort\n")).await;

    assert_eq!(report.status.as_str(), "aborted", "{:?}", report.error);
    assert_eq!(app.contact("b@x.ch").await.unwrap()["criteria"]["tier"], "T2", "nothing written");
}

#[tokio::test]
async fn a_header_without_pairs_is_refused_as_a_file() {
    let (app, _) = seeded().await;
    let report = app.import(&app.write("f.csv", "email;[new] criteria.tier\na@x.ch;T2\n"), &mass_update()).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(lines_with(&report, "header.old_new"), vec![1]);
}

#[tokio::test]
async fn the_cli_exports_imports_with_kind_mass_update_and_lists_the_criteria_codes() {
    let (app, _) = seeded().await;
    app.save_profile("weekly", "criteria:\n  segment: [GOLD, VIP]\n  region: [NORTH]\n", "email\na@x.ch\n").await;

    let listed = app.cli(&["criteria", "list", "acme"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(text.contains("segment") && text.contains("GOLD, SILVER, BRONZE, VIP"), "{text}");
    assert!(text.contains("nightly, weekly") && text.contains("NORTH"), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&app.cli(&["criteria", "list", "acme", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0], json!({"code": "region", "values": ["NORTH"], "profiles": ["weekly"]}));

    let path = app.dir.path().join("export.csv");
    let out = app.cli(&["contacts", "export", "acme", "--old-new", "criteria", "-o", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(&path).unwrap();
    assert!(csv.starts_with("email;id;[old] criteria.region;[new] criteria.region;"), "declared criteria too: {csv}");
    std::fs::write(&path, edit(&csv, "b@x.ch", "[new] criteria.segment", "VIP")).unwrap();
    let file = path.to_str().unwrap();
    let out = app.cli(&["import", "acme", file, "--kind", "mass_update", "--save-profile", "mu", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["counts"]["updated"].as_i64(), report["counts"]["conflicts"].as_i64()), (Some(1), Some(0)));
    assert_eq!(app.contact("b@x.ch").await.unwrap()["criteria"]["segment"], "VIP");
    let shown = stdout(&app.cli(&["profile", "show", "acme", "mu"]));
    assert!(shown.contains("kind: mass_update") && !shown.contains("[new]"), "{shown}");

    app.import(&app.write("vip.csv", "email\nb@x.ch\n"), &profile("lists: [vip]\n")).await;
    let vip = stdout(&app.cli(&["contacts", "export", "acme", "--old-new", "consents", "--list", "vip"]));
    assert_eq!(vip.lines().count(), 2, "the header and b, the list's one member: {vip}");
    assert!(vip.lines().nth(1).unwrap().starts_with("b@x.ch;"), "{vip}");

    let refused = app.cli(&["import", "acme", file, "--kind", "mass_update", "--list", "news"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("lists does not apply to a mass_update profile"), "{}", stderr(&refused));
}

#[tokio::test]
async fn a_mass_update_file_dropped_for_a_feed_is_imported_once_and_moved() {
    let (app, _) = seeded().await;
    let sample = "email;[old] criteria.tier;[new] criteria.tier\na@x.ch;T1;T1\n";
    app.save_profile("segments", "kind: mass_update\n", sample).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let yaml = crate::feeds::feed_yaml("segments", &drop, "").replace("profile: nightly", "profile: segments");
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = edit(&export(&app, OldNew::Criteria).await, "b@x.ch", "[new] criteria.segment", "GOLD");
    std::fs::write(drop.join("contacts_20261201.csv"), csv).unwrap();

    let feed = app.feed("segments").await;
    let daemon = app.daemon(std::sync::Arc::new(dropfeed::clock::SystemClock), "test");
    let report = daemon.run_once(&feed, false).await.expect("poll");

    assert_eq!(report.imported(), 1, "{report:?}");
    assert!(drop.join("processed/contacts_20261201.csv").exists());
    assert_eq!(app.contact("b@x.ch").await.unwrap()["criteria"]["segment"], "GOLD");
    let (updated, feed_name): (i64, String) =
        sqlx::query_as("SELECT updated, feed FROM runs WHERE feed IS NOT NULL").fetch_one(&app.pool).await.unwrap();
    assert_eq!((updated, feed_name.as_str()), (1, "segments"));
    assert_eq!(app.scalar("SELECT count(*) FROM processed_files").await, 1);
}
