//! The spool: the local folder where a file waits while it is downloaded,
//! unpacked and imported. One live process owns a folder at a time (a lock
//! file with its id, locked by the OS), so no process ever cleans away
//! another's downloads.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a spool folder. The OS lock on it ends with its
/// process, however it ends; the id written in it names the owner.
const LOCK: &str = ".lock";
/// The prefix of a one-off command's private sub-folder.
const PRIVATE: &str = "run-";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool folder {dir} is held by another live process ({owner}): give each daemon its own spool_dir")]
    Held { dir: String, owner: String },
    #[error("cannot use the spool folder {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// A spool folder this process holds, and what is cleaned when it is let go.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    /// A one-off command's sub-folder, removed with everything in it on drop.
    private: bool,
}

impl Spool {
    /// The daemon's spool folder: refused while another live process holds
    /// it; what a dead owner left behind is removed.
    pub fn claim(dir: &Path, owner: &str) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io { dir: dir.display().to_string(), source };
        create_private_dir(dir).map_err(io)?;
        let lock = lock(dir, owner)?;
        let spool = Spool { dir: dir.to_path_buf(), _lock: lock, private: false };
        match spool.clean() {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "removed files a stopped process left in the spool"),
            Err(e) => tracing::warn!(spool = %dir.display(), "cannot clean the spool: {e}"),
        }
        Ok(spool)
    }

    /// A private sub-folder of `root` for a one-off command (`feed run`, a
    /// release, a replay, an API "run now") beside a daemon on the same
    /// host: neither cleans the other's files. Removed when dropped.
    pub fn private(root: &Path) -> Result<Spool, SpoolError> {
        let dir = root.join(format!("{PRIVATE}{}", uuid::Uuid::now_v7().simple()));
        let io = |source| SpoolError::Io { dir: dir.display().to_string(), source };
        create_private_dir(root).and_then(|()| create_private_dir(&dir)).map_err(io)?;
        let owner = format!("{}:{}", crate::store::leases::owner_name(), "one-off");
        let lock = lock(&dir, &owner)?;
        Ok(Spool { dir, _lock: lock, private: true })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the downloads and unpacked files a killed process left at the
    /// top of the folder (its `RemoveOnDrop` never ran), and the private
    /// sub-folders whose command is gone (their lock is free). Returns how
    /// many entries were removed.
    pub fn clean(&self) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type()?;
            let ours =
                (name.starts_with("feed-") && name.ends_with(".part")) || name.starts_with(".dropfeed-unpacked-");
            if ours && kind.is_file() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            } else if name.starts_with(PRIVATE) && kind.is_dir() && !self.private && is_abandoned(&entry.path()) {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if self.private {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Takes the OS lock on `dir/.lock` and writes `owner` in it; names the
/// live owner when another process holds it.
fn lock(dir: &Path, owner: &str) -> Result<File, SpoolError> {
    let path = dir.join(LOCK);
    let io = |source| SpoolError::Io { dir: dir.display().to_string(), source };
    let mut file = File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = owner.trim();
            let owner = if owner.is_empty() { "owner unknown" } else { owner };
            return Err(SpoolError::Held { dir: dir.display().to_string(), owner: owner.to_owned() });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{owner}")).map_err(io)?;
    Ok(file)
}

/// Whether a private sub-folder's command is gone: its lock can be taken
/// (and is let go at once), or it has had no lock file for a minute (a
/// command that has just made its folder locks it a moment later).
fn is_abandoned(dir: &Path) -> bool {
    match File::options().write(true).open(dir.join(LOCK)) {
        Ok(file) => file.try_lock().is_ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60)),
        Err(_) => false,
    }
}

/// Spooled and archived files are customers' data: only the daemon's user
/// may read the folders that hold them.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_folder_is_refused_while_held_and_names_its_owner() {
        let root = tempfile::tempdir().unwrap();
        let first = Spool::claim(root.path(), "host-a:1:abc").unwrap();
        let err = Spool::claim(root.path(), "host-b:2:def").unwrap_err();
        assert!(matches!(&err, SpoolError::Held { owner, .. } if owner == "host-a:1:abc"), "{err}");
        assert!(err.to_string().contains("held by another live process (host-a:1:abc)"), "{err}");
        drop(first);
        let again = Spool::claim(root.path(), "host-b:2:def").expect("free once its owner is gone");
        assert_eq!(std::fs::read_to_string(root.path().join(LOCK)).unwrap(), "host-b:2:def\n");
        drop(again);
    }

    #[test]
    fn a_claimed_spool_removes_what_dead_processes_left_but_not_a_live_commands_folder() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("feed-1-x.part"), "half").unwrap();
        std::fs::write(root.path().join("notes.txt"), "not ours").unwrap();
        let live = Spool::private(root.path()).unwrap();
        std::fs::write(live.dir().join("feed-2-y.part"), "in use").unwrap();
        let dead = root.path().join("run-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), "gone:1:one-off\n").unwrap();
        std::fs::write(dead.join("feed-3-z.part"), "left").unwrap();

        let spool = Spool::claim(root.path(), "daemon").unwrap();
        assert!(!root.path().join("feed-1-x.part").exists() && !dead.exists());
        assert!(root.path().join("notes.txt").exists(), "only our own names are removed");
        assert!(live.dir().join("feed-2-y.part").exists(), "a live command's folder is left alone");
        let private = live.dir().to_path_buf();
        drop(live);
        assert!(!private.exists(), "a command's folder goes with it");
        drop(spool);
    }
}
