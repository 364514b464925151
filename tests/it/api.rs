//! The HTTP API (issue 15, part 2) over a real socket: bearer tokens, a
//! tenant's view limited to its own data, the streamed report and rejects.

use std::io::{Read, Write};

use tokio_util::sync::CancellationToken;

use crate::helpers::{TestApp, spawn_app, stderr};

/// The settings the API of `app` runs with: its spool and archive, and a
/// feed policy granting the test's folder (`file://` drops) and its
/// `secrets/TENANT/` files to feeds applied through the API or the console.
pub fn settings(app: &TestApp, extra: serde_json::Value) -> dropfeed::configuration::Settings {
    let mut value = serde_json::json!({
        "database_url": app.db_url,
        "spool_dir": app.dir.path().join("spool"),
        "archive": { "dir": app.archive_dir() },
        "feed_policy": { "file_roots": [app.dir.path()], "secret_dir": app.dir.path().join("secrets") },
    });
    if let (Some(base), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
        base.extend(more);
    }
    serde_json::from_value(value).expect("test settings")
}

/// The API of `app` on a loopback port; stopped when the token is cancelled.
pub async fn serve_with(app: &TestApp, settings: dropfeed::configuration::Settings) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    tokio::spawn(dropfeed::web::serve(listener, app.pool.clone(), std::sync::Arc::new(settings), stop.clone()));
    (addr, stop)
}

pub async fn serve(app: &TestApp) -> (String, CancellationToken) {
    serve_with(app, settings(app, serde_json::json!({}))).await
}

/// A plain HTTP/1.1 GET: (status, content type, body).
pub async fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let (addr, path, token) = (addr.to_owned(), path.to_owned(), token.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
            })
        };
        let mut body = raw[end + 4..].to_vec();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            body = dechunk(&body);
        }
        (status, header("content-type").unwrap_or_default(), body)
    })
    .await
    .unwrap()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

pub fn token(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(&[&["token", "create", "--name", "t", "--format", "json"], args].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn a_tenant_token_reads_its_own_runs_and_report_and_gets_404_for_another_tenants() {
    let app = spawn_app().await;
    assert!(app.cli(&["tenant", "add", "globex", "--name", "Globex"]).status.success());
    let mut csv = String::from("email;civility\n");
    for i in 0..1200 {
        csv.push_str(&format!("bad-{i};MR\nok{i}@x.ch;\n"));
    }
    let file = app.write("acme.csv", &csv);
    let out = app.cli(&["import", "acme", file.to_str().unwrap(), "--format", "json"]);
    let acme_run = json(&out.stdout)["run_id"].as_str().unwrap().to_owned();
    let other = app.write("globex.csv", "email\nx@globex.example\n");
    let out = app.cli(&["import", "globex", other.to_str().unwrap(), "--format", "json"]);
    let globex_run = json(&out.stdout)["run_id"].as_str().unwrap().to_owned();
    let (addr, _stop) = serve(&app).await;
    let acme = token(&app, &["--role", "tenant", "--tenant", "acme"]);
    let support = token(&app, &["--role", "support"]);

    // No token, a wrong one: 401 as problem+json.
    for t in [None, Some("dft_not-a-real-token-at-all")] {
        let (status, kind, body) = get(&addr, "/api/v1/runs", t).await;
        assert_eq!((status, kind.as_str()), (401, "application/problem+json"));
        assert_eq!(json(&body)["code"], "auth.required");
    }

    let (status, _, body) = get(&addr, "/api/v1/tenants", Some(&acme)).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["tenants"].as_array().unwrap().len(), 1);
    let (_, _, body) = get(&addr, "/api/v1/tenants", Some(&support)).await;
    assert_eq!(json(&body)["tenants"].as_array().unwrap().len(), 2);

    // The report is the CLI's, streamed.
    let (status, kind, body) = get(&addr, &format!("/api/v1/runs/{acme_run}"), Some(&acme)).await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    let cli = app.cli(&["runs", "show", &acme_run, "--format", "json"]);
    assert_eq!(json(&body), json(&cli.stdout));
    assert_eq!(json(&body)["messages"].as_array().unwrap().len(), 2400);

    // Another tenant's objects do not exist for this token.
    for path in [
        format!("/api/v1/runs/{globex_run}"),
        format!("/api/v1/runs/{globex_run}/messages"),
        format!("/api/v1/runs/{globex_run}/rejects.csv"),
        "/api/v1/tenants/globex".to_owned(),
        "/api/v1/runs?tenant=globex".to_owned(),
        format!("/api/v1/runs/{}", uuid::Uuid::now_v7()),
    ] {
        let (status, kind, body) = get(&addr, &path, Some(&acme)).await;
        assert_eq!((status, kind.as_str()), (404, "application/problem+json"), "{path}");
        assert_eq!(json(&body)["code"], "not_found", "{path}");
    }
    let (_, _, body) = get(&addr, "/api/v1/runs", Some(&acme)).await;
    let runs = json(&body)["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], acme_run.as_str());
    let (status, _, _) = get(&addr, &format!("/api/v1/runs/{globex_run}"), Some(&support)).await;
    assert_eq!(status, 200, "support sees every tenant");

    // Messages by page and by rule; the rejects file, whole.
    let (_, _, body) =
        get(&addr, &format!("/api/v1/runs/{acme_run}/messages?code=email.format&limit=1000"), Some(&acme)).await;
    let page = json(&body);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1000);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, "2000:email.format:email", "the page's last message");
    let (_, _, body) = get(
        &addr,
        &format!("/api/v1/runs/{acme_run}/messages?code=email.format&limit=1000&cursor={cursor}"),
        Some(&acme),
    )
    .await;
    let page = json(&body);
    assert_eq!(page["messages"].as_array().unwrap().len(), 200);
    assert!(page["next_cursor"].is_null());
    assert_eq!(page["messages"][0]["line"], 2002);
    let (status, kind, body) = get(&addr, &format!("/api/v1/runs/{acme_run}/rejects.csv"), Some(&acme)).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.trim_start_matches('\u{feff}').lines().count(), 1201, "header and every rejected line");
}

#[tokio::test]
async fn runs_are_paged_newest_first_by_cursor_and_a_revoked_token_stops_at_once() {
    let app = spawn_app().await;
    for i in 0..5 {
        let f = app.write(&format!("f{i}.csv"), format!("email\np{i}@x.ch\n"));
        assert!(app.cli(&["import", "acme", f.to_str().unwrap()]).status.success());
    }
    let (addr, _stop) = serve(&app).await;
    let admin = token(&app, &["--role", "admin"]);
    let (_, _, body) = get(&addr, "/api/v1/runs?limit=2", Some(&admin)).await;
    let first = json(&body);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let mut files: Vec<String> =
        first["runs"].as_array().unwrap().iter().map(|r| r["file"].as_str().unwrap().to_owned()).collect();
    let (_, _, body) = get(&addr, &format!("/api/v1/runs?limit=2&cursor={cursor}"), Some(&admin)).await;
    let second = json(&body);
    files.extend(second["runs"].as_array().unwrap().iter().map(|r| r["file"].as_str().unwrap().to_owned()));
    assert_eq!(files, ["f4.csv", "f3.csv", "f2.csv", "f1.csv"]);
    let (status, _, body) = get(&addr, "/api/v1/runs?status=nonsense", Some(&admin)).await;
    assert_eq!((status, json(&body)["code"].as_str()), (400, Some("query.status")));

    let prefix = &admin[..12];
    assert!(app.cli(&["token", "revoke", prefix]).status.success());
    let (status, _, _) = get(&addr, "/api/v1/runs", Some(&admin)).await;
    assert_eq!(status, 401);
}

/// The API of a test app and an HTTP client for it (no cookie store: the
/// tests set cookies themselves to see their attributes).
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

impl Api {
    pub async fn start(app: &TestApp, extra: serde_json::Value) -> Api {
        let (addr, stop) = serve_with(app, settings(app, extra)).await;
        Api { base: format!("http://{addr}"), http: reqwest::Client::new(), _stop: stop.drop_guard() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, json(&r.bytes().await.unwrap()))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self.http.request(method, self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        (status, if body.is_empty() { serde_json::Value::Null } else { json(&body) })
    }
}
