//! Moves bytes between an upgraded TCP connection and a session's `WebsocketContext`.
//!
//! actix-web-actors normally streams the socket as an HTTP response body, which keeps actix-http's
//! dispatcher, with its fixed 8 KiB read and 8 KiB write buffers, alive for the socket's life:
//! 16 KiB per idle connection. Here the connection is taken over after the handshake instead, and
//! holds no buffer between reads: a read lands in a stack buffer and only the bytes received are
//! copied out. Pushes are written from the frame bytes the hub made once for all sockets, and
//! everything else straight from the context's encoded frames.
use std::{
    cell::RefCell,
    collections::VecDeque,
    future::poll_fn,
    io,
    mem::MaybeUninit,
    pin::Pin,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use actix_http::error::PayloadError;
use actix_web_actors::ws::CloseCode;
use bytes::{Buf, Bytes};
use futures_core::Stream;
use futures_util::task::AtomicWaker;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
};

use super::inflow::{FrameScan, Inflow, Scanned};
use crate::push::PushKey;

/// Pushes a socket keeps back while its replay is being read, at most: past it the rest are
/// dropped and the replay reports itself incomplete (the client refetches over REST).
pub const HOLD_MAX: usize = 4096;

/// The largest single read. Frames larger than this arrive over several reads; the context's
/// decoder joins them.
const READ_CHUNK: usize = 4096;

/// What the client sends, as the byte stream a `WebsocketContext` decodes frames from. Each
/// frame header is checked as it passes (`inflow`): one announcing more than the frame limit
/// ends the stream before its payload is read, and reading pauses while the session has
/// `inflow::MAX_BACKLOG` frames to deal with.
pub struct SocketReader {
    io: OwnedReadHalf,
    /// Bytes received but not passed on yet: what arrived together with the handshake, or the
    /// rest of a read past the frames there was room for. At most one read's worth.
    held: Option<Bytes>,
    /// Fired by the socket's read readiness. The context polls this stream on every wake, most
    /// of them pushes; only a wake from the socket itself is worth a look at it.
    readable: Arc<Wakeup>,
    readable_waker: Waker,
    scan: FrameScan,
    inflow: Rc<Inflow>,
}

impl SocketReader {
    pub fn new(io: OwnedReadHalf, early: Bytes, max_frame_bytes: usize, inflow: Rc<Inflow>) -> Self {
        let held = (!early.is_empty()).then_some(early);
        let readable = Wakeup::new();
        let readable_waker = Waker::from(readable.clone());
        Self {
            io,
            held,
            readable,
            readable_waker,
            scan: FrameScan::new(max_frame_bytes),
            inflow,
        }
    }

    /// The next bytes from the socket, if it has any.
    fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, PayloadError>>> {
        if !self.readable.take(cx) {
            return Poll::Pending;
        }
        // Uninitialised: zeroing 4 KiB on every read showed in the profile.
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        // On Pending the socket holds `readable_waker`: its readiness fires `readable`, which wakes `cx`.
        let Poll::Ready(result) =
            Pin::new(&mut self.io).poll_read(&mut Context::from_waker(&self.readable_waker), &mut buf)
        else {
            return Poll::Pending;
        };
        // There may be more to read: look again on the next poll.
        self.readable.fire();
        Poll::Ready(match result {
            Ok(()) if buf.filled().is_empty() => None,
            Ok(()) => Some(Ok(Bytes::copy_from_slice(buf.filled()))),
            Err(e) => Some(Err(PayloadError::Io(e))),
        })
    }
}

impl Stream for SocketReader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.inflow.refusal().is_some() {
            return Poll::Ready(None);
        }
        let room = this.inflow.room();
        if room == 0 {
            // The session wakes the connection's task when it is done with a frame.
            return Poll::Pending;
        }
        let bytes = match this.held.take() {
            Some(held) => held,
            None => match this.poll_read_chunk(cx) {
                Poll::Ready(Some(Ok(bytes))) => bytes,
                other => return other,
            },
        };
        match this.scan.scan(&bytes, room) {
            Scanned::Pass { len, frames } => {
                this.inflow.taken(frames);
                if len < bytes.len() {
                    this.held = Some(bytes.slice(len..));
                }
                Poll::Ready(Some(Ok(bytes.slice(..len))))
            }
            Scanned::TooLarge => {
                // Nothing more is read: the session closes with 1009 on this error.
                this.inflow.refuse(CloseCode::Size);
                Poll::Ready(Some(Err(PayloadError::Overflow)))
            }
        }
    }
}

/// A waker that remembers it fired, so a poll can skip what has not woken since the last one.
///
/// The session's context is polled with one: the pump polls the context only once something it
/// waits on (its mailbox, the socket, a timer) has fired, not once more after each chunk it
/// yields, which for a push would double the work of delivering it. The socket reader has its
/// own, so that a push does not also check the socket.
pub struct Wakeup {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wakeup {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            // The first poll is due.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        })
    }

    /// Whether it fired since the last call; either way `cx` is woken when it fires next.
    fn take(&self, cx: &Context<'_>) -> bool {
        self.task.register(cx.waker());
        self.woken.swap(false, Ordering::AcqRel)
    }

    fn fire(&self) {
        self.woken.store(true, Ordering::Release);
    }
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fire();
        self.task.wake();
    }
}

/// The sending side of one socket, shared by its pump, which writes what the session's context
/// yields and whatever had to wait, and by its worker thread's delivery task, which writes
/// pushes (`delivery`). A push meets an idle socket nearly always: it is written there and then,
/// from the frame bytes the hub made once for all sockets, with no copy or allocation. Only
/// when something is already waiting, or the socket takes less than the frame, does it wait in
/// the queue for the pump, which alone waits for the socket to take more. Both run on the one
/// worker thread, so the `RefCell` is never contended; neither holds it across an await.
#[derive(Clone)]
pub struct Outlet(Rc<RefCell<Sending>>);

struct Sending {
    io: OwnedWriteHalf,
    /// What waits for the socket: nothing (`None`, nearly always), or a chunk being written
    /// and the chunks behind it.
    backlog: Option<Backlog>,
    /// Wakes the pump, for what `push` could not write itself.
    pump: Waker,
    /// How pushes get in while the session is open. `None` once it is closing: its close frame
    /// must be the last frame, so no way for a push is left.
    open: Option<Pushes>,
}

/// A chunk being written and the chunks waiting behind it. Its shape keeps the order: nothing
/// waits unless something is being written, so a push that finds no backlog may be written at
/// once without overtaking anything.
struct Backlog {
    /// Being written; never empty while waiting (once written, the next chunk takes its place,
    /// or the backlog goes).
    writing: Bytes,
    /// Waiting behind `writing`, in order; freed with the backlog once drained (a backlog is rare).
    queue: VecDeque<Bytes>,
}

impl Backlog {
    fn new(writing: Bytes) -> Self {
        debug_assert!(!writing.is_empty(), "a backlog starts with something to write");
        Self {
            writing,
            queue: VecDeque::new(),
        }
    }
}

/// What decides a push's fate while the session is open.
struct Pushes {
    /// How many pushes may wait: past it the client is not reading its socket, and queuing more
    /// would grow memory for nobody.
    limit: usize,
    /// While the socket's replay is being read (a handshake with `last_id`, ...), pushes wait
    /// here, so that the replay goes first and what it already holds is not sent twice. Boxed:
    /// an idle socket pays one pointer for it.
    held: Option<Box<Held>>,
    /// After a replay: the newest notification and announcement ids the client has (0: none).
    /// A push of one of those is dropped, should a catch-up of the hub bring it again.
    had: (i32, i32),
}

/// The pushes kept back during a replay, in arrival order, each with what it carries.
#[derive(Default)]
pub struct Held {
    pub pushes: VecDeque<(PushKey, Bytes)>,
    /// More than `HOLD_MAX` arrived: the rest were dropped.
    pub overflowed: bool,
}

/// Whether a push carries a notification the client had (`had`: see `Outlet::end_hold`).
fn already_had(key: PushKey, (newest, newest_global): (i32, i32)) -> bool {
    match key {
        PushKey::Personal(id) => id <= newest,
        PushKey::Global(id) => id <= newest_global,
        PushKey::Other => false,
    }
}

/// What became of a push.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Written, or queued for the pump.
    Taken,
    /// The session is closing: nobody is to get it.
    Dropped,
    /// The queue is full: the client stopped reading. The outlet is closed; close the session.
    TooSlow,
}

impl Outlet {
    /// `head` (the 101 response) is written first; pushes wait behind it. With `hold`, pushes
    /// are kept back until `end_hold` (the socket's replay goes first).
    pub fn new(io: OwnedWriteHalf, head: Bytes, limit: usize, pump: Waker, hold: bool) -> Self {
        Self(Rc::new(RefCell::new(Sending {
            io,
            backlog: (!head.is_empty()).then(|| Backlog::new(head)),
            pump,
            open: Some(Pushes {
                limit,
                held: hold.then(Box::default),
                had: (0, 0),
            }),
        })))
    }

    /// Sends one push: written now if nothing waits and the socket takes it, else queued; kept
    /// back while the replay is being read.
    pub fn push(&self, frame: &Bytes, key: PushKey) -> Pushed {
        let mut sending = self.0.borrow_mut();
        let Sending {
            io,
            backlog,
            pump,
            open,
        } = &mut *sending;
        let Some(pushes) = open else {
            return Pushed::Dropped;
        };
        if already_had(key, pushes.had) {
            return Pushed::Taken;
        }
        if let Some(held) = &mut pushes.held {
            if held.pushes.len() < HOLD_MAX {
                held.pushes.push_back((key, frame.clone()));
            } else {
                held.overflowed = true;
            }
            return Pushed::Taken;
        }
        match backlog {
            None => {
                match io.try_write(frame) {
                    Ok(n) if n == frame.len() => return Pushed::Taken,
                    Ok(n) => *backlog = Some(Backlog::new(frame.slice(n..))),
                    // An error is left for the pump to meet: it ends the connection.
                    Err(_) => *backlog = Some(Backlog::new(frame.clone())),
                }
                // The pump is idle, not waiting for the socket: it must take over.
                pump.wake_by_ref();
                Pushed::Taken
            }
            Some(waiting) if waiting.queue.len() >= pushes.limit => {
                // The frame being written stays whole; the pushes behind it go, and the outlet
                // closes.
                waiting.queue = VecDeque::new();
                *open = None;
                Pushed::TooSlow
            }
            // Behind what the pump is already waiting to write.
            Some(waiting) => {
                waiting.queue.push_back(frame.clone());
                Pushed::Taken
            }
        }
    }

    /// From now on pushes are dropped: the session's close frame is to be its last frame.
    pub fn close(&self) {
        self.0.borrow_mut().open = None;
    }

    /// Stops keeping pushes back and answers those kept, less those the client has: it has
    /// every notification up to `had.0` and every announcement up to `had.1` (0: none), and
    /// later pushes of those are dropped too. Whatever the caller sends with `send_replay`
    /// before it next awaits goes before every later push.
    pub fn end_hold(&self, had: (i32, i32)) -> Held {
        let mut s = self.0.borrow_mut();
        let Some(pushes) = &mut s.open else {
            return Held::default();
        };
        pushes.had = had;
        let mut held = pushes.held.take().map(|held| *held).unwrap_or_default();
        held.pushes.retain(|(key, _)| !already_had(*key, had));
        held
    }

    /// Sends the replay (its frames, the `sync` message and the kept pushes, as one chunk) ahead
    /// of every later push. One chunk: the replay must not count against the queue's bound.
    pub fn send_replay(&self, chunk: Bytes) {
        if self.0.borrow().open.is_none() {
            return;
        }
        self.queue_own(chunk);
        self.0.borrow().pump.wake_by_ref();
    }

    /// Queues the session's own frames (pongs, replies, its close frame) behind the pushes.
    fn queue_own(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let mut s = self.0.borrow_mut();
        match &mut s.backlog {
            None => s.backlog = Some(Backlog::new(chunk)),
            Some(waiting) => waiting.queue.push_back(chunk),
        }
    }

    /// Writes until nothing waits (ready) or the socket is full (pending, woken when it drains).
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut sending = self.0.borrow_mut();
        let Sending { io, backlog, .. } = &mut *sending;
        while let Some(waiting) = backlog {
            while !waiting.writing.is_empty() {
                match Pin::new(&mut *io).poll_write(cx, &waiting.writing) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => waiting.writing.advance(n),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match waiting.queue.pop_front() {
                Some(next) => waiting.writing = next,
                // Written: the backlog's memory, chunk and queue, goes before waiting.
                None => *backlog = None,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0.borrow_mut().io).poll_shutdown(cx)
    }
}

/// Writes everything the session's context (`frames`: pongs, replies, the close frame) yields
/// and whatever waits in `outlet`, until the context ends and all is written, or the peer goes
/// away. Pushes queued before a poll of the context go before the frames that poll yields, and
/// the session closes its outlet before it closes, so a close frame stays last. Nothing new is
/// taken from the context while a write is pending, so a client that stops reading stalls its
/// own session and nobody else's; the outlet's bound then closes it.
///
/// `frames` is polled with `wakeup`'s waker, and only once it has woken. Whatever ends the
/// session without a wake of its own (its `stopped`) must wake it, or the end is not seen.
pub async fn pump<S>(first: Option<Bytes>, frames: S, outlet: Outlet, wakeup: Arc<Wakeup>)
where
    S: Stream<Item = Result<Bytes, actix_web::Error>>,
{
    let mut frames = std::pin::pin!(frames);
    if let Some(first) = first {
        outlet.queue_own(first);
    }
    let mut ended = false;
    let waker = Waker::from(wakeup.clone());
    let result: io::Result<()> = poll_fn(|cx| {
        loop {
            match outlet.poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            if ended {
                return Poll::Ready(Ok(()));
            }
            if !wakeup.take(cx) {
                return Poll::Pending;
            }
            match frames.as_mut().poll_next(&mut Context::from_waker(&waker)) {
                Poll::Ready(Some(Ok(chunk))) => outlet.queue_own(chunk),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
                Poll::Ready(None) => ended = true,
                Poll::Pending => {}
            }
        }
    })
    .await;
    // Nothing more is written here, whatever the delivery task still holds.
    outlet.close();
    match result {
        // The session ended: send FIN after its close frame, as the HTTP dispatcher did.
        Ok(()) => {
            let _ = poll_fn(|cx| outlet.poll_shutdown(cx)).await;
        }
        Err(e) => log::debug!("WebSocket connection ended: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use tokio::{
        io::AsyncReadExt,
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// An outlet on one end of a loopback connection, and the other end.
    async fn connected(head: &'static [u8], limit: usize) -> (Outlet, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let client = TcpStream::connect(addr).await.expect("connected");
        let (server, _) = listener.accept().await.expect("accepted");
        let (_, write) = server.into_split();
        (
            Outlet::new(write, Bytes::from_static(head), limit, Waker::noop().clone(), false),
            client,
        )
    }

    fn flush(outlet: &Outlet) -> Poll<io::Result<()>> {
        outlet.poll_flush(&mut Context::from_waker(Waker::noop()))
    }

    async fn read_exactly(peer: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        peer.read_exact(&mut got).await.expect("the bytes written");
        got
    }

    #[actix_web::test]
    async fn pushes_wait_behind_the_head_and_keep_their_order_with_the_sessions_frames() {
        let (outlet, mut peer) = connected(b"HEAD", 8).await;
        // The 101 is not written yet: pushes must queue behind it.
        assert_eq!(outlet.push(&Bytes::from_static(b"a"), PushKey::Other), Pushed::Taken);
        assert_eq!(outlet.push(&Bytes::from_static(b"b"), PushKey::Other), Pushed::Taken);
        outlet.queue_own(Bytes::from_static(b"pong"));
        assert!(matches!(flush(&outlet), Poll::Ready(Ok(()))));
        // Idle now: written at once, with nothing for the pump to do.
        assert_eq!(outlet.push(&Bytes::from_static(b"c"), PushKey::Other), Pushed::Taken);
        assert!(outlet.0.borrow().backlog.is_none());
        outlet.queue_own(Bytes::from_static(b"close"));
        outlet.close();
        assert_eq!(
            outlet.push(&Bytes::from_static(b"late"), PushKey::Other),
            Pushed::Dropped
        );
        assert!(matches!(flush(&outlet), Poll::Ready(Ok(()))));
        assert_eq!(read_exactly(&mut peer, 16).await, b"HEADabpongcclose");
    }

    #[actix_web::test]
    async fn a_replay_drops_the_pushes_it_covers_held_or_later() {
        let (outlet, mut peer) = connected(b"", 8).await;
        outlet.0.borrow_mut().open.as_mut().expect("open").held = Some(Box::default());
        for (key, frame) in [
            (PushKey::Personal(4), &b"n4"[..]),
            (PushKey::Other, b"rd"),
            (PushKey::Global(2), b"g2"),
            (PushKey::Personal(6), b"n6"),
        ] {
            assert_eq!(outlet.push(&Bytes::from_static(frame), key), Pushed::Taken);
        }
        let held = outlet.end_hold((5, 1));
        let kept: Vec<PushKey> = held.pushes.iter().map(|(key, _)| *key).collect();
        assert_eq!(kept, [PushKey::Other, PushKey::Global(2), PushKey::Personal(6)]);
        outlet.send_replay(Bytes::from_static(b"RE"));
        // A catch-up bringing what the replay had again: dropped; anything newer goes out.
        assert_eq!(
            outlet.push(&Bytes::from_static(b"n5"), PushKey::Personal(5)),
            Pushed::Taken
        );
        assert_eq!(
            outlet.push(&Bytes::from_static(b"n7"), PushKey::Personal(7)),
            Pushed::Taken
        );
        assert!(matches!(flush(&outlet), Poll::Ready(Ok(()))));
        assert_eq!(read_exactly(&mut peer, 4).await, b"REn7");
    }

    #[actix_web::test]
    async fn a_peer_that_stops_reading_fills_the_bounded_queue_and_is_cut_off() {
        let (outlet, mut peer) = connected(b"", 4).await;
        let frame = Bytes::from(vec![7u8; 64 * 1024]);
        let mut taken = 0;
        // The kernel's buffers take some megabytes at most; then 4 may wait, and no more.
        let outcome = loop {
            match outlet.push(&frame, PushKey::Other) {
                Pushed::Taken if taken < 10_000 => taken += 1,
                other => break other,
            }
        };
        assert_eq!(outcome, Pushed::TooSlow, "after {taken} pushes");
        assert!(taken > 4, "the socket itself took some ({taken})");
        assert_eq!(
            outlet.push(&frame, PushKey::Other),
            Pushed::Dropped,
            "a closed outlet stays closed"
        );
        // What was accepted in whole frames is still readable: the queue went, not a frame's tail.
        let mut buf = vec![0; 64 * 1024];
        peer.read_exact(&mut buf).await.expect("the first frame");
        assert!(buf.iter().all(|&b| b == 7));
    }
}
