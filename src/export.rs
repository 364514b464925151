//! `contacts export`: the tenant's contacts as a semicolon CSV whose columns
//! are the targets of SPEC §3, so that an export imports back unchanged.

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::{PgPool, Row};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::profile::Field;
use crate::spreadsheet::neutralise;
use crate::store::contacts::{self, Filter};

/// Which values `contacts export --old-new` writes as `[old]`/`[new]` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OldNew {
    Criteria,
    Consents,
}

/// What a csv writer holds, once flushed.
fn finish(w: ::csv::Writer<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    w.into_inner().map_err(|e| anyhow::anyhow!("cannot write the export: {}", e.error()))
}

/// Bytes of CSV handed to the writer at a time.
const FLUSH_BYTES: usize = 256 << 10;

/// Writes the selected contacts to `out`; returns how many were written.
/// With `old_new`, writes seed 001's mass-update file instead: `email`,
/// `id`, then `[old] X` and `[new] X` for each criterion (the codes used by
/// the contacts and those the tenant's profiles declare, `declared`) or
/// each consent, `[new]` filled with the current value so that an
/// untouched line changes nothing.
pub async fn write_contacts(
    pool: &PgPool,
    filter: &Filter,
    old_new: Option<(OldNew, &[String])>,
    out: &mut (impl AsyncWrite + Unpin),
) -> anyhow::Result<u64> {
    let mut tx = contacts::begin(pool).await.context("cannot start reading contacts")?;
    let [mut criteria, consents, attributes] =
        contacts::keys(&mut tx, filter).await.context("cannot list contact keys")?;
    // The csv writer fills a buffer that is handed to `out` every
    // `FLUSH_BYTES`: memory stays flat whatever the number of contacts.
    let mut builder = ::csv::WriterBuilder::new();
    builder.delimiter(b';');
    let buffer = || Vec::with_capacity(FLUSH_BYTES + (64 << 10));
    let mut w = builder.from_writer(buffer());
    let mut header: Vec<String> = Vec::new();
    if let Some((kind, declared)) = old_new {
        header.extend(["email".to_owned(), "id".to_owned()]);
        let (prefix, keys) = match kind {
            OldNew::Criteria => {
                criteria.extend(declared.iter().filter(|d| !criteria.contains(d)).cloned().collect::<Vec<_>>());
                criteria.sort();
                ("criteria", &criteria)
            }
            OldNew::Consents => ("consent", &consents),
        };
        for k in keys {
            header.push(format!("[old] {prefix}.{k}"));
            header.push(format!("[new] {prefix}.{k}"));
        }
    } else {
        header.extend(Field::ALL.iter().map(|f| f.name().to_owned()));
        header.extend(criteria.iter().map(|k| format!("criteria.{k}")));
        header.extend(consents.iter().map(|k| format!("consent.{k}")));
        header.extend(attributes.iter().map(|k| format!("attribute.{k}")));
        header.push("lists".into());
    }
    // Every cell neutralised as in the rejects file: a contact's name, a
    // criterion or a list name may be a formula a spreadsheet would run.
    w.write_record(header.iter().map(|h| neutralise(h)))?;

    let mut rows = contacts::stream(&mut tx, filter);
    let mut n = 0u64;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    while let Some(row) = rows.try_next().await.context("cannot read contacts")? {
        record.clear();
        let json = |column: &str| row.get::<serde_json::Value, _>(column);
        let (crit, cons, attr) = (json("criteria"), json("consents"), json("attributes"));
        let text_of = |v: &serde_json::Value, k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Bool(true)) => "TRUE".into(),
            Some(serde_json::Value::Bool(false)) => "FALSE".into(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => String::new(),
        };
        if let Some((kind, _)) = old_new {
            record.push(contacts::text(&row, "email"));
            record.push(row.get::<i64, _>("id").to_string());
            let (values, keys) = match kind {
                OldNew::Criteria => (&crit, &criteria),
                OldNew::Consents => (&cons, &consents),
            };
            for k in keys {
                let v = text_of(values, k);
                record.push(v.clone());
                record.push(v);
            }
        } else {
            record.extend(Field::ALL.iter().map(|f| contacts::text(&row, f.name())));
            record.extend(criteria.iter().map(|k| text_of(&crit, k)));
            record.extend(consents.iter().map(|k| text_of(&cons, k)));
            record.extend(attributes.iter().map(|k| text_of(&attr, k)));
            record.push(contacts::text(&row, "lists"));
        }
        w.write_record(record.iter().map(|c| neutralise(c)))?;
        n += 1;
        if n.is_multiple_of(256) {
            w.flush()?;
            if w.get_ref().len() >= FLUSH_BYTES {
                let full = std::mem::replace(&mut w, builder.from_writer(buffer()));
                out.write_all(&finish(full)?).await.context("cannot write the export")?;
            }
        }
    }
    out.write_all(&finish(w)?).await.context("cannot write the export")?;
    out.flush().await.context("cannot write the export")?;
    Ok(n)
}
