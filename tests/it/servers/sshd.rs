//! An OpenSSH sshd with internal-sftp, a throwaway user, key and password auth.
//!
//! Each `SshServer` is its own `sshd -D` on a free loopback port with a fresh
//! host key, client key and drop folder, so tests run in parallel without
//! sharing anything but the system user. Needs root and Debian's
//! `openssh-server` (CI's `.ci/run` installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The system user the servers log in; created on first use, kept after.
pub const USER: &str = "dropfeed-sftp";
/// Its password: a fixed test value, never a real secret.
pub const PASSWORD: &str = "Drop-Feed-Test-Pw-41";
/// The passphrase of the generated client key.
pub const KEY_PASSPHRASE: &str = "Key-Phrase-Test-97";

const SSHD: &str = "/usr/sbin/sshd";

pub struct SshServer {
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Client key, encrypted with `key_passphrase`, authorized on the server.
    pub key_path: PathBuf,
    pub key_passphrase: String,
    /// Client key without a passphrase (for OpenSSH's `sftp -b`, which cannot prompt).
    pub plain_key_path: PathBuf,
    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    pub host_key_fingerprint: String,
    /// The host's public key line (`ssh-ed25519 AAAA...`), for known_hosts files.
    pub host_public_key: String,
    /// Local path of the drop folder.
    pub root: PathBuf,
    /// The same folder as the server shows it.
    pub folder: String,
    child: Child,
    dir: tempfile::TempDir,
    _drop: tempfile::TempDir,
}

struct Account {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// Creates the user once per test binary; tolerates another process having
/// created it first.
fn account() -> &'static Account {
    static ACCOUNT: OnceLock<Account> = OnceLock::new();
    ACCOUNT.get_or_init(|| {
        if lookup(USER).is_none() {
            // A racing process may win; `lookup` below is the judge.
            let _ = Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]).stderr(Stdio::null()).status();
        }
        let account = lookup(USER).expect("useradd created the sftp test user (are the tests running as root?)");
        // Setting the password also unlocks the account: sshd refuses even
        // keys for locked accounts when PAM is off.
        let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("chpasswd runs");
        chpasswd.stdin.take().unwrap().write_all(format!("{USER}:{PASSWORD}\n").as_bytes()).unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd set the test password");
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation folder");
        account
    })
}

fn lookup(user: &str) -> Option<Account> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[0] == user).then(|| Account {
            uid: f[2].parse().unwrap(),
            gid: f[3].parse().unwrap(),
            home: PathBuf::from(f[5]),
        })
    })
}

fn keygen(path: &Path, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "dropfeed-test", "-N", passphrase, "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

fn fingerprint(public_key: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(public_key).output().expect("ssh-keygen -lf runs");
    assert!(out.status.success(), "ssh-keygen -lf: {}", String::from_utf8_lossy(&out.stderr));
    // "256 SHA256:xxxx comment (ED25519)"
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).expect("a fingerprint").to_owned()
}

impl SshServer {
    pub fn start() -> SshServer {
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing: apt-get install openssh-server");
        let account = account();
        let dir = tempfile::tempdir().unwrap();
        // sshd reads authorized_keys as the user: let it through the folder.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

        let host_key = dir.path().join("host_ed25519");
        keygen(&host_key, "");
        let host_pub = host_key.with_extension("pub");
        let host_key_fingerprint = fingerprint(&host_pub);
        let host_public_key = {
            let line = std::fs::read_to_string(&host_pub).unwrap();
            line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        };

        let key_path = dir.path().join("client_ed25519");
        keygen(&key_path, KEY_PASSPHRASE);
        let plain_key_path = dir.path().join("client_plain_ed25519");
        keygen(&plain_key_path, "");
        let authorized = dir.path().join("authorized_keys");
        let mut keys = std::fs::read_to_string(key_path.with_extension("pub")).unwrap();
        keys += &std::fs::read_to_string(plain_key_path.with_extension("pub")).unwrap();
        std::fs::write(&authorized, keys).unwrap();
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644)).unwrap();

        let drop_dir = tempfile::Builder::new().prefix("drop-").tempdir_in(&account.home).unwrap();
        std::os::unix::fs::chown(drop_dir.path(), Some(account.uid), Some(account.gid)).unwrap();
        let root = drop_dir.path().to_path_buf();
        let folder = root.to_str().unwrap().to_owned();

        let mut last_log = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\n\
                     ListenAddress 127.0.0.1\n\
                     HostKey {host_key}\n\
                     PidFile none\n\
                     UsePAM no\n\
                     PasswordAuthentication yes\n\
                     KbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\n\
                     AuthorizedKeysFile {authorized}\n\
                     StrictModes no\n\
                     PermitRootLogin no\n\
                     AllowUsers {USER}\n\
                     UseDNS no\n\
                     LogLevel VERBOSE\n\
                     Subsystem sftp internal-sftp\n",
                    host_key = host_key.display(),
                    authorized = authorized.display(),
                ),
            )
            .unwrap();
            let log_path = dir.path().join("sshd.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("sshd starts");
            if wait_listening(port, &mut child, &log_path) {
                return SshServer {
                    port,
                    user: USER.into(),
                    password: PASSWORD.into(),
                    key_path,
                    key_passphrase: KEY_PASSPHRASE.into(),
                    plain_key_path,
                    host_key_fingerprint,
                    host_public_key,
                    root,
                    folder,
                    child,
                    dir,
                    _drop: drop_dir,
                };
            }
            // Most likely another test took the port in between: try another.
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("sshd did not start:\n{last_log}");
    }

    /// `sftp://user@127.0.0.1:port/folder`.
    pub fn url(&self) -> String {
        format!("sftp://{}@127.0.0.1:{}{}", self.user, self.port, self.folder)
    }

    /// Writes a file into the drop folder, owned by the user as an upload would be.
    pub fn put(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, content).unwrap();
        let account = account();
        std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid)).unwrap();
        path
    }

    /// A scratch folder of this server's, readable by the test.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `signal` (`STOP`, `CONT`) to the per-connection processes of
    /// this sshd, not to its listener: a frozen peer for timeout tests.
    pub fn signal_sessions(&self, signal: &str) {
        let pids = descendants(self.child.id());
        assert!(!pids.is_empty(), "no session is open on this sshd");
        let status = Command::new("kill").args(["-s", signal]).args(pids.iter().map(u32::to_string)).status().unwrap();
        assert!(status.success(), "kill -s {signal} {pids:?}");
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("sshd.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

/// Processes below `root` (privilege-separated sshd: one for the
/// connection, one running as the user).
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, not ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.split_off(1)
}

/// Waits until this sshd (not some other process that took the port in
/// between) listens and accepts connections; false if it exited first.
fn wait_listening(port: u16, child: &mut Child, log: &Path) -> bool {
    let listening = format!("Server listening on 127.0.0.1 port {port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        let said_so = std::fs::read_to_string(log).is_ok_and(|text| text.contains(&listening));
        if said_so && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for SshServer {
    fn drop(&mut self) {
        // The listener only: per-connection processes end with their clients.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
