//! The JSON report, the human summary and the combined markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use crate::procfs::CpuUse;
use crate::stats::{Dist, round3};

/// CPU seconds of one stretch besides the server's own: this tool's and the rest of the
/// machine's. Flattened into each stretch's object, right after its server CPU figures.
#[derive(Debug, Default, Serialize)]
pub struct CpuBeside {
    pub bench_cpu_s: Option<f64>,
    /// CPU used by everything else on the machine meanwhile (shared-machine noise).
    pub other_cpu_s: Option<f64>,
    /// Softirq (loopback networking) and hypervisor steal time of all cores meanwhile.
    pub softirq_cpu_s: Option<f64>,
    pub steal_cpu_s: Option<f64>,
}

impl CpuBeside {
    /// The meter's reading, rounded like the other figures of the report.
    pub fn of(cpu: &CpuUse) -> Self {
        Self {
            bench_cpu_s: cpu.bench.map(round3),
            other_cpu_s: cpu.other.map(round3),
            softirq_cpu_s: cpu.softirq.map(round3),
            steal_cpu_s: cpu.steal.map(round3),
        }
    }

    /// The summary's CPU row: server, bench, others, softirq, steal.
    fn cells(&self, server_cpu_s: Option<f64>) -> [Option<f64>; 5] {
        [
            server_cpu_s,
            self.bench_cpu_s,
            self.other_cpu_s,
            self.softirq_cpu_s,
            self.steal_cpu_s,
        ]
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub label: String,
    /// The first node: registrations, logins, creates and REST go there.
    pub url: String,
    /// Every node, in --url's order; the sockets go round-robin over them.
    pub urls: Vec<String>,
    pub run: String,
    pub smoke: bool,
    pub params: BTreeMap<String, Value>,
    pub auth: Option<Auth>,
    pub connect: Option<Connect>,
    pub global: Option<Global>,
    pub peruser: Option<PerUser>,
    pub rest: Option<Rest>,
    pub inbox: Option<Inbox>,
    /// Each node's share of the sockets and its own figures (summed in the phases above).
    pub nodes: Vec<Node>,
    /// The listener processes that held the sockets (empty: this process held them).
    pub listeners: Vec<ListenerShare>,
    /// The floor phase's ideal server (its connect and global figures are in `connect`/`global`).
    pub floor: Option<FloorInfo>,
    /// Sockets the server closed (or that broke) during the run, by reason.
    pub sockets_closed: BTreeMap<String, u64>,
    /// Frames that were not notifications of this run / not JSON.
    pub other_frames: u64,
    pub bad_frames: u64,
    /// Correctness problems (lost, duplicated, misdelivered, failed connects...).
    pub problems: Vec<String>,
    pub ok: bool,
    pub total_secs: f64,
    /// 1-minute load average at start and end: how busy the shared machine was.
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
}

/// One node of the deployment under test.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Node {
    pub url: String,
    pub pid: Option<u32>,
    /// Sockets open to it after the connect phase.
    pub sockets: usize,
    pub rss_before_connect_kib: Option<u64>,
    pub rss_after_connect_kib: Option<u64>,
    pub kib_per_socket: Option<f64>,
    pub connect_cpu_s: Option<f64>,
    pub global_cpu_s: Option<f64>,
}

/// One listener process: its share of the users and sockets.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ListenerShare {
    pub index: usize,
    pub pid: u32,
    pub users: usize,
    pub sockets_requested: usize,
    pub sockets_connected: usize,
    /// The listener's resident memory with its sockets open, KiB.
    pub rss_kib: Option<u64>,
}

/// The list page of 50 for a user with many notifications against one with 50.
#[derive(Debug, Default, Serialize)]
pub struct Inbox {
    /// Notifications of the large-inbox user.
    pub size: usize,
    /// Creating them through the admin API.
    pub fill_secs: f64,
    pub fill_per_s: Option<f64>,
    /// `GET /api/notifications/?limit=50` as the user with 50.
    pub small: Option<RestRun>,
    /// The same as the user with `size`.
    pub large: Option<RestRun>,
    /// req/s of the large over the small.
    pub large_to_small: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Auth {
    pub users: usize,
    pub register_secs: f64,
    pub login_secs: f64,
    pub register_per_s: Option<f64>,
    pub login_per_s: Option<f64>,
    /// Server RSS before the first registration and after the last login.
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_cpu_s: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Connect {
    pub attempted: usize,
    pub requested: usize,
    pub connected: usize,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    pub secs: f64,
    pub handshakes_per_s: Option<f64>,
    pub handshake: Option<Dist>,
    pub source_addresses: usize,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    pub server_kib_per_socket: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_ms_per_handshake: Option<f64>,
    #[serde(flatten)]
    pub beside: CpuBeside,
}

/// The floor's ideal server (its figures are in `connect` and `global`, as a server's).
#[derive(Debug, Default, Serialize)]
pub struct FloorInfo {
    pub sender_threads: usize,
    /// Sockets its acceptor completed the handshake of.
    pub accepted: u64,
    /// Bytes of one pushed frame (the JSON of a global push as the contract shapes it).
    pub frame_bytes: usize,
    pub write_errors: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct GlobalRound {
    pub round: usize,
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub post_ms: f64,
    pub fanout_ms: Option<f64>,
    pub deliveries_per_s: Option<f64>,
    pub latency: Option<Dist>,
    pub timed_out: bool,
    pub error: Option<String>,
    /// Every socket expected got it, each exactly once.
    pub complete: bool,
}

impl GlobalRound {
    /// Every socket expected got it, each exactly once.
    pub fn reached_every_socket_once(&self) -> bool {
        self.expected > 0 && self.delivered == self.expected && self.lost == 0 && self.duplicated == 0
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Global {
    pub sockets: usize,
    pub rounds: Vec<GlobalRound>,
    pub expected: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub late: usize,
    /// Rounds that reached every socket exactly once.
    pub complete_rounds: usize,
    pub latency: Option<Dist>,
    /// Deliveries over the summed fan-out spans (POST sent → last arrival) of all rounds.
    pub deliveries_per_s: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The same in user and in system (kernel) time, from /proc's utime and stime.
    pub server_user_us_per_delivery: Option<f64>,
    pub server_system_us_per_delivery: Option<f64>,
    #[serde(flatten)]
    pub beside: CpuBeside,
}

#[derive(Debug, Default, Serialize)]
pub struct PerUserRun {
    pub mode: String,
    pub target_rate: Option<f64>,
    pub concurrency: usize,
    /// Creates planned.
    pub creates: usize,
    /// Creates sent (fewer than planned when the --timeout bound cut the run short).
    pub sent: usize,
    /// Creates answered 201.
    pub created: usize,
    pub create_errors: BTreeMap<String, u64>,
    pub behind_schedule: usize,
    /// From the run's start to the last 201.
    pub create_secs: f64,
    /// Successful creates over `create_secs`.
    pub creates_per_s: Option<f64>,
    /// The pace at which the POSTs were sent (offered load).
    pub sent_per_s: Option<f64>,
    pub create_latency: Option<Dist>,
    pub expected: usize,
    pub delivered: usize,
    pub deliveries_per_s: Option<f64>,
    pub lost: usize,
    pub duplicated: usize,
    pub misdelivered: usize,
    pub id_mismatch: usize,
    pub unknown_seq: usize,
    pub latency: Option<Dist>,
    pub timed_out: bool,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    #[serde(flatten)]
    pub beside: CpuBeside,
}

#[derive(Debug, Default, Serialize)]
pub struct PerUser {
    pub users: usize,
    pub sockets: usize,
    pub runs: Vec<PerUserRun>,
}

#[derive(Debug, Default, Serialize)]
pub struct RestRun {
    pub endpoint: String,
    /// "ok", or "n/a" when the server lacks the endpoint (404/405 on the probe).
    pub status: String,
    pub detail: Option<String>,
    pub connections: usize,
    pub secs: f64,
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    pub requests_per_s: Option<f64>,
    pub latency: Option<Dist>,
    pub body_bytes: Option<usize>,
    pub listed: Option<u64>,
    pub server_cpu_s: Option<f64>,
    #[serde(flatten)]
    pub beside: CpuBeside,
}

#[derive(Debug, Default, Serialize)]
pub struct Rest {
    pub runs: Vec<RestRun>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$}"),
        None => "n/a".to_owned(),
    }
}

fn dist_cell(d: &Option<Dist>) -> String {
    match d {
        Some(d) => format!("{:.2} / {:.2} / {:.2}", d.p50_ms, d.p99_ms, d.max_ms),
        None => "n/a".to_owned(),
    }
}

fn rss_cell(before_kib: Option<u64>, after_kib: Option<u64>) -> String {
    let kib = |v: Option<u64>| v.map_or("n/a".into(), |v| v.to_string());
    format!("{} → {}", kib(before_kib), kib(after_kib))
}

/// The readable summary printed at the end of a run.
pub fn summary(r: &Report) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
    row("label", format!("{} ({})", r.label, r.url));
    if r.nodes.len() > 1 || !r.listeners.is_empty() {
        let socks: Vec<String> = r.nodes.iter().map(|n| n.sockets.to_string()).collect();
        row(
            "nodes: sockets each",
            format!("{} ({})", r.nodes.len(), socks.join(" / ")),
        );
        let kib: Vec<String> = r.nodes.iter().map(|n| opt(n.kib_per_socket, 2)).collect();
        row("nodes: KiB per socket each", kib.join(" / "));
    }
    if !r.listeners.is_empty() {
        let l: Vec<String> = r.listeners.iter().map(|l| l.sockets_connected.to_string()).collect();
        row(
            "listener processes: sockets each",
            format!("{} ({})", r.listeners.len(), l.join(" / ")),
        );
        let mib: Vec<String> = r
            .listeners
            .iter()
            .map(|l| l.rss_kib.map_or("n/a".into(), |k| format!("{:.0}", k as f64 / 1024.0)))
            .collect();
        row("listener processes: RSS MiB each", mib.join(" / "));
    }
    if let Some(a) = &r.auth {
        row(
            "users registered+logged in",
            format!(
                "{} (register {}/s, login {}/s)",
                a.users,
                opt(a.register_per_s, 1),
                opt(a.login_per_s, 1)
            ),
        );
        row(
            "server RSS before→after auth (KiB)",
            rss_cell(a.server_rss_before_kib, a.server_rss_after_kib),
        );
    }
    if let Some(c) = &r.connect {
        row(
            "sockets connected / requested",
            format!("{} / {} ({} failed)", c.connected, c.requested, c.failed),
        );
        if !c.failures.is_empty() {
            row("connect failures", format!("{:?}", c.failures));
        }
        row("connect rate (handshakes/s)", opt(c.handshakes_per_s, 1));
        row("handshake ms p50/p99/max", dist_cell(&c.handshake));
        row(
            "server RSS before→after (KiB)",
            rss_cell(c.server_rss_before_kib, c.server_rss_after_kib),
        );
        row("server KiB per socket", opt(c.server_kib_per_socket, 2));
        row("server CPU ms per handshake", opt(c.server_cpu_ms_per_handshake, 3));
    }
    if let Some(g) = &r.global {
        row(
            "global: delivered / expected",
            format!(
                "{} / {} over {} rounds, {} complete (lost {}, dup {}, late {})",
                g.delivered,
                g.expected,
                g.rounds.len(),
                g.complete_rounds,
                g.lost,
                g.duplicated,
                g.late
            ),
        );
        row("global latency ms p50/p99/max", dist_cell(&g.latency));
        row("global deliveries/s", opt(g.deliveries_per_s, 0));
        row("global server CPU µs/delivery", opt(g.server_cpu_us_per_delivery, 2));
        row(
            "  of which user / system",
            format!(
                "{} / {}",
                opt(g.server_user_us_per_delivery, 2),
                opt(g.server_system_us_per_delivery, 2)
            ),
        );
    }
    if let Some(f) = &r.floor {
        row(
            "floor: ideal server",
            format!(
                "{} sending threads, {} sockets accepted, {}-byte frames, {} write errors",
                f.sender_threads, f.accepted, f.frame_bytes, f.write_errors
            ),
        );
    }
    if let Some(p) = &r.peruser {
        row("per-user subset", format!("{} users, {} sockets", p.users, p.sockets));
        for run in &p.runs {
            let m = &run.mode;
            row(
                &format!("per-user {m}: creates ok/sent/planned"),
                format!(
                    "{} / {} / {} at {}/s (sent at {}/s, target {}, {} behind schedule)",
                    run.created,
                    run.sent,
                    run.creates,
                    opt(run.creates_per_s, 1),
                    opt(run.sent_per_s, 1),
                    opt(run.target_rate, 0),
                    run.behind_schedule
                ),
            );
            row(
                &format!("per-user {m}: delivered / expected"),
                format!(
                    "{} / {} (lost {}, dup {}, misdelivered {}, id mismatch {})",
                    run.delivered, run.expected, run.lost, run.duplicated, run.misdelivered, run.id_mismatch
                ),
            );
            row(
                &format!("per-user {m}: create→arrival ms p50/p99/max"),
                dist_cell(&run.latency),
            );
            row(
                &format!("per-user {m}: POST ms p50/p99/max"),
                dist_cell(&run.create_latency),
            );
            row(&format!("per-user {m}: deliveries/s"), opt(run.deliveries_per_s, 0));
            row(
                &format!("per-user {m}: server CPU µs/delivery"),
                opt(run.server_cpu_us_per_delivery, 2),
            );
        }
    }
    if let Some(rest) = &r.rest {
        for run in &rest.runs {
            let v = if run.status == "ok" {
                format!(
                    "{} req/s, ms p50/p99/max {}, {} errors, {} conns, {} B body",
                    opt(run.requests_per_s, 0),
                    dist_cell(&run.latency),
                    run.errors.values().sum::<u64>(),
                    run.connections,
                    run.body_bytes.map_or("?".into(), |b| b.to_string())
                )
            } else {
                format!("{} {}", run.status, run.detail.clone().unwrap_or_default())
            };
            row(&format!("GET {}", run.endpoint), v);
        }
    }
    if let Some(i) = &r.inbox {
        row(
            "inbox: fill",
            format!(
                "{} notifications in {:.1} s ({}/s)",
                i.size,
                i.fill_secs,
                opt(i.fill_per_s, 0)
            ),
        );
        for (name, run) in [("50", &i.small), ("large", &i.large)] {
            if let Some(run) = run {
                row(
                    &format!("inbox: GET ?limit=50, user with {name}"),
                    format!(
                        "{} {} req/s, ms p50/p99/max {}",
                        run.status,
                        opt(run.requests_per_s, 0),
                        dist_cell(&run.latency)
                    ),
                );
            }
        }
        row("inbox: large ÷ 50 (req/s)", opt(i.large_to_small, 2));
    }
    // CPU seconds per stretch: who used the two cores (others = the rest of the machine).
    let mut cpu: Vec<(String, [Option<f64>; 5])> = Vec::new();
    if let Some(c) = &r.connect {
        cpu.push(("connect".into(), c.beside.cells(c.server_cpu_s)));
    }
    if let Some(g) = &r.global {
        cpu.push(("global".into(), g.beside.cells(g.server_cpu_s)));
    }
    for p in r.peruser.iter().flat_map(|p| &p.runs) {
        cpu.push((format!("per-user {}", p.mode), p.beside.cells(p.server_cpu_s)));
    }
    for x in r.rest.iter().flat_map(|p| &p.runs).filter(|x| x.status == "ok") {
        cpu.push((format!("GET {}", x.endpoint), x.beside.cells(x.server_cpu_s)));
    }
    for (name, v) in cpu {
        let cells: Vec<String> = v.iter().map(|c| opt(*c, 2)).collect();
        row(
            &format!("CPU s srv/bench/others/softirq/steal: {name}"),
            cells.join(" / "),
        );
    }
    row(
        "load average start → end",
        format!("{} → {}", opt(r.loadavg_start, 2), opt(r.loadavg_end, 2)),
    );
    if !r.sockets_closed.is_empty() {
        row("sockets closed during run", format!("{:?}", r.sockets_closed));
    }
    row("other / bad frames", format!("{} / {}", r.other_frames, r.bad_frames));
    row(
        "result",
        if r.ok {
            "OK".to_owned()
        } else {
            format!("PROBLEMS: {}", r.problems.join("; "))
        },
    );
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// Reads several JSON reports and renders one markdown table, one column per report.
pub fn combine(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut reports = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
        reports.push(v);
    }
    Ok(markdown(&reports))
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match key.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(key),
    })
}

fn num(v: &Value, path: &str, digits: usize) -> String {
    match at(v, path).and_then(Value::as_f64) {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".to_owned(),
    }
}

fn lat(v: &Value, path: &str) -> String {
    match at(v, path).filter(|d| !d.is_null()) {
        Some(d) => format!("{} / {}", num(d, "p50_ms", 2), num(d, "p99_ms", 2)),
        None => "n/a".to_owned(),
    }
}

fn peruser_run<'a>(v: &'a Value, mode: &str) -> Option<&'a Value> {
    at(v, "peruser.runs")?
        .as_array()?
        .iter()
        .find(|r| r.get("mode").and_then(Value::as_str) == Some(mode))
}

fn rest_run<'a>(v: &'a Value, endpoint: &str) -> Option<&'a Value> {
    at(v, "rest.runs")?
        .as_array()?
        .iter()
        .find(|r| r.get("endpoint").and_then(Value::as_str) == Some(endpoint))
}

fn rest_cell(v: &Value, endpoint: &str) -> String {
    match rest_run(v, endpoint) {
        Some(r) if r.get("status").and_then(Value::as_str) == Some("ok") => format!(
            "{} req/s ({} ms p50/p99)",
            num(r, "requests_per_s", 0),
            lat(r, "latency")
        ),
        Some(r) if r.get("status").and_then(Value::as_str) == Some("error") => "error".to_owned(),
        _ => "n/a".to_owned(),
    }
}

fn counts(obj: &Value, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            obj.get(*k)
                .and_then(Value::as_u64)
                .map_or("?".to_owned(), |n| n.to_string())
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn markdown(reports: &[Value]) -> String {
    type Cell = Box<dyn Fn(&Value) -> String>;
    let rows: Vec<(&str, Cell)> = vec![
        (
            "sockets connected / requested",
            Box::new(|v| {
                format!(
                    "{} / {}",
                    num(v, "connect.connected", 0),
                    num(v, "connect.requested", 0)
                )
            }),
        ),
        ("users", Box::new(|v| num(v, "auth.users", 0))),
        (
            "nodes (sockets each)",
            Box::new(|v| {
                let nodes = at(v, "nodes").and_then(Value::as_array);
                match nodes {
                    _ if at(v, "connect").is_none_or(Value::is_null) => "n/a".to_owned(),
                    Some(n) if !n.is_empty() => {
                        let each: Vec<String> = n.iter().map(|n| num(n, "sockets", 0)).collect();
                        format!("{} ({})", n.len(), each.join(" / "))
                    }
                    _ => "1".to_owned(),
                }
            }),
        ),
        (
            "connect rate (handshakes/s)",
            Box::new(|v| num(v, "connect.handshakes_per_s", 0)),
        ),
        ("handshake ms p50 / p99", Box::new(|v| lat(v, "connect.handshake"))),
        (
            "server KiB per socket",
            Box::new(|v| num(v, "connect.server_kib_per_socket", 1)),
        ),
        (
            "server RSS with all sockets (MiB)",
            Box::new(|v| {
                at(v, "connect.server_rss_after_kib")
                    .and_then(Value::as_f64)
                    .map_or("n/a".into(), |k| format!("{:.0}", k / 1024.0))
            }),
        ),
        (
            "global fan-out latency ms p50 / p99",
            Box::new(|v| lat(v, "global.latency")),
        ),
        (
            "global fan-out max ms",
            Box::new(|v| num(v, "global.latency.max_ms", 1)),
        ),
        (
            "global deliveries/s",
            Box::new(|v| num(v, "global.deliveries_per_s", 0)),
        ),
        (
            "global server CPU µs per delivery",
            Box::new(|v| num(v, "global.server_cpu_us_per_delivery", 2)),
        ),
        (
            "  of which user / system (kernel)",
            Box::new(|v| {
                format!(
                    "{} / {}",
                    num(v, "global.server_user_us_per_delivery", 2),
                    num(v, "global.server_system_us_per_delivery", 2)
                )
            }),
        ),
        (
            "global rounds complete / run",
            Box::new(|v| {
                format!(
                    "{} / {}",
                    num(v, "global.complete_rounds", 0),
                    at(v, "global.rounds")
                        .and_then(Value::as_array)
                        .map_or("n/a".into(), |r| r.len().to_string())
                )
            }),
        ),
        (
            "global lost / duplicated",
            Box::new(|v| {
                at(v, "global")
                    .filter(|g| !g.is_null())
                    .map_or("n/a".into(), |g| counts(g, &["lost", "duplicated"]))
            }),
        ),
        (
            "per-user fixed rate: achieved creates/s",
            Box::new(|v| {
                peruser_run(v, "rate").map_or("n/a".into(), |r| {
                    format!("{} (target {})", num(r, "creates_per_s", 0), num(r, "target_rate", 0))
                })
            }),
        ),
        (
            "per-user fixed rate: create→arrival ms p50 / p99",
            Box::new(|v| peruser_run(v, "rate").map_or("n/a".into(), |r| lat(r, "latency"))),
        ),
        (
            "per-user flat out: creates/s",
            Box::new(|v| peruser_run(v, "flat").map_or("n/a".into(), |r| num(r, "creates_per_s", 0))),
        ),
        (
            "per-user flat out: deliveries/s",
            Box::new(|v| peruser_run(v, "flat").map_or("n/a".into(), |r| num(r, "deliveries_per_s", 0))),
        ),
        (
            "per-user flat out: create→arrival ms p50 / p99",
            Box::new(|v| peruser_run(v, "flat").map_or("n/a".into(), |r| lat(r, "latency"))),
        ),
        (
            "per-user flat out: server CPU µs per delivery",
            Box::new(|v| peruser_run(v, "flat").map_or("n/a".into(), |r| num(r, "server_cpu_us_per_delivery", 2))),
        ),
        (
            "per-user lost / dup / misdelivered",
            Box::new(|v| {
                let cells: Vec<String> = ["rate", "flat"]
                    .iter()
                    .filter_map(|mode| {
                        peruser_run(v, mode)
                            .map(|r| format!("{mode}: {}", counts(r, &["lost", "duplicated", "misdelivered"])))
                    })
                    .collect();
                if cells.is_empty() {
                    "n/a".into()
                } else {
                    cells.join(", ")
                }
            }),
        ),
        (
            "GET /api/notifications/ (50 items, 32 conns)",
            Box::new(|v| rest_cell(v, "/api/notifications/")),
        ),
        (
            "GET /api/global-notifications/",
            Box::new(|v| rest_cell(v, "/api/global-notifications/")),
        ),
        (
            "GET ?limit=50: user with 50 / with the inbox size (req/s)",
            Box::new(|v| match at(v, "inbox").filter(|i| !i.is_null()) {
                Some(i) => format!(
                    "{} / {} ({})",
                    num(i, "small.requests_per_s", 0),
                    num(i, "large.requests_per_s", 0),
                    num(i, "size", 0)
                ),
                None => "n/a".into(),
            }),
        ),
        (
            "result",
            Box::new(|v| {
                if v.get("ok").and_then(Value::as_bool) == Some(true) {
                    "ok".into()
                } else {
                    let n = v.get("problems").and_then(Value::as_array).map_or(0, Vec::len);
                    format!("{n} problem(s)")
                }
            }),
        ),
    ];
    let mut out = String::new();
    let labels: Vec<String> = reports
        .iter()
        .map(|r| r.get("label").and_then(Value::as_str).unwrap_or("?").to_owned())
        .collect();
    let _ = writeln!(out, "| metric | {} |", labels.join(" | "));
    let _ = writeln!(out, "| --- |{}", " ---: |".repeat(labels.len()));
    for (name, cell) in &rows {
        let cells: Vec<String> = reports.iter().map(cell).collect();
        // A figure no report has (the inbox of a run without that phase, say) is left out.
        if cells.iter().all(|c| unmeasured(c)) {
            continue;
        }
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    out
}

/// A cell with nothing measured in it ("n/a", "n/a / n/a", ...).
fn unmeasured(cell: &str) -> bool {
    cell.split_whitespace()
        .map(|w| w.trim_matches(['(', ')']))
        .filter(|w| !w.is_empty() && *w != "/")
        .all(|w| w == "n/a")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_combined_table_leaves_out_figures_no_report_has() {
        let floor = json!({"label": "floor", "ok": true,
            "connect": {"connected": 10, "requested": 10, "handshakes_per_s": 900.0},
            "global": {"deliveries_per_s": 5000.0, "complete_rounds": 3, "rounds": [{}, {}, {}]}});
        let inbox = json!({"label": "herald", "ok": false, "problems": ["x"],
            "inbox": {"size": 100, "small": {"requests_per_s": 800.0}, "large": {"requests_per_s": 500.0}}});
        let table = markdown(&[floor, inbox]);
        assert!(table.contains("| connect rate (handshakes/s) | 900 | n/a |"), "{table}");
        assert!(
            table.contains("| global rounds complete / run | 3 / 3 | n/a / n/a |"),
            "{table}"
        );
        assert!(table.contains("| n/a | 800 / 500 (100) |"), "{table}");
        assert!(table.contains("| result | ok | 1 problem(s) |"), "{table}");
        assert!(!table.contains("per-user flat out"), "{table}");
        assert!(unmeasured("n/a / n/a") && unmeasured("n/a") && !unmeasured("0 / n/a"));
    }
}
