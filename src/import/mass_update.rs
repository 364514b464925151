//! Seed 001's mass update of criteria and consents: a file of `[old] X` /
//! `[new] X` column pairs (as `contacts export --old-new` writes it) changes
//! exactly the edited values (`[new]` differs from `[old]`) that differ from
//! the stored ones, and a line with an edited pair whose `[old]` no longer
//! matches the database is a conflict that writes nothing. Parsing, staging, duplicates, limits and the run record are the
//! contacts import's (`import::run`); this module has the header, the line
//! rules and the set-based decision and update.

use std::collections::{HashMap, HashSet};

use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::domain::{Email, ReportLanguage};
use crate::profile::{Field, Profile, Target};
use crate::store::profiles::DeclaredCriterion;

use super::mapping::{HeaderError, Mapped, Mapping};
use super::records::LineRules;
use super::rules::FileFailure;
use super::rules::Rule;
use super::staging::{CopyBuf, LineOutcome, MESSAGE_COLUMNS, Staging};
use super::validate::{BadCell, Record};
use super::validate::{RowOutcome, RuleContext, Sinks, clean, parse_consent, write_message, write_reject};
use super::write::{Plan, email_header};

/// Criterion code -> the internal value codes a `[new]` cell may hold.
pub type KnownCriteria = HashMap<String, HashSet<String>>;

/// The codes a mass update accepts: those declared by the tenant's profiles
/// (`criteria list`) and by the profile of this import.
pub fn known_criteria(declared: &[DeclaredCriterion], profile: &Profile) -> KnownCriteria {
    let mut known: KnownCriteria = HashMap::new();
    let all = declared.iter().map(|c| (&c.code, &c.values)).chain(profile.criteria.iter());
    for (code, values) in all {
        known.entry(code.clone()).or_default().extend(values.iter().cloned());
    }
    known
}

/// What a pair of columns updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Criteria,
    Consent,
}

/// One `[old] X` / `[new] X` pair of the header.
#[derive(Debug, Clone)]
struct Pair {
    old: usize,
    new: usize,
    kind: Kind,
    key: String,
}

/// The header `[old]` / `[new]` prefix of `header`, if any, and the rest.
fn split_prefix(header: &str) -> Option<(bool, &str)> {
    for (prefix, is_old) in [("[old]", true), ("[new]", false)] {
        if let Some(rest) = super::mapping::strip_prefix_ci(header, prefix) {
            return Some((is_old, rest));
        }
    }
    None
}

/// Reads a mass-update header: the `email` column, the pairs (`[old] X`
/// with or without a space after the bracket), and the `id` column the
/// export writes, which is ignored (the e-mail is the identity, SPEC §3).
/// Other columns are reported as unmapped. The mapping lists `email` and
/// the `[new]` columns, so the report shows what the file changes.
fn resolve(headers: Vec<String>) -> Result<(Mapping, usize, Vec<Pair>), HeaderError> {
    let bad = |detail: String| HeaderError { rule: Rule::HeaderOldNew, detail };
    let mut mapping = Mapping { width: headers.len(), headers: headers.clone(), ..Mapping::default() };
    let mut email = None;
    // Target -> ([old] column, [new] column), in file order.
    let mut halves: Vec<(Target, Option<usize>, Option<usize>)> = Vec::new();
    for (index, header) in headers.iter().enumerate() {
        let Some((is_old, rest)) = split_prefix(header) else {
            if header.parse::<Target>().ok() == Some(Target::Field(Field::Email)) {
                if email.is_some() {
                    return Err(HeaderError { rule: Rule::HeaderDuplicateTarget, detail: "email".into() });
                }
                email = Some(index);
            } else if !header.eq_ignore_ascii_case("id") && !header.is_empty() {
                mapping.unmapped.push(header.clone());
            }
            continue;
        };
        let target =
            rest.parse::<Target>().ok().filter(|t| matches!(t, Target::Criteria(_) | Target::Consent(_))).ok_or_else(
                || bad(format!("\"{header}\": only criteria.<code> and consent.<name> can be mass-updated")),
            )?;
        let at = match halves.iter().position(|(t, _, _)| *t == target) {
            Some(at) => at,
            None => {
                halves.push((target, None, None));
                halves.len() - 1
            }
        };
        let slot = if is_old { &mut halves[at].1 } else { &mut halves[at].2 };
        if slot.replace(index).is_some() {
            return Err(HeaderError { rule: Rule::HeaderDuplicateTarget, detail: format!("\"{header}\"") });
        }
    }
    let email = email.ok_or(HeaderError { rule: Rule::HeaderNoEmail, detail: String::new() })?;
    mapping.mapped.push(Mapped { index: email, header: headers[email].clone(), target: Target::Field(Field::Email) });
    let mut pairs = Vec::new();
    for (target, old, new) in halves {
        let (Some(old), Some(new)) = (old, new) else {
            return Err(bad(format!("{target}: an [old] column needs its [new] column and the reverse")));
        };
        let (kind, key) = match &target {
            Target::Criteria(k) => (Kind::Criteria, k.clone()),
            Target::Consent(k) => (Kind::Consent, k.clone()),
            _ => unreachable!("filtered above"),
        };
        mapping.mapped.push(Mapped { index: new, header: headers[new].clone(), target });
        pairs.push(Pair { old, new, kind, key });
    }
    if pairs.is_empty() {
        return Err(bad("no [old]/[new] column pair".into()));
    }
    Ok((mapping, email, pairs))
}

/// The line rules of a mass update (`records::LineRules`).
pub struct LinePlan {
    email: usize,
    pairs: Vec<Pair>,
    /// Per pair, for criteria: the codes its `[new]` cell may hold.
    allowed: Vec<HashSet<String>>,
    headers: Vec<String>,
    lang: ReportLanguage,
    run_id: String,
    errors: Vec<(Rule, usize, String)>,
    json: Vec<u8>,
    seen: super::seen::Seen,
}

enum Value<'a> {
    Null,
    Str(&'a str),
    Bool(bool),
}

impl LinePlan {
    /// Writes the pairs of `kind` as one JSON object, each key present.
    fn object<'r>(&mut self, rows: &mut CopyBuf, rec: &Record<'r>, kind: Kind, old: bool) {
        self.json.clear();
        self.json.push(b'{');
        for p in self.pairs.iter().filter(|p| p.kind == kind) {
            let cell = clean(rec.get(if old { p.old } else { p.new }).unwrap_or(""));
            let value = match (cell.is_empty(), kind) {
                (true, _) => Value::Null,
                (false, Kind::Criteria) => Value::Str(cell),
                // Checked before: an unparsable consent rejected the line.
                (false, Kind::Consent) => parse_consent(cell).map_or(Value::Null, Value::Bool),
            };
            if self.json.len() > 1 {
                self.json.push(b',');
            }
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.json, &p.key);
            self.json.push(b':');
            match value {
                Value::Null => self.json.extend_from_slice(b"null"),
                Value::Str(v) => {
                    let _ = serde_json::to_writer(&mut self.json, v);
                }
                Value::Bool(b) => self.json.extend_from_slice(if b { b"true" } else { b"false" }),
            }
        }
        self.json.push(b'}');
        rows.text_bytes(&self.json);
    }
}

impl LineRules for LinePlan {
    fn check(&mut self, rec: &Record<'_>, sinks: Sinks<'_>) -> RowOutcome {
        let Sinks { rows, msgs, rejects } = sinks;
        self.errors.clear();
        let email_raw = clean(rec.get(self.email).unwrap_or(""));
        let email = Email::parse(email_raw);
        if email.is_none() {
            self.errors.push((Rule::EmailFormat, self.email, email_raw.to_owned()));
        }
        for (p, allowed) in self.pairs.iter().zip(&self.allowed) {
            let new = clean(rec.get(p.new).unwrap_or(""));
            match p.kind {
                Kind::Criteria if !new.is_empty() && !allowed.contains(new) => {
                    self.errors.push((Rule::CriteriaUnknown, p.new, new.to_owned()))
                }
                Kind::Consent => {
                    // The [old] value is compared with the stored one: it must be readable too.
                    for column in [p.old, p.new] {
                        let v = clean(rec.get(column).unwrap_or(""));
                        if !v.is_empty() && parse_consent(v).is_none() {
                            self.errors.push((Rule::ConsentValue, column, v.to_owned()));
                        }
                    }
                }
                Kind::Criteria => {}
            }
        }
        let Some(email) = email.filter(|_| self.errors.is_empty()) else {
            let mut reason = String::new();
            for (rule, column, value) in &self.errors {
                let sentence = write_message(msgs, &self.headers, self.lang, rec.line, *rule, *column, value);
                if !reason.is_empty() {
                    reason.push_str(" | ");
                }
                reason.push_str(&sentence);
            }
            write_reject(rejects, &self.run_id, rec, &reason);
            return RowOutcome::Rejected;
        };
        let maybe_dup = self.seen.insert(email.as_str());
        // staging::MASS_UPDATE_COLUMNS, in order (checked at its end).
        rows.int(rec.line as i64);
        rows.text(email.as_str());
        self.object(rows, rec, Kind::Criteria, true);
        self.object(rows, rec, Kind::Criteria, false);
        self.object(rows, rec, Kind::Consent, true);
        self.object(rows, rec, Kind::Consent, false);
        rows.bool(maybe_dup);
        rows.end_staging_row(Staging::MassUpdate);
        RowOutcome::Accepted
    }

    fn short_row(&self, rec: &Record<'_>, width: usize, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        let detail = format!("{} / {width}", rec.len());
        let reason = write_message(msgs, &self.headers, self.lang, rec.line, Rule::RowColumns, usize::MAX, &detail);
        write_reject(rejects, &self.run_id, rec, &reason);
    }

    fn bad_cell(&self, rec: &Record<'_>, cell: BadCell, msgs: &mut CopyBuf, rejects: &mut CopyBuf) {
        let reason = write_message(msgs, &self.headers, self.lang, rec.line, cell.rule, cell.column, &cell.detail());
        write_reject(rejects, &self.run_id, rec, &reason);
    }

    fn maybe_duplicates(&self) -> u64 {
        self.seen.flagged()
    }
}

/// `records::parse` for a mass-update file.
pub fn parse(
    reader: Box<dyn std::io::Read + Send>,
    profile: &Profile,
    ctx: RuleContext,
    known: &KnownCriteria,
    limits: &crate::configuration::Limits,
    emit: impl FnMut(super::staging::Batch) -> bool,
    recycled: impl FnMut() -> Option<super::staging::Batch>,
) -> Result<super::records::ParseSummary, FileFailure> {
    let rules = |headers: Vec<String>| {
        let (mapping, email, pairs) = resolve(headers).map_err(|e| FileFailure::new(e.rule, Some(1), e.detail))?;
        let none = HashSet::new();
        let allowed = pairs
            .iter()
            .map(|p| match p.kind {
                Kind::Criteria => known.get(&p.key).unwrap_or(&none).clone(),
                Kind::Consent => HashSet::new(),
            })
            .collect();
        let plan = LinePlan {
            email,
            pairs,
            allowed,
            headers: mapping.headers.clone(),
            lang: ctx.lang,
            run_id: ctx.run_id.to_string(),
            errors: Vec::new(),
            json: Vec::with_capacity(256),
            seen: Default::default(),
        };
        Ok((mapping, plan))
    };
    super::records::parse_with(reader, profile, limits, rules, emit, recycled)
}

/// The outcome of every staged line against the stored contacts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decided {
    /// Lines with at least one value to change and no conflict.
    pub updated: i64,
    /// Lines that ask for nothing the database does not already hold.
    pub unchanged: i64,
    /// Lines whose e-mail is no contact's (`email.unknown`).
    pub skipped_new: i64,
    /// Lines with a pair whose `[old]` differs from the stored value
    /// (`update.conflict`): rejected, nothing of them written.
    pub conflicts: i64,
}

/// SQL showing the JSON value `v` as the file writes it: criteria codes as
/// they are, consents as TRUE/FALSE, no value as an empty string.
fn shown(v: &str) -> String {
    let v = format!("({v})");
    format!(
        "CASE jsonb_typeof({v}) WHEN 'boolean' THEN upper({v}::text) WHEN 'string' THEN {v} #>> '{{}}' \
         WHEN 'null' THEN '' ELSE coalesce({v}::text, '') END"
    )
}

/// Decides each staged line, in one statement, into `decided`: `x` unknown
/// e-mail, `c` conflict, `u` update, `n` unchanged. A pair asks for a change
/// when its `[new]` differs from its `[old]` (the customer edited it); such a
/// pair changes something when `[new]` differs from the stored value, and
/// is a conflict when, in addition, `[old]` differs from it (the value
/// changed since the export). An untouched pair asks for nothing, whatever
/// happened to the stored value since. Then writes the messages of unknown
/// and conflicting lines and counts the outcomes.
pub async fn decide(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<Decided> {
    // The pairs' subquery per line makes the planner's cost high enough for
    // JIT, whose compilation took 0.6 s of this 1.8 s statement (200,000 lines).
    sqlx::raw_sql("SET LOCAL jit = off").execute(&mut *conn).await?;
    sqlx::query(AssertSqlSafe(decided_sql())).bind(plan.tenant_id).execute(&mut *conn).await?;
    // Temporary tables get no statistics from autovacuum; the update joins on it.
    sqlx::raw_sql("ANALYZE decided").execute(&mut *conn).await?;

    explain_skipped(&mut *conn, plan).await?;
    count_decided(conn).await
}

/// The statement that fills `decided` (see `decide`).
fn decided_sql() -> String {
    // `p` is [changes, conflicts, first conflict as [target, old, stored],
    // new criteria, new consents] (`null` clears a key: what `apply`
    // merges), for the lines of known contacts. The pairs the customer left
    // as exported count too: a line whose `[old]` no longer matches the
    // database is a conflict (issue 8), so the customer sees that the export
    // was stale rather than having it half applied. A CASE evaluates its
    // subquery lazily: lines left as exported on unchanged contacts skip it.
    let (unknown, conflict) = (LineOutcome::Unknown.sql(), LineOutcome::Conflict.sql());
    let (update, unchanged) = (LineOutcome::Update.sql(), LineOutcome::Unchanged.sql());
    format!(
        "CREATE TEMP TABLE decided ON COMMIT DROP AS
         SELECT line, email, contact_id,
                CASE WHEN contact_id IS NULL THEN {unknown} WHEN (p ->> 1)::bigint > 0 THEN {conflict}
                     WHEN (p ->> 0)::bigint > 0 THEN {update} ELSE {unchanged} END AS outcome,
                p -> 2 AS conflict, p -> 3 AS edits_criteria, p -> 4 AS edits_consents
         FROM (
             SELECT s.line, s.email, c.id AS contact_id,
                    CASE WHEN c.id IS NULL THEN NULL
                         -- Left as exported and the database did not move
                         -- (its values are the [old] ones): nothing to do,
                         -- and no pair to compare. Most lines of a file.
                         WHEN s.new_criteria = s.old_criteria AND s.new_consents = s.old_consents
                              AND (s.old_criteria = '{{}}' OR c.criteria = jsonb_strip_nulls(s.old_criteria))
                              AND (s.old_consents = '{{}}' OR c.consents = jsonb_strip_nulls(s.old_consents))
                         THEN NULL
                         ELSE (
                             SELECT jsonb_build_array(
                                 count(*) FILTER (WHERE q.new IS DISTINCT FROM q.stored),
                                 count(*) FILTER (WHERE q.new IS DISTINCT FROM q.stored
                                                    AND q.old IS DISTINCT FROM q.stored),
                                 (array_agg(jsonb_build_array(q.kind || '.' || q.key, q.old, q.stored)
                                            ORDER BY q.kind, q.key)
                                     FILTER (WHERE q.new IS DISTINCT FROM q.stored
                                               AND q.old IS DISTINCT FROM q.stored))[1],
                                 coalesce(jsonb_object_agg(q.key, q.new) FILTER (WHERE q.kind = 'criteria'), '{{}}'),
                                 coalesce(jsonb_object_agg(q.key, q.new) FILTER (WHERE q.kind = 'consent'), '{{}}'))
                             FROM (
                                 SELECT 'criteria' AS kind, n.key, nullif(s.old_criteria -> n.key, 'null') AS old,
                                        nullif(n.value, 'null') AS new, c.criteria -> n.key AS stored
                                 FROM jsonb_each(s.new_criteria) n
                                 UNION ALL
                                 SELECT 'consent', n.key, nullif(s.old_consents -> n.key, 'null'),
                                        nullif(n.value, 'null'), c.consents -> n.key
                                 FROM jsonb_each(s.new_consents) n
                             ) q)
                    END AS p
             FROM staging s
             LEFT JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email
             -- a fence: flattened, `p` would be computed once per use above
             OFFSET 0
         ) x"
    )
}

/// The messages of the lines that write nothing: an unknown e-mail, or a
/// conflict naming the pair's `[old]` column as the file spells it.
async fn explain_skipped(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<()> {
    let (unknown, conflict) = (LineOutcome::Unknown.sql(), LineOutcome::Conflict.sql());
    let sentence = Rule::EmailUnknownMassUpdate.sentence(plan.lang, "", "{value}");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO staging_messages ({MESSAGE_COLUMNS})
         SELECT line, $1, 'email.unknown', 'error', email, replace($2, '{{value}}', email)
         FROM decided WHERE outcome = {unknown}"
    )))
    .bind(email_header(plan.mapping))
    .bind(sentence)
    .execute(&mut *conn)
    .await?;

    // The message names the pair's [old] column as the file spells it.
    let old_headers: HashMap<String, String> = plan
        .mapping
        .headers
        .iter()
        .filter_map(|h| match split_prefix(h) {
            Some((true, rest)) => rest.parse::<Target>().ok().map(|t| (t.to_string(), h.clone())),
            _ => None,
        })
        .collect();
    let template = Rule::UpdateConflict.sentence(plan.lang, "{key}", "{old}");
    let (old, stored) = (shown("conflict -> 1"), shown("conflict -> 2"));
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO staging_messages ({MESSAGE_COLUMNS})
         SELECT line, $1::jsonb ->> (conflict ->> 0), 'update.conflict', 'error', {old},
                replace(replace(replace($2, '{{key}}', conflict ->> 0), '{{old}}', {old}), '{{stored}}', {stored})
         FROM decided WHERE outcome = {conflict}"
    )))
    .bind(serde_json::to_value(&old_headers).unwrap_or_default())
    .bind(template)
    .execute(&mut *conn)
    .await?;

    Ok(())
}

async fn count_decided(conn: &mut PgConnection) -> sqlx::Result<Decided> {
    let (unknown, conflict) = (LineOutcome::Unknown.sql(), LineOutcome::Conflict.sql());
    let (update, unchanged) = (LineOutcome::Update.sql(), LineOutcome::Unchanged.sql());
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT count(*) FILTER (WHERE outcome = {update}) AS u, count(*) FILTER (WHERE outcome = {unchanged}) AS n,
                count(*) FILTER (WHERE outcome = {unknown}) AS x, count(*) FILTER (WHERE outcome = {conflict}) AS c
         FROM decided"
    )))
    .fetch_one(&mut *conn)
    .await?;
    Ok(Decided { updated: row.get("u"), unchanged: row.get("n"), skipped_new: row.get("x"), conflicts: row.get("c") })
}

/// Writes the lines decided `u`, in one statement: each contact gets the
/// `[new]` values of the pairs the customer edited (an empty one removes
/// the key), nothing else. Conflicting and unchanged lines write nothing.
pub async fn apply(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<u64> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE contacts c
         SET criteria = jsonb_strip_nulls(c.criteria || d.edits_criteria),
             consents = jsonb_strip_nulls(c.consents || d.edits_consents),
             updated_by_run = $2, updated_at = now()
         FROM decided d
         WHERE d.outcome = {} AND c.id = d.contact_id AND c.tenant_id = $1",
        LineOutcome::Update.sql()
    )))
    .bind(plan.tenant_id)
    .bind(plan.run_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_are_read_with_or_without_a_space_after_the_bracket_and_the_id_is_ignored() {
        let headers = h(&[
            "email",
            "id",
            "[old] criteria.segment",
            "[new]criteria.segment",
            "[OLD]consent.nl",
            "[new] consent.nl",
            "note",
        ]);
        let (m, email, pairs) = resolve(headers).unwrap();
        assert_eq!(email, 0);
        assert_eq!(
            pairs.iter().map(|p| (p.old, p.new, p.key.as_str())).collect::<Vec<_>>(),
            vec![(2, 3, "segment"), (4, 5, "nl")]
        );
        assert_eq!(m.unmapped, vec!["note".to_string()]);
        assert_eq!(m.mapped.len(), 3, "email and the two [new] columns");
    }

    #[test]
    fn an_unpaired_column_or_a_base_field_refuses_the_header() {
        let err = resolve(h(&["email", "[new] criteria.segment"])).unwrap_err();
        assert_eq!((err.rule, err.detail.contains("criteria.segment")), (Rule::HeaderOldNew, true), "{}", err.detail);
        let err = resolve(h(&["email", "[old] town", "[new] town"])).unwrap_err();
        assert_eq!(err.rule, Rule::HeaderOldNew);
        assert_eq!(resolve(h(&["email", "segment"])).unwrap_err().rule, Rule::HeaderOldNew);
        assert_eq!(resolve(h(&["[old] consent.a", "[new] consent.a"])).unwrap_err().rule, Rule::HeaderNoEmail);
    }
}
