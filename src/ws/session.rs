//! One WebSocket connection: forwards pushes, answers client actions, keeps the peer alive.
use std::{
    collections::VecDeque,
    num::NonZeroU32,
    rc::Rc,
    task::Waker,
    time::{Duration, Instant},
};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, StreamHandler, fut};
use actix_web::web;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use governor::{DefaultDirectRateLimiter, Quota};
use serde::Deserialize;

use super::{inflow::Inflow, registration::Registration, transport::Outlet};
use crate::{
    auth::Credential,
    error::ApiError,
    hub::messages::ToSession,
    limits::{connections::AddressSlot, sockets::SocketSlot},
    payloads,
    services::notifications,
    state::AppState,
};

/// The window over which bad frames are counted.
const BAD_FRAME_WINDOW: Duration = Duration::from_secs(60);
/// A quiet time, with no message refused by the message limit, that ends an overrun.
const OVERRUN_QUIET: Duration = Duration::from_secs(1);

/// The session actor of one socket, a member of `user_{id}_notifications` and `global_notifications`.
pub struct WsSession {
    id: u64,
    user_id: i32,
    /// Its places in the hub and in this thread's delivery, until the session stops.
    registration: Option<Registration>,
    state: web::Data<AppState>,
    /// The socket's sending side, which this thread's delivery task writes pushes to.
    outlet: Outlet,
    /// Wakes the task that drives this session's socket (see `transport::pump`).
    transport: Waker,
    last_heard: Instant,
    bad_frames: u32,
    bad_window_start: Instant,
    /// `limits.socket_messages_per_second`, when on (boxed: a socket pays a pointer when off).
    message_limit: Option<Box<MessageLimit>>,
    /// A `mark_read` is being carried out; the ones behind it wait in `actions`, in order.
    acting: bool,
    actions: VecDeque<i64>,
    bounds: Bounds,
}

/// The message limit of one socket.
struct MessageLimit {
    limiter: DefaultDirectRateLimiter,
    burst: u32,
    /// Messages refused in the current overrun, and when the last was.
    refused: u32,
    last_refused: Instant,
}

/// What the message limit makes of a client message.
enum Verdict {
    Allowed,
    /// Dropped; the first of an overrun is answered with an error.
    Refused {
        first: bool,
    },
    /// Dropped, and the overrun has gone on for a whole burst: close.
    Flooding,
}

impl MessageLimit {
    fn new(rate: NonZeroU32) -> Self {
        // Bursts of twice the rate.
        let burst = NonZeroU32::new(rate.get().saturating_mul(2)).unwrap_or(rate);
        Self {
            limiter: DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            burst: burst.get(),
            refused: 0,
            last_refused: Instant::now(),
        }
    }

    /// An overrun lasts until a second passes without a refusal.
    fn check(&mut self) -> Verdict {
        let now = Instant::now();
        if now.duration_since(self.last_refused) > OVERRUN_QUIET {
            self.refused = 0;
        }
        if self.limiter.check().is_ok() {
            return Verdict::Allowed;
        }
        self.last_refused = now;
        self.refused += 1;
        if self.refused >= self.burst {
            Verdict::Flooding
        } else {
            Verdict::Refused {
                first: self.refused == 1,
            }
        }
    }
}

/// What bounds a socket's input and its number.
pub struct Bounds {
    /// Shared with the socket reader: frames it took in that the session has not finished with.
    pub inflow: Rc<Inflow>,
    /// Its place among the user's sockets, given back when the session ends (`None`: no limit).
    pub _socket: Option<SocketSlot>,
    /// Its place among its address's connections, likewise.
    pub _address: Option<AddressSlot>,
}

impl WsSession {
    pub fn new(
        id: u64,
        credential: &Credential,
        registration: Registration,
        state: web::Data<AppState>,
        outlet: Outlet,
        transport: Waker,
        bounds: Bounds,
    ) -> Self {
        let now = Instant::now();
        let message_limit = NonZeroU32::new(state.settings.limits.socket_messages_per_second)
            .map(|rate| Box::new(MessageLimit::new(rate)));
        Self {
            id,
            user_id: credential.user.id,
            registration: Some(registration),
            state,
            outlet,
            transport,
            last_heard: now,
            bad_frames: 0,
            bad_window_start: now,
            message_limit,
            acting: false,
            actions: VecDeque::new(),
            bounds,
        }
    }

    /// Whether the message limit lets this client message through. Past it the message is
    /// dropped: the first one of an overrun is answered with an error, the rest silently (a
    /// flood gets no flood back). An overrun lasts until a second passes without a refusal;
    /// one with as many refused messages as a whole burst closes the socket with 1008.
    fn within_rate(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        let Some(limit) = &mut self.message_limit else {
            return true;
        };
        match limit.check() {
            Verdict::Allowed => true,
            Verdict::Refused { first } => {
                if first {
                    ctx.text(payloads::error_push("too many messages: slow down"));
                }
                false
            }
            Verdict::Flooding => {
                self.close(
                    ctx,
                    Some(CloseReason {
                        code: CloseCode::Policy,
                        description: Some("too many messages".into()),
                    }),
                );
                false
            }
        }
    }

    /// Sends a close frame, after which no push may follow, and stops. The outlet is closed
    /// first: from then on pushes are dropped, and the close frame, queued by the context
    /// behind what the session wrote before, is the last frame out.
    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, reason: Option<CloseReason>) {
        self.outlet.close();
        ctx.close(reason);
        ctx.stop();
    }

    /// Answers a bad frame with an error; too many in a window closes with 1008.
    fn bad_frame(&mut self, ctx: &mut ws::WebsocketContext<Self>, message: &str) {
        let now = Instant::now();
        if now.duration_since(self.bad_window_start) > BAD_FRAME_WINDOW {
            self.bad_window_start = now;
            self.bad_frames = 0;
        }
        self.bad_frames += 1;
        if self.bad_frames > self.state.settings.websocket.max_bad_frames_per_minute {
            return self.close(
                ctx,
                Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some("too many invalid messages".into()),
                }),
            );
        }
        ctx.text(payloads::error_push(message));
    }

    /// Acts on a client message; answers whether it became an action (run or queued).
    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        if text.len() > self.state.settings.websocket.max_message_bytes {
            self.bad_frame(ctx, "message too large");
            return false;
        }
        let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
            self.bad_frame(ctx, "malformed JSON");
            return false;
        };
        match frame.action.as_deref() {
            Some("mark_read") => {
                let Some(id) = frame.notification_id.as_ref().and_then(serde_json::Value::as_i64) else {
                    self.bad_frame(ctx, "notification_id must be an integer");
                    return false;
                };
                self.mark_read(id, ctx);
                true
            }
            Some(other) => {
                let message = format!("unknown action: {}", other.chars().take(64).collect::<String>());
                self.bad_frame(ctx, &message);
                false
            }
            None => {
                self.bad_frame(ctx, "missing action");
                false
            }
        }
    }

    /// On success the hub tells every socket of the user (this one too) `notification_read`.
    /// One runs at a time; the others wait their turn (at most `inflow::MAX_BACKLOG` frames are
    /// taken in at once, so the queue stays small).
    fn mark_read(&mut self, id: i64, ctx: &mut ws::WebsocketContext<Self>) {
        if self.acting {
            self.actions.push_back(id);
            return;
        }
        self.acting = true;
        let state = self.state.clone();
        let user_id = self.user_id;
        // In this server's outbox scope, as a request is: whatever the action saves is pushed.
        let work = self
            .state
            .outbox
            .scope(async move { notifications::mark_read(&state.db, &state.outbox, user_id, id).await });
        ctx.spawn(fut::wrap_future::<_, Self>(work).map(|result, session, ctx| {
            match result {
                Ok(()) => {}
                Err(ApiError::NotFound) => ctx.text(payloads::error_push("notification not found")),
                Err(e) => {
                    log::error!("mark_read over WebSocket failed: {e}");
                    ctx.text(payloads::error_push("internal error"));
                }
            }
            session.acting = false;
            session.frame_done();
            if let Some(next) = session.actions.pop_front() {
                session.mark_read(next, ctx);
            }
        }));
    }

    /// Done with one frame the reader took in: it may read on if it had paused.
    fn frame_done(&mut self) {
        self.bounds.inflow.finished();
        self.transport.wake_by_ref();
    }
}

/// A client message: `{"action":"mark_read","notification_id":123}`.
#[derive(Deserialize)]
struct ClientFrame {
    action: Option<String>,
    notification_id: Option<serde_json::Value>,
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    /// Runs at the first poll of the context, before the 101 goes out: the hub can now reach
    /// the session, so it joins its groups.
    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(registration) = &mut self.registration {
            registration.join(ctx.address().recipient());
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        // Out of the hub's groups and this thread's delivery, its outlet closed.
        self.registration = None;
        // Stopping wakes nothing the context waits on: the transport must look again to see
        // the end, send what is left and close the connection.
        self.transport.wake_by_ref();
    }
}

impl Handler<ToSession> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: ToSession, ctx: &mut Self::Context) {
        match msg {
            ToSession::Close(reason) => self.close(ctx, Some(reason)),
            ToSession::Heartbeat => {
                if self.last_heard.elapsed() > self.state.settings.websocket.client_timeout() {
                    log::debug!("WebSocket session {} timed out", self.id);
                    ctx.stop();
                } else {
                    ctx.ping(b"");
                }
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let message = match item {
            Ok(message) => message,
            Err(ws::ProtocolError::Io(e)) => {
                // The reader's own refusal (a frame header over the limit), or the decoder's
                // text frame that is not UTF-8, which it reports only as an I/O error.
                let code = self.bounds.inflow.refusal().unwrap_or_else(|| {
                    if e.to_string().contains("utf-8") {
                        CloseCode::Invalid
                    } else {
                        CloseCode::Protocol
                    }
                });
                log::debug!("WebSocket session {} closed ({code:?}): {e}", self.id);
                let description = match code {
                    CloseCode::Size => Some("frame too large".into()),
                    CloseCode::Invalid => Some("text frame is not UTF-8".into()),
                    _ => None,
                };
                return self.close(ctx, Some(CloseReason { code, description }));
            }
            Err(ws::ProtocolError::Overflow) => {
                return self.close(
                    ctx,
                    Some(CloseReason {
                        code: CloseCode::Size,
                        description: Some("frame too large".into()),
                    }),
                );
            }
            Err(e) => {
                log::debug!("WebSocket protocol error on session {}: {e}", self.id);
                return self.close(ctx, Some(CloseCode::Protocol.into()));
            }
        };
        self.last_heard = Instant::now();
        let counted = matches!(
            message,
            ws::Message::Text(_) | ws::Message::Binary(_) | ws::Message::Continuation(_) | ws::Message::Ping(_)
        );
        if counted && !self.within_rate(ctx) {
            return self.frame_done();
        }
        let action = match &message {
            ws::Message::Text(text) => self.handle_text(text, ctx),
            _ => false,
        };
        if !action {
            // An action stays in the backlog until it has run (`mark_read`).
            self.bounds.inflow.finished();
        }
        match message {
            ws::Message::Text(_) => {}
            ws::Message::Binary(_) => self.bad_frame(ctx, "binary frames are not supported"),
            ws::Message::Continuation(_) => self.bad_frame(ctx, "fragmented messages are not supported"),
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => self.close(ctx, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_limit_allows_a_burst_then_tells_once_then_closes() {
        let mut limit = MessageLimit::new(NonZeroU32::new(2).expect("non-zero"));
        for _ in 0..4 {
            assert!(matches!(limit.check(), Verdict::Allowed), "a burst of twice the rate");
        }
        assert!(matches!(limit.check(), Verdict::Refused { first: true }));
        assert!(matches!(limit.check(), Verdict::Refused { first: false }));
        assert!(matches!(limit.check(), Verdict::Refused { first: false }));
        assert!(matches!(limit.check(), Verdict::Flooding), "a whole burst refused");
    }
}
