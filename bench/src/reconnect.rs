//! The reconnect phase: what catch-up costs after a node restart. This tool starts the
//! server itself, opens the fleet with `sync=1`, SIGKILLs the server, has a second server
//! process on the same database create the missed notifications, restarts the first, and
//! times every socket's reconnect (herald.js's backoff and jitter, its `last_id` /
//! `last_global_id`) until it has its `sync` and each missed notification exactly once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::Args;
use crate::api::{Api, http_client};
use crate::procfs::{self, CpuMeter};
use crate::sockets::{self, Target};
use crate::stats::{Dist, dist, mix, round3};

/// herald.js's reconnect defaults (`baseDelayMs`, `maxDelayMs`, `maxAttempts`, `healthyAfterMs`).
const BASE_DELAY_MS: f64 = 1000.0;
const MAX_DELAY_MS: f64 = 30_000.0;
const MAX_ATTEMPTS: u32 = 5;
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// After every socket is caught up, wait this long for duplicates or strays.
const GRACE: Duration = Duration::from_secs(1);
/// Bound on a server's start (until `/healthz` answers).
const START_BOUND: Duration = Duration::from_secs(60);
/// Bound on the reconnect itself: herald.js gives up after ~31 s of failed attempts at most.
const RECONNECT_BOUND: Duration = Duration::from_secs(120);
/// Creates in flight against the creator node.
const CREATE_CONCURRENCY: usize = 32;

/// herald.js's `backoffDelay(n)` ("equal jitter"), with `unit` in [0, 1) as its `Math.random()`.
pub fn backoff_delay(attempt: u32, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let cap = (BASE_DELAY_MS * f64::from(1u32 << exp)).min(MAX_DELAY_MS);
    Duration::from_secs_f64((cap / 2.0 + unit.clamp(0.0, 1.0) * cap / 2.0) / 1000.0)
}

/// A deterministic `Math.random()` for socket `index`'s attempt number `attempt`.
fn unit(index: usize, attempt: u32) -> f64 {
    (mix(((index as u64) << 20) ^ u64::from(attempt)) >> 11) as f64 / (1u64 << 53) as f64
}

/// What one socket got wrong after the restart.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Missed notifications of its user that never arrived.
    pub lost: u64,
    /// Frames of a notification it already had (seen before the kill, or twice after it).
    pub duplicated: u64,
    /// Notifications after the kill that are neither missed nor seen before (not its user's).
    pub stray: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.stray += o.stray;
    }
}

/// Counts one socket: `expected` the ids created for its user while the server was down,
/// `before` the ids it had received before the kill, `after` the ids received since, in order.
pub fn tally(expected: &[i64], before: &[i64], after: &[i64]) -> Tally {
    let expected: HashSet<i64> = expected.iter().copied().collect();
    let before: HashSet<i64> = before.iter().copied().collect();
    let mut got = HashSet::new();
    let mut t = Tally::default();
    for &id in after {
        if before.contains(&id) || !got.insert(id) {
            t.duplicated += 1;
        } else if !expected.contains(&id) {
            t.stray += 1;
        }
    }
    t.lost = expected.iter().filter(|id| !got.contains(id)).count() as u64;
    t
}

/// One server process this tool started; SIGKILLed when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn start(bin: &Path, bind: &str, log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .env("HERALD_BIND", bind)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `/healthz` until it answers 200: the moment it did.
async fn wait_healthy(api: &Api, server: &mut Server) -> anyhow::Result<Instant> {
    // A fresh client each poll: pooled connections to the killed process are dead.
    let deadline = Instant::now() + START_BOUND;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("the server exited during start-up ({status})");
        }
        let client = http_client(0)?;
        if let Ok((s, _)) = api.get(&client, "/healthz", None).await
            && s.is_success()
        {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("the server did not answer /healthz within {START_BOUND:?}")
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    notification: Option<Note>,
    replayed: Option<u64>,
}

#[derive(Deserialize)]
struct Note {
    id: i64,
}

/// State every socket task shares.
struct Fleet {
    target: Target,
    tokens: Vec<String>,
    /// Per user: ids created while the server was down (set before it restarts).
    expected: OnceLock<Vec<Vec<i64>>>,
    gate: Semaphore,
    opened: AtomicUsize,
    /// Personal notifications received before the kill (the fleet's baseline).
    before_frames: AtomicUsize,
    globals_before: AtomicUsize,
    caught: AtomicUsize,
    /// Sockets that exhausted herald.js's attempts.
    gave_up: AtomicUsize,
}

/// What one socket saw.
#[derive(Default)]
struct SockResult {
    user: usize,
    opened: bool,
    before: Vec<i64>,
    after: Vec<i64>,
    /// Newest announcement id received.
    last_global: i64,
    globals_after: u64,
    attempts: u32,
    gave_up: bool,
    /// Start of the handshake that succeeded after the kill.
    handshake_at: Option<Instant>,
    sync_at: Option<Instant>,
    /// Notification frames before the `sync` message, and what `sync` said.
    replay_frames: u64,
    sync_replayed: u64,
    caught_at: Option<Instant>,
}

enum Ended {
    Stopped,
    Closed,
}

async fn read_until_closed(
    fleet: &Fleet,
    ws: &mut WebSocketStream<TcpStream>,
    stop: &mut watch::Receiver<bool>,
    r: &mut SockResult,
    connection: u32,
) -> Ended {
    loop {
        let msg = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ended::Stopped,
            m = ws.next() => m,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ended::Closed,
            Some(Ok(_)) => continue,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        let id = frame.notification.map(|n| n.id);
        match (frame.kind.as_str(), id) {
            ("notification", Some(id)) if connection == 0 => {
                r.before.push(id);
                fleet.before_frames.fetch_add(1, Ordering::Relaxed);
            }
            ("notification", Some(id)) => {
                r.after.push(id);
                if r.sync_at.is_none() {
                    r.replay_frames += 1;
                }
            }
            ("global_notification", Some(id)) if connection == 0 => {
                r.last_global = r.last_global.max(id);
                fleet.globals_before.fetch_add(1, Ordering::Relaxed);
            }
            ("global_notification", Some(_)) => r.globals_after += 1,
            ("sync", _) if connection > 0 => {
                r.sync_at = Some(Instant::now());
                r.sync_replayed = frame.replayed.unwrap_or(0);
            }
            _ => {}
        }
        if connection > 0 && r.caught_at.is_none() && r.sync_at.is_some() {
            let expected = fleet.expected.get().and_then(|e| e.get(r.user));
            if expected.is_some_and(|e| e.iter().all(|id| r.after.contains(id))) {
                r.caught_at = Some(Instant::now());
                fleet.caught.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn resume_url(base: &str, last_id: Option<i64>, last_global_id: Option<i64>) -> String {
    let mut url = format!("{base}?sync=1");
    if let Some(id) = last_id {
        url.push_str(&format!("&last_id={id}"));
    }
    if let Some(id) = last_global_id {
        url.push_str(&format!("&last_global_id={id}"));
    }
    url
}

/// One client: opens with `sync=1` (a page whose lists were empty: ids 0), reads, and on a
/// close reconnects as herald.js does, remembering the newest ids it has seen.
async fn client(fleet: Arc<Fleet>, index: usize, mut stop: watch::Receiver<bool>) -> SockResult {
    let user = index % fleet.tokens.len();
    let token = fleet.tokens[user].as_str();
    let mut r = SockResult {
        user,
        ..SockResult::default()
    };
    let first = {
        let Ok(_permit) = fleet.gate.acquire().await else {
            return r;
        };
        let url = resume_url(&fleet.target.ws_url, Some(0), Some(0));
        tokio::time::timeout(
            fleet.target.handshake_timeout,
            sockets::open_at(&fleet.target, &url, index, token),
        )
        .await
    };
    let Ok(Ok(mut ws)) = first else {
        return r;
    };
    r.opened = true;
    fleet.opened.fetch_add(1, Ordering::Relaxed);
    let mut attempts = 0u32;
    let mut opened_at = Instant::now();
    // One close and one reconnect are the scenario; the bound keeps a flapping server finite.
    for connection in 0..16u32 {
        if let Ended::Stopped = read_until_closed(&fleet, &mut ws, &mut stop, &mut r, connection).await {
            return r;
        }
        drop(ws);
        if opened_at.elapsed() >= HEALTHY_AFTER {
            attempts = 0;
        }
        let last_id = r.before.iter().chain(&r.after).copied().max().unwrap_or(0);
        let url = resume_url(&fleet.target.ws_url, Some(last_id), Some(r.last_global));
        ws = loop {
            if attempts >= MAX_ATTEMPTS {
                r.gave_up = true;
                fleet.gave_up.fetch_add(1, Ordering::Relaxed);
                return r;
            }
            attempts += 1;
            r.attempts += 1;
            let delay = backoff_delay(attempts, unit(index, r.attempts));
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return r,
                () = tokio::time::sleep(delay) => {}
            }
            let t0 = Instant::now();
            let open = sockets::open_at(&fleet.target, &url, index, token);
            if let Ok(Ok(ws)) = tokio::time::timeout(fleet.target.handshake_timeout, open).await {
                r.handshake_at = Some(t0);
                break ws;
            }
        };
        opened_at = Instant::now();
    }
    r
}

/// Figures of one reconnect run (JSON).
#[derive(Debug, Default, Serialize)]
pub struct ReconnectReport {
    pub tool: &'static str,
    pub phase: &'static str,
    pub users: usize,
    pub sockets: usize,
    pub opened: usize,
    pub missed_created: usize,
    pub create_secs: f64,
    /// From the SIGKILL to the restarted server answering `/healthz`.
    pub down_secs: f64,
    /// From `/healthz` answering to the last socket caught up.
    pub total_secs: Option<f64>,
    pub caught_up: usize,
    pub gave_up: usize,
    /// Time from `/healthz` to caught-up, per socket.
    pub caught_up_after_healthz: Option<Dist>,
    /// Handshake start to `sync` on the reconnect that succeeded: the server's part.
    pub handshake_to_sync: Option<Dist>,
    pub attempts_total: u64,
    pub replay_frames: u64,
    pub sync_replayed: u64,
    pub tally: Tally,
    pub globals_after: u64,
    /// CPU seconds from `/healthz` until every socket was caught up.
    pub server_cpu_secs: Option<f64>,
    pub bench_cpu_secs: Option<f64>,
    pub server_rss_kib: Option<u64>,
    pub loadavg_start: Option<f64>,
    pub ok: bool,
    pub problems: Vec<String>,
}

/// Polls `done` every 5 ms for at most `bound`: whether it came true.
async fn wait_until(what: &str, bound: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + bound;
    while !done() {
        if Instant::now() >= until {
            eprintln!("  {what}: gave up waiting after {bound:?}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn gave_up(fleet: &Fleet) -> usize {
    fleet.gave_up.load(Ordering::Relaxed)
}

fn micros_since(t0: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(t0).as_micros() as u64
}

/// Runs the phase; `Ok(report)` even when sockets were lost (`report.ok` says).
pub async fn run(args: &Args) -> anyhow::Result<ReconnectReport> {
    let bin = args
        .server_bin
        .clone()
        .ok_or_else(|| anyhow!("--phases reconnect needs --server-bin (this tool starts and kills the server)"))?;
    let api = Api::new(args.url())?;
    let bind = api.addr.to_string();
    let creator_addr = std::net::SocketAddr::new(api.addr.ip(), args.creator_port);
    let creator = Api::new(&format!("http://{creator_addr}"))?;
    let log: PathBuf = args
        .server_log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("herald-bench-reconnect-{}.log", std::process::id())));
    let mut report = ReconnectReport {
        tool: "herald-bench",
        phase: "reconnect",
        users: args.users,
        sockets: args.sockets,
        loadavg_start: procfs::loadavg1(),
        ..ReconnectReport::default()
    };
    eprintln!(
        "reconnect: starting {} on {bind} (log {})",
        bin.display(),
        log.display()
    );
    let mut server = Server::start(&bin, &bind, &log)?;
    wait_healthy(&api, &mut server).await?;
    let admin = api
        .login(&args.admin_user, &args.admin_password)
        .await
        .context("admin login")?
        .token;

    // Users.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let run = format!("rc{:08x}", mix(nanos ^ u64::from(std::process::id())) as u32);
    let pw = format!("{run}-pw-Secret1");
    let names: Vec<String> = (0..args.users).map(|i| format!("{run}_{i}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.setup_timeout);
    let conc = args.auth_concurrency.max(1);
    let mut logins = futures_util::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let (api, pw) = (&api, &pw);
            async move {
                api.register(name, pw).await?;
                Ok::<_, anyhow::Error>((i, api.login(name, pw).await?))
            }
        })
        .buffer_unordered(conc);
    let mut users = vec![None; args.users];
    while let Some(next) = tokio::time::timeout_at(deadline, logins.next())
        .await
        .map_err(|_| anyhow!("registering users timed out"))?
    {
        let (i, login) = next?;
        users[i] = Some(login);
    }
    drop(logins);
    let users: Vec<_> = users.into_iter().flatten().collect();
    eprintln!("reconnect: {} users", users.len());

    // The fleet.
    let fleet = Arc::new(Fleet {
        target: Target::new(api.addr, api.ws_url(), args.source_addrs),
        tokens: users.iter().map(|u| u.token.clone()).collect(),
        expected: OnceLock::new(),
        gate: Semaphore::new(args.connect_concurrency.max(1)),
        opened: AtomicUsize::new(0),
        before_frames: AtomicUsize::new(0),
        globals_before: AtomicUsize::new(0),
        caught: AtomicUsize::new(0),
        gave_up: AtomicUsize::new(0),
    });
    // One announcement before the kill, so `last_global_id` is a real resume point.
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = (0..args.sockets)
        .map(|i| tokio::spawn(client(Arc::clone(&fleet), i, stop_rx.clone())))
        .collect();
    let n = args.sockets;
    wait_until("connect", Duration::from_secs_f64(args.setup_timeout), || {
        fleet.opened.load(Ordering::Relaxed) >= n
    })
    .await;
    report.opened = fleet.opened.load(Ordering::Relaxed);
    eprintln!("reconnect: {} sockets open", report.opened);

    // A live announcement and a notification per user before the kill, so `last_id` and
    // `last_global_id` are real resume points.
    api.create_global(&admin, &format!("{run}:g")).await?;
    let mut pre = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, u)| {
            let (api, admin, title) = (&api, &admin, format!("{run}:p:{i}"));
            async move { api.create_notification(admin, u.user_id, &title).await }
        })
        .buffer_unordered(CREATE_CONCURRENCY);
    while let Some(r) = pre.next().await {
        r?;
    }
    drop(pre);
    let opened = report.opened;
    let baseline = wait_until("baseline pushes", Duration::from_secs_f64(args.timeout), || {
        fleet.before_frames.load(Ordering::Relaxed) >= opened && fleet.globals_before.load(Ordering::Relaxed) >= opened
    })
    .await;
    if !baseline {
        report
            .problems
            .push("not every socket got its announcement and its user's notification before the kill".into());
    }

    // Kill; create the missed notifications through a second process on the same database.
    let killed_at = Instant::now();
    server.kill();
    eprintln!(
        "reconnect: server SIGKILLed; creating {} notifications on {creator_addr}",
        args.missed
    );
    let mut other = Server::start(&bin, &creator_addr.to_string(), &log)?;
    wait_healthy(&creator, &mut other).await?;
    let t_create = Instant::now();
    let mut expected = vec![Vec::new(); users.len()];
    let mut creates = futures_util::stream::iter(0..args.missed)
        .map(|k| {
            let (creator, admin, users, run) = (&creator, &admin, &users, &run);
            async move {
                let u = k % users.len();
                let id = creator
                    .create_notification(admin, users[u].user_id, &format!("{run}:m:{k}"))
                    .await?;
                Ok::<_, anyhow::Error>((u, id))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY);
    while let Some(r) = tokio::time::timeout_at(deadline.max(tokio::time::Instant::now() + START_BOUND), creates.next())
        .await
        .map_err(|_| anyhow!("creating the missed notifications timed out"))?
    {
        let (u, id) = r?;
        expected[u].push(id);
    }
    drop(creates);
    report.create_secs = round3(t_create.elapsed().as_secs_f64());
    report.missed_created = expected.iter().map(Vec::len).sum();
    other.kill();
    drop(other);
    let _ = fleet.expected.set(expected.clone());

    // Restart and time the catch-up.
    let mut server = Server::start(&bin, &bind, &log)?;
    let healthy_at = wait_healthy(&api, &mut server).await?;
    report.down_secs = round3(healthy_at.duration_since(killed_at).as_secs_f64());
    eprintln!(
        "reconnect: server back after {:.2} s; waiting for the fleet",
        report.down_secs
    );
    let meter = CpuMeter::start(&[server.pid()]);
    wait_until("catch-up", RECONNECT_BOUND, || {
        fleet.caught.load(Ordering::Relaxed) + gave_up(&fleet) >= opened
    })
    .await;
    let cpu = meter.read();
    report.server_cpu_secs = cpu.server.map(round3);
    report.bench_cpu_secs = cpu.bench.map(round3);
    tokio::time::sleep(GRACE).await;
    report.server_rss_kib = procfs::rss_kib(server.pid());
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(10), t).await {
            Ok(Ok(r)) => results.push(r),
            _ => report.problems.push("a socket task did not stop".into()),
        }
    }
    drop(server);

    // Bookkeeping.
    let mut caught = Vec::new();
    let mut to_sync = Vec::new();
    let mut last = None::<Instant>;
    for r in results.iter().filter(|r| r.opened) {
        report.tally.add(tally(&expected[r.user], &r.before, &r.after));
        report.attempts_total += u64::from(r.attempts);
        report.replay_frames += r.replay_frames;
        report.sync_replayed += r.sync_replayed;
        report.globals_after += r.globals_after;
        report.gave_up += usize::from(r.gave_up);
        if let Some(at) = r.caught_at {
            caught.push(micros_since(healthy_at, at));
            last = last.max(Some(at));
        }
        if let (Some(h), Some(s)) = (r.handshake_at, r.sync_at) {
            to_sync.push(micros_since(h, s));
        }
    }
    report.caught_up = caught.len();
    report.total_secs = last.map(|t| round3(t.saturating_duration_since(healthy_at).as_secs_f64()));
    report.caught_up_after_healthz = dist(caught);
    report.handshake_to_sync = dist(to_sync);
    if report.opened < args.sockets {
        report
            .problems
            .push(format!("{} sockets did not open", args.sockets - report.opened));
    }
    if report.caught_up < report.opened {
        report.problems.push(format!(
            "{} sockets were not caught up",
            report.opened - report.caught_up
        ));
    }
    if report.tally != Tally::default() || report.globals_after > 0 {
        report.problems.push(format!(
            "lost {}, duplicated {}, stray {}, announcements after the kill {}",
            report.tally.lost, report.tally.duplicated, report.tally.stray, report.globals_after
        ));
    }
    report.ok = report.problems.is_empty();
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_missed_id_once_is_clean() {
        assert_eq!(tally(&[5, 7], &[1, 2], &[5, 7]), Tally::default());
        assert_eq!(tally(&[], &[1], &[]), Tally::default());
    }

    #[test]
    fn lost_duplicated_and_stray_are_counted() {
        // 7 never came, 5 came twice, 2 was had before the kill, 9 is nobody's miss.
        let t = tally(&[5, 7], &[1, 2], &[2, 5, 5, 9]);
        assert_eq!(
            t,
            Tally {
                lost: 1,
                duplicated: 2,
                stray: 1
            }
        );
    }

    #[test]
    fn backoff_follows_herald_js() {
        // cap = min(30 s, 1 s · 2^(n-1)); delay in [cap/2, cap].
        assert_eq!(backoff_delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff_delay(1, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(3, 0.5), Duration::from_millis(3000));
        assert_eq!(backoff_delay(10, 0.0), Duration::from_millis(15_000));
        for a in 1..=5 {
            let u = unit(1234, a);
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }

    #[test]
    fn resume_urls_say_where_to_resume() {
        let base = "ws://127.0.0.1:1/ws/notifications/";
        assert_eq!(
            resume_url(base, Some(12), Some(3)),
            format!("{base}?sync=1&last_id=12&last_global_id=3")
        );
        assert_eq!(resume_url(base, None, None), format!("{base}?sync=1"));
    }
}
