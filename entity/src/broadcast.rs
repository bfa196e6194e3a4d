//! The bridge from entity hooks to the hub: a tiny broker, one subscriber per actix `System`.
//!
//! `entity` cannot depend on the server, so the server's hub subscribes here at start-up and the
//! hooks publish here. Keying by `System` gives every test server its own hub; with no system
//! running (a CLI, a migration) or no subscriber, publishing does nothing.
use std::sync::Mutex;

use actix::{Message, Recipient, System};

use crate::{global_notification, notification, transaction};

/// A notification row was created and committed: push it to the right sockets.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
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

static SUBSCRIBERS: Mutex<Vec<(usize, Recipient<CreatedNotification>)>> = Mutex::new(Vec::new());

/// Makes `recipient` the receiver of every notification saved inside the current actix `System`.
///
/// # Panics
/// Outside a running actix `System`.
pub fn subscribe(recipient: Recipient<CreatedNotification>) {
    let system = System::current().id();
    let mut subscribers = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner());
    // Drop hubs of systems that have stopped, so tests that start many servers do not leak.
    subscribers.retain(|(id, r)| *id != system && r.connected());
    subscribers.push((system, recipient));
}

/// Called by the hooks: delivers now, or after commit when inside [`transaction::run`].
pub(crate) fn publish<C>(message: CreatedNotification) {
    if transaction::defer(&message) {
        return;
    }
    if std::any::type_name::<C>().ends_with("DatabaseTransaction") {
        // A bare `begin()` gives no commit signal: the push may precede a rollback.
        log::warn!("notification saved in a transaction outside entity::transaction::run; pushed before commit");
    }
    deliver(message);
}

/// Hands `message` to the hub of the current `System`, if there is one.
pub fn deliver(message: CreatedNotification) {
    let Some(system) = System::try_current() else {
        // A script or tool saving outside the server: no hub can push it (clients see it over REST).
        log::warn!("notification saved outside an actix System: not pushed");
        return;
    };
    let recipient = {
        let subscribers = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner());
        subscribers
            .iter()
            .find(|(id, _)| *id == system.id())
            .map(|(_, r)| r.clone())
    };
    match recipient {
        Some(recipient) => recipient.do_send(message),
        None => log::debug!("no hub in this system; notification not pushed"),
    }
}
