//! Property tests of the decode → CSV → validation path (bounded: 256 cases
//! per property, `PROPTEST_CASES` raises it): whatever the bytes, parsing
//! ends without a panic in a refusal or in counts that add up, and every
//! message names a line of the file. A failing input is shrunk and saved
//! under `proptest-regressions/`, which is committed: it is replayed first
//! on every run, and becomes a fixture of `tests/fixtures/hostile/`.

use dropfeed::configuration::Limits;
use dropfeed::domain::ReportLanguage;
use dropfeed::import::decode;
use dropfeed::import::records;
use dropfeed::import::staging::{Batch, Staging};
use dropfeed::import::validate::RuleContext;
use dropfeed::profile::{Encoding, Profile};
use proptest::prelude::*;

/// Inspects and parses `bytes` as a file; returns (rows, rejected, message
/// lines) or the refusal's rule code.
fn run(bytes: &[u8], encoding: Encoding) -> Result<(u64, u64, Vec<i64>), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.csv");
    std::fs::write(&path, bytes).unwrap();
    let (facts, problem) = decode::inspect(&path, encoding).unwrap();
    if let Some(problem) = problem {
        return Err(format!("decode: {problem}"));
    }
    let reader = decode::open_utf8(&path, facts.encoding, |_| {}).unwrap();
    let profile = Profile::from_yaml(
        "columns:\n  email: email\n  first_name: first_name\n  birthdate: birthdate\n  town: town\n  \
         postal_code: postal_code\n  nl: consent.newsletter\nheader_drift: by_name\n",
        "fuzz",
    )
    .unwrap();
    let ctx = RuleContext {
        lang: ReportLanguage::En,
        extra_languages: vec![],
        today: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        run_id: uuid::Uuid::nil(),
    };
    let limits = Limits { max_line_bytes: 4096, max_field_bytes: 512, ..Limits::default() };
    let mut messages = Vec::new();
    let summary = records::parse(
        reader,
        &profile,
        ctx,
        Staging::Full,
        &limits,
        |batch: Batch| {
            // Message rows: line \t column \t code ...
            for row in batch.msgs.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
                let line = row.split(|b| *b == b'\t').next().unwrap();
                messages.push(std::str::from_utf8(line).unwrap().parse::<i64>().unwrap());
            }
            true
        },
        || None,
    )
    .map_err(|f| f.rule.code().to_owned())?;
    Ok((summary.rows, summary.rejected, messages))
}

fn lines_of(bytes: &[u8]) -> i64 {
    bytes.iter().filter(|b| **b == b'\n' || **b == b'\r').count() as i64 + 1
}

/// Cells that look like what exports hold, and what breaks them.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}@[a-z]{1,6}\\.(ch|fr|com)",
        "[A-Za-zéèàçÉ' -]{0,12}",
        "[0-9]{2}\\.[0-9]{2}\\.[0-9]{4}",
        "(T|F|true|false|oui|1)",
        "\"[^\"]{0,10}\"",
        "\"[^\"]{0,5}\"\"[^\"]{0,5}\"",
        "[=+@-][A-Z]{1,6}\\([^)]{0,6}\\)",
        ".{0,16}",
        Just(String::new()),
    ]
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    let header = Just("email;first_name;birthdate;town;postal_code;nl".to_owned());
    let row = prop::collection::vec(cell(), 0..9).prop_map(|cells| cells.join(";"));
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    (header, prop::collection::vec((row, ending), 0..40)).prop_map(|(h, rows)| {
        let mut out = format!("{h}\n");
        for (row, end) in rows {
            out.push_str(&row);
            out.push_str(end);
        }
        out.into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_refused_or_parsed_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for encoding in [Encoding::Auto, Encoding::Utf8] {
            if let Ok((rows, rejected, lines)) = run(&bytes, encoding) {
                prop_assert!(rejected <= rows);
                let last = lines_of(&bytes);
                prop_assert!(lines.iter().all(|l| (1..=last).contains(l)), "{lines:?} beyond {last}");
            }
        }
    }

    #[test]
    fn csv_like_files_count_every_row_once_and_name_real_lines(bytes in file()) {
        match run(&bytes, Encoding::Auto) {
            Ok((rows, rejected, lines)) => {
                prop_assert!(rejected <= rows);
                let last = lines_of(&bytes);
                prop_assert!(lines.iter().all(|l| (1..=last).contains(l)), "{lines:?} beyond {last}");
                // A rejected row has at least one message.
                let mut distinct = lines.clone();
                distinct.dedup();
                prop_assert!(distinct.len() as u64 >= rejected);
            }
            // `.{0,16}` may draw a NUL byte or a stray delimiter.
            Err(code) => prop_assert!(
                code.starts_with("decode: NUL byte")
                    || ["file.ragged", "file.line_too_long", "file.delimiter", "file.encoding"].contains(&code.as_str()),
                "refused with {code}"
            ),
        }
    }
}

/// Pieces of text that break code treating text as bytes: multi-byte
/// letters, combining marks, emoji sequences, right-to-left text and its
/// override, NUL, BOM, the mass update's prefixes, delimiters and quotes.
fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Téléphone".to_owned()),
        Just("e\u{301}\u{302}".to_owned()),
        Just("👩\u{200D}👩\u{200D}👧🇨🇭".to_owned()),
        Just("\u{202E}עברית\u{202C}".to_owned()),
        Just("العربية".to_owned()),
        Just("\0".to_owned()),
        Just("\u{FEFF}".to_owned()),
        Just("[old]".to_owned()),
        Just("[NEW] ".to_owned()),
        Just("[new]é".to_owned()),
        Just("email".to_owned()),
        Just("consent.sms".to_owned()),
        Just("criteria.ré".to_owned()),
        Just(";".to_owned()),
        Just("\"".to_owned()),
        Just("\n".to_owned()),
        Just("=SUM(A1)".to_owned()),
        any::<char>().prop_map(String::from),
        "\\PC{0,6}",
    ]
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_piece(), 0..4).prop_map(|p| p.concat())
}

/// A semicolon file of hostile headers and cells (the header names `email`
/// more often than not, so that lines are checked too), with bytes that
/// are not UTF-8 put in at random places.
fn hostile_file() -> impl Strategy<Value = Vec<u8>> {
    let header = (prop::collection::vec(hostile_text(), 1..6), any::<bool>()).prop_map(|(mut names, email)| {
        if email {
            names.insert(0, "email".into());
        }
        names.join(";")
    });
    let rows = prop::collection::vec(prop::collection::vec(hostile_text(), 1..7).prop_map(|c| c.join(";")), 0..12);
    let invalid =
        prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![Just(0xFFu8), Just(0xC3), Just(0x80)]), 0..3);
    (header, rows, invalid).prop_map(|(header, rows, invalid)| {
        let mut bytes = format!("{header}\n{}\n", rows.join("\n")).into_bytes();
        for (at, byte) in invalid {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        bytes
    })
}

/// Inspects and parses `bytes` as the automatic mapping (contacts) and as
/// a mass update would: a report's counts, or the refusal's rule code with
/// its line. A panic fails the property.
/// Rows and rejected rows, or the refusal's rule code and line.
type Outcome = Result<(u64, u64), (String, Option<u64>)>;

fn parse_both(bytes: &[u8]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.csv");
    std::fs::write(&path, bytes).unwrap();
    let (facts, problem) = decode::inspect(&path, Encoding::Auto).unwrap();
    if let Some(problem) = problem {
        return vec![Err((format!("decode: {problem}"), None))];
    }
    let ctx = || RuleContext {
        lang: ReportLanguage::Fr,
        extra_languages: vec![],
        today: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        run_id: uuid::Uuid::nil(),
    };
    let limits = Limits::default();
    let contacts = Profile::default();
    let mass_update = Profile::from_yaml("kind: mass_update\n", "fuzz").unwrap();
    let known = dropfeed::import::mass_update::known_criteria(&[], &mass_update);
    let open = || decode::open_utf8(&path, facts.encoding, |_| {}).unwrap();
    let outcome = |r: Result<records::ParseSummary, dropfeed::import::rules::FileFailure>| {
        r.map(|s| (s.rows, s.rejected)).map_err(|f| (f.rule.code().to_owned(), f.line))
    };
    vec![
        outcome(records::parse(open(), &contacts, ctx(), Staging::Full, &limits, |_: Batch| true, || None)),
        outcome(dropfeed::import::mass_update::parse(
            open(),
            &mass_update,
            ctx(),
            &known,
            &limits,
            |_: Batch| true,
            || None,
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unicode_headers_and_cells_give_a_report_or_a_refusal_never_a_panic(bytes in hostile_file()) {
        for outcome in parse_both(&bytes) {
            match outcome {
                Ok((rows, rejected)) => prop_assert!(rejected <= rows),
                // A refusal names its rule and, but for the decoder's, a line.
                Err((code, line)) => prop_assert!(code.starts_with("decode: ") || line.is_some() || code == "file.empty",
                    "{code} without a line"),
            }
        }
    }

    #[test]
    fn any_header_resolves_to_a_mapping_or_a_header_error(
        headers in prop::collection::vec(hostile_text(), 0..8),
    ) {
        let _ = dropfeed::import::mapping::resolve(headers, &Profile::default());
    }
}
