//! The `NotificationHub` actor: owns group membership and fans pushes out to the sessions.
mod catch_up;
mod handlers;
pub mod messages;
mod muted;
mod server;

pub use messages::Group;
pub use server::NotificationHub;
