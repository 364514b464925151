//! Import profiles: the saved column mapping and error-handling options that
//! a scheduled run replays (SPEC §4), and the targets a column can map to.

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The most columns one file may map (seed 000: "jusqu'à 20 colonnes").
pub const MAX_MAPPED_COLUMNS: usize = 20;

/// A base field of the contact model, in the order exports write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Email,
    Language,
    Display,
    Civility,
    FirstName,
    LastName,
    Birthdate,
    Structure,
    Address,
    PostalCode,
    Town,
    State,
    Country,
    Phone,
    Mobile,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Email,
        Field::Language,
        Field::Display,
        Field::Civility,
        Field::FirstName,
        Field::LastName,
        Field::Birthdate,
        Field::Structure,
        Field::Address,
        Field::PostalCode,
        Field::Town,
        Field::State,
        Field::Country,
        Field::Phone,
        Field::Mobile,
    ];

    /// The target name, which is also the column name in the contacts table.
    pub fn name(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Language => "language",
            Field::Display => "display",
            Field::Civility => "civility",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Birthdate => "birthdate",
            Field::Structure => "structure",
            Field::Address => "address",
            Field::PostalCode => "postal_code",
            Field::Town => "town",
            Field::State => "state",
            Field::Country => "country",
            Field::Phone => "phone",
            Field::Mobile => "mobile",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a file column is imported into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Field(Field),
    Criteria(String),
    Consent(String),
    Attribute(String),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown target {0:?}: use email, language, display, civility, first_name, last_name, birthdate, \
     structure, address, postal_code, town, state, country, phone, mobile, criteria.<code>, \
     consent.<name> or attribute.<name>"
)]
pub struct UnknownTarget(pub String);

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        let lower = s.to_ascii_lowercase();
        if let Some(field) = Field::ALL.iter().find(|f| f.name() == lower) {
            return Ok(Target::Field(*field));
        }
        let (prefix, key) = s.split_once('.').ok_or_else(|| UnknownTarget(raw.to_owned()))?;
        let key_ok = !key.is_empty()
            && key.len() <= 63
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !key_ok {
            return Err(UnknownTarget(raw.to_owned()));
        }
        match prefix.to_ascii_lowercase().as_str() {
            "criteria" => Ok(Target::Criteria(key.to_owned())),
            "consent" => Ok(Target::Consent(key.to_owned())),
            "attribute" => Ok(Target::Attribute(key.to_owned())),
            _ => Err(UnknownTarget(raw.to_owned())),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Field(field) => f.write_str(field.name()),
            Target::Criteria(k) => write!(f, "criteria.{k}"),
            Target::Consent(k) => write!(f, "consent.{k}"),
            Target::Attribute(k) => write!(f, "attribute.{k}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Create new contacts, skip (and report) existing ones.
    InsertOnly,
    /// Create new contacts and update existing ones.
    #[default]
    Upsert,
    /// Update existing contacts, skip unknown addresses.
    UpdateOnly,
    /// Upsert, and make the profile's lists hold exactly the file's valid
    /// contacts: members absent from the file leave the lists (seed 000,
    /// "supprimer mon ancienne base de données et la remplacer"); the
    /// contacts themselves stay.
    ReplaceList,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::InsertOnly => "insert_only",
            Mode::Upsert => "upsert",
            Mode::UpdateOnly => "update_only",
            Mode::ReplaceList => "replace_list",
        }
    }
}

/// What a file is: contacts to import (SPEC §4), or seed 001's mass update
/// of criteria and consents through `[old]`/`[new]` column pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum ProfileKind {
    #[default]
    Contacts,
    /// `[old]`/`[new]` pairs: only values whose `[new]` differs change, and a
    /// line whose `[old]` no longer matches the database is a conflict.
    #[value(alias = "mass-update")]
    MassUpdate,
}

impl ProfileKind {
    /// Profiles stored before `kind` existed have none: omitting the default
    /// keeps their bodies, hence their versions, as they were.
    fn is_contacts(&self) -> bool {
        *self == ProfileKind::Contacts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidRow {
    #[default]
    Skip,
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderDrift {
    #[default]
    Strict,
    ByName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatesInFile {
    First,
    #[default]
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyCells {
    #[default]
    Keep,
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "windows-1252", alias = "cp1252")]
    Windows1252,
    #[serde(rename = "iso-8859-1", alias = "latin1")]
    Iso88591,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Iso88591 => "iso-8859-1",
        }
    }
}

/// How the bytes of a file are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    #[serde(default = "default_delimiter", with = "delimiter_serde")]
    pub delimiter: u8,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default = "yes")]
    pub header: bool,
}

impl Default for Format {
    fn default() -> Self {
        Format { delimiter: b';', encoding: Encoding::Auto, header: true }
    }
}

fn default_delimiter() -> u8 {
    b';'
}

fn yes() -> bool {
    true
}

fn default_ratio() -> f64 {
    1.0
}

mod delimiter_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &u8, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match d {
            b'\t' => "\t",
            other => std::str::from_utf8(std::slice::from_ref(other)).unwrap_or(";"),
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            ";" => Ok(b';'),
            "," => Ok(b','),
            "\t" | "\\t" | "tab" => Ok(b'\t'),
            "|" => Ok(b'|'),
            other => Err(serde::de::Error::custom(format!(
                "unsupported delimiter {other:?}: use \";\", \",\", \"|\" or \"\\t\""
            ))),
        }
    }
}

/// A saved mapping plus its options. The same YAML is read by `--mapping`,
/// printed by `profile show` and stored (as JSON) per version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "ProfileKind::is_contacts")]
    pub kind: ProfileKind,
    #[serde(default)]
    pub format: Format,
    /// File header -> target, in file order; `~` ignores the column. Empty
    /// means "map header names that equal target names".
    #[serde(default)]
    pub columns: IndexMap<String, Option<Target>>,
    /// Criterion code -> the internal value codes it accepts.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub criteria: IndexMap<String, Vec<String>>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub lists: Vec<String>,
    #[serde(default)]
    pub on_invalid_row: OnInvalidRow,
    #[serde(default = "default_ratio")]
    pub max_invalid_ratio: f64,
    #[serde(default)]
    pub header_drift: HeaderDrift,
    #[serde(default)]
    pub duplicates_in_file: DuplicatesInFile,
    #[serde(default)]
    pub empty_cells: EmptyCells,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            name: None,
            kind: ProfileKind::default(),
            format: Format::default(),
            columns: IndexMap::new(),
            criteria: IndexMap::new(),
            mode: Mode::default(),
            lists: Vec::new(),
            on_invalid_row: OnInvalidRow::default(),
            max_invalid_ratio: default_ratio(),
            header_drift: HeaderDrift::default(),
            duplicates_in_file: DuplicatesInFile::default(),
            empty_cells: EmptyCells::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid profile {path}: {message}")]
    Yaml { path: String, message: String },
    #[error("invalid profile {path}: max_invalid_ratio must be between 0 and 1, got {ratio}")]
    Ratio { path: String, ratio: f64 },
    #[error("invalid profile {path}: criteria {code:?} declares no value codes")]
    EmptyCriteria { path: String, code: String },
    #[error("invalid profile {path}: list names must not be empty")]
    EmptyList { path: String },
    #[error("invalid profile {path}: mode replace_list needs the lists to replace (lists: [NAME])")]
    ReplaceWithoutList { path: String },
    #[error("invalid profile {path}: {key} does not apply to a mass_update profile ({why})")]
    MassUpdate { path: String, key: &'static str, why: &'static str },
    #[error("invalid profile {path}: {at} holds a NUL character (U+0000), which no text may hold")]
    Nul { path: String, at: String },
}

/// Checks the name a profile is saved under: 1 to 63 letters, digits, `-`,
/// `_` or `.`, beginning with a letter or a digit. It is shown in reports,
/// pages and URLs (`/profiles/{name}`) and written in feeds' YAML.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(64).collect();
        Err(format!(
            "profile name {shown:?}: use 1 to 63 letters, digits, '-', '_' or '.', beginning with a letter or a digit"
        ))
    }
}

impl Profile {
    /// Parses and checks a profile read from `origin` (a file path or a
    /// stored profile's name, used in error messages).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = serde_saphyr::from_str(text)
            .map_err(|e| ProfileError::Yaml { path: origin.to_owned(), message: e.to_string() })?;
        profile.check(origin)?;
        Ok(profile)
    }

    pub fn check(&self, origin: &str) -> Result<(), ProfileError> {
        if let Some(at) = crate::domain::text::nul_in(self) {
            return Err(ProfileError::Nul { path: origin.to_owned(), at });
        }
        if !(0.0..=1.0).contains(&self.max_invalid_ratio) {
            return Err(ProfileError::Ratio { path: origin.to_owned(), ratio: self.max_invalid_ratio });
        }
        if let Some((code, _)) = self.criteria.iter().find(|(_, v)| v.is_empty()) {
            return Err(ProfileError::EmptyCriteria { path: origin.to_owned(), code: code.clone() });
        }
        if self.lists.iter().any(|l| l.trim().is_empty()) {
            return Err(ProfileError::EmptyList { path: origin.to_owned() });
        }
        if self.mode == Mode::ReplaceList && self.lists.is_empty() {
            return Err(ProfileError::ReplaceWithoutList { path: origin.to_owned() });
        }
        if self.kind == ProfileKind::MassUpdate {
            self.check_mass_update(origin)?;
        }
        Ok(())
    }

    /// A mass update changes criteria and consents of known contacts only:
    /// options that would say otherwise are refused rather than ignored.
    fn check_mass_update(&self, origin: &str) -> Result<(), ProfileError> {
        let refuse = |key, why| Err(ProfileError::MassUpdate { path: origin.to_owned(), key, why });
        if !self.columns.is_empty() {
            return refuse("columns", "its columns are the [old]/[new] pairs of the header");
        }
        if self.mode != Mode::default() {
            return refuse("mode", "it updates known contacts only and never creates one");
        }
        if !self.lists.is_empty() {
            return refuse("lists", "it changes no list membership");
        }
        if !self.format.header {
            return refuse("format.header: false", "its columns are read from the header");
        }
        Ok(())
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot print profile: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_fields_and_prefixed_keys() {
        assert_eq!("Email".parse::<Target>().unwrap(), Target::Field(Field::Email));
        assert_eq!("criteria.segment".parse::<Target>().unwrap(), Target::Criteria("segment".into()));
        assert_eq!("consent.newsletter".parse::<Target>().unwrap(), Target::Consent("newsletter".into()));
        assert!("criteria.".parse::<Target>().is_err());
        assert!("nickname".parse::<Target>().is_err());
    }

    #[test]
    fn the_spec_example_profile_parses_and_prints_back() {
        let yaml = r#"
name: nightly
format:
  delimiter: ";"
  encoding: auto
  header: true
columns:
  Courriel: email
  Langue: language
  Segment: criteria.segment
  Infolettre: consent.newsletter
  Code client: attribute.customer_id
  Commentaire: ~
criteria:
  segment: [SEG_GOLD, SEG_SILVER, SEG_BRONZE]
mode: upsert
lists: [newsletter]
on_invalid_row: skip
max_invalid_ratio: 0.10
header_drift: strict
duplicates_in_file: last
empty_cells: keep
"#;
        let p = Profile::from_yaml(yaml, "spec.yaml").unwrap();
        assert_eq!(p.columns.len(), 6);
        assert_eq!(p.columns["Commentaire"], None);
        assert_eq!(p.columns["Segment"], Some(Target::Criteria("segment".into())));
        let again = Profile::from_yaml(&p.to_yaml(), "printed").unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn a_mass_update_profile_prints_its_kind_and_refuses_columns_and_lists() {
        let p = Profile::from_yaml("kind: mass_update\non_invalid_row: abort\n", "mu.yaml").unwrap();
        assert_eq!(p.kind, ProfileKind::MassUpdate);
        assert!(p.to_yaml().contains("kind: mass_update"), "{}", p.to_yaml());
        assert_eq!(Profile::from_yaml(&p.to_yaml(), "printed").unwrap(), p);
        assert!(!Profile::default().to_yaml().contains("kind"), "contacts is the default, not printed");
        for bad in ["columns:\n  email: email\n", "lists: [news]\n", "mode: insert_only\n"] {
            let err = Profile::from_yaml(&format!("kind: mass_update\n{bad}"), "mu.yaml").unwrap_err().to_string();
            assert!(err.contains("mu.yaml") && err.contains("mass_update"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_targets_are_refused_with_the_file_name() {
        let err = Profile::from_yaml("mode: upsert\nmodee: x\n", "bad.yaml").unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        let err = Profile::from_yaml("columns:\n  A: nickname\n", "bad2.yaml").unwrap_err().to_string();
        assert!(err.contains("nickname"), "{err}");
    }
}
