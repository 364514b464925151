//! The spool archive: the copy of every file a feed took, kept a number of
//! days, from which `runs release` imports a held file and `runs replay`
//! re-imports any run's file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where archived files live and for how long.
#[derive(Debug, Clone)]
pub struct Archive {
    pub dir: PathBuf,
    /// Days a file is kept; 0 keeps only held files (their release needs them).
    pub days: u32,
}

impl Archive {
    /// `DIR/<tenant id>/<sha256>`: one copy per content, whatever its name.
    pub fn path_of(&self, tenant_id: i64, sha256: &str) -> Option<PathBuf> {
        // The hash is ours, but it names a file: refuse anything but hex.
        let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| self.dir.join(tenant_id.to_string()).join(sha256))
    }

    /// Puts the downloaded file `from` in the archive and returns where: a
    /// hard link (the spool and the archive are on one file system; the
    /// spool's name goes when its poll ends), else a copy. Files are kept
    /// whatever `days` says: with 0, the caller [`forget`](Self::forget)s
    /// the ones that were not held once imported.
    pub fn keep(&self, tenant_id: i64, sha256: &str, from: &Path) -> std::io::Result<Option<PathBuf>> {
        let Some(to) = self.path_of(tenant_id, sha256) else {
            return Ok(None);
        };
        let dir = to.parent().expect("archive paths have a tenant folder");
        create_private_dir(&self.dir)?;
        create_private_dir(dir)?;
        match std::fs::hard_link(from, &to) {
            Ok(()) => {}
            // The same content, archived by an earlier poll.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => {
                // Another file system: copied under a name of its own, then
                // renamed, so an archived file is whole or absent.
                let part = dir.join(format!(".{sha256}.{}", uuid::Uuid::now_v7()));
                std::fs::copy(from, &part)?;
                std::fs::rename(&part, &to)?;
            }
        }
        // The age that purging reads is the archiving time, not the upload's.
        std::fs::File::options().write(true).open(&to)?.set_modified(SystemTime::now())?;
        Ok(Some(to))
    }

    /// Removes a kept file that no one will ask for: with `days` 0 only held
    /// files stay, for their `runs release`. Returns whether it was removed.
    pub fn forget(&self, kept: &Path, held: bool) -> std::io::Result<bool> {
        if self.days > 0 || held {
            return Ok(false);
        }
        std::fs::remove_file(kept)?;
        Ok(true)
    }

    /// Removes files archived more than `days` days before `now` (at least
    /// one day, so a held file survives the night it was held). Returns how
    /// many were removed.
    pub fn purge(&self, now: SystemTime) -> std::io::Result<usize> {
        let keep = Duration::from_secs(86_400 * u64::from(self.days.max(1)));
        let tenants = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for tenant in tenants {
            let tenant = tenant?;
            if !tenant.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(tenant.path())? {
                let file = file?;
                let meta = file.metadata()?;
                let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                if meta.is_file() && age > keep {
                    std::fs::remove_file(file.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Spooled and archived files are customers' data: only the daemon's user
/// may read the folders that hold them.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_kept_file_is_found_by_its_hash_and_purged_after_its_days() {
        let root = tempfile::tempdir().unwrap();
        let archive = Archive { dir: root.path().join("archive"), days: 2 };
        let spool = root.path().join("download.part");
        std::fs::write(&spool, "email\na@b.ch\n").unwrap();
        let kept = archive.keep(7, SHA, &spool).unwrap().unwrap();
        assert_eq!(Some(kept.clone()), archive.path_of(7, SHA));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "email\na@b.ch\n");
        assert!(spool.exists(), "the download stays for the import");
        std::fs::write(&spool, "email\na@b.ch\n").unwrap();
        assert_eq!(archive.keep(7, SHA, &spool).unwrap(), Some(kept.clone()), "kept again over the first copy");
        assert_eq!(std::fs::read_dir(kept.parent().unwrap()).unwrap().count(), 1, "one file per content");
        let now = SystemTime::now();
        assert_eq!(archive.purge(now + Duration::from_secs(86_400)).unwrap(), 0);
        assert_eq!(archive.purge(now + Duration::from_secs(3 * 86_400)).unwrap(), 1);
        assert!(!kept.exists());
    }

    #[test]
    fn with_no_days_only_held_files_are_kept_and_names_must_be_hashes() {
        let root = tempfile::tempdir().unwrap();
        let archive = Archive { dir: root.path().join("archive"), days: 0 };
        let spool = root.path().join("download.part");
        std::fs::write(&spool, "x").unwrap();
        let kept = archive.keep(1, SHA, &spool).unwrap().unwrap();
        assert!(!archive.forget(&kept, true).unwrap() && kept.exists(), "a held file stays");
        assert!(archive.forget(&kept, false).unwrap() && !kept.exists(), "an imported one goes");
        std::fs::write(&spool, "x").unwrap();
        assert_eq!(archive.keep(1, "../../etc/passwd", &spool).unwrap(), None);
        assert_eq!(archive.path_of(1, "../../etc/passwd"), None);
    }
}
