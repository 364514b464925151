//! `template`: the import template (seed 000's "modèle"): a header line and
//! one example line, for the default targets or a profile's columns.

use crate::profile::{Field, Profile, Target};
use crate::spreadsheet::neutralise;

fn example(target: &Target, profile: &Profile) -> String {
    match target {
        Target::Field(f) => match f {
            Field::Email => "jean.dupont@example.com",
            Field::Language => "FR",
            Field::Display => "Monsieur Dupont",
            Field::Civility => "MR",
            Field::FirstName => "Jean",
            Field::LastName => "Dupont",
            Field::Birthdate => "21.03.1985",
            Field::Structure => "",
            Field::Address => "12 rue de l'Église",
            Field::PostalCode => "75011",
            Field::Town => "Paris",
            Field::State => "",
            Field::Country => "FR",
            Field::Phone => "+33 1 23 45 67 89",
            Field::Mobile => "+33 6 12 34 56 78",
        }
        .to_owned(),
        Target::Criteria(code) => profile.criteria.get(code).and_then(|v| v.first()).cloned().unwrap_or_default(),
        Target::Consent(_) => "TRUE".into(),
        Target::Attribute(_) => String::new(),
    }
}

/// The template as CSV text in the profile's delimiter.
pub fn render(profile: &Profile) -> String {
    let columns: Vec<(String, Option<Target>)> = if profile.columns.is_empty() {
        Field::ALL.iter().map(|f| (f.name().to_owned(), Some(Target::Field(*f)))).collect()
    } else {
        profile.columns.iter().map(|(h, t)| (h.clone(), t.clone())).collect()
    };
    let mut w = ::csv::WriterBuilder::new().delimiter(profile.format.delimiter).from_writer(Vec::new());
    let _ = w.write_record(columns.iter().map(|(h, _)| neutralise(h)));
    let _ = w.write_record(
        columns.iter().map(|(_, t)| neutralise(&t.as_ref().map(|t| example(t, profile)).unwrap_or_default())),
    );
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
