//! Text PostgreSQL cannot store: a NUL character (U+0000) is refused by
//! `text` and `jsonb` alike, so a document that will be stored (a profile,
//! a feed, a JSON body) is searched for one before it reaches the database.

/// Where the first string or key of `value` holding a NUL is, as a JSON
/// pointer (`/columns/Té\u{FFFD}l`), or `value` for a bare string.
pub fn nul_in_json(value: &serde_json::Value) -> Option<String> {
    find(value, String::new())
}

fn find(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let shown = |at: String| if at.is_empty() { "value".to_owned() } else { at };
    match value {
        Value::String(s) if s.contains('\0') => Some(shown(at)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| find(v, format!("{at}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            // The pointer is shown to people: the NUL itself is replaced.
            let here = format!("{at}/{}", k.replace('\0', "\u{FFFD}"));
            if k.contains('\0') { Some(here) } else { find(v, here) }
        }),
        _ => None,
    }
}

/// `nul_in_json` of anything serialisable.
pub fn nul_in<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value).ok().and_then(|v| nul_in_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_deep_in_a_document_is_found_by_its_pointer() {
        let v = serde_json::json!({"email": "a@b.ch", "list": ["x", "y\u{0}"]});
        assert_eq!(nul_in_json(&v), Some("/list/1".into()));
        assert_eq!(nul_in_json(&serde_json::json!({"a\u{0}": 1})), Some("/a\u{FFFD}".into()));
        assert_eq!(nul_in_json(&serde_json::json!({"a": [1, "b"]})), None);
        assert_eq!(nul_in_json(&serde_json::json!("\u{0}")), Some("value".into()));
    }
}
