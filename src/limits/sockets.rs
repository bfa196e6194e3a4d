//! Open WebSockets per user (`limits.sockets_per_user`): past it the handshake gets 429, so one
//! account cannot take every file descriptor of a node.
//!
//! Counted here at the handshake, in memory, rather than asked of the hub: the handshake path
//! stays one mutex lock, with no database query and no round trip to the hub.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use crate::error::ApiError;

/// Shards of the count: handshakes of different users on different workers rarely meet.
const SHARDS: usize = 16;
/// What a refused handshake is told to wait: sockets close at unknown times.
const RETRY_AFTER_SECS: u64 = 5;

/// Each user's open sockets on this node.
pub struct SocketCounts {
    cap: u32,
    shards: Vec<Mutex<HashMap<i32, u32>>>,
}

/// One open socket of a user; dropping it gives the place back.
pub struct SocketSlot {
    counts: Arc<SocketCounts>,
    user_id: i32,
}

impl SocketCounts {
    /// `cap` sockets per user; 0: no limit.
    pub fn new(cap: u32) -> Arc<Self> {
        Arc::new(Self {
            cap,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    fn shard(&self, user_id: i32) -> &Mutex<HashMap<i32, u32>> {
        &self.shards[user_id.unsigned_abs() as usize % SHARDS]
    }

    /// A place for one more socket of `user_id` (none needed when the limit is off), or 429.
    pub fn claim(self: &Arc<Self>, user_id: i32) -> Result<Option<SocketSlot>, ApiError> {
        if self.cap == 0 {
            return Ok(None);
        }
        let mut counts = self.shard(user_id).lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(user_id).or_insert(0);
        if *open >= self.cap {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: RETRY_AFTER_SECS,
                message: format!("too many open sockets for this user (at most {})", self.cap),
            });
        }
        *open += 1;
        Ok(Some(SocketSlot {
            counts: self.clone(),
            user_id,
        }))
    }

    /// Open sockets of `user_id` counted now.
    pub fn open(&self, user_id: i32) -> u32 {
        let counts = self.shard(user_id).lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&user_id).copied().unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .shard(self.user_id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.user_id) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_the_next_socket_until_one_closes() {
        let counts = SocketCounts::new(2);
        let a = counts.claim(7).expect("first").expect("a slot");
        let _b = counts.claim(7).expect("second");
        assert!(matches!(counts.claim(7), Err(ApiError::TooManyRequests { .. })));
        assert!(counts.claim(8).is_ok(), "another user has places of their own");
        drop(a);
        assert_eq!(counts.open(7), 1);
        assert!(counts.claim(7).is_ok());
    }

    #[test]
    fn no_cap_counts_nothing() {
        let counts = SocketCounts::new(0);
        assert!(counts.claim(1).expect("never refused").is_none());
        assert_eq!(counts.open(1), 0);
    }
}
