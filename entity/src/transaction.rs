//! Push after commit, like Django's `transaction.on_commit`.
//!
//! Inside [`run`], what the hooks publish is kept in the transaction's buffer
//! ([`crate::outbox`]); it is handed on only once the outermost transaction has committed, and
//! dropped if it rolls back. A [`run`] inside another (on the same task) is a savepoint of the
//! enclosing transaction, as Django's nested `atomic` blocks are: its rows commit or roll back
//! with the outermost one, and its pushes are dropped if the savepoint or anything enclosing it
//! rolls back.
use std::{future::Future, pin::Pin, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionError, TransactionTrait};

use crate::outbox;

tokio::task_local! {
    /// The transaction (or savepoint) of the innermost `run` on this task.
    static FRAME: Arc<DatabaseTransaction>;
}

/// Runs `callback` in a database transaction; pushes what it created only after the commit.
///
/// Called inside another `run` on this task, `db` is not used: `callback` runs in a savepoint
/// of the enclosing transaction (a second transaction on the pool would commit independently,
/// and on SQLite wait for the enclosing one's write lock until the busy timeout).
pub async fn run<F, T, E>(db: &DatabaseConnection, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let enclosing = FRAME.try_with(Arc::clone).ok();
    let txn = match &enclosing {
        // `begin` on a transaction opens a savepoint on the same connection.
        Some(outer) => outer.begin().await,
        None => db.begin().await,
    }
    .map_err(TransactionError::Connection)?;
    drop(enclosing);
    let txn = Arc::new(txn);
    let (result, pending) = FRAME.scope(txn.clone(), outbox::buffered(callback(&txn))).await;
    // The frame (and its clone of the transaction) is gone with the scope.
    let txn = Arc::into_inner(txn)
        .ok_or_else(|| TransactionError::Connection(DbErr::Custom("transaction still shared".into())))?;
    let value = match result {
        Ok(value) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            value
        }
        Err(e) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            return Err(TransactionError::Transaction(e));
        }
    };
    // To the enclosing transaction's buffer, or, at the outermost commit, to the sink: the rows
    // are visible now.
    outbox::committed(pending);
    Ok(value)
}
