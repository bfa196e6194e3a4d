//! The work behind the routes, the sockets and the hub, one file per capability: queries and
//! state changes (the routes only parse and shape replies).
pub mod announcement_expiry;
pub mod bulk;
pub mod catch_up;
pub mod global_notifications;
pub mod group_commit;
pub mod idempotency;
pub mod notifications;
pub mod preferences;
pub mod users;
