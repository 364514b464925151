//! The daemon: schedules, claims and leases, several replicas, shutdown, probes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use dropfeed::clock::{Clock, ManualClock, SystemClock};
use dropfeed::daemon::Tick;
use dropfeed::store::feeds;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::feeds::{app_with_feed, feed_yaml};
use crate::helpers::stderr;

#[tokio::test]
async fn a_run_missed_while_no_daemon_was_up_runs_once_at_start_up() {
    let (app, drop) = app_with_feed("").await;
    std::fs::write(drop.join("contacts_1.csv"), "email;first_name\na@x.ch;Anne\n").unwrap();
    let feed = app.feed("nightly-contacts").await;
    // Three nightly slots have passed since the feed was due.
    let clock = Arc::new(ManualClock::new(feed.next_run_at + chrono::Duration::days(3)));
    let daemon = app.daemon(clock.clone(), "d1");
    let permits = Arc::new(tokio::sync::Semaphore::new(2));
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();

    assert_eq!(daemon.tick(&permits, &tracker, &cancel).await.unwrap(), Tick::Claimed(1));
    tracker.close();
    tracker.wait().await;
    let after = app.feed("nightly-contacts").await;
    assert!(after.next_run_at > clock.now(), "the next run is in the future: {}", after.next_run_at);
    assert!(after.lease_owner.is_none());
    assert_eq!(after.last_status.as_deref(), Some("ok"));
    let tracker = TaskTracker::new();
    assert_eq!(
        daemon.tick(&permits, &tracker, &cancel).await.unwrap(),
        Tick::Idle,
        "missed slots collapse into one run"
    );
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn a_live_lease_is_respected_and_an_expired_one_is_taken_over() {
    let (app, _drop) = app_with_feed("").await;
    let feed = app.feed("nightly-contacts").await;
    let t0 = feed.next_run_at + chrono::Duration::seconds(1);
    let a = feeds::claim_due(&app.pool, t0, "daemon-a", 60.0, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    let b = feeds::claim_due(&app.pool, t0 + chrono::Duration::seconds(30), "daemon-b", 60.0, 10).await.unwrap();
    assert!(b.is_empty(), "daemon-a's lease is live");
    // daemon-a died (SIGKILL): no heartbeat, the lease runs out.
    let b = feeds::claim_due(&app.pool, t0 + chrono::Duration::seconds(61), "daemon-b", 60.0, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].lease_owner.as_deref(), Some("daemon-b"));
    assert!(
        !feeds::heartbeat(&app.pool, feed.id, "daemon-a", t0, 60.0).await.unwrap(),
        "daemon-a learns it lost the feed"
    );
}

#[tokio::test]
async fn two_daemons_on_one_database_import_each_of_50_files_exactly_once() {
    let (app, _drop) = app_with_feed("").await;
    let mut folders = Vec::new();
    for f in 0..10 {
        let folder = app.dir.path().join(format!("drop{f}"));
        std::fs::create_dir_all(&folder).unwrap();
        let yaml = feed_yaml(&format!("feed-{f}"), &folder, "").replace("0 30 2 * * *", "* * * * * *");
        let out = app.apply_feed(&yaml);
        assert!(out.status.success(), "{}", stderr(&out));
        for i in 0..5 {
            std::fs::write(folder.join(format!("contacts_{i}.csv")), format!("email;first_name\nf{f}.i{i}@x.ch;F\n"))
                .unwrap();
        }
        folders.push(folder);
    }
    let stop = CancellationToken::new();
    let mut handles = Vec::new();
    for name in ["replica-1", "replica-2"] {
        // Each replica has its own spool folder, as deployed.
        let mut daemon = app.daemon(Arc::new(SystemClock), name);
        daemon.spool_dir = app.dir.path().join(format!("spool-{name}"));
        let stop = stop.clone();
        handles.push(tokio::spawn(async move { daemon.run(stop.cancelled_owned()).await }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done: usize =
            folders.iter().map(|f| std::fs::read_dir(f.join("processed")).map(|d| d.count()).unwrap_or(0)).sum();
        if done == 50 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE feed LIKE 'feed-%'").await, 50);
    assert_eq!(app.scalar("SELECT count(*) FROM processed_files WHERE outcome = 'imported'").await, 50);
    assert_eq!(app.contact_count().await, 50);
    let owners = app.scalar("SELECT count(DISTINCT lease_owner) FROM feeds").await;
    assert_eq!(owners, 0, "leases released on shutdown");
    assert!(
        folders.iter().all(|f| std::fs::read_dir(f).unwrap().count() == 1),
        "only processed/ is left in each folder"
    );
}

#[tokio::test]
async fn a_stopped_daemon_releases_its_leases_and_returns() {
    let (app, _drop) = app_with_feed("").await;
    let feed = app.feed("nightly-contacts").await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()));
    let daemon = app.daemon(clock, "d1");
    let stop = CancellationToken::new();
    let handle = tokio::spawn(daemon.run(stop.clone().cancelled_owned()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle).await.expect("stops in time").unwrap().unwrap();
    let after = app.feed("nightly-contacts").await;
    assert!(after.lease_owner.is_none());
    assert!(after.next_run_at > feed.next_run_at, "the due run happened");
}

#[tokio::test]
async fn healthz_readyz_and_metrics_answer_on_the_http_endpoint() {
    let (app, _drop) = app_with_feed("").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(dropfeed::http::serve(listener, app.pool.clone(), stop.clone()));
    for (path, expect) in [("/healthz", "200 OK"), ("/readyz", "200 OK"), ("/nope", "404")] {
        let reply = get(addr, path).await;
        assert!(reply.starts_with(&format!("HTTP/1.1 {expect}")), "{path}: {reply}");
    }
    let path = app.write("m.csv", "email\na@x.ch\n");
    app.import(&path, &Default::default()).await;
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.contains("dropfeed_runs_total{") && metrics.contains("status=\"succeeded\""), "{metrics}");
    assert!(
        metrics.contains("dropfeed_rows_total{") && metrics.contains("dropfeed_import_duration_seconds_bucket"),
        "{metrics}"
    );
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
        .execute(&app.pool)
        .await
        .unwrap();
    let reply = get(addr, "/readyz").await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    stop.cancel();
    server.await.unwrap().unwrap();
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn one_tenants_many_due_feeds_do_not_starve_another_tenants_feed() {
    let (app, _drop) = app_with_feed("").await;
    let out = app.cli(&["tenant", "add", "small", "--name", "Small"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // 20 feeds of acme due for an hour, one feed of "small" due just now.
    for f in 0..20 {
        let yaml = feed_yaml(&format!("big-{f}"), app.dir.path(), "");
        assert!(app.apply_feed(&yaml).status.success());
    }
    let small_profile = app.write("p.yaml", crate::feeds::PROFILE);
    let sample = app.write("s.csv", crate::feeds::SAMPLE);
    let out = app.cli(&[
        "import",
        "small",
        sample.to_str().unwrap(),
        "--mapping",
        small_profile.to_str().unwrap(),
        "--dry-run",
        "--save-profile",
        "nightly",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = feed_yaml("nightly", app.dir.path(), "").replace("tenant: acme", "tenant: small");
    let out = app.apply_feed(&yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    let now = Utc::now();
    sqlx::query("UPDATE feeds SET next_run_at = $1 - interval '1 hour' FROM tenants t WHERE t.id = feeds.tenant_id AND t.slug = 'acme'")
        .bind(now)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE feeds SET next_run_at = $1 - interval '1 second' FROM tenants t WHERE t.id = feeds.tenant_id AND t.slug = 'small'")
        .bind(now)
        .execute(&app.pool)
        .await
        .unwrap();
    let claimed = feeds::claim_due(&app.pool, now, "one-worker-pair", 60.0, 2).await.unwrap();
    let tenants: Vec<&str> = claimed.iter().map(|f| f.tenant.as_str()).collect();
    assert!(tenants.contains(&"small"), "the small tenant's feed is in the first claim: {tenants:?}");
}

#[tokio::test]
async fn more_due_feeds_than_workers_are_claimed_as_workers_free_up_not_one_batch_per_tick() {
    let (app, _drop) = app_with_feed("").await;
    for f in 0..12 {
        let folder = app.dir.path().join(format!("drop{f}"));
        std::fs::create_dir_all(&folder).unwrap();
        let out = app.apply_feed(&feed_yaml(&format!("feed-{f}"), &folder, ""));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    sqlx::query("UPDATE feeds SET next_run_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    // Two workers and a tick every 30 s: 13 due feeds would take 7 ticks
    // (3 minutes) if each tick claimed one batch and then slept.
    let mut daemon = app.daemon(Arc::new(SystemClock), "d1");
    daemon.scheduler.tick_ms = 30_000;
    let stop = CancellationToken::new();
    let handle = tokio::spawn(daemon.run(stop.clone().cancelled_owned()));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut polled = 0;
    while std::time::Instant::now() < deadline {
        polled = app.scalar("SELECT count(*) FROM feeds WHERE last_run_at IS NOT NULL").await;
        if polled == 13 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    handle.await.unwrap().unwrap();
    assert_eq!(polled, 13, "every due feed polled within 20 s");
}
