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

use entity::{global_notification, notification};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{push::PushKey, services::catch_up};

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
pub(super) struct Swept {
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

/// What the hub does with a push while it watches (`Watch::route`).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// Deliver it now.
    Deliver,
    /// An outage's sweep has delivered it already: drop it.
    Drop,
    /// The hub is catching up: a sweep reads it from the database in its turn.
    Sweep,
}

/// What a finished sweep found that nobody had yet, for the hub to deliver in this order.
pub(super) struct CaughtUp {
    pub personal: Vec<notification::Model>,
    pub global: Vec<global_notification::Model>,
    /// Sweep again at once: something arrived meanwhile or the row bound cut this one short.
    pub again: bool,
}

impl Watch {
    /// Where a push (created here or arriving from another node) goes.
    pub(super) fn route(&mut self, key: PushKey) -> Route {
        match key {
            PushKey::Other => {}
            _ if self.outage.is_some() => return Route::Sweep,
            PushKey::Personal(id) => {
                if self.recent.as_ref().is_some_and(|(r, _)| r.personal.contains(&id)) {
                    return Route::Drop;
                }
                self.newest = self.newest.max(id);
                self.remember_live(key);
            }
            PushKey::Global(id) => {
                if self.recent.as_ref().is_some_and(|(r, _)| r.global.contains(&id)) {
                    return Route::Drop;
                }
                self.newest_global = self.newest_global.max(id);
                self.remember_live(key);
            }
        }
        Route::Deliver
    }

    /// The link to the other nodes is lost: catch up from the database until it is back.
    pub(super) fn link_lost(&mut self) {
        if self.outage.is_none() {
            log::warn!("catching up from the database until the channel layer is back");
            self.outage = Some(self.begin_outage());
        }
    }

    /// The link stands again: answers whether to sweep (once more, after which the live
    /// stream is trusted again).
    pub(super) fn link_back(&mut self) -> bool {
        let Some(outage) = &mut self.outage else {
            return false;
        };
        outage.link_up = true;
        true
    }

    /// Every `SWEEP_INTERVAL`: forgets old ids after an outage; answers whether to sweep.
    pub(super) fn tick(&mut self) -> bool {
        if self.recent.as_ref().is_some_and(|(_, until)| Instant::now() > *until) {
            self.recent = None;
        }
        if self.outage.is_some() {
            return true;
        }
        self.mark();
        false
    }

    /// A sweep to run, reading what was created above the floors (see the module docs), unless
    /// one is running already (it then runs again once done) or there is no outage.
    pub(super) fn start_sweep(&mut self) -> Option<impl Future<Output = Result<Swept, DbErr>> + use<>> {
        let outage = self.outage.as_mut()?;
        if outage.running {
            outage.again = true;
            return None;
        }
        outage.running = true;
        outage.again = false;
        Some(read_since(self.db.clone(), outage.floor, outage.floor_global))
    }

    /// A sweep has ended: what it found that no sweep had handled yet. Past the last sweep
    /// after the link came back, the outage ends.
    pub(super) fn swept(&mut self, swept: Result<Swept, DbErr>) -> Option<CaughtUp> {
        let outage = self.outage.as_mut()?;
        outage.running = false;
        let swept = match swept {
            Ok(swept) => swept,
            Err(e) => {
                // The next tick tries again.
                log::warn!("cannot catch up from the database: {e}");
                return None;
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
        self.newest = personal.iter().map(|n| n.id).fold(self.newest, i32::max);
        self.newest_global = global.iter().map(|g| g.id).fold(self.newest_global, i32::max);
        outage.raise_floors(self.newest, self.newest_global);
        if !again && outage.link_up {
            log::warn!("channel layer is back and this node has caught up");
            let handled = std::mem::take(&mut outage.handled);
            self.outage = None;
            self.recent = Some((handled, Instant::now() + RECENT_FOR));
            self.mark();
        }
        Some(CaughtUp {
            personal,
            global,
            again,
        })
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

    fn announcement(id: i32) -> global_notification::Model {
        global_notification::Model {
            id,
            title: "t".into(),
            message: "m".into(),
            level: global_notification::Level::Info,
            is_active: true,
            show_on_site: true,
            created_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    fn read(global: &[i32]) -> Result<Swept, DbErr> {
        Ok(Swept {
            personal: Vec::new(),
            global: global.iter().copied().map(announcement).collect(),
            more: false,
        })
    }

    #[test]
    fn an_outage_sweeps_until_a_last_sweep_after_the_link_is_back_and_then_drops_late_live_pushes() {
        let mut watch = Watch::new(sea_orm::DatabaseConnection::default(), (10, 2));
        assert_eq!(
            watch.route(PushKey::Global(3)),
            Route::Sweep,
            "until the link first stands"
        );
        assert_eq!(
            watch.route(PushKey::Other),
            Route::Deliver,
            "reads and deletes go out at once"
        );
        assert!(watch.start_sweep().is_some());
        assert!(
            watch.start_sweep().is_none(),
            "one sweep at a time; the running one repeats"
        );
        assert!(watch.link_back(), "the link is back: one more sweep");

        let caught = watch.swept(read(&[3])).expect("in an outage");
        assert_eq!(caught.global.iter().map(|g| g.id).collect::<Vec<_>>(), [3]);
        assert!(caught.again, "asked for while it ran");
        assert!(watch.outage.is_some());

        assert!(watch.start_sweep().is_some());
        let caught = watch.swept(read(&[3, 4])).expect("still in the outage");
        assert_eq!(
            caught.global.iter().map(|g| g.id).collect::<Vec<_>>(),
            [4],
            "3 went out once"
        );
        assert!(!caught.again);
        assert!(
            watch.outage.is_none(),
            "the last sweep after the link came back ends it"
        );

        assert_eq!(
            watch.route(PushKey::Global(4)),
            Route::Drop,
            "its live push arrives late"
        );
        assert_eq!(watch.route(PushKey::Global(5)), Route::Deliver);
        assert!(!watch.tick(), "no sweeps outside an outage");
        assert!(!watch.link_back());
    }

    #[test]
    fn a_failed_sweep_delivers_nothing_and_the_next_tick_sweeps_again() {
        let mut watch = Watch::new(sea_orm::DatabaseConnection::default(), (10, 2));
        assert!(watch.start_sweep().is_some());
        assert!(watch.swept(Err(DbErr::Custom("down".into()))).is_none());
        assert!(watch.tick(), "still in the outage");
        assert!(watch.start_sweep().is_some(), "not left marked as running");
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
