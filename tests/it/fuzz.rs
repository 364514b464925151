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
