//! Multi-file feeds (seed 004): contacts from the CRM and consents from the
//! web shop, one pattern and profile each, keyed on the same e-mail,
//! imported in the declared order; a night missing a required file.

use std::sync::Arc;

use dropfeed::clock::SystemClock;
use dropfeed::pickup::FileOutcome;

use crate::helpers::{TestApp, spawn_app, stderr};

const CRM: &str = "columns:\n  email: email\n  first_name: first_name\nlists: [crm]\n";
const SHOP: &str = "columns:\n  email: email\n  newsletter: consent.newsletter\nmode: update_only\n";

async fn app_with_two_file_feed(extra: &str) -> (TestApp, std::path::PathBuf) {
    let app = spawn_app().await;
    app.save_profile("crm", CRM, "email;first_name\ns@x.ch;Sam\n").await;
    app.save_profile("shop", SHOP, "email;newsletter\ns@x.ch;TRUE\n").await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let yaml = format!(
        "tenant: acme\nname: nightly\nsource:\n  url: file://{}\n\
         files:\n  - pattern: \"crm_*.csv\"\n    profile: crm\n  - pattern: \"shop_*.csv\"\n    profile: shop\n\
         schedule:\n  cron: \"0 30 2 * * *\"\npickup:\n  min_age_secs: 0\n  stable_secs: 0\n{extra}",
        drop.display()
    );
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    (app, drop)
}

async fn poll(app: &TestApp) -> anyhow::Result<dropfeed::pickup::PollReport> {
    let feed = app.feed("nightly").await;
    app.daemon(Arc::new(SystemClock), "test").run_once(&feed, false).await
}

fn imported_names(report: &dropfeed::pickup::PollReport) -> Vec<&str> {
    report.files.iter().filter(|(_, o)| matches!(o, FileOutcome::Imported { .. })).map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn a_two_file_night_imports_the_crm_file_first_then_the_shops_consents_onto_the_same_contacts() {
    let (app, drop) = app_with_two_file_feed("").await;
    // The shop's file is older: the declared order wins, not the age.
    std::fs::write(drop.join("shop_20261201.csv"), "email;newsletter\nA@x.ch;T\nb@x.ch;f\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(drop.join("crm_20261201.csv"), "email;first_name\na@x.ch;Anne\nb@x.ch;Bruno\n").unwrap();

    let report = poll(&app).await.expect("poll");
    assert_eq!(imported_names(&report), vec!["crm_20261201.csv", "shop_20261201.csv"], "{report:?}");
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!((a["first_name"].as_str(), a["consents"]["newsletter"].as_bool()), (Some("Anne"), Some(true)));
    assert_eq!(app.contact("b@x.ch").await.unwrap()["consents"]["newsletter"], false);
    let profiles: Vec<String> =
        sqlx::query_scalar("SELECT profile_name FROM runs WHERE feed = 'nightly' ORDER BY started_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(profiles, vec!["crm", "shop"]);
}

#[tokio::test]
async fn a_night_missing_a_required_file_imports_nothing_until_it_arrives() {
    let (app, drop) = app_with_two_file_feed("").await;
    std::fs::write(drop.join("crm_20261201.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    let err = poll(&app).await.expect_err("the night is incomplete");
    assert!(err.to_string().contains("night incomplete") && err.to_string().contains("shop_*.csv"), "{err}");
    assert_eq!(app.contact_count().await, 0, "nothing written");
    assert!(drop.join("crm_20261201.csv").exists(), "the file waits in the drop folder");
    assert_eq!(app.feed("nightly").await.last_status.as_deref(), Some("feed.night_incomplete"));

    std::fs::write(drop.join("shop_20261201.csv"), "email;newsletter\na@x.ch;TRUE\n").unwrap();
    let report = poll(&app).await.expect("poll");
    assert_eq!(imported_names(&report), vec!["crm_20261201.csv", "shop_20261201.csv"]);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["consents"]["newsletter"], true);
}

#[tokio::test]
async fn with_import_available_a_night_missing_a_file_imports_what_arrived() {
    let (app, drop) = app_with_two_file_feed("on_missing_file: import_available\n").await;
    std::fs::write(drop.join("crm_20261201.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    let report = poll(&app).await.expect("poll");
    assert_eq!(imported_names(&report), vec!["crm_20261201.csv"]);
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn a_required_file_taken_earlier_the_same_day_completes_the_night_of_a_late_file() {
    let (app, drop) = app_with_two_file_feed("").await;
    std::fs::write(drop.join("crm_20261201.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    std::fs::write(drop.join("shop_20261201.csv"), "email;newsletter\na@x.ch;TRUE\n").unwrap();
    assert_eq!(imported_names(&poll(&app).await.expect("poll")).len(), 2);
    // The shop sends a corrected file later that day: the CRM's is in.
    std::fs::write(drop.join("shop_20261201_fix.csv"), "email;newsletter\na@x.ch;FALSE\n").unwrap();
    let report = poll(&app).await.expect("poll");
    assert_eq!(imported_names(&report), vec!["shop_20261201_fix.csv"]);
    assert_eq!(app.contact("a@x.ch").await.unwrap()["consents"]["newsletter"], false);
}

#[tokio::test]
async fn a_feed_with_files_names_no_single_profile_and_each_file_needs_a_saved_one() {
    let (app, drop) = app_with_two_file_feed("").await;
    let base = format!(
        "tenant: acme\nname: nightly\nsource:\n  url: file://{}\nschedule:\n  cron: \"0 30 2 * * *\"\n",
        drop.display()
    );
    let both = format!("{base}profile: crm\nfiles:\n  - pattern: \"a_*.csv\"\n    profile: crm\n");
    let out = app.apply_feed(&both);
    assert!(!out.status.success() && stderr(&out).contains("not one"), "{}", stderr(&out));
    let unknown = format!("{base}files:\n  - pattern: \"a_*.csv\"\n    profile: nope\n");
    let out = app.apply_feed(&unknown);
    assert!(!out.status.success() && stderr(&out).contains("--save-profile nope"), "{}", stderr(&out));
}
