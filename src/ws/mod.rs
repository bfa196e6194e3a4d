//! The WebSocket transport: the upgrade handshake, the connection pump, the per-connection
//! session actor and each worker thread's delivery of pushes. Everything actix-web-actors
//! specific stays in this folder.
mod delivery;
mod inflow;
mod session;
mod transport;
pub mod upgrade;
