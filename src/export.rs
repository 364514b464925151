//! `contacts export`: the tenant's contacts as a semicolon CSV whose columns
//! are the targets of SPEC §3, so that an export imports back unchanged.

use std::io::Write;

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::{PgPool, Row};

use crate::profile::Field;
use crate::store::contacts::{self, Filter};

/// Writes the selected contacts to `out`; returns how many were written.
/// With `old_new`, writes seed 001's mass-update file instead: the e-mail,
/// then `[old]`/`[new]` column pairs for every criterion and consent.
pub async fn write_contacts(pool: &PgPool, filter: &Filter, old_new: bool, out: impl Write) -> anyhow::Result<u64> {
    let [criteria, consents, attributes] = contacts::keys(pool, filter).await.context("cannot list contact keys")?;
    let mut w = ::csv::WriterBuilder::new().delimiter(b';').from_writer(out);
    let mut header: Vec<String> = Vec::new();
    if old_new {
        header.push("email".into());
        for k in &criteria {
            header.push(format!("[old]criteria.{k}"));
            header.push(format!("[new]criteria.{k}"));
        }
        for k in &consents {
            header.push(format!("[old]consent.{k}"));
            header.push(format!("[new]consent.{k}"));
        }
    } else {
        header.extend(Field::ALL.iter().map(|f| f.name().to_owned()));
        header.extend(criteria.iter().map(|k| format!("criteria.{k}")));
        header.extend(consents.iter().map(|k| format!("consent.{k}")));
        header.extend(attributes.iter().map(|k| format!("attribute.{k}")));
        header.push("lists".into());
    }
    w.write_record(&header)?;

    let mut rows = contacts::stream(pool, filter);
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
        if old_new {
            record.push(contacts::text(&row, "email"));
            for k in &criteria {
                record.push(text_of(&crit, k));
                record.push(String::new());
            }
            for k in &consents {
                record.push(text_of(&cons, k));
                record.push(String::new());
            }
        } else {
            record.extend(Field::ALL.iter().map(|f| contacts::text(&row, f.name())));
            record.extend(criteria.iter().map(|k| text_of(&crit, k)));
            record.extend(consents.iter().map(|k| text_of(&cons, k)));
            record.extend(attributes.iter().map(|k| text_of(&attr, k)));
            record.push(contacts::text(&row, "lists"));
        }
        w.write_record(&record)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}
