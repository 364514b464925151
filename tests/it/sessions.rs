//! Sessions and tokens hold against misuse (issue 27): a password change
//! ends the user's sessions, expired sessions are purged, a login posted
//! from another site is refused, what a failed login stores is bounded, a
//! token's life is bounded, and logins beyond what the server can hash at
//! once are refused rather than queued without end.

use crate::api::{Api, json};
use crate::api_access::{login, session_cookie};
use crate::console::add_user;
use crate::helpers::{spawn_app, stderr};

#[tokio::test]
async fn a_password_change_ends_the_users_sessions() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let (cookie, _) = session_cookie(&login(&api, "ops@example.com", "a long passphrase").await);
    let whoami = || api.http.get(api.url("/api/v1/session")).header("cookie", &cookie).send();
    assert_eq!(whoami().await.unwrap().status(), 200);
    let out = app.cli(&["user", "password", "ops@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(whoami().await.unwrap().status(), 401, "the old session ended with the old password");
}

#[tokio::test]
async fn expired_sessions_are_purged_when_someone_logs_in() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    login(&api, "ops@example.com", "a long passphrase").await;
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 day'").execute(&app.pool).await.unwrap();
    login(&api, "ops@example.com", "a long passphrase").await;
    assert_eq!(app.scalar("SELECT count(*) FROM sessions WHERE expires_at <= now()").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM sessions").await, 1);
}

#[tokio::test]
async fn a_console_login_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("email", "ops@example.com"), ("password", "a long passphrase"), ("next", "/")];
    let host = api.base.trim_start_matches("http://").to_owned();
    for (origin, status) in [("http://evil.example", 403), ("null", 403), (api.base.as_str(), 303)] {
        let r = http.post(api.url("/login")).header("origin", origin).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "Origin: {origin} (Host {host})");
    }
    let r = http.post(api.url("/login")).header("referer", "http://evil.example/x").form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "an old browser's Referer");
    assert_eq!(app.scalar("SELECT count(*) FROM sessions").await, 1, "only the same-site login opened one");
}

#[tokio::test]
async fn a_failed_login_stores_a_bounded_normalised_address() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let huge = format!("  {}@X.CH", "é".repeat(50_000));
    let r = login(&api, &huge, "whatever it is").await;
    assert_eq!(r.status(), 401);
    let stored = app.scalar_text("SELECT detail->>'email' FROM audit_log WHERE action = 'login.failed'").await;
    assert_eq!(stored.chars().count(), 254, "cut to the longest address");
    assert!(stored.starts_with('é') && !stored.contains('X'), "trimmed and lower-cased: {}", &stored[..10]);
}

#[tokio::test]
async fn a_tokens_life_is_bounded_and_a_huge_one_is_a_clear_error_not_a_panic() {
    let app = spawn_app().await;
    for days in ["0", "3651", "4294967295"] {
        let out = app.cli(&["token", "create", "--name", "t", "--role", "admin", "--expires-days", days]);
        assert!(!out.status.success(), "{days}");
        let err = stderr(&out);
        assert!(err.contains("between 1 and 3650") && !err.contains("panicked"), "{days}: {err}");
    }
    let out =
        app.cli(&["token", "create", "--name", "t", "--role", "admin", "--expires-days", "3650", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(json(&out.stdout)["token"].is_string());
}

#[tokio::test]
async fn logins_beyond_what_the_server_hashes_at_once_are_refused_as_busy_not_as_errors() {
    let app = spawn_app().await;
    // Each login from its own client (behind a trusted proxy), so that no
    // address is throttled and every one reaches the password check.
    let api = Api::start(&app, serde_json::json!({"console": {"trusted_proxies": ["127.0.0.1"]}})).await;
    // Far more than the gate admits (five per core) on any machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let logins = (0..60 * cores).map(|i| {
        let api = &api;
        async move {
            let body = serde_json::json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"});
            let client = format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256);
            let r = api.http.post(api.url("/api/v1/session")).header("x-forwarded-for", client).json(&body);
            r.send().await.unwrap().status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(logins).await;
    assert!(statuses.iter().all(|s| [401, 503].contains(s)), "{statuses:?}");
    assert!(statuses.contains(&503), "some were refused as busy: {statuses:?}");
}

#[tokio::test]
async fn concurrent_guesses_of_one_password_are_counted_before_they_are_checked() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({})).await;
    let guesses = (0..60).map(|i| {
        let api = &api;
        async move { login(api, "ops@example.com", &format!("guess number {i}")).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert!(statuses.iter().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert_eq!(app.scalar("SELECT count(*) FROM audit_log WHERE action = 'login.failed'").await, checked as i64);
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_persons_failures_do_not_hold_back_the_others() {
    let app = spawn_app().await;
    add_user(&app, "ops@example.com", dropfeed::domain::Access::Support, "a long passphrase").await;
    let api = Api::start(&app, serde_json::json!({"console": {"trusted_proxies": ["127.0.0.1"]}})).await;
    let from = |client: &'static str, email: &str, password: &str| {
        api.http
            .post(api.url("/api/v1/session"))
            .header("x-forwarded-for", client)
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
    };
    for i in 0..25 {
        let r = from("198.51.100.7", &format!("nobody{i}@example.com"), "wrong guess").await.unwrap();
        assert!([401, 429].contains(&r.status().as_u16()));
    }
    let r = from("198.51.100.7", "ops@example.com", "a long passphrase").await.unwrap();
    assert_eq!(r.status(), 429, "the guesser's address waits");
    let r = from("203.0.113.20", "ops@example.com", "a long passphrase").await.unwrap();
    assert_eq!(r.status(), 200, "a colleague behind the same proxy does not");
    let sources: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT source FROM audit_log ORDER BY source").fetch_all(&app.pool).await.unwrap();
    assert_eq!(sources, ["198.51.100.7", "203.0.113.20"], "the audit log names the clients, not the proxy");
}

#[tokio::test]
async fn attempts_past_the_throttles_window_are_swept_even_when_every_login_fails() {
    let app = spawn_app().await;
    let api = Api::start(&app, serde_json::json!({})).await;
    sqlx::query("INSERT INTO login_attempts (email, client, at) VALUES ('old@example.com', '203.0.113.1', now() - interval '1 day')")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(login(&api, "nobody@example.com", "wrong guess").await.status(), 401);
    assert_eq!(app.scalar("SELECT count(*) FROM login_attempts WHERE email = 'old@example.com'").await, 0);
    assert_eq!(app.scalar("SELECT count(*) FROM login_attempts").await, 1, "the failure just made stays");
}
