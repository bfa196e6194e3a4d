//! What every handler shares: the database, the hub and this server's outbox, the credential
//! service and the settings.
use std::sync::Arc;

use actix::Addr;
use sea_orm::DatabaseConnection;

use crate::{
    auth::AuthService,
    configuration::Settings,
    hub::NotificationHub,
    layer::LayerStatus,
    limits::{HttpLimits, connections::ConnectionCounts, sockets::SocketCounts},
    metrics::Metrics,
    outbox::Outbox,
    services::{global_notifications::LiveListCache, group_commit::NotificationWriter, notifications::ListCache},
    ws::SessionIds,
};

pub struct AppState {
    pub db: DatabaseConnection,
    pub hub: Addr<NotificationHub>,
    /// Where committed changes go: the hub, and the versions the read caches check.
    pub outbox: Outbox,
    pub auth: Arc<AuthService>,
    pub settings: Arc<Settings>,
    /// Origins allowed to open a cookie-authenticated WebSocket.
    pub allowed_origins: Arc<Vec<String>>,
    /// Whether the channel layer (Redis) is connected, for `/readyz`.
    pub layer: LayerStatus,
    /// The public announcements list, served from memory while fresh.
    pub live_globals: LiveListCache,
    /// Pages of users' notification lists, served from memory while unchanged (single node).
    pub notification_lists: ListCache,
    /// Saves personal notifications, the creates that arrive together in one statement.
    pub notification_writer: NotificationWriter,
    /// This server's Prometheus series (`metrics`).
    pub metrics: Arc<Metrics>,
    /// Ids for this server's WebSocket sessions.
    pub session_ids: SessionIds,
    /// Open WebSockets per user (`limits.sockets_per_user`).
    pub sockets: Arc<SocketCounts>,
    /// Open connections per client address (`limits.connections_per_address`).
    pub connections: Arc<ConnectionCounts>,
    /// Failed logins and registrations per client, and who the client is.
    pub http_limits: HttpLimits,
}
