//! A handshake's replay: what the client missed (`last_id`, `last_global_id`), then the `sync`
//! message, then the pushes its socket kept back meanwhile, less those the replay already held.
//!
//! The socket joined the hub before the replay is read, with its pushes kept back in its
//! `Outlet`: so nothing created while the query runs is missed (it is either in the query's
//! answer or kept back, or both) and nothing is sent twice (a kept push whose id the replay
//! covers is dropped).
use actix_http::ws::{CloseCode, Parser};
use actix_web::web;
use bytes::{Bytes, BytesMut};

use super::transport::Outlet;
use crate::{
    payloads::{self, PushFrame},
    services::catch_up::{self, Missed, Since},
    state::AppState,
};

/// Reads what `user_id` missed since `since` and sends it on `outlet`, ahead of every push.
pub async fn send(state: web::Data<AppState>, user_id: i32, since: Since, outlet: Outlet) {
    let replay = match catch_up::replay(&state.db, user_id, since).await {
        Ok(replay) => replay,
        Err(e) => {
            log::error!("cannot read a WebSocket replay: {e}");
            // Without the replay the stream would have a gap: end the socket (1011), so the
            // client reconnects and asks again.
            outlet.end_hold((0, 0));
            outlet.send_replay(internal_error_close());
            outlet.close();
            return;
        }
    };
    let mut chunk = BytesMut::new();
    // What the client has: what it said, and the replay. A push of either is dropped.
    let (mut had, mut had_global) = (since.last_id.unwrap_or(0), since.last_global_id.unwrap_or(0));
    for item in &replay.items {
        let text = match item {
            Missed::Personal(n) => {
                had = had.max(n.id);
                payloads::notification_push(n)
            }
            Missed::Global(g) => {
                had_global = had_global.max(g.id);
                payloads::global_push(g)
            }
        };
        chunk.extend_from_slice(PushFrame::text(&text).bytes());
    }
    // From here to `send_replay` nothing awaits: no push can slip in between.
    let held = outlet.end_hold((had, had_global));
    let complete = replay.complete && !held.overflowed;
    let sync = payloads::sync_push(replay.unread_count, replay.items.len(), complete);
    chunk.extend_from_slice(PushFrame::text(&sync).bytes());
    for (_, frame) in &held.pushes {
        chunk.extend_from_slice(frame);
    }
    outlet.send_replay(chunk.freeze());
}

/// A close frame with 1011 (internal error).
fn internal_error_close() -> Bytes {
    let mut frame = BytesMut::new();
    Parser::write_close(&mut frame, Some(CloseCode::Error.into()), false);
    frame.freeze()
}
