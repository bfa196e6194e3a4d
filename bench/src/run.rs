//! The phases: auth, connect, global fan-out, per-user pushes, REST throughput.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::Args;
use crate::api::{Api, Login, http_client, snippet};
use crate::floor::{self, FloorProcess};
use crate::procfs::{self, CpuMeter, CpuUse};
use crate::report::{
    Auth, Connect, CpuBeside, FloorInfo, Global, GlobalRound, Inbox, Node, PerUser, PerUserRun, Report, Rest, RestRun,
};
use crate::sockets::{self, Event, Layout, Phase, Shared, Socket, Target};
use crate::stats::{dist, mix, rate, round1, round3};

/// Notifications given to the REST user before the list benchmark.
const REST_LIST_SIZE: usize = 50;
/// After the expected count arrived, wait this long for duplicates or strays.
pub(crate) const GRACE: Duration = Duration::from_millis(250);
/// Pause between global rounds.
pub(crate) const BETWEEN_ROUNDS: Duration = Duration::from_millis(200);
/// Bound on creates in flight during the fixed-rate run (open loop).
const RATE_MAX_IN_FLIGHT: usize = 256;

/// One run of the tool (or one listener's share of a run): its settings, the nodes it talks
/// to, its users and sockets, and the report it fills.
pub(crate) struct Bench {
    pub(crate) args: Args,
    /// The first node: registrations, logins, creates and REST.
    pub(crate) api: Arc<Api>,
    /// Every node, in --url's order (the first is `api`).
    pub(crate) nodes: Vec<Arc<Api>>,
    pub(crate) admin: Arc<str>,
    pub(crate) run: String,
    /// Usernames are `<user_prefix>_<i>`: the run id, and a listener's number.
    pub(crate) user_prefix: String,
    pub(crate) password: String,
    pub(crate) shared: Arc<Shared>,
    pub(crate) users: Vec<Login>,
    pub(crate) sockets: BTreeMap<u32, Socket>,
    /// Each handshake's time, µs (a listener sends them to the driver to merge).
    pub(crate) handshake_micros: Vec<u64>,
    /// The floor's ideal server, kept until the sockets are closed.
    floor: Option<FloorProcess>,
    pub(crate) report: Report,
}

pub(crate) fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d)
}

pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let h = mix(nanos ^ (u64::from(std::process::id()) << 32));
    format!("hb{:08x}", h as u32)
}

pub async fn run(args: Args) -> anyhow::Result<Report> {
    let started = Instant::now();
    let run = run_id();
    let floor_only = args.has_phase("floor");
    let label = args.label.clone().unwrap_or_else(|| {
        if floor_only {
            "floor".to_owned()
        } else {
            args.urls.join(",")
        }
    });
    eprintln!("herald-bench {run}: target {} ({label})", args.urls.join(", "));
    // The floor talks to no server, so it has no admin to log in.
    let mut bench = Bench::new(args, run, !floor_only).await?;
    bench.report.label = label;
    if floor_only {
        bench.floor().await?;
    }
    if bench.args.listeners > 0 {
        crate::listen::drive(&mut bench).await?;
    }
    let need_sockets = ["connect", "global", "peruser"].iter().any(|p| bench.args.has_phase(p));
    if need_sockets && bench.args.listeners == 0 {
        bench.auth().await?;
        bench.connect().await;
        if bench.args.has_phase("global") {
            bench.global().await;
        }
        if bench.args.has_phase("peruser") {
            bench.peruser().await;
        }
    }
    if bench.args.has_phase("rest") {
        bench.rest().await;
    }
    if bench.args.has_phase("inbox") {
        bench.inbox().await;
    }
    bench.finish(started);
    let report = bench.report;
    println!("{}", crate::report::summary(&report));
    if let Some(path) = &bench.args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    sockets::close_all(bench.sockets);
    Ok(report)
}

impl Bench {
    /// A run `run` against --url's nodes, with the admin logged in if `admin` (the floor and
    /// listeners create nothing).
    pub(crate) async fn new(args: Args, run: String, admin: bool) -> anyhow::Result<Self> {
        let nodes = args
            .urls
            .iter()
            .map(|u| Api::new(u).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let api = Arc::clone(nodes.first().ok_or_else(|| anyhow!("no --url"))?);
        let mut params = BTreeMap::new();
        for (k, v) in [
            ("users", json!(args.users)),
            ("sockets", json!(args.sockets)),
            ("rounds", json!(args.rounds)),
            ("rate", json!(args.rate)),
            ("rate_secs", json!(args.rate_secs)),
            ("flat_count", json!(args.flat_count)),
            ("flat_concurrency", json!(args.flat_concurrency)),
            ("peruser_sockets", json!(args.peruser_sockets)),
            ("rest_secs", json!(args.rest_secs)),
            ("rest_connections", json!(args.rest_connections)),
            ("connect_concurrency", json!(args.connect_concurrency)),
            ("source_addrs", json!(args.source_addrs)),
            ("threads", json!(args.threads)),
            ("phases", json!(args.phases)),
            ("pid", json!(args.pids)),
            ("listeners", json!(args.listeners)),
            ("inbox_size", json!(args.inbox_size)),
        ] {
            params.insert(k.to_owned(), v);
        }
        let admin_token = if admin {
            tokio::time::timeout(
                Duration::from_secs(60),
                api.login(&args.admin_user, &args.admin_password),
            )
            .await
            .context("admin login timed out")?
            .context("admin login")?
            .token
        } else {
            String::new()
        };
        let report_nodes = args
            .urls
            .iter()
            .enumerate()
            .map(|(i, url)| Node {
                url: url.clone(),
                pid: args.pids.get(i).copied(),
                ..Node::default()
            })
            .collect();
        let user_prefix = match args.listen {
            Some(k) => format!("{run}l{k}"),
            None => run.clone(),
        };
        Ok(Self {
            api,
            nodes,
            admin: Arc::from(admin_token.as_str()),
            password: format!("{run}-pw-Secret1"),
            shared: Arc::new(Shared::new(&run, args.rounds)),
            users: Vec::new(),
            sockets: BTreeMap::new(),
            handshake_micros: Vec::new(),
            floor: None,
            report: Report {
                tool: "herald-bench",
                label: args.label.clone().unwrap_or_default(),
                url: args.url().to_owned(),
                urls: args.urls.clone(),
                run: run.clone(),
                smoke: args.smoke,
                params,
                nodes: report_nodes,
                loadavg_start: procfs::loadavg1(),
                ..Report::default()
            },
            user_prefix,
            run,
            args,
        })
    }

    pub(crate) fn problem(&mut self, p: String) {
        eprintln!("  problem: {p}");
        self.report.problems.push(p);
    }

    fn username(&self, i: usize) -> String {
        format!("{}_{i}", self.user_prefix)
    }

    pub(crate) async fn auth(&mut self) -> anyhow::Result<()> {
        let n = self.args.users;
        let conc = self.args.auth_concurrency.max(1);
        let deadline = tokio::time::Instant::now() + secs(self.args.setup_timeout);
        eprintln!("auth: registering and logging in {n} users");
        let pids = self.args.pids.clone();
        let rss_before = procfs::rss_sum_kib(&pids).0;
        let meter = CpuMeter::start(&pids);
        let t0 = Instant::now();
        let names: Vec<String> = (0..n).map(|i| self.username(i)).collect();
        let api = &self.api;
        let pw = self.password.as_str();
        let mut regs = futures_util::stream::iter(names.iter())
            .map(|name| api.register(name, pw))
            .buffer_unordered(conc);
        while let Some(r) = tokio::time::timeout_at(deadline, regs.next())
            .await
            .map_err(|_| anyhow!("registering {n} users timed out"))?
        {
            r?;
        }
        drop(regs);
        let register_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut logins = futures_util::stream::iter(names.iter().enumerate())
            .map(|(i, name)| async move { (i, api.login(name, pw).await) })
            .buffer_unordered(conc);
        let mut users: Vec<Option<Login>> = vec![None; n];
        while let Some((i, r)) = tokio::time::timeout_at(deadline, logins.next())
            .await
            .map_err(|_| anyhow!("logging in {n} users timed out"))?
        {
            users[i] = Some(r?);
        }
        drop(logins);
        let login_secs = t1.elapsed().as_secs_f64();
        self.users = users.into_iter().flatten().collect();
        self.report.auth = Some(Auth {
            users: self.users.len(),
            register_secs: round3(register_secs),
            login_secs: round3(login_secs),
            register_per_s: rate(n as u64, register_secs),
            login_per_s: rate(n as u64, login_secs),
            server_rss_before_kib: rss_before,
            server_rss_after_kib: procfs::rss_sum_kib(&pids).0,
            server_cpu_s: meter.read().server.map(round3),
        });
        Ok(())
    }

    pub(crate) async fn connect(&mut self) {
        let targets: Vec<Target> = self
            .nodes
            .iter()
            .map(|api| Target::new(api.addr, api.ws_url(), self.args.source_addrs))
            .collect();
        let tokens: Vec<String> = self.users.iter().map(|u| u.token.clone()).collect();
        self.connect_to(&targets, &tokens).await;
    }

    /// Opens the sockets to `targets` (round-robin) over `tokens`.
    async fn connect_to(&mut self, targets: &[Target], tokens: &[String]) {
        let n = self.args.sockets;
        let layout = Layout {
            nodes: targets.len(),
            users: tokens.len(),
            base: self.args.socket_base,
        };
        let sources = targets.first().map_or(0, |t| t.sources.len());
        eprintln!(
            "connect: {n} sockets over {} users and {} node(s), {} in flight, {sources} source addresses",
            tokens.len(),
            targets.len(),
            self.args.connect_concurrency,
        );
        let pids = self.args.pids.clone();
        let (rss_before, rss_before_each) = procfs::rss_sum_kib(&pids);
        let meter = CpuMeter::start(&pids);
        let deadline = tokio::time::Instant::now() + secs(self.args.setup_timeout);
        let out = sockets::connect_all(
            targets,
            layout,
            tokens,
            n,
            self.args.connect_concurrency,
            &self.shared,
            deadline,
        )
        .await;
        let cpu = meter.read();
        // Let the server settle (lazy allocations, freed handshake buffers) before reading RSS.
        // A listener reads none (its driver does), and its driver times it until it is ready.
        if !pids.is_empty() {
            tokio::time::sleep(Duration::from_millis(if self.args.smoke { 300 } else { 1000 })).await;
        }
        let (rss_after, rss_after_each) = procfs::rss_sum_kib(&pids);
        let per_node = out.per_node(targets.len());
        let connected = out.sockets.len();
        self.record_connect(
            ConnectMeasured {
                attempted: out.attempted,
                requested: n,
                connected,
                failures: out.failures.clone(),
                secs: out.secs,
                handshake_micros: out.handshake_micros.clone(),
                source_addresses: sources,
                per_node: per_node.clone(),
            },
            (rss_before, rss_before_each),
            (rss_after, rss_after_each),
            &cpu,
        );
        eprintln!(
            "connect: {connected}/{n} open in {:.2}s (per node {per_node:?})",
            out.secs
        );
        self.handshake_micros = out.handshake_micros;
        self.sockets = out.sockets;
    }

    /// Puts a connect phase's figures in the report, in all and per node, and a problem when
    /// sockets failed: the same for this process's sockets and for its listeners'. `rss_before`
    /// and `rss_after` are the servers' summed and each node's (`procfs::rss_sum_kib`).
    pub(crate) fn record_connect(
        &mut self,
        measured: ConnectMeasured,
        (rss_before, rss_before_each): (Option<u64>, Vec<Option<u64>>),
        (rss_after, rss_after_each): (Option<u64>, Vec<Option<u64>>),
        cpu: &CpuUse,
    ) {
        let ConnectMeasured {
            attempted,
            requested,
            connected,
            failures,
            secs,
            handshake_micros,
            source_addresses,
            per_node,
        } = measured;
        for (i, node) in self.report.nodes.iter_mut().enumerate() {
            node.sockets = per_node.get(i).copied().unwrap_or(0);
            node.rss_before_connect_kib = rss_before_each.get(i).copied().flatten();
            node.rss_after_connect_kib = rss_after_each.get(i).copied().flatten();
            node.kib_per_socket = kib_per_socket(node.rss_before_connect_kib, node.rss_after_connect_kib, node.sockets);
            node.connect_cpu_s = cpu.per_server.get(i).copied().flatten().map(round3);
        }
        let failed = failures.values().sum::<u64>();
        if failed > 0 {
            self.problem(format!(
                "{failed} of {requested} sockets failed to connect: {failures:?}"
            ));
        }
        self.report.connect = Some(Connect {
            attempted,
            requested,
            connected,
            failed,
            failures,
            secs: round3(secs),
            handshakes_per_s: rate(connected as u64, secs),
            handshake: dist(handshake_micros),
            source_addresses,
            server_rss_before_kib: rss_before,
            server_rss_after_kib: rss_after,
            server_kib_per_socket: kib_per_socket(rss_before, rss_after, connected),
            server_cpu_s: cpu.server.map(round3),
            server_cpu_ms_per_handshake: per_handshake(cpu.server, connected),
            beside: CpuBeside::of(cpu),
        });
    }

    /// Sockets that closed so far, counted by reason.
    pub(crate) fn closed_by_reason(&self) -> BTreeMap<String, u64> {
        let mut closed: BTreeMap<String, u64> = BTreeMap::new();
        for (_, reason) in self.shared.closed() {
            *closed.entry(reason).or_default() += 1;
        }
        closed
    }

    /// Sockets still open (their reader has not ended).
    fn open_sockets(&self) -> Vec<u32> {
        let closed: HashSet<u32> = self.shared.closed().into_iter().map(|(s, _)| s).collect();
        self.sockets.keys().copied().filter(|s| !closed.contains(s)).collect()
    }

    /// Polls `phase`'s frame count until it reaches `expected` or `deadline`; true if reached.
    async fn wait_for(&self, phase: Phase, expected: u64, deadline: Instant) -> bool {
        loop {
            if self.shared.count(phase) >= expected {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn global(&mut self) {
        let api = Arc::clone(&self.api);
        let admin = Arc::clone(&self.admin);
        let timeout = secs(self.args.timeout);
        let g = self
            .fanout(
                async |_round, title| match tokio::time::timeout(timeout, api.create_global(&admin, title)).await {
                    Ok(Ok(_id)) => Ok(()),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err("POST timed out".to_owned()),
                },
            )
            .await;
        self.report.global = Some(g);
    }

    /// Global fan-out rounds: `trigger` starts round `n` of title `title` (the admin's POST,
    /// or the floor's write), then every open socket must get it once.
    async fn fanout(&mut self, mut trigger: impl AsyncFnMut(usize, &str) -> Result<(), String>) -> Global {
        let rounds = self.args.rounds;
        eprintln!("global: {rounds} rounds over {} sockets", self.sockets.len());
        let pids = self.args.pids.clone();
        let meter = CpuMeter::start(&pids);
        let split0 = procfs::cpu_split_sum(&pids);
        let mut g = Global {
            sockets: self.sockets.len(),
            ..Global::default()
        };
        let mut all_latency = Vec::new();
        let mut span_total = 0.0;
        let _ = self.shared.take_events();
        for round in 0..rounds {
            self.shared.reset(Phase::Global);
            let open = self.open_sockets();
            let expected = open.len();
            let title = self.shared.title(Phase::Global, round);
            let timeout = secs(self.args.timeout);
            let t_send = Instant::now();
            let posted = trigger(round, &title).await;
            let post_ms = round3(t_send.elapsed().as_secs_f64() * 1000.0);
            let mut r = GlobalRound {
                round,
                expected,
                post_ms,
                ..GlobalRound::default()
            };
            let posted = match posted {
                Ok(()) => true,
                Err(e) => {
                    r.error = Some(e);
                    false
                }
            };
            // Even when the POST failed, the row may exist and be pushed: look anyway,
            // but only briefly.
            let wait = if posted {
                timeout
            } else {
                timeout.min(Duration::from_secs(2))
            };
            let reached = self.wait_for(Phase::Global, expected as u64, t_send + wait).await;
            r.timed_out = posted && !reached;
            tokio::time::sleep(GRACE).await;
            let events = self.shared.take_events();
            let mut per_sock: HashMap<u32, u32> = HashMap::with_capacity(expected);
            let mut lat = Vec::with_capacity(expected);
            let mut last = None::<Instant>;
            for e in &events {
                if !e.global || e.phase != Phase::Global {
                    continue;
                }
                if e.seq as usize != round {
                    g.late += 1;
                    continue;
                }
                let c = per_sock.entry(e.sock).or_default();
                *c += 1;
                if *c == 1 {
                    lat.push(e.at.saturating_duration_since(t_send).as_micros() as u64);
                    last = Some(last.map_or(e.at, |l: Instant| l.max(e.at)));
                }
            }
            r.delivered = lat.len();
            r.duplicated = per_sock.values().map(|&c| (c - 1) as usize).sum();
            r.lost = open.iter().filter(|s| !per_sock.contains_key(s)).count();
            if let Some(last) = last {
                let span = last.saturating_duration_since(t_send).as_secs_f64();
                r.fanout_ms = Some(round3(span * 1000.0));
                r.deliveries_per_s = rate(r.delivered as u64, span);
                span_total += span;
            }
            r.latency = dist(lat.clone());
            all_latency.extend(lat);
            self.add_round(&mut g, r);
            tokio::time::sleep(BETWEEN_ROUNDS).await;
        }
        let cpu = meter.read();
        let split = procfs::cpu_split_sum(&pids).zip(split0);
        self.close_global(&mut g, all_latency, span_total, &cpu, split);
        g
    }

    /// Adds round `r` to the phase's totals (and says how it went).
    pub(crate) fn add_round(&mut self, g: &mut Global, mut r: GlobalRound) {
        r.complete = r.reached_every_socket_once();
        eprintln!(
            "  round {}: {}/{} delivered, fan-out {} ms, p99 {} ms",
            r.round,
            r.delivered,
            r.expected,
            r.fanout_ms.map_or("n/a".into(), |v| v.to_string()),
            r.latency.as_ref().map_or("n/a".into(), |d| d.p99_ms.to_string())
        );
        g.expected += r.expected;
        g.delivered += r.delivered;
        g.lost += r.lost;
        g.duplicated += r.duplicated;
        g.complete_rounds += usize::from(r.complete);
        if let Some(e) = &r.error {
            self.problem(format!("global round {}: {e}", r.round));
        }
        g.rounds.push(r);
    }

    /// The phase's figures over all its rounds: latency, deliveries/s (over the summed
    /// fan-out spans), the servers' CPU over the rounds (`cpu`; `split`: their user and system
    /// seconds at the end and at the start).
    pub(crate) fn close_global(
        &mut self,
        g: &mut Global,
        all_latency: Vec<u64>,
        span_total: f64,
        cpu: &CpuUse,
        split: Option<((f64, f64), (f64, f64))>,
    ) {
        let server_cpu = cpu.server;
        g.latency = dist(all_latency);
        g.deliveries_per_s = rate(g.delivered as u64, span_total);
        g.server_cpu_s = server_cpu.map(round3);
        let delivered = g.delivered;
        let per_delivery = |secs: f64| (delivered > 0).then(|| round3(secs * 1e6 / delivered as f64));
        g.server_cpu_us_per_delivery = server_cpu.and_then(per_delivery);
        // User and system apart: the system part is the kernel's sends, set against the floor's.
        g.server_user_us_per_delivery = split.and_then(|((u, _), (u0, _))| per_delivery(u - u0));
        g.server_system_us_per_delivery = split.and_then(|((_, s), (_, s0))| per_delivery(s - s0));
        g.beside = CpuBeside::of(cpu);
        for (i, node) in self.report.nodes.iter_mut().enumerate() {
            node.global_cpu_s = cpu.per_server.get(i).copied().flatten().map(round3);
        }
        if g.lost > 0 || g.duplicated > 0 {
            self.problem(format!(
                "global: {} lost, {} duplicated of {} expected",
                g.lost, g.duplicated, g.expected
            ));
        }
        if g.rounds.len() < self.args.rounds || g.complete_rounds < g.rounds.len() {
            self.problem(format!(
                "global: {} of {} rounds reached every socket exactly once",
                g.complete_rounds, self.args.rounds
            ));
        }
    }

    /// Connect and global fan-out against this tool's own ideal server (`floor.rs`): what
    /// the same rounds cost with nothing but one write per socket on the server's side.
    async fn floor(&mut self) -> anyhow::Result<()> {
        let threads = self.args.floor_threads;
        let mut floor = FloorProcess::spawn(threads)?;
        let (addr, pid) = (floor.addr(), floor.pid());
        eprintln!("floor: an ideal server on {addr} (pid {pid}), {threads} sending threads");
        self.report.url = format!("ws://{addr}/");
        self.report.urls = vec![self.report.url.clone()];
        // Its figures are read from /proc like a server's.
        self.args.pids = vec![pid];
        self.report.nodes = vec![Node {
            url: self.report.url.clone(),
            pid: Some(pid),
            ..Node::default()
        }];
        let target = Target::new(addr, format!("ws://{addr}/ws/notifications/"), self.args.source_addrs);
        let tokens: Vec<String> = (0..self.args.users).map(|i| format!("floor-{i}")).collect();
        self.connect_to(&[target], &tokens).await;
        let frame_bytes = floor::frame(0, &self.shared.title(Phase::Global, 0))?.len();
        let g = self
            .fanout(async |round, title| floor.send(round, title).map_err(|e| format!("{e:#}")))
            .await;
        let (accepted, write_errors) = floor.stats()?;
        self.report.floor = Some(FloorInfo {
            sender_threads: threads,
            accepted,
            frame_bytes,
            write_errors,
        });
        if write_errors > 0 {
            self.problem(format!("floor: {write_errors} writes failed"));
        }
        self.report.global = Some(g);
        self.floor = Some(floor);
        Ok(())
    }

    async fn peruser(&mut self) {
        // Whole users, in order, until their open sockets reach the subset size.
        let open = self.open_sockets();
        let mut by_user: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for s in &open {
            if let Some(sock) = self.sockets.get(s) {
                by_user.entry(sock.user).or_default().push(*s);
            }
        }
        let sock_user: HashMap<u32, usize> = self.sockets.iter().map(|(s, sock)| (*s, sock.user)).collect();
        let mut subset: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut total = 0;
        for (u, socks) in by_user {
            if total >= self.args.peruser_sockets {
                break;
            }
            total += socks.len();
            subset.push((u, socks));
        }
        if subset.is_empty() {
            self.problem("per-user: no open sockets to target".to_owned());
            return;
        }
        eprintln!("per-user: {} users, {total} sockets", subset.len());
        let subset = Arc::new(subset);
        let mut p = PerUser {
            users: subset.len(),
            sockets: total,
            runs: Vec::new(),
        };
        for mode in [Phase::Rate, Phase::Flat] {
            let run = self.peruser_run(mode, &subset, &sock_user).await;
            let mut issues = Vec::new();
            for (what, n) in [
                ("lost", run.lost),
                ("duplicated", run.duplicated),
                ("misdelivered", run.misdelivered),
                ("id mismatch", run.id_mismatch),
                ("unknown seq", run.unknown_seq),
            ] {
                if n > 0 {
                    issues.push(format!("{n} {what}"));
                }
            }
            if !run.create_errors.is_empty() {
                issues.push(format!("create errors {:?}", run.create_errors));
            }
            if !issues.is_empty() {
                self.problem(format!("per-user {}: {}", run.mode, issues.join(", ")));
            }
            p.runs.push(run);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.report.peruser = Some(p);
    }

    async fn peruser_run(
        &self,
        mode: Phase,
        subset: &Arc<Vec<(usize, Vec<u32>)>>,
        sock_user: &HashMap<u32, usize>,
    ) -> PerUserRun {
        let name = if mode == Phase::Rate { "rate" } else { "flat" };
        let seed = mix(self.run.bytes().fold(mode as u64, |h, b| mix(h ^ u64::from(b))));
        let k = subset.len() as u64;
        let pick = move |seq: usize| (mix(seed ^ seq as u64) % k) as usize;
        let timeout = secs(self.args.timeout);
        self.shared.reset(mode);
        let _ = self.shared.take_events();
        let meter = CpuMeter::start(&self.args.pids);
        let t0 = Instant::now();
        let mut out = PerUserRun {
            mode: name.to_owned(),
            ..PerUserRun::default()
        };
        // (seq, subset index, sent, answered, result)
        type Rec = (usize, usize, Instant, Instant, Result<i64, String>);
        let mut recs: Vec<Rec> = Vec::new();
        // The subset holds indexes into self.users; the server wants their ids.
        let server_ids: Vec<i64> = subset.iter().map(|(u, _)| self.users[*u].user_id).collect();
        let one = |seq: usize| {
            let api = Arc::clone(&self.api);
            let admin = Arc::clone(&self.admin);
            let title = self.shared.title(mode, seq);
            let idx = pick(seq);
            let user_id = server_ids[idx];
            async move {
                let sent = Instant::now();
                let res = tokio::time::timeout(timeout, api.create_notification(&admin, user_id, &title)).await;
                let res = match res {
                    Ok(Ok(id)) => Ok(id),
                    Ok(Err(e)) => Err(short_error(&e)),
                    Err(_) => Err("timeout".to_owned()),
                };
                (seq, idx, sent, Instant::now(), res)
            }
        };
        let create_deadline = t0 + timeout + secs(if mode == Phase::Rate { self.args.rate_secs } else { 0.0 });
        if mode == Phase::Rate {
            let count = ((self.args.rate * self.args.rate_secs).round() as usize).max(1);
            out.target_rate = Some(self.args.rate);
            out.concurrency = RATE_MAX_IN_FLIGHT;
            out.creates = count;
            eprintln!("  per-user rate: {count} creates at {}/s", self.args.rate);
            let sem = Arc::new(Semaphore::new(RATE_MAX_IN_FLIGHT));
            let mut handles = Vec::with_capacity(count);
            let start = tokio::time::Instant::now();
            for seq in 0..count {
                tokio::time::sleep_until(start + secs(seq as f64 / self.args.rate)).await;
                if Instant::now() >= create_deadline {
                    break;
                }
                let permit = match Arc::clone(&sem).try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        out.behind_schedule += 1;
                        match tokio::time::timeout_at(create_deadline.into(), Arc::clone(&sem).acquire_owned()).await {
                            Ok(Ok(p)) => p,
                            _ => break,
                        }
                    }
                };
                let fut = one(seq);
                handles.push(tokio::spawn(async move {
                    let r = fut.await;
                    drop(permit);
                    r
                }));
            }
            for h in handles {
                match h.await {
                    Ok(rec) => recs.push(rec),
                    Err(e) => *out.create_errors.entry(format!("task: {e}")).or_default() += 1,
                }
            }
        } else {
            let count = self.args.flat_count;
            let conc = self.args.flat_concurrency.max(1);
            out.concurrency = conc;
            out.creates = count;
            eprintln!("  per-user flat: {count} creates, {conc} in flight");
            let next = Arc::new(AtomicUsize::new(0));
            let one = &one;
            let workers = (0..conc).map(|_| {
                let next = Arc::clone(&next);
                async move {
                    let mut mine = Vec::new();
                    loop {
                        if Instant::now() >= create_deadline {
                            break;
                        }
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= count {
                            break;
                        }
                        mine.push(one(seq).await);
                    }
                    mine
                }
            });
            // Polled in this task: `conc` futures multiplexed, no spawn needed.
            let all = futures_util::future::join_all(workers).await;
            recs = all.into_iter().flatten().collect();
        }
        out.sent = recs.len();
        if out.sent < out.creates {
            eprintln!(
                "  per-user {name}: only {} of {} creates sent before the --timeout bound",
                out.sent, out.creates
            );
        }
        let create_secs = recs
            .iter()
            .map(|r| r.3)
            .max()
            .map_or(0.0, |last| last.saturating_duration_since(t0).as_secs_f64());
        // Offered load: the pace at which requests left (n-1 gaps between n sends).
        let first_sent = recs.iter().map(|r| r.2).min();
        let last_sent = recs.iter().map(|r| r.2).max();
        if let (Some(a), Some(b)) = (first_sent, last_sent) {
            out.sent_per_s = rate(
                recs.len().saturating_sub(1) as u64,
                b.saturating_duration_since(a).as_secs_f64(),
            );
        }
        // Expected deliveries: every open socket of the target user, per successful create.
        let mut created: HashMap<u32, (usize, Instant, i64)> = HashMap::with_capacity(recs.len());
        let mut create_lat = Vec::with_capacity(recs.len());
        let mut failed_seqs = HashSet::new();
        for (seq, idx, sent, done, res) in &recs {
            match res {
                Ok(id) => {
                    created.insert(*seq as u32, (*idx, *sent, *id));
                    create_lat.push(done.saturating_duration_since(*sent).as_micros() as u64);
                }
                Err(e) => {
                    failed_seqs.insert(*seq as u32);
                    *out.create_errors.entry(e.clone()).or_default() += 1;
                }
            }
        }
        out.created = created.len();
        out.create_secs = round3(create_secs);
        out.creates_per_s = rate(created.len() as u64, create_secs);
        out.create_latency = dist(create_lat);
        out.expected = created.values().map(|(idx, _, _)| subset[*idx].1.len()).sum();
        let reached = self.wait_for(mode, out.expected as u64, Instant::now() + timeout).await;
        out.timed_out = !reached;
        tokio::time::sleep(GRACE).await;
        let cpu = meter.read();
        let server_cpu = cpu.server;
        let events: Vec<Event> = self.shared.take_events();
        let mut seen: HashMap<(u32, u32), u32> = HashMap::with_capacity(events.len());
        let mut lat = Vec::with_capacity(events.len());
        let mut last = None::<Instant>;
        for e in events.iter().filter(|e| e.phase == mode) {
            let Some(&(idx, sent, id)) = created.get(&e.seq) else {
                if !failed_seqs.contains(&e.seq) {
                    out.unknown_seq += 1;
                }
                continue;
            };
            let target_user = subset[idx].0;
            if e.global || sock_user.get(&e.sock) != Some(&target_user) {
                out.misdelivered += 1;
                continue;
            }
            if e.id != id {
                out.id_mismatch += 1;
                continue;
            }
            let c = seen.entry((e.seq, e.sock)).or_default();
            *c += 1;
            if *c > 1 {
                out.duplicated += 1;
                continue;
            }
            lat.push(e.at.saturating_duration_since(sent).as_micros() as u64);
            last = Some(last.map_or(e.at, |l: Instant| l.max(e.at)));
        }
        out.delivered = lat.len();
        out.lost = out.expected.saturating_sub(out.delivered);
        let span = last.map_or(0.0, |l| l.saturating_duration_since(t0).as_secs_f64());
        out.deliveries_per_s = rate(out.delivered as u64, span);
        out.latency = dist(lat);
        out.server_cpu_s = server_cpu.map(round3);
        out.server_cpu_us_per_delivery = server_cpu
            .filter(|_| out.delivered > 0)
            .map(|c| round3(c * 1e6 / out.delivered as f64));
        out.beside = CpuBeside::of(&cpu);
        eprintln!(
            "  per-user {name}: {}/{} created at {}/s, {}/{} delivered, p99 {} ms",
            out.created,
            out.creates,
            out.creates_per_s.map_or("n/a".into(), |v| v.to_string()),
            out.delivered,
            out.expected,
            out.latency.as_ref().map_or("n/a".into(), |d| d.p99_ms.to_string())
        );
        out
    }

    async fn rest(&mut self) {
        eprintln!("rest: preparing a user with {REST_LIST_SIZE} notifications");
        let mut runs = Vec::new();
        match self.rest_user().await {
            Ok(token) => runs.push(
                self.rest_run(
                    "/api/notifications/",
                    Some(&token),
                    Some((REST_LIST_SIZE as u64, REST_LIST_SIZE)),
                )
                .await,
            ),
            Err(e) => runs.push(RestRun {
                endpoint: "/api/notifications/".to_owned(),
                status: "error".to_owned(),
                detail: Some(format!("setup: {e:#}")),
                ..RestRun::default()
            }),
        }
        runs.push(self.rest_run("/api/global-notifications/", None, None).await);
        for r in &runs {
            if r.status == "error" {
                let p = format!("GET {}: {}", r.endpoint, r.detail.clone().unwrap_or_default());
                self.problem(p);
            } else if !r.errors.is_empty() {
                let p = format!("GET {}: errors {:?}", r.endpoint, r.errors);
                self.problem(p);
            }
        }
        self.report.rest = Some(Rest { runs });
    }

    /// A fresh user with exactly REST_LIST_SIZE notifications; returns its token.
    async fn rest_user(&self) -> anyhow::Result<String> {
        let login = self.fresh_user("rest").await?;
        self.fill(&login, REST_LIST_SIZE, 8, secs(self.args.timeout)).await?;
        Ok(login.token)
    }

    /// Registers and logs in user `<run>_<name>`.
    async fn fresh_user(&self, name: &str) -> anyhow::Result<Login> {
        let name = format!("{}_{name}", self.user_prefix);
        let api = &self.api;
        tokio::time::timeout(Duration::from_secs(60), api.register(&name, &self.password))
            .await
            .context("register timed out")??;
        tokio::time::timeout(Duration::from_secs(60), api.login(&name, &self.password))
            .await
            .context("login timed out")?
    }

    /// Gives `user` `count` notifications, `concurrency` creates in flight, all within `bound`.
    async fn fill(&self, user: &Login, count: usize, concurrency: usize, bound: Duration) -> anyhow::Result<()> {
        let (api, admin, shared) = (&self.api, &self.admin, &self.shared);
        let mut fills = futures_util::stream::iter(0..count)
            .map(|i| {
                let title = shared.title(Phase::Fill, i);
                async move { api.create_notification(admin, user.user_id, &title).await }
            })
            .buffer_unordered(concurrency.max(1));
        let deadline = tokio::time::Instant::now() + bound;
        while let Some(r) = tokio::time::timeout_at(deadline, fills.next())
            .await
            .map_err(|_| anyhow!("creating {count} notifications took over {bound:?}"))?
        {
            r?;
        }
        Ok(())
    }

    /// The list page of 50 for a user with --inbox-size notifications against one with 50,
    /// each driven like the REST phase's runs.
    async fn inbox(&mut self) {
        let size = self.args.inbox_size;
        eprintln!("inbox: a user with {size} notifications and one with {REST_LIST_SIZE}");
        let mut out = Inbox {
            size,
            ..Inbox::default()
        };
        let prepared: anyhow::Result<(Login, Login)> = async {
            let small = self.fresh_user("inbox_small").await?;
            let large = self.fresh_user("inbox_large").await?;
            self.fill(&small, REST_LIST_SIZE, 8, secs(self.args.timeout)).await?;
            let t0 = Instant::now();
            let conc = self.args.flat_concurrency;
            self.fill(&large, size, conc, secs(self.args.setup_timeout)).await?;
            let took = t0.elapsed().as_secs_f64();
            out.fill_secs = round3(took);
            out.fill_per_s = rate(size as u64, took);
            Ok((small, large))
        }
        .await;
        let (small, large) = match prepared {
            Ok(users) => users,
            Err(e) => {
                self.problem(format!("inbox: setup: {e:#}"));
                self.report.inbox = Some(out);
                return;
            }
        };
        const PAGE: &str = "/api/notifications/?limit=50";
        let want_small = Some((REST_LIST_SIZE as u64, REST_LIST_SIZE));
        let want_large = Some((size as u64, REST_LIST_SIZE.min(size)));
        out.small = Some(self.rest_run(PAGE, Some(&small.token), want_small).await);
        out.large = Some(self.rest_run(PAGE, Some(&large.token), want_large).await);
        let rps = |r: &Option<RestRun>| r.as_ref().and_then(|r| r.requests_per_s);
        if let (Some(l), Some(s)) = (rps(&out.large), rps(&out.small)) {
            out.large_to_small = Some(round3(l / s));
        }
        for r in [&out.small, &out.large].into_iter().flatten() {
            if r.status != "ok" || !r.errors.is_empty() {
                let p = format!(
                    "inbox GET {}: {} {} {:?}",
                    r.endpoint,
                    r.status,
                    r.detail.clone().unwrap_or_default(),
                    r.errors
                );
                self.problem(p);
            }
        }
        self.report.inbox = Some(out);
    }

    /// Drives GET `endpoint` (a path, with a query if any) for --rest-secs; `want` is the
    /// `count` and the number of items the probe request must answer.
    async fn rest_run(&self, endpoint: &str, token: Option<&str>, want: Option<(u64, usize)>) -> RestRun {
        let conns = self.args.rest_connections.max(1);
        let mut out = RestRun {
            endpoint: endpoint.to_owned(),
            connections: conns,
            ..RestRun::default()
        };
        let client = match http_client(conns) {
            Ok(c) => c,
            Err(e) => {
                out.status = "error".to_owned();
                out.detail = Some(format!("{e:#}"));
                return out;
            }
        };
        // Probe: is the endpoint there, and does it answer what the contract says?
        match tokio::time::timeout(Duration::from_secs(30), self.api.get(&client, endpoint, token)).await {
            Ok(Ok((status, body))) if status.as_u16() == 404 || status.as_u16() == 405 => {
                out.status = "n/a".to_owned();
                out.detail = Some(format!("{} {}", status.as_u16(), snippet(&body)));
                return out;
            }
            Ok(Ok((status, body))) if status.is_success() => {
                out.body_bytes = Some(body.len());
                match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => {
                        out.listed = v.get("count").and_then(Value::as_u64);
                        let items = v.get("notifications").and_then(Value::as_array).map(Vec::len);
                        if let Some((count, want_items)) = want
                            && (out.listed != Some(count) || items != Some(want_items))
                        {
                            out.status = "error".to_owned();
                            out.detail = Some(format!(
                                "expected count {count} and {want_items} items, got count {:?}, {:?} items",
                                out.listed, items
                            ));
                            return out;
                        }
                    }
                    Err(e) => {
                        out.status = "error".to_owned();
                        out.detail = Some(format!("body is not JSON ({e}): {}", snippet(&body)));
                        return out;
                    }
                }
            }
            Ok(Ok((status, body))) => {
                out.status = "error".to_owned();
                out.detail = Some(format!("{status} {}", snippet(&body)));
                return out;
            }
            Ok(Err(e)) => {
                out.status = "error".to_owned();
                out.detail = Some(format!("{e:#}"));
                return out;
            }
            Err(_) => {
                out.status = "error".to_owned();
                out.detail = Some("probe timed out".to_owned());
                return out;
            }
        }
        out.status = "ok".to_owned();
        eprintln!("  GET {endpoint}: {conns} connections for {}s", self.args.rest_secs);
        let meter = CpuMeter::start(&self.args.pids);
        let t0 = Instant::now();
        let end = t0 + secs(self.args.rest_secs);
        // Hard stop well after `end` in case responses hang.
        let hard = tokio::time::Instant::from_std(end) + Duration::from_secs(30);
        let api = &self.api;
        let client = &client;
        let workers = (0..conns).map(|_| async move {
            let mut lat = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < end {
                let s = Instant::now();
                match api.get(client, endpoint, token).await {
                    Ok((status, _)) if status.is_success() => {
                        lat.push(s.elapsed().as_micros() as u64);
                    }
                    Ok((status, _)) => *errors.entry(status.as_u16().to_string()).or_default() += 1,
                    Err(e) => *errors.entry(short_error(&e)).or_default() += 1,
                }
            }
            (lat, errors)
        });
        let results = tokio::time::timeout_at(hard, futures_util::future::join_all(workers)).await;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = meter.read();
        let server_cpu = cpu.server;
        let Ok(results) = results else {
            out.status = "error".to_owned();
            out.detail = Some("requests hung past the hard stop".to_owned());
            return out;
        };
        let mut lat = Vec::new();
        for (l, e) in results {
            lat.extend(l);
            for (k, v) in e {
                *out.errors.entry(k).or_default() += v;
            }
        }
        out.requests = lat.len() as u64;
        out.secs = round3(wall);
        out.requests_per_s = rate(out.requests, wall);
        out.latency = dist(lat);
        out.server_cpu_s = server_cpu.map(round3);
        out.beside = CpuBeside::of(&cpu);
        eprintln!(
            "  GET {endpoint}: {} req/s",
            out.requests_per_s.map_or("n/a".into(), |v| round1(v).to_string())
        );
        out
    }

    fn finish(&mut self, started: Instant) {
        // Added to what listener processes reported, if any.
        let mut closed = std::mem::take(&mut self.report.sockets_closed);
        for (reason, n) in self.closed_by_reason() {
            *closed.entry(reason).or_default() += n;
        }
        if !closed.is_empty() {
            let n: u64 = closed.values().sum();
            self.problem(format!("{n} sockets closed during the run: {closed:?}"));
        }
        self.report.sockets_closed = closed;
        self.report.other_frames += self.shared.other_frames.load(Ordering::Relaxed);
        self.report.bad_frames += self.shared.bad_frames.load(Ordering::Relaxed);
        if self.report.bad_frames > 0 {
            let p = format!("{} frames were not valid notification JSON", self.report.bad_frames);
            self.problem(p);
        }
        self.report.total_secs = round3(started.elapsed().as_secs_f64());
        self.report.loadavg_end = procfs::loadavg1();
        self.report.ok = self.report.problems.is_empty();
    }
}

/// What one connect phase measured, from this process's sockets or summed over its listeners.
pub(crate) struct ConnectMeasured {
    pub attempted: usize,
    pub requested: usize,
    pub connected: usize,
    pub failures: BTreeMap<String, u64>,
    pub secs: f64,
    pub handshake_micros: Vec<u64>,
    pub source_addresses: usize,
    /// Open sockets on each node.
    pub per_node: Vec<usize>,
}

/// Server RSS growth over the sockets opened meanwhile, KiB each.
pub(crate) fn kib_per_socket(before: Option<u64>, after: Option<u64>, sockets: usize) -> Option<f64> {
    match (before, after) {
        (Some(a), Some(b)) if sockets > 0 => Some(round3((b as f64 - a as f64) / sockets as f64)),
        _ => None,
    }
}

/// Server CPU milliseconds per handshake.
pub(crate) fn per_handshake(server_cpu_s: Option<f64>, connected: usize) -> Option<f64> {
    server_cpu_s
        .filter(|_| connected > 0)
        .map(|c| round3(c * 1000.0 / connected as f64))
}

fn short_error(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let s: String = s.chars().take(160).collect();
    if s.is_empty() { "error".to_owned() } else { s }
}
