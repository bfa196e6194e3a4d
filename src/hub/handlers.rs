//! How the hub answers each message.
use actix::{Context, Handler};
use actix_web_actors::ws::{CloseCode, CloseReason};

use super::{
    messages::{
        AnnouncementsExpired, Connect, CreatedNotification, Disconnect, FromLayer, Group, HubStats, NotificationsRead,
        RevokeCredential, Shutdown, Stats, ToSession, TooSlow,
    },
    server::{Member, NotificationHub, SessionInfo},
};
use crate::{layer::LayerEvent, payloads};

impl Handler<Connect> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        self.sessions.insert(
            msg.session_id,
            SessionInfo {
                user_id: msg.user_id,
                credential_id: msg.credential_id,
            },
        );
        self.metrics.websocket_connections.set(self.sessions.len() as i64);
        self.workers.entry(msg.worker.index).or_insert(msg.worker.sender);
        let member = || Member {
            recipient: msg.recipient.clone(),
            worker: msg.worker.index,
        };
        self.join(Group::User(msg.user_id), msg.session_id, member());
        self.join(Group::Global, msg.session_id, member());
        if let Some(joined) = msg.joined {
            let _ = joined.send(());
        }
    }
}

impl Handler<Disconnect> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.remove_session(msg.session_id);
    }
}

impl Handler<TooSlow> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: TooSlow, _: &mut Context<Self>) {
        self.close_too_slow(msg.session_id);
    }
}

impl Handler<CreatedNotification> for NotificationHub {
    type Result = ();

    /// Serialized once here; every socket gets the same shared bytes.
    fn handle(&mut self, msg: CreatedNotification, _: &mut Context<Self>) {
        match msg {
            CreatedNotification::User(n) => self.broadcast(Group::User(n.user_id), payloads::notification_push(&n)),
            CreatedNotification::Global(g) => {
                self.broadcast(Group::Global, payloads::global_push(&g));
                self.announcements_changed();
            }
            CreatedNotification::GlobalRemoved(id) => {
                self.broadcast(Group::Global, payloads::global_removed_push(id));
                self.announcements_changed();
            }
        }
    }
}

impl Handler<AnnouncementsExpired> for NotificationHub {
    type Result = ();

    /// Never published: every node's timer tells its own sockets.
    fn handle(&mut self, msg: AnnouncementsExpired, _: &mut Context<Self>) {
        for id in msg.ids {
            self.deliver_local(Group::Global, &payloads::global_removed_push(id));
        }
    }
}

impl Handler<NotificationsRead> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: NotificationsRead, _: &mut Context<Self>) {
        let text = payloads::read_push(&msg.ids, msg.unread_count);
        self.broadcast(Group::User(msg.user_id), text);
    }
}

impl Handler<RevokeCredential> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: RevokeCredential, _: &mut Context<Self>) {
        self.layer.publish_revoke(msg.credential_id, &msg.token_hash);
        self.close_credential(msg.credential_id, &msg.token_hash);
    }
}

impl Handler<FromLayer> for NotificationHub {
    type Result = ();

    fn handle(&mut self, FromLayer(event): FromLayer, ctx: &mut Context<Self>) {
        match event {
            LayerEvent::Deliver { group, text } => {
                self.deliver_local(group, &text);
                // Another node changed an announcement: this node's expiry timer re-arms.
                if group == Group::Global {
                    self.announcements_changed();
                }
            }
            LayerEvent::Revoke {
                credential_id,
                token_hash,
            } => self.close_credential(credential_id, &token_hash),
            LayerEvent::Reconnected => self.recheck_credentials(ctx),
        }
    }
}

impl Handler<Shutdown> for NotificationHub {
    type Result = usize;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> usize {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        let told = ids.len();
        for id in ids {
            if let Some(member) = self.remove_session(id) {
                member.recipient.do_send(ToSession::Close(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server shutting down".into()),
                }));
            }
        }
        told
    }
}

impl Handler<Stats> for NotificationHub {
    type Result = actix::MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(HubStats {
            sessions: self.sessions.len(),
            groups: self.groups.len(),
        })
    }
}
