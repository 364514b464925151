//! Answers read from the database (a report, a rejects file, an export):
//! written whole to a file in the spool first, then sent from it. A client
//! that reads slowly holds a file, not a database connection and its
//! cursor: eight slow downloads once held the whole pool, and every other
//! request, the admin's login included, failed meanwhile. A failure while
//! writing is an error answer (500, logged) before any header is sent; one
//! while sending cuts the body, which the client sees as truncated.

use std::future::Future;
use std::path::Path;

use axum::body::Body;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use super::problem::Problem;

/// Bytes read from the spooled answer at a time.
const CHUNK_BYTES: usize = 64 << 10;

/// The answer `produce` writes into a file of `dir`, as a body; `what`
/// names it in the log. The file is unlinked at once: it lives as long as
/// the answer is being sent, and is gone when the client leaves.
pub async fn spooled<F, Fut, T>(what: String, dir: &Path, produce: F) -> Result<Body, Problem>
where
    F: FnOnce(tokio::fs::File) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    std::fs::create_dir_all(dir).map_err(Problem::internal)?;
    let temp = tempfile::Builder::new().prefix("answer-").tempfile_in(dir).map_err(Problem::internal)?;
    let writer = tokio::fs::File::from_std(temp.reopen().map_err(Problem::internal)?);
    // Spawned: written whole even if the client leaves meanwhile, so that
    // the database's cursor is always closed the same way.
    match tokio::spawn(produce(writer)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(Problem::internal(format!("{what} not written: {e:#}"))),
        Err(e) => return Err(Problem::internal(format!("{what} not written: {e}"))),
    }
    let reader = tokio::fs::File::from_std(temp.reopen().map_err(Problem::internal)?);
    drop(temp);
    // A read that fails now cuts the body (the client sees it truncated),
    // and the operator reads why.
    let sent = ReaderStream::with_capacity(reader, CHUNK_BYTES).inspect(move |chunk| {
        if let Err(e) = chunk {
            tracing::error!("{what} not sent whole: {e}");
        }
    });
    Ok(Body::from_stream(sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_producer_that_fails_is_an_error_answer_and_one_that_succeeds_is_sent_whole() {
        let dir = tempfile::tempdir().unwrap();
        let failing = spooled("test answer".into(), dir.path(), |mut w| async move {
            w.write_all(b"email\na@x.ch\n").await?;
            Err::<(), _>(anyhow::anyhow!("the database went away"))
        })
        .await;
        assert_eq!(failing.err().map(|p| p.status.as_u16()), Some(500));

        let whole = spooled("test answer".into(), dir.path(), |mut w| async move {
            w.write_all(b"email\na@x.ch\n").await?;
            w.flush().await?;
            anyhow::Ok(())
        })
        .await
        .unwrap();
        // The spool file is unlinked as soon as it is open for sending.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(axum::body::to_bytes(whole, usize::MAX).await.unwrap(), "email\na@x.ch\n");
    }
}
