//! Pushes from the hub to the sockets of one worker thread.
//!
//! Every actix-web worker thread that holds sessions runs one delivery task. For each push the
//! hub sends it one `Deliver`: the frame, made once, and which of this thread's sessions are to
//! get it. The task writes the frame to each of their sockets in a plain loop (`Outlet::push`).
//! A push so costs one cross-thread wake per worker. Through each session actor's mailbox it
//! cost an envelope, a wake and a poll of the session's context per socket: at 10,000 sockets,
//! a quarter of the server's CPU per delivery went there (BENCHMARKS.md). The session actor keeps
//! everything else: its groups (through the hub), its client's frames, heartbeats and closing.
use std::{
    cell::RefCell,
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
};

use actix::Addr;
use tokio::sync::mpsc;

use super::transport::{Outlet, Pushed};
use crate::hub::{
    NotificationHub,
    messages::{Deliver, TooSlow, WorkerLink},
};

/// Sockets written before the task lets the thread's other tasks (HTTP requests, sessions'
/// reads) run: a push to 10,000 sockets must not hold a worker for its whole round.
const WRITES_PER_TURN: usize = 256;

static NEXT_WORKER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// This thread's sessions, by id, as the delivery task reaches them.
struct Worker {
    link: WorkerLink,
    sessions: HashMap<u64, Outlet>,
    /// The hub of the server this thread works for: actix-server starts threads for each
    /// server, so there is one.
    hub: Addr<NotificationHub>,
}

/// Makes a session on this thread reachable by the hub's pushes; the hub is to be given the
/// returned link with the session's `Connect`. Starts the thread's delivery task on first use,
/// so it must run inside the worker's runtime.
/// `queue_len` bounds the pushes waiting for the thread (`NotificationHub::deliver_push`).
pub fn register(session_id: u64, outlet: Outlet, hub: &Addr<NotificationHub>, queue_len: usize) -> WorkerLink {
    WORKER.with_borrow_mut(|worker| {
        let worker = worker.get_or_insert_with(|| start(hub.clone(), queue_len));
        worker.sessions.insert(session_id, outlet);
        worker.link.clone()
    })
}

/// The session has stopped: pushes still on their way to it are dropped.
pub fn unregister(session_id: u64) {
    WORKER.with_borrow_mut(|worker| {
        if let Some(worker) = worker {
            worker.sessions.remove(&session_id);
        }
    });
}

fn start(hub: Addr<NotificationHub>, queue_len: usize) -> Worker {
    let (sender, receiver) = mpsc::channel(queue_len);
    actix_web::rt::spawn(deliver_all(receiver));
    Worker {
        link: WorkerLink {
            index: NEXT_WORKER.fetch_add(1, Ordering::Relaxed),
            sender,
        },
        sessions: HashMap::new(),
        hub,
    }
}

/// The thread's delivery task: ends with the thread's runtime.
async fn deliver_all(mut receiver: mpsc::Receiver<Deliver>) {
    while let Some(Deliver { frame, key, sessions }) = receiver.recv().await {
        let frame = frame.bytes();
        let mut turns = sessions.chunks(WRITES_PER_TURN).peekable();
        while let Some(turn) = turns.next() {
            WORKER.with_borrow(|worker| {
                let Some(worker) = worker else { return };
                for &session_id in turn {
                    let Some(outlet) = worker.sessions.get(&session_id) else {
                        continue;
                    };
                    if outlet.push(frame, key) == Pushed::TooSlow {
                        // The hub takes it out of its groups and tells it to close. The session
                        // cannot see to that itself: it is not polled until its socket drains.
                        worker.hub.do_send(TooSlow { session_id });
                    }
                }
            });
            if turns.peek().is_some() {
                tokio::task::yield_now().await;
            }
        }
    }
}
