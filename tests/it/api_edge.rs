//! The API's edge (issue 26), by hand-made requests around each finding of
//! the Schemathesis run: no client input answers 500, every error (the
//! framework's own rejections included) is a problem with a stable code, a
//! French header imports through the API, and the OpenAPI document is valid
//! OpenAPI 3.1 that lists what each operation answers.

use reqwest::Method;

use crate::api::{Api, json, token};
use crate::helpers::{TestApp, spawn_app, stderr};

/// acme's run (globex has one too), profile `nightly` and feed `nightly`.
async fn acme_with_a_run(app: &TestApp) -> String {
    crate::api_access::two_tenants(app).await.0
}

/// Sends a request; (status, content type, body as JSON or Null).
async fn call(api: &Api, req: reqwest::RequestBuilder) -> (u16, String, serde_json::Value) {
    let _ = api;
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = r.bytes().await.unwrap();
    let value = if kind.contains("json") { json(&body) } else { serde_json::Value::Null };
    (status, kind, value)
}

fn assert_problem(what: &str, got: &(u16, String, serde_json::Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{what}: {:?}", got.2);
    assert_eq!(got.1, "application/problem+json", "{what}");
    assert_eq!(got.2["code"], code, "{what}: {:?}", got.2);
}

#[tokio::test]
async fn a_nul_in_any_parameter_is_a_400_naming_it_and_never_reaches_the_database() {
    let app = spawn_app().await;
    let run = acme_with_a_run(&app).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let admin = token(&app, &["--role", "admin"]);
    let cases = [
        (Method::GET, "/api/v1/runs?feed=a%00b".to_owned(), "query.nul", "`feed`"),
        (Method::GET, format!("/api/v1/runs/{run}/messages?code=a%00b"), "query.nul", "`code`"),
        (Method::GET, format!("/api/v1/runs/{run}/messages?cursor=1:%00:"), "query.nul", "`cursor`"),
        (Method::GET, "/api/v1/tenants/acme/feeds/a%00b".to_owned(), "path.nul", "`feed`"),
        (Method::GET, "/api/v1/tenants/acme/profiles/a%00b".to_owned(), "path.nul", "`profile`"),
        (Method::PUT, "/api/v1/tenants/acme/profiles/a%00b".to_owned(), "path.nul", "`profile`"),
        (Method::GET, "/api/v1/tenants/acme/contacts.csv?list=a%00b".to_owned(), "query.nul", "`list`"),
        (
            Method::POST,
            "/api/v1/tenants/acme/imports?dry_run=true&filename=a%00.csv".to_owned(),
            "query.nul",
            "`filename`",
        ),
        (Method::GET, "/api/v1/audit?tenant=%00".to_owned(), "query.nul", "`tenant`"),
    ];
    for (method, path, code, name) in cases {
        let got =
            call(&api, api.http.request(method.clone(), api.url(&path)).bearer_auth(&admin).body("email\n")).await;
        assert_problem(&path, &got, 400, code);
        assert!(got.2["detail"].as_str().unwrap().contains(name), "{path}: {:?}", got.2);
    }
    // In a document that would be stored: the profile's YAML, the feed's.
    let got = call(
        &api,
        api.http
            .put(api.url("/api/v1/tenants/acme/profiles/p"))
            .bearer_auth(&admin)
            .body("columns:\n  \"a\\0\": email\n"),
    )
    .await;
    assert_problem("profile with a NUL", &got, 422, "profile.invalid");
    assert!(got.2["detail"].as_str().unwrap().contains("NUL"), "{:?}", got.2);
    let feed = "tenant: acme\nname: nightly\nsource:\n  url: \"file:///tmp/a\\0b\"\n  pattern: \"*.csv\"\n\
                schedule:\n  cron: \"0 30 2 * * *\"\nprofile: nightly\n";
    let got =
        call(&api, api.http.put(api.url("/api/v1/tenants/acme/feeds/nightly")).bearer_auth(&admin).body(feed)).await;
    assert_problem("feed with a NUL", &got, 422, "feed.invalid");
    // A multipart file name.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"email\na@x.ch\n".to_vec()).file_name("a\0.csv"));
    let got = call(
        &api,
        api.http.post(api.url("/api/v1/tenants/acme/imports?dry_run=true")).bearer_auth(&admin).multipart(form),
    )
    .await;
    // multer refuses a part header holding a NUL before the file name is read.
    assert_eq!((got.0, got.1.as_str()), (400, "application/problem+json"), "{:?}", got.2);
    // And the login's JSON body.
    let got = call(
        &api,
        api.http.post(api.url("/api/v1/session")).json(&serde_json::json!({"email": "a\0@x.ch", "password": "x"})),
    )
    .await;
    assert_problem("login with a NUL", &got, 400, "body.nul");
    assert_eq!(app.scalar("SELECT count(*) FROM runs").await, 2, "nothing was imported");
}

#[tokio::test]
async fn the_frameworks_own_rejections_are_problems_with_a_code() {
    let app = spawn_app().await;
    let run = acme_with_a_run(&app).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let admin = token(&app, &["--role", "admin"]);
    let get = |path: &str| api.http.get(api.url(path)).bearer_auth(&admin);
    assert_problem("limit not a number", &call(&api, get("/api/v1/runs?limit=abc")).await, 400, "query.invalid");
    assert_problem("since not a time", &call(&api, get("/api/v1/runs?since=yesterday")).await, 400, "query.invalid");
    for limit in ["0", "501", "-3"] {
        let got = call(&api, get(&format!("/api/v1/runs?limit={limit}"))).await;
        assert_problem("limit out of range", &got, 400, "query.limit");
    }
    // A cursor whose time chrono holds but PostgreSQL does not (year -5951).
    let cursor = format!("-250000000000000000_{run}");
    let got = call(&api, get(&format!("/api/v1/runs?cursor={cursor}"))).await;
    assert_problem("a cursor out of PostgreSQL's range", &got, 400, "query.cursor");
    let got = call(&api, get(&format!("/api/v1/runs/{run}/messages?limit=5001"))).await;
    assert_problem("messages limit", &got, 400, "query.limit");
    assert_problem("audit limit", &call(&api, get("/api/v1/audit?limit=0")).await, 400, "query.limit");
    let got = call(&api, get("/api/v1/tenants/acme/profiles/nightly?version=x")).await;
    assert_problem("version not a number", &got, 400, "query.invalid");
    let got = call(&api, get(&format!("/api/v1/runs/{run}/replay?force=maybe"))).await;
    assert_problem("a GET on a POST route", &got, 405, "method.not_allowed");
    let got =
        call(&api, api.http.post(api.url(&format!("/api/v1/runs/{run}/replay?force=maybe"))).bearer_auth(&admin)).await;
    assert_problem("force not a boolean", &got, 400, "query.invalid");
    let got = call(&api, api.http.get(api.url("/api/v1/tenants/%FF%FE")).bearer_auth(&admin)).await;
    assert_problem("a path that is not UTF-8", &got, 400, "path.invalid");

    let login = api.url("/api/v1/session");
    let got = call(&api, api.http.post(&login).header("content-type", "application/json").body("{not json")).await;
    assert_problem("a body that is not JSON", &got, 400, "body.json");
    let got = call(&api, api.http.post(&login).header("content-type", "text/plain").body("{}")).await;
    assert_problem("not sent as JSON", &got, 415, "body.content_type");
    let got = call(&api, api.http.post(&login).json(&serde_json::json!({"email": 3}))).await;
    assert_problem("JSON of another shape", &got, 422, "body.json");
    let got = call(&api, api.http.post(&login).json(&serde_json::json!({"a": "x".repeat(3 << 20)}))).await;
    assert_problem("a body over the limit", &got, 413, "body.too_large");
    let got = call(&api, api.http.delete(api.url("/api/v1/tenants")).bearer_auth(&admin)).await;
    assert_problem("DELETE on a GET route", &got, 405, "method.not_allowed");
    let got = call(&api, api.http.get(api.url("/api/v1/nothing-here")).bearer_auth(&admin)).await;
    assert_problem("an unknown route", &got, 404, "not_found");
}

#[tokio::test]
async fn a_french_header_imports_through_the_api_as_contacts_and_as_a_mass_update() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let admin = token(&app, &["--role", "admin"]);
    // "Téléphone": byte 5 falls inside a character, where the [old]/[new]
    // prefix test used to cut it and panic.
    let file = "email;Téléphone;[old] consent.sms;[new] consent.sms\nanne@x.ch;+41 22 000 00 00;F;T\n";
    for kind in ["contacts", "mass_update"] {
        let url = api.url(&format!("/api/v1/tenants/acme/imports?dry_run=true&kind={kind}"));
        let (status, kind_header, body) = call(&api, api.http.post(url).bearer_auth(&admin).body(file)).await;
        assert_eq!((status, kind_header.as_str()), (200, "application/json"), "{kind}: {body:?}");
        assert_eq!(body["status"], "dry_run", "{kind}: {body:?}");
    }
    let url = api.url("/api/v1/tenants/acme/imports?dry_run=true&kind=sideways");
    let got = call(&api, api.http.post(url).bearer_auth(&admin).body(file)).await;
    assert_problem("an unknown kind", &got, 400, "query.invalid");
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1_and_lists_each_operations_errors_as_problems() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let doc: serde_json::Value =
        api.http.get(api.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();

    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} repeats");
            let responses = op["responses"].as_object().unwrap();
            for status in ["401", "500"] {
                assert!(
                    path == "/api/v1/session" && method == "post" || responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let params = |path: &str, method: &str| doc["paths"][path][method]["parameters"].as_array().unwrap().clone();
    let schema_of = |params: &[serde_json::Value], name: &str| {
        params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name}"))["schema"].clone()
    };
    let imports = params("/api/v1/tenants/{tenant}/imports", "post");
    let runs = params("/api/v1/runs", "get");
    let resolve = |schema: serde_json::Value| -> serde_json::Value {
        let reference = serde_json::to_string(&schema).unwrap();
        let name = reference.split("#/components/schemas/").nth(1).unwrap().split('"').next().unwrap().to_owned();
        doc["components"]["schemas"][name].clone()
    };
    for (params, name, value) in
        [(&imports, "mode", "replace_list"), (&imports, "kind", "mass_update"), (&runs, "status", "held")]
    {
        let schema = resolve(schema_of(params, name));
        assert!(serde_json::to_string(&schema).unwrap().contains(value), "{name} is not an enum: {schema}");
    }
    assert_eq!(schema_of(&runs, "limit")["maximum"], 500);

    // The reference validator of the OpenAPI Initiative's schemas.
    let file = app.write("openapi.json", serde_json::to_vec(&doc).unwrap());
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1", file.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator==0.9.0; .ci/run installs it): {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[tokio::test]
async fn the_console_answers_a_nul_in_a_path_or_a_form_field_with_a_400_page() {
    let app = spawn_app().await;
    acme_with_a_run(&app).await;
    let api = Api::start(&app, serde_json::json!({})).await;
    crate::console::add_user(&app, "admin@x.ch", dropfeed::domain::Access::Admin, "a long enough password").await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = [("email", "admin@x.ch"), ("password", "a long enough password"), ("next", "/")];
    let r = browser.post(api.url("/login")).form(&login).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "logged in");

    for path in ["/tenants/acme/feeds/a%00b", "/tenants/acme/profiles/a%00b", "/runs?feed=%00"] {
        let r = browser.get(api.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        assert!(r.text().await.unwrap().contains("NUL"), "{path}");
    }
    let form = [("csrf", "x"), ("name", "a\0b"), ("role", "admin"), ("tenant", "")];
    let r = browser.post(api.url("/admin/tokens")).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("`name`"));
    assert_eq!(app.scalar("SELECT count(*) FROM api_tokens").await, 0);
}
