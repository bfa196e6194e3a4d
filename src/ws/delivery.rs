//! Pushes from the hub to the sockets of one worker thread.
//!
//! Each actix-web worker thread has one [`Delivery`], made by the App factory as the thread
//! starts, with its task. For each push the hub sends the task one `Deliver`: the frame, made
//! once, and which of this thread's sessions are to get it. The task writes the frame to each
//! of their sockets in a plain loop (`Outlet::push`). A push so costs one cross-thread wake per
//! worker. Through each session actor's mailbox it cost an envelope, a wake and a poll of the
//! session's context per socket: at 10,000 sockets, a quarter of the server's CPU per delivery
//! went there (BENCHMARKS.md). The session actor keeps everything else: its client's frames,
//! heartbeats and closing. Sessions enter and leave the map through their `Registration`.
use std::{
    cell::RefCell,
    collections::HashMap,
    rc::{Rc, Weak},
};

use actix::Addr;
use tokio::sync::mpsc;

use super::transport::{Outlet, Pushed};
use crate::hub::{
    NotificationHub,
    messages::{Deliver, TooSlow},
};

/// Sockets written before the task lets the thread's other tasks (HTTP requests, sessions'
/// reads) run: a push to 10,000 sockets must not hold a worker for its whole round.
const WRITES_PER_TURN: usize = 256;

/// One worker thread's sessions, by id, as its delivery task reaches them.
pub struct Delivery {
    sessions: RefCell<HashMap<u64, Outlet>>,
    /// The task's queue, bounded (`websocket.worker_queue_len`): see
    /// `NotificationHub::deliver_push`. The hub gets a clone with each session's `Connect`.
    queue: mpsc::Sender<Deliver>,
}

impl Delivery {
    /// This thread's delivery, and its task, which ends once the delivery is dropped. Must run
    /// on the worker thread whose sessions it is to serve (the App factory runs there).
    pub fn start(hub: Addr<NotificationHub>, queue_len: usize) -> Rc<Self> {
        let (queue, receiver) = mpsc::channel(queue_len);
        let delivery = Rc::new(Self {
            sessions: RefCell::new(HashMap::new()),
            queue,
        });
        actix_web::rt::spawn(deliver_all(receiver, Rc::downgrade(&delivery), hub));
        delivery
    }

    /// Where the hub is to send this thread's pushes.
    pub(super) fn queue(&self) -> mpsc::Sender<Deliver> {
        self.queue.clone()
    }

    /// Pushes for `session_id` go to `outlet` from now on.
    pub(super) fn add(&self, session_id: u64, outlet: Outlet) {
        self.sessions.borrow_mut().insert(session_id, outlet);
    }

    /// Pushes still on their way to `session_id` are dropped from now on; answers its outlet.
    pub(super) fn remove(&self, session_id: u64) -> Option<Outlet> {
        self.sessions.borrow_mut().remove(&session_id)
    }

    /// How many sessions this thread holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sessions.borrow().len()
    }
}

/// The thread's delivery task.
async fn deliver_all(mut receiver: mpsc::Receiver<Deliver>, thread: Weak<Delivery>, hub: Addr<NotificationHub>) {
    while let Some(Deliver { frame, key, sessions }) = receiver.recv().await {
        let frame = frame.bytes();
        let mut turns = sessions.chunks(WRITES_PER_TURN).peekable();
        while let Some(turn) = turns.next() {
            let Some(delivery) = thread.upgrade() else {
                return;
            };
            {
                // Held for one turn, which never yields: registrations, which change the map,
                // run on this thread but only between turns. The block ends the borrow before
                // the yield below.
                let outlets = delivery.sessions.borrow();
                for &session_id in turn {
                    let Some(outlet) = outlets.get(&session_id) else {
                        continue;
                    };
                    if outlet.push(frame, key) == Pushed::TooSlow {
                        // The hub takes it out of its groups and tells it to close. The session
                        // cannot see to that itself: it is not polled until its socket drains.
                        hub.do_send(TooSlow { session_id });
                    }
                }
            }
            drop(delivery);
            if turns.peek().is_some() {
                tokio::task::yield_now().await;
            }
        }
    }
}
