//! Feeds (SPEC §5): a tenant's drop folder, schedule, pickup rules and
//! profile, as written in YAML by support and validated once at `feed apply`.

use serde::{Deserialize, Serialize};

use crate::domain::ReportLanguage;
use crate::domain::source::{Endpoint, Kind, SourceSpec};
use crate::schedule::Schedule;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    pub tenant: String,
    pub name: String,
    pub source: SourceSpec,
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub pickup: PickupSpec,
    #[serde(default = "default_after_success")]
    pub after_success: AfterSpec,
    #[serde(default = "default_after_failure")]
    pub after_failure: AfterSpec,
    /// The saved profile replayed by every run (its latest version), for a
    /// feed of one file (`source.pattern`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// A multi-file feed (seed 004): several files a night, each with its
    /// pattern and profile, imported in this order; replaces `profile`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
    /// Multi-file feeds: what a night missing a required file does.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_missing_file: OnMissingFile,
    /// "HH:MM" in the feed's timezone: alert when no file has arrived by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_file_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSpec>,
    /// Hold a file whose valid rows fell by more than this share since the
    /// feed's last successful run (0.4: 40 % fewer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_row_drop_ratio: Option<f64>,
    /// Hold a file that turns to false more than this share of the tenant's
    /// contacts consenting to one consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unsubscribe_ratio: Option<f64>,
}

/// One file of a multi-file feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Glob on the file name; a name matching several patterns belongs to
    /// the first.
    pub pattern: String,
    pub profile: String,
    /// Whether a night without this file is incomplete.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingFile {
    /// Nothing of the night is imported until every required file is there
    /// (or was imported earlier the same day); the poll fails, is alerted
    /// and retried.
    #[default]
    FailNight,
    /// The files that arrived are imported, in order.
    ImportAvailable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// `sec min hour dom mon dow`, or 5 fields without seconds.
    pub cron: String,
    /// IANA timezone; the tenant's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickupSpec {
    /// A file younger than this (by its mtime) is left for the next poll.
    #[serde(default = "default_min_age")]
    pub min_age_secs: u64,
    /// Size and mtime must not change over this interval.
    #[serde(default = "default_stable")]
    pub stable_secs: u64,
    /// Take NAME only once NAME.done exists.
    #[serde(default)]
    pub done_marker: bool,
}

impl Default for PickupSpec {
    fn default() -> Self {
        PickupSpec { min_age_secs: default_min_age(), stable_secs: default_stable(), done_marker: false }
    }
}

fn default_min_age() -> u64 {
    60
}
fn default_stable() -> u64 {
    5
}

/// `{ move_to: processed }`, `{ delete: true }` or `{ leave: true }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave: Option<bool>,
}

fn default_after_success() -> AfterSpec {
    AfterSpec { move_to: Some("processed".into()), ..AfterSpec::default() }
}
fn default_after_failure() -> AfterSpec {
    AfterSpec { move_to: Some("failed".into()), ..AfterSpec::default() }
}

/// What becomes of a remote file once its run has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposal {
    MoveTo(String),
    Delete,
    Leave,
}

impl AfterSpec {
    pub fn disposal(&self) -> Result<Disposal, String> {
        match (&self.move_to, self.delete, self.leave) {
            (Some(dir), None | Some(false), None | Some(false)) => {
                let ok = !dir.is_empty()
                    && !dir.starts_with('/')
                    && dir.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
                if ok {
                    Ok(Disposal::MoveTo(dir.clone()))
                } else {
                    Err(format!("move_to {dir:?} must be a subfolder name"))
                }
            }
            (None, Some(true), None | Some(false)) => Ok(Disposal::Delete),
            (None, None | Some(false), Some(true)) => Ok(Disposal::Leave),
            _ => Err("give exactly one of move_to: FOLDER, delete: true, leave: true".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOn {
    Success,
    Warnings,
    Failure,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default = "default_report_on")]
    pub on: Vec<ReportOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<ReportLanguage>,
}

impl FeedSpec {
    pub fn guards(&self) -> Guards {
        Guards { max_row_drop_ratio: self.max_row_drop_ratio, max_unsubscribe_ratio: self.max_unsubscribe_ratio }
    }

    /// `expect_file_by` as a time, when the report settings ask for a
    /// `file.missing` alert (stored in `feeds.missing_alert_by`).
    pub fn missing_alert_by(&self) -> Option<chrono::NaiveTime> {
        let report = self.report.as_ref()?;
        if report.to.is_empty() || !report.on.contains(&ReportOn::Missing) {
            return None;
        }
        chrono::NaiveTime::parse_from_str(self.expect_file_by.as_deref()?, "%H:%M").ok()
    }
}

fn default_report_on() -> Vec<ReportOn> {
    vec![ReportOn::Success, ReportOn::Warnings, ReportOn::Failure, ReportOn::Missing]
}

impl FeedSpec {
    /// Parses one YAML document; `origin` (the file) names errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<FeedSpec, String> {
        let spec: FeedSpec = serde_saphyr::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        // Stored as jsonb, which refuses it with an error of the database's.
        match crate::domain::text::nul_in(&spec) {
            Some(at) => Err(format!("{origin}: {at} holds a NUL character (U+0000), which no text may hold")),
            None => Ok(spec),
        }
    }

    /// Checks everything that does not need the database. `tenant_tz` is
    /// the tenant's timezone, used when the feed names none. Returns every
    /// problem found, each naming its key.
    pub fn check(&self, tenant_tz: &str) -> Result<Checked, Vec<String>> {
        let mut problems = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            problems.push(format!("name {:?}: use lower-case letters, digits, '-' or '_'", self.name));
        }
        let tz = self.schedule.timezone.clone().unwrap_or_else(|| tenant_tz.to_owned());
        let schedule =
            Schedule::parse(&self.schedule.cron, &tz).map_err(|e| problems.push(format!("schedule: {e}"))).ok();
        let endpoint = Endpoint::parse(&self.source.url).map_err(|e| problems.push(format!("source.url: {e}"))).ok();
        if let Some(ep) = &endpoint {
            if ep.kind == Kind::Sftp && self.source.host_key.is_none() && self.source.known_hosts.is_none() {
                problems.push(
                    "source: sftp needs host_key (SHA256:...) or known_hosts; `dropfeed feed test` prints the server's key"
                        .into(),
                );
            }
            if matches!(ep.kind, Kind::Ftp | Kind::Ftps | Kind::FtpsImplicit | Kind::Sftp)
                && self.source.password_env.is_none()
                && self.source.password_file.is_none()
                && self.source.private_key_file.is_none()
                && ep.user != "anonymous"
            {
                problems.push("source: give password_env, password_file or private_key_file".into());
            }
            if ep.kind != Kind::Sftp && (self.source.host_key.is_some() || self.source.known_hosts.is_some()) {
                problems.push("source: host_key and known_hosts apply to sftp only".into());
            }
            if !matches!(ep.kind, Kind::Ftps | Kind::FtpsImplicit)
                && (self.source.tls_ca_file.is_some() || self.source.tls_fingerprint.is_some())
            {
                problems
                    .push("source: tls_ca_file and tls_fingerprint apply to ftps:// and ftps+implicit:// only".into());
            }
        }
        for var in [&self.source.password_env, &self.source.private_key_passphrase_env].into_iter().flatten() {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problems.push(format!("source: {var:?} is not an environment variable name"));
            }
        }
        let mut slots = Vec::new();
        for (i, slot) in self.slots().into_iter().enumerate() {
            let key = if self.files.is_empty() { "source.pattern".to_owned() } else { format!("files[{i}].pattern") };
            match globset::Glob::new(&slot.pattern) {
                Ok(g) => slots.push(Slot { matcher: g.compile_matcher(), spec: slot }),
                Err(e) => problems.push(format!("{key}: {e}")),
            }
        }
        let after_success =
            self.after_success.disposal().map_err(|e| problems.push(format!("after_success: {e}"))).ok();
        let after_failure =
            self.after_failure.disposal().map_err(|e| problems.push(format!("after_failure: {e}"))).ok();
        if let Some(by) = &self.expect_file_by
            && chrono::NaiveTime::parse_from_str(by, "%H:%M").is_err()
        {
            problems.push(format!("expect_file_by {by:?}: use HH:MM"));
        }
        if let Some(report) = &self.report {
            for to in &report.to {
                if !email_address::EmailAddress::is_valid(to) {
                    problems.push(format!("report.to: {to:?} is not an e-mail address"));
                }
            }
        }
        for (key, ratio) in
            [("max_row_drop_ratio", self.max_row_drop_ratio), ("max_unsubscribe_ratio", self.max_unsubscribe_ratio)]
        {
            if let Some(r) = ratio
                && !(r > 0.0 && r <= 1.0)
            {
                problems.push(format!("{key} {r}: give a share between 0 (excluded) and 1"));
            }
        }
        match (self.files.is_empty(), self.profile.trim().is_empty()) {
            (true, true) => problems.push("profile: name the saved profile this feed replays".into()),
            (false, false) => problems.push("profile: a feed with files: names a profile per file, not one".into()),
            _ => {}
        }
        for (i, f) in self.files.iter().enumerate() {
            if f.profile.trim().is_empty() {
                problems.push(format!("files[{i}].profile: name the saved profile of this file"));
            }
        }
        match (schedule, after_success, after_failure, endpoint) {
            (Some(schedule), Some(after_success), Some(after_failure), Some(endpoint)) if problems.is_empty() => {
                Ok(Checked { schedule, slots, after_success, after_failure, endpoint })
            }
            _ => Err(problems),
        }
    }
}

/// The parsed parts of a valid feed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub schedule: Schedule,
    /// The files of a night, in import order (one for a single-file feed).
    pub slots: Vec<Slot>,
    pub after_success: Disposal,
    pub after_failure: Disposal,
    pub endpoint: Endpoint,
}

/// One kind of file a feed takes: which names, replayed with which profile.
#[derive(Debug, Clone)]
pub struct Slot {
    pub spec: FileSpec,
    pub matcher: globset::GlobMatcher,
}

impl Checked {
    /// The slot a file name belongs to: the first whose pattern matches.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.matcher.is_match(name))
    }
}

impl FeedSpec {
    /// The files of a night in import order (a single-file feed's one).
    pub fn slots(&self) -> Vec<FileSpec> {
        if self.files.is_empty() {
            vec![FileSpec { pattern: self.source.pattern.clone(), profile: self.profile.clone(), required: true }]
        } else {
            self.files.clone()
        }
    }

    /// The profiles the feed replays, each once.
    pub fn profiles(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for slot in self.slots() {
            if !names.contains(&slot.profile) {
                names.push(slot.profile);
            }
        }
        names
    }
}

/// The guard options of a feed (SPEC §5 keys `max_row_drop_ratio`,
/// `max_unsubscribe_ratio`); `None` leaves a guard off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Guards {
    pub max_row_drop_ratio: Option<f64>,
    pub max_unsubscribe_ratio: Option<f64>,
}

impl Guards {
    pub fn is_off(&self) -> bool {
        self.max_row_drop_ratio.is_none() && self.max_unsubscribe_ratio.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
tenant: acme
name: nightly-contacts
source:
  url: sftp://ingest@sftp.acme.example:22/outbox
  password_env: ACME_SFTP_PASSWORD
  host_key: "SHA256:Zc0mAbC"
  pattern: "contacts_*.csv"
schedule:
  cron: "0 30 2 * * *"
  timezone: America/Montreal
pickup:
  min_age_secs: 60
  stable_secs: 5
  done_marker: false
after_success: { move_to: processed }
after_failure: { move_to: failed }
profile: nightly
expect_file_by: "04:00"
report:
  to: [crm@acme.example]
  on: [success, failure, missing]
  language: fr
"#;

    #[test]
    fn the_spec_example_feed_is_valid() {
        let spec = FeedSpec::from_yaml(SPEC, "acme.yaml").unwrap();
        let checked = spec.check("UTC").unwrap();
        assert_eq!(checked.after_success, Disposal::MoveTo("processed".into()));
        assert_eq!(checked.slot_of("contacts_20261121.csv"), Some(0));
        assert_eq!(checked.slot_of("other.csv"), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let bad = SPEC
            .replace("0 30 2 * * *", "0 30 25 * * *")
            .replace("America/Montreal", "Mars/Olympus")
            .replace("host_key: \"SHA256:Zc0mAbC\"", "pattern2: x")
            .replace("{ move_to: processed }", "{ move_to: processed, delete: true }");
        let err = FeedSpec::from_yaml(&bad, "bad.yaml").unwrap_err();
        assert!(err.contains("bad.yaml") && err.contains("pattern2"), "unknown keys are refused: {err}");
        let bad = SPEC
            .replace("America/Montreal", "Mars/Olympus")
            .replace("{ move_to: processed }", "{ delete: true, leave: true }");
        let problems = FeedSpec::from_yaml(&bad, "bad.yaml").unwrap().check("UTC").unwrap_err();
        assert!(problems.iter().any(|p| p.contains("Mars/Olympus")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("after_success")), "{problems:?}");
        let no_pin = SPEC.replace("  host_key: \"SHA256:Zc0mAbC\"\n", "");
        let problems = FeedSpec::from_yaml(&no_pin, "x").unwrap().check("UTC").unwrap_err();
        assert!(problems.iter().any(|p| p.contains("host_key")), "{problems:?}");
    }
}
