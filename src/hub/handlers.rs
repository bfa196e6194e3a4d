//! How the hub answers each message.
use actix::{ActorFutureExt, AsyncContext, Context, Handler, ResponseActFuture, WrapFuture};
use actix_http::ws::CloseCode;
use entity::outbox::CreatedNotification;

use super::{
    messages::{
        AnnouncementsExpired, Connect, Created, Disconnect, HubStats, Joined, LoadMutedTypes, NotificationsChanged,
        RevokeCredential, SetMutedTypes, Shutdown, Stats, ToSession, TooSlow,
    },
    notification_hub::{NotificationHub, Session},
};
use crate::{
    layer::LayerEvent,
    payloads,
    push::{Group, PushKey},
    services::preferences,
};

impl Handler<Connect> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        let session = Session {
            user_id: msg.user_id,
            credential_id: msg.credential_id,
            recipient: msg.recipient,
            worker: self.worker_slot(msg.worker),
        };
        let subscribed = self.add_session(msg.session_id, session);
        let _ = msg.joined.send(Joined { subscribed });
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

impl Handler<Created> for NotificationHub {
    type Result = ();

    /// Serialized once here; every socket gets the same shared bytes.
    fn handle(&mut self, Created(msg): Created, ctx: &mut Context<Self>) {
        let (group, text, key) = match msg {
            CreatedNotification::User(n) => {
                // Muted: saved and listed, never pushed (on no node: this is the one that saved it).
                if self.muted.is_muted(n.user_id, &n.notification_type) {
                    return;
                }
                (
                    Group::User(n.user_id),
                    payloads::notification_push(&n),
                    PushKey::Personal(n.id),
                )
            }
            CreatedNotification::Global(g) => (Group::Global, payloads::global_push(&g), PushKey::Global(g.id)),
            // Neither opens like a creation's push: nothing skips them as repeats of their id.
            CreatedNotification::GlobalEdited(g) => (Group::Global, payloads::global_edited_push(&g), PushKey::Other),
            CreatedNotification::GlobalRemoved(id) => {
                (Group::Global, payloads::global_removed_push(id), PushKey::Other)
            }
        };
        if group == Group::Global {
            self.announcements_changed();
        }
        self.layer.publish_deliver(group, &text, key);
        self.push_local(group, &text, key, ctx);
    }
}

impl Handler<AnnouncementsExpired> for NotificationHub {
    type Result = ();

    /// Never published: every node's timer tells its own sockets.
    fn handle(&mut self, msg: AnnouncementsExpired, _: &mut Context<Self>) {
        for id in msg.ids {
            self.deliver_push(Group::Global, &payloads::global_removed_push(id), PushKey::Other);
        }
    }
}

impl Handler<NotificationsChanged> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: NotificationsChanged, _: &mut Context<Self>) {
        let text = payloads::change_push(msg.change, &msg.ids, msg.unread_count);
        self.broadcast(Group::User(msg.user_id), text);
    }
}

impl Handler<SetMutedTypes> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: SetMutedTypes, _: &mut Context<Self>) {
        self.layer.publish_muted(msg.user_id, msg.muted);
        self.muted.set(msg.user_id, msg.muted);
    }
}

impl Handler<LoadMutedTypes> for NotificationHub {
    type Result = ResponseActFuture<Self, Result<(), sea_orm::DbErr>>;

    fn handle(&mut self, msg: LoadMutedTypes, _: &mut Context<Self>) -> Self::Result {
        self.preferences_db = Some(msg.db.clone());
        self.muted.loading();
        Box::pin(
            async move { preferences::all_muted(&msg.db).await }
                .into_actor(self)
                .map(|loaded, hub, _| match loaded {
                    Ok(all) => {
                        hub.muted.loaded(all);
                        Ok(())
                    }
                    Err(e) => {
                        hub.muted.load_failed();
                        Err(e)
                    }
                }),
        )
    }
}

impl Handler<RevokeCredential> for NotificationHub {
    type Result = ();

    fn handle(&mut self, msg: RevokeCredential, _: &mut Context<Self>) {
        self.layer.publish_revoke(msg.credential_id, &msg.token_hash);
        self.close_credential(msg.credential_id, &msg.token_hash);
    }
}

impl Handler<LayerEvent> for NotificationHub {
    type Result = ();

    fn handle(&mut self, event: LayerEvent, ctx: &mut Context<Self>) {
        match event {
            LayerEvent::Deliver { group, text, key } => {
                self.push_local(group, &text, key, ctx);
                // Another node changed an announcement: this node's expiry timer re-arms.
                if group == Group::Global {
                    self.announcements_changed();
                }
            }
            LayerEvent::Revoke {
                credential_id,
                token_hash,
            } => self.close_credential(credential_id, &token_hash),
            LayerEvent::Muted { user_id, muted } => self.muted.set(user_id, muted),
            LayerEvent::Reconnected => {
                self.recheck_credentials(ctx);
                self.link_back(ctx);
                // Another node's mute change may have been missed meanwhile.
                if let Some(db) = self.preferences_db.clone() {
                    let reload = self.handle(LoadMutedTypes { db }, ctx);
                    ctx.spawn(reload.map(|loaded, _, _| {
                        if let Err(e) = loaded {
                            log::warn!("cannot reload muted types after the channel layer came back: {e}");
                        }
                    }));
                }
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
            self.close_session(id, ToSession::close(CloseCode::Away, "server shutting down"));
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
