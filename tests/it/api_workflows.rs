//! The support and customer workflows through the API (issue 15): a feed
//! applied, tested, run, paused; a held night released and replayed; a
//! sample analysed with a mapping, the profile saved, the file imported and
//! exported; hostile uploads refused with nothing written.

use std::io::{Read, Write};

use reqwest::Method;

use crate::api::{Api, json, token};
use crate::feeds::{PROFILE, SAMPLE, feed_yaml};
use crate::helpers::{spawn_app, stderr};

fn night(n: usize) -> String {
    let mut s = "email;first_name\n".to_owned();
    for i in 0..n {
        s.push_str(&format!("p{i}@x.ch;Anne\n"));
    }
    s
}

async fn put(api: &Api, path: &str, token: &str, content_type: &str, body: String) -> (u16, serde_json::Value) {
    let r = api
        .http
        .put(api.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, json(&r.bytes().await.unwrap()))
}

#[tokio::test]
async fn support_applies_tests_runs_pauses_and_resumes_a_feed_through_the_api() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let path = "/api/v1/tenants/acme/feeds/nightly-contacts";

    // The checks and messages of `feed apply`, every problem at once.
    let bad = feed_yaml("nightly-contacts", &drop, "")
        .replace("0 30 2 * * *", "61 * * * *")
        .replace("  pattern:", "  host_key: SHA256:abc\n  pattern:");
    let (status, body) = put(&api, path, &support, "application/yaml", bad.clone()).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("feed.invalid")), "{body}");
    let errors: Vec<String> =
        body["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let cli = stderr(&app.apply_feed(&bad));
    for e in &errors {
        let rule = e.split_once(": ").unwrap().1;
        assert!(cli.contains(rule), "{rule:?} not in the CLI's {cli}");
    }
    let other = feed_yaml("another-name", &drop, "");
    let (status, body) = put(&api, path, &support, "application/yaml", other).await;
    assert_eq!(status, 422, "{body}");

    let good = feed_yaml("nightly-contacts", &drop, "");
    let (status, body) = put(&api, path, &support, "application/yaml", good.clone()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")), "{body}");
    // JSON is the same document.
    let as_json: serde_json::Value = serde_saphyr::from_str(&good).unwrap();
    let (status, body) = put(&api, path, &support, "application/json", as_json.to_string()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("unchanged")), "{body}");

    let (status, feed) = api.get_json(path, &support).await;
    assert_eq!(status, 200);
    let next: Vec<&str> = feed["next_runs"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(next.len(), 5);
    assert!(next.iter().all(|t| t.contains("T02:30:00+0")), "in the feed's timezone: {next:?}");
    assert_eq!(feed["timezone"], "Europe/Zurich");
    assert_eq!(feed["spec"]["profile"], "nightly");
    let (_, seen_by_tenant) = api.get_json(path, &acme).await;
    assert!(seen_by_tenant["spec"].is_null() && seen_by_tenant["endpoint"].is_null(), "{seen_by_tenant}");
    assert_eq!(seen_by_tenant["next_runs"].as_array().unwrap().len(), 5);

    std::fs::write(drop.join("contacts_1.csv"), night(3)).unwrap();
    let (status, found) = api.send(Method::POST, &format!("{path}/test"), &support).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["files"][0]["name"], "contacts_1.csv");
    let (status, polled) = api.send(Method::POST, &format!("{path}/run"), &support).await;
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["files"][0]["file"], "contacts_1.csv");
    assert_eq!(polled["files"][0]["outcome"], "imported");
    let (_, runs) = api.get_json("/api/v1/runs?feed=nightly-contacts", &acme).await;
    assert_eq!(runs["runs"][0]["inserted"], 3);

    let (status, paused) = api.send(Method::POST, &format!("{path}/pause"), &support).await;
    assert_eq!((status, paused["paused"].as_bool()), (200, Some(true)));
    let (_, resumed) = api.send(Method::POST, &format!("{path}/resume"), &support).await;
    assert_eq!(resumed["paused"], false);

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = $1 ORDER BY id")
        .bind(format!("token:{}", &support[..12]))
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, ["feed.apply", "feed.run", "feed.pause", "feed.resume"]);
}

#[tokio::test]
async fn a_held_night_is_downloaded_released_once_and_replayed_only_when_forced() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let drop = app.dir.path().join("outbox");
    std::fs::create_dir_all(&drop).unwrap();
    assert!(app.apply_feed(&feed_yaml("nightly-contacts", &drop, "max_row_drop_ratio: 0.4\n")).status.success());
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let run_path = "/api/v1/tenants/acme/feeds/nightly-contacts/run";

    std::fs::write(drop.join("contacts_1.csv"), night(100)).unwrap();
    let (_, polled) = api.send(Method::POST, run_path, &support).await;
    assert_eq!(polled["files"][0]["outcome"], "imported", "{polled}");
    let small = night(10).replace("Anne", "Zoé");
    std::fs::write(drop.join("contacts_2.csv"), &small).unwrap();
    let (_, polled) = api.send(Method::POST, run_path, &support).await;
    assert_eq!(polled["files"][0]["outcome"], "held", "{polled}");
    let held = polled["files"][0]["run_id"].as_str().unwrap().to_owned();

    // The file as it was taken, for support only.
    let r = api.http.get(api.url(&format!("/api/v1/runs/{held}/file"))).bearer_auth(&support).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), small);
    let (status, _) = api.send(Method::GET, &format!("/api/v1/runs/{held}/file"), &acme).await;
    assert_eq!(status, 403);

    let (status, released) = api.send(Method::POST, &format!("/api/v1/runs/{held}/release"), &support).await;
    assert_eq!((status, released["status"].as_str()), (200, Some("succeeded")), "{released}");
    assert_eq!(released["counts"]["updated"], 10, "{released}");
    let (status, again) = api.send(Method::POST, &format!("/api/v1/runs/{held}/release"), &support).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("run.state")), "{again}");
    assert!(again["detail"].as_str().unwrap().contains("already released"), "{again}");

    let applied = released["run_id"].as_str().unwrap();
    let (status, refused) = api.send(Method::POST, &format!("/api/v1/runs/{applied}/replay"), &support).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("run.state")), "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("force"), "{refused}");
    let (status, replayed) =
        api.send(Method::POST, &format!("/api/v1/runs/{applied}/replay?force=true"), &support).await;
    assert_eq!((status, replayed["status"].as_str()), (200, Some("succeeded")), "{replayed}");
    let audited = app.scalar("SELECT count(*) FROM audit_log WHERE action IN ('run.release', 'run.replay')").await;
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn a_sample_is_analysed_with_a_mapping_its_profile_saved_then_imported_and_exported() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let csv = "email;prénom\nanne@x.ch;Anne\nnot-an-email;Bob\nzoe@x.ch;Zoé\n";
    let mapping = "columns:\n  email: email\n  prénom: first_name\nlists: [weekly]\n";

    // The dry run answers the report of `dropfeed import --dry-run`.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("sample.csv"))
        .text("mapping", mapping);
    let r = api
        .http
        .post(api.url("/api/v1/tenants/acme/imports?dry_run=true&save_profile=weekly"))
        .bearer_auth(&support)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dry = json(&r.bytes().await.unwrap());
    let file = app.write("sample.csv", csv);
    let map = app.write("weekly.yaml", mapping);
    let cli = app.cli(&[
        "import",
        "acme",
        file.to_str().unwrap(),
        "--mapping",
        map.to_str().unwrap(),
        "--dry-run",
        "--format",
        "json",
    ]);
    let cli = json(&cli.stdout);
    for key in ["status", "counts", "by_code", "columns", "file"] {
        assert_eq!(dry[key], cli[key], "{key}");
    }
    assert_eq!(dry["messages"][0]["line"], 3);
    assert_eq!(dry["profile"]["name"], "weekly", "{dry}");

    // The customer imports with the saved profile, the raw file as body.
    let r = api
        .http
        .post(api.url("/api/v1/tenants/acme/imports?profile=weekly&filename=contacts.csv"))
        .bearer_auth(&acme)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let report = json(&r.bytes().await.unwrap());
    assert_eq!(
        (report["status"].as_str(), report["counts"]["inserted"].as_i64()),
        (Some("succeeded_with_warnings"), Some(2)),
        "{report}"
    );
    assert_eq!(location, format!("/api/v1/runs/{}", report["run_id"].as_str().unwrap()));
    assert_eq!(report["file"]["name"], "contacts.csv");

    let r =
        api.http.get(api.url("/api/v1/tenants/acme/contacts.csv?list=weekly")).bearer_auth(&acme).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let exported = r.text().await.unwrap();
    let cli = app.cli(&["contacts", "export", "acme", "--list", "weekly"]);
    assert_eq!(exported, String::from_utf8(cli.stdout).unwrap());
    assert_eq!(exported.lines().count(), 3, "{exported}");

    // Profiles and their versions.
    let (status, saved) = put(
        &api,
        "/api/v1/tenants/acme/profiles/weekly",
        &support,
        "application/yaml",
        mapping.replace("[weekly]", "[weekly, all]"),
    )
    .await;
    assert_eq!((status, saved["version"].as_i64()), (200, Some(2)), "{saved}");
    let (_, first) = api.get_json("/api/v1/tenants/acme/profiles/weekly?version=1", &acme).await;
    assert_eq!(first["profile"]["lists"], serde_json::json!(["weekly"]));
    assert_eq!(first["versions"].as_array().unwrap().len(), 2);
    let (status, bad) =
        put(&api, "/api/v1/tenants/acme/profiles/weekly", &support, "application/yaml", "columns: [".into()).await;
    assert_eq!((status, bad["code"].as_str()), (422, Some("profile.invalid")), "{bad}");

    let admin = token(&app, &["--role", "admin"]);
    let (_, audit) = api.get_json("/api/v1/audit?tenant=acme", &admin).await;
    let seen: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap()[..6].to_owned(),
                e["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(seen.contains(&("profile.save".into(), "token:".into(), "127.0.0.1".into())), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| s.0 == "import").count(),
        2,
        "the dry run that saved a profile and the import: {seen:?}"
    );
}

#[tokio::test]
async fn a_tenant_analyses_with_any_mapping_but_imports_only_with_its_profiles() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let upload = |query: &str| {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(b"email\nanne@x.ch\n".to_vec()).file_name("a.csv"))
            .text("mapping", "columns:\n  email: email\n");
        api.http
            .post(api.url(&format!("/api/v1/tenants/acme/imports?{query}")))
            .bearer_auth(&acme)
            .multipart(form)
            .send()
    };
    assert_eq!(upload("dry_run=true").await.unwrap().status(), 200);
    assert_eq!(upload("").await.unwrap().status(), 403);
    assert_eq!(upload("dry_run=true&save_profile=mine").await.unwrap().status(), 403);
    assert_eq!(app.contact_count().await, 0);
}

/// A raw request and the status and body of its answer.
fn raw(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn hostile_uploads_get_a_clear_problem_and_write_nothing() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({"limits": {"max_file_bytes": 100_000}})).await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let support = token(&app, &["--role", "support"]);
    let start = |extra: &str| {
        format!(
            "POST /api/v1/tenants/acme/imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {support}\r\nConnection: close\r\n{extra}"
        )
    };
    let truncated: &[u8] =
        b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nemail\nanne@x.ch\n";
    let no_file: &[u8] = b"--XX\r\nContent-Disposition: form-data; name=\"mapping\"\r\n\r\ncolumns: {}\r\n--XX--\r\n";
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "a 10 GiB Content-Length",
            start("Content-Type: text/csv\r\nContent-Length: 10737418240\r\n\r\n"),
            b"email\n".to_vec(),
            413,
            "upload.too_large",
        ),
        (
            "JSON",
            start("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"),
            b"{}".to_vec(),
            415,
            "upload.content_type",
        ),
        (
            "a multipart cut before its closing boundary",
            start(&format!(
                "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: {}\r\n\r\n",
                truncated.len()
            )),
            truncated.to_vec(),
            400,
            "upload.incomplete",
        ),
        (
            "multipart without its boundary",
            start("Content-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\n"),
            b"--".to_vec(),
            415,
            "upload.content_type",
        ),
        (
            "multipart without a file",
            start(&format!(
                "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: {}\r\n\r\n",
                no_file.len()
            )),
            no_file.to_vec(),
            400,
            "upload.missing_file",
        ),
        (
            "a chunked body over max_file_bytes",
            start("Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"),
            {
                let mut b = Vec::new();
                for _ in 0..30 {
                    b.extend_from_slice(format!("{:x}\r\n", 10_000).as_bytes());
                    b.extend_from_slice(&[b'a'; 10_000]);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n\r\n");
                b
            },
            413,
            "upload.too_large",
        ),
    ];
    for (what, head, body, status, code) in cases {
        let addr = addr.clone();
        let (got, text) = tokio::task::spawn_blocking(move || raw(&addr, &head, &body)).await.unwrap();
        assert_eq!(got, status, "{what}: {text}");
        assert!(text.contains("application/problem+json") && text.contains(code), "{what}: {text}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 0);
    let left = std::fs::read_dir(app.dir.path().join("spool")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no partial upload left in the spool");
}
