//! The WebSocket transport: the upgrade handshake (`upgrade`), the connection pump
//! (`transport`, `inflow`), the per-connection session actor (`session`), its registration in
//! the hub and its worker thread (`registration`), each worker thread's delivery of pushes
//! (`delivery`) and a handshake's replay (`replay`). Everything actix-web-actors specific stays
//! in this folder.
mod delivery;
mod inflow;
mod registration;
mod replay;
mod session;
mod transport;
pub mod upgrade;

pub use delivery::Delivery;
pub use registration::SessionIds;
