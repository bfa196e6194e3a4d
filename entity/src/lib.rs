//! Herald's SeaORM entities and their save hooks.
//!
//! The hooks live here (the orphan rule puts `ActiveModelBehavior` impls beside the entities):
//! saving a [`notification`] or [`global_notification`] hands an
//! [`outbox::CreatedNotification`] to the sink of the current [`outbox::scope`] (the server's
//! hub), the Rust twin of Django's `post_save` signal; [`transaction::run`] holds it back until
//! the commit.
pub mod auth_token;
pub mod global_notification;
pub mod idempotency_key;
pub mod notification;
pub mod notification_preference;
pub mod outbox;
pub mod transaction;
pub mod user;
