//! The Redis pub/sub channel layer: carries pushes and revocations between Herald nodes.
//!
//! Channels, under a configurable prefix (default `herald`):
//! - `{prefix}:global`: announcements; every node subscribes.
//! - `{prefix}:control`: revocations and mute changes; every node subscribes.
//! - `{prefix}:user:{id}`: one user's pushes; a node subscribes while it has that user's sockets,
//!   so per-user traffic reaches only the nodes that need it.
//!
//! A payload is `{node id} {body}`: the body is the exact WebSocket text the hub serialized (or a
//! control command); the node id lets a node skip what it published itself, since its hub has
//! already delivered that locally. Each message crosses Redis once per subscribed node. The
//! receiver reads which notification a push carries from the text's fixed opening
//! (`payloads::push_key`), so the format stays the same for nodes of another version.
//!
//! The hub never waits on Redis: it hands publishes to a background task over a bounded queue
//! (dropped, with a log line, when full) and records subscription changes and revocations in
//! shared state the task catches up with. The task owns the connections, reconnects with backoff
//! and resubscribes. While it is disconnected the node is unready, the credential cache is off
//! (revocations from other nodes could be missed), notifications and announcements for other
//! nodes are kept (bounded) and sent first when the link is back (receivers skip what they
//! already have), other pushes are dropped rather than sent stale; revocations are kept and
//! sent on reconnect, when the hub also re-checks the
//! logins of its open sockets and catches up from the database what other nodes created
//! meanwhile (`hub::catch_up`). A handshake of a user new to this node waits for that user's
//! SUBSCRIBE (see `join`), so no push published after its 101 is missed.
use std::{
    collections::{HashMap, HashSet, VecDeque},
    future::Future,
    ops::ControlFlow,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use ::redis::{AsyncConnectionConfig, Client, Msg, RedisResult, Value, aio};
use actix::{WeakRecipient, prelude::Stream};
use bytestring::ByteString;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{LayerEvent, LayerStatus};
use crate::{
    auth::AuthService,
    configuration::redact,
    payloads,
    push::{Group, PushKey},
    type_set::TypeSet,
};

/// Publishes waiting for the task; past this the hub drops them (clients catch up over REST).
const PUBLISH_QUEUE_LEN: usize = 4096;
/// Publishes sent to Redis in one round trip.
const PUBLISH_BATCH_LEN: usize = 256;
/// Notifications and announcements kept while Redis is unreachable, sent when it is back (the
/// oldest are dropped past this).
const MAX_UNSENT: usize = 10_000;
/// Revocations kept while Redis is unreachable; the oldest go first past this.
const MAX_PENDING_REVOCATIONS: usize = 10_000;
/// Channels named in one SUBSCRIBE or UNSUBSCRIBE.
const SUBSCRIBE_CHUNK_LEN: usize = 1000;
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long Redis may take to answer a command before the connection counts as lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle subscription connection is pinged, so a silent network failure is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// First wait before reconnecting; it doubles after each failure up to the maximum.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);

/// The hub's handle on the Redis layer; every method returns at once.
pub struct RedisLayer {
    node: String,
    channels: Channels,
    outgoing: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    status: LayerStatus,
}

/// One PUBLISH.
struct Outgoing {
    channel: String,
    payload: String,
    /// It carries a notification or an announcement (a `PushKey`): kept through an outage and
    /// sent late, since receivers skip what they already have. Others are dropped then.
    keyed: bool,
}

/// What the hub records for the task to act on.
#[derive(Default)]
struct Shared {
    /// User channels to (un)subscribe: user id → wanted. Last change wins; drained by the task.
    user_changes: Mutex<HashMap<i32, bool>>,
    /// Revocation payloads not yet published; kept across outages, since a node that misses one
    /// would keep accepting the revoked credential from its cache.
    revocations: Mutex<VecDeque<String>>,
    /// Told once the user channels changed before them are subscribed (handshakes wait on them).
    subscribed_acks: Mutex<Vec<oneshot::Sender<()>>>,
    /// Set with either of the above; the task clears it when it catches up.
    dirty: AtomicBool,
    wake: Notify,
    /// Publishes the hub dropped (queue full) since the task last reported them.
    dropped: AtomicU64,
    /// Publishes not sent because Redis was unreachable, reported on reconnect.
    discarded: AtomicU64,
}

/// A checked Redis configuration, ready to start once the hub's address exists.
pub struct RedisConfig {
    client: Client,
    /// The URL with its password hidden, for logs.
    url: String,
    prefix: String,
}

impl RedisConfig {
    /// Checks the URL (no connection is made: an unreachable Redis must not stop start-up).
    pub fn parse(url: &str, prefix: &str) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| format!("invalid Redis URL {}: {e}", redact(url)))?;
        Ok(Self {
            client,
            url: redact(url),
            prefix: prefix.to_string(),
        })
    }

    /// Starts the background task (which connects, and keeps reconnecting) and returns at once:
    /// until it connects the node is unready. The task ends with the hub, which owns the returned
    /// handle; it holds the hub weakly so the two do not keep each other alive. Must run inside
    /// an actix System.
    pub fn start(self, hub: WeakRecipient<LayerEvent>, status: LayerStatus, auth: Arc<AuthService>) -> RedisLayer {
        let node = format!("{:016x}", rand::random::<u64>());
        let channels = Channels::new(&self.prefix);
        let shared = Arc::new(Shared::default());
        let (outgoing, queue) = mpsc::channel(PUBLISH_QUEUE_LEN);
        // Until the first connection, revocations from other nodes cannot be heard.
        status.set(false);
        auth.set_cache_enabled(false);
        let task = Task {
            client: self.client,
            url: self.url,
            node: node.clone(),
            channels: channels.clone(),
            queue,
            shared: shared.clone(),
            hub,
            status: status.clone(),
            auth,
            wanted: HashSet::new(),
            unsent: VecDeque::new(),
        };
        actix_web::rt::spawn(task.run());
        RedisLayer {
            node,
            channels,
            outgoing,
            shared,
            status,
        }
    }
}

impl RedisLayer {
    /// Queues a push for the other nodes' members of `group`; drops it if the queue is full or
    /// Redis is unreachable (the other nodes' clients catch up over REST).
    pub fn publish_deliver(&self, group: Group, text: &str, key: PushKey) {
        let keyed = key != PushKey::Other;
        if !keyed && !self.status.is_ready() {
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let outgoing = Outgoing {
            channel: self.channels.for_group(group),
            payload: frame(&self.node, text),
            keyed,
        };
        match self.outgoing.try_send(outgoing) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.shared.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!(
                        "channel layer: publish queue full, dropping pushes to other nodes (their clients catch up over REST)"
                    );
                }
            }
            // The task only ends once the hub is gone.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Records a revocation for the other nodes; it is published as soon as Redis is reachable.
    pub fn publish_revoke(&self, credential_id: i32, token_hash: &str) {
        {
            let mut pending = self.shared.revocations.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING_REVOCATIONS {
                pending.pop_front();
                log::warn!("channel layer: too many unpublished revocations, dropping the oldest");
            }
            pending.push_back(frame(
                &self.node,
                &Control::Revoke {
                    credential_id,
                    token_hash,
                }
                .encode(),
            ));
        }
        self.shared.wake();
    }

    /// Records a mute change for the other nodes, kept like a revocation until Redis is reachable
    /// (a node that missed it would keep pushing what the user muted).
    pub fn publish_muted(&self, user_id: i32, muted: TypeSet) {
        let stored = muted.to_stored();
        let control = frame(
            &self.node,
            &Control::Mute {
                user_id,
                muted: &stored,
            }
            .encode(),
        );
        {
            let mut pending = self.shared.revocations.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING_REVOCATIONS {
                pending.pop_front();
                log::warn!("channel layer: too many unpublished control messages, dropping the oldest");
            }
            pending.push_back(control);
        }
        self.shared.wake();
    }

    /// This node has sockets in `group`: receive its traffic. For a user's group while the
    /// link is up, answers what tells once the SUBSCRIBE stands (dropped if the link fails
    /// first; the hub then catches up on reconnect).
    pub fn join(&self, group: Group) -> Option<oneshot::Receiver<()>> {
        if !matches!(group, Group::User(_)) || !self.status.is_ready() {
            self.change(group, true);
            return None;
        }
        let (told, subscribed) = oneshot::channel();
        // Recorded after the change, so the task that takes it has drained the change first.
        self.change(group, true);
        self.shared
            .subscribed_acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(told);
        Some(subscribed)
    }

    /// This node has no sockets left in `group`: stop receiving its traffic.
    pub fn leave(&self, group: Group) {
        self.change(group, false);
    }

    fn change(&self, group: Group, wanted: bool) {
        // The global channel is always subscribed.
        if let Group::User(id) = group {
            self.shared
                .user_changes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, wanted);
            self.shared.wake();
        }
    }
}

impl Shared {
    fn wake(&self) {
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The channel names under one prefix.
#[derive(Clone, Debug)]
struct Channels {
    global: String,
    control: String,
    user_prefix: String,
}

/// What a channel carries.
#[derive(Debug, PartialEq, Eq)]
enum Channel {
    Global,
    Control,
    User(i32),
}

impl Channels {
    fn new(prefix: &str) -> Self {
        Self {
            global: format!("{prefix}:global"),
            control: format!("{prefix}:control"),
            user_prefix: format!("{prefix}:user:"),
        }
    }

    fn user(&self, id: i32) -> String {
        format!("{}{id}", self.user_prefix)
    }

    fn for_group(&self, group: Group) -> String {
        match group {
            Group::Global => self.global.clone(),
            Group::User(id) => self.user(id),
        }
    }

    fn parse(&self, name: &str) -> Option<Channel> {
        if name == self.global {
            Some(Channel::Global)
        } else if name == self.control {
            Some(Channel::Control)
        } else {
            name.strip_prefix(&self.user_prefix)?.parse().ok().map(Channel::User)
        }
    }
}

/// Prefixes a body with the publishing node's id.
fn frame(node: &str, body: &str) -> String {
    let mut payload = String::with_capacity(node.len() + 1 + body.len());
    payload.push_str(node);
    payload.push(' ');
    payload.push_str(body);
    payload
}

/// Splits a payload into the publishing node's id and the body.
fn unframe(payload: &[u8]) -> Option<(&str, &str)> {
    let (node, body) = std::str::from_utf8(payload).ok()?.split_once(' ')?;
    (!node.is_empty()).then_some((node, body))
}

/// A command on the control channel.
#[derive(Debug, PartialEq, Eq)]
enum Control<'a> {
    /// `revoke {credential id} {token hash}`
    Revoke { credential_id: i32, token_hash: &'a str },
    /// `mute {user id} {types}`: the user's muted types, comma-separated; `-` for none.
    Mute { user_id: i32, muted: &'a str },
}

impl<'a> Control<'a> {
    fn encode(&self) -> String {
        match self {
            Control::Revoke {
                credential_id,
                token_hash,
            } => format!("revoke {credential_id} {token_hash}"),
            Control::Mute { user_id, muted } => {
                format!("mute {user_id} {}", if muted.is_empty() { "-" } else { muted })
            }
        }
    }

    fn parse(body: &'a str) -> Option<Self> {
        let mut words = body.split(' ');
        match (words.next()?, words.next()?, words.next()?, words.next()) {
            ("revoke", id, token_hash, None) if !token_hash.is_empty() => Some(Control::Revoke {
                credential_id: id.parse().ok()?,
                token_hash,
            }),
            ("mute", id, muted, None) if !muted.is_empty() => Some(Control::Mute {
                user_id: id.parse().ok()?,
                muted: if muted == "-" { "" } else { muted },
            }),
            _ => None,
        }
    }
}

/// The background task: owns the connections and moves messages between Redis and the hub.
struct Task {
    client: Client,
    /// The Redis URL with its password hidden, for logs.
    url: String,
    node: String,
    channels: Channels,
    queue: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    hub: WeakRecipient<LayerEvent>,
    status: LayerStatus,
    auth: Arc<AuthService>,
    /// Users with sockets on this node, as far as the task has caught up: resubscribed after
    /// every reconnect.
    wanted: HashSet<i32>,
    /// Notifications and announcements not published while Redis was unreachable, in order:
    /// published first when it is back. The other nodes may have left their own outage by then
    /// and trust their live stream again; without these they would miss what this node made.
    unsent: VecDeque<Outgoing>,
}

/// An open link to Redis.
struct Link {
    publisher: aio::MultiplexedConnection,
    subscriber: aio::PubSubSink,
    messages: aio::PubSubStream,
}

/// Why serving a link ended.
enum Ended {
    Lost(String),
    /// The hub dropped its handle: the system is stopping.
    HubGone,
}

impl Task {
    async fn run(mut self) {
        let mut delay = RECONNECT_DELAY_MIN;
        let mut was_connected = false;
        loop {
            match self.connect().await {
                Ok(link) => {
                    delay = RECONNECT_DELAY_MIN;
                    self.set_connected(true);
                    if was_connected {
                        log::warn!(
                            "channel layer: reconnected to Redis at {}; node is ready again",
                            self.url
                        );
                    } else {
                        log::info!("channel layer: connected to Redis at {}", self.url);
                    }
                    let discarded = self.shared.discarded.swap(0, Ordering::Relaxed);
                    if discarded > 0 {
                        log::warn!(
                            "channel layer: {discarded} pushes were not sent to other nodes while Redis was unreachable"
                        );
                    }
                    was_connected = true;
                    self.to_hub(LayerEvent::Reconnected);
                    match self.serve(link).await {
                        Ended::HubGone => return,
                        Ended::Lost(e) => {
                            self.set_connected(false);
                            self.to_hub(LayerEvent::Lost);
                            log::error!(
                                "channel layer: lost Redis at {} ({e}); node is unready, reconnecting",
                                self.url
                            );
                        }
                    }
                }
                Err(e) => {
                    log::warn!(
                        "channel layer: cannot reach Redis at {} ({e}); retrying in {delay:?}",
                        self.url
                    );
                }
            }
            if self.discard_for(delay).await.is_break() {
                return;
            }
            delay = (delay * 2).min(RECONNECT_DELAY_MAX);
        }
    }

    /// Readiness and the credential cache follow the connection: while it is down another
    /// node's logout could be missed, so every request re-checks the database.
    fn set_connected(&self, up: bool) {
        self.auth.set_cache_enabled(up);
        self.status.set(up);
    }

    /// Opens both connections and subscribes to everything this node needs.
    async fn connect(&mut self) -> Result<Link, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let publisher = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let pubsub = within(CONNECT_TIMEOUT, "connect", self.client.get_async_pubsub()).await?;
        let (mut subscriber, messages) = pubsub.split();
        let fixed = [self.channels.global.clone(), self.channels.control.clone()];
        within(RESPONSE_TIMEOUT, "subscribe", subscriber.subscribe(&fixed)).await?;
        let mut link = Link {
            publisher,
            subscriber,
            messages,
        };
        let acks = self.take_acks();
        self.drain_user_changes();
        let users: Vec<String> = self.wanted.iter().map(|&id| self.channels.user(id)).collect();
        subscribe_all(&mut link.subscriber, true, users).await?;
        tell(acks);
        self.publish_revocations(&mut link).await?;
        self.publish_unsent(&mut link).await?;
        Ok(link)
    }

    /// Moves messages until the link fails or the hub is gone.
    async fn serve(&mut self, mut link: Link) -> Ended {
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        loop {
            if self.shared.dirty.swap(false, Ordering::AcqRel)
                && let Err(e) = self.catch_up(&mut link).await
            {
                return Ended::Lost(e);
            }
            tokio::select! {
                message = next(&mut link.messages) => match message {
                    Some(message) => self.receive(&message),
                    None => return Ended::Lost("connection closed".into()),
                },
                outgoing = self.queue.recv() => match outgoing {
                    Some(first) => {
                        if let Err(e) = self.publish(&mut link, first).await {
                            return Ended::Lost(e);
                        }
                    }
                    None => return Ended::HubGone,
                },
                // The loop's top catches up with what the hub recorded.
                () = self.shared.wake.notified() => {}
                _ = ping.tick() => {
                    if let Err(e) = within(RESPONSE_TIMEOUT, "ping", link.subscriber.ping::<Value>()).await {
                        return Ended::Lost(e);
                    }
                }
            }
        }
    }

    /// Applies subscription changes and publishes pending revocations.
    async fn catch_up(&mut self, link: &mut Link) -> Result<(), String> {
        // Taken before the changes are drained: each ack's change is then among them.
        let acks = self.take_acks();
        let (joined, left) = self.drain_user_changes();
        let channels = |ids: Vec<i32>| ids.into_iter().map(|id| self.channels.user(id)).collect::<Vec<_>>();
        let (joined, left) = (channels(joined), channels(left));
        subscribe_all(&mut link.subscriber, true, joined).await?;
        tell(acks);
        subscribe_all(&mut link.subscriber, false, left).await?;
        self.publish_revocations(link).await
    }

    fn take_acks(&self) -> Vec<oneshot::Sender<()>> {
        std::mem::take(&mut *self.shared.subscribed_acks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Folds the hub's recorded changes into `wanted`; answers the users joined and left.
    fn drain_user_changes(&mut self) -> (Vec<i32>, Vec<i32>) {
        let changes = std::mem::take(&mut *self.shared.user_changes.lock().unwrap_or_else(|e| e.into_inner()));
        let (mut joined, mut left) = (Vec::new(), Vec::new());
        for (id, wanted) in changes {
            if wanted && self.wanted.insert(id) {
                joined.push(id);
            } else if !wanted && self.wanted.remove(&id) {
                left.push(id);
            }
        }
        (joined, left)
    }

    /// Publishes the pending revocations; on failure they stay pending for the next link.
    async fn publish_revocations(&mut self, link: &mut Link) -> Result<(), String> {
        let pending: Vec<String> =
            std::mem::take(&mut *self.shared.revocations.lock().unwrap_or_else(|e| e.into_inner())).into();
        if pending.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for payload in &pending {
            pipe.cmd("PUBLISH").arg(&self.channels.control).arg(payload).ignore();
        }
        if let Err(e) = pipe.exec_async(&mut link.publisher).await {
            let mut queue = self.shared.revocations.lock().unwrap_or_else(|e| e.into_inner());
            for payload in pending.into_iter().rev() {
                queue.push_front(payload);
            }
            return Err(format!("publish: {e}"));
        }
        Ok(())
    }

    /// Publishes what was kept during the outage, in order, before anything newer.
    async fn publish_unsent(&mut self, link: &mut Link) -> Result<(), String> {
        while !self.unsent.is_empty() {
            let batch: Vec<Outgoing> = self.unsent.drain(..self.unsent.len().min(PUBLISH_BATCH_LEN)).collect();
            self.publish_batch(link, batch).await?;
        }
        Ok(())
    }

    /// Publishes `first` and whatever else is queued, in order, in one round trip.
    async fn publish(&mut self, link: &mut Link, first: Outgoing) -> Result<(), String> {
        let mut batch = vec![first];
        while batch.len() < PUBLISH_BATCH_LEN {
            match self.queue.try_recv() {
                Ok(outgoing) => batch.push(outgoing),
                Err(_) => break,
            }
        }
        self.publish_batch(link, batch).await
    }

    /// One round trip; on failure the notifications and announcements wait for the next link.
    async fn publish_batch(&mut self, link: &mut Link, batch: Vec<Outgoing>) -> Result<(), String> {
        let mut pipe = ::redis::pipe();
        for outgoing in &batch {
            pipe.cmd("PUBLISH")
                .arg(&outgoing.channel)
                .arg(&outgoing.payload)
                .ignore();
        }
        if let Err(e) = pipe.exec_async(&mut link.publisher).await {
            let (kept, lost): (Vec<Outgoing>, Vec<Outgoing>) = batch.into_iter().partition(|o| o.keyed);
            self.shared.discarded.fetch_add(lost.len() as u64, Ordering::Relaxed);
            for outgoing in kept.into_iter().rev() {
                self.unsent.push_front(outgoing);
            }
            self.trim_unsent();
            return Err(format!("publish: {e}"));
        }
        let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            log::warn!("channel layer: {dropped} pushes to other nodes were dropped (publish queue full)");
        }
        Ok(())
    }

    /// Hands what another node published to the hub.
    fn receive(&self, message: &Msg) {
        let Some(channel) = self.channels.parse(message.get_channel_name()) else {
            return;
        };
        let Some((node, body)) = unframe(message.get_payload_bytes()) else {
            log::warn!(
                "channel layer: ignoring a malformed message on {}",
                message.get_channel_name()
            );
            return;
        };
        if node == self.node {
            // Published here: the hub has delivered it locally already.
            return;
        }
        let event = match channel {
            Channel::Global | Channel::User(_) => {
                let (key, text) = (payloads::push_key(body), body);
                let group = match channel {
                    Channel::User(id) => Group::User(id),
                    _ => Group::Global,
                };
                LayerEvent::Deliver {
                    group,
                    text: ByteString::from(text),
                    key,
                }
            }
            Channel::Control => match Control::parse(body) {
                Some(Control::Revoke {
                    credential_id,
                    token_hash,
                }) => LayerEvent::Revoke {
                    credential_id,
                    token_hash: token_hash.to_string(),
                },
                Some(Control::Mute { user_id, muted }) => LayerEvent::Muted {
                    user_id,
                    muted: TypeSet::from_stored(muted),
                },
                None => {
                    log::warn!("channel layer: ignoring an unknown control message");
                    return;
                }
            },
        };
        self.to_hub(event);
    }

    fn to_hub(&self, event: LayerEvent) {
        // Gone only while the system stops; the closed queue then ends this task.
        if let Some(hub) = self.hub.upgrade() {
            hub.do_send(event);
        }
    }

    /// Keeps a notification or announcement that could not be published; drops anything else.
    fn keep_unsent(&mut self, outgoing: Outgoing) {
        if outgoing.keyed {
            self.unsent.push_back(outgoing);
            self.trim_unsent();
        } else {
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn trim_unsent(&mut self) {
        while self.unsent.len() > MAX_UNSENT {
            self.unsent.pop_front();
            self.shared.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits `delay` while disconnected. Notifications and announcements queued meanwhile are
    /// kept to be sent when the link is back; other publishes (whose state may be stale by
    /// then) are thrown away. Breaks when the hub is gone.
    async fn discard_for(&mut self, delay: Duration) -> ControlFlow<()> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return ControlFlow::Continue(()),
                outgoing = self.queue.recv() => match outgoing {
                    Some(outgoing) => self.keep_unsent(outgoing),
                    None => return ControlFlow::Break(()),
                },
            }
        }
    }
}

/// Tells the waiting handshakes that their subscriptions stand.
fn tell(acks: Vec<oneshot::Sender<()>>) {
    for ack in acks {
        // The handshake may have given up waiting.
        let _ = ack.send(());
    }
}

/// SUBSCRIBEs (or UNSUBSCRIBEs) `channels`, a chunk per command.
async fn subscribe_all(sink: &mut aio::PubSubSink, subscribe: bool, channels: Vec<String>) -> Result<(), String> {
    for chunk in channels.chunks(SUBSCRIBE_CHUNK_LEN) {
        if subscribe {
            within(RESPONSE_TIMEOUT, "subscribe", sink.subscribe(chunk)).await?;
        } else {
            within(RESPONSE_TIMEOUT, "unsubscribe", sink.unsubscribe(chunk)).await?;
        }
    }
    Ok(())
}

/// Runs a Redis call with a deadline; the error names what failed.
async fn within<T>(limit: Duration, what: &str, call: impl Future<Output = RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

/// The next message of a subscription stream (`None` once the connection is gone).
async fn next(messages: &mut aio::PubSubStream) -> Option<Msg> {
    std::future::poll_fn(|cx| Pin::new(&mut *messages).poll_next(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_body_parses_back_to_its_node_and_exact_text() {
        let text = r#"{"type":"notification","notification":{"title":"a b  c"}}"#;
        let payload = frame("00ab12cd34ef5678", text);
        assert_eq!(unframe(payload.as_bytes()), Some(("00ab12cd34ef5678", text)));
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        assert_eq!(unframe(b"no-space-here"), None);
        assert_eq!(unframe(b" body without a node"), None);
        assert_eq!(unframe(b"node \xff\xfe"), None);
        assert_eq!(unframe(b"node "), Some(("node", "")));
    }

    #[test]
    fn revocations_round_trip_through_the_control_encoding() {
        let encoded = Control::Revoke {
            credential_id: 42,
            token_hash: "abc123",
        }
        .encode();
        assert_eq!(
            Control::parse(&encoded),
            Some(Control::Revoke {
                credential_id: 42,
                token_hash: "abc123"
            })
        );
        assert_eq!(Control::parse("revoke x abc"), None);
        assert_eq!(Control::parse("revoke 1"), None);
        assert_eq!(Control::parse("revoke 1 abc extra"), None);
        assert_eq!(Control::parse("shutdown"), None);
    }

    #[test]
    fn mute_changes_round_trip_through_the_control_encoding() {
        for muted in ["job_post,message", ""] {
            let encoded = Control::Mute { user_id: 7, muted }.encode();
            assert_eq!(Control::parse(&encoded), Some(Control::Mute { user_id: 7, muted }));
        }
        assert_eq!(Control::parse("mute x job_post"), None);
        assert_eq!(Control::parse("mute 1"), None);
    }

    #[test]
    fn channel_names_map_to_groups_under_the_prefix() {
        let channels = Channels::new("t1");
        assert_eq!(channels.for_group(Group::Global), "t1:global");
        assert_eq!(channels.for_group(Group::User(7)), "t1:user:7");
        assert_eq!(channels.parse("t1:global"), Some(Channel::Global));
        assert_eq!(channels.parse("t1:control"), Some(Channel::Control));
        assert_eq!(channels.parse("t1:user:7"), Some(Channel::User(7)));
        assert_eq!(channels.parse("t2:user:7"), None);
        assert_eq!(channels.parse("t1:user:x"), None);
    }
}
