//! Push after commit, like Django's `transaction.on_commit`.
//!
//! Inside [`run`], hooks append created notifications to a task-local buffer; the buffer is
//! delivered only once the outermost transaction has committed, and dropped if it rolls back.
//! A [`run`] inside another (on the same task) is a savepoint of the enclosing transaction, as
//! Django's nested `atomic` blocks are: its rows commit or roll back with the outermost one,
//! and its pushes are dropped if the savepoint or anything enclosing it rolls back.
use std::{cell::RefCell, future::Future, pin::Pin, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionError, TransactionTrait};

use crate::broadcast::{self, CreatedNotification};

/// One level of [`run`]: its transaction (or savepoint) and the pushes it has buffered.
struct Frame {
    txn: Arc<DatabaseTransaction>,
    pending: RefCell<Vec<CreatedNotification>>,
}

tokio::task_local! {
    static FRAME: Frame;
}

/// Buffers `message` when a [`run`] is in progress on this task; `false` otherwise.
pub(crate) fn defer(message: &CreatedNotification) -> bool {
    FRAME
        .try_with(|frame| frame.pending.borrow_mut().push(message.clone()))
        .is_ok()
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
    let enclosing = FRAME.try_with(|frame| frame.txn.clone()).ok();
    let txn = match &enclosing {
        // `begin` on a transaction opens a savepoint on the same connection.
        Some(outer) => outer.begin().await,
        None => db.begin().await,
    }
    .map_err(TransactionError::Connection)?;
    drop(enclosing);
    let txn = Arc::new(txn);
    let frame = Frame {
        txn: txn.clone(),
        pending: RefCell::new(Vec::new()),
    };
    let (result, pending) = FRAME
        .scope(frame, async {
            let result = callback(&txn).await;
            (result, FRAME.with(|frame| frame.pending.take()))
        })
        .await;
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
    let handed_up = FRAME.try_with(|parent| parent.pending.borrow_mut().extend(pending.iter().cloned()));
    if handed_up.is_err() {
        // The outermost commit: the rows are visible now.
        // A reader may have cached a list between a hook's bump and the commit.
        crate::changes::bump_epoch();
        pending.into_iter().for_each(broadcast::deliver);
    }
    Ok(value)
}
