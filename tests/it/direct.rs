//! Rows written straight into `contacts` while the file is parsed
//! (`import::direct`) against the same rows through staging and the
//! set-based insert.

use sqlx::Row;

use crate::helpers::{TestApp, lines_with, profile, spawn_app};

/// Every kind of cell a new contact takes: empty NOT NULL fields (their
/// defaults), a date, criteria, consents (true, false, empty), attributes,
/// an escaped character, and one line naming a structure (always staged).
/// The e-mails are not in file order, so the order of the contacts' ids
/// shows which way they were written.
const FILE: &str = "email;language;display;civility;first_name;last_name;birthdate;town;postal_code;country;seg;nl;shoe;company\n\
zoe@x.ch;EN;Zoé;MRS;Zoé;Zed;01.02.1980;Genève;1204;CH;gold;TRUE;42;\n\
yann@x.ch;;;;;;;;;;;FALSE;;\n\
xavier@x.ch;fr;X\\Y;mr;Xavier;;;Lyon;69002;France;silver;;;\n\
wanda@x.ch;;;;Wanda;Wu;;;;;;;44;ACME SA\n\
victor@x.ch;EN;;MISS;;Vu;29.02.2000;;;;gold;t;;\n";

const YAML: &str = "columns:\n  email: email\n  language: language\n  display: display\n  civility: civility\n  \
                    first_name: first_name\n  last_name: last_name\n  birthdate: birthdate\n  town: town\n  \
                    postal_code: postal_code\n  country: country\n  seg: criteria.segment\n  nl: consent.newsletter\n  \
                    shoe: attribute.shoe\n  company: structure\ncriteria:\n  segment: [gold, silver]\nlists: [all]\n";

/// The stored contacts, every column but ids, runs and timestamps, by e-mail.
async fn stored(app: &TestApp) -> Vec<serde_json::Value> {
    sqlx::query(
        "SELECT to_jsonb(c) - 'id' - 'created_by_run' - 'updated_by_run' - 'created_at' - 'updated_at'
                - 'organisation_id' || jsonb_build_object('organisation', o.name) AS j
         FROM contacts c LEFT JOIN organisations o ON o.id = c.organisation_id ORDER BY c.email",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("j"))
    .collect()
}

/// The contacts' e-mails in the order of their ids (the order they were written).
async fn written_order(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT email FROM contacts ORDER BY id").fetch_all(&app.pool).await.unwrap()
}

#[tokio::test]
async fn rows_written_during_the_parse_are_stored_as_the_staged_insert_stores_them() {
    let app = spawn_app().await;
    let direct = app.import(&app.write("direct.csv", FILE), &profile(YAML)).await;
    assert_eq!(direct.status.as_str(), "succeeded_with_warnings", "{:?}", direct.messages);
    // Written in file order during the parse; the structure's line after them, staged.
    assert_eq!(written_order(&app).await, ["zoe@x.ch", "yann@x.ch", "xavier@x.ch", "victor@x.ch", "wanda@x.ch"]);
    let direct_rows = stored(&app).await;
    let direct_members = app.list_members("all").await;

    app.clear_contacts().await;
    sqlx::raw_sql("TRUNCATE organisations").execute(&app.pool).await.unwrap();
    // `on_invalid_row: abort` writes nothing during the parse: every row is staged.
    let staged = app.import(&app.write("staged.csv", FILE), &profile(&format!("{YAML}on_invalid_row: abort\n"))).await;
    assert_eq!(written_order(&app).await, ["victor@x.ch", "wanda@x.ch", "xavier@x.ch", "yann@x.ch", "zoe@x.ch"]);

    assert_eq!(stored(&app).await, direct_rows);
    assert_eq!(app.list_members("all").await, direct_members);
    assert_eq!(direct_members.len(), 5);
    assert_eq!(staged.counts, direct.counts);
    let messages = |r: &dropfeed::report::Report| {
        r.messages.iter().map(|m| (m.line, m.code.clone(), m.value.clone())).collect::<Vec<_>>()
    };
    assert_eq!(messages(&staged), messages(&direct));
}

#[tokio::test]
async fn a_line_written_during_the_parse_gives_way_to_a_later_line_of_the_same_email_when_the_last_is_kept() {
    let app = spawn_app().await;
    let file = "email;first_name\nann@x.ch;First\nbob@x.ch;Bob\nANN@x.ch;Second\n";
    let report = app.import(&app.write("dups.csv", file), &profile("lists: [all]\n")).await;
    assert_eq!((report.counts.inserted, report.counts.rejected), (2, 1));
    assert_eq!(lines_with(&report, "email.duplicate_in_file"), vec![2]);
    assert_eq!(app.contact("ann@x.ch").await.unwrap()["first_name"], "Second");
    assert_eq!(app.contact_count().await, 2);
    assert_eq!(app.list_members("all").await, ["ann@x.ch", "bob@x.ch"]);
}

#[tokio::test]
async fn a_second_file_writes_its_new_addresses_during_the_parse_and_updates_the_known_ones() {
    let app = spawn_app().await;
    let first = "email;first_name\nkept@x.ch;Kim\nmoved@x.ch;Mia\n";
    app.import(&app.write("first.csv", first), &profile("lists: [all]\n")).await;
    let second = "email;first_name\nnew2@x.ch;Noa\nMOVED@x.ch;Maya\nnew1@x.ch;Ned\nkept@x.ch;Kim\n";
    let report = app.import(&app.write("second.csv", second), &profile("lists: [all]\n")).await;
    let c = &report.counts;
    assert_eq!((c.rows, c.inserted, c.updated, c.unchanged), (4, 2, 1, 1), "{:?} {:?}", report.counts, report.messages);
    assert_eq!(app.contact("moved@x.ch").await.unwrap()["first_name"], "Maya");
    assert_eq!(written_order(&app).await, ["kept@x.ch", "moved@x.ch", "new2@x.ch", "new1@x.ch"]);
    assert_eq!(app.list_members("all").await, ["kept@x.ch", "moved@x.ch", "new1@x.ch", "new2@x.ch"]);
}
