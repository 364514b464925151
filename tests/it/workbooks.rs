//! Workbooks (.xlsx, .xls, zipped or not) import as the CSV the user would
//! have saved from them: first sheet only, cells as displayed, dates as
//! dd.mm.yyyy; a corrupt or oversized workbook is refused, nothing written.

use std::io::Write;
use std::path::Path;

use dropfeed::configuration::Limits;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

use crate::helpers::{Opts, TestApp, profile, sha256_hex, spawn_app};

/// Every column of the workbooks below, mapped by name.
const PROFILE: &str = "columns:\n  email: email\n  first_name: first_name\n  last_name: last_name\n  \
    birthdate: birthdate\n  postal_code: postal_code\n  town: town\n  phone: phone\n  \
    newsletter: consent.newsletter\n  score: attribute.score\n";

/// What the user would have saved from the workbooks as CSV.
const CONTACTS_CSV: &str = "email;first_name;last_name;birthdate;postal_code;town;phone;newsletter;score\n\
    anne@x.ch;ANNE;Aebi;01.01.1980;1201;Genève;41221234567;TRUE;3.25\n\
    bob@x.ch;Bob;;;8001;Zürich;+41 44 000 00 00;FALSE;0.3\n";

/// The contacts of `CONTACTS_CSV` as an .xlsx: a formula with its cached
/// value, a date cell, numbers for the postal code and the phone, booleans,
/// a float that is not exactly 0.3, an empty cell; then formatted empty rows,
/// and a second sheet that must be ignored.
fn contacts_xlsx() -> Vec<u8> {
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let sheet = book.add_worksheet();
    sheet.set_name("Contacts").unwrap();
    let header =
        ["email", "first_name", "last_name", "birthdate", "postal_code", "town", "phone", "newsletter", "score"];
    for (col, name) in header.iter().enumerate() {
        sheet.write_string(0, col as u16, *name).unwrap();
    }
    sheet.write_string(1, 0, "anne@x.ch").unwrap();
    sheet.write_formula(1, 1, Formula::new("=UPPER(\"anne\")").set_result("ANNE")).unwrap();
    sheet.write_string(1, 2, "Aebi").unwrap();
    sheet.write_datetime_with_format(1, 3, ExcelDateTime::from_ymd(1980, 1, 1).unwrap(), &date).unwrap();
    sheet.write_number(1, 4, 1201).unwrap();
    sheet.write_string(1, 5, "Genève").unwrap();
    sheet.write_number(1, 6, 41_221_234_567.0).unwrap();
    sheet.write_boolean(1, 7, true).unwrap();
    sheet.write_number(1, 8, 3.25).unwrap();
    sheet.write_string(2, 0, "bob@x.ch").unwrap();
    sheet.write_string(2, 1, "Bob").unwrap();
    sheet.write_blank(2, 2, &date).unwrap();
    sheet.write_number(2, 4, 8001).unwrap();
    sheet.write_string(2, 5, "Zürich").unwrap();
    sheet.write_string(2, 6, "+41 44 000 00 00").unwrap();
    sheet.write_boolean(2, 7, false).unwrap();
    sheet.write_number(2, 8, 0.1 + 0.2).unwrap();
    for row in 3..8 {
        sheet.write_blank(row, 0, &date).unwrap();
    }
    let other = book.add_worksheet();
    other.set_name("Ignored").unwrap();
    other.write_string(0, 0, "email").unwrap();
    other.write_string(1, 0, "carl@x.ch").unwrap();
    book.save_to_buffer().unwrap()
}

/// An .xlsx of one sheet, `Feuil1`: a header `email` and `n` addresses.
pub fn numbered_xlsx(n: u32) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Feuil1").unwrap();
    sheet.write_string(0, 0, "email").unwrap();
    for i in 1..=n {
        sheet.write_string(i, 0, format!("p{i}@x.ch")).unwrap();
    }
    book.save_to_buffer().unwrap()
}

pub fn zipped(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The stored contacts, the columns the workbooks set, by e-mail.
async fn stored(app: &TestApp) -> Vec<serde_json::Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(c) FROM (SELECT email, first_name, last_name, birthdate, postal_code, town, phone,
                consents, attributes FROM contacts ORDER BY email) c",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The one message of `CONTACTS_CSV`: Bob's empty last name, set to `-`.
fn warnings() -> std::collections::BTreeMap<String, i64> {
    [("name.empty".to_owned(), 1)].into_iter().collect()
}

/// Imports `CONTACTS_CSV`, then clears the contacts: what a workbook must store.
async fn stored_from_the_csv(app: &TestApp) -> Vec<serde_json::Value> {
    let report = app.import(&app.write("contacts.csv", CONTACTS_CSV), &profile(PROFILE)).await;
    assert_eq!(report.counts.inserted, 2, "{:?} {:?}", report.error, report.messages);
    assert_eq!(report.by_code, warnings());
    let contacts = stored(app).await;
    app.clear_contacts().await;
    contacts
}

#[tokio::test]
async fn an_xlsx_workbook_imports_the_same_contacts_as_the_csv_saved_from_it() {
    let app = spawn_app().await;
    let expected = stored_from_the_csv(&app).await;
    let bytes = contacts_xlsx();
    let report = app.import(&app.write("contacts_20261121.xlsx", &bytes), &profile(PROFILE)).await;

    assert_eq!(report.status.as_str(), "succeeded_with_warnings", "{:?}", report.error);
    assert_eq!(report.by_code, warnings(), "{:?}", report.messages);
    // The second sheet and the formatted empty rows are not rows.
    assert_eq!((report.counts.rows, report.counts.inserted), (2, 2));
    let contacts = stored(&app).await;
    assert_eq!(contacts, expected);
    let anne = &contacts[0];
    assert_eq!(anne["birthdate"], "1980-01-01");
    assert_eq!(anne["postal_code"], "1201");
    assert_eq!(anne["phone"], "41221234567");
    assert_eq!(anne["first_name"], "ANNE", "the formula's cached value");
    assert_eq!(anne["consents"]["newsletter"], true);
    assert_eq!(contacts[1]["attributes"]["score"], "0.3");
    // The run is the workbook's, as dropped.
    assert_eq!(report.file.name, "contacts_20261121.xlsx");
    assert_eq!((report.file.size, report.file.sha256.as_str()), (bytes.len() as i64, sha256_hex(&bytes).as_str()));
    assert_eq!(report.options["encoding"], "utf-8");
}

#[tokio::test]
async fn a_workbook_is_recognised_by_its_content_whatever_its_name() {
    let app = spawn_app().await;
    let report = app.import(&app.write("contacts_20261121.csv", contacts_xlsx()), &profile(PROFILE)).await;
    assert_eq!(report.counts.inserted, 2, "{:?}", report.error);
    assert_eq!(report.by_code, warnings(), "{:?}", report.messages);
}

#[tokio::test]
async fn an_xlsx_workbook_in_a_zip_imports_and_the_run_keeps_the_zip() {
    let app = spawn_app().await;
    let expected = stored_from_the_csv(&app).await;
    let bytes = zipped(&[("export/contacts.xlsx", &contacts_xlsx())]);
    let report = app.import(&app.write("secutix_20261121.zip", &bytes), &profile(PROFILE)).await;

    assert_eq!(report.status.as_str(), "succeeded_with_warnings", "{:?}", report.error);
    assert_eq!(report.by_code, warnings(), "{:?}", report.messages);
    assert_eq!(stored(&app).await, expected);
    assert_eq!(report.file.name, "secutix_20261121.zip");
    assert_eq!(report.file.sha256, sha256_hex(&bytes));
}

#[tokio::test]
async fn a_zip_inside_a_zip_is_still_refused() {
    let app = spawn_app().await;
    let inner = zipped(&[("contacts.csv", CONTACTS_CSV.as_bytes())]);
    let report = app.import(&app.write("outer.zip", zipped(&[("inner.zip", &inner)])), &profile(PROFILE)).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("archive.entries"), Some(&1), "{:?}", report.by_code);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn a_truncated_xlsx_is_refused_as_a_corrupt_workbook_naming_the_file() {
    let app = spawn_app().await;
    let bytes = contacts_xlsx();
    let path = app.write("contacts_20261121.xlsx", &bytes[..bytes.len() / 2]);
    let report = app.import(&path, &profile(PROFILE)).await;

    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("file.workbook"), Some(&1), "{:?}", report.by_code);
    let error = report.error.unwrap();
    assert!(error.contains("contacts_20261121.xlsx") && error.contains("[file.workbook]"), "{error}");
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn an_xlsx_with_more_rows_than_the_limit_is_refused_naming_the_sheet_and_row() {
    let app = spawn_app().await;
    let limits = Limits { max_rows: 3, ..Limits::default() };
    let path = app.write("contacts.xlsx", numbered_xlsx(5));
    let report = app.import_with(&path, &profile("{}"), Opts { limits: Some(limits), ..Opts::default() }).await;

    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("file.too_many_rows"), Some(&1), "{:?}", report.by_code);
    // The fourth data row is row 5 of the sheet.
    assert_eq!(report.messages[0].line, 5);
    assert!(report.messages[0].value.as_deref().unwrap_or("").contains("sheet Feuil1, row 5"), "{:?}", report.messages);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn a_workbook_larger_than_max_workbook_bytes_is_refused_unopened() {
    let app = spawn_app().await;
    let bytes = numbered_xlsx(50);
    let limits = Limits { max_workbook_bytes: bytes.len() as u64 - 1, ..Limits::default() };
    let path = app.write("contacts.xlsx", &bytes);
    let report = app.import_with(&path, &profile("{}"), Opts { limits: Some(limits), ..Opts::default() }).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("file.too_large"), Some(&1), "{:?}", report.by_code);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn an_xlsx_whose_parts_inflate_past_max_unpacked_bytes_is_refused_before_it_is_opened() {
    let app = spawn_app().await;
    let bytes = numbered_xlsx(50);
    // Smaller than the sheet's XML, larger than the file: only inflating shows it.
    let limits = Limits { max_unpacked_bytes: bytes.len() as u64 + 1, ..Limits::default() };
    let path = app.write("contacts.xlsx", &bytes);
    let report = app.import_with(&path, &profile("{}"), Opts { limits: Some(limits), ..Opts::default() }).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("archive.too_large"), Some(&1), "{:?}", report.by_code);
    assert_eq!(app.contact_count().await, 0);
}

#[tokio::test]
async fn messages_of_a_workbook_name_the_row_excel_shows() {
    let app = spawn_app().await;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "email").unwrap();
    sheet.write_string(1, 0, "a@x.ch").unwrap();
    // Row 3 left empty: row 4 is still line 4.
    sheet.write_string(3, 0, "not-an-email").unwrap();
    sheet.write_string(3, 1, "Anne").unwrap();
    sheet.write_string(0, 1, "first_name").unwrap();
    let path = app.write("contacts.xlsx", book.save_to_buffer().unwrap());
    let report = app.import(&path, &profile("{}")).await;
    assert_eq!((report.counts.rows, report.counts.inserted), (2, 1), "{:?}", report.error);
    assert_eq!(crate::helpers::lines_with(&report, "email.format"), vec![4]);
}

#[tokio::test]
async fn an_xls_workbook_imports_the_same_contacts_as_the_csv_saved_from_it() {
    let app = spawn_app().await;
    let expected = stored_from_the_csv(&app).await;
    // Made by tests/fixtures/workbooks/make.py (xlwt): no Rust crate writes .xls.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workbooks/contacts.xls");
    let report = app.import(&fixture, &profile(PROFILE)).await;

    assert_eq!(report.status.as_str(), "succeeded_with_warnings", "{:?}", report.error);
    assert_eq!(report.by_code, warnings(), "{:?}", report.messages);
    assert_eq!(report.counts.rows, 2);
    assert_eq!(stored(&app).await, expected);
}

#[tokio::test]
async fn a_txt_file_separated_by_semicolons_imports_as_a_csv() {
    let app = spawn_app().await;
    let expected = stored_from_the_csv(&app).await;
    let report = app.import(&app.write("contacts_20261121.txt", CONTACTS_CSV), &profile(PROFILE)).await;
    assert_eq!(report.status.as_str(), "succeeded_with_warnings", "{:?}", report.error);
    assert_eq!(report.by_code, warnings(), "{:?}", report.messages);
    assert_eq!(stored(&app).await, expected);
}

#[tokio::test]
async fn an_xlsx_whose_shared_strings_inflate_past_their_own_limit_is_refused_before_it_is_opened() {
    let app = spawn_app().await;
    // 300 different strings of 30,000 letters: 9 MB of shared strings in a
    // file of a few kilobytes, as a bomb would hold hundreds of megabytes.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "email").unwrap();
    sheet.write_string(0, 1, "town").unwrap();
    for i in 1..=300u32 {
        sheet.write_string(i, 0, format!("p{i}@x.ch")).unwrap();
        sheet.write_string(i, 1, format!("{i}{}", "x".repeat(30_000))).unwrap();
    }
    let bytes = book.save_to_buffer().unwrap();
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    let path = app.write("contacts.xlsx", &bytes);
    let limits = Limits { max_shared_strings_bytes: 4 << 20, ..Limits::default() };
    let report = app.import_with(&path, &profile("{}"), Opts { limits: Some(limits), ..Opts::default() }).await;
    assert_eq!(report.status.as_str(), "failed");
    assert_eq!(report.by_code.get("archive.too_large"), Some(&1), "{:?}", report.by_code);
    assert!(report.error.as_deref().unwrap_or_default().contains("shared strings"), "{:?}", report.error);
    assert_eq!(app.contact_count().await, 0);
}
