//! One WebSocket connection: forwards pushes, answers client actions, keeps the peer alive.
use std::{
    task::Waker,
    time::{Duration, Instant},
};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, StreamHandler, fut};
use actix_web::web;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{delivery, transport::Outlet};
use crate::{
    auth::Credential,
    error::ApiError,
    hub::messages::{Connect, Disconnect, Joined, ToSession},
    payloads,
    services::notifications,
    state::AppState,
};

/// The window over which bad frames are counted.
const BAD_FRAME_WINDOW: Duration = Duration::from_secs(60);

/// The session actor of one socket, a member of `user_{id}_notifications` and `global_notifications`.
pub struct WsSession {
    id: u64,
    user_id: i32,
    credential_id: i32,
    /// Told once the hub has added this session to its groups (the handshake waits for it).
    joined: Option<oneshot::Sender<Joined>>,
    state: web::Data<AppState>,
    /// The socket's sending side, which this thread's delivery task writes pushes to.
    outlet: Outlet,
    /// Wakes the task that drives this session's socket (see `transport::pump`).
    transport: Waker,
    last_heard: Instant,
    bad_frames: u32,
    bad_window_start: Instant,
}

impl WsSession {
    pub fn new(
        id: u64,
        credential: &Credential,
        state: web::Data<AppState>,
        joined: oneshot::Sender<Joined>,
        outlet: Outlet,
        transport: Waker,
    ) -> Self {
        let now = Instant::now();
        Self {
            id,
            user_id: credential.user.id,
            credential_id: credential.id,
            joined: Some(joined),
            state,
            outlet,
            transport,
            last_heard: now,
            bad_frames: 0,
            bad_window_start: now,
        }
    }

    /// Sends a close frame, after which no push may follow, and stops.
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

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if text.len() > self.state.settings.websocket.max_message_bytes {
            return self.bad_frame(ctx, "message too large");
        }
        let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
            return self.bad_frame(ctx, "malformed JSON");
        };
        match frame.action.as_deref() {
            Some("mark_read") => {
                let Some(id) = frame.notification_id.as_ref().and_then(serde_json::Value::as_i64) else {
                    return self.bad_frame(ctx, "notification_id must be an integer");
                };
                self.mark_read(id, ctx);
            }
            Some(other) => {
                let message = format!("unknown action: {}", other.chars().take(64).collect::<String>());
                self.bad_frame(ctx, &message);
            }
            None => self.bad_frame(ctx, "missing action"),
        }
    }

    /// On success the hub tells every socket of the user (this one too) `notification_read`.
    fn mark_read(&mut self, id: i64, ctx: &mut ws::WebsocketContext<Self>) {
        let state = self.state.clone();
        let user_id = self.user_id;
        let work = async move { notifications::mark_read(&state.db, &state.hub, user_id, id).await };
        ctx.spawn(fut::wrap_future::<_, Self>(work).map(|result, _, ctx| match result {
            Ok(()) => {}
            Err(ApiError::NotFound) => ctx.text(payloads::error_push("notification not found")),
            Err(e) => {
                log::error!("mark_read over WebSocket failed: {e}");
                ctx.text(payloads::error_push("internal error"));
            }
        }));
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

    fn started(&mut self, ctx: &mut Self::Context) {
        let worker = delivery::register(self.id, self.outlet.clone(), &self.state.hub);
        self.state.hub.do_send(Connect {
            session_id: self.id,
            user_id: self.user_id,
            credential_id: self.credential_id,
            recipient: ctx.address().recipient(),
            worker,
            joined: self.joined.take(),
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.outlet.close();
        delivery::unregister(self.id);
        self.state.hub.do_send(Disconnect { session_id: self.id });
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
        match message {
            ws::Message::Text(text) => self.handle_text(&text, ctx),
            ws::Message::Binary(_) => self.bad_frame(ctx, "binary frames are not supported"),
            ws::Message::Continuation(_) => self.bad_frame(ctx, "fragmented messages are not supported"),
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => self.close(ctx, reason),
        }
    }
}
