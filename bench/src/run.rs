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
use crate::procfs::{self, CpuMeter};
use crate::report::{
    Auth, Connect, CpuBeside, FloorInfo, Global, GlobalRound, PerUser, PerUserRun, Report, Rest, RestRun,
};
use crate::sockets::{self, Event, Phase, Shared, Socket, Target};
use crate::stats::{dist, mix, rate, round1, round3};

/// Notifications given to the REST user before the list benchmark.
const REST_LIST_SIZE: usize = 50;
/// After the expected count arrived, wait this long for duplicates or strays.
const GRACE: Duration = Duration::from_millis(250);
/// Bound on creates in flight during the fixed-rate run (open loop).
const RATE_MAX_IN_FLIGHT: usize = 256;

struct Bench {
    args: Args,
    api: Arc<Api>,
    admin: Arc<str>,
    run: String,
    password: String,
    shared: Arc<Shared>,
    users: Vec<Login>,
    sockets: BTreeMap<u32, Socket>,
    /// The floor's ideal server, kept until the sockets are closed.
    floor: Option<FloorProcess>,
    report: Report,
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d)
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let h = mix(nanos ^ (u64::from(std::process::id()) << 32));
    format!("hb{:08x}", h as u32)
}

pub async fn run(args: Args) -> anyhow::Result<Report> {
    let started = Instant::now();
    let api = Arc::new(Api::new(&args.url)?);
    let run = run_id();
    let label = args.label.clone().unwrap_or_else(|| {
        if args.has_phase("floor") {
            "floor".to_owned()
        } else {
            args.url.clone()
        }
    });
    eprintln!("herald-bench {run}: target {} ({label})", args.url);
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
        ("pid", json!(args.pid)),
    ] {
        params.insert(k.to_owned(), v);
    }
    let floor_only = args.has_phase("floor");
    // The floor talks to no server, so it has no admin to log in.
    let admin_token = if floor_only {
        String::new()
    } else {
        tokio::time::timeout(
            Duration::from_secs(60),
            api.login(&args.admin_user, &args.admin_password),
        )
        .await
        .context("admin login timed out")?
        .context("admin login")?
        .token
    };
    let mut bench = Bench {
        api,
        admin: Arc::from(admin_token.as_str()),
        password: format!("{run}-pw-Secret1"),
        shared: Arc::new(Shared::new(&run)),
        users: Vec::new(),
        sockets: BTreeMap::new(),
        floor: None,
        report: Report {
            tool: "herald-bench",
            label,
            url: args.url.clone(),
            run: run.clone(),
            smoke: args.smoke,
            params,
            loadavg_start: procfs::loadavg1(),
            ..Report::default()
        },
        run,
        args,
    };
    if floor_only {
        bench.floor().await?;
    }
    let need_sockets = ["connect", "global", "peruser"].iter().any(|p| bench.args.has_phase(p));
    if need_sockets {
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
    fn problem(&mut self, p: String) {
        eprintln!("  problem: {p}");
        self.report.problems.push(p);
    }

    fn username(&self, i: usize) -> String {
        format!("{}_{i}", self.run)
    }

    async fn auth(&mut self) -> anyhow::Result<()> {
        let n = self.args.users;
        let conc = self.args.auth_concurrency.max(1);
        let deadline = tokio::time::Instant::now() + secs(self.args.setup_timeout);
        eprintln!("auth: registering and logging in {n} users");
        let pid = self.args.pid;
        let rss_before = pid.and_then(procfs::rss_kib);
        let meter = CpuMeter::start(pid);
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
            server_rss_after_kib: pid.and_then(procfs::rss_kib),
            server_cpu_s: meter.read().server.map(round3),
        });
        Ok(())
    }

    async fn connect(&mut self) {
        let target = Target::new(self.api.addr, self.api.ws_url(), self.args.source_addrs);
        let tokens: Vec<String> = self.users.iter().map(|u| u.token.clone()).collect();
        self.connect_to(&target, &tokens).await;
    }

    /// Opens the sockets to `target` over `tokens`.
    async fn connect_to(&mut self, target: &Target, tokens: &[String]) {
        let n = self.args.sockets;
        eprintln!(
            "connect: {n} sockets over {} users, {} in flight, {} source addresses",
            tokens.len(),
            self.args.connect_concurrency,
            target.sources.len()
        );
        let pid = self.args.pid;
        let rss_before = pid.and_then(procfs::rss_kib);
        let meter = CpuMeter::start(pid);
        let deadline = tokio::time::Instant::now() + secs(self.args.setup_timeout);
        let out = sockets::connect_all(target, tokens, n, self.args.connect_concurrency, &self.shared, deadline).await;
        let cpu = meter.read();
        let server_cpu = cpu.server;
        // Let the server settle (lazy allocations, freed handshake buffers) before reading RSS.
        tokio::time::sleep(Duration::from_millis(if self.args.smoke { 300 } else { 1000 })).await;
        let rss_after = pid.and_then(procfs::rss_kib);
        let connected = out.sockets.len();
        let failed = out.failures.values().sum::<u64>();
        let per_socket = match (rss_before, rss_after) {
            (Some(a), Some(b)) if connected > 0 => Some(round3((b as f64 - a as f64) / connected as f64)),
            _ => None,
        };
        self.report.connect = Some(Connect {
            attempted: out.attempted,
            requested: n,
            connected,
            failed,
            failures: out.failures.clone(),
            secs: round3(out.secs),
            handshakes_per_s: rate(connected as u64, out.secs),
            handshake: dist(out.handshake_micros),
            source_addresses: target.sources.len(),
            server_rss_before_kib: rss_before,
            server_rss_after_kib: rss_after,
            server_kib_per_socket: per_socket,
            server_cpu_s: server_cpu.map(round3),
            server_cpu_ms_per_handshake: server_cpu
                .filter(|_| connected > 0)
                .map(|c| round3(c * 1000.0 / connected as f64)),
            beside: CpuBeside::of(&cpu),
        });
        if failed > 0 {
            self.problem(format!("{failed} of {n} sockets failed to connect: {:?}", out.failures));
        }
        eprintln!("connect: {connected}/{n} open in {:.2}s", out.secs);
        self.sockets = out.sockets;
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
        let meter = CpuMeter::start(self.args.pid);
        let split0 = self.args.pid.and_then(procfs::cpu_split);
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
            eprintln!(
                "  round {round}: {}/{} delivered, fan-out {} ms, p99 {} ms",
                r.delivered,
                expected,
                r.fanout_ms.map_or("n/a".into(), |v| v.to_string()),
                r.latency.as_ref().map_or("n/a".into(), |d| d.p99_ms.to_string())
            );
            g.expected += expected;
            g.delivered += r.delivered;
            g.lost += r.lost;
            g.duplicated += r.duplicated;
            if let Some(e) = &r.error {
                self.problem(format!("global round {round}: {e}"));
            }
            g.rounds.push(r);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let cpu = meter.read();
        let server_cpu = cpu.server;
        g.latency = dist(all_latency);
        g.deliveries_per_s = rate(g.delivered as u64, span_total);
        g.server_cpu_s = server_cpu.map(round3);
        let per_delivery = |secs: f64| (g.delivered > 0).then(|| round3(secs * 1e6 / g.delivered as f64));
        g.server_cpu_us_per_delivery = server_cpu.and_then(per_delivery);
        // User and system apart: the system part is the kernel's sends, set against the floor's.
        let split = self.args.pid.and_then(procfs::cpu_split).zip(split0);
        g.server_user_us_per_delivery = split.and_then(|((u, _), (u0, _))| per_delivery(u - u0));
        g.server_system_us_per_delivery = split.and_then(|((_, s), (_, s0))| per_delivery(s - s0));
        g.beside = CpuBeside::of(&cpu);
        if g.lost > 0 || g.duplicated > 0 {
            self.problem(format!(
                "global: {} lost, {} duplicated of {} expected",
                g.lost, g.duplicated, g.expected
            ));
        }
        g
    }

    /// Connect and global fan-out against this tool's own ideal server (`floor.rs`): what
    /// the same rounds cost with nothing but one write per socket on the server's side.
    async fn floor(&mut self) -> anyhow::Result<()> {
        let threads = self.args.floor_threads;
        let mut floor = FloorProcess::spawn(threads)?;
        let (addr, pid) = (floor.addr(), floor.pid());
        eprintln!("floor: an ideal server on {addr} (pid {pid}), {threads} sending threads");
        self.report.url = format!("ws://{addr}/");
        // Its figures are read from /proc like a server's.
        self.args.pid = Some(pid);
        let target = Target::new(addr, format!("ws://{addr}/ws/notifications/"), self.args.source_addrs);
        let tokens: Vec<String> = (0..self.args.users).map(|i| format!("floor-{i}")).collect();
        self.connect_to(&target, &tokens).await;
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
        let meter = CpuMeter::start(self.args.pid);
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
                self.rest_run("/api/notifications/", Some(&token), Some(REST_LIST_SIZE as u64))
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
        let name = format!("{}_rest", self.run);
        let api = &self.api;
        tokio::time::timeout(Duration::from_secs(60), api.register(&name, &self.password))
            .await
            .context("register timed out")??;
        let login = tokio::time::timeout(Duration::from_secs(60), api.login(&name, &self.password))
            .await
            .context("login timed out")??;
        let admin = &self.admin;
        let shared = &self.shared;
        let mut fills = futures_util::stream::iter(0..REST_LIST_SIZE)
            .map(|i| {
                let title = shared.title(Phase::Fill, i);
                async move { api.create_notification(admin, login.user_id, &title).await }
            })
            .buffer_unordered(8);
        let deadline = tokio::time::Instant::now() + secs(self.args.timeout);
        while let Some(r) = tokio::time::timeout_at(deadline, fills.next())
            .await
            .map_err(|_| anyhow!("creating {REST_LIST_SIZE} notifications timed out"))?
        {
            r?;
        }
        Ok(login.token)
    }

    async fn rest_run(&self, endpoint: &str, token: Option<&str>, want: Option<u64>) -> RestRun {
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
                        if let Some(want) = want
                            && (out.listed != Some(want) || items != Some(want as usize))
                        {
                            out.status = "error".to_owned();
                            out.detail = Some(format!(
                                "expected count {want} and {want} items, got count {:?}, {:?} items",
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
        let meter = CpuMeter::start(self.args.pid);
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
        let mut closed: BTreeMap<String, u64> = BTreeMap::new();
        for (_, reason) in self.shared.closed() {
            *closed.entry(reason).or_default() += 1;
        }
        if !closed.is_empty() {
            let n: u64 = closed.values().sum();
            self.problem(format!("{n} sockets closed during the run: {closed:?}"));
        }
        self.report.sockets_closed = closed;
        self.report.other_frames = self.shared.other_frames.load(Ordering::Relaxed);
        self.report.bad_frames = self.shared.bad_frames.load(Ordering::Relaxed);
        if self.report.bad_frames > 0 {
            let p = format!("{} frames were not valid notification JSON", self.report.bad_frames);
            self.problem(p);
        }
        self.report.total_secs = round3(started.elapsed().as_secs_f64());
        self.report.loadavg_end = procfs::loadavg1();
        self.report.ok = self.report.problems.is_empty();
    }
}

fn short_error(e: &anyhow::Error) -> String {
    let s = format!("{e:#}");
    let s: String = s.chars().take(160).collect();
    if s.is_empty() { "error".to_owned() } else { s }
}
