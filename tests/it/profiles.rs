//! Saved profiles: versioning, replay, header drift.

use crate::helpers::{Opts, profile, spawn_app};
use dropfeed::store::profiles;

const SAMPLE: &str = "Courriel;Langue;Ville;CP;Commentaire\na@x.ch;FR;Genève;1204;vip\nb@x.ch;XX;Paris;75011;\n";

#[tokio::test]
async fn a_saved_profile_replays_to_the_same_result() {
    let app = spawn_app().await;
    let mapping = profile(
        "columns:\n  Courriel: email\n  Langue: language\n  Ville: town\n  CP: postal_code\n  Commentaire: ~\n\
         mode: upsert\nlists: [nightly]\n",
    );
    let path = app.write("sample.csv", SAMPLE);
    let first = app.import_with(&path, &mapping, Opts { save_as: Some("nightly".into()), ..Opts::default() }).await;
    assert_eq!(first.profile.as_ref().map(|p| (p.name.as_str(), p.version)), Some(("nightly", 1)));

    let saved = profiles::latest(&app.pool, app.tenant.id, "nightly").await.unwrap();
    assert_eq!(saved.profile.columns.len(), 5);
    let other = spawn_app().await;
    let replay = other.import(&other.write("sample.csv", SAMPLE), &saved.profile).await;
    assert_eq!(replay.counts, first.counts);
    assert_eq!(replay.by_code, first.by_code);
    assert_eq!(other.list_members("nightly").await, app.list_members("nightly").await);

    // Saving the same profile again keeps its version; a change makes v2.
    let again =
        app.import_with(&path, &saved.profile, Opts { save_as: Some("nightly".into()), ..Opts::default() }).await;
    assert_eq!(again.profile.unwrap().version, 1);
    let mut changed = saved.profile.clone();
    changed.lists = vec!["other".into()];
    let v2 = app.import_with(&path, &changed, Opts { save_as: Some("nightly".into()), ..Opts::default() }).await;
    assert_eq!(v2.profile.unwrap().version, 2);
}

#[tokio::test]
async fn an_automatic_mapping_saves_every_column_with_ignored_ones_as_null() {
    let app = spawn_app().await;
    let path = app.write("auto.csv", "email;language;notes\na@x.ch;FR;x\n");
    let report =
        app.import_with(&path, &Default::default(), Opts { save_as: Some("auto".into()), ..Opts::default() }).await;
    assert_eq!(report.columns.unmapped, vec!["notes"]);
    let saved = profiles::latest(&app.pool, app.tenant.id, "auto").await.unwrap();
    let cols: Vec<(String, Option<String>)> =
        saved.profile.columns.iter().map(|(k, v)| (k.clone(), v.as_ref().map(|t| t.to_string()))).collect();
    assert_eq!(
        cols,
        vec![
            ("email".into(), Some("email".into())),
            ("language".into(), Some("language".into())),
            ("notes".into(), None)
        ]
    );
}

#[tokio::test]
async fn strict_header_drift_refuses_a_changed_header_and_writes_nothing() {
    let app = spawn_app().await;
    let p = profile("columns:\n  Courriel: email\n  Langue: language\nheader_drift: strict\n");
    let report = app.import(&app.write("drift.csv", "Courriel;Langue;Ville\na@x.ch;FR;Paris\n"), &p).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("header.drift"), Some(&1));
    assert!(report.error.as_deref().unwrap().contains("Ville"), "{:?}", report.error);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn by_name_header_drift_maps_known_columns_and_reports_added_and_missing_ones() {
    let app = spawn_app().await;
    let p = profile("columns:\n  Courriel: email\n  Langue: language\n  Ville: town\nheader_drift: by_name\n");
    let report = app.import(&app.write("drift.csv", "Langue;Courriel;Nouveau\nEN;a@x.ch;x\n"), &p).await;
    assert_eq!(report.counts.inserted, 1);
    assert_eq!(report.columns.unmapped, vec!["Nouveau"]);
    assert_eq!(report.columns.missing, vec!["Ville"]);
    assert_eq!(report.by_code.get("header.missing_columns"), Some(&1));
    assert_eq!(app.contact("a@x.ch").await.unwrap()["language"], "EN");
}
