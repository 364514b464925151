//! Reading records: header, line numbers, ragged rows, and the loop that
//! validates every record and hands batches of COPY data to the writer.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::configuration::Limits;
use crate::profile::Profile;

use super::mapping::{self, Mapping};
use super::rules::{FileFailure, Rule};
use super::staging::{Batch, CopyBuf, Staging};
use super::validate::{BadCell, Record, RowOutcome, RowPlan, RuleContext, Scratch, Sinks};

/// Rows per batch sent to PostgreSQL: large enough that per-COPY overhead
/// vanishes, small enough that memory stays flat (a few MiB per batch).
pub const BATCH_ROWS: usize = 10_000;
const BATCH_BYTES: usize = 4 << 20;
/// The CSV reader's buffer: it reads this far ahead of the record it parses.
const READ_BUFFER: u64 = 1 << 20;

/// What the CSV reader reads through. It counts the bytes pulled since the
/// start of the record being parsed (`record_start`, kept by `parse`) and
/// fails once a record grows past the limit: the reader would otherwise
/// buffer a 1 GB field whole. It also turns `\r\n` and a lone `\r` into
/// `\n`: the csv crate counts lines by `\n` and, after a `\r\n`, dates the
/// next record to the line before (a CRLF file, as Excel writes, had every
/// message one line early; a CR-only file had them all on line 1).
struct Bounded {
    inner: Box<dyn Read + Send>,
    pulled: u64,
    record_start: Arc<AtomicU64>,
    limit: u64,
    /// The last byte passed on was a `\r` (sent as `\n`): a `\n` next is dropped.
    after_cr: bool,
    /// The last byte passed on: a file's last record ends without a line
    /// break when it is not `\n`.
    last: u8,
}

impl Bounded {
    /// Rewrites line endings in `buf` in place; returns the new length.
    fn normalize(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len();
        let mut write = 0;
        let mut read = 0;
        if self.after_cr && n > 0 && buf[0] == b'\n' {
            read = 1;
        }
        self.after_cr = false;
        while read < n {
            let Some(at) = memchr::memchr(b'\r', &buf[read..]).map(|i| read + i) else {
                buf.copy_within(read..n, write);
                write += n - read;
                break;
            };
            buf.copy_within(read..at, write);
            write += at - read;
            buf[write] = b'\n';
            write += 1;
            read = at + 1;
            if read == n {
                self.after_cr = true;
            } else if buf[read] == b'\n' {
                read += 1;
            }
        }
        write
    }
}

#[derive(Debug)]
struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record longer than the limit")
    }
}

impl std::error::Error for LineTooLong {}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pulled.saturating_sub(self.record_start.load(Ordering::Relaxed)) > self.limit + READ_BUFFER {
            return Err(std::io::Error::other(LineTooLong));
        }
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let n = self.normalize(&mut buf[..n]);
            // A chunk that was only the `\n` of a `\r\n` is not the end.
            if n > 0 {
                self.pulled += n as u64;
                self.last = buf[n - 1];
                return Ok(n);
            }
        }
    }
}

#[derive(Debug)]
pub struct ParseSummary {
    pub mapping: Mapping,
    /// Data records read.
    pub rows: u64,
    /// Records rejected by a rule (duplicates are found later, in SQL).
    pub rejected: u64,
    /// With `on_invalid_row: abort`, the line of the first rejected record.
    pub aborted_at: Option<u64>,
    /// Accepted rows whose e-mail may repeat an earlier one (`seen`): none,
    /// and the file has no duplicates.
    pub maybe_duplicates: u64,
}

/// What `parse_with` does with each record once the header is known: the
/// contacts rules (`validate::RowPlan`) or a mass update's
/// (`mass_update::LinePlan`). Either writes a staging row or messages and
/// the rejected line, never an `Err`.
pub trait LineRules {
    fn check(&mut self, rec: &Record<'_>, sinks: Sinks<'_>) -> RowOutcome;
    /// A record with fewer cells than the header.
    fn short_row(&self, rec: &Record<'_>, width: usize, msgs: &mut CopyBuf, rejects: &mut CopyBuf);
    /// A record rejected for one cell before its rules run: longer than
    /// `limits.max_field_bytes` (`field.too_long`), or holding a NUL (`cell.nul`).
    fn bad_cell(&self, rec: &Record<'_>, cell: BadCell, msgs: &mut CopyBuf, rejects: &mut CopyBuf);
    /// Accepted lines whose e-mail may repeat an earlier one's (`seen`).
    fn maybe_duplicates(&self) -> u64;
}

/// The contacts rules with their per-row buffers.
struct ContactRows {
    plan: RowPlan,
    scratch: Scratch,
}

impl LineRules for ContactRows {
    fn check(&mut self, rec: &Record<'_>, sinks: Sinks<'_>) -> RowOutcome {
        self.plan.check(rec, &mut self.scratch, sinks)
    }

    fn short_row(&self, rec: &Record<'_>, width: usize, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        self.plan.short_row(rec, width, msgs, rejects)
    }

    fn bad_cell(&self, rec: &Record<'_>, cell: BadCell, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        self.plan.bad_cell(rec, cell, msgs, rejects)
    }

    fn maybe_duplicates(&self) -> u64 {
        self.scratch.seen.flagged()
    }
}

/// Parses `reader` (UTF-8) with the profile's format and mapping, calling
/// `emit` for each batch; `emit` returns false when the writer has gone away.
/// `recycled` hands back buffers the writer is done with, so memory stays at
/// a few batches whatever the file size (no allocator churn across threads).
#[allow(clippy::too_many_arguments)]
pub fn parse(
    reader: Box<dyn Read + Send>,
    profile: &Profile,
    ctx: RuleContext,
    staging: Staging,
    limits: &Limits,
    emit: impl FnMut(Batch) -> bool,
    recycled: impl FnMut() -> Option<Batch>,
) -> Result<ParseSummary, FileFailure> {
    let rules = |headers: Vec<String>| {
        let mapping = mapping::resolve(headers, profile).map_err(|e| FileFailure::new(e.rule, Some(1), e.detail))?;
        let plan = RowPlan::new(&mapping, profile, ctx, staging);
        Ok((mapping, ContactRows { plan, scratch: Scratch::default() }))
    };
    parse_with(reader, profile, limits, rules, emit, recycled)
}

/// `parse` with the rules that `rules` builds from the header: the record
/// loop, line numbers, limits and batching are the same for every kind of file.
pub fn parse_with<R: LineRules>(
    reader: Box<dyn Read + Send>,
    profile: &Profile,
    limits: &Limits,
    rules: impl FnOnce(Vec<String>) -> Result<(Mapping, R), FileFailure>,
    mut emit: impl FnMut(Batch) -> bool,
    mut recycled: impl FnMut() -> Option<Batch>,
) -> Result<ParseSummary, FileFailure> {
    let mut lines = Lines::new(reader, profile, limits);
    let mut bytes = ::csv::ByteRecord::new();
    let headers = read_headers(&mut lines, &mut bytes, profile, limits)?;
    let (mapping, mut plan) = rules(headers)?;
    let width = mapping.width;
    let abort_on_invalid = profile.on_invalid_row == crate::profile::OnInvalidRow::Abort;

    let mut out = Buffers::new();
    let mut summary =
        ParseSummary { mapping: Mapping::default(), rows: 0, rejected: 0, aborted_at: None, maybe_duplicates: 0 };
    while let Some(line) = lines.next(&mut bytes)? {
        let rec = Record::new(&bytes, line)?;
        if rec.len() == 1 && rec.get(0).unwrap_or("").trim().is_empty() && width > 1 {
            continue; // a blank line is not a record
        }
        summary.rows += 1;
        check_shape(&rec, summary.rows, width, limits)?;
        if check_record(&mut plan, &rec, width, limits, &mut out) == RowOutcome::Rejected {
            summary.rejected += 1;
            if abort_on_invalid {
                summary.aborted_at = Some(rec.line);
                break;
            }
        }
        if out.is_full() && !emit(out.take(&mut recycled)) {
            return Err(FileFailure::new(Rule::FileNotText, Some(rec.line), "the writer stopped"));
        }
    }
    if !out.is_empty() && !emit(out.into_batch()) {
        return Err(FileFailure::new(Rule::FileNotText, None, "the writer stopped"));
    }
    summary.mapping = mapping;
    summary.maybe_duplicates = plan.maybe_duplicates();
    Ok(summary)
}

/// The CSV reader over `Bounded`, giving each record with the line it
/// starts on.
struct Lines {
    rdr: ::csv::Reader<Bounded>,
    record_start: Arc<AtomicU64>,
    max_line: u64,
}

impl Lines {
    fn new(reader: Box<dyn Read + Send>, profile: &Profile, limits: &Limits) -> Lines {
        let record_start = Arc::new(AtomicU64::new(0));
        let bounded = Bounded {
            inner: reader,
            pulled: 0,
            record_start: record_start.clone(),
            limit: limits.max_line_bytes,
            after_cr: false,
            last: b'\n',
        };
        let rdr = ::csv::ReaderBuilder::new()
            .delimiter(profile.format.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(READ_BUFFER as usize)
            .from_reader(bounded);
        Lines { rdr, record_start, max_line: limits.max_line_bytes }
    }

    /// Reads the next record into `rec`; returns its first line, or `None`
    /// at the end of the file.
    fn next(&mut self, rec: &mut ::csv::ByteRecord) -> Result<Option<u64>, FileFailure> {
        let start = self.rdr.position().clone();
        let max_line = self.max_line;
        let too_long = || {
            let line = start.line();
            FileFailure::new(Rule::FileLineTooLong, Some(line), format!("line {line}: more than {max_line} bytes"))
        };
        let more = self.rdr.read_byte_record(rec).map_err(|e| match e.kind() {
            ::csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<LineTooLong>()) => too_long(),
            _ => {
                let line = e.position().map(|p| p.line());
                FileFailure::new(Rule::FileNotText, line, format!("cannot read the file: {e}"))
            }
        })?;
        let end = self.rdr.position().byte();
        if end - start.byte() > max_line {
            return Err(too_long());
        }
        self.record_start.store(end, Ordering::Relaxed);
        // The reader skips empty lines before a record and dates the record
        // from where it began reading: the line of the first blank line. The
        // lines consumed, less the record's own line breaks and its
        // terminator, are those blank lines. A file's last record may have
        // no terminator: everything pulled is read and it was not a `\n`.
        let consumed = self.rdr.position().line() - start.line();
        let source = self.rdr.get_ref();
        let terminated = u64::from(!(source.pulled == end && source.last != b'\n'));
        let first = if consumed <= terminated {
            start.line()
        } else {
            let inner: u64 = rec.iter().map(|f| memchr::memchr_iter(b'\n', f).count() as u64).sum();
            start.line() + consumed.saturating_sub(inner + terminated)
        };
        Ok(more.then_some(first))
    }
}

/// The column names: the file's first record, or the profile's columns
/// for a file without a header. A header of one column that holds another
/// delimiter means the profile's delimiter is wrong: the whole file is
/// refused rather than every line.
fn read_headers(
    lines: &mut Lines,
    bytes: &mut ::csv::ByteRecord,
    profile: &Profile,
    limits: &Limits,
) -> Result<Vec<String>, FileFailure> {
    let headers: Vec<String> = if profile.format.header {
        let Some(line) = lines.next(bytes)? else {
            return Err(FileFailure::new(Rule::FileEmpty, None, ""));
        };
        Record::new(bytes, line)?.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_owned()).collect()
    } else {
        profile.columns.keys().cloned().collect()
    };
    if headers.len() > limits.max_columns {
        let detail = format!("{} > {}", headers.len(), limits.max_columns);
        return Err(FileFailure::new(Rule::HeaderTooManyColumns, Some(1), detail));
    }
    if headers.len() == 1 {
        let other = [b';', b',', b'\t', b'|']
            .into_iter()
            .find(|d| *d != profile.format.delimiter && headers[0].contains(*d as char));
        if let Some(d) = other {
            return Err(FileFailure::new(
                Rule::FileDelimiter,
                Some(1),
                format!(
                    "the header is one column that contains {:?}; the profile's delimiter is {:?}",
                    d as char, profile.format.delimiter as char
                ),
            ));
        }
    }
    Ok(headers)
}

/// What refuses the whole file at a record: one record too many, or cells
/// beyond the header's (the columns may have shifted).
fn check_shape(rec: &Record<'_>, rows: u64, width: usize, limits: &Limits) -> Result<(), FileFailure> {
    let line = rec.line;
    if rows > limits.max_rows {
        let detail = format!("line {line}: more than {} lines", limits.max_rows);
        return Err(FileFailure::new(Rule::FileTooManyRows, Some(line), detail));
    }
    if rec.len() > width && rec.iter().skip(width).any(|c| !c.trim().is_empty()) {
        let detail = format!("line {line}: {} columns, the header has {width}", rec.len());
        return Err(FileFailure::new(Rule::FileRagged, Some(line), detail));
    }
    Ok(())
}

/// One record through the rules: a short record or an over-long cell is
/// rejected before its values are read.
fn check_record<R: LineRules>(
    plan: &mut R,
    rec: &Record<'_>,
    width: usize,
    limits: &Limits,
    out: &mut Buffers,
) -> RowOutcome {
    if rec.len() < width {
        plan.short_row(rec, width, &mut out.msgs, &mut out.rejects);
        RowOutcome::Rejected
    } else if let Some(cell) = BadCell::find(rec, limits.max_field_bytes) {
        plan.bad_cell(rec, cell, &mut out.msgs, &mut out.rejects);
        RowOutcome::Rejected
    } else {
        plan.check(rec, Sinks { rows: &mut out.rows, msgs: &mut out.msgs, rejects: &mut out.rejects })
    }
}

/// The batch being filled: staging rows, messages and rejected lines.
struct Buffers {
    rows: CopyBuf,
    msgs: CopyBuf,
    rejects: CopyBuf,
}

impl Buffers {
    fn new() -> Buffers {
        Buffers {
            rows: CopyBuf::with_capacity(1 << 20),
            msgs: CopyBuf::with_capacity(1 << 16),
            rejects: CopyBuf::with_capacity(1 << 16),
        }
    }

    fn is_full(&self) -> bool {
        self.rows.rows() >= BATCH_ROWS
            || self.rows.bytes() >= BATCH_BYTES
            || self.msgs.bytes() >= BATCH_BYTES
            || self.rejects.bytes() >= BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.rows.rows() == 0 && self.msgs.rows() == 0 && self.rejects.rows() == 0
    }

    /// The full batch, replaced by buffers the writer handed back (or new ones).
    fn take(&mut self, recycled: &mut impl FnMut() -> Option<Batch>) -> Batch {
        let next = recycled().unwrap_or_else(|| Batch {
            rows: Vec::with_capacity(1 << 20),
            msgs: Vec::with_capacity(1 << 16),
            rejects: Vec::with_capacity(1 << 16),
        });
        Batch {
            rows: std::mem::replace(&mut self.rows, CopyBuf::reuse(next.rows)).into_inner(),
            msgs: std::mem::replace(&mut self.msgs, CopyBuf::reuse(next.msgs)).into_inner(),
            rejects: std::mem::replace(&mut self.rejects, CopyBuf::reuse(next.rejects)).into_inner(),
        }
    }

    fn into_batch(self) -> Batch {
        Batch { rows: self.rows.into_inner(), msgs: self.msgs.into_inner(), rejects: self.rejects.into_inner() }
    }
}

#[cfg(test)]
mod tests {
    use super::{Bounded, Record};

    #[test]
    fn line_endings_reach_the_csv_reader_as_newlines_whatever_the_chunks() {
        let text = b"a\r\nb\rc\nd\r\r\ne\r";
        for chunk in 1..=text.len() {
            let mut bounded = Bounded {
                inner: Box::new(std::io::empty()),
                pulled: 0,
                record_start: Default::default(),
                limit: u64::MAX / 2,
                after_cr: false,
                last: b'\n',
            };
            let mut out = Vec::new();
            for piece in text.chunks(chunk) {
                let mut buf = piece.to_vec();
                let n = bounded.normalize(&mut buf);
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, b"a\nb\nc\nd\n\ne\n", "chunks of {chunk}");
        }
    }

    #[test]
    fn a_record_is_text_only_if_each_of_its_cells_is() {
        let ok = ::csv::ByteRecord::from(vec!["Genève".as_bytes(), b"x"]);
        let rec = Record::new(&ok, 1).expect("valid UTF-8");
        assert_eq!(rec.iter().collect::<Vec<_>>(), vec!["Genève", "x"]);
        // "é" split across two cells: the bytes end to end are valid, the cells are not.
        let split = ::csv::ByteRecord::from(vec![&b"\xC3"[..], &b"\xA9"[..]]);
        assert_eq!(Record::new(&split, 1).err().map(|f| f.rule.code()), Some("file.encoding"));
    }
}
