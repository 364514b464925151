//! The smaller faults of the security review (issue 27): a tenant imports
//! with its saved profile as support validated it, profile names are
//! checked, a feed whose server fails to answer a "run now" is a 502, and a
//! tenant never sees the source's user, host or secret names.

use reqwest::Method;

use crate::api::{Api, token};
use crate::feeds::{PROFILE, SAMPLE};
use crate::helpers::{spawn_app, stderr};

#[tokio::test]
async fn a_tenant_imports_with_its_saved_profile_as_it_is() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let file = "email;first_name\nanne@x.ch;Anne\n";
    let upload = |query: &str| {
        api.http
            .post(api.url(&format!("/api/v1/tenants/acme/imports?profile=nightly{query}")))
            .bearer_auth(&acme)
            .body(file)
            .send()
    };
    for query in ["&mode=replace_list&list=vip", "&list=other", "&kind=mass_update", "&mode=insert_only"] {
        let r = upload(query).await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{query}");
    }
    assert_eq!(app.contact_count().await, 0);
    let r = upload("&mode=insert_only&dry_run=true").await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "a dry run may try another mode");
    let r = upload("").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn profile_names_are_checked_where_a_profile_is_saved() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    for name in ["a%20b", ".hidden", "-x", "%C3%A9t%C3%A9", &"x".repeat(64)] {
        let url = api.url(&format!("/api/v1/tenants/acme/profiles/{name}"));
        let r = api.http.put(url).bearer_auth(&support).body("columns:\n  email: email\n").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422, "{name}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "profile.invalid", "{name}");
    }
    let url = api.url("/api/v1/tenants/acme/imports?dry_run=true&save_profile=a/b");
    let r = api.http.post(url).bearer_auth(&support).body("email\na@x.ch\n").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let file = app.write("f.csv", "email\na@x.ch\n");
    let out = app.cli(&["import", "acme", file.to_str().unwrap(), "--dry-run", "--save-profile", "no spaces"]);
    assert!(!out.status.success() && stderr(&out).contains("--save-profile"), "{}", stderr(&out));
    assert_eq!(app.scalar("SELECT count(*) FROM profiles").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 0, "refused before the import");
}

#[tokio::test]
async fn a_run_now_whose_source_fails_is_a_502_and_a_tenant_never_sees_its_address_or_secret_names() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = app.apply_feed(&format!(
        "tenant: acme\nname: nightly\nsource:\n  url: ftp://crm-export@127.0.0.1:{closed}/out\n  \
         password_env: ACME_SECRET_FTP_PASSWORD\n  connect_timeout_secs: 2\nschedule:\n  cron: \"0 30 2 * * *\"\nprofile: nightly\n"
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let path = "/api/v1/tenants/acme/feeds/nightly";
    // Its secret is not set: the poll fails before it connects.
    let (status, body) = api.send(Method::POST, &format!("{path}/run"), &support).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("source.secret")), "{body}");

    let (_, seen_by_support) = api.get_json(path, &support).await;
    let error = seen_by_support["last_error"].as_str().unwrap();
    assert!(error.contains("ACME_SECRET_FTP_PASSWORD"), "{seen_by_support}");
    let (_, seen_by_tenant) = api.get_json(path, &acme).await;
    let shown = seen_by_tenant.to_string();
    for secret in ["127.0.0.1", "crm-export", "ACME_SECRET_FTP_PASSWORD", &closed.to_string()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(seen_by_tenant["last_status"], "source.secret");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_pages_are_not_cached() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    for path in ["/login", "/api/v1/tenants", "/api/v1/openapi.json", "/nowhere"] {
        let r = api.http.get(api.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    let r = api.http.get(api.url("/static/analyser.js")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "max-age=3600");
}

#[tokio::test]
async fn the_analysers_small_form_fields_are_bounded_whatever_the_client_sends() {
    let app = spawn_app().await;
    crate::console::add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = [("email", "ops@example.com"), ("password", "a long passphrase"), ("next", "/")];
    assert_eq!(browser.post(api.url("/login")).form(&login).send().await.unwrap().status(), 303);
    let huge = reqwest::multipart::Form::new()
        .text("csrf", "x".repeat(8 << 20))
        .part("file", reqwest::multipart::Part::bytes(b"email\na@x.ch\n".to_vec()).file_name("s.csv"));
    let r = browser.post(api.url("/tenants/acme/analyser")).multipart(huge).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let unknown = reqwest::multipart::Form::new().text("other", "x");
    let r = browser.post(api.url("/tenants/acme/analyser")).multipart(unknown).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn slow_readers_of_a_large_rejects_file_do_not_take_the_database_from_other_requests() {
    let app = spawn_app().await;
    let mut csv = String::from("email;first_name\n");
    for i in 0..100_000 {
        csv.push_str(&format!("not-an-address-{i};Anne\n"));
    }
    let file = app.write("bad.csv", &csv);
    let out = app.cli(&["import", "acme", file.to_str().unwrap(), "--format", "json"]);
    let run = crate::api::json(&out.stdout)["run_id"].as_str().unwrap().to_owned();
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let addr = api.base.trim_start_matches("http://").to_owned();
    // More clients than the pool has connections, each asking for the
    // rejects file (about 10 MB) and never reading it.
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::Write;
        write!(
            s,
            "GET /api/v1/runs/{run}/rejects.csv HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {support}\r\n\r\n"
        )
        .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        api.http.get(api.url("/api/v1/tenants")).bearer_auth(&support).send(),
    )
    .await
    .expect("another request is answered while the downloads stall")
    .unwrap();
    assert_eq!(r.status(), 200, "after {:?}", started.elapsed());
    drop(stalled);
}

#[tokio::test]
async fn uploads_cannot_fill_the_spool_a_tenant_past_its_share_is_refused_with_507() {
    let app = spawn_app().await;
    let limits = serde_json::json!({ "limits": { "max_spool_bytes_per_tenant": 4000, "max_spool_bytes": 6000 } });
    let api = Api::start(&app, limits).await;
    let support = token(&app, &["--role", "support"]);
    let mut big = String::from("email\n");
    while big.len() < 5000 {
        big.push_str(&format!("p{}@x.ch\n", big.len()));
    }
    let upload = |body: String| {
        api.http.post(api.url("/api/v1/tenants/acme/imports?dry_run=true")).bearer_auth(&support).body(body).send()
    };
    let r = upload(big).await.unwrap();
    assert_eq!(r.status().as_u16(), 507);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "upload.quota");
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 0);
    let spool = std::fs::read_dir(app.dir.path().join("spool")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(spool, 0, "the refused upload left nothing");
    // Its share is given back: a file that fits is imported.
    let r = upload("email\nanne@x.ch\n".into()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
