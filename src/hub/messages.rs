//! Messages to and from the hub. Each is small and says one thing.
use actix::{Message, Recipient};
use actix_http::ws::{CloseCode, CloseReason};
use entity::outbox::CreatedNotification;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{
    payloads::{Change, PushFrame},
    push::PushKey,
    type_set::TypeSet,
};

/// A save the entity hooks published has committed: push it (sent by `crate::outbox`).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Created(pub CreatedNotification);

/// Hub → one worker thread: write this push to these of its sessions (`ws::delivery`).
#[derive(Debug)]
pub struct Deliver {
    pub frame: PushFrame,
    pub key: PushKey,
    pub sessions: Vec<u64>,
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

impl ToSession {
    /// Close the socket with `code`, saying `why`.
    pub fn close(code: CloseCode, why: &str) -> Self {
        ToSession::Close(CloseReason {
            code,
            description: Some(why.into()),
        })
    }
}

/// A session joins its user's group and the global group (sent by its `ws::Registration`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session_id: u64,
    pub user_id: i32,
    pub credential_id: i32,
    pub recipient: Recipient<ToSession>,
    /// The delivery queue of the worker thread the session runs on: where its pushes go.
    /// Bounded (`websocket.worker_queue_len`): see `NotificationHub::deliver_push`.
    pub worker: mpsc::Sender<Deliver>,
    /// Told once the session is in its groups.
    pub joined: oneshot::Sender<Joined>,
}

/// The hub's answer to `Connect`: the session is in its groups.
#[derive(Debug)]
pub struct Joined {
    /// The user is new to this node and the channel layer is subscribing to its channel: told
    /// once the subscription stands (dropped if the link fails first). Until then another node's
    /// push for the user could be missed, so the handshake waits for it (`ws::upgrade`).
    pub subscribed: Option<oneshot::Receiver<()>>,
}

/// A session has ended (its `ws::Registration` was dropped): it leaves its groups.
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
