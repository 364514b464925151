//! Several real daemons (the binary) against one database: every file is
//! imported exactly once, and a daemon killed with SIGKILL has its feeds
//! taken over once its leases expire.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dropfeed::feed::FeedSpec;
use dropfeed::store::feeds;

use crate::feeds::{PROFILE, SAMPLE, feed_yaml};
use crate::helpers::{TestApp, spawn_app, stderr};

fn start_daemon(app: &TestApp, config: &std::path::Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--config", config.to_str().unwrap(), "--log-format", "json", "run"])
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(app.dir.path().join(format!("{name}.log"))).unwrap())
        .spawn()
        .expect("the daemon starts")
}

#[tokio::test]
async fn three_daemons_import_300_feeds_once_each_even_when_one_is_killed() {
    let _heavy = crate::helpers::heavy().await;
    let app = spawn_app().await;
    let mut tenants = vec![app.tenant.clone()];
    for slug in ["beta", "gamma"] {
        let out = app.cli(&["tenant", "add", slug, "--name", slug]);
        assert!(out.status.success(), "{}", stderr(&out));
        tenants.push(dropfeed::store::tenants::find(&app.pool, &slug.parse().unwrap()).await.unwrap());
    }
    let profile = app.write("p.yaml", PROFILE);
    let sample = app.write("s.csv", SAMPLE);
    for t in &tenants {
        let out = app.cli(&[
            "import",
            t.slug.as_str(),
            sample.to_str().unwrap(),
            "--mapping",
            profile.to_str().unwrap(),
            "--dry-run",
            "--save-profile",
            "nightly",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let now = chrono::Utc::now();
    let mut folders = Vec::new();
    for i in 0..300 {
        let t = &tenants[i % 3];
        let folder = app.dir.path().join(format!("drop-{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("contacts_1.csv"), format!("email;first_name\nc{i}@{}.example;Anne\n", t.slug))
            .unwrap();
        let yaml = feed_yaml(&format!("feed-{i}"), &folder, "")
            .replace("tenant: acme", &format!("tenant: {}", t.slug))
            .replace("0 30 2 * * *", "* * * * * *");
        let spec = FeedSpec::from_yaml(&yaml, "generated").unwrap();
        feeds::apply(&app.pool, t.id, &spec, now).await.unwrap();
        folders.push(folder);
    }
    // Each daemon has its own spool folder, as deployed (README): a starting
    // daemon removes what a killed one left in its folder, and in a shared
    // one it would remove another daemon's download.
    let mut daemons: Vec<Child> = (1..=3)
        .map(|n| {
            let config = app.write(
                &format!("replica-{n}.yaml"),
                format!(
                    "spool_dir: {}\nworkers: 4\nhttp:\n  bind: 127.0.0.1:0\nscheduler:\n  tick_ms: 100\n  lease_secs: 3\n  shutdown_grace_secs: 2\n",
                    app.dir.path().join(format!("spool-{n}")).display()
                ),
            );
            start_daemon(&app, &config, &format!("d{n}"))
        })
        .collect();

    let imported = || async { app.scalar("SELECT count(*) FROM processed_files WHERE outcome = 'imported'").await };
    let deadline = Instant::now() + Duration::from_secs(30);
    while imported().await < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGKILL: no clean shutdown, leases left behind, perhaps an import cut mid-way.
    daemons[0].kill().unwrap();
    daemons[0].wait().unwrap();

    // Generous: the guarantee checked is once each, not speed.
    let deadline = Instant::now() + Duration::from_secs(240);
    while imported().await < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for d in daemons.iter_mut().skip(1) {
        assert!(crate::helpers::sigterm(d).success(), "a daemon stopped by SIGTERM exits 0");
    }

    let log = std::fs::read_to_string(app.dir.path().join("d2.log")).unwrap_or_default();
    assert_eq!(imported().await, 300, "daemon log: {}", &log[..log.len().min(3000)]);
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE feed LIKE 'feed-%' AND status = 'succeeded'").await, 300);
    assert_eq!(
        app.scalar("SELECT count(*) FROM (SELECT feed_id FROM processed_files GROUP BY feed_id HAVING count(*) > 1) x")
            .await,
        0
    );
    assert_eq!(app.contact_count().await, 300);
    let disposed = folders
        .iter()
        .filter(|f| f.join("processed/contacts_1.csv").exists() && !f.join("contacts_1.csv").exists())
        .count();
    assert_eq!(disposed, 300, "every file moved to processed/ (the killed daemon's ones by the others)");
    let owners = app
        .scalar(
            "SELECT count(DISTINCT lease_owner) FROM feeds WHERE lease_owner IS NOT NULL AND lease_expires_at > now()",
        )
        .await;
    assert_eq!(owners, 0);
    let log = std::fs::read_to_string(app.dir.path().join("d2.log")).unwrap();
    assert!(log.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "JSON log lines");
    assert!(log.contains("\"run_id\"") && log.contains("\"tenant\""), "run lines carry their span fields");
}

#[tokio::test]
async fn a_second_daemon_on_a_spool_folder_held_by_a_live_one_refuses_to_start_and_names_it() {
    let app = spawn_app().await;
    let config = app.write(
        "shared.yaml",
        format!("spool_dir: {}\nhttp:\n  bind: 127.0.0.1:0\n", app.dir.path().join("spool").display()),
    );
    let mut first = start_daemon(&app, &config, "first");
    let log = app.dir.path().join("first.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("scheduler started") {
        assert!(Instant::now() < deadline, "the first daemon does not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("DATABASE_URL", &app.db_url)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let owner = std::fs::read_to_string(app.dir.path().join("spool/.lock")).unwrap();
    let err = stderr(&second);
    assert!(err.contains("is held by another live process") && err.contains(owner.trim()), "{err}");
    assert!(crate::helpers::sigterm(&mut first).success());
    let mut third = start_daemon(&app, &config, "third");
    let log = app.dir.path().join("third.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("scheduler started") {
        assert!(Instant::now() < deadline, "the folder is free once its daemon is gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(crate::helpers::sigterm(&mut third).success());
}
