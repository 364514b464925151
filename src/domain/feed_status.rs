//! What a feed's last poll came to, as `feeds.last_status` stores it.

use std::fmt;

/// The outcome of a feed's last poll. A poll that ran says whether a file
/// needs a person (`held_files`, `failed_files`) or not (`ok`); a poll that
/// failed stores its error's code (`source.connect`, `archive.unavailable`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    Ok,
    /// A file was held by a guard: someone must release or discard it.
    HeldFiles,
    /// A file was refused whole.
    FailedFiles,
    /// The poll itself failed: the code of its error.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
#[error("unknown feed status {0:?}")]
pub struct UnknownFeedStatus(pub String);

impl FeedStatus {
    /// The failed poll's error code, which must look like one (`internal`,
    /// `source.connect`: lower-case words joined by dots): anything else in
    /// the column is bad data.
    pub fn failed(code: &str) -> Result<FeedStatus, UnknownFeedStatus> {
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let looks_like_code = code.split('.').all(word);
        if looks_like_code { Ok(FeedStatus::Failed(code.to_owned())) } else { Err(UnknownFeedStatus(code.to_owned())) }
    }

    pub fn parse(s: &str) -> Result<FeedStatus, UnknownFeedStatus> {
        match s {
            "ok" => Ok(FeedStatus::Ok),
            "held_files" => Ok(FeedStatus::HeldFiles),
            "failed_files" => Ok(FeedStatus::FailedFiles),
            code => FeedStatus::failed(code),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FeedStatus::Ok => "ok",
            FeedStatus::HeldFiles => "held_files",
            FeedStatus::FailedFiles => "failed_files",
            FeedStatus::Failed(code) => code,
        }
    }
}

/// Read as the text it is stored as (`feed list`, the API, the console).
impl std::ops::Deref for FeedStatus {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for FeedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for FeedStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::FeedStatus;

    #[test]
    fn every_status_reads_back_as_what_it_writes() {
        for status in [
            FeedStatus::Ok,
            FeedStatus::HeldFiles,
            FeedStatus::FailedFiles,
            FeedStatus::Failed("source.connect".into()),
            FeedStatus::Failed("internal".into()),
            FeedStatus::Failed("feed.night_incomplete".into()),
        ] {
            assert_eq!(FeedStatus::parse(status.as_str()).expect("parses"), status);
        }
    }

    #[test]
    fn a_stored_status_that_is_neither_a_state_nor_an_error_code_is_refused() {
        for bad in ["", "OK", "source.", ".connect", "source..connect", "source connect"] {
            assert!(FeedStatus::parse(bad).is_err(), "{bad:?}");
        }
    }
}
