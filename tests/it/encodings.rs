//! Decoding and CSV shape: encodings, BOM, line endings, quoting, delimiters.

use crate::helpers::{lines_with, profile, spawn_app};

const NAMES: &str = "email;first_name;last_name;town;postal_code;country\n\
    a@x.ch;Élodie;Côté;Genève;1204;Suisse\n\
    b@x.ch;François;Lévesque;Saint-Étienne;42000;France\n\
    c@x.ch;Zoë;Müller;Zürich;8001;CH\n";

async fn names_after(bytes: Vec<u8>, yaml: &str) -> Vec<(String, String, String)> {
    let app = spawn_app().await;
    let report = app.import(&app.write("f.csv", bytes), &profile(yaml)).await;
    assert_eq!(report.counts.inserted, 3, "{:?} {:?}", report.error, report.messages);
    let mut out = Vec::new();
    for e in ["a@x.ch", "b@x.ch", "c@x.ch"] {
        let c = app.contact(e).await.unwrap();
        out.push((
            c["first_name"].as_str().unwrap().into(),
            c["last_name"].as_str().unwrap().into(),
            c["town"].as_str().unwrap().into(),
        ));
    }
    out
}

#[tokio::test]
async fn a_windows_1252_file_imports_the_same_names_as_its_utf8_twin() {
    let utf8 = names_after(NAMES.as_bytes().to_vec(), "{}").await;
    let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(NAMES);
    assert!(!unmappable);
    assert_ne!(cp1252.as_ref(), NAMES.as_bytes());
    assert_eq!(names_after(cp1252.into_owned(), "format:\n  encoding: auto\n").await, utf8);
    let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(NAMES);
    assert_eq!(names_after(cp1252.into_owned(), "format:\n  encoding: windows-1252\n").await, utf8);
    assert_eq!(utf8[0], ("Élodie".into(), "Côté".into(), "Genève".into()));
}

#[tokio::test]
async fn a_utf8_bom_and_crlf_line_endings_are_handled() {
    let with_bom = format!("\u{feff}{}", NAMES.replace('\n', "\r\n"));
    let names = names_after(with_bom.into_bytes(), "{}").await;
    assert_eq!(names[2], ("Zoë".into(), "Müller".into(), "Zürich".into()));
}

#[tokio::test]
async fn quoted_fields_keep_delimiters_quotes_and_newlines_and_lines_are_counted_as_an_editor_does() {
    let app = spawn_app().await;
    let body = "email;display;structure\n\
        a@x.ch;\"Dupont; Jean\";\"Société \"\"Les Amis\"\"\"\n\
        b@x.ch;\"Ligne 1\nLigne 2\";\n\
        bad;x;y\n";
    let report = app.import(&app.write("q.csv", body), &Default::default()).await;
    assert_eq!(report.counts.inserted, 2);
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!(a["display"], "Dupont; Jean");
    assert_eq!(a["structure"], "Société \"Les Amis\"");
    assert_eq!(app.contact("b@x.ch").await.unwrap()["display"], "Ligne 1\nLigne 2");
    assert_eq!(lines_with(&report, "email.format"), vec![5], "the record after a two-line record starts on line 5");
}

#[tokio::test]
async fn empty_lines_before_a_record_do_not_move_its_line_number() {
    let app = spawn_app().await;
    let body = "email;display\n\nbad-one;A\na@x.ch;\"two\nlines\"\n\n\r\n\nbad-two;C\nbad-three;D";
    let report = app.import(&app.write("blank.csv", body), &Default::default()).await;
    assert_eq!(report.counts.inserted, 1);
    assert_eq!(lines_with(&report, "email.format"), vec![3, 9, 10]);
    // The same last record after blank lines, with no final line break.
    let body = "email;display\na@x.ch;A\n\n\nbad-one;B";
    let report = app.import(&app.write("blank-end.csv", body), &Default::default()).await;
    assert_eq!(lines_with(&report, "email.format"), vec![5]);
}

#[tokio::test]
async fn comma_and_tab_delimiters_come_from_the_profile() {
    for (delim, yaml) in [(",", "format:\n  delimiter: \",\"\n"), ("\t", "format:\n  delimiter: \"\\t\"\n")] {
        let body = NAMES.replace(';', delim);
        let names = names_after(body.into_bytes(), yaml).await;
        assert_eq!(names[1].0, "François");
    }
}

#[tokio::test]
async fn a_file_without_header_line_uses_the_profile_columns() {
    let app = spawn_app().await;
    let p = profile("format:\n  header: false\ncolumns:\n  mail: email\n  prenom: first_name\nheader_drift: strict\n");
    let report = app.import(&app.write("nohdr.csv", "a@x.ch;Anne\nbad;Bob\n"), &p).await;
    assert_eq!(report.counts.inserted, 1);
    assert_eq!(lines_with(&report, "email.format"), vec![2]);
}
