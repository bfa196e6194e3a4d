//! Herald: a real-time notification server (REST + WebSocket), the Rust re-creation of a
//! Django Channels notification service.
pub mod auth;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod hub;
pub mod layer;
pub mod limits;
pub mod payloads;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod ws;
