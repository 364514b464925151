//! The rejects file (SPEC §6): a run's rejected lines as the customer sent
//! them, in the file's own columns and delimiter, plus `line` and `reason`,
//! to fix and drop again. Written while a cursor reads the lines.

use std::io::Write;

use anyhow::Context;
use sqlx::PgPool;
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
/// neutralised by a leading apostrophe (the import removes it again).
/// Stops before the line that would take it past `max_bytes`. `None` when
/// the run rejected no line.
pub async fn write(
    pool: &PgPool,
    id: Uuid,
    delimiter: u8,
    lang: ReportLanguage,
    out: impl Write,
    max_bytes: Option<u64>,
) -> anyhow::Result<Option<Written>> {
    let header = runs::header(pool, id).await.context("cannot read the run's header")?;
    let Some(header) = header else { return Ok(None) };
    let mut batches = runs::rejects(pool, id);
    let Some(first) = batches.recv().await else { return Ok(None) };
    let first = first.context("cannot read the rejected lines")?;
    let fr = lang == ReportLanguage::Fr;
    let mut counted = Counted { inner: out, bytes: 0 };
    counted.write_all(b"\xEF\xBB\xBF")?;
    let mut w = ::csv::WriterBuilder::new().delimiter(delimiter).from_writer(&mut counted);
    let mut record: Vec<String> = header.iter().map(|h| neutralise(h)).collect();
    record.push(if fr { "ligne" } else { "line" }.into());
    record.push(if fr { "motif" } else { "reason" }.into());
    w.write_record(&record)?;
    let mut written = Written { lines: 0, bytes: 0, complete: true };
    let mut batch = Some(Ok(first));
    'lines: while let Some(rows) = batch {
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
                if w.get_ref().bytes + line as u64 > max {
                    written.complete = false;
                    break 'lines;
                }
            }
            w.write_record(&record)?;
            written.lines += 1;
        }
        batch = batches.recv().await;
    }
    w.flush()?;
    drop(w);
    written.bytes = counted.bytes;
    Ok(Some(written))
}

/// Neutralises a cell a spreadsheet would take as a formula (`= + - @`, tab, CR).
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

/// Counts the bytes written through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_get_an_apostrophe() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+41 79"), "'+41 79");
        assert_eq!(neutralise("@sum"), "'@sum");
        assert_eq!(neutralise("Jean"), "Jean");
    }
}
