//! Who may reach what through the API (issue 15): every route of the OpenAPI
//! document tried with another tenant's ids, with no, expired, revoked and
//! wrong-role credentials; console sessions with their cookie attributes,
//! CSRF and login throttling; slow clients cut off.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::SecretString;

use crate::api::{Api, json, token};
use crate::helpers::{TestApp, spawn_app, stderr};

const PROFILE: &str = "columns:\n  email: email\nlists: [nightly]\n";

/// Two tenants, acme (the app's) and globex, each with a profile, a feed
/// and a run: the ids a foreign caller tries.
pub async fn two_tenants(app: &TestApp) -> (String, String) {
    assert!(app.cli(&["tenant", "add", "globex", "--name", "Globex"]).status.success());
    let mut runs = Vec::new();
    for tenant in ["acme", "globex"] {
        let sample = app.write(&format!("{tenant}.csv"), "email\nsam@x.ch\n");
        let mapping = app.write("mapping.yaml", PROFILE);
        let out = app.cli(&[
            "import",
            tenant,
            sample.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
            "--save-profile",
            "nightly",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        runs.push(json(&out.stdout)["run_id"].as_str().unwrap().to_owned());
        let folder = app.dir.path().join(format!("drop-{tenant}"));
        std::fs::create_dir_all(&folder).unwrap();
        let out = app.apply_feed(&format!(
            "tenant: {tenant}\nname: nightly\nsource:\n  url: file://{}\n  pattern: \"*.csv\"\n\
             schedule:\n  cron: \"0 30 2 * * *\"\nprofile: nightly\n",
            folder.display()
        ));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    (runs[0].clone(), runs[1].clone())
}

/// Every operation of the document: (method, path template).
async fn operations(api: &Api) -> Vec<(Method, String)> {
    let doc: serde_json::Value =
        api.http.get(api.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    out
}

fn fill(template: &str, tenant: &str, run: &str) -> String {
    template
        .replace("{tenant}", tenant)
        .replace("{feed}", "nightly")
        .replace("{profile}", "nightly")
        .replace("{run}", run)
}

#[tokio::test]
async fn every_route_of_spec_8_2_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let ops: Vec<String> = operations(&api).await.iter().map(|(m, p)| format!("{m} {p}")).collect();
    for expected in [
        "GET /api/v1/tenants",
        "GET /api/v1/tenants/{tenant}",
        "GET /api/v1/tenants/{tenant}/feeds",
        "GET /api/v1/tenants/{tenant}/feeds/{feed}",
        "PUT /api/v1/tenants/{tenant}/feeds/{feed}",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/test",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/run",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/pause",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/resume",
        "GET /api/v1/tenants/{tenant}/profiles",
        "GET /api/v1/tenants/{tenant}/profiles/{profile}",
        "PUT /api/v1/tenants/{tenant}/profiles/{profile}",
        "GET /api/v1/runs",
        "GET /api/v1/runs/{run}",
        "GET /api/v1/runs/{run}/messages",
        "GET /api/v1/runs/{run}/rejects.csv",
        "GET /api/v1/runs/{run}/file",
        "POST /api/v1/runs/{run}/release",
        "POST /api/v1/runs/{run}/replay",
        "POST /api/v1/tenants/{tenant}/imports",
        "GET /api/v1/tenants/{tenant}/contacts.csv",
        "GET /api/v1/audit",
        "POST /api/v1/session",
        "GET /api/v1/session",
        "DELETE /api/v1/session",
    ] {
        assert!(ops.contains(&expected.to_owned()), "{expected} missing from {ops:?}");
    }
    // A client written from the document alone knows the report's shape.
    let doc: serde_json::Value =
        api.http.get(api.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in
        [("Report", "counts"), ("Counts", "inserted"), ("RunPage", "next_cursor"), ("ProblemBody", "code")]
    {
        assert!(schemas[schema]["properties"][field].is_object(), "{schema}.{field} in {}", schemas[schema]);
    }
    let report =
        &doc["paths"]["/api/v1/runs/{run}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(report["$ref"], "#/components/schemas/Report", "{report}");
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

#[tokio::test]
async fn a_tenant_token_gets_404_on_every_route_naming_another_tenants_object() {
    let app = spawn_app().await;
    let (_, globex_run) = two_tenants(&app).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let mut tried = 0;
    for (method, template) in operations(&api).await {
        if !template.contains('{') {
            continue;
        }
        let path = fill(&template, "globex", &globex_run);
        let (status, body) = api.send(method.clone(), &path, &acme).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{method} {path}: {body}");
        tried += 1;
    }
    assert_eq!(tried, 19, "routes with an id");
    // The lists without an id show acme's objects only, or refuse a filter on globex.
    let (status, body) = api.get_json("/api/v1/runs?tenant=globex", &acme).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (_, body) = api.get_json("/api/v1/runs", &acme).await;
    assert!(body["runs"].as_array().unwrap().iter().all(|r| r["tenant"] == "acme"), "{body}");
    let (_, body) = api.get_json("/api/v1/tenants", &acme).await;
    assert_eq!(body["tenants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn no_expired_revoked_or_wrong_role_credentials_reach_any_route() {
    let app = spawn_app().await;
    let (acme_run, _) = two_tenants(&app).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let expired = token(&app, &["--role", "admin"]);
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE prefix = $1")
        .bind(&expired[..12])
        .execute(&app.pool)
        .await
        .unwrap();
    let revoked = token(&app, &["--role", "admin"]);
    assert!(app.cli(&["token", "revoke", &revoked[..12]]).status.success());
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let staff_only = [
        "PUT /api/v1/tenants/{tenant}/feeds/{feed}",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/test",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/run",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/pause",
        "POST /api/v1/tenants/{tenant}/feeds/{feed}/resume",
        "PUT /api/v1/tenants/{tenant}/profiles/{profile}",
        "GET /api/v1/runs/{run}/file",
        "POST /api/v1/runs/{run}/release",
        "POST /api/v1/runs/{run}/replay",
        "GET /api/v1/audit",
        // A tenant imports with a saved profile, or makes a dry run.
        "POST /api/v1/tenants/{tenant}/imports",
    ];
    for (method, template) in operations(&api).await {
        let op = format!("{method} {template}");
        if op == "POST /api/v1/session" {
            continue; // logging in is how a caller without credentials starts
        }
        let path = fill(&template, "acme", &acme_run);
        let r = api.http.request(method.clone(), api.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{op} without credentials");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        for (what, t) in [("expired", &expired), ("revoked", &revoked), ("garbled", &"dft_garbled".to_owned())] {
            let (status, body) = api.send(method.clone(), &path, t).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("auth.required")), "{op} with a {what} token");
        }
        if staff_only.contains(&op.as_str()) {
            let (status, body) = api.send(method.clone(), &path, &acme).await;
            assert_eq!((status, body["code"].as_str()), (403, Some("auth.forbidden")), "{op} as tenant: {body}");
        }
    }
    // Nothing those calls tried changed anything.
    assert_eq!(app.scalar("SELECT count(*) FROM feeds WHERE paused").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 2);
}

async fn add_user(app: &TestApp, email: &str, access: dropfeed::domain::Access, password: &str) {
    let hash = dropfeed::access::hash_password(&SecretString::from(password.to_owned())).unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    dropfeed::store::accounts::add_user(&mut conn, email, &access, &hash).await.unwrap();
}

pub async fn login(api: &Api, email: &str, password: &str) -> reqwest::Response {
    api.http
        .post(api.url("/api/v1/session"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// The `dropfeed_session=...` pair and the whole Set-Cookie line.
pub fn session_cookie(r: &reqwest::Response) -> (String, String) {
    let line = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    (line.split(';').next().unwrap().to_owned(), line)
}

#[tokio::test]
async fn a_session_cookie_is_http_only_and_lax_and_its_changes_need_the_csrf_token() {
    let app = spawn_app().await;
    two_tenants(&app).await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let r = login(&api, "ops@example.com", "a long passphrase").await;
    assert_eq!(r.status(), 200);
    let (cookie, line) = session_cookie(&r);
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Lax") && line.contains("Path=/"), "{line}");
    assert!(!line.contains("Secure"), "plain http: {line}");
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!((me["actor"].as_str(), me["role"].as_str()), (Some("user:ops@example.com"), Some("support")));
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();

    let get = api.http.get(api.url("/api/v1/tenants")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let pause = api.url("/api/v1/tenants/acme/feeds/nightly/pause");
    let r = api.http.post(&pause).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "csrf");
    let r = api.http.post(&pause).header("cookie", &cookie).header("x-csrf-token", "forged").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(!app.feed("nightly").await.paused, "refused changes change nothing");
    let r = api.http.post(&pause).header("cookie", &cookie).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(app.feed("nightly").await.paused);
    let who = app.scalar_text("SELECT actor || ' ' || source FROM audit_log WHERE action = 'feed.pause'").await;
    assert_eq!(who, "user:ops@example.com 127.0.0.1");

    let r = api
        .http
        .delete(api.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(session_cookie(&r).1.contains("Max-Age=0"));
    let r = api.http.get(api.url("/api/v1/tenants")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401, "a session ended at logout is gone");

    // Behind https, the cookie is Secure.
    let https = Api::start(&app, serde_json::json!({"console": {"public_url": "https://imports.example.com"}})).await;
    let r = login(&https, "ops@example.com", "a long passphrase").await;
    assert!(session_cookie(&r).1.contains("Secure"));
}

#[tokio::test]
async fn logins_are_throttled_per_account_and_per_client_address_and_audited() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    add_user(&app, "other@example.com", dropfeed::domain::Access::Support, "another passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    for _ in 0..5 {
        assert_eq!(login(&api, "ops@example.com", "wrong guess").await.status(), 401);
    }
    let r = login(&api, "ops@example.com", "a long passphrase").await;
    assert_eq!(r.status(), 429, "the right password waits too: a guesser learns nothing");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "auth.throttled");
    assert_eq!(
        login(&api, "other@example.com", "another passphrase").await.status(),
        200,
        "another account is not held"
    );
    for i in 0..15 {
        assert_eq!(login(&api, &format!("nobody{i}@example.com"), "wrong guess").await.status(), 401);
    }
    // 20 failures from this address: every account waits.
    assert_eq!(login(&api, "other@example.com", "another passphrase").await.status(), 429);
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE action = 'login.failed' AND source = '127.0.0.1'").await,
        20
    );
    assert_eq!(app.scalar("SELECT count(*) FROM audit_log WHERE action = 'login.succeeded'").await, 1);
    let leaked = app.scalar("SELECT count(*) FROM audit_log WHERE detail::text LIKE '%wrong guess%' OR detail::text LIKE '%passphrase%'").await;
    assert_eq!(leaked, 0, "no password in the audit log");
}

#[tokio::test]
async fn a_client_that_stalls_its_headers_or_its_upload_is_cut_off_and_nothing_is_written() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({"console": {"client_timeout_secs": 1}})).await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let admin = token(&app, &["--role", "admin"]);
    let stalled = tokio::task::spawn_blocking(move || {
        let mut headers = std::net::TcpStream::connect(&addr).unwrap();
        headers.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        headers.write_all(b"GET /api/v1/tenants HTTP/1.1\r\nHost: x\r\n").unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let _ = headers.read_to_end(&mut buf);
        let headers_cut = start.elapsed();

        let mut upload = std::net::TcpStream::connect(&addr).unwrap();
        upload.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            upload,
            "POST /api/v1/tenants/acme/imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
             Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\nemail\nsam@x.ch\n"
        )
        .unwrap();
        let start = Instant::now();
        let mut answer = Vec::new();
        let _ = upload.read_to_end(&mut answer);
        (headers_cut, start.elapsed(), String::from_utf8_lossy(&answer).into_owned())
    })
    .await
    .unwrap();
    let (headers_cut, upload_cut, answer) = stalled;
    assert!(headers_cut < Duration::from_secs(5), "stalled headers cut after {headers_cut:?}");
    assert!(upload_cut < Duration::from_secs(5), "stalled upload cut after {upload_cut:?}");
    assert!(answer.contains("upload.incomplete"), "{answer}");
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 0);
    let spool = std::fs::read_dir(app.dir.path().join("spool")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(spool, 0, "the partial upload is removed");
}
