//! Messages to and from the hub. Each is small and says one thing.
use std::fmt;

use actix::{Message, Recipient};
use actix_http::ws::CloseReason;
use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

pub use entity::broadcast::CreatedNotification;

use sea_orm::DatabaseConnection;

use crate::{layer::LayerEvent, payloads::Change, type_set::TypeSet};

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

/// A push as the bytes of one WebSocket text frame. Server frames are not masked, so every
/// socket sends the same bytes: a push is serialized and framed once, and each session only
/// takes a reference to it.
#[derive(Debug, Clone)]
pub struct PushFrame(Bytes);

impl PushFrame {
    pub fn text(text: &str) -> Self {
        // 10: the longest header of an unmasked frame.
        let mut frame = BytesMut::with_capacity(text.len() + 10);
        Parser::write_message(&mut frame, text, OpCode::Text, true, false);
        Self(frame.freeze())
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
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

/// Hub → one worker thread: write this push to these of its sessions (`ws::delivery`).
#[derive(Debug)]
pub struct Deliver {
    pub frame: PushFrame,
    pub key: PushKey,
    pub sessions: Vec<u64>,
}

/// How the hub reaches the delivery task of the worker thread a session runs on.
#[derive(Debug, Clone)]
pub struct WorkerLink {
    /// Tells worker threads apart, for life.
    pub index: usize,
    /// Bounded (`websocket.worker_queue_len`): see `NotificationHub::deliver_push`.
    pub sender: mpsc::Sender<Deliver>,
}

/// Hub → session: what to do with the socket. Pushes take another way (`Deliver`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ToSession {
    /// Close the socket with this reason.
    Close(CloseReason),
    /// Ping the peer, or close if it has been silent too long.
    Heartbeat,
}

/// A session joins its user's group and the global group.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session_id: u64,
    pub user_id: i32,
    pub credential_id: i32,
    pub recipient: Recipient<ToSession>,
    /// Where its pushes go.
    pub worker: WorkerLink,
    /// Told once the session is in its groups.
    pub joined: Option<oneshot::Sender<Joined>>,
}

/// The hub's answer to `Connect`: the session is in its groups.
#[derive(Debug)]
pub struct Joined {
    /// The user is new to this node and the channel layer is subscribing to its channel: told
    /// once the subscription stands (dropped if the link fails first). Until then another node's
    /// push for the user could be missed, so the handshake waits for it (`ws::upgrade`).
    pub subscribed: Option<oneshot::Receiver<()>>,
}

/// A session has stopped: it leaves its groups.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session_id: u64,
}

/// A session's client stopped reading: its send queue is full. It leaves its groups and is told
/// to close (1008).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TooSlow {
    pub session_id: u64,
}

/// Notifications of `user_id` were marked read or unread, or deleted: every socket of that user
/// learns it, with the unread count after the change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotificationsChanged {
    pub user_id: i32,
    pub change: Change,
    pub ids: Vec<i32>,
    pub unread_count: u64,
}

/// Announcements whose `expires_at` has passed: tell this node's sockets only (every node's
/// timer tells its own, so each socket hears it once).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AnnouncementsExpired {
    pub ids: Vec<i32>,
}

/// `user_id` changed the types they mute: the hub (of every node) stops pushing those live.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetMutedTypes {
    pub user_id: i32,
    pub muted: TypeSet,
}

/// Load every user's muted types from the database (at start-up; again after a channel-layer
/// outage, when other nodes' changes may have been missed).
#[derive(Message)]
#[rtype(result = "Result<(), sea_orm::DbErr>")]
pub struct LoadMutedTypes {
    pub db: DatabaseConnection,
}

/// A login was revoked: close the sockets opened with it, on every node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeCredential {
    pub credential_id: i32,
    pub token_hash: String,
}

/// Something arrived from another node through the channel layer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromLayer(pub LayerEvent);

/// The process is stopping: tell every socket "going away"; answers how many were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown;

/// Counts for health checks and tests.
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct Stats;

/// What the hub holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    pub sessions: usize,
    /// Groups with at least one member (empty groups are dropped).
    pub groups: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_frame_is_one_unmasked_final_text_frame() {
        // 125 bytes fit the short length form; longer payloads need the extended forms.
        for len in [0, 125, 126, 70_000] {
            let text = "x".repeat(len);
            let mut wire = BytesMut::from(&PushFrame::text(&text).bytes()[..]);
            // Parsed as a client parses what a server sends.
            let (fin, op, payload) = Parser::parse(&mut wire, false, 1 << 20)
                .expect("a valid frame")
                .expect("a whole frame");
            assert!(fin);
            assert_eq!(op, OpCode::Text);
            assert_eq!(payload.as_deref().unwrap_or_default(), text.as_bytes());
            assert!(wire.is_empty(), "nothing after the frame");
        }
    }
}
