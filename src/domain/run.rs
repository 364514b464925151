//! A run as the system records and reports it (SPEC §6): its status,
//! counts, file, columns, messages and the delivery of its e-mails. Types
//! only: the store reads and writes them, `report` renders them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileRef {
    pub name: String,
    pub version: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileInfo {
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub line: i64,
    pub column: Option<String>,
    pub code: String,
    pub severity: String,
    pub value: Option<String>,
    pub message: String,
}

/// What became of the file's columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Columns {
    /// Header -> target, in file order.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub mapped: indexmap::IndexMap<String, String>,
    #[serde(default)]
    pub unmapped: Vec<String>,
    #[serde(default)]
    pub missing: Vec<String>,
    #[serde(default)]
    pub ignored_beyond_limit: Vec<String>,
}

/// A run's report. `M` is its messages: a `Vec` when they were loaded (tests,
/// small runs), `()` for the head alone, or `json::StreamedMessages` when the
/// JSON is written while a cursor reads them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(bound = "")]
pub struct Report<M = Vec<Message>> {
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
    #[schema(value_type = Vec<Message>)]
    pub messages: M,
    pub messages_truncated: bool,
    /// Why a failed or aborted run wrote nothing.
    pub error: Option<String>,
    #[schema(value_type = Object)]
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
    pub deliveries: Vec<DeliveryState>,
}

/// The first lines of each rule code, for the text report and the e-mail.
pub type Examples = BTreeMap<String, Vec<Message>>;

impl<M> Report<M> {
    /// The same report with other messages (the head of a report carries `()`).
    pub fn with_messages<N>(self, messages: N) -> Report<N> {
        Report {
            run_id: self.run_id,
            tenant: self.tenant,
            feed: self.feed,
            status: self.status,
            dry_run: self.dry_run,
            profile: self.profile,
            file: self.file,
            started_at: self.started_at,
            finished_at: self.finished_at,
            counts: self.counts,
            by_code: self.by_code,
            messages,
            messages_truncated: self.messages_truncated,
            error: self.error,
            options: self.options,
            columns: self.columns,
            rerun_of: self.rerun_of,
            rerun_by: self.rerun_by,
            deliveries: self.deliveries,
        }
    }
}

/// The delivery state of a run's reports, for `runs show`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeliveryState {
    pub kind: String,
    pub recipients: Vec<String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}
