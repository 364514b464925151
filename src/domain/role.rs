//! Who may do what (SPEC §8.1): the role of a user or an API token.

use std::fmt;

/// A role; `Tenant` callers see one tenant only (the tenant is kept beside
/// the role, so a tenant caller without one cannot exist: `Access`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, users, tokens and the audit log included.
    Admin,
    /// Every tenant: feeds, profiles, runs, release, replay, analyse, import.
    Support,
    /// One tenant: its runs, reports, feed status, analyse and import.
    Tenant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Tenant => "tenant",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Support, Role::Tenant].into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role with its tenant: what a user or token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Admin,
    Support,
    /// The id of the one tenant.
    Tenant(i64),
}

impl Access {
    /// The access of `role`, which names a tenant exactly when it is `tenant`.
    pub fn of(role: Role, tenant_id: Option<i64>) -> Result<Access, String> {
        match (role, tenant_id) {
            (Role::Admin, None) => Ok(Access::Admin),
            (Role::Support, None) => Ok(Access::Support),
            (Role::Tenant, Some(id)) => Ok(Access::Tenant(id)),
            (Role::Tenant, None) => Err("role tenant needs --tenant SLUG".into()),
            (r, Some(_)) => Err(format!("role {r} sees every tenant: --tenant is only for role tenant")),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Access::Admin => Role::Admin,
            Access::Support => Role::Support,
            Access::Tenant(_) => Role::Tenant,
        }
    }

    pub fn tenant_id(&self) -> Option<i64> {
        match self {
            Access::Tenant(id) => Some(*id),
            _ => None,
        }
    }

    /// Whether this caller may see the tenant `id`'s data.
    pub fn sees_tenant(&self, id: i64) -> bool {
        match self {
            Access::Admin | Access::Support => true,
            Access::Tenant(own) => *own == id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_role_needs_its_tenant_and_the_others_refuse_one() {
        assert_eq!(Access::of(Role::Tenant, Some(3)), Ok(Access::Tenant(3)));
        assert!(Access::of(Role::Tenant, None).is_err());
        assert!(Access::of(Role::Support, Some(3)).is_err());
        assert_eq!(Access::of(Role::Admin, None), Ok(Access::Admin));
    }

    #[test]
    fn a_tenant_caller_sees_only_its_own_tenant() {
        assert!(Access::Tenant(3).sees_tenant(3));
        assert!(!Access::Tenant(3).sees_tenant(4));
        assert!(Access::Support.sees_tenant(4));
    }
}
