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
    hub::messages::{PushFrame, PushKey},
    payloads,
    services::catch_up::{self, Missed, Since},
    state::AppState,
};

/// Reads what `user_id` missed since `since` and sends it on `outlet`, ahead of every push.
pub async fn send(state: web::Data<AppState>, user_id: i32, since: Since, outlet: Outlet) {
    let replay = catch_up::replay(&state.db, user_id, since).await;
    // From here to `send_replay` nothing awaits: no push can slip in between.
    let held = outlet.end_hold().unwrap_or_default();
    let replay = match replay {
        Ok(replay) => replay,
        Err(e) => {
            log::error!("cannot read a WebSocket replay: {e}");
            // Without the replay the stream would have a gap: end the socket (1011), so the
            // client reconnects and asks again.
            outlet.send_replay(internal_error_close());
            outlet.close();
            return;
        }
    };
    let mut chunk = BytesMut::new();
    let (mut newest, mut newest_global) = (since.last_id, since.last_global_id);
    for item in &replay.items {
        let text = match item {
            Missed::Personal(n) => {
                newest = newest.max(Some(n.id));
                payloads::notification_push(n)
            }
            Missed::Global(g) => {
                newest_global = newest_global.max(Some(g.id));
                payloads::global_push(g)
            }
        };
        chunk.extend_from_slice(PushFrame::text(&text).bytes());
    }
    let complete = replay.complete && !held.overflowed;
    let sync = payloads::sync_push(replay.unread_count, replay.items.len(), complete);
    chunk.extend_from_slice(PushFrame::text(&sync).bytes());
    for (key, frame) in &held.pushes {
        if !already_sent(*key, newest, newest_global) {
            chunk.extend_from_slice(frame);
        }
    }
    outlet.send_replay(chunk.freeze());
}

/// A close frame with 1011 (internal error).
fn internal_error_close() -> Bytes {
    let mut frame = BytesMut::new();
    Parser::write_close(&mut frame, Some(CloseCode::Error.into()), false);
    frame.freeze()
}

/// Whether the client has this push already: it had it before (`since`) or the replay held it.
fn already_sent(key: PushKey, newest: Option<i32>, newest_global: Option<i32>) -> bool {
    match key {
        PushKey::Personal(id) => newest.is_some_and(|newest| id <= newest),
        PushKey::Global(id) => newest_global.is_some_and(|newest| id <= newest),
        PushKey::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pushes_the_client_has_are_skipped() {
        assert!(already_sent(PushKey::Personal(5), Some(5), None));
        assert!(!already_sent(PushKey::Personal(6), Some(5), None));
        assert!(
            !already_sent(PushKey::Personal(1), None, Some(9)),
            "no personal replay asked"
        );
        assert!(already_sent(PushKey::Global(9), None, Some(9)));
        assert!(!already_sent(PushKey::Other, Some(100), Some(100)));
    }
}
