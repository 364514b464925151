//! A support account cannot reach the server's own secrets, files or
//! network through a feed (issue 27): what a feed applied through the API
//! names is limited to what `feed_policy` grants, each refusal names its
//! rule and is audited; the operator's CLI is not limited.

use crate::api::{Api, token};
use crate::feeds::{PROFILE, SAMPLE};
use crate::helpers::{TestApp, spawn_app, stderr};

fn feed(source: &str) -> String {
    format!(
        "tenant: acme\nname: nightly\nsource:\n{source}\n  pattern: \"*\"\nschedule:\n  cron: \"0 30 2 * * *\"\n\
         after_success: {{ delete: true }}\nprofile: nightly\n"
    )
}

async fn put_feed(api: &Api, token: &str, yaml: String) -> (u16, serde_json::Value) {
    let r =
        api.http.put(api.url("/api/v1/tenants/acme/feeds/nightly")).bearer_auth(token).body(yaml).send().await.unwrap();
    let status = r.status().as_u16();
    (status, crate::api::json(&r.bytes().await.unwrap()))
}

async fn refused_attempts(app: &TestApp) -> i64 {
    app.scalar("SELECT count(*) FROM audit_log WHERE action = 'feed.refused'").await
}

#[tokio::test]
async fn a_feed_applied_by_support_cannot_name_the_servers_secrets_files_or_folders() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let drop = app.dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let api = Api::start(&app, serde_json::json!({})).await;
    let support = token(&app, &["--role", "support"]);
    let ftp = "  url: ftp://u@127.0.0.1:2121/out";
    let refused = [
        (format!("{ftp}\n  password_env: DATABASE_URL"), "feed_policy.secret_env_prefix"),
        (format!("{ftp}\n  password_env: DROPFEED_FEED_GLOBEX_PW"), "DROPFEED_FEED_ACME_"),
        (format!("{ftp}\n  password_file: /proc/self/environ"), "feed_policy.secret_dir"),
        (
            format!("{ftp}\n  password_file: {}/secrets/acme/../../x", app.dir.path().display()),
            "feed_policy.secret_dir",
        ),
        ("  url: file:///etc".to_owned(), "feed_policy.file_roots"),
        (format!("  url: file://{}/../..", drop.display()), "feed_policy.file_roots"),
    ];
    for (n, (source, rule)) in refused.iter().enumerate() {
        let (status, body) = put_feed(&api, &support, feed(source)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("feed.not_allowed")), "{source}: {body}");
        let errors = body["errors"].to_string();
        assert!(errors.contains(rule), "{source}: {errors}");
        assert_eq!(refused_attempts(&app).await, n as i64 + 1, "{source}: the attempt is audited");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM feeds").await, 0, "nothing was applied");
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'feed.refused' LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(actor, format!("token:{}", &support[..12]));

    // What the operator grants: the tenant's variables, files and folders.
    let granted = [
        format!("{ftp}\n  password_env: DROPFEED_FEED_ACME_FTP_PASSWORD"),
        format!("{ftp}\n  password_file: {}/secrets/acme/ftp-password", app.dir.path().display()),
        format!("  url: file://{}", drop.display()),
    ];
    for source in granted {
        let (status, body) = put_feed(&api, &support, feed(&source)).await;
        assert_eq!(status, 200, "{source}: {body}");
    }
    // The operator's own CLI names what it wants.
    let out = app.apply_feed(&feed("  url: file:///srv/anything"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn an_operator_can_restrict_the_hosts_a_feed_applied_by_support_connects_to() {
    let app = spawn_app().await;
    app.save_profile("nightly", PROFILE, SAMPLE).await;
    let policy = serde_json::json!({ "feed_policy": { "allowed_hosts": ["*.acme.example", "192.0.2.10"] } });
    let api = Api::start(&app, policy).await;
    let support = token(&app, &["--role", "support"]);
    let pw = "\n  password_env: DROPFEED_FEED_ACME_PW";
    let (status, body) = put_feed(&api, &support, feed(&format!("  url: ftp://u@10.0.0.1/out{pw}"))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("feed.not_allowed")), "{body}");
    assert!(body["errors"].to_string().contains("allowed_hosts"), "{body}");
    // No file:// folder either: file_roots is empty in this policy.
    let (status, _) = put_feed(&api, &support, feed("  url: file:///tmp")).await;
    assert_eq!(status, 403);
    for url in ["ftp://u@drop.acme.example/out", "ftp://u@192.0.2.10/out"] {
        let (status, body) = put_feed(&api, &support, feed(&format!("  url: {url}{pw}"))).await;
        assert_eq!(status, 200, "{url}: {body}");
    }
}
