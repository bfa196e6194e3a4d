//! `GET /ws/notifications/`: authenticate, then upgrade and register with the hub.
use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use actix_web_actors::ws;

use super::session::WsSession;
use crate::{
    auth::extractor::{Presented, presented},
    error::ApiError,
    hub::messages::Connect,
    state::AppState,
};

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ws/notifications/").route(web::get().to(connect)));
}

/// A cookie handshake must come from an allowed page: browsers send cookies cross-site.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
}

async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    // Refusals happen here, before any actor exists.
    let token = match presented(&req) {
        Presented::Bearer(token) => token,
        Presented::Cookie(token) => {
            if !origin_allowed(&req, &state.allowed_origins) {
                return Err(ApiError::Forbidden("origin not allowed".into()).into());
            }
            token
        }
        Presented::Nothing => return Err(ApiError::Unauthorized.into()),
    };
    let credential = state.auth.authenticate(&token).await?.ok_or(ApiError::Unauthorized)?;

    let session_id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let queued = Arc::new(AtomicUsize::new(0));
    let session = WsSession::new(session_id, &credential, state.clone(), queued.clone());
    let (addr, response) = ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(state.settings.websocket.max_frame_bytes)
        .start_with_addr()?;
    // Joined before the 101 goes out: a push right after the handshake reaches this socket.
    state
        .hub
        .send(Connect {
            session_id,
            user_id: credential.user.id,
            credential_id: credential.id,
            recipient: addr.recipient(),
            queued,
        })
        .await
        .map_err(|e| ApiError::Internal(format!("hub unavailable: {e}")))?;
    Ok(response)
}
