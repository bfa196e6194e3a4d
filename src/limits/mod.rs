//! Limits against abuse: what one client, user or address may take of the server.
pub mod connections;
pub mod sockets;
