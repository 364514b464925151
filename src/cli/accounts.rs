//! `user`, `token` and `audit`: the accounts of the API and console (SPEC
//! §8.1), managed by the operator on the server; every change is audited.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::OutputFormat;
use crate::domain::{Access, Email, Role, TenantSlug};
use crate::store::audit::{self, Actor};
use crate::store::{accounts, tenants};
use crate::{access, actions};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, with a generated password printed once (or `--password-stdin`).
    Add {
        email: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant of a `tenant` user.
        #[arg(long)]
        tenant: Option<TenantSlug>,
        /// Read the password from the first line of stdin instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users with their role and tenant.
    List,
    /// Stop a user from logging in.
    Disable { email: String },
    /// Set a new password, generated and printed once (or `--password-stdin`).
    Password {
        email: String,
        /// Read the password from the first line of stdin instead.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token, printed once (only its hash is kept).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant of a `tenant` token.
        #[arg(long)]
        tenant: Option<TenantSlug>,
        /// Days until it expires (never by default).
        #[arg(long, value_name = "D")]
        expires_days: Option<u32>,
    },
    /// Tokens by prefix, with their state.
    List,
    /// Revoke a token, named by its first 12 characters.
    Revoke { prefix: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest changes first.
    List {
        #[arg(long)]
        tenant: Option<TenantSlug>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

async fn access_of(pool: &PgPool, role: Role, tenant: Option<&TenantSlug>) -> anyhow::Result<Access> {
    let tenant_id = match tenant {
        Some(slug) => Some(tenants::find(pool, slug).await?.id),
        None => None,
    };
    Access::of(role, tenant_id).map_err(anyhow::Error::msg)
}

/// The first line of stdin (never echoed: pipe it, or type it with the
/// terminal's echo off), or a new password to print once; the second part
/// says whether it was generated.
fn password(from_stdin: bool) -> anyhow::Result<(SecretString, bool)> {
    if !from_stdin {
        return Ok((access::generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("--password-stdin: stdin holds no password");
    }
    Ok((SecretString::from(line), false))
}

fn hash(password: &SecretString) -> anyhow::Result<String> {
    Ok(access::hash_password(password)?)
}

pub async fn user(pool: &PgPool, cmd: UserCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        UserCommand::Add { email, role, tenant, password_stdin } => {
            let email = Email::parse(&email).with_context(|| format!("{email:?} is not an e-mail address"))?;
            let access = access_of(pool, role, tenant.as_ref()).await?;
            let (password, generated) = password(password_stdin)?;
            let hashed = tokio::task::spawn_blocking(move || hash(&password).map(|h| (h, password))).await??;
            let mut tx = pool.begin().await?;
            accounts::add_user(&mut tx, email.as_str(), &access, &hashed.0).await?;
            let detail = serde_json::json!({"email": email.as_str(), "role": role, "tenant": tenant.as_ref().map(TenantSlug::as_str)});
            audit::record(&mut tx, &actor, access.tenant_id(), "user.add", detail).await?;
            tx.commit().await?;
            match generated {
                true => println!("user {email} added ({role}); password, shown once: {}", hashed.1.expose_secret()),
                false => println!("user {email} added ({role})"),
            }
        }
        UserCommand::List => {
            let users = accounts::list_users(pool).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in users {
                    println!(
                        "{:<40} {:<8} {:<20} {}",
                        u.email,
                        u.role.as_str(),
                        u.tenant.as_deref().unwrap_or("-"),
                        if u.disabled { "disabled" } else { "active" }
                    );
                }
            }
        }
        UserCommand::Disable { email } => {
            let email = email.trim().to_lowercase();
            actions::accounts::disable_user(pool, &actor, &email).await?;
            println!("user {email} disabled");
        }
        UserCommand::Password { email, password_stdin } => {
            let email = email.trim().to_lowercase();
            let (password, generated) = password(password_stdin)?;
            let hashed = tokio::task::spawn_blocking(move || hash(&password).map(|h| (h, password))).await??;
            let mut tx = pool.begin().await?;
            accounts::set_password(&mut tx, &email, &hashed.0).await?;
            audit::record(&mut tx, &actor, None, "user.password", serde_json::json!({"email": email})).await?;
            tx.commit().await?;
            match generated {
                true => println!("password of {email} changed; new password, shown once: {}", hashed.1.expose_secret()),
                false => println!("password of {email} changed"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(pool: &PgPool, cmd: TokenCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        TokenCommand::Create { name, role, tenant, expires_days } => {
            let access = access_of(pool, role, tenant.as_ref()).await?;
            let slug = tenant.as_ref().map(TenantSlug::as_str);
            let new = actions::accounts::create_token(pool, &actor, &name, &access, slug, expires_days).await?;
            if format == OutputFormat::Json {
                let shown = serde_json::json!({"token": new.token.expose_secret(), "prefix": new.prefix});
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                println!("{}", new.token.expose_secret());
                eprintln!("token {} ({name}, {role}) created: it is shown once, only its hash is kept", new.prefix);
            }
        }
        TokenCommand::List => {
            let list = accounts::list_tokens(pool).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let now = chrono::Utc::now();
                for t in list {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(_), _) => "revoked".to_owned(),
                        (None, Some(e)) if e <= now => "expired".to_owned(),
                        (None, Some(e)) => format!("expires {}", e.format("%Y-%m-%d")),
                        (None, None) => "active".to_owned(),
                    };
                    println!(
                        "{}  {:<24} {:<8} {:<20} {}",
                        t.prefix,
                        t.name,
                        t.role.as_str(),
                        t.tenant.as_deref().unwrap_or("-"),
                        state
                    );
                }
            }
        }
        TokenCommand::Revoke { prefix } => {
            let name = actions::accounts::revoke_token(pool, &actor, prefix.trim()).await?;
            println!("token {} ({name}) revoked", prefix.trim());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_cmd(pool: &PgPool, cmd: AuditCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::List { tenant, limit } => {
            let tenant_id = match &tenant {
                Some(slug) => Some(tenants::find(pool, slug).await?.id),
                None => None,
            };
            let entries = audit::list(pool, tenant_id, None, limit).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    println!(
                        "{}  {:<28} {:<16} {:<14} {:<12} {}",
                        e.at.format("%Y-%m-%d %H:%M:%S"),
                        e.actor,
                        e.source,
                        e.action,
                        e.tenant.as_deref().unwrap_or("-"),
                        e.detail
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
