//! What the REST routes and the WebSocket sessions both do: queries and state changes.
pub mod announcement_expiry;
pub mod bulk;
pub mod catch_up;
pub mod global_notifications;
pub mod group_commit;
pub mod idempotency;
pub mod notifications;
pub mod preferences;
pub mod users;
