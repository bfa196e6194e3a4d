//! The WebSocket fleet: opening N sockets (Bearer handshake, spread source addresses,
//! bounded concurrency) and one light reader task per socket that timestamps every
//! frame on receipt and parses only `type`, `notification.id` and `notification.title`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Which stretch of the run a notification title belongs to (titles are
/// `<run>:<phase>:<seq>`; the run prefix is unique per invocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Global = 0,
    Rate = 1,
    Flat = 2,
    Fill = 3,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Global, Phase::Rate, Phase::Flat, Phase::Fill];

    pub fn tag(self) -> char {
        match self {
            Phase::Global => 'g',
            Phase::Rate => 'r',
            Phase::Flat => 'f',
            Phase::Fill => 'x',
        }
    }

    fn from_tag(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.tag() as u8 == c)
    }
}

/// One received notification frame of this run.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub sock: u32,
    pub global: bool,
    pub phase: Phase,
    pub seq: u32,
    pub id: i64,
    pub at: Instant,
}

/// State shared by every reader task.
pub struct Shared {
    prefix: String,
    events: Mutex<Vec<Event>>,
    /// Frames of this run per phase, reset by the phase that waits on them.
    counts: [AtomicU64; 4],
    /// Global frames per round (never reset: a listener process watches rounds it does not
    /// start, so a late duplicate of one round must not count toward the next).
    rounds: Box<[AtomicU64]>,
    /// Frames that are not notifications of this run (other types, foreign titles, binary).
    pub other_frames: AtomicU64,
    /// Frames that failed to parse as JSON.
    pub bad_frames: AtomicU64,
    closed: Mutex<Vec<(u32, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    notification: Option<Note<'a>>,
}

#[derive(Deserialize)]
struct Note<'a> {
    id: i64,
    #[serde(borrow)]
    title: Cow<'a, str>,
}

impl Shared {
    /// State for run `run`, which counts the global frames of rounds `0..rounds` apart
    /// ([`Shared::round_count`]).
    pub fn new(run: &str, rounds: usize) -> Self {
        Self {
            prefix: format!("{run}:"),
            events: Mutex::new(Vec::with_capacity(1 << 16)),
            counts: Default::default(),
            rounds: (0..rounds).map(|_| AtomicU64::new(0)).collect(),
            other_frames: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            closed: Mutex::new(Vec::new()),
        }
    }

    /// The title for notification `seq` of `phase`.
    pub fn title(&self, phase: Phase, seq: usize) -> String {
        format!("{}{}:{seq}", self.prefix, phase.tag())
    }

    pub fn count(&self, phase: Phase) -> u64 {
        self.counts[phase as usize].load(Ordering::Relaxed)
    }

    /// Global frames of round `round` received so far (0 past the rounds counted).
    pub fn round_count(&self, round: usize) -> u64 {
        self.rounds.get(round).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn reset(&self, phase: Phase) {
        self.counts[phase as usize].store(0, Ordering::Relaxed);
    }

    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *lock(&self.events))
    }

    pub fn closed(&self) -> Vec<(u32, String)> {
        lock(&self.closed).clone()
    }

    /// How many sockets have closed so far.
    pub fn closed_count(&self) -> usize {
        lock(&self.closed).len()
    }

    fn on_text(&self, sock: u32, text: &str, at: Instant) {
        let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
            self.bad_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let global = match frame.kind.as_ref() {
            "global_notification" => true,
            "notification" => false,
            _ => {
                self.other_frames.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Some(note) = frame.notification else {
            self.bad_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some((phase, seq)) = self.parse_title(&note.title) else {
            self.other_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counts[phase as usize].fetch_add(1, Ordering::Relaxed);
        if global
            && phase == Phase::Global
            && let Some(c) = self.rounds.get(seq as usize)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.events).push(Event {
            sock,
            global,
            phase,
            seq,
            id: note.id,
            at,
        });
    }

    fn parse_title(&self, title: &str) -> Option<(Phase, u32)> {
        let rest = title.strip_prefix(self.prefix.as_str())?.as_bytes();
        if rest.len() < 3 || rest[1] != b':' {
            return None;
        }
        let phase = Phase::from_tag(rest[0])?;
        let seq = std::str::from_utf8(&rest[2..]).ok()?.parse().ok()?;
        Some((phase, seq))
    }
}

async fn read_loop(sock: u32, mut ws: WebSocketStream<TcpStream>, shared: Arc<Shared>) {
    let reason = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let at = Instant::now();
                shared.on_text(sock, text.as_str(), at);
            }
            Some(Ok(Message::Binary(_))) => {
                shared.other_frames.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                    None => "close".to_owned(),
                };
            }
            Some(Ok(_)) => {} // ping (answered by tungstenite on the next read), pong, raw frame
            Some(Err(e)) => break format!("error: {e}"),
            None => break "eof".to_owned(),
        }
    };
    lock(&shared.closed).push((sock, reason));
}

/// Where and how to open sockets.
pub struct Target {
    pub server: SocketAddr,
    pub ws_url: String,
    /// Source addresses to bind before connecting (empty: let the kernel pick).
    pub sources: Vec<IpAddr>,
    pub handshake_timeout: Duration,
}

impl Target {
    pub fn new(server: SocketAddr, ws_url: String, source_count: usize) -> Self {
        // 127.0.0.0/8 is all loopback on Linux: spreading the client side over
        // 127.0.0.2.. gives each source address its own ephemeral port range.
        let sources = match server.ip() {
            IpAddr::V4(v4) if v4.is_loopback() && source_count > 0 => (0..source_count)
                .map(|i| {
                    let i = i as u32 + 2;
                    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | (i & 0x00ff_ffff)))
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            server,
            ws_url,
            sources,
            handshake_timeout: Duration::from_secs(15),
        }
    }
}

/// Why one socket failed to open.
fn classify(err: &anyhow::Error) -> String {
    if let Some(ws) = err.downcast_ref::<WsError>() {
        return match ws {
            WsError::Http(resp) => format!("http {}", resp.status().as_u16()),
            WsError::Io(io) => format!("io {:?}", io.kind()),
            other => format!("ws {other}"),
        };
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        return format!("io {:?}", io.kind());
    }
    if err.is::<tokio::time::error::Elapsed>() {
        return "timeout".to_owned();
    }
    format!("{err:#}")
}

/// Opens one Bearer socket to `url` (the target's WebSocket URL, possibly with a query),
/// from the source address of socket `index`.
pub async fn open_at(
    target: &Target,
    url: &str,
    index: usize,
    token: &str,
) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !target.sources.is_empty() {
        let src = target.sources[index % target.sources.len()];
        socket
            .bind(SocketAddr::new(src, 0))
            .with_context(|| format!("bind {src}"))?;
    }
    let stream = socket.connect(target.server).await?;
    stream.set_nodelay(true)?;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    // Small buffers: 10k idle sockets must not cost the tool (or its page cache) much, and
    // tungstenite zeroes the free part of its read buffer before every read (8 % of the
    // tool's CPU in a fan-out profile with 4 KiB; pushes are a few hundred bytes).
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(0);
    let (ws, _resp) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// Where socket `i` of a run goes: which node, and which of the run's users it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub nodes: usize,
    pub users: usize,
    /// Index of this process's first socket among all the run's (listener processes hold
    /// consecutive shares), so that the shares together go round-robin over the nodes.
    pub base: usize,
}

impl Layout {
    /// Round-robin over the nodes, so each holds an even share.
    pub fn node(&self, i: usize) -> usize {
        (self.base + i) % self.nodes.max(1)
    }

    /// Each user owns `nodes` consecutive sockets in turn, one on every node: a user's pushes
    /// then reach every node (with one node this is plain round-robin over the users).
    pub fn user(&self, i: usize) -> usize {
        (i / self.nodes.max(1)) % self.users.max(1)
    }
}

/// An open socket: its owner (index into the user list), its node and its reader task.
pub struct Socket {
    pub user: usize,
    pub node: usize,
    task: JoinHandle<()>,
}

pub struct ConnectOutcome {
    pub sockets: BTreeMap<u32, Socket>,
    pub attempted: usize,
    pub failures: BTreeMap<String, u64>,
    pub handshake_micros: Vec<u64>,
    pub secs: f64,
    pub timed_out: bool,
}

impl ConnectOutcome {
    /// Open sockets per node.
    pub fn per_node(&self, nodes: usize) -> Vec<usize> {
        let mut out = vec![0; nodes.max(1)];
        for s in self.sockets.values() {
            if let Some(n) = out.get_mut(s.node) {
                *n += 1;
            }
        }
        out
    }
}

/// Opens `count` sockets, socket `i` to `targets[layout.node(i)]` for user `layout.user(i)`
/// (an index into `tokens`), at most `concurrency` handshakes in flight, giving up on whatever
/// is left at `deadline`.
pub async fn connect_all(
    targets: &[Target],
    layout: Layout,
    tokens: &[String],
    count: usize,
    concurrency: usize,
    shared: &Arc<Shared>,
    deadline: tokio::time::Instant,
) -> ConnectOutcome {
    let started = Instant::now();
    let mut out = ConnectOutcome {
        sockets: BTreeMap::new(),
        attempted: 0,
        failures: BTreeMap::new(),
        handshake_micros: Vec::with_capacity(count),
        secs: 0.0,
        timed_out: false,
    };
    if tokens.is_empty() || targets.len() != layout.nodes {
        return out;
    }
    let layout = Layout {
        users: tokens.len(),
        ..layout
    };
    let mut attempts = futures_util::stream::iter(0..count)
        .map(|i| async move {
            let t0 = Instant::now();
            let (node, user) = (layout.node(i), layout.user(i));
            let target = &targets[node];
            // The global index picks the source address, so listener processes spread theirs too.
            let open = open_at(target, &target.ws_url, layout.base + i, &tokens[user]);
            let res = tokio::time::timeout(target.handshake_timeout, open)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            (i, user, node, t0.elapsed(), res)
        })
        .buffer_unordered(concurrency.max(1));
    let mut last_report = Instant::now();
    loop {
        let next = match tokio::time::timeout_at(deadline, attempts.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                out.timed_out = true;
                break;
            }
        };
        let (i, user, node, took, res) = next;
        out.attempted += 1;
        match res {
            Ok(ws) => {
                out.handshake_micros.push(took.as_micros() as u64);
                let task = tokio::spawn(read_loop(i as u32, ws, Arc::clone(shared)));
                out.sockets.insert(i as u32, Socket { user, node, task });
            }
            Err(e) => *out.failures.entry(classify(&e)).or_default() += 1,
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            eprintln!(
                "  connect: {}/{count} open, {} failed",
                out.sockets.len(),
                out.attempted - out.sockets.len()
            );
        }
    }
    if out.timed_out {
        let left = (count - out.attempted) as u64;
        *out.failures.entry("phase timeout".to_owned()).or_default() += left;
    }
    out.secs = started.elapsed().as_secs_f64();
    out
}

/// Drops every socket (the reader tasks own the streams; aborting closes them).
pub fn close_all(sockets: BTreeMap<u32, Socket>) {
    for s in sockets.into_values() {
        s.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_round_trip() {
        let shared = Shared::new("hbabc", 0);
        let t = shared.title(Phase::Flat, 42);
        assert_eq!(t, "hbabc:f:42");
        assert_eq!(shared.parse_title(&t), Some((Phase::Flat, 42)));
        assert_eq!(shared.parse_title("hbabd:f:42"), None);
        assert_eq!(shared.parse_title("hbabc:q:1"), None);
    }

    /// Sockets each node gets out of `count`.
    fn per_node(layout: &Layout, count: usize) -> Vec<usize> {
        let mut out = vec![0; layout.nodes];
        for i in 0..count {
            out[layout.node(i)] += 1;
        }
        out
    }

    #[test]
    fn sockets_go_round_robin_over_nodes_and_each_user_spans_them() {
        let layout = Layout {
            nodes: 2,
            users: 200,
            base: 0,
        };
        assert_eq!(per_node(&layout, 10_000), vec![5000, 5000]);
        // Socket i of one node: every user has sockets on both nodes.
        let mut nodes_of_user: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
        let mut per_user: BTreeMap<usize, usize> = BTreeMap::new();
        for i in 0..10_000 {
            nodes_of_user.entry(layout.user(i)).or_default().insert(layout.node(i));
            *per_user.entry(layout.user(i)).or_default() += 1;
        }
        assert_eq!(per_user.len(), 200);
        assert!(per_user.values().all(|&n| n == 50));
        assert!(nodes_of_user.values().all(|n| n.len() == 2));
        // One node: the old plain round-robin over the users.
        let one = Layout {
            nodes: 1,
            users: 7,
            base: 0,
        };
        assert!((0..100).all(|i| one.node(i) == 0 && one.user(i) == i % 7));
        // Listener shares at consecutive bases together stay even over 6 nodes.
        let mut total = vec![0; 6];
        let mut base = 0;
        for share in [16_667, 16_667, 16_667, 16_667, 16_666, 16_666] {
            let l = Layout {
                nodes: 6,
                users: 170,
                base,
            };
            for (t, n) in total.iter_mut().zip(per_node(&l, share)) {
                *t += n;
            }
            base += share;
        }
        assert_eq!(total.iter().sum::<usize>(), 100_000);
        assert!(total.iter().all(|&n| n == 16_666 || n == 16_667), "{total:?}");
    }

    #[test]
    fn global_rounds_are_counted_apart() {
        let shared = Shared::new("hbr", 2);
        let now = Instant::now();
        for (sock, title) in [(1, "hbr:g:0"), (2, "hbr:g:0"), (1, "hbr:g:1"), (1, "hbr:g:5")] {
            let text = format!(r#"{{"type":"global_notification","notification":{{"id":1,"title":"{title}"}}}}"#);
            shared.on_text(sock, &text, now);
        }
        // A personal notification of the same title is not a global round's frame.
        shared.on_text(
            3,
            r#"{"type":"notification","notification":{"id":9,"title":"hbr:g:1"}}"#,
            now,
        );
        assert_eq!((shared.round_count(0), shared.round_count(1)), (2, 1));
        assert_eq!(shared.round_count(5), 0);
    }

    #[test]
    fn frames_are_counted() {
        let shared = Shared::new("hbz", 0);
        let now = Instant::now();
        shared.on_text(
            3,
            r#"{"type":"notification","notification":{"title":"hbz:r:7","id":11,"message":"m"}}"#,
            now,
        );
        shared.on_text(
            4,
            r#"{"type":"global_notification","notification":{"id":2,"title":"hbz:g:0"}}"#,
            now,
        );
        shared.on_text(5, r#"{"type":"notification_read","notification_ids":[1]}"#, now);
        shared.on_text(5, "not json", now);
        assert_eq!(shared.count(Phase::Rate), 1);
        assert_eq!(shared.count(Phase::Global), 1);
        assert_eq!(shared.other_frames.load(Ordering::Relaxed), 1);
        assert_eq!(shared.bad_frames.load(Ordering::Relaxed), 1);
        let ev = shared.take_events();
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[0].sock, ev[0].id, ev[0].seq, ev[0].global), (3, 11, 7, false));
        assert!(ev[1].global);
    }
}
