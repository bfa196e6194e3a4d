//! A session's registration: its entry in its worker thread's [`Delivery`] and in the hub's
//! groups, made at the handshake and removed together when it is dropped.
use std::{
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

use actix::{Addr, Recipient};
use tokio::sync::oneshot;

use super::{delivery::Delivery, transport::Outlet};
use crate::hub::{
    NotificationHub,
    messages::{Connect, Disconnect, Joined, ToSession},
};

/// Hands out this server's session ids: unique among its hub's sessions.
#[derive(Debug, Default)]
pub struct SessionIds(AtomicU64);

impl SessionIds {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The one owner of a session's places: while it lives, the hub counts the session in its
/// groups and the worker thread writes its pushes to its socket; dropped, neither does.
pub struct Registration {
    id: u64,
    user_id: i32,
    credential_id: i32,
    delivery: Rc<Delivery>,
    hub: Addr<NotificationHub>,
    /// Until `join`: told once the hub has the session in its groups.
    joined: Option<oneshot::Sender<Joined>>,
}

impl Registration {
    /// At the handshake: pushes for session `id` (of `user_id`, opened with login
    /// `credential_id`) go to `outlet` from now on. The session joins the hub's groups with
    /// [`Registration::join`] once its actor runs (the hub needs its address: actix-web-actors
    /// makes it with the actor); the hub's answer then arrives on the returned receiver.
    pub fn new(
        id: u64,
        user_id: i32,
        credential_id: i32,
        outlet: Outlet,
        delivery: Rc<Delivery>,
        hub: Addr<NotificationHub>,
    ) -> (Self, oneshot::Receiver<Joined>) {
        delivery.add(id, outlet);
        let (joined, answer) = oneshot::channel();
        let registration = Self {
            id,
            user_id,
            credential_id,
            delivery,
            hub,
            joined: Some(joined),
        };
        (registration, answer)
    }

    /// The session's actor runs: the session joins its user's group and the global group.
    pub fn join(&mut self, recipient: Recipient<ToSession>) {
        let Some(joined) = self.joined.take() else {
            return;
        };
        self.hub.do_send(Connect {
            session_id: self.id,
            user_id: self.user_id,
            credential_id: self.credential_id,
            recipient,
            worker: self.delivery.queue(),
            joined,
        });
    }
}

impl Drop for Registration {
    /// The session leaves both places; its outlet takes no more pushes, so none can follow
    /// whatever it sent last.
    fn drop(&mut self) {
        if let Some(outlet) = self.delivery.remove(self.id) {
            outlet.close();
        }
        self.hub.do_send(Disconnect { session_id: self.id });
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, task::Waker, time::Duration};

    use actix::{Actor, Context, Handler};
    use bytes::Bytes;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::{
        auth::AuthService,
        hub::messages::{HubStats, Stats},
        layer::ChannelLayer,
        metrics::Metrics,
        push::PushKey,
        ws::transport::Pushed,
    };

    /// Stands in for a session actor.
    struct Session;

    impl Actor for Session {
        type Context = Context<Self>;
    }

    impl Handler<ToSession> for Session {
        type Result = ();

        fn handle(&mut self, _: ToSession, _: &mut Context<Self>) {}
    }

    async fn hub() -> Addr<NotificationHub> {
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        let metrics = Arc::new(Metrics::new(false).expect("metrics"));
        NotificationHub::new(
            ChannelLayer::InProcess,
            Arc::new(AuthService::new(db, 1)),
            Duration::from_secs(30),
            metrics,
        )
        .start()
    }

    /// An outlet on one end of a loopback connection (the other end is kept open).
    async fn outlet() -> (Outlet, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let client = TcpStream::connect(listener.local_addr().expect("its address"))
            .await
            .expect("connected");
        let (server, _) = listener.accept().await.expect("accepted");
        let (_, write) = server.into_split();
        (
            Outlet::new(write, Bytes::new(), 8, Waker::noop().clone(), false),
            client,
        )
    }

    async fn sessions(hub: &Addr<NotificationHub>) -> usize {
        let HubStats { sessions, .. } = hub.send(Stats).await.expect("the hub answers");
        sessions
    }

    #[actix_web::test]
    async fn dropping_the_registration_leaves_the_hub_and_the_worker_thread() {
        let hub = hub().await;
        let delivery = Delivery::start(hub.clone(), 16);
        let (outlet, _peer) = outlet().await;
        let (mut registration, joined) = Registration::new(7, 1, 1, outlet.clone(), delivery.clone(), hub.clone());
        assert_eq!(delivery.len(), 1, "the worker thread has it from the handshake on");
        registration.join(Session.start().recipient());
        joined.await.expect("the hub answers the join");
        assert_eq!(sessions(&hub).await, 1);

        drop(registration);
        assert_eq!(delivery.len(), 0);
        assert_eq!(sessions(&hub).await, 0, "the hub let it go");
        assert_eq!(
            outlet.push(&Bytes::from_static(b"late"), PushKey::Other),
            Pushed::Dropped,
            "nothing is written after the end"
        );
    }
}
