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
use bytes::{Buf, Bytes};
use futures_core::Stream;
use futures_util::task::AtomicWaker;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
};

/// The largest single read. Frames larger than this arrive over several reads; the context's
/// decoder joins them (and enforces the frame size limit).
const READ_CHUNK: usize = 4096;

/// What the client sends, as the byte stream a `WebsocketContext` decodes frames from.
pub struct SocketReader {
    io: OwnedReadHalf,
    /// Bytes that arrived together with the handshake, handed out first.
    early: Option<Bytes>,
    /// Fired by the socket's read readiness. The context polls this stream on every wake, most
    /// of them pushes; only a wake from the socket itself is worth a look at it.
    readable: Arc<Wakeup>,
    readable_waker: Waker,
}

impl SocketReader {
    pub fn new(io: OwnedReadHalf, early: Bytes) -> Self {
        let early = (!early.is_empty()).then_some(early);
        let readable = Wakeup::new();
        let readable_waker = Waker::from(readable.clone());
        Self {
            io,
            early,
            readable,
            readable_waker,
        }
    }
}

impl Stream for SocketReader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(early) = self.early.take() {
            return Poll::Ready(Some(Ok(early)));
        }
        if !self.readable.take(cx) {
            return Poll::Pending;
        }
        // Uninitialised: zeroing 4 KiB on every read showed in the profile.
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        let this = &mut *self;
        // On Pending the socket holds `readable_waker`: its readiness fires `readable`, which wakes `cx`.
        let Poll::Ready(result) =
            Pin::new(&mut this.io).poll_read(&mut Context::from_waker(&this.readable_waker), &mut buf)
        else {
            return Poll::Pending;
        };
        // There may be more to read: look again on the next poll.
        this.readable.fire();
        Poll::Ready(match result {
            Ok(()) if buf.filled().is_empty() => None,
            Ok(()) => Some(Ok(Bytes::copy_from_slice(buf.filled()))),
            Err(e) => Some(Err(PayloadError::Io(e))),
        })
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

/// Pushes the session has taken from its mailbox, as shared frame bytes (`PushFrame`), written
/// by the pump as they are: no per-socket encoding, copy or allocation. One push waiting is
/// held inline; a backlog, rare, goes to a queue that is freed again once drained.
#[derive(Clone, Default)]
pub struct Outbox(Rc<RefCell<Waiting>>);

#[derive(Default)]
struct Waiting {
    oldest: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Outbox {
    pub fn push(&self, frame: Bytes) {
        let mut waiting = self.0.borrow_mut();
        if waiting.oldest.is_none() && waiting.rest.is_empty() {
            waiting.oldest = Some(frame);
        } else {
            waiting.rest.push_back(frame);
        }
    }

    fn pop(&self) -> Option<Bytes> {
        let mut waiting = self.0.borrow_mut();
        if let Some(frame) = waiting.oldest.take() {
            return Some(frame);
        }
        let frame = waiting.rest.pop_front();
        if frame.is_some() && waiting.rest.is_empty() {
            waiting.rest = VecDeque::new();
        }
        frame
    }
}

/// Writes `head` (the 101 response), then the session's pushes (`outbox`) and everything its
/// context (`frames`: pongs, replies, the close frame) yields, to `io` until the context ends and
/// all is written, or the peer goes away. Pushes the session took in one poll go before the
/// frames that poll produced, so a close frame stays last. Nothing new is taken while a write
/// is pending, so a client that stops reading stalls its own session and nobody else's; the
/// hub's per-session queue bound then closes it.
///
/// `frames` is polled with `wakeup`'s waker, and only once it has woken. Whatever ends the
/// session without a wake of its own (its `stopped`) must wake it, or the end is not seen.
pub async fn pump<S>(head: Bytes, frames: S, outbox: Outbox, mut io: OwnedWriteHalf, wakeup: Arc<Wakeup>)
where
    S: Stream<Item = Result<Bytes, actix_web::Error>>,
{
    let mut frames = std::pin::pin!(frames);
    let mut pending = head;
    let mut held: Option<Bytes> = None;
    let mut ended = false;
    let waker = Waker::from(wakeup.clone());
    let result: io::Result<()> = poll_fn(|cx| {
        loop {
            while !pending.is_empty() {
                match Pin::new(&mut io).poll_write(cx, &pending) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => pending.advance(n),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // Written: let go of the chunk's memory before waiting for the next one.
            pending = Bytes::new();
            if let Some(next) = outbox.pop().or_else(|| held.take()) {
                pending = next;
                continue;
            }
            if ended {
                return Poll::Ready(Ok(()));
            }
            if !wakeup.take(cx) {
                return Poll::Pending;
            }
            match frames.as_mut().poll_next(&mut Context::from_waker(&waker)) {
                Poll::Ready(Some(Ok(chunk))) => held = Some(chunk),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
                Poll::Ready(None) => ended = true,
                Poll::Pending => {}
            }
        }
    })
    .await;
    match result {
        // The session ended: send FIN after its close frame, as the HTTP dispatcher did.
        Ok(()) => {
            let _ = poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await;
        }
        Err(e) => log::debug!("WebSocket connection ended: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_keeps_pushes_in_order_across_its_inline_slot_and_queue() {
        let outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"a"));
        outbox.push(Bytes::from_static(b"b"));
        assert_eq!(outbox.pop().as_deref(), Some(&b"a"[..]));
        // The inline slot is free again but "b" still waits: "c" must queue behind it.
        outbox.push(Bytes::from_static(b"c"));
        assert_eq!(outbox.pop().as_deref(), Some(&b"b"[..]));
        assert_eq!(outbox.pop().as_deref(), Some(&b"c"[..]));
        assert_eq!(outbox.pop(), None);
        outbox.push(Bytes::from_static(b"d"));
        assert_eq!(outbox.pop().as_deref(), Some(&b"d"[..]));
        assert_eq!(outbox.pop(), None);
    }
}
