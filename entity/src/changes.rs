//! Change counters for read caches: bumped after saves in this process, so a cache can tell
//! when its copy may be stale without asking the database.
//!
//! Hooks bump after `insert`/`update` (already committed on a plain connection); inside
//! [`crate::transaction::run`] the hook's bump may precede the commit, so the commit bumps the
//! epoch again. Each version is a sum of counters that only grow, so equal means unchanged.
use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

static EPOCH: AtomicU64 = AtomicU64::new(0);
static ANNOUNCEMENTS: AtomicU64 = AtomicU64::new(0);
static USERS: Mutex<Option<HashMap<i32, u64>>> = Mutex::new(None);

/// The version of the announcements table as this process has changed it.
pub fn announcements_version() -> u64 {
    ANNOUNCEMENTS.load(Ordering::Acquire) + EPOCH.load(Ordering::Acquire)
}

/// The version of one user's notifications as this process has changed them.
pub fn notifications_version(user_id: i32) -> u64 {
    let user = USERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|users| users.get(&user_id).copied())
        .unwrap_or(0);
    user + EPOCH.load(Ordering::Acquire)
}

/// Records a change to the announcements.
pub fn touch_announcements() {
    ANNOUNCEMENTS.fetch_add(1, Ordering::AcqRel);
}

/// Records a change to `user_id`'s notifications (call after the write has committed).
pub fn touch_notifications(user_id: i32) {
    let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
    *users.get_or_insert_with(HashMap::new).entry(user_id).or_insert(0) += 1;
}

/// Records that a transaction committed (it may have changed anything).
pub(crate) fn bump_epoch() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_only_for_what_changed() {
        let (a, b) = (notifications_version(900_001), notifications_version(900_002));
        touch_notifications(900_001);
        assert_ne!(notifications_version(900_001), a);
        let before = announcements_version();
        bump_epoch();
        assert_ne!(announcements_version(), before);
        assert_ne!(notifications_version(900_002), b);
    }
}
