//! Header -> target mapping: automatic by name, from a profile, with header
//! drift checked against the header the profile was saved with.

use std::collections::HashMap;

use crate::profile::{Field, HeaderDrift, MAX_MAPPED_COLUMNS, Profile, Target};

use super::rules::Rule;

/// One file column that is imported.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub index: usize,
    pub header: String,
    pub target: Target,
}

/// The columns of one file and what becomes of each.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Number of columns in the header.
    pub width: usize,
    pub headers: Vec<String>,
    pub mapped: Vec<Mapped>,
    /// Header names that map to nothing (reported, not imported).
    pub unmapped: Vec<String>,
    /// Columns the profile knows but the file lacks (`by_name` only).
    pub missing: Vec<String>,
    /// Mapped columns beyond the 20th, ignored.
    pub excess: Vec<String>,
}

impl Mapping {
    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.mapped.iter().find(|m| m.target == Target::Field(field)).map(|m| m.index)
    }

    pub fn maps(&self, field: Field) -> bool {
        self.column_of(field).is_some()
    }

    /// The mapping as saved in a profile: every header column, in order,
    /// with its target or `~`.
    pub fn as_profile_columns(&self) -> indexmap::IndexMap<String, Option<Target>> {
        self.headers
            .iter()
            .enumerate()
            .filter(|(i, h)| !is_rejects_column(&self.headers, *i, h))
            .map(|(i, h)| (h.clone(), self.mapped.iter().find(|m| m.index == i).map(|m| m.target.clone())))
            .collect()
    }
}

/// A header that cannot be imported: the whole file is refused.
#[derive(Debug, Clone)]
pub struct HeaderError {
    pub rule: Rule,
    pub detail: String,
}

/// Columns `line` and `reason` that a rejects file (the attachment of the
/// completion report) appends at the end: they are ignored, so a fixed
/// rejects file imports with the profile of the original.
fn is_rejects_column(headers: &[String], index: usize, header: &str) -> bool {
    let n = headers.len();
    n >= 2
        && index >= n - 2
        && matches!(
            (headers[n - 2].to_lowercase().as_str(), headers[n - 1].to_lowercase().as_str()),
            ("line", "reason") | ("ligne", "motif")
        )
        && !header.is_empty()
}

pub fn resolve(headers: Vec<String>, profile: &Profile) -> Result<Mapping, HeaderError> {
    let width = headers.len();
    let mut mapping = Mapping { width, headers: headers.clone(), ..Mapping::default() };
    let mut candidates: Vec<Mapped> = Vec::new();
    let data_columns: Vec<(usize, &String)> =
        headers.iter().enumerate().filter(|(i, h)| !is_rejects_column(&headers, *i, h)).collect();

    if profile.columns.is_empty() {
        for (index, header) in &data_columns {
            if let Some(rest) = strip_prefix_ci(header, "[old]") {
                let _ = rest; // the value at export time: informative only
                continue;
            }
            let name = strip_prefix_ci(header, "[new]").unwrap_or(header);
            match name.parse::<Target>() {
                Ok(target) => candidates.push(Mapped { index: *index, header: (*header).clone(), target }),
                Err(_) => mapping.unmapped.push((*header).clone()),
            }
        }
    } else {
        let file_names: Vec<&str> = data_columns.iter().map(|(_, h)| h.as_str()).collect();
        let profile_names: Vec<&str> = profile.columns.keys().map(String::as_str).collect();
        if profile.header_drift == HeaderDrift::Strict && file_names != profile_names {
            return Err(HeaderError { rule: Rule::HeaderDrift, detail: drift_detail(&file_names, &profile_names) });
        }
        for (index, header) in &data_columns {
            match profile.columns.get(header.as_str()) {
                Some(Some(target)) => {
                    candidates.push(Mapped { index: *index, header: (*header).clone(), target: target.clone() })
                }
                Some(None) => {}
                None => mapping.unmapped.push((*header).clone()),
            }
        }
        mapping.missing = profile_names.iter().filter(|p| !file_names.contains(p)).map(|p| (*p).to_owned()).collect();
    }

    let mut seen: HashMap<&Target, &str> = HashMap::new();
    for m in &candidates {
        if let Some(first) = seen.insert(&m.target, &m.header) {
            return Err(HeaderError {
                rule: Rule::HeaderDuplicateTarget,
                detail: format!("\"{first}\" and \"{}\" -> {}", m.header, m.target),
            });
        }
    }
    if !candidates.iter().any(|m| m.target == Target::Field(Field::Email)) {
        return Err(HeaderError { rule: Rule::HeaderNoEmail, detail: String::new() });
    }
    // The e-mail column always counts among the 20, whatever its position.
    let mut kept = Vec::new();
    for m in candidates {
        let is_email = m.target == Target::Field(Field::Email);
        let email_later = !is_email && !kept.iter().any(|k: &Mapped| k.target == Target::Field(Field::Email));
        let room = MAX_MAPPED_COLUMNS - usize::from(email_later);
        if is_email || kept.len() < room {
            kept.push(m);
        } else {
            mapping.excess.push(m.header);
        }
    }
    mapping.mapped = kept;
    Ok(mapping)
}

/// `s` without `prefix` (ASCII, any case), trimmed. A checked split, not an
/// index: a header's first bytes may end inside a character (`Téléphone`).
pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, rest) = s.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| rest.trim())
}

fn drift_detail(file: &[&str], profile: &[&str]) -> String {
    let added: Vec<&str> = file.iter().filter(|h| !profile.contains(h)).copied().collect();
    let missing: Vec<&str> = profile.iter().filter(|h| !file.contains(h)).copied().collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", quoted(&added)));
    }
    if !missing.is_empty() {
        parts.push(format!("missing {}", quoted(&missing)));
    }
    if parts.is_empty() {
        parts.push(format!("column order changed (expected {})", quoted(profile)));
    }
    parts.join("; ")
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_equal_to_target_names_map_automatically_and_others_are_reported() {
        let m = resolve(h(&["email", "Language", "customer_id", "consent.sms"]), &Profile::default()).unwrap();
        assert_eq!(m.mapped.len(), 3);
        assert_eq!(m.unmapped, vec!["customer_id".to_string()]);
    }

    #[test]
    fn a_header_whose_first_bytes_end_inside_a_character_is_not_cut() {
        // "Téléphone": byte 5 falls inside the second "é".
        let m = resolve(h(&["email", "Téléphone", "[new]Ville", "[old] é"]), &Profile::default()).unwrap();
        assert_eq!(m.unmapped, vec!["Téléphone".to_string(), "[new]Ville".to_string()]);
        assert_eq!(strip_prefix_ci("[NEW]é", "[new]"), Some("é"));
        assert_eq!(strip_prefix_ci("Télé", "[new]"), None);
        assert_eq!(strip_prefix_ci("ab", "[new]"), None);
    }

    #[test]
    fn a_file_without_an_email_column_is_refused() {
        let err = resolve(h(&["courriel", "language"]), &Profile::default()).unwrap_err();
        assert_eq!(err.rule, Rule::HeaderNoEmail);
    }

    #[test]
    fn strict_drift_names_added_and_missing_columns() {
        let profile = Profile::from_yaml("columns:\n  Courriel: email\n  Langue: language\n", "p").unwrap();
        let err = resolve(h(&["Courriel", "Langue", "Ville"]), &profile).unwrap_err();
        assert_eq!(err.rule, Rule::HeaderDrift);
        assert!(err.detail.contains("added \"Ville\""), "{}", err.detail);
        let by_name = Profile { header_drift: HeaderDrift::ByName, ..profile };
        let m = resolve(h(&["Langue", "Courriel", "Ville"]), &by_name).unwrap();
        assert_eq!(m.unmapped, vec!["Ville".to_string()]);
        assert_eq!(m.mapped.len(), 2);
    }

    #[test]
    fn columns_beyond_the_twentieth_mapped_are_reported_and_ignored() {
        let mut names = vec!["email".to_string()];
        names.extend((1..=20).map(|i| format!("attribute.a{i}")));
        let m = resolve(names, &Profile::default()).unwrap();
        assert_eq!(m.mapped.len(), 20);
        assert_eq!(m.excess, vec!["attribute.a20".to_string()]);
    }

    #[test]
    fn rejects_file_columns_and_old_values_are_ignored() {
        let m = resolve(h(&["email", "[old]consent.sms", "[new]consent.sms", "line", "reason"]), &Profile::default())
            .unwrap();
        assert_eq!(m.mapped.len(), 2);
        assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
    }
}
