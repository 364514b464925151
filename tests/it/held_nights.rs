//! A held night is told truthfully once released (issue 28, part): the
//! feed stops saying it holds a file at once, not at its next poll, and the
//! held run says who released it, when, and which run imported it, with no
//! Release button left: whether the release came from the API or the CLI.

use reqwest::Method;

use crate::api::{Api, token};
use crate::console::add_user;
use crate::feeds::{PROFILE, SAMPLE, feed_yaml};
use crate::helpers::{TestApp, spawn_app, stderr};

fn night(n: usize, name: &str) -> String {
    let mut s = "email;first_name\n".to_owned();
    for i in 0..n {
        s.push_str(&format!("p{i}@x.ch;{name}\n"));
    }
    s
}

/// A feed with one good night and one held (a 90 % drop); the held run.
async fn held_night(app: &TestApp, api: &Api, support: &str) -> String {
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    assert!(app.apply_feed(&feed_yaml("nightly-contacts", &drop, "max_row_drop_ratio: 0.4\n")).status.success());
    let run_path = "/api/v1/tenants/acme/feeds/nightly-contacts/run";
    std::fs::write(drop.join("contacts_1.csv"), night(100, "Anne")).unwrap();
    api.send(Method::POST, run_path, support).await;
    std::fs::write(drop.join("contacts_2.csv"), night(10, "Zoé")).unwrap();
    let (_, polled) = api.send(Method::POST, run_path, support).await;
    assert_eq!(polled["files"][0]["outcome"], "held", "{polled}");
    polled["files"][0]["run_id"].as_str().unwrap().to_owned()
}

/// A logged-in browser's view of the console (cookies kept).
async fn console_as_support(app: &TestApp, api: &Api) -> reqwest::Client {
    add_user(app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = [("email", "ops@example.com"), ("password", "a long passphrase"), ("next", "/")];
    assert_eq!(browser.post(api.url("/login")).form(&login).send().await.unwrap().status(), 303);
    browser
}

async fn page(browser: &reqwest::Client, api: &Api, path: &str) -> String {
    let r = browser.get(api.url(path)).header("accept-language", "en").send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

async fn feed_status(api: &Api, support: &str) -> String {
    let (_, feed) = api.get_json("/api/v1/tenants/acme/feeds/nightly-contacts", support).await;
    feed["last_status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_night_released_through_the_api_is_no_longer_told_held_anywhere() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let held = held_night(&app, &api, &support).await;
    let browser = console_as_support(&app, &api).await;
    assert_eq!(feed_status(&api, &support).await, "held_files");
    assert!(page(&browser, &api, "/").await.contains("file held"), "the overview says it before");
    assert!(page(&browser, &api, &format!("/runs/{held}")).await.contains(&format!("/runs/{held}/release")));

    let (status, released) = api.send(Method::POST, &format!("/api/v1/runs/{held}/release"), &support).await;
    assert_eq!(status, 200, "{released}");
    let new_run = released["run_id"].as_str().unwrap();

    assert_eq!(feed_status(&api, &support).await, "ok", "at once, not at the next poll");
    for path in ["/", "/tenants/acme", "/tenants/acme/feeds/nightly-contacts"] {
        assert!(!page(&browser, &api, path).await.contains("file held"), "{path} still says held");
    }
    let run_page = page(&browser, &api, &format!("/runs/{held}")).await;
    assert!(!run_page.contains(&format!("/runs/{held}/release")), "no Release button left");
    assert!(
        run_page.contains("Released, imported by run") && run_page.contains(&format!("/runs/{new_run}")),
        "{run_page}"
    );
    let by = format!("token:{}", &support[..12]);
    assert!(run_page.contains(&by), "who released it: {run_page}");
}

#[tokio::test]
async fn a_night_released_from_the_cli_is_no_longer_told_held_either() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let held = held_night(&app, &api, &support).await;
    let out = app.cli(&["runs", "release", &held]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(feed_status(&api, &support).await, "ok");
    let browser = console_as_support(&app, &api).await;
    let run_page = page(&browser, &api, &format!("/runs/{held}")).await;
    assert!(!run_page.contains(&format!("/runs/{held}/release")));
    assert!(run_page.contains("cli:"), "released by the operator's CLI: {run_page}");
}

#[tokio::test]
async fn the_chart_counts_a_held_file_and_its_release_once_on_the_night_it_arrived() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let held = held_night(&app, &api, &support).await;
    // A dry run of the feed never counts either.
    std::fs::write(app.dir.path().join("outbox/contacts_3.csv"), night(7, "Eve")).unwrap();
    api.send(Method::POST, "/api/v1/tenants/acme/feeds/nightly-contacts/run?dry_run=true", &support).await;
    let (status, _) = api.send(Method::POST, &format!("/api/v1/runs/{held}/release"), &support).await;
    assert_eq!(status, 200);
    let since = chrono::Utc::now() - chrono::Duration::days(31);
    let tenant: i64 = app.scalar("SELECT id FROM tenants WHERE slug = 'acme'").await;
    let nights =
        dropfeed::store::runs::nights(&app.pool, tenant, "nightly-contacts", "Europe/Zurich", since).await.unwrap();
    let rows: i64 = nights.iter().map(|n| n.rows).sum();
    assert_eq!(rows, 100 + 10, "the first night's file and the released one, each once: {nights:?}");
}
