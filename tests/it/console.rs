//! The web console in a real browser (issue 16): Debian's chromium driven
//! through chromedriver (WebDriver) with fantoccini, against the API server
//! and a real database. Each journey saves screenshots of its main pages in
//! `target/console-screenshots/`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use fantoccini::{Client, ClientBuilder, Locator};
use secrecy::SecretString;

use crate::api::{Api, json};
use crate::feeds::{PROFILE, SAMPLE, feed_yaml};
use crate::helpers::{TestApp, spawn_app};

/// A headless chromium behind its own chromedriver; both end with the value.
pub struct Browser {
    pub c: Client,
    driver: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    pub async fn start(base: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver, installed by .ci/run)");
        let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // Without these it tries the network, which this machine has not.
                "args": ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,900"],
            }
        }))
        .unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last = None;
        for _ in 0..50 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => return Browser { c, driver, base: base.to_owned() },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start: {last:?}");
    }

    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default())
    }

    pub async fn text(&self) -> String {
        self.c.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
    }

    /// Clicks what leads to another page, and waits for that page.
    async fn navigate(&self, target: fantoccini::elements::Element) {
        let old = self.c.find(Locator::Css("html")).await.unwrap();
        target.click().await.unwrap();
        for _ in 0..100 {
            if old.tag_name().await.is_err() {
                break; // the old page is gone
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.c.wait().for_element(Locator::Css("body")).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        let target = self.c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        self.navigate(target).await;
    }

    pub async fn click_link(&self, text: &str) {
        let target = self.c.find(Locator::LinkText(text)).await.unwrap_or_else(|e| panic!("link {text:?}: {e}"));
        self.navigate(target).await;
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.c.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn log_in(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form[action='/login'] button").await;
    }

    /// Saves the page as `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.c.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

pub async fn add_user(app: &TestApp, email: &str, access: dropfeed::domain::Access, password: &str) {
    let hash = dropfeed::access::hash_password(&SecretString::from(password.to_owned())).unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    dropfeed::store::accounts::add_user(&mut conn, email, &access, &hash).await.unwrap();
}

fn night(n: usize) -> String {
    let mut s = "email;first_name\n".to_owned();
    for i in 0..n {
        s.push_str(&format!("p{i}@x.ch;Anne\n"));
    }
    s
}

/// An app whose feed held its second night: (app, held run id).
async fn app_with_a_held_night() -> (TestApp, String) {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    assert!(app.apply_feed(&feed_yaml("nightly-contacts", &drop, "max_row_drop_ratio: 0.4\n")).status.success());
    let daemon = app.daemon(Arc::new(dropfeed::clock::SystemClock), "test");
    std::fs::write(drop.join("contacts_1.csv"), night(100)).unwrap();
    daemon.run_once(&app.feed("nightly-contacts").await, false).await.unwrap();
    std::fs::write(drop.join("contacts_2.csv"), night(10).replace("Anne", "Zoé")).unwrap();
    let report = daemon.run_once(&app.feed("nightly-contacts").await, false).await.unwrap();
    let held = match &report.files[..] {
        [(_, dropfeed::pickup::FileOutcome::Held { run_id })] => run_id.to_string(),
        other => panic!("expected a held file: {other:?}"),
    };
    (app, held)
}

#[tokio::test]
async fn support_sees_the_held_night_first_releases_it_once_and_logs_out() {
    let (app, held) = app_with_a_held_night().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;

    // Unknown: any page leads to the login, and back once logged in.
    b.goto(&format!("/runs/{held}")).await;
    assert!(b.path().await.starts_with("/login?next="), "{}", b.path().await);
    b.fill("#email", "ops@example.com").await;
    b.fill("#password", "a long passphrase").await;
    b.click("form[action='/login'] button").await;
    assert_eq!(b.path().await, format!("/runs/{held}"));

    b.goto("/").await;
    // The browser asks for English; the person chooses French, kept in a cookie.
    assert!(b.text().await.contains("Needs attention"));
    b.click_link("Français").await;
    assert_eq!(b.path().await, "/");
    let overview = b.text().await;
    assert!(overview.contains("fichier retenu") && overview.contains("nightly-contacts"), "{overview}");
    assert!(overview.find("À traiter").unwrap() < overview.find("fichier retenu").unwrap());
    b.screenshot("overview").await;

    b.goto(&format!("/runs/{held}")).await;
    let page = b.text().await;
    assert!(page.contains("retenue") && page.contains("guard.row_drop"), "{page}");
    b.screenshot("run-held").await;
    b.click_link("Libérer").await;
    assert!(b.text().await.contains("n'est libéré qu'une fois"));
    b.screenshot("release-confirm").await;
    b.click("#confirm button[type=submit]").await;
    let released = b.text().await;
    assert!(released.contains("réussie") && released.contains("Réimporte l'exécution"), "{released}");
    assert_eq!(app.scalar("SELECT count(*) FROM contacts WHERE first_name = 'Zoé'").await, 10);

    // The second click is refused with a message, and nothing is imported twice.
    b.goto(&format!("/runs/{held}/release")).await;
    b.click("#confirm button[type=submit]").await;
    let refused = b.text().await;
    assert!(refused.contains("Refusé") && refused.contains("already released"), "{refused}");
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE rerun_of IS NOT NULL").await, 1);

    b.click("form[action='/logout'] button").await;
    assert!(b.path().await.starts_with("/login"));
    b.goto("/runs").await;
    assert!(b.path().await.starts_with("/login"), "a logged-out browser is asked to log in again");
    b.close().await;
}

#[tokio::test]
async fn a_tenant_user_sees_its_own_runs_only_and_no_credential_in_any_page() {
    let (app, held) = app_with_a_held_night().await;
    assert!(app.cli(&["tenant", "add", "globex", "--name", "Globex"]).status.success());
    let other = app.write("globex.csv", "email\nx@globex.example\n");
    let out = app.cli(&["import", "globex", other.to_str().unwrap(), "--format", "json"]);
    let globex_run = json(&out.stdout)["run_id"].as_str().unwrap().to_owned();
    let acme_id = app.tenant.id;
    add_user(&app, "crm@acme.example", dropfeed::domain::Access::Tenant(acme_id), "the customer's passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("crm@acme.example", "the customer's passphrase").await;

    b.goto("/runs").await;
    let list = b.text().await;
    assert!(list.contains("contacts_2.csv") && !list.contains("globex.csv"), "{list}");
    b.screenshot("runs-tenant").await;
    b.goto(&format!("/runs/{globex_run}")).await;
    assert!(b.text().await.contains("Page introuvable"), "another tenant's run is not found");
    b.goto("/runs?tenant=globex").await;
    assert!(b.text().await.contains("Page introuvable"));

    // Its own held run shows, without the staff's buttons.
    b.goto(&format!("/runs/{held}")).await;
    let page = b.text().await;
    assert!(page.contains("retenue") && !page.contains("Libérer"), "{page}");
    b.goto(&format!("/runs/{held}/release")).await;
    assert!(b.text().await.contains("Votre rôle ne permet pas"));

    for path in ["/", "/runs", &format!("/runs/{held}")] {
        b.goto(path).await;
        let source = b.c.source().await.unwrap();
        for secret in ["the customer's passphrase", "password_env", "dft_", "dropfeed_session="] {
            assert!(!source.contains(secret), "{path} shows {secret:?}");
        }
    }
    b.close().await;
}

#[tokio::test]
async fn a_console_form_posted_without_its_csrf_token_is_refused_and_changes_nothing() {
    let (app, held) = app_with_a_held_night().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(api.url("/login"))
        .form(&[("email", "ops@example.com"), ("password", "a long passphrase"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    for form in [vec![], vec![("csrf", "forged")]] {
        let r = client
            .post(api.url(&format!("/runs/{held}/release")))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = client.post(api.url("/logout")).header("cookie", &cookie).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    assert_eq!(app.scalar("SELECT count(*) FROM runs WHERE rerun_of IS NOT NULL").await, 0);
    let r = client.get(api.url("/runs")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200, "the session still works: the forged logout did nothing");
}

#[tokio::test]
async fn support_edits_tests_runs_and_pauses_a_feed_from_its_page_and_sees_its_nights() {
    let (app, _) = app_with_a_held_night().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("ops@example.com", "a long passphrase").await;
    b.goto("/lang/fr").await;

    b.goto("/tenants/acme").await;
    let tenant = b.text().await;
    assert!(tenant.contains("nightly-contacts") && tenant.contains("Les 30 dernières nuits"), "{tenant}");
    let svg = b.c.find(Locator::Css("svg.chart")).await.unwrap().html(false).await.unwrap();
    assert!(svg.contains("110 lignes, 100 créés"), "tonight's two runs are one bar: {svg}");
    b.screenshot("tenant-feeds").await;

    b.click_link("nightly-contacts").await;
    let page = b.text().await;
    assert!(page.contains("Prochaines exécutions") && page.contains("02:30"), "{page}");
    let source = b.c.source().await.unwrap();
    assert!(source.contains("max_row_drop_ratio"), "support sees the settings");

    // A YAML mistake is shown with the message of `feed apply`, and nothing changes.
    let yaml = b.c.find(Locator::Css("#yaml")).await.unwrap().prop("value").await.unwrap().unwrap();
    b.fill("#yaml", &yaml.replace("0 30 2 * * *", "0 61 2 * * *")).await;
    b.click("#apply button").await;
    let refused = b.text().await;
    assert!(refused.contains("Rien n'a été appliqué") && refused.contains("schedule"), "{refused}");
    assert_eq!(app.feed("nightly-contacts").await.spec.schedule.cron, "0 30 2 * * *");
    b.fill("#yaml", &yaml.replace("0 30 2 * * *", "0 45 3 * * *")).await;
    b.click("#apply button").await;
    assert!(b.text().await.contains("Appliqué : updated"));
    assert_eq!(app.feed("nightly-contacts").await.spec.schedule.cron, "0 45 3 * * *");

    let drop = app.dir.path().join("outbox");
    std::fs::write(drop.join("contacts_3.csv"), night(95)).unwrap();
    b.click("#test button").await;
    let tested = b.text().await;
    assert!(tested.contains("contacts_3.csv") && tested.contains("Connecté à file://"), "{tested}");
    b.screenshot("feed-tested").await;
    b.click("#run button").await;
    let ran = b.text().await;
    assert!(ran.contains("Exécution terminée") && ran.contains("imported"), "{ran}");
    b.click_link("contacts_3.csv").await;
    assert!(b.text().await.contains("réussie"), "the run's report is one click away");

    b.goto("/tenants/acme/feeds/nightly-contacts").await;
    b.click("#pause button").await;
    assert!(app.feed("nightly-contacts").await.paused);
    assert!(b.text().await.contains("en pause"));
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE actor = 'user:ops@example.com' AND action LIKE 'feed.%' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, ["feed.apply", "feed.run", "feed.pause"]);
    b.close().await;
}

#[tokio::test]
async fn support_analyses_a_sample_sees_its_rejected_lines_saves_the_profile_and_imports_it() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("ops@example.com", "a long passphrase").await;
    b.goto("/lang/fr").await;
    let sample = app.write(
        "crm-export.csv",
        "email;first_name;nom\nanne@x.ch;Anne;Martin\nnot-an-address;Bob;Roux\nzoe@x.ch;Zoé;Favre\nalso@bad;Eve;Blanc\n",
    );

    b.goto("/tenants/acme/analyser").await;
    // The page's script runs under the Content-Security-Policy (a file of
    // ours, no inline script): it marks the page and sends the upload.
    let js = b.c.execute("return document.documentElement.dataset.js || ''", vec![]).await.unwrap();
    assert_eq!(js, "on", "analyser.js ran under the policy");
    b.c.find(Locator::Css("#file")).await.unwrap().send_keys(sample.to_str().unwrap()).await.unwrap();
    b.click("#upload button").await;
    b.c.wait().for_element(Locator::Css("#analysis")).await.unwrap();
    let analysed = b.text().await;
    assert!(analysed.contains("essai à blanc") && analysed.contains("email.format"), "{analysed}");
    assert!(analysed.contains("Ligne 3") && analysed.contains("Ligne 5"), "the rejected line numbers: {analysed}");
    let yaml = b.c.find(Locator::Css("#yaml")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(
        yaml.contains("email: email") && yaml.contains("first_name: first_name") && yaml.contains("nom: null"),
        "prefilled from the header, as the CLI maps it: {yaml}"
    );
    b.screenshot("analyser").await;
    assert_eq!(app.contact_count().await, 0, "an analysis writes nothing");

    // Edit the mapping (the last name too), analyse again, save, import.
    b.fill("#yaml", &yaml.replace("nom: null", "nom: last_name")).await;
    b.click("#again button[type=submit]").await;
    assert!(b.text().await.contains("essai à blanc"));
    b.fill("#name", "crm-weekly").await;
    b.click("#save").await;
    assert!(b.text().await.contains("Profil enregistré : crm-weekly v1"), "{}", b.text().await);
    let saved = app.cli(&["profile", "show", "acme", "crm-weekly"]);
    assert!(
        String::from_utf8_lossy(&saved.stdout).contains("nom: last_name"),
        "{}",
        String::from_utf8_lossy(&saved.stdout)
    );
    b.click("#import").await;
    let report = b.text().await;
    assert!(report.contains("réussie avec avertissements") || report.contains("réussie"), "{report}");
    assert_eq!(app.contact_count().await, 2, "{report}");
    assert_eq!(app.scalar_text("SELECT last_name FROM contacts WHERE email = 'zoe@x.ch'").await, "Favre");
    b.close().await;
}

#[tokio::test]
async fn support_compares_two_versions_of_a_profile_side_by_side() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    app.save_profile("nightly", &PROFILE.replace("mode: upsert", "mode: insert_only"), SAMPLE).await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("ops@example.com", "a long passphrase").await;
    b.goto("/lang/fr").await;
    b.goto("/tenants/acme/profiles").await;
    b.click_link("nightly").await;
    let changed = b.c.find(Locator::Css("table.diff tr.changed")).await.unwrap().text().await.unwrap();
    assert!(changed.contains("mode: upsert") && changed.contains("mode: insert_only"), "{changed}");
    b.screenshot("profile-diff").await;
    b.close().await;
}

#[tokio::test]
async fn an_admin_creates_a_token_shown_once_revokes_it_and_reads_the_audit_log() {
    let app = spawn_app().await;
    add_user(&app, "root@example.com", dropfeed::domain::Access::Admin, "the admin's passphrase").await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("root@example.com", "the admin's passphrase").await;
    b.goto("/lang/en").await;
    b.goto("/admin").await;
    b.fill("#t-name", "crm-sync").await;
    b.c.find(Locator::Css("#t-tenant")).await.unwrap().select_by_value("acme").await.unwrap();
    b.click("#create-token button").await;
    let token = b.c.find(Locator::Css("#new-token")).await.unwrap().text().await.unwrap();
    assert!(token.starts_with("dft_") && token.len() == 47, "{token}");
    // It works, and is never shown again.
    let (status, _) = api.get_json("/api/v1/runs", &token).await;
    assert_eq!(status, 200);
    b.goto("/admin").await;
    assert!(!b.c.source().await.unwrap().contains(&token), "shown once");
    b.click(&format!("form[action='/admin/tokens/revoke'] input[value='{}'] ~ button", &token[..12])).await;
    let (status, _) = api.get_json("/api/v1/runs", &token).await;
    assert_eq!(status, 401, "revoked from the console");

    b.goto("/admin/audit").await;
    let log = b.text().await;
    assert!(
        log.contains("token.create") && log.contains("token.revoke") && log.contains("user:root@example.com"),
        "{log}"
    );
    b.screenshot("audit").await;
    b.click("form[action='/logout'] button").await;

    b.log_in("ops@example.com", "a long passphrase").await;
    b.goto("/lang/en").await;
    b.goto("/admin").await;
    assert!(b.text().await.contains("Your role does not allow this"));
    b.close().await;
}

#[tokio::test]
async fn support_analyses_saves_the_profile_applies_an_sftp_feed_for_it_and_runs_it_now() {
    let server = crate::servers::sshd::SshServer::start();
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let b = Browser::start(&api.base).await;
    b.log_in("ops@example.com", "a long passphrase").await;
    b.goto("/lang/fr").await;

    let sample = app.write("sample.csv", "email;first_name\nanne@x.ch;Anne\nbroken;Bob\n");
    b.goto("/tenants/acme/analyser").await;
    // The page's script runs under the Content-Security-Policy (a file of
    // ours, no inline script): it marks the page and sends the upload.
    let js = b.c.execute("return document.documentElement.dataset.js || ''", vec![]).await.unwrap();
    assert_eq!(js, "on", "analyser.js ran under the policy");
    b.c.find(Locator::Css("#file")).await.unwrap().send_keys(sample.to_str().unwrap()).await.unwrap();
    b.click("#upload button").await;
    b.c.wait().for_element(Locator::Css("#analysis")).await.unwrap();
    let analysed = b.text().await;
    assert!(analysed.contains("email.format") && analysed.contains("Ligne 3"), "{analysed}");
    b.fill("#name", "crm-nightly").await;
    b.click("#save").await;
    assert!(b.text().await.contains("Profil enregistré : crm-nightly v1"));

    // The feed, written in the console, over the test sshd.
    // Where feed_policy.secret_dir grants acme's feeds their files.
    std::fs::create_dir_all(app.dir.path().join("secrets/acme")).unwrap();
    let password = app.write("secrets/acme/sftp-password", &server.password);
    let yaml = format!(
        "tenant: acme\nname: sftp-nightly\nsource:\n  url: {}\n  password_file: {}\n  host_key: \"{}\"\n  pattern: \"contacts_*.csv\"\n\
         schedule:\n  cron: \"0 30 2 * * *\"\npickup:\n  min_age_secs: 0\n  stable_secs: 0\nprofile: crm-nightly\n",
        server.url(),
        password.display(),
        server.host_key_fingerprint
    );
    b.goto("/tenants/acme").await;
    b.fill("#new-yaml", &yaml.replace("crm-nightly\n", "no-such-profile\n")).await;
    b.click("#create-feed button").await;
    assert!(b.text().await.contains("no-such-profile"), "the profile is checked");
    b.fill("#new-yaml", &yaml).await;
    b.click("#create-feed button").await;
    assert_eq!(b.path().await, "/tenants/acme/feeds/sftp-nightly");

    server.put("contacts_20261204.csv", "email;first_name\nzoe@x.ch;Zoé\nmax@x.ch;Max\n");
    b.click("#test button").await;
    let tested = b.text().await;
    assert!(tested.contains(&server.host_key_fingerprint) && tested.contains("contacts_20261204.csv"), "{tested}");
    b.click("#run button").await;
    assert!(b.text().await.contains("imported"));
    b.screenshot("feed-run").await;
    b.goto("/runs?feed=sftp-nightly").await;
    let runs = b.text().await;
    assert!(runs.contains("contacts_20261204.csv") && runs.contains("réussie"), "{runs}");
    assert_eq!(app.contact_count().await, 2);
    b.close().await;
}
