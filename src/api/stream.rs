//! Answers written while they are read (a report, a rejects file, an
//! export): a producer task writes into a bounded pipe the body reads. Once
//! the headers are sent a failure cannot change the status, so it ends the
//! body with an error: hyper then cuts the connection before the last chunk
//! and the client sees a truncated answer, never one that looks whole.

use std::future::Future;

use axum::body::Body;
use futures_util::StreamExt;
use tokio::io::DuplexStream;
use tokio_util::io::ReaderStream;

/// Bytes in flight between a streamed answer's writer and the socket.
pub const PIPE_BYTES: usize = 64 << 10;

/// The body `produce` writes into; `what` names it in the log.
pub fn piped<F, Fut, T>(what: String, produce: F) -> Body
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let written = produce(writer);
    // Spawned, so that the producer fails (and is logged) even when the
    // client has gone and nobody polls the body any more.
    let task = tokio::spawn(async move {
        let outcome = written.await;
        match &outcome {
            Ok(_) => {}
            Err(e) if client_left(e) => tracing::debug!("{what} not sent whole: the client left"),
            Err(e) => tracing::error!("{what} not sent whole: {e:#}"),
        }
        outcome.is_ok()
    });
    let end = futures_util::stream::once(async move {
        match task.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("the answer failed after it began; see the server's log"))),
        }
    })
    .filter_map(std::future::ready);
    Body::from_stream(ReaderStream::new(reader).chain(end))
}

/// Whether writing failed because the reading side (the client) is gone.
fn client_left(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_producer_that_fails_after_writing_ends_the_body_with_an_error_not_a_clean_end() {
        let failing = piped("test answer".into(), |mut w| async move {
            w.write_all(b"email\na@x.ch\n").await?;
            Err::<(), _>(anyhow::anyhow!("the database went away"))
        });
        assert!(axum::body::to_bytes(failing, usize::MAX).await.is_err());

        let whole = piped("test answer".into(), |mut w| async move {
            w.write_all(b"email\na@x.ch\n").await?;
            anyhow::Ok(())
        });
        assert_eq!(axum::body::to_bytes(whole, usize::MAX).await.unwrap(), "email\na@x.ch\n");
    }
}
