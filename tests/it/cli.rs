//! The real binary, as a user runs it: commands, JSON reports, exit codes,
//! export round trip. The generator's files, whose errors are known, are
//! imported the same way in `generated`.

use crate::helpers::{spawn_app, stderr, stdout};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

#[tokio::test]
async fn import_prints_the_spec_report_and_runs_show_prints_it_again() {
    let app = spawn_app().await;
    let path = app.write("contacts_20261121.csv", "email;civility;display\na@x.ch;MR;Mr A\nb@x.ch;DR;B\nc@x.ch;;C\n");
    let out = app.cli(&["import", "acme", path.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    for key in [
        "run_id",
        "tenant",
        "feed",
        "status",
        "dry_run",
        "profile",
        "file",
        "started_at",
        "finished_at",
        "counts",
        "by_code",
        "messages",
        "messages_truncated",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    assert_eq!(report["status"], "succeeded_with_warnings");
    assert_eq!(report["file"]["name"], "contacts_20261121.csv");
    assert_eq!(report["file"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(report["counts"]["rejected"], 1);
    assert_eq!(report["by_code"], serde_json::json!({"civility.unknown": 1, "civility.empty": 1}));
    let m = &report["messages"][0];
    assert_eq!(
        (m["line"].as_i64(), m["column"].as_str(), m["code"].as_str()),
        (Some(3), Some("civility"), Some("civility.unknown"))
    );
    assert_eq!((m["severity"].as_str(), m["value"].as_str()), (Some("error"), Some("DR")));

    let run_id = report["run_id"].as_str().unwrap();
    let shown = json(&app.cli(&["runs", "show", run_id, "--format", "json"]));
    assert_eq!(shown["counts"], report["counts"]);
    assert_eq!(shown["messages"], report["messages"]);
    let list = stdout(&app.cli(&["runs", "list", "--tenant", "acme"]));
    assert!(list.contains(run_id), "{list}");
}

#[tokio::test]
async fn an_aborted_import_exits_non_zero_with_a_one_line_reason() {
    let app = spawn_app().await;
    let mapping = app.write("m.yaml", "max_invalid_ratio: 0.1\n");
    let path = app.write("f.csv", "email\nbad\na@x.ch\n");
    let out = app.cli(&["import", "acme", path.to_str().unwrap(), "--mapping", mapping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("aborted"), "{err}");
}

#[tokio::test]
async fn unknown_tenants_and_bad_mappings_fail_with_a_clear_message() {
    let app = spawn_app().await;
    let path = app.write("f.csv", "email\na@x.ch\n");
    let out = app.cli(&["import", "nobody", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tenant nobody not found"), "{}", stderr(&out));
    let bad = app.write("bad.yaml", "columns:\n  Courriel: courriel\n");
    let out = app.cli(&["import", "acme", path.to_str().unwrap(), "--mapping", bad.to_str().unwrap()]);
    assert!(stderr(&out).contains("bad.yaml") && stderr(&out).contains("courriel"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_export_imports_back_as_unchanged() {
    let app = spawn_app().await;
    let mapping = app.write(
        "m.yaml",
        "columns:\n  email: email\n  first_name: first_name\n  birthdate: birthdate\n  town: town\n  postal_code: postal_code\n  \
         country: country\n  seg: criteria.segment\n  nl: consent.newsletter\n  id: attribute.customer_id\n\
         criteria:\n  segment: [GOLD, SILVER]\nlists: [news]\n",
    );
    let file = app.write(
        "f.csv",
        "email;first_name;birthdate;town;postal_code;country;seg;nl;id\n\
         a@x.ch;Élodie;21.03.1985;Genève;1204;Suisse;GOLD;T;C1\n\
         b@x.ch;;;;;;;f;\n\
         c@x.ch;\"Jean; Marc\";;Paris;75011;FR;SILVER;;C3\n",
    );
    let out = app.cli(&[
        "import",
        "acme",
        file.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--save-profile",
        "p",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let export = app.cli(&["contacts", "export", "acme", "--list", "news"]);
    let csv = stdout(&export);
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "email;language;display;civility;first_name;last_name;birthdate;structure;address;postal_code;town;state;country;phone;mobile;\
         criteria.segment;consent.newsletter;attribute.customer_id;lists"
    );
    assert!(csv.contains("a@x.ch;FR;;UNDEFINED;Élodie;-;21.03.1985;;;1204;Genève;;CH;;;GOLD;TRUE;C1;news"), "{csv}");

    let back = app.write("export.csv", csv.as_bytes());
    let criteria = app.write("c.yaml", "criteria:\n  segment: [GOLD, SILVER]\n");
    let out = app.cli(&[
        "import",
        "acme",
        back.to_str().unwrap(),
        "--mapping",
        criteria.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(report["counts"]["unchanged"], 3, "{report}");
    assert_eq!(report["columns"]["unmapped"], serde_json::json!(["lists"]));

    let first_run = app.scalar_text("SELECT id::text FROM runs ORDER BY started_at LIMIT 1").await;
    let created = stdout(&app.cli(&["contacts", "export", "acme", "--created-by-run", &first_run]));
    assert_eq!(created.lines().count(), 4, "the header and the 3 contacts of the first import: {created}");
    let created = app.cli(&["contacts", "export", "acme", "--created-by-run", &uuid::Uuid::nil().to_string()]);
    assert_eq!(stdout(&created).lines().count(), 1, "only the header for a run that created nothing");
    let old_new = stdout(&app.cli(&["contacts", "export", "acme", "--old-new", "consents"]));
    assert!(old_new.starts_with("email;id;[old] consent.newsletter;[new] consent.newsletter\n"), "{old_new}");
}

#[tokio::test]
async fn profile_show_prints_yaml_that_import_reads_back() {
    let app = spawn_app().await;
    let file = app.write("f.csv", "Courriel;Ville;CP\na@x.ch;Genève;1204\n");
    let mapping =
        app.write("m.yaml", "columns:\n  Courriel: email\n  Ville: town\n  CP: postal_code\nmode: insert_only\n");
    let out = app.cli(&[
        "import",
        "acme",
        file.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--save-profile",
        "nightly",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&app.cli(&["profile", "show", "acme", "nightly"]));
    assert!(shown.contains("Courriel: email") && shown.contains("mode: insert_only"), "{shown}");
    let again = app.write("shown.yaml", shown.as_bytes());
    let out =
        app.cli(&["import", "acme", file.to_str().unwrap(), "--mapping", again.to_str().unwrap(), "--format", "json"]);
    assert_eq!(json(&out)["counts"]["skipped_existing"], 1);
    let list = stdout(&app.cli(&["profile", "list", "acme"]));
    assert!(list.contains("nightly") && list.contains("v1"), "{list}");
    let template = stdout(&app.cli(&["template", "acme", "--profile", "nightly"]));
    assert_eq!(template.lines().next(), Some("Courriel;Ville;CP"));
    assert_eq!(template.lines().count(), 2);
}

#[tokio::test]
async fn the_streamed_json_report_is_the_report_loaded_whole_and_max_messages_cuts_it() {
    let app = spawn_app().await;
    // 1,500 rejected lines and 1,500 corrected ones: the messages span
    // several batches of the cursor, errors and warnings interleaved.
    let mut csv = String::from("email;civility\n");
    for i in 0..1500 {
        csv.push_str(&format!("bad-{i};MR\nok{i}@x.ch;\n"));
    }
    let path = app.write("many.csv", csv);
    let out = app.cli(&["import", "acme", path.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let streamed = json(&out);
    let run_id: uuid::Uuid = streamed["run_id"].as_str().unwrap().parse().unwrap();
    let loaded = dropfeed::store::runs::report(&app.pool, run_id, None).await.unwrap().unwrap();
    assert_eq!(loaded.messages.len(), 3000);
    assert_eq!(streamed, serde_json::to_value(&loaded).unwrap());
    let lines: Vec<i64> =
        streamed["messages"].as_array().unwrap().iter().map(|m| m["line"].as_i64().unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "messages by line");

    let cut = json(&app.cli(&["runs", "show", &run_id.to_string(), "--format", "json", "--max-messages", "10"]));
    assert_eq!(cut["messages"].as_array().unwrap().len(), 10);
    assert_eq!(cut["messages_truncated"], true);
    assert_eq!(cut["messages"][9], streamed["messages"][9]);
    assert_eq!(cut["by_code"], streamed["by_code"], "counts per code stay complete");

    // The text report: each rule with its count and its first 5 lines.
    let text = stdout(&app.cli(&["runs", "show", &run_id.to_string()]));
    assert!(text.contains("email.format: 1500\n  line 2: "), "{text}");
    assert!(text.contains("civility.empty: 1500\n  line 3: "), "{text}");
    assert_eq!(text.matches("\n  line ").count(), 10, "{text}");
    assert!(text.contains("  line 10: ") && !text.contains("  line 12: "), "{text}");
}

#[tokio::test]
async fn an_export_neutralises_every_cell_a_spreadsheet_would_evaluate_list_names_included() {
    let app = spawn_app().await;
    let mapping = app.write("m.yaml", "columns:\n  email: email\n  id: attribute.customer_id\n  tag: attribute.tag\n");
    // Values the import keeps (no letter after the sign, or a space) that a
    // spreadsheet would still evaluate.
    let file = app.write("f.csv", "email;id;tag\na@x.ch;-1+cmd|' /C calc'!A0;@ x\nb@x.ch;+41 22;x\n");
    let out = app.cli(&[
        "import",
        "acme",
        file.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--list",
        "=HYPERLINK(\"http://evil.example\")",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&app.cli(&["contacts", "export", "acme"]));
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    for row in &rows {
        for cell in row.iter() {
            assert!(!dropfeed::spreadsheet::could_evaluate(cell), "{cell:?} left as it was in {csv}");
        }
        assert_eq!(&row[column("lists")], "'=HYPERLINK(\"http://evil.example\")");
    }
    assert_eq!(&rows[0][column("attribute.customer_id")], "'-1+cmd|' /C calc'!A0");
    assert_eq!(&rows[0][column("attribute.tag")], "'@ x");
    assert_eq!(rows.len(), 2);
}
