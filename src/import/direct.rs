//! Rows certainly new, written straight into `contacts` while the file is
//! parsed: their e-mail is no contact's of the tenant (a Bloom filter of the
//! tenant's addresses, loaded under the tenant's lock, says so with no false
//! negatives), no earlier line of the file may repeat it (`seen`), and they
//! name no organisation. They skip the staging table and the set-based
//! insert; every other row goes the staged way. What still reads a direct
//! row afterwards (its warnings, an e-mail a later line repeats) finds a
//! narrow copy of it in `staging`, marked `direct`.

use std::collections::HashSet;
use std::io::{BufRead, Seek, SeekFrom};

use futures_util::TryStreamExt;
use sqlx::PgConnection;
use uuid::Uuid;

use super::seen::Seen;
use super::staging::{CopyBuf, Staging, escape_copy_text};

/// The columns of a direct row, in the order `validate` writes them. A
/// direct row names no organisation (`structure`, `organisation_id` stay
/// NULL) and takes the table's defaults for its timestamps.
pub const CONTACT_COLUMNS: [&str; 20] = [
    "tenant_id",
    "email",
    "language",
    "display",
    "civility",
    "first_name",
    "last_name",
    "birthdate",
    "address",
    "postal_code",
    "town",
    "state",
    "country",
    "phone",
    "mobile",
    "criteria",
    "consents",
    "attributes",
    "created_by_run",
    "updated_by_run",
];

/// `COPY contacts (...) FROM STDIN` for direct rows.
pub fn copy_sql() -> String {
    format!("COPY contacts ({}) FROM STDIN", CONTACT_COLUMNS.join(", "))
}

/// What the parser needs to write a row straight into `contacts`.
pub struct Direct {
    /// The tenant's addresses; `None` when it has no contact yet.
    known: Option<Seen>,
    /// The tenant's id and the run's, as the COPY writes them.
    pub tenant_id: String,
    pub run_id: String,
    /// The language of a contact whose cell is empty (`write::inserted`'s `$2`).
    pub default_language: &'static str,
}

impl Direct {
    /// Whether `email` may be a contact of the tenant already (false: it is
    /// certainly not).
    pub fn may_be_known(&self, email: &str) -> bool {
        self.known.as_ref().is_some_and(|k| k.contains(email))
    }
}

/// Loads the tenant's addresses into a Bloom filter. Called under the
/// tenant's lock, so no other import adds one before this one commits.
pub async fn load(
    conn: &mut PgConnection,
    tenant_id: i64,
    run_id: Uuid,
    default_language: &'static str,
) -> anyhow::Result<Direct> {
    let mut direct =
        Direct { known: None, tenant_id: tenant_id.to_string(), run_id: run_id.to_string(), default_language };
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM contacts WHERE tenant_id = $1)")
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    if !any {
        return Ok(direct);
    }
    // COPY streams the addresses as text lines, far cheaper than decoding a
    // row per contact; the tenant id is an integer, formatted in.
    let sql = format!("COPY (SELECT email FROM contacts WHERE tenant_id = {tenant_id}) TO STDOUT");
    let mut stream = conn.copy_out_raw(&sql).await?;
    let mut known = Seen::default();
    let mut partial: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        partial.extend_from_slice(&chunk);
        let end = partial.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in partial[..end].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            known.insert_bytes(&unescape_copy_text(line));
        }
        partial.drain(..end);
    }
    direct.known = Some(known);
    Ok(direct)
}

/// A COPY text field back to its bytes (stored e-mails rarely hold a
/// backslash: the copy is made only then).
fn unescape_copy_text(field: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !field.contains(&b'\\') {
        return std::borrow::Cow::Borrowed(field);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The e-mails of staged rows flagged as possibly repeating an earlier line,
/// as COPY text: the direct line they may repeat must be staged too.
#[derive(Default, Debug)]
pub struct Flagged(HashSet<Vec<u8>>);

impl Flagged {
    pub fn insert(&mut self, email: &str) {
        let mut escaped = Vec::with_capacity(email.len());
        escape_copy_text(&mut escaped, email.as_bytes());
        self.0.insert(escaped);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A direct line as the parser spills it: line, e-mail, warning bits.
pub fn write_line(lines: &mut CopyBuf, line: u64, email: &str, warns: u8) {
    lines.int(line as i64);
    lines.text(email);
    lines.int(i64::from(warns));
    lines.end_row();
}

/// Stages the direct lines something still reads: those with warnings (the
/// run's messages and counts), and those whose e-mail a flagged line may
/// repeat (the duplicate check). Reads the parser's spill of every direct
/// line once. Returns the lines staged.
pub async fn stage_lines(conn: &mut PgConnection, mut spill: std::fs::File, flagged: &Flagged) -> anyhow::Result<u64> {
    spill.seek(SeekFrom::Start(0))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, spill);
    let mut copy = conn.copy_in_raw(&Staging::Direct.copy()).await?;
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut line: Vec<u8> = Vec::new();
    let mut staged = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let row = line.strip_suffix(b"\n").unwrap_or(&line);
        let mut fields = row.split(|b| *b == b'\t');
        let (Some(_line), Some(email), Some(warns)) = (fields.next(), fields.next(), fields.next()) else {
            anyhow::bail!("a direct line of the spill file is malformed");
        };
        if warns != b"0" || flagged.0.contains(email) {
            out.extend_from_slice(row);
            out.extend_from_slice(b"\tf\tt\n");
            staged += 1;
        }
        if out.len() >= 1 << 20 {
            copy.send(&out[..]).await?;
            out.clear();
        }
    }
    if !out.is_empty() {
        copy.send(&out[..]).await?;
    }
    copy.finish().await?;
    Ok(staged)
}

/// The memberships of the direct rows, by one statement over the contacts
/// this run created (the BRIN index on `created_by_run`). Run before the
/// staged insert, whose rows get theirs from its `RETURNING`.
pub async fn add_members(conn: &mut PgConnection, tenant_id: i64, run_id: Uuid, list_ids: &[i64]) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, c.id, $2 FROM contacts c CROSS JOIN unnest($3::bigint[]) AS l(id)
         WHERE c.tenant_id = $1 AND c.created_by_run = $2",
    )
    .bind(tenant_id)
    .bind(run_id)
    .bind(list_ids)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Removes the direct rows of a run that must write nothing after all (a
/// guard tripped, too many invalid lines): the rest of the transaction
/// stays, with the run's record and messages.
pub async fn undo(conn: &mut PgConnection, tenant_id: i64, run_id: Uuid) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM contacts WHERE tenant_id = $1 AND created_by_run = $2")
        .bind(tenant_id)
        .bind(run_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_reads_back_as_it_was_escaped() {
        for raw in ["plain@example.com", "back\\slash@example.com", "tab\there", "line\nbreak\r"] {
            let mut escaped = Vec::new();
            escape_copy_text(&mut escaped, raw.as_bytes());
            assert_eq!(&*unescape_copy_text(&escaped), raw.as_bytes(), "{raw:?}");
        }
    }
}
