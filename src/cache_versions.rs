//! Change counters for this server's read caches: moved after every committed write the server
//! makes, so a cache can tell that its copy may be stale without asking the database.
//!
//! A cache reads the version before its query and keeps it with what it built; it serves that
//! copy only while the version is unchanged. Every writer moves the version after its write has
//! committed (`crate::outbox` for what the entity hooks save, the services for their updates
//! and deletes). So a copy built from a query that ran before a commit carries a version read
//! before it, and is never served after the commit. Counters only grow, so equal means unchanged.
//!
//! Memory is fixed: users share [`USER_STRIPES`] counters (by id), so a write to one user's
//! notifications now and then costs another user a needless cache miss, never a stale page.
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the users' notification versions are spread over.
pub const USER_STRIPES: usize = 4096;

/// One server's change counters.
pub struct CacheVersions {
    announcements: AtomicU64,
    users: Box<[AtomicU64]>,
}

impl Default for CacheVersions {
    fn default() -> Self {
        Self {
            announcements: AtomicU64::new(0),
            users: (0..USER_STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CacheVersions {
    /// The version of the announcements as this server has changed them.
    pub fn announcements(&self) -> u64 {
        self.announcements.load(Ordering::Acquire)
    }

    /// The version of `user_id`'s notifications as this server has changed them.
    pub fn notifications(&self, user_id: i32) -> u64 {
        self.stripe(user_id).load(Ordering::Acquire)
    }

    /// Records a committed change to the announcements.
    pub fn touch_announcements(&self) {
        self.announcements.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a committed change to `user_id`'s notifications.
    pub fn touch_notifications(&self, user_id: i32) {
        self.stripe(user_id).fetch_add(1, Ordering::AcqRel);
    }

    fn stripe(&self, user_id: i32) -> &AtomicU64 {
        &self.users[user_id as u32 as usize % USER_STRIPES]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_only_for_what_changed() {
        let versions = CacheVersions::default();
        let (a, b, announcements) = (
            versions.notifications(1),
            versions.notifications(2),
            versions.announcements(),
        );
        versions.touch_notifications(1);
        assert_ne!(versions.notifications(1), a);
        assert_eq!(versions.notifications(2), b, "another user's copy stays good");
        assert_eq!(versions.announcements(), announcements);
        versions.touch_announcements();
        assert_ne!(versions.announcements(), announcements);
        assert_eq!(versions.notifications(2), b);
    }

    #[test]
    fn users_sharing_a_counter_see_each_other_only_as_changes() {
        let versions = CacheVersions::default();
        let (user, neighbour) = (7, 7 + USER_STRIPES as i32);
        let before = versions.notifications(user);
        versions.touch_notifications(neighbour);
        // A spurious miss for `user`, never a missed change for `neighbour`.
        assert_ne!(versions.notifications(user), before);
        assert_eq!(versions.notifications(neighbour), versions.notifications(user));
    }

    #[test]
    fn every_server_has_its_own_counters() {
        let (one, other) = (CacheVersions::default(), CacheVersions::default());
        one.touch_notifications(3);
        one.touch_announcements();
        assert_eq!((other.notifications(3), other.announcements()), (0, 0));
    }
}
