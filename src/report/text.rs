//! The report for people: counts, then the messages grouped by rule with a
//! few example lines each (read by SQL, so a run's size does not matter).

use std::fmt::Write as _;

use super::{Examples, Report};

/// Example lines printed per rule code.
pub const EXAMPLES_PER_CODE: i64 = 5;

impl<M> Report<M> {
    /// The text of `runs show` and `import`: `examples` holds the first
    /// lines of each code (`store::runs::examples`).
    pub fn to_text(&self, examples: &Examples) -> String {
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
            for m in examples.get(code).map(Vec::as_slice).unwrap_or_default() {
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
