//! The WebSocket transport: the upgrade handshake, the connection pump and the per-connection
//! session actor. Everything actix-web-actors specific stays in this folder.
mod session;
mod transport;
pub mod upgrade;
