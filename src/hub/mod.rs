//! The `NotificationHub` actor: owns group membership and fans pushes out to the sessions.
//!
//! `notification_hub.rs` holds its state (sessions by id, groups of ids), `handlers.rs` what it
//! does with each of `messages.rs`; `catch_up.rs` decides its catch-up after a channel-layer
//! outage (the hub delivers and runs the sweeps), `muted.rs` the muted types it filters by.
mod catch_up;
mod handlers;
pub mod messages;
mod muted;
mod notification_hub;

pub use notification_hub::NotificationHub;
