//! The hostile corpus of `tests/fixtures/hostile/`: every file, imported by
//! hand and picked up by a feed, gives the outcome written beside it in its
//! `.expect` file, writes nothing when refused, and leaves the service
//! importing the next good file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dropfeed::clock::SystemClock;
use dropfeed::configuration::Limits;
use dropfeed::pickup::FileOutcome;
use dropfeed::report::Report;
use dropfeed::store::runs;
use serde::Deserialize;

use crate::helpers::{Opts, TestApp, profile, spawn_app, stderr};

const HEADER: &str = "email;first_name;last_name\n";
/// The profile of every case that names none: columns by name, so that a
/// header's own problems (duplicates, BOM, spaces) show rather than drift.
const PROFILE: &str =
    "columns:\n  email: email\n  first_name: first_name\n  last_name: last_name\nheader_drift: by_name\n";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Made by the test (`generated`) instead of read from the folder.
    generate: Option<String>,
    profile: Option<String>,
    /// The CSV the feed's profile is saved from, when the file itself is not
    /// text (a workbook).
    sample: Option<String>,
    limits: Option<LimitOverrides>,
    status: String,
    /// A message with this rule code, at `line` when given.
    code: Option<String>,
    line: Option<i64>,
    rows: Option<i64>,
    #[serde(default)]
    inserted: i64,
    rejected: Option<i64>,
    /// Through a feed, when it differs: the status, with no message checked.
    feed_status: Option<String>,
    /// Values as stored afterwards: (e-mail, column of `contacts`, value).
    #[serde(default)]
    stored: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitOverrides {
    max_rows: Option<u64>,
    max_file_bytes: Option<u64>,
    max_unpacked_bytes: Option<u64>,
}

impl Expect {
    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(o) = &self.limits {
            limits.max_rows = o.max_rows.unwrap_or(limits.max_rows);
            limits.max_file_bytes = o.max_file_bytes.unwrap_or(limits.max_file_bytes);
            limits.max_unpacked_bytes = o.max_unpacked_bytes.unwrap_or(limits.max_unpacked_bytes);
        }
        limits
    }

    fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or(PROFILE)
    }
}

struct Case {
    name: String,
    path: PathBuf,
    expect: Expect,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile")
}

/// The large cases, made here rather than stored in the repository.
fn generated(kind: &str) -> Vec<u8> {
    let mut out = HEADER.as_bytes().to_vec();
    match kind {
        "single_field_50mb" => {
            out.extend_from_slice(b"anne@x.ch;");
            out.resize(out.len() + (50 << 20), b'x');
            out.extend_from_slice(b";Aebi\n");
        }
        "million_delimiters" => {
            out.extend_from_slice(b"anne@x.ch;Anne;Aebi\n");
            out.resize(out.len() + 1_000_000, b';');
            out.push(b'\n');
        }
        "same_email_10000" => (0..10_000).for_each(|_| out.extend_from_slice(b"same@x.ch;Sam;Same\n")),
        "header_600_columns" => {
            out = (1..600).fold("email".to_owned(), |h, i| format!("{h};c{i}")).into_bytes();
            out.extend_from_slice(b"\nanne@x.ch\n");
        }
        "field_100k" => {
            out.extend_from_slice(b"anne@x.ch;Anne;Aebi\nbob@x.ch;");
            out.resize(out.len() + 100_000, b'B');
            out.extend_from_slice(b";Brun\n");
        }
        "rows_over_limit" => (0..1001).for_each(|i| out.extend_from_slice(format!("p{i}@x.ch;P;Q\n").as_bytes())),
        "file_over_limit" => (0..100).for_each(|i| out.extend_from_slice(format!("p{i}@x.ch;P;Q\n").as_bytes())),
        "zip_bomb_10gb" => return zip_bomb(u32::MAX),
        "zip_bomb_lying" => return zip_bomb(1_000),
        other => panic!("no generator {other}"),
    }
    out
}

/// A zip of one `contacts.csv` that inflates to 10 GiB of zeros (10 MB on
/// disk), declaring `declared` bytes: a 1 MiB block of zeros, deflated and
/// flushed to a byte boundary, repeated 10,240 times, then an empty final
/// block. Its CRC is wrong: nothing should read that far.
fn zip_bomb(declared: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(1 << 16);
    deflate.compress_vec(&vec![0u8; 1 << 20], &mut block, FlushCompress::Full).unwrap();
    let mut data = Vec::with_capacity(block.len() * 10_240 + 2);
    (0..10_240).for_each(|_| data.extend_from_slice(&block));
    data.extend_from_slice(&[0x03, 0x00]);
    let name = b"contacts.csv";
    let le16 = |v: u16| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    let common = |out: &mut Vec<u8>| {
        // version needed, flags, method (deflate), time, date, crc, sizes, name length
        for part in [&le16(20)[..], &le16(0), &le16(8), &le16(0), &le16(0x21), &le32(0xDEAD_BEEF)] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&le32(data.len() as u32));
        out.extend_from_slice(&le32(declared));
        out.extend_from_slice(&le16(name.len() as u16));
        out.extend_from_slice(&le16(0));
    };
    let mut zip = le32(0x0403_4b50).to_vec();
    common(&mut zip);
    zip.extend_from_slice(name);
    zip.extend_from_slice(&data);
    let directory_at = zip.len() as u32;
    zip.extend_from_slice(&le32(0x0201_4b50));
    zip.extend_from_slice(&le16(20));
    common(&mut zip);
    // comment length, disk, internal and external attributes, local header offset
    for part in [&le16(0)[..], &le16(0), &le16(0), &le32(0), &le32(0)] {
        zip.extend_from_slice(part);
    }
    zip.extend_from_slice(name);
    let directory_len = zip.len() as u32 - directory_at;
    zip.extend_from_slice(&le32(0x0605_4b50));
    for part in [&le16(0)[..], &le16(0), &le16(1), &le16(1), &le32(directory_len), &le32(directory_at), &le16(0)] {
        zip.extend_from_slice(part);
    }
    zip
}

/// Every case, its file written into `dir` when generated.
fn cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".expect").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(fixtures().join(format!("{name}.expect"))).unwrap();
            let expect: Expect = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}.expect: {e}"));
            let path = match &expect.generate {
                Some(kind) => {
                    let path = dir.join(&name);
                    std::fs::write(&path, generated(kind)).unwrap();
                    path
                }
                None => fixtures().join(&name),
            };
            Case { name, path, expect }
        })
        .collect()
}

/// What differs between a run and its expected outcome (empty: none).
fn compare(case: &Case, report: &Report, written: i64) -> Vec<String> {
    let e = &case.expect;
    let mut wrong = Vec::new();
    let mut differs = |what: &str, got: String, want: String| {
        if got != want {
            wrong.push(format!("{}: {what} is {got}, expected {want}", case.name));
        }
    };
    differs("status", report.status.as_str().into(), e.status.clone());
    differs("inserted", report.counts.inserted.to_string(), e.inserted.to_string());
    differs("contacts written", written.to_string(), e.inserted.to_string());
    if let Some(n) = e.rejected {
        differs("rejected", report.counts.rejected.to_string(), n.to_string());
    }
    if let Some(n) = e.rows {
        differs("rows", report.counts.rows.to_string(), n.to_string());
    }
    if let Some(code) = &e.code {
        let found = report.messages.iter().any(|m| &m.code == code && e.line.is_none_or(|l| m.line == l));
        let shown: Vec<String> = report.messages.iter().take(5).map(|m| format!("{}@{}", m.code, m.line)).collect();
        differs(&format!("a message {code} at line {:?} among {shown:?}", e.line), found.to_string(), "true".into());
    }
    if e.status == "failed" {
        // The reason names the file and the rule.
        let error = report.error.clone().unwrap_or_default();
        let named = error.contains(&case.name) && e.code.as_ref().is_none_or(|c| error.contains(c.as_str()));
        differs(&format!("the error {error:?} naming file and rule"), named.to_string(), "true".into());
    }
    wrong
}

#[tokio::test]
async fn every_hostile_file_imported_by_hand_gives_the_outcome_written_beside_it() {
    let app = spawn_app().await;
    let cases = cases(app.dir.path());
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        // Each case starts from no contacts: its own count is what it wrote.
        app.clear_contacts().await;
        let before = app.contact_count().await;
        let opts = Opts { limits: Some(case.expect.limits()), ..Opts::default() };
        let report = app.import_with(&case.path, &profile(case.expect.profile()), opts).await;
        wrong.extend(compare(case, &report, app.contact_count().await - before));
        wrong.extend(stored(&app, case).await);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    next_good_file_imports(&app).await;
}

/// The `stored` values of a case that differ from what the database holds.
async fn stored(app: &TestApp, case: &Case) -> Vec<String> {
    let mut wrong = Vec::new();
    for (email, column, value) in &case.expect.stored {
        let got = app.contact(email).await.map(|c| c[column.as_str()].clone());
        if got.as_ref().and_then(|v| v.as_str()) != Some(value.as_str()) {
            wrong.push(format!("{}: {email} {column} is {got:?}, expected {value:?}", case.name));
        }
    }
    wrong
}

async fn next_good_file_imports(app: &TestApp) {
    let good = app.write("good.csv", format!("{HEADER}good@x.ch;Good;File\n"));
    let report = app.import(&good, &profile(PROFILE)).await;
    assert_eq!((report.status.as_str(), report.counts.inserted), ("succeeded", 1), "{:?}", report.error);
}

#[tokio::test]
async fn every_hostile_file_picked_up_by_a_feed_gives_the_outcome_written_beside_it() {
    let app = spawn_app().await;
    let cases = cases(app.dir.path());
    let mut wrong = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let profile_name = format!("p{i}");
        let sample = if let Some(sample) = &case.expect.sample {
            sample.clone()
        } else if case.expect.profile.is_some() && case.expect.status.starts_with("succeeded") {
            std::fs::read_to_string(&case.path).unwrap()
        } else {
            format!("{HEADER}sample@x.ch;Sam;Sample\n")
        };
        app.save_profile(&profile_name, case.expect.profile(), &sample).await;
        let folder = app.dir.path().join(format!("drop-{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(&case.path, folder.join(&case.name)).unwrap();
        let feed = format!(
            "tenant: acme\nname: hostile-{i}\nsource:\n  url: file://{}\n  pattern: \"{}\"\n\
             schedule:\n  cron: \"0 30 2 * * *\"\n  timezone: Europe/Zurich\n\
             pickup:\n  min_age_secs: 0\n  stable_secs: 0\nprofile: {profile_name}\n",
            folder.display(),
            case.name
        );
        let out = app.apply_feed(&feed);
        assert!(out.status.success(), "{}: {}", case.name, stderr(&out));
        let mut daemon = app.daemon(Arc::new(SystemClock), "hostile");
        daemon.limits = Limits { max_messages_per_run: 1000, ..case.expect.limits() };
        app.clear_contacts().await;
        let before = app.contact_count().await;
        let poll = daemon.run_once(&app.feed(&format!("hostile-{i}")).await, false).await;
        let poll = match poll {
            Ok(poll) => poll,
            Err(e) => {
                wrong.push(format!("{}: the poll failed: {e}", case.name));
                continue;
            }
        };
        let written = app.contact_count().await - before;
        match poll.files.as_slice() {
            [(_, FileOutcome::Imported { run_id, .. } | FileOutcome::Refused { run_id, .. })] => {
                let report = runs::report(&app.pool, *run_id, None).await.unwrap().unwrap();
                let replayed = case.expect.feed_status.as_ref().map(|status| Case {
                    name: case.name.clone(),
                    path: case.path.clone(),
                    expect: Expect { status: status.clone(), code: None, line: None, ..case.expect.clone() },
                });
                wrong.extend(compare(replayed.as_ref().unwrap_or(case), &report, written));
                wrong.extend(stored(&app, case).await);
                let folder_after = if report.status.is_success() { "processed" } else { "failed" };
                if !folder.join(folder_after).join(&case.name).exists() {
                    wrong.push(format!("{}: not moved to {folder_after}/", case.name));
                }
            }
            // Too large to download: left on the server, said at each poll.
            [(_, FileOutcome::Waiting { reason })] if case.expect.code.as_deref() == Some("file.too_large") => {
                if !reason.contains("max_file_bytes") || written != 0 {
                    wrong.push(format!("{}: waiting for {reason:?}, {written} written", case.name));
                }
            }
            other => wrong.push(format!("{}: the poll did {other:?}", case.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Files wait in the spool only while they are imported (their archived
    // copies aside), readable by the daemon's user alone.
    let spool = app.dir.path().join("spool");
    let mode =
        |p: &std::path::Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions());
    assert_eq!(mode(&spool) & 0o777, 0o700);
    assert_eq!(mode(&app.archive_dir()) & 0o777, 0o700);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "archive" && n != ".lock")
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
    next_good_file_imports(&app).await;
}
