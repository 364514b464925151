//! Long results read in batches through a server-side cursor, on a task of
//! their own: the reader holds one batch at a time, whatever the result's size
//! (a 5M-row run has 1.9 million messages).

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgPool, Postgres};
use tokio::sync::mpsc;

/// Batches of a result in order; an `Err` ends them.
pub type Batches<T> = mpsc::Receiver<Result<Vec<T>, sqlx::Error>>;

/// Rows per FETCH: large enough that round trips cost nothing next to the
/// rows, small enough that a batch of messages is a few hundred KB.
const BATCH_ROWS: usize = 1000;

/// The arguments of a cursor's query, bound by the caller.
pub type Bind = Box<dyn FnOnce(Query<'_, Postgres, PgArguments>) -> Query<'_, Postgres, PgArguments> + Send>;

/// Reads `select` (with the arguments `bind` adds) through a cursor in a
/// read-only transaction of its own, and sends its rows, mapped by `map`, in
/// batches. The task stops when the receiver is dropped; its transaction is
/// then rolled back, which only closes the cursor.
pub fn spawn<T, F>(pool: PgPool, select: String, bind: Bind, map: F) -> Batches<T>
where
    T: Send + 'static,
    F: Fn(&PgRow) -> T + Send + Sync + 'static,
{
    // Two batches in flight: the next is read while the last is written.
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        let read = async {
            let mut tx = pool.begin().await?;
            sqlx::raw_sql("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
            let declare = format!("DECLARE dropfeed_batches NO SCROLL CURSOR FOR {select}");
            bind(sqlx::query(AssertSqlSafe(declare))).execute(&mut *tx).await?;
            let fetch = format!("FETCH FORWARD {BATCH_ROWS} FROM dropfeed_batches");
            loop {
                // Not prepared once per connection: a FETCH's columns are
                // those of its cursor, and a cached statement would keep the
                // columns of the first cursor it fetched from.
                let rows = sqlx::query(AssertSqlSafe(fetch.clone())).persistent(false).fetch_all(&mut *tx).await?;
                let last = rows.len() < BATCH_ROWS;
                if !rows.is_empty() && sender.send(Ok(rows.iter().map(&map).collect())).await.is_err() {
                    break;
                }
                if last {
                    break;
                }
            }
            tx.rollback().await
        };
        if let Err(e) = read.await {
            let _ = sender.send(Err(e)).await;
        }
    });
    receiver
}
