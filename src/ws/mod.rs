//! The WebSocket transport: the upgrade route and the per-connection session actor.
//! Everything actix-web-actors specific stays in this folder.
mod route;
mod session;

pub use route::config;
