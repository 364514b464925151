//! Tenant identity and the language its reports are written in.

use std::fmt;
use std::str::FromStr;

/// The short name that identifies a tenant on the command line and in feeds:
/// lower-case ASCII letters, digits and hyphens, 2 to 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid tenant slug {0:?}: use 2 to 63 lower-case letters, digits or hyphens, starting with a letter")]
pub struct InvalidSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<TenantSlug, InvalidSlug> {
        let ok = (2..=63).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(TenantSlug(raw.to_owned())) } else { Err(InvalidSlug(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantSlug {
    type Err = InvalidSlug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantSlug::parse(s)
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The language of reports, messages and e-mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReportLanguage {
    #[default]
    Fr,
    En,
}

impl ReportLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportLanguage::Fr => "fr",
            ReportLanguage::En => "en",
        }
    }

    /// The contact language code used when a row leaves `language` empty.
    pub fn contact_code(self) -> &'static str {
        match self {
            ReportLanguage::Fr => "FR",
            ReportLanguage::En => "EN",
        }
    }
}

impl FromStr for ReportLanguage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fr" => Ok(ReportLanguage::Fr),
            "en" => Ok(ReportLanguage::En),
            other => Err(format!("unknown report language {other:?}: use fr or en")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TenantSlug;

    #[test]
    fn slugs_are_lower_case_words_with_hyphens() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-2").is_ok());
        for bad in ["", "a", "Acme", "2acme", "acme corp", "acme/x"] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
