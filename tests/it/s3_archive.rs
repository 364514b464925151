//! The archive on S3-compatible object storage (a real Garage on loopback):
//! replicas with separate spools and no shared folder hold, release, replay
//! and download through it; a store that is down imports nothing until it
//! is back; an altered object is refused; retention runs on one replica at
//! a time and spares held files.

use std::sync::Arc;
use std::time::Duration;

use dropfeed::clock::SystemClock;
use dropfeed::daemon::Daemon;
use dropfeed::pickup::FileOutcome;
use dropfeed::rerun::Action;
use object_store::ObjectStoreExt;
use tokio_util::sync::CancellationToken;

use crate::feeds::app_with_feed_of;
use crate::helpers::{TestApp, sha256_hex, stderr, stdout};
use crate::servers::garage::Garage;

const PROFILE: &str =
    "columns:\n  email: email\n  first_name: first_name\n  news: consent.newsletter\nlists: [nightly]\n";
const SAMPLE: &str = "email;first_name;news\ns@x.ch;Sam;TRUE\n";
const PREFIX: &str = "nightly/archive";

fn night(n: usize, name: &str) -> String {
    let mut s = "email;first_name;news\n".to_owned();
    for i in 0..n {
        s.push_str(&format!("p{i}@x.ch;{name};TRUE\n"));
    }
    s
}

/// A replica: its own spool folder, the shared S3 archive, nothing else in common.
fn replica(app: &TestApp, garage: &Garage, name: &str) -> Daemon {
    let mut daemon = app.daemon(Arc::new(SystemClock), name);
    daemon.spool_dir = app.dir.path().join(format!("spool-{name}"));
    daemon.archive = garage.archive(PREFIX, 14);
    daemon.scheduler.retry_after_secs = 1;
    daemon
}

async fn poll(daemon: &Daemon, app: &TestApp) -> dropfeed::pickup::PollReport {
    daemon.run_once(&app.feed("nightly-contacts").await, false).await.expect("poll")
}

fn object(app: &TestApp, sha256: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("{PREFIX}/{}/{sha256}", app.tenant.id))
}

/// A feed holding a night that drops 70 % of the rows, and that held run.
async fn held_night(garage: &Garage) -> (TestApp, std::path::PathBuf, uuid::Uuid, String) {
    let (app, drop) = app_with_feed_of(PROFILE, SAMPLE, "max_row_drop_ratio: 0.4\n").await;
    let a = replica(&app, garage, "a");
    std::fs::write(drop.join("contacts_1.csv"), night(100, "Anne")).unwrap();
    assert_eq!(poll(&a, &app).await.imported(), 1);
    let held = night(30, "Zoé");
    std::fs::write(drop.join("contacts_2.csv"), &held).unwrap();
    let run_id = match &poll(&a, &app).await.files[..] {
        [(_, FileOutcome::Held { run_id })] => *run_id,
        other => panic!("expected one held file: {other:?}"),
    };
    (app, drop, run_id, held)
}

#[tokio::test]
async fn a_night_held_on_one_replica_is_released_on_another_through_the_object_store() {
    let garage = Garage::start();
    let (app, _drop, run_id, held) = held_night(&garage).await;
    let sha = sha256_hex(held.as_bytes());
    let stored = garage.client().get(&object(&app, &sha)).await.expect("the held file is in the bucket");
    assert_eq!(stored.bytes().await.unwrap(), held.as_bytes());
    assert!(!app.archive_dir().exists(), "no local archive anywhere");
    for spool in ["spool-a", "spool-b"] {
        let left: Vec<_> = std::fs::read_dir(app.dir.path().join(spool))
            .map(|d| d.map(|e| e.unwrap().file_name()).filter(|n| n != ".lock").collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{spool}: {left:?}");
    }

    // Replica b: another spool folder, the same bucket.
    let b = replica(&app, &garage, "b");
    let new_run =
        dropfeed::rerun::rerun(&app.pool, &b.archive, &b.spool_dir, b.limits, &b.report, run_id, Action::Release)
            .await
            .expect("released on replica b");
    let status = app.scalar_text("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1").await;
    assert_eq!(status, "succeeded", "run {new_run}");
    assert_eq!(app.scalar("SELECT count(*) FROM contacts WHERE first_name = 'Zoé'").await, 30);
    let again =
        dropfeed::rerun::rerun(&app.pool, &b.archive, &b.spool_dir, b.limits, &b.report, run_id, Action::Release).await;
    assert!(format!("{:#}", again.unwrap_err()).contains("already released"));
}

#[tokio::test]
async fn a_run_is_replayed_from_the_cli_on_a_host_with_a_fresh_folder_and_downloaded_from_the_api() {
    let garage = Garage::start();
    let (app, _drop, run_id, held) = held_night(&garage).await;

    // Another host: a fresh working folder, the bucket in its configuration.
    let host = tempfile::tempdir().unwrap();
    let config = host.path().join("dropfeed.yaml");
    let settings = serde_json::json!({
        "database_url": app.db_url,
        "spool_dir": host.path().join("spool"),
        "archive": garage.archive_settings(PREFIX, 14),
    });
    std::fs::write(&config, serde_json::to_string(&settings).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--config", config.to_str().unwrap(), "runs", "replay", &run_id.to_string(), "--format", "json"])
        .env_remove("DATABASE_URL")
        .current_dir(host.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let replayed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
    assert_eq!(replayed["counts"]["updated"], 30);
    let left: Vec<_> = std::fs::read_dir(host.path().join("spool")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the replay's download is removed: {left:?}");

    // `dropfeed serve` on a third host streams the file from the bucket.
    let settings = crate::api::settings(&app, serde_json::json!({ "archive": garage.archive_settings(PREFIX, 14) }));
    let (addr, stop) = crate::api::serve_with(&app, settings).await;
    let token = crate::api::token(&app, &["--role", "support"]);
    let (status, _, body) = crate::api::get(&addr, &format!("/api/v1/runs/{run_id}/file"), Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body, held.as_bytes());
    stop.cancel();
}

#[tokio::test]
async fn a_store_that_is_down_imports_nothing_alerts_and_the_file_is_imported_once_when_it_is_back() {
    let mut garage = Garage::start();
    let (app, drop) = app_with_feed_of(PROFILE, SAMPLE, "report:\n  to: [ops@acme.example]\n  on: [failure]\n").await;
    let daemon = replica(&app, &garage, "a");
    std::fs::write(drop.join("contacts_1.csv"), night(50, "Anne")).unwrap();
    garage.stop();

    let permits = Arc::new(tokio::sync::Semaphore::new(1));
    let tick = || async {
        sqlx::query("UPDATE feeds SET next_run_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
        let tracker = tokio_util::task::TaskTracker::new();
        daemon.tick(&permits, &tracker, &CancellationToken::new()).await.unwrap();
        tracker.close();
        tracker.wait().await;
    };
    tick().await;
    tick().await;
    let feed = app.feed("nightly-contacts").await;
    assert_eq!(feed.last_status.as_deref(), Some("archive.unavailable"), "{:?}", feed.last_error);
    assert!(feed.last_error.as_deref().unwrap_or_default().contains("s3://dropfeed-archive/nightly/archive"));
    assert!(feed.next_run_at < chrono::Utc::now() + chrono::Duration::seconds(30), "retried soon");
    let feed_runs = "SELECT count(*) FROM runs WHERE feed IS NOT NULL";
    assert_eq!(app.scalar(feed_runs).await, 0, "nothing imported without its archived copy");
    assert_eq!(app.scalar("SELECT count(*) FROM processed_files").await, 0);
    assert_eq!(app.contact_count().await, 0);
    assert!(drop.join("contacts_1.csv").exists(), "the file waits on the server");
    let alerts = app.scalar("SELECT count(*) FROM notifications WHERE kind = 'alert' AND code = 'archive.unavailable'");
    assert_eq!(alerts.await, 1, "alerted once for two failed polls");

    garage.resume();
    tick().await;
    assert_eq!(app.feed("nightly-contacts").await.last_status.as_deref(), Some("ok"));
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE status = 'succeeded'").await, 1);
    assert!(drop.join("processed/contacts_1.csv").exists());
    let sha = sha256_hex(night(50, "Anne").as_bytes());
    garage.client().head(&object(&app, &sha)).await.expect("archived before it was imported");
    tick().await;
    assert_eq!(app.scalar(feed_runs).await, 1, "imported once");
}

#[tokio::test]
async fn an_object_altered_in_the_store_is_refused_on_replay_and_breaks_its_download() {
    let garage = Garage::start();
    let (app, _drop, run_id, held) = held_night(&garage).await;
    let key = object(&app, &sha256_hex(held.as_bytes()));
    let forged = held.replace("Zoé", "Eve");
    garage.client().put(&key, forged.clone().into()).await.unwrap();

    let b = replica(&app, &garage, "b");
    let runs_before = app.scalar("SELECT count(*) FROM runs").await;
    let err = dropfeed::rerun::rerun(&app.pool, &b.archive, &b.spool_dir, b.limits, &b.report, run_id, Action::Release)
        .await
        .unwrap_err();
    let archive_err = err.downcast_ref::<dropfeed::archive::ArchiveError>().expect("an archive error");
    assert_eq!(archive_err.code(), "archive.altered", "{err:#}");
    assert!(err.to_string().contains(&sha256_hex(forged.as_bytes())), "{err:#}");
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, runs_before, "no run for a refused file");
    assert_eq!(app.scalar("SELECT count(*) FROM contacts WHERE first_name = 'Eve'").await, 0);

    // The API: the transfer breaks (before the headers when the file is
    // one chunk), the forged content never arrives whole.
    let settings = crate::api::settings(&app, serde_json::json!({ "archive": garage.archive_settings(PREFIX, 14) }));
    let (addr, stop) = crate::api::serve_with(&app, settings).await;
    let token = crate::api::token(&app, &["--role", "support"]);
    let raw = raw_get(&addr, &format!("/api/v1/runs/{run_id}/file"), &token).await;
    assert!(!raw.windows(forged.len()).any(|w| w == forged.as_bytes()), "{}", String::from_utf8_lossy(&raw));
    stop.cancel();
}

/// The raw answer to a GET, however the server ends it.
async fn raw_get(addr: &str, path: &str, token: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await;
    raw
}

#[tokio::test]
async fn retention_on_two_replicas_purges_each_old_object_once_and_keeps_a_held_nights_file() {
    let garage = Garage::start();
    let (app, _drop, run_id, held) = held_night(&garage).await;
    let (a, b) = (replica(&app, &garage, "a"), replica(&app, &garage, "b"));
    let stray = app.write("stray.csv", "email\nx@x.ch\n");
    let stray_sha = sha256_hex(b"email\nx@x.ch\n");
    a.archive.keep(app.tenant.id, &stray_sha, &stray).await.unwrap();
    let imported_sha = sha256_hex(night(100, "Anne").as_bytes());
    let held_sha = sha256_hex(held.as_bytes());
    let later = chrono::Utc::now() + chrono::Duration::days(30);

    // While another replica holds the lease, nobody else purges.
    assert!(dropfeed::store::leases::take(&app.pool, "archive.purge", "c", 60.0).await.unwrap());
    assert_eq!(a.archive.purge(&app.pool, "a", later).await.unwrap(), None);
    dropfeed::store::leases::release(&app.pool, "archive.purge", "c").await.unwrap();

    let (from_a, from_b) = tokio::join!(b.archive.purge(&app.pool, "b", later), a.archive.purge(&app.pool, "a", later));
    let removed = from_a.unwrap().unwrap_or(0) + from_b.unwrap().unwrap_or(0);
    assert_eq!(removed, 2, "the imported night and the stray file, once");
    let client = garage.client();
    assert!(client.head(&object(&app, &imported_sha)).await.is_err());
    assert!(client.head(&object(&app, &stray_sha)).await.is_err());
    client.head(&object(&app, &held_sha)).await.expect("a held night's file outlives retention");

    // Once released, it is purged like any other.
    dropfeed::rerun::rerun(&app.pool, &a.archive, &a.spool_dir, a.limits, &a.report, run_id, Action::Release)
        .await
        .unwrap();
    assert_eq!(a.archive.purge(&app.pool, "a", later).await.unwrap(), Some(1));
    assert!(client.head(&object(&app, &held_sha)).await.is_err());
}
