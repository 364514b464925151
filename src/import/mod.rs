//! The import pipeline every run goes through, manual or scheduled:
//! inspect the bytes, parse and validate in a blocking thread, stream batches
//! into staging tables, then decide and write set-based, in one transaction.

pub mod decode;
pub mod guard;
pub mod mapping;
pub mod mass_update;
pub mod records;
pub mod rules;
pub mod seen;
pub mod staging;
pub mod unzip;
pub mod validate;
pub mod workbook;
pub mod write;

use std::path::PathBuf;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use indicatif::ProgressBar;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};
use uuid::Uuid;

use crate::profile::{Encoding, OnInvalidRow, Profile, ProfileKind};
use crate::report::{Columns, Counts, FileInfo, Message, ProfileRef, Status};
use crate::store::{feeds, profiles, runs, tenants::Tenant};

use self::rules::FileFailure;
use self::rules::Rule;
use self::staging::{Batch, Staging};
use self::validate::RuleContext;

/// One import to perform.
pub struct Request {
    pub tenant: Tenant,
    pub path: PathBuf,
    /// The name the file is reported under (its base name, or the remote name).
    pub file_name: String,
    pub profile: Profile,
    /// Set when `profile` is a stored profile version.
    pub profile_ref: Option<ProfileRef>,
    /// `--save-profile`: store the mapping and options actually used.
    pub save_as: Option<String>,
    pub dry_run: bool,
    pub feed: Option<String>,
    pub progress: Option<ProgressBar>,
    /// Bounds on the file (size, lines, cells) and on the messages kept.
    pub limits: crate::configuration::Limits,
    /// "Today" for the birthdate rule; injected so tests control the clock.
    pub today: NaiveDate,
    /// For feed runs: the remote file, recorded as processed in the import's
    /// own transaction (at-most-once pickup).
    pub pickup: Option<feeds::PickedFile>,
    /// The feed's guards: a file that trips one is held, nothing written.
    pub guards: crate::feed::Guards,
    /// `runs release` / `runs replay`: the run whose file this re-imports.
    pub rerun: Option<Rerun>,
}

impl Request {
    /// A manual import (the CLI, an API upload, the console's Analyser): no
    /// feed, no pickup, no guards; "today" in the tenant's timezone. Callers
    /// set `dry_run`, `save_as` and `progress` on the value.
    pub fn manual(
        tenant: Tenant,
        path: PathBuf,
        file_name: String,
        (profile, profile_ref): (Profile, Option<ProfileRef>),
        limits: crate::configuration::Limits,
    ) -> Request {
        let tz: chrono_tz::Tz = tenant.timezone.parse().unwrap_or(chrono_tz::UTC);
        Request {
            today: Utc::now().with_timezone(&tz).date_naive(),
            tenant,
            path,
            file_name,
            profile,
            profile_ref,
            save_as: None,
            dry_run: false,
            feed: None,
            progress: None,
            limits,
            pickup: None,
            guards: Default::default(),
            rerun: None,
        }
    }

    /// A feed's file (a poll, a release, a replay) with the feed's stored
    /// profile version; `today` in the feed's schedule timezone. Callers set
    /// `pickup`, `guards`, `dry_run` and `rerun` on the value.
    pub fn for_feed(
        tenant: Tenant,
        feed: String,
        (path, file_name): (PathBuf, String),
        saved: &crate::store::profiles::SavedProfile,
        limits: crate::configuration::Limits,
        today: NaiveDate,
    ) -> Request {
        Request {
            tenant,
            path,
            file_name,
            profile: saved.profile.clone(),
            profile_ref: Some(ProfileRef { name: saved.name.clone(), version: saved.version }),
            save_as: None,
            dry_run: false,
            feed: Some(feed),
            progress: None,
            limits,
            today,
            pickup: None,
            guards: Default::default(),
            rerun: None,
        }
    }
}

/// A re-import of an earlier run's file.
#[derive(Debug, Clone, Copy)]
pub struct Rerun {
    pub of: Uuid,
    /// Only if no other run re-imported it yet (a held file is released once).
    pub once: bool,
}

/// Runs one import and returns its run id. A file that cannot be imported is
/// not an `Err`: it is a run with status `failed` and a message saying why.
/// `Err` means the import could not be carried out at all (database down,
/// file unreadable).
pub async fn run(pool: &PgPool, req: Request) -> anyhow::Result<Uuid> {
    let run_id = Uuid::now_v7();
    // Every log line of the run carries these fields (JSON logs: the span).
    let span = tracing::info_span!(
        "run", tenant = %req.tenant.slug, feed = req.feed.as_deref().unwrap_or("-"), run_id = %run_id, file = %req.file_name
    );
    run_in_span(pool, req, run_id).instrument(span).await
}

async fn run_in_span(pool: &PgPool, req: Request, run_id: Uuid) -> anyhow::Result<Uuid> {
    let started_at = Utc::now();
    let prepared = match prepare(&req).await? {
        Ok(prepared) => prepared,
        Err(refused) => {
            let run = runs::NewRun { options: refused.options, ..run_record(&req, run_id, &refused.file, started_at) };
            return record_failure(pool, &run, &req, refused.failure).await;
        }
    };
    let run =
        runs::NewRun { options: prepared.options.clone(), ..run_record(&req, run_id, &prepared.file, started_at) };
    let known = known_criteria(pool, &req).await?;
    let mut tx = begin(pool, &req, &run).await?;
    let staged = match stage(&mut tx, &req, &prepared, known, run_id).await? {
        Ok(staged) => staged,
        Err(failure) => {
            tx.rollback().await.ok();
            return record_failure(pool, &run, &req, failure).await;
        }
    };
    let plan = plan(&req, run_id, &staged.summary.mapping);
    let decision = decide(&mut tx, &req, &plan, &staged, &prepared.file).await?;
    let written = write_rows(&mut tx, &req, &plan, &decision).await?;
    let recorded = record(&mut tx, &req, &plan, &run, decision, written).await?;
    tx.commit().await.context("cannot commit the import")?;
    after_commit(pool, &req, &recorded, started_at).await;
    Ok(run_id)
}

/// The dropped file made readable (unzipped, a workbook converted) and
/// inspected: what the rest of the import reads.
struct Prepared {
    readable: Readable,
    facts: decode::FileFacts,
    /// The dropped file as the run reports it.
    file: FileInfo,
    /// The options the run records.
    options: serde_json::Value,
}

/// A file refused before its rows were read, with what its run records.
struct Refused {
    file: FileInfo,
    options: serde_json::Value,
    failure: FileFailure,
}

/// Stage "prepare": the size limit (refused unread), the zip's entry and
/// the workbook made into a readable file, then one pass over the bytes
/// (size, SHA-256, encoding, text or not). The run keeps the dropped
/// file's name, size and hash (what at-most-once compares).
async fn prepare(req: &Request) -> anyhow::Result<Result<Prepared, Refused>> {
    let cannot = || format!("cannot import {}", req.path.display());
    let size = std::fs::metadata(&req.path).with_context(cannot)?.len();
    if size > req.limits.max_file_bytes {
        // Refused unread: it is not even hashed.
        let file = FileInfo { name: req.file_name.clone(), size: size as i64, sha256: String::new() };
        let detail = format!("{size} > {} bytes", req.limits.max_file_bytes);
        let failure = FileFailure::new(Rule::FileTooLarge, None, detail);
        return Ok(Err(Refused { file, options: serde_json::json!({}), failure }));
    }
    let mut readable = match make_readable(req).await? {
        Ok(readable) => readable,
        Err((file, failure)) => return Ok(Err(Refused { file, options: serde_json::json!({}), failure })),
    };
    // The CSV a workbook was written as is UTF-8, whatever the profile says.
    let declared = if readable.utf8 { Encoding::Utf8 } else { req.profile.format.encoding };
    let path = readable.path.clone();
    let (facts, problem) = tokio::task::spawn_blocking(move || decode::inspect(&path, declared))
        .await
        .context("file inspection panicked")?
        .with_context(cannot)?;
    let file = readable.dropped.take().unwrap_or_else(|| FileInfo {
        name: req.file_name.clone(),
        size: facts.size as i64,
        sha256: facts.sha256.clone(),
    });
    let options = serde_json::json!({
        "kind": req.profile.kind,
        "mode": req.profile.mode,
        "lists": req.profile.lists,
        "on_invalid_row": req.profile.on_invalid_row,
        "max_invalid_ratio": req.profile.max_invalid_ratio,
        "header_drift": req.profile.header_drift,
        "duplicates_in_file": req.profile.duplicates_in_file,
        "empty_cells": req.profile.empty_cells,
        "delimiter": (req.profile.format.delimiter as char).to_string(),
        "encoding": facts.encoding.as_str(),
    });
    info!(bytes = file.size, encoding = facts.encoding.as_str(), "import started");
    let failure = match problem {
        None => return Ok(Ok(Prepared { readable, facts, file, options })),
        Some(decode::DecodeError::NotText { line, detail }) => FileFailure::new(Rule::FileNotText, Some(line), detail),
        Some(decode::DecodeError::InvalidUtf8 { line }) => {
            FileFailure::new(Rule::FileEncoding, Some(line), format!("line {line} is not valid UTF-8"))
        }
        Some(decode::DecodeError::Io { .. }) => unreachable!("i/o errors are returned above"),
    };
    Ok(Err(Refused { file, options, failure }))
}

/// A mass update validates criteria against every profile's codes.
async fn known_criteria(
    pool: &PgPool,
    req: &Request,
) -> anyhow::Result<Option<std::sync::Arc<mass_update::KnownCriteria>>> {
    if req.profile.kind != ProfileKind::MassUpdate {
        return Ok(None);
    }
    let declared = profiles::declared_criteria(pool, req.tenant.id)
        .await
        .context("cannot read the criteria of the tenant's profiles")?;
    Ok(Some(std::sync::Arc::new(mass_update::known_criteria(&declared, &req.profile))))
}

/// Opens the import's transaction: the tenant's lock, the session settings
/// of the bulk statements, the run row (running) and its re-import mark.
async fn begin(
    pool: &PgPool,
    req: &Request,
    run: &runs::NewRun<'_>,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await.context("cannot start the import transaction")?;
    // One import per tenant at a time: outcomes (inserted vs updated) are
    // computed against the tenant's contacts and must not race.
    sqlx::query("SELECT pg_advisory_xact_lock(1, $1::int)").bind(req.tenant.id as i32).execute(&mut *tx).await?;
    // The set-based statements hash-join and sort whole files: give them
    // memory for this transaction only, instead of spilling to disk in 4 MB runs.
    sqlx::query("SET LOCAL work_mem = '256MB'").execute(&mut *tx).await?;
    // The bulk statements' costs reach JIT's inlining and optimisation
    // thresholds; compiling took 0.5 s of a 1M-row insert for nothing back.
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    runs::insert(&mut tx, run, Status::Running).await.context("cannot record the run")?;
    if let Some(rerun) = req.rerun
        && !runs::mark_rerun(&mut tx, rerun.of, run.id, rerun.once).await.context("cannot record the re-import")?
    {
        anyhow::bail!("run {} was already released or replayed by another run", rerun.of);
    }
    Ok(tx)
}

/// The file parsed, validated and copied into the staging tables.
struct Staged {
    summary: records::ParseSummary,
    mass_update: bool,
}

/// Stage "stage": parses and validates the file while its rows are COPYed
/// into staging; messages and rejected lines follow from their spill files.
/// A dry run stages only what classifying needs, and the full rows only if
/// the tenant already has some of the addresses (a mass update's lines are
/// small: always staged whole). A file that cannot be imported at all is
/// the inner `Err`.
async fn stage(
    tx: &mut sqlx::PgConnection,
    req: &Request,
    prepared: &Prepared,
    known: Option<std::sync::Arc<mass_update::KnownCriteria>>,
    run_id: Uuid,
) -> anyhow::Result<Result<Staged, FileFailure>> {
    let mass_update = known.is_some();
    let ctx = RuleContext {
        lang: req.tenant.language,
        extra_languages: req.tenant.extra_languages.clone(),
        today: req.today,
        run_id,
    };
    let staging = match (mass_update, req.dry_run) {
        (true, _) => Staging::MassUpdate,
        (false, true) => Staging::Narrow,
        (false, false) => Staging::Full,
    };
    staging::create(&mut *tx, staging).await.context("cannot create the staging tables")?;
    let (path, encoding) = (&prepared.readable.path, prepared.facts.encoding);
    let phase = std::time::Instant::now();
    let parsing = Parsing { staging, known };
    let (summary, spill) =
        match parse_into_staging(&mut *tx, req, path, encoding, ctx.clone(), parsing, req.progress.clone()).await? {
            Ok(staged) => staged,
            Err(failure) => return Ok(Err(failure)),
        };
    staging::analyze(&mut *tx, staging).await.context("cannot analyze the staging table")?;
    if staging == Staging::Narrow && write::known_addresses(&mut *tx, req.tenant.id).await? {
        // Parsed again, in full: messages of this pass are the same and dropped.
        staging::truncate(&mut *tx).await?;
        let parsing = Parsing { staging: Staging::Full, known: None };
        let again = parse_into_staging(&mut *tx, req, path, encoding, ctx, parsing, None).await?;
        match again {
            Ok((full, _)) if (full.rows, full.rejected) == (summary.rows, summary.rejected) => {}
            _ => anyhow::bail!("{}: the file changed during the dry run", req.file_name),
        }
        debug!("some addresses are known: full rows staged for the comparison");
        staging::analyze(&mut *tx, Staging::Full).await.context("cannot analyze the staging table")?;
    }
    spill.copy_into(&mut *tx).await.context("cannot copy messages into the staging tables")?;
    if let Some(p) = &req.progress {
        p.set_message("writing");
    }
    debug!(
        rows = summary.rows,
        maybe_duplicates = summary.maybe_duplicates,
        elapsed_ms = phase.elapsed().as_millis() as u64,
        "parsed and staged"
    );
    Ok(Ok(Staged { summary, mass_update }))
}

/// What the set-based statements work with.
fn plan<'a>(req: &Request, run_id: Uuid, mapping: &'a mapping::Mapping) -> write::Plan<'a> {
    write::Plan {
        tenant_id: req.tenant.id,
        run_id,
        mapping,
        mode: req.profile.mode,
        empty_cells: req.profile.empty_cells,
        duplicates: req.profile.duplicates_in_file,
        default_language: req.tenant.language.contact_code(),
        lang: req.tenant.language,
    }
}

/// Whether the rows may be written, and the lines rejected on the way.
struct Decision {
    rows: i64,
    /// Rejected by validation, as duplicates or as conflicts.
    rejected: i64,
    conflicts: i64,
    /// A mass update's lines, decided.
    decided: Option<mass_update::Decided>,
    /// Why nothing is written (abort on an invalid row, the ratio).
    error: Option<String>,
}

/// Stage "decide": duplicates among the flagged e-mails, a mass update's
/// conflicts, then `on_invalid_row` and `max_invalid_ratio`.
async fn decide(
    tx: &mut sqlx::PgConnection,
    req: &Request,
    plan: &write::Plan<'_>,
    staged: &Staged,
    file: &FileInfo,
) -> anyhow::Result<Decision> {
    let phase = std::time::Instant::now();
    let summary = &staged.summary;
    let abort_on_invalid = req.profile.on_invalid_row == OnInvalidRow::Abort;
    let mut error: Option<String> = None;
    let mut duplicates = 0;
    if let Some(line) = summary.aborted_at {
        error =
            Some(format!("{}: line {line} was rejected and on_invalid_row is abort: nothing was imported", file.name));
    } else {
        // No row flagged by the parser's filter: no e-mail repeats.
        if summary.maybe_duplicates > 0 {
            duplicates = write::reject_duplicates(&mut *tx, plan).await.context("cannot check duplicates")?;
        }
        if duplicates > 0 && abort_on_invalid {
            error = Some(format!(
                "{}: {duplicates} duplicate lines and on_invalid_row is abort: nothing was imported",
                file.name
            ));
        }
    }
    // A mass update's conflicts are rejected lines: decided before the
    // ratio, written (or not) after it.
    let mut decided = None;
    if staged.mass_update && error.is_none() {
        let d = mass_update::decide(&mut *tx, plan).await.context("cannot compare the lines with the contacts")?;
        if d.conflicts > 0 && abort_on_invalid {
            error = Some(format!(
                "{}: {} conflicting lines and on_invalid_row is abort: nothing was imported",
                file.name, d.conflicts
            ));
        }
        decided = Some(d);
    }
    let conflicts = decided.map_or(0, |d| d.conflicts);
    let rejected = summary.rejected as i64 + duplicates + conflicts;
    let rows = summary.rows as i64;
    if error.is_none() && rows > 0 && rejected as f64 / rows as f64 > req.profile.max_invalid_ratio {
        let detail = format!(
            "{rejected} / {rows} = {:.1} % > {:.1} %",
            100.0 * rejected as f64 / rows as f64,
            100.0 * req.profile.max_invalid_ratio
        );
        let sentence = Rule::RatioExceeded.sentence(plan.lang, "", &detail);
        write::add_message(&mut *tx, 1, None, Rule::RatioExceeded, &detail, &sentence).await?;
        error = Some(format!("{}: {sentence}", file.name));
    }
    debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "duplicates checked");
    Ok(Decision { rows, rejected, conflicts, decided, error })
}

/// What the write stage did.
struct Written {
    outcomes: write::Outcomes,
    /// A guard tripped: nothing written, the run is held.
    held: bool,
    /// Why nothing was written (the decision's, or the guard's).
    error: Option<String>,
}

/// Stages "guard" and "write": a mass update applied; contacts classified,
/// the feed's guards checked (a tripped one holds the run, nothing
/// written), a replace_list's memberships removed, the rows written. A dry
/// run counts without writing; an aborted run writes nothing.
async fn write_rows(
    tx: &mut sqlx::PgConnection,
    req: &Request,
    plan: &write::Plan<'_>,
    decision: &Decision,
) -> anyhow::Result<Written> {
    let mut written = Written { outcomes: write::Outcomes::default(), held: false, error: decision.error.clone() };
    if decision.error.is_some() {
        return Ok(written);
    }
    let phase = std::time::Instant::now();
    if let Some(d) = decision.decided {
        written.outcomes = write::Outcomes {
            updated: d.updated,
            unchanged: d.unchanged,
            skipped_new: d.skipped_new,
            ..write::Outcomes::default()
        };
        if !req.dry_run {
            mass_update::apply(&mut *tx, plan).await.context("cannot write contacts")?;
        }
        debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "mass update written");
        return Ok(written);
    }
    let matched = write::classify(&mut *tx, plan).await.context("cannot classify rows")?;
    written.outcomes = write::outcomes(&mut *tx, plan, matched).await.context("cannot count outcomes")?;
    debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "rows classified");
    if let (Some(feed), false) = (&req.feed, req.guards.is_off()) {
        let profile = req.profile_ref.as_ref().map(|p| p.name.as_str());
        let valid = decision.rows - decision.rejected;
        if let Some(trip) = guard::check(&mut *tx, plan, &req.guards, feed, profile, valid).await? {
            let sentence = trip.rule.sentence(plan.lang, "", &trip.detail);
            write::add_message(&mut *tx, 1, None, trip.rule, &trip.detail, &sentence).await?;
            warn!(code = trip.rule.code(), "run held: {sentence}");
            // A dry run reports what the real run would do, and is not held.
            if !req.dry_run {
                written = Written {
                    outcomes: write::Outcomes::default(),
                    held: true,
                    error: Some(format!("{}: {sentence}", req.file_name)),
                };
                return Ok(written);
            }
        }
    }
    if req.profile.mode == crate::profile::Mode::ReplaceList {
        // A dry run counts the memberships that would go.
        written.outcomes.removed_from_list = write::replace_members(&mut *tx, plan, &req.profile.lists, req.dry_run)
            .await
            .context("cannot replace the lists' members")?;
    }
    if !req.dry_run {
        let phase = std::time::Instant::now();
        written.outcomes.organisations_created = write::apply(&mut *tx, plan, &written.outcomes, &req.profile.lists)
            .await
            .context("cannot write contacts")?;
        debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "contacts written");
    }
    Ok(written)
}

/// The status a run ends with: held and aborted runs wrote nothing, a dry
/// run nothing either; a run that wrote with messages has warnings.
fn status_of(held: bool, aborted: bool, dry_run: bool, any_message: bool) -> Status {
    if held {
        Status::Held
    } else if aborted {
        Status::Aborted
    } else if dry_run {
        Status::DryRun
    } else if any_message {
        Status::SucceededWithWarnings
    } else {
        Status::Succeeded
    }
}

/// What the run recorded, for the steps after the commit.
struct Recorded {
    status: Status,
    counts: Counts,
    /// Rows reached the tables (not aborted, not held).
    written: bool,
}

/// Stage "record": the mapping's messages, the messages and warnings kept,
/// the profile saved (`--save-profile`), the run's status and counts, and
/// the feed's processed file, all in the import's transaction.
async fn record(
    tx: &mut sqlx::PgConnection,
    req: &Request,
    plan: &write::Plan<'_>,
    run: &runs::NewRun<'_>,
    decision: Decision,
    done: Written,
) -> anyhow::Result<Recorded> {
    let phase = std::time::Instant::now();
    let (mapping, lang) = (plan.mapping, plan.lang);
    let written = decision.error.is_none() && !done.held;
    if !mapping.excess.is_empty() {
        let value = mapping.excess.join(", ");
        let sentence = Rule::MappingTooManyColumns.sentence(lang, "", &value);
        write::add_message(&mut *tx, 1, None, Rule::MappingTooManyColumns, &value, &sentence).await?;
    }
    if !mapping.missing.is_empty() {
        let value = mapping.missing.join(", ");
        let sentence = Rule::HeaderMissingColumns.sentence(lang, "", &value);
        write::add_message(&mut *tx, 1, None, Rule::HeaderMissingColumns, &value, &sentence).await?;
    }
    let outcomes = &done.outcomes;
    let (by_code, truncated) =
        write::keep_messages(&mut *tx, plan, written.then_some(outcomes), req.limits.max_messages_per_run)
            .await
            .context("cannot store messages")?;
    let mut profile_ref = None;
    if let Some(name) = &req.save_as {
        let mut effective = req.profile.clone();
        if req.profile.kind != ProfileKind::MassUpdate {
            effective.columns = mapping.as_profile_columns();
        }
        let version = profiles::save(&mut *tx, req.tenant.id, name, &effective).await?;
        profile_ref = Some(ProfileRef { name: name.clone(), version });
    }
    let status = status_of(done.held, decision.error.is_some(), req.dry_run, !by_code.is_empty());
    let counts = Counts {
        rows: decision.rows,
        inserted: outcomes.inserted,
        updated: outcomes.updated,
        unchanged: outcomes.unchanged,
        skipped_existing: outcomes.skipped_existing,
        skipped_new: outcomes.skipped_new,
        rejected: decision.rejected,
        warnings: outcomes.warnings,
        removed_from_list: outcomes.removed_from_list,
        organisations_created: outcomes.organisations_created,
        conflicts: decision.conflicts,
    };
    let columns = columns_report(mapping);
    let finish = runs::Finish {
        status,
        counts: &counts,
        by_code: &by_code,
        messages_truncated: truncated,
        error: done.error.as_deref(),
        columns: &columns,
        profile: profile_ref.as_ref(),
        header: Some(&mapping.headers),
    };
    runs::finish(&mut *tx, run.id, &finish).await.context("cannot record the run's outcome")?;
    if let Some(file) = req.pickup.as_ref().filter(|_| !req.dry_run) {
        let outcome = feeds::Processed::of(status);
        feeds::record_processed(&mut *tx, req.tenant.id, file, &run.file.sha256, Some(run.id), outcome)
            .await
            .context("cannot record the processed file")?;
    }
    debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "messages kept");
    Ok(Recorded { status, counts, written })
}

/// After the commit: statistics for the tables the import filled (nothing
/// has them otherwise with autovacuum off), the progress bar, the metrics
/// and the log line.
async fn after_commit(pool: &PgPool, req: &Request, recorded: &Recorded, started_at: chrono::DateTime<Utc>) {
    let counts = &recorded.counts;
    if recorded.written && !req.dry_run {
        let phase = std::time::Instant::now();
        let lists = if req.profile.lists.is_empty() { 0 } else { counts.inserted + counts.updated + counts.unchanged };
        let rows = write::WrittenRows {
            contacts: counts.inserted + counts.updated,
            list_members: lists + counts.removed_from_list,
            organisations: counts.organisations_created,
        };
        // The rows are committed: a failure here only leaves the statistics
        // as they were.
        match write::analyze_written(pool, rows).await {
            Ok(tables) if !tables.is_empty() => {
                debug!(?tables, elapsed_ms = phase.elapsed().as_millis() as u64, "written tables analysed")
            }
            Ok(_) => {}
            Err(e) => warn!("cannot analyse the tables the import wrote: {e}"),
        }
    }
    if let Some(p) = &req.progress {
        p.finish_and_clear();
    }
    let seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    crate::metrics::record_run(req.tenant.slug.as_str(), req.feed.as_deref(), recorded.status, counts, seconds);
    info!(
        status = recorded.status.as_str(),
        rows = counts.rows,
        inserted = counts.inserted,
        updated = counts.updated,
        unchanged = counts.unchanged,
        rejected = counts.rejected,
        warnings = counts.warnings,
        "import finished"
    );
}

/// Parses and validates the file on a blocking thread while this task COPYs
/// each batch into `staging` (parsing uses one core, PostgreSQL the other);
/// messages and rejected lines wait in the returned spill files. A file that
/// cannot be imported at all is the inner `Err`, the COPY aborted.
async fn parse_into_staging(
    tx: &mut sqlx::PgConnection,
    req: &Request,
    path: &std::path::Path,
    encoding: decode::Resolved,
    ctx: RuleContext,
    parsing: Parsing,
    progress: Option<ProgressBar>,
) -> anyhow::Result<Result<(records::ParseSummary, write::Spill), FileFailure>> {
    let Parsing { staging, known } = parsing;
    let (sender, mut receiver) = mpsc::channel::<Batch>(2);
    let (give_back, mut take_back) = mpsc::channel::<Batch>(2);
    let profile = req.profile.clone();
    let parse_path = path.to_path_buf();
    let limits = req.limits;
    let parser = tokio::task::spawn_blocking(move || {
        let on_read = move |n: usize| {
            if let Some(p) = &progress {
                p.inc(n as u64);
            }
        };
        let reader = decode::open_utf8(&parse_path, encoding, on_read)
            .map_err(|e| FileFailure::new(Rule::FileNotText, None, format!("cannot open the file: {e}")))?;
        let emit = |batch| sender.blocking_send(batch).is_ok();
        let recycled = || take_back.try_recv().ok();
        match known {
            Some(known) => mass_update::parse(reader, &profile, ctx, &known, &limits, emit, recycled),
            None => records::parse(reader, &profile, ctx, staging, &limits, emit, recycled),
        }
    });
    // One COPY for all staging rows, however many batches: every COPY
    // statement costs a round trip that Nagle's algorithm can stretch to
    // 40 ms (sqlx 0.9 does not set TCP_NODELAY). Messages and rejected lines
    // wait in temporary files and are COPYed after the rows.
    let mut spill = write::Spill::new().context("cannot create the spill files")?;
    let mut copy = staging::begin_copy(&mut *tx, staging).await.context("cannot start copying rows")?;
    let mut copy_error = None;
    while let Some(batch) = receiver.recv().await {
        if let Err(e) = copy.send(&batch.rows[..]).await {
            copy_error = Some(anyhow::Error::new(e).context("cannot copy rows into the staging table"));
            break;
        }
        if let Err(e) = spill.add(&batch) {
            copy_error = Some(anyhow::Error::new(e).context("cannot write the spill files"));
            break;
        }
        // The parser reuses the buffers; if it has enough, they are dropped.
        let _ = give_back.try_send(batch);
    }
    if let Some(e) = copy_error {
        drop(receiver);
        let _ = copy.abort("dropfeed stopped the copy").await;
        let _ = parser.await;
        return Err(e);
    }
    match parser.await.context("the parser panicked")? {
        Ok(summary) => {
            copy.finish().await.context("cannot copy rows into the staging table")?;
            Ok(Ok((summary, spill)))
        }
        Err(failure) => {
            let _ = copy.abort("the file was refused").await;
            Ok(Err(failure))
        }
    }
}

/// What `stage` parses the file into.
struct Parsing {
    staging: Staging,
    /// A mass update's criteria codes (`Staging::MassUpdate`); none for contacts.
    known: Option<std::sync::Arc<mass_update::KnownCriteria>>,
}

/// The run record of `req` (options empty: a file refused before it was
/// read as text has none).
fn run_record<'a>(
    req: &'a Request,
    run_id: Uuid,
    file: &'a FileInfo,
    started_at: chrono::DateTime<Utc>,
) -> runs::NewRun<'a> {
    runs::NewRun {
        id: run_id,
        tenant_id: req.tenant.id,
        feed: req.feed.as_deref(),
        dry_run: req.dry_run,
        file,
        profile: req.profile_ref.as_ref(),
        options: serde_json::json!({}),
        started_at,
        rerun_of: req.rerun.map(|r| r.of),
    }
}

/// The file the pipeline reads, made ready from the one dropped.
struct Readable {
    path: PathBuf,
    /// The dropped file as the run reports it, when `path` is a scratch file
    /// made from it.
    dropped: Option<FileInfo>,
    /// `path` is the CSV a workbook was written as.
    utf8: bool,
    /// Removed when the import ends.
    _scratch: Vec<tempfile::NamedTempFile>,
}

/// Makes the dropped file readable by the CSV pipeline: a zip's one entry is
/// unpacked, a workbook (dropped, or that entry) converted to CSV, each into
/// a scratch file; any other file is read as it is. A file refused on the
/// way is the inner `Err`, with the dropped file's facts for its run.
async fn make_readable(req: &Request) -> anyhow::Result<Result<Readable, (FileInfo, FileFailure)>> {
    let cannot = || format!("cannot import {}", req.path.display());
    let detect = |path: PathBuf, name: String| async move {
        tokio::task::spawn_blocking(move || workbook::detect(&path, &name)).await.context("detection panicked")
    };
    let mut kind = detect(req.path.clone(), req.file_name.clone()).await?.with_context(cannot)?;
    let zipped = kind.is_none() && unzip::is_zip(&req.path).with_context(cannot)?;
    if kind.is_none() && !zipped {
        return Ok(Ok(Readable { path: req.path.clone(), dropped: None, utf8: false, _scratch: Vec::new() }));
    }
    let path = req.path.clone();
    let (size, sha256) = tokio::task::spawn_blocking(move || decode::digest(&path))
        .await
        .context("hashing panicked")?
        .with_context(cannot)?;
    let file = FileInfo { name: req.file_name.clone(), size: size as i64, sha256 };
    let mut readable = Readable { path: req.path.clone(), dropped: None, utf8: false, _scratch: Vec::new() };
    let limits = req.limits;
    if zipped {
        let mut scratch = scratch_file(&req.path).context("cannot create a file to unpack the archive into")?;
        let path = req.path.clone();
        let (result, scratch) = tokio::task::spawn_blocking(move || {
            let result = unzip::unpack(&path, &limits, scratch.as_file_mut());
            (result, scratch)
        })
        .await
        .context("unpacking panicked")?;
        let entry = match result {
            Ok(entry) => entry,
            Err(failure) => return Ok(Err((file, failure))),
        };
        info!(entry = %entry.entry, bytes = entry.bytes, "archive unpacked");
        readable.path = scratch.path().to_path_buf();
        readable._scratch.push(scratch);
        kind = detect(readable.path.clone(), entry.entry).await?.context("cannot read the unpacked file")?;
    }
    if let Some(kind) = kind {
        let mut scratch = scratch_file(&req.path).context("cannot create a file to convert the workbook into")?;
        let (path, delimiter) = (readable.path.clone(), req.profile.format.delimiter);
        let (result, scratch) = tokio::task::spawn_blocking(move || {
            let result = workbook::convert(&path, kind, delimiter, &limits, scratch.as_file_mut());
            (result, scratch)
        })
        .await
        .context("converting the workbook panicked")?;
        match result {
            Ok(sheet) => info!(sheet = %sheet.sheet, rows = sheet.rows, bytes = sheet.bytes, "workbook converted"),
            Err(failure) => return Ok(Err((file, failure))),
        }
        readable.path = scratch.path().to_path_buf();
        readable._scratch.push(scratch);
        readable.utf8 = true;
    }
    readable.dropped = Some(file);
    Ok(Ok(readable))
}

/// A scratch file for an unpacked archive or a converted workbook, beside
/// the dropped file (the spool, for feeds) or, when that folder is
/// read-only, in the system's.
fn scratch_file(beside: &std::path::Path) -> std::io::Result<tempfile::NamedTempFile> {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix(".dropfeed-unpacked-");
        b
    };
    match beside.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => builder().tempfile_in(dir).or_else(|_| builder().tempfile()),
        None => builder().tempfile(),
    }
}

fn columns_report(mapping: &mapping::Mapping) -> Columns {
    Columns {
        mapped: mapping.mapped.iter().map(|m| (m.header.clone(), m.target.to_string())).collect(),
        unmapped: mapping.unmapped.clone(),
        missing: mapping.missing.clone(),
        ignored_beyond_limit: mapping.excess.clone(),
    }
}

/// Records a run that wrote nothing because the file itself was refused.
async fn record_failure(
    pool: &PgPool,
    run: &runs::NewRun<'_>,
    req: &Request,
    failure: FileFailure,
) -> anyhow::Result<Uuid> {
    if let Some(p) = &req.progress {
        p.finish_and_clear();
    }
    let lang = req.tenant.language;
    let sentence = failure.rule.sentence(lang, "", &failure.detail);
    let error = match failure.line {
        Some(line) => format!("{}: line {line}: {sentence} [{}]", run.file.name, failure.rule.code()),
        None => format!("{}: {sentence} [{}]", run.file.name, failure.rule.code()),
    };
    warn!(code = failure.rule.code(), "import refused: {error}");
    let mut tx = pool.begin().await.context("cannot record the failed run")?;
    runs::insert(&mut tx, run, Status::Running).await?;
    runs::add_message(
        &mut tx,
        run.id,
        &Message {
            line: failure.line.unwrap_or(1) as i64,
            column: None,
            code: failure.rule.code().to_owned(),
            severity: "error".into(),
            value: Some(rules::excerpt(&failure.detail).to_owned()),
            message: sentence,
        },
    )
    .await?;
    let by_code = [(failure.rule.code().to_owned(), 1)].into_iter().collect();
    runs::finish(
        &mut tx,
        run.id,
        &runs::Finish {
            status: Status::Failed,
            counts: &Counts::default(),
            by_code: &by_code,
            messages_truncated: false,
            error: Some(&error),
            columns: &Columns::default(),
            profile: None,
            header: None,
        },
    )
    .await?;
    if let Some(file) = req.pickup.as_ref().filter(|_| !req.dry_run) {
        feeds::record_processed(&mut tx, req.tenant.id, file, &run.file.sha256, Some(run.id), feeds::Processed::Failed)
            .await?;
    }
    tx.commit().await.context("cannot record the failed run")?;
    let seconds = (Utc::now() - run.started_at).num_milliseconds() as f64 / 1000.0;
    crate::metrics::record_run(
        req.tenant.slug.as_str(),
        req.feed.as_deref(),
        Status::Failed,
        &Counts::default(),
        seconds,
    );
    Ok(run.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_held_before_aborted_before_dry_and_has_warnings_only_with_messages() {
        assert_eq!(status_of(true, true, false, true), Status::Held, "a guard trips after the decision");
        assert_eq!(status_of(false, true, true, true), Status::Aborted, "an aborted dry run says so");
        assert_eq!(status_of(false, false, true, true), Status::DryRun);
        assert_eq!(status_of(false, false, false, true), Status::SucceededWithWarnings);
        assert_eq!(status_of(false, false, false, false), Status::Succeeded);
    }
}
