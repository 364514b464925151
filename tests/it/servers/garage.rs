//! Garage, a production S3-compatible object store, as a single node on
//! loopback ports: one bucket and one key per server, stopped and started
//! again on demand (its data kept) to play a store that goes down.
//!
//! Needs the `garage` binary on the PATH (`cargo install garage --locked`,
//! as `.ci/run` does once).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Garage {
    pub s3_port: u16,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    config: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// `bytes` random bytes in hex (v4 UUIDs: 122 random bits each, plenty
/// for a throwaway key).
fn random_hex(bytes: usize) -> String {
    let mut hex = String::new();
    while hex.len() < bytes * 2 {
        hex.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    hex.truncate(bytes * 2);
    hex
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (rpc_port, s3_port) = (super::vsftpd::free_port(), super::vsftpd::free_port());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.localhost\"\n",
                d = dir.path().display(),
                secret = random_hex(32),
            ),
        )
        .expect("write garage.toml");
        // Garage refuses a configuration holding its RPC secret that others may read.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut garage = Garage {
            s3_port,
            bucket: "dropfeed-archive".into(),
            key_id: format!("GK{}", random_hex(12)),
            secret: random_hex(32),
            config,
            dir,
            child: None,
        };
        garage.resume();
        let status = garage.cli(&["status"]);
        let node = String::from_utf8_lossy(&status.stdout)
            .lines()
            .skip_while(|l| !l.starts_with("ID"))
            .nth(1)
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| panic!("no node in `garage status`: {}", String::from_utf8_lossy(&status.stdout)));
        garage.ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.ok(&["layout", "apply", "--version", "1"]);
        let (key_id, secret, bucket) = (garage.key_id.clone(), garage.secret.clone(), garage.bucket.clone());
        garage.ok(&["key", "import", "--yes", "-n", "dropfeed", &key_id, &secret]);
        garage.ok(&["bucket", "create", &bucket]);
        garage.ok(&["bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", "dropfeed"]);
        garage
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new("garage")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run garage (cargo install garage --locked)")
    }

    fn ok(&self, args: &[&str]) {
        // Right after start-up the node may not accept commands yet.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.cli(args);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (its data stays): the store is down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on its folders and ports again and waits until its
    /// S3 port answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "garage is running");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new("garage")
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start garage (cargo install garage --locked)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(Instant::now() < deadline, "garage does not listen on {}", self.s3_port);
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.cli(&["status"]).status.success() {
            assert!(Instant::now() < deadline, "garage does not answer `garage status`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The `archive` block of a dropfeed configuration for this store, keys
    /// in files (never in the configuration).
    pub fn archive_settings(&self, prefix: &str, days: u32) -> serde_json::Value {
        let (id_file, secret_file) = (self.dir.path().join("key_id"), self.dir.path().join("secret"));
        std::fs::write(&id_file, format!("{}\n", self.key_id)).unwrap();
        std::fs::write(&secret_file, format!("{}\n", self.secret)).unwrap();
        serde_json::json!({
            "url": format!("s3://{}/{prefix}", self.bucket),
            "days": days,
            "s3": {
                "endpoint": self.endpoint(),
                "region": "garage",
                "access_key_id_file": id_file,
                "secret_access_key_file": secret_file,
            }
        })
    }

    /// The archive a daemon of the tests uses with this store.
    pub fn archive(&self, prefix: &str, days: u32) -> dropfeed::archive::Archive {
        let settings = serde_json::from_value(self.archive_settings(prefix, days)).expect("archive settings");
        dropfeed::archive::Archive::open(&settings, std::path::Path::new("/nonexistent")).expect("s3 archive")
    }

    /// A plain S3 client on the bucket, to look at or tamper with objects
    /// behind dropfeed's back.
    pub fn client(&self) -> object_store::aws::AmazonS3 {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region("garage")
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .build()
            .expect("s3 client")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
