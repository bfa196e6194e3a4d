//! The hub's catch-up when the channel layer fails: the database, not Redis, decides what this
//! node's sockets must still get.
//!
//! While the link to the other nodes is down (and from start-up until it first stands), what
//! they publish never arrives. So the hub stops trusting the live stream for notifications and
//! announcements: it reads them from the database instead ("sweeps"), every second and at once
//! after a local create, in id order, from the newest id it had handled before the outage. Each
//! id a sweep handles is remembered, so none goes out twice. Other pushes (`notification_read`
//! ...) are still delivered at once. Once the link is back (its subscriptions stand) one more
//! sweep, run after every push that arrived meanwhile, ends the outage; the ids it handled are
//! then kept for a while to drop their live pushes, should any still arrive late.
//!
//! Ids are taken before a transaction commits, and pushes from different nodes cross in Redis,
//! so a row may appear after a larger id: an outage's sweeps start from the newest id handled
//! a few seconds before it (`LATE_COMMIT`), skipping those delivered live since, and each sweep
//! reads again from the newest id of a few seconds ago, skipping those it has handled. A
//! session that replayed at its handshake drops what its replay held (`ws::transport`).
use std::{
    collections::{HashSet, VecDeque},
    time::{Duration, Instant},
};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use entity::{global_notification, notification};
use sea_orm::{DatabaseConnection, DbErr};

use super::notification_hub::NotificationHub;
use crate::{
    payloads,
    push::{Group, PushKey},
    services::catch_up,
};

/// How often the hub sweeps while the link is down (the other nodes' creates arrive this late).
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Rows read per query of a sweep.
const SWEEP_PAGE: u64 = 1000;
/// Rows one sweep reads at most; the next sweep goes on from there.
const SWEEP_MAX_ROWS: usize = 20_000;
/// How long a transaction may hold an id before it commits and its row is still caught.
const LATE_COMMIT: Duration = Duration::from_secs(5);
/// How long after an outage the ids its sweeps handled are kept, to drop late live pushes.
const RECENT_FOR: Duration = Duration::from_secs(30);
/// Live deliveries remembered at most (for the next outage's first sweep to skip).
const LIVE_MAX: usize = 100_000;

/// What the hub keeps to catch up after the channel layer failed. Off for a single node.
pub(super) struct Watch {
    db: DatabaseConnection,
    /// The newest notification and announcement ids this hub has handled: the next outage's
    /// sweeps start there.
    newest: i32,
    newest_global: i32,
    outage: Option<Outage>,
    /// The ids the last outage's sweeps handled, and until when they are kept.
    recent: Option<(Handled, Instant)>,
    /// The newest ids at each tick outside an outage: the next outage starts from one
    /// `LATE_COMMIT` old.
    marks: VecDeque<(Instant, i32, i32)>,
    /// The notifications and announcements delivered live since the oldest mark.
    live: VecDeque<(Instant, PushKey)>,
}

#[derive(Default)]
struct Handled {
    personal: HashSet<i32>,
    global: HashSet<i32>,
}

struct Outage {
    /// Sweeps read ids above these.
    floor: i32,
    floor_global: i32,
    /// What the sweeps handled above the floors.
    handled: Handled,
    /// The newest ids handled at each sweep: the floors move up to those `LATE_COMMIT` old.
    marks: VecDeque<(Instant, i32, i32)>,
    /// The link is back: the next sweep that is not to be repeated ends the outage.
    link_up: bool,
    running: bool,
    /// Something arrived while a sweep ran: it may have read too early, sweep again.
    again: bool,
}

impl Outage {
    fn new(floor: i32, floor_global: i32) -> Self {
        Self {
            floor,
            floor_global,
            handled: Handled::default(),
            marks: VecDeque::new(),
            link_up: false,
            running: false,
            again: false,
        }
    }
}

/// What one sweep read.
struct Swept {
    personal: Vec<notification::Model>,
    global: Vec<global_notification::Model>,
    /// The row bound cut it short.
    more: bool,
}

impl Watch {
    fn remember_live(&mut self, key: PushKey) {
        if self.live.len() >= LIVE_MAX {
            self.live.pop_front();
        }
        self.live.push_back((Instant::now(), key));
    }

    /// Starts as in an outage: until the link first stands, other nodes cannot be heard.
    /// `newest` are the largest ids stored at start-up.
    pub(super) fn new(db: DatabaseConnection, (newest, newest_global): (i32, i32)) -> Self {
        Self {
            db,
            newest,
            newest_global,
            outage: Some(Outage::new(newest, newest_global)),
            recent: None,
            marks: VecDeque::from([(Instant::now(), newest, newest_global)]),
            live: VecDeque::new(),
        }
    }

    /// Records the newest ids now, keeping marks (and live deliveries) back to the first one
    /// at least `LATE_COMMIT` old.
    fn mark(&mut self) {
        let now = Instant::now();
        self.marks.push_back((now, self.newest, self.newest_global));
        while self.marks.len() > 1 && now.duration_since(self.marks[1].0) >= LATE_COMMIT {
            self.marks.pop_front();
        }
        let oldest = self.marks[0].0;
        while self.live.front().is_some_and(|(at, _)| *at < oldest) {
            self.live.pop_front();
        }
    }

    /// An outage begins: from the newest ids of `LATE_COMMIT` ago, skipping what was delivered
    /// live since.
    fn begin_outage(&mut self) -> Outage {
        let now = Instant::now();
        let &(since, floor, floor_global) = self
            .marks
            .iter()
            .rev()
            .find(|(at, _, _)| now.duration_since(*at) >= LATE_COMMIT)
            .or(self.marks.front())
            .unwrap_or(&(now, self.newest, self.newest_global));
        let mut outage = Outage::new(floor, floor_global);
        for (_, key) in self.live.iter().filter(|(at, _)| *at >= since) {
            match *key {
                PushKey::Personal(id) if id > floor => outage.handled.personal.insert(id),
                PushKey::Global(id) if id > floor_global => outage.handled.global.insert(id),
                _ => false,
            };
        }
        self.live.clear();
        self.marks.clear();
        outage
    }
}

impl NotificationHub {
    /// Delivers a push (created here or arriving from another node) to this node's members,
    /// unless the hub is catching up, which then reads it from the database in its turn.
    pub(super) fn push_local(&mut self, group: Group, text: &str, key: PushKey, ctx: &mut Context<Self>) {
        let Some(watch) = &mut self.watch else {
            return self.deliver_push(group, text, key);
        };
        match key {
            PushKey::Other => {}
            _ if watch.outage.is_some() => return self.sweep(ctx),
            PushKey::Personal(id) => {
                if watch.recent.as_ref().is_some_and(|(r, _)| r.personal.contains(&id)) {
                    return;
                }
                watch.newest = watch.newest.max(id);
                watch.remember_live(key);
            }
            PushKey::Global(id) => {
                if watch.recent.as_ref().is_some_and(|(r, _)| r.global.contains(&id)) {
                    return;
                }
                watch.newest_global = watch.newest_global.max(id);
                watch.remember_live(key);
            }
        }
        self.deliver_push(group, text, key);
    }

    /// The link to the other nodes is lost: catch up from the database until it is back.
    pub(super) fn link_lost(&mut self) {
        if let Some(watch) = &mut self.watch
            && watch.outage.is_none()
        {
            log::warn!("catching up from the database until the channel layer is back");
            watch.outage = Some(watch.begin_outage());
        }
    }

    /// The link stands again: one more sweep, and the live stream is trusted again.
    pub(super) fn link_back(&mut self, ctx: &mut Context<Self>) {
        if let Some(outage) = self.watch.as_mut().and_then(|w| w.outage.as_mut()) {
            outage.link_up = true;
            self.sweep(ctx);
        }
    }

    /// Every `SWEEP_INTERVAL`: sweeps during an outage, forgets old ids after one.
    pub(super) fn watch_tick(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = &mut self.watch else { return };
        if watch.recent.as_ref().is_some_and(|(_, until)| Instant::now() > *until) {
            watch.recent = None;
        }
        if watch.outage.is_some() {
            self.sweep(ctx);
        } else {
            watch.mark();
        }
    }

    /// Reads what was created above the floors and delivers it (see the module docs).
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = &mut self.watch else { return };
        let Some(outage) = &mut watch.outage else { return };
        if outage.running {
            outage.again = true;
            return;
        }
        outage.running = true;
        outage.again = false;
        let (db, floor, floor_global) = (watch.db.clone(), outage.floor, outage.floor_global);
        ctx.spawn(
            read_since(db, floor, floor_global)
                .into_actor(self)
                .map(|swept, hub, ctx| hub.swept(swept, ctx)),
        );
    }

    fn swept(&mut self, swept: Result<Swept, DbErr>, ctx: &mut Context<Self>) {
        let Some(outage) = self.watch.as_mut().and_then(|w| w.outage.as_mut()) else {
            return;
        };
        outage.running = false;
        let swept = match swept {
            Ok(swept) => swept,
            Err(e) => {
                // The next tick tries again.
                log::warn!("cannot catch up from the database: {e}");
                return;
            }
        };
        let personal: Vec<_> = swept
            .personal
            .into_iter()
            .filter(|n| outage.handled.personal.insert(n.id))
            .collect();
        let global: Vec<_> = swept
            .global
            .into_iter()
            .filter(|g| outage.handled.global.insert(g.id))
            .collect();
        let again = outage.again || swept.more;
        for n in &personal {
            let group = Group::User(n.user_id);
            if self.groups.contains_key(&group) {
                let text = payloads::notification_push(n);
                self.deliver_push(group, &text, PushKey::Personal(n.id));
            }
        }
        for g in &global {
            let text = payloads::global_push(g);
            self.deliver_push(Group::Global, &text, PushKey::Global(g.id));
        }
        let Some(watch) = &mut self.watch else { return };
        watch.newest = personal.iter().map(|n| n.id).fold(watch.newest, i32::max);
        watch.newest_global = global.iter().map(|g| g.id).fold(watch.newest_global, i32::max);
        let Some(outage) = &mut watch.outage else { return };
        outage.raise_floors(watch.newest, watch.newest_global);
        if again {
            self.sweep(ctx);
        } else if outage.link_up {
            log::warn!("channel layer is back and this node has caught up");
            let handled = std::mem::take(&mut outage.handled);
            watch.outage = None;
            watch.recent = Some((handled, Instant::now() + RECENT_FOR));
            watch.mark();
        }
    }
}

impl Outage {
    /// Records the newest ids now and raises the floors to those recorded `LATE_COMMIT` ago,
    /// forgetting the ids at or below them.
    fn raise_floors(&mut self, newest: i32, newest_global: i32) {
        let now = Instant::now();
        self.marks.push_back((now, newest, newest_global));
        while let Some(&(at, personal, global)) = self.marks.front() {
            if now.duration_since(at) < LATE_COMMIT {
                break;
            }
            self.marks.pop_front();
            self.floor = self.floor.max(personal);
            self.floor_global = self.floor_global.max(global);
        }
        let (floor, floor_global) = (self.floor, self.floor_global);
        self.handled.personal.retain(|id| *id > floor);
        self.handled.global.retain(|id| *id > floor_global);
    }
}

/// Every notification and live announcement above the floors, ascending.
async fn read_since(db: DatabaseConnection, floor: i32, floor_global: i32) -> Result<Swept, DbErr> {
    let mut personal: Vec<notification::Model> = Vec::new();
    let mut after = floor;
    loop {
        let page = catch_up::notifications_after(&db, after, SWEEP_PAGE).await?;
        let full = page.len() as u64 == SWEEP_PAGE;
        after = page.last().map_or(after, |n| n.id);
        personal.extend(page);
        if !full {
            break;
        }
        if personal.len() >= SWEEP_MAX_ROWS {
            let global = catch_up::announcements_after(&db, floor_global).await?;
            return Ok(Swept {
                personal,
                global,
                more: true,
            });
        }
    }
    let global = catch_up::announcements_after(&db, floor_global).await?;
    Ok(Swept {
        personal,
        global,
        more: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_from_the_newest_ids_of_late_commit_ago_skipping_later_deliveries() {
        let db = sea_orm::DatabaseConnection::default();
        let mut watch = Watch::new(db, (10, 2));
        let now = Instant::now();
        let old = now - LATE_COMMIT - Duration::from_secs(1);
        watch.marks = VecDeque::from([(old, 20, 3), (now - Duration::from_secs(1), 30, 4)]);
        watch.live = VecDeque::from([
            (old - Duration::from_secs(1), PushKey::Personal(19)),
            (now - Duration::from_secs(2), PushKey::Personal(25)),
            (now - Duration::from_secs(2), PushKey::Global(4)),
            (now, PushKey::Personal(31)),
        ]);
        let outage = watch.begin_outage();
        assert_eq!((outage.floor, outage.floor_global), (20, 3));
        assert_eq!(outage.handled.personal, HashSet::from([25, 31]));
        assert_eq!(outage.handled.global, HashSet::from([4]));
        assert!(watch.live.is_empty() && watch.marks.is_empty());
    }

    #[test]
    fn floors_rise_only_to_ids_handled_long_enough_ago() {
        let mut outage = Outage::new(10, 1);
        outage.handled.personal.extend([11, 12]);
        outage.raise_floors(12, 1);
        assert_eq!(
            (outage.floor, outage.handled.personal.len()),
            (10, 2),
            "too recent to trust"
        );
        // As if recorded LATE_COMMIT ago.
        let then = Instant::now() - LATE_COMMIT;
        outage.marks.front_mut().expect("a mark").0 = then;
        outage.handled.personal.insert(13);
        outage.raise_floors(13, 2);
        assert_eq!(outage.floor, 12);
        assert_eq!(outage.floor_global, 1, "the global floor follows its own mark");
        assert_eq!(outage.handled.personal, HashSet::from([13]));
    }
}
