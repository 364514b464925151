//! Accounts, API tokens and the audit log (issue 15, part 1), through the
//! real binary and the checks the API will call.

use std::io::Write;
use std::process::{Command, Stdio};

use dropfeed::domain::Access;
use dropfeed::store::accounts;

use crate::helpers::{TestApp, spawn_app, stderr, stdout};

/// `dropfeed ARGS` with `input` on stdin.
fn cli_with_stdin(app: &TestApp, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dropfeed"))
        .args(args)
        .env("DATABASE_URL", &app.db_url)
        .env_remove("RUST_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dropfeed runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn a_user_logs_in_with_the_password_printed_once_until_it_is_disabled() {
    let app = spawn_app().await;
    let out = app.cli(&["user", "add", "Ops@Example.com", "--role", "support"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let password = printed.rsplit("shown once: ").next().unwrap().trim().to_owned();
    assert!(password.len() >= 20, "{printed}");

    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ops@example.com'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(&password), "only an argon2id hash is kept");

    let (user, access) = accounts::check_password(&app.pool, "ops@example.com", &password).await.unwrap().unwrap();
    assert_eq!((user.email.as_str(), access), ("ops@example.com", Access::Support));
    assert!(accounts::check_password(&app.pool, "ops@example.com", "wrong password!").await.unwrap().is_none());
    assert!(accounts::check_password(&app.pool, "nobody@example.com", &password).await.unwrap().is_none());

    // A chosen password, on stdin; too short is refused.
    let out = cli_with_stdin(&app, &["user", "password", "ops@example.com", "--password-stdin"], "short\n");
    assert!(!out.status.success() && stderr(&out).contains("at least 12"), "{}", stderr(&out));
    let out = cli_with_stdin(&app, &["user", "password", "ops@example.com", "--password-stdin"], "a long passphrase\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("passphrase"));
    assert!(accounts::check_password(&app.pool, "ops@example.com", &password).await.unwrap().is_none());
    assert!(accounts::check_password(&app.pool, "ops@example.com", "a long passphrase").await.unwrap().is_some());

    let out = app.cli(&["user", "disable", "ops@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(accounts::check_password(&app.pool, "ops@example.com", "a long passphrase").await.unwrap().is_none());
    let list = stdout(&app.cli(&["user", "list"]));
    assert!(list.contains("ops@example.com") && list.contains("disabled"), "{list}");

    let again = app.cli(&["user", "add", "ops@example.com", "--role", "admin"]);
    assert!(!again.status.success() && stderr(&again).contains("already exists"), "{}", stderr(&again));
}

#[tokio::test]
async fn a_tenant_account_needs_its_tenant_and_other_roles_refuse_one() {
    let app = spawn_app().await;
    let out = app.cli(&["user", "add", "crm@acme.example", "--role", "tenant"]);
    assert!(!out.status.success() && stderr(&out).contains("needs --tenant"), "{}", stderr(&out));
    let out = app.cli(&["token", "create", "--name", "x", "--role", "support", "--tenant", "acme"]);
    assert!(!out.status.success() && stderr(&out).contains("only for role tenant"), "{}", stderr(&out));
    let out = app.cli(&["user", "add", "crm@acme.example", "--role", "tenant", "--tenant", "nosuch"]);
    assert!(!out.status.success() && stderr(&out).contains("nosuch"), "{}", stderr(&out));
    let out = app.cli(&["user", "add", "crm@acme.example", "--role", "tenant", "--tenant", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let password = stdout(&out).rsplit("shown once: ").next().unwrap().trim().to_owned();
    let (_, access) = accounts::check_password(&app.pool, "crm@acme.example", &password).await.unwrap().unwrap();
    assert_eq!(access, Access::Tenant(app.tenant.id));
}

#[tokio::test]
async fn a_token_is_shown_once_kept_as_a_hash_and_stops_working_when_revoked_or_expired() {
    let app = spawn_app().await;
    let out =
        app.cli(&["token", "create", "--name", "crm-sync", "--role", "tenant", "--tenant", "acme", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap().to_owned();
    assert_eq!(prefix.len(), 12);
    assert!(token.starts_with(&prefix));

    let dump: String = sqlx::query_scalar("SELECT string_agg(to_jsonb(t)::text, '') FROM api_tokens t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains(&token[12..]), "the token is not stored");
    let now = chrono::Utc::now();
    let (by, access) = accounts::check_token(&app.pool, &token, now).await.unwrap().unwrap();
    assert_eq!((by.as_str(), access), (prefix.as_str(), Access::Tenant(app.tenant.id)));
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(accounts::check_token(&app.pool, &wrong, now).await.unwrap().is_none(), "same prefix, other token");
    assert!(accounts::check_token(&app.pool, "not a token", now).await.unwrap().is_none());

    let list = stdout(&app.cli(&["token", "list"]));
    assert!(list.contains(&prefix) && list.contains("crm-sync") && !list.contains(&token[12..]), "{list}");
    let out = app.cli(&["token", "revoke", &prefix]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(accounts::check_token(&app.pool, &token, now).await.unwrap().is_none());
    assert!(stdout(&app.cli(&["token", "list"])).contains("revoked"));

    // An expiring one works until its day.
    let out =
        app.cli(&["token", "create", "--name", "ci", "--role", "support", "--expires-days", "1", "--format", "json"]);
    let ci: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ci = ci["token"].as_str().unwrap();
    assert!(accounts::check_token(&app.pool, ci, now).await.unwrap().is_some());
    let later = now + chrono::Duration::days(2);
    assert!(accounts::check_token(&app.pool, ci, later).await.unwrap().is_none());
}

#[tokio::test]
async fn every_account_change_is_in_the_audit_log_without_its_secret() {
    let app = spawn_app().await;
    let added = stdout(&app.cli(&["user", "add", "ops@example.com", "--role", "admin"]));
    let password = added.rsplit("shown once: ").next().unwrap().trim().to_owned();
    let out = app.cli(&["token", "create", "--name", "ci", "--role", "tenant", "--tenant", "acme", "--format", "json"]);
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = created["token"].as_str().unwrap();
    let prefix = created["prefix"].as_str().unwrap();
    assert!(app.cli(&["token", "revoke", prefix]).status.success());
    assert!(app.cli(&["user", "disable", "ops@example.com"]).status.success());

    let out = app.cli(&["audit", "list", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.disable", "token.revoke", "token.create", "user.add"], "newest first");
    assert!(entries.iter().all(|e| e["actor"].as_str().unwrap().starts_with("cli:") && e["source"] == "cli"));
    assert_eq!(entries[2]["tenant"], "acme");
    assert!(!text.contains(&password) && !text.contains(&token[12..]), "{text}");
    let acme = stdout(&app.cli(&["audit", "list", "--tenant", "acme"]));
    assert_eq!(acme.lines().count(), 1, "{acme}");
}
