//! What the hub, the channel layer and the sockets agree a push is: the group it goes to
//! ([`Group`]) and the notification it carries ([`PushKey`]). Its bytes are `payloads`'.
use std::fmt;

/// A broadcast group, named as in the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// `global_notifications`: every socket.
    Global,
    /// `user_{id}_notifications`: every socket of one user.
    User(i32),
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Global => f.write_str("global_notifications"),
            Group::User(id) => write!(f, "user_{id}_notifications"),
        }
    }
}

/// What a push carries, as far as catching up needs to know: a socket that is being replayed
/// to, or a hub that is catching up, skips the notifications it has already sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKey {
    /// A `notification` frame: the user's notification with this id.
    Personal(i32),
    /// A `global_notification` frame: the announcement with this id.
    Global(i32),
    /// Anything else (`notification_read`, ...): never skipped.
    Other,
}
