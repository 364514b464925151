//! Files of the benchmarks' generator (`bench/gen/contacts.rs`), imported by
//! the real binary: the report counts exactly the rows the generator broke,
//! the corrections of the rows it wrote, and, for a second file overlapping
//! the first, the addresses it already knew.

use std::collections::{BTreeMap, HashSet};

use crate::helpers::{TestApp, spawn_app, stderr, stdout};

#[path = "../../bench/gen/contacts.rs"]
mod gen_contacts;

use gen_contacts::{Encoding, Expected, Options};

/// Imports `opts`'s file with the mapping at `mapping` into the tenant `gen`
/// (FR and EN only) and returns the JSON report.
fn import(app: &TestApp, name: &str, opts: &Options, mapping: &str) -> serde_json::Value {
    let path = app.dir.path().join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let made = gen_contacts::generate(opts, file).unwrap();
    assert_eq!(made, gen_contacts::expected(opts), "generate and expected count alike");
    let out = app.cli(&["import", "gen", path.to_str().unwrap(), "--mapping", mapping, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)))
}

/// Checks a report against what the generator made of the file `opts`,
/// `known` being the indexes of the rows whose address is already a contact.
/// With `empty_cells: keep`, dropfeed corrects (and warns about) only the
/// rows it inserts: an update leaves the stored values of empty cells.
fn check(report: &serde_json::Value, opts: &Options, known: &HashSet<u64>) {
    let mut written = Expected::default();
    let (mut valid, mut matched, mut warned) = (0, 0, 0);
    for (index, mut fate) in (opts.start..).zip(gen_contacts::fates(opts)) {
        if fate.broken.is_none() {
            valid += 1;
            if known.contains(&index) {
                matched += 1;
                fate.warnings = 0;
            }
            warned += i64::from(fate.warnings != 0);
        }
        written.add(fate);
    }
    let expected = gen_contacts::expected(opts);
    assert_eq!(written.rejected, expected.rejected);

    let counts = &report["counts"];
    let count = |key: &str| counts[key].as_i64().unwrap_or_else(|| panic!("counts.{key}: {counts}"));
    let by_code = &report["by_code"];
    assert_eq!(count("rows"), opts.rows as i64);
    assert_eq!(count("rejected"), expected.rejected_total as i64, "{by_code} for {:?}", expected.rejected);
    assert_eq!(count("inserted") + count("rejected") + count("updated") + count("unchanged"), opts.rows as i64);
    assert_eq!(count("updated") + count("unchanged"), matched, "the valid rows whose address was known: {counts}");
    assert_eq!(count("inserted"), valid - matched, "the valid rows of new addresses: {counts}");
    assert_eq!(count("warnings"), warned, "inserted rows with a correction: {counts}");
    // Every rejected code and every warning, each counted, and no other code.
    let mut by_code: BTreeMap<String, i64> = BTreeMap::new();
    for (code, n) in written.rejected.iter().chain(&written.warnings_by_code) {
        *by_code.entry(code.to_string()).or_default() += *n as i64;
    }
    let reported: BTreeMap<String, i64> = serde_json::from_value(report["by_code"].clone()).unwrap();
    assert_eq!(reported, by_code);
}

/// A file, then the file of the next `rows` rows from the middle of the first
/// (`start = rows / 2`), drawn with another seed: an upsert of half known and
/// half new addresses, some of either broken. `encoding` is how dropfeed
/// must have read both.
async fn a_file_then_its_overlapping_successor(first: Options, mapping: Option<&str>, encoding: &str) {
    let app = spawn_app().await;
    let out = app.cli(&["tenant", "add", "gen", "--name", "Generated"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mapping = match mapping {
        None => "examples/mapping.yaml".to_owned(),
        Some(yaml) => app.write("mapping.yaml", yaml).to_str().unwrap().to_owned(),
    };

    let report = import(&app, "first.csv", &first, &mapping);
    assert_eq!(report["options"]["encoding"], encoding);
    check(&report, &first, &HashSet::new());

    let stored: HashSet<u64> =
        (first.start..).zip(gen_contacts::fates(&first)).filter(|(_, f)| f.broken.is_none()).map(|(i, _)| i).collect();
    let second = Options { start: first.start + first.rows / 2, seed: first.seed + 1, ..first.clone() };
    let report = import(&app, "second.csv", &second, &mapping);
    assert_eq!(report["options"]["encoding"], encoding);
    check(&report, &second, &stored);
    // Another seed: the rows known and valid again differ from what is stored.
    assert!(report["counts"]["updated"].as_i64().unwrap() > 0, "{}", report["counts"]);
}

#[tokio::test]
async fn a_generated_file_reports_exactly_the_errors_the_generator_made() {
    // Windows-1252 and CRLF, as Excel saves "CSV (point-virgule)".
    let opts =
        Options { rows: 5000, invalid: 0.05, seed: 11, encoding: Encoding::Cp1252, crlf: true, ..Options::default() };
    a_file_then_its_overlapping_successor(opts, None, "windows-1252").await;
}

#[tokio::test]
async fn a_generated_utf8_file_with_a_bom_and_a_fifth_of_bad_rows_reports_exactly_the_errors_the_generator_made() {
    let opts = Options { rows: 5000, invalid: 0.20, seed: 23, encoding: Encoding::Utf8Sig, ..Options::default() };
    // The example mapping refuses a file with more than 10% of bad rows.
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mapping.yaml")).unwrap();
    let mapping = example.replace("max_invalid_ratio: 0.10", "max_invalid_ratio: 0.40");
    assert_ne!(mapping, example, "examples/mapping.yaml sets max_invalid_ratio: 0.10");
    a_file_then_its_overlapping_successor(opts, Some(&mapping), "utf-8 (BOM)").await;
}
