//! A contact's e-mail address: trimmed, lower-cased, `local@domain.tld`.

use std::fmt;

/// An address that passed the `x@y.tld` rule; stored lower-case because the
/// identity of a contact is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses a raw cell. Surrounding spaces are trimmed; inner spaces, a
    /// missing `@` or a domain without a dotted top-level part are refused.
    pub fn parse(raw: &str) -> Option<Email> {
        let s = raw.trim();
        if !is_valid(s) {
            return None;
        }
        Some(Email(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid(s: &str) -> bool {
    if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.contains('@') || local.starts_with('"') {
        return false;
    }
    // The platform sends to real mailboxes: require a dotted domain whose
    // top-level label is alphabetic (`x@y.tld`), which email_address alone
    // does not (it accepts `x@localhost` and IP literals).
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    if tld.len() < 2 || !tld.chars().all(|c| c.is_alphabetic()) || domain.starts_with('[') {
        return false;
    }
    if domain.split('.').any(|label| label.is_empty()) {
        return false;
    }
    email_address::EmailAddress::is_valid(s)
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn accepts_plain_addresses_and_lower_cases_them() {
        assert_eq!(Email::parse(" Jean.Dupont@Example.COM ").unwrap().as_str(), "jean.dupont@example.com");
        assert!(Email::parse("a+tag@sub.mail.ch").is_some());
        assert!(Email::parse("léa@exemple.fr").is_some());
    }

    #[test]
    fn refuses_addresses_without_the_x_at_y_tld_shape() {
        for bad in [
            "",
            "jean.dupontexample.com",
            "a@b",
            "a@b.",
            "a @b.com",
            "a@b..com",
            "@b.com",
            "a@b.c0m",
            "a@@b.com",
            "a@[1.2.3.4]",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad} should be refused");
        }
    }
}
