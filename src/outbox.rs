//! This server's end of `entity::outbox`: where the saves the entity hooks publish go once
//! committed. Each moves this server's cache versions, then goes to this server's hub, which
//! pushes it: never another server's, even with several in one process.
//!
//! Everything that can save runs in the outbox's scope ([`Outbox::scope`]): every request (a
//! middleware, `startup`), the group commit writer, a WebSocket session's actions; a task
//! spawned from a request carries it along (`entity::outbox::carry`).
use std::{future::Future, sync::Arc};

use actix::Addr;
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};
use entity::outbox::{CreatedNotification, PushSink};

use crate::{
    cache_versions::CacheVersions,
    hub::{NotificationHub, messages::Created},
};

/// Where this server's committed saves go: its hub and its cache versions.
#[derive(Clone)]
pub struct Outbox(Arc<Sink>);

struct Sink {
    hub: Addr<NotificationHub>,
    versions: Arc<CacheVersions>,
}

impl PushSink for Sink {
    fn push(&self, message: CreatedNotification) {
        // Before the hub has it: a client that fetches on seeing the push finds its cache stale.
        match &message {
            CreatedNotification::User(n) => self.versions.touch_notifications(n.user_id),
            CreatedNotification::Global(_)
            | CreatedNotification::GlobalEdited(_)
            | CreatedNotification::GlobalRemoved(_) => self.versions.touch_announcements(),
        }
        self.hub.do_send(Created(message));
    }

    fn edited(&self, user_id: i32) {
        self.versions.touch_notifications(user_id);
    }
}

impl Outbox {
    pub fn new(hub: Addr<NotificationHub>, versions: Arc<CacheVersions>) -> Self {
        Self(Arc::new(Sink { hub, versions }))
    }

    /// Runs `future` with what its saves publish going to this server.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        entity::outbox::scope(self.0.clone(), future)
    }

    /// The hub that pushes what this outbox receives.
    pub fn hub(&self) -> &Addr<NotificationHub> {
        &self.0.hub
    }

    /// This server's cache versions, which the outbox moves.
    pub fn versions(&self) -> &Arc<CacheVersions> {
        &self.0.versions
    }

    /// Middleware: each request runs in this outbox's scope.
    pub fn around_request<B: MessageBody>(
        &self,
        req: ServiceRequest,
        next: Next<B>,
    ) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<B> {
        self.scope(next.call(req))
    }
}
