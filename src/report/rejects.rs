//! The rejects file (SPEC §6): a run's rejected lines as the customer sent
//! them, in the file's own columns and delimiter, plus `line` and `reason`,
//! to fix and drop again. Written while a cursor reads the lines.

use crate::spreadsheet::neutralise;
use anyhow::Context;
use sqlx::PgPool;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::domain::ReportLanguage;
use crate::report::FileInfo;
use crate::store::runs;

/// What was written of a rejects file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rejected lines written.
    pub lines: u64,
    pub bytes: u64,
    /// False when `max_bytes` stopped it before the last line.
    pub complete: bool,
}

/// What writing a run's rejects file for download needs: its name, the
/// file's delimiter and the tenant's language (the e-mail may use another).
pub struct Source {
    pub file_name: String,
    pub delimiter: u8,
    pub lang: ReportLanguage,
}

/// The `Source` of run `id`, `None` when there is no such run.
pub async fn source(pool: &PgPool, id: Uuid) -> anyhow::Result<Option<Source>> {
    let Some(head) = runs::head(pool, id).await.with_context(|| format!("cannot read run {id}"))? else {
        return Ok(None);
    };
    let Some(tenant_id) = runs::tenant_of(pool, id).await.with_context(|| format!("cannot read run {id}"))? else {
        return Ok(None);
    };
    let lang = crate::store::tenants::find_by_id(pool, tenant_id).await?.language;
    Ok(Some(Source { file_name: file_name(&head.file, lang), delimiter: delimiter(&head.options), lang }))
}

/// The name the rejects file of `file` is given (`rejets-…` in French).
pub fn file_name(file: &FileInfo, lang: ReportLanguage) -> String {
    let stem = file.name.trim_end_matches(".csv").trim_end_matches(".txt");
    let prefix = if lang == ReportLanguage::Fr { "rejets" } else { "rejects" };
    format!("{prefix}-{stem}.csv")
}

/// The delimiter a run read its file with (`;` when it was refused unread).
pub fn delimiter(options: &serde_json::Value) -> u8 {
    options.get("delimiter").and_then(|d| d.as_str()).and_then(|d| d.bytes().next()).unwrap_or(b';')
}

/// Writes the rejects file of run `id` to `out`, UTF-8 with a BOM (so that a
/// spreadsheet reads the accents), cells a spreadsheet would run as a formula
/// neutralised by a leading apostrophe (the import removes it again), one
/// batch of lines at a time. Stops before the line that would take it past
/// `max_bytes`. `None` when the run rejected no line.
pub async fn write<W: AsyncWrite + Unpin>(
    pool: &PgPool,
    id: Uuid,
    delimiter: u8,
    lang: ReportLanguage,
    out: &mut W,
    max_bytes: Option<u64>,
) -> anyhow::Result<Option<Written>> {
    let header = runs::header(pool, id).await.context("cannot read the run's header")?;
    let Some(header) = header else { return Ok(None) };
    let mut batches = runs::rejects(pool, id);
    let Some(first) = batches.recv().await else { return Ok(None) };
    let fr = lang == ReportLanguage::Fr;
    let mut builder = ::csv::WriterBuilder::new();
    builder.delimiter(delimiter);
    let mut w = builder.from_writer(Vec::from(*b"\xEF\xBB\xBF"));
    let mut record: Vec<String> = header.iter().map(|h| neutralise(h)).collect();
    record.push(if fr { "ligne" } else { "line" }.into());
    record.push(if fr { "motif" } else { "reason" }.into());
    w.write_record(&record)?;
    let mut written = Written { lines: 0, bytes: 0, complete: true };
    written.bytes += drain(w, out).await?;
    let mut batch = Some(first);
    while let Some(rows) = batch {
        // One buffer per batch, handed to `out` when the batch is written.
        let mut w = builder.from_writer(Vec::with_capacity(256 << 10));
        for r in rows.context("cannot read the rejected lines")? {
            record.clear();
            record.extend(r.cells.iter().map(|c| neutralise(c)));
            record.resize(header.len(), String::new());
            record.push(r.line.to_string());
            record.push(neutralise(&r.reason));
            if let Some(max) = max_bytes {
                // The csv writer buffers: what it holds counts too.
                w.flush()?;
                let line: usize = record.iter().map(|c| c.len() + 3).sum();
                if written.bytes + (w.get_ref().len() + line) as u64 > max {
                    written.complete = false;
                    break;
                }
            }
            w.write_record(&record)?;
            written.lines += 1;
        }
        written.bytes += drain(w, out).await?;
        batch = if written.complete { batches.recv().await } else { None };
    }
    out.flush().await?;
    Ok(Some(written))
}

/// Hands what a csv writer wrote to `out`; returns its size.
async fn drain<W: AsyncWrite + Unpin>(w: ::csv::Writer<Vec<u8>>, out: &mut W) -> anyhow::Result<u64> {
    let chunk = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write the rejects file: {}", e.error()))?;
    out.write_all(&chunk).await.context("cannot write the rejects file")?;
    Ok(chunk.len() as u64)
}
