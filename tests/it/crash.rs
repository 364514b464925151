//! Crash safety (SPEC §5) against the real binary: `dropfeed run` killed
//! with SIGKILL at points spread over the pickup of a 200,000-row file
//! (download, parse, COPY, commit, remote move), then started again, and
//! PostgreSQL restarted under a running import: the database ends as after
//! one clean import, with exactly one succeeded run for the file, and the
//! file is in `processed/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dropfeed::domain::ReportLanguage;

use crate::helpers::{TestApp, sigterm, spawn_app, spawn_app_on, stderr};
use crate::servers::garage::Garage;
use crate::servers::postgres::PrivatePostgres;

const ROWS: usize = 200_000;
const TRIALS: usize = 20;
const FILE: &str = "contacts_20261201.csv";
const PROFILE: &str = "columns:\n  email: email\n  first_name: first_name\n  last_name: last_name\n  \
                       nl: consent.newsletter\nlists: [nightly]\n";

/// A file of `ROWS` contacts, some rows invalid, some duplicated.
fn contacts_file() -> String {
    let mut out = String::with_capacity(ROWS * 40);
    out.push_str("email;first_name;last_name;nl\n");
    for i in 0..ROWS {
        let email = match i % 97 {
            0 => "not-an-address".to_owned(),
            1 => format!("p{}@x.ch", i - 1),
            _ => format!("p{i}@x.ch"),
        };
        let nl = if i % 3 == 0 { "T" } else { "F" };
        let first = ["Anne", "Bruno", "Chloé", "David", "Elsa", "Félix", "Gaëlle", "Hugo"][i % 8];
        out.push_str(&format!("{email};{first};Son;{nl}\n"));
    }
    out
}

/// The tenant's contacts, memberships and succeeded runs, as comparable text.
async fn snapshot(app: &TestApp) -> (Vec<String>, Vec<String>) {
    // Planned before autovacuum has seen the 200,000 new rows, the join
    // below once took a nested loop and ran for minutes.
    sqlx::raw_sql("ANALYZE contacts, list_members, lists").execute(&app.pool).await.unwrap();
    let contacts = sqlx::query_scalar(
        "SELECT concat_ws('|', email, first_name, last_name, consents::text, criteria::text, attributes::text)
         FROM contacts ORDER BY email",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let members = sqlx::query_scalar(
        "SELECT l.name || '|' || c.email FROM list_members m JOIN lists l ON l.id = m.list_id
         JOIN contacts c ON c.id = m.contact_id ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    (contacts, members)
}

struct Setup {
    app: TestApp,
    drop: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// Where the archive is in the bucket, when it is on S3.
    prefix: String,
}

async fn setup(file: &str, archive: Option<&Garage>) -> Setup {
    setup_with(spawn_app().await, file, archive).await
}

async fn setup_with(app: TestApp, file: &str, archive: Option<&Garage>) -> Setup {
    app.save_profile("nightly", PROFILE, "email;first_name;last_name;nl\nsample@x.ch;Sam;Ple;T\n").await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let feed = format!(
        "tenant: acme\nname: nightly\nsource:\n  url: file://{}\n  pattern: \"contacts_*.csv\"\n\
         schedule:\n  cron: \"* * * * * *\"\n  timezone: Europe/Zurich\n\
         pickup:\n  min_age_secs: 0\n  stable_secs: 0\nprofile: nightly\n",
        drop.display()
    );
    let out = app.apply_feed(&feed);
    assert!(out.status.success(), "{}", stderr(&out));
    // Short leases and retries: a killed daemon's feed is free again in 2 s.
    // Each trial its own prefix in the bucket: its copies are counted alone.
    let prefix = format!("crash-{}", uuid::Uuid::now_v7().simple());
    let mut config = format!(
        "database_url: {}\nspool_dir: {}\nworkers: 1\nhttp:\n  bind: 127.0.0.1:0\n\
         scheduler:\n  tick_ms: 100\n  lease_secs: 2\n  retry_after_secs: 1\n  connect_attempts: 1\n",
        app.db_url,
        app.dir.path().join("spool").display()
    );
    if let Some(garage) = archive {
        // JSON is YAML: the archive block as the test server describes it.
        config.push_str(&format!("archive: {}\n", garage.archive_settings(&prefix, 14)));
    }
    let config = app.write("dropfeed.yaml", config);
    std::fs::write(drop.join(FILE), file).unwrap();
    let log = app.dir.path().join("daemon.log");
    Setup { app, drop, config, log, prefix }
}

fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--config", config.to_str().unwrap(), "--log-format", "json", "run"])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info,dropfeed=debug,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("dropfeed run starts")
}

fn kill(child: &mut Child) {
    // SIGKILL: no shutdown code runs.
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until the file has been imported and moved; returns the time taken.
async fn until_processed(s: &Setup, since: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let moved = s.drop.join("processed").join(FILE).exists();
        let succeeded = s.app.scalar("SELECT count(*) FROM runs WHERE status LIKE 'succeeded%'").await;
        if moved && succeeded > 0 {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "not processed after 120 s; log:\n{}", tail(&s.log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// What the daemon was doing when it was killed: its last log message.
fn last_step(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "(nothing logged)".into())
}

#[tokio::test]
async fn a_daemon_killed_anywhere_in_an_import_ends_as_after_one_clean_import_once_restarted() {
    let _heavy = crate::helpers::heavy().await;
    killed_anywhere(None, TRIALS).await;
}

#[tokio::test]
async fn a_daemon_archiving_to_s3_killed_anywhere_in_an_import_ends_as_after_one_clean_import_once_restarted() {
    let _heavy = crate::helpers::heavy().await;
    let garage = Garage::start();
    killed_anywhere(Some(&garage), TRIALS / 2).await;
}

/// Kills a daemon at `trials` points spread over a clean pickup, starts it
/// again, and compares the database with the clean pickup's.
async fn killed_anywhere(archive: Option<&Garage>, trials: usize) {
    let file = contacts_file();

    // The clean run: its result, and how long a pickup takes.
    let clean = setup(&file, archive).await;
    let t0 = Instant::now();
    let mut daemon = start(&clean.config, &clean.log);
    let took = until_processed(&clean, t0).await;
    kill(&mut daemon);
    let reference = snapshot(&clean.app).await;
    assert!(
        reference.0.len() > ROWS * 9 / 10,
        "{} contacts; runs {:?}; log:\n{}",
        reference.0.len(),
        sqlx::query_scalar::<_, String>("SELECT concat_ws(' ', status, rows, inserted, error) FROM runs")
            .fetch_all(&clean.app.pool)
            .await
            .unwrap(),
        tail(&clean.log)
    );

    let mut steps = Vec::new();
    for trial in 0..trials {
        let s = setup(&file, archive).await;
        // Kill points spread evenly over the clean run's duration.
        let at = took.mul_f64((trial as f64 + 0.5) / trials as f64);
        let mut daemon = start(&s.config, &s.log);
        tokio::time::sleep(at).await;
        kill(&mut daemon);
        steps.push(format!("{:>5} ms: {}", at.as_millis(), last_step(&s.log)));

        let mut daemon = start(&s.config, &s.log);
        until_processed(&s, Instant::now()).await;
        sigterm(&mut daemon);

        let after = snapshot(&s.app).await;
        assert!(after == reference, "trial {trial} (killed at {at:?}): the contacts differ from a clean import");
        let runs = s.app.scalar("SELECT count(*) FROM runs WHERE status LIKE 'succeeded%'").await;
        assert_eq!(runs, 1, "trial {trial}: succeeded runs");
        let processed = s.app.scalar("SELECT count(*) FROM processed_files").await;
        assert_eq!(processed, 1, "trial {trial}: processed records");
        assert!(!s.drop.join(FILE).exists() && s.drop.join("processed").join(FILE).exists(), "trial {trial}");
        // What the killed daemon was downloading is removed by the next one;
        // the copy taken is in the archive, once.
        let spool: Vec<_> = std::fs::read_dir(s.app.dir.path().join("spool"))
            .map(|d| d.map(|e| e.unwrap().file_name()).filter(|n| n != "archive" && n != ".lock").collect())
            .unwrap_or_default();
        assert!(spool.is_empty(), "trial {trial}: left in the spool: {spool:?}");
        let archived = match archive {
            None => std::fs::read_dir(s.app.dir.path().join("spool/archive").join(s.app.tenant.id.to_string()))
                .map(|d| d.count())
                .unwrap_or_default(),
            Some(garage) => {
                use futures_util::TryStreamExt;
                use object_store::ObjectStore;
                let prefix = object_store::path::Path::from(format!("{}/{}", s.prefix, s.app.tenant.id));
                garage.client().list(Some(&prefix)).try_collect::<Vec<_>>().await.unwrap().len()
            }
        };
        assert_eq!(archived, 1, "trial {trial}: archived copies");
    }
    eprintln!("clean pickup {took:?}; killed after:\n{}", steps.join("\n"));
}

#[tokio::test]
async fn postgresql_restarted_under_a_running_import_loses_nothing_and_imports_the_file_once() {
    let _heavy = crate::helpers::heavy().await;
    let pg = PrivatePostgres::start();
    let file = contacts_file();
    let clean = setup_with(spawn_app_on(&pg.url(), ReportLanguage::Fr).await, &file, None).await;
    let t0 = Instant::now();
    let mut daemon = start(&clean.config, &clean.log);
    let took = until_processed(&clean, t0).await;
    sigterm(&mut daemon);
    let reference = snapshot(&clean.app).await;

    let mut steps = Vec::new();
    for trial in 0..5 {
        let s = setup_with(spawn_app_on(&pg.url(), ReportLanguage::Fr).await, &file, None).await;
        let at = took.mul_f64([0.2, 0.4, 0.6, 0.8, 0.95][trial]);
        let mut daemon = start(&s.config, &s.log);
        tokio::time::sleep(at).await;
        steps.push(format!("{:>5} ms: {}", at.as_millis(), last_step(&s.log)));
        pg.restart();
        until_processed(&s, Instant::now()).await;
        sigterm(&mut daemon);
        assert!(snapshot(&s.app).await == reference, "trial {trial} (restart at {at:?}): the contacts differ");
        assert_eq!(s.app.scalar("SELECT count(*) FROM runs WHERE status LIKE 'succeeded%'").await, 1, "trial {trial}");
        assert_eq!(s.app.scalar("SELECT count(*) FROM processed_files").await, 1, "trial {trial}");
    }
    eprintln!("clean pickup {took:?}; PostgreSQL restarted after:\n{}", steps.join("\n"));
}
