//! How the hub answers each message.
use actix::{Context, Handler};
use actix_web_actors::ws::{CloseCode, CloseReason};

use super::{
    messages::{
        Connect, CreatedNotification, Disconnect, FromLayer, Group, HubStats, Joined, NotificationsRead, PushKey,
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
        self.workers.entry(msg.worker.index).or_insert(msg.worker.sender);
        let member = || Member {
            recipient: msg.recipient.clone(),
            worker: msg.worker.index,
        };
        let subscribed = self.join(Group::User(msg.user_id), msg.session_id, member());
        self.join(Group::Global, msg.session_id, member());
        if let Some(joined) = msg.joined {
            let _ = joined.send(Joined { subscribed });
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
        if let Some(member) = self.remove_session(msg.session_id) {
            log::info!("closing slow WebSocket session {}: send queue full", msg.session_id);
            member.recipient.do_send(ToSession::Close(CloseReason {
                code: CloseCode::Policy,
                description: Some("too slow: catch up over REST".into()),
            }));
        }
    }
}

impl Handler<CreatedNotification> for NotificationHub {
    type Result = ();

    /// Serialized once here; every socket gets the same shared bytes.
    fn handle(&mut self, msg: CreatedNotification, ctx: &mut Context<Self>) {
        let (group, text, key) = match msg {
            CreatedNotification::User(n) => (
                Group::User(n.user_id),
                payloads::notification_push(&n),
                PushKey::Personal(n.id),
            ),
            CreatedNotification::Global(g) => (Group::Global, payloads::global_push(&g), PushKey::Global(g.id)),
        };
        self.layer.publish_deliver(group, &text, key);
        self.push_local(group, &text, key, ctx);
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
            LayerEvent::Deliver { group, text, key } => self.push_local(group, &text, key, ctx),
            LayerEvent::Revoke {
                credential_id,
                token_hash,
            } => self.close_credential(credential_id, &token_hash),
            LayerEvent::Reconnected => {
                self.recheck_credentials(ctx);
                self.link_back(ctx);
            }
            LayerEvent::Lost => self.link_lost(),
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
