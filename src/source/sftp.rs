//! SFTP sources with libssh2 (ssh2 crate), driven from blocking threads.

use std::path::Path;

use super::{Fetched, RemoteFile, Session, SourceConfig, SourceError};

pub struct SftpSession {
    endpoint: String,
}

impl SftpSession {
    pub async fn connect(cfg: &SourceConfig) -> Result<SftpSession, SourceError> {
        Err(SourceError::Connect { endpoint: cfg.endpoint.to_string(), detail: "sftp is not available yet".into() })
    }

    fn todo(&self) -> SourceError {
        SourceError::Connect { endpoint: self.endpoint.clone(), detail: "sftp is not available yet".into() }
    }
}

impl Session for SftpSession {
    async fn list(&mut self) -> Result<Vec<RemoteFile>, SourceError> {
        Err(self.todo())
    }
    async fn fetch(&mut self, _name: &str, _dest: &Path) -> Result<Fetched, SourceError> {
        Err(self.todo())
    }
    async fn ensure_dir(&mut self, _dir: &str) -> Result<(), SourceError> {
        Err(self.todo())
    }
    async fn exists(&mut self, _path: &str) -> Result<bool, SourceError> {
        Err(self.todo())
    }
    async fn rename(&mut self, _from: &str, _to: &str) -> Result<(), SourceError> {
        Err(self.todo())
    }
    async fn delete(&mut self, _name: &str) -> Result<(), SourceError> {
        Err(self.todo())
    }
    fn server_fingerprint(&self) -> Option<String> {
        None
    }
}
