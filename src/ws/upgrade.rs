//! `GET /ws/notifications/`: authenticate, join the hub, answer 101, replay what the client
//! missed when it asks (`last_id`, `last_global_id`, `sync=1`: see `replay`), then serve the
//! socket.
//!
//! actix-http hands every `Upgrade: websocket` request here, with the connection, instead of to
//! the App (see `startup`), so the socket outlives the HTTP dispatcher and its buffers
//! (`transport`). Refusals are `ApiError`s, answered with the same JSON bodies as the REST API.
use std::{
    future::poll_fn,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use actix_codec::{Encoder, Framed};
use actix_http::{
    ConnectionType, Method, Request, Response,
    body::{BodySize, BoxBody, MessageBody},
    h1,
    header::{self, HeaderMap},
    ws::{self as ws_proto, HandshakeError},
};
use actix_web::{ResponseError, rt::net::TcpStream, web};
use actix_web_actors::ws::WebsocketContext;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::io::AsyncWriteExt;

use super::{
    delivery::Delivery,
    inflow::Inflow,
    registration::Registration,
    replay,
    session::{Bounds, WsSession},
    transport::{Outlet, SocketReader, Wakeup, pump},
};
use crate::{
    auth::{
        Credential,
        extractor::{Presented, presented},
    },
    error::ApiError,
    services::catch_up::Since,
    state::AppState,
};

/// The one path that upgrades.
pub const PATH: &str = "/ws/notifications/";

/// How long a handshake waits for the channel layer to subscribe to a user new to this node
/// before it answers anyway (the link is failing; the hub catches up once it is back).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// Answers one upgrade request on its connection and, once accepted, hands the socket to a
/// task of its own for the rest of its life. `delivery` is this worker thread's.
pub async fn serve(
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
    state: web::Data<AppState>,
    delivery: Rc<Delivery>,
) {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let mut parts = framed.into_parts();
    let accepted = match authorize(&req, &state).await {
        Ok(credential) => catch_up_request(req.uri().query().unwrap_or("")).and_then(|since| {
            ws_proto::handshake(req.head())
                .map_err(handshake_error)
                .and_then(|mut builder| {
                    // Counted last: a refused handshake takes no place among the user's sockets.
                    let socket = state.sockets.claim(credential.user.id)?;
                    // The connection's slot ends with the HTTP dispatcher; the socket goes on.
                    let address = req.peer_addr().and_then(|peer| state.connections.hold(peer.ip()));
                    Ok((credential, since, builder.finish().drop_body(), socket, address))
                })
        }),
        Err(e) => Err(e),
    };
    drop(req);
    let (credential, since, switching, socket, address) = match accepted {
        Ok(accepted) => accepted,
        Err(e) => {
            let status = e.status_code();
            // Counted before the answer goes out: whoever saw the refusal finds it counted.
            // Handshakes bypass the App and its request counting: counted here, on their route.
            state.metrics.count_refused_handshake(status.as_u16());
            let route = if path == PATH { PATH } else { "unmatched" };
            state
                .metrics
                .count_request(&method, route, status.as_u16(), started.elapsed().as_secs_f64());
            refuse(&mut parts.codec, &mut parts.io, &e).await;
            return log_request(&method, &path, status.as_u16(), started);
        }
    };

    // The bytes the client may have sent right behind the handshake; the dispatcher's 8 KiB read
    // buffer is released rather than kept for them.
    let early = Bytes::copy_from_slice(&parts.read_buf);
    let mut head = BytesMut::new();
    if let Err(e) = parts
        .codec
        .encode(h1::Message::Item((switching, BodySize::None)), &mut head)
    {
        log::error!("cannot encode the WebSocket handshake response: {e}");
        return;
    }
    let (read, write) = parts.io.into_split();

    let session_id = state.session_ids.next();
    let wakeup = Wakeup::new();
    let waker = Waker::from(wakeup.clone());
    // The 101 goes first: pushes that reach the session before it is written wait behind it.
    // A socket that asked for a replay keeps its pushes back until the replay is written.
    let outlet = Outlet::new(
        write,
        head.freeze(),
        state.settings.websocket.send_queue_len,
        waker.clone(),
        since.is_some(),
    );
    let (registration, joined) = Registration::new(
        session_id,
        credential.user.id,
        credential.id,
        outlet.clone(),
        delivery,
        state.hub.clone(),
    );
    let inflow = Rc::new(Inflow::default());
    let user_id = credential.user.id;
    let session = WsSession::new(
        session_id,
        &credential,
        registration,
        state.clone(),
        outlet.clone(),
        waker.clone(),
        Bounds {
            inflow: inflow.clone(),
            _socket: socket,
            _address: address,
        },
    );
    let max_frame = state.settings.websocket.max_frame_bytes;
    let codec = ws_proto::Codec::new().max_size(max_frame);
    let reader = SocketReader::new(read, early, max_frame, inflow);
    let frames = WebsocketContext::with_codec(session, reader, codec);
    let metrics = state.metrics.clone();
    // The socket lives on in its own small task; this handshake future (several KiB: it awaited
    // authentication) ends here, and with it the connection's HTTP dispatcher.
    actix_web::rt::spawn(async move {
        let mut frames = std::pin::pin!(frames);
        // The first poll runs the session's `started`, which asks the hub to add it to its
        // groups. The 101 goes out only once the hub has done so: a push right after the
        // handshake reaches this socket.
        let first = poll_fn(|_| Poll::Ready(frames.as_mut().poll_next(&mut Context::from_waker(&waker)))).await;
        let joined = match (&first, joined.await) {
            (Poll::Ready(None | Some(Err(_))), _) | (_, Err(_)) => {
                // Nothing was answered: the connection just closes.
                log::error!(
                    "hub unavailable: WebSocket session {session_id} could not join its groups; connection closed"
                );
                return;
            }
            (_, Ok(joined)) => joined,
        };
        if let Some(subscribed) = joined.subscribed {
            // Another node's push for this user reaches this node only once the subscription
            // stands. Dropped (the link failed): the hub catches up when it is back.
            let _ = tokio::time::timeout(SUBSCRIBE_WAIT, subscribed).await;
        }
        log_request(&Method::GET, PATH, 101, started);
        metrics.count_request(&Method::GET, PATH, 101, started.elapsed().as_secs_f64());
        if let Some(since) = since {
            actix_web::rt::spawn(replay::send(state, user_id, since, outlet.clone()));
        }
        let first = match first {
            Poll::Ready(Some(Ok(frame))) => Some(frame),
            _ => None,
        };
        pump(first, frames, outlet, wakeup).await;
    });
}

/// The credential of the handshake, after the path, method and Origin checks.
async fn authorize(req: &Request, state: &AppState) -> Result<Credential, ApiError> {
    if req.path() != PATH {
        return Err(ApiError::NotFound);
    }
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let token = match presented(&req.head().headers) {
        Presented::Bearer(token) => token,
        Presented::Cookie(token) => {
            // Browsers send cookies cross-site: a cookie handshake must come from an allowed page.
            if !origin_allowed(&req.head().headers, &state.allowed_origins) {
                return Err(ApiError::Forbidden("origin not allowed".into()));
            }
            token
        }
        Presented::Nothing => return Err(ApiError::Unauthorized),
    };
    state.auth.authenticate(&token).await?.ok_or(ApiError::Unauthorized)
}

/// The handshake's catch-up parameters (`last_id`, `last_global_id`, `sync=1`): `None` when it
/// asks for no replay (the seed's stream), a 400 for a bad value. Other parameters are ignored.
fn catch_up_request(query: &str) -> Result<Option<Since>, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?
        .into_inner();
    let mut since = Since::default();
    let mut asked = false;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &pairs {
        let name = name.as_str();
        if !matches!(name, "last_id" | "last_global_id" | "sync") {
            continue;
        }
        if seen.contains(&name) {
            return Err(ApiError::BadRequest(format!("{name} is given twice")));
        }
        seen.push(name);
        match name {
            "sync" => match value.as_str() {
                "1" | "true" => asked = true,
                "0" | "false" => {}
                _ => return Err(ApiError::BadRequest("sync must be 1 or 0".into())),
            },
            _ => {
                let id =
                    value.parse::<i32>().ok().filter(|id| *id >= 0).ok_or_else(|| {
                        ApiError::BadRequest(format!("{name} must be an integer from 0 to 2147483647"))
                    })?;
                asked = true;
                if name == "last_id" {
                    since.last_id = Some(id);
                } else {
                    since.last_global_id = Some(id);
                }
            }
        }
    }
    Ok(asked.then_some(since))
}

fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
}

fn handshake_error(e: HandshakeError) -> ApiError {
    let reason = match e {
        HandshakeError::GetMethodRequired => return ApiError::MethodNotAllowed,
        HandshakeError::NoWebsocketUpgrade => "Upgrade: websocket header expected",
        HandshakeError::NoConnectionUpgrade => "Connection: upgrade header expected",
        HandshakeError::NoVersionHeader => "Sec-WebSocket-Version header expected",
        HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version (13 expected)",
        HandshakeError::BadWebsocketKey => "missing or invalid Sec-WebSocket-Key header",
    };
    ApiError::BadRequest(reason.into())
}

/// Writes the error's JSON response and closes the connection.
async fn refuse(codec: &mut h1::Codec, io: &mut TcpStream, error: &ApiError) {
    let response: Response<BoxBody> = error.error_response().into();
    let (mut head, body) = response.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let body = body.try_into_bytes().unwrap_or_default();
    let mut out = BytesMut::new();
    if codec
        .encode(h1::Message::Item((head, BodySize::Sized(body.len() as u64))), &mut out)
        .is_ok()
    {
        out.extend_from_slice(&body);
        let _ = io.write_all(&out).await;
        let _ = io.shutdown().await;
    }
}

/// The same line the HTTP logger writes for every other request: method, path, status, time.
fn log_request(method: &Method, path: &str, status: u16, started: Instant) {
    log::info!(
        target: "actix_web::middleware::logger",
        "{method} {path} {status} {:.6}ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

/// Requests to the WebSocket path that do not ask for an upgrade reach the App: they get the
/// handshake's own error.
pub fn routes(table: &mut crate::routes::table::RouteTable) {
    table.undocumented(
        PATH,
        "a WebSocket: OpenAPI cannot describe it (the document's description does)",
        web::route().to(|req: actix_web::HttpRequest| async move {
            match *req.method() {
                Method::GET => Err::<actix_web::HttpResponse, _>(handshake_error(HandshakeError::NoWebsocketUpgrade)),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_parameters_are_read_or_refused() {
        assert_eq!(catch_up_request("").ok(), Some(None));
        assert_eq!(catch_up_request("other=x&sync=0").ok(), Some(None));
        assert_eq!(catch_up_request("sync=1").ok(), Some(Some(Since::default())));
        assert_eq!(
            catch_up_request("last_id=0&last_global_id=17").ok(),
            Some(Some(Since {
                last_id: Some(0),
                last_global_id: Some(17)
            }))
        );
        for bad in [
            "last_id=-1",
            "last_id=x",
            "last_id=",
            "last_global_id=2147483648",
            "sync=2",
            "last_id=1&last_id=2",
        ] {
            assert!(
                matches!(catch_up_request(bad), Err(ApiError::BadRequest(_))),
                "{bad} is refused"
            );
        }
    }
}
