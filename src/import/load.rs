//! Where the parser's batches go: one COPY runs while the file is parsed
//! (into `staging`, or into `contacts` when most rows are `direct`); the
//! other rows, the messages, the rejected lines and the direct lines wait
//! in anonymous temporary files (not memory) and are COPYed once the
//! parse is over.

use std::io::{Seek, SeekFrom, Write};

use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

use super::direct::{self, Flagged};
use super::staging::{Batch, MESSAGE_COLUMNS, Staging};

/// The table a stream of rows is COPYed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Staging(Staging),
    /// Direct rows (`direct::CONTACT_COLUMNS`).
    Contacts,
}

impl Target {
    fn copy_sql(self) -> String {
        match self {
            Target::Staging(staging) => staging.copy(),
            Target::Contacts => direct::copy_sql(),
        }
    }

    /// The live COPY for a parse that began with `first`: the stream that
    /// is larger in it. One COPY only can run on a connection; the stream
    /// that runs live overlaps with the parse, the other waits for its end.
    /// A file whose first rows are mostly new (a first import) streams into
    /// `contacts`; a nightly file of known contacts into `staging`.
    pub fn live_for(first: &Batch, staging: Staging) -> Target {
        if first.direct.len() > first.rows.len() { Target::Contacts } else { Target::Staging(staging) }
    }

    /// The other stream's table.
    fn other(self, staging: Staging) -> Target {
        match self {
            Target::Contacts => Target::Staging(staging),
            Target::Staging(_) => Target::Contacts,
        }
    }

    /// Starts this target's COPY.
    pub async fn begin(self, conn: &mut PgConnection) -> sqlx::Result<PgCopyIn<&mut PgConnection>> {
        conn.copy_in_raw(&self.copy_sql()).await
    }

    /// This target's rows in a batch.
    pub fn rows_of(self, batch: &Batch) -> &[u8] {
        match self {
            Target::Staging(_) => &batch.rows,
            Target::Contacts => &batch.direct,
        }
    }
}

/// An anonymous temporary file and how much was written to it.
struct SpillFile {
    file: std::fs::File,
    bytes: u64,
}

impl SpillFile {
    fn new() -> std::io::Result<SpillFile> {
        Ok(SpillFile { file: tempfile::tempfile()?, bytes: 0 })
    }

    fn add(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    /// COPYs the file's rows with `sql`, streaming from the file.
    async fn copy(mut self, conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
        if self.bytes == 0 {
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(0))?;
        let mut copy = conn.copy_in_raw(sql).await?;
        copy.read_from(tokio::fs::File::from_std(self.file)).await?;
        copy.finish().await?;
        Ok(())
    }
}

/// What waits for the end of the parse.
pub struct Spill {
    msgs: SpillFile,
    rejects: SpillFile,
    /// The rows of the stream that is not live.
    later: SpillFile,
    /// Every direct row's line, e-mail and warnings (`direct::stage_lines`).
    direct_lines: SpillFile,
}

impl Spill {
    pub fn new() -> std::io::Result<Spill> {
        Ok(Spill {
            msgs: SpillFile::new()?,
            rejects: SpillFile::new()?,
            later: SpillFile::new()?,
            direct_lines: SpillFile::new()?,
        })
    }

    /// Keeps what of `batch` the live COPY (into `live`) does not take.
    pub fn add(&mut self, batch: &Batch, live: Target) -> std::io::Result<()> {
        self.msgs.add(&batch.msgs)?;
        self.rejects.add(&batch.rejects)?;
        self.direct_lines.add(&batch.direct_lines)?;
        let later = match live {
            Target::Staging(_) => &batch.direct,
            Target::Contacts => &batch.rows,
        };
        self.later.add(later)
    }

    /// After the live COPY: the other stream's rows into their table, then
    /// the direct lines something still reads into `staging`.
    pub async fn copy_rows(
        &mut self,
        conn: &mut PgConnection,
        live: Target,
        staging: Staging,
        flagged: &Flagged,
    ) -> anyhow::Result<()> {
        let later = std::mem::replace(&mut self.later, SpillFile::new()?);
        later.copy(conn, &live.other(staging).copy_sql()).await?;
        let lines = std::mem::replace(&mut self.direct_lines, SpillFile::new()?);
        if lines.bytes > 0 {
            direct::stage_lines(conn, lines.file, flagged).await?;
        }
        Ok(())
    }

    /// COPYs the spilled messages into `staging_messages` and the rejected
    /// lines into `run_rejects`.
    pub async fn copy_into(self, conn: &mut PgConnection) -> anyhow::Result<()> {
        self.msgs.copy(conn, &format!("COPY staging_messages ({MESSAGE_COLUMNS}) FROM STDIN")).await?;
        self.rejects.copy(conn, "COPY run_rejects (run_id, line, cells, reason) FROM STDIN").await?;
        Ok(())
    }
}
