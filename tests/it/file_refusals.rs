//! Files that cannot be imported are refused whole: status failed, a message
//! naming the file, the line and the rule, and nothing written.

use crate::helpers::{profile, spawn_app};

async fn refused(bytes: &[u8], yaml: &str, code: &str, line: i64) -> String {
    let app = spawn_app().await;
    let report = app.import(&app.write("contacts_20261121.csv", bytes), &profile(yaml)).await;
    assert_eq!(report.status.as_str(), "failed", "{code}: {:?}", report.messages);
    assert_eq!(report.by_code.get(code), Some(&1), "{code}: {:?}", report.by_code);
    assert_eq!(report.messages[0].line, line, "{code}");
    assert_eq!(app.contact_count().await, 0);
    let error = report.error.clone().unwrap();
    assert!(error.contains("contacts_20261121.csv"), "{error}");
    error
}

#[tokio::test]
async fn binary_files_are_refused_as_not_text() {
    refused(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "{}", "file.not_text", 1).await;
    let e = refused(b"email;town\0\na@x.ch;Paris\n", "{}", "file.not_text", 1).await;
    assert!(e.contains("line 1"), "{e}");
    refused(b"\xff\xfee\0m\0a\0i\0l\0", "{}", "file.not_text", 1).await;
}

#[tokio::test]
async fn a_nul_in_a_data_line_rejects_that_line_with_cell_nul_and_the_others_are_imported() {
    let app = spawn_app().await;
    let file = app.write("t.csv", b"email;first_name\na@x.ch;Anne\nb@x\0.ch;Bo\0b\nc@x.ch;Carl\n");
    let report = app.import(&file, &Default::default()).await;
    assert_eq!(report.counts.inserted, 2, "{:?}", report.messages);
    assert_eq!(crate::helpers::lines_with(&report, "cell.nul"), vec![3]);
    let rejected: String =
        sqlx::query_scalar("SELECT array_to_string(cells, ';') FROM run_rejects").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rejected, "b@x\u{FFFD}.ch;Bo\u{FFFD}b");
}

#[tokio::test]
async fn invalid_utf8_in_a_utf8_profile_is_refused_naming_the_line() {
    let e =
        refused(b"email;town\na@x.ch;Paris\nb@x.ch;Gen\xe8ve\n", "format:\n  encoding: utf-8\n", "file.encoding", 3)
            .await;
    assert!(e.contains("line 3"), "{e}");
}

#[tokio::test]
async fn a_wrong_delimiter_giving_one_column_is_refused() {
    let e = refused(b"email,first_name\na@x.ch,Anne\n", "{}", "file.delimiter", 1).await;
    assert!(e.contains("','"), "{e}");
}

#[tokio::test]
async fn rows_wider_than_the_header_are_refused_naming_the_line() {
    let e = refused(b"email;first_name\na@x.ch;Anne\nb@x.ch;Bob;extra\n", "{}", "file.ragged", 3).await;
    assert!(e.contains("line 3"), "{e}");
}

#[tokio::test]
async fn trailing_empty_cells_beyond_the_header_are_tolerated_and_short_rows_rejected() {
    let app = spawn_app().await;
    let report =
        app.import(&app.write("t.csv", "email;first_name\na@x.ch;Anne;;\nb@x.ch\n"), &Default::default()).await;
    assert_eq!(report.counts.inserted, 1);
    assert_eq!(crate::helpers::lines_with(&report, "row.columns"), vec![3]);
}

#[tokio::test]
async fn empty_files_and_files_without_an_email_column_are_refused() {
    refused(b"", "{}", "file.empty", 1).await;
    refused(b"courriel;prenom\na@x.ch;Anne\n", "{}", "header.no_email", 1).await;
}

#[tokio::test]
async fn a_header_only_file_imports_nothing_and_succeeds() {
    let app = spawn_app().await;
    let report = app.import(&app.write("h.csv", "email;first_name\n"), &Default::default()).await;
    assert_eq!(report.status.as_str(), "succeeded");
    assert_eq!(report.counts.rows, 0);
}
