//! Moves bytes between an upgraded TCP connection and a session's `WebsocketContext`.
//!
//! actix-web-actors normally streams the socket as an HTTP response body, which keeps actix-http's
//! dispatcher, with its fixed 8 KiB read and 8 KiB write buffers, alive for the socket's life:
//! 16 KiB per idle connection. Here the connection is taken over after the handshake instead, and
//! holds no buffer between reads: a read lands in a stack buffer and only the bytes received are
//! copied out, and each outgoing chunk is written straight from the context's encoded frames.
use std::{
    future::poll_fn,
    io,
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll},
};

use actix_http::error::PayloadError;
use bytes::{Buf, Bytes};
use futures_core::Stream;
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
}

impl SocketReader {
    pub fn new(io: OwnedReadHalf, early: Bytes) -> Self {
        let early = (!early.is_empty()).then_some(early);
        Self { io, early }
    }
}

impl Stream for SocketReader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(early) = self.early.take() {
            return Poll::Ready(Some(Ok(early)));
        }
        // Uninitialised: the context polls this on every wake (each push), and zeroing 4 KiB
        // each time showed in the profile.
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(PayloadError::Io(e)))),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(buf.filled())))),
        }
    }
}

/// Writes `head` (the 101 response), then everything `frames` yields, to `io` until the stream ends (the session stopped after its
/// close frame) or the peer goes away. `frames` is polled only when the previous chunk is fully
/// written, so a client that stops reading stalls its own session and nobody else's; the hub's
/// per-session queue bound then closes it.
pub async fn pump<S>(head: Bytes, frames: S, mut io: OwnedWriteHalf)
where
    S: Stream<Item = Result<Bytes, actix_web::Error>>,
{
    let mut frames = std::pin::pin!(frames);
    let mut pending = head;
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
            match frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => pending = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io::Error::other(e.to_string()))),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
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
