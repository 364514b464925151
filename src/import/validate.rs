//! The rules of SPEC §3 applied to one row: a row is accepted (perhaps with
//! corrections, which are warnings) or rejected with one message per broken
//! rule. Accepted rows are encoded straight into the staging COPY buffer.

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::domain::{Email, ReportLanguage, country_code};
use crate::profile::{EmptyCells, Field, Profile, Target};

use super::mapping::Mapping;
use super::rules::{FileFailure, Rule, excerpt};
use super::staging::{CopyBuf, Staging, WARNINGS};

/// The compiled form of a mapping: column indexes per target, ready for the
/// per-row loop.
pub struct RowPlan {
    fields: [Option<usize>; 15],
    criteria: Vec<(usize, String, HashSet<String>)>,
    consents: Vec<(usize, String)>,
    attributes: Vec<(usize, String)>,
    headers: Vec<String>,
    clear: bool,
    lang: ReportLanguage,
    extra_languages: Vec<String>,
    today: NaiveDate,
    /// The run's id as text, written with each kept rejected line.
    run_id: String,
    staging: Staging,
}

/// Tenant-level facts the rules need.
#[derive(Clone)]
pub struct RuleContext {
    pub lang: ReportLanguage,
    pub extra_languages: Vec<String>,
    pub today: NaiveDate,
    pub run_id: uuid::Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Accepted,
    Rejected,
}

fn warn_bit(field: Field) -> u8 {
    WARNINGS.iter().find(|(_, _, f)| *f == field).map(|(bit, _, _)| *bit).unwrap_or(0)
}

/// One record of the file as text: its cells are slices of the record's
/// bytes, checked as UTF-8 once per record (the file is checked by
/// `decode::inspect` too, but may have changed since).
pub struct Record<'a> {
    bytes: &'a ::csv::ByteRecord,
    text: &'a str,
    /// The record's first line in the file.
    pub line: u64,
}

impl<'a> Record<'a> {
    /// `line` is the record's first line (see `parse`'s `read`).
    pub(super) fn new(bytes: &'a ::csv::ByteRecord, line: u64) -> Result<Record<'a>, FileFailure> {
        let invalid = || FileFailure::new(Rule::FileEncoding, Some(line), format!("line {line} is not valid UTF-8"));
        let text = simdutf8::basic::from_utf8(bytes.as_slice()).map_err(|_| invalid())?;
        // The cells end to end are valid; each cell is too if no boundary
        // falls inside a character.
        if !(0..bytes.len()).filter_map(|i| bytes.range(i)).all(|r| text.is_char_boundary(r.start)) {
            return Err(invalid());
        }
        Ok(Record { bytes, text, line })
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.bytes.range(i).and_then(|r| self.text.get(r))
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(""))
    }

    /// Whether a cell holds a NUL character.
    pub fn has_nul(&self) -> bool {
        memchr::memchr(0, self.text.as_bytes()).is_some()
    }

    /// The cells' text, end to end (for sizing buffers).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }
}

/// A cell that rejects its record before the rules look at it.
#[derive(Debug, Clone, Copy)]
pub struct BadCell {
    pub column: usize,
    pub rule: Rule,
    /// `field.too_long`: the cell's length and the limit, in bytes.
    pub sizes: (usize, usize),
}

impl BadCell {
    pub fn find(rec: &Record<'_>, max_field_bytes: usize) -> Option<BadCell> {
        // A record shorter than the limit cannot hold a longer cell.
        if rec.text_len() > max_field_bytes {
            let long =
                (0..rec.len()).find_map(|i| rec.get(i).map(str::len).filter(|n| *n > max_field_bytes).map(|n| (i, n)));
            if let Some((column, len)) = long {
                return Some(BadCell { column, rule: Rule::FieldTooLong, sizes: (len, max_field_bytes) });
            }
        }
        // PostgreSQL's text cannot hold a NUL: the line is rejected, the
        // file goes on (a NUL in the header refuses the file, `decode`).
        if rec.has_nul() {
            let column = (0..rec.len()).find(|i| rec.get(*i).is_some_and(|c| c.contains('\0'))).unwrap_or(0);
            return Some(BadCell { column, rule: Rule::CellNul, sizes: (0, 0) });
        }
        None
    }

    /// The message's value: the sizes, or nothing (the cell is not text).
    pub fn detail(&self) -> String {
        match self.rule {
            Rule::FieldTooLong => format!("{} > {} bytes", self.sizes.0, self.sizes.1),
            _ => String::new(),
        }
    }
}

/// Where a checked row goes: its staging row, or its messages and the
/// rejected line.
pub struct Sinks<'a> {
    pub rows: &'a mut CopyBuf,
    pub msgs: &'a mut CopyBuf,
    pub rejects: &'a mut CopyBuf,
}

/// The organisation a line names (seed 002): its structure with its address
/// identify it. The key is the structure, address, postal code, town and
/// country joined by `|`, in lower case, with every run of white space as
/// one space, so "ACME SA" at "1 Rue X" and "Acme  SA" at "1 rue x" are one
/// organisation. Computed here, once per line, rather than by a regexp in
/// SQL (0.3 s of a 1M-row file whose tenth names a structure).
pub fn organisation_key(parts: [&str; 5]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    let mut space = false;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('|');
            space = false;
        }
        for c in part.chars() {
            if c.is_whitespace() {
                if !space {
                    key.push(' ');
                }
                space = true;
            } else {
                key.extend(c.to_lowercase());
                space = false;
            }
        }
    }
    key
}

/// The rules a row broke: (rule, column, the offending value).
type Errors = Vec<(Rule, usize, String)>;

/// What the rules made of one row, beyond its raw cells: the typed values
/// the staging row is written from, and the warning bits (`WARNINGS`).
struct Checked<'p> {
    email: Option<Email>,
    language: Option<&'p str>,
    civility: Option<&'static str>,
    birthdate: Option<NaiveDate>,
    country: Option<&'static str>,
    warns: u8,
}

/// Buffers reused across rows so the hot loop does not allocate, and the
/// e-mails seen so far.
#[derive(Default)]
pub struct Scratch {
    errors: Errors,
    json: Vec<u8>,
    pub seen: super::seen::Seen,
}

impl RowPlan {
    pub fn new(mapping: &Mapping, profile: &Profile, ctx: RuleContext, staging: Staging) -> RowPlan {
        let mut fields = [None; 15];
        let mut criteria = Vec::new();
        let mut consents = Vec::new();
        let mut attributes = Vec::new();
        for m in &mapping.mapped {
            match &m.target {
                Target::Field(f) => fields[f.index()] = Some(m.index),
                Target::Criteria(code) => {
                    let allowed = profile.criteria.get(code).map(|v| v.iter().cloned().collect()).unwrap_or_default();
                    criteria.push((m.index, code.clone(), allowed));
                }
                Target::Consent(name) => consents.push((m.index, name.clone())),
                Target::Attribute(name) => attributes.push((m.index, name.clone())),
            }
        }
        RowPlan {
            fields,
            criteria,
            consents,
            attributes,
            headers: mapping.headers.clone(),
            clear: profile.empty_cells == EmptyCells::Clear,
            lang: ctx.lang,
            extra_languages: ctx.extra_languages,
            today: ctx.today,
            run_id: ctx.run_id.to_string(),
            staging,
        }
    }

    fn cell<'r>(&self, rec: &Record<'r>, field: Field) -> Option<&'r str> {
        self.fields[field.index()].map(|i| clean(rec.get(i).unwrap_or("")))
    }

    /// The column a field's message names (0 when the field is not mapped).
    fn column(&self, field: Field) -> usize {
        self.fields[field.index()].unwrap_or(0)
    }

    /// Checks one record and writes either a staging row to `rows` or its
    /// messages to `msgs` and the line to `rejects`.
    pub fn check(&self, rec: &Record<'_>, scratch: &mut Scratch, out: Sinks<'_>) -> RowOutcome {
        let Sinks { rows, msgs, rejects } = out;
        scratch.errors.clear();
        let checked = self.apply_rules(rec, &mut scratch.errors);
        match checked.email {
            Some(ref email) if scratch.errors.is_empty() => {
                let maybe_dup = scratch.seen.insert(email.as_str());
                match self.staging {
                    Staging::Narrow => self.encode_narrow(rec, &checked, email, maybe_dup, rows),
                    _ => self.encode_full(rec, &checked, email, maybe_dup, rows, &mut scratch.json),
                }
                RowOutcome::Accepted
            }
            _ => {
                let mut reason = String::new();
                for (rule, column, value) in &scratch.errors {
                    let sentence = self.message(msgs, rec.line, *rule, *column, value);
                    if !reason.is_empty() {
                        reason.push_str(" | ");
                    }
                    reason.push_str(&sentence);
                }
                self.reject(rejects, rec, &reason);
                RowOutcome::Rejected
            }
        }
    }

    /// Every rule of SPEC §3, in the order their messages are listed: each
    /// broken rule pushes (rule, column, value) to `errors`; what the
    /// staging row needs beyond the raw cells is returned.
    fn apply_rules<'p>(&'p self, rec: &Record<'_>, errors: &mut Errors) -> Checked<'p> {
        let mut warns = 0u8;
        let email = self.check_email(rec, errors);
        let language = self.check_language(rec, errors, &mut warns);
        if let Some("") = self.cell(rec, Field::Display) {
            warns |= warn_bit(Field::Display);
        }
        self.check_formulas(rec, errors);
        let civility = self.check_civility(rec, errors, &mut warns);
        self.check_names(rec, errors, &mut warns);
        let birthdate = self.check_birthdate(rec, errors);
        let country = self.check_address(rec, errors);
        self.check_phones(rec, errors);
        self.check_custom_fields(rec, errors);
        Checked { email, language, civility, birthdate, country, warns }
    }

    fn check_email(&self, rec: &Record<'_>, errors: &mut Errors) -> Option<Email> {
        let raw = self.cell(rec, Field::Email).unwrap_or("");
        let email = Email::parse(raw);
        if email.is_none() {
            errors.push((Rule::EmailFormat, self.column(Field::Email), raw.to_owned()));
        }
        email
    }

    fn check_language(&self, rec: &Record<'_>, errors: &mut Errors, warns: &mut u8) -> Option<&str> {
        let v = self.cell(rec, Field::Language)?;
        if v.is_empty() {
            *warns |= warn_bit(Field::Language);
            return None;
        }
        // Stored upper-case; the codes are ASCII, so no allocation per row.
        let known = ["FR", "EN"].into_iter().chain(self.extra_languages.iter().map(String::as_str));
        let code = known.into_iter().find(|c| c.eq_ignore_ascii_case(v));
        if code.is_none() {
            errors.push((Rule::LanguageUnknown, self.column(Field::Language), v.to_owned()));
        }
        code
    }

    /// Free text that a spreadsheet would run when the contacts are
    /// exported and opened (CSV injection); names are checked with their
    /// own rule in `check_names`.
    fn check_formulas(&self, rec: &Record<'_>, errors: &mut Errors) {
        for field in [Field::Display, Field::Structure, Field::Address, Field::PostalCode, Field::State] {
            if let Some(v) = self.cell(rec, field).filter(|v| looks_like_formula(v)) {
                errors.push((Rule::CellFormula, self.column(field), v.to_owned()));
            }
        }
        for (i, _) in &self.attributes {
            let v = clean(rec.get(*i).unwrap_or(""));
            if looks_like_formula(v) {
                errors.push((Rule::CellFormula, *i, v.to_owned()));
            }
        }
    }

    fn check_civility(&self, rec: &Record<'_>, errors: &mut Errors, warns: &mut u8) -> Option<&'static str> {
        const CIVILITIES: [&str; 5] = ["MR", "MRS", "MISS", "MR_AND_MRS", "UNDEFINED"];
        let v = self.cell(rec, Field::Civility)?;
        if v.is_empty() {
            *warns |= warn_bit(Field::Civility);
            return None;
        }
        let civility = CIVILITIES.iter().find(|c| c.eq_ignore_ascii_case(v)).copied();
        if civility.is_none() {
            errors.push((Rule::CivilityUnknown, self.column(Field::Civility), v.to_owned()));
        }
        civility
    }

    fn check_names(&self, rec: &Record<'_>, errors: &mut Errors, warns: &mut u8) {
        for field in [Field::FirstName, Field::LastName] {
            match self.cell(rec, field) {
                Some("") => *warns |= warn_bit(field),
                Some(v) if looks_like_formula(v) => errors.push((Rule::CellFormula, self.column(field), v.to_owned())),
                Some(v) if v.chars().any(|c| c.is_numeric()) => {
                    errors.push((Rule::NameDigits, self.column(field), v.to_owned()))
                }
                _ => {}
            }
        }
    }

    fn check_birthdate(&self, rec: &Record<'_>, errors: &mut Errors) -> Option<NaiveDate> {
        let v = self.cell(rec, Field::Birthdate).filter(|v| !v.is_empty())?;
        let broken = match parse_birthdate(v) {
            Some(d) if d <= self.today => return Some(d),
            Some(_) => Rule::BirthdateFuture,
            None => Rule::BirthdateFormat,
        };
        errors.push((broken, self.column(Field::Birthdate), v.to_owned()));
        None
    }

    /// The town, the country, and the postal address as a whole (a street,
    /// town or country needs a postal code or a state). Returns the
    /// country's code.
    fn check_address(&self, rec: &Record<'_>, errors: &mut Errors) -> Option<&'static str> {
        let mut town_ok = false;
        if let Some(v) = self.cell(rec, Field::Town).filter(|v| !v.is_empty()) {
            town_ok = v.chars().all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’' | '.'));
            if !town_ok {
                errors.push((Rule::TownFormat, self.column(Field::Town), v.to_owned()));
            }
        }
        let country = self.cell(rec, Field::Country).filter(|v| !v.is_empty()).and_then(|v| {
            let code = country_code(v);
            if code.is_none() {
                errors.push((Rule::CountryUnknown, self.column(Field::Country), v.to_owned()));
            }
            code
        });
        let present = |f: Field| self.cell(rec, f).is_some_and(|v| !v.is_empty());
        // A town or country that broke its own rule is already reported: it
        // does not also count as part of an address (one message per problem).
        if (present(Field::Address) || town_ok || country.is_some())
            && !(present(Field::PostalCode) || present(Field::State))
        {
            let shown = [Field::Address, Field::Town, Field::Country]
                .iter()
                .filter_map(|f| self.cell(rec, *f).filter(|v| !v.is_empty()))
                .collect::<Vec<_>>()
                .join(", ");
            let column = self.fields[Field::PostalCode.index()].or(self.fields[Field::Address.index()]).unwrap_or(0);
            errors.push((Rule::AddressPartial, column, shown));
        }
        country
    }

    fn check_phones(&self, rec: &Record<'_>, errors: &mut Errors) {
        for field in [Field::Phone, Field::Mobile] {
            if let Some(v) = self.cell(rec, field).filter(|v| !v.is_empty())
                && !(v.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '.' | '-' | '(' | ')'))
                    && v.chars().any(|c| c.is_ascii_digit()))
            {
                errors.push((Rule::PhoneFormat, self.column(field), v.to_owned()));
            }
        }
    }

    /// Criteria take only the values declared in the profile; consents
    /// only the seed's spellings.
    fn check_custom_fields(&self, rec: &Record<'_>, errors: &mut Errors) {
        for (i, _, allowed) in &self.criteria {
            let v = clean(rec.get(*i).unwrap_or(""));
            if !v.is_empty() && !allowed.contains(v) {
                errors.push((Rule::CriteriaUnknown, *i, v.to_owned()));
            }
        }
        for (i, _) in &self.consents {
            let v = clean(rec.get(*i).unwrap_or(""));
            if !v.is_empty() && parse_consent(v).is_none() {
                errors.push((Rule::ConsentValue, *i, v.to_owned()));
            }
        }
    }

    /// The narrow columns of `staging::CONTACT_COLUMNS` (a mode that needs
    /// only the e-mail).
    fn encode_narrow(&self, rec: &Record<'_>, checked: &Checked<'_>, email: &Email, dup: bool, rows: &mut CopyBuf) {
        rows.int(rec.line as i64);
        rows.text(email.as_str());
        rows.int(i64::from(checked.warns));
        rows.bool(dup);
        rows.end_staging_row(Staging::Narrow);
    }

    /// The full row: `staging::CONTACT_COLUMNS`, in order (checked at its end).
    fn encode_full(
        &self,
        rec: &Record<'_>,
        checked: &Checked<'_>,
        email: &Email,
        dup: bool,
        rows: &mut CopyBuf,
        json: &mut Vec<u8>,
    ) {
        let value = |field: Field| self.cell(rec, field).filter(|v| !v.is_empty());
        rows.int(rec.line as i64);
        rows.text(email.as_str());
        rows.opt(checked.language);
        rows.opt(value(Field::Display));
        rows.opt(checked.civility);
        rows.opt(value(Field::FirstName));
        rows.opt(value(Field::LastName));
        match checked.birthdate {
            Some(d) => rows.date(d),
            None => rows.null(),
        }
        let [structure, address, postal_code, town, state] =
            [Field::Structure, Field::Address, Field::PostalCode, Field::Town, Field::State].map(value);
        for v in [structure, address, postal_code, town, state, checked.country] {
            rows.opt(v);
        }
        let org_key = structure.map(|name| {
            organisation_key([Some(name), address, postal_code, town, checked.country].map(|p| p.unwrap_or("")))
        });
        rows.opt(value(Field::Phone));
        rows.opt(value(Field::Mobile));
        // Criteria: an empty cell leaves the stored value, whatever empty_cells says (SPEC §3).
        let cell = |i: usize| Some(clean(rec.get(i).unwrap_or(""))).filter(|v| !v.is_empty());
        let criteria = self.criteria.iter().map(|(i, k, _)| (k.as_str(), cell(*i).map(JsonValue::Str)));
        write_json(rows, json, false, criteria);
        let consents =
            self.consents.iter().map(|(i, k)| (k.as_str(), cell(*i).and_then(parse_consent).map(JsonValue::Bool)));
        write_json(rows, json, self.clear, consents);
        let attributes = self.attributes.iter().map(|(i, k)| (k.as_str(), cell(*i).map(JsonValue::Str)));
        write_json(rows, json, self.clear, attributes);
        rows.int(i64::from(checked.warns));
        rows.bool(dup);
        rows.opt(org_key.as_deref());
        rows.end_staging_row(self.staging);
    }

    /// Rejects a record with fewer cells than the header: its values could
    /// sit in the wrong columns.
    pub fn short_row(&self, rec: &Record<'_>, width: usize, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        let detail = format!("{} / {width}", rec.len());
        let reason = self.message(msgs, rec.line, Rule::RowColumns, usize::MAX, &detail);
        self.reject(rejects, rec, &reason);
    }

    /// Rejects a record for one cell (`records::BadCell`).
    pub fn bad_cell(&self, rec: &Record<'_>, cell: BadCell, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        let reason = self.message(msgs, rec.line, cell.rule, cell.column, &cell.detail());
        self.reject(rejects, rec, &reason);
    }

    /// Keeps a rejected record as it was in the file (`write_reject`).
    fn reject(&self, rejects: &mut CopyBuf, rec: &Record<'_>, reason: &str) {
        write_reject(rejects, &self.run_id, rec, reason);
    }

    /// Writes one message and returns its sentence.
    fn message(&self, msgs: &mut CopyBuf, line: u64, rule: Rule, column: usize, value: &str) -> String {
        write_message(msgs, &self.headers, self.lang, line, rule, column, value)
    }
}

/// Keeps a rejected record as it was in the file, for the rejects file
/// the customer fixes and drops again (`run_rejects`: line, cells, reason).
pub fn write_reject(rejects: &mut CopyBuf, run_id: &str, rec: &Record<'_>, reason: &str) {
    let line = rec.line;
    rejects.text(run_id);
    rejects.int(line as i64);
    let mut array = String::with_capacity(rec.text_len() + 4 * rec.len() + 2);
    array.push('{');
    for (i, cell) in rec.iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push('"');
        for c in cell.chars() {
            if c == '"' || c == '\\' {
                array.push('\\');
            }
            // Kept for the customer to fix, as text can hold it.
            array.push(if c == '\0' { char::REPLACEMENT_CHARACTER } else { c });
        }
        array.push('"');
    }
    array.push('}');
    rejects.text(&array);
    rejects.text(reason);
    rejects.end_row();
}

/// Writes one message (`staging_messages` COPY row) about the cell in
/// `column` of `headers` and returns its sentence.
pub fn write_message(
    msgs: &mut CopyBuf,
    headers: &[String],
    lang: ReportLanguage,
    line: u64,
    rule: Rule,
    column: usize,
    value: &str,
) -> String {
    let header = headers.get(column).map(String::as_str).unwrap_or("");
    let value = excerpt(value);
    msgs.int(line as i64);
    msgs.text(header);
    msgs.text(rule.code());
    msgs.text(rule.severity().as_str());
    msgs.text(value);
    let sentence = rule.sentence(lang, header, value);
    msgs.text(&sentence);
    msgs.end_row();
    sentence
}

/// A cell a spreadsheet would evaluate: `=…`, or `+`, `-`, `@` followed by
/// a function call (`@SUM(…)`, `-HYPERLINK(…)`). A phone number (`+41 …`) or
/// a lone `-` is not one.
fn looks_like_formula(v: &str) -> bool {
    let mut chars = v.chars();
    match chars.next() {
        Some('=') => true,
        Some('+' | '-' | '@') => chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && v.contains('('),
        _ => false,
    }
}

enum JsonValue<'a> {
    Str(&'a str),
    Bool(bool),
}

/// Writes a JSON object of the given entries as one COPY cell: present values
/// always, empty cells as `null` only when `nulls` (so the merge erases the
/// stored key), and SQL NULL when nothing remains (the stored object stays).
fn write_json<'a>(
    rows: &mut CopyBuf,
    json: &mut Vec<u8>,
    nulls: bool,
    entries: impl Iterator<Item = (&'a str, Option<JsonValue<'a>>)>,
) {
    json.clear();
    json.push(b'{');
    for (key, value) in entries {
        if value.is_none() && !nulls {
            continue;
        }
        if json.len() > 1 {
            json.push(b',');
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *json, key);
        json.push(b':');
        match value {
            Some(JsonValue::Str(v)) => {
                let _ = serde_json::to_writer(&mut *json, v);
            }
            Some(JsonValue::Bool(true)) => json.extend_from_slice(b"true"),
            Some(JsonValue::Bool(false)) => json.extend_from_slice(b"false"),
            None => json.extend_from_slice(b"null"),
        }
    }
    if json.len() == 1 {
        rows.null();
    } else {
        json.push(b'}');
        rows.text_bytes(json);
    }
}

/// Trims a cell and removes the apostrophe that every CSV dropfeed writes
/// puts before a cell a spreadsheet could evaluate (`spreadsheet`), so a
/// fixed rejects file or an edited export imports as the customer typed it.
pub fn clean(raw: &str) -> &str {
    crate::spreadsheet::unneutralise(raw.trim()).trim()
}

/// `dd.mm.yyyy`, two digits, two digits, four digits, a real date.
pub fn parse_birthdate(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[2] != b'.' || b[5] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r.clone()].iter().all(u8::is_ascii_digit).then(|| v[r].parse().ok())?
    };
    NaiveDate::from_ymd_opt(num(6..10)? as i32, num(3..5)?, num(0..2)?)
}

/// Seed 001's tri-state booleans.
pub fn parse_consent(v: &str) -> Option<bool> {
    match v {
        "TRUE" | "true" | "T" | "t" => Some(true),
        "FALSE" | "false" | "F" | "f" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_keys_ignore_case_and_runs_of_white_space_but_not_the_address() {
        let key = organisation_key(["ACME  SA", "1 Rue\tdu Lac", "1201", "Genève", "CH"]);
        assert_eq!(key, "acme sa|1 rue du lac|1201|genève|ch");
        assert_eq!(organisation_key(["Acme SA", "1 rue du  lac", "1201", "GENÈVE", "ch"]), key);
        assert_ne!(organisation_key(["ACME SA", "9 avenue de France", "1202", "Genève", "CH"]), key);
        assert_eq!(organisation_key(["ACME SA", "", "", "", ""]), "acme sa||||");
    }

    #[test]
    fn birthdates_must_be_real_dd_mm_yyyy_dates() {
        assert_eq!(parse_birthdate("29.02.2024"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in ["29.02.2023", "1985-03-12", "1.2.1985", "01/02/1985", "32.01.1990", "aa.bb.cccc"] {
            assert_eq!(parse_birthdate(bad), None, "{bad}");
        }
    }

    #[test]
    fn consents_accept_only_the_seed_spellings() {
        assert_eq!(parse_consent("T"), Some(true));
        assert_eq!(parse_consent("f"), Some(false));
        assert_eq!(parse_consent("yes"), None);
        assert_eq!(parse_consent("Vrai"), None);
    }

    #[test]
    fn neutralised_formulas_get_their_apostrophe_removed() {
        assert_eq!(clean(" '=1+1 "), "=1+1");
        assert_eq!(clean("'t Hooft"), "'t Hooft");
    }
}
