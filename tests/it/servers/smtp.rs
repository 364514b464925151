//! A real SMTP listener (Debian's python3-aiosmtpd) that stores every message
//! it receives in a Maildir, for the report and alert tests.

use std::net::TcpListener;

use mail_parser::MimeHeaders;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// One captured message.
pub struct Captured {
    pub raw: Vec<u8>,
}

impl Captured {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.raw).expect("a parsable message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.parsed().body_text(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed().body_html(0).map(|t| t.into_owned()).unwrap_or_default()
    }

    pub fn to(&self) -> Vec<String> {
        let m = self.parsed();
        m.to().map(|a| a.iter().filter_map(|x| x.address().map(str::to_owned)).collect()).unwrap_or_default()
    }

    /// The attachments as (file name, bytes).
    pub fn attachments(&self) -> Vec<(String, Vec<u8>)> {
        let m = self.parsed();
        m.attachments().map(|a| (a.attachment_name().unwrap_or_default().to_owned(), a.contents().to_vec())).collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(free_port())
    }

    /// A port nothing listens on yet (to start a server there later).
    pub fn reserve_port() -> u16 {
        free_port()
    }

    pub fn start_on(port: u16) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (apt-get install python3-aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { port, maildir, child, _dir: dir }
    }

    /// Messages received so far.
    pub fn messages(&self) -> Vec<Captured> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(Captured { raw: std::fs::read(e.path()).unwrap_or_default() });
                }
            }
        }
        out
    }

    /// Waits until `n` messages arrived (or fails after 10 s).
    pub fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || Instant::now() > deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A config file pointing dropfeed at this server.
    pub fn config_yaml(&self) -> String {
        config_for(self.port)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `smtp:` block of a config for a server on `port`.
pub fn config_for(port: u16) -> String {
    format!("smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  from: \"dropfeed <noreply@example.com>\"\n")
}
