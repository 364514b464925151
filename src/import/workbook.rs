//! Workbooks (.xlsx, .xlsm, .xls) as dropped: the first worksheet is written
//! as a UTF-8 CSV with the profile's delimiter into a scratch file, cells as
//! the user sees them, so that the CSV pipeline imports it unchanged.
//!
//! Row N of the sheet is line N of the CSV (empty rows become blank lines,
//! which the parser skips), so messages name the row Excel shows (a cell
//! holding a line break shifts the rows below it, as in a CSV). Formulas
//! are never evaluated: the value Excel cached when it saved the file is
//! written, and the CSV rules (`cell.formula` among them) then apply to it
//! as to any cell of a CSV.
//!
//! Memory: an .xlsx sheet is streamed cell by cell, but calamine holds the
//! workbook's shared strings in memory, and an .xls (at most 65,536 rows)
//! whole. Workbooks are therefore bounded by `max_workbook_bytes` as
//! dropped, and the parts of an .xlsx by `max_unpacked_bytes` once inflated
//! (counted before calamine opens it: a zip bomb disguised as a workbook
//! stops there).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use calamine::{Data, DataRef, ExcelDateTime, Reader, SheetType, Xls, Xlsx};

use crate::configuration::Limits;

use super::rules::FileFailure;
use super::rules::Rule;
use super::unzip;

/// The workbook formats read, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Office Open XML (.xlsx, .xlsm): a zip holding `xl/workbook.xml`.
    Xlsx,
    /// The binary format of Excel 97-2003 (.xls): an OLE2 compound file.
    Xls,
}

const OLE2: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
/// A zip with more entries than this is no workbook we read: its directory
/// is not read to look for `xl/workbook.xml` (it is refused as an archive).
const MAX_WORKBOOK_PARTS: u64 = 10_000;
/// Rows of a worksheet in Excel since 2007.
const MAX_ROWS: u32 = 1 << 20;

/// The workbook format of the file, judged by content: a zip holding
/// `xl/workbook.xml`, or an OLE2 file. A zip or OLE2 file that does not
/// look like one but is named like one (a truncated .xlsx has no zip
/// directory left) is taken as a workbook too, to be refused as a corrupt
/// workbook rather than as an archive; a text file named `.xlsx` is not.
pub fn detect(path: &Path, name: &str) -> io::Result<Option<Kind>> {
    let mut magic = [0u8; 8];
    let mut file = File::open(path)?;
    let n = read_up_to(&mut file, &mut magic)?;
    let head = &magic[..n];
    if head.starts_with(OLE2) {
        return Ok(Some(Kind::Xls));
    }
    if !unzip::is_zip(path)? {
        return Ok(None);
    }
    let named = unzip::has_workbook_name(name).then_some(Kind::Xlsx);
    match unzip::declared_entries(&mut file) {
        Ok(n) if n <= MAX_WORKBOOK_PARTS => {}
        _ => return Ok(named),
    }
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(File::open(path)?)) else { return Ok(named) };
    Ok(if zip.by_name("xl/workbook.xml").is_ok() { Some(Kind::Xlsx) } else { named })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What was converted.
#[derive(Debug)]
pub struct Converted {
    pub sheet: String,
    /// Data rows written (the header not counted).
    pub rows: u64,
    pub bytes: u64,
}

/// Writes the first worksheet of the workbook at `path` into `dest` as CSV.
pub fn convert(
    path: &Path,
    kind: Kind,
    delimiter: u8,
    limits: &Limits,
    dest: &mut File,
) -> Result<Converted, FileFailure> {
    let corrupt = |e: &dyn std::fmt::Display| FileFailure::new(Rule::WorkbookInvalid, None, e.to_string());
    let size = std::fs::metadata(path).map_err(|e| corrupt(&e))?.len();
    if size > limits.max_workbook_bytes {
        let detail = format!("workbook of {size} bytes > max_workbook_bytes {}", limits.max_workbook_bytes);
        return Err(FileFailure::new(Rule::FileTooLarge, None, detail));
    }
    let file = || File::open(path).map(BufReader::new).map_err(|e| corrupt(&e));
    let mut out = Sheet::new(delimiter, limits, dest);
    match kind {
        Kind::Xlsx => {
            inflated_size(path, limits.max_unpacked_bytes, limits.max_shared_strings_bytes)?;
            let mut book: Xlsx<_> = Xlsx::new(file()?).map_err(|e| corrupt(&e))?;
            out.name = first_worksheet(book.sheets_metadata()).map_err(|e| corrupt(&e))?;
            let mut cells = book.worksheet_cells_reader(&out.name).map_err(|e| corrupt(&e))?;
            while let Some(cell) = cells.next_cell().map_err(|e| corrupt(&format!("sheet {}: {e}", out.name)))? {
                let (row, col) = cell.get_position();
                out.cell(row, col, text_ref(cell.get_value()))?;
            }
        }
        Kind::Xls => {
            let mut book: Xls<_> = Xls::new(file()?).map_err(|e| corrupt(&e))?;
            out.name = first_worksheet(book.sheets_metadata()).map_err(|e| corrupt(&e))?;
            let range = book.worksheet_range(&out.name).map_err(|e| corrupt(&format!("sheet {}: {e}", out.name)))?;
            let (top, left) = range.start().unwrap_or((0, 0));
            for (row, col, value) in range.used_cells() {
                out.cell(top + row as u32, left + col as u32, text(value))?;
            }
        }
    }
    out.finish()
}

fn first_worksheet(sheets: &[calamine::Sheet]) -> Result<String, &'static str> {
    sheets.iter().find(|s| s.typ == SheetType::WorkSheet).map(|s| s.name.clone()).ok_or("no worksheet")
}

/// Inflates every part of an .xlsx once, counting what actually comes out
/// (declared sizes may lie), and refuses the workbook past `max`, or when
/// its shared strings pass `max_strings`: calamine would hold the shared
/// strings of a bomb in memory.
fn inflated_size(path: &Path, max: u64, max_strings: u64) -> Result<u64, FileFailure> {
    let corrupt = |e: &dyn std::fmt::Display| FileFailure::new(Rule::WorkbookInvalid, None, e.to_string());
    let mut zip =
        zip::ZipArchive::new(BufReader::new(File::open(path).map_err(|e| corrupt(&e))?)).map_err(|e| corrupt(&e))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| corrupt(&e))?;
        let name = part.name().to_owned();
        let strings = name.to_ascii_lowercase().ends_with("sharedstrings.xml");
        let left = if strings { max_strings.min(max.saturating_sub(total)) } else { max.saturating_sub(total) };
        let inflated =
            io::copy(&mut (&mut part).take(left + 1), &mut io::sink()).map_err(|e| corrupt(&format!("{name}: {e}")))?;
        total += inflated;
        if strings && inflated > max_strings {
            let detail =
                format!("shared strings: more than max_shared_strings_bytes {max_strings} bytes unpacked ({name})");
            return Err(FileFailure::new(Rule::ArchiveTooLarge, None, detail));
        }
        if total > max {
            let detail = format!("workbook parts: more than {max} bytes unpacked (at {name})");
            return Err(FileFailure::new(Rule::ArchiveTooLarge, None, detail));
        }
    }
    Ok(total)
}

/// The CSV being written, one row at a time: cells arrive in row order,
/// the empty ones mostly not at all.
struct Sheet<'a> {
    name: String,
    delimiter: u8,
    limits: &'a Limits,
    out: BufWriter<Limited<&'a mut File>>,
    /// The cells of the row being read, up to its last non-empty one.
    row: Vec<String>,
    /// 0-based index of that row.
    at: Option<u32>,
    /// Lines written so far: the 0-based index of the next row, when no
    /// empty row comes between.
    lines: u32,
    /// Cells of the header (the first non-empty row), once it is written:
    /// every data row is padded to it, so the CSV is rectangular.
    width: Option<usize>,
    rows: u64,
}

impl<'a> Sheet<'a> {
    fn new(delimiter: u8, limits: &'a Limits, dest: &'a mut File) -> Sheet<'a> {
        let sink = Limited { inner: dest, written: 0, max: limits.max_unpacked_bytes };
        let out = BufWriter::with_capacity(1 << 16, sink);
        Sheet { name: String::new(), delimiter, limits, out, row: Vec::new(), at: None, lines: 0, width: None, rows: 0 }
    }

    fn failure(&self, rule: Rule, row: u32, what: String) -> FileFailure {
        let line = u64::from(row) + 1;
        FileFailure::new(rule, Some(line), format!("sheet {}, row {line}: {what}", self.name))
    }

    fn cell(&mut self, row: u32, col: u32, value: Cow<'_, str>) -> Result<(), FileFailure> {
        if value.is_empty() {
            return Ok(()); // formatted but empty: it widens nothing
        }
        if self.at != Some(row) {
            self.end_row()?;
            // Rows arrive in order in any file Excel wrote; a hostile one
            // could go back, or jump past the last row Excel has.
            if row < self.lines || row >= MAX_ROWS {
                return Err(self.failure(Rule::WorkbookInvalid, row, "rows out of order or beyond Excel's".into()));
            }
            self.at = Some(row);
        }
        let col = col as usize;
        match self.width {
            // A cell beyond the header makes a ragged row: refused as the
            // CSV would be, before a row of 16,384 columns is padded.
            Some(width) if col >= width => {
                let what = format!("a value in column {}, the header has {width} columns", col + 1);
                return Err(self.failure(Rule::FileRagged, row, what));
            }
            None if col >= self.limits.max_columns => {
                let what = format!("more than {} columns", self.limits.max_columns);
                return Err(self.failure(Rule::HeaderTooManyColumns, row, what));
            }
            _ => {}
        }
        if self.row.len() <= col {
            self.row.resize(col + 1, String::new());
        }
        self.row[col] = value.into_owned();
        Ok(())
    }

    /// Writes the row read so far, after a blank line for each empty row
    /// before it. Trailing empty rows are never written: no row follows them.
    fn end_row(&mut self) -> Result<(), FileFailure> {
        let Some(row) = self.at.take() else { return Ok(()) };
        let width = match self.width {
            Some(width) => {
                self.rows += 1;
                if self.rows > self.limits.max_rows {
                    let what = format!("more than {} lines", self.limits.max_rows);
                    return Err(self.failure(Rule::FileTooManyRows, row, what));
                }
                width
            }
            None => *self.width.insert(self.row.len()),
        };
        // An empty row is a line of one space: the parser skips it as a blank
        // line (of a file wider than one column) and still counts it, where
        // the csv crate would date the record after an empty line to that line.
        let blank: &[u8] = if width > 1 { b" \n" } else { b"\n" };
        for _ in self.lines..row {
            self.out.write_all(blank).map_err(|e| self.write_failure(e, row))?;
        }
        let mut line = Vec::with_capacity(64);
        for i in 0..width {
            if i > 0 {
                line.push(self.delimiter);
            }
            quote_into(&mut line, self.row.get(i).map_or("", String::as_str), self.delimiter);
        }
        line.push(b'\n');
        self.row.clear();
        self.lines = row + 1;
        self.out.write_all(&line).map_err(|e| self.write_failure(e, row))
    }

    fn write_failure(&self, e: io::Error, row: u32) -> FileFailure {
        if e.get_ref().is_some_and(|inner| inner.is::<TooLarge>()) {
            let what = format!("the CSV written is larger than max_unpacked_bytes {}", self.limits.max_unpacked_bytes);
            self.failure(Rule::ArchiveTooLarge, row, what)
        } else {
            FileFailure::new(Rule::WorkbookInvalid, None, format!("cannot write the converted sheet: {e}"))
        }
    }

    fn finish(mut self) -> Result<Converted, FileFailure> {
        self.end_row()?;
        let last = self.lines.saturating_sub(1);
        self.out.flush().map_err(|e| self.write_failure(e, last))?;
        let bytes = self.out.get_ref().written;
        Ok(Converted { sheet: self.name, rows: self.rows, bytes })
    }
}

/// Appends `value` as one CSV field, quoted when it holds the delimiter, a
/// quote or a line break (and leading or trailing spaces, which a reader
/// might trim).
fn quote_into(out: &mut Vec<u8>, value: &str, delimiter: u8) {
    let needs = value.bytes().any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
        || value.starts_with(' ')
        || value.ends_with(' ');
    if !needs {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.push(b'"');
    for b in value.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("converted sheet larger than the limit")
    }
}

impl std::error::Error for TooLarge {}

/// Fails a write that would take the output past `max` bytes.
struct Limited<W> {
    inner: W,
    written: u64,
    max: u64,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.max {
            return Err(io::Error::other(TooLarge));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A cell of an .xlsx as text (see `text`).
fn text_ref<'v>(value: &'v DataRef<'_>) -> Cow<'v, str> {
    match value {
        DataRef::SharedString(s) => Cow::Borrowed(s),
        DataRef::String(s) => Cow::Borrowed(s),
        DataRef::Int(i) => Cow::Owned(i.to_string()),
        DataRef::Float(f) => Cow::Owned(number(*f)),
        DataRef::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(d) => Cow::Owned(date_time(d)),
        DataRef::DateTimeIso(s) => iso_date(s),
        DataRef::DurationIso(s) => Cow::Borrowed(s),
        DataRef::Error(e) => Cow::Owned(e.to_string()),
        DataRef::Empty => Cow::Borrowed(""),
    }
}

/// A cell as the user sees it in the spreadsheet: dates as dd.mm.yyyy (the
/// birthdate format), a number without a trailing `.0` or an exponent (a
/// postal code 1201, a phone number stored as a number), booleans as
/// TRUE/FALSE (what consents read). An error cell is its text (`#N/A`,
/// `#DIV/0!`), as Excel's own "save as CSV" writes it: a rule then rejects
/// the row where the column has one, instead of an empty cell silently
/// erasing a stored value under `empty_cells: clear`.
fn text(value: &Data) -> Cow<'_, str> {
    match value {
        Data::String(s) => Cow::Borrowed(s),
        Data::Int(i) => Cow::Owned(i.to_string()),
        Data::Float(f) => Cow::Owned(number(*f)),
        Data::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(d) => Cow::Owned(date_time(d)),
        Data::DateTimeIso(s) => iso_date(s),
        Data::DurationIso(s) => Cow::Borrowed(s),
        Data::Error(e) => Cow::Owned(e.to_string()),
        Data::Empty => Cow::Borrowed(""),
    }
}

/// A float as Excel shows it in a General cell: 15 significant digits (the
/// 0.30000000000000004 of 0.1 + 0.2 is 0.3), shortest decimal form, no
/// exponent, integers without `.0`.
fn number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    // Display never writes an exponent; `+ 0.0` turns -0 into 0.
    (rounded + 0.0).to_string()
}

/// A date cell as dd.mm.yyyy; with a time of day, dd.mm.yyyy hh:mm:ss; a
/// time alone as hh:mm:ss; a duration as its number of days.
fn date_time(d: &ExcelDateTime) -> String {
    if d.is_duration() {
        return number(d.as_f64());
    }
    let (year, month, day, hour, minute, second, _) = d.to_ymd_hms_milli();
    let time = (hour, minute, second) != (0, 0, 0);
    if d.as_f64() < 1.0 && time {
        format!("{hour:02}:{minute:02}:{second:02}")
    } else if time {
        format!("{day:02}.{month:02}.{year:04} {hour:02}:{minute:02}:{second:02}")
    } else {
        format!("{day:02}.{month:02}.{year:04}")
    }
}

/// An ISO 8601 date (`t="d"` cells): `yyyy-mm-dd`, alone or at midnight,
/// as dd.mm.yyyy; anything else as it is.
fn iso_date(s: &str) -> Cow<'_, str> {
    let date = s.strip_suffix("T00:00:00").unwrap_or(s);
    match chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) => Cow::Owned(d.format("%d.%m.%Y").to_string()),
        Err(_) => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    #[test]
    fn workbook_numbers_are_written_as_excel_shows_them() {
        assert_eq!(number(1201.0), "1201");
        assert_eq!(number(41_791_234_567.0), "41791234567");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(3.25), "3.25");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(1e20), "100000000000000000000");
    }

    #[test]
    fn workbook_cells_of_every_type_are_written_as_displayed() {
        assert_eq!(text(&Data::Float(1201.0)), "1201");
        assert_eq!(text(&Data::Int(8001)), "8001");
        assert_eq!(text(&Data::Bool(true)), "TRUE");
        assert_eq!(text(&Data::Bool(false)), "FALSE");
        assert_eq!(text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
        assert_eq!(text(&Data::Error(calamine::CellErrorType::Div0)), "#DIV/0!");
        assert_eq!(text(&Data::Empty), "");
        assert_eq!(text_ref(&DataRef::SharedString("Genève")), "Genève");
        assert_eq!(text_ref(&DataRef::DateTimeIso("1980-01-01".into())), "01.01.1980");
    }

    #[test]
    fn workbook_dates_are_written_as_dd_mm_yyyy() {
        let at = |v| ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false);
        assert_eq!(date_time(&at(29221.0)), "01.01.1980");
        assert_eq!(date_time(&at(29221.5)), "01.01.1980 12:00:00");
        assert_eq!(date_time(&at(0.75)), "18:00:00");
        let in_1904 = ExcelDateTime::new(27759.0, ExcelDateTimeType::DateTime, true);
        assert_eq!(date_time(&in_1904), "01.01.1980");
        assert_eq!(iso_date("1980-01-01T00:00:00"), "01.01.1980");
        assert_eq!(iso_date("1980-01-01T10:00:00"), "1980-01-01T10:00:00");
    }

    #[test]
    fn workbook_cells_are_quoted_only_when_the_csv_needs_it() {
        let quoted = |v: &str| {
            let mut out = Vec::new();
            quote_into(&mut out, v, b';');
            String::from_utf8(out).unwrap()
        };
        assert_eq!(quoted("Anne"), "Anne");
        assert_eq!(quoted("a;b"), "\"a;b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted(" padded"), "\" padded\"");
    }

    fn sheet_of(cells: &[(u32, u32, &str)], limits: Limits) -> Result<String, FileFailure> {
        let mut dest = tempfile::tempfile().unwrap();
        let mut sheet = Sheet::new(b';', &limits, &mut dest);
        sheet.name = "Feuil1".into();
        for (row, col, value) in cells {
            sheet.cell(*row, *col, Cow::Borrowed(value))?;
        }
        sheet.finish()?;
        use std::io::Seek;
        dest.rewind().unwrap();
        let mut text = String::new();
        dest.read_to_string(&mut text).unwrap();
        Ok(text)
    }

    #[test]
    fn workbook_rows_are_padded_to_the_header_and_empty_rows_keep_the_line_numbers() {
        let cells = [(0, 0, "email"), (0, 2, "town"), (1, 0, "a@x.ch"), (3, 1, "x"), (3, 0, "b@x.ch")];
        let csv = sheet_of(&cells, Limits::default()).unwrap();
        assert_eq!(csv, "email;;town\na@x.ch;;\n \nb@x.ch;x;\n");
        let csv = sheet_of(&[(1, 0, "email"), (3, 0, "a@x.ch")], Limits::default()).unwrap();
        assert_eq!(csv, "\nemail\n\na@x.ch\n");
    }

    #[test]
    fn workbook_limits_refuse_the_sheet_naming_the_row() {
        let limits = Limits { max_rows: 1, ..Limits::default() };
        let failure = sheet_of(&[(0, 0, "email"), (1, 0, "a@x.ch"), (2, 0, "b@x.ch")], limits).unwrap_err();
        assert_eq!((failure.rule, failure.line), (Rule::FileTooManyRows, Some(3)));
        assert!(failure.detail.contains("sheet Feuil1, row 3"), "{}", failure.detail);
        let failure = sheet_of(&[(0, 0, "email"), (1, 3, "x")], Limits::default()).unwrap_err();
        assert_eq!((failure.rule, failure.line), (Rule::FileRagged, Some(2)));
        let limits = Limits { max_columns: 2, ..Limits::default() };
        let failure = sheet_of(&[(0, 0, "email"), (0, 2, "town")], limits).unwrap_err();
        assert_eq!(failure.rule, Rule::HeaderTooManyColumns);
        let failure = sheet_of(&[(0, 0, "email"), (2, 0, "a@x.ch"), (1, 0, "b@x.ch")], Limits::default()).unwrap_err();
        assert_eq!((failure.rule, failure.line), (Rule::WorkbookInvalid, Some(2)));
        let failure = sheet_of(&[(0, 0, "email"), (4_000_000_000, 0, "a@x.ch")], Limits::default()).unwrap_err();
        assert_eq!(failure.rule, Rule::WorkbookInvalid);
        let limits = Limits { max_unpacked_bytes: 10, ..Limits::default() };
        let failure = sheet_of(&[(0, 0, "email"), (1, 0, "anne.aebi@example.ch")], limits).unwrap_err();
        assert_eq!(failure.rule, Rule::ArchiveTooLarge);
    }
}
