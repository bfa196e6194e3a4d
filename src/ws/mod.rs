//! The WebSocket transport: the upgrade handshake, the connection pump, the per-connection
//! session actor, each worker thread's delivery of pushes and a handshake's replay. Everything
//! actix-web-actors specific stays in this folder.
mod delivery;
mod inflow;
mod replay;
mod session;
mod transport;
pub mod upgrade;
