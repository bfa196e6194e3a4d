//! The channel layer: how pushes cross between Herald nodes (the role of Django's channel layer).
//!
//! The hub always delivers to its own sessions itself; the layer carries the same bytes to the
//! other nodes, which deliver them to theirs. In-process (one node) carries nothing; Redis
//! pub/sub (`redis.rs`) carries pushes between nodes sharing one database.
pub mod redis;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use actix::Message;
use bytestring::ByteString;
use tokio::sync::oneshot;

use self::redis::RedisLayer;
use crate::{
    push::{Group, PushKey},
    type_set::TypeSet,
};

/// What one node tells the others, as the hub receives it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum LayerEvent {
    /// Deliver this text frame to the local members of `group`.
    Deliver {
        group: Group,
        text: ByteString,
        key: PushKey,
    },
    /// A login was revoked: drop it from caches and close its sockets.
    Revoke { credential_id: i32, token_hash: String },
    /// A user changed their muted types.
    Muted { user_id: i32, muted: TypeSet },
    /// The layer (re)connected and its subscriptions stand: revocations and pushes published
    /// while it was down were missed, so the hub re-checks its sessions' logins and catches up
    /// its users' notifications from the database.
    Reconnected,
    /// The link to the other nodes is lost: until it is back, what they publish is missed.
    Lost,
}

/// Whether the layer can currently reach the other nodes (always, in-process).
#[derive(Clone, Debug)]
pub struct LayerStatus(Arc<AtomicBool>);

impl LayerStatus {
    pub fn new(ready: bool) -> Self {
        Self(Arc::new(AtomicBool::new(ready)))
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }
}

/// The configured layer.
pub enum ChannelLayer {
    /// One node: nothing crosses.
    InProcess,
    /// Several nodes: pushes cross through Redis pub/sub.
    Redis(RedisLayer),
}

impl ChannelLayer {
    /// Carries a push to the other nodes' members of `group`.
    pub fn publish_deliver(&self, group: Group, text: &ByteString, key: PushKey) {
        match self {
            ChannelLayer::InProcess => {}
            ChannelLayer::Redis(redis) => redis.publish_deliver(group, text, key),
        }
    }

    /// Whether other nodes exist whose pushes can be missed (then the hub catches up after an
    /// outage).
    pub fn is_shared(&self) -> bool {
        matches!(self, ChannelLayer::Redis(_))
    }

    /// Carries a revocation to the other nodes.
    pub fn publish_revoke(&self, credential_id: i32, token_hash: &str) {
        match self {
            ChannelLayer::InProcess => {}
            ChannelLayer::Redis(redis) => redis.publish_revoke(credential_id, token_hash),
        }
    }

    /// Carries a user's new muted types to the other nodes.
    pub fn publish_muted(&self, user_id: i32, muted: TypeSet) {
        match self {
            ChannelLayer::InProcess => {}
            ChannelLayer::Redis(redis) => redis.publish_muted(user_id, muted),
        }
    }

    /// This node now has members in `group`: start receiving its traffic. Answers, when the
    /// link is up, what tells once the subscription stands.
    pub fn join(&self, group: Group) -> Option<oneshot::Receiver<()>> {
        match self {
            ChannelLayer::InProcess => None,
            ChannelLayer::Redis(redis) => redis.join(group),
        }
    }

    /// This node has no members left in `group`: stop receiving its traffic.
    pub fn leave(&self, group: Group) {
        match self {
            ChannelLayer::InProcess => {}
            ChannelLayer::Redis(redis) => redis.leave(group),
        }
    }
}
