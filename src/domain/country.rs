//! Country cells: ISO 3166 alpha-2 codes or full names in French or English.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Upper-cased spelling -> alpha-2 code. Built once from keshvar's country
/// data (ISO short names, unofficial names and the `fr`/`en` translations) so
/// that no list is typed by hand. Upper-casing keeps accents: `BRÉSIL` is a
/// key, `BRESIL` is not, which is exactly the rule of seed 002.
static NAMES: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for country in keshvar::CountryIterator::new() {
        let code = country.alpha2().to_string();
        let code: &'static str = Box::leak(code.into_boxed_str());
        map.insert(code.to_owned(), code);
        let mut names: Vec<&str> = vec![country.iso_short_name()];
        names.extend(country.unofficial_name_list().iter().copied());
        for lang in ["fr", "en"] {
            if let Some(name) = country.translations().get(lang) {
                names.push(name);
            }
        }
        for name in names {
            map.entry(name.trim().to_uppercase()).or_insert(code);
        }
    }
    map
});

/// The alpha-2 code of a country cell, or `None` when the spelling is unknown.
/// Case does not matter; accents do.
pub fn country_code(raw: &str) -> Option<&'static str> {
    let key = raw.trim().to_uppercase();
    NAMES.get(&key).copied()
}

#[cfg(test)]
mod tests {
    use super::country_code;

    #[test]
    fn accepts_codes_and_french_or_english_names() {
        assert_eq!(country_code("CH"), Some("CH"));
        assert_eq!(country_code("fr"), Some("FR"));
        assert_eq!(country_code("Brésil"), Some("BR"));
        assert_eq!(country_code("BRÉSIL"), Some("BR"));
        assert_eq!(country_code("Brazil"), Some("BR"));
        assert_eq!(country_code("Suisse"), Some("CH"));
        assert_eq!(country_code("Canada"), Some("CA"));
        assert_eq!(country_code("Allemagne"), Some("DE"));
    }

    #[test]
    fn refuses_names_whose_accents_were_dropped() {
        assert_eq!(country_code("BRESIL"), None);
        assert_eq!(country_code("Bresil"), None);
        assert_eq!(country_code("Atlantis"), None);
        assert_eq!(country_code(""), None);
    }
}
