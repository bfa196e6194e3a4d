//! The socket itself: handshake refusals, bad frames, liveness, slow consumers, logout, shutdown.
use std::time::Duration;

use entity::notification;
use sea_orm::ActiveValue::Set;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

use crate::helpers::{Backend, Seen, spawn_app, spawn_app_with};

const QUIET: Duration = Duration::from_millis(300);

#[actix_web::test]
async fn handshakes_without_valid_credentials_are_refused() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let origin = format!("http://127.0.0.1:{}", app.port);

    assert_eq!(app.ws_with(|_| {}).await.err(), Some(401), "no credentials");
    let bad = app
        .ws_with(|r| {
            r.headers_mut()
                .insert("Authorization", HeaderValue::from_static("Bearer nope"));
        })
        .await;
    assert_eq!(bad.err(), Some(401), "bad token");

    let cookie = HeaderValue::from_str(&user.cookie_header()).unwrap();
    let foreign = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
            r.headers_mut()
                .insert("Origin", HeaderValue::from_static("http://evil.example"));
        })
        .await;
    assert_eq!(foreign.err(), Some(403), "foreign origin with cookie");
    let no_origin = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
        })
        .await;
    assert_eq!(no_origin.err(), Some(403), "cookie without origin");

    let mut same_origin = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
            r.headers_mut()
                .insert("Origin", HeaderValue::from_str(&origin).unwrap());
        })
        .await
        .expect("same-origin cookie handshake");
    let localhost = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
            r.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(&format!("http://localhost:{}", app.port)).unwrap(),
            );
        })
        .await;
    assert!(localhost.is_ok(), "localhost is the same server on a loopback bind");

    app.post("/api/auth/logout/", Some(&user.token), None).await;
    let revoked = app
        .ws_with(|r| {
            r.headers_mut().insert(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {}", user.token)).unwrap(),
            );
        })
        .await;
    assert_eq!(revoked.err(), Some(401), "revoked token");
    assert_eq!(same_origin.close_code(Duration::from_secs(3)).await, Some(4001));
}

#[actix_web::test]
async fn configured_origins_replace_the_default() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.allowed_origins = vec!["https://jobs.example".into()]
    })
    .await;
    let user = app.new_user().await;
    let cookie = HeaderValue::from_str(&user.cookie_header()).unwrap();
    let allowed = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
            r.headers_mut()
                .insert("Origin", HeaderValue::from_static("https://jobs.example"));
        })
        .await;
    assert!(allowed.is_ok());
    let own = app
        .ws_with(|r| {
            r.headers_mut().insert("Cookie", cookie.clone());
            r.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(&format!("http://127.0.0.1:{}", app.port)).unwrap(),
            );
        })
        .await;
    assert_eq!(own.err(), Some(403));
}

#[actix_web::test]
async fn bad_frames_get_errors_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;

    for bad in [
        "not json",
        r#"{"action":"dance"}"#,
        r#"{"notification_id":1}"#,
        r#"{"action":"mark_read","notification_id":"x"}"#,
        &format!(r#"{{"action":"mark_read","pad":"{}"}}"#, "x".repeat(8 * 1024)),
    ] {
        socket.send_text(bad).await;
        let reply = socket.json().await;
        assert_eq!(reply["type"], "error", "{bad}");
        assert!(reply["error"].is_string());
    }
    socket.stream.send_binary_frame().await;
    assert_eq!(socket.json().await["type"], "error");

    // Still usable.
    let n = app.notify(user.id, "still here").await;
    assert_eq!(socket.json().await["notification"]["id"], n["id"]);
    socket
        .send_json(json!({ "action": "mark_read", "notification_id": n["id"] }))
        .await;
    assert_eq!(socket.json().await["type"], "notification_read");
}

/// Binary frames through the helper's stream.
trait SendBinary {
    async fn send_binary_frame(&mut self);
}

impl SendBinary for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    async fn send_binary_frame(&mut self) {
        use futures_util::SinkExt;
        self.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    }
}

#[actix_web::test]
async fn a_client_that_keeps_sending_garbage_is_closed_with_1008() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.websocket.max_bad_frames_per_minute = 5).await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    for _ in 0..5 {
        socket.send_text("garbage").await;
        assert_eq!(socket.json().await["type"], "error");
    }
    socket.send_text("garbage").await;
    assert_eq!(socket.close_code(Duration::from_secs(3)).await, Some(1008));
    assert_eq!(app.wait_for_sessions(0, Duration::from_secs(3)).await.sessions, 0);
}

#[actix_web::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    socket.send_text(&"x".repeat(65 * 1024)).await;
    assert_eq!(socket.close_code(Duration::from_secs(3)).await, Some(1009));
}

#[actix_web::test]
async fn the_server_pings_and_drops_a_silent_peer() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.websocket.heartbeat_interval_secs = 0.2;
        s.websocket.client_timeout_secs = 1.0;
    })
    .await;
    let user = app.new_user().await;

    // A reading client answers pings (tungstenite replies with pongs) and stays connected.
    let mut alive = app.ws(&user).await;
    let mut saw_ping = false;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        use futures_util::StreamExt;
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(300), alive.stream.next()).await
        {
            saw_ping = true;
        }
    }
    assert!(saw_ping, "the server pings");

    // A client that never reads never answers: it is gone within the timeout.
    let silent = app.ws(&user).await;
    assert_eq!(app.stats().await.sessions, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while app.stats().await.sessions > 1 && tokio::time::Instant::now() < deadline {
        // Keep the live client reading (and so answering pings) meanwhile.
        assert!(matches!(alive.next(Duration::from_millis(100)).await, Seen::Nothing));
    }
    assert_eq!(
        app.stats().await.sessions,
        1,
        "the silent peer was dropped, the live one kept"
    );
    drop(silent);
    let n = app.notify(user.id, "for the live one").await;
    assert_eq!(alive.json().await["notification"]["id"], n["id"]);
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_dropped_and_slows_nobody() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.websocket.send_queue_len = 32;
        s.websocket.heartbeat_interval_secs = 30.0;
        s.websocket.client_timeout_secs = 60.0;
        s.metrics_bind = "127.0.0.1:0".into();
    })
    .await;
    let slow_user = app.new_user().await;
    let reader = app.new_user().await;
    let mut slow = app.ws(&slow_user).await;
    let mut fast = app.ws(&reader).await;

    // 1,000 notifications of 8 KiB each to both: ~8 MB, more than the kernel buffers hold.
    let big = "x".repeat(8 * 1024);
    let rows = |user_id: i32| -> Vec<notification::ActiveModel> {
        (0..1000)
            .map(|i| notification::ActiveModel {
                message: Set(big.clone()),
                notification_type: Set(entity::notification::NotificationType::Message),
                ..crate::helpers::notification_row(user_id, format!("n{i}"))
            })
            .collect()
    };
    // Batches smaller than the queue: a burst larger than the queue could outrun even a reading
    // client's session on a loaded machine, which is what the bound is for.
    const BATCH: usize = 20;
    let (slow_rows, fast_rows) = (rows(slow_user.id), rows(reader.id));
    let mut delivered = 0;
    for (slow_batch, fast_batch) in slow_rows.chunks(BATCH).zip(fast_rows.chunks(BATCH)) {
        app.saving(notification::insert_many_and_push(&app.db, slow_batch.to_vec()))
            .await
            .unwrap();
        let saved = app
            .saving(notification::insert_many_and_push(&app.db, fast_batch.to_vec()))
            .await
            .unwrap();
        // The reader keeps up while the slow client reads nothing.
        for model in &saved {
            assert_eq!(fast.json().await["notification"]["id"], model.id);
            delivered += 1;
        }
    }
    assert_eq!(delivered, 1000);

    assert_eq!(
        app.wait_for_sessions(1, Duration::from_secs(5)).await.sessions,
        1,
        "the slow client was dropped"
    );
    // When it finally reads, it finds a policy close before the end of the stream.
    let mut got = 0;
    let code = loop {
        match slow.next(Duration::from_secs(5)).await {
            Seen::Json(_) => got += 1,
            Seen::Closed(code) => break code,
            Seen::Nothing => panic!("slow socket neither closed nor delivered"),
        }
    };
    assert!(got < 1000, "it did not get everything queued ({got})");
    assert!(code == Some(1008) || code.is_none(), "{code:?}");
    fast.expect_silence(QUIET).await;
    let metrics = crate::metrics::scrape(&app).await;
    assert_eq!(
        crate::metrics::sample(&metrics, "herald_websocket_slow_closed_total"),
        Some(1.0),
        "{metrics}"
    );
}

#[actix_web::test]
async fn groups_are_dropped_when_empty_over_churn() {
    let app = spawn_app().await;
    let users = [app.new_user().await, app.new_user().await, app.new_user().await];
    for round in 0..30 {
        let mut open = Vec::new();
        for user in &users[..=round % 3] {
            open.push(app.ws(user).await);
        }
        let stats = app.stats().await;
        assert_eq!(stats.sessions, open.len());
        assert_eq!(stats.groups, open.len() + 1, "one group per user plus the global group");
        for mut socket in open {
            socket.stream.close(None).await.unwrap();
        }
        // Closing is asynchronous: every round must end with nothing left behind.
        let stats = app.wait_for_sessions(0, Duration::from_secs(3)).await;
        assert_eq!((stats.sessions, stats.groups), (0, 0), "after round {round}");
    }
}

#[actix_web::test]
async fn logout_closes_only_the_sockets_of_that_login() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let second_login = app.login(&user.username, crate::helpers::PASSWORD).await;
    let mut revoked = app.ws(&user).await;
    let mut kept = app.ws(&second_login).await;

    app.post("/api/auth/logout/", Some(&user.token), None).await;
    assert_eq!(revoked.close_code(Duration::from_secs(3)).await, Some(4001));
    let n = app.notify(user.id, "after logout").await;
    assert_eq!(kept.json().await["notification"]["id"], n["id"]);
}

#[actix_web::test]
async fn shutdown_tells_sockets_the_server_is_going_away() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut socket = app.ws(&user).await;
    let shutdown = app.shutdown.clone();
    actix_web::rt::spawn(async move { shutdown.shutdown().await });
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, Some(1001));
}

/// Sends raw bytes on a fresh connection and reads until the server closes it or `within` ends.
async fn raw_exchange(port: u16, bytes: &[u8], within: Duration) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(within, tcp.read_to_end(&mut seen)).await;
    seen
}

fn upgrade_request(method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// The status code and JSON body of a raw HTTP response.
fn status_and_json(response: &[u8]) -> (u16, serde_json::Value) {
    let text = String::from_utf8_lossy(response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

#[actix_web::test]
async fn refused_upgrades_get_json_errors_and_the_connection_closes() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let bearer = format!("Authorization: Bearer {}\r\n", user.token);
    let cases = [
        (upgrade_request("GET", "/api/notifications/", &bearer), 404),
        (upgrade_request("POST", "/ws/notifications/", &bearer), 405),
        (upgrade_request("GET", "/ws/notifications/", ""), 401),
        (
            upgrade_request("GET", "/ws/notifications/", &bearer)
                .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            400,
        ),
        (
            upgrade_request("GET", "/ws/notifications/", &bearer)
                .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
        ),
        // Not an upgrade at all: the App answers with the handshake's error.
        (
            format!("GET /ws/notifications/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{bearer}\r\n"),
            400,
        ),
    ];
    for (request, expected) in cases {
        let response = raw_exchange(app.port, request.as_bytes(), Duration::from_secs(5)).await;
        let (status, body) = status_and_json(&response);
        assert_eq!(status, expected, "{request}");
        assert!(
            body["error"].is_string(),
            "{request} → {}",
            String::from_utf8_lossy(&response)
        );
    }
    assert_eq!(app.stats().await.sessions, 0, "no refused handshake joined the hub");
}

#[actix_web::test]
async fn a_frame_sent_along_with_the_handshake_is_answered() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let mut bytes = upgrade_request(
        "GET",
        "/ws/notifications/",
        &format!("Authorization: Bearer {}\r\n", user.token),
    )
    .into_bytes();
    // One masked text frame in the same write as the handshake: it arrives in the same read.
    let payload = br#"{"action":"dance"}"#;
    let mask = [1u8, 2, 3, 4];
    bytes.extend_from_slice(&[0x81, 0x80 | payload.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));

    let response = raw_exchange(app.port, &bytes, Duration::from_secs(1)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let (_, frames) = text.split_once("\r\n\r\n").expect("end of the 101 head");
    assert!(
        frames.contains(r#""type":"error""#) && frames.contains("unknown action: dance"),
        "{frames:?}"
    );
}
