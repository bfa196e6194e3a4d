//! The hub's state, shaped like actix's chat example: sessions by id, and groups of session ids.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Recipient, WrapFuture};
use actix_http::ws::CloseCode;
use bytestring::ByteString;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    catch_up::{Route, SWEEP_INTERVAL, Swept, Watch},
    messages::{Deliver, ToSession},
    muted::MutedTypes,
};
use crate::{
    auth::AuthService,
    layer::ChannelLayer,
    metrics::Metrics,
    payloads::{self, PushFrame},
    push::{Group, PushKey},
};

/// How often the heartbeat timer pings the next slice of sessions. Short, so each slice is
/// small: a burst of pings and pongs delays the pushes queued behind it.
const HEARTBEAT_TICK: Duration = Duration::from_millis(100);

/// A worker thread's place in `NotificationHub::workers`.
pub(super) type WorkerSlot = usize;

/// A connected session.
pub(super) struct Session {
    pub user_id: i32,
    pub credential_id: i32,
    /// Its actor: told to close, or to ping its peer.
    pub recipient: Recipient<ToSession>,
    pub worker: WorkerSlot,
}

/// The members of a group: session ids, each with the worker thread it runs on, so a push is
/// sorted by thread without looking each session up.
pub(super) type Members = HashMap<u64, WorkerSlot>;

/// Owns group membership (`user_{id}_notifications`, `global_notifications`) and delivers
/// pushes to the sessions' sockets, locally through the worker threads they run on and, through
/// the channel layer, on other nodes.
pub struct NotificationHub {
    pub(super) sessions: HashMap<u64, Session>,
    /// Only groups with members: a group is dropped when its last member leaves.
    pub(super) groups: HashMap<Group, Members>,
    /// The delivery queue of each worker thread that has had sessions (`ws::delivery`), in the
    /// order they first appeared; a session's `worker` is its place here.
    pub(super) workers: Vec<mpsc::Sender<Deliver>>,
    pub(super) layer: ChannelLayer,
    pub(super) auth: Arc<AuthService>,
    /// Each user's muted types (only users who mute something): their pushes are dropped here,
    /// before any socket or node sees them. Kept for every user, not just connected ones, so the
    /// node that saves a notification can decide without a query.
    pub(super) muted: MutedTypes,
    /// Where the muted types are reloaded from after a channel-layer outage.
    pub(super) preferences_db: Option<DatabaseConnection>,
    /// How often every session is told to ping its peer.
    heartbeat_interval: Duration,
    /// Counts pushes (once each), open sessions and slow sockets.
    pub(super) metrics: Arc<Metrics>,
    /// Woken whenever an announcement changes (here or on another node), so the expiry timer
    /// (`services::announcement_expiry`) re-arms for the next expiry.
    pub(super) announcements_changed: Option<Arc<Notify>>,
    /// Catching up from the database after the channel layer failed (several nodes only).
    pub(super) watch: Option<Watch>,
}

impl NotificationHub {
    pub fn new(
        layer: ChannelLayer,
        auth: Arc<AuthService>,
        heartbeat_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            sessions: HashMap::new(),
            groups: HashMap::new(),
            workers: Vec::new(),
            layer,
            auth,
            muted: MutedTypes::default(),
            preferences_db: None,
            heartbeat_interval,
            metrics,
            announcements_changed: None,
            watch: None,
        }
    }

    /// Wakes `notify` on every announcement change this hub sees.
    pub fn watching_announcements(mut self, notify: Arc<Notify>) -> Self {
        self.announcements_changed = Some(notify);
        self
    }

    pub(super) fn announcements_changed(&self) {
        if let Some(notify) = &self.announcements_changed {
            notify.notify_one();
        }
    }

    /// With a channel layer shared by several nodes: catches up from `db` what the other nodes
    /// created while the link to them was down (`catch_up`). `newest` are the largest
    /// notification and announcement ids stored now.
    pub fn catching_up_from(mut self, db: DatabaseConnection, newest: (i32, i32)) -> Self {
        if self.layer.is_shared() {
            self.watch = Some(Watch::new(db, newest));
        }
        self
    }

    /// Sends `text` to this node's members of `group` and to the other nodes' through the layer.
    pub(super) fn broadcast(&mut self, group: Group, text: ByteString) {
        self.layer.publish_deliver(group, &text, PushKey::Other);
        self.deliver_push(group, &text, PushKey::Other);
    }

    /// Sends `text`, which carries `key`, to this node's members of `group`: one `Deliver` per
    /// worker thread they are on, which writes it to their sockets. The frame is made here, once
    /// for all of them.
    ///
    /// Each worker's queue is bounded (`websocket.worker_queue_len`): a worker that has that many
    /// pushes still to write cannot keep up, and queuing more would grow memory without limit
    /// while producers (`do_send`) never wait. A push that finds the queue full closes the
    /// sockets it was for on that worker as too slow (1008: catch up over REST), as a socket's
    /// own full send queue does: every socket gets each saved push, or a close, never a gap.
    pub(super) fn deliver_push(&mut self, group: Group, text: &str, key: PushKey) {
        let members = self.groups.get(&group);
        // Once per push, not per socket: the push path stays as cheap as it was.
        self.metrics.count_push(text, members.map_or(0, HashMap::len));
        let Some(members) = members else {
            return;
        };
        // As many entries as worker threads: a short list beats a map.
        let mut batches: Vec<(WorkerSlot, Vec<u64>)> = Vec::new();
        for (&id, &worker) in members {
            match batches.iter_mut().find(|(slot, _)| *slot == worker) {
                Some((_, sessions)) => sessions.push(id),
                None => batches.push((worker, vec![id])),
            }
        }
        let frame = PushFrame::text(text);
        let mut overrun = Vec::new();
        for (worker, sessions) in batches {
            if let Some(link) = self.workers.get(worker) {
                let deliver = Deliver {
                    frame: frame.clone(),
                    key,
                    sessions,
                };
                match link.try_send(deliver) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(deliver)) => {
                        log::warn!(
                            "worker {worker} cannot keep up with pushes: closing {} sessions as too slow",
                            deliver.sessions.len()
                        );
                        overrun.extend(deliver.sessions);
                    }
                    // The worker's runtime is gone, and its sessions with it.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        for id in overrun {
            self.close_too_slow(id);
        }
    }

    /// Takes a session whose pushes cannot be delivered out of its groups and closes it (1008).
    pub(super) fn close_too_slow(&mut self, id: u64) {
        if self.close_session(id, ToSession::close(CloseCode::Policy, "too slow: catch up over REST")) {
            self.metrics.websocket_slow_closed.inc();
            log::info!("closing slow WebSocket session {id}: its pushes cannot be delivered");
        }
    }

    /// Takes a session out of its groups and tells it to close; `false` if it had left already.
    pub(super) fn close_session(&mut self, id: u64, close: ToSession) -> bool {
        match self.remove_session(id) {
            Some(session) => {
                session.recipient.do_send(close);
                true
            }
            None => false,
        }
    }

    /// Adds a session to its user's group and the global group; for a user new to this node,
    /// answers what tells once the channel layer's subscription to it stands (see `Joined`).
    pub(super) fn add_session(&mut self, id: u64, session: Session) -> Option<oneshot::Receiver<()>> {
        let subscribed = self.join(Group::User(session.user_id), id, session.worker);
        self.join(Group::Global, id, session.worker);
        self.sessions.insert(id, session);
        self.metrics.websocket_connections.set(self.sessions.len() as i64);
        subscribed
    }

    /// The place of the worker thread whose delivery queue is `worker`, given on its first session.
    pub(super) fn worker_slot(&mut self, worker: mpsc::Sender<Deliver>) -> WorkerSlot {
        match self.workers.iter().position(|known| known.same_channel(&worker)) {
            Some(slot) => slot,
            None => {
                self.workers.push(worker);
                self.workers.len() - 1
            }
        }
    }

    /// Removes a session from every group, dropping groups that become empty.
    pub(super) fn remove_session(&mut self, id: u64) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        self.metrics.websocket_connections.set(self.sessions.len() as i64);
        self.leave(Group::User(session.user_id), id);
        self.leave(Group::Global, id);
        Some(session)
    }

    fn join(&mut self, group: Group, id: u64, worker: WorkerSlot) -> Option<oneshot::Receiver<()>> {
        let mut subscribed = None;
        let members = self.groups.entry(group).or_insert_with(|| {
            subscribed = self.layer.join(group);
            Members::new()
        });
        members.insert(id, worker);
        subscribed
    }

    fn leave(&mut self, group: Group, id: u64) {
        let Some(members) = self.groups.get_mut(&group) else {
            return;
        };
        members.remove(&id);
        if members.is_empty() {
            self.groups.remove(&group);
            self.layer.leave(group);
        }
    }

    /// Closes this node's sessions opened with a revoked credential.
    pub(super) fn close_credential(&mut self, credential_id: i32, token_hash: &str) {
        self.auth.forget(token_hash);
        self.close_sessions_of(credential_id);
    }

    /// After a channel-layer outage: closes the sessions whose login was revoked meanwhile on
    /// another node (that node's message was missed).
    pub(super) fn recheck_credentials(&mut self, ctx: &mut Context<Self>) {
        let checked: Vec<i32> = self
            .sessions
            .values()
            .map(|session| session.credential_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if checked.is_empty() {
            return;
        }
        let auth = self.auth.clone();
        ctx.spawn(
            async move { auth.existing_credentials(&checked).await.map(|live| (checked, live)) }
                .into_actor(self)
                .map(|result, hub, _| match result {
                    Ok((checked, live)) => {
                        for id in checked.into_iter().filter(|id| !live.contains(id)) {
                            hub.close_sessions_of(id);
                        }
                    }
                    Err(e) => log::warn!("cannot re-check logins after the channel layer came back: {e}"),
                }),
        );
    }

    fn close_sessions_of(&mut self, credential_id: i32) {
        let ids: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.credential_id == credential_id)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.close_session(id, ToSession::close(CloseCode::Other(4001), "credential revoked"));
        }
    }

    /// Delivers a push (created here or arriving from another node) to this node's members,
    /// unless the hub is catching up (`catch_up`), which then reads it from the database.
    pub(super) fn push_local(&mut self, group: Group, text: &str, key: PushKey, ctx: &mut Context<Self>) {
        match self.watch.as_mut().map_or(Route::Deliver, |watch| watch.route(key)) {
            Route::Deliver => self.deliver_push(group, text, key),
            Route::Drop => {}
            Route::Sweep => self.sweep(ctx),
        }
    }

    /// The link to the other nodes is lost: catch up from the database until it is back.
    pub(super) fn link_lost(&mut self) {
        if let Some(watch) = &mut self.watch {
            watch.link_lost();
        }
    }

    /// The link stands again: one more sweep, and the live stream is trusted again.
    pub(super) fn link_back(&mut self, ctx: &mut Context<Self>) {
        if self.watch.as_mut().is_some_and(Watch::link_back) {
            self.sweep(ctx);
        }
    }

    fn watch_tick(&mut self, ctx: &mut Context<Self>) {
        if self.watch.as_mut().is_some_and(Watch::tick) {
            self.sweep(ctx);
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if let Some(read) = self.watch.as_mut().and_then(Watch::start_sweep) {
            ctx.spawn(read.into_actor(self).map(|swept, hub, ctx| hub.swept(swept, ctx)));
        }
    }

    /// Delivers what a sweep found, in id order; sweeps again if it is to.
    fn swept(&mut self, swept: Result<Swept, DbErr>, ctx: &mut Context<Self>) {
        let Some(caught) = self.watch.as_mut().and_then(|watch| watch.swept(swept)) else {
            return;
        };
        for n in &caught.personal {
            let group = Group::User(n.user_id);
            if self.groups.contains_key(&group) {
                let text = payloads::notification_push(n);
                self.deliver_push(group, &text, PushKey::Personal(n.id));
            }
        }
        for g in &caught.global {
            let text = payloads::global_push(g);
            self.deliver_push(Group::Global, &text, PushKey::Global(g.id));
        }
        if caught.again {
            self.sweep(ctx);
        }
    }
}

/// Pushes reach the hub with `do_send`, which never drops a message for want of room.
impl Actor for NotificationHub {
    type Context = Context<Self>;

    /// One timer drives every session's heartbeat. A timer per session would be polled on each
    /// of its wakes, that is on every push (it showed in the fan-out profile), and would cost
    /// each idle socket a timer entry. Each tick pings one slice of the sessions (by id), so
    /// every session is pinged once per interval and the pings are spread evenly over it: all
    /// at once, 10,000 pings and their pongs doubled the fan-out round they met.
    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.watch.is_some() {
            ctx.run_interval(SWEEP_INTERVAL, |hub, ctx| hub.watch_tick(ctx));
        }
        let slices = (self.heartbeat_interval.as_millis() / HEARTBEAT_TICK.as_millis()).max(1) as u64;
        let mut tick: u64 = 0;
        ctx.run_interval(self.heartbeat_interval / slices as u32, move |hub, _| {
            let slice = tick % slices;
            tick = tick.wrapping_add(1);
            for (id, session) in &hub.sessions {
                if id % slices == slice {
                    session.recipient.do_send(ToSession::Heartbeat);
                }
            }
        });
    }
}
