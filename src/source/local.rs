//! `file://` sources: a folder on this machine (customers' SFTP chroots on
//! the same host, and the demo).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Fetched, RemoteFile, Session, SourceConfig, SourceError, SpoolWriter};

pub struct LocalSession {
    folder: PathBuf,
    endpoint: String,
}

impl LocalSession {
    pub fn open(cfg: &SourceConfig) -> Result<LocalSession, SourceError> {
        let folder = PathBuf::from(&cfg.endpoint.folder);
        let endpoint = cfg.endpoint.to_string();
        if !folder.is_dir() {
            return Err(SourceError::Connect { endpoint, detail: "the folder does not exist".into() });
        }
        Ok(LocalSession { folder, endpoint })
    }

    fn err(&self, op: &'static str, path: &str, e: std::io::Error) -> SourceError {
        SourceError::Remote { endpoint: self.endpoint.clone(), op, path: path.to_owned(), detail: e.to_string() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.folder.join(rel)
    }
}

impl Session for LocalSession {
    async fn list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        let folder = self.folder.clone();
        let listed = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<RemoteFile>> {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if !meta.is_file() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
                out.push(RemoteFile { name, size: meta.len(), mtime: meta.modified().ok().map(DateTime::<Utc>::from) });
            }
            Ok(out)
        })
        .await
        .map_err(|e| self.err("list", ".", std::io::Error::other(e)))?;
        listed.map_err(|e| self.err("list", ".", e))
    }

    async fn fetch(&mut self, name: &str, dest: &Path) -> Result<Fetched, SourceError> {
        let src = self.path(name);
        let dest = dest.to_path_buf();
        let endpoint = self.endpoint.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let remote = |e: std::io::Error| SourceError::Remote {
                endpoint: endpoint.clone(),
                op: "read",
                path: name.clone(),
                detail: e.to_string(),
            };
            let mut file = std::fs::File::open(&src).map_err(remote)?;
            let mut out = SpoolWriter::create(&dest)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(remote)?;
                if n == 0 {
                    break;
                }
                out.write(&buf[..n])?;
            }
            out.finish()
        })
        .await
        .map_err(|e| self.err("read", "spool", std::io::Error::other(e)))?
    }

    async fn ensure_dir(&mut self, dir: &str) -> Result<(), SourceError> {
        tokio::fs::create_dir_all(self.path(dir)).await.map_err(|e| self.err("create folder", dir, e))
    }

    async fn exists(&mut self, path: &str) -> Result<bool, SourceError> {
        tokio::fs::try_exists(self.path(path)).await.map_err(|e| self.err("stat", path, e))
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<(), SourceError> {
        tokio::fs::rename(self.path(from), self.path(to)).await.map_err(|e| self.err("rename", from, e))
    }

    async fn delete(&mut self, name: &str) -> Result<(), SourceError> {
        tokio::fs::remove_file(self.path(name)).await.map_err(|e| self.err("delete", name, e))
    }

    fn server_fingerprint(&self) -> Option<String> {
        None
    }
}
