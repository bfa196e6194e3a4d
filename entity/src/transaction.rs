//! Push after commit, like Django's `transaction.on_commit`.
//!
//! Inside [`run`], hooks append created notifications to a task-local buffer; the buffer is
//! delivered only once the transaction has committed, and dropped if it rolls back.
use std::{cell::RefCell, future::Future, pin::Pin};

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionError, TransactionTrait};

use crate::broadcast::{self, CreatedNotification};

tokio::task_local! {
    static PENDING: RefCell<Vec<CreatedNotification>>;
}

/// Buffers `message` when a [`run`] is in progress on this task; `false` otherwise.
pub(crate) fn defer(message: &CreatedNotification) -> bool {
    PENDING
        .try_with(|pending| pending.borrow_mut().push(message.clone()))
        .is_ok()
}

/// Runs `callback` in a database transaction; pushes what it created only after the commit.
///
/// Nested calls join the outermost one, whose commit releases the pushes.
pub async fn run<F, T, E>(db: &DatabaseConnection, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    if PENDING.try_with(|_| ()).is_ok() {
        return db.transaction(callback).await;
    }
    let (result, pending) = PENDING
        .scope(RefCell::new(Vec::new()), async {
            let result = db.transaction(callback).await;
            (result, PENDING.with(|pending| pending.take()))
        })
        .await;
    if result.is_ok() {
        // A reader may have cached a list between a hook's bump and the commit.
        crate::changes::bump_epoch();
        pending.into_iter().for_each(broadcast::deliver);
    }
    result
}
