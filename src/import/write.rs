//! Writing an import to PostgreSQL, set-based: rows are COPYed into a staging
//! table, duplicates and outcomes are computed in SQL, then one statement per
//! table writes them. Never one statement per row.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::ReportLanguage;
use crate::profile::{DuplicatesInFile, EmptyCells, Field, Mode, Target};

use super::mapping::Mapping;
use super::rules::Rule;
use super::staging::{LineOutcome, MESSAGE_COLUMNS};

pub async fn known_addresses(conn: &mut PgConnection, tenant_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email)",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await
}

/// Messages and rejected lines of the batches, kept in anonymous temporary
/// files (not memory) until the rows' COPY is done.
pub struct Spill {
    msgs: std::fs::File,
    rejects: std::fs::File,
    msgs_bytes: u64,
    rejects_bytes: u64,
}

impl Spill {
    pub fn new() -> std::io::Result<Spill> {
        Ok(Spill { msgs: tempfile::tempfile()?, rejects: tempfile::tempfile()?, msgs_bytes: 0, rejects_bytes: 0 })
    }

    pub fn add(&mut self, batch: &super::staging::Batch) -> std::io::Result<()> {
        use std::io::Write;
        self.msgs.write_all(&batch.msgs)?;
        self.rejects.write_all(&batch.rejects)?;
        self.msgs_bytes += batch.msgs.len() as u64;
        self.rejects_bytes += batch.rejects.len() as u64;
        Ok(())
    }

    /// COPYs the spilled messages into `staging_messages` and the rejected
    /// lines into `run_rejects`, streaming from the files.
    pub async fn copy_into(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        use std::io::{Seek, SeekFrom};
        for (mut file, bytes, sql) in [
            (self.msgs, self.msgs_bytes, format!("COPY staging_messages ({MESSAGE_COLUMNS}) FROM STDIN")),
            (self.rejects, self.rejects_bytes, "COPY run_rejects (run_id, line, cells, reason) FROM STDIN".to_owned()),
        ] {
            if bytes == 0 {
                continue;
            }
            file.seek(SeekFrom::Start(0))?;
            let mut copy = conn.copy_in_raw(&sql).await?;
            copy.read_from(tokio::fs::File::from_std(file)).await?;
            copy.finish().await?;
        }
        Ok(())
    }
}

/// Adds a file-level message (header, mapping, ratio) to the run.
pub async fn add_message(
    conn: &mut PgConnection,
    line: u64,
    column: Option<&str>,
    rule: Rule,
    value: &str,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO staging_messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    )))
    .bind(line as i64)
    .bind(column)
    .bind(rule.code())
    .bind(rule.severity().as_str())
    .bind(value)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the set-based statements need to know about the import.
pub struct Plan<'a> {
    pub tenant_id: i64,
    pub run_id: Uuid,
    pub mapping: &'a Mapping,
    pub mode: Mode,
    pub empty_cells: EmptyCells,
    pub duplicates: DuplicatesInFile,
    pub default_language: &'a str,
    pub lang: ReportLanguage,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Outcomes {
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub skipped_existing: i64,
    pub skipped_new: i64,
    /// Rows written with at least one correction.
    pub warnings: i64,
    /// Per entry of `staging::WARNINGS`: rows written with that correction.
    pub by_warning: [i64; WARNING_KINDS],
    /// Lines whose e-mail is a stored contact's (the rows of `classified`).
    pub matched: i64,
    /// Mode replace_list: memberships removed (see `replace_members`).
    pub removed_from_list: i64,
    /// Organisations the file's structures created (see `apply`).
    pub organisations_created: i64,
}

/// The condition, on `staging s`, of lines whose e-mail no contact has:
/// they are the lines absent from `classified`. When no line matched, that is
/// every line, and the anti-join is not made (a first import's 1M rows).
fn new_lines(matched: i64) -> &'static str {
    if matched == 0 { "true" } else { "NOT EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)" }
}

const WARNING_KINDS: usize = super::staging::WARNINGS.len();

/// Rejects all but one line of each e-mail present more than once, keeping
/// the first or last line as the profile says. Returns the lines rejected.
pub async fn reject_duplicates(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<i64> {
    let order = match plan.duplicates {
        DuplicatesInFile::First => "ASC",
        DuplicatesInFile::Last => "DESC",
    };
    let column = email_header(plan.mapping);
    let template = Rule::EmailDuplicateInFile.sentence(plan.lang, "{winner}", "{value}");
    let done = sqlx::query(AssertSqlSafe(format!(
        "WITH candidate AS (
            SELECT DISTINCT email FROM staging WHERE maybe_dup
        ), dup AS (
            SELECT email FROM staging JOIN candidate USING (email) GROUP BY email HAVING count(*) > 1
        ), ranked AS (
            SELECT s.line, s.email,
                   row_number() OVER w AS rn, first_value(s.line) OVER w AS winner
            FROM staging s JOIN dup USING (email)
            WINDOW w AS (PARTITION BY s.email ORDER BY s.line {order})
        ), losers AS (
            DELETE FROM staging s USING ranked r
            WHERE s.line = r.line AND r.rn > 1
            RETURNING s.line, s.email, r.winner
        )
        INSERT INTO staging_messages ({MESSAGE_COLUMNS})
        SELECT line, $1, 'email.duplicate_in_file', 'error', email,
               replace(replace($2, '{{value}}', email), '{{winner}}', winner::text)
        FROM losers"
    )))
    .bind(column)
    .bind(template)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() as i64)
}

pub fn email_header(mapping: &Mapping) -> String {
    mapping.column_of(Field::Email).and_then(|i| mapping.headers.get(i)).cloned().unwrap_or_default()
}

/// SQL for a base field's value from `new`, a file value (NULL when the cell
/// was empty), with the default a NOT NULL field takes.
fn with_default(field: Field, new: &str) -> String {
    match field {
        Field::FirstName | Field::LastName => format!("coalesce({new}, '-')"),
        Field::Civility => format!("coalesce({new}, 'UNDEFINED')"),
        Field::Language => format!("coalesce({new}, $2)"),
        _ => new.to_owned(),
    }
}

/// The value a base field takes on a new contact.
fn inserted(field: Field) -> String {
    with_default(field, &format!("s.{}", field.name()))
}

/// The (column, new value) pairs an update writes: only what the file maps.
/// `new(column)` is the SQL of the file's value, `old` the alias of the
/// stored row: the same merge serves the comparison in `classify` and the
/// update in `update_sql`.
fn assignments(plan: &Plan<'_>, new: impl Fn(&str) -> String, old: &str) -> Vec<(&'static str, String)> {
    let clear = plan.empty_cells == EmptyCells::Clear;
    let mut out: Vec<(&'static str, String)> = Field::ALL
        .iter()
        .filter(|f| **f != Field::Email && plan.mapping.maps(**f))
        .map(|f| {
            let (c, v) = (f.name(), new(f.name()));
            (c, if clear { with_default(*f, &v) } else { format!("coalesce({v}, {old}.{c})") })
        })
        .collect();
    let has = |pred: fn(&Target) -> bool| plan.mapping.mapped.iter().any(|m| pred(&m.target));
    if has(|t| matches!(t, Target::Criteria(_))) {
        out.push(("criteria", format!("{old}.criteria || coalesce({}, '{{}}')", new("criteria"))));
    }
    if has(|t| matches!(t, Target::Consent(_))) {
        out.push(("consents", format!("jsonb_strip_nulls({old}.consents || coalesce({}, '{{}}'))", new("consents"))));
    }
    if has(|t| matches!(t, Target::Attribute(_))) {
        out.push((
            "attributes",
            format!("jsonb_strip_nulls({old}.attributes || coalesce({}, '{{}}'))", new("attributes")),
        ));
    }
    out
}

/// The update of the lines classified `u`, with the merge of `assignments`
/// (the one `classify` compared); `None` when the file maps nothing an
/// update could change. Each contact is reached by its primary key, from
/// `classified` sorted by contact id, so the rows are visited as they lie in
/// the table: 6.2-6.8 s for 485k rows, against 7.4-8.9 s for the upsert
/// whose every line conflicted that this replaced (it probed the unique
/// e-mail index and WAL-logged a row lock before each update).
fn update_sql(plan: &Plan<'_>) -> Option<String> {
    let mut sets: Vec<String> =
        assignments(plan, |c| format!("x.{c}"), "c").into_iter().map(|(c, e)| format!("{c} = {e}")).collect();
    if sets.is_empty() {
        return None;
    }
    let org = Organisations::of(plan);
    let mut org_id = "";
    if org.mapped {
        org_id = ", o.id AS org_id";
        sets.push(match plan.empty_cells {
            EmptyCells::Keep => "organisation_id = coalesce(x.org_id, c.organisation_id)".into(),
            EmptyCells::Clear => "organisation_id = x.org_id".into(),
        });
    }
    Some(format!(
        "UPDATE contacts c SET {}, updated_by_run = $3, updated_at = now()
         FROM (SELECT k.contact_id, s.*{org_id} FROM staging s JOIN classified k USING (line) {}
               WHERE k.outcome = {update} ORDER BY k.contact_id) x
         WHERE c.id = x.contact_id AND c.tenant_id = $1",
        sets.join(", "),
        org.join,
        update = LineOutcome::Update.sql(),
    ))
}

/// Decides what the import does with each staged line whose e-mail is a
/// stored contact's: `u` update, `n` unchanged, `e` skipped (exists). The
/// other lines, absent from `classified`, are new: inserted, or skipped in
/// update-only mode. Only matches are kept because the join of every staged
/// line with its outcome cost a first import 1 s. Returns the matches.
/// The statement `classify` runs: `classified` from the staged lines that
/// match a contact, each with its outcome.
fn classify_sql(plan: &Plan<'_>) -> String {
    let sets = assignments(plan, |c| format!("s.{c}"), "c");
    let changed = if sets.is_empty() {
        "false".to_owned()
    } else {
        let new: Vec<&str> = sets.iter().map(|(_, e)| e.as_str()).collect();
        let old: Vec<String> = sets.iter().map(|(c, _)| format!("c.{c}")).collect();
        format!("ROW({}) IS DISTINCT FROM ROW({})", new.join(", "), old.join(", "))
    };
    let (upd, same) = match plan.mode {
        Mode::Upsert | Mode::UpdateOnly | Mode::ReplaceList => (LineOutcome::Update, LineOutcome::Unchanged),
        Mode::InsertOnly => (LineOutcome::Exists, LineOutcome::Exists),
    };
    let (upd, same) = (upd.sql(), same.sql());
    format!(
        "CREATE TEMP TABLE classified ON COMMIT DROP AS
         SELECT s.line, c.id AS contact_id, s.warns,
                CASE WHEN {changed} THEN {upd} ELSE {same} END AS outcome
         FROM staging s JOIN contacts c ON c.tenant_id = $1 AND c.email = s.email"
    )
}

pub async fn classify(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<i64> {
    let matched = sqlx::query(AssertSqlSafe(classify_sql(plan)))
        .bind(plan.tenant_id)
        .bind(plan.default_language)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
    // Temporary tables get no statistics from autovacuum: without them the
    // planner takes `classified` for 3,000 rows and sorts staging on disk.
    sqlx::raw_sql("ANALYZE classified").execute(&mut *conn).await?;

    // Skipped lines are explained line by line, as seed 002's "[Conflict]".
    let skipped = match plan.mode {
        Mode::Upsert | Mode::ReplaceList => None,
        Mode::InsertOnly => Some((Rule::EmailExists, "EXISTS (SELECT 1 FROM classified k WHERE k.line = s.line)")),
        Mode::UpdateOnly => Some((Rule::EmailUnknown, new_lines(matched))),
    };
    if let Some((rule, lines)) = skipped {
        let template = rule.sentence(plan.lang, "", "{value}");
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO staging_messages ({MESSAGE_COLUMNS})
             SELECT s.line, $1, $2, 'error', s.email, replace($3, '{{value}}', s.email)
             FROM staging s WHERE {lines}"
        )))
        .bind(email_header(plan.mapping))
        .bind(rule.code())
        .bind(template)
        .execute(&mut *conn)
        .await?;
    }
    Ok(matched)
}

/// A correction is only real on a row that is written with it: inserted
/// rows, and updated rows when empty cells clear stored values. The lines
/// and correction bits of those rows, as a subquery.
fn corrected_rows(plan: &Plan<'_>, outcomes: &Outcomes) -> String {
    let mut parts = Vec::new();
    if plan.mode != Mode::UpdateOnly {
        parts.push(format!("SELECT line, warns FROM staging s WHERE warns <> 0 AND {}", new_lines(outcomes.matched)));
    }
    if plan.empty_cells == EmptyCells::Clear && plan.mode != Mode::InsertOnly {
        let update = LineOutcome::Update.sql();
        parts.push(format!("SELECT line, warns FROM classified WHERE warns <> 0 AND outcome = {update}"));
    }
    if parts.is_empty() {
        parts.push("SELECT 0::bigint AS line, 0::smallint AS warns WHERE false".to_owned());
    }
    format!("({})", parts.join(" UNION ALL "))
}

/// Counts the outcomes: the matched lines from `classified`, the new ones as
/// staged lines less matched ones (one scan of each table, no join).
pub async fn outcomes(conn: &mut PgConnection, plan: &Plan<'_>, matched: i64) -> sqlx::Result<Outcomes> {
    let corrected_update = match plan.empty_cells {
        EmptyCells::Keep => "false".to_owned(),
        EmptyCells::Clear => format!("outcome = {}", LineOutcome::Update.sql()),
    };
    // Named columns: s_* over staged lines, k_* over matched ones.
    let mut columns = vec!["s.rows".to_owned(), "s.warned AS s_warned".to_owned(), "k.*".to_owned()];
    let mut staged = vec!["count(*) AS rows".to_owned(), "count(*) FILTER (WHERE warns <> 0) AS warned".to_owned()];
    let mut known = vec![
        format!("count(*) FILTER (WHERE outcome = {}) AS k_u", LineOutcome::Update.sql()),
        format!("count(*) FILTER (WHERE outcome = {}) AS k_n", LineOutcome::Unchanged.sql()),
        format!("count(*) FILTER (WHERE outcome = {}) AS k_e", LineOutcome::Exists.sql()),
        "count(*) FILTER (WHERE warns <> 0) AS k_warned".to_owned(),
        format!("count(*) FILTER (WHERE warns <> 0 AND {corrected_update}) AS k_warned_written"),
    ];
    for (i, (bit, _, _)) in super::staging::WARNINGS.iter().enumerate() {
        staged.push(format!("count(*) FILTER (WHERE warns & {bit} <> 0) AS w{i}"));
        columns.push(format!("s.w{i} AS s_w{i}"));
        known.push(format!("count(*) FILTER (WHERE warns & {bit} <> 0) AS k_w{i}"));
        known.push(format!("count(*) FILTER (WHERE warns & {bit} <> 0 AND {corrected_update}) AS k_w{i}_written"));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM (SELECT {} FROM staging) s, (SELECT {} FROM classified) k",
        columns.join(", "),
        staged.join(", "),
        known.join(", ")
    )))
    .fetch_one(conn)
    .await?;
    let int = |name: &str| -> i64 { row.get(name) };
    let new = int("rows") - matched;
    // New lines are written, hence corrected, unless the mode skips them.
    let new_written = plan.mode != Mode::UpdateOnly;
    let of_new = |staged: i64, known: i64| if new_written { staged - known } else { 0 };
    let mut by_warning = [0; WARNING_KINDS];
    for (i, n) in by_warning.iter_mut().enumerate() {
        *n = of_new(int(&format!("s_w{i}")), int(&format!("k_w{i}"))) + int(&format!("k_w{i}_written"));
    }
    Ok(Outcomes {
        inserted: if new_written { new } else { 0 },
        updated: int("k_u"),
        unchanged: int("k_n"),
        skipped_existing: int("k_e"),
        skipped_new: if new_written { 0 } else { new },
        warnings: of_new(int("s_warned"), int("k_warned")) + int("k_warned_written"),
        by_warning,
        matched,
        removed_from_list: 0,
        organisations_created: 0,
    })
}

/// Mode `replace_list`: the memberships of `lists` whose contact no line of
/// the file matched leave the lists (deleted, or only counted in a dry run).
/// Run before `apply`: the file's new contacts are not members yet, and every
/// known contact of the file is in `classified`. Returns the memberships.
pub async fn replace_members(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    lists: &[String],
    dry_run: bool,
) -> sqlx::Result<i64> {
    let gone = "l.id = m.list_id AND l.tenant_id = $1 AND l.name = ANY($2)
         AND NOT EXISTS (SELECT 1 FROM classified k WHERE k.contact_id = m.contact_id)";
    let sql = if dry_run {
        format!("SELECT count(*) FROM list_members m, lists l WHERE {gone}")
    } else {
        format!(
            "WITH gone AS (DELETE FROM list_members m USING lists l WHERE {gone} RETURNING 1) SELECT count(*) FROM gone"
        )
    };
    sqlx::query_scalar(AssertSqlSafe(sql)).bind(plan.tenant_id).bind(lists).fetch_one(conn).await
}

/// The SQL pieces that give written contacts their organisation, empty when
/// the file maps no structure: the organisation of the line's key, by a
/// hash join (a lookup per line cost seconds on a 1M-row file).
struct Organisations {
    mapped: bool,
    column: &'static str,
    value: &'static str,
    join: &'static str,
}

impl Organisations {
    fn of(plan: &Plan<'_>) -> Organisations {
        if !plan.mapping.maps(Field::Structure) {
            return Organisations { mapped: false, column: "", value: "", join: "" };
        }
        Organisations {
            mapped: true,
            column: ", organisation_id",
            value: ", o.id",
            join: "LEFT JOIN organisations o ON o.tenant_id = $1 AND o.key = s.org_key",
        }
    }
}

/// Creates the organisations the lines about to be written name and no
/// organisation of the tenant has yet, one per key: a second line naming the
/// same structure at the same address links to the first's. Returns how
/// many were created.
async fn create_organisations(conn: &mut PgConnection, plan: &Plan<'_>, outcomes: &Outcomes) -> sqlx::Result<i64> {
    let insert = organisations_sql(plan, outcomes.matched);
    let done = sqlx::query(AssertSqlSafe(insert)).bind(plan.tenant_id).bind(plan.run_id).execute(conn).await?;
    Ok(done.rows_affected() as i64)
}

/// The statement `create_organisations` runs.
fn organisations_sql(plan: &Plan<'_>, matched: i64) -> String {
    // The lines written: new ones (unless update-only) and updated ones, by
    // one join with `classified` rather than two subqueries (0.63 -> 0.42 s
    // for the overlapping 1M-row file).
    let insert_new = plan.mode != Mode::UpdateOnly;
    let update = LineOutcome::Update.sql();
    let (join, written) = if matched == 0 {
        ("", if insert_new { "true" } else { "false" }.to_owned())
    } else if insert_new {
        ("LEFT JOIN classified k ON k.line = s.line", format!("(k.line IS NULL OR k.outcome = {update})"))
    } else {
        ("JOIN classified k ON k.line = s.line", format!("k.outcome = {update}"))
    };
    // A plain insert of the keys the tenant has no organisation for: the
    // import holds the tenant's lock, so no other transaction adds one
    // meanwhile (ON CONFLICT DO NOTHING cost 0.15 s more for 78k rows).
    format!(
        "INSERT INTO organisations (tenant_id, key, name, address, postal_code, town, country, created_by_run)
         SELECT DISTINCT ON (s.org_key) $1, s.org_key, s.structure, s.address, s.postal_code, s.town, s.country, $2
         FROM staging s {join}
         WHERE s.org_key IS NOT NULL AND {written}
           AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.tenant_id = $1 AND o.key = s.org_key)
         ORDER BY s.org_key, s.line"
    )
}

/// Writes contacts, updates, organisations and list memberships for the
/// classified lines. Returns the organisations created.
pub async fn apply(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    outcomes: &Outcomes,
    lists: &[String],
) -> sqlx::Result<i64> {
    let organisations =
        if plan.mapping.maps(Field::Structure) { create_organisations(&mut *conn, plan, outcomes).await? } else { 0 };
    let list_ids = list_ids(&mut *conn, plan.tenant_id, lists).await?;
    if outcomes.inserted > 0 {
        sqlx::query(AssertSqlSafe(insert_sql(plan, outcomes.matched, !list_ids.is_empty())))
            .bind(plan.tenant_id)
            .bind(plan.default_language)
            .bind(plan.run_id)
            .bind(&list_ids)
            .execute(&mut *conn)
            .await?;
    }

    // Changed contacts, by their primary key in contact id order: the rows
    // are visited as they lie in the table, not at random (measured: 7.0 s
    // instead of 10.4-13.6 s for 480k rows).
    if let Some(update) = update_sql(plan) {
        sqlx::query(AssertSqlSafe(update))
            .bind(plan.tenant_id)
            .bind(plan.default_language)
            .bind(plan.run_id)
            .execute(&mut *conn)
            .await?;
    }

    if !list_ids.is_empty() {
        sqlx::query(AssertSqlSafe(members_sql())).bind(plan.run_id).bind(&list_ids).execute(&mut *conn).await?;
    }
    Ok(organisations)
}

/// The ids of the profile's lists, created when missing.
async fn list_ids(conn: &mut PgConnection, tenant_id: i64, lists: &[String]) -> sqlx::Result<Vec<i64>> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("INSERT INTO lists (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING")
        .bind(tenant_id)
        .bind(lists)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT id FROM lists WHERE tenant_id = $1 AND name = ANY($2)")
        .bind(tenant_id)
        .bind(lists)
        .fetch_all(&mut *conn)
        .await
}

/// The insert of new contacts and, in the same statement when the profile
/// names lists, their memberships: the ids come from RETURNING, so no
/// second join on e-mail is needed, and no conflict is possible on
/// memberships of contacts that did not exist. In e-mail order, the unique
/// index grows page by page instead of at random places (measured: 5.3 s
/// instead of 6.0 s for 980k rows).
fn insert_sql(plan: &Plan<'_>, matched: i64, with_lists: bool) -> String {
    let columns: Vec<&str> = Field::ALL.iter().filter(|f| **f != Field::Email).map(|f| f.name()).collect();
    let values: Vec<String> = Field::ALL.iter().filter(|f| **f != Field::Email).map(|f| inserted(*f)).collect();
    let org = Organisations::of(plan);
    let insert = format!(
        "INSERT INTO contacts (tenant_id, email, {}, criteria, consents, attributes, created_by_run, updated_by_run{})
         SELECT $1, s.email, {}, coalesce(s.criteria, '{{}}'), jsonb_strip_nulls(coalesce(s.consents, '{{}}')),
                jsonb_strip_nulls(coalesce(s.attributes, '{{}}')), $3, $3{}
         FROM staging s {} WHERE {} ORDER BY s.email",
        columns.join(", "),
        org.column,
        values.join(", "),
        org.value,
        org.join,
        new_lines(matched)
    );
    if !with_lists {
        return insert;
    }
    format!(
        "WITH inserted AS ({insert} RETURNING id)
         INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, i.id, $3 FROM inserted i CROSS JOIN unnest($4::bigint[]) AS l(id)"
    )
}

/// The memberships of the stored contacts the file names (updated or
/// unchanged): a contact already in the list stays as it was. Those are
/// left out by an anti-join before the insert: ON CONFLICT alone probes the
/// index once per line, which cost 6.6-7.0 s for 950,000 members met in
/// random contact order against 1.1 s (0.8 s either way in id order).
fn members_sql() -> String {
    format!(
        "INSERT INTO list_members (list_id, contact_id, added_by_run)
         SELECT l.id, k.contact_id, $1 FROM classified k CROSS JOIN unnest($2::bigint[]) AS l(id)
         WHERE k.outcome IN ({}, {})
           AND NOT EXISTS (SELECT 1 FROM list_members m WHERE m.list_id = l.id AND m.contact_id = k.contact_id)
         ON CONFLICT DO NOTHING",
        LineOutcome::Update.sql(),
        LineOutcome::Unchanged.sql()
    )
}

/// A kind of warning the run keeps: its place in `staging::WARNINGS`, its
/// rule and the header of its column.
struct KeptWarning {
    index: usize,
    rule: Rule,
    header: String,
}

impl KeptWarning {
    fn bit(&self) -> u8 {
        super::staging::WARNINGS[self.index].0
    }
}

/// Stores the run's messages: errors as rows of `run_messages`, warnings as
/// one row of `run_warnings` per rule and column holding the array of its
/// lines (the view `run_message_view` shows both as messages). At most
/// `limit` messages are kept, the first by line and code. Returns the
/// complete count per rule code and whether some messages were cut.
/// Warnings need the outcomes; an aborted run (`outcomes` none) keeps its
/// errors only: nothing was written, so no correction was made.
pub async fn keep_messages(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    outcomes: Option<&Outcomes>,
    limit: i64,
) -> sqlx::Result<(BTreeMap<String, i64>, bool)> {
    let (warnings, mut by_code) = kept_warnings(plan, outcomes);
    let rows = sqlx::query("SELECT code, count(*) FROM staging_messages GROUP BY code").fetch_all(&mut *conn).await?;
    for r in rows {
        *by_code.entry(r.get(0)).or_default() += r.get::<i64, _>(1);
    }
    let total: i64 = by_code.values().sum();
    let truncated = total > limit;
    let corrected = outcomes.map(|o| corrected_rows(plan, o)).unwrap_or_default();

    // Beyond the limit, the (line, code) of the last message kept bounds
    // both kinds (a tie on that very pair keeps the tied ones too).
    let mut cut: (i64, String) = (i64::MAX, String::new());
    if truncated {
        cut = (-1, String::new());
        if limit > 0 {
            let sql = cut_sql(&warnings, &corrected);
            if let Some(r) = sqlx::query(AssertSqlSafe(sql)).bind(limit - 1).fetch_optional(&mut *conn).await? {
                cut = (r.get(0), r.get(1));
            }
        }
    }

    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO run_messages (run_id, {MESSAGE_COLUMNS})
         SELECT $1, {MESSAGE_COLUMNS} FROM staging_messages WHERE (line, code) <= ($2, $3::text)"
    )))
    .bind(plan.run_id)
    .bind(cut.0)
    .bind(&cut.1)
    .execute(&mut *conn)
    .await?;
    if !warnings.is_empty() {
        let (sql, binds) = warnings_sql(plan, &warnings, &corrected);
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(plan.run_id).bind(cut.0).bind(cut.1.clone());
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&mut *conn).await?;
    }
    Ok((by_code, truncated))
}

/// The warnings to store, mapped and non-zero, with their counts by rule code.
fn kept_warnings(plan: &Plan<'_>, outcomes: Option<&Outcomes>) -> (Vec<KeptWarning>, BTreeMap<String, i64>) {
    let mut warnings = Vec::new();
    let mut by_code: BTreeMap<String, i64> = BTreeMap::new();
    let Some(outcomes) = outcomes else {
        return (warnings, by_code);
    };
    for (index, (_, rule, field)) in super::staging::WARNINGS.iter().enumerate() {
        let n = outcomes.by_warning[index];
        if let (true, Some(header)) = (n > 0, plan.mapping.column_of(*field).and_then(|c| plan.mapping.headers.get(c)))
        {
            *by_code.entry(rule.code().to_owned()).or_default() += n;
            warnings.push(KeptWarning { index, rule: *rule, header: header.clone() });
        }
    }
    (warnings, by_code)
}

/// The (line, code) of the last message kept (`OFFSET $1`), over errors and
/// warnings together.
fn cut_sql(warnings: &[KeptWarning], corrected: &str) -> String {
    let mut union = "SELECT line, code FROM staging_messages".to_owned();
    for w in warnings {
        let _ = write!(
            union,
            " UNION ALL SELECT line, '{}' FROM {corrected} k WHERE warns & {} <> 0",
            w.rule.code(),
            w.bit()
        );
    }
    format!("SELECT line, code FROM ({union}) x ORDER BY line, code OFFSET $1 LIMIT 1")
}

/// The insert of `run_warnings`: one scan of the corrected rows, one ordered
/// array per kind of warning. Returns the statement and its parameters from
/// `$4` on (header, value and sentence of each warning).
fn warnings_sql(plan: &Plan<'_>, warnings: &[KeptWarning], corrected: &str) -> (String, Vec<String>) {
    let mut aggs = Vec::new();
    let mut rows = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    for (n, w) in warnings.iter().enumerate() {
        let code = w.rule.code();
        aggs.push(format!(
            "array_agg(line ORDER BY line) FILTER (WHERE warns & {} <> 0 AND (line, '{code}') <= ($2, $3::text)) AS w{n}",
            w.bit()
        ));
        let value = if super::staging::WARNINGS[w.index].2 == Field::Language { plan.default_language } else { "" };
        let p = 4 + 3 * n;
        rows.push(format!("SELECT '{code}', ${p}, ${}, ${}, w{n} FROM agg WHERE w{n} IS NOT NULL", p + 1, p + 2));
        binds.push(w.header.clone());
        binds.push(value.to_owned());
        binds.push(w.rule.sentence(plan.lang, &w.header, value));
    }
    let sql = format!(
        "WITH agg AS (SELECT {} FROM {corrected} k)
         INSERT INTO run_warnings (run_id, code, column_name, value, message, lines)
         SELECT $1, x.* FROM ({}) x",
        aggs.join(", "),
        rows.join(" UNION ALL ")
    );
    (sql, binds)
}

/// Rows written to a table at or beyond which it is analysed after the
/// import: "a few thousand" rows change the estimates of the queries that
/// read contacts back (PostgreSQL's own advice after a bulk load).
pub const ANALYZE_AFTER_ROWS: i64 = 5_000;

/// The rows an import wrote to each table that queries read back.
#[derive(Debug, Default, Clone, Copy)]
pub struct WrittenRows {
    pub contacts: i64,
    pub list_members: i64,
    pub organisations: i64,
}

/// Analyses, after the import committed, the tables it wrote enough of:
/// `ANALYZE_AFTER_ROWS` rows, or more than autovacuum's own threshold (50
/// rows and a tenth of the table), or a table never analysed. Autovacuum may
/// be off (it often is on databases loaded in bulk), and it never runs in
/// the middle of a night's imports. `SKIP_LOCKED`: a table another import is
/// analysing now is left to it. Returns the tables analysed.
pub async fn analyze_written(pool: &sqlx::PgPool, written: WrittenRows) -> sqlx::Result<Vec<&'static str>> {
    let tables = [
        ("contacts", written.contacts),
        ("list_members", written.list_members),
        ("organisations", written.organisations),
    ];
    let names: Vec<&str> = tables.iter().filter(|(_, n)| *n > 0).map(|(t, _)| *t).collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    // reltuples is -1 until a table is first analysed (or vacuumed).
    let sizes: Vec<(String, f32)> =
        sqlx::query_as("SELECT relname::text, reltuples FROM pg_class WHERE oid = ANY($1::text[]::regclass[])")
            .bind(&names)
            .fetch_all(pool)
            .await?;
    let due: Vec<&'static str> = tables
        .iter()
        .filter(|(table, n)| {
            let reltuples = sizes.iter().find(|(t, _)| t == table).map_or(-1.0, |(_, r)| *r as f64);
            *n > 0 && (*n >= ANALYZE_AFTER_ROWS || reltuples < 0.0 || *n as f64 > 50.0 + 0.1 * reltuples)
        })
        .map(|(t, _)| *t)
        .collect();
    if !due.is_empty() {
        // The columns the queries that read contacts back join and filter on:
        // statistics of every text and jsonb column of a 1M-row table took
        // 0.75 s, these 0.18 s.
        let columns = |t: &str| match t {
            "contacts" => "contacts (id, tenant_id, email, created_by_run, updated_by_run, organisation_id)",
            "organisations" => "organisations (id, tenant_id, key)",
            _ => "list_members",
        };
        let targets: Vec<&str> = due.iter().map(|t| columns(t)).collect();
        let sql = format!("ANALYZE (SKIP_LOCKED) {}", targets.join(", "));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(pool).await?;
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    /// The statements that decide and write (classify, update, organisations,
    /// insert, memberships, kept messages), for every mode and `empty_cells`,
    /// on a file mapping names, a NOT NULL column, a criterion, a consent, an
    /// attribute and an organisation: `src/import/snapshots/write.sql` shows a
    /// reader the SQL that runs. `UPDATE_SNAPSHOTS=1 cargo test` rewrites it
    /// after a deliberate change.
    #[test]
    fn the_write_statements_of_every_mode_and_empty_cells_are_the_snapshot() {
        let headers = ["email", "first_name", "last_name", "civility", "town", "vip", "nl", "shoe", "company"];
        let mut out = String::new();
        for mode in ["insert_only", "upsert", "update_only", "replace_list"] {
            for empty in ["keep", "clear"] {
                let yaml = format!(
                    "columns:\n  email: email\n  first_name: first_name\n  last_name: last_name\n  civility: civility\n  \
                     town: town\n  vip: criteria.vip\n  nl: consent.newsletter\n  shoe: attribute.shoe\n  \
                     company: structure\nmode: {mode}\nempty_cells: {empty}\nlists: [nightly]\n"
                );
                let profile = Profile::from_yaml(&yaml, "snapshot").expect("the snapshot profile parses");
                let mapping = super::super::mapping::resolve(headers.iter().map(|h| h.to_string()).collect(), &profile)
                    .expect("the headers map");
                let plan = Plan {
                    tenant_id: 1,
                    run_id: Uuid::nil(),
                    mapping: &mapping,
                    mode: profile.mode,
                    empty_cells: profile.empty_cells,
                    duplicates: profile.duplicates_in_file,
                    default_language: "fr",
                    lang: ReportLanguage::Fr,
                };
                out.push_str(&format!(
                    "-- mode: {mode}, empty_cells: {empty}\n-- classify\n{};\n",
                    classify_sql(&plan)
                ));
                match update_sql(&plan) {
                    Some(sql) => out.push_str(&format!("-- update\n{sql};\n")),
                    None => out.push_str("-- update: none\n"),
                }
                // Some lines matched stored contacts, every kind of warning
                // was made: the statements in full.
                let outcomes =
                    Outcomes { matched: 1, inserted: 1, by_warning: [1; WARNING_KINDS], ..Default::default() };
                out.push_str(&format!("-- organisations\n{};\n", organisations_sql(&plan, outcomes.matched)));
                out.push_str(&format!("-- insert (with lists)\n{};\n", insert_sql(&plan, outcomes.matched, true)));
                out.push_str(&format!("-- memberships of stored contacts\n{};\n", members_sql()));
                let (warnings, _) = kept_warnings(&plan, Some(&outcomes));
                let corrected = corrected_rows(&plan, &outcomes);
                out.push_str(&format!("-- messages: the cut\n{};\n", cut_sql(&warnings, &corrected)));
                let (sql, binds) = warnings_sql(&plan, &warnings, &corrected);
                out.push_str(&format!("-- messages: warnings, with ${}..${}\n{sql};\n\n", 4, 3 + binds.len()));
            }
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/import/snapshots/write.sql");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &out).unwrap();
        }
        let expected = std::fs::read_to_string(path).unwrap_or_default();
        assert!(out == expected, "the write SQL changed; look at it and run with UPDATE_SNAPSHOTS=1:\n{out}");
    }
}
