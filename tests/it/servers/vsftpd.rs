//! A vsftpd serving FTP, explicit FTPS and implicit FTPS with a generated certificate.
//!
//! Each server runs in the foreground on its own loopback port and passive
//! port range, logs in the throwaway system user `dropfeed-ftp` (created on
//! first use) and serves a fresh drop folder under that user's home, so tests
//! running in parallel never share files. Needs root, `/usr/sbin/vsftpd` and
//! `openssl` (Debian: `apt-get install vsftpd openssl`).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use dropfeed::source::SourceConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// The local account the servers log in; it only ever serves loopback ports.
pub const USER: &str = "dropfeed-ftp";
const PASSWORD: &str = "dropfeed-ftp-test-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    None,
    /// AUTH TLS on the control connection, TLS required for logins and data.
    Explicit,
    /// TLS from the first byte.
    Implicit,
}

pub struct FtpServer {
    pub tls: Tls,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Local path of the drop folder.
    pub root: PathBuf,
    /// The drop folder as the server shows it (absolute, no chroot).
    pub folder: String,
    /// The server's self-signed certificate (PEM), usable as its own CA file.
    pub cert_pem: PathBuf,
    /// `SHA256:<lower-case hex>` of the certificate's DER.
    pub cert_fingerprint: String,
    child: Child,
    _drop_folder: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl FtpServer {
    pub fn start(tls: Tls) -> FtpServer {
        let home = ensure_user();
        let dir = tempfile::tempdir().expect("temporary directory");
        let drop_folder = tempfile::Builder::new().prefix("drop-").tempdir_in(&home.path).expect("drop folder");
        std::os::unix::fs::chown(drop_folder.path(), Some(home.uid), Some(home.gid)).expect("chown the drop folder");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("secure_chroot_dir");
        let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        make_certificate(&cert_pem, &key_pem);
        let cert = CertificateDer::from_pem_file(&cert_pem).expect("generated certificate parses");
        let cert_fingerprint =
            format!("SHA256:{}", Sha256::digest(cert.as_ref()).iter().map(|b| format!("{b:02x}")).collect::<String>());

        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let (pasv_min, pasv_max) = pasv_range();
            let conf = dir.path().join("vsftpd.conf");
            std::fs::write(&conf, config(tls, port, pasv_min, pasv_max, &empty, &cert_pem, &key_pem))
                .expect("write vsftpd.conf");
            // vsftpd reports configuration and start-up errors on its stdin (fd 0).
            let oops = dir.path().join("vsftpd.err");
            let stdin = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&oops).expect("err");
            let mut child = Command::new("/usr/sbin/vsftpd")
                .arg(&conf)
                .stdin(Stdio::from(stdin))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start /usr/sbin/vsftpd (apt-get install vsftpd)");
            match wait_ready(&mut child, port, tls) {
                Ok(()) => {
                    return FtpServer {
                        tls,
                        port,
                        user: USER.into(),
                        password: PASSWORD.into(),
                        root: drop_folder.path().to_path_buf(),
                        folder: drop_folder.path().display().to_string(),
                        cert_pem,
                        cert_fingerprint,
                        child,
                        _drop_folder: drop_folder,
                        _dir: dir,
                    };
                }
                Err(e) => {
                    // Probably a port taken in the meantime: try other ports.
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("{e}: {}", std::fs::read_to_string(&oops).unwrap_or_default());
                }
            }
        }
        panic!("vsftpd did not start: {last_error}");
    }

    /// `ftp://`, `ftps://` or `ftps+implicit://` with user, port and folder, no password.
    pub fn url(&self) -> String {
        let scheme = match self.tls {
            Tls::None => "ftp",
            Tls::Explicit => "ftps",
            Tls::Implicit => "ftps+implicit",
        };
        format!("{scheme}://{}@127.0.0.1:{}{}", self.user, self.port, self.folder)
    }

    /// A source on this server with the right password and nothing to trust
    /// yet (no CA file, no pin); short timeouts.
    pub fn source(&self) -> SourceConfig {
        crate::helpers::password_source(&self.url(), &self.password, Duration::from_secs(20))
    }

    /// Writes a file into the drop folder (owned by root, readable by the FTP user).
    pub fn put(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, content).expect("write into the drop folder");
        path
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(child: &mut Child, port: u16, tls: Tls) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("vsftpd exited with {status}"));
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            // Implicit TLS says nothing before a handshake: listening is enough.
            if tls == Tls::Implicit {
                return Ok(());
            }
            stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
            let mut greeting = String::new();
            BufReader::new(stream).read_line(&mut greeting).map_err(|e| e.to_string())?;
            return if greeting.starts_with("220") { Ok(()) } else { Err(format!("greeting {greeting:?}")) };
        }
        if Instant::now() > deadline {
            return Err("vsftpd does not answer".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(tls: Tls, port: u16, pasv_min: u16, pasv_max: u16, empty: &Path, cert: &Path, key: &Path) -> String {
    let mut conf = format!(
        "background=NO\nlisten=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
         anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\n\
         pasv_enable=YES\npasv_min_port={pasv_min}\npasv_max_port={pasv_max}\nconnect_from_port_20=NO\n\
         seccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\nsecure_chroot_dir={}\n\
         pam_service_name=vsftpd\ncheck_shell=NO\nxferlog_enable=NO\n",
        empty.display()
    );
    if tls != Tls::None {
        // Debian's vsftpd 3.0.3 has no ssl_tlsv1_2 switch: ssl_tlsv1 allows TLS 1.x (1.2 and 1.3 included).
        conf.push_str(&format!(
            "ssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}\nssl_sslv2=NO\nssl_sslv3=NO\nssl_tlsv1=YES\n\
             ssl_ciphers=HIGH\nrequire_ssl_reuse=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\n",
            cert.display(),
            key.display()
        ));
    }
    if tls == Tls::Implicit {
        conf.push_str("implicit_ssl=YES\n");
    }
    conf
}

fn make_certificate(cert: &Path, key: &Path) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout"])
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
}

struct Home {
    path: PathBuf,
    uid: u32,
    gid: u32,
}

/// Creates the FTP user once per test process (and once per machine), and sets
/// its password, which Debian's PAM stack for vsftpd checks.
fn ensure_user() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        if lookup(USER).is_none() {
            // Another test process may create it at the same time: 9 = exists.
            let status = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", USER])
                .stderr(Stdio::null())
                .status()
                .expect("run useradd (tests need root)");
            assert!(status.success() || status.code() == Some(9), "useradd {USER} failed: {status}");
        }
        let mut chpasswd = Command::new("chpasswd").stdin(Stdio::piped()).spawn().expect("run chpasswd");
        {
            use std::io::Write;
            let mut stdin = chpasswd.stdin.take().expect("chpasswd stdin");
            writeln!(stdin, "{USER}:{PASSWORD}").expect("write to chpasswd");
        }
        assert!(chpasswd.wait().expect("chpasswd").success(), "chpasswd failed");
        let home = lookup(USER).expect("the ftp user exists");
        if !home.path.is_dir() {
            std::fs::create_dir_all(&home.path).expect("create the home folder");
            std::os::unix::fs::chown(&home.path, Some(home.uid), Some(home.gid)).expect("chown home");
        }
        // pam_listfile refuses users listed in /etc/ftpusers.
        let banned = std::fs::read_to_string("/etc/ftpusers").unwrap_or_default();
        assert!(!banned.lines().any(|l| l.trim() == USER), "{USER} is listed in /etc/ftpusers");
        home
    })
}

/// Home, uid and gid from the passwd database.
fn lookup(user: &str) -> Option<Home> {
    let out = Command::new("getent").args(["passwd", user]).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let fields: Vec<&str> = line.trim().split(':').collect();
    if !out.status.success() || fields.len() < 7 {
        return None;
    }
    Some(Home { path: PathBuf::from(fields[5]), uid: fields[2].parse().ok()?, gid: fields[3].parse().ok()? })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// Ten passive ports no other server of this process uses, below the
/// ephemeral range (where outgoing connections take their ports), and free
/// right now. The start depends on the process id so that test processes
/// running side by side start apart.
fn pasv_range() -> (u16, u16) {
    const LOW: u16 = 12_000;
    const SLOTS: u16 = 2_000;
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let next = NEXT.get_or_init(|| AtomicU16::new((std::process::id() % u32::from(SLOTS)) as u16));
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let slot = next.fetch_add(1, Ordering::Relaxed) % SLOTS;
        let first = LOW + slot * 10;
        let ports = first..first + 10;
        if ports.clone().all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return (first, first + 9);
        }
    }
}
