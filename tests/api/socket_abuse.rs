//! Hostile clients at the socket and connection level, over raw TCP: frames announcing more than
//! the frame limit, floods of client messages, invalid UTF-8, too many sockets for one user, too
//! many connections from one address, arbitrary frames (fuzzing), and pushes outrunning a worker.
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::helpers::{Backend, Seen, TestApp, TestUser, default_limits, notification_row, spawn_app, spawn_app_with};

/// A generous bound for "at once": the server answers in milliseconds.
const AT_ONCE: Duration = Duration::from_secs(3);

// ---- a WebSocket client at the byte level ----

/// The handshake of a Bearer WebSocket; answers the connection after a 101, or the refusal's
/// head and body.
async fn raw_handshake(port: u16, token: &str, from: Option<&str>) -> Result<TcpStream, (String, String)> {
    let mut stream = connect_from(port, from).await;
    let request = format!(
        "GET /ws/notifications/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("handshake sent");
    // Read the head byte by byte: what follows it belongs to the WebSocket.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(AT_ONCE, stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            other => panic!(
                "handshake answer cut short: {other:?} after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    if head.starts_with("HTTP/1.1 101") {
        return Ok(stream);
    }
    let mut body = Vec::new();
    let _ = tokio::time::timeout(AT_ONCE, stream.read_to_end(&mut body)).await;
    Err((head, String::from_utf8_lossy(&body).into_owned()))
}

/// A TCP connection to the server, from the loopback address `from` if given (all of 127/8 is
/// this machine: tests of per-address limits use addresses of their own).
async fn connect_from(port: u16, from: Option<&str>) -> TcpStream {
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(from) = from {
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind a loopback address");
    }
    socket.connect(server).await.expect("connected")
}

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

/// A masked client frame header announcing `len` payload bytes.
fn frame_head(fin_rsv_opcode: u8, len: u64, mask: [u8; 4]) -> Vec<u8> {
    let mut head = vec![fin_rsv_opcode];
    if len < 126 {
        head.push(0x80 | len as u8);
    } else if len <= u64::from(u16::MAX) {
        head.push(0x80 | 126);
        head.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        head.push(0x80 | 127);
        head.extend_from_slice(&len.to_be_bytes());
    }
    head.extend_from_slice(&mask);
    head
}

/// A whole masked, final client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x13, 0xc4, 0x7e];
    let mut frame = frame_head(0x80 | opcode, payload.len() as u64, mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// What the server sent on a raw socket.
#[derive(Debug, PartialEq)]
enum ServerSaid {
    Text(Value),
    Close(Option<u16>),
    /// A ping or pong.
    Control,
    /// The connection ended without a close frame.
    Ended,
    Nothing,
}

/// Reads server frames (unmasked) from a raw socket.
struct FrameReader<R> {
    stream: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(stream: R) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next whole server frame within `within`.
    async fn next(&mut self, within: Duration) -> ServerSaid {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(said) = self.parse() {
                return said;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return ServerSaid::Nothing,
                Ok(Ok(0)) | Ok(Err(_)) => return ServerSaid::Ended,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn parse(&mut self) -> Option<ServerSaid> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (at, len) = match b[1] & 0x7f {
            126 => (4, u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize),
            127 => (10, u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize),
            len => (2, len as usize),
        };
        if b.len() < at + len {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let payload = b[at..at + len].to_vec();
        self.buf.drain(..at + len);
        Some(match opcode {
            TEXT => ServerSaid::Text(serde_json::from_slice(&payload).expect("the server sends JSON")),
            0x8 => ServerSaid::Close((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
            0x9 | 0xA => ServerSaid::Control,
            other => panic!("unexpected server opcode {other}"),
        })
    }

    /// The close code the server ends with, skipping its messages; counts the text messages.
    async fn close_code(&mut self, within: Duration) -> (Option<u16>, usize) {
        let deadline = Instant::now() + within;
        let mut texts = 0;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())).await {
                ServerSaid::Text(_) => texts += 1,
                ServerSaid::Control => {}
                ServerSaid::Close(code) => return (code, texts),
                ServerSaid::Ended => panic!("connection ended without a close frame after {texts} messages"),
                ServerSaid::Nothing => panic!("socket still open after {within:?} and {texts} messages"),
            }
        }
    }
}

/// The process's resident memory (the server runs in this process).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

// ---- 1. frames announcing more than the frame limit ----

/// Sends the header of a frame of `announced` bytes, then streams its payload for a bounded
/// time: the server must close with 1009 from the header, without taking in the payload.
async fn announce_huge_frame(app: &TestApp, user: &TestUser, announced: u64) {
    let stream = raw_handshake(app.port, &user.token, None).await.expect("101");
    let (read, mut write) = stream.into_split();
    let before = rss_kib();
    write
        .write_all(&frame_head(0x80 | BINARY, announced, [1, 2, 3, 4]))
        .await
        .expect("header sent");
    let writer = tokio::spawn(async move {
        let chunk = vec![0x42u8; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(3);
        let mut sent: u64 = 0;
        while Instant::now() < until && sent < announced {
            match tokio::time::timeout(Duration::from_millis(100), write.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len() as u64,
                // Cut off: the server closed the connection.
                Ok(Err(_)) => break,
                // The server stopped reading and the kernel's buffers are full.
                Err(_) => continue,
            }
        }
        sent
    });
    let mut reader = FrameReader::new(read);
    let (code, _) = reader.close_code(AT_ONCE).await;
    assert_eq!(code, Some(1009), "a frame of {announced} bytes");
    let sent = writer.await.expect("the writer ends");
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    // What the client got into the kernel's buffers before the server cut it off, at most.
    assert!(sent < 32 << 20, "the server read on: {sent} bytes of payload taken");
    // Other tests run in this process too: a few MiB of slack for them.
    assert!(
        grown_mib <= 16,
        "RSS grew by {grown_mib} MiB for a frame of {announced} bytes"
    );
}

#[actix_web::test]
async fn a_frame_announcing_more_than_the_limit_is_refused_from_its_header() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    announce_huge_frame(&app, &user, 100 << 20).await;
    announce_huge_frame(&app, &user, 1 << 40).await;
    // Frames up to the limit still work, and the server is unharmed.
    let mut ws = app.ws(&user).await;
    ws.send_text(&format!(r#"{{"action":"{}"}}"#, "x".repeat(60_000))).await;
    assert_eq!(
        ws.json().await["type"],
        "error",
        "a large frame within the limit is read"
    );
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}

// ---- 5. invalid UTF-8 ----

#[actix_web::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    for payload in [&[0xff, 0xfe][..], b"{\"action\":\"\xc3\"}", &[0xe2, 0x82]] {
        let mut stream = raw_handshake(app.port, &user.token, None).await.expect("101");
        stream.write_all(&client_frame(TEXT, payload)).await.expect("sent");
        let (code, texts) = FrameReader::new(stream).close_code(AT_ONCE).await;
        assert_eq!((code, texts), (Some(1007), 0), "{payload:?}");
    }
    // Binary frames may hold anything: an error answer, the socket stays open.
    let mut stream = raw_handshake(app.port, &user.token, None).await.expect("101");
    stream
        .write_all(&client_frame(BINARY, &[0xff, 0xfe]))
        .await
        .expect("sent");
    let mut reader = FrameReader::new(stream);
    match reader.next(AT_ONCE).await {
        ServerSaid::Text(v) => assert_eq!(v["type"], "error"),
        other => panic!("expected an error message, saw {other:?}"),
    }
}

// ---- 2. floods of client messages ----

both_backends!(
    a_flood_on_one_socket_is_closed_and_slows_nobody_else,
    a_worker_that_cannot_keep_up_closes_its_sockets_rather_than_queue_without_bound,
);

async fn a_flood_on_one_socket_is_closed_and_slows_nobody_else(backend: Backend) {
    let app = spawn_app_with(backend, default_limits).await;
    let flooder = app.new_user().await;
    let other = app.new_user().await;
    for i in 0..20 {
        app.notify(other.id, &format!("n{i}")).await;
    }
    let mut calm = app.ws(&other).await;

    let flood: Vec<u8> = (0..5_000)
        .flat_map(|i| {
            client_frame(
                TEXT,
                json!({"action": "mark_read", "notification_id": 1_000_000 + i})
                    .to_string()
                    .as_bytes(),
            )
        })
        .collect();
    let stream = raw_handshake(app.port, &flooder.token, None).await.expect("101");
    let (read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may stop reading, and then close: neither is an error here.
        let _ = tokio::time::timeout(Duration::from_secs(10), write.write_all(&flood)).await;
        write
    });
    let watcher = tokio::spawn(async move { FrameReader::new(read).close_code(Duration::from_secs(10)).await });

    // Meanwhile the other user's REST calls answer promptly.
    for _ in 0..5 {
        for path in ["/api/notifications/mark-all-read/", "/api/notifications/"] {
            let request = if path.ends_with("mark-all-read/") {
                app.http.post(app.url(path))
            } else {
                app.http.get(app.url(path))
            };
            let answered = tokio::time::timeout(Duration::from_secs(1), request.bearer_auth(&other.token).send())
                .await
                .unwrap_or_else(|_| panic!("{path} took over 1 s during the flood"))
                .expect("answered");
            assert_eq!(answered.status(), StatusCode::OK, "{path}");
        }
    }
    let (code, texts) = watcher.await.expect("watcher");
    assert_eq!(code, Some(1008), "the flooding socket is closed");
    assert!(texts <= 60, "{texts} answers to a flood");
    drop(writer.await);

    // The other user's socket saw its own reads, and still works.
    let n = app.notify(other.id, "after the flood").await;
    loop {
        match calm.next(AT_ONCE).await {
            Seen::Json(v) if v["type"] == "notification" => break,
            Seen::Json(v) => assert_eq!(v["type"], "notification_read", "{v}"),
            other => panic!("the calm socket saw {other:?}"),
        }
    }
    calm.send_json(json!({"action": "mark_read", "notification_id": n["id"]}))
        .await;
    let read = calm.json().await;
    assert_eq!(read["type"], "notification_read", "{read}");
    assert_eq!(read["unread_count"], 0);
}

#[actix_web::test]
async fn without_the_message_limit_a_flood_waits_its_turn_and_every_action_is_answered() {
    // The limit off: no frame is dropped, one action runs at a time, and the client waits in TCP.
    let app = spawn_app().await;
    let user = app.new_user().await;
    let frames: Vec<u8> = (0..300)
        .flat_map(|i| {
            client_frame(
                TEXT,
                json!({"action": "mark_read", "notification_id": 1_000_000 + i})
                    .to_string()
                    .as_bytes(),
            )
        })
        .collect();
    let mut stream = raw_handshake(app.port, &user.token, None).await.expect("101");
    stream.write_all(&frames).await.expect("sent");
    let mut reader = FrameReader::new(stream);
    let mut answered = 0;
    // Bounded: 300 answers, plus the server's heartbeat pings that may fall between them.
    for _ in 0..400 {
        if answered == 300 {
            break;
        }
        match reader.next(Duration::from_secs(10)).await {
            ServerSaid::Text(v) => {
                assert_eq!(v["error"], "notification not found", "answer {answered}");
                answered += 1;
            }
            // A ping from the heartbeat is not an answer; the flood may outlast one interval.
            ServerSaid::Control => {}
            other => panic!("answer {answered}: {other:?}"),
        }
    }
    assert_eq!(answered, 300, "every action answered");
}

#[actix_web::test]
async fn a_client_just_over_the_message_limit_is_told_once_and_stays_open() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        default_limits(s);
        s.limits.socket_messages_per_second = 5;
    })
    .await;
    let user = app.new_user().await;
    let mut stream = raw_handshake(app.port, &user.token, None).await.expect("101");
    // A burst of 10 is allowed; 13 at once is 3 over: one error, no close.
    let frames: Vec<u8> = (0..13).flat_map(|_| client_frame(0x9, b"p")).collect();
    stream.write_all(&frames).await.expect("sent");
    let mut reader = FrameReader::new(stream);
    let mut errors = 0;
    let mut pongs = 0;
    loop {
        match reader.next(Duration::from_millis(500)).await {
            ServerSaid::Text(v) => {
                assert_eq!(v["type"], "error");
                errors += 1;
            }
            ServerSaid::Control => pongs += 1,
            ServerSaid::Nothing => break,
            other => panic!("{other:?}"),
        }
    }
    // 10 at least (more if the limiter refilled while they were read): one error for the rest.
    assert_eq!(errors, 1, "{pongs} pongs");
    assert!((10..13).contains(&pongs), "{pongs} pongs");
}

#[actix_web::test]
async fn a_client_that_keeps_on_at_twice_the_limit_is_closed_with_1008() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        default_limits(s);
        s.limits.socket_messages_per_second = 5;
    })
    .await;
    let user = app.new_user().await;
    let stream = raw_handshake(app.port, &user.token, None).await.expect("101");
    let (read, mut write) = stream.into_split();
    // Ten a second, steadily: half of them over the limit, never a quiet second.
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(&client_frame(0x9, b"p")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (code, errors) = FrameReader::new(read).close_code(Duration::from_secs(8)).await;
    assert_eq!(code, Some(1008));
    assert_eq!(errors, 1, "one error for the whole overrun");
    writer.abort();
}

// ---- 3. sockets per user ----

#[actix_web::test]
async fn the_51st_socket_of_a_user_is_refused_until_one_closes() {
    let app = spawn_app_with(Backend::Sqlite, default_limits).await;
    let user = app.new_user().await;
    let mut open = Vec::new();
    for _ in 0..50 {
        open.push(app.ws(&user).await);
    }
    let (head, body) = raw_handshake(app.port, &user.token, None).await.expect_err("refused");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("\r\nretry-after: "), "{head}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        body["error"].as_str().expect("error").contains("too many open sockets"),
        "{body}"
    );

    // Another user is not affected.
    let other = app.new_user().await;
    let _theirs = app.ws(&other).await;

    // Closing one lets a new one in (once the server has seen the close).
    let mut closing = open.pop().expect("a socket");
    closing.stream.close(None).await.expect("close sent");
    let deadline = Instant::now() + AT_ONCE;
    loop {
        match raw_handshake(app.port, &user.token, None).await {
            Ok(_) => break,
            Err((head, _)) if head.starts_with("HTTP/1.1 429") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((head, _)) => panic!("still refused: {head}"),
        }
    }
}

// ---- 4. connections per address ----

/// Whether the server answers a request on this connection (false: closed unanswered).
async fn served(stream: &mut TcpStream) -> bool {
    let request = "GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = [0u8; 12];
    match tokio::time::timeout(AT_ONCE, stream.read_exact(&mut answer)).await {
        Ok(Ok(_)) => answer.starts_with(b"HTTP/1.1 200"),
        Ok(Err(_)) => false,
        Err(_) => panic!("neither answered nor closed"),
    }
}

#[actix_web::test]
async fn connections_past_the_cap_of_an_address_are_closed_at_accept() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        default_limits(s);
        s.limits.connections_per_address = 3;
        s.limits.trusted_proxies = vec!["127.0.0.3".into()];
    })
    .await;
    let user = app.new_user().await;
    // An address of its own: the test client's pooled connections come from 127.0.0.1.
    const CLIENT: &str = "127.0.0.2";
    let mut http = connect_from(app.port, Some(CLIENT)).await;
    assert!(served(&mut http).await);
    // A WebSocket counts as long as it is open.
    let socket = raw_handshake(app.port, &user.token, Some(CLIENT)).await.expect("101");
    let mut third = connect_from(app.port, Some(CLIENT)).await;
    assert!(served(&mut third).await);
    let mut fourth = connect_from(app.port, Some(CLIENT)).await;
    assert!(!served(&mut fourth).await, "the fourth connection is closed unanswered");

    // Other addresses have their own count; a trusted proxy has none.
    let mut elsewhere = connect_from(app.port, Some("127.0.0.4")).await;
    assert!(served(&mut elsewhere).await);
    let mut proxied = Vec::new();
    for _ in 0..5 {
        let mut conn = connect_from(app.port, Some("127.0.0.3")).await;
        assert!(served(&mut conn).await, "a trusted proxy is not capped");
        proxied.push(conn);
    }

    // However a connection ends, its place comes back: the WebSocket reset, the HTTP one closed.
    let linger = socket2::SockRef::from(&socket);
    linger.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(socket);
    drop(http);
    let deadline = Instant::now() + AT_ONCE;
    let mut kept = Vec::new();
    while kept.len() < 2 {
        let mut conn = connect_from(app.port, Some(CLIENT)).await;
        if served(&mut conn).await {
            kept.push(conn);
        } else {
            assert!(Instant::now() < deadline, "places not given back ({} of 2)", kept.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut over = connect_from(app.port, Some(CLIENT)).await;
    assert!(!served(&mut over).await, "the cap holds again");
}

// ---- 7. fuzzing the client-frame handling ----

/// One thing a fuzzed client writes: a frame, true to its header or not, or bare bytes.
#[derive(Debug, Clone)]
enum Written {
    Frame {
        /// FIN, RSV1-3 and the opcode, any of them.
        first: u8,
        masked: bool,
        /// A length the header announces instead of the payload's own.
        announced: Option<u64>,
        payload: Vec<u8>,
    },
    Bytes(Vec<u8>),
}

impl Written {
    fn wire(&self) -> Vec<u8> {
        match self {
            Written::Bytes(bytes) => bytes.clone(),
            Written::Frame {
                first,
                masked,
                announced,
                payload,
            } => {
                let mask = [0x37, 0x00, 0xfa, 0x81];
                let mut wire = frame_head(*first, announced.unwrap_or(payload.len() as u64), mask);
                if !masked {
                    wire[1] &= 0x7f;
                    wire.truncate(wire.len() - 4);
                    wire.extend_from_slice(payload);
                } else {
                    wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
                }
                wire
            }
        }
    }

    fn is_close(&self) -> bool {
        matches!(self, Written::Frame { first, .. } if first & 0x0f == 0x8)
    }
}

fn written() -> impl proptest::strategy::Strategy<Value = Written> {
    use proptest::{collection::vec, prelude::*};
    let first = prop_oneof![
        any::<u8>(),
        Just(0x81u8),
        Just(0x82),
        Just(0x01),
        Just(0x80),
        Just(0x89),
        Just(0x8a),
        Just(0x88),
    ];
    let payload = prop_oneof![
        vec(any::<u8>(), 0..300),
        "[ -~]{0,120}".prop_map(String::into_bytes),
        (any::<i64>(), "[a-z_]{0,12}").prop_map(|(id, action)| {
            json!({"action": action, "notification_id": id})
                .to_string()
                .into_bytes()
        }),
        any::<i64>().prop_map(|id| json!({"action": "mark_read", "notification_id": id})
            .to_string()
            .into_bytes()),
    ];
    let announced = prop_oneof![
        8 => Just(None),
        1 => (0u64..3_000).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
    ];
    prop_oneof![
        9 => (first, proptest::bool::weighted(0.9), announced, payload).prop_map(
            |(first, masked, announced, payload)| Written::Frame { first, masked, announced, payload }
        ),
        1 => vec(any::<u8>(), 0..64).prop_map(Written::Bytes),
    ]
}

/// Close codes the server may end a fuzzed socket with: it echoes a client's close; otherwise
/// a protocol error, invalid data, a policy (too many bad messages) or a too-large frame.
const FUZZ_CLOSE_CODES: [u16; 4] = [1002, 1007, 1008, 1009];

/// Writes `case` on a fresh socket and checks the server's answer: messages, silence (a frame
/// still incomplete), or a close with a proper code; never a connection dropped unannounced.
async fn fuzz_case(port: u16, token: &str, case: &[Written]) -> Result<(), String> {
    let mut stream = raw_handshake(port, token, None).await.map_err(|e| format!("{e:?}"))?;
    let wire: Vec<u8> = case.iter().flat_map(Written::wire).collect();
    let written_whole = stream.write_all(&wire).await.is_ok();
    let mut reader = FrameReader::new(stream);
    loop {
        match reader.next(Duration::from_millis(150)).await {
            ServerSaid::Text(v) if v["type"] == "error" || v["type"] == "notification_read" => {}
            ServerSaid::Text(v) => return Err(format!("unexpected message {v}")),
            ServerSaid::Control => {}
            ServerSaid::Nothing => return Ok(()),
            ServerSaid::Close(code) => {
                let client_closed = case.iter().any(Written::is_close);
                return match code {
                    Some(code) if FUZZ_CLOSE_CODES.contains(&code) => Ok(()),
                    // The server echoes the client's own close.
                    _ if client_closed => Ok(()),
                    other => Err(format!("closed with {other:?}")),
                };
            }
            // Cut off while still writing: the close frame may be lost in the reset.
            ServerSaid::Ended if !written_whole => return Ok(()),
            ServerSaid::Ended => return Err("connection dropped without a close frame".into()),
        }
    }
}

/// Inputs that once failed, or that are known to be tricky, checked on every run.
fn regressions() -> Vec<Vec<Written>> {
    let frame = |first: u8, masked: bool, announced: Option<u64>, payload: &[u8]| Written::Frame {
        first,
        masked,
        announced,
        payload: payload.to_vec(),
    };
    vec![
        vec![frame(0x82, true, Some(u64::MAX), b"")],
        vec![frame(0x82, true, Some(1 << 63), b"")],
        vec![frame(0xc1, true, None, b"{}")],
        vec![frame(0x81, false, None, b"{}")],
        vec![frame(0x89, true, None, &[0u8; 126])],
        vec![frame(0x80, true, None, b"x")],
        vec![
            frame(0x01, true, None, b"{\"act"),
            frame(0x89, true, None, b""),
            frame(0x80, true, None, b"ion\"}"),
        ],
        vec![frame(0x88, true, None, &[0x03, 0xe8, 0xff])],
        vec![frame(0x88, true, None, &[0x03, 0xe7])],
        vec![frame(0x88, true, None, &[0x03])],
        vec![frame(0x81, true, None, &[0xed, 0xa0, 0x80])],
        vec![frame(0x81, true, None, b"")],
        vec![frame(0x83, true, None, b"x")],
        vec![Written::Bytes(vec![0x81])],
    ]
}

#[actix_web::test]
async fn arbitrary_client_frames_get_an_answer_or_a_proper_close_and_never_crash_the_server() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.websocket.max_frame_bytes = 1024).await;
    let user = app.new_user().await;
    let (port, token) = (app.port, user.token.clone());
    // proptest's runner is synchronous: it runs on a thread of its own, with a client runtime.
    let outcome = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        for case in regressions() {
            if let Err(e) = runtime.block_on(fuzz_case(port, &token, &case)) {
                return Err(format!("regression {case:?}: {e}"));
            }
        }
        let config = proptest::test_runner::Config {
            cases: 96,
            failure_persistence: None,
            ..Default::default()
        };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        runner
            .run(&proptest::collection::vec(written(), 1..4), |case| {
                runtime
                    .block_on(fuzz_case(port, &token, &case))
                    .map_err(proptest::test_runner::TestCaseError::fail)
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the fuzzing thread");
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "the server still serves");
    let mut ws = app.ws(&user).await;
    ws.send_json(json!({"action": "mark_read", "notification_id": 1})).await;
    assert_eq!(ws.json().await["error"], "notification not found");
}

// ---- 6. back-pressure between the hub and the worker threads ----

/// Saves `count` notifications for `user_id` in one statement: their pushes reach the hub
/// back to back. Answers their titles in order.
async fn save_burst(app: &TestApp, user_id: i32, count: usize) -> Vec<String> {
    let titles: Vec<String> = (0..count).map(|i| format!("burst {i}")).collect();
    let rows = titles.iter().map(|t| notification_row(user_id, t.as_str())).collect();
    app.saving(entity::notification::insert_many_and_push(&app.db, rows))
        .await
        .expect("saved");
    titles
}

/// The titles of the notifications a socket receives until it is closed or falls silent.
async fn received_titles(ws: &mut crate::helpers::WsClient) -> (Vec<String>, Seen) {
    let mut titles = Vec::new();
    loop {
        match ws.next(AT_ONCE).await {
            Seen::Json(v) if v["type"] == "notification" => {
                titles.push(v["notification"]["title"].as_str().expect("a title").to_owned());
            }
            Seen::Json(v) => panic!("unexpected {v}"),
            end => return (titles, end),
        }
    }
}

async fn a_worker_that_cannot_keep_up_closes_its_sockets_rather_than_queue_without_bound(backend: Backend) {
    // A queue of one push per worker: a burst outruns it at once.
    let app = spawn_app_with(backend, |s| {
        s.workers = 1;
        s.websocket.worker_queue_len = 1;
    })
    .await;
    let user = app.new_user().await;
    let mut ws = app.ws(&user).await;
    let sent = save_burst(&app, user.id, 2_000).await;
    let (got, end) = received_titles(&mut ws).await;
    assert!(
        matches!(end, Seen::Closed(Some(1008))),
        "ended with {end:?} after {}",
        got.len()
    );
    // Whatever arrived before the close came in order and without a gap.
    assert!(got.len() < sent.len());
    assert_eq!(got[..], sent[..got.len()]);
    // The client reconnects and catches up over REST: nothing saved was lost.
    let (_, list) = app.get("/api/notifications/?limit=1000", Some(&user.token)).await;
    assert_eq!(list["count"], 2_000);
    let mut again = app.ws(&user).await;
    app.notify(user.id, "after").await;
    assert_eq!(again.json().await["notification"]["title"], "after");
}

#[actix_web::test]
async fn a_socket_that_keeps_reading_gets_every_push_of_a_burst() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.workers = 1).await;
    let user = app.new_user().await;
    let mut ws = app.ws(&user).await;
    let sent = save_burst(&app, user.id, 2_000).await;
    let (got, end) = received_titles(&mut ws).await;
    assert!(matches!(end, Seen::Nothing), "{end:?}");
    assert_eq!(got, sent);
}
