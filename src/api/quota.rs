//! The spool's share of each tenant: uploads (the API's and the Analyser's)
//! reserve the bytes they write, as they arrive, within a limit per tenant
//! and one for the whole server, and give them back when their file is
//! gone. Without it, uploads in parallel could fill the spool's disk, and
//! with it every import and every feed of every tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::problem::Problem;

/// Bytes reserved on the spool, by tenant and in all.
#[derive(Debug)]
pub struct SpoolQuota {
    used: Mutex<Usage>,
    per_tenant: u64,
    total: u64,
}

#[derive(Debug, Default)]
struct Usage {
    total: u64,
    by_tenant: HashMap<i64, u64>,
}

impl SpoolQuota {
    pub fn new(per_tenant: u64, total: u64) -> Arc<SpoolQuota> {
        Arc::new(SpoolQuota { used: Mutex::new(Usage::default()), per_tenant, total })
    }

    /// An empty reservation for `tenant`, grown as bytes arrive.
    pub fn reserve(self: &Arc<Self>, tenant: i64) -> Reservation {
        Reservation { quota: self.clone(), tenant, bytes: 0 }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        // A panic while the lock was held leaves counts that are still counts.
        self.used.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Bytes a tenant's upload holds on the spool; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    quota: Arc<SpoolQuota>,
    tenant: i64,
    bytes: u64,
}

impl Reservation {
    /// Reserves `n` more bytes, or refuses them (507, `upload.quota`).
    pub fn grow(&mut self, n: u64) -> Result<(), Problem> {
        let q = &self.quota;
        let mut used = q.usage();
        let tenant = used.by_tenant.get(&self.tenant).copied().unwrap_or(0);
        let refused = |what: &str, limit: u64| {
            Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "upload.quota",
                format!(
                    "{what} on the spool would pass {limit} bytes (limits.{}); try again once other uploads are imported",
                    if what.starts_with("this tenant") { "max_spool_bytes_per_tenant" } else { "max_spool_bytes" }
                ),
            )
        };
        if tenant + n > q.per_tenant {
            return Err(refused("this tenant's uploads", q.per_tenant));
        }
        if used.total + n > q.total {
            return Err(refused("all uploads", q.total));
        }
        used.total += n;
        *used.by_tenant.entry(self.tenant).or_default() += n;
        self.bytes += n;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = self.quota.usage();
        used.total -= self.bytes;
        if let Some(t) = used.by_tenant.get_mut(&self.tenant) {
            *t -= self.bytes;
            if *t == 0 {
                used.by_tenant.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_cannot_take_more_than_its_share_nor_all_tenants_more_than_the_spool() {
        let quota = SpoolQuota::new(100, 150);
        let mut acme = quota.reserve(1);
        acme.grow(60).unwrap();
        let mut acme_again = quota.reserve(1);
        assert_eq!(acme_again.grow(41).unwrap_err().code, "upload.quota");
        acme_again.grow(40).unwrap();
        let mut globex = quota.reserve(2);
        assert!(globex.grow(51).is_err(), "the spool holds 100 of 150");
        globex.grow(50).unwrap();
        drop(acme);
        drop(acme_again);
        let mut acme = quota.reserve(1);
        acme.grow(100).unwrap();
    }
}
