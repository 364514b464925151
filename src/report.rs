//! The report of a run (SPEC §6): the JSON shape scripts rely on and the text
//! people read.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Succeeded,
    SucceededWithWarnings,
    Failed,
    Aborted,
    DryRun,
    /// A guard of the feed stopped the run before anything was written; the
    /// file waits for `dropfeed runs release`.
    Held,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::SucceededWithWarnings => "succeeded_with_warnings",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::DryRun => "dry_run",
            Status::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Running,
            Status::Succeeded,
            Status::SucceededWithWarnings,
            Status::Failed,
            Status::Aborted,
            Status::DryRun,
            Status::Held,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the run did what was asked (the command exits 0).
    pub fn is_success(self) -> bool {
        matches!(self, Status::Succeeded | Status::SucceededWithWarnings | Status::DryRun)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub skipped_existing: i64,
    pub skipped_new: i64,
    pub rejected: i64,
    pub warnings: i64,
    /// Mode replace_list: memberships of the profile's lists removed because
    /// the file no longer has their contact (not a row outcome: those
    /// contacts are not in the file).
    #[serde(default)]
    pub removed_from_list: i64,
    /// Organisations created from the file's structures and addresses
    /// (a line naming a known one links to it).
    #[serde(default)]
    pub organisations_created: i64,
    /// Mass updates: lines whose `[old]` no longer matched the stored value
    /// (`update.conflict`), counted in `rejected` too.
    #[serde(default)]
    pub conflicts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRef {
    pub name: String,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub line: i64,
    pub column: Option<String>,
    pub code: String,
    pub severity: String,
    pub value: Option<String>,
    pub message: String,
}

/// What became of the file's columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Columns {
    /// Header -> target, in file order.
    #[serde(default)]
    pub mapped: indexmap::IndexMap<String, String>,
    #[serde(default)]
    pub unmapped: Vec<String>,
    #[serde(default)]
    pub missing: Vec<String>,
    #[serde(default)]
    pub ignored_beyond_limit: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run_id: Uuid,
    pub tenant: String,
    pub feed: Option<String>,
    pub status: Status,
    pub dry_run: bool,
    pub profile: Option<ProfileRef>,
    pub file: FileInfo,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    pub by_code: BTreeMap<String, i64>,
    pub messages: Vec<Message>,
    pub messages_truncated: bool,
    /// Why a failed or aborted run wrote nothing.
    pub error: Option<String>,
    pub options: serde_json::Value,
    pub columns: Columns,
    /// The run this one re-imported (`runs release` / `runs replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<Uuid>,
    /// The run that released or replayed this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_by: Option<Uuid>,
    /// The e-mails of this run's report and their delivery state.
    #[serde(default)]
    pub deliveries: Vec<crate::notify::DeliveryState>,
}

impl Report {
    /// The report for people: counts, then the messages grouped by rule with
    /// a few example lines each.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let _ = writeln!(out, "run {}  {}  tenant {}", self.run_id, self.status.as_str(), self.tenant);
        let _ = writeln!(out, "file {} ({} bytes, sha256 {})", self.file.name, self.file.size, self.file.sha256);
        if let Some(p) = &self.profile {
            let _ = writeln!(out, "profile {} v{}", p.name, p.version);
        }
        if let Some(f) = &self.finished_at {
            let secs = (*f - self.started_at).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(out, "took {secs:.1}s");
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "error: {e}");
        }
        let _ = writeln!(
            out,
            "rows {}  inserted {}  updated {}  unchanged {}  skipped_existing {}  skipped_new {}  rejected {}  warnings {}",
            c.rows, c.inserted, c.updated, c.unchanged, c.skipped_existing, c.skipped_new, c.rejected, c.warnings
        );
        if c.organisations_created > 0 {
            let _ = writeln!(out, "organisations_created {}", c.organisations_created);
        }
        if c.removed_from_list > 0 {
            let _ = writeln!(out, "removed_from_list {}", c.removed_from_list);
        }
        if let Some(of) = self.rerun_of {
            let _ = writeln!(out, "re-import of run {of}");
        }
        if let Some(by) = self.rerun_by {
            let _ = writeln!(out, "re-imported by run {by}");
        }
        if c.conflicts > 0 {
            let _ = writeln!(out, "conflicts {} (changed since the export, not applied)", c.conflicts);
        }
        if !self.columns.unmapped.is_empty() {
            let _ = writeln!(out, "unmapped columns (not imported): {}", self.columns.unmapped.join(", "));
        }
        if !self.columns.ignored_beyond_limit.is_empty() {
            let _ =
                writeln!(out, "columns beyond the 20th (ignored): {}", self.columns.ignored_beyond_limit.join(", "));
        }
        for (code, n) in &self.by_code {
            let _ = writeln!(out, "\n{code}: {n}");
            for m in self.messages.iter().filter(|m| &m.code == code).take(5) {
                let _ = writeln!(out, "  line {}: {}", m.line, m.message);
            }
        }
        if self.messages_truncated {
            let _ = writeln!(out, "\n(messages truncated; counts per code are complete)");
        }
        for d in &self.deliveries {
            let _ = writeln!(
                out,
                "\n{} to {}: {}{}{}",
                d.kind,
                d.recipients.join(", "),
                d.status,
                d.sent_at.map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default(),
                d.last_error.as_deref().map(|e| format!(" (attempt {}: {e})", d.attempts)).unwrap_or_default()
            );
        }
        out
    }
}
