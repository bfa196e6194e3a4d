//! Where the hooks' pushes go: the sink of the current scope, once the save has committed.
//!
//! `entity` cannot depend on the server, so the server hands its sink ([`PushSink`]) to a
//! [`scope`] around everything that can save: each request, and each background task that saves.
//! A hook publishes into that scope: on a plain connection at once (the row is already
//! committed); inside [`crate::transaction::run`] into the transaction's buffer, which goes to
//! the sink only after the outermost commit (Django's `transaction.on_commit`). A save outside
//! any scope (a script, a migration, a spawned task that did not [`carry`] its scope) is saved
//! but not pushed, and says so in the log.
use std::{cell::RefCell, future::Future, sync::Arc};

use crate::{global_notification, notification};

/// A notification row was created and committed, or an announcement changed: push it to the
/// right sockets.
#[derive(Clone, Debug)]
pub enum CreatedNotification {
    /// For the sockets of `user_{id}_notifications`.
    User(notification::Model),
    /// For every socket (`global_notifications`): a new announcement, live.
    Global(global_notification::Model),
    /// For every socket: an announcement edited (or made live again) and live after the edit,
    /// sent whole again under its id.
    GlobalEdited(global_notification::Model),
    /// For every socket: announcement `id` stopped being live (edited, withdrawn or deleted).
    GlobalRemoved(i32),
}

/// Takes what the hooks publish, once it has committed: the server's hub, and its caches.
pub trait PushSink: Send + Sync {
    /// Push `message`; its rows are committed.
    fn push(&self, message: CreatedNotification);
    /// `user_id`'s notifications were edited through the entity: nothing to push, but what was
    /// read of them before is stale.
    fn edited(&self, user_id: i32);
}

/// What a hook leaves for the sink.
#[derive(Debug)]
pub(crate) enum Saved {
    Push(CreatedNotification),
    Edited(i32),
}

tokio::task_local! {
    /// The sink of the current scope (`None`: a carried absence of one).
    static SINK: Option<Arc<dyn PushSink>>;
    /// Inside `transaction::run`: what its transaction saved, kept until it commits.
    static BUFFER: RefCell<Vec<Saved>>;
}

/// Runs `future` with `sink` taking every push its saves publish.
pub fn scope<F: Future>(sink: Arc<dyn PushSink>, future: F) -> impl Future<Output = F::Output> {
    SINK.scope(Some(sink), future)
}

/// Runs `future` in the caller's scope. A spawned task starts in none: spawn through this when
/// the task may save.
pub fn carry<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let sink = SINK.try_with(Option::clone).ok().flatten();
    SINK.scope(sink, future)
}

/// Called by the hooks: hands `saved` on now, or after commit when inside `transaction::run`.
/// `C` is the connection the hook saved through.
pub(crate) fn publish<C>(saved: impl IntoIterator<Item = Saved>) {
    let mut saved = Some(saved);
    let _ = BUFFER.try_with(|buffer| buffer.borrow_mut().extend(saved.take().into_iter().flatten()));
    let Some(saved) = saved else {
        return;
    };
    if std::any::type_name::<C>().ends_with("DatabaseTransaction") {
        // A bare `begin()` gives no commit signal: the push may precede a rollback.
        log::warn!("notification saved in a transaction outside entity::transaction::run; pushed before commit");
    }
    deliver(saved);
}

/// Runs `future`, keeping what the hooks publish meanwhile instead of handing it on; answers
/// its output and what was kept (for `transaction::run`, which hands it on once committed).
pub(crate) async fn buffered<F: Future>(future: F) -> (F::Output, Vec<Saved>) {
    BUFFER
        .scope(RefCell::new(Vec::new()), async {
            let output = future.await;
            (output, BUFFER.with(RefCell::take))
        })
        .await
}

/// `saved` has committed as far as this level knows: to the enclosing buffer when a savepoint
/// committed inside another transaction (which may still roll back), to the sink otherwise.
pub(crate) fn committed(saved: Vec<Saved>) {
    let mut saved = Some(saved);
    let _ = BUFFER.try_with(|buffer| buffer.borrow_mut().extend(saved.take().into_iter().flatten()));
    if let Some(saved) = saved {
        deliver(saved);
    }
}

/// Hands `saved` to the sink of the current scope; without one it is not pushed.
fn deliver(saved: impl IntoIterator<Item = Saved>) {
    let mut saved = Some(saved);
    let _ = SINK.try_with(|sink| {
        if let Some(sink) = sink {
            for one in saved.take().into_iter().flatten() {
                match one {
                    Saved::Push(message) => sink.push(message),
                    Saved::Edited(user_id) => sink.edited(user_id),
                }
            }
        }
    });
    let unsent = saved.map_or(0, |saved| saved.into_iter().count());
    if unsent > 0 {
        // A script or tool saving outside the server: no hub hears of it (clients see it over REST).
        log::warn!("{unsent} notification change(s) saved outside entity::outbox::scope: not pushed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what reaches it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl PushSink for Recorder {
        fn push(&self, message: CreatedNotification) {
            let seen = match message {
                CreatedNotification::GlobalRemoved(id) => format!("removed {id}"),
                other => format!("{other:?}"),
            };
            self.0.lock().expect("not poisoned").push(seen);
        }

        fn edited(&self, user_id: i32) {
            self.0.lock().expect("not poisoned").push(format!("edited {user_id}"));
        }
    }

    fn removed(id: i32) -> Vec<Saved> {
        vec![Saved::Push(CreatedNotification::GlobalRemoved(id))]
    }

    #[tokio::test]
    async fn a_scope_gets_its_own_saves_and_a_buffer_waits_for_the_commit() {
        let (first, second) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        scope(first.clone(), async {
            publish::<()>(removed(1));
            let ((), kept) = buffered(async { publish::<()>(removed(2)) }).await;
            assert_eq!(first.0.lock().expect("not poisoned").len(), 1, "kept until committed");
            committed(kept);
            // A spawned task starts in no scope; `carry` takes the caller's along.
            tokio::spawn(carry(async { publish::<()>(vec![Saved::Edited(7)]) }))
                .await
                .expect("the task ran");
        })
        .await;
        scope(second.clone(), async { publish::<()>(removed(3)) }).await;
        // Outside every scope: dropped (with a warning), not handed to anyone.
        publish::<()>(removed(4));
        assert_eq!(
            *first.0.lock().expect("not poisoned"),
            ["removed 1", "removed 2", "edited 7"]
        );
        assert_eq!(*second.0.lock().expect("not poisoned"), ["removed 3"]);
    }
}
