//! Herald's SeaORM entities and their save hooks.
//!
//! The hooks live here (the orphan rule puts `ActiveModelBehavior` impls beside the entities):
//! saving a [`notification`] or [`global_notification`] hands a [`broadcast::CreatedNotification`]
//! to the hub of the running actix `System`, the Rust twin of Django's `post_save` signal.
pub mod auth_token;
pub mod broadcast;
pub mod changes;
pub mod global_notification;
pub mod idempotency_key;
pub mod notification;
pub mod notification_preference;
pub mod transaction;
pub mod user;
