//! Herald: a real-time notification server (REST + WebSocket), the Rust re-creation of a
//! Django Channels notification service.
pub mod auth;
pub mod cache_versions;
pub mod cli;
pub mod configuration;
pub mod domain;
pub mod error;
pub mod http_conventions;
pub mod hub;
pub mod layer;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod payloads;
pub mod push;
pub mod retention;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod type_set;
pub mod ws;
