//! What a feed applied by staff (the API, the console) may name: the
//! environment variables and files that hold its secrets, its `file://`
//! folder and its server, each within what the operator granted in
//! `feed_policy` (configuration.rs). Without it a support account could have
//! a "test" send `DATABASE_URL` as an FTP password to a server of its own,
//! or a "run now" archive `/etc/passwd` for download.

use std::path::{Component, Path};

use crate::configuration::FeedPolicy;
use crate::domain::TenantSlug;
use crate::domain::source::{Endpoint, Kind};
use crate::feed::FeedSpec;

/// The environment variables a tenant's feeds may name: the policy's
/// prefix, the slug in capitals (`-` as `_`), then `_`.
pub fn env_prefix(policy: &FeedPolicy, tenant: &TenantSlug) -> String {
    format!("{}{}_", policy.secret_env_prefix, tenant.as_str().to_ascii_uppercase().replace('-', "_"))
}

/// Every way `spec` oversteps `policy`, each naming its key and the setting
/// that would grant it; empty when the feed may be applied by staff.
pub fn problems(spec: &FeedSpec, policy: &FeedPolicy, tenant: &TenantSlug) -> Vec<String> {
    let mut problems = Vec::new();
    let source = &spec.source;
    let prefix = env_prefix(policy, tenant);
    for (key, var) in
        [("password_env", &source.password_env), ("private_key_passphrase_env", &source.private_key_passphrase_env)]
    {
        if let Some(var) = var
            && !var.starts_with(&prefix)
        {
            problems.push(format!(
                "source.{key} {var}: a feed applied through the API or the console names only variables \
                 starting with {prefix} (feed_policy.secret_env_prefix)"
            ));
        }
    }
    let files = [
        ("password_file", &source.password_file),
        ("private_key_file", &source.private_key_file),
        ("known_hosts", &source.known_hosts),
        ("tls_ca_file", &source.tls_ca_file),
    ];
    for (key, path) in files {
        let Some(path) = path else { continue };
        let granted = policy.secret_dir.as_ref().map(|dir| dir.join(tenant.as_str()));
        if !granted.as_ref().is_some_and(|root| lies_under(path, root)) {
            let rule = match &granted {
                Some(root) => format!("files under {} (feed_policy.secret_dir)", root.display()),
                None => "no file: feed_policy.secret_dir is not set".to_owned(),
            };
            problems.push(format!(
                "source.{key} {}: a feed applied through the API or the console names {rule}",
                path.display()
            ));
        }
    }
    match Endpoint::parse(&source.url) {
        Ok(ep) if ep.kind == Kind::File => {
            let folder = Path::new(&ep.folder);
            if !policy.file_roots.iter().any(|root| lies_under(folder, root)) {
                let roots: Vec<String> = policy.file_roots.iter().map(|r| r.display().to_string()).collect();
                let rule = if roots.is_empty() {
                    "none: feed_policy.file_roots is empty".to_owned()
                } else {
                    format!("only folders under {} (feed_policy.file_roots)", roots.join(", "))
                };
                problems.push(format!(
                    "source.url {}: a feed applied through the API or the console may read {rule}",
                    ep.folder
                ));
            }
        }
        Ok(ep) => {
            if let Some(allowed) = &policy.allowed_hosts
                && !host_allowed(&ep.host, allowed)
            {
                problems.push(format!(
                    "source.url: host {} is not among feed_policy.allowed_hosts ({})",
                    ep.host,
                    allowed.join(", ")
                ));
            }
        }
        // `FeedSpec::check` names a URL that does not parse.
        Err(_) => {}
    }
    problems
}

/// Whether `path` is `root` or below it: absolute, without `..`, and, when
/// it exists, still below `root` once links are resolved (a link in a
/// granted folder is the operator's; one made to escape it is refused).
fn lies_under(path: &Path, root: &Path) -> bool {
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return false;
    }
    if !path.starts_with(root) {
        return false;
    }
    match (std::fs::canonicalize(path), std::fs::canonicalize(root)) {
        (Ok(real), Ok(real_root)) => real.starts_with(real_root),
        // Not there yet: the lexical check is what can be known.
        _ => true,
    }
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|pattern| {
        globset::GlobBuilder::new(&pattern.to_ascii_lowercase())
            .literal_separator(true)
            .build()
            .is_ok_and(|g| g.compile_matcher().is_match(&host))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: &str) -> FeedSpec {
        let yaml = format!("tenant: acme\nname: n\nsource:\n{source}\nschedule:\n  cron: \"0 2 * * *\"\nprofile: p\n");
        FeedSpec::from_yaml(&yaml, "test").unwrap()
    }

    fn policy() -> FeedPolicy {
        FeedPolicy {
            secret_dir: Some("/etc/dropfeed/secrets".into()),
            file_roots: vec!["/srv/drops".into()],
            allowed_hosts: Some(vec!["*.acme.example".into(), "192.0.2.10".into()]),
            ..FeedPolicy::default()
        }
    }

    fn check(source: &str) -> Vec<String> {
        problems(&spec(source), &policy(), &TenantSlug::parse("acme").unwrap())
    }

    #[test]
    fn secrets_outside_the_tenants_namespace_are_refused_naming_the_setting() {
        let p = check("  url: sftp://u@sftp.acme.example/out\n  password_env: DATABASE_URL");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("DROPFEED_FEED_ACME_") && p[0].contains("feed_policy.secret_env_prefix"), "{p:?}");
        assert!(check("  url: sftp://u@sftp.acme.example/out\n  password_env: DROPFEED_FEED_ACME_PW").is_empty());
        assert_eq!(check("  url: sftp://u@sftp.acme.example/out\n  password_env: DROPFEED_FEED_GLOBEX_PW").len(), 1);
        for file in ["/proc/self/environ", "/etc/dropfeed/secrets/globex/pw", "/etc/dropfeed/secrets/acme/../globex/pw"]
        {
            let p = check(&format!("  url: sftp://u@sftp.acme.example/out\n  password_file: {file}"));
            assert_eq!(p.len(), 1, "{file}: {p:?}");
        }
        assert!(
            check("  url: sftp://u@sftp.acme.example/out\n  password_file: /etc/dropfeed/secrets/acme/pw").is_empty()
        );
    }

    #[test]
    fn file_folders_and_hosts_outside_what_the_operator_lists_are_refused() {
        assert_eq!(check("  url: file:///etc").len(), 1);
        assert_eq!(check("  url: file:///srv/drops/../../etc").len(), 1);
        assert!(check("  url: file:///srv/drops/acme").is_empty());
        let p = check("  url: ftp://u@attacker.example/x\n  password_env: DROPFEED_FEED_ACME_PW");
        assert!(p[0].contains("allowed_hosts"), "{p:?}");
        assert!(check("  url: ftp://u@192.0.2.10/x\n  password_env: DROPFEED_FEED_ACME_PW").is_empty());
        let none = problems(
            &spec("  url: file:///srv/drops/acme"),
            &FeedPolicy::default(),
            &TenantSlug::parse("acme").unwrap(),
        );
        assert!(none[0].contains("feed_policy.file_roots is empty"), "{none:?}");
    }
}
