//! The JSON report (SPEC §6) written while its messages are read from a
//! cursor: the same bytes as serialising a loaded report, with one batch of
//! messages in memory at a time.

use std::cell::RefCell;
use std::io::Write;

use anyhow::Context;
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use sqlx::PgPool;

use super::{Message, Report};
use crate::store::cursor::Batches;
use crate::store::runs::{self, MessageFilter};

/// Messages that serialise as a JSON array by receiving their batches as
/// they are written. Serialised once; blocking, so only from a blocking
/// thread (the batches come from an async task).
pub struct StreamedMessages(RefCell<Option<Batches<Message>>>);

impl StreamedMessages {
    pub fn new(batches: Batches<Message>) -> StreamedMessages {
        StreamedMessages(RefCell::new(Some(batches)))
    }
}

impl Serialize for StreamedMessages {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut batches = self.0.borrow_mut().take().ok_or_else(|| S::Error::custom("messages already written"))?;
        let mut seq = serializer.serialize_seq(None)?;
        while let Some(batch) = batches.blocking_recv() {
            let batch = batch.map_err(|e| S::Error::custom(format!("cannot read the run's messages: {e}")))?;
            for m in &batch {
                seq.serialize_element(m)?;
            }
        }
        seq.end()
    }
}

/// Writes the report of `head`'s run as pretty JSON and a line break to
/// `out`, with its messages (at most `max_messages`) read while writing.
pub async fn write<W: Write + Send + 'static>(
    pool: &PgPool,
    mut head: Report<()>,
    max_messages: Option<i64>,
    out: W,
) -> anyhow::Result<()> {
    let id = head.run_id;
    if let Some(limit) = max_messages {
        // Said before the messages are written, so counted first.
        let stored = runs::stored_messages(pool, id).await.with_context(|| format!("cannot read run {id}"))?;
        head.messages_truncated |= stored > limit;
    }
    let batches = runs::messages(pool, id, &MessageFilter { limit: max_messages, ..Default::default() });
    let report = head.with_messages(StreamedMessages::new(batches));
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
        serde_json::to_writer_pretty(&mut out, &report)
            .with_context(|| format!("cannot write the report of run {id}"))?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    })
    .await
    .context("writing the report panicked")?
}
