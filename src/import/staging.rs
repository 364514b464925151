//! The staging tables an import COPYs into, below the parser, the rules
//! and the writer: the one column list each table is made from (its DDL,
//! the COPY's columns, the width of the rows the rules write), the COPY
//! text buffer, the batches between the parser and the COPY, and the
//! warning bits a row carries.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use sqlx::{AssertSqlSafe, PgConnection};

use crate::profile::Field;

use super::rules::Rule;

/// A correction made to a row that is still imported ("the empty value or
/// default was written"): its message depends only on the rule and the column,
/// so it is stored as a bit, not as a message row per line (a third of the
/// lines of a typical export carry one). `write::keep_messages` turns the bits
/// back into messages, kept per rule as an array of lines.
pub const WARNINGS: [(u8, Rule, Field); 5] = [
    (1, Rule::DisplayEmpty, Field::Display),
    (2, Rule::CivilityEmpty, Field::Civility),
    (4, Rule::NameEmpty, Field::FirstName),
    (8, Rule::NameEmpty, Field::LastName),
    (16, Rule::LanguageEmpty, Field::Language),
];

/// What the write does with a staged line whose e-mail is a stored
/// contact's: the one-letter code of the `outcome` column of the temporary
/// tables `write::classify` (`classified`) and `mass_update::decide`
/// (`decided`) fill. SQL names an outcome only through `sql()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    /// `u`: the contact is updated from the line.
    Update,
    /// `n`: the line would change nothing.
    Unchanged,
    /// `e`: insert-only mode, the contact exists: the line is skipped.
    Exists,
    /// `x`: a mass update's line whose e-mail is no contact's.
    Unknown,
    /// `c`: a mass update's line whose `[old]` value no longer matches the
    /// stored one.
    Conflict,
}

impl LineOutcome {
    /// The code as an SQL literal, e.g. `'u'`.
    pub const fn sql(self) -> &'static str {
        match self {
            LineOutcome::Update => "'u'",
            LineOutcome::Unchanged => "'n'",
            LineOutcome::Exists => "'e'",
            LineOutcome::Unknown => "'x'",
            LineOutcome::Conflict => "'c'",
        }
    }
}

/// COPY data for the staging tables.
pub struct Batch {
    /// Staging rows, full or narrow as `parse` was asked.
    pub rows: Vec<u8>,
    pub msgs: Vec<u8>,
    /// Rejected records as they were in the file (`run_rejects`).
    pub rejects: Vec<u8>,
}

/// Which staging rows the COPY receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// Every column: what the writes need.
    Full,
    /// Line, e-mail and warnings (a dry run): enough to find duplicates,
    /// new contacts and warnings; the file is staged again in full only if
    /// some e-mails are already known (`write::known_addresses`).
    Narrow,
    /// A mass update's line: e-mail and the `[old]`/`[new]` values, the
    /// same for a dry run (the decision needs them all).
    MassUpdate,
}

/// A column of a staging table: name, SQL type, and whether a dry run's
/// narrow row has it.
struct Column(&'static str, &'static str, bool);

/// The staging table of a contacts file, in the order `validate` writes a
/// row (`Staging::Full`; `Staging::Narrow` writes the marked ones).
const CONTACT_COLUMNS: [Column; 22] = [
    Column("line", "bigint NOT NULL", true),
    Column("email", "text NOT NULL", true),
    Column("language", "text", false),
    Column("display", "text", false),
    Column("civility", "text", false),
    Column("first_name", "text", false),
    Column("last_name", "text", false),
    Column("birthdate", "date", false),
    Column("structure", "text", false),
    Column("address", "text", false),
    Column("postal_code", "text", false),
    Column("town", "text", false),
    Column("state", "text", false),
    Column("country", "text", false),
    Column("phone", "text", false),
    Column("mobile", "text", false),
    Column("criteria", "jsonb", false),
    Column("consents", "jsonb", false),
    Column("attributes", "jsonb", false),
    // WARNINGS bits: the corrections made to this row.
    Column("warns", "smallint NOT NULL", true),
    // The e-mail may repeat an earlier line's (seen::Seen).
    Column("maybe_dup", "boolean NOT NULL", true),
    // The organisation the line names (validate::organisation_key).
    Column("org_key", "text", false),
];

/// The staging table of a mass update (seed 001): per line, the `[old]` and
/// `[new]` values of every pair as JSON objects (every pair's key present,
/// `null` for an empty cell), so duplicates, ANALYZE and messages work on it
/// as on a contacts import's.
const MASS_UPDATE_COLUMNS: [Column; 7] = [
    Column("line", "bigint NOT NULL", true),
    Column("email", "text NOT NULL", true),
    Column("old_criteria", "jsonb NOT NULL", true),
    Column("new_criteria", "jsonb NOT NULL", true),
    Column("old_consents", "jsonb NOT NULL", true),
    Column("new_consents", "jsonb NOT NULL", true),
    Column("maybe_dup", "boolean NOT NULL", true),
];

/// The columns of `staging_messages` and `run_messages`, as COPYed and inserted.
pub const MESSAGE_COLUMNS: &str = "line, column_name, code, severity, value, message";

impl Staging {
    fn table(self) -> &'static [Column] {
        match self {
            Staging::Full | Staging::Narrow => &CONTACT_COLUMNS,
            Staging::MassUpdate => &MASS_UPDATE_COLUMNS,
        }
    }

    /// The columns a row of this staging has, in the order they are written.
    pub fn columns(self) -> impl Iterator<Item = &'static str> {
        let narrow = self == Staging::Narrow;
        self.table().iter().filter(move |c| !narrow || c.2).map(|c| c.0)
    }

    /// `CREATE TEMP TABLE staging (...)`: every column of the table (a dry
    /// run's narrow rows leave the others NULL).
    pub fn ddl(self) -> String {
        let columns: Vec<String> = self.table().iter().map(|c| format!("{} {}", c.0, c.1)).collect();
        format!("CREATE TEMP TABLE staging ({}) ON COMMIT DROP", columns.join(", "))
    }

    /// `COPY staging (...) FROM STDIN` with the columns a row has.
    pub fn copy(self) -> String {
        format!("COPY staging ({}) FROM STDIN", self.columns().collect::<Vec<_>>().join(", "))
    }
}

/// Creates the staging table of `staging` and `staging_messages`, where
/// every message of a run waits until `write::keep_messages`.
pub async fn create(conn: &mut PgConnection, staging: Staging) -> sqlx::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(staging.ddl())).execute(&mut *conn).await?;
    sqlx::raw_sql(
        "CREATE TEMP TABLE staging_messages (
            line bigint NOT NULL, column_name text, code text NOT NULL, severity text NOT NULL,
            value text, message text NOT NULL
        ) ON COMMIT DROP",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts the COPY that receives every staging row of the import.
pub async fn begin_copy(
    conn: &mut PgConnection,
    staging: Staging,
) -> sqlx::Result<sqlx::postgres::PgCopyIn<&mut PgConnection>> {
    conn.copy_in_raw(&staging.copy()).await
}

/// Statistics for the staging table once its rows are in, so the set-based
/// statements get hash joins sized for the file (autovacuum never analyzes
/// temporary tables).
pub async fn analyze(conn: &mut PgConnection, staging: Staging) -> sqlx::Result<()> {
    // The columns the statements join and filter on; a mass update's staging
    // table has no organisation key.
    let org_key = if staging == Staging::MassUpdate { "" } else { ", org_key" };
    let sql = format!("SET LOCAL default_statistics_target = 10; ANALYZE staging (line, email, maybe_dup{org_key})");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    sqlx::raw_sql("RESET default_statistics_target").execute(conn).await?;
    Ok(())
}

/// A COPY text-format buffer (tab-separated, `\N` for NULL, backslash
/// escapes), filled row by row without intermediate strings.
#[derive(Default)]
pub struct CopyBuf {
    buf: Vec<u8>,
    mid_row: bool,
    rows: usize,
    /// Fields written to the current row (checked against the columns).
    fields: usize,
}

impl CopyBuf {
    pub fn with_capacity(n: usize) -> CopyBuf {
        CopyBuf { buf: Vec::with_capacity(n), mid_row: false, rows: 0, fields: 0 }
    }

    /// Reuses a buffer sent back by the writer (its capacity is kept).
    pub fn reuse(mut buf: Vec<u8>) -> CopyBuf {
        buf.clear();
        CopyBuf { buf, mid_row: false, rows: 0, fields: 0 }
    }

    fn sep(&mut self) {
        if self.mid_row {
            self.buf.push(b'\t');
        }
        self.mid_row = true;
        self.fields += 1;
    }

    pub fn null(&mut self) {
        self.sep();
        self.buf.extend_from_slice(b"\\N");
    }

    pub fn text(&mut self, s: &str) {
        self.text_bytes(s.as_bytes());
    }

    pub fn text_bytes(&mut self, s: &[u8]) {
        self.sep();
        if !s.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t')) {
            self.buf.extend_from_slice(s);
            return;
        }
        for &b in s {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                _ => self.buf.push(b),
            }
        }
    }

    pub fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub fn int(&mut self, i: i64) {
        self.sep();
        let _ = write!(Fmt(&mut self.buf), "{i}");
    }

    pub fn bool(&mut self, b: bool) {
        self.sep();
        self.buf.push(if b { b't' } else { b'f' });
    }

    pub fn date(&mut self, d: NaiveDate) {
        self.sep();
        let _ = write!(Fmt(&mut self.buf), "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.mid_row = false;
        self.rows += 1;
        self.fields = 0;
    }

    /// Ends a staging row, which must have one field per column the COPY of
    /// `staging` names (the column list is the one definition of the row).
    pub fn end_staging_row(&mut self, staging: Staging) {
        debug_assert_eq!(self.fields, staging.columns().count(), "a {staging:?} staging row has one field per column");
        self.end_row();
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

struct Fmt<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

pub async fn truncate(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql("TRUNCATE staging").execute(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_column_list_makes_the_table_and_each_copy() {
        assert_eq!(
            Staging::Narrow.copy(),
            "COPY staging (line, email, warns, maybe_dup) FROM STDIN",
            "a dry run's rows"
        );
        assert!(Staging::Full.copy().ends_with("attributes, warns, maybe_dup, org_key) FROM STDIN"));
        assert_eq!(Staging::Full.columns().count(), 22);
        assert!(Staging::Narrow.ddl().contains("birthdate date, "), "the narrow rows go into the full table");
        assert_eq!(
            Staging::MassUpdate.ddl(),
            "CREATE TEMP TABLE staging (line bigint NOT NULL, email text NOT NULL, old_criteria jsonb NOT NULL, \
             new_criteria jsonb NOT NULL, old_consents jsonb NOT NULL, new_consents jsonb NOT NULL, \
             maybe_dup boolean NOT NULL) ON COMMIT DROP"
        );
    }
}
